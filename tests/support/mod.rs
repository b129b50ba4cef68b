//! Helpers for the end-to-end tests: the real `athens` binary as a child
//! process, a git smart-HTTP server that counts fetches, git configurations
//! that point module repositories at local copies, and go commands run
//! through the proxy or directly.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fixtures::{Download, FixtureRepo, GoOracle};

/// Where unreachable repositories are sent: a file URL that never exists,
/// so a fetch fails locally ("not found") instead of leaving the machine.
pub const NOWHERE: &str = "file:///nonexistent-athens-e2e/";

/// How much of the server's log a failing test prints.
const LOG_TAIL_LINES: usize = 40;

/// Builds the fixture repository `testdata/repos/NAME.tree`.
pub fn build_repo(name: &str) -> FixtureRepo {
    let tree = fixtures::load_repo_tree(name).unwrap_or_else(|e| panic!("{name}.tree: {e}"));
    FixtureRepo::build(&tree).unwrap_or_else(|e| panic!("building {name}: {e}"))
}

/// A git configuration file for the proxy: each `(repository name,
/// target URL)` pair serves `https://github.com/acme/NAME` from the target;
/// every other `github.com/acme` repository is sent to [`NOWHERE`].
pub fn write_gitconfig(path: &Path, remotes: &[(&str, String)]) {
    let mut text = String::from("[protocol \"file\"]\n\tallow = always\n");
    text.push_str(&format!(
        "[url \"{NOWHERE}\"]\n\tinsteadOf = https://github.com/acme/\n"
    ));
    for (name, target) in remotes {
        text.push_str(&format!(
            "[url \"{target}\"]\n\tinsteadOf = https://github.com/acme/{name}\n"
        ));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// A `file://` URL for a local repository.
pub fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerSetup {
    /// Disk storage root; memory storage when `None`.
    pub disk_root: Option<PathBuf>,
    /// The git configuration the server's fetcher reads.
    pub gitconfig: PathBuf,
    /// More `ATHENS_*` variables.
    pub extra_env: Vec<(String, String)>,
    /// Command-line arguments (such as `-config_file=PATH`).
    pub args: Vec<String>,
}

impl ServerSetup {
    /// Disk storage under `root`, repositories as `gitconfig` says.
    pub fn disk(root: &Path, gitconfig: &Path) -> ServerSetup {
        ServerSetup {
            disk_root: Some(root.to_path_buf()),
            gitconfig: gitconfig.to_path_buf(),
            extra_env: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Memory storage, repositories as `gitconfig` says.
    pub fn memory(gitconfig: &Path) -> ServerSetup {
        ServerSetup {
            disk_root: None,
            gitconfig: gitconfig.to_path_buf(),
            extra_env: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// A running `athens` binary, killed when dropped (also while a failing
/// test unwinds, when its log is printed to help diagnose the failure).
pub struct Server {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    // Private HOME, working directory and GoGetDir; removed after the kill.
    _scratch: tempfile::TempDir,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

impl Server {
    /// Starts the binary and waits until `/healthz` answers. A port taken
    /// between choosing and binding it makes the child exit; then another
    /// port is tried.
    pub fn start(setup: &ServerSetup) -> Server {
        let mut last_log = String::new();
        for _ in 0..3 {
            match Server::try_start(setup) {
                Ok(server) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("athens did not start; last log:\n{last_log}");
    }

    fn try_start(setup: &ServerSetup) -> Result<Server, String> {
        let scratch = tempfile::Builder::new()
            .prefix("athens-e2e-server-")
            .tempdir()
            .expect("server scratch dir");
        let home = scratch.path().join("home");
        let goget = scratch.path().join("goget");
        for dir in [&home, &goget] {
            std::fs::create_dir_all(dir).expect("server dirs");
        }
        let log = scratch.path().join("athens.log");
        let log_file = std::fs::File::create(&log).expect("server log");
        let port = free_port();
        let go_env = format!(
            "GIT_CONFIG_GLOBAL={}; GIT_CONFIG_NOSYSTEM=1; GOPROXY=direct; GOSUMDB=off",
            setup.gitconfig.display()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_athens"));
        cmd.args(&setup.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
            .env("ATHENS_GOGET_DIR", &goget)
            .env("ATHENS_GO_BINARY_ENV_VARS", go_env)
            .env("ATHENS_LOG_LEVEL", "info")
            .current_dir(scratch.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        match &setup.disk_root {
            Some(root) => cmd
                .env("ATHENS_STORAGE_TYPE", "disk")
                .env("ATHENS_DISK_STORAGE_ROOT", root),
            None => cmd.env("ATHENS_STORAGE_TYPE", "memory"),
        };
        if let Some(tmp) = std::env::var_os("TMPDIR") {
            cmd.env("TMPDIR", tmp);
        }
        for (key, value) in &setup.extra_env {
            cmd.env(key, value);
        }
        let child = cmd.spawn().expect("spawning athens");
        let mut server = Server {
            child: Some(child),
            port,
            log,
            _scratch: scratch,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http_get(port, "/healthz") {
                return Ok(server);
            }
            let exited = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() {
                return Err(server.raw_log_text());
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        Err(format!(
            "no /healthz answer in 60s\n{}",
            server.raw_log_text()
        ))
    }

    /// The proxy's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything the server has logged up to now. Request lines are
    /// written by a background thread, so this first sends a request with
    /// a unique id and waits until its line is in the file: the lines of
    /// every request answered before it are there too.
    pub fn log_text(&self) -> String {
        static SYNCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = format!(
            "log-sync-{}-{}",
            std::process::id(),
            SYNCS.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let synced = TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            write!(
                stream,
                "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAthens-Request-ID: {id}\r\nConnection: close\r\n\r\n"
            )?;
            stream.read_to_end(&mut Vec::new())
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.raw_log_text();
            // A server that is gone (or never answered) has written all
            // it will.
            if synced.is_err() || text.contains(&id) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log file as it is, without waiting for lines still buffered.
    pub fn raw_log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the server process is still running.
    #[allow(dead_code)]
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The server's process id.
    // Not every test file that includes this module signals the server.
    #[allow(dead_code)]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("server running")
    }

    /// Waits up to `limit` for the server to exit by itself; whether it did.
    #[allow(dead_code)]
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let child = self.child.as_mut().expect("server running");
            if child.try_wait().ok().flatten().is_some() {
                self.child = None;
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills the server and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            let log = self.raw_log_text();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("--- end of athens log ---\n{}", tail.join("\n"));
        }
    }
}

/// A plain HTTP/1.1 GET on 127.0.0.1: status and body (as received; the
/// tests only read bodies of short, unchunked answers).
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let status_line_end = raw.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
    let status_line = String::from_utf8_lossy(&raw[..status_line_end]).to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let body_start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(raw.len());
    Ok((status, raw[body_start..].to_vec()))
}

/// A go client with fresh caches whose only module source is `proxy`; its
/// git configuration knows no repositories, so nothing bypasses the proxy.
pub fn proxy_client(proxy: &str) -> GoOracle {
    let mut client = GoOracle::new().expect("go client");
    client.set_proxy(proxy);
    client
}

/// A go client in direct mode reading `repos` (repository name and local
/// path) in place of `https://github.com/acme/NAME`.
pub fn direct_client(repos: &[(&str, &Path)]) -> GoOracle {
    let mut client = GoOracle::new().expect("go client");
    for (name, path) in repos {
        client
            .add_remote(&format!("https://github.com/acme/{name}"), path)
            .expect("gitconfig");
    }
    client
}

/// `go mod download -json MODULE@QUERY`, which must succeed.
pub fn download_ok(client: &GoOracle, module: &str, query: &str) -> Download {
    let got = client
        .download(module, query)
        .unwrap_or_else(|e| panic!("go mod download {module}@{query}: {e}"));
    assert!(
        got.is_ok(),
        "go mod download {module}@{query} failed: {}",
        got.error
    );
    got
}

/// What the go command reports for one download, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Resolved version.
    pub version: String,
    /// `h1:` of the zip.
    pub sum: String,
    /// `h1:` of the go.mod.
    pub go_mod_sum: String,
}

impl From<&Download> for Answer {
    fn from(d: &Download) -> Answer {
        Answer {
            version: d.version.clone(),
            sum: d.sum.clone(),
            go_mod_sum: d.go_mod_sum.clone(),
        }
    }
}

/// Compares answers query by query and lists every difference at once.
pub fn assert_same_answers(
    context: &str,
    want: &BTreeMap<String, Answer>,
    got: &BTreeMap<String, Answer>,
) {
    let mut diffs = Vec::new();
    for (query, w) in want {
        match got.get(query) {
            Some(g) if g == w => {}
            Some(g) => diffs.push(format!("{query}: want {w:?}, got {g:?}")),
            None => diffs.push(format!("{query}: no answer")),
        }
    }
    assert!(diffs.is_empty(), "{context}:\n{}", diffs.join("\n"));
}

pub use fixtures::GitHttpServer;

/// A bare clone of `repo` at `dir/NAME.git`, for [`GitHttpServer`].
pub fn bare_clone(repo: &FixtureRepo, dir: &Path, name: &str) -> PathBuf {
    let target = dir.join(format!("{name}.git"));
    let out = Command::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args(["clone", "-q", "--bare"])
        .arg(repo.path())
        .arg(&target)
        .output()
        .expect("running git clone");
    assert!(
        out.status.success(),
        "git clone --bare: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target
}

/// Runs a go command (arguments after `go`) in `dir` with `client`'s
/// environment plus `env`; returns its combined output, panicking on
/// failure.
pub fn go_ok(client: &GoOracle, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = client.command();
    cmd.current_dir(dir).args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().expect("running go");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "go {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// Reads one HTTP request head (up to the blank line) byte by byte, so
/// nothing after it is consumed; `None` when the connection ends first.
#[allow(dead_code)]
pub fn read_request_head(stream: &mut impl std::io::Read) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

/// The largest resident set the process has had, in KiB.
#[allow(dead_code)]
pub fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}
