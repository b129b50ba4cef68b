//! `/metrics` of the real binary: scraped and parsed before and after
//! known traffic (a module fetched from a fixture repository, served warm,
//! a module that does not exist, health checks), with exact counts.

// Only some helpers are used here.
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{bare_clone, build_repo, write_gitconfig, GitHttpServer, Server, ServerSetup};

const LIB: &str = "github.com/acme/e2e-lib";

/// A GET on 127.0.0.1: status, headers (lower-case names) and the body,
/// read by its Content-Length or its chunks.
fn get(port: u16, path: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("header line");
        headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
    }
    let mut body = Vec::new();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        loop {
            line.clear();
            reader.read_line(&mut line).expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).expect("chunk");
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        reader.read_to_end(&mut body).expect("body");
    }
    (status, headers, body)
}

/// The samples of the exposition: `name{labels}` -> value; every line is
/// a comment or a sample, and every sample belongs to a declared family.
fn scrape(port: u16) -> BTreeMap<String, f64> {
    let (status, headers, body) = get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    let text = String::from_utf8(body).expect("UTF-8 exposition");
    let mut families = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE line");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.push(name.to_string());
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            families.iter().any(|f| name == f
                || ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name.strip_suffix(s) == Some(f))),
            "undeclared {line}"
        );
        let value: f64 = value.parse().expect("sample value");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{line}"
        );
    }
    samples
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[test]
fn scraped_counts_match_known_traffic() {
    let repo = build_repo("e2e-lib");
    let scratch = tempfile::tempdir().expect("scratch");
    // Served over smart HTTP, so that the proxy keeps a copy in its git
    // cache (local repositories are read in place).
    let served = scratch.path().join("srv");
    std::fs::create_dir_all(&served).expect("srv");
    bare_clone(&repo, &served, "e2e-lib");
    let git = GitHttpServer::start(served);
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", git.url("e2e-lib.git"))]);
    let server = Server::start(&ServerSetup::memory(&gitconfig));
    let port = server.port();

    let before = scrape(port);
    let list = get(port, &format!("/{LIB}/@v/list"));
    assert_eq!(list.0, 200, "{}", server.log_text());
    for _ in 0..2 {
        assert_eq!(get(port, &format!("/{LIB}/@v/v1.0.0.info")).0, 200);
    }
    assert_eq!(get(port, &format!("/{LIB}/@v/v1.0.0.mod")).0, 200);
    let (status, _, zip) = get(port, &format!("/{LIB}/@v/v1.0.0.zip"));
    assert_eq!(status, 200);
    assert!(zip.len() > 100);
    let missing = get(port, "/github.com/acme/nothing-here/@v/v1.0.0.info").0;
    assert_eq!(missing, 404, "{}", server.log_text());
    for _ in 0..3 {
        assert_eq!(get(port, "/healthz").0, 200);
    }
    let after = scrape(port);
    let delta = |series: &str| value(&after, series) - value(&before, series);

    let requests = [
        (r#"route="list",code="200""#, 1.0),
        (r#"route="info",code="200""#, 2.0),
        (r#"route="info",code="404""#, 1.0),
        (r#"route="mod",code="200""#, 1.0),
        (r#"route="zip",code="200""#, 1.0),
        (r#"route="health",code="200""#, 3.0),
        (r#"route="metrics",code="200""#, 1.0),
    ];
    for (labels, count) in requests {
        assert_eq!(
            delta(&format!("athens_http_requests_total{{{labels}}}")),
            count,
            "{labels}"
        );
    }
    let all_requests: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("athens_http_requests_total{"))
        .map(|(k, v)| v - value(&before, k))
        .sum();
    assert_eq!(all_requests, 10.0);
    assert_eq!(
        delta(r#"athens_http_request_duration_seconds_count{route="info"}"#),
        3.0
    );
    assert_eq!(
        delta(r#"athens_http_request_duration_seconds_bucket{route="health",le="+Inf"}"#),
        3.0
    );
    assert_eq!(
        delta(r#"athens_http_response_bytes_total{route="zip"}"#),
        zip.len() as f64
    );

    let reads = [
        (r#"kind="list",result="miss""#, 1.0),
        // The cold .info: a miss, then the stored copy after the fetch;
        // the warm one: a hit; the missing module: a miss.
        (r#"kind="info",result="hit""#, 2.0),
        (r#"kind="info",result="miss""#, 2.0),
        (r#"kind="mod",result="hit""#, 1.0),
        (r#"kind="mod",result="miss""#, 0.0),
        (r#"kind="zip",result="hit""#, 1.0),
        (r#"kind="latest",result="hit""#, 0.0),
    ];
    for (labels, count) in reads {
        assert_eq!(
            delta(&format!("athens_storage_reads_total{{{labels}}}")),
            count,
            "{labels}"
        );
    }
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
        0.0
    );
    let upstream_errors: f64 = after
        .iter()
        .filter(|(k, _)| k.starts_with("athens_upstream_errors_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(upstream_errors, 0.0);
    assert_eq!(value(&after, "athens_fetches_in_flight"), 0.0);
    assert_eq!(value(&after, "athens_stashes_pending"), 0.0);
    assert_eq!(value(&after, "athens_singleflight_waits_total"), 0.0);
    // No label carries a module path.
    assert!(!after.keys().any(|k| k.contains("acme")), "{after:?}");
    // The fixture repository now lies in the git cache, which is measured
    // again at most every 10 seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let samples = scrape(port);
        if value(&samples, "athens_git_cache_bytes") > 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the git cache stays empty: {samples:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
