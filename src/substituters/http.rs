//! `GET <cache>/nix-cache-info` over HTTP/1.1 (hyper's client connection),
//! with a bounded body. `https://` goes through rustls, trusting
//! `NIX_SSL_CERT_FILE` when set (as Nix's curl does), else the system's CAs.

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The most of a `nix-cache-info` read (real ones are under 100 bytes).
pub(super) const MAX_BODY: usize = 64 * 1024;

/// What the server answered.
#[derive(Debug)]
pub(super) struct Fetched {
    pub(super) status: StatusCode,
    pub(super) body: Vec<u8>,
}

/// Fetch `url` (http or https). Errors are one line, for the report.
pub(super) async fn get(url: &url::Url) -> Result<Fetched, String> {
    let host = url.host_str().ok_or("the URL has no host")?.to_string();
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let tcp = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    match url.scheme() {
        "http" => request(tcp, url).await,
        "https" => {
            let tls = tls_connector()?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("{host} is not a TLS server name: {e}"))?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            request(stream, url).await
        }
        other => Err(format!("{other}:// is not HTTP")),
    }
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    // Nix's own variable for its CA bundle, as its curl reads it; else the
    // system's (which honours SSL_CERT_FILE).
    match std::env::var_os("NIX_SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(&file)
                .map_err(|e| format!("NIX_SSL_CERT_FILE {}: {e}", file.to_string_lossy()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("NIX_SSL_CERT_FILE: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("NIX_SSL_CERT_FILE: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (_, _) = roots.add_parsable_certificates(found.certs);
        }
    }
    // The one crypto provider built in (ring) is the default.
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

async fn request<S>(stream: S, url: &url::Url) -> Result<Fetched, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // The connection is driven beside the request and dropped with it.
    let connection = tokio::spawn(connection);
    let authority = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };
    let request = Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("rbtop/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Fetched { status, body })
    }
    .await;
    connection.abort();
    result
}
