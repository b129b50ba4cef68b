//! The server side of the external storage protocol (see
//! [`crate::storage::external`]): any of our [`Storage`] backends served
//! over HTTP, for our own client or Athens' `external` storage type.
//!
//! Module paths in URLs are case-escaped. Versions may be escaped too
//! (our client escapes them); Athens' client sends them as they are, so a
//! version with upper-case letters and no `!` is taken literally, which
//! cannot be confused with an escaped one (escaping leaves no upper case).
//!
//! An upload's zip goes straight from the request into
//! [`Storage::save`]; only `mod.info` and `mod.mod`, which must come
//! before `mod.zip` (as Athens' client sends them), are held in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio_util::io::{ReaderStream, StreamReader};

use super::{
    catalog_json, percent_decode, CatalogParams, CONTENT_JSON, CONTENT_TEXT, CONTENT_ZIP,
    DEFAULT_CATALOG_PAGE, ZIP_READ_CHUNK,
};
use crate::storage::external::MAX_INFO_SIZE;
use crate::storage::{Storage, StorageError};

/// Room in an upload for the form's boundaries and part headers.
const FORM_OVERHEAD: u64 = 1 << 20;

/// Size limits of an upload's files.
#[derive(Debug, Clone, Copy)]
struct UploadLimits {
    info: u64,
    go_mod: u64,
    zip: u64,
}

impl UploadLimits {
    /// The go command's limits for go.mod and zip.
    const DEFAULT: UploadLimits = UploadLimits {
        info: MAX_INFO_SIZE,
        go_mod: modzip::zip::MAX_GO_MOD,
        zip: modzip::zip::MAX_ZIP_FILE,
    };

    fn body(&self) -> usize {
        let total = self.info + self.go_mod + self.zip + FORM_OVERHEAD;
        usize::try_from(total).unwrap_or(usize::MAX)
    }
}

#[derive(Clone)]
struct ServerState {
    storage: Arc<dyn Storage>,
    limits: UploadLimits,
}

/// A router serving `storage` over the external storage protocol, with
/// `GET /catalog?token=&pagesize=` besides (a page size of 0 asks for
/// everything). Mount it at the root or nest it under a prefix.
pub fn storage_router(storage: Arc<dyn Storage>) -> Router {
    router_with_limits(storage, UploadLimits::DEFAULT)
}

fn router_with_limits(storage: Arc<dyn Storage>, limits: UploadLimits) -> Router {
    Router::new()
        .route("/catalog", get(catalog))
        .route("/{*path}", any(module_request))
        .layer(DefaultBodyLimit::max(limits.body()))
        .with_state(ServerState { storage, limits })
}

/// What a module path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Operation {
    List,
    Info(String),
    Mod(String),
    Zip(String),
    Save(String),
    Delete(String),
}

impl Operation {
    /// The methods the operation answers to.
    fn allowed(&self) -> &'static str {
        match self {
            Operation::Save(_) => "POST",
            Operation::Delete(_) => "DELETE",
            _ => "GET, HEAD",
        }
    }

    fn accepts(&self, method: &Method) -> bool {
        match self {
            Operation::Save(_) => method == Method::POST,
            Operation::Delete(_) => method == Method::DELETE,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

/// A request the server refuses before touching storage.
#[derive(Debug, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn bad_request(message: impl Into<String>) -> Self {
        Refusal {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found() -> Self {
        Refusal {
            status: StatusCode::NOT_FOUND,
            message: "not found".to_string(),
        }
    }
}

/// A version from a URL: escaped, or literal when it has upper-case
/// letters and no `!` (as Athens' client sends it).
fn decode_version(raw: &str) -> Result<String, String> {
    if !raw.contains('!') && raw.bytes().any(|b| b.is_ascii_uppercase()) {
        return modzip::module::escape_version(raw)
            .map(|_| raw.to_string())
            .map_err(|e| e.to_string());
    }
    modzip::module::unescape_version(raw).map_err(|e| e.to_string())
}

/// Splits a request path into the module path and the operation.
fn parse_path(raw_path: &str) -> Result<(String, Operation), Refusal> {
    let path = percent_decode(raw_path)
        .ok_or_else(|| Refusal::bad_request("invalid percent-encoding in the path"))?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (escaped_module, rest) = path.split_once("/@v/").ok_or_else(Refusal::not_found)?;
    let operation = if rest == "list" {
        Operation::List
    } else {
        let (escaped_version, ext) = rest.rsplit_once('.').ok_or_else(Refusal::not_found)?;
        let make: fn(String) -> Operation = match ext {
            "info" => Operation::Info,
            "mod" => Operation::Mod,
            "zip" => Operation::Zip,
            "save" => Operation::Save,
            "delete" => Operation::Delete,
            _ => return Err(Refusal::not_found()),
        };
        let version = decode_version(escaped_version).map_err(Refusal::bad_request)?;
        make(version)
    };
    let module = modzip::module::unescape_path(escaped_module)
        .map_err(|e| Refusal::bad_request(e.to_string()))?;
    Ok((module, operation))
}

/// One line of plain text as the body.
fn text_response(status: StatusCode, message: &str) -> Response {
    let line: String = message
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    let mut response = (status, format!("{line}\n")).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TEXT));
    response
}

fn storage_error_response(err: &StorageError) -> Response {
    let status = match err {
        StorageError::NotFound { .. } => StatusCode::NOT_FOUND,
        StorageError::InvalidInput { .. }
        | StorageError::InvalidToken { .. }
        | StorageError::ZipSource { .. } => StatusCode::BAD_REQUEST,
        StorageError::Unsupported { .. } => StatusCode::NOT_IMPLEMENTED,
        StorageError::Conflict { .. } => StatusCode::CONFLICT,
        StorageError::Io { .. } | StorageError::Service(_) => {
            tracing::error!(error = %err, "external storage request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    text_response(status, &super::error_body::public_message(&err.to_string()))
}

fn small_response(body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn module_request(State(state): State<ServerState>, request: Request) -> Response {
    let (module, operation) = match parse_path(request.uri().path()) {
        Ok(parsed) => parsed,
        Err(refusal) => return text_response(refusal.status, &refusal.message),
    };
    if !operation.accepts(request.method()) {
        let mut response = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(operation.allowed()));
        return response;
    }
    let storage = &state.storage;
    let result = match operation {
        Operation::List => storage
            .list(&module)
            .await
            .map(|versions| small_response(Bytes::from(versions.join("\n")), CONTENT_TEXT)),
        Operation::Info(version) => storage
            .info(&module, &version)
            .await
            .map(|info| small_response(info, CONTENT_JSON)),
        Operation::Mod(version) => storage
            .go_mod(&module, &version)
            .await
            .map(|go_mod| small_response(go_mod, CONTENT_TEXT)),
        Operation::Zip(version) => storage.zip(&module, &version).await.map(|zip| {
            let body = match zip.in_memory {
                Some(data) => Body::from(data),
                None => Body::from_stream(ReaderStream::with_capacity(zip.reader, ZIP_READ_CHUNK)),
            };
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_ZIP));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(zip.size));
            response
        }),
        Operation::Save(version) => {
            return receive_upload(storage.as_ref(), state.limits, &module, &version, request).await
        }
        Operation::Delete(version) => storage
            .delete(&module, &version)
            .await
            .map(|()| StatusCode::OK.into_response()),
    };
    result.unwrap_or_else(|e| storage_error_response(&e))
}

/// The answer to a broken or oversized form.
fn form_error_response(err: &axum::extract::multipart::MultipartError) -> Response {
    let status = if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    text_response(status, &format!("reading the upload: {}", err.body_text()))
}

/// A small form file, refused when longer than `limit`.
async fn read_form_file(
    mut field: axum::extract::multipart::Field<'_>,
    name: &str,
    limit: u64,
) -> Result<Bytes, Response> {
    let mut data = BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| form_error_response(&e))? {
        if (data.len() + chunk.len()) as u64 > limit {
            return Err(text_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("{name} is larger than {limit} bytes"),
            ));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data.freeze())
}

/// Takes a `.save` upload: `mod.info` and `mod.mod` first, then `mod.zip`,
/// which is passed on to storage as it arrives.
async fn receive_upload(
    storage: &dyn Storage,
    limits: UploadLimits,
    module: &str,
    version: &str,
    request: Request,
) -> Response {
    let mut form = match Multipart::from_request(request, &()).await {
        Ok(form) => form,
        Err(rejection) => {
            return text_response(
                StatusCode::BAD_REQUEST,
                &format!(
                    "expected a multipart/form-data upload: {}",
                    rejection.body_text()
                ),
            )
        }
    };
    let mut info = None;
    let mut go_mod = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return form_error_response(&e),
        };
        let (slot, name, limit) = match field.name() {
            Some("mod.info") => (&mut info, "mod.info", limits.info),
            Some("mod.mod") => (&mut go_mod, "mod.mod", limits.go_mod),
            Some("mod.zip") => {
                let (Some(info), Some(go_mod)) = (info.take(), go_mod.take()) else {
                    return text_response(
                        StatusCode::BAD_REQUEST,
                        "mod.zip must come after mod.info and mod.mod",
                    );
                };
                return save_streamed(storage, limits, module, version, info, go_mod, field).await;
            }
            // Unknown parts are skipped, as Athens does.
            _ => continue,
        };
        if slot.is_some() {
            return text_response(
                StatusCode::BAD_REQUEST,
                &format!("the upload has {name} twice"),
            );
        }
        match read_form_file(field, name, limit).await {
            Ok(data) => *slot = Some(data),
            Err(response) => return response,
        }
    }
    text_response(StatusCode::BAD_REQUEST, "the upload has no mod.zip")
}

async fn save_streamed(
    storage: &dyn Storage,
    limits: UploadLimits,
    module: &str,
    version: &str,
    info: Bytes,
    go_mod: Bytes,
    zip_field: axum::extract::multipart::Field<'_>,
) -> Response {
    let too_large = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&too_large);
    let mut received: u64 = 0;
    let zip_limit = limits.zip;
    let chunks = zip_field.map(move |chunk| match chunk {
        Ok(chunk) => {
            received += chunk.len() as u64;
            if received > zip_limit {
                flag.store(true, Ordering::Relaxed);
                return Err(std::io::Error::other(format!(
                    "mod.zip is larger than {zip_limit} bytes"
                )));
            }
            Ok(chunk)
        }
        Err(e) => {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                flag.store(true, Ordering::Relaxed);
            }
            Err(std::io::Error::other(e.body_text()))
        }
    });
    let mut zip = StreamReader::new(Box::pin(chunks));
    match storage.save(module, version, go_mod, &mut zip, info).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e @ StorageError::ZipSource { .. }) if too_large.load(Ordering::Relaxed) => {
            text_response(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
        Err(e) => storage_error_response(&e),
    }
}

async fn catalog(
    State(state): State<ServerState>,
    Query(params): Query<CatalogParams>,
) -> Response {
    let page_size = match params.pagesize.as_deref() {
        None | Some("") => DEFAULT_CATALOG_PAGE,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return text_response(
                    StatusCode::BAD_REQUEST,
                    &format!("pagesize {raw:?} is not a non-negative integer"),
                )
            }
        },
    };
    match state.storage.catalog(&params.token, page_size).await {
        Ok(page) => small_response(Bytes::from(catalog_json(page)), CONTENT_JSON),
        Err(e) => storage_error_response(&e),
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{parse_path, router_with_limits, storage_router, Operation, UploadLimits};
    use crate::storage::{ExternalStorage, MemoryStorage, Storage, StorageError};

    async fn serve(router: axum::Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        addr
    }

    /// Form parts: name and content.
    type Form<'a> = Vec<(&'a str, &'a [u8])>;

    /// A parsed HTTP/1.1 response.
    #[derive(Debug)]
    struct RawResponse {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl RawResponse {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    fn dechunk(mut data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
            let size_text = std::str::from_utf8(&data[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap(), 16).unwrap();
            data = &data[line_end + 2..];
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&data[..size]);
            data = &data[size + 2..];
        }
    }

    fn parse_response(answer: &[u8]) -> RawResponse {
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&answer[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        let body = &answer[split + 4..];
        response.body = if response.header("transfer-encoding") == Some("chunked") {
            dechunk(body)
        } else {
            body.to_vec()
        };
        response
    }

    /// Sends `head` (request line and headers, without the blank line)
    /// and `body` as they are, reads the whole answer.
    async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> RawResponse {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        parse_response(&answer)
    }

    async fn get(addr: SocketAddr, path: &str) -> RawResponse {
        raw(addr, &format!("GET {path} HTTP/1.1"), b"").await
    }

    /// The form Athens' client builds (Go's multipart writer with
    /// `CreateFormFile`), parts in the order given.
    fn athens_form(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, (name, data)) in parts.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                     filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(data);
        }
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        body
    }

    /// `body` in chunked transfer coding, cut into uneven chunks as a pipe
    /// would deliver them.
    fn chunked(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in body.chunks(777) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }

    /// A save request as Athens' Go client sends it: a streamed (chunked)
    /// form body.
    async fn athens_save(addr: SocketAddr, path: &str, parts: &[(&str, &[u8])]) -> RawResponse {
        // Go's boundaries are 30 random bytes in hex.
        let boundary = "3f1c0d9e2b7a64c58e1f0a9b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d";
        let head = format!(
            "POST {path} HTTP/1.1\r\nUser-Agent: Go-http-client/1.1\r\n\
             Transfer-Encoding: chunked\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\nAccept-Encoding: gzip"
        );
        raw(addr, &head, &chunked(&athens_form(boundary, parts))).await
    }

    #[tokio::test]
    async fn speaks_athens_wire_format() {
        let memory = Arc::new(MemoryStorage::new());
        let addr = serve(storage_router(memory.clone())).await;
        let zip: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let info = br#"{"Version":"v1.0.0-RC1","Time":"2024-01-02T03:04:05Z"}"#;
        let go_mod = b"module github.com/Azure/go-autorest\n";
        // Athens escapes the module path but not the version.
        let base = "/github.com/!azure/go-autorest/@v";
        let saved = athens_save(
            addr,
            &format!("{base}/v1.0.0-RC1.save"),
            &[("mod.info", info), ("mod.mod", go_mod), ("mod.zip", &zip)],
        )
        .await;
        assert_eq!(
            saved.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&saved.body)
        );
        let module = "github.com/Azure/go-autorest";
        assert!(memory.exists(module, "v1.0.0-RC1").await.unwrap());

        let list = get(addr, &format!("{base}/list")).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.body, b"v1.0.0-RC1");
        let got = get(addr, &format!("{base}/v1.0.0-RC1.info")).await;
        assert_eq!((got.status, got.body.as_slice()), (200, &info[..]));
        // The escaped form of the version names the same version.
        let got = get(addr, &format!("{base}/v1.0.0-!r!c1.mod")).await;
        assert_eq!((got.status, got.body.as_slice()), (200, &go_mod[..]));
        let got = get(addr, &format!("{base}/v1.0.0-RC1.zip")).await;
        assert_eq!(got.status, 200);
        assert_eq!(got.header("content-length"), Some("10000"));
        assert_eq!(got.body, zip);

        let delete = format!("DELETE {base}/v1.0.0-RC1.delete HTTP/1.1");
        assert_eq!(raw(addr, &delete, b"").await.status, 200);
        assert!(!memory.exists(module, "v1.0.0-RC1").await.unwrap());
        for path in [
            format!("{base}/v1.0.0-RC1.info"),
            format!("{base}/v1.0.0-RC1.mod"),
            format!("{base}/v1.0.0-RC1.zip"),
        ] {
            assert_eq!(get(addr, &path).await.status, 404, "{path}");
        }
        assert_eq!(raw(addr, &delete, b"").await.status, 404);
        let list = get(addr, &format!("{base}/list")).await;
        assert_eq!((list.status, list.body.as_slice()), (200, &b""[..]));
    }

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("/github.com/!azure/x/@v/v1.0.0-!r!c1.zip").unwrap(),
            (
                "github.com/Azure/x".to_string(),
                Operation::Zip("v1.0.0-RC1".to_string())
            )
        );
        assert_eq!(
            parse_path("/example.com/m/@v/v1.2.3+incompatible.save")
                .unwrap()
                .1,
            Operation::Save("v1.2.3+incompatible".to_string())
        );
        assert_eq!(
            parse_path("/example.com/m%2Fsub/@v/list").unwrap(),
            ("example.com/m/sub".to_string(), Operation::List)
        );
    }

    #[tokio::test]
    async fn refuses_malformed_paths() {
        let addr = serve(storage_router(Arc::new(MemoryStorage::new()))).await;
        for path in [
            "/github.com/Azure/x/@v/list",
            "/github.com/!!azure/x/@v/v1.0.0.info",
            "/github.com/x!/@v/v1.0.0.info",
            "/../etc/@v/v1.0.0.info",
            "/example.com/../x/@v/v1.0.0.mod",
            "//example.com/x/@v/list",
            "/example.com/x/@v/v1.0.0!.info",
            "/example.com/x/@v/v1.0.0-!R.info",
            "/example.com/x/@v/..%2F..%2Fv1.0.0.zip",
            "/example.com/x/@v/%zz.info",
            "/example.com/%ff/@v/list",
            "/example.com/x/@v/.info",
        ] {
            let response = get(addr, path).await;
            assert_eq!(response.status, 400, "{path}");
            assert!(!response.body.is_empty(), "{path}");
        }
        for path in [
            "/example.com/x",
            "/example.com/x/@v/v1.0.0.exe",
            "/example.com/x/@v/v1.0.0",
            "/example.com/x/@v/master.info",
            "/example.com/x/@v/v1.0.0.zip",
            "/",
        ] {
            assert_eq!(get(addr, path).await.status, 404, "{path}");
        }
        let put = raw(
            addr,
            "PUT /example.com/x/@v/list HTTP/1.1\r\nContent-Length: 0",
            b"",
        )
        .await;
        assert_eq!(put.status, 405);
        assert_eq!(put.header("allow"), Some("GET, HEAD"));
        let get_save = get(addr, "/example.com/x/@v/v1.0.0.save").await;
        assert_eq!(get_save.status, 405);
        assert_eq!(get_save.header("allow"), Some("POST"));
    }

    #[tokio::test]
    async fn refuses_bad_uploads_and_keeps_nothing() {
        let memory = Arc::new(MemoryStorage::new());
        let limits = UploadLimits {
            info: 100,
            go_mod: 100,
            zip: 5000,
        };
        let addr = serve(router_with_limits(memory.clone(), limits)).await;
        let path = "/example.com/m/@v/v1.0.0.save";
        let info: &[u8] = b"{}";
        let go_mod: &[u8] = b"module example.com/m\n";
        let small_zip = vec![1u8; 100];
        let big = vec![2u8; 6000];
        let cases: Vec<(&str, Form, u16)> = vec![
            (
                "zip first",
                vec![
                    ("mod.zip", &small_zip),
                    ("mod.info", info),
                    ("mod.mod", go_mod),
                ],
                400,
            ),
            ("no zip", vec![("mod.info", info), ("mod.mod", go_mod)], 400),
            (
                "no mod",
                vec![("mod.info", info), ("mod.zip", &small_zip)],
                400,
            ),
            (
                "info twice",
                vec![("mod.info", info), ("mod.info", info), ("mod.mod", go_mod)],
                400,
            ),
            (
                "info too large",
                vec![
                    ("mod.info", &big[..200]),
                    ("mod.mod", go_mod),
                    ("mod.zip", &small_zip),
                ],
                413,
            ),
            (
                "zip too large",
                vec![("mod.info", info), ("mod.mod", go_mod), ("mod.zip", &big)],
                413,
            ),
        ];
        for (what, parts, status) in cases {
            let response = athens_save(addr, path, &parts).await;
            let body = String::from_utf8_lossy(&response.body).into_owned();
            assert_eq!(response.status, status, "{what}: {body}");
            assert!(
                !memory.exists("example.com/m", "v1.0.0").await.unwrap(),
                "{what}"
            );
        }
        // Not a form at all.
        let head =
            format!("POST {path} HTTP/1.1\r\nContent-Type: application/zip\r\nContent-Length: 3");
        assert_eq!(raw(addr, &head, b"zip").await.status, 400);
        // A version that can never be stored.
        let parts: [(&str, &[u8]); 3] = [
            ("mod.info", info),
            ("mod.mod", go_mod),
            ("mod.zip", &small_zip),
        ];
        let response = athens_save(addr, "/example.com/m/@v/master.save", &parts).await;
        assert_eq!(response.status, 400);
        assert!(memory.list("example.com/m").await.unwrap().is_empty());
        // Unknown parts are skipped and the rest saved.
        let mut with_extra = vec![("comment", &b"hi"[..])];
        with_extra.extend(parts);
        assert_eq!(athens_save(addr, path, &with_extra).await.status, 200);
        let stored = memory.zip("example.com/m", "v1.0.0").await.unwrap();
        assert_eq!(stored.in_memory.unwrap().as_ref(), &small_zip[..]);
    }

    #[tokio::test]
    async fn upload_cut_short_keeps_nothing() {
        let memory = Arc::new(MemoryStorage::new());
        let addr = serve(storage_router(memory.clone())).await;
        let boundary = "b0undary";
        let body = athens_form(
            boundary,
            &[
                ("mod.info", b"{}"),
                ("mod.mod", b"module example.com/m\n"),
                ("mod.zip", &[9u8; 4000]),
            ],
        );
        // The client goes away before the zip has all arrived.
        let sent = &body[..body.len() - 1000];
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /example.com/m/@v/v1.0.0.save HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(sent).await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        // Reading to the end waits until the server has given up.
        let _ = stream.read_to_end(&mut answer).await;
        if !answer.is_empty() {
            assert_eq!(parse_response(&answer).status, 400);
        }
        assert!(!memory.exists("example.com/m", "v1.0.0").await.unwrap());
        assert!(memory.catalog("", 0).await.unwrap().entries.is_empty());
    }

    #[tokio::test]
    async fn serves_the_catalog() {
        let memory = Arc::new(MemoryStorage::new());
        for version in ["v1.0.0", "v1.1.0", "v1.2.0"] {
            let mut zip: &[u8] = b"z";
            memory
                .save(
                    "example.com/m",
                    version,
                    Bytes::new(),
                    &mut zip,
                    Bytes::new(),
                )
                .await
                .unwrap();
        }
        let addr = serve(storage_router(memory)).await;
        let page = get(addr, "/catalog?pagesize=2").await;
        assert_eq!(page.status, 200);
        let json: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
        assert_eq!(
            json["modules"],
            serde_json::json!([
                {"module": "example.com/m", "version": "v1.0.0"},
                {"module": "example.com/m", "version": "v1.1.0"},
            ])
        );
        let next = json["next"].as_str().unwrap().replace('|', "%7C");
        let rest = get(addr, &format!("/catalog?pagesize=2&token={next}")).await;
        let json: serde_json::Value = serde_json::from_slice(&rest.body).unwrap();
        assert_eq!(json["modules"].as_array().unwrap().len(), 1);
        assert!(json.get("next").is_none());
        let all = get(addr, "/catalog?pagesize=0").await;
        let json: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
        assert_eq!(json["modules"].as_array().unwrap().len(), 3);
        assert_eq!(get(addr, "/catalog?pagesize=-1").await.status, 400);
        assert_eq!(get(addr, "/catalog?pagesize=x").await.status, 400);
        assert_eq!(get(addr, "/catalog?token=nonsense").await.status, 400);
    }

    #[tokio::test]
    async fn our_client_sees_refusals_as_invalid_input() {
        let memory = Arc::new(MemoryStorage::new());
        let limits = UploadLimits {
            info: 100,
            go_mod: 100,
            zip: 5000,
        };
        let addr = serve(router_with_limits(memory.clone(), limits)).await;
        let client = ExternalStorage::new(&format!("http://{addr}")).unwrap();
        let mut zip: &[u8] = &[0u8; 6000];
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
        assert!(matches!(err, StorageError::InvalidInput { .. }), "{err}");
        assert!(err.to_string().contains("413"), "{err}");
        assert!(!memory.exists("example.com/m", "v1.0.0").await.unwrap());
    }
}
