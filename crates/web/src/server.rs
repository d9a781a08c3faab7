//! The listener: accepts connections (plain HTTP or TLS) and serves the router on each,
//! with the limits a server on an untrusted network needs.
//!
//! * **A cap on connections** ([`Limits::max_connections`]): at the cap, the loop stops
//!   accepting and further clients wait in the kernel's listen queue, so open sockets never
//!   exhaust the process's file descriptors. One client address may hold at most
//!   [`Limits::per_address`] of them (half; a connection over that is closed at once), so a
//!   single host cannot take every slot; trusted proxies are exempt (all their clients share
//!   them).
//! * **Timeouts on what a client controls**: the whole request head must arrive within
//!   [`Limits::header_timeout`] (this also ends idle keep-alive connections), a TLS
//!   handshake within [`Limits::handshake_timeout`], a request body within
//!   [`Limits::body_timeout`]. A slowloris connection is closed, not held forever.
//! * **Accept errors back off** (5 ms doubling to 1 s) instead of spinning — with the file
//!   limit reached, `accept` fails at once, every time — and are logged at most once per
//!   10 s with a count of the ones not logged.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Connections served at once when the configuration does not say.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// What one server allows its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// Connections one client address may hold (not counting trusted proxies).
    pub per_address: usize,
    pub header_timeout: Duration,
    pub handshake_timeout: Duration,
    pub body_timeout: Duration,
    /// How long in-flight requests may take to finish once shutdown begins.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::with_max_connections(DEFAULT_MAX_CONNECTIONS)
    }
}

impl Limits {
    pub fn with_max_connections(max_connections: usize) -> Limits {
        let max_connections = max_connections.max(1);
        Limits {
            max_connections,
            // Half the slots: a crowd behind one NAT (a browser opens ~6 connections) fits,
            // and one address holding its share still leaves the other half to everyone else.
            per_address: (max_connections / 2).max(1),
            header_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `state`'s router on `listener` (over TLS with `tls`) until `shutdown` resolves,
/// then lets in-flight requests finish (up to [`Limits::shutdown_grace`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: crate::WebState,
    extra_routes: axum::Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hsts = tls.is_some();
    let options = crate::RouterOptions { hsts, body_timeout: limits.body_timeout };
    let app = crate::router_with(state.clone(), options, extra_routes);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        // At the cap, wait for a slot before accepting: clients queue in the kernel.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    errors.reset();
                    a
                }
                Err(e) => {
                    drop(slot);
                    let pause = errors.failed(&e);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let ip = crate::login::canonical(peer.ip());
        let trusted = state.info.load().trusted_proxies.iter().any(|n| n.contains(&ip));
        let claim = if trusted { None } else { per_address.claim(ip, limits.per_address) };
        if !trusted && claim.is_none() {
            // Over this address's share: closed at once (dropping the stream), slot freed.
            tracing::debug!(peer = %peer, "connection refused: too many from this address");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        let header_timeout = limits.header_timeout;
        let handshake_timeout = limits.handshake_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let _claim = claim;
            match tls {
                None => serve_connection(stream, peer, app, header_timeout, watcher).await,
                Some(acceptor) => match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, peer, app, header_timeout, watcher).await,
                    Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("web server: requests still running after the shutdown grace; dropped");
    }
    Ok(())
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    app: axum::Router,
    header_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
        app.clone().oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
    }
}

/// Open connections per client address.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection of an address; released on drop.
struct Claim {
    owner: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn claim(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Claim> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Claim { owner: self.clone(), ip })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accept failures: how long to pause, and when to log.
#[derive(Default)]
struct AcceptErrors {
    pause: Duration,
    last_logged: Option<Instant>,
    not_logged: u64,
}

impl AcceptErrors {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const MAX_PAUSE: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Records a failure; returns the pause before the next accept.
    fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.pause = (self.pause * 2).clamp(Self::FIRST_PAUSE, Self::MAX_PAUSE);
        let now = Instant::now();
        if self.last_logged.is_none_or(|t| now.duration_since(t) >= Self::LOG_EVERY) {
            if self.not_logged > 0 {
                tracing::warn!(error = %e, not_logged = self.not_logged, "accept failed (and more since the last report)");
            } else {
                tracing::warn!(error = %e, "accept failed");
            }
            self.last_logged = Some(now);
            self.not_logged = 0;
        } else {
            self.not_logged += 1;
        }
        self.pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_errors_back_off_and_log_rarely() {
        let mut errors = AcceptErrors::default();
        let e = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<Duration> = (0..12).map(|_| errors.failed(&e)).collect();
        assert_eq!(pauses[0], AcceptErrors::FIRST_PAUSE);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*pauses.last().unwrap(), AcceptErrors::MAX_PAUSE);
        assert_eq!(errors.not_logged, 11, "one line for twelve failures within 10 s");
        errors.reset();
        assert_eq!(errors.failed(&e), AcceptErrors::FIRST_PAUSE);
    }

    #[test]
    fn one_address_gets_its_share_only() {
        let per = Arc::new(PerAddress::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let held: Vec<Claim> = (0..3).map(|_| per.claim(a, 3).unwrap()).collect();
        assert!(per.claim(a, 3).is_none());
        assert!(per.claim("192.0.2.2".parse().unwrap(), 3).is_some());
        drop(held);
        assert!(per.claim(a, 3).is_some());
        assert!(per.open.lock().unwrap().len() <= 1);
    }
}
