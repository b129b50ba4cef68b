//! How the http(s) cache fills itself: named refs by single commits at depth
//! 1, full history only for ancestry and unadvertised hashes. Every answer
//! is compared with the same repository read in place, which holds all
//! history, so the shallow path must never change an answer.

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::GitHttpServer;
use vcs::codehost::{read_all, CodeError, CodeRepo};
use vcs::git::{GitOptions, GitRepo};

/// Runs git isolated from the machine's configuration, at a fixed date.
fn git(dir: &Path, date: i64, args: &[&str]) -> String {
    let date = format!("{date} +0000");
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A served bare repository with this history (dates one hour apart):
///
/// ```text
/// main:  c1 (v0.1.0) - c2 (v1.0.0, annotated) - c3 - c4 (v1.1.0) - c5
/// side:          \- s1 (v0.2.0)
/// ```
struct Served {
    _tmp: tempfile::TempDir,
    bare: PathBuf,
    cache: PathBuf,
    server: GitHttpServer,
}

impl Served {
    fn new() -> Served {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let mut clock = 1_700_000_000;
        let mut step = |args: &[&str]| {
            clock += 3600;
            git(&work, clock, args)
        };
        step(&["init", "-q", "-b", "main"]);
        for (i, tag) in [Some("v0.1.0"), Some("v1.0.0"), None, Some("v1.1.0"), None]
            .into_iter()
            .enumerate()
        {
            std::fs::write(work.join("go.mod"), "module example.com/m\n").unwrap();
            std::fs::create_dir_all(work.join("sub")).unwrap();
            std::fs::write(
                work.join(format!("sub/f{i}.go")),
                format!("package sub // {i}\n"),
            )
            .unwrap();
            std::fs::write(work.join("big.txt"), format!("{i}").repeat(20_000)).unwrap();
            step(&["add", "-A"]);
            step(&["commit", "-q", "-m", &format!("c{}", i + 1)]);
            match tag {
                Some("v1.0.0") => {
                    step(&["tag", "-a", "-m", "release", "v1.0.0"]);
                }
                Some(t) => {
                    step(&["tag", t]);
                }
                None => {}
            }
            if i == 0 {
                step(&["checkout", "-q", "-b", "side"]);
                std::fs::write(work.join("side.go"), "package m\n").unwrap();
                step(&["add", "-A"]);
                step(&["commit", "-q", "-m", "s1"]);
                step(&["tag", "v0.2.0"]);
                step(&["checkout", "-q", "main"]);
            }
        }
        let served = tmp.path().join("srv");
        std::fs::create_dir_all(&served).unwrap();
        let bare = served.join("repo.git");
        git(
            tmp.path(),
            0,
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        let server = GitHttpServer::start(served);
        let cache = tmp.path().join("cache");
        Served {
            _tmp: tmp,
            bare,
            cache,
            server,
        }
    }

    fn rev(&self, rev: &str) -> String {
        git(&self.bare, 0, &["rev-parse", &format!("{rev}^{{commit}}")])
    }

    /// A handle on the cache (created on first use).
    fn http(&self) -> GitRepo {
        GitRepo::open(
            &self.server.url("repo.git"),
            &self.cache,
            GitOptions::default(),
        )
        .unwrap()
    }

    /// The served repository read in place: the full-history reference.
    fn full(&self) -> GitRepo {
        GitRepo::open(
            self.bare.to_str().unwrap(),
            &self.cache,
            GitOptions::default(),
        )
        .unwrap()
    }

    /// Whether the entry records a shallow boundary (git and gix both treat
    /// an empty `shallow` file as none).
    fn shallow_file(&self, repo: &GitRepo) -> bool {
        std::fs::metadata(repo.git_dir().join("shallow")).is_ok_and(|m| m.len() > 0)
    }
}

/// Paths and contents of the files of `rev`.
fn files(repo: &GitRepo, rev: &str) -> Vec<(String, Vec<u8>)> {
    repo.files(rev, "")
        .unwrap()
        .into_iter()
        .map(|f| (f.path().to_string(), read_all(f.as_ref()).unwrap()))
        .collect()
}

/// An answer reduced to what must be equal: the value, or the error kind.
fn outcome<T: std::fmt::Debug>(r: Result<T, CodeError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(CodeError::NotFound(_)) => "not found".to_string(),
        Err(e) => format!("error {}", e.to_string().contains("ambiguous")),
    }
}

#[test]
fn tag_stat_on_cold_cache_fetches_one_shallow_commit() {
    let s = Served::new();
    let full = s.full();
    let repo = s.http();
    assert_eq!(s.server.pack_fetches(), 0, "opening must only list refs");
    assert!(s.server.ref_listings() >= 1);
    // Answers from refs alone need no pack.
    assert_eq!(repo.tags("").unwrap(), full.tags("").unwrap());
    assert_eq!(repo.tags("v1.").unwrap(), full.tags("v1.").unwrap());
    assert_eq!(s.server.pack_fetches(), 0);

    let info = repo.stat("v1.0.0").unwrap();
    assert_eq!(info, full.stat("v1.0.0").unwrap());
    assert_eq!(info.hash, s.rev("v1.0.0"));
    assert_eq!(s.server.pack_fetches(), 1);
    assert!(
        s.shallow_file(&repo),
        "a depth-1 fetch leaves a shallow entry"
    );
    // Only the one commit came: its parent is not in the cache.
    let parent = s.rev("v1.0.0~1");
    let walked = git(repo.git_dir(), 0, &["rev-list", "--all"]);
    assert_eq!(walked, info.hash);
    assert!(!walked.contains(&parent));

    assert_eq!(files(&repo, "v1.0.0"), files(&full, "v1.0.0"));
    assert_eq!(
        repo.read_file("v1.0.0", "go.mod", 1000).unwrap(),
        full.read_file("v1.0.0", "go.mod", 1000).unwrap()
    );
    assert_eq!(s.server.pack_fetches(), 1);

    // A second tag is fetched shallowly too, and the first stays cached.
    assert_eq!(repo.stat("v1.1.0").unwrap(), full.stat("v1.1.0").unwrap());
    assert_eq!(files(&repo, "v1.1.0"), files(&full, "v1.1.0"));
    assert_eq!(s.server.pack_fetches(), 2);
    assert!(s.shallow_file(&repo));
    // A branch and HEAD likewise, one shallow fetch each.
    assert_eq!(repo.stat("side").unwrap(), full.stat("side").unwrap());
    assert_eq!(repo.latest().unwrap(), full.latest().unwrap());
    assert_eq!(s.server.pack_fetches(), 4);

    // A new handle on the same cache finds everything already there.
    let again = s.http();
    assert_eq!(again.stat("v1.0.0").unwrap(), info);
    assert_eq!(again.latest().unwrap(), full.latest().unwrap());
    assert_eq!(s.server.pack_fetches(), 4);
}

#[test]
fn ancestry_questions_unshallow_the_cache() {
    let s = Served::new();
    let full = s.full();
    let repo = s.http();
    assert_eq!(repo.stat("v1.1.0").unwrap(), full.stat("v1.1.0").unwrap());
    assert_eq!(s.server.pack_fetches(), 1);
    assert!(s.shallow_file(&repo));

    // A pseudo-version base needs history: everything is fetched once.
    let any = |_: &str| true;
    assert_eq!(
        repo.recent_tag("main", "", &any).unwrap(),
        full.recent_tag("main", "", &any).unwrap()
    );
    assert_eq!(
        repo.recent_tag("main", "", &any).unwrap().as_deref(),
        Some("v1.1.0")
    );
    assert_eq!(s.server.pack_fetches(), 2);
    assert!(
        !s.shallow_file(&repo),
        "full history leaves no shallow file"
    );
    let cached = git(repo.git_dir(), 0, &["rev-list", "--all"]);
    let upstream = git(&s.bare, 0, &["rev-list", "--all"]);
    assert_eq!(cached, upstream);
    let cached_refs = git(repo.git_dir(), 0, &["for-each-ref"]);
    assert_eq!(cached_refs, git(&s.bare, 0, &["for-each-ref"]));

    for (rev, tag) in [
        ("main", "v1.0.0"),
        ("v1.1.0", "v0.1.0"),
        ("side", "v1.0.0"),
        ("v0.2.0", "v0.1.0"),
        ("v1.0.0", "v1.1.0"),
        ("main", "nosuch"),
    ] {
        assert_eq!(
            outcome(repo.descends_from(rev, tag)),
            outcome(full.descends_from(rev, tag)),
            "{rev} from {tag}"
        );
    }
    let c3 = s.rev("main~2");
    assert_eq!(repo.stat(&c3[..12]).unwrap(), full.stat(&c3[..12]).unwrap());
    assert_eq!(s.server.pack_fetches(), 2, "the cache is complete now");
}

#[test]
fn descends_from_on_a_shallow_cache_fetches_history() {
    let s = Served::new();
    let full = s.full();
    let repo = s.http();
    repo.stat("main").unwrap();
    repo.stat("v1.0.0").unwrap();
    assert_eq!(s.server.pack_fetches(), 2);
    // Both commits are present but not the path between them: a walk in the
    // shallow entry alone would wrongly say no.
    assert!(repo.descends_from("main", "v1.0.0").unwrap());
    assert!(full.descends_from("main", "v1.0.0").unwrap());
    assert_eq!(s.server.pack_fetches(), 3);
    assert!(!s.shallow_file(&repo));
}

#[test]
fn unadvertised_hashes_fetch_full_history() {
    let s = Served::new();
    let full = s.full();
    let c3 = s.rev("main~2");
    for rev in [c3.clone(), c3[..7].to_string()] {
        let _ = std::fs::remove_dir_all(&s.cache);
        let before = s.server.pack_fetches();
        let repo = s.http();
        assert_eq!(repo.stat(&rev).unwrap(), full.stat(&rev).unwrap());
        assert_eq!(s.server.pack_fetches(), before + 1);
        assert!(!s.shallow_file(&repo));
    }
    // A hash of an advertised ref's commit is fetched through that ref.
    let _ = std::fs::remove_dir_all(&s.cache);
    let before = s.server.pack_fetches();
    let repo = s.http();
    let tagged = s.rev("v1.1.0");
    assert_eq!(
        repo.stat(&tagged[..12]).unwrap(),
        full.stat(&tagged[..12]).unwrap()
    );
    assert_eq!(s.server.pack_fetches(), before + 1);
    assert!(s.shallow_file(&repo));
}

#[test]
fn every_question_on_a_cold_cache_matches_full_history() {
    let s = Served::new();
    let full = s.full();
    let c3 = s.rev("main~2");
    let revs = [
        "v0.1.0".to_string(),
        "v1.0.0".to_string(),
        "v0.2.0".to_string(),
        "main".to_string(),
        "side".to_string(),
        "HEAD".to_string(),
        c3.clone(),
        c3[..9].to_string(),
        "nosuch".to_string(),
        "0000000".to_string(),
        "v9.9.9".to_string(),
    ];
    let any = |_: &str| true;
    for rev in &revs {
        let _ = std::fs::remove_dir_all(&s.cache);
        assert_eq!(
            outcome(s.http().stat(rev)),
            outcome(full.stat(rev)),
            "stat {rev}"
        );
        let _ = std::fs::remove_dir_all(&s.cache);
        assert_eq!(
            outcome(s.http().read_file(rev, "sub/f2.go", 100)),
            outcome(full.read_file(rev, "sub/f2.go", 100)),
            "read_file {rev}"
        );
        let _ = std::fs::remove_dir_all(&s.cache);
        assert_eq!(
            outcome(s.http().recent_tag(rev, "", &any)),
            outcome(full.recent_tag(rev, "", &any)),
            "recent_tag {rev}"
        );
        let _ = std::fs::remove_dir_all(&s.cache);
        assert_eq!(
            outcome(s.http().descends_from(rev, "v0.1.0")),
            outcome(full.descends_from(rev, "v0.1.0")),
            "descends_from {rev}"
        );
    }
}

#[test]
fn unknown_names_fetch_nothing() {
    let s = Served::new();
    let repo = s.http();
    let any = |_: &str| true;
    assert!(matches!(repo.stat("nosuch"), Err(CodeError::NotFound(_))));
    assert!(matches!(
        repo.read_file("nosuch", "go.mod", 100),
        Err(CodeError::NotFound(_))
    ));
    assert!(matches!(
        repo.recent_tag("nosuch", "", &any),
        Err(CodeError::NotFound(_))
    ));
    assert_eq!(s.server.pack_fetches(), 0);
}
