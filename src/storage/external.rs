//! Storage kept by a separate HTTP service, Athens' `external` storage
//! type: this is the client side, [`crate::http::storage_server`] the
//! server side, and either side works with Athens' counterpart.
//!
//! The protocol, below a base URL, with module paths case-escaped (`!a`
//! for `A`) as in the download protocol:
//!
//! - `GET {module}/@v/list`: the stored versions, one a line;
//! - `GET {module}/@v/{version}.info`, `.mod`, `.zip`: the stored files,
//!   404 when the version is not stored;
//! - `POST {module}/@v/{version}.save`: a `multipart/form-data` body with
//!   the files `mod.info`, `mod.mod` and `mod.zip`, in that order;
//! - `DELETE {module}/@v/{version}.delete`.
//!
//! Athens' protocol has no catalog. Our server adds
//! `GET catalog?token=&pagesize=`, answering the JSON of the proxy's own
//! `/catalog` endpoint; against a server without it [`Storage::catalog`]
//! fails with an error saying so. Athens checks existence by reading the
//! `.info`, and so does this client.
//!
//! The zip is streamed both ways: an upload sends it as it is read from
//! its source, a download hands the response body over as it arrives.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::channel::mpsc;
use futures::{SinkExt, TryStreamExt};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::io::StreamReader;

use super::{
    check_storable, ensure_storable, CatalogEntry, CatalogPage, ServiceFailure, Storage,
    StorageError, StoredZip,
};

/// The service name in errors.
const SERVICE: &str = "external";
/// Largest `.info` either side accepts. Real ones are a few hundred bytes.
pub const MAX_INFO_SIZE: u64 = 1 << 20;
/// Largest version list this client reads.
const MAX_LIST_SIZE: u64 = 64 << 20;
/// Largest catalog page this client reads.
const MAX_CATALOG_SIZE: u64 = 256 << 20;
/// Part of an error response quoted in the error.
const MAX_ERROR_BODY: usize = 512;
/// Zip bytes read from the source per upload chunk.
const UPLOAD_CHUNK: usize = 64 << 10;
/// Upload chunks queued ahead of the connection.
const UPLOAD_QUEUE: usize = 4;
/// Only connecting is bounded in time: a transfer of a large zip from a
/// slow source may rightly be idle for a while.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The module whose list [`ExternalStorage::check`] asks for; any answer
/// but a failure shows the server works.
const PROBE_MODULE: &str = "athens-startup-check.invalid/probe";

/// Why an [`ExternalStorage`] could not be set up.
#[derive(Debug, Error)]
pub enum ExternalSetupError {
    /// The base URL is unusable.
    #[error("external storage URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("external storage: cannot set up the HTTP client: {message}")]
    Client {
        /// What failed.
        message: String,
    },
}

/// A [`Storage`] that forwards every operation to an external storage
/// server over HTTP (see the module documentation for the protocol).
///
/// Credentials in the base URL (`https://user:password@host/`) are sent
/// as basic authentication and never appear in errors or `Debug` output.
pub struct ExternalStorage {
    client: reqwest::Client,
    /// Base URL, credentials included.
    base: Url,
    /// The base URL's path without its trailing slash (empty for none).
    prefix: String,
    /// The base URL as shown in errors: password hidden.
    shown: String,
}

impl std::fmt::Debug for ExternalStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalStorage")
            .field("url", &self.shown)
            .finish()
    }
}

/// `raw` with the password of its authority, if any, replaced by `***`;
/// works on text that does not parse as a URL too.
fn hide_password(raw: &str) -> String {
    let (scheme, rest) = match raw.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, raw),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let shown_authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if userinfo.contains(':') {
                format!("{user}:***@{host}")
            } else {
                format!("{user}@{host}")
            }
        }
        None => authority.to_string(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{shown_authority}{tail}"),
        None => format!("{shown_authority}{tail}"),
    }
}

/// A reqwest error with its causes, without the URL (which the caller
/// names itself).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A boundary no upload is likely to contain: 128 bits from the process's
/// random hash keys, the clock and a counter.
fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::with_capacity(32);
    for round in 0..2u64 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(round);
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        if let Ok(elapsed) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(elapsed.as_nanos());
        }
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

/// The headers that open one file part of the upload form.
fn part_header(boundary: &str, name: &str) -> String {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
         filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
}

/// One catalog page as the server sends it.
#[derive(Deserialize)]
struct CatalogBody {
    #[serde(default)]
    modules: Vec<CatalogBodyEntry>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct CatalogBodyEntry {
    module: String,
    version: String,
}

impl ExternalStorage {
    /// A client of the storage server at `url` (`http` or `https`,
    /// optionally with a path prefix). Nothing is contacted yet; see
    /// [`ExternalStorage::check`].
    pub fn new(url: &str) -> Result<Self, ExternalSetupError> {
        let invalid = |reason: &str| ExternalSetupError::InvalidUrl {
            url: hide_password(url),
            reason: reason.to_string(),
        };
        let base = Url::parse(url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if base.scheme() != "http" && base.scheme() != "https" {
            return Err(invalid("the scheme must be http or https"));
        }
        if base.host_str().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("the URL must not have a query or fragment"));
        }
        let prefix = base.path().trim_end_matches('/').to_string();
        let mut shown = base.clone();
        if shown.password().is_some() {
            // Only fails for URLs without a host, refused above.
            let _ = shown.set_password(Some("***"));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(Duration::from_secs(60))
            .user_agent(concat!("athens/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ExternalSetupError::Client {
                message: describe(e),
            })?;
        Ok(ExternalStorage {
            client,
            base,
            prefix,
            shown: shown.to_string(),
        })
    }

    /// Asks the server for a version list once, so that a server that is
    /// unreachable, refuses us or fails is reported at start rather than
    /// on the first request.
    pub async fn check(&self) -> Result<(), StorageError> {
        let url = self.module_url(PROBE_MODULE, "list")?;
        let (response, shown) = self
            .send(Method::GET, "reaching the storage server", url)
            .await?;
        let status = response.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(self
            .status_failure("checking the storage server", &shown, response)
            .await)
    }

    /// `url` as shown in errors.
    fn show(&self, url: &Url) -> String {
        let mut shown = url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        shown.to_string()
    }

    /// Sends a request without a body; no answer at all is `op`'s failure.
    /// Returns the answer and the URL as it may be shown.
    async fn send(
        &self,
        method: Method,
        op: &'static str,
        url: Url,
    ) -> Result<(reqwest::Response, String), StorageError> {
        let shown = self.show(&url);
        let response = self
            .client
            .request(method, url)
            .send()
            .await
            .map_err(|e| self.failure(op, &shown, describe(e)))?;
        Ok((response, shown))
    }

    fn failure(&self, op: &'static str, key: &str, message: String) -> StorageError {
        StorageError::Service(Box::new(ServiceFailure {
            service: SERVICE,
            op,
            key: key.to_string(),
            message,
        }))
    }

    /// The failure for an unexpected status, quoting the start of the
    /// server's explanation.
    async fn status_failure(
        &self,
        op: &'static str,
        key: &str,
        response: reqwest::Response,
    ) -> StorageError {
        let status = response.status();
        let explanation = read_limited(response, MAX_ERROR_BODY as u64, true)
            .await
            .map(|body| explanation_line(&body))
            .unwrap_or_default();
        let message = if explanation.is_empty() {
            format!("the server answered {status}")
        } else {
            format!("the server answered {status}: {explanation}")
        };
        self.failure(op, key, message)
    }

    /// `{base}/{escaped module}/@v/{tail}`.
    fn module_url(&self, module: &str, tail: &str) -> Result<Url, StorageError> {
        let escaped = modzip::module::escape_path(module)
            .map_err(|e| self.failure("building the request URL", module, e.to_string()))?;
        let mut url = self.base.clone();
        url.set_path(&format!("{}/{escaped}/@v/{tail}", self.prefix));
        Ok(url)
    }

    /// `{base}/{escaped module}/@v/{escaped version}.{ext}`.
    fn version_url(&self, module: &str, version: &str, ext: &str) -> Result<Url, StorageError> {
        let escaped = modzip::module::escape_version(version).map_err(|e| {
            self.failure(
                "building the request URL",
                &format!("{module}@{version}"),
                e.to_string(),
            )
        })?;
        self.module_url(module, &format!("{escaped}.{ext}"))
    }

    /// Sends a body-less request for a stored version; `None` for 404.
    async fn request_version(
        &self,
        method: Method,
        op: &'static str,
        module: &str,
        version: &str,
        ext: &str,
    ) -> Result<Option<(reqwest::Response, String)>, StorageError> {
        let url = self.version_url(module, version, ext)?;
        let (response, shown) = self.send(method, op, url).await?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_failure(op, &shown, response).await);
        }
        Ok(Some((response, shown)))
    }

    /// The body of a small stored file (`.info` or `.mod`).
    async fn read_small(
        &self,
        module: &str,
        version: &str,
        ext: &str,
        limit: u64,
    ) -> Result<Bytes, StorageError> {
        if check_storable(module, version).is_err() {
            return Err(StorageError::not_found(module, version));
        }
        let op = "reading";
        let Some((response, shown)) = self
            .request_version(Method::GET, op, module, version, ext)
            .await?
        else {
            return Err(StorageError::not_found(module, version));
        };
        read_limited(response, limit, false)
            .await
            .map_err(|message| self.failure(op, &shown, message))
    }
}

/// The body of `response`, refused when longer than `limit` unless
/// `truncate` (then cut at `limit`).
pub(crate) async fn read_limited(
    response: reqwest::Response,
    limit: u64,
    truncate: bool,
) -> Result<Bytes, String> {
    if !truncate {
        if let Some(length) = response.content_length().filter(|&n| n > limit) {
            return Err(format!(
                "the response has {length} bytes, more than the {limit} allowed"
            ));
        }
    }
    let mut body = BytesMut::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.try_next().await.map_err(describe)? {
        let room = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_sub(body.len());
        if chunk.len() > room {
            if truncate {
                body.extend_from_slice(&chunk[..room]);
                break;
            }
            return Err(format!(
                "the response has more than the {limit} bytes allowed"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The first line of an error body, made printable.
fn explanation_line(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Feeds the upload body: the opening parts, then the zip as it is read,
/// then the closing boundary. A read failure is passed into the body, so
/// the request is aborted rather than completed, and returned. Stops
/// quietly once the request no longer takes data.
async fn pump_upload(
    mut body: mpsc::Sender<Result<Bytes, std::io::Error>>,
    opening: Bytes,
    zip: &mut (dyn AsyncRead + Send + Unpin),
    closing: Bytes,
) -> Result<(), std::io::Error> {
    if body.send(Ok(opening)).await.is_err() {
        return Ok(());
    }
    loop {
        let mut chunk = BytesMut::with_capacity(UPLOAD_CHUNK);
        match zip.read_buf(&mut chunk).await {
            Ok(0) => break,
            Ok(_) => {
                if body.send(Ok(chunk.freeze())).await.is_err() {
                    return Ok(());
                }
            }
            Err(e) => {
                let abort = std::io::Error::new(e.kind(), "the zip source failed");
                let _ = body.send(Err(abort)).await;
                return Err(e);
            }
        }
    }
    let _ = body.send(Ok(closing)).await;
    Ok(())
}

#[async_trait]
impl Storage for ExternalStorage {
    async fn info(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.read_small(module, version, "info", MAX_INFO_SIZE)
            .await
    }

    async fn go_mod(&self, module: &str, version: &str) -> Result<Bytes, StorageError> {
        self.read_small(module, version, "mod", modzip::zip::MAX_GO_MOD)
            .await
    }

    async fn zip(&self, module: &str, version: &str) -> Result<StoredZip, StorageError> {
        if check_storable(module, version).is_err() {
            return Err(StorageError::not_found(module, version));
        }
        let op = "reading";
        let Some((response, shown)) = self
            .request_version(Method::GET, op, module, version, "zip")
            .await?
        else {
            return Err(StorageError::not_found(module, version));
        };
        // The size must be known before the first byte is read; the
        // protocol's servers (ours and Athens') always send it.
        let size = response.content_length().ok_or_else(|| {
            self.failure(
                op,
                &shown,
                "the zip response has no Content-Length".to_string(),
            )
        })?;
        let stream = response
            .bytes_stream()
            .map_err(|e| std::io::Error::other(describe(e)));
        Ok(StoredZip {
            size,
            reader: Box::pin(StreamReader::new(stream)),
            in_memory: None,
        })
    }

    async fn exists(&self, module: &str, version: &str) -> Result<bool, StorageError> {
        if check_storable(module, version).is_err() {
            return Ok(false);
        }
        // Athens' own existence check: the `.info` is there.
        Ok(self
            .request_version(Method::GET, "checking", module, version, "info")
            .await?
            .is_some())
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, StorageError> {
        if modzip::module::check_path(module).is_err() {
            return Ok(Vec::new());
        }
        let op = "listing";
        let url = self.module_url(module, "list")?;
        let (response, shown) = self.send(Method::GET, op, url).await?;
        let status = response.status();
        // Some of Athens' backends answer "not found" for a module with no
        // versions.
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(self.status_failure(op, &shown, response).await);
        }
        let body = read_limited(response, MAX_LIST_SIZE, false)
            .await
            .map_err(|message| self.failure(op, &shown, message))?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| self.failure(op, &shown, "the list is not UTF-8".to_string()))?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect())
    }

    async fn save(
        &self,
        module: &str,
        version: &str,
        go_mod: Bytes,
        zip: &mut (dyn AsyncRead + Send + Unpin),
        info: Bytes,
    ) -> Result<(), StorageError> {
        ensure_storable(module, version)?;
        let too_large = |what: &str, size: usize, limit: u64| StorageError::InvalidInput {
            module: module.to_string(),
            version: version.to_string(),
            reason: format!("{what} has {size} bytes, more than the {limit} allowed"),
        };
        if go_mod.len() as u64 > modzip::zip::MAX_GO_MOD {
            return Err(too_large("go.mod", go_mod.len(), modzip::zip::MAX_GO_MOD));
        }
        if info.len() as u64 > MAX_INFO_SIZE {
            return Err(too_large(".info", info.len(), MAX_INFO_SIZE));
        }
        let op = "saving";
        let url = self.version_url(module, version, "save")?;
        let shown = self.show(&url);

        let boundary = new_boundary();
        let mut opening = BytesMut::new();
        opening.extend_from_slice(part_header(&boundary, "mod.info").as_bytes());
        opening.extend_from_slice(&info);
        opening.extend_from_slice(b"\r\n");
        opening.extend_from_slice(part_header(&boundary, "mod.mod").as_bytes());
        opening.extend_from_slice(&go_mod);
        opening.extend_from_slice(b"\r\n");
        opening.extend_from_slice(part_header(&boundary, "mod.zip").as_bytes());
        let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));

        // The body must be 'static while `zip` is borrowed, so the zip is
        // handed to it through a channel fed in this task.
        let (sender, receiver) = mpsc::channel(UPLOAD_QUEUE);
        let request = self
            .client
            .post(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(reqwest::Body::wrap_stream(receiver))
            .send();
        let pump = pump_upload(sender, opening.freeze(), zip, closing);
        tokio::pin!(request, pump);
        let mut source_result = None;
        let response = loop {
            tokio::select! {
                response = &mut request => break response,
                result = &mut pump, if source_result.is_none() => source_result = Some(result),
            }
        };
        if let Some(Err(source)) = source_result {
            return Err(StorageError::ZipSource {
                module: module.to_string(),
                version: version.to_string(),
                source,
            });
        }
        let response = response.map_err(|e| self.failure(op, &shown, describe(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE {
            let body = read_limited(response, MAX_ERROR_BODY as u64, true)
                .await
                .unwrap_or_default();
            return Err(StorageError::InvalidInput {
                module: module.to_string(),
                version: version.to_string(),
                reason: format!(
                    "the storage server refused it ({status}): {}",
                    explanation_line(&body)
                ),
            });
        }
        Err(self.status_failure(op, &shown, response).await)
    }

    async fn delete(&self, module: &str, version: &str) -> Result<(), StorageError> {
        if check_storable(module, version).is_err() {
            return Err(StorageError::not_found(module, version));
        }
        match self
            .request_version(Method::DELETE, "deleting", module, version, "delete")
            .await?
        {
            Some(_) => Ok(()),
            None => Err(StorageError::not_found(module, version)),
        }
    }

    async fn catalog(&self, token: &str, page_size: usize) -> Result<CatalogPage, StorageError> {
        let op = "reading the catalog";
        let mut url = self.base.clone();
        url.set_path(&format!("{}/catalog", self.prefix));
        url.query_pairs_mut()
            .append_pair("token", token)
            .append_pair("pagesize", &page_size.to_string());
        let (response, shown) = self.send(Method::GET, op, url).await?;
        let status = response.status();
        if matches!(
            status,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) {
            return Err(StorageError::Unsupported {
                service: "external",
                operation: "catalog",
                reason: format!(
                    "the storage server at {shown} has no catalog ({status}); Athens' external \
                     storage protocol defines none, a server of this proxy offers one"
                ),
            });
        }
        if status == StatusCode::BAD_REQUEST {
            // The page size sent is always valid, so the token is what
            // the server refused.
            return Err(StorageError::InvalidToken {
                token: token.to_string(),
            });
        }
        if !status.is_success() {
            return Err(self.status_failure(op, &shown, response).await);
        }
        let body = read_limited(response, MAX_CATALOG_SIZE, false)
            .await
            .map_err(|message| self.failure(op, &shown, message))?;
        let page: CatalogBody = serde_json::from_slice(&body)
            .map_err(|e| self.failure(op, &shown, format!("the catalog is not valid JSON: {e}")))?;
        Ok(CatalogPage {
            entries: page
                .modules
                .into_iter()
                .map(|e| CatalogEntry {
                    module: e.module,
                    version: e.version,
                })
                .collect(),
            next: page.next.filter(|next| !next.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::body::Body;
    use axum::extract::Multipart;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::Router;
    use bytes::Bytes;
    use futures::StreamExt;
    use tokio::io::AsyncReadExt;
    use tokio_util::io::StreamReader;

    use super::{ExternalSetupError, ExternalStorage};
    use crate::http::storage_server::storage_router;
    use crate::storage::{conformance, MemoryStorage, Storage, StorageError};

    /// Serves `router` on a free port of 127.0.0.1; the base URL.
    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{addr}")
    }

    /// A port nothing listens on.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_conformance_against_our_server() {
        let memory = Arc::new(MemoryStorage::new());
        let url = serve(storage_router(memory.clone())).await;
        let client = ExternalStorage::new(&url).unwrap();
        client.check().await.unwrap();
        conformance::run(&client).await;
        conformance::component_order(&client).await;
        conformance::concurrent_saves(&client).await;
        // What the client saved is in the backend behind the server.
        assert!(memory.exists("example.com/Mod", "v1.0.0").await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_zip_round_trips() {
        let url = serve(storage_router(Arc::new(MemoryStorage::new()))).await;
        let client = ExternalStorage::new(&url).unwrap();
        conformance::large_zip(&client, 20 << 20).await;
    }

    #[tokio::test]
    async fn works_under_a_path_prefix() {
        let memory = Arc::new(MemoryStorage::new());
        let router = Router::new().nest("/athens/storage", storage_router(memory.clone()));
        let url = serve(router).await;
        let client = ExternalStorage::new(&format!("{url}/athens/storage/")).unwrap();
        let mut zip: &[u8] = b"zip bytes";
        client
            .save(
                "github.com/Azure/x",
                "v1.0.0-RC1",
                Bytes::from_static(b"module github.com/Azure/x\n"),
                &mut zip,
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        assert!(memory
            .exists("github.com/Azure/x", "v1.0.0-RC1")
            .await
            .unwrap());
        assert_eq!(
            client.list("github.com/Azure/x").await.unwrap(),
            vec!["v1.0.0-RC1"]
        );
        let page = client.catalog("", 0).await.unwrap();
        assert_eq!(page.entries.len(), 1);
        assert_eq!(page.entries[0].module, "github.com/Azure/x");
    }

    #[tokio::test]
    async fn unreachable_server_is_reported_without_the_password() {
        let port = closed_port();
        let client =
            ExternalStorage::new(&format!("http://admin:s3cret@127.0.0.1:{port}/")).unwrap();
        let err = client.check().await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, StorageError::Service(_)), "{message}");
        assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        assert!(message.contains("reaching the storage server"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(!format!("{client:?}").contains("s3cret"));
        // Reads fail as failures, never as "not found".
        let err = client.info("example.com/m", "v1.0.0").await.unwrap_err();
        assert!(!err.is_not_found(), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert!(client.exists("example.com/m", "v1.0.0").await.is_err());
        assert!(client.list("example.com/m").await.is_err());
    }

    #[test]
    fn refuses_unusable_urls() {
        for url in [
            "",
            "not a url",
            "ftp://example.com/",
            "file:///tmp/x",
            "http://example.com/?x=1",
            "http://example.com/#top",
            "unix:/run/storage.sock",
        ] {
            let err = ExternalStorage::new(url).unwrap_err();
            assert!(
                matches!(err, ExternalSetupError::InvalidUrl { .. }),
                "{url}: {err}"
            );
        }
        let err = ExternalStorage::new("ftp://user:hunter2@example.com/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = ExternalStorage::new("http://user:hunter2@exa mple.com/").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(ExternalStorage::new("https://storage.example.com/prefix/").is_ok());
    }

    #[test]
    fn hides_passwords() {
        assert_eq!(
            super::hide_password("http://u:p@h:1/x?y"),
            "http://u:***@h:1/x?y"
        );
        assert_eq!(super::hide_password("u:p@h"), "u:***@h");
        assert_eq!(super::hide_password("http://h/a@b"), "http://h/a@b");
        assert_eq!(super::hide_password("http://tok@h/"), "http://tok@h/");
    }

    /// A server speaking only Athens' protocol (no catalog), failing
    /// everything else.
    async fn athens_like_server() -> String {
        let router = Router::new().fallback(|| async {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "backend exploded\nsecond line",
            )
        });
        let router = router.route(
            "/catalog",
            get(|| async { (StatusCode::NOT_FOUND, "404 page not found") }),
        );
        serve(router).await
    }

    #[tokio::test]
    async fn server_without_catalog_and_server_failures_are_explained() {
        let client = ExternalStorage::new(&athens_like_server().await).unwrap();
        let err = client.catalog("", 10).await.unwrap_err();
        assert!(matches!(err, StorageError::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("has no catalog"), "{err}");
        let err = client.info("example.com/m", "v1.0.0").await.unwrap_err();
        let message = err.to_string();
        assert!(message.contains("500"), "{message}");
        assert!(message.contains("backend exploded"), "{message}");
        assert!(!message.contains("second line"), "{message}");
        assert!(client.check().await.is_err());
        let mut zip: &[u8] = b"z";
        let err = client
            .save(
                "example.com/m",
                "v1.0.0",
                Bytes::new(),
                &mut zip,
                Bytes::new(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Service(_)), "{err}");
    }

    #[tokio::test]
    async fn zip_without_content_length_is_refused() {
        let router = Router::new().fallback(|| async {
            let chunks = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"z"))]);
            Response::new(Body::from_stream(chunks))
        });
        let client = ExternalStorage::new(&serve(router).await).unwrap();
        let err = client.zip("example.com/m", "v1.0.0").await.unwrap_err();
        assert!(err.to_string().contains("Content-Length"), "{err}");
    }

    #[tokio::test]
    async fn zip_is_handed_over_before_the_download_ends() {
        // The body sends its first bytes and then never ends: a client
        // that waited for the whole zip would never answer.
        let router = Router::new().fallback(|| async {
            let first =
                futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 1000]))]);
            let body = Body::from_stream(first.chain(futures::stream::pending()));
            let mut response = body.into_response();
            response
                .headers_mut()
                .insert("content-length", 1_000_000.into());
            response
        });
        let client = ExternalStorage::new(&serve(router).await).unwrap();
        let mut zip = tokio::time::timeout(
            Duration::from_secs(10),
            client.zip("example.com/m", "v1.0.0"),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(zip.size, 1_000_000);
        assert!(zip.in_memory.is_none());
        let mut first = vec![0u8; 1000];
        tokio::time::timeout(Duration::from_secs(10), zip.reader.read_exact(&mut first))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, vec![7u8; 1000]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn zip_is_sent_while_it_is_read() {
        // The zip source holds back its second half until the server has
        // received the first: a client that read the whole zip before
        // sending would wait forever.
        let first_arrived = Arc::new(tokio::sync::Notify::new());
        let notify = Arc::clone(&first_arrived);
        let received = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = Arc::clone(&received);
        let router = Router::new().route(
            "/{*path}",
            post(move |mut form: Multipart| {
                let notify = Arc::clone(&notify);
                let sink = Arc::clone(&sink);
                async move {
                    let mut names = Vec::new();
                    while let Some(mut field) = form.next_field().await.unwrap() {
                        names.push(field.name().unwrap_or_default().to_string());
                        while let Some(chunk) = field.chunk().await.unwrap() {
                            if names.last().map(String::as_str) == Some("mod.zip") {
                                sink.lock().unwrap().extend_from_slice(&chunk);
                                notify.notify_one();
                            }
                        }
                    }
                    assert_eq!(names, ["mod.info", "mod.mod", "mod.zip"]);
                    StatusCode::OK
                }
            }),
        );
        let client = ExternalStorage::new(&serve(router).await).unwrap();
        let gate = Arc::clone(&first_arrived);
        let parts = futures::stream::unfold(0u8, move |step| {
            let gate = Arc::clone(&gate);
            async move {
                match step {
                    0 => Some((Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 5000])), 1)),
                    1 => {
                        gate.notified().await;
                        Some((Ok(Bytes::from(vec![2u8; 5000])), 2))
                    }
                    _ => None,
                }
            }
        });
        let mut zip = StreamReader::new(Box::pin(parts));
        tokio::time::timeout(
            Duration::from_secs(20),
            client.save(
                "example.com/m",
                "v1.0.0",
                Bytes::from_static(b"module example.com/m\n"),
                &mut zip,
                Bytes::from_static(b"{}"),
            ),
        )
        .await
        .expect("the upload waited for the whole zip")
        .unwrap();
        let got = received.lock().unwrap().clone();
        assert_eq!(got.len(), 10_000);
        assert!(got[..5000].iter().all(|&b| b == 1));
        assert!(got[5000..].iter().all(|&b| b == 2));
    }
}
