//! The same checks against every backend: memory here, and a real
//! MariaDB and PostgreSQL started by the test (the programs come from
//! Debian's packages, which scripts/test.sh installs; a missing one fails
//! the test).

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use fixtures::services::mariadb::MariaDb;
use fixtures::services::postgres::Postgres;
use time::OffsetDateTime;
use tower::ServiceExt;

use super::memory::MemoryIndex;
use super::mysql::MySqlIndex;
use super::postgres::PostgresIndex;
use super::*;
use crate::config::{MySqlConfig, PostgresConfig, Secret};

const EPOCH: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

fn names(lines: &[IndexLine]) -> Vec<String> {
    lines
        .iter()
        .map(|l| format!("{}@{}", l.path, l.version))
        .collect()
}

/// What every backend must do, on an empty index.
async fn conformance(index: &dyn Indexer) {
    assert!(index.lines(EPOCH, 2000).await.unwrap().is_empty());

    let mut recorded = Vec::new();
    for i in 0..10 {
        let module = format!("example.com/mod{i}");
        let version = format!("v1.{i}.0");
        index.index(&module, &version).await.unwrap();
        recorded.push(format!("{module}@{version}"));
    }
    let all = index.lines(EPOCH, 2000).await.unwrap();
    assert_eq!(names(&all), recorded, "all lines, oldest first");
    assert!(all.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
    let now = OffsetDateTime::now_utc();
    for line in &all {
        // Recorded just now (generous: the machine may be very busy).
        assert!(
            (now - line.timestamp).whole_minutes().abs() < 10,
            "{line:?}"
        );
        assert_eq!(line.timestamp.offset(), time::UtcOffset::UTC);
    }

    assert_eq!(names(&index.lines(EPOCH, 5).await.unwrap()), recorded[..5]);

    // `since` is inclusive: from a line's own time on, that line and the
    // later ones (and any recorded in the same microsecond before it).
    let since = all[6].timestamp;
    let from = index.lines(since, 2000).await.unwrap();
    let expected: Vec<String> = all
        .iter()
        .filter(|l| l.timestamp >= since)
        .map(|l| format!("{}@{}", l.path, l.version))
        .collect();
    assert_eq!(names(&from), expected);
    assert!(names(&from).contains(&recorded[6]));
    assert!(from.iter().all(|l| l.timestamp >= since));

    let after_all = all[9].timestamp + time::Duration::seconds(1);
    assert!(index.lines(after_all, 2000).await.unwrap().is_empty());

    // A version recorded twice keeps its first record.
    let err = index.index("example.com/mod3", "v1.3.0").await.unwrap_err();
    assert!(matches!(err, IndexError::AlreadyIndexed { .. }), "{err}");
    assert_eq!(index.lines(EPOCH, 2000).await.unwrap(), all);

    // Paging as a mirror does: the last time seen is the next `since`;
    // the boundary line comes again and is skipped.
    let mut seen: Vec<String> = Vec::new();
    let mut since = EPOCH;
    loop {
        let page = index.lines(since, 3).await.unwrap();
        let new: Vec<String> = names(&page)
            .into_iter()
            .filter(|n| !seen.contains(n))
            .collect();
        if new.is_empty() {
            break;
        }
        seen.extend(new);
        since = page.last().unwrap().timestamp;
    }
    assert_eq!(seen, recorded);
}

#[tokio::test]
async fn memory_index_conforms() {
    conformance(&MemoryIndex::new()).await;
}

#[tokio::test]
async fn no_index_records_nothing() {
    NoIndex.index("example.com/m", "v1.0.0").await.unwrap();
    assert!(NoIndex.lines(EPOCH, 10).await.unwrap().is_empty());
}

fn mysql_config(db: &MariaDb) -> MySqlConfig {
    MySqlConfig {
        protocol: "tcp".into(),
        host: "127.0.0.1".into(),
        port: u32::from(db.process.addr.port()),
        user: db.user.clone(),
        password: Secret::new(MariaDb::PASSWORD),
        database: db.database.clone(),
        ..MySqlConfig::default()
    }
}

#[tokio::test]
async fn mariadb_index_conforms() {
    let db = tokio::task::spawn_blocking(MariaDb::start)
        .await
        .unwrap()
        .unwrap();
    let config = mysql_config(&db);
    let index = MySqlIndex::open(&config).await.unwrap();
    conformance(&index).await;
    let before = index.lines(EPOCH, 2000).await.unwrap();

    // Opening again finds the table and its records (Athens' table is
    // created only when missing), here through the unix socket.
    let socket = MySqlConfig {
        protocol: "unix".into(),
        host: db.socket.display().to_string(),
        ..config.clone()
    };
    let again = MySqlIndex::open(&socket).await.unwrap();
    assert_eq!(again.lines(EPOCH, 2000).await.unwrap(), before);
    // Both see what either records.
    again.index("example.com/late", "v0.1.0").await.unwrap();
    let last = index.lines(EPOCH, 2000).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.path.as_str(), last.version.as_str()),
        ("example.com/late", "v0.1.0")
    );

    // A wrong password stops the start with a reason that does not
    // repeat it.
    let wrong = MySqlConfig {
        password: Secret::new("not-the-password"),
        ..config.clone()
    };
    let err = format!("{:#}", MySqlIndex::open(&wrong).await.err().unwrap());
    assert!(err.contains("Index.MySQL"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
}

/// `tls` as Athens' driver reads it, against a server whose certificate
/// is signed by a test CA no client trusts.
#[tokio::test]
async fn mariadb_index_over_tls() {
    let db = tokio::task::spawn_blocking(MariaDb::start_tls)
        .await
        .unwrap()
        .unwrap();
    let with = |tls: &str| {
        let mut config = mysql_config(&db);
        config.host = "localhost".into();
        config.params.insert("tls".into(), tls.into());
        config
    };
    let encrypted = MySqlIndex::open(&with("skip-verify")).await.unwrap();
    assert!(encrypted.uses_tls().await);
    conformance(&encrypted).await;
    let plain = MySqlIndex::open(&with("false")).await.unwrap();
    assert!(!plain.uses_tls().await);
    assert_eq!(plain.lines(EPOCH, 1).await.unwrap().len(), 1);
    // Verified: the test CA is nobody's root.
    let err = format!("{:#}", MySqlIndex::open(&with("true")).await.err().unwrap());
    assert!(
        err.to_lowercase().contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
}

fn postgres_config(db: &Postgres) -> PostgresConfig {
    PostgresConfig {
        host: "127.0.0.1".into(),
        port: u32::from(db.process.addr.port()),
        user: db.user.clone(),
        password: Secret::new(Postgres::PASSWORD),
        database: db.database.clone(),
        ..PostgresConfig::default()
    }
}

#[tokio::test]
async fn postgres_index_conforms() {
    let db = tokio::task::spawn_blocking(Postgres::start)
        .await
        .unwrap()
        .unwrap();
    let config = postgres_config(&db);
    let index = PostgresIndex::open(&config).await.unwrap();
    conformance(&index).await;
    let before = index.lines(EPOCH, 2000).await.unwrap();

    let again = PostgresIndex::open(&config).await.unwrap();
    assert_eq!(again.lines(EPOCH, 2000).await.unwrap(), before);

    let wrong = PostgresConfig {
        password: Secret::new("not-the-password"),
        ..config.clone()
    };
    let err = format!("{:#}", PostgresIndex::open(&wrong).await.err().unwrap());
    assert!(err.contains("Index.Postgres"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");

    // The connection is made again after the server ends it.
    let admin = {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user={} password={} dbname={}",
                db.process.addr.port(),
                db.user,
                Postgres::PASSWORD,
                db.database
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        client
    };
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE pid <> pg_backend_pid() AND datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    // Once the server has ended it, the next use finds the connection
    // gone and connects anew.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let others: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE pid <> pg_backend_pid() AND datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if others == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{others} connections remain"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(index.lines(EPOCH, 2000).await.unwrap(), before);
    index.index("example.com/after", "v1.0.0").await.unwrap();
}

/// TLS as lib/pq's `sslmode` asks, against a server whose certificate is
/// for `localhost`, signed by a test CA.
#[tokio::test]
async fn postgres_index_over_tls() {
    let db = tokio::task::spawn_blocking(Postgres::start_tls)
        .await
        .unwrap()
        .unwrap();
    let ca = db.ca_cert.clone().unwrap().display().to_string();
    let with = |host: &str, params: &[(&str, &str)]| PostgresConfig {
        host: host.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..postgres_config(&db)
    };
    let full = PostgresIndex::open(&with(
        "localhost",
        &[("sslmode", "verify-full"), ("sslrootcert", &ca)],
    ))
    .await
    .unwrap();
    assert!(full.uses_tls().await);
    conformance(&full).await;
    for (host, params, tls) in [
        // The chain only: another name for the host is fine.
        (
            "127.0.0.1",
            &[("sslmode", "verify-ca"), ("sslrootcert", ca.as_str())][..],
            true,
        ),
        (
            "127.0.0.1",
            &[("sslmode", "require"), ("sslrootcert", ca.as_str())],
            true,
        ),
        // Nothing checked.
        ("127.0.0.1", &[("sslmode", "require")], true),
        ("127.0.0.1", &[], true),
        ("127.0.0.1", &[("sslmode", "prefer")], true),
        ("127.0.0.1", &[("sslmode", "disable")], false),
    ] {
        let index = PostgresIndex::open(&with(host, params)).await.unwrap();
        assert_eq!(index.uses_tls().await, tls, "{params:?}");
        assert_eq!(index.lines(EPOCH, 1).await.unwrap().len(), 1, "{params:?}");
    }
    for (host, params) in [
        // The certificate is not for 127.0.0.1.
        (
            "127.0.0.1",
            &[("sslmode", "verify-full"), ("sslrootcert", ca.as_str())][..],
        ),
        // Not signed by a system root.
        ("localhost", &[("sslmode", "verify-ca")]),
    ] {
        let Some(err) = PostgresIndex::open(&with(host, params)).await.err() else {
            panic!("{params:?} connected");
        };
        let err = format!("{err:#}");
        assert!(
            err.to_lowercase().contains("certificate"),
            "{params:?}: {err}"
        );
    }
}

async fn get(index: Arc<dyn Indexer>, uri: &str) -> (u16, String, String) {
    let response = routes(index)
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_feed_answers_json_lines_and_refuses_bad_queries() {
    let index = Arc::new(MemoryIndex::new());
    for (module, version) in [
        ("example.com/a", "v1.0.0"),
        ("example.com/b", "v2.0.0+incompatible"),
        ("example.com/c", "v0.0.0-20200101000000-abcdefabcdef"),
    ] {
        index.index(module, version).await.unwrap();
    }
    let (status, content_type, body) = get(index.clone(), "/index").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json; charset=utf-8");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(body.ends_with('\n'));
    assert_eq!(lines[1]["Path"], "example.com/b");
    assert_eq!(lines[1]["Version"], "v2.0.0+incompatible");
    let stamp = lines[1]["Timestamp"].as_str().unwrap();
    assert!(
        stamp.ends_with('Z') && parse_go_rfc3339(stamp).is_some(),
        "{stamp}"
    );
    // Exactly the three fields, in Go's order.
    assert!(body.starts_with("{\"Path\":\"example.com/a\",\"Version\":\"v1.0.0\",\"Timestamp\":\""));

    let (_, _, limited) = get(index.clone(), "/index?limit=2").await;
    assert_eq!(limited.lines().count(), 2);
    let future = "/index?since=2999-01-01T00:00:00Z";
    assert_eq!(
        get(index.clone(), future).await,
        (200, "application/json; charset=utf-8".into(), String::new())
    );
    let since = format!("/index?since={stamp}&limit=5");
    let (_, _, from) = get(index.clone(), &since).await;
    assert!(from.starts_with("{\"Path\":\"example.com/b\""), "{from}");

    for bad in [
        "/index?limit=0",
        "/index?limit=-3",
        "/index?limit=ten",
        "/index?since=yesterday",
        "/index?since=2021-01-01",
    ] {
        let (status, content_type, body) = get(index.clone(), bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(content_type.starts_with("text/plain"), "{bad}");
        assert!(!body.is_empty());
    }
}

/// Serves any canonical version of any module.
struct AnyVersion;

#[async_trait::async_trait]
impl crate::fetch::Fetcher for AnyVersion {
    async fn fetch(
        &self,
        module: &str,
        version: &str,
    ) -> Result<crate::fetch::FetchedModule, crate::fetch::FetchError> {
        Ok(crate::fetch::FetchedModule {
            version: version.to_string(),
            info: bytes::Bytes::from(format!(
                "{{\"Version\":\"{version}\",\"Time\":\"2020-01-01T00:00:00Z\"}}"
            )),
            go_mod: bytes::Bytes::from(format!("module {module}\n")),
            zip: crate::fetch::FetchedZip::from_bytes(b"zip", None).unwrap(),
        })
    }
    async fn list(&self, _module: &str) -> Result<Vec<String>, crate::fetch::FetchError> {
        Ok(Vec::new())
    }
    async fn latest(
        &self,
        module: &str,
    ) -> Result<crate::fetch::RevInfo, crate::fetch::FetchError> {
        Err(crate::fetch::FetchError::not_found(
            module, "latest", "unused",
        ))
    }
    async fn query(
        &self,
        module: &str,
        rev: &str,
    ) -> Result<crate::fetch::RevInfo, crate::fetch::FetchError> {
        Err(crate::fetch::FetchError::not_found(module, rev, "unused"))
    }
}

/// The stash records what it stores, once, and the feed of the assembled
/// router serves it.
#[tokio::test]
async fn stored_versions_reach_the_feed() {
    let config = crate::config::Config {
        index_type: "memory".into(),
        ..crate::config::Config::default()
    };
    let storage: Arc<dyn crate::storage::Storage> = Arc::new(crate::storage::MemoryStorage::new());
    let router = crate::app::testing::router(&config, storage, Arc::new(AnyVersion)).unwrap();
    let call = |uri: &str| {
        router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
    };
    for uri in [
        "/example.com/m/@v/v1.2.3.info",
        "/example.com/m/@v/v1.2.3.zip",
        "/example.com/m/@v/v1.2.3.mod",
    ] {
        assert_eq!(call(uri).await.unwrap().status(), 200, "{uri}");
    }
    let response = call("/index").await.unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert_eq!(body.lines().count(), 1, "{body}");
    assert!(
        body.starts_with("{\"Path\":\"example.com/m\",\"Version\":\"v1.2.3\","),
        "{body}"
    );
}

/// An index whose database is down.
struct DownIndex;

#[async_trait::async_trait]
impl Indexer for DownIndex {
    async fn index(&self, _module: &str, _version: &str) -> Result<(), IndexError> {
        Err(IndexError::Backend {
            backend: "postgres",
            message: "connection refused".into(),
        })
    }
    async fn lines(
        &self,
        _since: OffsetDateTime,
        _limit: u64,
    ) -> Result<Vec<IndexLine>, IndexError> {
        Err(IndexError::Backend {
            backend: "postgres",
            message: "connection refused".into(),
        })
    }
}

/// As in Athens: a version stored but not recorded fails the stash (the
/// version stays stored); a version recorded already does not; a feed
/// that cannot be read answers 500.
#[tokio::test]
async fn index_failures_fail_the_stash_but_not_the_store() {
    use crate::stash::{BaseStasher, StashError, Stasher};
    use crate::storage::Storage;

    let storage = Arc::new(crate::storage::MemoryStorage::new());
    let stasher = BaseStasher::new(
        Arc::new(AnyVersion),
        storage.clone(),
        std::time::Duration::from_secs(60),
    )
    .with_indexer(Arc::new(DownIndex));
    let err = stasher.stash("example.com/m", "v1.0.0").await.unwrap_err();
    assert!(matches!(err, StashError::Index { .. }), "{err}");
    assert!(storage.exists("example.com/m", "v1.0.0").await.unwrap());

    let memory = Arc::new(MemoryIndex::new());
    memory.index("example.com/m", "v1.1.0").await.unwrap();
    let stasher = BaseStasher::new(
        Arc::new(AnyVersion),
        storage.clone(),
        std::time::Duration::from_secs(60),
    )
    .with_indexer(memory.clone());
    assert_eq!(
        stasher.stash("example.com/m", "v1.1.0").await.unwrap(),
        "v1.1.0"
    );
    assert_eq!(memory.lines(EPOCH, 10).await.unwrap().len(), 1);

    let (status, _, body) = get(Arc::new(DownIndex), "/index").await;
    assert_eq!(status, 500);
    assert!(!body.contains("connection refused"), "{body}");
}
