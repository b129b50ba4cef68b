//! The git cache stays bounded: least recently used entries are evicted
//! past the size budget, entries in use never are, and remotes that fail
//! leave nothing behind. Repositories are served over http by `git
//! http-backend` on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fixtures::GitHttpServer;
use vcs::codehost::{CodeError, CodeRepo};
use vcs::git::{budget, GitOptions, GitRepo};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env("GIT_AUTHOR_DATE", "1600000000 +0000")
        .env("GIT_COMMITTER_DATE", "1600000000 +0000")
        .args(args)
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Serves bare repositories `r0.git`, `r1.git`, ... each with one commit
/// tagged v1.0.0 holding `size` bytes of incompressible data, so every
/// cache entry is a bit over `size` bytes.
fn serve(root: &Path, count: usize, size: usize) -> (GitHttpServer, PathBuf) {
    let served = root.join("srv");
    std::fs::create_dir_all(&served).unwrap();
    for i in 0..count {
        let work = root.join(format!("w{i}"));
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let mut state = i as u32 + 1;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (state >> 16) as u8
            })
            .collect();
        std::fs::write(work.join("blob.bin"), data).unwrap();
        std::fs::write(work.join("go.mod"), format!("module example.com/r{i}\n")).unwrap();
        git(&work, &["add", "."]);
        git(&work, &["commit", "-q", "-m", "one"]);
        git(&work, &["tag", "v1.0.0"]);
        let bare = served.join(format!("r{i}.git"));
        git(
            root,
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
    }
    (GitHttpServer::start(served), root.join("cache"))
}

/// Names of the directories and files under the cache root.
fn listing(cache: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn entry_of(repo: &GitRepo) -> String {
    repo.git_dir()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}

fn opts(max_bytes: u64) -> GitOptions {
    GitOptions {
        cache_max_bytes: max_bytes,
        ..GitOptions::default()
    }
}

#[test]
fn budget_evicts_least_recently_used_entries_and_keeps_those_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let size = 200_000;
    let (server, cache) = serve(tmp.path(), 4, size);
    let unlimited = opts(0);
    // r0 stays open throughout: in use, though least recently used.
    let r0 = GitRepo::open(&server.url("r0.git"), &cache, unlimited.clone()).unwrap();
    r0.stat("v1.0.0").unwrap();
    let mut names = vec![entry_of(&r0)];
    for i in 1..3 {
        std::thread::sleep(Duration::from_millis(30));
        let repo =
            GitRepo::open(&server.url(&format!("r{i}.git")), &cache, unlimited.clone()).unwrap();
        repo.stat("v1.0.0").unwrap();
        names.push(entry_of(&repo));
    }
    // r1 used again: now r2 is the least recently used closed entry.
    std::thread::sleep(Duration::from_millis(30));
    drop(GitRepo::open(&server.url("r1.git"), &cache, unlimited.clone()).unwrap());
    let before = listing(&cache);
    for name in &names {
        assert!(before.contains(name), "{before:?}");
    }

    // Room for about two entries: r2 (least recent, unused) goes; r0 is
    // older but open, so it stays even though that leaves little room.
    let done = budget::enforce(&cache, (size as u64) * 5 / 2).unwrap();
    assert_eq!(done.removed, vec![names[2].clone()]);
    let after = listing(&cache);
    assert!(
        after.contains(&names[0]) && after.contains(&names[1]),
        "{after:?}"
    );
    assert!(
        !after.iter().any(|n| n.starts_with(&names[2])),
        "an evicted entry leaves no lock files: {after:?}"
    );
    // The open handle still reads its entry.
    assert!(r0.read_file("v1.0.0", "go.mod", 100).unwrap().is_some());

    // A fill over budget evicts by itself: opening r3 with a budget of one
    // entry removes r1 (unused), keeps r0 (open) and r3 (being filled).
    let fetches = server.pack_fetches();
    let r3 = GitRepo::open(&server.url("r3.git"), &cache, opts(size as u64 * 3 / 2)).unwrap();
    r3.stat("v1.0.0").unwrap();
    let after = listing(&cache);
    assert!(!after.contains(&names[1]), "{after:?}");
    assert!(
        after.contains(&names[0]) && after.contains(&entry_of(&r3)),
        "{after:?}"
    );
    drop((r0, r3));

    // An evicted remote is simply fetched again.
    let r2 = GitRepo::open(&server.url("r2.git"), &cache, unlimited).unwrap();
    assert!(r2.read_file("v1.0.0", "go.mod", 100).unwrap().is_some());
    assert!(server.pack_fetches() > fetches + 1);
}

#[test]
fn failed_remotes_leave_no_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, cache) = serve(tmp.path(), 1, 10);

    // The server answers 404: nothing of the remote stays in the cache.
    let err = GitRepo::open(&server.url("missing.git"), &cache, opts(0)).unwrap_err();
    assert!(matches!(err, CodeError::NotFound(_)), "{err:?}");
    assert!(listing(&cache).is_empty(), "{:?}", listing(&cache));

    // Nothing answers at all: the empty entry goes too.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/gone.git");
    let err = GitRepo::open(&url, &cache, opts(0)).unwrap_err();
    assert!(matches!(err, CodeError::Other(_)), "{err:?}");
    assert!(listing(&cache).is_empty(), "{:?}", listing(&cache));
    // A "404" in the URL (here the path; a port can hold one too) is not
    // the server's answer: the remote is still failing, not missing.
    let url = format!("http://127.0.0.1:{closed}/404.git");
    let err = GitRepo::open(&url, &cache, opts(0)).unwrap_err();
    assert!(matches!(err, CodeError::Other(_)), "{err:?}");

    // An entry opened (listed) but never filled holds no refs: kept while
    // open, removed by the next enforcement once closed.
    let open = GitRepo::open(&server.url("r0.git"), &cache, opts(0)).unwrap();
    let name = entry_of(&open);
    let done = budget::enforce(&cache, u64::MAX).unwrap();
    assert!(done.removed.is_empty(), "{done:?}");
    assert!(listing(&cache).contains(&name));
    drop(open);
    let done = budget::enforce(&cache, u64::MAX).unwrap();
    assert_eq!(done.removed, vec![name]);
    assert!(listing(&cache).is_empty(), "{:?}", listing(&cache));
}

#[test]
fn stale_scratch_directories_are_removed_and_fresh_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let name = "0123456789abcdef0123456789abcdef01234567";
    for scratch in [format!("{name}.tmp123"), format!("{name}.evict9")] {
        std::fs::create_dir_all(root.join(&scratch).join("objects")).unwrap();
    }
    std::fs::create_dir_all(root.join(name)).unwrap();
    std::fs::create_dir_all(root.join("unrelated.tmp1")).unwrap();
    // Young scratch may belong to a live process sharing the directory.
    assert_eq!(
        budget::remove_stale_scratch(root, Duration::from_secs(3600)).unwrap(),
        0
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        budget::remove_stale_scratch(root, Duration::from_millis(1)).unwrap(),
        2
    );
    assert_eq!(
        listing(root),
        vec![name.to_string(), "unrelated.tmp1".into()]
    );
}
