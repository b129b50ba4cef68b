//! HTTP-level tests of the optional layers and the download modes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use tower::ServiceExt;

use crate::app::testing;
use crate::config::Config;
use crate::fetch::{FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
use crate::http::{router, AppState, Features};
use crate::protocol::Protocol;
use crate::stash::BaseStasher;
use crate::storage::{MemoryStorage, Storage};

/// Serves any canonical version of any module, counting fetches.
struct CountingFetcher {
    fetches: AtomicUsize,
}

#[async_trait]
impl Fetcher for CountingFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        Ok(FetchedModule {
            version: version.to_string(),
            info: Bytes::from(format!(
                "{{\"Version\":\"{version}\",\"Time\":\"2020-01-01T00:00:00Z\"}}"
            )),
            go_mod: Bytes::from(format!("module {module}\n")),
            zip: FetchedZip::from_bytes(b"zip", None).unwrap(),
        })
    }
    async fn list(&self, _module: &str) -> Result<Vec<String>, FetchError> {
        Ok(vec!["v1.0.0".into()])
    }
    async fn latest(&self, _module: &str) -> Result<RevInfo, FetchError> {
        Ok(RevInfo {
            version: "v1.0.0".into(),
            time: "2020-01-01T00:00:00Z".into(),
            origin: None,
        })
    }
    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        Err(FetchError::not_found(module, rev, "unused"))
    }
}

struct TestApp {
    router: Router,
    storage: Arc<MemoryStorage>,
    fetcher: Arc<CountingFetcher>,
}

impl TestApp {
    fn fetches(&self) -> usize {
        self.fetcher.fetches.load(Ordering::SeqCst)
    }
}

fn parts(config: &Config) -> (Arc<MemoryStorage>, Arc<CountingFetcher>) {
    let _ = config;
    (
        Arc::new(MemoryStorage::new()),
        Arc::new(CountingFetcher {
            fetches: AtomicUsize::new(0),
        }),
    )
}

fn app_for(config: &Config) -> TestApp {
    let (storage, fetcher) = parts(config);
    let router = testing::router(config, storage.clone(), fetcher.clone()).unwrap();
    TestApp {
        router,
        storage,
        fetcher,
    }
}

/// An app whose features were adjusted after reading the configuration
/// (for instance to point the sumdb proxy at a plain-HTTP stub).
fn app_with_features(config: &Config, adjust: impl FnOnce(&mut Features)) -> TestApp {
    let (storage, fetcher) = parts(config);
    let mut features = Features::from_config(config, &testing::go_env(config)).unwrap();
    adjust(&mut features);
    let stasher = Arc::new(BaseStasher::new(
        fetcher.clone(),
        storage.clone(),
        Duration::from_secs(5),
    ));
    let protocol = Protocol::new(
        storage.clone(),
        stasher,
        fetcher.clone(),
        config.network_mode(),
    )
    .with_download_policy(features.download_policy.clone());
    TestApp {
        router: router(AppState::new(protocol, 4), &config.path_prefix, features),
        storage,
        fetcher,
    }
}

async fn send(router: &Router, uri: &str, headers: &[(&str, &str)]) -> Response {
    send_from(router, None, uri, headers).await
}

/// [`send`] as if over a connection from `peer`, as the server records it.
async fn send_from(
    router: &Router,
    peer: Option<&str>,
    uri: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut builder = HttpRequest::builder().method("GET").uri(uri);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    if let Some(peer) = peer {
        let addr: std::net::SocketAddr = peer.parse().unwrap();
        builder = builder.extension(axum::extract::ConnectInfo(addr));
    }
    router
        .clone()
        .oneshot(builder.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn text_of(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn location(response: &Response) -> &str {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn wait_for_fetches(app: &TestApp, want: usize) {
    for _ in 0..200 {
        if app.fetches() >= want
            && app
                .storage
                .exists("example.com/m", "v1.0.0")
                .await
                .unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("background fetch did not happen");
}

const INFO: &str = "/example.com/m/@v/v1.0.0.info";

fn with_mode(mode: &str, url: &str) -> Config {
    Config {
        download_mode: mode.into(),
        download_url: url.into(),
        ..Config::default()
    }
}

#[tokio::test]
async fn sync_mode_fetches_before_answering() {
    let app = app_for(&with_mode("sync", ""));
    let response = send(&app.router, INFO, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.fetches(), 1);
}

#[tokio::test]
async fn none_mode_answers_404_without_fetching() {
    let app = app_for(&with_mode("none", ""));
    let response = send(&app.router, INFO, &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.fetches(), 0);
}

#[tokio::test]
async fn async_mode_answers_404_and_fetches_in_background() {
    let app = app_for(&with_mode("async", ""));
    let response = send(&app.router, INFO, &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    wait_for_fetches(&app, 1).await;
    // Once stored, the version is served from storage.
    let response = send(&app.router, INFO, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.fetches(), 1);
}

#[tokio::test]
async fn redirect_mode_sends_the_client_to_the_download_url() {
    let app = app_for(&with_mode("redirect", "https://proxy.golang.org"));
    let response = send(&app.router, "/example.com/m/@v/v1.0.0.zip", &[]).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        location(&response),
        "https://proxy.golang.org/example.com/m/@v/v1.0.0.zip"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.fetches(), 0);
}

#[tokio::test]
async fn async_redirect_mode_redirects_and_fetches() {
    let app = app_for(&with_mode("async_redirect", "https://up.example/"));
    let response = send(&app.router, "/example.com/m/@v/v1.0.0.mod", &[]).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        location(&response),
        "https://up.example/example.com/m/@v/v1.0.0.mod"
    );
    wait_for_fetches(&app, 1).await;
}

#[tokio::test]
async fn hcl_mode_file_picks_the_mode_per_module() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mode.hcl");
    std::fs::write(
        &path,
        "mode = \"none\"\ndownloadURL = \"https://up.example\"\n\
         download \"example.com/m\" { mode = \"sync\" }\n\
         download \"example.com/r*\" { mode = \"redirect\" }\n",
    )
    .unwrap();
    let app = app_for(&with_mode(&format!("file:{}", path.display()), ""));
    assert_eq!(send(&app.router, INFO, &[]).await.status(), StatusCode::OK);
    let response = send(&app.router, "/example.com/rest/@v/v1.0.0.info", &[]).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        location(&response),
        "https://up.example/example.com/rest/@v/v1.0.0.info"
    );
    let response = send(&app.router, "/example.com/other/@v/v1.0.0.info", &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.fetches(), 1);
}

#[tokio::test]
async fn malformed_mode_file_stops_start_up_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mode.hcl");
    std::fs::write(
        &path,
        "mode = \"sync\"\n\ndownload \"example.com/*\" {\n  mode = \"sometimes\"\n}\n",
    )
    .unwrap();
    let config = with_mode(&format!("file:{}", path.display()), "");
    let (storage, fetcher) = parts(&config);
    let Err(err) = testing::router(&config, storage.clone(), fetcher.clone()) else {
        panic!("a malformed mode file must be refused");
    };
    let message = format!("{err:#}");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("sometimes"), "{message}");
}

fn filter_config(dir: &tempfile::TempDir, text: &str) -> Config {
    let path = dir.path().join("filter.conf");
    std::fs::write(&path, text).unwrap();
    Config {
        filter_file: path.to_string_lossy().into_owned(),
        global_endpoint: "https://global.example/".into(),
        ..Config::default()
    }
}

#[tokio::test]
async fn filter_file_excludes_includes_and_directs() {
    let dir = tempfile::tempdir().unwrap();
    let config = filter_config(
        &dir,
        "# only our modules\n-\n+ example.com\n- example.com/m v1.0\nD example.com/direct\n",
    );
    let app = app_for(&config);
    // Excluded version of an included path.
    let response = send(&app.router, INFO, &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Other versions of it are included.
    let response = send(&app.router, "/example.com/m/@v/v1.1.0.info", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Outside the included tree the default excludes.
    let response = send(&app.router, "/other.example/x/@v/list", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = send(&app.router, "/example.com/direct/x/@v/v1.0.0.zip", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response),
        "https://global.example/example.com/direct/x/@v/v1.0.0.zip"
    );
    // Non-module paths are not filtered.
    assert_eq!(
        send(&app.router, "/healthz", &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.fetches(), 1);
}

#[tokio::test]
async fn malformed_filter_file_stops_start_up_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = filter_config(&dir, "+\n# comment\n\n? example.com\n");
    let (storage, fetcher) = parts(&config);
    let err = testing::router(&config, storage, fetcher).err().unwrap();
    let message = format!("{err:#}");
    assert!(message.contains("line 4"), "{message}");
}

/// A stub HTTP server on 127.0.0.1 answering with `handler`, counting
/// requests and remembering their paths and bodies.
struct Stub {
    base: String,
    hits: Arc<Mutex<Vec<(String, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn stub(status_for: fn(&str, &str) -> (u16, &'static str)) -> Stub {
    let hits: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let recorded = Arc::clone(&hits);
    let app = Router::new().fallback(move |request: axum::extract::Request| {
        let recorded = Arc::clone(&recorded);
        async move {
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let body = String::from_utf8_lossy(&body).into_owned();
            let (status, text) = status_for(&path, &body);
            recorded.lock().unwrap().push((path, body));
            (StatusCode::from_u16(status).unwrap(), text)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Stub { base, hits, task }
}

impl Stub {
    fn count(&self) -> usize {
        self.hits.lock().unwrap().len()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn sumdb_requests_are_proxied_and_private_lookups_refused() {
    let db = stub(|path, _| match path {
        p if p.starts_with("/lookup/") => (200, "lookup answer\n"),
        p if p.starts_with("/tile/") => (200, "tile bytes"),
        _ => (404, "nope"),
    })
    .await;
    let config = Config {
        no_sum_patterns: vec!["corp.example".into(), "github.com/private/*".into()],
        go_binary_env_vars: crate::config::EnvList(vec![
            "GOPROXY=direct".into(),
            "GOPRIVATE=git.internal.example,*.corp.test".into(),
        ]),
        ..Config::default()
    };
    let base = db.base.clone();
    let app = app_with_features(&config, |f| {
        f.sumdbs[0].origin = base;
    });
    let supported = send(&app.router, "/sumdb/sum.golang.org/supported", &[]).await;
    assert_eq!(supported.status(), StatusCode::OK);
    let unknown = send(&app.router, "/sumdb/sum.other.example/supported", &[]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(db.count(), 0);

    let lookup = send(
        &app.router,
        "/sumdb/sum.golang.org/lookup/github.com/public/x@v1.0.0",
        &[],
    )
    .await;
    assert_eq!(lookup.status(), StatusCode::OK);
    assert_eq!(text_of(lookup).await, "lookup answer\n");
    let tile = send(&app.router, "/sumdb/sum.golang.org/tile/8/0/001", &[]).await;
    assert_eq!(tile.status(), StatusCode::OK);
    assert_eq!(text_of(tile).await, "tile bytes");
    assert_eq!(db.count(), 2);
    assert_eq!(db.hits.lock().unwrap()[1].0, "/tile/8/0/001");

    for private in [
        "/sumdb/sum.golang.org/lookup/corp.example/team/x@v1.0.0",
        "/sumdb/sum.golang.org/lookup/github.com/private/tool@v0.1.0",
        "/sumdb/sum.golang.org/lookup/git.internal.example/lib@v1.0.0",
        "/sumdb/sum.golang.org/lookup/build.corp.test/x/y@v2.0.0",
    ] {
        let response = send(&app.router, private, &[]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{private}");
    }
    assert_eq!(db.count(), 2, "private lookups must not reach the sumdb");
}

#[tokio::test]
async fn home_page_shows_proxy_settings_and_honours_a_template() {
    let config = Config {
        home_template_path: "/nonexistent/home.html".into(),
        no_sum_patterns: vec!["corp.example".into()],
        ..Config::default()
    };
    let app = app_for(&config);
    let response = send(&app.router, "/", &[("host", "athens.local:3000")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = text_of(response).await;
    assert!(
        page.contains("GOPROXY=http://athens.local:3000,direct"),
        "{page}"
    );
    assert!(page.contains("GONOSUMDB=corp.example"), "{page}");
    let forwarded = [("host", "proxy.example"), ("x-forwarded-proto", "https")];
    let page = text_of(send_from(&app.router, Some("127.0.0.1:5000"), "/", &forwarded).await).await;
    assert!(
        page.contains("GOPROXY=https://proxy.example,direct"),
        "{page}"
    );
    // The header from anyone else (or an unknown peer) is not believed.
    for peer in [Some("192.0.2.7:5000"), None] {
        let page = text_of(send_from(&app.router, peer, "/", &forwarded).await).await;
        assert!(
            page.contains("GOPROXY=http://proxy.example,direct"),
            "{peer:?}: {page}"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("home.html");
    std::fs::write(&template, "proxy {{ .Host }} private {{.NoSumPatterns}}").unwrap();
    let config = Config {
        home_template_path: template.to_string_lossy().into_owned(),
        ..config
    };
    let templated = app_for(&config);
    let page = text_of(send(&templated.router, "/", &[("host", "h.example")]).await).await;
    assert_eq!(page, "proxy http://h.example private corp.example");
    // Read at every request, as Athens does: an edit shows at once, and an
    // edit outside the supported subset answers 500.
    std::fs::write(&template, "<b>{{ .Host }}</b>").unwrap();
    let page = text_of(send(&templated.router, "/", &[("host", "h.example")]).await).await;
    assert_eq!(page, "<b>http://h.example</b>");
    std::fs::write(&template, "{{ .Host | html }}").unwrap();
    let response = send(&templated.router, "/", &[("host", "h.example")]).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn basic_auth_guards_everything_but_health_checks() {
    let config = Config {
        basic_auth_user: "user".into(),
        basic_auth_pass: crate::config::Secret::new("pa:ss"),
        ..Config::default()
    };
    let app = app_for(&config);
    let denied = send(&app.router, INFO, &[]).await;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        denied.headers()["www-authenticate"],
        "Basic realm=\"basic auth required\""
    );
    // base64("user:pa:ss") and base64("user:wrong")
    let good = [("authorization", "Basic dXNlcjpwYTpzcw==")];
    let bad = [("authorization", "Basic dXNlcjp3cm9uZw==")];
    assert_eq!(
        send(&app.router, INFO, &bad).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app.router, INFO, &good).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app.router, "/", &[]).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(&app.router, "/healthz", &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        send(&app.router, "/readyz", &[]).await.status(),
        StatusCode::OK
    );
    assert_eq!(app.fetches(), 1);
}

#[tokio::test]
async fn force_ssl_redirects_plain_http() {
    let config = Config {
        force_ssl: true,
        ..Config::default()
    };
    let app = app_for(&config);
    let response = send(
        &app.router,
        "/example.com/m/@v/list?x=1",
        &[("host", "p.example")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        location(&response),
        "https://p.example/example.com/m/@v/list?x=1"
    );
    let forwarded = [("host", "p.example"), ("x-forwarded-proto", "https")];
    let path = "/example.com/m/@v/list";
    // Loopback is trusted by default, IPv4 seen on a dual-stack socket too.
    for peer in ["127.0.0.1:40000", "[::1]:40000", "[::ffff:127.0.0.1]:40000"] {
        let response = send_from(&app.router, Some(peer), path, &forwarded).await;
        assert_eq!(response.status(), StatusCode::OK, "{peer}");
    }
    // Anyone else claiming https is still redirected.
    for peer in [Some("192.0.2.7:40000"), Some("[2001:db8::1]:40000"), None] {
        let response = send_from(&app.router, peer, path, &forwarded).await;
        assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY, "{peer:?}");
        assert_eq!(
            location(&response),
            "https://p.example/example.com/m/@v/list"
        );
    }
}

#[tokio::test]
async fn trusted_proxies_are_configurable() {
    let config = Config {
        force_ssl: true,
        trusted_proxies: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        ..Config::default()
    };
    let app = app_for(&config);
    let forwarded = [("host", "p.example"), ("x-forwarded-proto", "https")];
    let path = "/example.com/m/@v/list";
    for (peer, status) in [
        ("10.9.8.7:1", StatusCode::OK),
        ("[2001:db8::5]:1", StatusCode::OK),
        // Configuring proxies replaces the loopback default.
        ("127.0.0.1:1", StatusCode::MOVED_PERMANENTLY),
        ("11.0.0.1:1", StatusCode::MOVED_PERMANENTLY),
    ] {
        let response = send_from(&app.router, Some(peer), path, &forwarded).await;
        assert_eq!(response.status(), status, "{peer}");
    }
    // A trusted proxy saying http is redirected like anyone.
    let response = send_from(
        &app.router,
        Some("10.9.8.7:1"),
        path,
        &[("host", "p.example"), ("x-forwarded-proto", "http")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);

    let none = Config {
        force_ssl: true,
        trusted_proxies: vec![],
        ..Config::default()
    };
    let app = app_for(&none);
    let response = send_from(&app.router, Some("127.0.0.1:1"), path, &forwarded).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);

    let bad = Config {
        trusted_proxies: vec!["localhost".into()],
        ..Config::default()
    };
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.contains("TrustedProxies"), "{err}");
}

#[tokio::test]
async fn validator_hook_decides_versioned_requests() {
    let hook = stub(|_, body| {
        if body.contains("example.com/refused") {
            (403, "not allowed")
        } else if body.contains("example.com/broken") {
            (500, "")
        } else {
            (200, "")
        }
    })
    .await;
    let config = Config {
        validator_hook: crate::config::Secret::new(format!("{}/validate", hook.base)),
        ..Config::default()
    };
    let app = app_for(&config);
    assert_eq!(send(&app.router, INFO, &[]).await.status(), StatusCode::OK);
    let refused = send(&app.router, "/example.com/refused/@v/v1.0.0.zip", &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let broken = send(&app.router, "/example.com/broken/@v/v1.0.0.mod", &[]).await;
    assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Listings carry no version and are not validated.
    assert_eq!(
        send(&app.router, "/example.com/m/@v/list", &[])
            .await
            .status(),
        StatusCode::OK
    );
    let hits = hook.hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].0, "/validate");
    let body: serde_json::Value = serde_json::from_str(&hits[0].1).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"Module": "example.com/m", "Version": "v1.0.0"})
    );
    // Refused and failed versions were never fetched.
    assert_eq!(app.fetches(), 1);
}

/// Writes a file-system GOPROXY holding `example.com/hello@v1.0.0`.
fn file_proxy(root: &std::path::Path) {
    let source = root.join("src");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("go.mod"),
        "module example.com/hello\n\ngo 1.20\n",
    )
    .unwrap();
    std::fs::write(
        source.join("hello.go"),
        "package hello\n\nconst Greeting = \"hi\"\n",
    )
    .unwrap();
    let versions = root.join("proxy/example.com/hello/@v");
    std::fs::create_dir_all(&versions).unwrap();
    let zip = modzip::zip::create_from_dir(
        std::io::Cursor::new(Vec::new()),
        &modzip::Version::new("example.com/hello", "v1.0.0"),
        &source,
    )
    .unwrap()
    .into_inner();
    std::fs::write(versions.join("v1.0.0.zip"), zip).unwrap();
    std::fs::write(
        versions.join("v1.0.0.mod"),
        "module example.com/hello\n\ngo 1.20\n",
    )
    .unwrap();
    std::fs::write(
        versions.join("v1.0.0.info"),
        "{\"Version\":\"v1.0.0\",\"Time\":\"2020-01-01T00:00:00Z\"}",
    )
    .unwrap();
    std::fs::write(versions.join("list"), "v1.0.0\n").unwrap();
}

/// `go mod download` against `goproxy`; returns success and output.
async fn go_download(
    go: &std::path::Path,
    home: &std::path::Path,
    goproxy: &str,
) -> (bool, String) {
    let output = tokio::process::Command::new(go)
        .args(["mod", "download", "-json", "example.com/hello@v1.0.0"])
        .current_dir(home)
        .env_clear()
        .env("HOME", home)
        .env("GOPATH", home.join("gopath"))
        .env(
            "GOMODCACHE",
            home.join(format!("modcache-{}", goproxy.len())),
        )
        .env("GOCACHE", home.join("gocache"))
        .env("GOPROXY", goproxy)
        .env("GOSUMDB", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-modcacherw")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The go command treats the 404 of `none` mode as "not here" and moves
/// on to the next GOPROXY entry.
#[tokio::test]
async fn go_command_falls_through_none_mode_to_the_next_proxy() {
    let go = fixtures::locate_go().expect("the go toolchain (scripts/test.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    file_proxy(dir.path());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    let test_app = app_for(&with_mode("none", ""));
    let router = test_app.router.clone().layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counted.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ours = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let file_url = format!("file://{}", dir.path().join("proxy").display());

    let (ok, output) = go_download(&go, dir.path(), &format!("{ours},{file_url}")).await;
    assert!(ok, "{output}");
    assert!(output.contains("\"Version\": \"v1.0.0\""), "{output}");
    assert!(
        requests.load(Ordering::SeqCst) >= 1,
        "the go command never asked us"
    );
    let (ok, output) = go_download(&go, dir.path(), &format!("{ours},off")).await;
    assert!(!ok, "{output}");
    assert_eq!(test_app.fetches(), 0);
    server.abort();
}

/// `redirect` mode sends the go client to a second instance of ours (here
/// fed by a file-system GOPROXY), which serves the module; the first one
/// never fetches anything.
#[tokio::test]
async fn go_command_follows_redirect_mode_to_a_second_instance() {
    let go = fixtures::locate_go().expect("the go toolchain (scripts/test.sh installs it)");
    let dir = tempfile::tempdir().unwrap();
    file_proxy(dir.path());
    let file_url = format!("file://{}", dir.path().join("proxy").display());

    let second_config = Config::default();
    let upstream = crate::fetch::UpstreamProxyFetcher::new(
        &file_url,
        None,
        crate::fetch::UpstreamOptions::default(),
    )
    .unwrap();
    let second_storage = Arc::new(MemoryStorage::new());
    let second =
        testing::router(&second_config, second_storage.clone(), Arc::new(upstream)).unwrap();
    let second_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_url = format!("http://{}", second_listener.local_addr().unwrap());
    let second_server = tokio::spawn(async move {
        let _ = axum::serve(second_listener, second).await;
    });

    let first = app_for(&with_mode("redirect", &second_url));
    let first_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let first_url = format!("http://{}", first_listener.local_addr().unwrap());
    let router = first.router.clone();
    let first_server = tokio::spawn(async move {
        let _ = axum::serve(first_listener, router).await;
    });

    let (ok, output) = go_download(&go, dir.path(), &format!("{first_url},off")).await;
    assert!(ok, "{output}");
    assert!(output.contains("\"Version\": \"v1.0.0\""), "{output}");
    assert_eq!(
        first.fetches(),
        0,
        "the redirecting instance must not fetch"
    );
    assert!(
        second_storage
            .exists("example.com/hello", "v1.0.0")
            .await
            .unwrap(),
        "the second instance stored what it served"
    );
    first_server.abort();
    second_server.abort();
}

#[tokio::test]
async fn path_prefix_keeps_redirects_filter_and_home_working() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = filter_config(&dir, "- example.com/secret\n");
    config.path_prefix = "/athens".into();
    config.download_mode = "redirect".into();
    config.download_url = "https://up.example".into();
    config.home_template_path = "/nonexistent/home.html".into();
    let app = app_for(&config);
    let response = send(&app.router, "/athens/example.com/m/@v/v1.0.0.info", &[]).await;
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    // As in Athens, the whole request path (prefix included) is appended.
    assert_eq!(
        location(&response),
        "https://up.example/athens/example.com/m/@v/v1.0.0.info"
    );
    let response = send(&app.router, "/athens/example.com/secret/@v/list", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = send(&app.router, "/athens", &[("host", "h")]).await;
    assert!(text_of(response).await.contains("GOPROXY=http://h,direct"));
    let response = send(&app.router, "/athens/sumdb/sum.golang.org/supported", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    // The bare root stays a plain health check for load balancers.
    assert_eq!(send(&app.router, "/", &[]).await.status(), StatusCode::OK);
}
