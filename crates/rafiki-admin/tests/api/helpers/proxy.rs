//! A TCP proxy to the test database's server, for tests of Postgres outages: the admin reaches
//! its database through it, and the test can cut it. While cut, it closes every open connection
//! and every new one at once, as a stopped or restarting server looks to its clients; other
//! tests sharing the server see nothing.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to the test database's server that can be cut and restored.
pub struct Proxy {
    /// Where the proxy listens.
    pub address: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    /// Forwards a fresh port of 127.0.0.1 to `target` (`host:port`).
    pub async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, cut_state) = watch::channel(false);
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
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    // Ends (closing both sides) when either side closes, or at the cut.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_state.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { address, cut }
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
