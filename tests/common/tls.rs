//! HTTPS for the tests: a throwaway CA (rcgen) that signs leaf certificates
//! written as PEM files, and a client that sets the SNI name and the Host
//! independently, over HTTP/1.1 or HTTP/2 as ALPN decides.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;

use super::{Reply, REQUEST_TIMEOUT};

/// A CA that signs test certificates; clients trust it through [`TestCa::roots`].
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            der: cert.der().clone(),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes a certificate for `names` (e.g. `*.app.example.com`) and its key
    /// to `dir/{file}.crt` and `dir/{file}.key`; returns both paths.
    pub fn leaf(&self, names: &[&str], dir: &Path, file: &str) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let params = CertificateParams::new(names).expect("leaf params");
        self.sign(params, dir, file)
    }

    /// Like [`TestCa::leaf`], for a client certificate (mTLS): `clientAuth` usage.
    pub fn client_leaf(&self, name: &str, dir: &Path, file: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec![name.to_owned()]).expect("client params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, dir, file)
    }

    fn sign(&self, params: CertificateParams, dir: &Path, file: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        let (crt, pem_key) = (
            dir.join(format!("{file}.crt")),
            dir.join(format!("{file}.key")),
        );
        std::fs::write(&crt, cert.pem()).expect("write certificate");
        std::fs::write(&pem_key, key.serialize_pem()).expect("write key");
        (crt, pem_key)
    }

    /// The CA certificate as PEM (for a server that wants a root file).
    pub fn root_pem(&self) -> &str {
        &self.pem
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("CA root");
        roots
    }
}

/// An HTTPS answer, the protocol ALPN chose and the server's leaf certificate.
pub struct HttpsReply {
    pub reply: Reply,
    pub alpn: Option<Vec<u8>>,
    /// DER of the certificate the server presented.
    pub leaf: Vec<u8>,
}

/// `GET path` over a new TLS connection to `addr` with the SNI name `sni`
/// and the Host `host`; `Err` carries a failed handshake or request.
pub async fn https_get(
    addr: SocketAddr,
    roots: &RootCertStore,
    sni: &str,
    host: &str,
    path: &str,
) -> Result<HttpsReply, String> {
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        https_get_inner(addr, roots, sni, host, path),
    )
    .await
    .map_err(|_| "timed out".to_string())?
}

async fn https_get_inner(
    addr: SocketAddr,
    roots: &RootCertStore,
    sni: &str,
    host: &str,
    path: &str,
) -> Result<HttpsReply, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(sni.to_owned()).map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.to_vec())
        .unwrap_or_default();
    let io = TokioIo::new(tls);
    let request = |h2: bool| {
        let builder = Request::get(if h2 {
            format!("https://{host}{path}")
        } else {
            path.to_owned()
        });
        let builder = if h2 {
            builder
        } else {
            builder.header("host", host)
        };
        builder.body(Empty::<Bytes>::new()).expect("request")
    };
    let response = if alpn.as_deref() == Some(b"h2") {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(request(true)).await
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(request(false)).await
    }
    .map_err(|e| format!("request: {e}"))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(HttpsReply {
        reply: Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        },
        alpn,
        leaf,
    })
}
