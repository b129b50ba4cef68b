//! End to end: the real go command talking to the real `athens` binary,
//! which fetches from fixture repositories (`testdata/repos/e2e-*.tree`)
//! through its native fetcher. Every answer is compared with the go
//! command in direct mode on the same repositories: resolved version, zip
//! hash and go.mod hash must not differ.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use support::{
    assert_same_answers, bare_clone, build_repo, direct_client, download_ok, file_url, go_ok,
    http_get, proxy_client, write_gitconfig, Answer, GitHttpServer, Server, ServerSetup,
};

const LIB: &str = "github.com/acme/e2e-lib";
const LIB_V2: &str = "github.com/acme/e2e-lib/v2";
const UTIL: &str = "github.com/acme/e2e-lib/util";
const OTHER: &str = "github.com/acme/e2e-other";

/// Module, query, and whether the query can still be answered once the
/// repository is gone (a branch name can only be resolved upstream).
const QUERIES: &[(&str, &str, bool)] = &[
    (LIB, "v1.0.0", true),
    (LIB, "v1.1.0", true),
    (LIB, "dev", false),
    (LIB, "latest", true),
    (LIB_V2, "v2.0.0", true),
    (UTIL, "v0.1.0", true),
    (UTIL, "latest", true),
];

fn key(module: &str, query: &str) -> String {
    format!("{module}@{query}")
}

/// Downloads every query with `client`; `version_of` may replace a query
/// by the version to ask for instead.
fn answers(
    client: &fixtures::GoOracle,
    queries: &[(&str, &str, bool)],
    version_of: impl Fn(&str, &str) -> String,
) -> BTreeMap<String, Answer> {
    queries
        .iter()
        .map(|(module, query, _)| {
            let asked = version_of(module, query);
            let got = download_ok(client, module, &asked);
            (key(module, query), Answer::from(&got))
        })
        .collect()
}

fn tagged_versions(client: &fixtures::GoOracle, module: &str) -> Vec<String> {
    let listed = client
        .list_versions(module)
        .unwrap_or_else(|e| panic!("go list -m -versions {module}: {e}"));
    assert!(
        listed.error.is_none(),
        "go list -m -versions {module}: {:?}",
        listed.error
    );
    listed.versions
}

/// Checks a server that can no longer reach the repository: canonical
/// versions (including the branch's pseudo-version) and `latest` come
/// from storage with the direct mode's hashes, and listings still answer.
fn check_served_from_storage(
    server: &Server,
    want: &BTreeMap<String, Answer>,
    lists: &BTreeMap<&str, Vec<String>>,
    context: &str,
) {
    let client = proxy_client(&server.url());
    let got = answers(&client, QUERIES, |module, query| {
        let reachable = QUERIES
            .iter()
            .any(|(m, q, offline_ok)| *m == module && *q == query && *offline_ok);
        if reachable {
            query.to_string()
        } else {
            want[&key(module, query)].version.clone()
        }
    });
    assert_same_answers(context, want, &got);
    for (module, versions) in lists {
        assert_eq!(
            &tagged_versions(&client, module),
            versions,
            "{context}: list of {module}"
        );
    }
}

#[test]
fn proxy_agrees_with_direct_then_serves_from_storage_and_after_restart() {
    let repo = build_repo("e2e-lib");
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let want = answers(&direct, QUERIES, |_, q| q.to_string());
    let lists: BTreeMap<&str, Vec<String>> = [LIB, LIB_V2, UTIL]
        .into_iter()
        .map(|m| (m, tagged_versions(&direct, m)))
        .collect();
    assert_eq!(lists[LIB], ["v1.0.0", "v1.1.0"]);
    assert!(
        want[&key(LIB, "dev")].version.starts_with("v1.1.1-0."),
        "{want:?}"
    );

    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("storage");
    std::fs::create_dir_all(&root).expect("storage root");
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);

    // 1. Through the proxy, everything as in direct mode.
    let mut first = Server::start(&ServerSetup::disk(&root, &gitconfig));
    let client = proxy_client(&first.url());
    let got = answers(&client, QUERIES, |_, q| q.to_string());
    assert_same_answers("through the proxy", &want, &got);
    for (module, versions) in &lists {
        assert_eq!(
            &tagged_versions(&client, module),
            versions,
            "list of {module}"
        );
    }
    let stored = root.join(LIB).join("v1.1.0");
    for file in ["go.mod", "source.zip", "v1.1.0.info"] {
        assert!(stored.join(file).is_file(), "{} missing", file);
    }

    // 3. The repository disappears: storage still answers.
    let moved = repo.path().with_file_name("e2e-lib-moved-away");
    std::fs::rename(repo.path(), &moved).expect("moving the repository away");
    check_served_from_storage(&first, &want, &lists, "repository gone");

    // 4. A new server process on the same storage root.
    first.stop();
    let second = Server::start(&ServerSetup::disk(&root, &gitconfig));
    check_served_from_storage(&second, &want, &lists, "after restart");
    std::fs::rename(&moved, repo.path()).expect("moving the repository back");
}

#[test]
fn go_build_through_proxy_matches_direct_go_sum() {
    let repo = build_repo("e2e-lib");
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let app = tempfile::tempdir().expect("app dir");
    std::fs::write(
        app.path().join("go.mod"),
        format!(
            "module example.com/e2eapp\n\ngo 1.21\n\nrequire (\n\t{LIB} v1.1.0\n\t{LIB_V2} v2.0.0\n\t{UTIL} v0.1.0\n)\n"
        ),
    )
    .expect("go.mod");
    std::fs::write(
        app.path().join("main.go"),
        format!(
            "package main\n\nimport (\n\tlib \"{LIB}\"\n\t\"{UTIL}\"\n\tlibv2 \"{LIB_V2}\"\n)\n\n\
             func main() {{ println(util.Twice(lib.Greeting()) + \" \" + libv2.Greeting()) }}\n"
        ),
    )
    .expect("main.go");
    go_ok(&direct, app.path(), &["mod", "tidy"], &[]);
    let go_mod = std::fs::read(app.path().join("go.mod")).expect("go.mod");
    let go_sum = std::fs::read_to_string(app.path().join("go.sum")).expect("go.sum");
    for module in [LIB, LIB_V2, UTIL] {
        assert_eq!(
            go_sum
                .lines()
                .filter(|l| l.starts_with(&format!("{module} ")))
                .count(),
            2,
            "{go_sum}"
        );
    }

    let scratch = tempfile::tempdir().expect("scratch");
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let server = Server::start(&ServerSetup::memory(&gitconfig));
    let client = proxy_client(&server.url());
    let binary = app.path().join("e2eapp");
    let out = binary.display().to_string();
    // The go command checks every downloaded module against go.sum, so a
    // hash that differs from direct mode fails the build.
    go_ok(
        &client,
        app.path(),
        &["build", "-o", &out, "."],
        &[("GOFLAGS", "-modcacherw -mod=mod"), ("GOSUMDB", "off")],
    );
    assert_eq!(
        std::fs::read_to_string(app.path().join("go.sum")).expect("go.sum"),
        go_sum,
        "go.sum changed"
    );
    assert_eq!(
        std::fs::read(app.path().join("go.mod")).expect("go.mod"),
        go_mod,
        "go.mod changed"
    );
    let ran = Command::new(&binary).output().expect("running the program");
    assert!(ran.status.success());
    assert_eq!(
        String::from_utf8_lossy(&ran.stderr),
        "lib v1.1.0lib v1.1.0 lib v2.0.0\n"
    );
}

/// `athens pack --layout athens` output, a checked-out tree at `rev`.
fn pack_into_storage(
    repo: &fixtures::FixtureRepo,
    rev: &str,
    subdir: &str,
    module: &str,
    version: &str,
    time: &str,
    root: &Path,
) -> (String, String) {
    let checkout = tempfile::tempdir().expect("checkout dir");
    let dir = checkout.path().join("tree");
    repo.export(rev, subdir, &dir).expect("git export");
    pack_dir(&dir, module, version, time, root)
}

/// `athens pack` of the module tree in `dir` into Athens' disk layout under
/// `root`; returns the zip's and the go.mod's `h1:` as it prints them.
fn pack_dir(dir: &Path, module: &str, version: &str, time: &str, root: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("pack")
        .arg(dir)
        .args([
            "--module",
            module,
            "--version",
            version,
            "--layout",
            "athens",
        ])
        .arg("--out")
        .arg(root)
        .arg(format!("--time={time}"))
        .output()
        .expect("running athens pack");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "athens pack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = stdout.lines();
    let zip = lines.next().and_then(|l| l.strip_prefix("zip "));
    let gomod = lines.next().and_then(|l| l.strip_prefix("mod "));
    match (zip, gomod) {
        (Some(zip), Some(gomod)) => (zip.to_string(), gomod.to_string()),
        _ => panic!("unexpected pack output {stdout:?}"),
    }
}

/// A module whose go-import tag has the `mod` type: the go command fetches
/// it from the module proxy the tag names, with the GOPROXY protocol, and
/// so must we (here the named proxy is another athens serving a packed
/// store).
#[test]
fn go_import_mod_tag_fetches_from_the_named_proxy() {
    const MODULE: &str = "example.test/modlib";
    let scratch = tempfile::tempdir().expect("scratch");
    let upstream_root = scratch.path().join("upstream");
    std::fs::create_dir_all(&upstream_root).expect("upstream root");
    for (version, time, body) in [
        (
            "v1.0.0",
            "2024-01-02T03:04:05Z",
            "func A() int { return 1 }",
        ),
        (
            "v1.1.0",
            "2024-02-03T04:05:06Z",
            "func A() int { return 2 }",
        ),
    ] {
        let dir = scratch.path().join(format!("tree-{version}"));
        std::fs::create_dir_all(&dir).expect("tree");
        std::fs::write(dir.join("go.mod"), format!("module {MODULE}\n\ngo 1.21\n"))
            .expect("go.mod");
        std::fs::write(dir.join("a.go"), format!("package modlib\n\n{body}\n")).expect("a.go");
        pack_dir(&dir, MODULE, version, time, &upstream_root);
    }
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    // The named proxy fetches nothing itself: it serves its store.
    let mut upstream_setup = ServerSetup::disk(&upstream_root, &gitconfig);
    upstream_setup.extra_env.push((
        "ATHENS_GO_BINARY_ENV_VARS".into(),
        format!("GIT_CONFIG_GLOBAL={}; GOPROXY=off", gitconfig.display()),
    ));
    let upstream = Server::start(&upstream_setup);
    let meta =
        fixtures::MetaServer::start(&[("/modlib", &format!("{MODULE} mod {}", upstream.url()))]);
    // example.test is reached through the meta server as an HTTP proxy:
    // https is refused, then GOINSECURE allows http.
    let meta_proxy = format!("http://{}", meta.addr);
    let lookup_env = [
        ("GOINSECURE", MODULE),
        ("HTTP_PROXY", meta_proxy.as_str()),
        ("HTTPS_PROXY", meta_proxy.as_str()),
    ];

    let mut direct = direct_client(&[]);
    for (key, value) in lookup_env {
        direct.set_env(key, value);
    }
    let queries: &[(&str, &str, bool)] = &[
        (MODULE, "v1.0.0", true),
        (MODULE, "v1.1.0", true),
        (MODULE, "latest", true),
    ];
    let want = answers(&direct, queries, |_, q| q.to_string());
    assert_eq!(want[&key(MODULE, "latest")].version, "v1.1.0");
    let want_list = tagged_versions(&direct, MODULE);
    assert_eq!(want_list, ["v1.0.0", "v1.1.0"]);

    let mut setup = ServerSetup::memory(&gitconfig);
    let go_env: Vec<String> = [
        ("GIT_CONFIG_GLOBAL", gitconfig.display().to_string()),
        ("GOPROXY", "direct".to_string()),
        ("GOSUMDB", "off".to_string()),
    ]
    .into_iter()
    .chain(lookup_env.iter().map(|(k, v)| (*k, v.to_string())))
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    setup
        .extra_env
        .push(("ATHENS_GO_BINARY_ENV_VARS".into(), go_env.join("; ")));
    let server = Server::start(&setup);
    let client = proxy_client(&server.url());
    let got = answers(&client, queries, |_, q| q.to_string());
    assert_same_answers("mod tag through the proxy", &want, &got);
    assert_eq!(tagged_versions(&client, MODULE), want_list);
    assert!(meta.hits() > 0);
    let log = upstream.log_text();
    assert!(
        log.contains("/example.test/modlib/@v/v1.0.0.zip"),
        "the named proxy was not asked for the zip:\n{log}"
    );
}

#[test]
fn store_prefilled_by_pack_serves_without_repositories() {
    let repo = build_repo("e2e-lib");
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("storage");
    std::fs::create_dir_all(&root).expect("storage root");

    let packs = [
        (LIB, "v1.0.0", "v1.0.0", ""),
        (UTIL, "util/v0.1.0", "v0.1.0", "util"),
    ];
    let mut want = BTreeMap::new();
    let mut printed = BTreeMap::new();
    let mut times = BTreeMap::new();
    for (module, rev, version, subdir) in packs {
        let reference = download_ok(&direct, module, version);
        let (zip, gomod) =
            pack_into_storage(&repo, rev, subdir, module, version, &reference.time, &root);
        printed.insert(
            key(module, version),
            Answer {
                version: version.to_string(),
                sum: zip,
                go_mod_sum: gomod,
            },
        );
        want.insert(key(module, version), Answer::from(&reference));
        times.insert(key(module, version), reference.time.clone());
        let stored = root.join(module).join(version);
        let mut files: Vec<String> = std::fs::read_dir(&stored)
            .expect("packed version dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["go.mod", "source.zip", &format!("{version}.info")]);
        let info: serde_json::Value = serde_json::from_slice(
            &std::fs::read(stored.join(format!("{version}.info"))).expect("info"),
        )
        .expect("info JSON");
        assert_eq!(info["Version"], version);
        assert_eq!(info["Time"], reference.time.as_str());
    }
    // Packing from a checkout gives what the go command makes from git.
    assert_same_answers("pack against direct", &want, &printed);

    // No repository is reachable from the server.
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    let server = Server::start(&ServerSetup::disk(&root, &gitconfig));
    let client = proxy_client(&server.url());
    let mut got = BTreeMap::new();
    for (module, _, version, _) in packs {
        let d = download_ok(&client, module, version);
        assert_eq!(
            d.time,
            times[&key(module, version)],
            "{module}@{version} time"
        );
        got.insert(key(module, version), Answer::from(&d));
    }
    assert_same_answers("packed store through the proxy", &printed, &got);
    assert_eq!(tagged_versions(&client, LIB), ["v1.0.0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_zip_requests_fetch_once() {
    const REQUESTS: usize = 100;
    let repo = build_repo("e2e-lib");
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let want = download_ok(&direct, LIB, "v1.1.0");
    let scratch = tempfile::tempdir().expect("scratch");
    let served = scratch.path().join("srv");
    std::fs::create_dir_all(&served).expect("srv");
    bare_clone(&repo, &served, "e2e-lib");
    let git = GitHttpServer::start(served);
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", git.url("e2e-lib.git"))]);
    let server = Server::start(&ServerSetup::memory(&gitconfig));
    assert_eq!((git.ref_listings(), git.pack_fetches()), (0, 0));

    let http = reqwest::Client::new();
    let url = format!("{}/{LIB}/@v/v1.1.0.zip", server.url());
    let requests = (0..REQUESTS).map(|_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http.get(&url).send().await.expect("request");
            let status = response.status().as_u16();
            let body = response.bytes().await.expect("body");
            (status, body)
        }
    });
    let responses = futures::future::join_all(requests).await;
    let first = &responses[0].1;
    for (status, body) in &responses {
        assert_eq!(*status, 200, "{}", String::from_utf8_lossy(body));
        assert!(body == first, "responses differ");
    }
    assert_eq!(git.pack_fetches(), 1, "pack fetches");
    // One capability request, when the repository is opened and listed:
    // the shallow fetch of the tag replays that listing.
    assert_eq!(git.ref_listings(), 1, "ref listings");
    // The bytes may differ from the go command's own zip (compression,
    // headers); the h1 hash over the files is what clients verify.
    let h1 = modzip::dirhash::hash_zip(std::io::Cursor::new(first.to_vec())).expect("zip hash");
    assert_eq!(h1, want.sum);
}

#[test]
fn missing_modules_fall_through_and_malformed_paths_are_refused() {
    let other = build_repo("e2e-other");
    let direct = direct_client(&[("e2e-other", other.path())]);
    let want = Answer::from(&download_ok(&direct, OTHER, "v1.0.0"));

    let scratch = tempfile::tempdir().expect("scratch");
    let gitconfig = scratch.path().join("gitconfig");
    // The server cannot reach e2e-other; the go client can, directly.
    write_gitconfig(&gitconfig, &[]);
    let server = Server::start(&ServerSetup::memory(&gitconfig));
    for path in [
        format!("/{OTHER}/@v/list"),
        format!("/{OTHER}/@latest"),
        format!("/{OTHER}/@v/v1.0.0.info"),
        format!("/{OTHER}/@v/v1.0.0.mod"),
        format!("/{OTHER}/@v/v1.0.0.zip"),
    ] {
        let (status, body) = http_get(server.port(), &path).expect("GET");
        assert!(
            status == 404 || status == 410,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    let mut client = direct_client(&[("e2e-other", other.path())]);
    client.set_proxy(&format!("{},direct", server.url()));
    for query in ["v1.0.0", "latest"] {
        let got = Answer::from(&download_ok(&client, OTHER, query));
        assert_eq!(got, want, "{OTHER}@{query} through {},direct", server.url());
    }

    for path in [
        "/github.com/acme/Upper/@v/list",
        "/github.com/acme/e2e-lib/@v/v1.0.0%zz.info",
        "/github.com/acme/e2e-lib/@v/V1.0.0.mod",
        "/github.com/acme/e2e-lib/@v/v1.0.0!.zip",
        "/github.com/acme/e2e-lib/../x/@v/list",
    ] {
        let (status, body) = http_get(server.port(), path).expect("GET");
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
    }
    // Logs written to a file carry no terminal colour codes.
    let log = server.log_text();
    assert!(log.contains("status=400"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log}");
}
