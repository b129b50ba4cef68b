//! End to end against the real binary: git over SSH. An sshd started by
//! the test on a loopback port (host and user keys made here with
//! ssh-keygen) serves bare repositories; the server reaches them through a
//! gitconfig `insteadOf` rule, with the ssh program configured by
//! `GIT_SSH_COMMAND` and an ssh config file (keys, known_hosts,
//! StrictHostKeyChecking). Covered: a key file, an ssh-agent
//! (`SSH_AUTH_SOCK`), scp-style and `ssh://` remotes, and a known_hosts
//! mismatch, which must be refused.
//!
//! Needs `sshd`, `ssh`, `ssh-keygen`, `ssh-agent` and `ssh-add`
//! (openssh-server and openssh-client, installed by scripts/test.sh); a
//! missing one fails the test with a message saying so.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{bare_clone, build_repo, direct_client, download_ok, http_get, Server, ServerSetup};

const LIB: &str = "github.com/acme/e2e-lib";
/// Long enough for sshd, ssh and the server on a loaded CI machine.
const START_LIMIT: Duration = Duration::from_secs(60);

fn require(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/bin", "/sbin"] {
        let path = Path::new(dir).join(program);
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "{program} is not installed: scripts/test.sh installs openssh-server and openssh-client"
    );
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes an ed25519 key pair at `path` (and `path.pub`) without a
/// passphrase; returns the public key line.
fn keygen(path: &Path) -> String {
    run(Command::new(require("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "athens-test", "-f"])
        .arg(path));
    std::fs::read_to_string(path.with_extension("pub"))
        .expect("public key")
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr")
        .port()
}

/// An sshd on a loopback port, as the current user, accepting one user key;
/// killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    /// The host's public key line (`ssh-ed25519 AAAA...`).
    host_public: String,
    log: PathBuf,
}

impl Sshd {
    fn start(dir: &Path, user_public: &str) -> Sshd {
        let sshd = require("sshd");
        let host_key = dir.join("host_key");
        let host_public = keygen(&host_key);
        let host_public = host_public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let authorized = dir.join("authorized_keys");
        std::fs::write(&authorized, format!("{user_public}\n")).expect("authorized_keys");
        // sshd run by root wants its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let mut last_log = String::new();
        for attempt in 0..5 {
            let port = free_port();
            let config = dir.join("sshd_config");
            let log = dir.join(format!("sshd-{attempt}.log"));
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\n\
                     AuthorizedKeysFile {}\nStrictModes no\nUsePAM no\n\
                     PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                     PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                     AcceptEnv GIT_PROTOCOL\nMaxStartups 100\nLogLevel VERBOSE\n",
                    host_key.display(),
                    dir.join("sshd.pid").display(),
                    authorized.display()
                ),
            )
            .expect("sshd_config");
            let child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("sshd log"))
                .spawn()
                .expect("spawning sshd");
            let mut server = Sshd {
                child,
                port,
                host_public: host_public.clone(),
                log: log.clone(),
            };
            let listening = format!("Server listening on 127.0.0.1 port {port}");
            let deadline = Instant::now() + START_LIMIT;
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains(&listening) {
                    return server;
                }
                if server.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    last_log = text;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // Port taken meanwhile, or too slow: try another port.
            let _ = server.child.kill();
        }
        panic!("sshd did not start:\n{last_log}");
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ssh-agent on a socket in the test's directory holding one key;
/// killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path, key: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new(require("ssh-agent"))
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning ssh-agent");
        let agent = Agent { child, socket };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let added = Command::new(require("ssh-add"))
                .arg(key)
                .env("SSH_AUTH_SOCK", &agent.socket)
                .stdin(Stdio::null())
                .output()
                .expect("running ssh-add");
            if added.status.success() {
                return agent;
            }
            assert!(
                Instant::now() < deadline,
                "ssh-add: {}",
                String::from_utf8_lossy(&added.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's world: an sshd serving `e2e-lib.git`, the client's keys
/// and ssh configuration, and the server's gitconfig.
struct World {
    dir: tempfile::TempDir,
    sshd: Sshd,
    user_key: PathBuf,
    served: PathBuf,
    user: String,
}

impl World {
    fn new() -> World {
        require("ssh");
        let dir = tempfile::Builder::new()
            .prefix("athens-ssh-")
            .tempdir()
            .expect("tempdir");
        let user_key = dir.path().join("user_key");
        let user_public = keygen(&user_key);
        let sshd = Sshd::start(dir.path(), &user_public);
        let served = dir.path().join("srv");
        std::fs::create_dir_all(&served).expect("srv");
        bare_clone(&build_repo("e2e-lib"), &served, "e2e-lib");
        let user = run(Command::new("id").arg("-un")).trim().to_string();
        World {
            dir,
            sshd,
            user_key,
            served,
            user,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A known_hosts file naming `key` for the test host.
    fn known_hosts(&self, name: &str, key: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(
            &path,
            format!(
                "[127.0.0.1]:{port} {key}\nsshtest {key}\n",
                port = self.sshd.port
            ),
        )
        .expect("known_hosts");
        path
    }

    /// An ssh config: host alias `sshtest` for the sshd, strict host key
    /// checking against `known_hosts`, and `identity` as the only key file
    /// (none: the agent's keys only).
    fn ssh_config(&self, name: &str, known_hosts: &Path, identity: Option<&Path>) -> PathBuf {
        let identity = match identity {
            Some(key) => format!("  IdentityFile {}\n  IdentitiesOnly yes\n", key.display()),
            None => "  IdentityFile none\n".to_string(),
        };
        let path = self.path(name);
        std::fs::write(
            &path,
            format!(
                "Host sshtest\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n\
                 Host *\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n\
                 StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 60\n{identity}",
                port = self.sshd.port,
                user = self.user,
                kh = known_hosts.display(),
            ),
        )
        .expect("ssh config");
        path
    }

    /// A gitconfig sending `https://github.com/acme/` to `base`.
    fn gitconfig(&self, name: &str, base: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(
            &path,
            format!("[url \"{base}\"]\n\tinsteadOf = https://github.com/acme/\n"),
        )
        .expect("gitconfig");
        path
    }

    /// The server with `gitconfig` and `GIT_SSH_COMMAND` using
    /// `ssh_config`, plus `env`.
    fn server(&self, gitconfig: &Path, ssh_config: &Path, env: &[(&str, &str)]) -> Server {
        let mut setup = ServerSetup::memory(gitconfig);
        setup.extra_env.push((
            "ATHENS_GO_BINARY_ENV_VARS".to_string(),
            format!(
                "GIT_CONFIG_GLOBAL={}; GIT_CONFIG_NOSYSTEM=1; GOPROXY=direct; GOSUMDB=off; \
                 GIT_SSH_COMMAND=ssh -F {}",
                gitconfig.display(),
                ssh_config.display()
            ),
        ));
        setup
            .extra_env
            .push(("ATHENS_TIMEOUT".to_string(), "120".to_string()));
        for (k, v) in env {
            setup.extra_env.push((k.to_string(), v.to_string()));
        }
        Server::start(&setup)
    }
}

/// GETs `path`, panicking with both logs unless it answers `want`.
fn get(server: &Server, sshd: &Sshd, path: &str, want: u16) -> Vec<u8> {
    let (status, body) = http_get(server.port(), path).expect("GET");
    assert_eq!(
        status,
        want,
        "{path}: {}\n--- athens log ---\n{}\n--- sshd log ---\n{}",
        String::from_utf8_lossy(&body),
        server.log_text(),
        sshd.log_text()
    );
    body
}

/// The version list, `.info`, `.mod` and `.zip` of e2e-lib at v1.0.0,
/// checked against the fixture; returns the zip's h1: hash.
fn assert_serves_lib(server: &Server, sshd: &Sshd) -> String {
    let list = get(server, sshd, &format!("/{LIB}/@v/list"), 200);
    let list = String::from_utf8_lossy(&list).into_owned();
    assert!(list.lines().any(|l| l == "v1.0.0"), "{list}");
    let info = get(server, sshd, &format!("/{LIB}/@v/v1.0.0.info"), 200);
    let info: serde_json::Value = serde_json::from_slice(&info).expect("info json");
    assert_eq!(info["Version"], "v1.0.0");
    let go_mod = get(server, sshd, &format!("/{LIB}/@v/v1.0.0.mod"), 200);
    assert!(go_mod.starts_with(b"module github.com/acme/e2e-lib\n"));
    let zip = get(server, sshd, &format!("/{LIB}/@v/v1.0.0.zip"), 200);
    let checked = modzip::zip::check_zip(
        &modzip::Version::new(LIB, "v1.0.0"),
        std::io::Cursor::new(&zip),
    )
    .expect("valid module zip");
    assert!(
        checked
            .valid
            .iter()
            .any(|f| f == &format!("{LIB}@v1.0.0/greet.go")),
        "{:?}",
        checked.valid
    );
    modzip::dirhash::hash_zip(std::io::Cursor::new(zip)).expect("zip hash")
}

#[test]
fn ssh_url_with_a_key_file_and_strict_known_hosts() {
    let w = World::new();
    let known = w.known_hosts("known_hosts", &w.sshd.host_public);
    let ssh_config = w.ssh_config("ssh_config", &known, Some(&w.user_key));
    // ssh:// with the port in the URL, the sshd's user named in it.
    let base = format!(
        "ssh://{}@127.0.0.1:{}{}/",
        w.user,
        w.sshd.port,
        w.served.display()
    );
    let gitconfig = w.gitconfig("gitconfig", &base);
    let server = w.server(&gitconfig, &ssh_config, &[]);
    let h1 = assert_serves_lib(&server, &w.sshd);
    // The same module as the go command downloads it from the fixture.
    let repo = build_repo("e2e-lib");
    let direct = direct_client(&[("e2e-lib", repo.path())]);
    assert_eq!(h1, download_ok(&direct, LIB, "v1.0.0").sum);
    // A repository the sshd does not have is a module that does not exist.
    get(&server, &w.sshd, "/github.com/acme/missing/@v/list", 404);
}

#[test]
fn scp_style_remote_through_an_ssh_agent() {
    let w = World::new();
    let agent = Agent::start(w.dir.path(), &w.user_key);
    // The key file is moved away: only the agent holds the key.
    std::fs::rename(&w.user_key, w.path("moved_key")).expect("moving key");
    let known = w.known_hosts("known_hosts", &w.sshd.host_public);
    let ssh_config = w.ssh_config("ssh_config", &known, None);
    let base = format!("sshtest:{}/", w.served.display());
    let gitconfig = w.gitconfig("gitconfig", &base);
    let socket = agent.socket.to_str().expect("socket path").to_string();
    let server = w.server(&gitconfig, &ssh_config, &[("SSH_AUTH_SOCK", &socket)]);
    assert_serves_lib(&server, &w.sshd);
    drop(agent);
}

#[test]
fn known_hosts_mismatch_is_refused() {
    let w = World::new();
    let impostor = keygen(&w.path("impostor_key"));
    let impostor = impostor
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let known = w.known_hosts("known_hosts", &impostor);
    let ssh_config = w.ssh_config("ssh_config", &known, Some(&w.user_key));
    let base = format!("sshtest:{}/", w.served.display());
    let gitconfig = w.gitconfig("gitconfig", &base);
    let server = w.server(&gitconfig, &ssh_config, &[]);
    let (status, body) = http_get(server.port(), &format!("/{LIB}/@v/v1.0.0.info")).expect("GET");
    assert!(
        status != 200,
        "a host with the wrong key was trusted: {status} {}",
        String::from_utf8_lossy(&body)
    );
    let log = server.log_text();
    assert!(
        log.contains("Host key verification failed")
            || log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "ssh's refusal is not reported:\n{log}"
    );
    // No session was opened: sshd never accepted the user's key.
    assert!(
        !w.sshd.log_text().contains("Accepted publickey"),
        "{}",
        w.sshd.log_text()
    );
}
