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

/// `GET url` as JSON (panics on any failure: a test helper).
pub async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> T {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// `GET url` as text.
pub async fn get_text(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.unwrap().text().await.unwrap()
}
