//! `/robots.txt`: the file `RobotsFile` names, read at each request as
//! Athens serves it (a path relative to the working directory; the
//! default `robots.txt` is usually absent, and then the answer is 404).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tokio_util::io::ReaderStream;

use super::features::Features;
use super::{error_response, CONTENT_TEXT};

/// Serves `RobotsFile`. Only a regular file is served: a missing file or
/// anything else (a directory is never listed) is 404, an unreadable one
/// 403 or 500, as Go's `http.ServeFile` answers these. The body is
/// streamed, so the file's size does not matter.
pub(crate) async fn robots(State(features): State<Arc<Features>>) -> Response {
    let path = features.robots_file.as_str();
    if path.is_empty() {
        return error_response(StatusCode::NOT_FOUND, "not found: no RobotsFile configured");
    }
    let opened = async {
        let file = tokio::fs::File::open(path).await?;
        let meta = file.metadata().await?;
        Ok::<_, std::io::Error>((file, meta))
    };
    match opened.await {
        Ok((file, meta)) if meta.is_file() => {
            let mut response = Response::new(Body::from_stream(ReaderStream::new(file)));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TEXT));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
            response
        }
        Ok(_) => error_response(StatusCode::NOT_FOUND, "not found: robots.txt"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            error_response(StatusCode::NOT_FOUND, "not found: robots.txt")
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            tracing::warn!(path, error = %e, "reading RobotsFile");
            error_response(StatusCode::FORBIDDEN, "forbidden: robots.txt")
        }
        Err(e) => {
            tracing::error!(path, error = %e, "reading RobotsFile");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "cannot read robots.txt")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use crate::config::Config;
    use crate::fetch::{FetchError, FetchedModule, Fetcher, RevInfo};
    use crate::storage::MemoryStorage;

    /// Never asked: /robots.txt does not touch the protocol.
    struct NoFetcher;

    #[async_trait::async_trait]
    impl Fetcher for NoFetcher {
        async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
            Err(FetchError::not_found(module, version, "unused"))
        }
        async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
            Err(FetchError::not_found(module, "", "unused"))
        }
        async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
            Err(FetchError::not_found(module, "", "unused"))
        }
        async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
            Err(FetchError::not_found(module, rev, "unused"))
        }
    }

    async fn get(config: &Config, method: &str, uri: &str) -> (StatusCode, String, String) {
        let app = crate::app::testing::router(
            config,
            Arc::new(MemoryStorage::new()),
            Arc::new(NoFetcher),
        )
        .unwrap();
        let response = app
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8_lossy(&body).to_string(),
        )
    }

    #[tokio::test]
    async fn serves_the_configured_file_read_at_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("robots.txt");
        std::fs::write(&file, "User-agent: *\nDisallow: /\n").unwrap();
        let config = Config {
            robots_file: file.display().to_string(),
            ..Config::default()
        };
        let (status, content_type, body) = get(&config, "GET", "/robots.txt").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/plain; charset=utf-8");
        assert_eq!(body, "User-agent: *\nDisallow: /\n");
        let (status, _, body) = get(&config, "HEAD", "/robots.txt").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, ""));
        // Changed on disk: the next answer has the new text.
        std::fs::write(&file, "User-agent: *\nAllow: /\n").unwrap();
        let (_, _, body) = get(&config, "GET", "/robots.txt").await;
        assert_eq!(body, "User-agent: *\nAllow: /\n");
        // Under a path prefix, beside the protocol, as in Athens.
        let prefixed = Config {
            path_prefix: "/athens".into(),
            ..config.clone()
        };
        let (status, _, body) = get(&prefixed, "GET", "/athens/robots.txt").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "User-agent: *\nAllow: /\n")
        );
    }

    #[tokio::test]
    async fn a_missing_file_or_a_directory_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        for robots_file in [
            dir.path().join("absent.txt").display().to_string(),
            dir.path().display().to_string(),
            String::new(),
        ] {
            let config = Config {
                robots_file: robots_file.clone(),
                ..Config::default()
            };
            let (status, _, body) = get(&config, "GET", "/robots.txt").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{robots_file:?}: {body}");
            assert!(!body.contains(dir.path().to_str().unwrap()), "{body}");
        }
    }
}
