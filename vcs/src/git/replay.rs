//! A ref listing kept by the handle that made it, so that its fetches do
//! not ask the server again.
//!
//! gix opens every fetch with its own capability request (`info/refs`) and
//! `ls-refs`, although the handle listed the remote moments before: over
//! smart HTTP a new version of a cached repository then costs five requests
//! (two to list, three to fetch) where three carry all the information.
//! The listing transfer records its two responses here; a fetch by the same
//! handle is answered the capability advertisement from the record, and its
//! `ls-refs` from the recorded refs, filtered by the prefixes it asks for,
//! as git's `ls-refs` filters them. Only the `fetch` request reaches the
//! server. The fetch so sees exactly the refs the handle's snapshot was made
//! from.
//!
//! A record is used only when it can stand for the server's answer: a
//! protocol v2 listing, read whole, made without credentials and without a
//! redirect, and an `ls-refs` whose arguments other than the prefixes equal
//! the recorded request's and whose prefixes all fall under the recorded
//! ones. Anything else goes to the server.
//!
//! The capability advertisement says what the server can do, not what the
//! repository holds, so later handles of the same fetcher reuse it for a
//! while ([`KnownCapabilities`]): their listing is then one request. A
//! protocol v2 advertisement names no refs, so it stands for the other
//! repositories of the same scheme, host and port too: a repository never
//! listed before is listed in one request when its host is known, unless
//! credentials or extra headers are configured for it (a server may answer
//! the capability request of a private repository differently, and a
//! reused advertisement would send the first request without asking for
//! credentials). A transfer that fails after reusing an advertisement
//! forgets it, for the repository and its host, and is made again with a
//! fresh one (a fetch then does its own handshake).

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The error text of a replayed `ls-refs` the record cannot answer; the
/// caller retries the transfer without replay.
pub(crate) const REPLAY_REFUSED: &str = "recorded ref listing cannot answer this ls-refs";

/// Bytes filled in as a response (or request) is read (or written).
pub(crate) type Tee = Arc<Mutex<Vec<u8>>>;

/// The guarded value, also after a panic elsewhere (what is guarded here
/// stays consistent whatever step panicked).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends `bytes` to what `tee` holds.
pub(crate) fn append(tee: &Tee, bytes: &[u8]) {
    lock(tee).extend_from_slice(bytes);
}

/// One recorded response.
#[derive(Default)]
pub(crate) struct RecordedResponse {
    /// The URL gix asked for (before any redirect).
    pub(crate) url: String,
    pub(crate) headers: Tee,
    pub(crate) body: Tee,
}

#[derive(Default)]
struct Slots {
    advertisement: Option<RecordedResponse>,
    /// The `ls-refs` request body and its response.
    ls_refs: Option<(Tee, RecordedResponse)>,
    /// Set when the listing cannot be replayed (credentials were asked for,
    /// the server redirected, a second request was posted).
    unusable: bool,
    /// Whether the advertisement came from [`KnownCapabilities`] rather
    /// than from the server.
    advertisement_reused: bool,
}

/// The responses of one listing transfer (see the module documentation).
#[derive(Default)]
pub(crate) struct ListingRecord {
    slots: Mutex<Slots>,
}

/// What a replay hands out for the capability request.
#[derive(Clone)]
pub(crate) struct Replayed {
    pub(crate) headers: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

impl ListingRecord {
    /// Forgets what was recorded, for a new listing.
    pub(crate) fn clear(&self) {
        *lock(&self.slots) = Slots::default();
    }

    /// Marks the record as not standing for the server's answer.
    pub(crate) fn spoil(&self) {
        lock(&self.slots).unusable = true;
    }

    /// Starts recording the capability advertisement fetched from `url`.
    pub(crate) fn record_advertisement(&self, url: &str) -> (Tee, Tee) {
        let mut slots = lock(&self.slots);
        let response = RecordedResponse {
            url: url.to_string(),
            ..Default::default()
        };
        let tees = (Arc::clone(&response.headers), Arc::clone(&response.body));
        if slots.advertisement.is_some() {
            slots.unusable = true;
        }
        slots.advertisement = Some(response);
        tees
    }

    /// Records `known`, an advertisement fetched earlier from `url`, as this
    /// listing's.
    pub(crate) fn adopt_advertisement(&self, url: &str, known: &Replayed) {
        let mut slots = lock(&self.slots);
        let response = RecordedResponse {
            url: url.to_string(),
            headers: Arc::new(Mutex::new(known.headers.clone())),
            body: Arc::new(Mutex::new(known.body.clone())),
        };
        if slots.advertisement.is_some() {
            slots.unusable = true;
        }
        slots.advertisement = Some(response);
        slots.advertisement_reused = true;
    }

    /// Whether the advertisement was reused rather than fetched, and from
    /// which URL.
    pub(crate) fn reused_advertisement(&self) -> Option<String> {
        let slots = lock(&self.slots);
        let ad = slots.advertisement.as_ref()?;
        slots.advertisement_reused.then(|| ad.url.clone())
    }

    /// The advertisement fetched from the server by a listing that can
    /// stand for the server's answer, with its URL.
    pub(crate) fn fetched_advertisement(&self) -> Option<(String, Replayed)> {
        if !self.usable() {
            return None;
        }
        let slots = lock(&self.slots);
        let ad = slots.advertisement.as_ref()?;
        if slots.advertisement_reused {
            return None;
        }
        let replayed = Replayed {
            headers: lock(&ad.headers).clone(),
            body: lock(&ad.body).clone(),
        };
        Some((ad.url.clone(), replayed))
    }

    /// Starts recording a posted request and its response; only the first
    /// post of a listing is its `ls-refs`.
    pub(crate) fn record_post(&self, url: &str) -> (Tee, Tee, Tee) {
        let mut slots = lock(&self.slots);
        let response = RecordedResponse {
            url: url.to_string(),
            ..Default::default()
        };
        let request = Tee::default();
        let tees = (
            Arc::clone(&request),
            Arc::clone(&response.headers),
            Arc::clone(&response.body),
        );
        if slots.ls_refs.is_some() {
            slots.unusable = true;
        }
        slots.ls_refs = Some((request, response));
        tees
    }

    /// Whether a fetch may be answered from this record.
    pub(crate) fn usable(&self) -> bool {
        let slots = lock(&self.slots);
        if slots.unusable {
            return false;
        }
        let (Some(ad), Some((request, refs))) = (&slots.advertisement, &slots.ls_refs) else {
            return false;
        };
        complete_stream(&lock(&ad.body)) && complete_stream(&lock(&refs.body)) && {
            let request = lock(request);
            parse_ls_refs_request(&request).is_some()
        }
    }

    /// The recorded advertisement, when it was fetched from `url`.
    pub(crate) fn advertisement(&self, url: &str) -> Option<Replayed> {
        let slots = lock(&self.slots);
        let ad = slots.advertisement.as_ref().filter(|ad| ad.url == url)?;
        let body = lock(&ad.body).clone();
        complete_stream(&body).then(|| Replayed {
            headers: lock(&ad.headers).clone(),
            body,
        })
    }

    /// The recorded `ls-refs`, when it was posted to `url`: the request and
    /// the response's headers and body.
    fn ls_refs(&self, url: &str) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        let slots = lock(&self.slots);
        let (request, refs) = slots.ls_refs.as_ref().filter(|(_, r)| r.url == url)?;
        let out = (
            lock(request).clone(),
            lock(&refs.headers).clone(),
            lock(&refs.body).clone(),
        );
        Some(out)
    }

    /// A post body that captures an `ls-refs` request posted to `url` and,
    /// once gix is done writing it, sends the filtered recorded answer into
    /// `body` (headers are the recorded ones, returned alongside).
    pub(crate) fn answer_ls_refs(
        self: &Arc<Self>,
        url: &str,
        body: SyncSender<io::Result<Vec<u8>>>,
    ) -> Option<(Vec<u8>, CapturedRequest)> {
        let (request, headers, response) = self.ls_refs(url)?;
        Some((
            headers,
            CapturedRequest {
                written: Vec::new(),
                recorded_request: request,
                recorded_response: response,
                answer: Some(body),
            },
        ))
    }
}

/// How long a server's capability advertisement is reused.
const CAPABILITIES_FOR: Duration = Duration::from_secs(600);
/// Most servers remembered at once.
const CAPABILITIES_MAX_SERVERS: usize = 4096;
/// Largest advertisement remembered (headers and body). Real ones are a
/// few hundred bytes; a listing may be far larger, and a hostile server
/// must not make every fetcher keep megabytes per host.
const CAPABILITIES_MAX_BYTES: usize = 16 << 10;

/// The capability advertisements of smart-HTTP servers listed recently
/// (within the last 10 minutes, for at most 4,096 servers), shared by the
/// handles opened with clones of one [`crate::git::GitOptions`]: a later
/// listing of the same remote skips the capability request.
#[derive(Clone, Default)]
pub struct KnownCapabilities {
    servers: Arc<Mutex<HashMap<String, (Instant, Replayed)>>>,
}

impl std::fmt::Debug for KnownCapabilities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnownCapabilities")
            .field("servers", &lock(&self.servers).len())
            .finish()
    }
}

impl KnownCapabilities {
    /// The advertisement fetched from `url` less than
    /// [`CAPABILITIES_FOR`] ago.
    pub(crate) fn get(&self, url: &str) -> Option<Replayed> {
        let servers = lock(&self.servers);
        let (when, known) = servers.get(url)?;
        (when.elapsed() < CAPABILITIES_FOR).then(|| known.clone())
    }

    /// The advertisement fetched from `url`, or else the last one fetched
    /// from another repository of its host, less than
    /// [`CAPABILITIES_FOR`] ago.
    pub(crate) fn get_for_host(&self, url: &str) -> Option<Replayed> {
        self.get(url)
            .or_else(|| host_key(url).and_then(|host| self.get(&host)))
    }

    /// Remembers the advertisement just fetched from `url`, for it and for
    /// its host, unless it is larger than [`CAPABILITIES_MAX_BYTES`].
    pub(crate) fn remember(&self, url: String, advertisement: Replayed) {
        if advertisement.headers.len() + advertisement.body.len() > CAPABILITIES_MAX_BYTES {
            return;
        }
        let mut servers = lock(&self.servers);
        if servers.len() + 2 > CAPABILITIES_MAX_SERVERS {
            servers.retain(|_, (when, _)| when.elapsed() < CAPABILITIES_FOR);
            if servers.len() + 2 > CAPABILITIES_MAX_SERVERS {
                servers.clear();
            }
        }
        if let Some(host) = host_key(&url) {
            servers.insert(host, (Instant::now(), advertisement.clone()));
        }
        servers.insert(url, (Instant::now(), advertisement));
    }

    /// Forgets what `url` advertised, and what its host did.
    pub(crate) fn forget(&self, url: &str) {
        let mut servers = lock(&self.servers);
        servers.remove(url);
        if let Some(host) = host_key(url) {
            servers.remove(&host);
        }
    }

    /// Stores `advertisement` for `url` as if just fetched, to test what a
    /// stale one does.
    #[cfg(test)]
    pub(crate) fn insert_for_test(&self, url: &str, headers: Vec<u8>, body: Vec<u8>) {
        self.remember(url.to_string(), Replayed { headers, body });
    }
}

/// The key of the repositories of `url`'s scheme, host and port asked the
/// same question: `url` (an `info/refs` request) with its path replaced.
/// `None` for anything else.
fn host_key(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (authority, path) = rest.split_at(rest.find('/')?);
    let (_, query) = path.split_once("/info/refs?")?;
    Some(format!("{scheme}://{authority}/*/info/refs?{query}"))
}

/// Where a listing takes a capability advertisement fetched earlier.
#[derive(Clone)]
pub(crate) struct CapabilitySource {
    pub(crate) known: KnownCapabilities,
    /// Whether one fetched from another repository of the host will do.
    pub(crate) whole_host: bool,
}

impl CapabilitySource {
    /// The advertisement to use for `url`, if any.
    pub(crate) fn get(&self, url: &str) -> Option<Replayed> {
        if self.whole_host {
            self.known.get_for_host(url)
        } else {
            self.known.get(url)
        }
    }
}

/// The post body of a replayed `ls-refs`: collects what gix writes and,
/// when gix drops it before reading the response, answers from the record.
pub(crate) struct CapturedRequest {
    written: Vec<u8>,
    recorded_request: Vec<u8>,
    recorded_response: Vec<u8>,
    answer: Option<SyncSender<io::Result<Vec<u8>>>>,
}

impl Write for CapturedRequest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for CapturedRequest {
    fn drop(&mut self) {
        let Some(answer) = self.answer.take() else {
            return;
        };
        let reply = filter_ls_refs(
            &self.recorded_request,
            &self.recorded_response,
            &self.written,
        )
        .ok_or_else(|| io::Error::other(REPLAY_REFUSED));
        // The channel has room for one message; a reader that went away
        // needs no answer.
        let _ = answer.try_send(reply);
    }
}

/// Splits a pkt-line stream into its packets: `Some(data)` for a data line,
/// `None` for a flush, delimiter or response-end packet. Fails on a
/// malformed stream.
fn packets(mut bytes: &[u8]) -> Option<Vec<Option<&[u8]>>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let len = std::str::from_utf8(bytes.get(..4)?).ok()?;
        let len = usize::from_str_radix(len, 16).ok()?;
        match len {
            0..=2 => {
                out.push(None);
                bytes = &bytes[4..];
            }
            3 => return None,
            _ => {
                out.push(Some(bytes.get(4..len)?));
                bytes = &bytes[len..];
            }
        }
    }
    Some(out)
}

/// Whether `bytes` is a whole pkt-line stream ending in a flush packet.
fn complete_stream(bytes: &[u8]) -> bool {
    bytes.ends_with(b"0000") && packets(bytes).is_some()
}

/// The arguments of an `ls-refs` request.
struct LsRefsArgs {
    /// The `ref-prefix` values.
    prefixes: BTreeSet<Vec<u8>>,
    /// Every other argument (`symrefs`, `peel`, `unborn`, ...).
    others: BTreeSet<Vec<u8>>,
}

/// The arguments of an `ls-refs` request; `None` for anything but a
/// well-formed `ls-refs`.
fn parse_ls_refs_request(bytes: &[u8]) -> Option<LsRefsArgs> {
    let packets = packets(bytes)?;
    let mut lines = packets.iter();
    let first = lines.next()?.as_ref()?;
    if trim_lf(first) != b"command=ls-refs" {
        return None;
    }
    // Capabilities up to the delimiter, then arguments up to the flush.
    for packet in lines.by_ref() {
        if packet.is_none() {
            break;
        }
    }
    let (mut prefixes, mut others) = (BTreeSet::new(), BTreeSet::new());
    for packet in lines {
        let Some(line) = packet else { break };
        let line = trim_lf(line);
        match line.strip_prefix(b"ref-prefix ") {
            Some(prefix) => prefixes.insert(prefix.to_vec()),
            None => others.insert(line.to_vec()),
        };
    }
    Some(LsRefsArgs { prefixes, others })
}

fn trim_lf(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

fn pkt_line(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:04x}", data.len() + 4).as_bytes());
    out.extend_from_slice(data);
}

/// What the server would answer `request` (an `ls-refs`) given that it
/// answered `recorded_request` with `recorded_response`: the recorded refs
/// its prefixes select. `None` when the record cannot tell: other
/// arguments, or a prefix not covered by the recorded ones.
fn filter_ls_refs(
    recorded_request: &[u8],
    recorded_response: &[u8],
    request: &[u8],
) -> Option<Vec<u8>> {
    let LsRefsArgs {
        prefixes: recorded_prefixes,
        others: recorded_args,
    } = parse_ls_refs_request(recorded_request)?;
    let LsRefsArgs {
        prefixes,
        others: args,
    } = parse_ls_refs_request(request)?;
    if args != recorded_args {
        return None;
    }
    let covered = |prefix: &Vec<u8>| {
        recorded_prefixes.is_empty() || recorded_prefixes.iter().any(|r| prefix.starts_with(r))
    };
    if prefixes.is_empty() && !recorded_prefixes.is_empty() || !prefixes.iter().all(covered) {
        return None;
    }
    if !complete_stream(recorded_response) {
        return None;
    }
    let mut out = Vec::new();
    for packet in packets(recorded_response)? {
        let Some(line) = packet else { break };
        // "<oid> <name> [attributes]" or "unborn <name> [attributes]".
        let name = trim_lf(line).split(|b| *b == b' ').nth(1)?;
        if prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p)) {
            pkt_line(&mut out, line);
        }
    }
    out.extend_from_slice(b"0000");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            match *line {
                "0000" | "0001" => out.extend_from_slice(line.as_bytes()),
                data => pkt_line(&mut out, data.as_bytes()),
            }
        }
        out
    }

    fn request(args: &[&str]) -> Vec<u8> {
        let mut lines = vec!["command=ls-refs\n", "agent=git/gix\n", "0001"];
        lines.extend_from_slice(args);
        lines.push("0000");
        stream(&lines)
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn listing() -> (Vec<u8>, Vec<u8>) {
        let recorded = request(&[
            "symrefs\n",
            "peel\n",
            "ref-prefix refs/heads/\n",
            "ref-prefix refs/tags/\n",
            "ref-prefix HEAD\n",
        ]);
        let response = stream(&[
            &format!("{A} HEAD symref-target:refs/heads/main\n"),
            &format!("{A} refs/heads/main\n"),
            &format!("{B} refs/tags/v1.0.0 peeled:{A}\n"),
            &format!("{A} refs/tags/v1.0.1\n"),
            &format!("{A} refs/tags/v1.0.10\n"),
            "0000",
        ]);
        (recorded, response)
    }

    #[test]
    fn prefixes_select_recorded_refs_as_the_server_would() {
        let (recorded, response) = listing();
        let asked = request(&["symrefs\n", "peel\n", "ref-prefix refs/tags/v1.0.1\n"]);
        let got = filter_ls_refs(&recorded, &response, &asked).unwrap();
        let want = stream(&[
            &format!("{A} refs/tags/v1.0.1\n"),
            &format!("{A} refs/tags/v1.0.10\n"),
            "0000",
        ]);
        assert_eq!(got, want);

        let asked = request(&["peel\n", "symrefs\n", "ref-prefix HEAD\n"]);
        let got = filter_ls_refs(&recorded, &response, &asked).unwrap();
        let want = stream(&[&format!("{A} HEAD symref-target:refs/heads/main\n"), "0000"]);
        assert_eq!(got, want);

        let asked = request(&["symrefs\n", "peel\n", "ref-prefix refs/tags/v9\n"]);
        assert_eq!(
            filter_ls_refs(&recorded, &response, &asked).unwrap(),
            b"0000"
        );
    }

    #[test]
    fn requests_the_record_cannot_answer_are_refused() {
        let (recorded, response) = listing();
        // Outside the recorded prefixes.
        let asked = request(&["symrefs\n", "peel\n", "ref-prefix refs/pull/\n"]);
        assert!(filter_ls_refs(&recorded, &response, &asked).is_none());
        // Everything, where the record holds only some.
        let asked = request(&["symrefs\n", "peel\n"]);
        assert!(filter_ls_refs(&recorded, &response, &asked).is_none());
        // Other arguments change what the server writes.
        let asked = request(&["symrefs\n", "ref-prefix refs/tags/\n"]);
        assert!(filter_ls_refs(&recorded, &response, &asked).is_none());
        let asked = request(&["symrefs\n", "peel\n", "unborn\n", "ref-prefix HEAD\n"]);
        assert!(filter_ls_refs(&recorded, &response, &asked).is_none());
        // Not an ls-refs, or a response cut short.
        let fetch = stream(&["command=fetch\n", "0001", "done\n", "0000"]);
        assert!(filter_ls_refs(&recorded, &response, &fetch).is_none());
        let asked = request(&["symrefs\n", "peel\n", "ref-prefix HEAD\n"]);
        let cut = &response[..response.len() - 4];
        assert!(filter_ls_refs(&recorded, cut, &asked).is_none());
        assert!(filter_ls_refs(&recorded, &response[..7], &asked).is_none());
    }

    #[test]
    fn only_small_advertisements_are_remembered() {
        let known = KnownCapabilities::default();
        known.insert_for_test("http://x/info/refs", b"h".to_vec(), vec![b'0'; 100]);
        assert!(known.get("http://x/info/refs").is_some());
        let huge = vec![b'0'; CAPABILITIES_MAX_BYTES + 1];
        known.insert_for_test("http://y/info/refs", b"h".to_vec(), huge);
        assert!(known.get("http://y/info/refs").is_none());
    }

    #[test]
    fn a_record_is_usable_only_whole_and_unspoiled() {
        let (request_bytes, response) = listing();
        let fill = |record: &ListingRecord| {
            let (h, b) = record.record_advertisement("http://x/r/info/refs");
            h.lock().unwrap().extend_from_slice(b"content-type: x\n");
            b.lock()
                .unwrap()
                .extend_from_slice(&stream(&["version 2\n", "ls-refs\n", "0000"]));
            let (req, h, b) = record.record_post("http://x/r/git-upload-pack");
            req.lock().unwrap().extend_from_slice(&request_bytes);
            h.lock().unwrap().extend_from_slice(b"content-type: y\n");
            b.lock().unwrap().extend_from_slice(&response);
        };
        let record = Arc::new(ListingRecord::default());
        assert!(!record.usable());
        fill(&record);
        assert!(record.usable());
        assert!(record.advertisement("http://x/r/info/refs").is_some());
        assert!(record.advertisement("http://y/r/info/refs").is_none());

        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (headers, mut body) = record
            .answer_ls_refs("http://x/r/git-upload-pack", tx)
            .unwrap();
        assert_eq!(headers, b"content-type: y\n");
        body.write_all(&request(&[
            "symrefs\n",
            "peel\n",
            "ref-prefix refs/heads/\n",
        ]))
        .unwrap();
        drop(body);
        let answer = rx.recv().unwrap().unwrap();
        assert_eq!(answer, stream(&[&format!("{A} refs/heads/main\n"), "0000"]));

        record.spoil();
        assert!(!record.usable());
        record.clear();
        fill(&record);
        assert!(record.usable());
        // A second post in one listing is not an ls-refs to stand for.
        record.record_post("http://x/r/git-upload-pack");
        assert!(!record.usable());
    }
}
