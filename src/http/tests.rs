use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::Request as HttpRequest;
use futures::future::join_all;
use tower::ServiceExt;

use super::*;
use crate::config::{Config, StorageType};
use crate::fetch::{FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
use crate::storage::{MemoryStorage, Storage};

const PSEUDO: &str = "v0.0.0-20200101000000-abcdefabcdef";

/// Serves example.com/Mod; example.com/missing does not exist;
/// example.com/broken fails upstream.
struct FakeFetcher {
    fetches: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    delay: Duration,
}

impl FakeFetcher {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(FakeFetcher {
            fetches: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            delay,
        })
    }

    fn check(module: &str, version: &str) -> Result<(), FetchError> {
        match module {
            "example.com/broken" => Err(FetchError::Upstream {
                module: module.into(),
                version: version.into(),
                upstream: "https://proxy.example".into(),
                status: Some(500),
                message: "500 Internal Server Error: boom".into(),
            }),
            "example.com/Mod" => Ok(()),
            _ => Err(FetchError::not_found(module, version, "no such module")),
        }
    }
}

fn zip_bytes(version: &str) -> Vec<u8> {
    format!("zip of {version};").repeat(5000).into_bytes()
}

fn info_json(version: &str) -> String {
    format!("{{\"Version\":\"{version}\",\"Time\":\"2020-01-01T00:00:00Z\"}}")
}

#[async_trait]
impl Fetcher for FakeFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Self::check(module, version)?;
        let version = match version {
            "main" => PSEUDO.to_string(),
            v if is_canonical_version(v) => v.to_string(),
            v => return Err(FetchError::not_found(module, v, "unknown revision")),
        };
        Ok(FetchedModule {
            info: Bytes::from(info_json(&version)),
            go_mod: Bytes::from(format!("module {module}\n")),
            zip: FetchedZip::from_bytes(&zip_bytes(&version), None).unwrap(),
            version,
        })
    }
    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        Self::check(module, "")?;
        Ok(vec!["v1.0.0".into(), "v1.1.0".into()])
    }
    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        Self::check(module, "")?;
        Ok(RevInfo {
            version: "v1.1.0".into(),
            time: "2020-01-01T00:00:00Z".into(),
            origin: None,
        })
    }
    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        Err(FetchError::not_found(module, rev, "unused"))
    }
}

fn app_with(config: &Config, fetcher: Arc<FakeFetcher>) -> (Router, Arc<MemoryStorage>) {
    let storage = Arc::new(MemoryStorage::new());
    let app = crate::app::testing::router(config, storage.clone(), fetcher).unwrap();
    (app, storage)
}

fn app(fetcher: Arc<FakeFetcher>) -> Router {
    app_with(&Config::default(), fetcher).0
}

async fn send(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Response {
    let mut builder = HttpRequest::builder().method(method).uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    app.clone()
        .oneshot(builder.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body_of(response: Response) -> Vec<u8> {
    axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec()
}

fn header_of<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let response = send(app, "GET", uri, &[]).await;
    let status = response.status();
    (
        status,
        String::from_utf8_lossy(&body_of(response).await).to_string(),
    )
}

#[tokio::test]
async fn malformed_paths_and_versions_are_bad_requests() {
    let fetcher = FakeFetcher::new(Duration::ZERO);
    let app = app(fetcher.clone());
    for uri in [
        "/Example.com/m/@v/list",         // upper case must be escaped
        "/example.com/!!m/@v/list",       // broken escape
        "/example.com/m!/@latest",        // dangling escape
        "/example.com/../etc/@v/list",    // dot-dot element
        "/example.com/m/@v/v1.0.0!.info", // broken version escape
        "/example.com/m/@v/V1.0.0.mod",   // unescaped upper case in version
        "/example.com/m/@v/%zz.info",     // broken percent-encoding
        "/nodot/@v/list",                 // not a module path
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(body.starts_with("bad request"), "{uri}: {body}");
        assert_eq!(
            body.matches('\n').count(),
            1,
            "{uri}: one line expected: {body:?}"
        );
    }
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_endpoints_and_impossible_versions_are_not_found() {
    let fetcher = FakeFetcher::new(Duration::ZERO);
    let app = app(fetcher.clone());
    for uri in [
        "/example.com/m/@v/v1.0.0.tar",
        "/example.com/m/@v/",
        "/example.com/m",
        "/example.com/m/v2/@v/v3.0.0.info", // a /v2 path has v2 versions only
        "/gopkg.in/yaml.v2/@v/v3.0.0.zip",
        "/example.com/m/v2/@v/v1.0.0.mod",
    ] {
        let (status, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
    }
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn missing_modules_are_404_and_upstream_failures_502() {
    let app = app(FakeFetcher::new(Duration::ZERO));
    for uri in [
        "/example.com/missing/@v/v1.0.0.info",
        "/example.com/missing/@v/v1.0.0.mod",
        "/example.com/missing/@v/v1.0.0.zip",
        "/example.com/missing/@v/list",
        "/example.com/missing/@latest",
        "/example.com/!mod/@v/nosuchbranch.info",
    ] {
        let response = send(&app, "GET", uri, &[]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(
            header_of(&response, "content-type"),
            "text/plain; charset=utf-8"
        );
        let body = String::from_utf8(body_of(response).await).unwrap();
        assert!(body.starts_with("not found: "), "{uri}: {body}");
        assert!(
            body.ends_with('\n') && body.matches('\n').count() == 1,
            "{body:?}"
        );
    }
    let (status, body) = get(&app, "/example.com/broken/@v/v1.0.0.info").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("boom"));
    let (status, _) = get(&app, "/example.com/broken/@v/list").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn serves_artifacts_with_types_and_cache_headers() {
    let fetcher = FakeFetcher::new(Duration::ZERO);
    let app = app(fetcher.clone());

    let info = send(&app, "GET", "/example.com/!mod/@v/v1.0.0.info", &[]).await;
    assert_eq!(info.status(), StatusCode::OK);
    assert_eq!(header_of(&info, "content-type"), "application/json");
    assert_eq!(header_of(&info, "cache-control"), CACHE_IMMUTABLE);
    let etag = header_of(&info, "etag").to_string();
    assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
    assert_eq!(
        String::from_utf8(body_of(info).await).unwrap(),
        info_json("v1.0.0")
    );

    let go_mod = send(&app, "GET", "/example.com/!mod/@v/v1.0.0.mod", &[]).await;
    assert_eq!(
        header_of(&go_mod, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(body_of(go_mod).await, b"module example.com/Mod\n");

    let zip = send(&app, "GET", "/example.com/!mod/@v/v1.0.0.zip", &[]).await;
    assert_eq!(header_of(&zip, "content-type"), "application/zip");
    assert_eq!(header_of(&zip, "cache-control"), CACHE_IMMUTABLE);
    let expected = zip_bytes("v1.0.0");
    assert_eq!(
        header_of(&zip, "content-length"),
        expected.len().to_string()
    );
    assert_eq!(body_of(zip).await, expected);

    let list = send(&app, "GET", "/example.com/!mod/@v/list", &[]).await;
    assert_eq!(
        header_of(&list, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        header_of(&list, "cache-control"),
        "no-cache, no-store, must-revalidate"
    );
    assert_eq!(body_of(list).await, b"v1.0.0\nv1.1.0\n");

    let latest = send(&app, "GET", "/example.com/!mod/@latest", &[]).await;
    assert_eq!(header_of(&latest, "content-type"), "application/json");
    assert_eq!(
        header_of(&latest, "cache-control"),
        "no-cache, no-store, must-revalidate"
    );
    let info: RevInfo = serde_json::from_slice(&body_of(latest).await).unwrap();
    assert_eq!(info.version, "v1.1.0");

    // One fetch stored everything; the rest came from storage.
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn etags_answer_conditional_requests() {
    let app = app(FakeFetcher::new(Duration::ZERO));
    for uri in [
        "/example.com/!mod/@v/v1.0.0.info",
        "/example.com/!mod/@v/v1.0.0.zip",
        "/example.com/!mod/@v/list",
    ] {
        let first = send(&app, "GET", uri, &[]).await;
        let etag = header_of(&first, "etag").to_string();
        assert!(!etag.is_empty(), "{uri}");
        let again = send(&app, "GET", uri, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{uri}");
        assert_eq!(header_of(&again, "etag"), etag);
        assert!(body_of(again).await.is_empty());
        let other = send(&app, "GET", uri, &[("if-none-match", "\"something-else\"")]).await;
        assert_eq!(other.status(), StatusCode::OK, "{uri}");
    }
}

#[tokio::test]
async fn head_returns_headers_without_body() {
    let app = app(FakeFetcher::new(Duration::ZERO));
    let head = send(&app, "HEAD", "/example.com/!mod/@v/v1.0.0.zip", &[]).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        header_of(&head, "content-length"),
        zip_bytes("v1.0.0").len().to_string()
    );
    assert_eq!(header_of(&head, "content-type"), "application/zip");
    assert!(body_of(head).await.is_empty());
    let head = send(&app, "HEAD", "/example.com/!mod/@v/v1.0.0.info", &[]).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        header_of(&head, "content-length"),
        info_json("v1.0.0").len().to_string()
    );
    assert!(body_of(head).await.is_empty());
    let head = send(&app, "HEAD", "/example.com/missing/@v/v1.0.0.zip", &[]).await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn other_methods_are_refused() {
    let app = app(FakeFetcher::new(Duration::ZERO));
    let response = send(&app, "POST", "/example.com/!mod/@v/list", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header_of(&response, "allow"), "GET, HEAD");
    let response = send(&app, "DELETE", "/healthz", &[]).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn branch_info_resolves_through_the_fetcher_with_short_caching() {
    let fetcher = FakeFetcher::new(Duration::ZERO);
    let (app, storage) = app_with(&Config::default(), fetcher);
    let response = send(&app, "GET", "/example.com/!mod/@v/main.info", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header_of(&response, "cache-control"), CACHE_SHORT);
    let info: RevInfo = serde_json::from_slice(&body_of(response).await).unwrap();
    assert_eq!(info.version, PSEUDO);
    assert!(storage.exists("example.com/Mod", PSEUDO).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_zip_requests_fetch_once_and_agree() {
    let fetcher = FakeFetcher::new(Duration::from_millis(100));
    let app = app(fetcher.clone());
    let requests = (0..100).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            let response = send(&app, "GET", "/example.com/!mod/@v/v1.0.0.zip", &[]).await;
            (response.status(), body_of(response).await)
        })
    });
    let results = join_all(requests).await;
    let expected = zip_bytes("v1.0.0");
    for result in results {
        let (status, body) = result.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, expected);
    }
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_get_workers_bound_concurrent_fetches() {
    let fetcher = FakeFetcher::new(Duration::from_millis(50));
    let config = Config {
        go_get_workers: 2,
        ..Config::default()
    };
    let (app, _) = app_with(&config, fetcher.clone());
    let requests = (0..8).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            send(
                &app,
                "GET",
                &format!("/example.com/!mod/@v/v1.0.{i}.info"),
                &[],
            )
            .await
            .status()
        })
    });
    for status in join_all(requests).await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
    assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 8);
    assert_eq!(fetcher.max_running.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn health_readiness_version_and_catalog() {
    let app = app(FakeFetcher::new(Duration::ZERO));
    let health = send(&app, "GET", "/healthz", &[]).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(header_of(&health, "content-type"), "application/json");
    assert_eq!(
        send(&app, "GET", "/readyz", &[]).await.status(),
        StatusCode::OK
    );
    let (status, body) = get(&app, "/version").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, crate::build_info::DETAILS.json_line());
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["version"], crate::build_info::DETAILS.version);

    for v in ["v1.0.0", "v1.1.0", "v1.2.0"] {
        assert_eq!(
            get(&app, &format!("/example.com/!mod/@v/{v}.info")).await.0,
            StatusCode::OK
        );
    }
    let (status, body) = get(&app, "/catalog?pagesize=2").await;
    assert_eq!(status, StatusCode::OK);
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["modules"].as_array().unwrap().len(), 2);
    assert_eq!(page["modules"][0]["module"], "example.com/Mod");
    let next = page["next"].as_str().unwrap().to_string();
    let (_, body) = get(
        &app,
        &format!("/catalog?pagesize=2&token={}", next.replace('|', "%7C")),
    )
    .await;
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["modules"][0]["version"], "v1.2.0");
    assert!(page.get("next").is_none());
    assert_eq!(
        get(&app, "/catalog?pagesize=zero").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/catalog?token=garbage").await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn path_prefix_moves_the_protocol() {
    let config = Config {
        path_prefix: "/athens/".into(),
        ..Config::default()
    };
    let (app, _) = app_with(&config, FakeFetcher::new(Duration::ZERO));
    assert_eq!(
        get(&app, "/athens/example.com/!mod/@v/list").await.0,
        StatusCode::OK
    );
    assert_eq!(get(&app, "/athens/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/").await.0, StatusCode::OK);
    assert_eq!(
        get(&app, "/example.com/!mod/@v/list").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = app(FakeFetcher::new(Duration::ZERO));
    let response = send(&app, "GET", "/healthz", &[(REQUEST_ID_HEADER, "abc-123")]).await;
    assert_eq!(header_of(&response, REQUEST_ID_HEADER), "abc-123");
    let a = send(&app, "GET", "/healthz", &[]).await;
    let b = send(
        &app,
        "GET",
        "/healthz",
        &[(REQUEST_ID_HEADER, "bad id with spaces")],
    )
    .await;
    let (a, b) = (
        header_of(&a, REQUEST_ID_HEADER),
        header_of(&b, REQUEST_ID_HEADER),
    );
    assert!(!a.is_empty() && !b.is_empty());
    assert_ne!(a, b);
    assert_ne!(b, "bad id with spaces");
}

#[test]
fn protocol_paths_parse() {
    let parse = |p: &str| parse_protocol_path(p).map_err(|(status, _)| status);
    assert_eq!(
        parse("/github.com/!azure/go-x/v2/@v/v2.1.0%2Bincompatible.info").unwrap(),
        (
            "github.com/Azure/go-x/v2".to_string(),
            Endpoint::Info("v2.1.0+incompatible".into())
        )
    );
    assert_eq!(
        parse("/example.com/m/@v/v1.0.0-!r!c1.zip").unwrap(),
        (
            "example.com/m".to_string(),
            Endpoint::Zip("v1.0.0-RC1".into())
        )
    );
    assert_eq!(parse("/example.com/m/@latest").unwrap().1, Endpoint::Latest);
    assert_eq!(parse("/example.com/m/@v/list").unwrap().1, Endpoint::List);
    assert_eq!(
        parse("/example.com/m/@v/x/y.info").unwrap_err(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        parse("/example.com/m/@v/listing").unwrap_err(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(percent_decode("%41b%2f"), Some("Ab/".into()));
    assert_eq!(percent_decode("%4"), None);
    assert_eq!(percent_decode("%ff"), None);
}

#[tokio::test]
async fn real_listener_streams_head_and_shuts_down_gracefully() {
    let fetcher = FakeFetcher::new(Duration::from_millis(300));
    let app = app(fetcher.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_listener(
        listener,
        app,
        async move {
            let _ = stop_rx.await;
        },
        Duration::from_secs(5),
    ));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");

    // A slow request in flight when shutdown starts still completes.
    let slow = tokio::spawn({
        let client = client.clone();
        let url = format!("{base}/example.com/!mod/@v/v1.0.0.zip");
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status(), response.bytes().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop_tx.send(()).unwrap();
    let (status, body) = slow.await.unwrap();
    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(&body[..], &zip_bytes("v1.0.0")[..]);
    server.await.unwrap().unwrap();
    // The listener is closed now.
    assert!(client.get(format!("{base}/healthz")).send().await.is_err());
}

#[tokio::test]
async fn real_listener_head_keeps_content_length() {
    let app = app(FakeFetcher::new(Duration::ZERO));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve_listener(
        listener,
        app,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/example.com/!mod/@v/v1.0.0.zip");
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), reqwest::StatusCode::OK);
    assert_eq!(
        head.headers()
            .get("content-length")
            .unwrap()
            .to_str()
            .unwrap(),
        zip_bytes("v1.0.0").len().to_string()
    );
    let get = client.get(&url).send().await.unwrap();
    assert_eq!(get.bytes().await.unwrap().len(), zip_bytes("v1.0.0").len());
    server.abort();
}

#[tokio::test]
async fn storage_is_opened_from_config() {
    let open = |config: Config| async move { crate::backends::open(&config).await };
    assert!(open(Config::default()).await.is_ok());
    let mut config = Config {
        storage_type: StorageType::Disk,
        ..Config::default()
    };
    let dir = tempfile::tempdir().unwrap();
    config.storage.disk.root_path = dir.path().join("absent").to_string_lossy().into_owned();
    assert!(open(config.clone()).await.is_err());
    config.storage.disk.root_path = dir.path().to_string_lossy().into_owned();
    let opened = open(config.clone()).await.unwrap();
    assert!(opened.lock.is_none());
    config.storage_type = StorageType::Mongo;
    let err = open(config).await.err().unwrap();
    assert!(err.to_string().contains("not supported"), "{err}");
}

/// The ETag as it was first defined (hex of the first 16 SHA-256 bytes
/// over length-prefixed parts, quoted), so the faster code cannot change
/// values that clients and caches already hold.
fn reference_etag(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let hex: String = hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

#[test]
fn etags_keep_their_values() {
    for body in [&b""[..], b"module example.com/m\n", &[0xffu8; 300][..]] {
        assert_eq!(etag_of(&[body]).to_str().unwrap(), reference_etag(&[body]));
    }
    for (module, version, size) in [
        ("example.com/m", "v1.0.0", 0u64),
        ("example.com/Mod/v2", PSEUDO, 123_456_789),
    ] {
        let identity = format!("{module}@{version}");
        assert_eq!(
            zip_etag(module, version, size).to_str().unwrap(),
            reference_etag(&[identity.as_bytes(), &size.to_be_bytes()])
        );
    }
    // Unrelated inputs must not collide.
    assert_ne!(
        zip_etag("a.com/x", "v1.0.0", 1),
        zip_etag("a.com/x", "v1.0.0", 2)
    );
}

#[test]
fn the_major_version_check_is_the_module_check_on_valid_paths() {
    for module in [
        "example.com/m",
        "example.com/m/v2",
        "example.com/m/v3",
        "gopkg.in/yaml.v2",
        "gopkg.in/yaml.v1",
        "gopkg.in/check.v1-unstable",
        "example.com/m/v1",
    ] {
        // The handler only ever sees paths that passed this check.
        if modzip::module::check_path(module).is_err() {
            continue;
        }
        for version in [
            "v0.1.0",
            "v1.2.3",
            "v2.0.0",
            "v2.0.0+incompatible",
            "v3.1.0-pre",
            "v0.0.0-20200101000000-abcdefabcdef",
            "v1.0.0+incompatible",
        ] {
            assert_eq!(
                version_fits_path(module, version),
                modzip::module::check(module, version).is_ok(),
                "{module}@{version}"
            );
        }
    }
}

#[test]
fn remembered_etags_are_those_of_the_bodies() {
    // More bodies than the memo has slots, each served several times, as
    // the same allocation (a cache hit) and as equal copies; slices of one
    // buffer share its address but not their length.
    let bodies: Vec<Bytes> = (0..3 * ETAG_MEMO_SLOTS)
        .map(|i| Bytes::from(format!("{{\"Version\":\"v1.0.{i}\"}}")))
        .collect();
    let whole = Bytes::from(vec![7u8; 64]);
    for _ in 0..3 {
        for body in &bodies {
            let want = reference_etag(&[body]);
            assert_eq!(body_etag(body).to_str().unwrap(), want);
            assert_eq!(
                body_etag(&Bytes::copy_from_slice(body)).to_str().unwrap(),
                want
            );
        }
        for len in [64, 32, 1] {
            let part = whole.slice(..len);
            assert_eq!(body_etag(&part).to_str().unwrap(), reference_etag(&[&part]));
        }
    }
    let large = Bytes::from(vec![1u8; ETAG_MEMO_MAX_BODY + 1]);
    assert_eq!(
        body_etag(&large).to_str().unwrap(),
        reference_etag(&[&large])
    );
    assert_eq!(
        body_etag(&Bytes::new()).to_str().unwrap(),
        reference_etag(&[b""])
    );
}

#[test]
fn remembered_zip_etags_are_those_of_the_zips() {
    // More zips than the memo has slots, each asked for several times;
    // pairs that would join to the same `module@version` text another
    // way, and the same identity with another size, keep their own ETags.
    let mut cases: Vec<(String, String, u64)> = (0..3 * ZIP_ETAG_MEMO_SLOTS)
        .map(|i| (format!("example.com/m{i}"), format!("v1.0.{i}"), i as u64))
        .collect();
    cases.push(("example.com/a".into(), "v1.0.0".into(), 5));
    cases.push(("example.com/a".into(), "v1.0.0".into(), 6));
    cases.push(("example.com/a/v1".into(), ".0.0".into(), 5));
    for _ in 0..3 {
        for (module, version, size) in &cases {
            assert_eq!(
                remembered_zip_etag(module, version, *size),
                zip_etag(module, version, *size),
                "{module}@{version} {size}"
            );
        }
    }
}

#[test]
fn generated_request_ids_have_the_documented_shape() {
    let a = new_request_id();
    let b = new_request_id();
    assert_ne!(a, b);
    let text = a.to_str().unwrap();
    let fields: Vec<&str> = text.split('-').collect();
    assert_eq!(fields.len(), 3, "{text}");
    assert!(
        fields[0].len() >= 16 && fields[1].len() >= 8 && fields[2].len() >= 8,
        "{text}"
    );
    assert!(text
        .bytes()
        .all(|c| c == b'-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(
        u32::from_str_radix(fields[1], 16).unwrap(),
        std::process::id()
    );
    let mut digits = Vec::new();
    push_hex(&mut digits, 0x1_0000_0000, 8);
    assert_eq!(digits, b"100000000");
}

/// A backend that has no catalog (here an external storage server that
/// speaks only Athens' protocol) makes `/catalog` answer 501, as Athens
/// does.
#[tokio::test]
async fn catalog_of_a_backend_without_one_is_not_implemented() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let athens_like = Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "not found") });
    let server = tokio::spawn(async move { axum::serve(listener, athens_like).await });
    let storage = crate::storage::ExternalStorage::new(&format!("http://{addr}")).unwrap();
    let app = crate::app::testing::router(
        &Config::default(),
        Arc::new(storage),
        FakeFetcher::new(Duration::ZERO),
    )
    .unwrap();
    let (status, body) = get(&app, "/catalog").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED, "{body}");
    assert!(body.contains("no catalog"), "{body}");
    server.abort();
}

#[cfg(unix)]
#[tokio::test]
async fn serves_on_a_unix_socket_and_closes_idle_connections() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("athens.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let limits = ConnectionLimits {
        grace: Duration::from_secs(1),
        read_header_timeout: Duration::from_millis(300),
        // Far from the header timeout, so which one closed a connection
        // shows even on a loaded machine.
        idle_timeout: Duration::from_secs(3),
        max_connections: 4,
    };
    let app = app(FakeFetcher::new(Duration::ZERO));
    let server = tokio::spawn(serve_listener_with(
        listener,
        app,
        std::future::pending(),
        limits,
    ));
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    // Kept alive, then closed once idle for IdleTimeout.
    let idle = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        idle.elapsed() >= Duration::from_millis(2900),
        "{:?}",
        idle.elapsed()
    );
    // Headers that never finish: closed after ReadHeaderTimeout.
    let mut slow = tokio::net::UnixStream::connect(&path).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(20), slow.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
    server.abort();
}
