//! The HTTP face of the proxy (axum): the GOPROXY download protocol under
//! an optional path prefix, plus `/healthz`, `/readyz`, `/version` and
//! `/catalog`, the home page, the `/sumdb/` proxy, and the optional
//! layers (filter file, validator hook, basic auth, HTTPS redirect; see
//! [`Features`]), with per-request logging and graceful shutdown; [`tls`]
//! serves HTTPS. [`router`] assembles them; the composition root
//! ([`crate::app`]) builds what it serves from the configuration.
//!
//! Protocol paths are parsed by hand because module paths contain slashes:
//! `/{module}/@v/list`, `/{module}/@v/{version}.info|.mod|.zip` and
//! `/{module}/@latest`, with module and version in the go command's
//! case-escaped form (`!a` for `A`). Malformed paths or versions get 400
//! before anything else happens; versions that cannot exist for the module
//! get 404 so the go command moves on to its next proxy.

mod error_body;
mod features;
mod gcp_log;
mod home_template;
mod log_format;
pub mod log_sink;
mod robots;
mod server;
pub mod storage_server;
pub mod tls;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_util::io::ReaderStream;

use crate::fetch::is_canonical_version;
use crate::protocol::{Protocol, ProtocolError};

pub(crate) use features::private_patterns;
pub use features::Features;
pub use server::{
    bind_port, init_logging, serve, serve_listener, serve_listener_with, shutdown_signal,
    ConnectionLimits,
};

/// Header carrying the request id in and out, as Athens names it.
pub const REQUEST_ID_HEADER: &str = "Athens-Request-ID";
/// [`REQUEST_ID_HEADER`] parsed once (header names are case-insensitive
/// and sent in lower case): a name given as a string is parsed again on
/// every use.
const REQUEST_ID_NAME: axum::http::HeaderName =
    axum::http::HeaderName::from_static("athens-request-id");
/// Cache policy of versioned artifacts: a canonical version never changes.
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy of listings and resolved queries, which change over time.
pub const CACHE_SHORT: &str = "public, max-age=60";
/// Cache policy of `/@v/list` and `/@latest`, Athens' own: a cache must
/// ask again every time, as the answer changes with each new tag.
pub const CACHE_LISTING: &str = "no-cache, no-store, must-revalidate";
/// Cache policy of errors.
pub const CACHE_ERROR: &str = "no-cache";

const CONTENT_JSON: &str = "application/json";
const CONTENT_TEXT: &str = "text/plain; charset=utf-8";
const CONTENT_ZIP: &str = "application/zip";
/// Read size when streaming a zip from storage. Larger reads were no
/// faster once disk reads stopped going through the blocking pool, and
/// they raised peak memory (hyper queues several frames per connection):
/// 128 KiB gave 52 MB at 64 concurrent large downloads, 64 KiB 42 MB.
const ZIP_READ_CHUNK: usize = 64 * 1024;
const READINESS_MODULE: &str = "github.com/gomods/athens";
/// `Retry-After` of a 503: long enough for a pending fetch or two to end.
const RETRY_AFTER_SECONDS: &str = "5";
/// Longest escaped path element (and escaped version) served: a name
/// longer than a file name can be (255 bytes on common file systems) can
/// be neither stored nor fetched from a repository, and answering it
/// would only fail deeper down (ENAMETOOLONG) with a 500. The version
/// also becomes part of file names (`<version>.info`, ...), so it gets a
/// little less.
const MAX_PATH_ELEMENT: usize = 255;
const MAX_VERSION: usize = 240;
/// Longest escaped module path served (all elements together).
const MAX_MODULE_PATH: usize = 1024;
const DEFAULT_CATALOG_PAGE: usize = 1000;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    protocol: Arc<Protocol>,
}

impl AppState {
    /// State serving `protocol`, running at most `protocol_workers`
    /// list/`@latest` lookups at once (at least one). Stored files are
    /// served without waiting for any permit.
    pub fn new(protocol: Protocol, protocol_workers: usize) -> Self {
        AppState {
            protocol: Arc::new(protocol.with_lookup_workers(protocol_workers)),
        }
    }

    /// State serving `protocol` with the admission limits it already has.
    pub fn with_protocol(protocol: Protocol) -> Self {
        AppState {
            protocol: Arc::new(protocol),
        }
    }
}

/// The complete router for `state`, served under `path_prefix` (empty for
/// none), with the home page, the sumdb proxy and the layers of `features`
/// (filter, validator hook, basic auth, HTTPS redirect) that are on. With
/// a prefix, `/` answers 200 for load-balancer health checks, as Athens
/// does.
pub fn router(state: AppState, path_prefix: &str, features: Features) -> Router {
    router_with_routes(state, path_prefix, features, Router::new())
}

/// [`router`] with `extra` routes (like `/metrics`) served beside the home
/// page: under the path prefix and behind basic auth and the HTTPS
/// redirect, but not the module filter.
pub fn router_with_routes(
    state: AppState,
    path_prefix: &str,
    features: Features,
    extra: Router,
) -> Router {
    let f = Arc::new(features);
    let mut inner = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/catalog", get(catalog))
        .fallback(protocol_handler)
        .with_state(state);
    // Each layer only when its feature is on: a layer that would let
    // every request through still costs a boxed future per request.
    if f.filter.is_some() || f.validator_hook.is_some() {
        inner = inner.layer(middleware::from_fn_with_state(
            Arc::clone(&f),
            features::module_gate,
        ));
    }
    inner = inner.merge(
        Router::new()
            .route("/", get(features::home))
            .route("/robots.txt", get(robots::robots))
            .route(
                "/sumdb/{*rest}",
                axum::routing::any(features::sumdb_handler),
            )
            .with_state(Arc::clone(&f))
            .merge(crate::index::routes(Arc::clone(&f.index)))
            .merge(extra),
    );
    let prefix = path_prefix.trim_end_matches('/');
    let mut app = if prefix.is_empty() {
        inner
    } else {
        Router::new().route("/", get(healthz)).nest(prefix, inner)
    };
    if f.basic_auth.is_some() {
        app = app.layer(middleware::from_fn_with_state(
            Arc::clone(&f),
            features::basic_auth,
        ));
    }
    if f.force_ssl {
        app = app.layer(middleware::from_fn_with_state(
            Arc::clone(&f),
            features::force_ssl,
        ));
    }
    app.layer(RequestLogLayer)
}

static REQUEST_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Appends `n` in lowercase hex, at least `width` digits.
fn push_hex(out: &mut Vec<u8>, n: u64, width: usize) {
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(width);
    for shift in (0..digits).rev() {
        out.push(HEX_DIGITS[((n >> (shift * 4)) & 0xf) as usize]);
    }
}

/// A request id that is unique within the process and unlikely to repeat
/// across restarts: time, process id and a counter, in hex. Written by hand
/// into one buffer because it runs on every request.
fn new_request_id() -> HeaderValue {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = REQUEST_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = Vec::with_capacity(48);
    push_hex(&mut id, nanos, 16);
    id.push(b'-');
    push_hex(&mut id, u64::from(std::process::id()), 8);
    id.push(b'-');
    push_hex(&mut id, n, 8);
    // Only hex digits and dashes: always a valid header value.
    HeaderValue::from_maybe_shared(Bytes::from(id))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Accepts a client-supplied id only if it is short printable ASCII, so
/// it cannot forge log lines.
fn usable_request_id(value: &HeaderValue) -> Option<HeaderValue> {
    let bytes = value.as_bytes();
    (!bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic()))
        .then(|| value.clone())
}

/// Logs one line per request: method, path, status, duration, request id.
/// Query strings and headers are left out so credentials never reach logs.
///
/// A hand-written layer rather than `middleware::from_fn`, because it wraps
/// every request: `from_fn` clones the whole inner router and boxes it
/// anew per request, this calls it directly. It allocates as little as it
/// can too: the id is one header value shared by request and response, and
/// the path is kept as a (reference-counted) copy of the URI.
#[derive(Clone, Copy)]
struct RequestLogLayer;

impl<S> tower::Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog { inner }
    }
}

/// The service of [`RequestLogLayer`].
#[derive(Clone)]
struct RequestLog<S> {
    inner: S,
}

impl<S> tower::Service<Request> for RequestLog<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let id = request
            .headers()
            .get(REQUEST_ID_NAME)
            .and_then(usable_request_id)
            .unwrap_or_else(new_request_id);
        request.headers_mut().insert(REQUEST_ID_NAME, id.clone());
        let method = request.method().clone();
        let uri = request.uri().clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let status = response.status().as_u16();
            tracing::info!(
                method = %method,
                path = %uri.path(),
                status,
                duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                request_id = %String::from_utf8_lossy(id.as_bytes()),
                "request"
            );
            response.headers_mut().insert(REQUEST_ID_NAME, id);
            Ok(response)
        })
    }
}

async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, CONTENT_JSON)], StatusCode::OK).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.protocol.storage().list(READINESS_MODULE).await {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "storage is not ready")
        }
    }
}

/// Athens' `/version`: the build details as JSON.
async fn version() -> Response {
    let body = crate::build_info::DETAILS.json_line();
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct CatalogParams {
    #[serde(default)]
    token: String,
    #[serde(default)]
    pagesize: Option<String>,
}

/// A catalog page as `/catalog` answers it (and the storage server's
/// catalog, which external-storage clients read): `{"modules": [...]}`
/// with `"next"` when there are more pages.
fn catalog_json(page: crate::storage::CatalogPage) -> String {
    let mut body = serde_json::json!({ "modules": page.entries });
    if let Some(next) = page.next {
        body["next"] = serde_json::Value::String(next);
    }
    body.to_string()
}

async fn catalog(State(state): State<AppState>, Query(params): Query<CatalogParams>) -> Response {
    let page_size = match params.pagesize.as_deref() {
        None | Some("") => DEFAULT_CATALOG_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "bad request: pagesize must be a positive integer",
                )
            }
        },
    };
    match state
        .protocol
        .storage()
        .catalog(&params.token, page_size)
        .await
    {
        Ok(page) => (
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            catalog_json(page),
        )
            .into_response(),
        Err(crate::storage::StorageError::InvalidToken { .. }) => error_response(
            StatusCode::BAD_REQUEST,
            "bad request: invalid catalog token",
        ),
        // As Athens answers for a backend without a catalog.
        Err(e @ crate::storage::StorageError::Unsupported { .. }) => error_response(
            StatusCode::NOT_IMPLEMENTED,
            &format!("not implemented: {e}"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "catalog failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: catalog failed",
            )
        }
    }
}

/// One plain-text line as the body, as the go command shows it to users.
fn error_response(status: StatusCode, message: &str) -> Response {
    let line: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut response = (status, format!("{line}\n")).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TEXT));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_ERROR));
    response
}

fn protocol_error_response(err: &ProtocolError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = match status {
        StatusCode::NOT_FOUND => format!("not found: {err}"),
        StatusCode::FORBIDDEN => format!("forbidden: {err}"),
        StatusCode::GATEWAY_TIMEOUT => format!("gateway timeout: {err}"),
        StatusCode::BAD_GATEWAY => format!("bad gateway: {err}"),
        StatusCode::SERVICE_UNAVAILABLE => format!("service unavailable: {err}"),
        _ => format!("internal error: {err}"),
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Overload is expected under a flood; one line per refused request
        // at warn level would be a flood of its own.
        tracing::debug!(error = %err, "protocol request answered {status}");
        let mut response = error_response(status, &message);
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        return response;
    }
    if status.is_server_error() {
        tracing::error!(error = %err, "protocol request failed");
    } else {
        tracing::debug!(error = %err, "protocol request answered {status}");
    }
    error_response(status, &error_body::public_message(&message))
}

/// Which protocol endpoint a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    List,
    Latest,
    Info(String),
    Mod(String),
    Zip(String),
}

/// Decodes `%XX` escapes; `None` for a broken escape or non-UTF-8 result.
/// A path without escapes (the go command sends none) is borrowed as it is.
fn percent_decode(path: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !path.contains('%') {
        return Some(std::borrow::Cow::Borrowed(path));
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(std::borrow::Cow::Owned)
}

/// Parses a protocol path into module path and endpoint, unescaping both.
/// `Err` carries the status and message to answer with.
fn parse_protocol_path(raw_path: &str) -> Result<(String, Endpoint), (StatusCode, String)> {
    let path = percent_decode(raw_path).ok_or_else(|| {
        (
            StatusCode::BAD_REQUEST,
            "bad request: invalid percent-encoding in path".to_string(),
        )
    })?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let not_found = || (StatusCode::NOT_FOUND, "not found".to_string());
    let (escaped_module, endpoint) = if let Some(module) = path.strip_suffix("/@latest") {
        (module, None)
    } else if let Some((module, rest)) = path.split_once("/@v/") {
        (module, Some(rest))
    } else {
        return Err(not_found());
    };
    // Overlong input: a module path or version no storage or repository can
    // hold does not exist here; the go command then tries its next proxy.
    if escaped_module.len() > MAX_MODULE_PATH
        || escaped_module
            .split('/')
            .any(|element| element.len() > MAX_PATH_ELEMENT)
    {
        return Err((
            StatusCode::NOT_FOUND,
            format!(
                "not found: module path longer than {MAX_MODULE_PATH} bytes or with an element longer than {MAX_PATH_ELEMENT} bytes"
            ),
        ));
    }
    let endpoint = match endpoint {
        None => Endpoint::Latest,
        Some("list") => Endpoint::List,
        Some(rest) => {
            let (escaped_version, kind) = rest
                .strip_suffix(".info")
                .map(|v| (v, "info"))
                .or_else(|| rest.strip_suffix(".mod").map(|v| (v, "mod")))
                .or_else(|| rest.strip_suffix(".zip").map(|v| (v, "zip")))
                .ok_or_else(not_found)?;
            if escaped_version.len() > MAX_VERSION {
                return Err((
                    StatusCode::NOT_FOUND,
                    format!("not found: version longer than {MAX_VERSION} bytes"),
                ));
            }
            let version = modzip::module::unescape_version(escaped_version)
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad request: {e}")))?;
            match kind {
                "info" => Endpoint::Info(version),
                "mod" => Endpoint::Mod(version),
                _ => Endpoint::Zip(version),
            }
        }
    };
    let module = modzip::module::unescape_path(escaped_module)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad request: {e}")))?;
    Ok((module, endpoint))
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// A strong ETag: the first 16 bytes of the SHA-256 of the parts, each
/// preceded by its length, in hex and quoted.
fn etag_of(parts: &[&[u8]]) -> HeaderValue {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    etag_from_digest(&hasher.finalize())
}

/// The ETag of a zip: [`etag_of`] over `module@version` and the size,
/// without building the `module@version` string first.
fn zip_etag(module: &str, version: &str, size: u64) -> HeaderValue {
    let identity_len = module.len() + 1 + version.len();
    let mut hasher = Sha256::new();
    hasher.update((identity_len as u64).to_be_bytes());
    hasher.update(module.as_bytes());
    hasher.update(b"@");
    hasher.update(version.as_bytes());
    hasher.update(8u64.to_be_bytes());
    hasher.update(size.to_be_bytes());
    etag_from_digest(&hasher.finalize())
}

fn etag_from_digest(digest: &[u8]) -> HeaderValue {
    let mut quoted = [b'"'; 34];
    for (i, byte) in digest.iter().take(16).enumerate() {
        quoted[1 + 2 * i] = HEX_DIGITS[usize::from(byte >> 4)];
        quoted[2 + 2 * i] = HEX_DIGITS[usize::from(byte & 0xf)];
    }
    // Quotes and hex digits only: always a valid header value.
    HeaderValue::from_bytes(&quoted).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether canonical `version` may belong to the valid module path
/// `module` as far as its major version goes: what
/// `modzip::module::check` adds to the path check.
fn version_fits_path(module: &str, version: &str) -> bool {
    let path_major = modzip::module::split_path_version(module).map_or("", |(_, major)| major);
    modzip::module::match_path_major(version, path_major)
}

/// Bodies at most this large have their ETag remembered by [`EtagMemo`].
const ETAG_MEMO_MAX_BODY: usize = 16 * 1024;
/// Bodies each thread remembers the ETag of.
const ETAG_MEMO_SLOTS: usize = 8;

/// The ETags of the last few small bodies served by this thread. Bodies
/// come from the storage layer's memory cache, so the same version file
/// is the same `Bytes` allocation request after request; as each slot
/// holds a clone of the body, that memory cannot be freed and reused
/// while it is here, so the same address and length mean the same bytes,
/// and the ETag is found without hashing or even comparing them.
struct EtagMemo {
    slots: [Option<(Bytes, HeaderValue)>; ETAG_MEMO_SLOTS],
    next: usize,
}

thread_local! {
    static ETAG_MEMO: std::cell::RefCell<EtagMemo> = const {
        std::cell::RefCell::new(EtagMemo { slots: [const { None }; ETAG_MEMO_SLOTS], next: 0 })
    };
}

/// [`etag_of`] the body, remembered per thread for small bodies.
fn body_etag(body: &Bytes) -> HeaderValue {
    if body.len() > ETAG_MEMO_MAX_BODY || body.is_empty() {
        return etag_of(&[body]);
    }
    let same = |held: &Bytes| held.as_ptr() == body.as_ptr() && held.len() == body.len();
    ETAG_MEMO
        .try_with(|memo| {
            let mut memo = memo.try_borrow_mut().ok()?;
            if let Some((_, etag)) = memo.slots.iter().flatten().find(|(held, _)| same(held)) {
                return Some(etag.clone());
            }
            let etag = etag_of(&[body]);
            let slot = memo.next;
            memo.next = (slot + 1) % ETAG_MEMO_SLOTS;
            memo.slots[slot] = Some((body.clone(), etag.clone()));
            Some(etag)
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| etag_of(&[body]))
}

/// Zips each thread remembers the ETag of.
const ZIP_ETAG_MEMO_SLOTS: usize = 8;

/// The ETags of the last few zips served by this thread, by
/// `module@version` (unambiguous: module paths hold no `@`) and size.
struct ZipEtagMemo {
    slots: [Option<(String, u64, HeaderValue)>; ZIP_ETAG_MEMO_SLOTS],
    next: usize,
}

thread_local! {
    static ZIP_ETAG_MEMO: std::cell::RefCell<ZipEtagMemo> = const {
        std::cell::RefCell::new(ZipEtagMemo { slots: [const { None }; ZIP_ETAG_MEMO_SLOTS], next: 0 })
    };
}

/// [`zip_etag`], remembered per thread.
fn remembered_zip_etag(module: &str, version: &str, size: u64) -> HeaderValue {
    let same = |identity: &str, held_size: u64| {
        held_size == size
            && identity.len() == module.len() + 1 + version.len()
            && identity.starts_with(module)
            && identity.ends_with(version)
            && identity.as_bytes()[module.len()] == b'@'
    };
    ZIP_ETAG_MEMO
        .try_with(|memo| {
            let mut memo = memo.try_borrow_mut().ok()?;
            if let Some((_, _, etag)) = memo
                .slots
                .iter()
                .flatten()
                .find(|(identity, held_size, _)| same(identity, *held_size))
            {
                return Some(etag.clone());
            }
            let etag = zip_etag(module, version, size);
            let slot = memo.next;
            memo.next = (slot + 1) % ZIP_ETAG_MEMO_SLOTS;
            memo.slots[slot] = Some((format!("{module}@{version}"), size, etag.clone()));
            Some(etag)
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| zip_etag(module, version, size))
}

/// Whether the client's `If-None-Match` already names `etag`.
fn etag_matches(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag)
}

fn not_modified(etag: HeaderValue, cache_control: &'static str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

/// A small body with ETag, cache policy and conditional-request handling;
/// HEAD gets the headers only.
fn small_response(
    method: &Method,
    request_headers: &HeaderMap,
    body: Bytes,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response {
    let etag = body_etag(&body);
    if etag_matches(request_headers, &etag) {
        return not_modified(etag, cache_control);
    }
    let length = body.len();
    let mut response = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body))
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(header::ETAG, etag);
    response
}

/// Immutable caching only for a request that named a canonical version
/// (a branch or partial version may resolve differently tomorrow).
fn versioned_cache_policy(requested: &str) -> &'static str {
    if is_canonical_version(requested) {
        CACHE_IMMUTABLE
    } else {
        CACHE_SHORT
    }
}

async fn protocol_handler(State(state): State<AppState>, request: Request) -> Response {
    // Read from the request in place: the `HeaderMap` extractor would
    // clone every header of every request. (The body of a GET or HEAD is
    // not read; without it the parts can be borrowed across awaits.)
    let (request, _body) = request.into_parts();
    let method = request.method.clone();
    let headers = &request.headers;
    if method != Method::GET && method != Method::HEAD {
        let mut response = error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let (module, endpoint) = match parse_protocol_path(request.uri.path()) {
        Ok(parsed) => parsed,
        Err((status, message)) => return error_response(status, &message),
    };
    if let Endpoint::Info(v) | Endpoint::Mod(v) | Endpoint::Zip(v) = &endpoint {
        // A canonical version that cannot belong to this module path (say
        // v3.0.0 for a path ending in /v2) does not exist anywhere. v2.0.0
        // of a path without /v2 may: the go command's Stat answers it with
        // v2.0.0+incompatible when the tag has no go.mod.
        //
        // The path itself was checked when it was unescaped, so only the
        // major version is left to check here; the full check runs again
        // only to word a refusal.
        if is_canonical_version(v) && !version_fits_path(&module, v) {
            if let Err(e) = modzip::module::check(&module, v) {
                if crate::protocol::incompatible_twin(&module, v).is_none() {
                    return error_response(StatusCode::NOT_FOUND, &format!("not found: {e}"));
                }
            }
        }
    }
    let protocol = &state.protocol;
    let protocol_error_response = |e: &ProtocolError| match e {
        ProtocolError::Redirect { base_url, .. } => {
            // Redirects carry the path the client asked for, prefix
            // included, as Athens builds them.
            let original_path = request
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or_else(|| request.uri.path(), |u| u.0.path());
            let location = crate::download_mode::redirect_location(base_url, original_path);
            let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
        other => protocol_error_response(other),
    };
    match endpoint {
        Endpoint::List => match protocol.list(&module).await {
            Ok(versions) => {
                let body: String = versions.iter().map(|v| format!("{v}\n")).collect();
                small_response(
                    &method,
                    headers,
                    Bytes::from(body),
                    CONTENT_TEXT,
                    CACHE_LISTING,
                )
            }
            Err(e) => protocol_error_response(&e),
        },
        Endpoint::Latest => match protocol.latest(&module).await {
            Ok(info) => small_response(
                &method,
                headers,
                info.to_json(),
                CONTENT_JSON,
                CACHE_LISTING,
            ),
            Err(e) => protocol_error_response(&e),
        },
        Endpoint::Info(version) => match protocol.info(&module, &version).await {
            Ok((info, _)) => small_response(
                &method,
                headers,
                info,
                CONTENT_JSON,
                versioned_cache_policy(&version),
            ),
            Err(e) => protocol_error_response(&e),
        },
        Endpoint::Mod(version) => match protocol.go_mod(&module, &version).await {
            Ok((go_mod, _)) => small_response(
                &method,
                headers,
                go_mod,
                CONTENT_TEXT,
                versioned_cache_policy(&version),
            ),
            Err(e) => protocol_error_response(&e),
        },
        Endpoint::Zip(version) => match protocol.zip(&module, &version).await {
            Ok((zip, resolved)) => {
                let cache_control = versioned_cache_policy(&version);
                let etag = remembered_zip_etag(&module, &resolved, zip.size);
                if etag_matches(headers, &etag) {
                    return not_modified(etag, cache_control);
                }
                let size = zip.size;
                // A zip the backend holds whole (in memory or mapped) goes
                // out as it is; any other streams from storage and is never
                // held in memory whole.
                let body = if method == Method::HEAD {
                    Body::empty()
                } else if let Some(data) = zip.in_memory {
                    Body::from(data)
                } else {
                    // Large reads: the default 4 KiB would mean a poll and
                    // a body frame per 4 KiB of a zip of many megabytes.
                    Body::from_stream(ReaderStream::with_capacity(zip.reader, ZIP_READ_CHUNK))
                };
                let mut response = Response::new(body);
                let h = response.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_ZIP));
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
                h.insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static(cache_control),
                );
                h.insert(header::ETAG, etag);
                response
            }
            Err(e) => protocol_error_response(&e),
        },
    }
}

#[cfg(test)]
mod tests;
