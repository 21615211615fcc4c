//! Parse and write throughput of live media playlists, against a baseline measured in the same run: a bare
//! `str::lines()` pass over the same text (the least any parser must do).
//!
//! `cargo bench -p interlude-hls --bench playlist -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_main};
use interlude_hls::{markers, parse_media_playlist, write::write_media};

/// A live window of `n` 2 s segments with PDTs and a CUE-OUT / CUE-OUT-CONT break in it.
fn live_playlist(n: usize) -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:1000\n",
    );
    for i in 0..n {
        if i == 2 {
            s.push_str("#EXT-X-CUE-OUT:DURATION=30\n");
        } else if i > 2 && i < 17 {
            s.push_str(&format!(
                "#EXT-X-CUE-OUT-CONT:ElapsedTime={},Duration=30\n",
                (i - 2) * 2
            ));
        } else if i == 17 {
            s.push_str("#EXT-X-CUE-IN\n");
        }
        s.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-23T10:{:02}:{:02}.000Z\n#EXTINF:2.000,\nhttps://origin.example/live/720p/{}.ts\n",
            (i * 2 / 60) % 60,
            (i * 2) % 60,
            1000 + i
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    for n in [6usize, 1000] {
        let text = live_playlist(n);
        let playlist = parse_media_playlist(&text).expect("bench playlist parses");
        let mut group = c.benchmark_group(format!("media_{n}_segments"));
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function("baseline_lines", |b| {
            b.iter(|| black_box(&text).lines().count())
        });
        group.bench_function("parse", |b| {
            b.iter(|| parse_media_playlist(black_box(&text)))
        });
        group.bench_function("parse_and_extract_breaks", |b| {
            b.iter(|| parse_media_playlist(black_box(&text)).map(|p| markers::extract_breaks(&p)))
        });
        let mut out = String::with_capacity(text.len());
        group.bench_function("write", |b| {
            b.iter(|| {
                out.clear();
                write_media(&mut out, black_box(&playlist))
            })
        });
        group.finish();
    }
}

/// criterion's macro generates an undocumented `pub fn`.
mod group {
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
