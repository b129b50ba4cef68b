//! End to end against the real binary: what the server must not give away.
//! Netrc credentials never follow a go-import redirect to another host or
//! port; `X-Forwarded-Proto` counts only from `TrustedProxies`; error
//! bodies do not show the storage root or `GoGetDir`; the validator hook's
//! user information and query never reach the log.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{http_get, Server, ServerSetup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Self-signed test certificate and key (P-256, CN localhost). The server
/// accepts any certificate for GOINSECURE hosts, so its names do not matter.
const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBnDCCAUGgAwIBAgIUCkatu0H8Dm2P9S09IV98vnCWfiswCgYIKoZIzj0EAwIw\nFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMjA0MzEyNFoYDzIxMjYxMDI5\nMDQzMTI0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\nPQMBBwNCAASLLFaEQyJJNnuQexNJL9Db3tCGfRQi4R911sxQlGWPjOV6LxiMRasR\nPEkWbMYAnQqNR8cqf57g/D9FTuZUUFfAo28wbTAdBgNVHQ4EFgQUSb282lmU1DW4\nN6VFglBPoe+eIxAwHwYDVR0jBBgwFoAUSb282lmU1DW4N6VFglBPoe+eIxAwDwYD\nVR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI\nzj0EAwIDSQAwRgIhAMpA0x0XgdYQ+rlKU5lOuC5ksIvUd46lYwF3YLJ47tYVAiEA\n4aSUnw2aOmDPsoSl0spmYLkPILV2zuUE94qQJBK0itE=\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxH9vOXBU41OJS/y7\nxUTeqHVGIu/iftneWHIBeH/yrzihRANCAASLLFaEQyJJNnuQexNJL9Db3tCGfRQi\n4R911sxQlGWPjOV6LxiMRasRPEkWbMYAnQqNR8cqf57g/D9FTuZUUFfA\n-----END PRIVATE KEY-----\n";

/// base64("alice:s3cret")
const ALICE_BASIC: &str = "Basic YWxpY2U6czNjcmV0";

/// One request the origin servers behind the proxy received.
#[derive(Debug, Clone)]
struct Seen {
    /// `host:port` the client asked the proxy to connect to.
    origin: String,
    target: String,
    authorization: Option<String>,
}

/// An HTTPS proxy test double: it accepts CONNECT to any `host:port`, then
/// terminates TLS itself and answers as that origin from `routes`
/// (`(origin, target)` to status and `Location`), recording every request.
/// The server reaches all test origins through it, as it would through a
/// corporate proxy, so no name needs to resolve.
struct OriginProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

type Routes = Arc<HashMap<(String, String), (u16, Option<String>)>>;

impl OriginProxy {
    fn start(routes: HashMap<(String, String), (u16, Option<String>)>) -> OriginProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let acceptor = tls_acceptor();
        let routes: Routes = Arc::new(routes);
        let recorder = Arc::clone(&seen);
        runtime.spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (acceptor, routes, seen) =
                    (acceptor.clone(), Arc::clone(&routes), Arc::clone(&recorder));
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(20),
                        serve_tunnel(conn, acceptor, routes, seen),
                    )
                    .await;
                });
            }
        });
        OriginProxy {
            addr,
            seen,
            runtime: Some(runtime),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for OriginProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(CERT.as_bytes()).expect("cert")];
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocols")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Reads an HTTP head (up to the blank line).
async fn read_head<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: nothing after the head may be consumed, since after a
    // CONNECT the TLS handshake follows on the same stream.
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 65536 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

async fn serve_tunnel(
    mut conn: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    routes: Routes,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let Some(head) = read_head(&mut conn).await else {
        return;
    };
    let mut words = head.split_whitespace();
    let (Some("CONNECT"), Some(origin)) = (words.next(), words.next()) else {
        let _ = conn
            .write_all(
                b"HTTP/1.1 405 Only CONNECT\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await;
        return;
    };
    let origin = origin.to_string();
    if conn
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let Ok(mut tls) = acceptor.accept(conn).await else {
        return;
    };
    let Some(request) = read_head(&mut tls).await else {
        return;
    };
    let mut lines = request.split("\r\n");
    let target = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_string();
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    seen.lock().expect("lock").push(Seen {
        origin: origin.clone(),
        target: target.clone(),
        authorization,
    });
    let (status, location) = routes
        .get(&(origin, target))
        .cloned()
        .unwrap_or((404, None));
    let body = "nothing here\n";
    let mut reply = format!(
        "HTTP/1.1 {status} Test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(location) = location {
        reply.push_str(&format!("Location: {location}\r\n"));
    }
    reply.push_str("\r\n");
    reply.push_str(body);
    let _ = tls.write_all(reply.as_bytes()).await;
    let _ = tls.shutdown().await;
}

fn route(
    origin: &str,
    target: &str,
    status: u16,
    location: Option<&str>,
) -> ((String, String), (u16, Option<String>)) {
    (
        (origin.to_string(), target.to_string()),
        (status, location.map(str::to_string)),
    )
}

/// Go environment for a server whose fetcher reaches origins through
/// `proxy` and takes the test certificate for the GOINSECURE hosts.
fn go_env_through(proxy: SocketAddr, gitconfig: &Path) -> String {
    format!(
        "GIT_CONFIG_GLOBAL={}; GIT_CONFIG_NOSYSTEM=1; GOPROXY=direct; GOSUMDB=off; \
         GOINSECURE=a.test,b.test; HTTPS_PROXY=http://{proxy}; HTTP_PROXY=http://{proxy}",
        gitconfig.display()
    )
}

#[test]
fn netrc_credentials_never_follow_a_redirect_to_another_host_or_port() {
    let proxy = OriginProxy::start(HashMap::from([
        route(
            "a.test:443",
            "/m?go-get=1",
            302,
            Some("https://b.test/m?go-get=1"),
        ),
        route(
            "a.test:443",
            "/p?go-get=1",
            302,
            Some("https://a.test:8443/p?go-get=1"),
        ),
    ]));
    let dir = tempfile::tempdir().expect("tempdir");
    let gitconfig = dir.path().join("gitconfig");
    std::fs::write(&gitconfig, "").expect("gitconfig");
    let netrc = dir.path().join("netrc");
    std::fs::write(&netrc, "machine a.test login alice password s3cret\n").expect("netrc");
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = vec![
        (
            "ATHENS_GO_BINARY_ENV_VARS".into(),
            go_env_through(proxy.addr, &gitconfig),
        ),
        ("ATHENS_NETRC_PATH".into(), netrc.display().to_string()),
    ];
    let server = Server::start(&setup);

    for module in ["a.test/m", "a.test/p"] {
        let (status, body) = http_get(server.port(), &format!("/{module}/@v/list")).expect("list");
        let body = String::from_utf8_lossy(&body);
        // No go-import tag at the end of the redirect: not found, so the go
        // client falls through to its next proxy.
        assert_eq!(status, 404, "{module}: {body}");
    }

    let seen = proxy.seen();
    let auth_at = |origin: &str, target: &str| -> Vec<Option<String>> {
        seen.iter()
            .filter(|s| s.origin == origin && s.target == target)
            .map(|s| s.authorization.clone())
            .collect()
    };
    // The host the entry is for got the credentials, over https ...
    for target in ["/m?go-get=1", "/p?go-get=1"] {
        let at_a = auth_at("a.test:443", target);
        assert!(!at_a.is_empty(), "{target}: {seen:?}");
        assert!(
            at_a.iter().all(|a| a.as_deref() == Some(ALICE_BASIC)),
            "{target}: {seen:?}"
        );
    }
    // ... the host and the port it redirected to did not.
    let at_b = auth_at("b.test:443", "/m?go-get=1");
    let at_other_port = auth_at("a.test:8443", "/p?go-get=1");
    assert!(
        !at_b.is_empty(),
        "redirect to b.test not followed: {seen:?}"
    );
    assert!(
        !at_other_port.is_empty(),
        "redirect to a.test:8443 not followed: {seen:?}"
    );
    assert!(
        at_b.iter().chain(&at_other_port).all(Option::is_none),
        "{seen:?}"
    );
    assert!(!server.log_text().contains("s3cret"));
}

/// A started binary that `Server` cannot wait for (its health check is
/// redirected under ForceSSL): killed when dropped.
struct Bare {
    child: Child,
    port: u16,
    _scratch: tempfile::TempDir,
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_bare(env: &[(&str, &str)]) -> Bare {
    let scratch = tempfile::tempdir().expect("scratch");
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr").port()
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_athens"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", scratch.path())
        .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
        .env("ATHENS_STORAGE_TYPE", "memory")
        .env("ATHENS_GOGET_DIR", scratch.path())
        .env("ATHENS_GO_BINARY_ENV_VARS", "GOPROXY=off")
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut bare = Bare {
        child: cmd.spawn().expect("spawn athens"),
        port,
        _scratch: scratch,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http_get(port, "/healthz").is_ok() {
            return bare;
        }
        if let Ok(Some(status)) = bare.child.try_wait() {
            panic!("athens exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("athens did not answer within 20 s");
}

/// GET `path` on 127.0.0.1:`port` over a connection from `source` (any
/// loopback address): status and `Location`.
fn get_from(source: &str, port: u16, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = connect_from(source, port);
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: p.example\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let location = text
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    (status, location)
}

/// A TCP connection to 127.0.0.1:`port` bound to `source` first, so the
/// server sees that peer address.
fn connect_from(source: &str, port: u16) -> TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(format!("{source}:0").parse().expect("source addr"))
            .expect("bind source");
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("connect")
    });
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream
}

#[test]
fn forwarded_proto_counts_only_from_trusted_proxies() {
    let server = start_bare(&[
        ("PROXY_FORCE_SSL", "true"),
        ("ATHENS_TRUSTED_PROXIES", "127.0.0.2/32, ::1"),
    ]);
    let claim = [("X-Forwarded-Proto", "https")];
    // From an untrusted peer the header changes nothing.
    assert_eq!(
        get_from("127.0.0.1", server.port, "/healthz", &claim),
        (301, "https://p.example/healthz".to_string())
    );
    // From the trusted proxy it is believed ...
    assert_eq!(
        get_from("127.0.0.2", server.port, "/healthz", &claim).0,
        200
    );
    // ... and without it, the request is plain HTTP.
    assert_eq!(
        get_from("127.0.0.2", server.port, "/healthz", &[]),
        (301, "https://p.example/healthz".to_string())
    );
}

#[test]
fn error_bodies_do_not_show_storage_root_or_goget_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("storage-root");
    let goget = dir.path().join("goget-dir");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::create_dir_all(&goget).expect("goget");
    // A stored version whose .info cannot be read (it is a directory).
    let version_dir = root.join("example.com/broken/v1.0.0");
    std::fs::create_dir_all(version_dir.join("v1.0.0.info")).expect("info dir");
    std::fs::write(version_dir.join("go.mod"), "module example.com/broken\n").expect("go.mod");
    std::fs::write(version_dir.join("source.zip"), b"PK").expect("zip");
    // Every github.com/acme repository is an https remote that is never
    // reached: the cache directory under GoGetDir fails first.
    let gitconfig = dir.path().join("gitconfig");
    std::fs::write(
        &gitconfig,
        "[url \"http://127.0.0.1:9/\"]\n\tinsteadOf = https://github.com/acme/\n",
    )
    .expect("gitconfig");
    let mut setup = ServerSetup::disk(&root, &gitconfig);
    setup.extra_env = vec![("ATHENS_GOGET_DIR".into(), goget.display().to_string())];
    let server = Server::start(&setup);
    let vcs = goget.join("vcs");
    std::fs::remove_dir_all(&vcs).expect("remove vcs cache");
    std::fs::write(&vcs, "not a directory").expect("vcs file");

    let secrets = [
        root.display().to_string(),
        goget.display().to_string(),
        dir.path().display().to_string(),
    ];
    for path in [
        "/example.com/broken/@v/v1.0.0.info",
        "/github.com/acme/thing/@v/v1.0.0.info",
        "/github.com/acme/thing/@v/list",
    ] {
        let (status, body) = http_get(server.port(), path).expect("get");
        let body = String::from_utf8_lossy(&body).to_string();
        assert!(status >= 500, "{path}: {status} {body}");
        assert!(body.contains("<local path>"), "{path}: {body}");
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "{path}: {body}");
        }
    }
    // The log keeps the whole story.
    let log = server.log_text();
    assert!(log.contains(&root.display().to_string()), "{log}");
    assert!(log.contains(&goget.display().to_string()), "{log}");
}

#[test]
fn validator_hook_secrets_stay_out_of_the_log() {
    let closed = TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let dir = tempfile::tempdir().expect("tempdir");
    let gitconfig = dir.path().join("gitconfig");
    std::fs::write(&gitconfig, "").expect("gitconfig");
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = vec![(
        "ATHENS_PROXY_VALIDATOR".into(),
        format!("http://hookuser:hookpass@127.0.0.1:{port}/validate?token=hooktoken"),
    )];
    let server = Server::start(&setup);
    let (status, body) = http_get(server.port(), "/example.com/m/@v/v1.0.0.info").expect("get");
    let body = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 500, "{body}");
    let log = server.log_text();
    assert!(log.contains("validator hook failed"), "{log}");
    assert!(
        log.contains(&format!("127.0.0.1:{port}/validate")),
        "the hook is still named: {log}"
    );
    for secret in ["hookuser", "hookpass", "hooktoken"] {
        assert!(!log.contains(secret), "{secret} in log:\n{log}");
        assert!(!body.contains(secret), "{secret} in body: {body}");
    }
}
