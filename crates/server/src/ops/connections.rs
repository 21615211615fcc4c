//! The HTTP listener's connection-level defences: how long a client may take to send a request head, how
//! long a connection may sit silent, how many connections are open at once (in all, and per client
//! address), and graceful shutdown. `axum::serve` has none of these knobs, so connections are accepted here
//! and served by hyper directly; every request carries the peer address as
//! [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo), as `into_make_service_with_connect_info` would.
//!
//! Refusals are counted in `http_connections_refused_total{reason}`; `http_connections_open` is the gauge.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::Service;

use super::rate_limit::client_key;
use crate::telemetry::metrics::{HTTP_CONNECTIONS_OPEN, HTTP_CONNECTIONS_REFUSED};
use crate::{Error, Result, ServerConfig};

/// Bytes a request head (request line and headers) may take; hyper's default is about 400 KB, which lets one
/// URL carry tens of thousands of query parameters.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// Concurrent streams on one HTTP/2 connection: a player needs a few; hyper's default is unbounded.
pub const MAX_HTTP2_STREAMS: u32 = 128;

/// The limits a listener enforces (from `[server]`; see [`ServerConfig`] for what each means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to send a whole request head; `None`: unlimited.
    pub header_read_timeout: Option<Duration>,
    /// Time a connection may go without a byte read or written; `None`: unlimited.
    pub idle_timeout: Option<Duration>,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once per client address (IPv6: per /64); 0: no per-address cap.
    pub max_connections_per_ip: usize,
}

impl From<&ServerConfig> for ConnectionLimits {
    fn from(config: &ServerConfig) -> Self {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        ConnectionLimits {
            header_read_timeout: secs(config.header_read_timeout_secs),
            idle_timeout: secs(config.idle_timeout_secs),
            max_connections: config.max_connections.max(1),
            max_connections_per_ip: config.max_connections_per_ip,
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits::from(&ServerConfig::default())
    }
}

/// Open connections, in all and per client key.
#[derive(Debug, Default)]
struct Tracker {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; released when dropped.
struct Slot {
    tracker: Arc<Tracker>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .tracker
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.key);
            }
        }
        metrics::gauge!(HTTP_CONNECTIONS_OPEN).set(open.0 as f64);
    }
}

impl Tracker {
    /// A slot for a connection from `ip`, or why not.
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &ConnectionLimits,
    ) -> Result<Slot, &'static str> {
        let key = client_key(ip);
        // The counts stay consistent under a panic elsewhere (no update spans one): keep serving.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.0 >= limits.max_connections {
            return Err("total");
        }
        let from_client = open.1.get(&key).copied().unwrap_or(0);
        if limits.max_connections_per_ip > 0 && from_client >= limits.max_connections_per_ip {
            return Err("per_ip");
        }
        *open.1.entry(key).or_insert(0) += 1;
        open.0 += 1;
        metrics::gauge!(HTTP_CONNECTIONS_OPEN).set(open.0 as f64);
        Ok(Slot {
            tracker: self.clone(),
            key,
        })
    }
}

/// A stream closed when it has neither read nor written a byte for `idle`. The deadline is checked lazily:
/// progress only records the time, the timer is re-armed when it fires early.
struct IdleIo<T> {
    inner: T,
    idle: Option<Duration>,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<T> IdleIo<T> {
    fn new(inner: T, idle: Option<Duration>) -> Self {
        let now = Instant::now();
        IdleIo {
            inner,
            idle,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(
                now + idle.unwrap_or(Duration::from_secs(86_400)),
            )),
        }
    }

    fn progressed(&mut self) {
        if self.idle.is_some() {
            self.last_activity = Instant::now();
        }
    }

    /// Pending while the connection may stay silent; an error once it has been silent for too long.
    fn poll_idle<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let Some(idle) = self.idle else {
            return Poll::Pending;
        };
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let deadline = self.last_activity + idle;
            if deadline <= Instant::now() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                )));
            }
            self.timer.as_mut().reset(deadline);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_idle(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_idle(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                this.progressed();
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_idle(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending => this.poll_idle(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

fn builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_HTTP2_STREAMS)
        .max_header_list_size(u32::try_from(MAX_REQUEST_HEAD_BYTES).unwrap_or(u32::MAX));
    builder
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves, then gives in-flight requests
/// `grace` to finish before dropping the connections left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnectionLimits,
) -> Result<()> {
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let builder = Arc::new(builder(&limits));
    let tracker = Arc::new(Tracker::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // Reap finished connections so the set holds only live ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before it was accepted: the listener
                    // itself is fine, so wait a little (EMFILE would spin) and go on.
                    tracing::debug!(error = %e, "Accept failed.");
                    if !is_connection_error(&e) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        let slot = match tracker.admit(peer.ip(), &limits) {
            Ok(slot) => slot,
            Err(reason) => {
                metrics::counter!(HTTP_CONNECTIONS_REFUSED, "reason" => reason).increment(1);
                tracing::debug!(%peer, reason, "Connection refused: too many open.");
                drop(stream);
                continue;
            }
        };
        let watcher = graceful.watcher();
        let (builder, router, limits) = (builder.clone(), router.clone(), limits.clone());
        connections.spawn(async move {
            let _slot = slot;
            serve_connection(stream, peer, &builder, router, watcher, &limits).await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Ok(()),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(%addr, grace_secs = grace.as_secs(), "Grace period over; dropping remaining connections.");
            connections.abort_all();
            Ok(())
        }
    }
}

/// Errors that concern one connection, not the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    builder: &auto::Builder<TokioExecutor>,
    router: Router,
    watcher: hyper_util::server::graceful::Watcher,
    limits: &ConnectionLimits,
) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(IdleIo::new(stream, limits.idle_timeout));
    // hyper's header timer starts only once it knows the protocol, i.e. after the first bytes: a client that
    // connects and sends nothing is held to the same limit from here.
    let first_request = Arc::new(AtomicBool::new(false));
    let seen = first_request.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        seen.store(true, Ordering::Relaxed);
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move { router.call(request).await }
    });
    let connection = watcher.watch(builder.serve_connection(io, service));
    tokio::pin!(connection);
    let first_deadline = async {
        match limits.header_read_timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        result = &mut connection => result,
        () = first_deadline => {
            if !first_request.load(Ordering::Relaxed) {
                tracing::debug!(%peer, "No request head in time; connection closed.");
                return;
            }
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "Connection ended with an error.");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_tracker_caps_connections_in_all_and_per_address() {
        let limits = ConnectionLimits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..ConnectionLimits::default()
        };
        let tracker = Arc::new(Tracker::default());
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            "192.0.2.3".parse().unwrap(),
        );
        let a1 = tracker.admit(a, &limits).unwrap();
        let _a2 = tracker.admit(a, &limits).unwrap();
        assert_eq!(tracker.admit(a, &limits).err(), Some("per_ip"));
        let _b1 = tracker.admit(b, &limits).unwrap();
        assert_eq!(tracker.admit(c, &limits).err(), Some("total"));
        drop(a1);
        let _c1 = tracker.admit(c, &limits).unwrap();
        assert_eq!(tracker.open.lock().unwrap().1.len(), 3);
    }

    #[test]
    fn zero_seconds_in_the_config_means_no_limit() {
        let limits = ConnectionLimits::from(&ServerConfig {
            header_read_timeout_secs: 0,
            idle_timeout_secs: 0,
            ..ServerConfig::default()
        });
        assert_eq!(limits.header_read_timeout, None);
        assert_eq!(limits.idle_timeout, None);
    }
}
