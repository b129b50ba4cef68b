//! Fetch benchmark: our native fetcher against `go mod download` on the same
//! repository, cold (nothing cached) and warm (a second version of a
//! repository already fetched once).
//!
//! The fixture is a generated git repository of ~300 files / ~3 MB with 50
//! commits, tagged v1.0.0 (commit 25) and v1.1.0 (commit 50), known to both
//! sides as `github.com/acme/bench` through a gitconfig `insteadOf` rule.
//! Two transports:
//!
//! - `file`: the rule points at the repository on disk. The go command
//!   clones it into its module cache; our fetcher reads it in place, so this
//!   row flatters us.
//! - `http`: the rule points at `git http-backend` behind a small HTTP
//!   server on 127.0.0.1; both sides clone over smart HTTP.
//!
//! Each round: (cold) a fresh `DirectFetcher` over an empty cache directory
//! downloads v1.0.0 (.info, .mod and .zip), then (warm) the same instance
//! downloads v1.1.0; the go command gets an empty GOMODCACHE (which holds
//! its vcs cache too), runs `go mod download -json MOD@v1.0.0`, then
//! `... MOD@v1.1.0` against the now-warm cache. Medians are reported.
//!
//! Run: `cargo bench --bench fetch` (`FETCH_BENCH_ROUNDS=N` to change the
//! number of rounds, default 10; `FETCH_BENCH_TRACE=1` to log every git
//! HTTP request with the time the server spent on it). Figures are kept in
//! benches/RESULTS.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fixtures::GoOracle;
use vcs::fetcher::DirectFetcher;
use vcs::goenv::GoEnv;

const MODULE: &str = "github.com/acme/bench";
const REMOTE: &str = "https://github.com/acme/bench";
const FILES: usize = 300;
const FILE_BYTES: usize = 10 * 1024;
const COMMITS: usize = 50;

type Error = Box<dyn std::error::Error>;

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

struct Transport {
    name: &'static str,
    gitconfig: PathBuf,
    oracle: GoOracle,
}

fn write_gitconfig(path: &Path, target: &str) -> Result<(), Error> {
    std::fs::write(
        path,
        format!(
            "[protocol \"file\"]\n\tallow = always\n[url \"{target}\"]\n\tinsteadOf = {REMOTE}\n"
        ),
    )?;
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

/// One download by our fetcher, timed; the zip's h1 hash is computed
/// afterwards (outside the timing: a proxy does not need it) to check that
/// both sides produced the same zip.
fn ours_download(
    rt: &tokio::runtime::Runtime,
    fetcher: &DirectFetcher,
    version: &str,
    zip: &Path,
) -> Result<(Duration, String), Error> {
    let start = Instant::now();
    let file = std::fs::File::create(zip)?;
    let got = rt.block_on(fetcher.download(MODULE, version, file))?;
    let elapsed = start.elapsed();
    if got.info.version != version || got.go_mod.is_empty() {
        return Err(format!("ours: asked {version}, got {}", got.info.version).into());
    }
    Ok((
        elapsed,
        modzip::dirhash::hash_zip(std::fs::File::open(zip)?)?,
    ))
}

/// One `go mod download -json`; returns the zip's h1 hash as go reports it.
fn go_download(oracle: &GoOracle, version: &str) -> Result<String, Error> {
    let out = oracle
        .command()
        .args(["mod", "download", "-json", &format!("{MODULE}@{version}")])
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
    ours_cold: Vec<Duration>,
    ours_warm: Vec<Duration>,
    go_cold: Vec<Duration>,
    go_warm: Vec<Duration>,
}

fn median(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn run_rounds(t: &Transport, rounds: usize, scratch: &Path) -> Result<Samples, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut s = Samples::default();
    for round in 0..rounds {
        let dir = scratch.join(format!("{}-{round}", t.name));
        std::fs::create_dir_all(dir.join("home"))?;
        let zip = dir.join("out.zip");

        // The fetcher is built inside the cold timing: a cold start
        // includes making the client and the cache directory.
        let start = Instant::now();
        let fetcher = our_fetcher(&t.gitconfig, &dir.join("home"), &dir.join("vcs"))?;
        let setup = start.elapsed();
        let (download, ours_v1) = ours_download(&rt, &fetcher, "v1.0.0", &zip)?;
        let cold = setup + download;
        let (warm, ours_v2) = ours_download(&rt, &fetcher, "v1.1.0", &zip)?;
        drop(fetcher);

        t.oracle.clear_mod_cache()?;
        let (go_cold, go_v1) = timed(|| go_download(&t.oracle, "v1.0.0"))?;
        let (go_warm, go_v2) = timed(|| go_download(&t.oracle, "v1.1.0"))?;

        if ours_v1 != go_v1 || ours_v2 != go_v2 {
            return Err(format!(
                "{}: zip hashes differ: ours {ours_v1} {ours_v2}, go {go_v1} {go_v2}",
                t.name
            )
            .into());
        }
        s.ours_cold.push(cold);
        s.ours_warm.push(warm);
        s.go_cold.push(go_cold);
        s.go_warm.push(go_warm);
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(s)
}

fn main() -> Result<(), Error> {
    let rounds: usize = std::env::var("FETCH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let root = tempfile::Builder::new().prefix("fetch-bench-").tempdir()?;
    let repo = root.path().join("work/bench");
    build_repo(&repo)?;
    let served = root.path().join("srv");
    std::fs::create_dir_all(&served)?;
    git(
        root.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &repo.display().to_string(),
            &served.join("bench").display().to_string(),
        ],
        None,
    )?;
    let git_server = fixtures::GitHttpServer::start(served);
    git_server.trace(std::env::var_os("FETCH_BENCH_TRACE").is_some());
    let scratch = root.path().join("scratch");

    let mut transports = Vec::new();
    for (name, target) in [
        ("file", format!("file://{}", repo.display())),
        ("http", git_server.url("bench")),
    ] {
        let gitconfig = root.path().join(format!("gitconfig-{name}"));
        write_gitconfig(&gitconfig, &target)?;
        let mut oracle = GoOracle::new()?;
        oracle.set_env("GIT_CONFIG_GLOBAL", &gitconfig.display().to_string());
        transports.push(Transport {
            name,
            gitconfig,
            oracle,
        });
    }

    println!(
        "fixture: {FILES}+ files, {COMMITS} commits, tags v1.0.0 (commit 25) and v1.1.0 (commit 50); {rounds} rounds, medians"
    );
    println!(
        "{:<6} {:<5} {:>12} {:>12} {:>8} {:>6}",
        "remote", "phase", "ours", "go", "go/ours", "goal"
    );
    for t in &transports {
        // One untimed round first: page cache, the go binary, git itself.
        run_rounds(t, 1, &scratch)?;
        let s = run_rounds(t, rounds, &scratch)?;
        for (phase, ours, go, goal) in [
            ("cold", &s.ours_cold, &s.go_cold, 3.0),
            ("warm", &s.ours_warm, &s.go_warm, 10.0),
        ] {
            let (o, g) = (median(ours), median(go));
            let ratio = g.as_secs_f64() / o.as_secs_f64();
            println!(
                "{:<6} {:<5} {:>12} {:>12} {:>7.1}x {:>5}x{}",
                t.name,
                phase,
                ms(o),
                ms(g),
                ratio,
                goal,
                if ratio >= goal { "" } else { "  (goal missed)" }
            );
        }
    }
    Ok(())
}
