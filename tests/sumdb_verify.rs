//! The real binary verifying public modules against a checksum database
//! started by the test (fixtures::SumdbServer: a log signed with a key
//! generated here, in Go's note and tlog formats), with the go command as
//! the oracle: it must accept the test database's answers itself, and
//! agree with what the proxy serves.
//!
//! A tampered origin (a tag moved after the database recorded it, a zip
//! changed in place on an upstream proxy) is refused with the go command's
//! "SECURITY ERROR" and nothing is stored; a forked log is detected; an
//! unreachable database fails the request rather than storing unverified.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::Path;
use std::process::Command;

use fixtures::SumdbServer;
use support::*;

const MOVED: &str = "github.com/acme/moved-tag";

/// `GoBinaryEnvVars` for the server: repositories from `gitconfig`,
/// GOPROXY as given, and the test database.
fn go_env(gitconfig: &Path, goproxy: &str, gosumdb: &str) -> String {
    format!(
        "GIT_CONFIG_GLOBAL={}; GIT_CONFIG_NOSYSTEM=1; GOPROXY={goproxy}; GOSUMDB={gosumdb}",
        gitconfig.display()
    )
}

fn server(root: Option<&Path>, gitconfig: &Path, go_env: String) -> Server {
    let mut setup = match root {
        Some(root) => ServerSetup::disk(root, gitconfig),
        None => ServerSetup::memory(gitconfig),
    };
    setup
        .extra_env
        .push(("ATHENS_GO_BINARY_ENV_VARS".into(), go_env));
    Server::start(&setup)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(args)
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Nothing of `module` was stored under the disk root.
fn assert_nothing_stored(root: &Path, module: &str) {
    let dir = root.join(module);
    let entries: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.flatten().map(|e| e.file_name()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(
        entries.is_empty(),
        "stored under {}: {entries:?}",
        dir.display()
    );
}

/// The go command, given only our test database, verifies a module with
/// it (so our notes, tiles and proofs are Go's), and through the proxy it
/// gets exactly what the database recorded — which the proxy checked
/// before storing.
#[test]
fn go_accepts_the_test_database_and_the_proxy_verifies_with_it() {
    let repo = build_repo("e2e-lib");
    let module = "github.com/acme/e2e-lib";
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let truth = download_ok(&direct, module, "v1.0.0");

    let db = SumdbServer::start("sumdb.athens.test");
    // Enough records that the tree spans several tiles and levels.
    db.add_filler(700);
    db.add(module, "v1.0.0", &truth.sum, &truth.go_mod_sum);
    db.add_filler(5);

    // The go command itself, with nothing but our database to trust.
    let mut oracle = direct_client(&[("e2e-lib", repo.path())]);
    oracle.set_env("GOSUMDB", &db.gosumdb());
    oracle.set_env("GONOSUMDB", "");
    oracle.set_env("GOFLAGS", "-mod=mod");
    let got = download_ok(&oracle, module, "v1.0.0");
    assert_eq!(got.sum, truth.sum);
    let go_lookups = db.lookups();
    assert!(go_lookups >= 1, "the go command did not ask the database");

    // The proxy verifies with the same database before storing.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let gitconfig = dir.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let athens = server(
        Some(&root),
        &gitconfig,
        go_env(&gitconfig, "direct", &db.gosumdb()),
    );
    let mut client = proxy_client(&athens.url());
    client.set_env("GOSUMDB", &db.gosumdb());
    client.set_env("GONOSUMDB", "");
    client.set_env("GOFLAGS", "-mod=mod");
    let through = download_ok(&client, module, "v1.0.0");
    assert_eq!(through.sum, truth.sum);
    assert_eq!(through.go_mod_sum, truth.go_mod_sum);
    assert!(
        db.lookups() > go_lookups,
        "the proxy did not ask the database"
    );
    assert!(root.join(module).join("v1.0.0").is_dir());
    // The verified tree head is kept beside the storage, for every instance.
    let head =
        std::fs::read_to_string(root.join(".athens/sumdb-cache/sumdb.athens.test/latest")).unwrap();
    assert!(head.starts_with("go.sum database tree\n706\n"), "{head}");

    // A version the database does not know is not stored.
    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.1.0.info")).unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("verifying go.mod"), "{body}");
    assert!(!root.join(module).join("v1.1.0").exists());
}

/// A tag moved after the database recorded the version: refused, 403,
/// the go command's wording, logged, nothing stored.
#[test]
fn a_moved_tag_is_refused_and_nothing_is_stored() {
    let repo = build_repo("moved-tag");
    let direct = direct_client(&[("moved-tag", repo.path())]);
    let truth = download_ok(&direct, MOVED, "v1.0.0");
    let db = SumdbServer::start("sumdb.athens.test");
    db.add(MOVED, "v1.0.0", &truth.sum, &truth.go_mod_sum);

    // Upstream moves the tag to the next commit.
    git(repo.path(), &["tag", "-f", "v1.0.0", "HEAD"]);
    let moved = git(repo.path(), &["rev-parse", "v1.0.0^{commit}"]);
    let first = git(repo.path(), &["rev-list", "--max-parents=0", "HEAD"]);
    assert_ne!(moved, first);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let gitconfig = dir.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("moved-tag", file_url(repo.path()))]);
    let athens = server(
        Some(&root),
        &gitconfig,
        go_env(&gitconfig, "direct", &db.gosumdb()),
    );
    for file in ["v1.0.0.info", "v1.0.0.mod", "v1.0.0.zip"] {
        let (status, body) = http_get(athens.port(), &format!("/{MOVED}/@v/{file}")).unwrap();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 403, "{file}: {body}");
        assert!(
            body.contains("github.com/acme/moved-tag@v1.0.0: verifying module: checksum mismatch"),
            "{body}"
        );
        assert!(body.contains("SECURITY ERROR This download does NOT match the one reported by the checksum server."), "{body}");
        assert!(
            body.contains(&format!("sumdb.athens.test: {}", truth.sum)),
            "{body}"
        );
    }
    assert_nothing_stored(&root, MOVED);
    assert!(athens
        .log_text()
        .contains("checksum database refused a download; nothing stored"));

    // The go command through the proxy fails too, and sees why.
    let client = proxy_client(&athens.url());
    let got = client.download(MOVED, "v1.0.0").unwrap();
    assert!(!got.is_ok());
    assert!(
        got.error.contains("403 Forbidden") && got.error.contains("SECURITY ERROR"),
        "{}",
        got.error
    );
    assert_nothing_stored(&root, MOVED);
}

/// An upstream proxy whose zip was changed in place after the database
/// recorded it: refused; an intact version from the same proxy passes.
#[test]
fn a_zip_changed_in_place_upstream_is_refused() {
    let module = "example.com/inplace";
    let dir = tempfile::tempdir().unwrap();
    let proxy = dir.path().join("proxy");
    let vdir = proxy.join(module).join("@v");
    std::fs::create_dir_all(&vdir).unwrap();
    let go_mod = format!("module {module}\n\ngo 1.21\n");
    let zip_of = |version: &str, code: &str| {
        fixtures::rawzip::stored_zip(&[
            (&format!("{module}@{version}/go.mod"), go_mod.as_bytes()),
            (&format!("{module}@{version}/m.go"), code.as_bytes()),
        ])
    };
    let db = SumdbServer::start("sumdb.athens.test");
    for version in ["v1.0.0", "v1.0.1"] {
        let zip = zip_of(version, "package m\n");
        std::fs::write(vdir.join(format!("{version}.zip")), &zip).unwrap();
        std::fs::write(vdir.join(format!("{version}.mod")), &go_mod).unwrap();
        std::fs::write(
            vdir.join(format!("{version}.info")),
            format!("{{\"Version\":\"{version}\",\"Time\":\"2024-01-01T00:00:00Z\"}}"),
        )
        .unwrap();
        let zip_h1 = modzip::dirhash::hash_zip(std::io::Cursor::new(zip)).unwrap();
        db.add(
            module,
            version,
            &zip_h1,
            &modzip::dirhash::hash_go_mod(go_mod.as_bytes()),
        );
    }
    std::fs::write(vdir.join("list"), "v1.0.0\nv1.0.1\n").unwrap();
    // v1.0.0's m.go changes in place, after the database recorded it.
    std::fs::write(
        vdir.join("v1.0.0.zip"),
        zip_of("v1.0.0", "package m // changed\n"),
    )
    .unwrap();

    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let gitconfig = dir.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    let goproxy = file_url(&proxy);
    let athens = server(
        Some(&root),
        &gitconfig,
        go_env(&gitconfig, &goproxy, &db.gosumdb()),
    );
    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.0.0.zip")).unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("verifying module: checksum mismatch"),
        "{body}"
    );
    assert!(!root.join(module).join("v1.0.0").exists());

    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.0.1.zip")).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(root.join(module).join("v1.0.1").is_dir());
}

/// A log rewritten under the proxy's feet: the next head is inconsistent
/// with the one it verified before; reported as a fork, and nothing is
/// verified (or stored) any more.
#[test]
fn a_forked_log_is_detected() {
    let repo = build_repo("e2e-lib");
    let module = "github.com/acme/e2e-lib";
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let v100 = download_ok(&direct, module, "v1.0.0");
    let v110 = download_ok(&direct, module, "v1.1.0");
    let db = SumdbServer::start("sumdb.athens.test");
    db.add_filler(300);
    db.add(module, "v1.0.0", &v100.sum, &v100.go_mod_sum);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let gitconfig = dir.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let env = go_env(&gitconfig, "direct", &db.gosumdb());
    let mut athens = server(Some(&root), &gitconfig, env.clone());
    let (status, _) = http_get(athens.port(), &format!("/{module}/@v/v1.0.0.info")).unwrap();
    assert_eq!(status, 200);

    db.fork();
    db.add(module, "v1.1.0", &v110.sum, &v110.go_mod_sum);
    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.1.0.info")).unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("SECURITY ERROR go.sum database server misbehavior detected!"),
        "{body}"
    );
    assert!(!root.join(module).join("v1.1.0").exists());
    assert!(athens.log_text().contains("the log has forked"));

    // A restarted instance on the same storage remembers the old head and
    // detects the fork too.
    athens.stop();
    let athens = server(Some(&root), &gitconfig, env);
    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.1.0.mod")).unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("misbehavior detected"), "{body}");
    assert!(!root.join(module).join("v1.1.0").exists());
}

/// When the database cannot be reached the version is not stored
/// unverified: 502; once it answers again, the same request succeeds.
#[test]
fn an_unreachable_database_fails_closed() {
    let repo = build_repo("e2e-lib");
    let module = "github.com/acme/e2e-lib";
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let truth = download_ok(&direct, module, "v1.0.0");
    let db = SumdbServer::start("sumdb.athens.test");
    db.add(module, "v1.0.0", &truth.sum, &truth.go_mod_sum);
    db.fail_with(Some(500));

    let dir = tempfile::tempdir().unwrap();
    let gitconfig = dir.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let athens = server(
        None,
        &gitconfig,
        go_env(&gitconfig, "direct", &db.gosumdb()),
    );
    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.0.0.info")).unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("500 Internal Server Error"), "{body}");
    // Lists do not need the database.
    let (status, _) = http_get(athens.port(), &format!("/{module}/@v/list")).unwrap();
    assert_eq!(status, 200);
    db.fail_with(None);
    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.0.0.info")).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// With GOSUMDB naming only the key, the database is reached through the
/// GOPROXY entry that proxies it (`/sumdb/<name>/supported`), as the go
/// command does.
#[test]
fn the_database_is_reached_through_the_upstream_proxy() {
    let repo = build_repo("e2e-lib");
    let module = "github.com/acme/e2e-lib";
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let truth = download_ok(&direct, module, "v1.0.0");
    // The test database doubles as a module proxy that knows no module
    // (404, so the walk moves on to direct) but proxies the database.
    let db = SumdbServer::start("sumdb.athens.test");
    db.add(module, "v1.0.0", &truth.sum, &truth.go_mod_sum);

    let dir = tempfile::tempdir().unwrap();
    let gitconfig = dir.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let goproxy = format!("{},direct", db.url());
    let athens = server(None, &gitconfig, go_env(&gitconfig, &goproxy, &db.vkey));
    let (status, body) = http_get(athens.port(), &format!("/{module}/@v/v1.0.0.info")).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(db.lookups() >= 1);
}

/// `athens verify` over the disk store at `root` with `GoBinaryEnvVars`
/// `go_env`: its exit status and its report.
fn athens_verify(root: &Path, go_env: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("verify")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ATHENS_STORAGE_TYPE", "disk")
        .env("ATHENS_DISK_STORAGE_ROOT", root)
        .env("ATHENS_GO_BINARY_ENV_VARS", go_env)
        .output()
        .expect("running athens verify");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A store filled through the proxy (so every version was checked against
/// the database and has its record) verifies against the same database;
/// when the database cannot be reached the versions match their record
/// only, which is said and gives exit status 4; private modules are never
/// looked up; and a database whose record of one version differs from
/// what the store and its record agree on makes that version corrupt.
#[test]
fn athens_verify_compares_public_modules_with_the_database() {
    let repo = build_repo("e2e-lib");
    let module = "github.com/acme/e2e-lib";
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let v100 = download_ok(&direct, module, "v1.0.0");
    let v110 = download_ok(&direct, module, "v1.1.0");
    assert_ne!(v100.sum, v110.sum);
    let db = SumdbServer::start("sumdb.athens.test");
    db.add_filler(300);
    db.add(module, "v1.0.0", &v100.sum, &v100.go_mod_sum);
    db.add(module, "v1.1.0", &v110.sum, &v110.go_mod_sum);

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    std::fs::create_dir_all(&root).unwrap();
    let gitconfig = dir.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let public_env = go_env(&gitconfig, "direct", &db.gosumdb());
    let athens = server(Some(&root), &gitconfig, public_env.clone());
    for version in ["v1.0.0", "v1.1.0"] {
        for ext in ["info", "mod", "zip"] {
            let (status, body) =
                http_get(athens.port(), &format!("/{module}/@v/{version}.{ext}")).unwrap();
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        }
    }
    drop(athens);

    let before = db.lookups();
    let (code, report) = athens_verify(&root, &public_env);
    assert_eq!(code, 0, "{report}");
    for version in ["v1.0.0", "v1.1.0"] {
        assert!(
            report.contains(&format!(
                "ok {module}@{version}: matches the record and the checksum database\n"
            )),
            "{report}"
        );
    }
    assert!(
        report.contains("2 versions: 2 ok, 0 corrupt, 0 unverifiable"),
        "{report}"
    );
    assert_eq!(db.lookups(), before + 2, "one lookup per version");

    // Unreachable: record only, said so, exit status 4.
    db.fail_with(Some(500));
    let (code, report) = athens_verify(&root, &public_env);
    assert_eq!(code, 4, "{report}");
    assert!(
        report.contains(&format!(
            "ok {module}@v1.0.0: matches the record (not checked against the checksum database: "
        )),
        "{report}"
    );
    assert!(report.contains("500 Internal Server Error"), "{report}");
    assert!(
        report.contains("2 versions: 2 ok, 0 corrupt, 0 unverifiable, 0 quarantined (2 ok by their record only: not checked against the checksum database)"),
        "{report}"
    );

    // A private module is compared with its record only: no lookup.
    let before = db.lookups();
    let private_env = format!("{public_env}; GONOSUMDB=github.com/acme");
    let (code, report) = athens_verify(&root, &private_env);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains(&format!("ok {module}@v1.0.0: matches the record\n")),
        "{report}"
    );
    assert_eq!(db.lookups(), before);
    db.fail_with(None);

    // Another database whose record of v1.1.0 differs from the store and
    // its record (which agree with each other).
    let other = SumdbServer::start("other.athens.test");
    other.add(module, "v1.0.0", &v100.sum, &v100.go_mod_sum);
    other.add(module, "v1.1.0", &v100.sum, &v110.go_mod_sum);
    let other_env = go_env(&gitconfig, "direct", &other.gosumdb());
    let (code, report) = athens_verify(&root, &other_env);
    assert_eq!(code, 3, "{report}");
    assert!(
        report.contains(&format!(
            "corrupt {module}@v1.1.0: zip hash {} but the checksum database says {}",
            v110.sum, v100.sum
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "ok {module}@v1.0.0: matches the record and the checksum database"
        )),
        "{report}"
    );
    assert!(report.contains("2 versions: 1 ok, 1 corrupt"), "{report}");
}
