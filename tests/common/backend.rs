//! Echo backends on free loopback ports, and a backend URL that refuses
//! connections.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use super::serve_echo;

/// An echo backend on a free loopback port, stopped on drop.
pub struct Backend {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, as the gateway's pools take it.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    /// Starts an echo backend whose answers carry `"backend": name`.
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind echo backend");
        let addr = listener.local_addr().expect("echo backend address");
        let task = tokio::spawn(serve_echo(listener, name.to_owned()));
        Backend {
            addr,
            url: format!("http://{addr}"),
            task,
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The URL of a port nobody listens on: connections to it are refused.
pub fn dead_backend_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let addr = listener.local_addr().expect("free port address");
    drop(listener);
    format!("http://{addr}")
}
