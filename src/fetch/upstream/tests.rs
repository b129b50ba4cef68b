use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;

use super::*;

type Routes = Arc<HashMap<String, (u16, Vec<u8>)>>;

/// A fake proxy on 127.0.0.1 answering fixed paths; counts requests.
async fn fake_proxy(routes: &[(&str, u16, &[u8])]) -> (String, Arc<AtomicUsize>) {
    let map: HashMap<String, (u16, Vec<u8>)> = routes
        .iter()
        .map(|(p, s, b)| (p.to_string(), (*s, b.to_vec())))
        .collect();
    let hits = Arc::new(AtomicUsize::new(0));
    let state = (Arc::new(map) as Routes, hits.clone());
    async fn answer(
        State((routes, hits)): State<(Routes, Arc<AtomicUsize>)>,
        uri: Uri,
    ) -> (StatusCode, Vec<u8>) {
        hits.fetch_add(1, Ordering::SeqCst);
        match routes.get(uri.path()) {
            Some((status, body)) => (StatusCode::from_u16(*status).unwrap(), body.clone()),
            None => (StatusCode::NOT_FOUND, b"not found: no such path".to_vec()),
        }
    }
    let app = Router::new().fallback(answer).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), hits)
}

fn fetcher(goproxy: &str, direct: Option<Arc<dyn Fetcher>>) -> UpstreamProxyFetcher {
    UpstreamProxyFetcher::new(goproxy, direct, UpstreamOptions::default()).unwrap()
}

const INFO_V1: &[u8] = br#"{"Version":"v1.0.0","Time":"2021-01-02T03:04:05Z"}"#;
const UPPER_MOD: &[u8] = b"module example.com/Upper\n";

/// Test data that lives as long as the test process (the fake proxies
/// serve borrowed bytes).
fn leak(data: Vec<u8>) -> &'static [u8] {
    Box::leak(data.into_boxed_slice())
}

/// A module zip with `files` under the `module@version/` prefix.
fn module_zip(module: &str, version: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let named: Vec<(String, &[u8])> = files
        .iter()
        .map(|(name, data)| (format!("{module}@{version}/{name}"), *data))
        .collect();
    let entries: Vec<(&str, &[u8])> = named.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    fixtures::rawzip::stored_zip(&entries)
}

fn upper_zip() -> &'static [u8] {
    leak(module_zip(
        "example.com/Upper",
        "v1.0.0",
        &[("go.mod", UPPER_MOD), ("upper.go", b"package upper\n")],
    ))
}

fn module_routes() -> Vec<(&'static str, u16, &'static [u8])> {
    vec![
        ("/example.com/!upper/@v/v1.0.0.info", 200, INFO_V1),
        ("/example.com/!upper/@v/v1.0.0.mod", 200, UPPER_MOD),
        ("/example.com/!upper/@v/v1.0.0.zip", 200, upper_zip()),
        (
            "/example.com/!upper/@v/main.info",
            200,
            br#"{"Version":"v1.0.0","Time":"2021-01-02T03:04:05Z","Origin":{"VCS":"git","Ref":"refs/heads/main"}}"#,
        ),
        (
            "/example.com/!upper/@v/list",
            200,
            b"v1.0.0\nv0.9.0\nv0.0.0-20200101000000-abcdefabcdef\nnot-a-version\nv1.1.0-rc.1 2022-01-01T00:00:00Z\n",
        ),
    ]
}

struct FakeDirect {
    calls: AtomicUsize,
}

#[async_trait]
impl Fetcher for FakeDirect {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(FetchedModule {
            version: version.to_string(),
            info: Bytes::from_static(b"{}"),
            go_mod: Bytes::from(format!("module {module}\n")),
            zip: FetchedZip::from_bytes(b"direct", None).unwrap(),
        })
    }
    async fn list(&self, _module: &str) -> Result<Vec<String>, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(vec!["v9.9.9".into()])
    }
    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        Err(FetchError::not_found(
            module,
            "latest",
            "direct has nothing",
        ))
    }
    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        Err(FetchError::not_found(module, rev, "direct has nothing"))
    }
}

#[test]
fn goproxy_lists_parse_like_the_go_command() {
    let entries = parse_goproxy("https://a.example,direct").unwrap();
    assert_eq!(
        entries,
        vec![
            ProxyEntry::Url {
                url: "https://a.example".into(),
                fall_back_on_error: false
            },
            ProxyEntry::Direct
        ]
    );
    let entries =
        parse_goproxy(" a.example | b.example:8080/x ,off,https://never.example").unwrap();
    assert_eq!(
        entries,
        vec![
            ProxyEntry::Url {
                url: "https://a.example".into(),
                fall_back_on_error: true
            },
            ProxyEntry::Url {
                url: "https://b.example:8080/x".into(),
                fall_back_on_error: false
            },
            ProxyEntry::Off,
        ]
    );
    assert_eq!(
        parse_goproxy("direct,https://x.example").unwrap(),
        vec![ProxyEntry::Direct]
    );
    assert_eq!(parse_goproxy("").unwrap().len(), 2);
    assert!(parse_goproxy("file:///srv/proxy").is_ok());
    assert!(parse_goproxy(" , ").unwrap_err().contains("no entries"));
    assert!(parse_goproxy("ftp://x.example").is_err());
    assert!(parse_goproxy("http://[bad").is_err());
}

#[test]
fn latest_from_list_prefers_releases_then_prereleases_then_newest_time() {
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        latest_from_list(&lines("v1.0.0\nv1.2.0-rc.1\nv1.1.0\n")).as_deref(),
        Some("v1.1.0")
    );
    assert_eq!(
        latest_from_list(&lines("v1.2.0-rc.1\nv1.2.0-beta\n")).as_deref(),
        Some("v1.2.0-rc.1")
    );
    assert_eq!(
        latest_from_list(&lines(
            "v0.0.0-20200101000000-aaaaaaaaaaaa\nv0.0.0-20210101000000-bbbbbbbbbbbb\n"
        ))
        .as_deref(),
        Some("v0.0.0-20210101000000-bbbbbbbbbbbb")
    );
    assert_eq!(latest_from_list(&lines("junk\n\n")), None);
}

#[tokio::test]
async fn fetches_info_mod_and_zip_with_case_escaping() {
    let (base, _) = fake_proxy(&module_routes()).await;
    let f = fetcher(&base, None);
    let m = f.fetch("example.com/Upper", "v1.0.0").await.unwrap();
    assert_eq!(m.version, "v1.0.0");
    assert_eq!(&m.info[..], INFO_V1);
    assert_eq!(&m.go_mod[..], UPPER_MOD);
    assert_eq!(std::fs::read(m.zip.path()).unwrap(), upper_zip());
    assert_eq!(m.zip.size(), upper_zip().len() as u64);
}

#[tokio::test]
async fn branch_query_resolves_to_canonical_version() {
    let (base, _) = fake_proxy(&module_routes()).await;
    let f = fetcher(&base, None);
    let m = f.fetch("example.com/Upper", "main").await.unwrap();
    assert_eq!(m.version, "v1.0.0");
    let info: RevInfo = serde_json::from_slice(&m.info).unwrap();
    assert_eq!(info.version, "v1.0.0");
    assert!(info.origin.is_some());
    assert_eq!(
        f.query("example.com/Upper", "main").await.unwrap().version,
        "v1.0.0"
    );
}

#[tokio::test]
async fn proxy_answering_another_version_is_rejected() {
    let (base, _) = fake_proxy(&[("/example.com/m/@v/v1.2.0.info", 200, INFO_V1)]).await;
    let err = fetcher(&base, None)
        .fetch("example.com/m", "v1.2.0")
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::InvalidResponse { .. }), "{err}");
    let (base, _) = fake_proxy(&[(
        "/example.com/m/@v/v1.2.0.info",
        200,
        b"{\"Version\":\"master\"}",
    )])
    .await;
    let err = fetcher(&base, None)
        .fetch("example.com/m", "v1.2.0")
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::InvalidResponse { .. }), "{err}");
}

#[tokio::test]
async fn list_keeps_tagged_versions_sorted() {
    let (base, _) = fake_proxy(&module_routes()).await;
    let versions = fetcher(&base, None)
        .list("example.com/Upper")
        .await
        .unwrap();
    assert_eq!(versions, vec!["v0.9.0", "v1.0.0", "v1.1.0-rc.1"]);
}

#[tokio::test]
async fn latest_uses_endpoint_or_falls_back_to_list() {
    let (base, _) = fake_proxy(&module_routes()).await;
    // No @latest route: highest release from the list, then its .info.
    let latest = fetcher(&base, None)
        .latest("example.com/Upper")
        .await
        .unwrap();
    assert_eq!(latest.version, "v1.0.0");
    let (base, _) = fake_proxy(&[("/example.com/m/@latest", 200, INFO_V1)]).await;
    assert_eq!(
        fetcher(&base, None)
            .latest("example.com/m")
            .await
            .unwrap()
            .version,
        "v1.0.0"
    );
    let (base, _) = fake_proxy(&[]).await;
    assert!(fetcher(&base, None)
        .latest("example.com/m")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn comma_falls_through_only_on_not_found() {
    let (empty, empty_hits) = fake_proxy(&[]).await;
    let (broken, broken_hits) =
        fake_proxy(&[("/example.com/!upper/@v/v1.0.0.info", 500, b"boom")]).await;
    let (good, good_hits) = fake_proxy(&module_routes()).await;

    let m = fetcher(&format!("{empty},{good}"), None)
        .fetch("example.com/Upper", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(m.version, "v1.0.0");
    assert_eq!(empty_hits.load(Ordering::SeqCst), 1);

    let before = good_hits.load(Ordering::SeqCst);
    let err = fetcher(&format!("{broken},{good}"), None)
        .fetch("example.com/Upper", "v1.0.0")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Upstream {
                status: Some(500),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(good_hits.load(Ordering::SeqCst), before);
    assert_eq!(broken_hits.load(Ordering::SeqCst), 1);

    // After '|' any error falls through.
    let m = fetcher(&format!("{broken}|{good}"), None)
        .fetch("example.com/Upper", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(m.version, "v1.0.0");
}

#[tokio::test]
async fn most_useful_error_is_reported() {
    let (broken, _) = fake_proxy(&[("/example.com/m/@v/list", 503, b"maintenance")]).await;
    let (empty, _) = fake_proxy(&[]).await;
    let err = fetcher(&format!("{broken}|{empty}"), None)
        .list("example.com/m")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::Upstream {
                status: Some(503),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("maintenance"), "{err}");
    let err = fetcher(&format!("{empty},{empty}"), None)
        .list("example.com/m")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn off_and_missing_direct() {
    let err = fetcher("off", None)
        .fetch("example.com/m", "v1.0.0")
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Disabled { .. }), "{err}");
    assert!(err.is_not_found());
    let err = fetcher("direct", None)
        .list("example.com/m")
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Other { .. }), "{err}");
    assert!(!err.is_not_found());
}

#[tokio::test]
async fn direct_entry_and_gonoproxy_use_the_direct_fetcher() {
    let (empty, empty_hits) = fake_proxy(&[]).await;
    let direct = Arc::new(FakeDirect {
        calls: AtomicUsize::new(0),
    });
    let f = fetcher(&format!("{empty},direct"), Some(direct.clone()));
    assert_eq!(f.list("example.com/m").await.unwrap(), vec!["v9.9.9"]);
    assert_eq!(direct.calls.load(Ordering::SeqCst), 1);
    assert_eq!(empty_hits.load(Ordering::SeqCst), 1);

    let f = UpstreamProxyFetcher::new(
        &empty,
        Some(direct.clone()),
        UpstreamOptions {
            no_proxy: "*.corp.example".into(),
            ..UpstreamOptions::default()
        },
    )
    .unwrap();
    let m = f.fetch("git.corp.example/team/m", "v1.0.0").await.unwrap();
    assert_eq!(std::fs::read(m.zip.path()).unwrap(), b"direct");
    assert_eq!(empty_hits.load(Ordering::SeqCst), 1);
    // Other modules still go to the proxy.
    assert!(f.list("example.com/m").await.unwrap_err().is_not_found());
    assert_eq!(empty_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn file_proxies_are_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let vdir = dir.path().join("example.com/!upper/@v");
    std::fs::create_dir_all(&vdir).unwrap();
    std::fs::write(vdir.join("v1.0.0.info"), INFO_V1).unwrap();
    std::fs::write(vdir.join("v1.0.0.mod"), "module example.com/Upper\n").unwrap();
    std::fs::write(vdir.join("v1.0.0.zip"), upper_zip()).unwrap();
    std::fs::write(vdir.join("list"), "v1.0.0\n").unwrap();
    let url = Url::from_directory_path(dir.path()).unwrap().to_string();
    let f = fetcher(&url, None);
    let m = f.fetch("example.com/Upper", "v1.0.0").await.unwrap();
    assert_eq!(std::fs::read(m.zip.path()).unwrap(), upper_zip());
    assert_eq!(
        f.latest("example.com/Upper").await.unwrap().version,
        "v1.0.0"
    );
    assert!(f
        .fetch("example.com/Upper", "v2.0.0")
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn credentials_in_proxy_urls_stay_out_of_errors() {
    let (base, _) = fake_proxy(&[("/example.com/m/@v/list", 500, b"nope")]).await;
    let with_creds = base.replace("http://", "http://user:s3cret@");
    let err = fetcher(&with_creds, None)
        .list("example.com/m")
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn config_supplies_goproxy_and_gonoproxy() {
    let mut config = Config::default();
    config.go_binary_env_vars = crate::config::EnvList(vec![
        "GOPROXY=https://a.example|direct".into(),
        "GOPRIVATE=corp.example".into(),
    ]);
    let f = UpstreamProxyFetcher::from_config(&config, None).unwrap();
    assert_eq!(f.entries().len(), 2);
    assert_eq!(f.options.no_proxy, "corp.example");
}

#[tokio::test]
async fn requests_go_through_the_http_proxy_of_the_go_environment() {
    // The fake answers as a forward proxy would: the request names a host
    // that does not resolve, so only the proxy can answer it.
    let (proxy, hits) = fake_proxy(&[("/example.com/m/@v/list", 200, b"v1.0.0\n")]).await;
    let mut config = Config::default();
    config.go_binary_env_vars = crate::config::EnvList(vec![
        "GOPROXY=http://goproxy.invalid".into(),
        format!("HTTP_PROXY={proxy}"),
    ]);
    let f = UpstreamProxyFetcher::from_config(&config, None).unwrap();
    assert_eq!(f.list("example.com/m").await.unwrap(), vec!["v1.0.0"]);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn https_requests_carry_the_netrc_credentials_of_the_go_environment() {
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        "machine goproxy.corp.example login robot password s3cret\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.netrc_path = netrc.display().to_string();
    config.go_binary_env_vars =
        crate::config::EnvList(vec!["GOPROXY=https://goproxy.corp.example".into()]);
    let f = UpstreamProxyFetcher::from_config(&config, None).unwrap();
    let auth = |url: &str| {
        let request = f.get(url).build().unwrap();
        request
            .headers()
            .get(reqwest::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_string())
    };
    assert_eq!(
        auth("https://goproxy.corp.example/m/@v/list").as_deref(),
        Some("Basic cm9ib3Q6czNjcmV0")
    );
    // Never in clear text, never to another host, and a URL's own
    // credentials win.
    assert_eq!(auth("http://goproxy.corp.example/m/@v/list"), None);
    assert_eq!(auth("https://other.example/m/@v/list"), None);
    assert_eq!(
        auth("https://u:p@goproxy.corp.example/m/@v/list").as_deref(),
        Some("Basic dTpw")
    );
}
