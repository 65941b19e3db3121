//! A TCP proxy to the test database's server, for tests of Postgres outages: the admin reaches
//! its database through it, and the test can cut it. While cut, it closes every open connection
//! and every new one at once, as a stopped or restarting server looks to its clients; other
//! tests sharing the server see nothing. It can also break one connection in the middle of a
//! statement ([`Proxy::break_next_statement`]), as a server restart or a network fault does to
//! a request in flight.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to the test database's server that can be cut and restored.
pub struct Proxy {
    /// Where the proxy listens.
    pub address: SocketAddr,
    cut: watch::Sender<bool>,
    breaker: Arc<Breaker>,
}

/// One armed break: the next statement on a connection opened before arming closes that
/// connection instead of reaching the server.
#[derive(Default)]
struct Breaker {
    armed: AtomicBool,
    broken: AtomicUsize,
}

impl Breaker {
    /// Whether this chunk from the client must break its connection. A statement starts with
    /// Parse, Bind or Query; the pool's liveness check before handing a connection out is a
    /// lone Sync (`S`), which passes, so the break lands on the request's own statement.
    fn breaks(&self, opened_armed: bool, chunk: &[u8]) -> bool {
        let statement = matches!(chunk.first(), Some(b'P' | b'B' | b'Q'));
        let breaks = statement
            && !opened_armed
            && self
                .armed
                .compare_exchange(true, false, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        if breaks {
            self.broken.fetch_add(1, Ordering::SeqCst);
        }
        breaks
    }
}

impl Proxy {
    /// Forwards a fresh port of 127.0.0.1 to `target` (`host:port`).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, cut_state) = watch::channel(false);
        let breaker = Arc::new(Breaker::default());
        let breakers = breaker.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if *cut_state.borrow() {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut cut_state = cut_state.clone();
                let breaker = breakers.clone();
                let opened_armed = breaker.armed.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut from_server, mut to_server) = server.into_split();
                    let (mut from_client, mut to_client) = client.split();
                    let upstream = async {
                        let mut buffer = vec![0; 64 * 1024];
                        loop {
                            let n = from_client.read(&mut buffer).await.unwrap_or(0);
                            if n == 0 || breaker.breaks(opened_armed, &buffer[..n]) {
                                return;
                            }
                            if to_server.write_all(&buffer[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    // Ends (closing both sides) when either side closes, at a break, or at
                    // the cut.
                    tokio::select! {
                        _ = upstream => {}
                        _ = tokio::io::copy(&mut from_server, &mut to_client) => {}
                        _ = cut_state.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy {
            address,
            cut,
            breaker,
        }
    }

    /// Arms a break: the next statement sent on a connection that is open now closes that
    /// connection, as if the server had gone in the middle of it.
    pub fn break_next_statement(&self) {
        self.breaker.armed.store(true, Ordering::SeqCst);
    }

    /// How many connections a break closed.
    pub fn broken(&self) -> usize {
        self.breaker.broken.load(Ordering::SeqCst)
    }

    /// Closes every connection, and refuses new ones until [`Proxy::restore`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

/// `database_url` with its host and port replaced by the proxy's, and the proxy.
pub async fn through_proxy(database_url: &str) -> (String, Proxy) {
    let mut url = reqwest::Url::parse(database_url).expect("a database URL");
    let target = format!(
        "{}:{}",
        url.host_str().expect("a host in the database URL"),
        url.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.address.port())).unwrap();
    (url.to_string(), proxy)
}
