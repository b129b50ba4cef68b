//! TLS to PostgreSQL with rustls, checking the server as lib/pq's
//! `sslmode` says: `verify-full` checks the chain and the host name,
//! `verify-ca` the chain only, `require` nothing (or the chain, when
//! `sslrootcert` is given, as lib/pq does), `prefer`/`allow` nothing.
//! The roots are `sslrootcert` or the system's; `sslcert`/`sslkey` is the
//! client's certificate.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// Nothing (encryption only).
    Nothing,
    /// The chain up to a root, not the host name.
    Chain,
    /// The chain and the host name.
    Full,
}

/// The TLS settings of a connection.
#[derive(Debug, Clone, Default)]
pub(super) struct TlsFiles {
    /// `sslrootcert`: PEM roots; the system's when empty.
    pub root_cert: String,
    /// `sslcert`: the client's certificate chain (PEM).
    pub cert: String,
    /// `sslkey`: the client's private key (PEM).
    pub key: String,
    /// `sslsni`: send the host name (on unless `0`).
    pub sni: bool,
}

/// Connects sockets with TLS for tokio-postgres.
#[derive(Clone)]
pub(super) struct RustlsConnect {
    config: Arc<ClientConfig>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(files: &TlsFiles) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    if files.root_cert.is_empty() {
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // One unreadable system certificate does not spoil the rest.
            let _ = store.add(cert);
        }
        if store.is_empty() {
            return Err("no system root certificates were found; set sslrootcert".into());
        }
    } else {
        for cert in read_certs(&files.root_cert, "sslrootcert")? {
            store
                .add(cert)
                .map_err(|e| format!("sslrootcert {:?}: {e}", files.root_cert))?;
        }
    }
    Ok(store)
}

fn read_certs(path: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(Path::new(path))
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {path:?}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key} {path:?} holds no PEM certificate"));
    }
    Ok(certs)
}

impl RustlsConnect {
    /// The connector for `check` with `files`; fails with the reason when
    /// a file cannot be read.
    pub(super) fn new(check: Check, files: &TlsFiles) -> Result<RustlsConnect, String> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let verifier: Arc<dyn ServerCertVerifier> = match check {
            Check::Nothing => Arc::new(AnyCertificate(Arc::clone(&provider))),
            Check::Chain | Check::Full => {
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots(files)?), provider)
                        .build()
                        .map_err(|e| e.to_string())?;
                if check == Check::Full {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (files.cert.is_empty(), files.key.is_empty()) {
            (true, true) => builder.with_no_client_auth(),
            (false, false) => {
                let certs = read_certs(&files.cert, "sslcert")?;
                let key = PrivateKeyDer::from_pem_file(Path::new(&files.key))
                    .map_err(|e| format!("sslkey {:?}: {e}", files.key))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("sslcert/sslkey: {e}"))?
            }
            _ => return Err("sslcert and sslkey go together".into()),
        };
        config.enable_sni = files.sni;
        Ok(RustlsConnect {
            config: Arc::new(config),
        })
    }
}

/// Accepts any certificate, but still checks the handshake signatures
/// (so the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The chain is checked; a certificate for another host name is accepted.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnectTo;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnectTo> {
        let name = ServerName::try_from(domain.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsConnectTo {
            connector: tokio_rustls::TlsConnector::from(Arc::clone(&self.config)),
            name,
        })
    }
}

/// [`RustlsConnect`] for one host.
pub(super) struct RustlsConnectTo {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for RustlsConnectTo {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            let stream = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// A TLS connection to the server.
pub(super) struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding; the server offers both.
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
