//! End to end against the real binary: git credentials as users configure
//! them. A git smart-HTTP server (git http-backend) wants basic
//! authentication for its repositories; the server reaches one through a
//! gitconfig `insteadOf` rule, and each way git finds credentials works:
//! user information in the insteadOf URL, `http.<url>.extraHeader`, the
//! `store` helper and a helper program. Without any, the same module is
//! refused. In every case the secret never shows in the server's log (at
//! debug level) or in any answer.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::path::{Path, PathBuf};

use support::{bare_clone, build_repo, http_get, GitHttpServer, Server, ServerSetup};

const LIB: &str = "github.com/acme/e2e-lib";
const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Tok3n";
/// base64("alice:s3cret-Tok3n")
const BASIC: &str = "YWxpY2U6czNjcmV0LVRvazNu";

struct World {
    dir: tempfile::TempDir,
    git: GitHttpServer,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("athens-credentials-")
            .tempdir()
            .expect("tempdir");
        let served = dir.path().join("srv");
        std::fs::create_dir_all(&served).expect("srv");
        bare_clone(&build_repo("e2e-lib"), &served, "e2e-lib");
        let git = GitHttpServer::with_credentials(served, USER, PASSWORD);
        World { dir, git }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `http://127.0.0.1:PORT/private/e2e-lib.git`, with `userinfo@` when
    /// given.
    fn remote(&self, userinfo: Option<&str>) -> String {
        let url = self.git.url("private/e2e-lib.git");
        match userinfo {
            Some(info) => url.replacen("http://", &format!("http://{info}@"), 1),
            None => url,
        }
    }

    /// The server with a gitconfig sending the module to `remote`, plus
    /// `more` gitconfig text; logging at debug level.
    fn server(&self, remote: &str, more: &str) -> Server {
        let gitconfig = self.path("gitconfig");
        std::fs::write(
            &gitconfig,
            format!(
                "[url \"file:///nonexistent-athens-e2e/\"]\n\tinsteadOf = https://github.com/acme/\n\
                 [url \"{remote}\"]\n\tinsteadOf = https://{LIB}\n{more}"
            ),
        )
        .expect("gitconfig");
        let mut setup = ServerSetup::memory(&gitconfig);
        setup
            .extra_env
            .push(("ATHENS_LOG_LEVEL".to_string(), "debug".to_string()));
        Server::start(&setup)
    }
}

/// Asserts no trace of the secret in `text`.
fn assert_no_secret(context: &str, text: &str) {
    for secret in [PASSWORD, BASIC] {
        assert!(
            !text.contains(secret),
            "{context} shows a credential:\n{text}"
        );
    }
}

/// The module's list, `.info`, `.mod` and `.zip` all answer 200 without
/// showing the secret, and neither does the log.
fn assert_served(server: &Server) {
    for path in [
        format!("/{LIB}/@v/list"),
        format!("/{LIB}/@v/v1.0.0.info"),
        format!("/{LIB}/@v/v1.0.0.mod"),
        format!("/{LIB}/@latest"),
        format!("/{LIB}/@v/v1.0.0.zip"),
    ] {
        let (status, body) = http_get(server.port(), &path).expect("GET");
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "{path}: {text}\n{}", server.log_text());
        assert_no_secret(&path, &text);
        if path.ends_with(".info") {
            let info: serde_json::Value = serde_json::from_slice(&body).expect("info json");
            assert_eq!(info["Version"], "v1.0.0");
        }
    }
    assert_no_secret("the log", &server.log_text());
}

#[test]
fn refused_without_credentials() {
    let w = World::new();
    let server = w.server(&w.remote(None), "");
    for path in [format!("/{LIB}/@v/list"), format!("/{LIB}/@v/v1.0.0.info")] {
        let (status, body) = http_get(server.port(), &path).expect("GET");
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_ne!(status, 200, "{path}: {text}");
        assert_no_secret(&path, &text);
    }
    assert_no_secret("the log", &server.log_text());
}

#[test]
fn userinfo_in_the_insteadof_url() {
    let w = World::new();
    let server = w.server(&w.remote(Some(&format!("{USER}:{PASSWORD}"))), "");
    assert_served(&server);
    // A wrong password is refused, and not shown either.
    let w = World::new();
    let server = w.server(&w.remote(Some(&format!("{USER}:wrong-{PASSWORD}"))), "");
    let (status, body) = http_get(server.port(), &format!("/{LIB}/@v/list")).expect("GET");
    assert_ne!(status, 200);
    assert_no_secret("the answer", &String::from_utf8_lossy(&body));
    assert_no_secret("the log", &server.log_text());
}

#[test]
fn extra_header_for_the_url() {
    let w = World::new();
    let remote = w.remote(None);
    let base = remote.trim_end_matches("e2e-lib.git");
    // A header for another host is not sent; the one for this URL is.
    let more = format!(
        "[http \"https://elsewhere.example/\"]\n\textraHeader = X-Other: 1\n\
         [http \"{base}\"]\n\textraHeader = Authorization: Basic {BASIC}\n"
    );
    let server = w.server(&remote, &more);
    assert_served(&server);
}

#[test]
fn store_helper_file() {
    let w = World::new();
    let store = w.path("git-credentials");
    let origin = w.git.url("").trim_end_matches('/').to_string();
    let with_user = origin.replacen("http://", &format!("http://{USER}:{PASSWORD}@"), 1);
    std::fs::write(
        &store,
        format!("https://bob:other@example.com\n{with_user}\n"),
    )
    .expect("store");
    let more = format!(
        "[credential]\n\thelper = store --file={}\n",
        store.display()
    );
    let server = w.server(&w.remote(None), &more);
    assert_served(&server);
}

#[test]
fn helper_program() {
    let w = World::new();
    let asked = w.path("asked");
    let helper = write_helper(&w.path("helper.sh"), &asked);
    let origin = w.git.url("").trim_end_matches('/').to_string();
    let more = format!(
        "[credential]\n\thelper = !false\n\
         [credential \"{origin}\"]\n\thelper = {}\n",
        helper.display()
    );
    let server = w.server(&w.remote(None), &more);
    assert_served(&server);
    // The helper was asked about this remote, as git asks.
    let request = std::fs::read_to_string(&asked).expect("helper ran");
    let host = origin.trim_start_matches("http://");
    assert!(
        request.contains("protocol=http\n") && request.contains(&format!("host={host}\n")),
        "{request}"
    );
}

/// A credential helper answering `get` with the test's credentials and
/// recording what it was asked in `asked`.
fn write_helper(path: &Path, asked: &Path) -> PathBuf {
    std::fs::write(
        path,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 0\ncat > {}\n\
             echo username={USER}\necho password={PASSWORD}\n",
            asked.display()
        ),
    )
    .expect("helper");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    path.to_path_buf()
}
