//! A TCP proxy in front of a server that ferry's connections pass through, with network faults switched on and off
//! while it runs: added latency, a bandwidth cap, resetting every open connection, and being down (new connections
//! refused, open ones cut) or a blackhole (connections accepted, nothing forwarded).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The network conditions the proxy applies now.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Conditions {
    /// Added to every chunk forwarded, each way.
    pub latency_ms: u64,
    /// Bytes per second each way per connection (0: no cap).
    pub bandwidth_bytes_per_s: u64,
    /// New connections are closed at once and open ones cut.
    pub down: bool,
    /// Connections are accepted and held, nothing is forwarded (a dropped route: clients hang until their timeouts).
    pub blackhole: bool,
}

struct Shared {
    conditions: Mutex<Conditions>,
    /// Raised by `reset` (and by going down): connections opened before close.
    generation: AtomicU64,
    stopped: AtomicBool,
    connections: AtomicU64,
}

/// A running proxy; dropping it stops it and closes every connection.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream_host:upstream_port`.
    pub async fn start(upstream_host: &str, upstream_port: u16) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            conditions: Mutex::new(Conditions::default()),
            generation: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        });
        let upstream = format!("{upstream_host}:{upstream_port}");
        let s = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if s.stopped.load(Ordering::Relaxed) {
                    return;
                }
                let now = s.conditions();
                if now.down {
                    drop(client);
                    continue;
                }
                s.connections.fetch_add(1, Ordering::Relaxed);
                let (s2, up) = (s.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &up, s2).await;
                });
            }
        });
        Ok(Proxy { port, shared, task })
    }

    pub fn conditions(&self) -> Conditions {
        self.shared.conditions()
    }

    /// Applies `c`; going down cuts the open connections.
    pub fn set(&self, c: Conditions) {
        let down = c.down;
        if let Ok(mut g) = self.shared.conditions.lock() {
            *g = c;
        }
        if down {
            self.reset();
        }
    }

    /// Back to a clean network.
    pub fn heal(&self) {
        self.set(Conditions::default());
    }

    /// Cuts every open connection (the clients see a reset); new ones go through.
    pub fn reset(&self) {
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        self.shared.generation.fetch_add(1, Ordering::Relaxed);
        self.task.abort();
    }
}

impl Shared {
    fn conditions(&self) -> Conditions {
        self.conditions
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }
}

async fn serve(client: TcpStream, upstream: &str, s: Arc<Shared>) -> std::io::Result<()> {
    let born = s.generation.load(Ordering::Relaxed);
    let server = TcpStream::connect(upstream).await?;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let a = tokio::spawn(pipe(cr, sw, s.clone(), born));
    let b = tokio::spawn(pipe(sr, cw, s.clone(), born));
    // Either direction ending (EOF, error, reset) ends both.
    tokio::select! {
        _ = a => {}
        _ = b => {}
    }
    Ok(())
}

/// Forwards one direction until EOF or until the proxy cuts the connection.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    s: Arc<Shared>,
    born: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let cut = |s: &Shared| {
        s.generation.load(Ordering::Relaxed) != born || s.stopped.load(Ordering::Relaxed)
    };
    loop {
        // Wake up now and then to notice a reset even when nothing flows.
        let n = match tokio::time::timeout(Duration::from_millis(100), from.read(&mut buf)).await {
            Err(_) => {
                if cut(&s) {
                    return;
                }
                continue;
            }
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        let mut c = s.conditions();
        // A blackhole holds the data (and the connection) until it heals or the connection is cut.
        while c.blackhole {
            if cut(&s) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            c = s.conditions();
        }
        if cut(&s) || c.down {
            return;
        }
        if c.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(c.latency_ms)).await;
        }
        let mut sent = 0;
        let started = Instant::now();
        while sent < n {
            let piece = if c.bandwidth_bytes_per_s > 0 {
                // Slices of about 10 ms worth of bytes, each sent no earlier than the cap allows.
                let slice = (c.bandwidth_bytes_per_s / 100).max(1) as usize;
                let due = Duration::from_secs_f64((sent as f64) / c.bandwidth_bytes_per_s as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
                slice.min(n - sent)
            } else {
                n - sent
            };
            if to.write_all(&buf[sent..sent + piece]).await.is_err() {
                return;
            }
            sent += piece;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut b = [0u8; 4096];
                    while let Ok(n) = c.read(&mut b).await {
                        if n == 0 || c.write_all(&b[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        port
    }

    async fn roundtrip(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut c = TcpStream::connect(("127.0.0.1", port)).await?;
        c.write_all(data).await?;
        let mut out = vec![0u8; data.len()];
        tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut out))
            .await
            .map_err(|_| std::io::Error::other("timeout"))??;
        Ok(out)
    }

    #[tokio::test]
    async fn forwards_delays_caps_and_goes_down() {
        let up = echo_server().await;
        let p = Proxy::start("127.0.0.1", up).await.expect("proxy");
        assert_eq!(roundtrip(p.port, b"hello").await.expect("echo"), b"hello");

        p.set(Conditions {
            latency_ms: 150,
            ..Default::default()
        });
        let t = Instant::now();
        roundtrip(p.port, b"x").await.expect("echo");
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "both ways delayed: {:?}",
            t.elapsed()
        );

        p.set(Conditions {
            bandwidth_bytes_per_s: 20_000,
            ..Default::default()
        });
        let t = Instant::now();
        roundtrip(p.port, &[7u8; 10_000]).await.expect("echo");
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "capped: {:?}",
            t.elapsed()
        );

        p.set(Conditions {
            down: true,
            ..Default::default()
        });
        assert!(roundtrip(p.port, b"x").await.is_err(), "down refuses");
        p.heal();
        assert_eq!(roundtrip(p.port, b"back").await.expect("healed"), b"back");
    }

    #[tokio::test]
    async fn reset_cuts_open_connections() {
        let up = echo_server().await;
        let p = Proxy::start("127.0.0.1", up).await.expect("proxy");
        let mut c = TcpStream::connect(("127.0.0.1", p.port))
            .await
            .expect("connect");
        c.write_all(b"a").await.expect("write");
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.expect("read");
        p.reset();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut rest))
            .await
            .expect("closed within 2 s");
        assert!(n.map(|n| n == 0).unwrap_or(true));
    }
}
