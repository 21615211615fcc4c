//! Reads a VAST file and prints it as VAST 4.2: `cargo run -p interlude-vast --example roundtrip -- FILE`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: roundtrip FILE")?;
    let text = std::fs::read_to_string(path)?;
    let vast = interlude_vast::parse_vast(&text)?;
    print!("{}", interlude_vast::write_vast(&vast)?);
    Ok(())
}
