//! Serving HTTPS (`TLSCertFile`/`TLSKeyFile`) with rustls: a listener
//! whose connections are already through the TLS handshake, so the plain
//! server loop (graceful shutdown included) serves them unchanged. As in
//! Athens, on `Port` and on `UnixSocket` alike.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to finish the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server loop.
const READY_QUEUE: usize = 64;
/// Handshakes in progress at once unless told otherwise.
pub const DEFAULT_MAX_HANDSHAKES: usize = 1024;

/// Builds the TLS acceptor from PEM files: a certificate chain and a
/// private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_acceptor(cert_file: &Path, key_file: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("reading TLSCertFile {}", cert_file.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing TLSCertFile {}", cert_file.display()))?;
    if certs.is_empty() {
        anyhow::bail!("TLSCertFile {} holds no certificate", cert_file.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("reading TLSKeyFile {}", key_file.display()))?;
    // Both ring and aws-lc-rs are linked into the binary, so the provider
    // is named rather than left to rustls' process default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLSCertFile and TLSKeyFile do not form a usable certificate and key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A bound socket whose connections [`TlsListener`] accepts: TCP, or a
/// Unix domain socket.
pub trait RawListener: Send + 'static {
    /// One accepted connection, before the handshake.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The peer's address, as handlers see it.
    type Addr: Clone + Send + Sync + std::fmt::Debug + 'static;

    /// The next connection, or the error accepting it.
    fn accept_raw(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Addr)>> + Send;

    /// The address the socket is bound to.
    fn bound_addr(&self) -> std::io::Result<Self::Addr>;
}

impl RawListener for TcpListener {
    type Stream = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    fn accept_raw(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Addr)>> + Send {
        self.accept()
    }

    fn bound_addr(&self) -> std::io::Result<Self::Addr> {
        self.local_addr()
    }
}

#[cfg(unix)]
impl RawListener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    type Addr = tokio::net::unix::SocketAddr;

    fn accept_raw(
        &self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, Self::Addr)>> + Send {
        self.accept()
    }

    fn bound_addr(&self) -> std::io::Result<Self::Addr> {
        self.local_addr()
    }
}

/// A listener that hands out connections after their TLS handshake.
/// Handshakes run concurrently in their own tasks, so a slow client does
/// not hold up others.
pub struct TlsListener<L: RawListener = TcpListener> {
    ready: mpsc::Receiver<(TlsStream<L::Stream>, L::Addr)>,
    local_addr: L::Addr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl<L: RawListener> TlsListener<L> {
    /// Wraps a bound `listener`, terminating TLS with `acceptor`, with at
    /// most [`DEFAULT_MAX_HANDSHAKES`] handshakes at once.
    pub fn new(listener: L, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        Self::with_limit(listener, acceptor, DEFAULT_MAX_HANDSHAKES)
    }

    /// [`TlsListener::new`] with at most `max_handshakes` connections
    /// accepted and not yet handed to the server (handshaking or waiting
    /// in the ready queue), so a flood of connections that never finish
    /// their handshake holds a bounded number of sockets.
    pub fn with_limit(
        listener: L,
        acceptor: TlsAcceptor,
        max_handshakes: usize,
    ) -> std::io::Result<Self> {
        let local_addr = listener.bound_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let handshakes = Arc::new(Semaphore::new(max_handshakes.max(1)));
        let accept_task = tokio::spawn(async move {
            loop {
                // Never closed.
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match listener.accept_raw().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Usually too many open files: back off briefly.
                        tracing::warn!(error = %e, "accepting connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(?peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local_addr,
            accept_task,
        })
    }
}

impl<L: RawListener> Drop for TlsListener<L> {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl<L: RawListener> axum::serve::Listener for TlsListener<L> {
    type Io = TlsStream<L::Stream>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept task only ends when aborted, i.e. never while
            // the listener is alive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use axum::Router;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBnDCCAUGgAwIBAgIUCkatu0H8Dm2P9S09IV98vnCWfiswCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjA0MzEyNFoYDzIxMjYxMDI5\nMDQzMTI0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAASLLFaEQyJJNnuQexNJL9Db3tCGfRQi4R911sxQlGWPjOV6LxiMRasR\nPEkWbMYAnQqNR8cqf57g/D9FTuZUUFfAo28wbTAdBgNVHQ4EFgQUSb282lmU1DW4\nN6VFglBPoe+eIxAwHwYDVR0jBBgwFoAUSb282lmU1DW4N6VFglBPoe+eIxAwDwYD\nVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI\nzj0EAwIDSQAwRgIhAMpA0x0XgdYQ+rlKU5lOuC5ksIvUd46lYwF3YLJ47tYVAiEA\n4aSUnw2aOmDPsoSl0spmYLkPILV2zuUE94qQJBK0itE=\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxH9vOXBU41OJS/y7\nxUTeqHVGIu/iftneWHIBeH/yrzihRANCAASLLFaEQyJJNnuQexNJL9Db3tCGfRQi\n4R911sxQlGWPjOV6LxiMRasRPEkWbMYAnQqNR8cqf57g/D9FTuZUUFfA\n-----END PRIVATE KEY-----\n";

    fn write_pair(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, CERT).unwrap();
        std::fs::write(&key, KEY).unwrap();
        (cert, key)
    }

    #[tokio::test]
    async fn serves_https_with_the_configured_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path());
        let acceptor = load_acceptor(&cert, &key).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener = TlsListener::new(tcp, acceptor).unwrap();
        let addr = listener.local_addr;
        let app = Router::new().route("/healthz", get(|| async { "ok" }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(super::super::serve_listener(
            listener,
            app,
            async {
                let _ = stop_rx.await;
            },
            Duration::from_secs(1),
        ));
        // The test certificate is self-signed; what matters here is that
        // the connection is TLS, made with the configured certificate.
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .tls_info(true)
            .build()
            .unwrap();
        let response = client
            .get(format!("https://127.0.0.1:{}/healthz", addr.port()))
            .send()
            .await
            .unwrap();
        let tls = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .map(|der| der.to_vec())
            .expect("the response came over TLS");
        let expected = CertificateDer::pem_slice_iter(CERT.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(tls, expected.as_ref());
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
        // Plain HTTP on the TLS port gets no answer.
        let plain = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{}/healthz", addr.port()))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(plain.is_err());
        let _ = stop_tx.send(());
        server.await.unwrap().unwrap();
    }

    #[test]
    fn unusable_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path());
        let missing = dir.path().join("missing.pem");
        let err = load_acceptor(&missing, &key).err().unwrap();
        assert!(format!("{err:#}").contains("TLSCertFile"), "{err:#}");
        let err = load_acceptor(&cert, &cert).err().unwrap();
        assert!(format!("{err:#}").contains("TLSKeyFile"), "{err:#}");
        let err = load_acceptor(&key, &key).err().unwrap();
        assert!(format!("{err:#}").contains("no certificate"), "{err:#}");
    }
}
