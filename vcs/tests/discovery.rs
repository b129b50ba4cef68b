//! End-to-end discovery against local HTTP and HTTPS servers on 127.0.0.1,
//! with test host names pinned to them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use vcs::discovery::{resolve_repo, DiscoveryClient, DiscoveryError, Netrc, RepoRoot, Vcs};
use vcs::goenv::GoEnv;

/// Self-signed test certificate for private.test, other.test, secure.test
/// and sub.private.test (P-256, not a CA), with its key. Test-only material.
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIB8TCCAZegAwIBAgIUAdqVjXA3C7dSs0OTz5SURcpitQ4wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOZGlzY292ZXJ5IHRlc3QwIBcNMjYxMTIyMDMzNTUxWhgPMjEy
NjEwMjkwMzM1NTFaMBkxFzAVBgNVBAMMDmRpc2NvdmVyeSB0ZXN0MFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEdIf0opYM1EAoTrqTMhEc5p9tv1zJYOs3tdW9O4dx
pUBTFUEj31MqGjzbTxksT69QdA/bzAEzbeer83+ZfsEEaqOBujCBtzAdBgNVHQ4E
FgQUxNfOq8+1yQo22eeHnqpkdkmwQ08wHwYDVR0jBBgwFoAUxNfOq8+1yQo22eeH
nqpkdkmwQ08wQgYDVR0RBDswOYIMcHJpdmF0ZS50ZXN0ggpvdGhlci50ZXN0ggtz
ZWN1cmUudGVzdIIQc3ViLnByaXZhdGUudGVzdDAMBgNVHRMBAf8EAjAAMBMGA1Ud
JQQMMAoGCCsGAQUFBwMBMA4GA1UdDwEB/wQEAwIHgDAKBggqhkjOPQQDAgNIADBF
AiBUZ0zOVwUaj458Y+fKAaZ/fo6zfgZ/Cgw08pyStQdRXwIhALL7cOdPTLcFIrB9
bOykTD8M9/049trq2Ti5ksDc1SfT
-----END CERTIFICATE-----
";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvYo50rhIz5MkxYOH
kL0idPDg9d6/gNPCAhS8sHi5LjWhRANCAAR0h/SilgzUQChOupMyERzmn22/XMlg
6ze11b07h3GlQFMVQSPfUyoaPNtPGSxPr1B0D9vMATNt56vzf5l+wQRq
-----END PRIVATE KEY-----
";

/// `alice:s3cret` in Basic form.
const ALICE_BASIC: &str = "Basic YWxpY2U6czNjcmV0";

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    /// The Authorization value required; 401 without it.
    needs: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Seen {
    scheme: &'static str,
    method: String,
    host: String,
    target: String,
    authorization: Option<String>,
}

type Routes = Arc<HashMap<(String, String), Reply>>;

struct Servers {
    plain: SocketAddr,
    tls: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Servers {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn seen_for(&self, host: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.host == host).collect()
    }
}

fn meta_page(tags: &[&str]) -> String {
    let mut page = String::from("<!DOCTYPE html>\n<html><head>\n");
    for t in tags {
        page.push_str(&format!("<meta name=\"go-import\" content=\"{t}\">\n"));
    }
    page.push_str("</head><body>go get</body></html>\n");
    page
}

fn ok(tags: &[&str]) -> Reply {
    Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "text/html; charset=utf-8".into())],
        body: meta_page(tags),
        needs: None,
    }
}

fn status(code: u16, body: &str) -> Reply {
    Reply {
        status: code,
        headers: vec![("Content-Type".into(), "text/html".into())],
        body: body.into(),
        needs: None,
    }
}

fn redirect(location: &str) -> Reply {
    Reply {
        status: 302,
        headers: vec![("Location".into(), location.into())],
        body: String::new(),
        needs: None,
    }
}

async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    scheme: &'static str,
    routes: Routes,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        // A TLS ClientHello on the plain port: hang up, as an HTTP server
        // answering garbage would, so the client falls back promptly.
        if head.first() == Some(&0x16) {
            return;
        }
        if head.len() > 65536 {
            return;
        }
    }
    let Ok(text) = std::str::from_utf8(&head) else {
        return;
    };
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target)) = (request_line.next(), request_line.next()) else {
        return;
    };
    let mut host = String::new();
    let mut authorization = None;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("host") {
                let v = v.trim();
                host = v.split(':').next().unwrap_or(v).to_string();
            } else if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    seen.lock().expect("lock").push(Seen {
        scheme,
        method: method.to_string(),
        host: host.clone(),
        target: target.to_string(),
        authorization: authorization.clone(),
    });
    let reply = routes
        .get(&(host, target.to_string()))
        .cloned()
        .unwrap_or_else(|| Reply {
            status: 404,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: "not found\n".into(),
            needs: None,
        });
    let reply = match reply.needs {
        Some(needed) if authorization.as_deref() != Some(needed) => Reply {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), "Bearer realm=\"test\"".into())],
            body: "unauthorized\n".into(),
            needs: None,
        },
        _ => reply,
    };
    let mut out = format!(
        "HTTP/1.1 {} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_slice(CERT_PEM.as_bytes()).expect("cert pem")];
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM.as_bytes()).expect("key pem");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

async fn start(routes: HashMap<(String, String), Reply>) -> Servers {
    start_with(|_| routes).await
}

/// Starts both servers; `make_routes` gets the plain server's address so
/// routes can redirect to it.
async fn start_with(
    make_routes: impl FnOnce(SocketAddr) -> HashMap<(String, String), Reply>,
) -> Servers {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind plain");
    let tls = TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
    let servers = Servers {
        plain: plain.local_addr().expect("addr"),
        tls: tls.local_addr().expect("addr"),
        seen: seen.clone(),
    };
    let routes: Routes = Arc::new(make_routes(servers.plain));
    {
        let (routes, seen) = (routes.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = plain.accept().await {
                tokio::spawn(serve_conn(conn, "http", routes.clone(), seen.clone()));
            }
        });
    }
    let acceptor = tls_acceptor();
    tokio::spawn(async move {
        while let Ok((conn, _)) = tls.accept().await {
            let (acceptor, routes, seen) = (acceptor.clone(), routes.clone(), seen.clone());
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(conn).await {
                    serve_conn(stream, "https", routes, seen).await;
                }
            });
        }
    });
    servers
}

fn route(host: &str, target: &str, reply: Reply) -> ((String, String), Reply) {
    ((host.to_string(), target.to_string()), reply)
}

fn env(vars: &[(&str, &str)]) -> GoEnv {
    GoEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("env")
}

#[tokio::test]
async fn insecure_http_discovery() {
    let h = "insecure.test";
    let servers = start(HashMap::from([
        route(
            h,
            "/mod/a?go-get=1",
            ok(&["insecure.test/mod/a git https://git.example/a"]),
        ),
        route(
            h,
            "/mod/b/sub/pkg?go-get=1",
            ok(&["insecure.test/mod/b git https://git.example/b"]),
        ),
        route(
            h,
            "/mod/b?go-get=1",
            ok(&["insecure.test/mod/b git https://git.example/b"]),
        ),
        route(
            h,
            "/mod/c/x?go-get=1",
            ok(&["insecure.test/mod/c git https://one.example/c"]),
        ),
        route(
            h,
            "/mod/c?go-get=1",
            ok(&["insecure.test/mod/c git https://two.example/c"]),
        ),
        route(
            h,
            "/mod/nc/x?go-get=1",
            ok(&["insecure.test/mod/nc git https://one.example/c"]),
        ),
        route(
            h,
            "/mod/d?go-get=1",
            Reply {
                status: 404,
                ..ok(&["insecure.test/mod/d hg https://hg.example/d"])
            },
        ),
        route(h, "/mod/e?go-get=1", status(500, "oops")),
        route(h, "/mod/f?go-get=1", status(410, "gone")),
        route(
            h,
            "/mod/g?go-get=1",
            status(200, "<html><head><title>no tags</title></head></html>"),
        ),
        route(h, "/mod/r?go-get=1", redirect("/moved/r?go-get=1")),
        route(
            h,
            "/moved/r?go-get=1",
            ok(&["insecure.test/mod/r git https://git.example/r"]),
        ),
        route(h, "/loop?go-get=1", redirect("/loop?go-get=1")),
        route(
            h,
            "/mod/m?go-get=1",
            ok(&[
                "insecure.test/mod/m git https://git.example/m",
                "insecure.test/mod/m mod https://proxy.example/",
            ]),
        ),
        route(
            h,
            "/mod/s?go-get=1",
            ok(&["insecure.test/mod/s git https://git.example/mono go/s"]),
        ),
        route(
            h,
            "/mod/dup/x?go-get=1",
            ok(&[
                "insecure.test/mod/dup git https://a.example",
                "insecure.test/mod/dup/x git https://b.example",
            ]),
        ),
        route(
            h,
            "/mod/bzr?go-get=1",
            ok(&["insecure.test/mod/bzr bzr https://bzr.example/x"]),
        ),
        route(
            h,
            "/mod/svn?go-get=1",
            ok(&["insecure.test/mod/svn svn https://svn.example/x"]),
        ),
        route(
            h,
            "/mod/bad?go-get=1",
            ok(&["insecure.test/mod/bad git git.example/bad"]),
        ),
        route(
            h,
            "/mod/badsub?go-get=1",
            ok(&["insecure.test/mod/badsub git https://x.example -x"]),
        ),
        route(
            h,
            "/mod/other?go-get=1",
            ok(&["insecure.test/mod/elsewhere git https://x.example"]),
        ),
        route(
            h,
            "/mod/junk?go-get=1",
            status(200, "<script>if (a < b) {}</script>"),
        ),
    ]))
    .await;
    let env = env(&[("GOINSECURE", "insecure.test")]);
    let client = DiscoveryClient::builder(&env)
        .pin_host(h, servers.plain)
        .netrc(Netrc::parse(
            "machine insecure.test login alice password s3cret\n",
        ))
        .build()
        .expect("client");
    let resolve = |p: &'static str| {
        let (env, client) = (env.clone(), client.clone());
        async move { resolve_repo(p, &env, &client).await }
    };

    assert_eq!(
        resolve("insecure.test/mod/a").await.expect("a"),
        RepoRoot {
            root: "insecure.test/mod/a".into(),
            vcs: Vcs::Git,
            repo_url: "https://git.example/a".into(),
            subdir: None,
            is_custom: true,
        }
    );
    // A shorter prefix is confirmed against the prefix's own page.
    let b = resolve("insecure.test/mod/b/sub/pkg").await.expect("b");
    assert_eq!(b.root, "insecure.test/mod/b");
    assert!(servers
        .seen_for(h)
        .iter()
        .any(|s| s.target == "/mod/b?go-get=1"));
    assert!(matches!(
        resolve("insecure.test/mod/c/x").await,
        Err(DiscoveryError::Invalid { .. })
    ));
    // The claimed prefix's page does not exist at all: not found.
    assert!(matches!(
        resolve("insecure.test/mod/nc/x").await,
        Err(DiscoveryError::NotFound { .. })
    ));
    // Tags served with a 404 status still count.
    assert_eq!(
        resolve("insecure.test/mod/d").await.expect("d").vcs,
        Vcs::Hg
    );
    assert!(matches!(
        resolve("insecure.test/mod/e").await,
        Err(DiscoveryError::Upstream { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/f").await,
        Err(DiscoveryError::NotFound { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/g").await,
        Err(DiscoveryError::NotFound { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/missing").await,
        Err(DiscoveryError::NotFound { .. })
    ));
    assert_eq!(
        resolve("insecure.test/mod/r")
            .await
            .expect("redirect")
            .repo_url,
        "https://git.example/r"
    );
    let looped = resolve("insecure.test/loop").await.unwrap_err();
    assert!(
        matches!(looped, DiscoveryError::Upstream { .. }),
        "{looped}"
    );
    assert_eq!(
        servers
            .seen_for(h)
            .iter()
            .filter(|s| s.target == "/loop?go-get=1")
            .count(),
        10,
        "ten requests in all, as Go's client allows"
    );
    let m = resolve("insecure.test/mod/m").await.expect("mod");
    assert_eq!(
        (m.vcs, m.repo_url.as_str()),
        (Vcs::Mod, "https://proxy.example/")
    );
    let s = resolve("insecure.test/mod/s").await.expect("subdir");
    assert_eq!(s.subdir.as_deref(), Some("go/s"));
    assert!(matches!(
        resolve("insecure.test/mod/dup/x").await,
        Err(DiscoveryError::Invalid { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/bzr").await,
        Err(DiscoveryError::Invalid { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/svn").await,
        Err(DiscoveryError::Forbidden { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/bad").await,
        Err(DiscoveryError::Invalid { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/badsub").await,
        Err(DiscoveryError::Invalid { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/other").await,
        Err(DiscoveryError::NotFound { .. })
    ));
    assert!(matches!(
        resolve("insecure.test/mod/junk").await,
        Err(DiscoveryError::Invalid { .. })
    ));

    // Everything arrived over plain HTTP (the HTTPS attempts hit a plain
    // server and failed), and netrc credentials were never sent over it.
    let seen = servers.seen_for(h);
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|s| s.scheme == "http" && s.authorization.is_none()),
        "{seen:?}"
    );
}

#[tokio::test]
async fn secure_discovery_credentials_and_redirects() {
    let main = start_with(|plain| {
        HashMap::from([
            route(
                "private.test",
                "/p?go-get=1",
                ok(&["private.test/p git https://private.test/p.git"]),
            ),
            route(
                "private.test",
                "/p/sub?go-get=1",
                ok(&["private.test/p git https://private.test/p.git"]),
            ),
            route(
                "other.test",
                "/q?go-get=1",
                ok(&["other.test/q git https://other.test/q"]),
            ),
            route(
                "private.test",
                "/moved?go-get=1",
                redirect("https://other.test/landing?go-get=1"),
            ),
            route(
                "other.test",
                "/landing?go-get=1",
                ok(&["private.test/moved git https://other.test/moved"]),
            ),
            route(
                "private.test",
                "/repo/info/refs?service=git-upload-pack",
                status(200, ""),
            ),
            route(
                "private.test",
                "/hgrepo?cmd=capabilities",
                status(200, "lookup"),
            ),
            route(
                "sub.private.test",
                "/x?go-get=1",
                ok(&["sub.private.test/x git https://s/x"]),
            ),
            route(
                "private.test",
                "/down?go-get=1",
                redirect(&format!("http://other.test:{}/down?go-get=1", plain.port())),
            ),
            route(
                "other.test",
                "/down?go-get=1",
                ok(&["private.test/down git https://x"]),
            ),
        ])
    })
    .await;

    let netrc = "machine private.test login alice password s3cret\nmachine unrelated.test login bob password nope\n";
    let env = env(&[("GOPRIVATE", "private.test")]);
    let c = DiscoveryClient::builder(&env)
        .pin_host("private.test", main.tls)
        .pin_host("sub.private.test", main.tls)
        .pin_host("other.test", main.tls)
        .add_root_certificate_pem(CERT_PEM.as_bytes())
        .netrc(Netrc::parse(netrc))
        .build()
        .expect("client");

    let p = resolve_repo("private.test/p/sub", &env, &c)
        .await
        .expect("p");
    assert_eq!(p.repo_url, "https://private.test/p.git");
    let q = resolve_repo("other.test/q", &env, &c).await.expect("q");
    assert_eq!(q.root, "other.test/q");
    let sub = resolve_repo("sub.private.test/x", &env, &c)
        .await
        .expect("sub");
    assert_eq!(sub.root, "sub.private.test/x");
    let moved = resolve_repo("private.test/moved", &env, &c)
        .await
        .expect("moved");
    assert_eq!(moved.repo_url, "https://other.test/moved");

    // `.git` paths are probed over HTTPS; credentials go along.
    let repo = resolve_repo("private.test/repo.git/sub", &env, &c)
        .await
        .expect("probe");
    assert_eq!(
        repo,
        RepoRoot {
            root: "private.test/repo.git".into(),
            vcs: Vcs::Git,
            repo_url: "https://private.test/repo".into(),
            subdir: None,
            is_custom: false,
        }
    );
    let hg = resolve_repo("private.test/hgrepo.hg", &env, &c)
        .await
        .expect("hg probe");
    assert_eq!(
        (hg.vcs, hg.repo_url.as_str()),
        (Vcs::Hg, "https://private.test/hgrepo")
    );
    let missing = resolve_repo("private.test/none.git", &env, &c)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, DiscoveryError::NotFound { .. }),
        "{missing}"
    );

    let private_seen = main.seen_for("private.test");
    assert!(!private_seen.is_empty());
    for s in &private_seen {
        assert_eq!(s.scheme, "https");
        assert_eq!(s.authorization.as_deref(), Some(ALICE_BASIC), "{s:?}");
    }
    for host in ["other.test", "sub.private.test"] {
        let seen = main.seen_for(host);
        assert!(!seen.is_empty(), "{host}");
        assert!(
            seen.iter().all(|s| s.authorization.is_none()),
            "{host}: {seen:?}"
        );
    }
    assert!(main
        .seen()
        .iter()
        .any(|s| s.method == "GET" && s.target == "/landing?go-get=1"));

    // A redirect from HTTPS to HTTP is refused without GOINSECURE: the
    // plain server never hears about it.
    let down = resolve_repo("private.test/down", &env, &c)
        .await
        .unwrap_err();
    assert!(matches!(down, DiscoveryError::Upstream { .. }), "{down}");
    assert!(main
        .seen()
        .iter()
        .any(|s| s.host == "private.test" && s.target == "/down?go-get=1"));
    assert!(
        main.seen().iter().all(|s| s.scheme == "https"),
        "{:?}",
        main.seen()
    );
}

#[tokio::test]
async fn https_required_without_goinsecure() {
    let servers = start(HashMap::from([route(
        "plain.test",
        "/x?go-get=1",
        ok(&["plain.test/x git https://plain.test/x"]),
    )]))
    .await;
    // The host only speaks plain HTTP; without GOINSECURE there is no fallback.
    let env_secure = env(&[]);
    let c = DiscoveryClient::builder(&env_secure)
        .pin_host("plain.test", servers.plain)
        .build()
        .expect("client");
    let err = resolve_repo("plain.test/x", &env_secure, &c)
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Upstream { .. }), "{err}");
    assert!(servers.seen().is_empty(), "{:?}", servers.seen());

    // With GOINSECURE the same path works over HTTP.
    let env_insecure = env(&[("GOINSECURE", "plain.test")]);
    let c = DiscoveryClient::builder(&env_insecure)
        .pin_host("plain.test", servers.plain)
        .build()
        .expect("client");
    assert_eq!(
        resolve_repo("plain.test/x", &env_insecure, &c)
            .await
            .expect("x")
            .root,
        "plain.test/x"
    );

    // Unverified HTTPS is accepted for GOINSECURE hosts (no root cert given).
    let tls_servers = start(HashMap::from([route(
        "secure.test",
        "/y?go-get=1",
        ok(&["secure.test/y git https://secure.test/y"]),
    )]))
    .await;
    let env_tls = env(&[("GOINSECURE", "secure.test")]);
    let c = DiscoveryClient::builder(&env_tls)
        .pin_host("secure.test", tls_servers.tls)
        .build()
        .expect("client");
    assert_eq!(
        resolve_repo("secure.test/y", &env_tls, &c)
            .await
            .expect("y")
            .root,
        "secure.test/y"
    );
    assert!(tls_servers.seen().iter().all(|s| s.scheme == "https"));
    // ...but not for others: the self-signed certificate is rejected.
    let env_strict = env(&[]);
    let c = DiscoveryClient::builder(&env_strict)
        .pin_host("secure.test", tls_servers.tls)
        .build()
        .expect("client");
    let err = resolve_repo("secure.test/y", &env_strict, &c)
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Upstream { .. }), "{err}");
}

#[tokio::test]
async fn http_proxy_from_go_env() {
    let servers = start(HashMap::from([route(
        "proxied.test",
        "http://proxied.test/x?go-get=1",
        ok(&["proxied.test/x git https://git.example/x"]),
    )]))
    .await;
    let proxy = format!("http://{}", servers.plain);
    // Direct connections to the host are refused (port 1), so success means
    // the request went through the proxy named by the GoEnv, not the process.
    let closed: SocketAddr = "127.0.0.1:1".parse().expect("addr");
    let via_proxy = env(&[
        ("GOINSECURE", "proxied.test"),
        ("HTTP_PROXY", proxy.as_str()),
    ]);
    let c = DiscoveryClient::builder(&via_proxy)
        .pin_host("proxied.test", closed)
        .build()
        .expect("client");
    let rr = resolve_repo("proxied.test/x", &via_proxy, &c)
        .await
        .expect("via proxy");
    assert_eq!(rr.repo_url, "https://git.example/x");
    assert_eq!(servers.seen().len(), 1);

    let bypass = env(&[
        ("GOINSECURE", "proxied.test"),
        ("HTTP_PROXY", proxy.as_str()),
        ("NO_PROXY", "proxied.test"),
    ]);
    let c = DiscoveryClient::builder(&bypass)
        .pin_host("proxied.test", closed)
        .build()
        .expect("client");
    let err = resolve_repo("proxied.test/x", &bypass, &c)
        .await
        .unwrap_err();
    assert!(matches!(err, DiscoveryError::Upstream { .. }), "{err}");
    assert_eq!(
        servers.seen().len(),
        1,
        "NO_PROXY kept the request off the proxy"
    );
}

/// Credentials chosen for the first URL go with a redirect only while it
/// stays on that URL's scheme, host and port, and never again once a hop
/// has left it, even back to the same host.
#[tokio::test]
async fn credentials_never_follow_a_redirect_off_their_origin() {
    let other_port = start(HashMap::from([route(
        "private.test",
        "/a?go-get=1",
        ok(&["private.test/a git https://private.test/a.git"]),
    )]))
    .await;
    let other_tls = other_port.tls.port();
    let main = start_with(|plain| {
        HashMap::from([
            route(
                "private.test",
                "/a?go-get=1",
                redirect(&format!("https://private.test:{other_tls}/a?go-get=1")),
            ),
            route(
                "private.test",
                "/bounce?go-get=1",
                redirect("https://other.test/back?go-get=1"),
            ),
            route(
                "other.test",
                "/back?go-get=1",
                redirect("https://private.test/home?go-get=1"),
            ),
            route(
                "private.test",
                "/home?go-get=1",
                ok(&["private.test/bounce git https://private.test/b.git"]),
            ),
            route(
                "private.test",
                "/same?go-get=1",
                redirect("/same/landing?go-get=1"),
            ),
            route(
                "private.test",
                "/same/landing?go-get=1",
                ok(&["private.test/same git https://private.test/s.git"]),
            ),
            route(
                "private.test",
                "/down?go-get=1",
                redirect(&format!(
                    "http://private.test:{}/down/plain?go-get=1",
                    plain.port()
                )),
            ),
            route(
                "private.test",
                "/down/plain?go-get=1",
                ok(&["private.test/down git https://private.test/d.git"]),
            ),
        ])
    })
    .await;
    let netrc = "machine private.test login alice password s3cret\nmachine other.test login bob password nope\n";
    let secure_env = env(&[("GOPRIVATE", "private.test")]);
    let insecure_env = env(&[
        ("GOPRIVATE", "private.test"),
        ("GOINSECURE", "private.test"),
    ]);
    let client = |env: &GoEnv| {
        DiscoveryClient::builder(env)
            .pin_host("private.test", main.tls)
            .pin_host("other.test", main.tls)
            .add_root_certificate_pem(CERT_PEM.as_bytes())
            .netrc(Netrc::parse(netrc))
            .build()
            .expect("client")
    };
    let c = client(&secure_env);

    // Same host, another port.
    let a = resolve_repo("private.test/a", &secure_env, &c)
        .await
        .expect("a");
    assert_eq!(a.repo_url, "https://private.test/a.git");
    let first = main.seen_for("private.test");
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].authorization.as_deref(), Some(ALICE_BASIC));
    let moved = other_port.seen();
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0].authorization, None, "{moved:?}");

    // Away to another host (which has its own entry) and back again.
    let bounce = resolve_repo("private.test/bounce", &secure_env, &c)
        .await
        .expect("bounce");
    assert_eq!(bounce.repo_url, "https://private.test/b.git");
    let auth_of = |target: &str| {
        let hits: Vec<Seen> = main
            .seen()
            .into_iter()
            .filter(|s| s.target == target)
            .collect();
        assert_eq!(hits.len(), 1, "{target}: {hits:?}");
        hits[0].authorization.clone()
    };
    assert_eq!(auth_of("/bounce?go-get=1").as_deref(), Some(ALICE_BASIC));
    assert_eq!(auth_of("/back?go-get=1"), None);
    assert_eq!(auth_of("/home?go-get=1"), None);

    // A redirect within the origin keeps them.
    resolve_repo("private.test/same", &secure_env, &c)
        .await
        .expect("same");
    assert_eq!(auth_of("/same?go-get=1").as_deref(), Some(ALICE_BASIC));
    assert_eq!(
        auth_of("/same/landing?go-get=1").as_deref(),
        Some(ALICE_BASIC)
    );

    // GOINSECURE lets https be redirected to http; the credentials stay on
    // https.
    let insecure = client(&insecure_env);
    let down = resolve_repo("private.test/down", &insecure_env, &insecure)
        .await
        .expect("down");
    assert_eq!(down.repo_url, "https://private.test/d.git");
    assert_eq!(auth_of("/down?go-get=1").as_deref(), Some(ALICE_BASIC));
    let plain_hits: Vec<Seen> = main
        .seen()
        .into_iter()
        .filter(|s| s.scheme == "http")
        .collect();
    assert_eq!(plain_hits.len(), 1, "{plain_hits:?}");
    assert_eq!(plain_hits[0].authorization, None);
}

/// GOAUTH's authenticator form on a go-import page that wants a token: the
/// command runs once without a URL, then with the page's URL (query
/// included) and the 401 on its input, and the page is fetched again with
/// what it printed; a 4xx whose credentials do not change is not asked
/// twice.
#[tokio::test]
async fn goauth_command_credentials_after_a_401() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("runs");
    let script = dir.path().join("auth");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfirst=$(head -n 1)\necho \"$#|$1|$first\" >> '{}'\n[ $# -eq 0 ] && exit 0\nprintf 'https://private.test/auth\\n\\nAuthorization: Bearer t0k\\n\\n'\n",
            log.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let main = start(HashMap::from([route(
        "private.test",
        "/auth/mod?go-get=1",
        Reply {
            needs: Some("Bearer t0k"),
            ..ok(&["private.test/auth/mod git https://private.test/auth/mod.git"])
        },
    )]))
    .await;
    let env = env(&[
        ("GOPRIVATE", "private.test"),
        ("GOAUTH", &script.display().to_string()),
    ]);
    let c = DiscoveryClient::builder(&env)
        .pin_host("private.test", main.tls)
        .add_root_certificate_pem(CERT_PEM.as_bytes())
        .build()
        .expect("client");

    let found = resolve_repo("private.test/auth/mod", &env, &c)
        .await
        .expect("resolved with the token");
    assert_eq!(found.repo_url, "https://private.test/auth/mod.git");
    let auths: Vec<Option<String>> = main
        .seen_for("private.test")
        .into_iter()
        .map(|s| s.authorization)
        .collect();
    assert_eq!(auths, [None, Some("Bearer t0k".to_string())]);
    assert_eq!(
        std::fs::read_to_string(&log).expect("runs"),
        "0||\n1|https://private.test/auth/mod?go-get=1|HTTP/1.1 401 Unauthorized\n"
    );

    // A 404 elsewhere: the command runs with that URL, but nothing new
    // applies there, so the page is not asked for again.
    let missing = resolve_repo("private.test/none", &env, &c).await;
    assert!(missing.is_err());
    let none_seen = main
        .seen_for("private.test")
        .into_iter()
        .filter(|s| s.target == "/none?go-get=1")
        .count();
    assert_eq!(none_seen, 1);
    assert!(std::fs::read_to_string(&log)
        .expect("runs")
        .ends_with("1|https://private.test/none?go-get=1|HTTP/1.1 404 Not Found\n"));
}
