//! Helpers shared by the tests that run the real binary: a free loopback port, and waiting for `/readyz`.

#![allow(clippy::unwrap_used, clippy::panic, dead_code, unreachable_pub)]

use std::time::Duration;

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `base` answers `/readyz` with success, polling every `every` at most `tries` times.
pub async fn wait_ready(http: &reqwest::Client, base: &str, tries: u32, every: Duration) {
    for _ in 0..tries {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(every).await;
    }
    panic!("{base} did not become ready");
}

/// `GET url` as JSON (panics on any failure: a test helper). A 503 is retried after its `Retry-After`, as a
/// client must: a node under load sheds reads first (`ops::shedding`).
pub async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> T {
    for _ in 0..30 {
        let response = http.get(url).send().await.unwrap();
        if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return response.error_for_status().unwrap().json().await.unwrap();
        }
        let wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(1u64);
        tokio::time::sleep(std::time::Duration::from_secs(wait.min(5))).await;
    }
    panic!("{url} answered 503 for 30 attempts")
}

/// `GET url` as text.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}

/// The producer token the tests' `[edge]` configures (allowed server-side events).
pub const PRODUCER_TOKEN: &str = "test-producer-token-0123456789abcdef";
/// The read token the tests' `[edge]` configures.
pub const READ_TOKEN: &str = "test-read-token-0123456789abcdefghij";
/// The pseudonym secret the tests pass in `INTERLUDE_PRIVACY_SECRET`.
pub const PRIVACY_SECRET: &str = "test-pseudonym-secret-0123456789";

/// The `[edge]` section of a production-like configuration: one server-side producer and a read token.
pub fn edge_toml() -> String {
    format!(
        "[edge]\nread_token = \"{READ_TOKEN}\"\n\n[[edge.producers]]\nname = \"tests\"\ntoken = \"{PRODUCER_TOKEN}\"\nserver_side = true\n"
    )
}

/// An HTTP client that reads with the read token (requests may set their own `Authorization`).
pub fn reader(timeout: Duration) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {READ_TOKEN}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(timeout)
        .build()
        .unwrap()
}

/// A child process of the binary, killed when dropped.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `interlude <args> --config <config>` with the tests' pseudonym secret, its stderr in `log`.
pub fn spawn(args: &[&str], config: &std::path::Path, log: &std::path::Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_interlude"))
            .args(args)
            .arg("--config")
            .arg(config)
            .env("INTERLUDE_PRIVACY_SECRET", PRIVACY_SECRET)
            // Queue-delay shedding measures the machine the tests share, not the node under test.
            .env("INTERLUDE_SERVER__SHED_QUEUE_DELAY_MS", "0")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// The TOML list of renditions of the simulated origin's asset `path` (`slate`, `ads/ad15`) on `origin`.
pub fn renditions_toml(origin: u16, path: &str) -> String {
    let media = interlude_sim::media::Media::embedded();
    let items: Vec<String> = media
        .renditions()
        .iter()
        .map(|r| {
            format!(
                "{{ bandwidth = {}, resolution = \"{}x{}\", playlist = \"http://127.0.0.1:{origin}/assets/{path}/{}/index.m3u8\" }}",
                r.bandwidth, r.width, r.height, r.name
            )
        })
        .collect();
    format!("[{}]", items.join(", "))
}
