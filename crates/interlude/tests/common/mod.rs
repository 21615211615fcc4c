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
