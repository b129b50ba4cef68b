//! Mercurial, Subversion and Fossil modules: the native fetcher against the
//! go command, on repositories the tests build with `hg`, `svnadmin`/`svn`
//! and `fossil`, served on loopback (`hg serve`, `svnserve`, `fossil
//! server`) and found through go-import meta tags (the go command refuses
//! `file://` remotes in meta tags).
//!
//! For each (module, query) the Version, the `.info` bytes, the go.mod
//! bytes and both `h1:` sums must be identical, and a query the go command
//! refuses must fail here too, as in `differential.rs` for git.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fixtures::{GoOracle, MetaServer};
use vcs::discovery::DiscoveryClient;
use vcs::fetcher::{DirectFetcher, FailureKind};
use vcs::goenv::GoEnv;

/// How long a server may take to come up on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs a fixture-building command; panics with its output on failure
/// (and names the tool when it is not installed: CI installs them all).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..])
        .current_dir(dir)
        .env("HGRCPATH", "")
        .env("HGUSER", "Gopher <gopher@example.com>")
        .env("HGPLAIN", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "{}: {e} (is {} installed? scripts/test.sh installs it)",
            args[0], args[0]
        )
    });
    assert!(
        out.status.success(),
        "{args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A server child process, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, which prints a line containing `127.0.0.1:PORT` (after
/// `marker`) once it listens, and returns it with that port.
fn start_announcing(mut cmd: Command, marker: &str) -> Server {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("starting server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.split(&marker).nth(1) {
                let digits: String = rest
                    .trim_start_matches("127.0.0.1:")
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                let _ = tx.send(digits.parse::<u16>().ok());
                break;
            }
        }
        // Keep draining so the server never blocks on a full pipe.
        for _ in lines {}
    });
    let port = match rx.recv_timeout(START_TIMEOUT) {
        Ok(Some(port)) => port,
        other => {
            let _ = child.kill();
            panic!("server did not announce its port: {other:?}");
        }
    };
    Server { child, port }
}

/// `hg serve` on a free loopback port.
fn hg_serve(repo: &Path) -> Server {
    let mut cmd = Command::new("hg");
    cmd.args(["serve", "-R"])
        .arg(repo)
        .args(["-a", "127.0.0.1", "-p", "0"])
        .env("HGRCPATH", "");
    start_announcing(cmd, "(bound to ")
}

/// Builds an hg repository with `steps`, each run in the working copy.
struct HgRepo {
    dir: PathBuf,
}

impl HgRepo {
    fn init(parent: &Path, name: &str) -> HgRepo {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        run(&dir, &["hg", "init", "."], &[]);
        HgRepo { dir }
    }

    fn hg(&self, args: &[&str]) -> String {
        let mut all = vec!["hg"];
        all.extend_from_slice(args);
        run(&self.dir, &all, &[])
    }

    fn commit(&self, files: &[(&str, &str)], day: u32, message: &str) {
        for (path, text) in files {
            write(&self.dir.join(path), text);
        }
        self.hg(&["add", "-q"]);
        let date = format!("{} 0", 1709294400 + u64::from(day) * 86400);
        self.hg(&["commit", "-q", "-m", message, "-d", &date]);
    }

    fn tag(&self, name: &str, rev: &str, day: u32) {
        let date = format!("{} 0", 1709294400 + u64::from(day) * 86400 + 3600);
        self.hg(&["tag", "-r", rev, "-d", &date, name]);
    }

    fn node(&self, rev: &str) -> String {
        self.hg(&["log", "-r", rev, "--template", "{node}"])
    }
}

/// The go command and our fetcher, both finding `example.test/...` through
/// one meta-tag server.
struct Bench {
    oracle: GoOracle,
    fetcher: DirectFetcher,
    rt: tokio::runtime::Runtime,
    _cache: tempfile::TempDir,
    meta: MetaServer,
}

impl Bench {
    fn new(pages: &[(&str, &str)], env: &[(&str, &str)]) -> Bench {
        let meta = MetaServer::start(pages);
        let proxy = format!("http://{}", meta.addr);
        let mut oracle = GoOracle::new().expect("go oracle");
        oracle.set_env("GOINSECURE", "example.test");
        oracle.set_env("HTTP_PROXY", &proxy);
        oracle.set_env("HTTPS_PROXY", &proxy);
        oracle.set_env("NO_PROXY", "127.0.0.1");
        oracle.set_env("HGRCPATH", "");
        for (k, v) in env {
            oracle.set_env(k, v);
        }
        let cache = tempfile::tempdir().unwrap();
        let mut vars: Vec<(String, String)> = vec![
            ("GOPROXY".into(), "direct".into()),
            ("GOINSECURE".into(), "example.test".into()),
            ("HOME".into(), cache.path().display().to_string()),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let command_env = env;
        let env = GoEnv::from_vars(vars).expect("go env");
        let client = DiscoveryClient::builder(&env)
            .pin_host("example.test", meta.addr)
            .build()
            .unwrap();
        let command_env: Vec<String> = command_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let fetcher = DirectFetcher::with_client(env, client, cache.path().join("vcs"))
            .unwrap()
            .with_command_env(&command_env)
            .with_timeout(Some(Duration::from_secs(300)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Bench {
            oracle,
            fetcher,
            rt,
            _cache: cache,
            meta,
        }
    }

    /// Compares one question; returns the mismatches found.
    fn compare(&self, module: &str, query: &str) -> Vec<String> {
        if query == "list" {
            return self.compare_list(module);
        }
        let at = format!("{module}@{query}");
        self.oracle.clear_mod_cache_keep_clones().unwrap();
        let go = self.oracle.download(module, query).expect("running go");
        let zip_file = tempfile::NamedTempFile::new().unwrap();
        let ours = self.rt.block_on(self.fetcher.download(
            module,
            query,
            zip_file.reopen().unwrap(),
        ));
        let mut bad = Vec::new();
        match (go.is_ok(), ours) {
            (false, Err(_)) => {}
            (false, Ok(d)) => bad.push(format!(
                "{at}: go fails ({}) but we answered {}",
                go.error, d.info.version
            )),
            (true, Err(e)) => bad.push(format!(
                "{at}: go answers {} but we failed: {e}",
                go.version
            )),
            (true, Ok(d)) => {
                let go_info = go.info_bytes().unwrap();
                let our_info = d.info.to_json();
                if our_info != go_info {
                    bad.push(format!(
                        "{at}: .info\n  ours {}\n  go's {}",
                        String::from_utf8_lossy(&our_info),
                        String::from_utf8_lossy(&go_info)
                    ));
                }
                let go_mod = go.go_mod_bytes().unwrap();
                if d.go_mod != go_mod {
                    bad.push(format!(
                        "{at}: go.mod {:?} != go's {:?}",
                        String::from_utf8_lossy(&d.go_mod),
                        String::from_utf8_lossy(&go_mod)
                    ));
                }
                let zip_sum =
                    modzip::dirhash::hash_zip(std::fs::File::open(zip_file.path()).unwrap())
                        .map_err(|e| e.to_string());
                if zip_sum.as_deref() != Ok(go.sum.as_str()) {
                    bad.push(format!("{at}: zip h1 {zip_sum:?} != go's {}", go.sum));
                }
            }
        }
        bad
    }

    fn compare_list(&self, module: &str) -> Vec<String> {
        self.oracle.clear_mod_cache_keep_clones().unwrap();
        let go = self.oracle.list_versions(module).expect("running go list");
        let ours = self.rt.block_on(self.fetcher.list(module));
        match (go.error.as_ref(), ours) {
            (Some(_), Err(_)) => vec![],
            (Some(e), Ok(v)) => vec![format!(
                "{module} list: go fails ({}) but we list {v:?}",
                e.err
            )],
            (None, Err(e)) => vec![format!(
                "{module} list: go lists {:?} but we failed: {e}",
                go.versions
            )],
            (None, Ok(mut v)) => {
                modzip::semver::sort(&mut v);
                if v != go.versions {
                    vec![format!("{module} list: {v:?} != go's {:?}", go.versions)]
                } else {
                    vec![]
                }
            }
        }
    }

    fn compare_all(&self, cases: &[(&str, String)]) {
        let mut bad = Vec::new();
        for (module, query) in cases {
            bad.extend(self.compare(module, query));
        }
        assert!(
            bad.is_empty(),
            "{} mismatch(es) with the go command:\n{}",
            bad.len(),
            bad.join("\n")
        );
        assert!(self.meta.hits() > 0, "the meta server was never asked");
    }
}

/// A module at the root with tags, a named branch and a subdirectory
/// module (with the root LICENSE copied into its zip), served by `hg
/// serve`; also returns the third commit's node and the default tip's.
fn hgmod_fixture(root: &Path) -> (HgRepo, Server, String, String) {
    let m = HgRepo::init(root, "hgmod");
    m.commit(
        &[
            ("go.mod", "module example.test/hgmod\n\ngo 1.21\n"),
            ("a.go", "package a\n"),
            ("LICENSE", "license text\n"),
            ("sub/go.mod", "module example.test/hgmod/sub\n"),
            ("sub/s.go", "package sub\n"),
        ],
        0,
        "first",
    );
    m.tag("v1.0.0", ".", 0);
    m.tag("sub/v0.1.0", "0", 0);
    m.commit(&[("a.go", "package a\n\nconst X = 1\n")], 1, "second");
    m.tag("v1.1.0-rc.1", ".", 1);
    m.commit(&[("a.go", "package a\n\nconst X = 2\n")], 2, "third");
    let third = m.node(".");
    m.hg(&["branch", "-q", "feature"]);
    m.commit(&[("b.go", "package a\n\nconst Y = 1\n")], 3, "feature work");
    m.hg(&["update", "-q", "default"]);
    m.commit(
        &[("sub/s.go", "package sub\n\nconst Z = 1\n")],
        4,
        "sub change",
    );
    let default_tip = m.node("default");
    let server = hg_serve(&m.dir);
    (m, server, third, default_tip)
}

fn hg_bench(name: &str, server: &Server) -> Bench {
    Bench::new(
        &[(
            &format!("/{name}"),
            &format!("example.test/{name} hg http://127.0.0.1:{}/", server.port),
        )],
        &[],
    )
}

/// Tags, branches and revisions of a Mercurial module. The Mercurial
/// cases are split over three tests so that they run side by side: every
/// hg command (ours and the go command's) starts a Python interpreter.
#[test]
fn mercurial_matches_the_go_command() {
    let root = tempfile::tempdir().unwrap();
    let (_m, server, third, default_tip) = hgmod_fixture(root.path());
    let bench = hg_bench("hgmod", &server);
    let q = |m: &'static str, s: &str| (m, s.to_string());
    let cases = [
        q("example.test/hgmod", "list"),
        q("example.test/hgmod", "latest"),
        q("example.test/hgmod", "v1.0.0"),
        q("example.test/hgmod", "v1.1.0-rc.1"),
        q("example.test/hgmod", "default"),
        q("example.test/hgmod", "feature"),
        q("example.test/hgmod", "tip"),
        q("example.test/hgmod", &third[..12]),
        q("example.test/hgmod", &default_tip),
        q("example.test/hgmod", "nosuchbranch"),
    ];
    bench.compare_all(&cases);
}

/// Pseudo-versions and a subdirectory module on Mercurial.
#[test]
fn mercurial_pseudo_versions_and_subdirectories_match_the_go_command() {
    let root = tempfile::tempdir().unwrap();
    let (_m, server, third, _) = hgmod_fixture(root.path());
    let bench = hg_bench("hgmod", &server);
    let q = |m: &'static str, s: &str| (m, s.to_string());
    let cases = [
        q(
            "example.test/hgmod",
            &format!("v1.1.0-rc.1.0.20240303120000-{}", &third[..12]),
        ),
        q(
            "example.test/hgmod",
            &format!("v1.0.1-0.20240303120000-{}", &third[..12]),
        ),
        q("example.test/hgmod/sub", "list"),
        q("example.test/hgmod/sub", "latest"),
        q("example.test/hgmod/sub", "v0.1.0"),
        q("example.test/hgmod/sub", "default"),
    ];
    bench.compare_all(&cases);
}

/// A Mercurial repository without go.mod whose v2+ tags are
/// `+incompatible`.
#[test]
fn mercurial_incompatible_versions_match_the_go_command() {
    let root = tempfile::tempdir().unwrap();
    let old = HgRepo::init(root.path(), "hgold");
    old.commit(&[("old.go", "package old\n")], 0, "one");
    old.tag("v1.0.0", ".", 0);
    old.commit(&[("old.go", "package old\n\n// v2\n")], 1, "two");
    old.tag("v2.0.0", ".", 1);
    old.commit(&[("old.go", "package old\n\n// v3\n")], 2, "three");
    old.tag("v3.1.0", ".", 2);
    old.commit(&[("old.go", "package old\n\n// after\n")], 3, "four");
    let server = hg_serve(&old.dir);
    let bench = hg_bench("hgold", &server);
    let q = |m: &'static str, s: &str| (m, s.to_string());
    let cases = [
        q("example.test/hgold", "list"),
        q("example.test/hgold", "latest"),
        q("example.test/hgold", "v1.0.0"),
        q("example.test/hgold", "v2.0.0+incompatible"),
        q("example.test/hgold", "v3.1.0+incompatible"),
        q("example.test/hgold", "v2.0.0"),
    ];
    bench.compare_all(&cases);
}

/// Without GOVCS allowing it, a public Subversion or Fossil module is
/// refused (the default allows only git and hg for public paths), and the
/// go command refuses it too.
#[test]
fn default_govcs_refuses_public_svn() {
    let bench = Bench::new(
        &[("/svnmod", "example.test/svnmod svn http://127.0.0.1:9/svn")],
        &[],
    );
    let go = bench
        .oracle
        .download("example.test/svnmod", "latest")
        .unwrap();
    assert!(!go.is_ok());
    assert!(go.error.contains("GOVCS"), "{}", go.error);
    let ours = bench
        .rt
        .block_on(bench.fetcher.latest("example.test/svnmod"))
        .unwrap_err();
    assert_eq!(ours.kind(), FailureKind::Forbidden, "{ours}");
}

/// Bazaar is gone from the go command (1.27 knows no `bzr`): a go-import
/// tag naming it fails there, even where GOVCS allows every tool, and here
/// it is "not found" (a 404, so a go client may fall through).
#[test]
fn bazaar_is_unknown_as_in_the_go_command() {
    let bench = Bench::new(
        &[("/bzrmod", "example.test/bzrmod bzr http://127.0.0.1:9/bzr")],
        &[("GOVCS", "*:all")],
    );
    let go = bench
        .oracle
        .download("example.test/bzrmod", "latest")
        .unwrap();
    assert!(!go.is_ok());
    assert!(go.error.contains("unknown vcs \"bzr\""), "{}", go.error);
    let ours = bench
        .rt
        .block_on(bench.fetcher.latest("example.test/bzrmod"))
        .unwrap_err();
    assert_eq!(ours.kind(), FailureKind::NotFound, "{ours}");
    assert!(bench.meta.hits() > 0, "the meta server was never asked");
}

/// A free loopback port (bound, then released for the server to take; a
/// collision makes the server fail to start and the caller retry).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`; false if `child`
/// exits first or the wait times out.
fn wait_listening(child: &mut Child, port: u16) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < START_TIMEOUT {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Starts the server `make(port)` builds on a free port, retrying on a
/// port taken in between.
fn start_on_free_port(make: impl Fn(u16) -> Command) -> Server {
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = make(port);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("starting server");
        if wait_listening(&mut child, port) {
            return Server { child, port };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("server did not start");
}

/// A Subversion repository (trunk and tags) served by `svnserve` with
/// anonymous write access, built through the server.
fn svn_fixture(root: &Path) -> Server {
    let repos = root.join("svnroot");
    std::fs::create_dir_all(&repos).unwrap();
    run(&repos, &["svnadmin", "create", "repo"], &[]);
    write(
        &repos.join("repo/conf/svnserve.conf"),
        "[general]\nanon-access = write\n",
    );
    let server = start_on_free_port(|port| {
        let mut cmd = Command::new("svnserve");
        cmd.args(["-d", "--foreground", "--listen-host", "127.0.0.1"])
            .args(["--listen-port", &port.to_string(), "-r"])
            .arg(&repos);
        cmd
    });
    let url = format!("svn://127.0.0.1:{}/repo", server.port);
    let config = root.join("svnconfig");
    let config_text = config.display().to_string();
    let svn = |dir: &Path, args: &[&str]| {
        let mut all = vec!["svn", "--config-dir", &config_text, "--non-interactive"];
        all.extend_from_slice(args);
        run(dir, &all, &[])
    };
    svn(
        root,
        &[
            "mkdir",
            "-q",
            "--parents",
            "-m",
            "layout",
            &format!("{url}/trunk"),
            &format!("{url}/tags"),
        ],
    );
    let wc = root.join("svnwc");
    svn(
        root,
        &[
            "checkout",
            "-q",
            &format!("{url}/trunk"),
            wc.to_str().unwrap(),
        ],
    );
    write(&wc.join("go.mod"), "module example.test/svnmod\n");
    write(&wc.join("a.go"), "package a\n");
    write(&wc.join("LICENSE"), "license\n");
    write(&wc.join("sub/go.mod"), "module example.test/svnmod/sub\n");
    write(&wc.join("sub/s.go"), "package sub\n");
    svn(&wc, &["add", "-q", "go.mod", "a.go", "LICENSE", "sub"]);
    svn(&wc, &["commit", "-q", "-m", "one"]);
    svn(
        &wc,
        &[
            "copy",
            "-q",
            "-m",
            "tag",
            &format!("{url}/trunk"),
            &format!("{url}/tags/v1.0.0"),
        ],
    );
    write(&wc.join("a.go"), "package a\n\nconst X = 2\n");
    svn(&wc, &["commit", "-q", "-m", "two"]);
    server
}

/// Subversion: `latest`, revision numbers, the pseudo-versions they make
/// (svn revisions never have tagged versions for the go command: `svn list`
/// names tags with a trailing slash), and a subdirectory module.
#[test]
fn subversion_matches_the_go_command() {
    let root = tempfile::tempdir().unwrap();
    let server = svn_fixture(root.path());
    let bench = Bench::new(
        &[(
            "/svnmod",
            &format!(
                "example.test/svnmod svn svn://127.0.0.1:{}/repo/trunk",
                server.port
            ),
        )],
        &[("GOVCS", "*:all")],
    );
    let latest = bench
        .oracle
        .download("example.test/svnmod", "latest")
        .unwrap();
    assert!(latest.is_ok(), "{}", latest.error);
    let q = |m: &'static str, s: &str| (m, s.to_string());
    let cases = [
        q("example.test/svnmod", "list"),
        q("example.test/svnmod", "latest"),
        q("example.test/svnmod", "v1.0.0"),
        q("example.test/svnmod", "2"),
        q("example.test/svnmod", "3"),
        q("example.test/svnmod", "4"),
        q("example.test/svnmod", "99"),
        q("example.test/svnmod", &latest.version),
        q("example.test/svnmod/sub", "latest"),
        q("example.test/svnmod/sub", "2"),
    ];
    bench.compare_all(&cases);
}

/// A Fossil repository served by `fossil server`, with a tag the go
/// command resolves by name (though it lists none) and a later check-in.
fn fossil_fixture(root: &Path) -> Server {
    let work = root.join("fossilwc");
    std::fs::create_dir_all(&work).unwrap();
    let repo = root.join("repo.fossil");
    let repo_text = repo.display().to_string();
    let env = [("USER", "gopher")];
    let fossil = |args: &[&str]| {
        let mut all = vec!["fossil"];
        all.extend_from_slice(args);
        run(&work, &all, &env)
    };
    fossil(&[
        "init",
        "-A",
        "gopher",
        "--date-override",
        "2024-02-01 12:00:00",
        &repo_text,
    ]);
    fossil(&["open", "-f", &repo_text]);
    write(&work.join("go.mod"), "module example.test/fosmod\n");
    write(&work.join("a.go"), "package a\n");
    write(&work.join("sub/go.mod"), "module example.test/fosmod/sub\n");
    write(&work.join("sub/s.go"), "package sub\n");
    fossil(&["add", "go.mod", "a.go", "sub"]);
    fossil(&[
        "commit",
        "-m",
        "one",
        "--no-warnings",
        "--date-override",
        "2024-03-01 12:00:00",
        "--tag",
        "v1.0.0",
    ]);
    write(&work.join("a.go"), "package a\n\nconst X = 2\n");
    fossil(&[
        "commit",
        "-m",
        "two",
        "--no-warnings",
        "--date-override",
        "2024-03-02 12:00:00",
    ]);
    start_on_free_port(|port| {
        let mut cmd = Command::new("fossil");
        cmd.args(["server", "--localhost", "--port", &port.to_string()])
            .arg(&repo)
            .env("USER", "gopher");
        cmd
    })
}

/// Fossil: `latest` (the trunk tip), a tag asked for by name, a commit
/// hash, and a subdirectory module.
#[test]
fn fossil_matches_the_go_command() {
    let root = tempfile::tempdir().unwrap();
    let server = fossil_fixture(root.path());
    let bench = Bench::new(
        &[(
            "/fosmod",
            &format!(
                "example.test/fosmod fossil http://127.0.0.1:{}/",
                server.port
            ),
        )],
        &[("GOVCS", "*:all"), ("USER", "gopher")],
    );
    let latest = bench
        .oracle
        .download("example.test/fosmod", "latest")
        .unwrap();
    assert!(latest.is_ok(), "{}", latest.error);
    let tagged = bench
        .oracle
        .download("example.test/fosmod", "v1.0.0")
        .unwrap();
    assert!(tagged.is_ok(), "{}", tagged.error);
    let q = |m: &'static str, s: &str| (m, s.to_string());
    let cases = [
        q("example.test/fosmod", "list"),
        q("example.test/fosmod", "latest"),
        q("example.test/fosmod", "v1.0.0"),
        q("example.test/fosmod", "trunk"),
        q("example.test/fosmod", "nosuchtag"),
        q("example.test/fosmod", &latest.version),
        q("example.test/fosmod/sub", "latest"),
    ];
    bench.compare_all(&cases);
}

/// An hg server that accepts connections and never answers: the fetch
/// stops at its deadline (hg is killed) instead of hanging.
#[test]
fn a_stalled_server_is_cut_off_at_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    let mut bench = Bench::new(
        &[(
            "/stall",
            &format!("example.test/stall hg http://127.0.0.1:{port}/"),
        )],
        &[],
    );
    bench.fetcher = bench
        .fetcher
        .clone()
        .with_timeout(Some(Duration::from_secs(30)));
    let err = bench
        .rt
        .block_on(bench.fetcher.latest("example.test/stall"))
        .unwrap_err();
    assert_eq!(err.kind(), FailureKind::Timeout, "{err}");
    assert!(!held.lock().unwrap().is_empty(), "hg never connected");
}

/// Without the tool, the error names it.
#[test]
fn a_missing_tool_is_named() {
    let bench = Bench::new(
        &[("/nohg", "example.test/nohg hg http://127.0.0.1:9/")],
        &[],
    );
    let fetcher = bench
        .fetcher
        .clone()
        .with_command_env(&["PATH=/nonexistent-athens-test"]);
    let err = bench
        .rt
        .block_on(fetcher.latest("example.test/nohg"))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("the hg command is not installed"), "{text}");
}
