//! A TCP proxy in front of PostgreSQL that loses the answer to one COMMIT:
//! once armed with a statement, the next `COMMIT` of a connection that sent
//! it is forwarded, and the connection is cut before the server's answer
//! gets back. The server has
//! committed; the client cannot know (a network failure at the worst time).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The statement (its start) whose transaction loses its COMMIT's answer.
type Armed = Arc<Mutex<Option<Vec<u8>>>>;

pub struct CommitCutter {
    port: u16,
    armed: Armed,
    cuts: Arc<AtomicUsize>,
}

impl CommitCutter {
    /// Listens on a free loopback port and relays to PostgreSQL at `upstream_port`.
    pub async fn start(upstream_port: u16) -> CommitCutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let armed = Armed::default();
        let cuts = Arc::new(AtomicUsize::new(0));
        let (armed_, cuts_) = (armed.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                    continue;
                };
                tokio::spawn(relay(client, server, armed_.clone(), cuts_.clone()));
            }
        });
        CommitCutter { port, armed, cuts }
    }

    /// `url` (a database on the proxied server) through this proxy.
    pub fn url(&self, url: &str) -> String {
        let (head, database) = url.rsplit_once('/').expect("a database URL");
        let (host, _port) = head.rsplit_once(':').expect("a URL with a port");
        format!("{host}:{}/{database}", self.port)
    }

    /// Cuts the connection at the next COMMIT after `statement` (once).
    pub fn arm(&self, statement: &str) {
        *self.armed.lock().unwrap() = Some(statement.as_bytes().to_vec());
    }

    /// How many answers were lost so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn relay(client: TcpStream, server: TcpStream, armed: Armed, cuts: Arc<AtomicUsize>) {
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let cut = Arc::new(AtomicBool::new(false));
    let answers = tokio::spawn({
        let cut = cut.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = server_in.read(&mut buf).await {
                if n == 0 || cut.load(Ordering::SeqCst) {
                    break;
                }
                if client_out.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent_statement = false;
    while let Ok(n) = client_in.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let cut_now = {
            let mut armed = armed.lock().unwrap();
            if let Some(statement) = armed.as_deref() {
                sent_statement |= contains(chunk, statement);
            }
            let now = sent_statement && armed.is_some() && contains(chunk, b"COMMIT\0");
            if now {
                *armed = None;
            }
            now
        };
        if cut_now {
            // Nothing more reaches the client, not even this COMMIT's answer.
            cut.store(true, Ordering::SeqCst);
            cuts.fetch_add(1, Ordering::SeqCst);
            let _ = server_out.write_all(chunk).await;
            tokio::time::sleep(Duration::from_millis(300)).await; // the server commits
            break;
        }
        if server_out.write_all(chunk).await.is_err() {
            break;
        }
    }
    // Dropping the halves closes both connections.
    answers.abort();
}
