//! End to end: the `/index` feed of the real `athens` binary. The go
//! command downloads modules through the proxy, which stores and records
//! them; the feed then lists them, pages with `since` and `limit`, and (with
//! a PostgreSQL index started by the test) keeps them across a restart.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use fixtures::services::postgres::Postgres;
use support::{build_repo, download_ok, file_url, http_get, proxy_client, write_gitconfig};
use support::{Server, ServerSetup};

const LIB: &str = "github.com/acme/e2e-lib";
const LIB_V2: &str = "github.com/acme/e2e-lib/v2";

/// One line of the feed.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    path: String,
    version: String,
    timestamp: String,
}

fn feed(server: &Server, query: &str) -> Vec<Line> {
    let (status, body) = http_get(server.port(), &format!("/index{query}")).expect("GET /index");
    let body = String::from_utf8(body).expect("utf-8 feed");
    assert_eq!(status, 200, "/index{query}: {body}");
    body.lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            let object = value.as_object().expect("a JSON object per line");
            let keys: Vec<&str> = object.keys().map(String::as_str).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(sorted, ["Path", "Timestamp", "Version"], "{line}");
            Line {
                path: value["Path"].as_str().unwrap().to_string(),
                version: value["Version"].as_str().unwrap().to_string(),
                timestamp: value["Timestamp"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn pairs(lines: &[Line]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| (l.path.clone(), l.version.clone()))
        .collect()
}

/// Downloads three versions through the proxy with the go command; each
/// appears once in the feed, oldest first, whatever is asked again.
fn download_and_check(server: &Server) -> Vec<Line> {
    let client = proxy_client(&server.url());
    for (module, version) in [(LIB, "v1.0.0"), (LIB, "v1.1.0"), (LIB_V2, "v2.0.0")] {
        download_ok(&client, module, version);
    }
    // Served from storage now: asking again records nothing new.
    download_ok(&proxy_client(&server.url()), LIB, "v1.0.0");
    let all = feed(server, "");
    assert_eq!(
        pairs(&all),
        [
            (LIB.to_string(), "v1.0.0".to_string()),
            (LIB.to_string(), "v1.1.0".to_string()),
            (LIB_V2.to_string(), "v2.0.0".to_string()),
        ]
    );
    for line in &all {
        assert!(line.timestamp.ends_with('Z'), "{line:?}");
    }
    assert!(all.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    // `limit` cuts, `since` (inclusive) starts at a line's own time.
    assert_eq!(feed(server, "?limit=2"), all[..2]);
    let since = &all[1].timestamp;
    let from = feed(server, &format!("?since={since}&limit=10"));
    assert!(from.contains(&all[1]) && from.contains(&all[2]), "{from:?}");
    assert!(!from.contains(&all[0]) || all[0].timestamp == *since);
    assert!(feed(server, "?since=2999-01-01T00:00:00Z").is_empty());
    for bad in ["?limit=0", "?limit=x", "?since=2021-01-01"] {
        let (status, _) = http_get(server.port(), &format!("/index{bad}")).expect("GET");
        assert_eq!(status, 400, "{bad}");
    }
    all
}

fn setup(index_env: &[(&str, String)]) -> (tempfile::TempDir, ServerSetup, fixtures::FixtureRepo) {
    let repo = build_repo("e2e-lib");
    let scratch = tempfile::tempdir().expect("scratch");
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let storage = scratch.path().join("storage");
    std::fs::create_dir(&storage).expect("storage root");
    let mut setup = ServerSetup::disk(&storage, &gitconfig);
    setup.extra_env = index_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    (scratch, setup, repo)
}

#[test]
fn memory_index_lists_what_the_go_command_downloaded() {
    let (_scratch, setup, _repo) = setup(&[("ATHENS_INDEX_TYPE", "memory".into())]);
    let server = Server::start(&setup);
    download_and_check(&server);
}

#[test]
fn no_index_serves_an_empty_feed() {
    let (_scratch, setup, _repo) = setup(&[]);
    let server = Server::start(&setup);
    download_ok(&proxy_client(&server.url()), LIB, "v1.0.0");
    assert!(feed(&server, "").is_empty());
}

#[test]
fn postgres_index_keeps_the_feed_across_restarts() {
    let db = Postgres::start().expect("PostgreSQL (scripts/test.sh installs it)");
    let env = [
        ("ATHENS_INDEX_TYPE", "postgres".to_string()),
        ("ATHENS_INDEX_POSTGRES_HOST", "127.0.0.1".to_string()),
        (
            "ATHENS_INDEX_POSTGRES_PORT",
            db.process.addr.port().to_string(),
        ),
        ("ATHENS_INDEX_POSTGRES_USER", db.user.clone()),
        (
            "ATHENS_INDEX_POSTGRES_PASSWORD",
            Postgres::PASSWORD.to_string(),
        ),
        ("ATHENS_INDEX_POSTGRES_DATABASE", db.database.clone()),
        (
            "ATHENS_INDEX_POSTGRES_PARAMS",
            "connect_timeout:60,sslmode:disable".to_string(),
        ),
    ];
    let (_scratch, setup, _repo) = setup(&env);
    let mut server = Server::start(&setup);
    let all = download_and_check(&server);
    server.stop();
    assert!(
        !server.log_text().contains(Postgres::PASSWORD),
        "the password reached the log"
    );
    // Same storage, same database: the feed is what it was.
    let again = Server::start(&setup);
    assert_eq!(feed(&again, ""), all);

    // A wrong password stops the start with a reason that does not
    // repeat it.
    let mut wrong = setup.clone();
    for (key, value) in &mut wrong.extra_env {
        if key == "ATHENS_INDEX_POSTGRES_PASSWORD" {
            *value = "not-the-password".into();
        }
    }
    let scratch = tempfile::tempdir().expect("scratch");
    let log = scratch.path().join("out.log");
    let log_file = std::fs::File::create(&log).expect("log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_athens"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ATHENS_PORT", "127.0.0.1:0")
        .env("ATHENS_STORAGE_TYPE", "memory")
        .env("ATHENS_GOGET_DIR", scratch.path().join("goget"))
        .envs(wrong.extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("running athens");
    // It must stop by itself; one that started anyway is killed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.is_some_and(|s| !s.success()), "{status:?}: {text}");
    assert!(text.contains("Index.Postgres"), "{text}");
    assert!(!text.contains("not-the-password"), "{text}");
}
