//! Git transfers against hostile or broken servers: a server trickling its
//! answers is cut off at the caller's deadline (or when the caller gives
//! up), and the connection is closed; refs, pack bytes, pack objects and
//! object sizes beyond the limits are refused. Either way the cache entry stays usable
//! for the next, normal fetch.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fixtures::{hostile_repo, GitHttpServer, Hostile, Trickle};
use vcs::codehost::CodeRepo;
use vcs::fetcher::{DirectFetcher, FailureKind, FetchError};
use vcs::git::{GitLimits, GitOptions, GitRepo};
use vcs::goenv::GoEnv;
use vcs::interrupt::Interrupt;

/// Time between two bytes of a trickled response.
const TRICKLE: Duration = Duration::from_millis(200);
/// The deadline the trickled calls run under.
const DEADLINE: Duration = Duration::from_secs(2);
/// How long after the deadline a call may take to return.
const SLACK: Duration = Duration::from_secs(2);
/// How long after the call returned the server may still see the
/// connection open.
const CLOSE_WITHIN: Duration = Duration::from_secs(3);

struct Setup {
    tmp: tempfile::TempDir,
    bare: PathBuf,
    server: GitHttpServer,
}

impl Setup {
    fn new(spec: Hostile) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let served = tmp.path().join("srv");
        std::fs::create_dir_all(&served).unwrap();
        let bare = hostile_repo(&served, "m", "github.com/acme/m", spec);
        let server = GitHttpServer::start(served);
        Setup { tmp, bare, server }
    }

    fn url(&self) -> String {
        self.server.url("m.git")
    }

    fn cache(&self) -> PathBuf {
        self.tmp.path().join("cache")
    }

    fn main_hash(&self) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.bare)
            .args(["rev-parse", "main"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Waits until no trickled response is being written any more, and
    /// says whether that happened within `limit`.
    fn trickles_end_within(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.server.trickles_open() == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// A normal fetch through the same cache entry works and sees `main`.
    fn assert_entry_usable(&self) {
        self.server.set_trickle(None, Trickle::Everything);
        let repo = GitRepo::open(&self.url(), &self.cache(), GitOptions::default()).unwrap();
        assert_eq!(repo.stat("main").unwrap().hash, self.main_hash());
    }
}

fn within(deadline: Duration) -> GitOptions {
    GitOptions {
        interrupt: Interrupt::with_timeout(deadline),
        ..GitOptions::default()
    }
}

fn limited(limits: GitLimits) -> GitOptions {
    GitOptions {
        limits,
        ..GitOptions::default()
    }
}

/// Files in the cache entries' pack directories that are neither a pack nor
/// its index: a partly written pack left behind.
fn stray_pack_files(cache: &Path) -> Vec<PathBuf> {
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(cache).unwrap().flatten() {
        let pack_dir = entry.path().join("objects/pack");
        let Ok(files) = std::fs::read_dir(&pack_dir) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name().to_string_lossy().to_string();
            if !(name.starts_with("pack-") && (name.ends_with(".pack") || name.ends_with(".idx"))) {
                stray.push(file.path());
            }
        }
        if entry.path().join("shallow.lock").exists() {
            stray.push(entry.path().join("shallow.lock"));
        }
    }
    stray
}

#[test]
fn trickled_listing_stops_at_the_deadline_and_closes_the_connection() {
    let s = Setup::new(Hostile::default());
    s.server.set_trickle(Some(TRICKLE), Trickle::Everything);
    let started = Instant::now();
    let err = GitRepo::open(&s.url(), &s.cache(), within(DEADLINE)).unwrap_err();
    let took = started.elapsed();
    assert!(took < DEADLINE + SLACK, "returned after {took:?}: {err}");
    assert!(
        took >= DEADLINE - Duration::from_millis(100),
        "{took:?}: {err}"
    );
    assert!(err.to_string().contains("deadline exceeded"), "{err}");
    assert!(
        s.trickles_end_within(CLOSE_WITHIN),
        "the server still writes {} responses",
        s.server.trickles_open()
    );
    assert!(s.server.trickles_abandoned() >= 1);
    s.assert_entry_usable();
}

#[test]
fn trickled_pack_stops_at_the_deadline_and_leaves_no_partial_pack() {
    let s = Setup::new(Hostile {
        files: 50,
        ..Hostile::default()
    });
    s.server.set_trickle(Some(TRICKLE), Trickle::PackResponses);
    let repo = GitRepo::open(&s.url(), &s.cache(), within(DEADLINE)).unwrap();
    let started = Instant::now();
    let err = repo.stat("main").unwrap_err();
    // The listing took part of the deadline already.
    assert!(started.elapsed() < DEADLINE + SLACK, "{err}");
    assert!(err.to_string().contains("deadline exceeded"), "{err}");
    assert_eq!(s.server.pack_fetches(), 1);
    assert!(s.trickles_end_within(CLOSE_WITHIN), "connection still open");
    drop(repo);
    assert_eq!(stray_pack_files(&s.cache()), Vec::<PathBuf>::new());
    s.assert_entry_usable();
}

#[test]
fn too_many_refs_are_refused() {
    let s = Setup::new(Hostile {
        tags: 300,
        ..Hostile::default()
    });
    let limits = GitLimits {
        max_refs: 100,
        ..GitLimits::default()
    };
    let err = GitRepo::open(&s.url(), &s.cache(), limited(limits)).unwrap_err();
    assert!(err.to_string().contains("GitMaxRefs"), "{err}");
    assert!(err.to_string().contains("301 branches and tags"), "{err}");
    let repo = GitRepo::open(&s.url(), &s.cache(), GitOptions::default()).unwrap();
    assert_eq!(repo.tags("t").unwrap().len(), 300);
}

#[test]
fn too_big_pack_is_refused_and_the_entry_stays_usable() {
    let s = Setup::new(Hostile {
        big_file: 2 << 20,
        ..Hostile::default()
    });
    let limits = GitLimits {
        max_pack_bytes: 1 << 20,
        ..GitLimits::default()
    };
    let repo = GitRepo::open(&s.url(), &s.cache(), limited(limits)).unwrap();
    let err = repo.stat("main").unwrap_err();
    assert!(err.to_string().contains("GitMaxPackBytes"), "{err}");
    drop(repo);
    assert_eq!(stray_pack_files(&s.cache()), Vec::<PathBuf>::new());
    s.assert_entry_usable();
}

#[test]
fn pack_with_too_many_objects_is_refused() {
    let s = Setup::new(Hostile {
        files: 300,
        ..Hostile::default()
    });
    let limits = GitLimits {
        max_pack_objects: 100,
        ..GitLimits::default()
    };
    let repo = GitRepo::open(&s.url(), &s.cache(), limited(limits)).unwrap();
    let err = repo.stat("main").unwrap_err();
    assert!(err.to_string().contains("GitMaxPackObjects"), "{err}");
    drop(repo);
    assert_eq!(stray_pack_files(&s.cache()), Vec::<PathBuf>::new());
    s.assert_entry_usable();
}

#[test]
fn object_over_the_limit_is_refused_and_the_entry_stays_usable() {
    // 8 MiB of zeros travel as a few KiB.
    let s = Setup::new(Hostile {
        zero_file: 8 << 20,
        ..Hostile::default()
    });
    let limits = GitLimits {
        max_object_bytes: 1 << 20,
        ..GitLimits::default()
    };
    let repo = GitRepo::open(&s.url(), &s.cache(), limited(limits)).unwrap();
    let err = repo.stat("main").unwrap_err();
    assert!(err.to_string().contains("GitMaxObjectBytes"), "{err}");
    assert!(s.server.pack_bytes_sent() < 1 << 20);
    drop(repo);
    assert_eq!(stray_pack_files(&s.cache()), Vec::<PathBuf>::new());
    s.assert_entry_usable();
}

/// Serves the packs of `s` as `rewrite` makes them.
fn rewrite_packs(s: &Setup, rewrite: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static) {
    s.server
        .set_pack_rewrite(Some(std::sync::Arc::new(rewrite)));
}

/// Serves the packs of `s` with one more entry: a delta that claims to
/// make an object of `claimed` bytes.
fn claim_in_packs(s: &Setup, claimed: u64) {
    rewrite_packs(s, move |pack| {
        fixtures::hostile_pack::with_delta_claiming(pack, claimed)
    });
}

#[test]
fn delta_claiming_gigabytes_is_refused_before_allocating_them() {
    let s = Setup::new(Hostile::default());
    // A delta that means what it claims (one byte) makes a well-formed
    // pack: what is refused next is the claim alone.
    claim_in_packs(&s, 1);
    let repo = GitRepo::open(&s.url(), &s.cache(), GitOptions::default()).unwrap();
    assert_eq!(repo.stat("main").unwrap().hash, s.main_hash());
    drop(repo);
    let _ = std::fs::remove_dir_all(s.cache());

    claim_in_packs(&s, 3 << 30);
    let repo = GitRepo::open(&s.url(), &s.cache(), GitOptions::default()).unwrap();
    let err = repo.stat("main").unwrap_err();
    assert!(err.to_string().contains("GitMaxObjectBytes"), "{err}");
    drop(repo);
    assert_eq!(stray_pack_files(&s.cache()), Vec::<PathBuf>::new());
    s.server.set_pack_rewrite(None);
    s.assert_entry_usable();
}

#[test]
fn pack_announcing_millions_of_objects_is_refused_before_indexing() {
    let s = Setup::new(Hostile::default());
    // Under GitMaxPackObjects, but an index for that many objects would
    // take more than GitMaxObjectBytes.
    rewrite_packs(&s, |pack| {
        fixtures::hostile_pack::with_object_count(pack, 10_000_000)
    });
    let repo = GitRepo::open(&s.url(), &s.cache(), GitOptions::default()).unwrap();
    let err = repo.stat("main").unwrap_err().to_string();
    assert!(err.contains("indexing the pack's objects"), "{err}");
    assert!(err.contains("GitMaxObjectBytes"), "{err}");
    drop(repo);
    assert_eq!(stray_pack_files(&s.cache()), Vec::<PathBuf>::new());
    s.server.set_pack_rewrite(None);
    s.assert_entry_usable();
}

/// A fetcher whose go environment sends `github.com/acme/m` to the server.
fn fetcher(s: &Setup) -> DirectFetcher {
    let gitconfig = s.tmp.path().join("gitconfig");
    std::fs::write(
        &gitconfig,
        format!(
            "[url \"{}\"]\n\tinsteadOf = https://github.com/acme/m\n",
            s.url()
        ),
    )
    .unwrap();
    let env = GoEnv::from_vars(vec![
        ("GOPROXY".to_string(), "direct".to_string()),
        ("GIT_CONFIG_NOSYSTEM".to_string(), "1".to_string()),
        (
            "GIT_CONFIG_GLOBAL".to_string(),
            gitconfig.display().to_string(),
        ),
        ("HOME".to_string(), s.tmp.path().display().to_string()),
    ])
    .unwrap();
    DirectFetcher::new(env, s.cache()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetcher_deadline_is_a_timeout_failure() {
    let s = Setup::new(Hostile::default());
    s.server.set_trickle(Some(TRICKLE), Trickle::PackResponses);
    let direct = fetcher(&s).with_timeout(Some(DEADLINE));
    let started = Instant::now();
    let err = direct.query("github.com/acme/m", "main").await.unwrap_err();
    assert!(started.elapsed() < DEADLINE + SLACK, "{err}");
    assert!(matches!(err, FetchError::Deadline { .. }), "{err:?}");
    assert_eq!(err.kind(), FailureKind::Timeout);
    assert!(s.trickles_end_within(CLOSE_WITHIN), "connection still open");
    s.server.set_trickle(None, Trickle::Everything);
    let info = direct.query("github.com/acme/m", "main").await.unwrap();
    assert!(info.version.starts_with("v0.0.0-"), "{}", info.version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_call_stops_its_blocking_work() {
    let s = Setup::new(Hostile::default());
    s.server.set_trickle(Some(TRICKLE), Trickle::PackResponses);
    // No deadline: only the caller giving up can stop the fetch.
    let direct = fetcher(&s);
    let call = direct.query("github.com/acme/m", "main");
    assert!(tokio::time::timeout(Duration::from_secs(1), call)
        .await
        .is_err());
    // The blocking work saw the interrupt and released the entry lock, so
    // the next call (to a server behaving again) does not wait on it.
    s.server.set_trickle(None, Trickle::Everything);
    let started = Instant::now();
    let info = tokio::time::timeout(
        Duration::from_secs(20),
        direct.query("github.com/acme/m", "main"),
    )
    .await
    .expect("no hang on the entry lock")
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(info.version.starts_with("v0.0.0-"), "{}", info.version);
}
