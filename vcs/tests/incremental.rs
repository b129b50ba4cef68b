//! A new version of a repository already in the cache, fetched over smart
//! HTTP: the fetch tells the server which commits the cache holds (`have`
//! lines), so the pack carries only what changed since them, and the zip
//! takes the deflated form of unchanged files from earlier zips, while the
//! answers stay the go command's byte for byte. The limits on a transfer
//! apply to these fetches as to any other.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fixtures::{build_history, GitHttpServer, GoOracle, HistorySpec, HistoryTag};
use vcs::fetcher::{DirectFetcher, Downloaded};
use vcs::git::GitLimits;
use vcs::goenv::GoEnv;

const MODULE: &str = "github.com/acme/library";

struct Setup {
    tmp: tempfile::TempDir,
    server: GitHttpServer,
    tags: Vec<HistoryTag>,
    gitconfig: PathBuf,
}

impl Setup {
    /// A library-shaped history (200 files, 80 commits, 20 tags) served
    /// over smart HTTP, with a gitconfig pointing the module's GitHub URL
    /// at it.
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let served = tmp.path().join("srv");
        let spec = HistorySpec {
            module: MODULE.to_string(),
            files: 200,
            commits: 80,
            tag_every: 4,
            mean_file_bytes: 4 * 1024,
        };
        let tags = build_history(&served.join("library"), &spec).unwrap();
        assert_eq!(tags.len(), 20);
        let server = GitHttpServer::start(served);
        let gitconfig = tmp.path().join("gitconfig");
        std::fs::write(
            &gitconfig,
            format!(
                "[url \"{}\"]\n\tinsteadOf = https://{MODULE}\n",
                server.url("library")
            ),
        )
        .unwrap();
        Setup {
            tmp,
            server,
            tags,
            gitconfig,
        }
    }

    fn tag(&self, n: usize) -> &str {
        &self.tags[n].name
    }

    fn fetcher(&self, cache: &str) -> DirectFetcher {
        let env = GoEnv::from_vars([
            ("GOPROXY", "direct".to_string()),
            ("GOSUMDB", "off".to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".to_string()),
            ("GIT_CONFIG_GLOBAL", self.gitconfig.display().to_string()),
            ("HOME", self.tmp.path().display().to_string()),
        ])
        .unwrap();
        DirectFetcher::new(env, self.tmp.path().join(cache)).unwrap()
    }

    fn oracle(&self) -> GoOracle {
        let mut oracle = GoOracle::new().unwrap();
        oracle.set_env("GIT_CONFIG_GLOBAL", &self.gitconfig.display().to_string());
        oracle
    }
}

/// What one download transferred: requests of any kind, pack requests,
/// `have` lines sent and pack bytes received.
#[derive(Debug, Clone, Copy)]
struct Transfer {
    requests: usize,
    packs: usize,
    haves: usize,
    bytes: u64,
}

/// Downloads `version`, returning the result, the zip's `h1:` and what the
/// download transferred.
async fn download(
    s: &Setup,
    fetcher: &DirectFetcher,
    version: &str,
) -> (Downloaded, String, Transfer) {
    let (requests, packs, haves, bytes) = (
        s.server.requests(),
        s.server.pack_fetches(),
        s.server.haves_received(),
        s.server.pack_bytes_sent(),
    );
    let zip = s.tmp.path().join(format!("{version}.zip"));
    let got = fetcher
        .download(MODULE, version, std::fs::File::create(&zip).unwrap())
        .await
        .unwrap_or_else(|e| panic!("downloading {version}: {e}"));
    let h1 = modzip::dirhash::hash_zip(std::fs::File::open(&zip).unwrap()).unwrap();
    let transfer = Transfer {
        requests: s.server.requests() - requests,
        packs: s.server.pack_fetches() - packs,
        haves: s.server.haves_received() - haves,
        bytes: s.server.pack_bytes_sent() - bytes,
    };
    eprintln!("{version}: {transfer:?}");
    (got, h1, transfer)
}

/// Checks a download against the go command's for the same version.
fn assert_same_as_go(oracle: &GoOracle, version: &str, got: &Downloaded, h1: &str) {
    let go = oracle.download(MODULE, version).unwrap();
    assert!(go.is_ok(), "go mod download {version}: {}", go.error);
    assert_eq!(got.info.version, go.version);
    let time = got
        .info
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(time, go.time, "{version}: Time");
    assert_eq!(got.go_mod, go.go_mod_bytes().unwrap(), "{version}: go.mod");
    assert_eq!(h1, go.sum, "{version}: zip h1");
}

fn entry_is_shallow(cache: &Path) -> bool {
    std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .any(|e| std::fs::metadata(e.path().join("shallow")).is_ok_and(|m| m.len() > 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_versions_fetch_only_what_changed_and_match_the_go_command() {
    let s = Setup::new();
    let fetcher = s.fetcher("cache");
    let oracle = s.oracle();

    let (v10, h1, cold) = download(&s, &fetcher, s.tag(10)).await;
    assert_same_as_go(&oracle, s.tag(10), &v10, &h1);
    assert_eq!(cold.packs, 1, "{cold:?}");
    assert_eq!(cold.haves, 0, "an empty cache has nothing to offer");
    // The capability advertisement and the ref listing, then the pack:
    // the fetch replays the listing rather than asking for it again.
    assert_eq!(cold.requests, 3, "{cold:?}");

    // The next release: the cache holds its predecessor.
    let (v11, h1, next) = download(&s, &fetcher, s.tag(11)).await;
    assert_same_as_go(&oracle, s.tag(11), &v11, &h1);
    assert_eq!(next.packs, 1, "{next:?}");
    // The server's capabilities are known from the first download.
    assert_eq!(next.requests, 2, "{next:?}");
    assert!(next.haves >= 1, "the cached commit is offered: {next:?}");
    assert!(
        next.bytes * 8 < cold.bytes,
        "the next release's pack ({} bytes) should be a small fraction of the first ({} bytes)",
        next.bytes,
        cold.bytes
    );

    // Several releases ahead, and one from before everything cached.
    for n in [19, 2] {
        let (got, h1, t) = download(&s, &fetcher, s.tag(n)).await;
        assert_same_as_go(&oracle, s.tag(n), &got, &h1);
        assert_eq!(t.packs, 1, "{}: {t:?}", s.tag(n));
        assert!(t.haves >= 2, "{}: {t:?}", s.tag(n));
        assert!(
            t.bytes * 3 < cold.bytes,
            "{}: pack of {} bytes, first {} bytes",
            s.tag(n),
            t.bytes,
            cold.bytes
        );
    }
    // Still one commit per version: nothing fetched full history.
    assert!(entry_is_shallow(&s.tmp.path().join("cache")));

    // A version already cached needs no pack.
    let (_, _, again) = download(&s, &fetcher, s.tag(11)).await;
    assert_eq!(again.packs, 0, "{again:?}");
    assert_eq!(again.requests, 1, "only the ref listing: {again:?}");

    // The fetcher kept the deflated files of its earlier zips and took
    // most of the last ones' from there; the zip is byte for byte that of
    // a fetcher which kept nothing.
    let zip = |v: &str| std::fs::read(s.tmp.path().join(format!("{v}.zip"))).unwrap();
    let kept = zip(s.tag(2));
    download(&s, &s.fetcher("fresh"), s.tag(2)).await;
    assert!(kept == zip(s.tag(2)), "the zips differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_requests_ask_for_no_progress_as_git_does_when_it_shows_none() {
    let s = Setup::new();
    let fetcher = s.fetcher("cache");
    let (v10, cold_h1, cold) = download(&s, &fetcher, s.tag(10)).await;
    let (v11, next_h1, next) = download(&s, &fetcher, s.tag(11)).await;
    assert_eq!(cold.packs + next.packs, 2, "{cold:?} {next:?}");
    // Progress is discarded here: a server asked for none spends nothing
    // on counting and sending it.
    assert_eq!(s.server.quiet_pack_fetches(), 2);
    // (The go command's fetches, made after ours, ask the same.)
    let oracle = s.oracle();
    assert_same_as_go(&oracle, s.tag(10), &v10, &cold_h1);
    assert_same_as_go(&oracle, s.tag(11), &v11, &next_h1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_fetches_stay_within_the_pack_limits() {
    let s = Setup::new();
    let (_, _, cold) = download(&s, &s.fetcher("probe"), s.tag(10)).await;

    // A byte limit below the next release's small pack refuses it, and the
    // cache entry stays usable for a fetcher with room.
    let fetcher = s.fetcher("cache");
    download(&s, &fetcher, s.tag(10)).await;
    let tight = fetcher.clone().with_git_limits(GitLimits {
        max_pack_bytes: 512,
        ..GitLimits::default()
    });
    let zip = s.tmp.path().join("refused.zip");
    let packs = s.server.pack_fetches();
    let err = tight
        .download(MODULE, s.tag(11), std::fs::File::create(&zip).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("GitMaxPackBytes"), "{err}");
    // A refused fetch is not retried as a full fetch, which the limit
    // would refuse too.
    assert_eq!(s.server.pack_fetches() - packs, 1);

    // The same for the object count.
    let few = fetcher.clone().with_git_limits(GitLimits {
        max_pack_objects: 2,
        ..GitLimits::default()
    });
    let err = few
        .download(MODULE, s.tag(11), std::fs::File::create(&zip).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("GitMaxPackObjects"), "{err}");

    // A limit that the first version's pack would exceed still lets the
    // incremental fetch through: only what changed is counted.
    let roomy = fetcher.with_git_limits(GitLimits {
        max_pack_bytes: cold.bytes / 4,
        ..GitLimits::default()
    });
    let (got, _, next) = download(&s, &roomy, s.tag(11)).await;
    assert_eq!(got.info.version, s.tag(11));
    assert_eq!(next.packs, 1);
}

/// The non-delta blobs `git verify-pack -v` lists for `idx` whose entry
/// is no smaller than their content (stored, not compressed), and all of
/// its non-delta blobs.
fn stored_blobs(idx: &Path) -> (usize, usize) {
    let listing = git_ok(
        idx.parent().unwrap(),
        &["verify-pack", "-v", idx.to_str().unwrap()],
    );
    let (mut stored, mut whole) = (0, 0);
    for line in listing.lines() {
        // sha type size size-in-pack offset [depth base]
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 5 || fields[1] != "blob" {
            continue;
        }
        let (size, in_pack): (u64, u64) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
        if size < 256 {
            continue;
        }
        whole += 1;
        if in_pack > size {
            stored += 1;
        }
    }
    (stored, whole)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thin_packs_are_completed_with_their_bases_stored_as_they_are() {
    let s = Setup::new();
    let fetcher = s.fetcher("cache");
    download(&s, &fetcher, s.tag(10)).await;
    download(&s, &fetcher, s.tag(11)).await;

    let entry = std::fs::read_dir(s.tmp.path().join("cache"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("objects/pack").is_dir())
        .expect("a cache entry");
    let mut packs: Vec<(usize, usize)> = std::fs::read_dir(entry.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .map(|idx| stored_blobs(&idx))
        .collect();
    packs.sort_unstable();
    // The first pack came from the server, compressed; the second is the
    // thin one, completed with the bases of its deltas, which are deflated
    // at level 0 (copied in, not compressed) to spare the fetch that work.
    assert_eq!(packs.len(), 2, "{packs:?}");
    let (first, completed) = (packs[0], packs[1]);
    assert_eq!(first.0, 0, "the server's pack: {first:?}");
    assert!(completed.0 > 0, "bases stored: {completed:?}");
    // git reads the entry as it is.
    git_ok(&entry, &["fsck", "--strict", "--no-dangling"]);
}

/// What `git args` run in `dir` prints, once it has succeeded.
fn git_ok(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A download opens a span for each of its phases, so that a subscriber
/// can time them (as the fetch benchmark does): the transfers inside the
/// query, the pieces of a pack read while it is received, the zip's
/// listing, read-ahead and writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_marks_its_phases_for_a_subscriber_to_time() {
    let phases = fixtures::phases::record(vcs::phases::TARGET).unwrap();
    let s = Setup::new();
    let fetcher = s.fetcher("cache");
    download(&s, &fetcher, s.tag(10)).await;
    download(&s, &fetcher, s.tag(11)).await;
    let seen = phases.lock().unwrap().clone();
    let spans = |name: &str| -> Vec<(Instant, Instant)> {
        seen.iter()
            .filter(|p| p.name == name)
            .filter_map(|p| Some((p.opened, p.closed?)))
            .collect()
    };
    for name in [
        "git_list",
        "git_receive",
        "query",
        "go_mod",
        "zip",
        "zip_files",
        "zip_write",
        "zip_read_ahead",
    ] {
        assert!(!spans(name).is_empty(), "no {name} span in {seen:?}");
    }
    let within = |inner: (Instant, Instant), outer: (Instant, Instant)| {
        outer.0 <= inner.0 && inner.1 <= outer.1
    };
    assert!(
        spans("git_receive")
            .iter()
            .any(|r| spans("query").iter().any(|q| within(*r, *q))),
        "a pack is received while the query is resolved: {seen:?}"
    );
    assert!(
        spans("git_receive").iter().any(|r| seen
            .iter()
            .any(|p| p.closed.is_none() && within((p.opened, p.opened), *r))),
        "pieces of the pack are read while it is received: {seen:?}"
    );
    assert!(
        spans("zip_read_ahead")
            .iter()
            .any(|a| spans("zip_write").iter().any(|w| within(*a, *w))),
        "blobs are read ahead once the zip is being written: {seen:?}"
    );
}
