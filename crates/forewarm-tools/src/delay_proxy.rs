//! A userspace TCP delay proxy: this kernel has no netem, so the distance between regions is
//! emulated by a proxy in front of each node that holds every byte back by a one-way delay,
//! in both directions.
//!
//! The delay may depend on where a connection comes from: `forewarm up --regions` binds each
//! node's calls to other members to a loopback address of its own (`[cluster] source_addr`),
//! so the proxy in front of a node knows the caller's region from the peer address and
//! applies half that pair's round trip. A caller it does not know (a client, `curl`) gets the
//! default delay. Delays can be changed while connections are open (tests, chaos).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// One-way delays: a default, and per caller address.
#[derive(Debug, Default)]
struct Delays {
    default_us: AtomicU64,
    by_source: RwLock<HashMap<IpAddr, u64>>,
}

impl Delays {
    fn for_source(&self, source: IpAddr) -> Arc<AtomicU64> {
        let us = self
            .by_source
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&source)
            .copied()
            .unwrap_or_else(|| self.default_us.load(Ordering::Relaxed));
        Arc::new(AtomicU64::new(us))
    }
}

/// Open connections: their caller and their (shared) delay.
type OpenConnections = Arc<std::sync::Mutex<Vec<(IpAddr, std::sync::Weak<AtomicU64>)>>>;

/// A running delay proxy (it stops when the runtime does, or on [`DelayProxy::stop`]).
#[derive(Debug, Clone)]
pub struct DelayProxy {
    addr: SocketAddr,
    delays: Arc<Delays>,
    /// The delays of open connections, so a change reaches them too.
    open: OpenConnections,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl DelayProxy {
    /// Listen on `listen` and forward every connection to `upstream` (`host:port`, resolved
    /// per connection, so a node that moved or restarted is found again), `one_way` later in
    /// each direction.
    pub async fn bind(
        listen: SocketAddr,
        upstream: String,
        one_way: Duration,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let delays = Arc::new(Delays {
            default_us: AtomicU64::new(one_way.as_micros() as u64),
            by_source: RwLock::default(),
        });
        let open = Arc::new(std::sync::Mutex::new(Vec::new()));
        let task = tokio::spawn(accept(listener, upstream, delays.clone(), open.clone()));
        Ok(Self {
            addr,
            delays,
            open,
            task: Arc::new(task),
        })
    }

    /// A proxy on a free loopback port (tests).
    pub async fn start(upstream: SocketAddr, one_way: Duration) -> Self {
        Self::bind(([127, 0, 0, 1], 0).into(), upstream.to_string(), one_way)
            .await
            .expect("binding a loopback port for the delay proxy")
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Change the default one-way delay (callers without a delay of their own), also on
    /// open connections, for bytes read from now on.
    pub fn set_delay(&self, one_way: Duration) {
        let us = one_way.as_micros() as u64;
        self.delays.default_us.store(us, Ordering::Relaxed);
        let by_source = self
            .delays
            .by_source
            .read()
            .unwrap_or_else(|e| e.into_inner());
        self.update_open(|source| !by_source.contains_key(&source), us);
    }

    /// Set the one-way delay of connections from `source`.
    pub fn set_delay_from(&self, source: IpAddr, one_way: Duration) {
        let us = one_way.as_micros() as u64;
        self.delays
            .by_source
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source, us);
        self.update_open(|s| s == source, us);
    }

    fn update_open(&self, applies: impl Fn(IpAddr) -> bool, us: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|(source, delay)| match delay.upgrade() {
            Some(delay) => {
                if applies(*source) {
                    delay.store(us, Ordering::Relaxed);
                }
                true
            }
            None => false,
        });
    }

    /// Stop accepting (open connections run on until they close).
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// A one-way delay given in ms (flags, the control endpoint): 0 to 60 000 ms.
pub fn one_way(ms: f64) -> Result<Duration, String> {
    if ms.is_finite() && (0.0..=60_000.0).contains(&ms) {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        Err(format!("{ms}: a one-way delay is 0-60000 ms"))
    }
}

/// A change of delay sent to the control endpoint (`PUT /delay`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DelayChange {
    /// New one-way delay, ms.
    one_way_ms: f64,
    /// Only for connections from this address; absent: the default.
    from: Option<IpAddr>,
}

/// The control endpoint of a proxy run as its own process (`forewarm proxy --control`):
/// `PUT /delay` with `{"one_way_ms": 250}` or `{"one_way_ms": 250, "from": "10.0.0.3"}`.
pub async fn serve_control(listener: TcpListener, proxy: DelayProxy) -> std::io::Result<()> {
    use axum::http::StatusCode;
    use axum::routing::put;
    let routes = axum::Router::new()
        .route(
            "/delay",
            put(
                |axum::extract::State(proxy): axum::extract::State<DelayProxy>,
                 body: axum::body::Bytes| async move {
                    let change: DelayChange = serde_json::from_slice(&body).map_err(|e| {
                        (
                            StatusCode::BAD_REQUEST,
                            format!("expected {{\"one_way_ms\": N, \"from\"?: IP}}: {e}"),
                        )
                    })?;
                    let d = one_way(change.one_way_ms)
                        .map_err(|e| (StatusCode::BAD_REQUEST, format!("one_way_ms {e}")))?;
                    match change.from {
                        Some(ip) => proxy.set_delay_from(ip, d),
                        None => proxy.set_delay(d),
                    }
                    Ok::<_, (StatusCode, String)>(StatusCode::NO_CONTENT)
                },
            ),
        )
        .with_state(proxy);
    axum::serve(listener, routes).await
}

async fn accept(
    listener: TcpListener,
    upstream: String,
    delays: Arc<Delays>,
    open: OpenConnections,
) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait, do not spin.
                tracing::warn!("delay proxy accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let delay = delays.for_source(peer.ip());
        {
            let mut open = open.lock().unwrap_or_else(|e| e.into_inner());
            if open.len() >= 256 {
                // Forget closed connections now and then, not only when a delay changes.
                open.retain(|(_, d)| d.strong_count() > 0);
            }
            open.push((peer.ip(), Arc::downgrade(&delay)));
        }
        let upstream = upstream.clone();
        tokio::spawn(async move {
            // Connecting is delayed too: a SYN crosses the distance like any byte.
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(delayed_pipe(cr, sw, delay.clone()));
            delayed_pipe(sr, cw, delay).await;
        });
    }
}

/// Copy `from` to `to`, each chunk written `delay` after it was read, in order.
async fn delayed_pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay_us: Arc<AtomicU64>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let delay = Duration::from_micros(delay_us.load(Ordering::Relaxed));
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server, the proxy in front of it at `one_way`, and the time of one round trip
    /// from `source`.
    async fn echo_rtt(proxy: &DelayProxy, source: IpAddr) -> Duration {
        let socket = tokio::net::TcpSocket::new_v4().expect("test setup");
        socket.bind(SocketAddr::new(source, 0)).expect("test setup");
        let mut s = socket.connect(proxy.addr()).await.expect("test setup");
        let begun = std::time::Instant::now();
        s.write_all(b"ping").await.expect("test setup");
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.expect("test setup");
        assert_eq!(&buf, b"ping");
        begun.elapsed()
    }

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("test setup");
        let addr = l.local_addr().expect("test setup");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn t01_delay_depends_on_the_caller_and_can_change() {
        let upstream = echo_server().await;
        let proxy = DelayProxy::start(upstream, Duration::from_millis(5)).await;
        let far: IpAddr = [127, 0, 0, 23].into();
        proxy.set_delay_from(far, Duration::from_millis(60));
        let near = echo_rtt(&proxy, [127, 0, 0, 1].into()).await;
        let remote = echo_rtt(&proxy, far).await;
        // Lower bounds only: a delay is never shorter than asked (2 × one way per round trip).
        assert!(near >= Duration::from_millis(10), "{near:?}");
        assert!(remote >= Duration::from_millis(120), "{remote:?}");
        proxy.set_delay_from(far, Duration::from_millis(1));
        proxy.set_delay(Duration::from_millis(40));
        assert!(echo_rtt(&proxy, [127, 0, 0, 1].into()).await >= Duration::from_millis(80));
        // A caller with its own delay keeps it whatever the default.
        let fast = echo_rtt(&proxy, far).await;
        assert!(fast < Duration::from_millis(80), "{fast:?}");
    }
}
