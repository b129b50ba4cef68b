//! The checker against a test checksum database (fixtures::SumdbServer,
//! built on the same primitives the go command accepts; see
//! tests/sumdb_verify.rs for the go command as the oracle).

use std::sync::Arc;
use std::time::Duration;

use fixtures::SumdbServer;
use vcs::goenv::GoEnv;

use super::*;

const ZIP: &str = "h1:Zip0000000000000000000000000000000000000000=";
const GOMOD: &str = "h1:Mod0000000000000000000000000000000000000000=";

fn env(vars: &[(&str, &str)]) -> GoEnv {
    GoEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

fn checker_with(vars: &[(&str, &str)], store: Arc<dyn SumdbStore>) -> SumdbChecker {
    SumdbChecker::new(&env(vars), &[], store, Duration::from_secs(10)).unwrap()
}

fn checker(db: &SumdbServer, store: Arc<dyn SumdbStore>) -> SumdbChecker {
    checker_with(&[("GOSUMDB", &db.gosumdb()), ("GOPROXY", "direct")], store)
}

#[tokio::test]
async fn matching_versions_verify() {
    let db = SumdbServer::start("sumdb.test");
    db.add_filler(300);
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    db.add("github.com/Upper/m", "v2.0.0+incompatible", ZIP, GOMOD);
    db.add_filler(20);
    let c = checker(&db, Arc::new(MemoryStore::default()));
    assert_eq!(
        c.check("example.com/m", "v1.0.0", ZIP, GOMOD)
            .await
            .unwrap(),
        Checked::Verified("sumdb.test".into())
    );
    // Escaped paths reach the right record.
    c.check("github.com/Upper/m", "v2.0.0+incompatible", ZIP, GOMOD)
        .await
        .unwrap();
    assert_eq!(c.client().unwrap().latest_tree().n, 322);
}

#[tokio::test]
async fn mismatches_are_security_errors() {
    let db = SumdbServer::start("sumdb.test");
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    let c = checker(&db, Arc::new(MemoryStore::default()));
    let other = "h1:Other000000000000000000000000000000000000=";
    let e = c
        .check("example.com/m", "v1.0.0", other, GOMOD)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::Security);
    assert!(
        e.message.starts_with(&format!(
            "example.com/m@v1.0.0: verifying module: checksum mismatch\n\tdownloaded: {other}\n\tsumdb.test: {ZIP}\n\nSECURITY ERROR\nThis download does NOT match the one reported by the checksum server."
        )),
        "{}",
        e.message
    );
    let e = c
        .check("example.com/m", "v1.0.0", ZIP, other)
        .await
        .unwrap_err();
    assert!(
        e.message.contains("verifying go.mod: checksum mismatch"),
        "{}",
        e.message
    );
    assert_eq!(status_for(e.kind), 403);
}

#[tokio::test]
async fn unknown_versions_and_unreachable_databases_fail() {
    let db = SumdbServer::start("sumdb.test");
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    let c = checker(&db, Arc::new(MemoryStore::default()));
    let e = c
        .check("example.com/m", "v9.9.9", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::NotFound, "{}", e.message);
    assert!(
        e.message.starts_with(&format!(
            "example.com/m@v9.9.9: verifying go.mod: example.com/m@v9.9.9/go.mod: reading {}/lookup/example.com/m@v9.9.9: 404 Not Found",
            db.url()
        )),
        "{}",
        e.message
    );
    db.fail_with(Some(500));
    let fresh = checker(&db, Arc::new(MemoryStore::default()));
    let e = fresh
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::Unavailable, "{}", e.message);
    assert_eq!(status_for(e.kind), 502);
    db.fail_with(None);
    fresh
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
    db.fail_with(Some(500));

    // Nothing listening at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let c = checker_with(
        &[
            ("GOSUMDB", &format!("{} {url}", db.vkey)),
            ("GOPROXY", "direct"),
        ],
        Arc::new(MemoryStore::default()),
    );
    let e = c
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::Unavailable, "{}", e.message);
}

#[tokio::test]
async fn a_record_signed_by_another_key_is_refused() {
    let db = SumdbServer::start("sumdb.test");
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    let impostor = SumdbServer::start("sumdb.test");
    impostor.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    // The right name and key, the impostor's URL.
    let c = checker_with(
        &[
            ("GOSUMDB", &format!("{} {}", db.vkey, impostor.url())),
            ("GOPROXY", "direct"),
        ],
        Arc::new(MemoryStore::default()),
    );
    let e = c
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("reading tree note: note has no verifiable signatures"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_forked_log_is_reported_and_stops_verification() {
    let db = SumdbServer::start("sumdb.test");
    // Full tiles of the old log are kept when the fork comes.
    db.add_filler(266);
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    db.add("example.com/m", "v1.1.0", ZIP, GOMOD);
    let store: Arc<dyn SumdbStore> = Arc::new(MemoryStore::default());
    let c = checker(&db, Arc::clone(&store));
    c.check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
    db.fork();
    db.add("example.com/m", "v1.2.0", ZIP, GOMOD);
    let e = c
        .check("example.com/m", "v1.2.0", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::Security);
    assert!(
        e.message.starts_with("SECURITY ERROR\ngo.sum database server misbehavior detected!\n\nold database:\n\tgo.sum database tree\n\t268\n"),
        "{}",
        e.message
    );
    assert!(e.message.contains("proof of misbehavior:"));
    // From now on nothing verifies, not even what did before.
    let again = c
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert_eq!(again.kind, SumdbErrorKind::Security);
    assert!(c.client().unwrap().fork_report().is_some());
    // Another instance sharing the store knows the old head and detects
    // the fork as well.
    let other = checker(&db, store);
    let e = other
        .check("example.com/m", "v1.1.0", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::Security, "{}", e.message);
}

#[tokio::test]
async fn instances_share_the_head_and_tiles_through_the_store() {
    let db = SumdbServer::start("sumdb.test");
    db.add_filler(600);
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    let dir = tempfile::tempdir().unwrap();
    let store = || -> Arc<dyn SumdbStore> {
        Arc::new(DirStore::new(dir.path().join(".athens/sumdb-cache")))
    };
    let first = checker(&db, store());
    first
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
    let tiles_first = db.tile_requests();
    assert!(tiles_first > 0);
    let latest = dir.path().join(".athens/sumdb-cache/sumdb.test/latest");
    assert!(std::fs::read_to_string(&latest)
        .unwrap()
        .starts_with("go.sum database tree\n601\n"));
    assert!(dir
        .path()
        .join(".athens/sumdb-cache/sumdb.test/tile/8/0/002.p/89")
        .is_file());
    // A second instance on the same store reads no tile from the database.
    let second = checker(&db, store());
    second
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
    assert_eq!(db.tile_requests(), tiles_first);
    assert_eq!(second.client().unwrap().latest_tree().n, 601);
}

#[tokio::test]
async fn a_damaged_store_is_not_trusted_and_is_repaired() {
    let db = SumdbServer::start("sumdb.test");
    db.add_filler(5);
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    let c = checker(&db, Arc::new(DirStore::new(&root)));
    c.check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
    // Flip a byte of the cached tile: a new instance must not trust it,
    // reads the tile from the database again and stores it right.
    let tile = root.join("sumdb.test/tile/8/0/000.p/6");
    let good = std::fs::read(&tile).unwrap();
    let mut bad = good.clone();
    bad[40] ^= 1;
    std::fs::write(&tile, &bad).unwrap();
    let before = db.tile_requests();
    let c = checker(&db, Arc::new(DirStore::new(&root)));
    c.check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
    assert!(db.tile_requests() > before);
    assert_eq!(std::fs::read(&tile).unwrap(), good);
    // A record the database did not sign cannot pass whatever the store
    // holds.
    let e = c
        .check("example.com/m", "v1.0.0", "h1:Forged", GOMOD)
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::Security);
}

#[tokio::test]
async fn the_database_is_reached_through_a_proxy_that_supports_it() {
    let db = SumdbServer::start("sumdb.test");
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    // GOSUMDB without a URL: the proxy (the test server answers
    // /sumdb/sumdb.test/supported) is asked first.
    let c = checker_with(
        &[
            ("GOSUMDB", &db.vkey),
            ("GOPROXY", &format!("{},direct", db.url())),
        ],
        Arc::new(MemoryStore::default()),
    );
    c.check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
    assert!(db.lookups() > 0);

    // A proxy that fails (not 404) ends the walk with its error, as
    // TryProxies does for a `,` list.
    db.fail_with(Some(503));
    let c = checker_with(
        &[
            ("GOSUMDB", &db.vkey),
            ("GOPROXY", &format!("{},direct", db.url())),
        ],
        Arc::new(MemoryStore::default()),
    );
    let e = c
        .check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap_err();
    assert!(
        e.message.contains("/sumdb/sumdb.test/supported: 503"),
        "{}",
        e.message
    );
    // The failure is not kept: once the proxy answers, the same checker
    // finds the database through it.
    db.fail_with(None);
    c.check("example.com/m", "v1.0.0", ZIP, GOMOD)
        .await
        .unwrap();
}

#[tokio::test]
async fn skipped_modules_are_not_looked_up() {
    let db = SumdbServer::start("sumdb.test");
    let gosumdb = db.gosumdb();
    let c = SumdbChecker::new(
        &env(&[("GOSUMDB", &gosumdb), ("GOPRIVATE", "private.example")]),
        &["nosum.example/*".to_string()],
        Arc::new(MemoryStore::default()),
        Duration::from_secs(5),
    )
    .unwrap();
    for m in ["private.example/x", "nosum.example/a/b"] {
        assert_eq!(
            c.check(m, "v1.0.0", ZIP, GOMOD).await.unwrap(),
            Checked::Skipped
        );
    }
    assert_eq!(db.lookups(), 0);
    let off = checker_with(&[("GOSUMDB", "off")], Arc::new(MemoryStore::default()));
    assert_eq!(
        off.check("example.com/m", "v1.0.0", ZIP, GOMOD)
            .await
            .unwrap(),
        Checked::Skipped
    );
    let e = off
        .check(
            "golang.org/toolchain",
            "v0.0.1-go1.22.0.linux-amd64",
            ZIP,
            GOMOD,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, SumdbErrorKind::Config);
    assert!(e
        .message
        .ends_with("verifying go.mod: checksum database disabled by GOSUMDB=off"));
    // A malformed GOSUMDB stops the server at start.
    assert!(SumdbChecker::new(
        &env(&[("GOSUMDB", "nope")]),
        &[],
        Arc::new(MemoryStore::default()),
        Duration::from_secs(1)
    )
    .is_err());
}

/// An https front for `db` on 127.0.0.1 (certificate made with openssl,
/// written to `dir/cert.pem`) that answers 401 to requests without
/// `Authorization: Bearer sum-tok` and passes the others on.
async fn protected_front(db: &SumdbServer, dir: &std::path::Path) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_cert, config) = fixtures::services::loopback_tls(dir).expect("loopback TLS");
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let backend = db.addr;
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(conn).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                if !text.contains("\r\nauthorization: bearer sum-tok\r\n") {
                    let _ = stream
                        .write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .await;
                    let _ = stream.shutdown().await;
                    return;
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                // The database answers one request per connection and
                // closes it.
                let _ = upstream.write_all(&head).await;
                let mut answer = Vec::new();
                let _ = upstream.read_to_end(&mut answer).await;
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    base
}

/// The go command sends GOAUTH credentials to the checksum database as to
/// any https server: a database that wants a token is read with the one an
/// authenticator prints after the 401, and not read without it.
#[tokio::test]
async fn goauth_credentials_reach_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = SumdbServer::start("sumdb.test");
    db.add("example.com/m", "v1.0.0", ZIP, GOMOD);
    let base = protected_front(&db, dir.path()).await;
    let script = dir.path().join("auth");
    std::fs::write(
        &script,
        format!("#!/bin/sh\n[ $# -eq 0 ] && exit 0\nprintf '{base}\\n\\nAuthorization: Bearer sum-tok\\n\\n'\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let gosumdb = format!("{} {base}", db.vkey);
    let cert = dir.path().join("cert.pem").display().to_string();
    let script = script.display().to_string();
    for (goauth, works) in [(script.as_str(), true), ("off", false)] {
        let c = checker_with(
            &[
                ("GOSUMDB", &gosumdb),
                ("GOPROXY", "direct"),
                ("SSL_CERT_FILE", &cert),
                ("GOAUTH", goauth),
            ],
            Arc::new(MemoryStore::default()),
        );
        let checked = c.check("example.com/m", "v1.0.0", ZIP, GOMOD).await;
        assert_eq!(checked.is_ok(), works, "GOAUTH={goauth}: {checked:?}");
    }
}
