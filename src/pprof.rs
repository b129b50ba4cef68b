//! Profiling endpoints on `PprofPort` when `EnablePprof` is set, where
//! Athens serves Go's `net/http/pprof`: a separate listener, so the
//! endpoints are never reachable through the proxy's own port.
//!
//! - `/debug/pprof/profile?seconds=N`: a CPU profile of the whole process
//!   over N seconds (30 by default, as Go's), sampled 100 times a second
//!   by `SIGPROF`, in pprof's protobuf format (`go tool pprof` reads it).
//! - `/debug/pprof/heap`: the memory in use, by the stacks that allocated
//!   it, sampled by jemalloc's profiler (the `athens` binary's allocator,
//!   see src/main.rs) and converted by jemalloc_pprof into pprof's gzipped
//!   protobuf format, with function names resolved in the process. The
//!   profiler is activated at start when `EnablePprof` is set and stays
//!   inactive otherwise; a process where it is not active (or whose
//!   allocator is not jemalloc) answers 503 with the reason.
//! - `/debug/pprof/allocs`: 501 Not Implemented. Go's `allocs` counts
//!   every allocation since the start; jemalloc's profile dump (without
//!   `prof_accum`) holds only the sampled allocations still live, which is
//!   the heap profile.
//! - `/debug/pprof/`: what is available.
//!
//! Only one CPU profile runs at a time (the profiling timer is
//! process-wide); another request meanwhile is answered 409 Conflict.
//! Heap profiles are taken one at a time too (jemalloc_pprof's lock), but
//! a request waits its turn: a dump takes well under a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::config::Config;

/// Samples per second of a CPU profile (Go's rate).
pub const FREQUENCY: i32 = 100;

/// Length of a CPU profile when the request names none (Go's default).
pub const DEFAULT_SECONDS: u64 = 30;

/// The longest CPU profile served: longer ones are refused rather than
/// holding the profiler for hours.
pub const MAX_SECONDS: u64 = 3600;

/// Why `/debug/pprof/heap` answers 503: jemalloc's profiler is not active.
pub const HEAP_INACTIVE: &str = "heap profiling is not active in this process: the athens \
    binary activates jemalloc's profiler at start when EnablePprof is set (see README.md); \
    CPU profiles are at /debug/pprof/profile\n";

/// Why `/debug/pprof/allocs` answers 501.
pub const ALLOCS_UNAVAILABLE: &str = "allocation profiles (every allocation since the start) \
    are not available: jemalloc's profile holds only the sampled allocations still in use, \
    served as the heap profile at /debug/pprof/heap\n";

/// Whether a CPU profile is being taken.
#[derive(Default)]
struct Profiling {
    busy: AtomicBool,
}

/// Clears [`Profiling::busy`] however the profile ends.
struct Busy(Arc<Profiling>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// The profiling routes, to be served on their own listener.
pub fn router() -> Router {
    Router::new()
        .route("/debug/pprof/", get(index))
        .route("/debug/pprof", get(index))
        .route("/debug/pprof/profile", get(cpu_profile))
        .route("/debug/pprof/heap", get(heap))
        .route("/debug/pprof/allocs", get(allocs))
        .with_state(Arc::new(Profiling::default()))
}

/// Binds `PprofPort` and serves [`router`] there in the background until
/// the process ends, when `EnablePprof` is set. Fails when the address
/// cannot be listened on, so a port that is taken stops the start.
pub async fn start(config: &Config) -> anyhow::Result<()> {
    if !config.enable_pprof {
        return Ok(());
    }
    activate_heap_profiling().await;
    let port = config.pprof_port.as_str();
    let listener = crate::http::bind_port(port)
        .await
        .with_context(|| format!("PprofPort: listening on {port:?}"))?;
    let addr = listener
        .local_addr()
        .map_or_else(|_| port.to_string(), |a| a.to_string());
    tracing::warn!(
        address = %addr,
        heap_profiles = heap_profiling_active().await,
        "serving CPU and heap profiles at /debug/pprof/profile and /debug/pprof/heap \
         (EnablePprof); keep this port private"
    );
    tokio::spawn(async move {
        let never = std::future::pending::<()>();
        let served =
            crate::http::serve_listener(listener, router(), never, Duration::from_secs(1)).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the profiling server stopped");
        }
    });
    Ok(())
}

async fn index() -> &'static str {
    "Profiles of this server (EnablePprof):\n\n\
     /debug/pprof/profile?seconds=N  CPU profile over N seconds (default 30), pprof format\n\
     /debug/pprof/heap               memory in use by allocating stack (jemalloc samples), gzipped pprof format\n\
     /debug/pprof/allocs             not available (501): jemalloc keeps only the allocations in use\n"
}

/// Activates jemalloc's heap profiler, which the binary starts inactive
/// (see `malloc_conf` in src/main.rs). Without a profiler to activate (a
/// process whose allocator is not jemalloc, or was started with profiling
/// off) nothing happens and the heap endpoint says so.
async fn activate_heap_profiling() {
    jemalloc_pprof::activate_jemalloc_profiling().await;
}

/// Whether jemalloc's heap profiler is active, so that
/// `/debug/pprof/heap` has something to serve.
async fn heap_profiling_active() -> bool {
    match jemalloc_pprof::PROF_CTL.as_ref() {
        Some(ctl) => ctl.lock().await.activated(),
        None => false,
    }
}

async fn heap() -> Response {
    let Some(ctl) = jemalloc_pprof::PROF_CTL.as_ref() else {
        return (StatusCode::SERVICE_UNAVAILABLE, HEAP_INACTIVE).into_response();
    };
    let mut ctl = ctl.clone().lock_owned().await;
    if !ctl.activated() {
        return (StatusCode::SERVICE_UNAVAILABLE, HEAP_INACTIVE).into_response();
    }
    // The dump writes a file and resolves every address of every stack to
    // a function name: blocking work, off the runtime's threads.
    let dumped = tokio::task::spawn_blocking(move || take_heap_profile(&mut ctl)).await;
    match dumped {
        Ok(Ok(profile)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"heap\""),
            ],
            profile,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "heap profile failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("heap profile failed: {e:#}\n"),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("heap profile failed: {e}\n"),
        )
            .into_response(),
    }
}

/// Dumps jemalloc's heap profile and encodes it in pprof's gzipped
/// protobuf format, each stack starting at the code that asked for memory
/// (see [`allocating_frames`]).
fn take_heap_profile(ctl: &mut jemalloc_pprof::JemallocProfCtl) -> anyhow::Result<Vec<u8>> {
    let mut profile = ctl.dump_profile()?;
    let mut names = std::collections::HashMap::new();
    for (stack, _) in &mut profile.stacks {
        let keep = allocating_frames(&stack.addrs, |addr| {
            names
                .entry(addr)
                .or_insert_with(|| frame_names(addr))
                .clone()
        });
        stack.addrs.truncate(keep);
    }
    // jemalloc_pprof's own encoding: the sample type of Go's heap default.
    Ok(profile.to_pprof(("inuse_space", "bytes"), ("space", "bytes"), None))
}

/// How many frames of a sampled stack (root first, as jemalloc_pprof
/// keeps them; return addresses) to keep: the allocator's frames at the
/// leaf end (jemalloc's sampling, its entry points, the global allocator
/// glue) are dropped, so that a profile charges memory to the function
/// that allocated it, as Go's heap profiles do, rather than all of it to
/// jemalloc's backtrace function. The cut is at the allocator frame
/// nearest the root among the few frames nearest the leaf; a stack without
/// one is kept whole.
fn allocating_frames(addrs: &[usize], mut names: impl FnMut(usize) -> Vec<String>) -> usize {
    /// jemalloc's and the glue's frames are fewer than this.
    const ALLOCATOR_DEPTH: usize = 24;
    let start = addrs.len().saturating_sub(ALLOCATOR_DEPTH);
    (start..addrs.len())
        .find(|&i| names(addrs[i]).iter().any(|name| is_allocator_frame(name)))
        .unwrap_or(addrs.len())
}

/// The names of the functions at a return address (more than one where
/// calls were inlined), resolved in this process.
fn frame_names(addr: usize) -> Vec<String> {
    let mut names = Vec::new();
    // A return address is one past its call: `- 1` is inside the call.
    backtrace::resolve(addr.saturating_sub(1) as *mut std::ffi::c_void, |symbol| {
        if let Some(name) = symbol.name() {
            names.push(format!("{name:#}"));
        }
    });
    names
}

/// jemalloc's exported functions (tikv-jemallocator's `_rjem_` prefix) and
/// the Rust global allocator's glue.
fn is_allocator_frame(name: &str) -> bool {
    name.starts_with("_rjem_")
        || name.contains("__rust_alloc")
        || name.contains("__rust_realloc")
        || name.contains("__rust_dealloc")
        || name.starts_with("<tikv_jemallocator::Jemalloc as ")
}

async fn allocs() -> Response {
    (StatusCode::NOT_IMPLEMENTED, ALLOCS_UNAVAILABLE).into_response()
}

/// The query of `/debug/pprof/profile`.
#[derive(serde::Deserialize)]
struct ProfileQuery {
    seconds: Option<String>,
}

/// The length of the profile `seconds` asks for: Go's default when it is
/// missing, not a number or not positive; `Err` beyond [`MAX_SECONDS`].
fn profile_seconds(seconds: Option<&str>) -> Result<u64, String> {
    let asked = seconds.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    if asked <= 0 {
        return Ok(DEFAULT_SECONDS);
    }
    let asked = asked as u64;
    if asked > MAX_SECONDS {
        return Err(format!(
            "seconds={asked} is longer than the longest profile served ({MAX_SECONDS})\n"
        ));
    }
    Ok(asked)
}

async fn cpu_profile(
    State(state): State<Arc<Profiling>>,
    Query(query): Query<ProfileQuery>,
) -> Response {
    let seconds = match profile_seconds(query.seconds.as_deref()) {
        Ok(seconds) => seconds,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    if state.busy.swap(true, Ordering::AcqRel) {
        return (
            StatusCode::CONFLICT,
            "a CPU profile is already being taken; try again when it is done\n",
        )
            .into_response();
    }
    let busy = Busy(state);
    let profiled = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        take_cpu_profile(Duration::from_secs(seconds))
    })
    .await;
    match profiled {
        Ok(Ok(profile)) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"profile\"",
                ),
            ],
            profile,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "CPU profile failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("CPU profile failed: {e}\n"),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("CPU profile failed: {e}\n"),
        )
            .into_response(),
    }
}

/// Profiles the whole process for `length` and returns the profile in
/// pprof's protobuf encoding. Blocks the calling thread meanwhile.
fn take_cpu_profile(length: Duration) -> Result<Vec<u8>, pprof::Error> {
    use pprof::protos::Message as _;
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .build()?;
    std::thread::sleep(length);
    let profile = guard
        .report()
        .frames_post_processor(drop_profiler_frames)
        .build()?
        .pprof()?;
    drop(guard);
    let mut encoded = Vec::with_capacity(profile.encoded_len());
    profile
        .encode(&mut encoded)
        .map_err(|e| pprof::Error::IoError(std::io::Error::other(e)))?;
    Ok(encoded)
}

/// Removes the frames of the sampling itself (the signal handler, the
/// unwinder, the kernel's signal trampoline) from the leaf end of a
/// sample, so that a sample is charged to the code that was interrupted.
fn drop_profiler_frames(frames: &mut pprof::Frames) {
    let own = frames
        .frames
        .iter()
        .take_while(|frame| frame.iter().any(|symbol| is_profiler_frame(&symbol.name())))
        .count();
    // A sample made only of such frames is kept as it is.
    if own < frames.frames.len() {
        frames.frames.drain(..own);
    }
}

fn is_profiler_frame(name: &str) -> bool {
    name.starts_with("backtrace::")
        || name.starts_with("pprof::")
        || name.starts_with("<pprof::")
        || name == "__restore_rt"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_charged_to_the_interrupted_code() {
        let symbol = |name: &str| pprof::Symbol {
            name: Some(name.as_bytes().to_vec()),
            addr: None,
            lineno: None,
            filename: None,
        };
        let mut frames = pprof::Frames {
            frames: vec![
                vec![symbol("backtrace::backtrace::trace_unsynchronized")],
                vec![symbol("pprof::profiler::perf_signal_handler")],
                vec![symbol("__restore_rt")],
                vec![symbol("athens::protocol::Protocol::info")],
                vec![symbol("main")],
            ],
            thread_name: "worker".into(),
            thread_id: 1,
            sample_timestamp: std::time::SystemTime::now(),
        };
        drop_profiler_frames(&mut frames);
        let names: Vec<String> = frames.frames.iter().map(|f| f[0].name()).collect();
        assert_eq!(names, ["athens::protocol::Protocol::info", "main"]);
    }

    #[test]
    fn profile_length_follows_go_and_is_bounded() {
        assert_eq!(profile_seconds(None), Ok(DEFAULT_SECONDS));
        assert_eq!(profile_seconds(Some("")), Ok(DEFAULT_SECONDS));
        assert_eq!(profile_seconds(Some("x")), Ok(DEFAULT_SECONDS));
        assert_eq!(profile_seconds(Some("-3")), Ok(DEFAULT_SECONDS));
        assert_eq!(profile_seconds(Some("0")), Ok(DEFAULT_SECONDS));
        assert_eq!(profile_seconds(Some("2")), Ok(2));
        assert_eq!(profile_seconds(Some("3600")), Ok(3600));
        assert!(profile_seconds(Some("3601")).is_err());
    }

    async fn answer(path: &str) -> (StatusCode, axum::body::Bytes) {
        use tower::ServiceExt;
        let request = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, body)
    }

    /// The library's tests run with the system allocator (jemalloc is the
    /// binary's, see src/main.rs), so there is no active heap profiler:
    /// the endpoint says so rather than failing. The binary's heap
    /// profiles are read by `go tool pprof` in tests/observability.rs.
    #[tokio::test]
    async fn without_an_active_heap_profiler_the_heap_endpoint_says_so() {
        activate_heap_profiling().await;
        assert!(!heap_profiling_active().await);
        let (status, body) = answer("/debug/pprof/heap").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, HEAP_INACTIVE.as_bytes());
    }

    #[test]
    fn heap_samples_are_charged_to_the_allocating_code() {
        // Root first, as jemalloc_pprof keeps a stack.
        let stack: [&[&str]; 8] = [
            &["main"],
            &["athens::http::serve"],
            &["alloc::raw_vec::RawVecInner::finish_grow"],
            &["__rustc::__rust_realloc"],
            &["<tikv_jemallocator::Jemalloc as core::alloc::global::GlobalAlloc>::realloc"],
            &["_rjem_realloc"],
            &["do_rallocx", "irallocx_prof", "prof_alloc_prep"],
            &["prof_backtrace_impl"],
        ];
        let addrs: Vec<usize> = (0..stack.len()).collect();
        let names = |addr: usize| stack[addr].iter().map(|s| s.to_string()).collect();
        assert_eq!(allocating_frames(&addrs, names), 3);
        // Without allocator frames (not jemalloc's), nothing is dropped.
        let names = |addr: usize| vec![format!("f{addr}")];
        assert_eq!(allocating_frames(&addrs, names), addrs.len());
        // Only the frames near the leaf are looked at.
        let deep: Vec<usize> = (0..100).collect();
        let names = |addr: usize| {
            vec![if addr == 2 {
                "_rjem_malloc".into()
            } else {
                format!("f{addr}")
            }]
        };
        assert_eq!(allocating_frames(&deep, names), deep.len());
    }

    #[tokio::test]
    async fn allocation_profiles_are_refused_with_the_reason() {
        let (status, body) = answer("/debug/pprof/allocs").await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(body, ALLOCS_UNAVAILABLE.as_bytes());
    }
}
