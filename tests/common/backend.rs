//! Echo backends on free loopback ports (which can be killed and brought
//! back on the same port), and a backend URL that refuses connections.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::echo::{serve, Echo};

/// An echo backend on a free loopback port, stopped on drop.
pub struct Backend {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, as the gateway's pools take it.
    pub url: String,
    echo: Echo,
}

impl Backend {
    /// Starts an echo backend whose answers carry `"backend": name`.
    pub async fn start(name: &str) -> Backend {
        Backend::start_slow(name, Duration::ZERO).await
    }

    /// Starts an echo backend on `addr` (e.g. `127.0.0.2:0`: any loopback
    /// address works on Linux); `None` if the address is taken.
    pub async fn start_at(addr: SocketAddr, name: &str) -> Option<Backend> {
        let listener = TcpListener::bind(addr).await.ok()?;
        Some(Backend::spawn(listener, name, Duration::ZERO))
    }

    /// Starts an echo backend that takes `delay` over every answer.
    pub async fn start_slow(name: &str, delay: Duration) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo backend");
        Backend::spawn(listener, name, delay)
    }

    fn spawn(listener: TcpListener, name: &str, delay: Duration) -> Backend {
        let addr = listener.local_addr().expect("echo backend address");
        let echo = Echo {
            name: name.to_owned(),
            delay,
            stop: CancellationToken::new(),
            busy: Default::default(),
        };
        tokio::spawn(serve(listener, echo.clone()));
        Backend {
            addr,
            url: format!("http://{addr}"),
            echo,
        }
    }

    /// The most requests this backend has answered at once.
    pub fn peak_in_flight(&self) -> usize {
        self.echo.busy.peak()
    }

    /// The URL as a YAML flow item, for [`super::pool_config`].
    pub fn yaml(&self) -> String {
        format!("\"{}\"", self.url)
    }

    /// Kills the backend as a crash would: the port refuses connections and
    /// every open connection (idle, mid-request or upgraded) is dropped.
    pub fn kill(&mut self) {
        self.echo.stop.cancel();
    }

    /// Starts the backend again on the same port after [`Backend::kill`].
    pub async fn restart(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "cannot listen on {} again: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.echo.stop = CancellationToken::new();
        tokio::spawn(serve(listener, self.echo.clone()));
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.echo.stop.cancel();
    }
}

/// The URL of a port nobody listens on: connections to it are refused.
pub fn dead_backend_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("free port address");
    drop(listener);
    format!("http://{addr}")
}
