//! Fetch benchmark: our native fetcher against `go mod download` on the same
//! repository, cold (nothing cached) and warm (a new version of a
//! repository already fetched once).
//!
//! The fixture repositories, known to both sides through gitconfig
//! `insteadOf` rules:
//!
//! - `churn` (`github.com/acme/bench`): ~300 files / ~3 MB, 50 commits that
//!   each rewrite 10 files, tagged v1.0.0 (commit 25) and v1.1.0 (commit
//!   50), so the second version shares few files with the first;
//! - `library` (`github.com/acme/library`): shaped like a long-lived
//!   library (`fixtures::HistorySpec::library`): 600+ files of uneven sizes
//!   (≈ 3.6 MB), 400 commits touching 1–3 files each, an annotated tag
//!   every 4 commits (100 tags). Cold fetches v1.98.0, warm then the next
//!   release, v1.99.0;
//! - `external`, only when `FETCH_BENCH_REPO` names a git repository: a
//!   real module's history (a clone of a public repository, say), served
//!   as a bare clone of its branches and tags. Cold fetches the
//!   second-highest release tag and warm the highest, or the two named by
//!   `FETCH_BENCH_VERSIONS=OLD,NEW`. Its module path (read from the new
//!   version's go.mod) must be one the go command resolves without a
//!   go-import lookup, such as `github.com/...`: only git is redirected.
//!
//! Two transports:
//!
//! - `file`: the rule points at the repository on disk. The go command
//!   clones it into its module cache; our fetcher reads it in place, so this
//!   row flatters us.
//! - `http`: the rule points at `git http-backend` behind a small HTTP
//!   server on 127.0.0.1; both sides clone over smart HTTP.
//!
//! Each round: (cold) a `DirectFetcher` over an empty cache directory
//! downloads the old version (.info, .mod and .zip), then (warm) the same
//! instance downloads the new one. The cold fetcher is a running one, as a
//! proxy's is: made before the timing, it has already downloaded another
//! module from the same git server (`github.com/acme/neighbour`), so its
//! HTTP backend is built and its host's capabilities are known, but it
//! has never seen the fixture's repository. A row `cold/new` also times a
//! fetcher made inside the timing (a new process's first download). The
//! go command gets an empty GOMODCACHE
//! (which holds its vcs cache too), runs `go mod download -json MOD@OLD`,
//! then `... MOD@NEW` against the now-warm cache. The tags above the old
//! version are removed from the repositories for the cold download and put
//! back before the warm one, so the new version is released after the old
//! one was fetched, as a new version of a known repository is. (The go
//! command's `go mod download MOD@OLD` also fetches the highest tag and
//! reads its go.mod; were the new tag already there, its warm download
//! would find everything in its cache.) Medians are reported, with the
//! bytes the git server sent for pack requests in each phase.
//!
//! Run: `cargo bench --bench fetch` (`FETCH_BENCH_ROUNDS=N` to change the
//! number of rounds, default 10; `FETCH_BENCH_FIXTURES=library` to run only
//! some of the generated fixtures, `FETCH_BENCH_FIXTURES=` for none of
//! them; `FETCH_BENCH_REPO=PATH` to add `external`; `FETCH_BENCH_TRACE=1`
//! to log every git HTTP request with the time the server spent on it;
//! `FETCH_BENCH_PHASES=1` to print, after each of our downloads, when each
//! of its phases ([`vcs::phases`]) began and ended).
//! Figures are kept in benches/RESULTS.md.
//!
//! Put `TMPDIR` on a tmpfs (`TMPDIR=/dev/shm/x`) for figures that hold
//! from run to run. Everything the benchmark makes lives under `TMPDIR`, and
//! on ext4 creating files soon after thousands were deleted is slow (the
//! inode allocator passes over recently freed inodes): the go command, which
//! unpacks every module it downloads, then took up to three times as long
//! in later runs as in the first, while our times barely moved. Nothing is
//! deleted until the benchmark ends, which keeps one run clean, not the next.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fixtures::{build_history, GitHttpServer, GoOracle, HistorySpec};
use vcs::fetcher::DirectFetcher;
use vcs::goenv::GoEnv;

const MODULE: &str = "github.com/acme/bench";
const LIBRARY: &str = "github.com/acme/library";
/// The module a running fetcher downloaded before the timed ones.
const NEIGHBOUR: &str = "github.com/acme/neighbour";
const FILES: usize = 300;
const FILE_BYTES: usize = 10 * 1024;
const COMMITS: usize = 50;

type Error = Box<dyn std::error::Error>;

/// Rounds run so far, numbering their scratch directories.
static ROUNDS_RUN: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------
// Fixture repository.

fn git(dir: &Path, args: &[&str], date: Option<&str>) -> Result<(), Error> {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "user.name=Bench",
        "-c",
        "user.email=bench@example.com",
    ])
    .args([
        "-c",
        "commit.gpgsign=false",
        "-c",
        "init.defaultBranch=main",
    ])
    .args(args)
    .current_dir(dir)
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .stdout(Stdio::null());
    if let Some(date) = date {
        cmd.env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date);
    }
    let status = cmd.status()?;
    if !status.success() {
        return Err(format!("git {args:?} in {}: {status}", dir.display()).into());
    }
    Ok(())
}

/// Go-looking text with enough variety that it compresses like real source
/// (roughly 3-4x) rather than to nothing.
fn source_file(buf: &mut String, file: usize, revision: usize) {
    let mut x = ((file as u64) << 20 | revision as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    buf.clear();
    buf.push_str(&format!("package pkg{}\n\n", file % 20));
    while buf.len() < FILE_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.push_str(&format!(
            "func f{:x}(a int, s string) (int, error) {{\n\tif a > {} {{\n\t\treturn a * {}, nil\n\t}}\n\treturn len(s) + {}, nil // {:016x}\n}}\n\n",
            x & 0xffff_ffff,
            x % 1000,
            (x >> 10) % 97,
            (x >> 20) % 1013,
            x.rotate_left(17)
        ));
    }
}

fn file_path(file: usize) -> String {
    format!("pkg{:02}/sub{}/file{file:03}.go", file % 20, file % 3)
}

/// Builds the fixture repository in `dir`: commit 1 creates all files, each
/// later commit rewrites 10 of them and adds one.
fn build_repo(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    git(dir, &["init", "-q"], None)?;
    std::fs::write(dir.join("go.mod"), format!("module {MODULE}\n\ngo 1.21\n"))?;
    std::fs::write(
        dir.join("LICENSE"),
        "MIT License\n\nPermission is hereby granted.\n",
    )?;
    let mut buf = String::new();
    let write = |buf: &mut String, file: usize, rev: usize| -> Result<(), Error> {
        let path = dir.join(file_path(file));
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        source_file(buf, file, rev);
        std::fs::write(path, buf.as_bytes())?;
        Ok(())
    };
    for file in 0..FILES {
        write(&mut buf, file, 0)?;
    }
    for commit in 1..=COMMITS {
        if commit > 1 {
            for k in 0..10 {
                write(&mut buf, (commit * 37 + k * 29) % FILES, commit)?;
            }
            write(&mut buf, FILES + commit, commit)?;
        }
        let date = format!("2024-03-{:02}T12:{:02}:00Z", 1 + commit / 10, commit % 60);
        git(dir, &["add", "-A"], None)?;
        git(
            dir,
            &["commit", "-q", "-m", &format!("commit {commit}")],
            Some(&date),
        )?;
        match commit {
            25 => git(dir, &["tag", "v1.0.0"], Some(&date))?,
            COMMITS => git(dir, &["tag", "v1.1.0"], Some(&date))?,
            _ => {}
        }
    }
    Ok(())
}

/// A repository both sides fetch, and the two versions asked for.
struct Fixture {
    name: String,
    module: String,
    /// The bare repository served over http.
    served: PathBuf,
    /// The repository the `file` transport points at.
    on_disk: PathBuf,
    old: String,
    new: String,
}

impl Fixture {
    fn remote(&self) -> String {
        format!("https://{}", self.module)
    }

    /// The repositories a transport reads: the served one and, when it is
    /// another, the one on disk.
    fn repositories(&self) -> Vec<&Path> {
        let mut repos = vec![self.served.as_path()];
        if self.on_disk != self.served {
            repos.push(&self.on_disk);
        }
        repos
    }

    /// Semver tags above the old version, with what each ref points at (the
    /// tag object of an annotated tag): the versions not yet published when
    /// the old one is first fetched.
    fn later_tags(&self) -> Result<Vec<(String, String)>, Error> {
        let refs = git_output(
            &self.served,
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/tags/",
            ],
        )?;
        Ok(refs
            .lines()
            .filter_map(|line| line.split_once(' '))
            .filter(|(name, _)| {
                let tag = name.trim_start_matches("refs/tags/");
                modzip::semver::is_valid(tag)
                    && modzip::semver::compare(tag, &self.old) == std::cmp::Ordering::Greater
            })
            .map(|(name, oid)| (name.to_string(), oid.to_string()))
            .collect())
    }

    /// Removes the later tags: the repository as it was when only the old
    /// version existed.
    fn unpublish(&self, later: &[(String, String)]) -> Result<(), Error> {
        for repo in self.repositories() {
            for (name, _) in later {
                git(repo, &["update-ref", "-d", name], None)?;
            }
        }
        Ok(())
    }

    /// Puts the later tags back: the new version is released.
    fn publish(&self, later: &[(String, String)]) -> Result<(), Error> {
        for repo in self.repositories() {
            for (name, oid) in later {
                git(repo, &["update-ref", name, oid], None)?;
            }
        }
        Ok(())
    }
}

struct Transport {
    name: &'static str,
    gitconfig: PathBuf,
    oracle: GoOracle,
}

fn write_gitconfig(path: &Path, rules: &[(String, String)]) -> Result<(), Error> {
    let mut text = String::from("[protocol \"file\"]\n\tallow = always\n");
    for (target, remote) in rules {
        text.push_str(&format!("[url \"{target}\"]\n\tinsteadOf = {remote}\n"));
    }
    std::fs::write(path, text)?;
    Ok(())
}

fn our_fetcher(gitconfig: &Path, home: &Path, cache: &Path) -> Result<DirectFetcher, Error> {
    let env = GoEnv::from_vars([
        ("GIT_CONFIG_GLOBAL", gitconfig.display().to_string()),
        ("GIT_CONFIG_NOSYSTEM", "1".to_string()),
        ("GOPROXY", "direct".to_string()),
        ("GOSUMDB", "off".to_string()),
        ("HOME", home.display().to_string()),
    ])?;
    Ok(DirectFetcher::new(env, cache)?)
}

/// The phases of our downloads, recorded when `FETCH_BENCH_PHASES` is set.
static PHASES: OnceLock<fixtures::phases::Phases> = OnceLock::new();

/// The phases recorded since the last call, as milliseconds from `start`:
/// `name start-end` for spans in the order they opened; the pieces of git
/// responses read between two of those as `bytes first-last (pieces)`.
fn take_phases(start: Instant) -> Option<String> {
    let mut entries = std::mem::take(&mut *PHASES.get()?.lock().ok()?);
    entries.sort_by_key(|phase| phase.opened);
    let at = |t: Instant| t.saturating_duration_since(start).as_secs_f64() * 1e3;
    let mut shown = Vec::new();
    let mut pieces: Vec<Instant> = Vec::new();
    let flush = |pieces: &mut Vec<Instant>, shown: &mut Vec<String>| {
        if let (Some(first), Some(last)) = (pieces.first(), pieces.last()) {
            shown.push(format!(
                "bytes {:.1}-{:.1} ({})",
                at(*first),
                at(*last),
                pieces.len()
            ));
        }
        pieces.clear();
    };
    for phase in &entries {
        match phase.closed {
            Some(closed) => {
                flush(&mut pieces, &mut shown);
                shown.push(format!(
                    "{} {:.1}-{:.1}",
                    phase.name,
                    at(phase.opened),
                    at(closed)
                ));
            }
            None => pieces.push(phase.opened),
        }
    }
    flush(&mut pieces, &mut shown);
    Some(shown.join("  "))
}

/// One download by our fetcher, timed; the zip's h1 hash is computed
/// afterwards (outside the timing: a proxy does not need it) to check that
/// both sides produced the same zip. `label` names it among the recorded
/// phases.
fn ours_download(
    rt: &tokio::runtime::Runtime,
    fetcher: &DirectFetcher,
    module: &str,
    version: &str,
    zip: &Path,
    label: &str,
) -> Result<(Duration, String), Error> {
    if let Some(Ok(mut earlier)) = PHASES.get().map(|p| p.lock()) {
        earlier.clear();
    }
    let start = Instant::now();
    let file = std::fs::File::create(zip)?;
    let got = rt.block_on(fetcher.download(module, version, file))?;
    let elapsed = start.elapsed();
    if let Some(phases) = take_phases(start) {
        eprintln!(
            "  phases {label} {version} ({:.1} ms): {phases}",
            elapsed.as_secs_f64() * 1e3
        );
    }
    if got.info.version != version || got.go_mod.is_empty() {
        return Err(format!("ours: asked {version}, got {}", got.info.version).into());
    }
    Ok((
        elapsed,
        modzip::dirhash::hash_zip(std::fs::File::open(zip)?)?,
    ))
}

/// One `go mod download -json`; returns the zip's h1 hash as go reports it.
fn go_download(oracle: &GoOracle, module: &str, version: &str) -> Result<String, Error> {
    let out = oracle
        .command()
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    if !out.status.success() || json.get("Error").is_some() {
        return Err(format!(
            "go mod download {version}: {json} {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(json["Sum"].as_str().unwrap_or_default().to_string())
}

fn timed<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<(Duration, T), Error> {
    let start = Instant::now();
    let value = f()?;
    Ok((start.elapsed(), value))
}

#[derive(Default)]
struct Samples {
    /// A fetcher made inside the timing.
    ours_cold_new: Vec<Duration>,
    ours_cold: Vec<Duration>,
    ours_warm: Vec<Duration>,
    go_cold: Vec<Duration>,
    go_warm: Vec<Duration>,
    /// Pack bytes the git server sent per phase (http only; the last round).
    ours_cold_new_bytes: u64,
    ours_cold_bytes: u64,
    ours_warm_bytes: u64,
    go_cold_bytes: u64,
    go_warm_bytes: u64,
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn kib(bytes: u64) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

/// Long enough for the fetcher's reserve of HTTP backends, refilled when
/// a download is done, to be built (about 3 ms of processor each).
const RESERVE_BUILT: Duration = Duration::from_millis(50);

fn run_rounds(
    f: &Fixture,
    t: &Transport,
    server: &GitHttpServer,
    rounds: usize,
    scratch: &Path,
) -> Result<Samples, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let sent = || server.pack_bytes_sent();
    let later = f.later_tags()?;
    let mut s = Samples::default();
    for _ in 0..rounds {
        // A directory of its own per round, the untimed ones included:
        // nothing is removed before the benchmark ends.
        let n = ROUNDS_RUN.fetch_add(1, Ordering::Relaxed);
        let dir = scratch.join(format!("{}-{}-{n}", f.name, t.name));
        std::fs::create_dir_all(dir.join("home"))?;
        let zip = dir.join("out.zip");

        // The new version is tagged after the old one was fetched (see the
        // module documentation).
        f.unpublish(&later)?;
        // A new process: the fetcher is made inside the timing, with its
        // client and cache directory.
        let fresh_before = sent();
        let start = Instant::now();
        let fresh = our_fetcher(&t.gitconfig, &dir.join("home"), &dir.join("vcs-new"))?;
        let setup = start.elapsed();
        let (download, ours_new) = ours_download(&rt, &fresh, &f.module, &f.old, &zip, "cold/new")?;
        drop(fresh);
        s.ours_cold_new_bytes = sent() - fresh_before;
        // A running fetcher, which knows the host but not the repository.
        let fetcher = our_fetcher(&t.gitconfig, &dir.join("home"), &dir.join("vcs"))?;
        let file = std::fs::File::create(dir.join("neighbour.zip"))?;
        rt.block_on(fetcher.download(NEIGHBOUR, "v1.0.0", file))?;
        // The neighbour's handle, done, has its HTTP backend replaced in
        // the reserve; a running proxy's next miss finds it built, which
        // takes a few milliseconds of processor (reading the system's
        // certificates). Timing at once would time that build instead.
        std::thread::sleep(RESERVE_BUILT);
        let before = sent();
        let (cold, ours_v1) = ours_download(&rt, &fetcher, &f.module, &f.old, &zip, "cold")?;
        f.publish(&later)?;
        let between = sent();
        let (warm, ours_v2) = ours_download(&rt, &fetcher, &f.module, &f.new, &zip, "warm")?;
        let after = sent();
        drop(fetcher);
        s.ours_cold_bytes = between - before;
        s.ours_warm_bytes = after - between;

        t.oracle.set_aside_mod_cache()?;
        f.unpublish(&later)?;
        let (go_cold, go_v1) = timed(|| go_download(&t.oracle, &f.module, &f.old))?;
        f.publish(&later)?;
        let go_between = sent();
        let (go_warm, go_v2) = timed(|| go_download(&t.oracle, &f.module, &f.new))?;
        s.go_cold_bytes = go_between - after;
        s.go_warm_bytes = sent() - go_between;

        if ours_v1 != go_v1 || ours_new != go_v1 || ours_v2 != go_v2 {
            return Err(format!(
                "{}/{}: zip hashes differ: ours {ours_v1} {ours_v2}, go {go_v1} {go_v2}",
                f.name, t.name
            )
            .into());
        }
        s.ours_cold_new.push(setup + download);
        s.ours_cold.push(cold);
        s.ours_warm.push(warm);
        s.go_cold.push(go_cold);
        s.go_warm.push(go_warm);
        // `dir` stays until the benchmark ends, like the go command's
        // module caches (see `GoOracle::set_aside_mod_cache`).
    }
    Ok(s)
}

/// A bare clone of `source`'s branches and tags at `srv/<name>`, where the
/// http transport serves it.
fn serve_bare_clone(root: &Path, source: &Path, name: &str) -> Result<PathBuf, Error> {
    let served = root.join("srv").join(name);
    std::fs::create_dir_all(root.join("srv"))?;
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            &source.display().to_string(),
            &served.display().to_string(),
        ],
        None,
    )?;
    Ok(served)
}

/// The neighbour module: a small bare repository on the same git server
/// as the fixtures, tagged v1.0.0.
fn neighbour(root: &Path) -> Result<PathBuf, Error> {
    let served = root.join("srv/neighbour");
    let spec = HistorySpec {
        module: NEIGHBOUR.to_string(),
        files: 8,
        commits: 2,
        tag_every: 2,
        mean_file_bytes: 512,
    };
    let tags = build_history(&served, &spec)?;
    if tags.first().map(|t| t.name.as_str()) != Some("v1.0.0") {
        return Err("the neighbour module's first tag is not v1.0.0".into());
    }
    Ok(served)
}

/// The `churn` fixture: a work tree (read in place by the file transport)
/// and its bare clone (served).
fn churn_fixture(root: &Path) -> Result<Fixture, Error> {
    let repo = root.join("work/bench");
    build_repo(&repo)?;
    let served = serve_bare_clone(root, &repo, "bench")?;
    Ok(Fixture {
        name: "churn".into(),
        module: MODULE.into(),
        served,
        on_disk: repo,
        old: "v1.0.0".into(),
        new: "v1.1.0".into(),
    })
}

/// The `library` fixture: a generated bare repository with 100 tags.
fn library_fixture(root: &Path) -> Result<Fixture, Error> {
    let served = root.join("srv/library");
    let tags = build_history(&served, &HistorySpec::library(LIBRARY))?;
    let [.., old, new] = tags.as_slice() else {
        return Err("the library fixture needs two tags".into());
    };
    Ok(Fixture {
        name: "library".into(),
        module: LIBRARY.into(),
        on_disk: served.clone(),
        served,
        old: old.name.clone(),
        new: new.name.clone(),
    })
}

/// Standard output of a git command, trimmed.
fn git_output(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// The repository named by `FETCH_BENCH_REPO` (a real module's history),
/// served as a bare clone of its branches and tags. Cold fetches the
/// second-highest release tag and warm the highest, unless
/// `FETCH_BENCH_VERSIONS=OLD,NEW` names them. The module path is read from
/// the new version's go.mod; it must be one the go command resolves without
/// a go-import lookup (github.com/..., for instance), since the benchmark
/// only redirects git.
fn external_fixture(root: &Path, source: &Path) -> Result<Fixture, Error> {
    let served = serve_bare_clone(root, source, "external")?;
    let (old, new) = match std::env::var("FETCH_BENCH_VERSIONS") {
        Ok(pair) => match pair.split_once(',') {
            Some((old, new)) => (old.to_string(), new.to_string()),
            None => return Err("FETCH_BENCH_VERSIONS is OLD,NEW".into()),
        },
        Err(_) => {
            let mut releases: Vec<String> = git_output(&served, &["tag", "--list", "v*"])?
                .lines()
                .filter(|t| modzip::semver::is_valid(t) && modzip::semver::prerelease(t).is_empty())
                .filter(|t| modzip::semver::canonical(t) == *t)
                .map(str::to_string)
                .collect();
            modzip::semver::sort(&mut releases);
            match releases.as_slice() {
                [.., old, new] => (old.clone(), new.clone()),
                _ => return Err("FETCH_BENCH_REPO needs two release tags".into()),
            }
        }
    };
    let go_mod = git_output(&served, &["show", &format!("{new}:go.mod")])?;
    let module = modzip::modfile::parse_main_mod(go_mod.as_bytes())?
        .module
        .ok_or("the new version's go.mod has no module line")?;
    Ok(Fixture {
        name: "external".into(),
        module,
        on_disk: served.clone(),
        served,
        old,
        new,
    })
}

fn main() -> Result<(), Error> {
    let rounds: usize = std::env::var("FETCH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let wanted = std::env::var("FETCH_BENCH_FIXTURES").unwrap_or_else(|_| "churn,library".into());
    let root = tempfile::Builder::new().prefix("fetch-bench-").tempdir()?;
    let mut fixtures = Vec::new();
    if wanted.split(',').any(|w| w == "churn") {
        fixtures.push(churn_fixture(root.path())?);
    }
    if wanted.split(',').any(|w| w == "library") {
        fixtures.push(library_fixture(root.path())?);
    }
    if let Some(source) = std::env::var_os("FETCH_BENCH_REPO") {
        fixtures.push(external_fixture(root.path(), Path::new(&source))?);
    }
    let neighbour = neighbour(root.path())?;
    let git_server = GitHttpServer::start(root.path().join("srv"));
    git_server.trace(std::env::var_os("FETCH_BENCH_TRACE").is_some());
    if std::env::var_os("FETCH_BENCH_PHASES").is_some() {
        let _ = PHASES.set(fixtures::phases::record(vcs::phases::TARGET)?);
    }
    let scratch = root.path().join("scratch");

    let mut transports = Vec::new();
    for name in ["file", "http"] {
        let target = |on_disk: &Path, served: &Path| {
            if name == "file" {
                format!("file://{}", on_disk.display())
            } else {
                let served = served.file_name().and_then(|n| n.to_str());
                git_server.url(served.unwrap_or_default())
            }
        };
        let mut rules: Vec<(String, String)> = fixtures
            .iter()
            .map(|f| (target(&f.on_disk, &f.served), f.remote()))
            .collect();
        rules.push((
            target(&neighbour, &neighbour),
            format!("https://{NEIGHBOUR}"),
        ));
        let gitconfig = root.path().join(format!("gitconfig-{name}"));
        write_gitconfig(&gitconfig, &rules)?;
        let mut oracle = GoOracle::new()?;
        oracle.set_env("GIT_CONFIG_GLOBAL", &gitconfig.display().to_string());
        transports.push(Transport {
            name,
            gitconfig,
            oracle,
        });
    }

    println!("{rounds} rounds, medians; pack bytes sent by the git server (http, last round)");
    println!(
        "{:<8} {:<6} {:<8} {:>12} {:>12} {:>8} {:>6}   {:>10} {:>10}",
        "fixture", "remote", "phase", "ours", "go", "go/ours", "goal", "ours pack", "go pack"
    );
    for f in &fixtures {
        for t in &transports {
            // One untimed round first: page cache, the go binary, git itself.
            run_rounds(f, t, &git_server, 1, &scratch)?;
            let s = run_rounds(f, t, &git_server, rounds, &scratch)?;
            for (phase, ours, go, goal, ours_bytes, go_bytes) in [
                (
                    "cold/new",
                    &s.ours_cold_new,
                    &s.go_cold,
                    3.0,
                    s.ours_cold_new_bytes,
                    s.go_cold_bytes,
                ),
                (
                    "cold",
                    &s.ours_cold,
                    &s.go_cold,
                    3.0,
                    s.ours_cold_bytes,
                    s.go_cold_bytes,
                ),
                (
                    "warm",
                    &s.ours_warm,
                    &s.go_warm,
                    5.0,
                    s.ours_warm_bytes,
                    s.go_warm_bytes,
                ),
            ] {
                let (o, g) = (median(ours), median(go));
                let ratio = g.as_secs_f64() / o.as_secs_f64();
                println!(
                    "{:<8} {:<6} {:<8} {:>12} {:>12} {:>7.1}x {:>5}x   {:>10} {:>10}{}",
                    f.name,
                    t.name,
                    phase,
                    ms(o),
                    ms(g),
                    ratio,
                    goal,
                    kib(ours_bytes),
                    kib(go_bytes),
                    if ratio >= goal { "" } else { "  (goal missed)" }
                );
            }
        }
    }
    Ok(())
}
