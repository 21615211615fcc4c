//! Simulated viewers: each starts a session, refreshes its media playlist every target duration, and fetches
//! every new ad segment (not content bytes), as a player would. Each keeps the ground truth of what it really
//! fetched, so a run can check the server's counts exactly.
//!
//! This is the seed of the audience simulator (retries, drops, skew and storms come with the load generator).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

/// What one viewer did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ViewerTruth {
    /// Playlist refreshes that succeeded.
    pub playlists: u64,
    /// Playlist refreshes that failed.
    pub playlist_errors: u64,
    /// Ad segments fetched.
    pub ad_segments: u64,
    /// Ad instances whose first segment was fetched: each should count one impression.
    pub ads_started: HashSet<String>,
}

/// One viewer of `channel` on the stitcher at `base` (e.g. `http://127.0.0.1:8080`), until `stop` is set.
pub async fn watch(
    http: reqwest::Client,
    base: String,
    channel: String,
    rendition: usize,
    refresh: Duration,
    stop: Arc<AtomicBool>,
) -> ViewerTruth {
    let mut truth = ViewerTruth::default();
    let created = http
        .post(format!("{base}/v1/sessions"))
        .json(&serde_json::json!({ "channel": channel, "viewer": { "device": "tv", "platform": "sim" } }))
        .send()
        .await;
    let Some(master) = (match created {
        Ok(r) => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["master_url"].as_str().map(str::to_owned)),
        Err(_) => None,
    }) else {
        truth.playlist_errors += 1;
        return truth;
    };
    let media = master.replace("master.m3u8", &format!("{rendition}/media.m3u8"));
    let mut seen: HashSet<String> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        match http.get(&media).send().await {
            Ok(r) if r.status().is_success() => {
                truth.playlists += 1;
                let text = r.text().await.unwrap_or_default();
                for uri in text
                    .lines()
                    .filter(|l| !l.starts_with('#') && !l.is_empty())
                {
                    if !uri.contains("/ads/") || !seen.insert(uri.to_owned()) {
                        continue;
                    }
                    if http
                        .get(uri)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_redirection() || r.status().is_success())
                    {
                        truth.ad_segments += 1;
                        note_ad_segment(&mut truth, uri);
                    }
                }
            }
            _ => truth.playlist_errors += 1,
        }
        tokio::time::sleep(refresh).await;
    }
    truth
}

/// Records a start from an ad segment URI `…/ads/{instance}/{rendition}/{n}.ts`.
fn note_ad_segment(truth: &mut ViewerTruth, uri: &str) {
    let mut parts = uri.rsplit('/');
    if let (Some("0.ts"), Some(_), Some(instance)) = (parts.next(), parts.next(), parts.next()) {
        truth.ads_started.insert(instance.to_owned());
    }
}
