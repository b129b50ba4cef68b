//! End to end against the real binary, with the go command as the oracle:
//! GOAUTH's `git DIR`, authenticator-command and list forms in front of an
//! https module proxy (GOPROXY) that answers 401 without credentials. For
//! each GOAUTH the server and `go mod download` must agree on success or
//! refusal; the authenticator is run with the same arguments and input by
//! both; no credential shows in the server's log or answers.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fixtures::oracle::GoOracle;
use support::{http_get, write_gitconfig, Server, ServerSetup};

const MODULE: &str = "example.com/private";
const VERSION: &str = "v1.0.0";
const GO_MOD: &[u8] = b"module example.com/private\n\ngo 1.21\n";
const TOKEN: &str = "Bearer tok-Gr4nted";
const USER: &str = "robot";
const PASSWORD: &str = "pa55-W0rd";
/// base64("robot:pa55-W0rd")
const BASIC: &str = "Basic cm9ib3Q6cGE1NS1XMHJk";

/// An https module proxy on 127.0.0.1 serving one module version only to
/// requests carrying one of the accepted `Authorization` values; anything
/// else gets 401 with a `WWW-Authenticate` challenge.
struct ProtectedProxy {
    port: u16,
    /// Where authorized zip requests are redirected, when set.
    zip_redirect: Arc<Mutex<Option<String>>>,
    /// The request heads received.
    heads: Arc<Mutex<Vec<String>>>,
}

impl ProtectedProxy {
    /// With no `accepted` value, every request is served.
    fn start(tls: Arc<rustls::ServerConfig>, accepted: &[&str]) -> ProtectedProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let allowed: Vec<String> = accepted.iter().map(|s| s.to_string()).collect();
        let zip_redirect: Arc<Mutex<Option<String>>> = Arc::default();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let (redirect, seen) = (zip_redirect.clone(), heads.clone());
        // The thread ends with the test process; it holds no child process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (tls, allowed) = (tls.clone(), allowed.clone());
                let (redirect, seen) = (redirect.clone(), seen.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                    let Ok(conn) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let mut tls_stream = rustls::StreamOwned::new(conn, stream);
                    let redirect = redirect.lock().unwrap().clone();
                    answer(&mut tls_stream, &allowed, redirect.as_deref(), &seen);
                    tls_stream.conn.send_close_notify();
                    let _ = tls_stream.flush();
                });
            }
        });
        ProtectedProxy {
            port,
            zip_redirect,
            heads,
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

fn answer(
    stream: &mut (impl Read + Write),
    accepted: &[String],
    zip_redirect: Option<&str>,
    heads: &Mutex<Vec<String>>,
) {
    let Some(head) = support::read_request_head(stream) else {
        return;
    };
    let head = String::from_utf8_lossy(&head).to_string();
    heads.lock().unwrap().push(head.clone());
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let auth = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_string())
    });
    let zip_path = format!("/{MODULE}/@v/{VERSION}.zip");
    let (status, extra, body) =
        if !accepted.is_empty() && !auth.is_some_and(|a| accepted.contains(&a)) {
            (
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"modules\"\r\n".to_string(),
                b"credentials wanted".to_vec(),
            )
        } else if let Some(base) = zip_redirect.filter(|_| path == zip_path) {
            (
                "302 Found",
                format!("Location: {base}{path}\r\n"),
                Vec::new(),
            )
        } else if path == format!("/{MODULE}/@v/{VERSION}.info") {
            let info = format!(r#"{{"Version":"{VERSION}","Time":"2024-01-02T03:04:05Z"}}"#);
            ("200 OK", String::new(), info.into_bytes())
        } else if path == format!("/{MODULE}/@v/{VERSION}.mod") {
            ("200 OK", String::new(), GO_MOD.to_vec())
        } else if path == format!("/{MODULE}/@v/{VERSION}.zip") {
            let names = [
                format!("{MODULE}@{VERSION}/go.mod"),
                format!("{MODULE}@{VERSION}/p.go"),
            ];
            let zip = fixtures::rawzip::stored_zip(&[
                (names[0].as_str(), GO_MOD),
                (names[1].as_str(), b"package private\n"),
            ]);
            ("200 OK", String::new(), zip)
        } else {
            ("404 Not Found", String::new(), b"not found".to_vec())
        };
    let out = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n{extra}\r\n",
        body.len()
    );
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

struct World {
    dir: tempfile::TempDir,
    cert: PathBuf,
    proxy: ProtectedProxy,
    tls: Arc<rustls::ServerConfig>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("athens-goauth-")
            .tempdir()
            .expect("tempdir");
        let (cert, tls) = fixtures::services::loopback_tls(dir.path()).expect("loopback TLS");
        let proxy = ProtectedProxy::start(tls.clone(), &[TOKEN, BASIC]);
        World {
            dir,
            cert,
            proxy,
            tls,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An authenticator script: without a URL it prints nothing; with one
    /// it prints `header` for the proxy. Each run appends its argument
    /// count, the URL and the first line of its input to `log`.
    fn authenticator(&self, name: &str, header: &str, log: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(name);
        let script = format!(
            "#!/bin/sh\n\
             first=$(head -n 1)\n\
             echo \"$#|$1|$first\" >> '{log}'\n\
             [ $# -eq 0 ] && exit 0\n\
             printf '{base}\\n\\n{header}\\n\\n'\n",
            log = log.display(),
            base = self.proxy.url(),
        );
        std::fs::write(&path, script).expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// A git working directory whose `store` credential helper holds the
    /// proxy's user and password.
    fn git_dir(&self) -> PathBuf {
        let dir = self.path("gitdir");
        if dir.exists() {
            return dir;
        }
        std::fs::create_dir_all(&dir).expect("gitdir");
        let store = self.path("git-credentials");
        std::fs::write(
            &store,
            format!("https://{USER}:{PASSWORD}@127.0.0.1:{}\n", self.proxy.port),
        )
        .expect("store");
        for args in [
            vec!["init".to_string(), "-q".to_string()],
            vec![
                "config".to_string(),
                "credential.helper".to_string(),
                format!("store --file={}", store.display()),
            ],
        ] {
            let status = Command::new("git")
                .args(&args)
                .current_dir(&dir)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", self.dir.path())
                .status()
                .expect("git");
            assert!(status.success(), "git {args:?}");
        }
        dir
    }

    /// Whether `go mod download` of the module succeeds with `goauth`.
    fn go_downloads(&self, goauth: &str) -> bool {
        let mut go = GoOracle::new().expect("go client");
        go.set_proxy(&self.proxy.url());
        go.set_env("GOAUTH", goauth);
        go.set_env("SSL_CERT_FILE", &self.cert.display().to_string());
        let got = go.download(MODULE, VERSION).expect("go mod download");
        got.is_ok()
    }

    /// The server with `goauth` in its GoBinaryEnvVars (written to a
    /// config file, since a GOAUTH list holds the `;` that separates the
    /// environment variable's entries).
    fn athens(&self, goauth: &str) -> Server {
        let gitconfig = self.path("gitconfig");
        write_gitconfig(&gitconfig, &[]);
        static CONFIGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = CONFIGS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let config = self.path(&format!("athens-{n}.toml"));
        let vars = [
            format!("GOPROXY={}", self.proxy.url()),
            "GOSUMDB=off".to_string(),
            format!("GIT_CONFIG_GLOBAL={}", gitconfig.display()),
            "GIT_CONFIG_NOSYSTEM=1".to_string(),
            format!("SSL_CERT_FILE={}", self.cert.display()),
            format!("GOAUTH={goauth}"),
        ];
        let quoted: Vec<String> = vars.iter().map(|v| format!("{v:?}")).collect();
        std::fs::write(
            &config,
            format!("GoBinaryEnvVars = [{}]\n", quoted.join(", ")),
        )
        .expect("config");
        let mut setup = ServerSetup::memory(&gitconfig);
        setup
            .args
            .push(format!("-config_file={}", config.display()));
        // Empty: the configuration file's list stands.
        setup
            .extra_env
            .push(("ATHENS_GO_BINARY_ENV_VARS".into(), String::new()));
        setup
            .extra_env
            .push(("ATHENS_LOG_LEVEL".into(), "debug".into()));
        Server::start(&setup)
    }

    /// Whether the server serves the module's `.info` and `.zip`; nothing
    /// it logs or answers carries a credential.
    fn athens_serves(&self, server: &Server) -> bool {
        let mut served = true;
        for ext in ["info", "zip"] {
            let (status, body) =
                http_get(server.port(), &format!("/{MODULE}/@v/{VERSION}.{ext}")).expect("GET");
            assert_no_secret(&format!(".{ext} answer"), &String::from_utf8_lossy(&body));
            served &= status == 200;
        }
        assert_no_secret("the log", &server.log_text());
        served
    }
}

fn assert_no_secret(context: &str, text: &str) {
    for secret in [
        TOKEN,
        "tok-Gr4nted",
        PASSWORD,
        BASIC,
        "cm9ib3Q6cGE1NS1XMHJk",
    ] {
        assert!(
            !text.contains(secret),
            "{context} shows a credential:\n{text}"
        );
    }
}

/// Each run of an authenticator: argument count and the first line of its
/// input (the URL is checked apart: it is the same request's for both).
fn runs(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, '|');
            let (count, url, input) = (parts.next(), parts.next(), parts.next());
            assert!(
                url.is_some_and(|u| u.is_empty() || u.starts_with("https://127.0.0.1:")),
                "{line}"
            );
            format!("{}|{}", count.unwrap_or(""), input.unwrap_or(""))
        })
        .collect()
}

#[test]
fn an_authenticator_command_is_run_as_the_go_command_runs_it() {
    let w = World::new();
    let (go_log, athens_log) = (w.path("go-runs"), w.path("athens-runs"));
    let go_auth = w.authenticator("auth-go", &format!("Authorization: {TOKEN}"), &go_log);
    let athens_auth = w.authenticator(
        "auth-athens",
        &format!("Authorization: {TOKEN}"),
        &athens_log,
    );
    assert!(w.go_downloads(&go_auth.display().to_string()));
    let server = w.athens(&athens_auth.display().to_string());
    assert!(w.athens_serves(&server), "{}", server.log_text());
    // Primed once without a URL, then run with the URL and the 401.
    let expected = ["0|", "1|HTTP/1.1 401 Unauthorized"];
    assert_eq!(runs(&go_log), expected);
    assert_eq!(runs(&athens_log), expected);
}

#[test]
fn git_dir_uses_git_credential_fill_as_the_go_command_does() {
    let w = World::new();
    let goauth = format!("git {}", w.git_dir().display());
    assert!(w.go_downloads(&goauth));
    let server = w.athens(&goauth);
    assert!(w.athens_serves(&server), "{}", server.log_text());
}

#[test]
fn the_first_method_listed_wins_and_off_gives_nothing() {
    let w = World::new();
    let git = format!("git {}", w.git_dir().display());
    // An authenticator giving a wrong token for the same prefix.
    let wrong = w.authenticator(
        "wrong",
        "Authorization: Bearer wrong",
        &w.path("wrong-runs"),
    );
    for (goauth, works) in [
        (format!("{git}; {}", wrong.display()), true),
        (format!("{}; {git}", wrong.display()), false),
        ("off".to_string(), false),
    ] {
        assert_eq!(w.go_downloads(&goauth), works, "go with GOAUTH={goauth}");
        let server = w.athens(&goauth);
        assert_eq!(
            w.athens_serves(&server),
            works,
            "athens with GOAUTH={goauth}:\n{}",
            server.log_text()
        );
    }
}

/// The credentials an authenticator prints, whatever the header, stay with
/// the origin they were printed for: a redirect of the zip to another host
/// (port) gets none of them there, and the download still succeeds, as it
/// does for the go command. (The go command itself would forward headers
/// other than `Authorization`; the server does not.)
#[test]
fn credentials_do_not_follow_a_redirect_elsewhere() {
    let w = World::new();
    let elsewhere = ProtectedProxy::start(w.tls.clone(), &[]);
    *w.proxy.zip_redirect.lock().unwrap() = Some(elsewhere.url());
    let auth = w.authenticator(
        "auth",
        &format!("Authorization: {TOKEN}\\nX-Token: tok-Gr4nted"),
        &w.path("runs"),
    );
    let goauth = auth.display().to_string();
    assert!(w.go_downloads(&goauth));
    elsewhere.heads.lock().unwrap().clear();
    let server = w.athens(&goauth);
    assert!(w.athens_serves(&server), "{}", server.log_text());
    let heads = elsewhere.heads.lock().unwrap().clone();
    assert!(
        heads.iter().any(|h| h.contains(".zip")),
        "the zip was not fetched from the redirect target: {heads:?}"
    );
    for head in &heads {
        assert_no_secret("a request after the redirect", head);
    }
}
