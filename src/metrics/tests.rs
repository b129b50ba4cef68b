use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use axum::Router;
use bytes::Bytes;
use tower::ServiceExt;

use super::http::classify;
use super::*;
use crate::config::Config;
use crate::fetch::{FetchError, FetchedModule, FetchedZip, Fetcher, RevInfo};
use crate::storage::MemoryStorage;

#[test]
fn paths_are_classified_without_looking_at_module_names() {
    let cases = [
        ("/healthz", Route::Health),
        ("/readyz", Route::Health),
        ("/metrics", Route::Metrics),
        ("/sumdb/sum.golang.org/supported", Route::Sumdb),
        ("/example.com/m/@v/list", Route::List),
        ("/example.com/m/@latest", Route::Latest),
        ("/example.com/m/@v/v1.0.0.info", Route::Info),
        ("/example.com/m/@v/v1.0.0.mod", Route::Mod),
        ("/example.com/m/@v/v1.0.0.zip", Route::Zip),
        ("/example.com/m/@v/v1.0.0.ziq", Route::Other),
        ("/example.com/metrics/@v/list", Route::List),
        ("/", Route::Other),
        ("/catalog", Route::Other),
        ("/version", Route::Other),
    ];
    for (path, route) in cases {
        assert_eq!(classify(path), route, "{path}");
    }
}

/// Serves example.com/ok at any canonical version after `delay`;
/// example.com/broken fails upstream; everything else does not exist.
struct SlowFetcher {
    delay: Duration,
}

#[async_trait]
impl Fetcher for SlowFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        tokio::time::sleep(self.delay).await;
        match module {
            "example.com/ok" => Ok(FetchedModule {
                version: version.to_string(),
                info: Bytes::from(format!("{{\"Version\":\"{version}\"}}")),
                go_mod: Bytes::from(format!("module {module}\n")),
                zip: FetchedZip::from_bytes(&vec![7u8; 1000], None).unwrap(),
            }),
            "example.com/broken" => Err(FetchError::Upstream {
                module: module.into(),
                version: version.into(),
                upstream: "https://proxy.example".into(),
                status: Some(502),
                message: "bad gateway".into(),
            }),
            _ => Err(FetchError::not_found(module, version, "no such module")),
        }
    }
    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        match module {
            "example.com/ok" => Ok(vec!["v1.0.0".into()]),
            _ => Err(FetchError::not_found(module, "", "no such module")),
        }
    }
    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        match module {
            "example.com/ok" => Err(FetchError::Upstream {
                module: module.into(),
                version: String::new(),
                upstream: "https://proxy.example".into(),
                status: None,
                message: "connection refused".into(),
            }),
            _ => Err(FetchError::not_found(module, "", "no such module")),
        }
    }
    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        Err(FetchError::not_found(module, rev, "unused"))
    }
}

fn app(config: &Config, delay: Duration) -> Router {
    crate::app::testing::router(
        config,
        Arc::new(MemoryStorage::new()),
        Arc::new(SlowFetcher { delay }),
    )
    .unwrap()
}

async fn get(app: &Router, uri: &str) -> (u16, Bytes) {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body)
}

/// Samples of an exposition: `name{labels}` -> value. Fails on a line
/// that is neither a comment nor a sample.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line:?}"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "repeated: {line}"
        );
    }
    samples
}

async fn scrape(app: &Router, uri: &str) -> BTreeMap<String, f64> {
    let (status, body) = get(app, uri).await;
    assert_eq!(status, 200);
    parse(std::str::from_utf8(&body).unwrap())
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn known_traffic_gives_exact_counts() {
    let app = app(&Config::default(), Duration::ZERO);
    let before = scrape(&app, "/metrics").await;
    // Cold: info misses, is fetched and stored, then read again (a hit).
    assert_eq!(get(&app, "/example.com/ok/@v/v1.0.0.info").await.0, 200);
    // Warm: two hits each.
    assert_eq!(get(&app, "/example.com/ok/@v/v1.0.0.info").await.0, 200);
    assert_eq!(get(&app, "/example.com/ok/@v/v1.0.0.mod").await.0, 200);
    let (status, zip) = get(&app, "/example.com/ok/@v/v1.0.0.zip").await;
    assert_eq!((status, zip.len()), (200, 1000));
    // A module that does not exist, and one whose upstream fails.
    assert_eq!(get(&app, "/example.com/none/@v/v1.0.0.info").await.0, 404);
    let broken = get(&app, "/example.com/broken/@v/v1.0.0.mod").await.0;
    assert!(broken >= 500, "{broken}");
    assert_eq!(get(&app, "/healthz").await.0, 200);
    let after = scrape(&app, "/metrics").await;
    let delta = |series: &str| value(&after, series) - value(&before, series);

    assert_eq!(
        delta(r#"athens_http_requests_total{route="info",code="200"}"#),
        2.0
    );
    assert_eq!(
        delta(r#"athens_http_requests_total{route="info",code="404"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_http_requests_total{route="mod",code="200"}"#),
        1.0
    );
    assert_eq!(
        delta(&format!(
            r#"athens_http_requests_total{{route="mod",code="{broken}"}}"#
        )),
        1.0
    );
    assert_eq!(
        delta(r#"athens_http_requests_total{route="zip",code="200"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_http_requests_total{route="health",code="200"}"#),
        1.0
    );
    // The first scrape is counted once it is answered.
    assert_eq!(
        value(
            &after,
            r#"athens_http_requests_total{route="metrics",code="200"}"#
        ),
        1.0
    );
    assert_eq!(
        delta(r#"athens_http_request_duration_seconds_count{route="info"}"#),
        3.0
    );
    assert_eq!(
        delta(r#"athens_http_request_duration_seconds_count{route="zip"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_http_request_duration_seconds_bucket{route="zip",le="+Inf"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_http_response_bytes_total{route="zip"}"#),
        1000.0
    );

    // info: miss + hit (cold), hit (warm), miss (none, before its fetch).
    assert_eq!(
        delta(r#"athens_storage_reads_total{kind="info",result="hit"}"#),
        2.0
    );
    assert_eq!(
        delta(r#"athens_storage_reads_total{kind="info",result="miss"}"#),
        2.0
    );
    assert_eq!(
        delta(r#"athens_storage_reads_total{kind="mod",result="hit"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_storage_reads_total{kind="mod",result="miss"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_storage_reads_total{kind="zip",result="hit"}"#),
        1.0
    );
    // /healthz reads nothing, /readyz's probe is not counted.
    assert_eq!(get(&app, "/readyz").await.0, 200);

    assert_eq!(
        delta(r#"athens_fetch_duration_seconds_count{outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_fetch_duration_seconds_count{outcome="not_found"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_fetch_duration_seconds_count{outcome="error"}"#),
        1.0
    );
    assert_eq!(
        delta(r#"athens_upstream_errors_total{op="fetch",kind="upstream"}"#),
        1.0
    );
    assert_eq!(value(&after, "athens_fetches_in_flight"), 0.0);
    assert_eq!(value(&after, "athens_singleflight_waits_total"), 0.0);
    assert_eq!(value(&after, "athens_stashes_pending"), 0.0);

    let last = scrape(&app, "/metrics").await;
    let reads: f64 = last
        .iter()
        .filter(|(k, _)| k.starts_with("athens_storage_reads_total{kind=\"list\""))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(reads, 0.0, "the readiness probe was counted");
    assert_eq!(
        value(
            &last,
            r#"athens_http_requests_total{route="health",code="200"}"#
        ),
        2.0
    );
}

#[tokio::test]
async fn concurrent_requests_for_one_version_wait_on_one_fetch() {
    let app = app(&Config::default(), Duration::from_millis(300));
    let uri = "/example.com/ok/@v/v1.2.0.mod";
    let answers = futures::future::join_all((0..5).map(|_| get(&app, uri))).await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
    let samples = scrape(&app, "/metrics").await;
    assert_eq!(
        value(
            &samples,
            r#"athens_fetch_duration_seconds_count{outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(value(&samples, "athens_singleflight_waits_total"), 4.0);
    assert_eq!(value(&samples, "athens_fetches_in_flight"), 0.0);
}

#[tokio::test]
async fn reads_for_latest_are_their_own_kind() {
    // Upstream's @latest fails for example.com/ok: in fallback mode the
    // answer comes from storage (a list and an .info read).
    let config = Config {
        network_mode: "fallback".into(),
        ..Config::default()
    };
    let app = app(&config, Duration::ZERO);
    assert_eq!(get(&app, "/example.com/ok/@v/v1.0.0.info").await.0, 200);
    assert_eq!(get(&app, "/example.com/ok/@latest").await.0, 200);
    assert_eq!(get(&app, "/example.com/ok/@v/list").await.0, 200);
    let samples = scrape(&app, "/metrics").await;
    assert_eq!(
        value(
            &samples,
            r#"athens_storage_reads_total{kind="latest",result="hit"}"#
        ),
        2.0,
        "list and info"
    );
    assert_eq!(
        value(
            &samples,
            r#"athens_storage_reads_total{kind="list",result="hit"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            r#"athens_upstream_errors_total{op="latest",kind="upstream"}"#
        ),
        1.0
    );
}

#[tokio::test]
async fn served_under_the_prefix_and_off_without_an_exporter() {
    let prefixed = Config {
        path_prefix: "/proxy".into(),
        ..Config::default()
    };
    let app = app(&prefixed, Duration::ZERO);
    assert_eq!(
        get(&app, "/proxy/example.com/ok/@v/v1.0.0.mod").await.0,
        200
    );
    let samples = scrape(&app, "/proxy/metrics").await;
    assert_eq!(
        value(
            &samples,
            r#"athens_http_requests_total{route="mod",code="200"}"#
        ),
        1.0
    );
    assert_ne!(get(&app, "/metrics").await.0, 200);

    let off = Config {
        stats_exporter: String::new(),
        ..Config::default()
    };
    let app = self::app(&off, Duration::ZERO);
    let (status, body) = get(&app, "/metrics").await;
    assert_ne!(status, 200);
    assert!(!String::from_utf8_lossy(&body).contains("athens_"));
}

#[tokio::test]
async fn the_git_cache_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/objects")).unwrap();
    std::fs::write(dir.path().join("a/objects/pack"), vec![0u8; 1234]).unwrap();
    std::fs::write(dir.path().join("a/HEAD"), b"ref: x\n").unwrap();
    let metrics = Metrics::new(Some(dir.path().to_path_buf()));
    let samples = parse(&metrics.render().await);
    assert_eq!(value(&samples, "athens_git_cache_bytes"), 1241.0);
    // Every series family is described, and no label carries a module.
    let text = metrics.render().await;
    // (Request counts appear with the first request.)
    for name in [
        "athens_http_request_duration_seconds",
        "athens_http_response_bytes_total",
        "athens_storage_reads_total",
        "athens_fetches_in_flight",
        "athens_fetch_duration_seconds",
        "athens_upstream_errors_total",
        "athens_singleflight_waits_total",
        "athens_stashes_pending",
        "athens_git_cache_bytes",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}:\n{text}");
    }
}
