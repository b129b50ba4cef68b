//! Build details for `/version` and `-version`, the facts Athens' release
//! builds set with `-ldflags -X .../pkg/build.version=... buildDate=...`:
//!
//! - version: `ATHENS_BUILD_VERSION` when set; otherwise `v` and the
//!   package version, with `+` and the first 12 hex digits of the commit
//!   when built from this project's own git checkout.
//! - date: `ATHENS_BUILD_DATE` verbatim when set; otherwise
//!   `SOURCE_DATE_EPOCH` (the reproducible-builds convention), else the
//!   commit's time, in Athens' `date -u +%Y-%m-%d-%H:%M:%S-%Z` form; empty
//!   when none is known.
//!
//! The clock is never read, so a build is reproducible from its inputs and
//! nothing is rebuilt because time passed. Without git, or outside a
//! checkout of this project (a source archive unpacked in some other
//! repository), the commit is simply unknown.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "ATHENS_BUILD_VERSION",
        "ATHENS_BUILD_DATE",
        "SOURCE_DATE_EPOCH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = head_commit(&manifest_dir);
    let version = match non_empty_env("ATHENS_BUILD_VERSION") {
        Some(version) => version,
        None => {
            let package = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
            match &commit {
                Some(commit) => format!("v{package}+{}", &commit.hash[..12]),
                None => format!("v{package}"),
            }
        }
    };
    let date = non_empty_env("ATHENS_BUILD_DATE")
        .or_else(|| {
            non_empty_env("SOURCE_DATE_EPOCH")
                .and_then(|s| s.trim().parse::<i64>().ok())
                .map(athens_date)
        })
        .or_else(|| commit.as_ref().map(|c| athens_date(c.time)))
        .unwrap_or_default();
    println!("cargo:rustc-env=ATHENS_BUILD_DETAILS_VERSION={version}");
    println!("cargo:rustc-env=ATHENS_BUILD_DETAILS_DATE={date}");
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty() && !v.contains('\n'))
}

struct Commit {
    /// 40 (or 64) hex digits.
    hash: String,
    /// Committer time, seconds since the epoch.
    time: i64,
}

/// Runs git in `dir`; its trimmed output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// The checked-out commit of the repository whose top is `dir`, and asks
/// cargo to run this script again when it changes.
fn head_commit(dir: &Path) -> Option<Commit> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    // What moves HEAD: HEAD itself (checkout), the branch's ref (commit),
    // and packed-refs. A path that does not exist is not named (cargo
    // would rerun every time); a loose ref yet to be written is watched
    // through its directory.
    let git_path = |name: &str| -> Option<PathBuf> {
        let path = PathBuf::from(git(dir, &["rev-parse", "--git-path", name])?);
        Some(if path.is_absolute() {
            path
        } else {
            dir.join(path)
        })
    };
    let mut watched = vec![git_path("HEAD")?, git_path("packed-refs")?];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = git_path(&branch)?;
        match loose.parent() {
            Some(parent) if !loose.exists() => watched.push(parent.to_path_buf()),
            _ => watched.push(loose),
        }
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let line = git(dir, &["log", "-1", "--format=%H %ct", "HEAD"])?;
    let (hash, time) = line.split_once(' ')?;
    if hash.len() < 12 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Commit {
        hash: hash.to_string(),
        time: time.parse().ok()?,
    })
}

/// `secs` since the epoch as Athens' builds write the date:
/// `2006-01-02-15:04:05-UTC`.
fn athens_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}-{:02}:{:02}:{:02}-UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (Howard
/// Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
