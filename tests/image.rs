//! The container image end to end: `scripts/image.sh` builds the OCI
//! layout (with the quick `image-test` profile of the same static build),
//! umoci checks and unpacks it into an empty root, and the image's own
//! entrypoint runs there, chrooted as the image's user, with nothing from
//! the host: no shared libraries, no NSS configuration, no go binary. The
//! go client then downloads and builds a fixture module through it; the
//! repository's host name is known only from the root's /etc/hosts, so the
//! binary's own resolver has to read it.
//!
//! Needs root (for chroot and the layer's file owners) and umoci; both are
//! there in CI (scripts/test.sh installs umoci). Without them this test
//! fails, saying what is missing.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{bare_clone, build_repo, direct_client, download_ok, go_ok, http_get, proxy_client};

const LIB: &str = "github.com/acme/e2e-lib";
/// Resolved only through the unpacked root's /etc/hosts.
const GIT_HOST: &str = "git.athens-image.test";
/// How long the unpacked server may take to answer /healthz.
const START_LIMIT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_root_and_umoci() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the image test needs root: it chroots into the unpacked image and \
         keeps the layer's file owners"
    );
    let found = Command::new("umoci").arg("--version").output();
    assert!(
        found.as_ref().is_ok_and(|o| o.status.success()),
        "umoci is not installed (scripts/test.sh installs it: apt-get install umoci): {found:?}"
    );
}

/// The image's process as umoci's runtime bundle describes it.
struct ImageProcess {
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: String,
    uid: u32,
    gid: u32,
}

fn image_process(bundle: &Path) -> ImageProcess {
    let text = std::fs::read_to_string(bundle.join("config.json")).expect("bundle config.json");
    let spec: serde_json::Value = serde_json::from_str(&text).expect("bundle config.json is JSON");
    let process = &spec["process"];
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|s| s.as_str().expect("string").to_string())
            .collect()
    };
    ImageProcess {
        args: strings(&process["args"]),
        env: strings(&process["env"])
            .into_iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
            .collect(),
        cwd: process["cwd"].as_str().expect("cwd").to_string(),
        uid: process["user"]["uid"].as_u64().expect("uid") as u32,
        gid: process["user"]["gid"].as_u64().expect("gid") as u32,
    }
}

/// The unpacked image's server, killed when dropped.
struct ChrootedServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl ChrootedServer {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ChrootedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- image server log ---\n{}", self.log_text());
        }
    }
}

/// A program found on the host's PATH: the child's environment is the
/// image's, whose PATH (`/bin`) is no place to look for chroot.
fn host_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

/// Starts the image's entrypoint in `rootfs` as the image's user, with the
/// image's environment plus `extra`; retries on another port if the chosen
/// one was taken meanwhile.
fn start_in_root(
    rootfs: &Path,
    process: &ImageProcess,
    extra: &[(&str, String)],
    log: &Path,
) -> ChrootedServer {
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log_file = std::fs::File::create(log).expect("server log");
        let mut cmd = Command::new(host_program("chroot"));
        cmd.arg(format!("--userspec={}:{}", process.uid, process.gid))
            .arg(rootfs)
            .args(&process.args)
            .env_clear()
            .envs(process.env.iter().map(|(k, v)| (k, v)))
            .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file);
        let child = cmd.spawn().expect("spawning chroot");
        let mut server = ChrootedServer {
            child,
            port,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok((200, _)) = http_get(port, "/healthz") {
                return server;
            }
            if server.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                last_log = server.log_text();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("the image's server did not start; last log:\n{last_log}");
}

#[test]
fn image_runs_in_an_empty_root_and_serves_the_go_client() {
    require_root_and_umoci();
    let scratch = tempfile::Builder::new()
        .prefix("athens-image-test-")
        .tempdir()
        .expect("scratch");
    let layout = scratch.path().join("layout");
    let mut image_sh = Command::new("bash");
    image_sh
        .arg(repo_root().join("scripts/image.sh"))
        .env("ATHENS_STATIC_PROFILE", "image-test")
        .env("ATHENS_IMAGE_DIR", &layout);
    // The variables cargo sets for a test (CARGO_MANIFEST_DIR, CARGO_PKG_*,
    // OUT_DIR, ...) would reach the build scripts that watch them (ring's
    // does) and rebuild ring and all that depends on it, here and again in
    // the next build from a shell (scripts/test.sh builds the binary
    // beforehand); the build sees the environment a shell has.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let keep = ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_JOBS"];
        if (name.starts_with("CARGO_") && !keep.contains(&name.as_ref())) || name == "OUT_DIR" {
            image_sh.env_remove(name.as_ref());
        }
    }
    run(&mut image_sh, "scripts/image.sh");

    // umoci verifies every digest and size on the way.
    let bundle = scratch.path().join("bundle");
    run(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle),
        "umoci unpack",
    );
    let rootfs = bundle.join("rootfs");
    let process = image_process(&bundle);
    assert_eq!(process.args[0], "/bin/athens");
    assert_eq!((process.uid, process.gid), (1000, 1000));
    // chroot(1) starts in the new root's `/`, not in the image's working
    // directory; the entrypoint's arguments name the configuration by its
    // absolute path, so nothing depends on it.
    assert_eq!(process.cwd, "/var/lib/athens");
    assert_eq!(process.args[1], "-config_file=/etc/athens/config.toml");

    // The image holds exactly what it should: no shell, no libraries.
    let listing = run(
        Command::new("find")
            .arg(".")
            .arg("-printf")
            .arg("%p %U %m\n")
            .current_dir(&rootfs),
        "find",
    );
    let mut entries: Vec<&str> = listing.lines().collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            ". 0 755",
            "./bin 0 755",
            "./bin/athens 0 755",
            "./etc 0 755",
            "./etc/athens 0 755",
            "./etc/athens/config.toml 0 644",
            "./etc/group 0 644",
            "./etc/passwd 0 644",
            "./etc/ssl 0 755",
            "./etc/ssl/certs 0 755",
            "./etc/ssl/certs/ca-certificates.crt 0 644",
            "./tmp 0 1777",
            "./var 0 755",
            "./var/lib 0 755",
            "./var/lib/athens 1000 755",
        ]
    );
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.lines().any(|l| l.starts_with("athens:x:1000:1000:")),
        "{passwd}"
    );
    let binary = rootfs.join("bin/athens");
    let program_headers = run(
        Command::new("readelf").arg("-lW").arg(&binary),
        "readelf -l",
    );
    assert!(!program_headers.contains("INTERP"), "{program_headers}");
    let dynamic = run(
        Command::new("readelf").arg("-dW").arg(&binary),
        "readelf -d",
    );
    assert!(!dynamic.contains("(NEEDED)"), "{dynamic}");

    // The fixture repository over smart HTTP, under a name only the root's
    // hosts file knows. What a container runtime would mount: /etc/hosts
    // and /etc/resolv.conf (a name server on loopback that is not there,
    // so nothing leaves the machine); no nsswitch.conf.
    let repo = build_repo("e2e-lib");
    let served = scratch.path().join("srv");
    std::fs::create_dir_all(&served).expect("srv");
    bare_clone(&repo, &served, "e2e-lib");
    let git = fixtures::GitHttpServer::start(served);
    let git_url = git.url("e2e-lib.git");
    let git_port = git_url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .nth(1)
        .expect("port in the git server's URL")
        .to_string();
    std::fs::write(
        rootfs.join("etc/hosts"),
        format!("127.0.0.1 localhost\n127.0.0.1 {GIT_HOST}\n"),
    )
    .expect("hosts");
    // reqwest's resolver (hickory, looking up AAAA and A together) asks
    // the name server for the AAAA record even of a name the hosts file
    // knows, and waits for the answer: with no name server that is
    // hickory's timeout, 5 s twice for every connection unless
    // resolv.conf says otherwise. One second, once, keeps the test short.
    std::fs::write(
        rootfs.join("etc/resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .expect("resolv.conf");
    assert!(!rootfs.join("etc/nsswitch.conf").exists());
    // The device nodes every OCI runtime creates in a container's /dev. The
    // binary needs /dev/urandom: in a static binary the getrandom crate
    // cannot look the getrandom(2) wrapper up at run time and reads the
    // device instead.
    std::fs::create_dir(rootfs.join("dev")).expect("dev");
    for (name, minor) in [("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)] {
        run(
            Command::new(host_program("mknod"))
                .args(["-m", "666"])
                .arg(rootfs.join("dev").join(name))
                .args(["c", "1", &minor.to_string()]),
            "mknod",
        );
    }
    std::fs::write(
        rootfs.join("tmp/gitconfig"),
        format!(
            "[url \"http://{GIT_HOST}:{git_port}/e2e-lib.git\"]\n\tinsteadOf = https://{LIB}\n"
        ),
    )
    .expect("gitconfig");
    let go_env =
        "GIT_CONFIG_GLOBAL=/tmp/gitconfig; GIT_CONFIG_NOSYSTEM=1; GOPROXY=direct; GOSUMDB=off";

    let server = start_in_root(
        &rootfs,
        &process,
        &[("ATHENS_GO_BINARY_ENV_VARS", go_env.to_string())],
        &scratch.path().join("athens.log"),
    );
    let proxy = format!("http://127.0.0.1:{}", server.port);
    let (status, _) = http_get(server.port, "/readyz").expect("GET /readyz");
    assert_eq!(status, 200);

    let direct = direct_client(&[("e2e-lib", repo.path())]);
    let want = download_ok(&direct, LIB, "v1.1.0");

    let app = tempfile::tempdir().expect("app dir");
    std::fs::write(
        app.path().join("go.mod"),
        format!("module example.com/imageapp\n\ngo 1.21\n\nrequire {LIB} v1.1.0\n"),
    )
    .expect("go.mod");
    std::fs::write(
        app.path().join("main.go"),
        format!(
            "package main\n\nimport lib \"{LIB}\"\n\nfunc main() {{ println(lib.Greeting()) }}\n"
        ),
    )
    .expect("main.go");
    let client = proxy_client(&proxy);
    let program = app.path().join("imageapp");
    go_ok(
        &client,
        app.path(),
        &["build", "-o", &program.display().to_string(), "."],
        &[("GOFLAGS", "-modcacherw -mod=mod"), ("GOSUMDB", "off")],
    );
    let go_sum = std::fs::read_to_string(app.path().join("go.sum")).expect("go.sum");
    assert!(
        go_sum
            .lines()
            .any(|l| l == format!("{LIB} v1.1.0 {}", want.sum)),
        "go.sum through the image differs from direct mode ({}):\n{go_sum}",
        want.sum
    );
    let ran = Command::new(&program)
        .output()
        .expect("running the program");
    assert!(ran.status.success());
    assert_eq!(String::from_utf8_lossy(&ran.stderr), "lib v1.1.0\n");

    // The module went to the image's writable data directory, as its user.
    let stored = rootfs.join("var/lib/athens").join(LIB).join("v1.1.0");
    assert!(stored.join("go.mod").is_file(), "{}", server.log_text());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&stored).expect("stored").uid(), 1000);
    assert!(git.pack_fetches() >= 1);
}
