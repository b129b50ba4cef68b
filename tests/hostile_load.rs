//! Floods and slow clients against the real `athens` binary: stored files
//! stay fast while misses queue behind a slow upstream, clients that hang
//! up leave no queued work, slow or idle connections are closed, overload
//! answers 503 with `Retry-After`, deadlines answer 504, SIGTERM ends the
//! process within `ShutdownTimeout`, and overlong paths answer 4xx.
//!
//! The upstream is a tiny HTTP server in the test (a GOPROXY) that sleeps
//! before answering 404; stored versions are written straight into a disk
//! storage root in Athens' layout.

// Shared with the other end-to-end tests; this one uses only part of it.
#[allow(dead_code, unused_imports)]
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{http_get, Server, ServerSetup};

const STORED: &str = "example.com/stored";

/// A GOPROXY that answers every request with 404 after `delay`,
/// counting the requests it has received.
struct SlowUpstream {
    port: u16,
    received: Arc<AtomicUsize>,
}

impl SlowUpstream {
    fn start(delay: Duration) -> SlowUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding upstream");
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        // The accept thread lives as long as the test process; every
        // connection thread ends after its answer.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    if support::read_request_head(&mut stream).is_none() {
                        return;
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    let body = "not found: slow upstream has nothing\n";
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        SlowUpstream { port, received }
    }

    fn url(&self, prefix: &str) -> String {
        format!("http://127.0.0.1:{}{prefix}", self.port)
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

/// A disk storage root holding `example.com/stored@v1.0.0`.
fn stored_root(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("storage");
    let version = root.join(STORED).join("v1.0.0");
    std::fs::create_dir_all(&version).unwrap();
    std::fs::write(version.join("go.mod"), format!("module {STORED}\n")).unwrap();
    std::fs::write(version.join("source.zip"), b"PK\x05\x06stored zip").unwrap();
    std::fs::write(
        version.join("v1.0.0.info"),
        r#"{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    root
}

/// Athens on `root`, fetching only from `goproxy`, with more settings.
fn start(dir: &Path, root: &Path, goproxy: &str, settings: &[(&str, &str)]) -> Server {
    let gitconfig = dir.join("gitconfig");
    std::fs::write(&gitconfig, "").unwrap();
    let mut setup = ServerSetup::disk(root, &gitconfig);
    setup.extra_env.push((
        "ATHENS_GO_BINARY_ENV_VARS".into(),
        format!("GOPROXY={goproxy}; GOSUMDB=off"),
    ));
    for (key, value) in settings {
        setup.extra_env.push((key.to_string(), value.to_string()));
    }
    Server::start(&setup)
}

/// Sends a GET and returns the stream without reading the answer.
fn send_get(port: u16, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    stream
}

/// Reads a whole `Connection: close` answer: status and head.
fn read_answer(mut stream: TcpStream, limit: Duration) -> std::io::Result<(u16, String)> {
    stream.set_read_timeout(Some(limit))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {text:?}")))?;
    Ok((status, text))
}

/// A stored `.info`, timed.
fn timed_hit(port: u16) -> Duration {
    let started = Instant::now();
    let (status, body) = http_get(port, &format!("/{STORED}/@v/v1.0.0.info")).unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    started.elapsed()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc status")
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stored_files_are_served_while_slow_misses_queue() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let upstream = SlowUpstream::start(Duration::from_secs(10));
    let server = start(dir.path(), &root, &upstream.url(""), &[]);
    let port = server.port();
    // 48 misses: GoGetWorkers (10) reach the upstream, the rest queue.
    let misses: Vec<TcpStream> = (0..48)
        .map(|i| send_get(port, &format!("/example.com/slow/@v/v1.0.{i}.info")))
        .collect();
    wait_until(Duration::from_secs(5), "misses to reach upstream", || {
        upstream.received() >= 10
    });
    for _ in 0..20 {
        let took = timed_hit(port);
        // The misses take 10 s; a hit that waited for one would show.
        assert!(took < Duration::from_secs(3), "stored .info took {took:?}");
    }
    // The .mod and .zip of a stored version do not wait either.
    let started = Instant::now();
    assert_eq!(
        http_get(port, &format!("/{STORED}/@v/v1.0.0.zip"))
            .unwrap()
            .0,
        200
    );
    assert_eq!(
        http_get(port, &format!("/{STORED}/@v/v1.0.0.mod"))
            .unwrap()
            .0,
        200
    );
    assert!(started.elapsed() < Duration::from_secs(4));
    // The misses were still in flight all along.
    assert_eq!(
        upstream.received(),
        10,
        "GoGetWorkers bounds upstream fetches"
    );
    drop(misses);
}

#[test]
fn cancelled_flood_leaves_no_queued_work_and_overload_is_503() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let upstream = SlowUpstream::start(Duration::from_secs(2));
    let server = start(
        dir.path(),
        &root,
        &upstream.url(""),
        &[
            ("ATHENS_GOGET_WORKERS", "4"),
            ("ATHENS_MAX_PENDING_FETCHES", "50"),
            ("ATHENS_LOG_LEVEL", "warn"),
        ],
    );
    let port = server.port();
    let rss_before = rss_kib(server.pid());
    let started = Instant::now();
    for i in 0..5000 {
        let stream = send_get(port, &format!("/example.com/flood/@v/v0.0.{i}.info"));
        let _ = stream.shutdown(Shutdown::Both);
    }
    let flood = started.elapsed();
    // Healthy and fast right after the flood.
    assert_eq!(http_get(port, "/healthz").unwrap().0, 200);
    let took = timed_hit(port);
    assert!(
        took < Duration::from_secs(1),
        "stored .info took {took:?} after the flood"
    );
    // Only stashes that got a worker reached the upstream: the queued ones
    // were dropped when their clients went away.
    std::thread::sleep(Duration::from_secs(3));
    let fetched = upstream.received();
    assert!(
        fetched < 200,
        "{fetched} of 5000 cancelled requests were fetched (flood took {flood:?})"
    );
    // Drained: a new miss reaches the upstream at once, not behind a queue.
    let probe = send_get(port, "/example.com/flood/@v/v1.9.9.info");
    wait_until(
        Duration::from_secs(2),
        "the probe to reach upstream",
        || upstream.received() > fetched,
    );
    let (status, _) = read_answer(probe, Duration::from_secs(10)).unwrap();
    assert_eq!(status, 404);
    let rss_after = rss_kib(server.pid());
    eprintln!(
        "flood of 5000 cancelled requests took {flood:?}; {fetched} reached upstream; RSS {rss_before} -> {rss_after} KiB"
    );
    assert!(
        rss_after < rss_before + 100 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );

    // Past MaxPendingFetches (50) distinct misses, 503 with Retry-After;
    // a request for a version already pending still joins it.
    let held: Vec<TcpStream> = (0..50)
        .map(|i| send_get(port, &format!("/example.com/held/@v/v1.0.{i}.info")))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, head) = read_answer(
        send_get(port, "/example.com/held/@v/v1.1.0.info"),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: "),
        "{head}"
    );
    assert!(head.contains("MaxPendingFetches"), "{head}");
    let joined = send_get(port, "/example.com/held/@v/v1.0.0.info");
    let (status, head) = read_answer(joined, Duration::from_secs(30)).unwrap();
    assert_eq!(status, 404, "{head}");
    drop(held);
}

#[test]
fn slow_and_idle_connections_are_closed_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let server = start(
        dir.path(),
        &root,
        "off",
        &[
            ("ATHENS_READ_HEADER_TIMEOUT", "2"),
            ("ATHENS_IDLE_TIMEOUT", "3"),
            ("ATHENS_MAX_CONNECTIONS", "60"),
        ],
    );
    let port = server.port();
    // Slowloris: 40 connections send their headers one byte at a time.
    let request = format!(
        "GET /{STORED}/@v/v1.0.0.info HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(200)
    );
    let mut slow: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let started = Instant::now();
    let mut closed_at: Vec<Option<Duration>> = vec![None; slow.len()];
    let mut sent = 0;
    while closed_at.iter().any(Option::is_none) && started.elapsed() < Duration::from_secs(8) {
        for (i, stream) in slow.iter_mut().enumerate() {
            if closed_at[i].is_none()
                && stream
                    .write_all(&request.as_bytes()[sent..sent + 1])
                    .is_err()
            {
                closed_at[i] = Some(started.elapsed());
            }
        }
        sent += 1;
        // A normal request is answered at once meanwhile.
        if sent % 5 == 0 {
            let took = timed_hit(port);
            assert!(
                took < Duration::from_secs(1),
                "hit took {took:?} during slowloris"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, stream) in slow.iter_mut().enumerate() {
        if closed_at[i].is_none() {
            // A closed socket may still take a write; a read tells for sure.
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut buf = [0u8; 64];
            let still_open = matches!(
                stream.read(&mut buf),
                Err(ref e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            );
            if !still_open {
                closed_at[i] = Some(started.elapsed());
            }
        }
    }
    for (i, at) in closed_at.iter().enumerate() {
        let at = at.unwrap_or_else(|| panic!("slow connection {i} still open after 8s"));
        assert!(
            at >= Duration::from_millis(1500),
            "connection {i} closed early: {at:?}"
        );
    }

    // An idle keep-alive connection is closed after IdleTimeout.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    assert!(idle.read(&mut buf).unwrap() > 0);
    let idle_since = Instant::now();
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "idle connection got more data");
    let waited = idle_since.elapsed();
    assert!(
        waited >= Duration::from_millis(2500) && waited < Duration::from_secs(6),
        "idle connection closed after {waited:?}"
    );
}

#[test]
fn connection_cap_holds_further_clients_until_one_closes() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let server = start(dir.path(), &root, "off", &[("ATHENS_MAX_CONNECTIONS", "8")]);
    let port = server.port();
    // Eight keep-alive connections, each after one answered request.
    let mut open: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            assert!(s.read(&mut buf).unwrap() > 0);
            s
        })
        .collect();
    let ninth = send_get(port, &format!("/{STORED}/@v/v1.0.0.info"));
    let mut waiting = ninth.try_clone().unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 16];
    let early = waiting.read(&mut buf);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a ninth connection was served beyond MaxConnections=8: {early:?}"
    );
    open.pop();
    let started = Instant::now();
    let (status, head) = read_answer(ninth, Duration::from_secs(5)).unwrap();
    assert_eq!(status, 200, "{head}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn sigterm_with_fetches_in_flight_exits_within_shutdown_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let slow = SlowUpstream::start(Duration::from_secs(60));
    let mut server = start(
        dir.path(),
        &root,
        &slow.url(""),
        &[("ATHENS_SHUTDOWN_TIMEOUT", "3"), ("ATHENS_TIMEOUT", "120")],
    );
    let port = server.port();
    let stuck: Vec<TcpStream> = (0..6)
        .map(|i| send_get(port, &format!("/example.com/stuck/@v/v1.0.{i}.info")))
        .collect();
    wait_until(Duration::from_secs(5), "fetches in flight", || {
        slow.received() >= 6
    });
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    assert!(
        server.wait_exit(Duration::from_secs(3 + 4)),
        "athens still running {:?} after SIGTERM",
        signalled.elapsed()
    );
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "exited after {took:?}, before the grace period"
    );
    // The new connection after the signal is refused.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    drop(stuck);
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let upstream = SlowUpstream::start(Duration::from_millis(1000));
    let mut server = start(
        dir.path(),
        &root,
        &upstream.url(""),
        &[("ATHENS_SHUTDOWN_TIMEOUT", "10")],
    );
    let port = server.port();
    let pending = send_get(port, "/example.com/late/@v/v1.0.0.info");
    wait_until(Duration::from_secs(5), "the fetch to start", || {
        upstream.received() >= 1
    });
    let signalled = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    let (status, head) = read_answer(pending, Duration::from_secs(10)).unwrap();
    assert_eq!(status, 404, "{head}");
    // Nothing left in flight: the process ends well before the 10 s grace.
    assert!(server.wait_exit(Duration::from_secs(5)));
    assert!(signalled.elapsed() < Duration::from_secs(8));
}

#[test]
fn overlong_paths_and_versions_are_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let upstream = SlowUpstream::start(Duration::ZERO);
    let server = start(dir.path(), &root, &upstream.url(""), &[]);
    let port = server.port();
    let long = "a".repeat(5000);
    let paths = [
        format!("/example.com/m/@v/v1.0.0-{long}.info"),
        format!("/example.com/m/@v/v1.0.0-{long}.zip"),
        format!("/example.com/m/@v/{long}.info"),
        format!("/example.com/{long}/@v/v1.0.0.info"),
        format!("/example.com/{long}/@v/list"),
        format!("/example.com/{long}/@latest"),
        format!("/example.com/{}/@v/v1.0.0.mod", "ab/".repeat(2000)),
        format!("/example.com/m/@v/v1.0.0-{}.info", "!a".repeat(3000)),
    ];
    for path in &paths {
        let (status, body) = http_get(port, path).unwrap();
        assert!(
            (400..500).contains(&status),
            "{}...: {status} {}",
            &path[..60],
            String::from_utf8_lossy(&body)
        );
    }
    // Nothing went upstream for them, and the server is fine.
    assert_eq!(upstream.received(), 0);
    assert!(timed_hit(port) < Duration::from_secs(1));
}

#[test]
fn list_and_latest_answer_504_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let root = stored_root(dir.path());
    let upstream = SlowUpstream::start(Duration::from_secs(30));
    // Two entries joined by '|': the upstream client's own timeout on the
    // first (also Timeout) falls through to the second, so only the
    // request's deadline can end the request at Timeout.
    let server = start(
        dir.path(),
        &root,
        &format!("{}|{}", upstream.url("/a"), upstream.url("/b")),
        &[("ATHENS_TIMEOUT", "2")],
    );
    let port = server.port();
    for path in [
        "/example.com/slow/@v/list",
        "/example.com/slow/@latest",
        "/example.com/slow/@v/main.info",
    ] {
        let started = Instant::now();
        let (status, body) = http_get(port, path).unwrap();
        let took = started.elapsed();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 504, "{path}: {body}");
        assert!(body.contains("Timeout"), "{path}: {body}");
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
            "{path} answered after {took:?}"
        );
    }
    // Stored files were never in the way.
    assert!(timed_hit(port) < Duration::from_secs(1));
}
