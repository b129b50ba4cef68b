//! The watch over one git transfer: gix's HTTP transport wrapped so that
//! every response is read with the caller's deadline and interrupt in view
//! and counted against the [`GitLimits`], and a progress sink that counts
//! the objects of a received pack.
//!
//! gix's reqwest backend reads each response on a worker thread and hands
//! the bytes over a channel; a read from that channel blocks until the
//! server sends something, which a trickling server can delay indefinitely
//! (reqwest's own per-read timeout is 30 s, renewed by every byte). Two
//! things bound that:
//! - each request gets the time left before the deadline as its reqwest
//!   timeout, so the worker itself gives up and closes the connection at
//!   the deadline. gix refuses to follow redirects for requests configured
//!   this way, so a listing that meets a redirect is retried without it
//!   (see `cache::transfer`);
//! - each response is drained by a small pump thread, and the reader the
//!   protocol code sees polls the pump with a short timeout, checking the
//!   deadline and the interrupt between polls. So the transfer's own thread
//!   returns promptly even where the worker still waits (no deadline set,
//!   or the redirect case above), and dropping the transport then ends the
//!   worker as soon as its pending read returns.
//!
//! Limits set a separate stop flag, the one handed to gix, so a refusal
//! stops gix's pack reading and indexing without touching the caller's
//! interrupt; the reason is kept for the error message.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::protocol::transport::client::blocking_io::http::{
    self as gix_http, GetResponse, Http, PostBodyDataKind, PostResponse,
};
use gix::utils::progress::{Id, Progress, StepShared, Unit};
use gix::{Count, NestedProgress};

use crate::git::options::GitLimits;
use crate::git::quiet::QuietFetch;
use crate::git::replay::{append, lock, CapabilitySource, CapturedRequest, ListingRecord, Tee};
use crate::interrupt::{Interrupt, Stopped};

/// How often a waiting reader looks at the deadline and the interrupt.
const POLL: Duration = Duration::from_millis(100);
/// Largest chunk a pump reads at once.
const PUMP_CHUNK: usize = 64 * 1024;
/// Progress id gix-pack gives the count of objects indexed from a pack
/// (its header announces the total, given as the maximum at `init`).
const INDEX_OBJECTS: Id = *b"IWIO";

/// Which part of a transfer responses belong to.
const PHASE_LISTING: u8 = 0;
const PHASE_FETCHING: u8 = 1;

/// Shared state of one transfer: limits, counters, the stop flag gix polls
/// and the reason a limit stopped it.
#[derive(Debug)]
pub(crate) struct Watch {
    interrupt: Interrupt,
    limits: GitLimits,
    stop: AtomicBool,
    phase: AtomicU8,
    ref_bytes: AtomicU64,
    pack_bytes: AtomicU64,
    refused: Mutex<Option<String>>,
}

impl Watch {
    pub(crate) fn new(interrupt: Interrupt, limits: GitLimits) -> Arc<Watch> {
        Arc::new(Watch {
            interrupt,
            limits,
            stop: AtomicBool::new(false),
            phase: AtomicU8::new(PHASE_LISTING),
            ref_bytes: AtomicU64::new(0),
            pack_bytes: AtomicU64::new(0),
            refused: Mutex::new(None),
        })
    }

    /// Time left before the caller's deadline, if it set one.
    pub(crate) fn time_left(&self) -> Option<Duration> {
        self.interrupt.remaining()
    }

    /// The flag to hand to gix: set by a refusal, the caller's interrupt
    /// or the deadline.
    pub(crate) fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }

    /// Responses from now on carry objects, not refs.
    pub(crate) fn start_fetch(&self) {
        self.phase.store(PHASE_FETCHING, Ordering::SeqCst);
    }

    /// Why a limit stopped the transfer, if one did.
    pub(crate) fn refusal(&self) -> Option<String> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }

    /// Whether the caller's deadline or interrupt stopped the transfer.
    pub(crate) fn stopped(&self) -> Option<Stopped> {
        self.interrupt.check().err()
    }

    /// Records the first refusal and stops gix.
    pub(crate) fn refuse(&self, reason: String) -> io::Error {
        if let Ok(mut slot) = self.refused.lock() {
            slot.get_or_insert(reason.clone());
        }
        self.stop.store(true, Ordering::SeqCst);
        io::Error::other(reason)
    }

    /// Fails once the transfer must stop, passing the caller's interrupt
    /// on to gix's flag.
    pub(crate) fn check(&self) -> io::Result<()> {
        if let Some(reason) = self.refusal() {
            return Err(io::Error::other(reason));
        }
        if let Err(stopped) = self.interrupt.check() {
            self.stop.store(true, Ordering::SeqCst);
            // Not `ErrorKind::Interrupted`: readers retry on that one.
            let kind = match stopped {
                Stopped::Deadline => io::ErrorKind::TimedOut,
                Stopped::Interrupted => io::ErrorKind::Other,
            };
            return Err(io::Error::new(kind, format!("transfer stopped: {stopped}")));
        }
        Ok(())
    }

    /// Counts `n` response bytes against the limit of the current phase.
    fn count(&self, n: usize) -> io::Result<()> {
        let n = n as u64;
        if self.phase.load(Ordering::SeqCst) == PHASE_LISTING {
            let total = self.ref_bytes.fetch_add(n, Ordering::SeqCst) + n;
            let limit = self.limits.max_ref_bytes();
            if total > limit {
                return Err(self.refuse(format!(
                    "refused: the ref advertisement exceeds {limit} bytes (GitMaxRefs {} allows 1 KiB per ref)",
                    self.limits.max_refs
                )));
            }
        } else {
            let total = self.pack_bytes.fetch_add(n, Ordering::SeqCst) + n;
            let limit = self.limits.max_pack_bytes;
            if total > limit {
                return Err(self.refuse(format!(
                    "refused: the pack exceeds {limit} bytes (GitMaxPackBytes)"
                )));
            }
        }
        Ok(())
    }

    /// Checks a count of pack objects (announced or indexed so far).
    fn objects(&self, n: u64) {
        let limit = self.limits.max_pack_objects;
        if n > limit {
            self.refuse(format!(
                "refused: the pack holds more than {limit} objects (GitMaxPackObjects)"
            ));
        }
    }

    /// Refuses the transfer because gix's allocation limit, which is
    /// `max_object_bytes`, stopped it: for one object, or for the index of
    /// the pack's objects.
    pub(crate) fn refuse_allocation(&self, for_index: bool) -> io::Error {
        let limit = self.limits.max_object_bytes;
        self.refuse(if for_index {
            format!("refused: indexing the pack's objects takes more than {limit} bytes (GitMaxObjectBytes)")
        } else {
            format!("refused: an object in the pack is over {limit} bytes (GitMaxObjectBytes)")
        })
    }

    /// Checks the ref count of a finished listing.
    pub(crate) fn refs(&self, n: usize) -> Result<(), String> {
        let limit = self.limits.max_refs;
        if n > limit {
            return Err(self
                .refuse(format!(
                    "refused: the remote advertises {n} branches and tags, more than {limit} (GitMaxRefs)"
                ))
                .to_string());
        }
        Ok(())
    }
}

/// What gix's reqwest backend reports when it refuses a redirect because
/// the request was configured (here: given a timeout).
pub(crate) const REDIRECT_REFUSED: &str = "refusing to follow redirect";

/// What a transfer does with the handle's [`ListingRecord`].
pub(crate) enum ListingUse {
    /// Neither records nor replays.
    Off,
    /// Records the capability advertisement and the `ls-refs` (a listing),
    /// taking the advertisement from the known ones when there is one.
    Record(Arc<ListingRecord>, Option<CapabilitySource>),
    /// Answers the capability request and the first post (`ls-refs`) from
    /// the record; later requests go to the server.
    Replay(Arc<ListingRecord>),
}

/// gix's HTTP implementation with every response read through a
/// [`Pumped`] reader watched by `watch`.
pub(crate) struct WatchedHttp<H> {
    inner: H,
    watch: Arc<Watch>,
    /// Give each request the time left before the deadline as its timeout.
    request_timeouts: bool,
    /// `http.extraHeader` values git would send with every request.
    extra_headers: Vec<String>,
    listing: ListingUse,
    /// Requests posted so far.
    posts: usize,
    /// Whether a request of this transfer went to the server: after that,
    /// nothing is replayed, so a conversation never mixes the two.
    went_out: bool,
}

impl<H> WatchedHttp<H> {
    pub(crate) fn new(inner: H, watch: Arc<Watch>, request_timeouts: bool) -> Self {
        WatchedHttp {
            inner,
            watch,
            request_timeouts,
            extra_headers: Vec::new(),
            listing: ListingUse::Off,
            posts: 0,
            went_out: false,
        }
    }

    /// The same transport sending `headers` with every request.
    pub(crate) fn with_extra_headers(mut self, headers: Vec<String>) -> Self {
        self.extra_headers = headers;
        self
    }

    /// The same transport recording or replaying a listing.
    pub(crate) fn with_listing(mut self, listing: ListingUse) -> Self {
        self.listing = listing;
        self
    }
}

/// The body of a posted request: sent to the server (and recorded when the
/// request is a listing's `ls-refs`), or captured to be answered from the
/// record.
pub(crate) enum PostBody<P> {
    Sent(QuietFetch<P>),
    Recorded(P, Tee),
    Captured(CapturedRequest),
}

impl<P: io::Write> io::Write for PostBody<P> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            PostBody::Sent(quiet) => quiet.write(buf),
            PostBody::Recorded(inner, tee) => {
                let n = inner.write(buf)?;
                append(tee, &buf[..n]);
                Ok(n)
            }
            PostBody::Captured(captured) => captured.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            PostBody::Sent(quiet) => quiet.flush(),
            PostBody::Recorded(inner, _) => inner.flush(),
            PostBody::Captured(captured) => captured.flush(),
        }
    }
}

type ReqwestRemote = gix::protocol::transport::client::blocking_io::http::reqwest::Remote;

/// gix reqwest backends built before they are needed, shared by the
/// handles opened with clones of one [`crate::git::GitOptions`].
///
/// Building a backend builds an HTTP client, which reads and parses the
/// system's certificates (about 3 ms of CPU) on the backend's own thread,
/// and its first request waits for that. Each backend still serves one
/// handle only: gix keeps per-backend state between requests (whether
/// redirects are followed, the redirected base URL), so backends are never
/// handed from one handle to the next. Instead two unused backends are
/// kept: a handle takes the oldest, and the reserve is topped up when a
/// handle is done. Two, because a miss that follows another at once would
/// otherwise find the one replacing it still being built.
#[derive(Clone, Default)]
pub struct HttpBackends {
    spare: Arc<Mutex<VecDeque<ReqwestRemote>>>,
}

/// How many unused backends [`HttpBackends`] keeps.
const RESERVE: usize = 2;

impl std::fmt::Debug for HttpBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackends")
            .field("spare", &lock(&self.spare).len())
            .finish()
    }
}

impl HttpBackends {
    /// A backend no handle has used: the oldest in reserve (the one most
    /// likely built by now) when there is one, else one built now. The
    /// reserve is topped up when the handle taking this one is done (see
    /// [`SharedClient`]), not while its transfers still want the
    /// processor.
    fn take(&self) -> ReqwestRemote {
        lock(&self.spare).pop_front().unwrap_or_default()
    }

    /// Starts building one backend if none is in reserve, so that even the
    /// first transfer finds one ready. Only one: a new process's first
    /// download would otherwise share the processors with a second build.
    pub fn prepare(&self) {
        self.fill_to(1);
    }

    /// Starts building backends until [`RESERVE`] are in reserve.
    fn top_up(&self) {
        self.fill_to(RESERVE);
    }

    /// Starts building backends until `count` are in reserve.
    fn fill_to(&self, count: usize) {
        let mut spare = lock(&self.spare);
        while spare.len() < count {
            spare.push_back(ReqwestRemote::default());
        }
    }

    /// How many built (or building) backends are in reserve.
    #[cfg(test)]
    pub(crate) fn spares(&self) -> usize {
        lock(&self.spare).len()
    }
}

/// One reqwest backend shared by the transfers of a handle: gix's backend
/// builds an HTTP client (and with it reads the system's certificates)
/// for every transfer otherwise. Dropped after a failed transfer, so a
/// backend left mid-response is never used again. Backends come from
/// [`HttpBackends`].
#[derive(Clone)]
pub(crate) struct SharedClient {
    slot: Arc<BackendSlot>,
}

/// A handle's backend, and where it came from: when the handle is done
/// (its last [`SharedClient`] dropped), the reserve is topped up.
struct BackendSlot {
    remote: Mutex<Option<ReqwestRemote>>,
    backends: HttpBackends,
}

impl Drop for BackendSlot {
    fn drop(&mut self) {
        self.backends.top_up();
    }
}

impl SharedClient {
    /// A client taking its backend from `backends` on its first request.
    pub(crate) fn new(backends: HttpBackends) -> SharedClient {
        SharedClient {
            slot: Arc::new(BackendSlot {
                remote: Mutex::new(None),
                backends,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ReqwestRemote) -> T) -> T {
        let mut slot = lock(&self.slot.remote);
        f(slot.get_or_insert_with(|| self.slot.backends.take()))
    }

    /// Whether the remote redirected a request of this backend.
    pub(crate) fn redirected(&self) -> bool {
        Http::redirected_base_url(self).is_some()
    }

    /// Drops the backend; the next request builds a new one.
    pub(crate) fn reset(&self) {
        *lock(&self.slot.remote) = None;
    }
}

impl Http for SharedClient {
    type Headers = <ReqwestRemote as Http>::Headers;
    type ResponseBody = <ReqwestRemote as Http>::ResponseBody;
    type PostBody = <ReqwestRemote as Http>::PostBody;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<GetResponse<Self::Headers, Self::ResponseBody>> {
        self.with(|remote| remote.get(url, base_url, headers))
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        body: PostBodyDataKind,
    ) -> gix::Result<PostResponse<Self::Headers, Self::ResponseBody, Self::PostBody>> {
        self.with(|remote| remote.post(url, base_url, headers, body))
    }

    fn configure(&mut self, config: &dyn std::any::Any) -> gix::Result {
        self.with(|remote| remote.configure(config))
    }

    fn redirected_base_url(&self) -> Option<String> {
        let slot = lock(&self.slot.remote);
        slot.as_ref().and_then(Http::redirected_base_url)
    }
}

/// `options` with a reqwest hook setting each request's timeout to the time
/// left before `deadline`.
fn with_request_deadline(options: &gix_http::Options, deadline: Instant) -> gix_http::Options {
    let mut options = options.clone();
    let hook: Box<gix_http::reqwest::ConfigureRequestFn> =
        Box::new(move |request: &mut gix_reqwest::blocking::Request| {
            let left = deadline.saturating_duration_since(Instant::now());
            *request.timeout_mut() = Some(left.max(Duration::from_millis(1)));
            Ok(())
        });
    let backend = gix_http::reqwest::Options {
        configure_request: Some(hook),
    };
    options.backend = Some(Arc::new(Mutex::new(backend)));
    options
}

fn gix_error(err: io::Error) -> gix::Error {
    gix::Error::from_error(err)
}

impl<H> Http for WatchedHttp<H>
where
    H: Http,
    H::Headers: Send + 'static,
    H::ResponseBody: Send + 'static,
{
    type Headers = Pumped;
    type ResponseBody = Pumped;
    type PostBody = PostBody<H::PostBody>;

    fn get(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> gix::Result<GetResponse<Self::Headers, Self::ResponseBody>> {
        self.watch.check().map_err(gix_error)?;
        let mut tees = (None, None);
        match &self.listing {
            ListingUse::Replay(record) if !self.went_out => {
                if let Some(recorded) = record.advertisement(url) {
                    return Ok(GetResponse {
                        headers: Pumped::from_bytes(recorded.headers, &self.watch),
                        body: Pumped::from_bytes(recorded.body, &self.watch),
                    });
                }
            }
            ListingUse::Record(record, known) => {
                if let Some(ad) = known.as_ref().and_then(|known| known.get(url)) {
                    record.adopt_advertisement(url, &ad);
                    return Ok(GetResponse {
                        headers: Pumped::from_bytes(ad.headers, &self.watch),
                        body: Pumped::from_bytes(ad.body, &self.watch),
                    });
                }
                let (h, b) = record.record_advertisement(url);
                tees = (Some(h), Some(b));
            }
            _ => {}
        }
        self.went_out = true;
        let response = self.inner.get(url, base_url, headers)?;
        Ok(GetResponse {
            headers: Pumped::new(response.headers, &self.watch, false)
                .map_err(gix_error)?
                .teed(tees.0),
            body: Pumped::new(response.body, &self.watch, true)
                .map_err(gix_error)?
                .teed(tees.1),
        })
    }

    fn post(
        &mut self,
        url: &str,
        base_url: &str,
        headers: impl IntoIterator<Item = impl AsRef<str>>,
        body: PostBodyDataKind,
    ) -> gix::Result<PostResponse<Self::Headers, Self::ResponseBody, Self::PostBody>> {
        self.watch.check().map_err(gix_error)?;
        self.posts += 1;
        let mut tees = None;
        match &self.listing {
            ListingUse::Replay(record) if !self.went_out && self.posts == 1 => {
                let (tx, rx) = mpsc::sync_channel(1);
                if let Some((recorded_headers, captured)) = record.answer_ls_refs(url, tx) {
                    return Ok(PostResponse {
                        post_body: PostBody::Captured(captured),
                        headers: Pumped::from_bytes(recorded_headers, &self.watch),
                        body: Pumped::from_channel(rx, &self.watch),
                    });
                }
            }
            ListingUse::Record(record, _) => tees = Some(record.record_post(url)),
            _ => {}
        }
        self.went_out = true;
        let response = self.inner.post(url, base_url, headers, body)?;
        let (request, response_headers, response_body) = match tees {
            Some((request, h, b)) => (Some(request), Some(h), Some(b)),
            None => (None, None, None),
        };
        Ok(PostResponse {
            post_body: match request {
                Some(tee) => PostBody::Recorded(response.post_body, tee),
                None => PostBody::Sent(QuietFetch::new(response.post_body)),
            },
            headers: Pumped::new(response.headers, &self.watch, false)
                .map_err(gix_error)?
                .teed(response_headers),
            body: Pumped::new(response.body, &self.watch, true)
                .map_err(gix_error)?
                .teed(response_body),
        })
    }

    fn configure(&mut self, config: &dyn std::any::Any) -> gix::Result {
        let deadline = self.watch.interrupt.deadline();
        let Some(options) = config.downcast_ref::<gix_http::Options>() else {
            return self.inner.configure(config);
        };
        let mut options = options.clone();
        options
            .extra_headers
            .extend(self.extra_headers.iter().cloned());
        match deadline {
            Some(deadline) if self.request_timeouts => self
                .inner
                .configure(&with_request_deadline(&options, deadline)),
            _ => self.inner.configure(&options),
        }
    }

    fn redirected_base_url(&self) -> Option<String> {
        self.inner.redirected_base_url()
    }
}

/// A response stream drained by a pump thread, read with the watch's
/// deadline and limits applied.
pub(crate) struct Pumped {
    chunks: Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
    counted: bool,
    watch: Arc<Watch>,
    /// Where every chunk read is copied too (a listing being recorded).
    tee: Option<Tee>,
}

impl Pumped {
    /// A reader of `bytes`, already in memory (a replayed response).
    pub(crate) fn from_bytes(bytes: Vec<u8>, watch: &Arc<Watch>) -> Pumped {
        let (tx, rx) = mpsc::sync_channel(1);
        let _ = tx.send(Ok(bytes));
        Self::from_channel(rx, watch)
    }

    /// A reader of what arrives on `chunks` until its sender is dropped,
    /// not counted against the limits.
    pub(crate) fn from_channel(
        chunks: Receiver<io::Result<Vec<u8>>>,
        watch: &Arc<Watch>,
    ) -> Pumped {
        Pumped {
            chunks,
            buf: Vec::new(),
            pos: 0,
            done: false,
            counted: false,
            watch: Arc::clone(watch),
            tee: None,
        }
    }

    /// The same reader copying what it reads into `tee`.
    fn teed(mut self, tee: Option<Tee>) -> Pumped {
        self.tee = tee;
        self
    }

    /// Drains `inner` on a pump thread; reads then see the watch's deadline
    /// and, when `counted`, its byte limits.
    pub(crate) fn new<R: Read + Send + 'static>(
        mut inner: R,
        watch: &Arc<Watch>,
        counted: bool,
    ) -> io::Result<Pumped> {
        // A little read-ahead keeps the pump busy while the reader works;
        // more would only hold memory the limits do not see yet.
        let (tx, rx) = mpsc::sync_channel(4);
        std::thread::Builder::new()
            .name("git-http-pump".into())
            .spawn(move || {
                let mut buf = vec![0; PUMP_CHUNK];
                loop {
                    match inner.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if tx.send(Ok(buf[..n].to_vec())).is_err() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            break;
                        }
                    }
                }
            })?;
        Ok(Pumped {
            chunks: rx,
            buf: Vec::new(),
            pos: 0,
            done: false,
            counted,
            watch: Arc::clone(watch),
            tee: None,
        })
    }
}

impl Read for Pumped {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Pumped {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.buf.len() {
            return Ok(&self.buf[self.pos..]);
        }
        if self.done {
            return Ok(&[]);
        }
        loop {
            self.watch.check()?;
            match self.chunks.recv_timeout(POLL) {
                Ok(Ok(chunk)) => {
                    if self.counted {
                        self.watch.count(chunk.len())?;
                        tracing::trace!(target: crate::phases::TARGET, bytes = chunk.len(), "response bytes");
                    }
                    if let Some(tee) = &self.tee {
                        append(tee, &chunk);
                    }
                    self.buf = chunk;
                    self.pos = 0;
                    return Ok(&self.buf);
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    return Ok(&[]);
                }
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.buf.len());
    }
}

/// A progress sink that discards everything but the count of pack objects,
/// and passes the caller's interrupt on to gix's flag (gix reports progress
/// often during its CPU-bound indexing, where no read happens).
pub(crate) struct WatchProgress {
    watch: Arc<Watch>,
    id: Id,
    counter: StepShared,
}

impl WatchProgress {
    pub(crate) fn new(watch: &Arc<Watch>) -> WatchProgress {
        Self::child(watch, gix::utils::progress::UNKNOWN)
    }

    fn child(watch: &Arc<Watch>, id: Id) -> WatchProgress {
        WatchProgress {
            watch: Arc::clone(watch),
            id,
            counter: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn observe(&self, value: usize) {
        if self.id == INDEX_OBJECTS {
            self.watch.objects(value as u64);
        }
        let _ = self.watch.check();
    }
}

impl Count for WatchProgress {
    fn set(&self, step: usize) {
        self.counter.store(step, Ordering::Relaxed);
        self.observe(step);
    }

    fn step(&self) -> usize {
        self.counter.load(Ordering::Relaxed)
    }

    fn inc_by(&self, step: usize) {
        let value = self.counter.fetch_add(step, Ordering::Relaxed) + step;
        self.observe(value);
    }

    fn counter(&self) -> StepShared {
        Arc::clone(&self.counter)
    }
}

impl Progress for WatchProgress {
    fn init(&mut self, max: Option<usize>, _unit: Option<Unit>) {
        // The object count of a pack is announced in its header, so a pack
        // claiming too many is refused before its objects are read.
        if let Some(max) = max {
            if self.id == INDEX_OBJECTS {
                self.watch.objects(max as u64);
            }
        }
    }

    fn set_name(&mut self, _name: String) {}

    fn name(&self) -> Option<String> {
        None
    }

    fn id(&self) -> Id {
        self.id
    }

    fn message(&self, _level: gix::utils::progress::MessageLevel, _message: String) {}
}

impl NestedProgress for WatchProgress {
    type SubProgress = WatchProgress;

    fn add_child(&mut self, _name: impl Into<String>) -> Self::SubProgress {
        Self::child(&self.watch, gix::utils::progress::UNKNOWN)
    }

    fn add_child_with_id(&mut self, _name: impl Into<String>, id: Id) -> Self::SubProgress {
        Self::child(&self.watch, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_refs: usize, max_pack_bytes: u64, max_pack_objects: u64) -> GitLimits {
        GitLimits {
            max_refs,
            max_pack_bytes,
            max_pack_objects,
            ..GitLimits::default()
        }
    }

    #[test]
    fn the_reserve_is_topped_up_when_a_handle_is_done_not_while_it_works() {
        let backends = HttpBackends::default();
        backends.prepare();
        assert_eq!(
            backends.spares(),
            1,
            "one built ahead of the first transfer"
        );
        backends.top_up();
        assert_eq!(backends.spares(), RESERVE);
        let client = SharedClient::new(backends.clone());
        let transfers = client.clone();
        // The first request takes a backend from the reserve.
        client.with(|_| ());
        assert_eq!(
            backends.spares(),
            RESERVE - 1,
            "nothing builds while the handle works"
        );
        // A miss arriving meanwhile still finds one ready.
        let next = SharedClient::new(backends.clone());
        next.with(|_| ());
        assert_eq!(backends.spares(), RESERVE - 2);
        drop(client);
        assert_eq!(
            backends.spares(),
            RESERVE - 2,
            "another transfer of the handle holds it"
        );
        drop(transfers);
        assert_eq!(
            backends.spares(),
            RESERVE,
            "a handle is done: the reserve is full again"
        );
        drop(next);
        assert_eq!(backends.spares(), RESERVE, "never more than the reserve");
    }

    #[test]
    fn pumped_reader_counts_and_refuses_by_phase() {
        let watch = Watch::new(Interrupt::new(), limits(1, 10, 5));
        // The ref advertisement may take at least 1 MiB whatever max_refs.
        let big = vec![b'x'; 2 << 20];
        let mut r = Pumped::new(io::Cursor::new(big), &watch, true).unwrap();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("GitMaxRefs"), "{err}");
        assert!(watch.stop_flag().load(Ordering::SeqCst));

        let watch = Watch::new(Interrupt::new(), limits(1, 10, 5));
        let mut headers = Pumped::new(io::Cursor::new(vec![b'h'; 100]), &watch, false).unwrap();
        assert_eq!(io::copy(&mut headers, &mut io::sink()).unwrap(), 100);
        watch.start_fetch();
        let mut r = Pumped::new(io::Cursor::new(vec![b'p'; 11]), &watch, true).unwrap();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("GitMaxPackBytes"), "{err}");
        assert!(watch.refusal().unwrap().contains("GitMaxPackBytes"));
    }

    /// A reader that never yields, like a server that stopped sending.
    struct Stalled;
    impl Read for Stalled {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            std::thread::sleep(Duration::from_secs(30));
            Ok(0)
        }
    }

    #[test]
    fn pumped_reader_gives_up_at_the_deadline() {
        let interrupt = Interrupt::with_timeout(Duration::from_millis(300));
        let watch = Watch::new(interrupt, GitLimits::default());
        let mut r = Pumped::new(Stalled, &watch, true).unwrap();
        let started = std::time::Instant::now();
        let err = r.read(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // The reader stalls for 30 s.
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(watch.stop_flag().load(Ordering::SeqCst));
        assert_eq!(watch.stopped(), Some(Stopped::Deadline));
    }

    #[test]
    fn progress_refuses_announced_and_counted_objects() {
        let watch = Watch::new(Interrupt::new(), limits(10, 1 << 20, 3));
        let mut root = WatchProgress::new(&watch);
        let mut objects = root.add_child_with_id("indexing", INDEX_OBJECTS);
        objects.init(Some(3), None);
        objects.inc_by(3);
        assert!(watch.refusal().is_none());
        objects.inc();
        assert!(watch.refusal().unwrap().contains("GitMaxPackObjects"));

        let watch = Watch::new(Interrupt::new(), limits(10, 1 << 20, 3));
        let mut other = WatchProgress::new(&watch).add_child_with_id("x", *b"BWRB");
        other.init(Some(1000), None);
        other.inc_by(1000);
        assert!(watch.refusal().is_none());
        let mut objects = WatchProgress::new(&watch).add_child_with_id("indexing", INDEX_OBJECTS);
        objects.init(Some(u32::MAX as usize), None);
        assert!(watch.stop_flag().load(Ordering::SeqCst));
    }

    #[test]
    fn ref_count_is_limited() {
        let watch = Watch::new(Interrupt::new(), limits(2, 1, 1));
        assert!(watch.refs(2).is_ok());
        assert!(watch.refs(3).unwrap_err().contains("GitMaxRefs"));
    }
}
