//! The gix code host checked against the git CLI as oracle, on repositories
//! built here with fixed dates: local paths, file:// via insteadOf, and http
//! through `git http-backend` behind a small server on 127.0.0.1.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fixtures::GitHttpServer;
use vcs::codehost::{read_all, CodeError, CodeRepo};
use vcs::git::{GitOptions, GitRepo, HostCredentials};

/// A git invocation isolated from the machine's configuration, with fixed
/// identities and dates so that hashes are reproducible.
fn git_cmd(dir: &Path, date: i64) -> Command {
    let mut cmd = Command::new("git");
    let date = format!("{date} +0200");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "Ann Author")
        .env("GIT_AUTHOR_EMAIL", "ann@example.com")
        .env("GIT_COMMITTER_NAME", "Cid Committer")
        .env("GIT_COMMITTER_EMAIL", "cid@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date);
    cmd
}

fn git_at(dir: &Path, date: i64, args: &[&str]) -> String {
    let out = git_cmd(dir, date).args(args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 git output")
}

fn git(dir: &Path, args: &[&str]) -> String {
    git_at(dir, 1_600_000_000, args)
}

fn git_ok(dir: &Path, args: &[&str]) -> bool {
    git_cmd(dir, 0)
        .args(args)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run git")
        .success()
}

/// Builds a working repository, committing with increasing dates.
struct Fixture {
    dir: PathBuf,
    clock: i64,
}

impl Fixture {
    fn new(dir: PathBuf) -> Fixture {
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        Fixture {
            dir,
            clock: 1_600_000_000,
        }
    }

    fn write(&self, path: &str, data: &[u8]) {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn commit(&mut self, msg: &str) -> String {
        self.clock += 3600;
        git_at(&self.dir, self.clock, &["add", "-A"]);
        git_at(
            &self.dir,
            self.clock,
            &["commit", "-q", "--allow-empty", "-m", msg],
        );
        self.rev("HEAD")
    }

    fn run(&mut self, args: &[&str]) -> String {
        self.clock += 60;
        git_at(&self.dir, self.clock, args)
    }

    fn rev(&self, rev: &str) -> String {
        git(&self.dir, &["rev-parse", &format!("{rev}^{{commit}}")])
            .trim()
            .to_string()
    }
}

/// History used by the ref tests:
///
/// ```text
/// main:   c1(v0.1.0, sub/v1.0.0) - c2(v1.0.0 annotated) - c4(merge, v1.2.0-pre) - c5
///                 \                                      /
/// feature:         c3(v1.1.0, v2.0.0+incompat-ish name)
/// ```
fn history_fixture(root: &Path) -> Fixture {
    let mut f = Fixture::new(root.join("work"));
    f.write("go.mod", b"module example.com/m\n");
    f.write("sub/go.mod", b"module example.com/m/sub\n");
    f.write("big.txt", &[b'x'; 5000]);
    let c1 = f.commit("one");
    f.run(&["tag", "v0.1.0"]);
    f.run(&["tag", "sub/v1.0.0"]);
    f.run(&["tag", "not-semver"]);
    f.write("a.go", b"package m\n");
    f.commit("two");
    f.run(&["tag", "-a", "-m", "release", "v1.0.0"]);
    f.run(&["checkout", "-q", "-b", "feature", &c1]);
    f.write("b.go", b"package m\n");
    f.commit("three");
    f.run(&["tag", "v1.1.0"]);
    f.run(&["tag", "-a", "-m", "sub release", "sub/v1.5.0"]);
    f.run(&["tag", "v1.1.0+meta"]);
    f.run(&["checkout", "-q", "main"]);
    f.clock += 3600;
    let clock = f.clock;
    git_at(
        &f.dir,
        clock,
        &["merge", "-q", "--no-ff", "-m", "merge", "feature"],
    );
    f.run(&["tag", "v1.2.0-pre"]);
    f.write("c.go", b"package m\n");
    f.commit("five");
    f
}

fn open_local(path: &Path) -> GitRepo {
    let cache = path.parent().unwrap().join("unused-cache");
    GitRepo::open(path.to_str().unwrap(), &cache, GitOptions::default()).expect("open local repo")
}

fn oracle_tags(dir: &Path) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for line in git(dir, &["ls-remote", "--tags", "."]).lines() {
        let (hash, name) = line.split_once('\t').unwrap();
        let name = name.strip_prefix("refs/tags/").unwrap();
        match name.strip_suffix("^{}") {
            Some(peeled) => {
                tags.insert(peeled.to_string(), hash.to_string());
            }
            None => {
                tags.entry(name.to_string()).or_insert(hash.to_string());
            }
        }
    }
    tags
}

fn commit_time(dir: &Path, rev: &str) -> i64 {
    git(dir, &["log", "-1", "--format=%ct", rev])
        .trim()
        .parse()
        .unwrap()
}

fn points_at(dir: &Path, hash: &str) -> Vec<String> {
    let mut tags: Vec<String> = git(dir, &["tag", "--points-at", hash])
        .lines()
        .map(str::to_string)
        .collect();
    tags.sort();
    tags
}

#[test]
fn tags_match_ls_remote_peeled() {
    let tmp = tempfile::tempdir().unwrap();
    let f = history_fixture(tmp.path());
    let repo = open_local(&f.dir);
    let oracle = oracle_tags(&f.dir);
    let all: BTreeMap<String, String> = repo
        .tags("")
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.hash))
        .collect();
    assert_eq!(all, oracle);
    // The annotated tag is reported with its commit, not the tag object.
    assert_eq!(all["v1.0.0"], f.rev("v1.0.0"));
    let sub: Vec<String> = repo
        .tags("sub/")
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(sub, ["sub/v1.0.0", "sub/v1.5.0"]);
    assert!(repo.tags("nothing").unwrap().is_empty());
}

#[test]
fn stat_agrees_with_git() {
    let tmp = tempfile::tempdir().unwrap();
    let f = history_fixture(tmp.path());
    let repo = open_local(&f.dir);
    let head = f.rev("HEAD");
    let cases: Vec<(String, Option<String>)> = vec![
        ("v0.1.0".into(), Some("refs/tags/v0.1.0".into())),
        ("v1.0.0".into(), Some("refs/tags/v1.0.0".into())),
        ("sub/v1.5.0".into(), Some("refs/tags/sub/v1.5.0".into())),
        ("main".into(), Some("refs/heads/main".into())),
        ("feature".into(), Some("refs/heads/feature".into())),
        ("HEAD".into(), Some("HEAD".into())),
        // A hash that is a ref tip records the smallest ref naming it.
        (head.clone(), Some("HEAD".into())),
        (head[..7].to_string(), Some("HEAD".into())),
        (f.rev("v1.1.0"), Some("refs/heads/feature".into())),
        (
            f.rev("v1.0.0")[..12].to_string(),
            Some("refs/tags/v1.0.0".into()),
        ),
        // Several refs name this commit: the smallest name wins.
        (f.rev("HEAD~1^2~0"), Some("refs/heads/feature".into())),
        (f.rev("HEAD~1"), Some("refs/tags/v1.2.0-pre".into())),
    ];
    for (rev, origin) in cases {
        let info = repo
            .stat(&rev)
            .unwrap_or_else(|e| panic!("stat {rev}: {e}"));
        let want = f.rev(&rev);
        assert_eq!(info.hash, want, "{rev}");
        assert_eq!(info.short, want[..12], "{rev}");
        assert_eq!(
            info.time.unix_timestamp(),
            commit_time(&f.dir, &rev),
            "{rev}"
        );
        assert_eq!(info.time.offset(), time::UtcOffset::UTC);
        assert_eq!(info.tags, points_at(&f.dir, &want), "{rev}");
        assert_eq!(info.origin_ref, origin, "{rev}");
    }
    let plain = f.rev("main~1^1");
    let info = repo.stat(&plain[..9]).unwrap();
    assert_eq!(info.hash, plain);
    assert_eq!(info.origin_ref.as_deref(), Some("refs/tags/v1.0.0"));

    let first = f.rev("v0.1.0");
    let info = repo.stat(&first).unwrap();
    assert_eq!(info.tags, ["not-semver", "sub/v1.0.0", "v0.1.0"]);
}

#[test]
fn stat_of_untagged_commit_has_no_origin_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = Fixture::new(tmp.path().join("w"));
    let first = f.commit("one");
    f.commit("two");
    let repo = open_local(&f.dir);
    let info = repo.stat(&first).unwrap();
    assert_eq!(info.hash, first);
    assert_eq!(info.origin_ref, None);
    assert!(info.tags.is_empty());
    let info = repo.stat(&first[..8]).unwrap();
    assert_eq!(info.hash, first);
}

#[test]
fn unknown_revisions_are_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let f = history_fixture(tmp.path());
    let repo = open_local(&f.dir);
    let head = f.rev("HEAD");
    for rev in [
        "v9.9.9",
        "no-such-branch",
        // Full ref names and revision expressions are not accepted.
        "refs/heads/main",
        "main~1",
        // Upper-case or too short hex is not a hash.
        &head[..7].to_uppercase(),
        &head[..6],
        "0000000000000000000000000000000000000000",
        "deadbeefdeadbeef",
    ] {
        match repo.stat(rev) {
            Err(CodeError::NotFound(_)) => {}
            other => panic!("stat {rev}: {other:?}"),
        }
        assert!(matches!(
            repo.read_file(rev, "go.mod", 100),
            Err(CodeError::NotFound(_))
        ));
        assert!(matches!(repo.files(rev, ""), Err(CodeError::NotFound(_))));
    }
    // A tree is not a commit.
    let tree = git(&f.dir, &["rev-parse", "HEAD^{tree}"]);
    assert!(matches!(
        repo.stat(tree.trim()),
        Err(CodeError::NotFound(_))
    ));
}

#[test]
fn latest_is_default_branch_head() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = history_fixture(tmp.path());
    // HEAD of the repository read, whatever branch is checked out.
    f.run(&["checkout", "-q", "feature"]);
    let repo = open_local(&f.dir);
    let latest = repo.latest().unwrap();
    assert_eq!(latest.hash, f.rev("feature"));
    assert_eq!(latest.origin_ref.as_deref(), Some("HEAD"));
    assert_eq!(latest.time.unix_timestamp(), commit_time(&f.dir, "feature"));

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    git(&empty, &["init", "-q"]);
    let repo = open_local(&empty);
    assert!(matches!(repo.latest(), Err(CodeError::NotFound(_))));
    assert!(repo.tags("").unwrap().is_empty());
}

#[test]
fn read_file_cases() {
    let tmp = tempfile::tempdir().unwrap();
    let mut f = history_fixture(tmp.path());
    f.run(&["checkout", "-q", "main"]);
    std::os::unix::fs::symlink("go.mod", f.dir.join("link")).unwrap();
    f.commit("link");
    let repo = open_local(&f.dir);
    let go_mod = repo.read_file("v1.0.0", "go.mod", 1 << 20).unwrap();
    assert_eq!(go_mod.as_deref(), Some(&b"module example.com/m\n"[..]));
    let sub = repo.read_file("v0.1.0", "sub/go.mod", 1 << 20).unwrap();
    assert_eq!(sub.as_deref(), Some(&b"module example.com/m/sub\n"[..]));
    // Absent at that revision, absent anywhere, a directory, odd paths.
    assert_eq!(repo.read_file("v0.1.0", "a.go", 100).unwrap(), None);
    assert_eq!(repo.read_file("HEAD", "nope", 100).unwrap(), None);
    assert_eq!(repo.read_file("HEAD", "sub", 100).unwrap(), None);
    assert_eq!(repo.read_file("HEAD", "go.mod/x", 100).unwrap(), None);
    assert_eq!(repo.read_file("HEAD", "./go.mod", 100).unwrap(), None);
    // A symlink reads as its target text, like `git cat-file blob`.
    assert_eq!(
        repo.read_file("HEAD", "link", 100).unwrap().as_deref(),
        Some(&b"go.mod"[..])
    );
    // Exactly at the limit is fine; one byte less fails.
    assert_eq!(
        repo.read_file("HEAD", "big.txt", 5000)
            .unwrap()
            .unwrap()
            .len(),
        5000
    );
    match repo.read_file("HEAD", "big.txt", 4999) {
        Err(CodeError::Refused(msg)) => assert_eq!(
            msg,
            "big.txt file too large (max size is 4999 bytes): 5000 bytes at HEAD"
        ),
        other => panic!("{other:?}"),
    }
    let oracle = git(&f.dir, &["cat-file", "blob", "v1.0.0:go.mod"]);
    assert_eq!(go_mod.unwrap(), oracle.as_bytes());
}

/// A recent_tag `allowed` predicate.
type TagFilter<'a> = &'a dyn Fn(&str) -> bool;

/// The go command's rule, computed from `git for-each-ref --merged`.
fn oracle_recent_tag(
    dir: &Path,
    rev: &str,
    prefix: &str,
    allowed: &dyn Fn(&str) -> bool,
) -> Option<String> {
    let out = git(
        dir,
        &[
            "for-each-ref",
            "--format=%(refname)",
            &format!("--merged={rev}"),
        ],
    );
    let mut highest = String::new();
    for line in out.lines() {
        let Some(tag) = line.strip_prefix("refs/tags/") else {
            continue;
        };
        let Some(semantic) = tag.strip_prefix(prefix) else {
            continue;
        };
        if !allowed(tag) {
            continue;
        }
        if modzip::semver::compare(semantic, &highest) == std::cmp::Ordering::Greater {
            highest = semantic.to_string();
        }
    }
    (!highest.is_empty()).then(|| format!("{prefix}{highest}"))
}

#[test]
fn recent_tag_agrees_with_for_each_ref() {
    let tmp = tempfile::tempdir().unwrap();
    let f = history_fixture(tmp.path());
    let repo = open_local(&f.dir);
    let everything = |_: &str| true;
    let no_prerelease = |t: &str| !t.contains('-');
    let not_v1_1 = |t: &str| !t.starts_with("v1.1.");
    let filters: [(&str, TagFilter<'_>); 3] = [
        ("all", &everything),
        ("no-pre", &no_prerelease),
        ("not-1.1", &not_v1_1),
    ];
    let revs = [
        "v0.1.0",
        "v1.0.0",
        "feature",
        "v1.2.0-pre",
        "main",
        "HEAD~1^2",
    ];
    for rev in revs {
        for prefix in ["", "sub/", "v1", "nothing/"] {
            for (label, allowed) in &filters {
                let got = repo.recent_tag(&f.rev(rev), prefix, allowed).unwrap();
                let want = oracle_recent_tag(&f.dir, rev, prefix, allowed);
                assert_eq!(got, want, "rev {rev} prefix {prefix:?} filter {label}");
            }
        }
    }
    // Spot checks that the oracle itself behaves as expected.
    assert_eq!(
        repo.recent_tag("main", "", &everything).unwrap().as_deref(),
        Some("v1.2.0-pre")
    );
    assert_eq!(
        repo.recent_tag("main", "", &no_prerelease)
            .unwrap()
            .as_deref(),
        Some("v1.1.0")
    );
    assert_eq!(
        repo.recent_tag("v1.0.0", "", &everything)
            .unwrap()
            .as_deref(),
        Some("v1.0.0")
    );
    assert_eq!(
        repo.recent_tag("feature", "sub/", &everything)
            .unwrap()
            .as_deref(),
        Some("sub/v1.5.0")
    );
    assert_eq!(
        repo.recent_tag("v1.0.0", "sub/", &everything)
            .unwrap()
            .as_deref(),
        Some("sub/v1.0.0")
    );
    // The allowed filter sees the full tag name.
    let seen = std::sync::Mutex::new(Vec::new());
    let record = |t: &str| {
        seen.lock().unwrap().push(t.to_string());
        true
    };
    repo.recent_tag("v0.1.0", "sub/", &record).unwrap();
    assert_eq!(*seen.lock().unwrap(), ["sub/v1.0.0"]);
    assert!(matches!(
        repo.recent_tag("nope", "", &everything),
        Err(CodeError::NotFound(_))
    ));
}

#[test]
fn descends_from_agrees_with_merge_base() {
    let tmp = tempfile::tempdir().unwrap();
    let f = history_fixture(tmp.path());
    let repo = open_local(&f.dir);
    let revs = ["v0.1.0", "v1.0.0", "feature", "main", "v1.2.0-pre"];
    let tags = ["v0.1.0", "v1.0.0", "v1.1.0", "v1.2.0-pre", "sub/v1.5.0"];
    for rev in revs {
        for tag in tags {
            let want = git_ok(&f.dir, &["merge-base", "--is-ancestor", tag, rev]);
            let hash = f.rev(rev);
            assert_eq!(
                repo.descends_from(&hash, tag).unwrap(),
                want,
                "{rev} from {tag}"
            );
            assert_eq!(
                repo.descends_from(rev, tag).unwrap(),
                want,
                "{rev} from {tag}"
            );
        }
    }
    // An unknown tag is simply not an ancestor; an unknown rev is an error.
    assert!(!repo.descends_from("main", "v7.0.0").unwrap());
    assert!(matches!(
        repo.descends_from("nope", "v1.0.0"),
        Err(CodeError::NotFound(_))
    ));
}

/// One exported entry: kind and bytes.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Link(Vec<u8>),
}

/// Runs `git archive` exactly as the go command does (including the
/// info/attributes line it appends) and returns the files under `subdir`.
fn oracle_archive(dir: &Path, rev: &str, subdir: &str) -> Vec<(String, Entry)> {
    let git_dir = PathBuf::from(git(dir, &["rev-parse", "--absolute-git-dir"]).trim());
    std::fs::create_dir_all(git_dir.join("info")).unwrap();
    std::fs::write(
        git_dir.join("info/attributes"),
        "\n* -export-subst -export-ignore\n",
    )
    .unwrap();
    let mut args = vec![
        "-c",
        "core.autocrlf=input",
        "-c",
        "core.eol=lf",
        "archive",
        "--format=zip",
        "--prefix=prefix/",
        rev,
    ];
    if !subdir.is_empty() {
        args.push(subdir);
    }
    let out = git_cmd(dir, 0).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(git_dir.join("info/attributes"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(out.stdout)).unwrap();
    let strip = if subdir.is_empty() {
        "prefix/".to_string()
    } else {
        format!("prefix/{}/", subdir.trim_matches('/'))
    };
    let mut entries = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).unwrap();
        let name = file.name().to_string();
        let Some(rel) = name.strip_prefix(&strip) else {
            continue;
        };
        if rel.is_empty() || rel.ends_with('/') {
            continue;
        }
        let rel = rel.to_string();
        let is_link = file.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000);
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        entries.push((
            rel,
            if is_link {
                Entry::Link(data)
            } else {
                Entry::File(data)
            },
        ));
    }
    entries
}

fn ours(repo: &GitRepo, rev: &str, subdir: &str) -> Vec<(String, Entry)> {
    repo.files(rev, subdir)
        .unwrap()
        .into_iter()
        .map(|f| {
            let meta = f.metadata().unwrap();
            let data = read_all(f.as_ref()).unwrap();
            assert_eq!(meta.size, data.len() as u64, "{}", f.path());
            let entry = match meta.kind {
                modzip::zip::FileKind::Regular => Entry::File(data),
                modzip::zip::FileKind::Symlink => Entry::Link(data),
                other => panic!("{}: unexpected kind {other:?}", f.path()),
            };
            (f.path().to_string(), entry)
        })
        .collect()
}

fn archive_fixture(root: &Path) -> Fixture {
    let mut f = Fixture::new(root.join("arch"));
    f.write(
        ".gitattributes",
        b"*.bat text eol=crlf\n\
          auto.txt text=auto eol=crlf\n\
          lf.txt eol=lf\n\
          crlf-only.txt eol=crlf\n\
          bin.dat binary eol=crlf\n\
          notext.txt -text eol=crlf\n\
          legacy.txt crlf\n\
          ident.txt ident\n\
          ignored.txt export-ignore\n\
          subst.txt export-subst\n\
          dir/** eol=crlf\n\
          utf16.txt working-tree-encoding=UTF-16\n\
          utf16le.txt working-tree-encoding=UTF-16LE\n\
          utf16be.txt working-tree-encoding=utf-16be\n\
          utf32.txt working-tree-encoding=UTF-32\n\
          latin-ok.txt working-tree-encoding=ISO-8859-1\n\
          latin.txt working-tree-encoding=ISO-8859-1\n\
          sjis.txt working-tree-encoding=SHIFT-JIS\n\
          unknown-enc.txt working-tree-encoding=NO-SUCH-ENCODING\n",
    );
    f.write("go.mod", b"module example.com/arch\n");
    f.write("run.bat", b"echo one\necho two\r\necho three\n");
    f.write("auto.txt", b"plain\ntext\n");
    f.write("mixed-auto.txt", b"x\r\ny\n");
    f.write("lf.txt", b"a\nb\n");
    f.write("crlf-only.txt", b"a\nb");
    f.write("bin.dat", b"\x00\x01\n\x02\n");
    f.write("notext.txt", b"keep\nas is\n");
    f.write("legacy.txt", b"legacy\n");
    f.write("crlf-stored.txt", b"stored\r\nwith crlf\r\n");
    f.write(
        "ident.txt",
        b"$Id$\nline $Id: old stuff $\n$Id: abc $ $Id:x$ $Id:$\n$Id: multi\nline $\n$Id$$Id$ $Id: open",
    );
    f.write("ignored.txt", b"exported by go anyway\n");
    f.write("subst.txt", b"commit $Format:%H$ by $Format:%an$\n");
    f.write("dir/nested/deep.txt", b"deep\nfile\n");
    f.write("dir/sub.go", b"package dir\n");
    f.write("dir/.gitattributes", b"sub.go -text\n");
    f.write("exec.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(
        f.dir.join("exec.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("go.mod", f.dir.join("link-to-go.mod")).unwrap();
    std::os::unix::fs::symlink("../go.mod", f.dir.join("dir/uplink")).unwrap();
    f.write("empty.txt", b"");
    git(&f.dir, &["add", "-A"]);
    // A submodule entry (gitlink) without a checkout.
    let fake = "1234567890123456789012345678901234567890";
    git(
        &f.dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{fake},vendor/submod"),
        ],
    );
    git(
        &f.dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{fake},dir/sm"),
        ],
    );
    // Blobs stored as UTF-8 whatever their working-tree-encoding says, added
    // without a worktree copy (git add would insist on converting one).
    let names = [
        "utf16.txt",
        "utf16le.txt",
        "utf16be.txt",
        "utf32.txt",
        "latin.txt",
        "sjis.txt",
        "unknown-enc.txt",
        "latin-ok.txt",
    ];
    for name in names {
        let scratch = root.join("blob");
        let text = if name == "latin-ok.txt" {
            "héllo wörld\n"
        } else {
            "héllo 日本 😀\n"
        };
        std::fs::write(&scratch, text.as_bytes()).unwrap();
        let id = git(
            &f.dir,
            &[
                "hash-object",
                "-w",
                "--no-filters",
                scratch.to_str().unwrap(),
            ],
        );
        git(
            &f.dir,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{},{name}", id.trim()),
            ],
        );
    }
    f.clock += 3600;
    let clock = f.clock;
    git_at(&f.dir, clock, &["commit", "-q", "-m", "archive fixture"]);
    f.run(&["tag", "v1.0.0"]);
    f
}

#[test]
fn files_match_git_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let f = archive_fixture(tmp.path());
    let repo = open_local(&f.dir);
    for subdir in ["", "dir", "dir/", "dir/nested"] {
        let want = oracle_archive(&f.dir, "v1.0.0", subdir);
        let got = ours(&repo, "v1.0.0", subdir);
        let names = |v: &[(String, Entry)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want), "subdir {subdir:?}");
        for ((name, g), (_, w)) in got.iter().zip(want.iter()) {
            assert_eq!(g, w, "{subdir:?}: {name}");
        }
    }
    // What the go command's settings imply, stated directly.
    let got: BTreeMap<String, Entry> = ours(&repo, "v1.0.0", "").into_iter().collect();
    assert_eq!(
        got["run.bat"],
        Entry::File(b"echo one\r\necho two\r\necho three\r\n".to_vec())
    );
    assert_eq!(got["lf.txt"], Entry::File(b"a\nb\n".to_vec()));
    assert_eq!(got["bin.dat"], Entry::File(b"\x00\x01\n\x02\n".to_vec()));
    assert_eq!(
        got["subst.txt"],
        Entry::File(b"commit $Format:%H$ by $Format:%an$\n".to_vec())
    );
    assert!(got.contains_key("ignored.txt"));
    assert_eq!(got["link-to-go.mod"], Entry::Link(b"go.mod".to_vec()));
    assert!(!got.keys().any(|k| k.contains("submod") || k == "dir/sm"));
    let ident = match &got["ident.txt"] {
        Entry::File(d) => String::from_utf8(d.clone()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(ident.starts_with("$Id: "), "{ident}");
}

#[test]
fn files_of_missing_or_file_subdir() {
    let tmp = tempfile::tempdir().unwrap();
    let f = archive_fixture(tmp.path());
    let repo = open_local(&f.dir);
    assert!(matches!(
        repo.files("v1.0.0", "nope"),
        Err(CodeError::NotFound(_))
    ));
    assert!(repo.files("v1.0.0", "go.mod").unwrap().is_empty());
    assert!(repo.files("v1.0.0", "vendor/submod").unwrap().is_empty());
}

fn write_global_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("gitconfig");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn insteadof_rewrites_to_file_url() {
    let tmp = tempfile::tempdir().unwrap();
    let f = history_fixture(tmp.path());
    let base = format!("file://{}/", tmp.path().display());
    let config = write_global_config(
        tmp.path(),
        &format!(
            "[url \"file:///nonexistent/\"]\n\tinsteadOf = https://example.invalid/\n\
             [url \"{base}\"]\n\tinsteadOf = https://example.invalid/org/\n"
        ),
    );
    let global = config.to_str().unwrap().to_string();
    let opts = GitOptions::from_env(|k| match k {
        "GIT_CONFIG_GLOBAL" => Some(global.clone()),
        "GIT_CONFIG_NOSYSTEM" => Some("1".into()),
        _ => None,
    });
    let url = "https://example.invalid/org/work";
    let repo = GitRepo::open(url, &tmp.path().join("cache"), opts).unwrap();
    assert_eq!(repo.url(), url);
    assert_eq!(repo.stat("v1.0.0").unwrap().hash, f.rev("v1.0.0"));
    assert_eq!(repo.git_dir(), f.dir.join(".git"));
    // No rule: an unreachable https host fails rather than reading anything.
    let err = GitRepo::open(
        "ssh://example.invalid/x",
        &tmp.path().join("cache"),
        GitOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, CodeError::Other(_)));
}

// ---------------------------------------------------------------------------
// http: a git http-backend server from the fixtures crate.

/// A served bare repository fed by pushes from a working fixture.
fn served_fixture(root: &Path) -> (Fixture, PathBuf) {
    let f = history_fixture(root);
    let served = root.join("srv");
    std::fs::create_dir_all(&served).unwrap();
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            f.dir.to_str().unwrap(),
            served.join("repo.git").to_str().unwrap(),
        ],
    );
    (f, served)
}

fn push(f: &mut Fixture, served: &Path) {
    let target = served.join("repo.git");
    f.run(&[
        "push",
        "-q",
        "--force",
        target.to_str().unwrap(),
        "refs/heads/*:refs/heads/*",
    ]);
    f.run(&[
        "push",
        "-q",
        "--force",
        target.to_str().unwrap(),
        "refs/tags/*:refs/tags/*",
    ]);
}

#[test]
fn http_remote_is_cached_and_refetched() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut f, served) = served_fixture(tmp.path());
    let server = GitHttpServer::start(served.clone());
    let cache = tmp.path().join("cache");
    let url = server.url("repo.git");

    let repo = GitRepo::open(&url, &cache, GitOptions::default()).unwrap();
    assert_eq!(repo.url(), url);
    assert!(repo.git_dir().starts_with(&cache));
    let name = repo
        .git_dir()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(name.bytes().all(|c| c.is_ascii_hexdigit()), "{name}");
    let tags: BTreeMap<String, String> = repo
        .tags("")
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.hash))
        .collect();
    assert_eq!(tags, oracle_tags(&f.dir));
    assert_eq!(repo.stat("v1.0.0").unwrap().hash, f.rev("v1.0.0"));
    assert_eq!(repo.latest().unwrap().hash, f.rev("main"));
    assert_eq!(
        repo.recent_tag("main", "", &|_| true).unwrap().as_deref(),
        Some("v1.2.0-pre")
    );
    // One depth-1 fetch for v1.0.0, one for HEAD, then full history for the
    // ancestry question.
    assert_eq!(server.pack_fetches(), 3);
    // The cache holds the mirrored refs, as the git CLI sees them.
    let cached = git(
        repo.git_dir(),
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    );
    let upstream = git(
        &served.join("repo.git"),
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    );
    assert_eq!(cached, upstream);
    drop(repo);

    // Nothing changed upstream: the refs are listed but nothing is fetched.
    let repo = GitRepo::open(&url, &cache, GitOptions::default()).unwrap();
    assert_eq!(server.pack_fetches(), 3);
    assert_eq!(repo.stat("feature").unwrap().hash, f.rev("feature"));
    assert_eq!(server.pack_fetches(), 3);
    drop(repo);

    // A new commit and tag, and a tag moved: seen after the next open.
    f.write("d.go", b"package m\n");
    let new = f.commit("six");
    f.run(&["tag", "v1.3.0"]);
    f.run(&["tag", "-f", "v0.1.0", &new]);
    push(&mut f, &served);
    let repo = GitRepo::open(&url, &cache, GitOptions::default()).unwrap();
    // Opening only lists; the first missing commit brings in everything new
    // (the entry already has full history, so it is kept complete).
    assert_eq!(server.pack_fetches(), 3);
    assert_eq!(repo.stat("v1.3.0").unwrap().hash, new);
    assert_eq!(server.pack_fetches(), 4);
    assert_eq!(repo.stat("v0.1.0").unwrap().hash, new);
    assert_eq!(repo.latest().unwrap().hash, new);
    let info = repo.stat(&new).unwrap();
    assert_eq!(info.tags, ["v0.1.0", "v1.3.0"]);
    assert_eq!(
        repo.read_file("v1.3.0", "d.go", 100).unwrap().as_deref(),
        Some(&b"package m\n"[..])
    );
    assert!(repo.descends_from("v1.3.0", "v1.1.0").unwrap());
    let got = ours(&repo, "v1.3.0", "");
    assert_eq!(got.len(), oracle_archive(&f.dir, "v1.3.0", "").len());
    assert_eq!(server.pack_fetches(), 4);
}

#[test]
fn http_concurrent_opens_share_one_cache_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, served) = served_fixture(tmp.path());
    let server = GitHttpServer::start(served);
    let cache = tmp.path().join("cache");
    let url = server.url("repo.git");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (url, cache) = (url.clone(), cache.clone());
            std::thread::spawn(move || {
                let repo = GitRepo::open(&url, &cache, GitOptions::default()).unwrap();
                repo.stat("v1.0.0").unwrap().hash
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), f.rev("v1.0.0"));
    }
    // Only the first open had anything to fetch.
    assert_eq!(server.pack_fetches(), 1);
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // The repository, its fill lock and its use lock.
    assert_eq!(entries.len(), 3, "{entries:?}");
}

#[test]
fn http_credentials_and_missing_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let (f, served) = served_fixture(tmp.path());
    let server = GitHttpServer::with_credentials(served, "alice", "s3cret");
    let cache = tmp.path().join("cache");
    let url = server.url("private/repo.git");

    // Without credentials the server's 401 is an error.
    let err = GitRepo::open(&url, &cache, GitOptions::default()).unwrap_err();
    assert!(matches!(err, CodeError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("credentials"), "{err}");

    // Credentials are for https only: over this plain-http server they are
    // not even offered, so the answer is the same refusal (and the password
    // never appears).
    let with_credentials = GitOptions {
        credentials: vec![HostCredentials {
            host: "127.0.0.1".into(),
            username: "alice".into(),
            password: "s3cret".into(),
        }],
        ..Default::default()
    };
    let err = GitRepo::open(&url, &cache, with_credentials).unwrap_err();
    assert!(matches!(err, CodeError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("credentials"), "{err}");
    assert!(!err.to_string().contains("clear text"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret"), "{err:?}");

    // The public path of the same server needs no credentials.
    let repo = GitRepo::open(&server.url("repo.git"), &cache, GitOptions::default()).unwrap();
    assert_eq!(repo.stat("main").unwrap().hash, f.rev("main"));

    match GitRepo::open(&server.url("missing.git"), &cache, GitOptions::default()) {
        Err(CodeError::NotFound(_)) => {}
        other => panic!("{other:?}"),
    }
}
