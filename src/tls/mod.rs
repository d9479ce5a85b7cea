//! TLS termination for the data path: rustls with certificates chosen by SNI
//! (static PEM files first, then certificates obtained on demand from an ACME
//! CA for registered domains), the HTTP-01 challenge answers, and the facts a
//! TLS connection hands to the request phases (its SNI name).

pub mod acme;
pub mod alpn;
pub mod certs;
pub mod challenge;
pub mod resolver;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rustls::server::Acceptor;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::config::TlsConfig;
use crate::store::Store;
use crate::tenant::host::{normalize_host, HostBuf};
use alpn::AlpnChallenges;
use challenge::Challenges;
use resolver::CertResolver;

/// What can go wrong setting up or running TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate {what}: {reason}")]
    Certificate { what: String, reason: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS setup: {0}")]
    Setup(#[from] rustls::Error),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
    #[error("TLS handshake timed out")]
    HandshakeTimeout,
    /// A TLS-ALPN-01 validation connection: answered, nothing to serve.
    #[error("answered an ACME tls-alpn-01 challenge")]
    AlpnChallengeAnswered,
}

/// Obtains a certificate for a name during its first handshake (ACME).
#[async_trait]
pub trait OnDemand: Send + Sync + 'static {
    /// Returns once `name` has a certificate in the resolver, or it is known
    /// that it will not get one now (unknown or suspended domain, CA error,
    /// backoff); the handshake then fails.
    async fn ensure(&self, name: &str);

    /// Whether `name` (an SNI name or a Host) may have a certificate: the
    /// ask rule, answered from the routing cache. Gates the store reads of
    /// challenge answers so that junk names never reach the store.
    async fn may_issue(&self, name: &str) -> bool;
}

/// The HTTPS side of the data path, shared by every worker.
pub struct TlsFront {
    server_config: Arc<ServerConfig>,
    pub resolver: Arc<CertResolver>,
    pub challenges: Arc<Challenges>,
    pub alpn: Arc<AlpnChallenges>,
    pub provider: Arc<rustls::crypto::CryptoProvider>,
    on_demand: Option<Arc<dyn OnDemand>>,
    /// Where pending challenge answers of every replica are published.
    shared_challenges: Option<Arc<dyn Store>>,
    /// Answer plain-HTTP requests with a redirect to HTTPS.
    pub redirect_http: bool,
    /// Port of the HTTPS listener, for redirects (443 is left out of URLs).
    pub https_port: u16,
    handshake_timeout: Duration,
    strip_www: bool,
}

impl TlsFront {
    /// Loads the static certificates and builds the rustls configuration
    /// (TLS 1.2 and 1.3, ALPN h2 and http/1.1).
    pub fn build(config: &TlsConfig, strip_www: bool) -> Result<TlsFront, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut loaded = Vec::with_capacity(config.certificates.len());
        for files in &config.certificates {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|source| TlsError::Read {
                    path: path.display().to_string(),
                    source,
                })
            };
            let cert = read(&files.cert)?;
            let key = read(&files.key)?;
            let what = files.cert.display().to_string();
            loaded.push(certs::load_pem(&cert, &key, &provider, &what)?);
        }
        let resolver = Arc::new(CertResolver::with_static(loaded));
        let mut server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsFront {
            server_config: Arc::new(server_config),
            resolver,
            challenges: Arc::new(Challenges::default()),
            alpn: Arc::new(AlpnChallenges::default()),
            provider,
            on_demand: None,
            shared_challenges: None,
            redirect_http: config.redirect_http,
            https_port: config.listen.port(),
            handshake_timeout: config.handshake_timeout,
            strip_www,
        })
    }

    /// Lets first handshakes for names without a certificate obtain one,
    /// and answers challenges of any replica's orders published in `store`.
    pub fn set_on_demand(&mut self, on_demand: Arc<dyn OnDemand>, store: Arc<dyn Store>) {
        self.on_demand = Some(on_demand);
        self.shared_challenges = Some(store);
    }

    /// The HTTP-01 answer for a path under the challenge prefix: this
    /// replica's pending tokens, then those other replicas published (for a
    /// `host` that may have a certificate).
    pub async fn http01_answer(&self, path: &str, host: Option<&str>) -> Option<String> {
        if let Some(answer) = self.challenges.answer(path) {
            return Some(answer);
        }
        let token = path.strip_prefix(challenge::HTTP01_PREFIX)?;
        let store = self.shared_challenges.as_ref()?;
        if !challenge::is_token(token) || !self.on_demand.as_ref()?.may_issue(host?).await {
            return None;
        }
        let answer = store.get_acme_challenge(token).await.ok()??;
        answer.starts_with(token).then_some(answer)
    }

    /// The TLS-ALPN-01 answer for `name`: this replica's, else one another
    /// replica published.
    async fn alpn_answer(&self, name: &str) -> Option<Arc<ServerConfig>> {
        if let Some(config) = self.alpn.config_for(name) {
            return Some(config);
        }
        let store = self.shared_challenges.as_ref()?;
        if !self.on_demand.as_ref()?.may_issue(name).await {
            return None;
        }
        let key_authorization = store
            .get_acme_challenge(&challenge::alpn_key(name))
            .await
            .ok()??;
        let digest = alpn::digest(&key_authorization);
        alpn::answer_config(name, &digest, &self.provider).ok()
    }

    /// Runs the server handshake within the handshake timeout. Returns the
    /// stream and the SNI name normalised like a Host header.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Option<HostBuf>), TlsError> {
        tokio::time::timeout(self.handshake_timeout, self.handshake(stream))
            .await
            .map_err(|_| TlsError::HandshakeTimeout)?
    }

    async fn handshake(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Option<HostBuf>), TlsError> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
            .await
            .map_err(TlsError::Handshake)?;
        let name = start
            .client_hello()
            .server_name()
            .map(|name| name.trim_end_matches('.').to_ascii_lowercase());
        if let Some(name) = name.as_deref() {
            if alpn::offers_acme(&start.client_hello()) {
                if let Some(config) = self.alpn_answer(name).await {
                    start
                        .into_stream(config)
                        .await
                        .map_err(TlsError::Handshake)?;
                    return Err(TlsError::AlpnChallengeAnswered);
                }
            }
        }
        if let (Some(name), Some(on_demand)) = (&name, &self.on_demand) {
            if !self.resolver.has(name) {
                on_demand.ensure(name).await;
            }
        }
        let stream = start
            .into_stream(self.server_config.clone())
            .await
            .map_err(TlsError::Handshake)?;
        let sni = name.and_then(|name| normalize_host(name.as_bytes(), self.strip_www).ok());
        Ok((stream, sni))
    }
}
