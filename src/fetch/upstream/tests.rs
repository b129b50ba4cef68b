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

/// The chain's entries, as (target, whether any error falls through).
fn walked(goproxy: &str) -> Result<Vec<(ProxyTarget, bool)>, String> {
    let f = UpstreamProxyFetcher::new(goproxy, None, UpstreamOptions::default())?;
    Ok(f.entries()
        .iter()
        .map(|e| (e.target.clone(), e.fallback == Fallback::OnAnyError))
        .collect())
}

#[test]
fn goproxy_lists_parse_like_the_go_command() {
    assert_eq!(
        walked("https://a.example,direct").unwrap(),
        vec![
            (ProxyTarget::Url("https://a.example".into()), false),
            (ProxyTarget::Direct, false)
        ]
    );
    assert_eq!(
        walked(" a.example | b.example:8080/x ,off,https://never.example").unwrap(),
        vec![
            (ProxyTarget::Url("https://a.example".into()), true),
            (ProxyTarget::Url("https://b.example:8080/x".into()), false),
            (ProxyTarget::Off, false),
        ]
    );
    assert_eq!(
        walked("direct,https://x.example").unwrap(),
        vec![(ProxyTarget::Direct, false)]
    );
    assert_eq!(walked("").unwrap().len(), 2);
    assert!(walked("file:///srv/proxy").is_ok());
    assert!(walked(" , ").unwrap_err().contains("no entries"));
    assert!(walked("ftp://x.example").is_err());
    assert!(walked("http://[bad").is_err());
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

/// The chain of the go environment a configuration describes.
fn chain_of(config: &crate::config::Config) -> UpstreamProxyFetcher {
    let dir = tempfile::tempdir().unwrap();
    let env = crate::fetch::go_env::from_config(config, dir.path()).unwrap();
    UpstreamProxyFetcher::from_go_env(&env, None, config.timeout_duration(), None).unwrap()
}

#[tokio::test]
async fn go_environment_supplies_goproxy_and_gonoproxy() {
    let mut config = crate::config::Config::default();
    config.go_binary_env_vars = crate::config::EnvList(vec![
        "GOPROXY=https://a.example|direct".into(),
        "GOPRIVATE=corp.example".into(),
    ]);
    let f = chain_of(&config);
    // GONOPROXY (here GOPRIVATE) comes first, as in the go command's walk.
    let targets: Vec<&ProxyTarget> = f.entries().iter().map(|e| &e.target).collect();
    assert_eq!(
        targets,
        vec![
            &ProxyTarget::NoProxy,
            &ProxyTarget::Url("https://a.example".into()),
            &ProxyTarget::Direct
        ]
    );
    assert_eq!(f.options.no_proxy, "corp.example");
}

#[tokio::test]
async fn requests_go_through_the_http_proxy_of_the_go_environment() {
    // The fake answers as a forward proxy would: the request names a host
    // that does not resolve, so only the proxy can answer it.
    let (proxy, hits) = fake_proxy(&[("/example.com/m/@v/list", 200, b"v1.0.0\n")]).await;
    let mut config = crate::config::Config::default();
    config.go_binary_env_vars = crate::config::EnvList(vec![
        "GOPROXY=http://goproxy.invalid".into(),
        format!("HTTP_PROXY={proxy}"),
    ]);
    let f = chain_of(&config);
    assert_eq!(f.list("example.com/m").await.unwrap(), vec!["v1.0.0"]);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn https_requests_carry_the_netrc_credentials_of_the_go_environment() {
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        "machine goproxy.corp.example login robot password s3cret\n",
    )
    .unwrap();
    let mut config = crate::config::Config::default();
    config.netrc_path = netrc.display().to_string();
    config.go_binary_env_vars =
        crate::config::EnvList(vec!["GOPROXY=https://goproxy.corp.example".into()]);
    let f = chain_of(&config);
    let mut seen = Vec::new();
    for url in [
        "https://goproxy.corp.example/m/@v/list",
        "http://goproxy.corp.example/m/@v/list",
        "https://other.example/m/@v/list",
        "https://u:p@goproxy.corp.example/m/@v/list",
    ] {
        let (_, credentials) = f.initial_credentials(url).await;
        let request = f.get(url, &credentials).build().unwrap();
        seen.push(
            request
                .headers()
                .get(reqwest::header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap().to_string()),
        );
    }
    // Never in clear text, never to another host, and a URL's own
    // credentials win.
    assert_eq!(
        seen,
        [
            Some("Basic cm9ib3Q6czNjcmV0".to_string()),
            None,
            None,
            Some("Basic dTpw".to_string())
        ]
    );
}

#[test]
fn info_is_decoded_as_the_go_json_decoder_decodes_it() {
    use verify::decode_info;
    let info =
        decode_info(br#"{"version":"v1.0.0","TIME":"2021-01-02T03:04:05Z","Extra":1}"#).unwrap();
    assert_eq!(info.version, "v1.0.0");
    assert_eq!(info.time, "2021-01-02T03:04:05Z");
    let info = decode_info(br#"{"Version":"v1.0.0","Time":null,"Origin":null}"#).unwrap();
    assert_eq!((info.time.as_str(), info.origin), ("", None));
    // A top-level null decodes to nothing, which no version check passes.
    assert_eq!(decode_info(b"null").unwrap().version, "");
    let info = decode_info(br#"{"Version":"v1.0.0","Origin":{"VCS":"git","Hash":"abc","X":[1]}}"#)
        .unwrap();
    assert_eq!(info.origin.unwrap()["Hash"], "abc");
    for bad in [
        &b"not json at all"[..],
        b"",
        b"[]",
        b"\"v1.0.0\"",
        br#"{"Version":1}"#,
        br#"{"Version":"v1.0.0","Time":"yesterday"}"#,
        br#"{"Version":"v1.0.0","Time":5}"#,
        br#"{"Version":"v1.0.0","Origin":"git"}"#,
        br#"{"Version":"v1.0.0","Origin":{"Hash":7}}"#,
        br#"{"Version":"v1.0.0"} trailing"#,
    ] {
        assert!(
            decode_info(bad).is_err(),
            "{:?} should not decode",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn times_are_rfc3339_as_go_reads_them() {
    for good in [
        "2021-01-02T03:04:05Z",
        "2021-01-02T03:04:05.123456789Z",
        "2021-01-02T03:04:05+01:00",
        "2020-02-29T23:59:59-23:59",
        "0000-01-01T00:00:00Z",
        "2021-01-02T03:04:05.1234567891234Z",
    ] {
        assert!(verify::is_go_rfc3339(good), "{good}");
    }
    for bad in [
        "",
        "2021-01-02",
        "2021-01-02 03:04:05Z",
        "2021-01-02T03:04:05",
        "2021-13-02T03:04:05Z",
        "2021-02-29T03:04:05Z",
        "2021-04-31T03:04:05Z",
        "2021-01-02T24:00:00Z",
        "2021-01-02T03:60:05Z",
        "2021-01-02T03:04:60Z",
        "2021-01-02T03:04:05z",
        "2021-01-02T03:04:05+24:00",
        "2021-01-02T03:04:05+01:60",
        "2021-01-02T03:04:05+0100",
        "2021-01-02T03:04:05.Z",
        "2021-01-02T03:04:05ZZ",
        "+021-01-02T03:04:05Z",
    ] {
        assert!(!verify::is_go_rfc3339(bad), "{bad}");
    }
}

#[test]
fn resolved_versions_must_be_canonical_and_fit_the_module() {
    let info = |v: &str| RevInfo {
        version: v.into(),
        time: String::new(),
        origin: None,
    };
    let check = verify::check_info_version;
    assert!(check("example.com/m", "v1.0.0", &info("v1.0.0")).is_ok());
    assert!(check(
        "example.com/m",
        "main",
        &info("v1.0.1-0.20210102030405-abcdefabcdef")
    )
    .is_ok());
    assert!(check("example.com/m", "", &info("v2.0.0+incompatible")).is_ok());
    assert!(check("example.com/m", "v1.0.0", &info("v1.0.1")).is_err());
    assert!(check("example.com/m", "main", &info("v1.0")).is_err());
    assert!(check("example.com/m", "main", &info("")).is_err());
    assert!(check("example.com/m", "main", &info("v1.0.0+build")).is_err());
    // Canonical, but not a version this module path can have.
    assert!(check("example.com/m", "main", &info("v2.0.0")).is_err());
    assert!(check("example.com/m/v2", "latest", &info("v1.0.0")).is_err());
    assert!(check("gopkg.in/yaml.v2", "", &info("v2.4.0")).is_ok());
    // v2.0.0 of an unsuffixed path can only be v2.0.0+incompatible.
    assert!(check("example.com/m", "v2.0.0", &info("v2.0.0+incompatible")).is_ok());
    assert!(check("example.com/m", "v2.0.0", &info("v2.0.1+incompatible")).is_err());
    assert!(check("example.com/m", "v2.0.0", &info("v1.0.0")).is_err());
}

#[test]
fn go_mod_answers_must_parse_and_fit_the_major_version() {
    let check = verify::check_go_mod;
    for (module, data) in [
        ("example.com/m", "module example.com/m\n"),
        (
            "example.com/m",
            "// c\nmodule \"example.com/m\"\n\ngo 1.21\nrequire x.com/y v1.0.0\n",
        ),
        // A fork keeps its original path: usable as a replace target.
        ("example.com/fork", "module example.com/m\n"),
        ("example.com/m/v2", "module example.com/m/v2\n"),
        ("example.com/m/v2", "module other.example/x/v2\n"),
        ("gopkg.in/yaml.v2", "module gopkg.in/yaml.v2\n"),
        // Old go commands let unversioned paths take gopkg.in go.mod files.
        ("example.com/m", "module gopkg.in/yaml.v3\n"),
        (
            "example.com/m",
            "module example.com/m\nreplace ( whatever => ./x )\n",
        ),
    ] {
        assert!(check(module, data.as_bytes()).is_ok(), "{module}: {data:?}");
    }
    for (module, data) in [
        ("example.com/m", "not a go.mod file, just text\n"),
        ("example.com/m", ""),
        ("example.com/m", "go 1.21\n"),
        ("example.com/m", "module \"\"\n"),
        (
            "example.com/m",
            "module example.com/m\nmodule example.com/m\n",
        ),
        ("example.com/m", "module example.com/m\nrequire x.com/y\n"),
        ("example.com/m", "module \"example.com/m\n"),
        ("example.com/m", "module example.com/m/v2\n"),
        ("example.com/m/v2", "module example.com/m\n"),
        ("example.com/m/v2", "module example.com/m/v3\n"),
        ("gopkg.in/yaml.v2", "module github.com/go-yaml/yaml\n"),
    ] {
        assert!(
            check(module, data.as_bytes()).is_err(),
            "{module}: {data:?}"
        );
    }
}

/// Fetches `example.com/Upper@v1.0.0` from a proxy answering the usual
/// `.info` and the given `.mod` and zip bytes.
async fn fetch_with(
    go_mod: &'static [u8],
    zip: &'static [u8],
) -> Result<FetchedModule, FetchError> {
    let (base, _) = fake_proxy(&[
        ("/example.com/!upper/@v/v1.0.0.info", 200, INFO_V1),
        ("/example.com/!upper/@v/v1.0.0.mod", 200, go_mod),
        ("/example.com/!upper/@v/v1.0.0.zip", 200, zip),
    ])
    .await;
    fetcher(&base, None)
        .fetch("example.com/Upper", "v1.0.0")
        .await
}

#[tokio::test]
async fn hostile_answers_are_invalid_responses() {
    let p = "example.com/Upper@v1.0.0/";
    let zip = |entries: &[(&str, &[u8])]| leak(fixtures::rawzip::stored_zip(entries));
    let cases: Vec<(&str, &'static [u8], &'static [u8], &str)> = vec![
        (
            "plain .mod",
            b"Hello, I am not a go.mod",
            upper_zip(),
            ".mod",
        ),
        (
            "wrong major",
            b"module example.com/Upper/v3\n",
            upper_zip(),
            "does not fit",
        ),
        (
            "plain zip",
            UPPER_MOD,
            b"PK but not really a zip",
            "invalid zip",
        ),
        (
            "outside the prefix",
            UPPER_MOD,
            zip(&[
                (&format!("{p}go.mod"), UPPER_MOD),
                ("evil/x.go", b"package x"),
            ]),
            "invalid zip",
        ),
        (
            "duplicate",
            UPPER_MOD,
            zip(&[
                (&format!("{p}go.mod"), UPPER_MOD),
                (&format!("{p}a.go"), b"package a"),
                (&format!("{p}a.go"), b"package b"),
            ]),
            "invalid zip",
        ),
        (
            "case-fold collision",
            UPPER_MOD,
            zip(&[
                (&format!("{p}A.go"), b"package a"),
                (&format!("{p}a.go"), b"package a"),
            ]),
            "invalid zip",
        ),
        (
            "parent path",
            UPPER_MOD,
            zip(&[(&format!("{p}../escape.go"), b"package a")]),
            "invalid zip",
        ),
        (
            "go.mod differs",
            UPPER_MOD,
            leak(module_zip(
                "example.com/Upper",
                "v1.0.0",
                &[(
                    "go.mod",
                    b"module example.com/Upper\nrequire evil.example/x v1.0.0\n",
                )],
            )),
            "differs",
        ),
    ];
    for (name, go_mod, zip, wanted) in cases {
        let err = fetch_with(go_mod, zip).await.unwrap_err();
        assert!(
            matches!(err, FetchError::InvalidResponse { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(wanted), "{name}: {err}");
    }
    // A zip without go.mod is fine whatever the .mod says (old modules).
    let m = fetch_with(
        b"module example.com/Upper\nrequire a.example/b v1.0.0\n",
        leak(module_zip(
            "example.com/Upper",
            "v1.0.0",
            &[("a.go", b"package a")],
        )),
    )
    .await
    .unwrap();
    assert_eq!(m.version, "v1.0.0");
}

#[tokio::test]
async fn hostile_info_answers_are_invalid_responses() {
    for info in [
        &b"<html>proxy error</html>"[..],
        br#"{"Version":"v1.0.0","Time":"today"}"#,
        br#"{"Version":"v1.0"}"#,
        br#"{"Version":"v1.0.1"}"#,
    ] {
        let (base, hits) = fake_proxy(&[
            ("/example.com/!upper/@v/v1.0.0.info", 200, info),
            ("/example.com/!upper/@v/v1.0.0.mod", 200, UPPER_MOD),
            ("/example.com/!upper/@v/v1.0.0.zip", 200, upper_zip()),
        ])
        .await;
        let err = fetcher(&base, None)
            .fetch("example.com/Upper", "v1.0.0")
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::InvalidResponse { .. }), "{err}");
        // Nothing after a bad .info is even asked for.
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
    // A query must resolve to a version the module can have.
    let (base, _) = fake_proxy(&[(
        "/example.com/!upper/@v/main.info",
        200,
        br#"{"Version":"v2.0.0","Time":"2021-01-02T03:04:05Z"}"#,
    )])
    .await;
    let f = fetcher(&base, None);
    assert!(matches!(
        f.fetch("example.com/Upper", "main").await.unwrap_err(),
        FetchError::InvalidResponse { .. }
    ));
    assert!(matches!(
        f.query("example.com/Upper", "main").await.unwrap_err(),
        FetchError::InvalidResponse { .. }
    ));
}

#[tokio::test]
async fn lenient_info_spellings_are_stored_re_encoded() {
    let (base, _) = fake_proxy(&[
        (
            "/example.com/!upper/@v/v1.0.0.info",
            200,
            br#"{"version":"v1.0.0","time":"2021-01-02T03:04:05Z"}"#,
        ),
        ("/example.com/!upper/@v/v1.0.0.mod", 200, UPPER_MOD),
        ("/example.com/!upper/@v/v1.0.0.zip", 200, upper_zip()),
    ])
    .await;
    let m = fetcher(&base, None)
        .fetch("example.com/Upper", "v1.0.0")
        .await
        .unwrap();
    assert_eq!(&m.info[..], INFO_V1);
}

/// A server on 127.0.0.1 that answers every connection with `response`
/// as is, then closes it.
async fn raw_server(response: &'static [u8]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn oversized_zips_are_refused_announced_or_streamed() {
    // Announced: refused from the header, before the body.
    let announced =
        raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 524288001\r\nConnection: close\r\n\r\nPK")
            .await;
    let f = fetcher(&announced, None);
    let err = f
        .download_zip(
            &format!("{announced}/m/@v/v1.0.0.zip"),
            "example.com/m",
            "v1.0.0",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::InvalidResponse { .. }), "{err}");
    assert!(err.to_string().contains("larger than 524288000"), "{err}");

    // Streamed without a length: refused once past the limit.
    let mut body =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for _ in 0..8 {
        body.extend_from_slice(b"100\r\n");
        body.extend_from_slice(&[b'x'; 256]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let streamed = raw_server(leak(body)).await;
    let mut f = fetcher(&streamed, None);
    f.max_zip_size = 1000;
    let url = format!("{streamed}/m/@v/v1.0.0.zip");
    let err = f
        .download_zip(&url, "example.com/m", "v1.0.0")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("larger than 1000"), "{err}");
    f.max_zip_size = 2048;
    assert_eq!(
        f.download_zip(&url, "example.com/m", "v1.0.0")
            .await
            .unwrap()
            .size(),
        2048
    );
}

/// The Authorization headers a server has seen, one per request.
type SeenAuth = Arc<std::sync::Mutex<Vec<Option<String>>>>;

/// A fake proxy that records the Authorization header of each request and
/// answers every path with a redirect to `location` + path, or with a
/// version list when `location` is empty.
async fn recording_server(location: String) -> (String, SeenAuth) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let state = (location, seen.clone());
    async fn answer(
        State((location, seen)): State<(String, SeenAuth)>,
        headers: axum::http::HeaderMap,
        uri: Uri,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let auth = headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("").to_string());
        seen.lock().unwrap().push(auth);
        if location.is_empty() {
            return (StatusCode::OK, "v1.0.0\n").into_response();
        }
        (
            StatusCode::FOUND,
            [(
                axum::http::header::LOCATION,
                format!("{location}{}", uri.path()),
            )],
        )
            .into_response()
    }
    let app = Router::new().fallback(answer).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn credentials_do_not_follow_a_redirect_to_another_host() {
    let (second, second_seen) = recording_server(String::new()).await;
    let (first, first_seen) = recording_server(second.clone()).await;
    let with_creds = first.replace("http://", "http://robot:s3cret@");
    let versions = fetcher(&with_creds, None)
        .list("example.com/m")
        .await
        .unwrap();
    assert_eq!(versions, vec!["v1.0.0"]);
    assert_eq!(
        first_seen.lock().unwrap().as_slice(),
        [Some("Basic cm9ib3Q6czNjcmV0".to_string())]
    );
    assert_eq!(second_seen.lock().unwrap().as_slice(), [None]);
}

#[tokio::test]
async fn redirect_loops_stop_after_ten() {
    // The server redirects to itself forever.
    let (base, seen) = {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let app = Router::new().fallback(move |uri: Uri| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    StatusCode::FOUND,
                    [(axum::http::header::LOCATION, uri.path().to_string())],
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), seen)
    };
    let err = fetcher(&base, None)
        .list("example.com/m")
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Upstream { .. }), "{err}");
    assert!(
        err.to_string().contains("stopped after 10 redirects"),
        "{err}"
    );
    // The first request and nine redirects, as the go command's client.
    assert_eq!(seen.load(Ordering::SeqCst), 10);
}

#[test]
fn ssl_cert_file_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let options = |file: &str| UpstreamOptions {
        ssl_cert_file: Some(dir.path().join(file)),
        ..UpstreamOptions::default()
    };
    let err = UpstreamProxyFetcher::new("https://a.example", None, options("missing.pem"))
        .err()
        .unwrap();
    assert!(err.contains("SSL_CERT_FILE"), "{err}");
    std::fs::write(dir.path().join("empty.pem"), "no certificates here\n").unwrap();
    let err = UpstreamProxyFetcher::new("https://a.example", None, options("empty.pem"))
        .err()
        .unwrap();
    assert!(err.contains("no certificates"), "{err}");
}

/// A direct fetcher for modules whose go-import tag names the module
/// proxy at `url`.
struct ModTagDirect {
    url: String,
}

impl ModTagDirect {
    fn answer(&self, module: &str, version: &str) -> FetchError {
        FetchError::ModuleProxy {
            module: module.to_string(),
            version: version.to_string(),
            url: self.url.clone(),
        }
    }
}

#[async_trait]
impl Fetcher for ModTagDirect {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        Err(self.answer(module, version))
    }
    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        Err(self.answer(module, ""))
    }
    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        Err(self.answer(module, "latest"))
    }
    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        Err(self.answer(module, rev))
    }
}

#[tokio::test]
async fn the_module_proxy_a_go_import_tag_names_is_asked() {
    let (named, hits) = fake_proxy(&module_routes()).await;
    let direct = Arc::new(ModTagDirect { url: named });
    let f = fetcher("direct", Some(direct.clone()));
    let m = f.fetch("example.com/Upper", "v1.0.0").await.unwrap();
    assert_eq!(m.version, "v1.0.0");
    assert_eq!(std::fs::read(m.zip.path()).unwrap(), upper_zip());
    assert!(f
        .list("example.com/Upper")
        .await
        .unwrap()
        .contains(&"v1.0.0".to_string()));
    assert_eq!(
        f.query("example.com/Upper", "main").await.unwrap().version,
        "v1.0.0"
    );
    assert!(hits.load(Ordering::SeqCst) >= 5);
    // One fetcher per named proxy, kept for its connections.
    assert_eq!(f.module_proxies.lock().unwrap().len(), 1);

    // A URL that is a list is refused as not found, naming the URL.
    let listed = fetcher(
        "direct",
        Some(Arc::new(ModTagDirect {
            url: "https://a.example,https://b.example".into(),
        })),
    );
    let err = listed.latest("example.com/Upper").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(
        err.to_string().contains("invalid module proxy URL"),
        "{err}"
    );
    // Without a chain to follow it, the answer means "not here".
    let err = direct.list("example.com/Upper").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
