//! Traces and profiles of the real binary.
//!
//! Traces over OTLP/gRPC (`TraceExporter = "otlp"`) are received by a fake
//! collector made of the OTLP protobuf service: the spans of known
//! requests with their attributes and parent/child links, nothing at
//! `TraceSamplingFraction = 0`, and a collector that hangs or refuses
//! slowing neither requests nor shutdown.
//!
//! Profiles (`EnablePprof`): a CPU profile taken under load and a heap
//! profile, both read by `go tool pprof` (the oracle); without
//! `EnablePprof`, no profiling port at all.

// Only some helpers are used here.
#[allow(dead_code, unused_imports)]
mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use support::{bare_clone, build_repo, write_gitconfig, GitHttpServer, Server, ServerSetup};

const LIB: &str = "github.com/acme/e2e-lib";

/// What the fake collector received.
#[derive(Default, Clone)]
struct Received(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

impl Received {
    fn spans(&self) -> Vec<Span> {
        let requests = self.0.lock().unwrap();
        requests
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }

    /// Everything received, encoded again: to search for what must never
    /// be exported.
    fn raw(&self) -> Vec<u8> {
        let requests = self.0.lock().unwrap();
        requests.iter().flat_map(|r| r.encode_to_vec()).collect()
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A fake OTLP/gRPC collector on a loopback port, stopped when dropped.
struct Collector {
    received: Received,
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start() -> Collector {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let received = Received::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let service = TraceServiceServer::new(received.clone());
        runtime.spawn(async move {
            let incoming = tokio_stream_of(listener);
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        Collector {
            received,
            port,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The accepted connections of `listener` as the stream tonic serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

/// A GET with extra header lines; the status.
fn get_with(port: u16, path: &str, headers: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let head = String::from_utf8_lossy(&raw[..raw.len().min(64)]).to_string();
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad response {head:?}"))
}

fn get(port: u16, path: &str) -> u16 {
    get_with(port, path, "")
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The attributes of a span as strings.
fn attributes(span: &Span) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

fn traced_env(url: &str, go_env: &str, fraction: &str) -> Vec<(String, String)> {
    [
        ("ATHENS_TRACE_EXPORTER", "otlp"),
        ("ATHENS_TRACE_EXPORTER_URL", url),
        ("ATHENS_TRACE_SAMPLING_FRACTION", fraction),
        ("GO_ENV", go_env),
        // Export every 100 ms rather than every 5 s, so the test is quick.
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn terminate(server: &mut Server) -> Duration {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    assert!(
        server.wait_exit(Duration::from_secs(60)),
        "athens still running after SIGTERM"
    );
    signalled.elapsed()
}

#[test]
fn requests_are_exported_as_spans_with_their_children() {
    let collector = Collector::start();
    let repo = build_repo("e2e-lib");
    let scratch = tempfile::tempdir().unwrap();
    let served = scratch.path().join("srv");
    std::fs::create_dir_all(&served).unwrap();
    bare_clone(&repo, &served, "e2e-lib");
    let git = GitHttpServer::start(served);
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[("e2e-lib", git.url("e2e-lib.git"))]);
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = traced_env(&collector.url(), "production", "1.0");
    let mut server = Server::start(&setup);
    let port = server.port();

    // A client's trace is continued: its trace id, our span its child.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("traceparent: 00-{client_trace}-{client_span}-01\r\n");
    let info = format!("/{LIB}/@v/v1.0.0.info");
    assert_eq!(get_with(port, &info, &traceparent), 200);
    let zip = format!("/{LIB}/@v/v1.0.0.zip");
    assert_eq!(get(port, &zip), 200);
    // Credentials in headers and the query string are never exported.
    let secret_headers = "Authorization: Basic c2VjcmV0LXVzZXI6c2VjcmV0LXBhc3M=\r\n";
    let missing = "/github.com/acme/nothing-here/@v/v1.0.0.info";
    assert_eq!(
        get_with(
            port,
            &format!("{missing}?token=secret-token"),
            secret_headers
        ),
        404
    );

    let server_span = |spans: &[Span], path: &str| -> Option<Span> {
        spans
            .iter()
            .find(|s| s.kind == SpanKind::Server as i32 && attributes(s)["url.path"] == path)
            .cloned()
    };
    wait_until(Duration::from_secs(60), "the three server spans", || {
        let spans = collector.received.spans();
        [&info, &zip, missing]
            .iter()
            .all(|p| server_span(&spans, p).is_some())
    });
    // The spans of the cold fetch may still be on their way.
    let spans = collector.received.spans();
    let info_span = server_span(&spans, &info).unwrap();
    assert_eq!(info_span.name, "GET info");
    assert_eq!(hex(&info_span.trace_id), client_trace);
    assert_eq!(hex(&info_span.parent_span_id), client_span);
    let attrs = attributes(&info_span);
    assert_eq!(attrs["http.route"], "info");
    assert_eq!(attrs["http.request.method"], "GET");
    assert_eq!(attrs["http.response.status_code"], "200");
    // Under it: the storage read that missed, and the fetch (run by the
    // stash in a task of its own) with the save under it.
    let children = |parent: &Span| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| s.parent_span_id == parent.span_id && s.trace_id == parent.trace_id)
            .cloned()
            .collect()
    };
    let descendants = |root: &Span| -> Vec<Span> {
        let mut found = Vec::new();
        let mut queue = vec![root.clone()];
        while let Some(span) = queue.pop() {
            for child in children(&span) {
                queue.push(child.clone());
                found.push(child);
            }
        }
        found
    };
    let storage_info = children(&info_span)
        .into_iter()
        .find(|s| s.name == "storage.info")
        .unwrap_or_else(|| panic!("no storage.info under GET info: {spans:#?}"));
    let storage_attrs = attributes(&storage_info);
    assert_eq!(storage_attrs["athens.module"], LIB);
    assert_eq!(storage_attrs["athens.version"], "v1.0.0");
    assert_eq!(storage_attrs["athens.found"], "false");
    let under_info: Vec<String> = descendants(&info_span)
        .iter()
        .map(|s| s.name.clone())
        .collect();
    for name in ["fetch", "storage.save"] {
        assert!(
            under_info.iter().any(|n| n == name),
            "{name} not under GET info: {under_info:?}"
        );
    }

    let zip_span = server_span(&spans, &zip).unwrap();
    assert_eq!(zip_span.name, "GET zip");
    // A fresh trace of our own.
    assert_ne!(hex(&zip_span.trace_id), client_trace);
    assert!(zip_span.parent_span_id.is_empty());
    let storage_zip = children(&zip_span)
        .into_iter()
        .find(|s| s.name == "storage.zip")
        .expect("storage.zip under GET zip");
    assert_eq!(attributes(&storage_zip)["athens.found"], "true");

    let missing_span = server_span(&spans, missing).unwrap();
    assert_eq!(
        attributes(&missing_span)["http.response.status_code"],
        "404"
    );

    // The resource names the service as Athens does.
    let requests = collector.received.0.lock().unwrap().clone();
    let service_names: Vec<String> = requests
        .iter()
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| r.resource.iter())
        .flat_map(|r| &r.attributes)
        .filter(|kv| kv.key == "service.name")
        .map(|kv| format!("{:?}", kv.value))
        .collect();
    assert!(!service_names.is_empty());
    assert!(service_names.iter().all(|n| n.contains("\"proxy\"")));

    let took = terminate(&mut server);
    let raw = collector.received.raw();
    for secret in ["secret-token", "c2VjcmV0", "secret-user"] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} was exported"
        );
    }
    assert!(took < Duration::from_secs(30), "shutdown took {took:?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sampling_fraction_zero_exports_nothing() {
    let collector = Collector::start();
    let scratch = tempfile::tempdir().unwrap();
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = traced_env(&collector.url(), "production", "0");
    let mut server = Server::start(&setup);
    let port = server.port();
    for _ in 0..5 {
        assert_eq!(get(port, "/healthz"), 200);
        assert_eq!(get(port, "/github.com/acme/nothing/@v/list"), 404);
    }
    // Shutdown exports whatever is queued: after it, nothing more can come.
    terminate(&mut server);
    assert!(
        collector.received.spans().is_empty(),
        "{:#?}",
        collector.received.spans()
    );
}

/// A collector that accepts connections and never answers, or one whose
/// port refuses them: requests are as quick as ever, and SIGTERM still
/// ends the server promptly.
#[test]
fn a_collector_that_hangs_or_refuses_slows_nothing() {
    // Accepts, then holds every connection open without a byte.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let hanging_port = hanging.local_addr().unwrap().port();
    let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
    {
        let held = Arc::clone(&held);
        std::thread::spawn(move || {
            for stream in hanging.incoming().flatten() {
                held.lock().unwrap().push(stream);
            }
        });
    }
    // A port nothing listens on.
    let refusing_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let scratch = tempfile::tempdir().unwrap();
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    for (what, port) in [("hanging", hanging_port), ("refusing", refusing_port)] {
        let mut setup = ServerSetup::memory(&gitconfig);
        setup.extra_env = traced_env(&format!("http://127.0.0.1:{port}"), "production", "1");
        let mut server = Server::start(&setup);
        if what == "hanging" {
            // The exporter is stuck in its first export.
            wait_until(
                Duration::from_secs(60),
                "a connection to the collector",
                || !held.lock().unwrap().is_empty(),
            );
        }
        let started = Instant::now();
        for _ in 0..50 {
            assert_eq!(get(server.port(), "/healthz"), 200);
        }
        let took = started.elapsed();
        // Normally well under a second; the bound is loose enough for a
        // loaded machine and only catches requests that wait for the
        // collector (50 of them waiting out its 10 s export timeout would
        // take minutes).
        assert!(
            took < Duration::from_secs(60),
            "{what}: 50 requests took {took:?}"
        );
        if what == "refusing" {
            // The operator is told, once.
            wait_until(Duration::from_secs(60), "the export failure logged", || {
                server.raw_log_text().contains("exporting traces failed")
            });
        }
        let took = terminate(&mut server);
        // One line for the failing collector, not one per batch.
        let lines = server
            .raw_log_text()
            .matches("exporting traces failed")
            .count();
        assert!(lines <= 1, "{what}: {lines} lines");
        // Shutdown gives the last export 5 s at most.
        assert!(
            took < Duration::from_secs(30),
            "{what}: shutdown took {took:?}"
        );
    }
}

/// Runs `go tool pprof ARGS FILE` and returns its output; fails the test
/// when the tool does.
fn go_tool_pprof(
    go: &std::path::Path,
    scratch: &std::path::Path,
    args: &[&str],
    file: &std::path::Path,
) -> String {
    let output = std::process::Command::new(go)
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        // The tool is built once into the usual GOCACHE (scripts/test.sh
        // does it before the tests); a private HOME would build it anew.
        .env("PPROF_TMPDIR", scratch)
        .output()
        .expect("running go tool pprof");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    format!("{stdout}\n{stderr}")
}

/// A CPU profile from `PprofPort` while requests keep the server busy,
/// read by `go tool pprof -top`; then a heap profile, read by
/// `go tool pprof -traces`; the proxy's own port has no profiling
/// endpoints.
#[test]
fn cpu_and_heap_profiles_are_read_by_go_tool_pprof() {
    let go = fixtures::locate_go().expect("the go command (GO)");
    let scratch = tempfile::tempdir().unwrap();
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    let mut server = None;
    let mut pprof_port = 0;
    // The profiling port is chosen before the server binds it; a port
    // taken meanwhile stops the start (see pprof::start), then another
    // is tried.
    for _ in 0..3 {
        pprof_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut setup = ServerSetup::memory(&gitconfig);
        setup.extra_env = vec![
            ("ATHENS_ENABLE_PPROF".into(), "true".into()),
            (
                "ATHENS_PPROF_PORT".into(),
                format!("127.0.0.1:{pprof_port}"),
            ),
            // One allocation sampled per KiB allocated rather than per
            // 512 KiB: the little this test's server keeps in memory is
            // then sure to be in the heap profile. jemalloc reads this
            // variable (under tikv-jemallocator's prefix) after the
            // binary's own options, which set the rest.
            ("_RJEM_MALLOC_CONF".into(), "lg_prof_sample:10".into()),
        ];
        let started = std::panic::catch_unwind(|| Server::start(&setup));
        if let Ok(started) = started {
            server = Some(started);
            break;
        }
    }
    let server = server.expect("athens with EnablePprof started");
    let port = server.port();
    assert_eq!(get(port, "/debug/pprof/profile?seconds=1"), 404);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    get(port, "/github.com/acme/nothing/@v/list");
                    get(port, "/healthz");
                }
            })
        })
        .collect();
    let profile = support::http_get(pprof_port, "/debug/pprof/profile?seconds=2");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for thread in load {
        thread.join().unwrap();
    }
    let (status, body) = profile.expect("profile request");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let file = scratch.path().join("cpu.pb");
    std::fs::write(&file, &body).unwrap();
    let stdout = go_tool_pprof(&go, scratch.path(), &["-top"], &file);
    // The header of the listing, then a row per function with samples.
    assert!(stdout.contains("Type: cpu"), "{stdout}");
    assert!(stdout.contains("flat  flat%"), "{stdout}");
    let rows = stdout
        .lines()
        .skip_while(|l| !l.contains("flat  flat%"))
        .skip(1)
        .filter(|l| l.contains('%'))
        .count();
    assert!(rows > 0, "no samples:\n{stdout}");
    // Samples are charged to the server's code (symbolized), not to the
    // profiler's own signal handler.
    assert!(
        stdout.contains("tokio::") || stdout.contains("hyper::"),
        "{stdout}"
    );
    assert!(!stdout.contains("perf_signal_handler"), "{stdout}");

    // The heap: what the server allocated since the profiler was
    // activated at start and still holds (its routers, connections,
    // caches), by allocating stack, with the functions named by the
    // server itself (go tool pprof has no binary to look them up in).
    let (status, body) = support::http_get(pprof_port, "/debug/pprof/heap").unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(body.starts_with(&[0x1f, 0x8b]), "not gzipped");
    let file = scratch.path().join("heap.pb.gz");
    std::fs::write(&file, &body).unwrap();
    let traces = go_tool_pprof(&go, scratch.path(), &["-traces"], &file);
    assert!(traces.contains("Type: inuse_space"), "{traces}");
    assert!(
        traces.contains("athens::"),
        "no function of athens:\n{traces}"
    );
    // Memory is charged to the code that asked for it, not to jemalloc's
    // sampling (its frames are dropped from the stacks).
    assert!(!traces.contains("prof_backtrace"), "{traces}");
    assert!(!traces.contains("_rjem_"), "{traces}");

    // Go's allocs (every allocation since the start) has no equivalent
    // in jemalloc's profile of live allocations.
    let (status, body) = support::http_get(pprof_port, "/debug/pprof/allocs").unwrap();
    assert_eq!(status, 501);
    assert!(String::from_utf8_lossy(&body).contains("/debug/pprof/heap"));
}

/// Without `EnablePprof` nothing is served on `PprofPort`, so heap
/// profiling is never activated: the server starts while the port is held
/// by this test, which it could not if it tried to listen there.
#[test]
fn without_enable_pprof_the_profiling_port_is_not_listened_on() {
    let scratch = tempfile::tempdir().unwrap();
    let gitconfig = scratch.path().join("gitconfig");
    write_gitconfig(&gitconfig, &[]);
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let pprof_port = held.local_addr().unwrap().port();
    let mut setup = ServerSetup::memory(&gitconfig);
    setup.extra_env = vec![(
        "ATHENS_PPROF_PORT".into(),
        format!("127.0.0.1:{pprof_port}"),
    )];
    let server = Server::start(&setup);
    assert_eq!(get(server.port(), "/healthz"), 200);
    assert_eq!(get(server.port(), "/debug/pprof/heap"), 404);
    assert!(
        !server.raw_log_text().contains("PprofPort"),
        "{}",
        server.raw_log_text()
    );
    drop(held);
}
