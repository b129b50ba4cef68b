//! The private log's HTTP endpoints, those of sum.golang.org, answered
//! under `/sumdb/<name>/` by the proxy's sumdb route: a client with
//! `GOSUMDB="<name>+<vkey> https://proxy.example/sumdb/<name>"` reads
//! `<url>/lookup/M@V`, `<url>/tile/8/...` and `<url>/latest`; a client
//! with only `GOSUMDB="<name>+<vkey>"` and the proxy as GOPROXY finds it
//! through `/sumdb/<name>/supported`.

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use sumdb::tlog::Tile;

use super::PrivateLog;

const CONTENT_TEXT: &str = "text/plain; charset=utf-8";
const CONTENT_TILE: &str = "application/octet-stream";

fn text(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(Body::from(format!("{message}\n")));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TEXT));
    response
}

fn body(data: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = Response::new(Body::from(data));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn failed(error: super::LogError) -> Response {
    tracing::error!(%error, "private checksum database");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error: the private checksum database failed",
    )
}

/// Answers `tail`, the request path after `/sumdb/<name>/`.
pub async fn serve(log: &PrivateLog, method: &Method, tail: &str) -> Response {
    if tail == "supported" {
        return StatusCode::OK.into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let mut response = if tail == "latest" {
        match log.head().await {
            Ok((note, _)) => body(note, CONTENT_TEXT, "no-cache"),
            Err(e) => failed(e),
        }
    } else if let Some(target) = tail.strip_prefix("lookup/") {
        lookup(log, target).await
    } else if tail.starts_with("tile/") {
        match Tile::parse_path(tail) {
            Err(_) => text(StatusCode::NOT_FOUND, "not found: malformed tile path"),
            Ok(tile) => match log.tile(&tile).await {
                // A complete tile never changes; a partial one is replaced
                // by a wider one as the log grows, under another path.
                Ok(Some(data)) => body(data, CONTENT_TILE, "public, max-age=31536000, immutable"),
                Ok(None) => text(StatusCode::NOT_FOUND, "not found: no such tile in this log"),
                Err(e) => failed(e),
            },
        }
    } else {
        text(StatusCode::NOT_FOUND, "not found")
    };
    if method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    response
}

async fn lookup(log: &PrivateLog, target: &str) -> Response {
    let Some((escaped_module, escaped_version)) = target.rsplit_once('@') else {
        return text(
            StatusCode::BAD_REQUEST,
            "bad request: lookup wants MODULE@VERSION",
        );
    };
    let (Ok(module), Ok(version)) = (
        modzip::module::unescape_path(escaped_module),
        modzip::module::unescape_version(escaped_version),
    ) else {
        return text(
            StatusCode::BAD_REQUEST,
            "bad request: malformed module path or version",
        );
    };
    if crate::storage::check_storable(&module, &version).is_err() {
        return text(
            StatusCode::BAD_REQUEST,
            "bad request: invalid module path or version",
        );
    }
    if !log.is_private(&module) {
        return text(
            StatusCode::NOT_FOUND,
            &format!(
                "not found: {module} is not a private module; this database holds only modules matching the proxy's GONOSUMDB/GOPRIVATE/NoSumPatterns"
            ),
        );
    }
    let mut found = log.lookup(&module, &version).await;
    if matches!(found, Ok(None)) {
        // Stored before the log was configured, or its append failed.
        found = match log.append_stored(&module, &version).await {
            Ok(Some(_)) => log.lookup(&module, &version).await,
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
    }
    match found {
        Ok(Some(answer)) => body(answer, CONTENT_TEXT, "no-cache"),
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            &format!("not found: {module}@{version} is not stored by this proxy"),
        ),
        Err(e) => failed(e),
    }
}
