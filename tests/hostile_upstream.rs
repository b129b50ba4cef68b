//! End to end: the `athens` binary in front of hostile module proxies.
//! Whatever an upstream GOPROXY (or a module proxy named by a go-import
//! `mod` tag) answers that the go command would refuse gets a 502 and
//! leaves nothing in the storage root; a good answer afterwards is stored
//! as usual. Redirects follow the go command's rules: netrc credentials
//! stay with their host, and https is never downgraded to http.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{http_get, write_gitconfig, Server, ServerSetup};

const MODULE: &str = "example.com/hostile";
const GOOD_MOD: &[u8] = b"module example.com/hostile\n\ngo 1.21\n";
const TIME: &str = "2024-01-02T03:04:05Z";

/// One canned answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    fn redirect(location: String) -> Reply {
        Reply {
            status: 302,
            headers: vec![("Location".into(), location)],
            body: Vec::new(),
        }
    }
}

/// What a request looked like: path and Authorization header.
type Seen = Vec<(String, Option<String>)>;

/// A module proxy on 127.0.0.1 (plain or TLS) answering canned replies by
/// path (404 otherwise), or redirecting every path to another base URL.
/// Connections are closed after each answer.
struct HostileProxy {
    port: u16,
    tls: bool,
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    redirect_to: Arc<Mutex<Option<String>>>,
    seen: Arc<Mutex<Seen>>,
}

impl HostileProxy {
    fn start(tls: Option<Arc<rustls::ServerConfig>>) -> HostileProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let proxy = HostileProxy {
            port,
            tls: tls.is_some(),
            replies: Arc::default(),
            redirect_to: Arc::default(),
            seen: Arc::default(),
        };
        let (replies, redirect_to, seen) = (
            proxy.replies.clone(),
            proxy.redirect_to.clone(),
            proxy.seen.clone(),
        );
        // The thread ends with the test process; it holds no child process.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (replies, redirect_to, seen) =
                    (replies.clone(), redirect_to.clone(), seen.clone());
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            let mut tls_stream = rustls::StreamOwned::new(conn, stream);
                            answer(&mut tls_stream, &replies, &redirect_to, &seen);
                            tls_stream.conn.send_close_notify();
                            let _ = tls_stream.flush();
                        }
                        None => {
                            let mut stream = stream;
                            answer(&mut stream, &replies, &redirect_to, &seen);
                        }
                    }
                });
            }
        });
        proxy
    }

    fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// Serves `body` at `MODULE/@v/<version>.<ext>`.
    fn set(&self, version: &str, ext: &str, reply: Reply) {
        self.replies
            .lock()
            .unwrap()
            .insert(format!("/{MODULE}/@v/{version}.{ext}"), reply);
    }

    /// Serves a complete, valid module version.
    fn set_good(&self, version: &str) {
        self.set(version, "info", Reply::ok(info(version)));
        self.set(version, "mod", Reply::ok(GOOD_MOD));
        self.set(
            version,
            "zip",
            Reply::ok(module_zip(
                version,
                &[("go.mod", GOOD_MOD), ("h.go", b"package hostile\n")],
            )),
        );
    }

    fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(
    stream: &mut (impl Read + Write),
    replies: &Mutex<HashMap<String, Reply>>,
    redirect_to: &Mutex<Option<String>>,
    seen: &Mutex<Seen>,
) {
    let Some(head) = support::read_request_head(stream) else {
        return;
    };
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let auth = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_string())
    });
    seen.lock().unwrap().push((path.clone(), auth));
    let redirect = redirect_to.lock().unwrap().clone();
    let reply = match redirect {
        Some(base) => Reply::redirect(format!("{base}{path}")),
        None => replies
            .lock()
            .unwrap()
            .get(&path)
            .cloned()
            .unwrap_or(Reply {
                status: 404,
                headers: Vec::new(),
                body: b"not found".to_vec(),
            }),
    };
    let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", reply.status);
    if !reply
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.write_all(&reply.body);
    let _ = stream.flush();
}

fn info(version: &str) -> String {
    format!(r#"{{"Version":"{version}","Time":"{TIME}"}}"#)
}

/// A stored zip with `files` under the module's prefix.
fn module_zip(version: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let names: Vec<String> = files
        .iter()
        .map(|(n, _)| format!("{MODULE}@{version}/{n}"))
        .collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .zip(files)
        .map(|(n, (_, d))| (n.as_str(), *d))
        .collect();
    fixtures::rawzip::stored_zip(&entries)
}

/// Every file under `root`, relative.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                dirs.push(path);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Athens with disk storage under `root` and `go_env` as its go
/// environment.
fn start_athens(scratch: &Path, root: &Path, go_env: &str, more: &[(&str, String)]) -> Server {
    let gitconfig = scratch.join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    let mut setup = ServerSetup::disk(root, &gitconfig);
    setup.extra_env.push((
        "ATHENS_GO_BINARY_ENV_VARS".into(),
        format!(
            "GIT_CONFIG_GLOBAL={}; GOSUMDB=off; {go_env}",
            gitconfig.display()
        ),
    ));
    for (k, v) in more {
        setup.extra_env.push((k.to_string(), v.clone()));
    }
    Server::start(&setup)
}

fn get(server: &Server, path: &str) -> (u16, String) {
    let (status, body) = http_get(server.port(), path).expect("GET");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The hostile answers, each for its own version: (what, version, ext,
/// reply, a word the 502 must carry).
fn hostile_cases() -> Vec<(&'static str, String, &'static str, Reply, &'static str)> {
    let v = |n: u32| format!("v1.0.{n}");
    let big = Reply {
        status: 200,
        headers: vec![("Content-Length".into(), (600u64 << 20).to_string())],
        body: b"PK".to_vec(),
    };
    vec![
        (
            "info not JSON",
            v(1),
            "info",
            Reply::ok("<html>oops</html>"),
            "invalid",
        ),
        (
            "info for another version",
            v(2),
            "info",
            Reply::ok(info("v1.0.99")),
            "instead",
        ),
        (
            "info not canonical",
            v(3),
            "info",
            Reply::ok(info("v1.0")),
            "canonical",
        ),
        (
            "info with a bad time",
            v(4),
            "info",
            Reply::ok(r#"{"Version":"v1.0.4","Time":"noon"}"#),
            "RFC 3339",
        ),
        (
            "mod as text",
            v(5),
            "mod",
            Reply::ok("this is not a go.mod"),
            ".mod",
        ),
        (
            "mod for another major",
            v(6),
            "mod",
            Reply::ok("module example.com/hostile/v3\n"),
            "does not fit",
        ),
        (
            "mod without module",
            v(7),
            "mod",
            Reply::ok("go 1.21\n"),
            "no module",
        ),
        (
            "zip as text",
            v(8),
            "zip",
            Reply::ok("PK, honestly"),
            "invalid zip",
        ),
        (
            "zip outside the prefix",
            v(9),
            "zip",
            Reply::ok(fixtures::rawzip::stored_zip(&[
                ("example.com/hostile@v1.0.9/go.mod", GOOD_MOD),
                ("etc/passwd", b"root:x:0:0"),
            ])),
            "invalid zip",
        ),
        (
            "zip with a duplicate",
            v(10),
            "zip",
            Reply::ok(module_zip(
                "v1.0.10",
                &[
                    ("go.mod", GOOD_MOD),
                    ("a.go", b"package a"),
                    ("a.go", b"package b"),
                ],
            )),
            "invalid zip",
        ),
        (
            "zip whose go.mod differs",
            v(11),
            "zip",
            Reply::ok(module_zip(
                "v1.0.11",
                &[(
                    "go.mod",
                    b"module example.com/hostile\nrequire evil.example/x v1.0.0\n",
                )],
            )),
            "differs",
        ),
        ("zip announced too large", v(12), "zip", big, "larger than"),
    ]
}

#[test]
fn garbage_from_an_upstream_proxy_is_refused_and_nothing_is_stored() {
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("storage");
    std::fs::create_dir_all(&root).expect("root");
    let upstream = HostileProxy::start(None);
    let athens = start_athens(
        scratch.path(),
        &root,
        &format!("GOPROXY={}", upstream.url()),
        &[],
    );

    for (what, version, ext, reply, word) in hostile_cases() {
        upstream.set_good(&version);
        upstream.set(&version, ext, reply);
        let (status, body) = get(&athens, &format!("/{MODULE}/@v/{version}.zip"));
        assert_eq!(status, 502, "{what}: {body}");
        assert!(body.contains(word), "{what}: {body}");
        assert_eq!(files_under(&root), Vec::<PathBuf>::new(), "{what}");
        // Asked again, it is still refused (nothing half-stored is served).
        let (status, _) = get(&athens, &format!("/{MODULE}/@v/{version}.info"));
        assert_eq!(status, 502, "{what}, asked again");
    }

    // The upstream mends its ways: the same versions are stored now.
    for version in ["v1.0.1", "v1.0.8", "v1.0.11"] {
        upstream.set_good(version);
        let (status, body) = get(&athens, &format!("/{MODULE}/@v/{version}.zip"));
        assert_eq!(status, 200, "{version}: {body}");
        let (status, body) = get(&athens, &format!("/{MODULE}/@v/{version}.mod"));
        assert_eq!((status, body.as_bytes()), (200, GOOD_MOD));
    }
    // Each version: .info, go.mod, the zip and its checksum record.
    let stored = files_under(&root);
    assert_eq!(stored.len(), 12, "{stored:?}");
    assert!(stored.contains(&PathBuf::from(format!("{MODULE}/v1.0.8/v1.0.8.gosum"))));
    assert!(stored.contains(&PathBuf::from(format!("{MODULE}/v1.0.8/source.zip"))));
}

/// A go-import `mod` tag naming a hostile proxy: the same checks apply.
#[test]
fn a_hostile_proxy_named_by_a_mod_tag_is_refused_too() {
    const TAGGED: &str = "example.test/hostile";
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("storage");
    std::fs::create_dir_all(&root).expect("root");
    let upstream = HostileProxy::start(None);
    let escaped = format!("/{TAGGED}/@v/v1.0.0");
    upstream.replies.lock().unwrap().extend([
        (format!("{escaped}.info"), Reply::ok(info("v1.0.0"))),
        (
            format!("{escaped}.mod"),
            Reply::ok("module example.test/hostile\n"),
        ),
        (format!("{escaped}.zip"), Reply::ok("not a zip at all")),
    ]);
    let meta =
        fixtures::MetaServer::start(&[("/hostile", &format!("{TAGGED} mod {}", upstream.url()))]);
    let meta_proxy = format!("http://{}", meta.addr);
    let athens = start_athens(
        scratch.path(),
        &root,
        &format!(
            "GOPROXY=direct; GOINSECURE={TAGGED}; HTTP_PROXY={meta_proxy}; HTTPS_PROXY={meta_proxy}"
        ),
        &[],
    );
    let (status, body) = get(&athens, &format!("/{TAGGED}/@v/v1.0.0.zip"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("invalid zip"), "{body}");
    assert_eq!(files_under(&root), Vec::<PathBuf>::new());
    assert!(upstream.seen().iter().any(|(p, _)| p.ends_with(".zip")));
}

#[test]
fn credentials_stay_with_their_host_and_https_is_not_downgraded() {
    let scratch = tempfile::tempdir().expect("scratch");
    let root = scratch.path().join("storage");
    std::fs::create_dir_all(&root).expect("root");
    let (cert, tls) = fixtures::services::loopback_tls(scratch.path()).expect("loopback TLS");
    let first = HostileProxy::start(Some(tls.clone()));
    let second = HostileProxy::start(Some(tls));
    let plain = HostileProxy::start(None);
    second.set_good("v1.0.0");
    plain.set_good("v1.0.0");
    let netrc = scratch.path().join("netrc");
    std::fs::write(
        &netrc,
        format!(
            "machine 127.0.0.1:{} login robot password s3cret\n",
            first.port
        ),
    )
    .expect("netrc");
    let athens = start_athens(
        scratch.path(),
        &root,
        &format!("GOPROXY={}; SSL_CERT_FILE={}", first.url(), cert.display()),
        &[("ATHENS_NETRC_PATH", netrc.display().to_string())],
    );

    // Served by the first host itself: its credentials go along.
    first.set_good("v1.0.0");
    let (status, body) = get(&athens, &format!("/{MODULE}/@v/v1.0.0.zip"));
    assert_eq!(status, 200, "{body}");
    let basic = Some("Basic cm9ib3Q6czNjcmV0".to_string());
    assert!(
        first.seen().iter().all(|(_, auth)| *auth == basic),
        "{:?}",
        first.seen()
    );

    // Redirected to another host (port): it never sees them.
    *first.redirect_to.lock().unwrap() = Some(second.url());
    second.set_good("v1.1.0");
    let (status, body) = get(&athens, &format!("/{MODULE}/@v/v1.1.0.zip"));
    assert_eq!(status, 200, "{body}");
    let seen = second.seen();
    assert!(
        seen.iter().any(|(p, _)| p.ends_with("v1.1.0.zip")),
        "{seen:?}"
    );
    assert!(seen.iter().all(|(_, auth)| auth.is_none()), "{seen:?}");

    // Redirected from https to plain http: refused, nothing asked there.
    *first.redirect_to.lock().unwrap() = Some(plain.url());
    plain.set_good("v1.2.0");
    let (status, body) = get(&athens, &format!("/{MODULE}/@v/v1.2.0.zip"));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("insecure"), "{body}");
    assert!(plain.seen().is_empty(), "{:?}", plain.seen());
    assert!(!files_under(&root)
        .iter()
        .any(|p| p.to_string_lossy().contains("v1.2.0")));
    assert!(!athens.log_text().contains("s3cret"));
}
