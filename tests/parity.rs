//! Athens parity, end to end against the real binary: answers where this
//! proxy must behave as the go command (the oracle) or as Athens documents.

#[allow(dead_code, unused_imports)]
mod support;

use std::path::Path;

use support::{
    bare_clone, build_repo, direct_client, download_ok, file_url, go_ok, http_get, proxy_client,
    write_gitconfig, Answer, GitHttpServer, Server, ServerSetup,
};

const INCOMPATIBLE: &str = "github.com/acme/incompatible";
const INCOMPATIBLE_GOMOD: &str = "github.com/acme/incompatible-gomod";
const LIB: &str = "github.com/acme/e2e-lib";

/// `vN.x.y` of a path without `/vN` whose tag has no go.mod: the go
/// command's Stat answers with the `+incompatible` version, and so must
/// the proxy's `.info` (the go client asks exactly that for
/// `go get mod@v2.0.0`); `.mod` and `.zip` serve that version's files.
/// Where the go command refuses (a go.mod at the tag, no such tag) the
/// proxy answers 404.
#[test]
fn high_major_of_an_unsuffixed_path_answers_as_the_go_commands_stat() {
    let incompatible = build_repo("incompatible");
    let incompatible_gomod = build_repo("incompatible-gomod");
    let lib = build_repo("e2e-lib");
    let repos = [
        ("incompatible", incompatible.path()),
        ("incompatible-gomod", incompatible_gomod.path()),
        ("e2e-lib", lib.path()),
    ];
    let direct = direct_client(&repos);
    let scratch = tempfile::tempdir().expect("scratch");
    let gitconfig = scratch.path().join("gitconfig");
    let remotes: Vec<(&str, String)> = repos
        .iter()
        .map(|(name, path)| (*name, file_url(path)))
        .collect();
    write_gitconfig(&gitconfig, &remotes);
    let server = Server::start(&ServerSetup::memory(&gitconfig));
    let proxy = proxy_client(&server.url());

    // v2.0.0 is listed as +incompatible; v3.1.0 is an annotated tag; the
    // go.mod at incompatible-gomod's v1.5.0 keeps its v2.0.0 off the list,
    // yet Stat still answers it.
    for (module, query) in [
        (INCOMPATIBLE, "v2.0.0"),
        (INCOMPATIBLE, "v3.1.0"),
        (INCOMPATIBLE_GOMOD, "v2.0.0"),
    ] {
        direct.clear_mod_cache().expect("clearing the direct cache");
        let want = download_ok(&direct, module, query);
        let twin = format!("{query}+incompatible");
        assert_eq!(want.version, twin, "the oracle's own answer");
        let got = download_ok(&proxy, module, query);
        assert_eq!(Answer::from(&got), Answer::from(&want), "{module}@{query}");
        assert_eq!(got.time, want.time, "{module}@{query}");

        let listed_direct = direct.list_query(module, query).expect("go list direct");
        let listed_proxy = proxy.list_query(module, query).expect("go list proxy");
        assert!(listed_direct.error.is_none(), "{:?}", listed_direct.error);
        assert!(listed_proxy.error.is_none(), "{:?}", listed_proxy.error);
        assert_eq!(
            (&listed_proxy.version, &listed_proxy.time),
            (&listed_direct.version, &listed_direct.time),
            "go list -m {module}@{query}"
        );

        // The endpoints as the go client's Stat and a plain client see them.
        let base = format!("/{module}/@v/{query}");
        let (status, info) = http_get(server.port(), &format!("{base}.info")).expect(".info");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&info));
        let info: serde_json::Value = serde_json::from_slice(&info).expect(".info JSON");
        assert_eq!(info["Version"], twin.as_str());
        assert_eq!(info["Time"], want.time.as_str());
        let (status, go_mod) = http_get(server.port(), &format!("{base}.mod")).expect(".mod");
        assert_eq!(status, 200);
        assert_eq!(go_mod, want.go_mod_bytes().expect("direct .mod"));
        let (status, zip) = http_get(server.port(), &format!("{base}.zip")).expect(".zip");
        assert_eq!(status, 200);
        // Zips need not be byte-identical; their h1: (names included) must.
        let served_sum = modzip::dirhash::hash_zip(std::io::Cursor::new(zip)).expect("h1 of zip");
        assert_eq!(served_sum, want.sum, "{module}@{query}.zip");
    }

    // The go command refuses these; the proxy answers 404 so the client's
    // own error is the same kind ("not found"), never a 5xx.
    for (module, query) in [
        (LIB, "v2.0.0"),          // a go.mod without /v2 at the tag
        (INCOMPATIBLE, "v4.0.0"), // no such tag
    ] {
        let want = direct.download(module, query).expect("go mod download");
        assert!(!want.is_ok(), "direct {module}@{query}: {want:?}");
        let got = proxy.download(module, query).expect("go mod download");
        assert!(!got.is_ok(), "proxy {module}@{query}: {got:?}");
        let (status, body) =
            http_get(server.port(), &format!("/{module}/@v/{query}.info")).expect(".info");
        assert_eq!(
            status,
            404,
            "{module}@{query}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    // `go get mod@v2.0.0` through the proxy records what direct mode does.
    let got = go_get(&proxy, INCOMPATIBLE, "v2.0.0");
    let want = go_get(&direct, INCOMPATIBLE, "v2.0.0");
    assert!(
        got.0
            .contains(&format!("{INCOMPATIBLE} v2.0.0+incompatible")),
        "{}",
        got.0
    );
    assert_eq!(got, want, "go.mod and go.sum after go get");
}

/// Runs `go get MODULE@QUERY` in a fresh main module; its go.mod and go.sum.
fn go_get(client: &fixtures::GoOracle, module: &str, query: &str) -> (String, String) {
    let app = tempfile::tempdir().expect("app dir");
    std::fs::write(
        app.path().join("go.mod"),
        "module example.com/parityapp\n\ngo 1.21\n",
    )
    .expect("go.mod");
    go_ok(
        client,
        app.path(),
        &["get", &format!("{module}@{query}")],
        &[],
    );
    let read = |name: &str| std::fs::read_to_string(app.path().join(name)).expect(name);
    (read("go.mod"), read("go.sum"))
}

/// Starts a server on memory storage whose only repository,
/// `github.com/acme/e2e-lib`, is served by `git` (which counts requests).
fn server_behind(git: &GitHttpServer, dir: &Path, extra_env: &[(&str, &str)]) -> Server {
    let gitconfig = dir.join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", git.url("e2e-lib.git"))]);
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = extra_env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Server::start(&setup)
}

/// DownloadMode `none`: `/@v/list` and `/@latest` answer 404 as Athens
/// documents, and the origin never hears of the module; the same server
/// setup in `sync` mode lists it from the origin.
#[test]
fn download_mode_none_answers_404_for_list_and_latest_without_asking_the_origin() {
    let repo = build_repo("e2e-lib");
    let scratch = tempfile::tempdir().expect("scratch");
    let served = scratch.path().join("served");
    std::fs::create_dir_all(&served).expect("served dir");
    bare_clone(&repo, &served, "e2e-lib");
    let git = GitHttpServer::start(served);

    let none_dir = scratch.path().join("none");
    std::fs::create_dir_all(&none_dir).expect("dir");
    let server = server_behind(&git, &none_dir, &[("ATHENS_DOWNLOAD_MODE", "none")]);
    for path in [
        format!("/{LIB}/@v/list"),
        format!("/{LIB}/@latest"),
        format!("/{LIB}/@v/v1.0.0.info"),
    ] {
        let (status, body) = http_get(server.port(), &path).expect("request");
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let proxy = proxy_client(&server.url());
    let out = proxy
        .command()
        .args(["list", "-m", "-versions", LIB])
        .output()
        .expect("running go list");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "go list -m -versions succeeded");
    assert!(stderr.contains("404 Not Found"), "{stderr}");
    assert_eq!(
        (git.ref_listings(), git.pack_fetches()),
        (0, 0),
        "the origin was asked"
    );

    // The same request in sync mode does reach the origin: the counter
    // above can see it.
    let sync_dir = scratch.path().join("sync");
    std::fs::create_dir_all(&sync_dir).expect("dir");
    let server = server_behind(&git, &sync_dir, &[("ATHENS_DOWNLOAD_MODE", "sync")]);
    let (status, body) = http_get(server.port(), &format!("/{LIB}/@v/list")).expect("list");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(String::from_utf8_lossy(&body), "v1.0.0\nv1.1.0\n");
    assert!(git.ref_listings() > 0);
    let info = download_ok(&proxy_client(&server.url()), LIB, "latest");
    assert_eq!(info.version, "v1.1.0");
}

/// `athens pack` on a tree whose `go.mod` is a directory gives what the go
/// command makes of the same tree in a repository (no go.mod: the
/// synthesized one, the files inside the directory zipped, pre-1.24 vendor
/// rules): equal `h1:` sums, also for a go client reading the packed
/// GOPROXY tree. (The go command then refuses to use such a module, "read
/// .../go.mod: is a directory", after it has downloaded and hashed it;
/// that happens with either source.)
#[test]
fn pack_of_a_tree_whose_go_mod_is_a_directory_matches_the_go_command() {
    const MODULE: &str = "github.com/acme/gomod-dir";
    let repo = build_repo("gomod-dir");
    let direct = direct_client(&[("gomod-dir", repo.path())]);
    let scratch = tempfile::tempdir().expect("scratch");
    let tree = scratch.path().join("tree");
    repo.export("v1.0.0", "", &tree).expect("git export");
    assert!(
        tree.join("go.mod").is_dir(),
        "fixture: go.mod is a directory"
    );
    let out = scratch.path().join("proxy");
    let packed = fixtures_proxy_client(&out);
    for (query, version) in [("v1.0.0", "v1.0.0"), ("v2.0.0", "v2.0.0+incompatible")] {
        let want = direct.download(MODULE, query).expect("go mod download");
        assert_eq!(want.version, version, "the oracle's own answer");
        assert!(
            !want.sum.is_empty() && !want.go_mod_sum.is_empty(),
            "{want:?}"
        );
        let info: serde_json::Value =
            serde_json::from_slice(&want.info_bytes().expect(".info")).expect(".info JSON");
        let time = info["Time"].as_str().expect("Time");
        let (zip_sum, mod_sum) = pack_goproxy(&tree, MODULE, version, time, &out);
        assert_eq!(
            (zip_sum.as_str(), mod_sum.as_str()),
            (want.sum.as_str(), want.go_mod_sum.as_str()),
            "athens pack {version}"
        );
        let got = packed.download(MODULE, version).expect("go mod download");
        assert_eq!(
            (
                &got.version,
                &got.sum,
                &got.go_mod_sum,
                &got.error.is_empty()
            ),
            (
                &want.version,
                &want.sum,
                &want.go_mod_sum,
                &want.error.is_empty()
            ),
            "{version} through the packed tree"
        );
        assert_eq!(
            got.go_mod_bytes().expect(".mod"),
            format!("module {MODULE}\n").into_bytes()
        );
    }
}

/// A go client whose only module source is the GOPROXY tree at `dir`.
fn fixtures_proxy_client(dir: &Path) -> fixtures::GoOracle {
    let mut client = fixtures::GoOracle::new().expect("go client");
    client.set_proxy(&file_url(dir));
    client
}

/// `athens pack` of `dir` into the GOPROXY tree `out`; the zip's and the
/// go.mod's `h1:` as it prints them.
fn pack_goproxy(
    dir: &Path,
    module: &str,
    version: &str,
    time: &str,
    out: &Path,
) -> (String, String) {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("pack")
        .arg(dir)
        .args(["--module", module, "--version", version, "--out"])
        .arg(out)
        .arg(format!("--time={time}"))
        .output()
        .expect("running athens pack");
    let stdout = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "athens pack: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut lines = stdout.lines();
    let zip = lines.next().and_then(|l| l.strip_prefix("zip "));
    let go_mod = lines.next().and_then(|l| l.strip_prefix("mod "));
    match (zip, go_mod) {
        (Some(zip), Some(go_mod)) => (zip.to_string(), go_mod.to_string()),
        _ => panic!("unexpected pack output {stdout:?}"),
    }
}

/// A GET on 127.0.0.1: status, lower-cased response headers and body.
fn get_with_headers(port: u16, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("response");
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, raw[head_end + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `/@v/list` and `/@latest` carry Athens' `no-cache, no-store,
/// must-revalidate`; canonical versions stay immutable; `RobotsFile` is
/// served at `/robots.txt`.
#[test]
fn listing_cache_headers_and_robots_file_as_athens_sends_them() {
    let repo = build_repo("e2e-lib");
    let scratch = tempfile::tempdir().expect("scratch");
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", file_url(repo.path()))]);
    let robots = scratch.path().join("robots-for-test.txt");
    std::fs::write(&robots, "User-agent: *\nDisallow: /\n").expect("robots file");
    let mut setup = ServerSetup::memory(&gitconfig);
    setup
        .extra_env
        .push(("ATHENS_ROBOTS_FILE".into(), robots.display().to_string()));
    let server = Server::start(&setup);

    for path in [format!("/{LIB}/@v/list"), format!("/{LIB}/@latest")] {
        let (status, headers, body) = get_with_headers(server.port(), &path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            header(&headers, "cache-control"),
            Some("no-cache, no-store, must-revalidate"),
            "{path}"
        );
    }
    let (status, headers, _) = get_with_headers(server.port(), &format!("/{LIB}/@v/v1.0.0.info"));
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );

    let (status, headers, body) = get_with_headers(server.port(), "/robots.txt");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"User-agent: *\nDisallow: /\n");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/plain; charset=utf-8")
    );
}

/// A GET of `/healthz` at `addr`; the status, or the connection error.
fn healthz_at(addr: std::net::SocketAddr) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(10))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not HTTP: {text:?}")))
}

/// An athens binary started by a test, killed on drop.
struct ChildServer {
    child: std::process::Child,
    port: u16,
    _scratch: tempfile::TempDir,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `ATHENS_PORT=":N"` on a port free on both IP
/// versions, retrying when another process takes it first.
fn start_on_bare_port() -> ChildServer {
    use std::time::{Duration, Instant};
    for _ in 0..5 {
        // Bound on [::] (dual-stack by default on Linux) to find a port
        // that is free for both versions.
        let port = std::net::TcpListener::bind("[::]:0")
            .or_else(|_| std::net::TcpListener::bind("0.0.0.0:0"))
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let scratch = tempfile::tempdir().expect("scratch");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_athens"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", scratch.path())
            .env("ATHENS_PORT", format!(":{port}"))
            .env("ATHENS_STORAGE_TYPE", "memory")
            .env("ATHENS_GOGET_DIR", scratch.path().join("goget"))
            .env("ATHENS_GO_BINARY_ENV_VARS", "GOPROXY=off")
            .current_dir(scratch.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawning athens");
        let mut server = ChildServer {
            child,
            port,
            _scratch: scratch,
        };
        let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(200) = healthz_at(v4) {
                return server;
            }
            if server.child.try_wait().ok().flatten().is_some() {
                break; // the port was taken: try another
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("athens did not start on a bare port");
}

/// `Port = ":N"` listens on IPv6 and IPv4, as Go's net.Listen does.
#[test]
fn a_bare_port_listens_on_ipv6_and_ipv4() {
    let server = start_on_bare_port();
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], server.port));
    assert_eq!(healthz_at(v4).expect("IPv4"), 200);
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, server.port));
        assert_eq!(healthz_at(v6).expect("IPv6"), 200);
    } else {
        eprintln!("no IPv6 loopback on this machine: IPv4 checked only");
    }
}

/// Starts the binary on a free loopback port with disk storage and `env`;
/// `Ok` once `/healthz` answers, `Err(output)` when it exits first.
fn start_disk_server(scratch: &Path, env: &[(&str, String)]) -> Result<ChildServer, String> {
    use std::time::{Duration, Instant};
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("address")
            .port();
        let dir = tempfile::tempdir_in(scratch).expect("server dir");
        let log = dir.path().join("athens.log");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_athens"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
            .env("ATHENS_STORAGE_TYPE", "disk")
            .env("ATHENS_GOGET_DIR", dir.path().join("goget"))
            .env("ATHENS_GO_BINARY_ENV_VARS", "GOPROXY=off")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("log"));
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd.spawn().expect("spawning athens");
        let mut server = ChildServer {
            child,
            port,
            _scratch: dir,
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(200) = healthz_at(addr) {
                return Ok(server);
            }
            if server.child.try_wait().ok().flatten().is_some() {
                let dir = server._scratch.path();
                let text = std::fs::read_to_string(dir.join("athens.log")).unwrap_or_default()
                    + &std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                if text.contains("address already in use") || text.contains("Address in use") {
                    break; // the port was taken: try another
                }
                return Err(text);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("athens did not start");
}

/// The nested variable name Athens' envconfig reads
/// (`ATHENS_STORAGE_DISK_ATHENS_DISK_STORAGE_ROOT`) configures the disk
/// storage root: without it the start is refused, with it the server runs
/// on that root and stores there.
#[test]
fn nested_athens_storage_variable_names_configure_the_binary() {
    let scratch = tempfile::tempdir().expect("scratch");
    let refused = start_disk_server(scratch.path(), &[])
        .err()
        .expect("disk storage without a root must be refused");
    assert!(refused.contains("RootPath"), "{refused}");

    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).expect("root");
    let server = start_disk_server(
        scratch.path(),
        &[(
            "ATHENS_STORAGE_DISK_ATHENS_DISK_STORAGE_ROOT",
            root.display().to_string(),
        )],
    )
    .unwrap_or_else(|log| panic!("athens refused to start:\n{log}"));
    // A version packed into that root is served: the server reads it.
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    std::fs::write(tree.join("go.mod"), "module example.test/nested\n").expect("go.mod");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("pack")
        .arg(&tree)
        .args(["--module", "example.test/nested", "--version", "v1.0.0"])
        .args([
            "--layout",
            "athens",
            "--time",
            "2024-01-02T03:04:05Z",
            "--out",
        ])
        .arg(&root)
        .output()
        .expect("athens pack");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let (status, body) =
        http_get(server.port, "/example.test/nested/@v/v1.0.0.mod").expect("request");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"module example.test/nested\n");
}

/// A key Athens acts on that changes nothing here is named in a warning
/// line when the server starts.
#[test]
fn keys_without_effect_are_reported_at_start() {
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).expect("root");
    let mut server = start_disk_server(
        scratch.path(),
        &[
            ("ATHENS_DISK_STORAGE_ROOT", root.display().to_string()),
            ("ATHENS_GO_BINARY_PATH", "/opt/go/bin/go".to_string()),
            ("GOOGLE_CLOUD_PROJECT", "my-project".to_string()),
        ],
    )
    .unwrap_or_else(|log| panic!("athens refused to start:\n{log}"));
    let _ = server.child.kill();
    let _ = server.child.wait();
    let dir = server._scratch.path();
    let log = std::fs::read_to_string(dir.join("athens.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("GoBinary")).collect();
    assert_eq!(lines.len(), 1, "GoBinary:\n{log}");
    assert!(lines[0].contains("WARN"), "{}", lines[0]);
    // Used as Athens uses it (not at all for the bucket's objects), so
    // nothing to warn about.
    assert!(!log.contains("ProjectID"), "{log}");
}

/// `-version` in the forms Go's flag package accepts for a boolean:
/// `-version`, `--version`, `-version=true` (and ParseBool's other
/// spellings) print the build details as Athens lays them out;
/// `-version=false` does not; anything else is a usage error. `/version`
/// answers the same details as Athens' JSON.
#[test]
fn version_flag_accepts_gos_boolean_forms() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_athens"))
            .args(args)
            .env_clear()
            .output()
            .expect("running athens");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (_, version_line, _) = run(&["-version"]);
    let (version, date) = build_details_of(&version_line);
    for args in [
        &["-version"][..],
        &["--version"],
        &["-version=true"],
        &["--version=1"],
        &["-version=T"],
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stdout, version_line, "{args:?}");
    }
    // false: no version; the help flag after it answers instead.
    let (code, stdout, _) = run(&["-version=false", "-h"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("usage: athens"), "{stdout}");
    let (code, _, stderr) = run(&["-version=maybe"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("-version"), "{stderr}");

    // `/version` answers the same details as Athens' JSON.
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).expect("root");
    let server = start_disk_server(
        scratch.path(),
        &[("ATHENS_DISK_STORAGE_ROOT", root.display().to_string())],
    )
    .unwrap_or_else(|log| panic!("athens refused to start:\n{log}"));
    let (status, body) = http_get(server.port, "/version").expect("/version");
    assert_eq!(status, 200);
    // Athens' field order; an empty date is left out.
    let quoted = |s: &str| serde_json::to_string(s).expect("JSON string");
    let want = if date.is_empty() {
        format!("{{\"version\":{}}}\n", quoted(&version))
    } else {
        format!(
            "{{\"version\":{},\"date\":{}}}\n",
            quoted(&version),
            quoted(&date)
        )
    };
    assert_eq!(String::from_utf8_lossy(&body), want);
}

/// The version and date of `-version`'s output, which must be laid out as
/// Athens' `build.String()` and name this build: `v` and the package
/// version (with `+` and the checked-out commit when built from git), and
/// the commit's time as `YYYY-MM-DD-HH:MM:SS-UTC`, unless the build was
/// given other values.
fn build_details_of(output: &str) -> (String, String) {
    let rest = output
        .strip_prefix("Build Details:\n\tVersion:\t")
        .unwrap_or_else(|| panic!("not Athens' layout: {output:?}"));
    let (version, rest) = rest.split_once("\n\tDate:\t\t").expect("a Date line");
    let date = rest.strip_suffix('\n').expect("one final newline");
    assert!(!date.contains('\n'), "{output:?}");
    let manifest = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(manifest)
            .args(args)
            .env("TZ", "UTC")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let toplevel = git(&["rev-parse", "--show-toplevel"])
        .filter(|top| std::fs::canonicalize(top).ok() == std::fs::canonicalize(manifest).ok());
    let package = concat!("v", env!("CARGO_PKG_VERSION"));
    if option_env!("ATHENS_BUILD_VERSION").is_none() {
        match toplevel.as_ref().and_then(|_| git(&["rev-parse", "HEAD"])) {
            Some(head) => assert_eq!(version, format!("{package}+{}", &head[..12])),
            None => assert_eq!(version, package),
        }
    }
    if option_env!("ATHENS_BUILD_DATE").is_none() && option_env!("SOURCE_DATE_EPOCH").is_none() {
        let committed = toplevel.as_ref().and_then(|_| {
            git(&[
                "log",
                "-1",
                "--date=format-local:%Y-%m-%d-%H:%M:%S-UTC",
                "--format=%cd",
            ])
        });
        assert_eq!(date, committed.unwrap_or_default());
    }
    (version.to_string(), date.to_string())
}

/// Sends `commands` (RESP inline commands) to the Redis server at `addr`
/// and returns everything it answers before closing the connection.
fn redis_exchange(addr: &str, commands: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connecting to redis");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(commands.as_bytes()).expect("writing");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("reading");
    answer
}

/// How many `SET` commands the password-protected Redis at `addr` has run.
fn redis_set_calls(addr: &str, password: &str) -> u64 {
    let answer = redis_exchange(addr, &format!("AUTH {password}\r\nINFO commandstats\r\n"));
    assert!(answer.starts_with("+OK"), "{answer}");
    answer
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_set:calls="))
        .map_or(0, |rest| {
            rest.split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        })
}

/// A Redis endpoint that is not a URL is, as in Athens, the `host:port` to
/// dial with the separate Password: the binary starts against a Redis that
/// requires it, and takes its single-flight leases there; without the
/// password (or with a wrong one) it refuses to start.
#[test]
fn a_redis_endpoint_that_is_not_a_url_is_dialled_with_the_password() {
    const PASSWORD: &str = "parity-redis-pw";
    let redis = fixtures::services::redis::RedisServer::start_with_password(PASSWORD)
        .expect("redis-server (installed by scripts/test.sh)");
    let endpoint = redis.endpoint();
    assert!(endpoint.starts_with("127.0.0.1:"), "{endpoint}");
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("root");
    std::fs::create_dir_all(&root).expect("root");
    let env = |password: &str| {
        vec![
            ("ATHENS_DISK_STORAGE_ROOT", root.display().to_string()),
            ("ATHENS_SINGLE_FLIGHT_TYPE", "redis".to_string()),
            ("ATHENS_REDIS_ENDPOINT", endpoint.clone()),
            ("ATHENS_REDIS_PASSWORD", password.to_string()),
        ]
    };
    for wrong in ["", "not-the-password"] {
        let refused = start_disk_server(scratch.path(), &env(wrong))
            .err()
            .unwrap_or_else(|| panic!("started with password {wrong:?}"));
        assert!(refused.contains("SingleFlight"), "{refused}");
    }

    let server = start_disk_server(scratch.path(), &env(PASSWORD))
        .unwrap_or_else(|log| panic!("athens refused to start:\n{log}"));
    let before = redis_set_calls(&endpoint, PASSWORD);
    // A version not in storage is fetched under a lease (the fetch itself
    // fails: GOPROXY=off).
    let (status, _) =
        http_get(server.port, "/example.test/leased/@v/v1.0.0.info").expect("request");
    assert!((400..500).contains(&status), "{status}");
    assert!(
        redis_set_calls(&endpoint, PASSWORD) > before,
        "no lease was taken on {endpoint}"
    );
}

/// One HTTP/1.1 GET over `stream` (already through TLS or not), with
/// `Connection: close`: the status and body, or `None` when what comes
/// back is not an HTTP response.
async fn get_over<S>(mut stream: S, path: &str) -> Option<(u16, Vec<u8>)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut raw),
    )
    .await;
    // A TLS peer may end without close_notify; what arrived counts.
    let _ = read.ok()?;
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let status = head.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    Some((status, raw[head_end + 4..].to_vec()))
}

/// With `UnixSocket` and `TLSCertFile`/`TLSKeyFile`, the socket speaks
/// HTTPS, as Athens' ServeTLS on its listener does: a TLS client checking
/// the certificate gets `/healthz` and the protocol's answers, and a
/// plain-HTTP request on the socket is not answered as HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_on_a_unix_socket() {
    use std::time::{Duration, Instant};
    let scratch = tempfile::tempdir().expect("scratch");
    let certs = scratch.path().join("certs");
    std::fs::create_dir_all(&certs).expect("certs dir");
    let (ca, cert, key) =
        fixtures::services::localhost_certificates(&certs).expect("test certificates (openssl)");
    // A version in disk storage, for a protocol route.
    let root = scratch.path().join("root");
    let tree = scratch.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree");
    std::fs::write(tree.join("go.mod"), "module example.test/overtls\n").expect("go.mod");
    let pack = std::process::Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("pack")
        .arg(&tree)
        .args(["--module", "example.test/overtls", "--version", "v1.0.0"])
        .args(["--layout", "athens", "--time", "2024-01-02T03:04:05Z"])
        .arg("--out")
        .arg(&root)
        .output()
        .expect("athens pack");
    assert!(
        pack.status.success(),
        "{}",
        String::from_utf8_lossy(&pack.stderr)
    );

    let socket = scratch.path().join("athens.sock");
    let log = scratch.path().join("athens.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_athens"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", scratch.path())
        .env("ATHENS_UNIX_SOCKET", &socket)
        .env("ATHENS_TLSCERT_FILE", &cert)
        .env("ATHENS_TLSKEY_FILE", &key)
        .env("ATHENS_STORAGE_TYPE", "disk")
        .env("ATHENS_DISK_STORAGE_ROOT", &root)
        .env("ATHENS_GOGET_DIR", scratch.path().join("goget"))
        .env("ATHENS_GO_BINARY_ENV_VARS", "GOPROXY=off")
        .current_dir(scratch.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawning athens");
    // On the socket only: no TCP port.
    let mut server = ChildServer {
        child,
        port: 0,
        _scratch: scratch,
    };

    let mut roots = rustls::RootCertStore::empty();
    {
        use rustls::pki_types::pem::PemObject;
        let ca = rustls::pki_types::CertificateDer::from_pem_file(&ca).expect("CA certificate");
        roots.add(ca).expect("CA accepted");
    }
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let tls_get = |path: &'static str| {
        let connector = connector.clone();
        let socket = socket.clone();
        async move {
            let unix = tokio::net::UnixStream::connect(&socket).await.ok()?;
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let tls = connector.connect(name, unix).await.ok()?;
            get_over(tls, path).await
        }
    };

    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        if let Some(answer) = tls_get("/healthz").await {
            break answer;
        }
        if server.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
            panic!(
                "athens did not answer over TLS on {}:\n{}",
                socket.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(health.0, 200);
    let (status, body) = tls_get("/example.test/overtls/@v/v1.0.0.mod")
        .await
        .expect(".mod over TLS");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"module example.test/overtls\n");
    let (status, body) = tls_get("/example.test/overtls/@v/list")
        .await
        .expect("list over TLS");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, b"v1.0.0\n");

    // Plain HTTP on the same socket: no HTTP answer.
    let plain = tokio::net::UnixStream::connect(&socket)
        .await
        .expect("connecting without TLS");
    assert_eq!(get_over(plain, "/healthz").await, None);
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// `CloudRuntime = "GCP"` logs Athens' JSON for Cloud Logging, whatever
/// `LogFormat` says: every line an object whose first keys are
/// `timestamp`, `severity` and `message`, with the line's fields after
/// them at the top level.
#[test]
fn cloud_runtime_gcp_logs_cloud_logging_json() {
    let scratch = tempfile::tempdir().expect("scratch");
    let gitconfig = scratch.path().join("gitconfig");
    std::fs::write(&gitconfig, "").expect("gitconfig");
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = [
        ("ATHENS_CLOUD_RUNTIME", "GCP"),
        ("ATHENS_LOG_FORMAT", "plain"),
        // A warning at start.
        ("ATHENS_GO_BINARY_PATH", "/opt/go/bin/go"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let server = Server::start(&setup);
    let path = "/example.test/gcp-logged/@v/v1.0.0.bogus";
    let (status, _) = http_get(server.port(), path).expect("request");
    let log = server.log_text();

    let mut lines = Vec::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let fields = value.as_object().expect("an object");
        // The key order Athens writes.
        let order = fields.keys().collect::<Vec<_>>();
        assert!(
            line.starts_with("{\"timestamp\":\"") && order.len() >= 3,
            "{line}"
        );
        let after_time = &line[line.find("\",\"").expect("second key")..];
        assert!(
            after_time.starts_with("\",\"severity\":\"") && after_time.contains("\",\"message\":"),
            "{line}"
        );
        let timestamp = fields["timestamp"].as_str().expect("timestamp");
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("timestamp {timestamp:?}: {e}"));
        assert!(!timestamp.contains('.'), "whole seconds: {timestamp}");
        let severity = fields["severity"].as_str().expect("severity");
        assert!(
            ["DEBUG", "INFO", "WARNING", "ERROR"].contains(&severity),
            "{line}"
        );
        lines.push(value);
    }
    let request = lines
        .iter()
        .find(|l| l["path"] == path)
        .unwrap_or_else(|| panic!("no line for {path}:\n{log}"));
    assert_eq!(request["severity"], "INFO");
    assert_eq!(request["message"], "request");
    assert_eq!(request["method"], "GET");
    assert_eq!(request["status"], status);
    assert!(request["request_id"].is_string(), "{request}");
    let warning = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("GoBinary"))
        })
        .unwrap_or_else(|| panic!("no GoBinary warning:\n{log}"));
    assert_eq!(warning["severity"], "WARNING");
}

/// What [`S3Front`] does with the requests it receives.
const FRONT_PASS: u8 = 0;
/// Holds every request from now on without an answer (connections stay
/// open), as a store that accepts connections and never answers.
const FRONT_STALL_ALL: u8 = 1;
/// Holds the writes (`PUT`, `POST`) and passes the reads.
const FRONT_STALL_WRITES: u8 = 2;

/// A loopback TCP front for moto that records the request bytes it is
/// sent and, when told, stops answering.
struct S3Front {
    addr: std::net::SocketAddr,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl S3Front {
    fn start(upstream: std::net::SocketAddr) -> S3Front {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("front port");
        let addr = listener.local_addr().expect("front address");
        let mode = Arc::new(AtomicU8::new(FRONT_PASS));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, halt) = (mode.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
                    continue;
                };
                let (mut client_out, mut server_in) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                // Answers go back as they come.
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                });
                let (m, s) = (m.clone(), s.clone());
                std::thread::spawn(move || {
                    let mut held = false;
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        s.lock().unwrap().extend_from_slice(chunk);
                        let write = chunk.starts_with(b"PUT ") || chunk.starts_with(b"POST ");
                        held |= match m.load(Ordering::SeqCst) {
                            FRONT_STALL_ALL => true,
                            FRONT_STALL_WRITES => write,
                            _ => false,
                        };
                        // A held connection keeps being read, never answered.
                        if !held && server.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        S3Front {
            addr,
            mode,
            seen,
            stop,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, std::sync::atomic::Ordering::SeqCst);
    }

    fn seen_text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).to_string()
    }
}

impl Drop for S3Front {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// A loopback AWS credentials endpoint answering every request with one
/// key pair, as the endpoint `Storage.S3.CredentialsEndpoint` names does;
/// remembers the request lines it got.
struct CredentialsEndpoint {
    addr: std::net::SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl CredentialsEndpoint {
    const KEY_ID: &'static str = "ASIAFROMTHEENDPOINT";

    fn start() -> CredentialsEndpoint {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("endpoint port");
        let addr = listener.local_addr().expect("endpoint address");
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(head) = support::read_request_head(&mut stream) else {
                    continue;
                };
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push(line);
                let body = format!(
                    r#"{{"AccessKeyId":"{}","SecretAccessKey":"endpoint-secret","Token":"endpoint-session","Expiration":"2999-01-01T00:00:00Z"}}"#,
                    Self::KEY_ID
                );
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        CredentialsEndpoint { addr, requests }
    }
}

/// S3 storage as Athens configures it with `Storage.S3.CredentialsEndpoint`
/// and `Timeout`:
/// - requests are signed with the key pair the credentials endpoint
///   (`CredentialsEndpoint` + `AwsContainerCredentialsRelativeURI`) gives,
///   not with the static `Key`, and the normal path works against moto;
/// - once the store accepts connections and never answers, requests for
///   a stored and for a missing version answer 500 (a storage failure
///   the go command does not fall through on) naming `Timeout`, instead of
///   hanging (the request below would hit its 60 s read limit);
/// - a save whose writes never complete ends the same way and leaves no
///   published version: once the store answers again the version is not
///   there, and the next request stores and serves it.
#[test]
fn s3_takes_credentials_from_the_endpoint_and_storage_calls_end_at_timeout() {
    let moto = fixtures::services::s3::Moto::start().expect("moto");
    moto.create_bucket("parity-storage").expect("bucket");
    let front = S3Front::start(moto.process.addr);
    let credentials = CredentialsEndpoint::start();
    let repo = build_repo("e2e-lib");
    let scratch = tempfile::tempdir().expect("scratch");
    let served = scratch.path().join("served");
    std::fs::create_dir_all(&served).expect("served dir");
    bare_clone(&repo, &served, "e2e-lib");
    let git = GitHttpServer::start(served);
    let front_url = format!("http://{}", front.addr);
    let endpoint_url = format!("http://{}", credentials.addr);
    let server = server_behind(
        &git,
        scratch.path(),
        &[
            ("ATHENS_STORAGE_TYPE", "s3"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "static-key"),
            ("AWS_SECRET_ACCESS_KEY", "static-secret"),
            ("ATHENS_S3_BUCKET_NAME", "parity-storage"),
            ("AWS_ENDPOINT", &front_url),
            ("AWS_FORCE_PATH_STYLE", "true"),
            ("AWS_CREDENTIALS_ENDPOINT", &endpoint_url),
            (
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/task-1",
            ),
            ("ATHENS_TIMEOUT", "5"),
        ],
    );
    let get = |path: &str| {
        let (status, body) = http_get(server.port(), path).expect("an answer");
        (status, String::from_utf8_lossy(&body).to_string())
    };

    let (status, body) = get(&format!("/{LIB}/@v/v1.0.0.info"));
    assert_eq!(status, 200, "{body}");
    let requests = credentials.requests.lock().unwrap().clone();
    assert!(
        !requests.is_empty(),
        "the credentials endpoint was not asked"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.starts_with("GET /v2/credentials/task-1 ")),
        "{requests:?}"
    );
    let sent = front.seen_text();
    let signed = format!("Credential={}/", CredentialsEndpoint::KEY_ID);
    assert!(
        sent.contains(&signed),
        "no request signed with the endpoint's key"
    );
    assert!(sent.contains("x-amz-security-token: endpoint-session"));
    assert!(!sent.contains("Credential=static-key/"));

    front.set(FRONT_STALL_ALL);
    for path in [
        format!("/{LIB}/@v/v1.0.0.mod"),
        format!("/{LIB}/@v/v1.1.0.info"),
    ] {
        let (status, body) = get(&path);
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.contains("within Timeout (5s)"), "{path}: {body}");
    }

    front.set(FRONT_STALL_WRITES);
    let (status, body) = get(&format!("/{LIB}/@v/v1.1.0.info"));
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("within Timeout (5s)"), "{body}");
    front.set(FRONT_PASS);
    let (status, _) = fixtures::services::http_request(
        moto.process.addr,
        "GET",
        &format!("/parity-storage/{LIB}/@v/v1.1.0.info"),
        &[],
        b"",
    )
    .expect("asking moto");
    assert_eq!(status, 404, "the interrupted save published the version");
    let (status, body) = get(&format!("/{LIB}/@v/v1.1.0.info"));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"Version\":\"v1.1.0\""), "{body}");
}
