//! The beacon listener (`server.beacon_listen`): beacons served on a listener, runtime and threads of their own,
//! the threads at a lower CPU priority.
//!
//! A retry storm of beacons and the playlists of watching viewers otherwise share one runtime: however early
//! admission control refuses a beacon, the accept, the request parse and the refusal are queued with the
//! playlists' work, so a storm of thousands of connections delays every playlist. On a runtime of their own
//! whose threads are niced, the kernel's scheduler runs the playlist threads first whenever both want the
//! CPU, and the beacons take what is left. The tracking URLs the server hands out name this listener
//! ([`crate::config::ServerConfig::beacon_base_url`]); the main listener still answers beacons sent to it.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;

use super::endpoints::{ConnectionLimits, serve_on_with_limits};
use crate::error::{Error, Result};

/// A running beacon listener: [`BeaconListener::finished`] resolves once it has stopped and drained.
pub struct BeaconListener {
    done: oneshot::Receiver<Result<()>>,
}

/// What the beacon listener runs with.
pub struct BeaconSettings {
    /// Worker threads of its runtime (at least 1).
    pub threads: usize,
    /// Their niceness (0–19).
    pub nice: i32,
    /// The CPUs they run on (`None`: any).
    pub cpus: Option<super::cpus::CpuList>,
    /// How long in-flight beacons get to finish after `stop`.
    pub grace: Duration,
    /// Timeouts and connection caps, as on the main listener.
    pub limits: ConnectionLimits,
}

impl BeaconListener {
    /// Serves `router` on `listener` from a thread of its own running a runtime of `settings.threads`
    /// niced workers, until `stop` resolves; then drains as the main listener does.
    pub fn start(
        listener: std::net::TcpListener,
        router: Router,
        settings: BeaconSettings,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<BeaconListener> {
        let addr = listener.local_addr().ok();
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::startup(format!("the beacon listener {addr:?}"))(Box::new(e)))?;
        let nice = settings.nice.clamp(0, 19);
        let cpus = settings.cpus.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads.max(1))
            .thread_name("beacons")
            .on_thread_start(move || {
                lower_thread_priority(nice);
                if let Some(cpus) = &cpus {
                    super::cpus::run_on(cpus);
                }
            })
            .enable_all()
            .build()
            .map_err(|e| Error::startup("the beacon listener's runtime")(Box::new(e)))?;
        let (tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("beacon-listener".into())
            .spawn(move || {
                let served = runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|e| Error::startup("the beacon listener")(Box::new(e)))?;
                    serve_on_with_limits(listener, router, settings.grace, stop, settings.limits)
                        .await
                });
                let _ = tx.send(served);
            })
            .map_err(|e| Error::startup("the beacon listener's thread")(Box::new(e)))?;
        tracing::info!(listen = ?addr, threads = settings.threads.max(1), nice, cpus = ?settings.cpus.as_ref().map(|c| c.cpus()), "Beacon listener started.");
        Ok(BeaconListener { done })
    }

    /// Resolves once the listener has stopped and its in-flight requests are done.
    pub async fn finished(self) -> Result<()> {
        self.done.await.unwrap_or(Ok(()))
    }
}

/// Lowers the calling thread's CPU priority to `nice` (Linux: `setpriority` on the thread id, which sets
/// that thread's nice value alone). Best effort: a refusal is logged and the thread runs at normal priority.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        if let Err(error) = rustix::process::setpriority_process(Some(tid), nice) {
            tracing::warn!(%error, nice, "Could not lower this thread's CPU priority.");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_beacon_thread_runs_at_the_niceness_asked() {
        let seen = std::thread::spawn(|| {
            lower_thread_priority(7);
            rustix::process::getpriority_process(Some(rustix::thread::gettid()))
        })
        .join()
        .expect("thread ran");
        assert_eq!(seen.ok(), Some(7));
    }
}
