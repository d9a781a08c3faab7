//! The listener against hostile clients, over real sockets: half-sent headers are cut off,
//! one address cannot take every connection, and the server keeps answering others.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn start(limits: web::Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let store = store::Store::from(store::SqliteStore::open_in_memory().unwrap());
    let state = web::WebState::new(store, web::SiteInfo::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(web::server::serve(listener, state, axum::Router::new(), None, limits, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A connection from `source` (any 127.x.y.z is this host) to `addr`.
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Waits until the server closes `stream` (EOF or reset); how long it took, or `None`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            // A 408 or similar before closing is fine; keep reading to the end.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn healthz(addr: SocketAddr, source: &str) -> String {
    let mut s = connect_from(source, addr).await;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn limits(max: usize, per_address: usize) -> web::Limits {
    web::Limits {
        per_address,
        header_timeout: Duration::from_secs(1),
        handshake_timeout: Duration::from_secs(1),
        ..web::Limits::with_max_connections(max)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_headers_and_silent_connections_are_closed() {
    let (addr, _stop) = start(limits(64, 16)).await;
    let mut half = connect_from("127.0.0.2", addr).await;
    half.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ").await.unwrap();
    let mut silent = connect_from("127.0.0.2", addr).await;
    let took = closed_within(&mut half, Duration::from_secs(5)).await.expect("a half-sent header is cut off");
    assert!(took >= Duration::from_millis(800), "not before the timeout: {took:?}");
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await.is_some(), "a silent connection is cut off");
    // An idle keep-alive connection too, after its first request.
    let mut idle = connect_from("127.0.0.2", addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await.is_some(), "an idle keep-alive connection ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let (addr, _stop) = start(limits(16, 4)).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from("127.0.0.2", addr).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
        held.push(s);
    }
    // Past its share: closed at once, long before the header timeout.
    let mut over = connect_from("127.0.0.2", addr).await;
    let took = closed_within(&mut over, Duration::from_secs(5)).await.expect("closed");
    assert!(took < Duration::from_millis(800), "closed at once, not by the timeout: {took:?}");
    // Everyone else is served meanwhile.
    let answer = healthz(addr, "127.0.0.3").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_clients_wait_and_are_served_when_a_slot_frees() {
    let (addr, _stop) = start(limits(3, 3)).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = connect_from("127.0.0.2", addr).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n").await.unwrap();
        held.push(s);
    }
    // The fourth waits in the listen queue until the slowloris connections time out.
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), healthz(addr, "127.0.0.3")).await.expect("served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(500), "it waited for a slot: {:?}", started.elapsed());
}
