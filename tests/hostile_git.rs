//! End to end: repositories built to exhaust the native fetcher (trees
//! nested thousands of levels deep, shared subtrees fanning out into a
//! billion paths, one shared blob making the module over the go command's
//! 500 MiB, a go.mod over 16 MiB) are refused by the real `athens` binary
//! with a 404 naming the limit, quickly and in bounded memory, and the
//! server keeps serving ordinary modules afterwards.

#[allow(dead_code, unused_imports)]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use support::{file_url, http_get, peak_rss_kb, write_gitconfig, Server, ServerSetup};

/// Peak resident memory the server may reach over all the cases.
const MAX_PEAK_RSS_KB: u64 = 400 * 1024;
/// How long one refusal may take (generous: it detects hangs, not speed).
const MAX_ANSWER: Duration = Duration::from_secs(30);

/// Runs git in `dir` with fixed identities and dates, so the objects are
/// the same on every run; panics with git's stderr on failure.
fn git(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Hostile")
        .env("GIT_AUTHOR_EMAIL", "hostile@example.com")
        .env("GIT_COMMITTER_NAME", "Hostile")
        .env("GIT_COMMITTER_EMAIL", "hostile@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-02T03:04:05Z")
        .env("GIT_COMMITTER_DATE", "2024-01-02T03:04:05Z")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("running git");
    let mut input = child.stdin.take().expect("git stdin");
    let data = stdin.map(<[u8]>::to_vec);
    let writer = std::thread::spawn(move || {
        if let Some(data) = data {
            input.write_all(&data).expect("writing to git");
        }
    });
    let out = child.wait_with_output().expect("waiting for git");
    writer.join().expect("git stdin writer");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("git output")
        .trim()
        .to_string()
}

/// One `git mktree --batch` process building many trees, each from the
/// ids of earlier ones.
struct Mktree {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Mktree {
    fn new(repo: &Path) -> Mktree {
        let mut child = Command::new("git")
            .current_dir(repo)
            .args(["mktree", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("git mktree");
        let input = child.stdin.take().expect("mktree stdin");
        let output = BufReader::new(child.stdout.take().expect("mktree stdout"));
        Mktree {
            child,
            input,
            output,
        }
    }

    /// Writes a tree of `(mode, type, id, name)` entries, returns its id.
    fn tree(&mut self, entries: &[(&str, &str, &str, &str)]) -> String {
        for (mode, kind, id, name) in entries {
            writeln!(self.input, "{mode} {kind} {id}\t{name}").expect("to mktree");
        }
        writeln!(self.input).expect("to mktree");
        self.input.flush().expect("to mktree");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("from mktree");
        let id = line.trim().to_string();
        assert_eq!(id.len(), 40, "mktree answered {line:?}");
        id
    }
}

impl Drop for Mktree {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare repository `NAME.git` under `dir` whose tag v1.0.0 (and branch
/// main) is a commit of the tree `build` returns; `build` gets the
/// repository path and the id of a go.mod blob for `github.com/acme/NAME`.
fn hostile_repo(
    dir: &Path,
    name: &str,
    build: impl FnOnce(&Path, &str, &mut Mktree) -> String,
) -> PathBuf {
    let repo = dir.join(format!("{name}.git"));
    git(
        dir,
        &[
            "init",
            "-q",
            "--bare",
            "--initial-branch=main",
            repo.to_str().unwrap(),
        ],
        None,
    );
    let gomod = format!("module github.com/acme/{name}\n\ngo 1.21\n");
    let gomod = git(
        &repo,
        &["hash-object", "-w", "--stdin"],
        Some(gomod.as_bytes()),
    );
    let mut mktree = Mktree::new(&repo);
    let tree = build(&repo, &gomod, &mut mktree);
    drop(mktree);
    let commit = git(&repo, &["commit-tree", &tree, "-m", name], None);
    git(&repo, &["update-ref", "refs/heads/main", &commit], None);
    git(&repo, &["tag", "v1.0.0", &commit], None);
    repo
}

/// A tree of ten entries `n0`..`n9` of `mode_kind` (like `040000 tree`)
/// naming `id`, plus a go.mod when given.
fn fan_out(mk: &mut Mktree, mode_kind: &str, id: &str, gomod: Option<&str>) -> String {
    let (mode, kind) = mode_kind.split_once(' ').expect("mode and type");
    let names: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let mut entries: Vec<(&str, &str, &str, &str)> =
        names.iter().map(|n| (mode, kind, id, n.as_str())).collect();
    if let Some(gomod) = gomod {
        entries.push(("100644", "blob", gomod, "go.mod"));
    }
    mk.tree(&entries)
}

/// Asks for the `.info`, `.mod` and `.zip` of v1.0.0 of `module` and checks
/// each is a quick 404 whose body holds `reason`.
fn assert_refused(server: &mut Server, module: &str, reason: &str) {
    for ext in ["info", "mod", "zip"] {
        let path = format!("/{module}/@v/v1.0.0.{ext}");
        let start = Instant::now();
        let (status, body) = http_get(server.port(), &path).expect("request");
        let body = String::from_utf8_lossy(&body);
        assert!(
            start.elapsed() < MAX_ANSWER,
            "{path} took {:?}",
            start.elapsed()
        );
        eprintln!("{path}: {status} in {:?}", start.elapsed());
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains(reason), "{path}: {body}");
        assert!(server.is_running(), "the server died on {path}");
    }
}

fn assert_served(server: &Server, module: &str) {
    for ext in ["info", "mod", "zip"] {
        let path = format!("/{module}/@v/v1.0.0.{ext}");
        let (status, body) = http_get(server.port(), &path).expect("request");
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        if ext == "zip" {
            assert!(body.starts_with(b"PK"), "{path} is not a zip");
        }
    }
}

#[test]
fn hostile_repositories_are_refused_and_the_server_survives() {
    let scratch = tempfile::tempdir().expect("scratch");
    let repos = scratch.path().join("repos");
    std::fs::create_dir_all(&repos).expect("repos dir");

    let normal = hostile_repo(&repos, "normal", |repo, gomod, mk| {
        let code = git(
            repo,
            &["hash-object", "-w", "--stdin"],
            Some(b"package normal\n"),
        );
        mk.tree(&[
            ("100644", "blob", gomod, "go.mod"),
            ("100644", "blob", &code, "normal.go"),
        ])
    });

    // 3000 nested directories: git refuses more than 2048.
    let deep = hostile_repo(&repos, "deep", |repo, gomod, mk| {
        let leaf = git(repo, &["hash-object", "-w", "--stdin"], Some(b"x\n"));
        let mut tree = mk.tree(&[("100644", "blob", &leaf, "f")]);
        for _ in 0..3000 {
            tree = mk.tree(&[("040000", "tree", &tree, "d")]);
        }
        mk.tree(&[
            ("040000", "tree", &tree, "d"),
            ("100644", "blob", gomod, "go.mod"),
        ])
    });

    // Ten entries per level, nine levels: a billion files from ten trees.
    let bomb = hostile_repo(&repos, "bomb", |repo, gomod, mk| {
        let leaf = git(repo, &["hash-object", "-w", "--stdin"], Some(b"x\n"));
        let mut tree = fan_out(mk, "100644 blob", &leaf, None);
        for _ in 0..7 {
            tree = fan_out(mk, "040000 tree", &tree, None);
        }
        fan_out(mk, "040000 tree", &tree, Some(gomod))
    });

    // Ten paths to one 60 MB blob: 600 MB, over the go command's 500 MiB.
    let huge = hostile_repo(&repos, "huge", |repo, gomod, mk| {
        let blob = git(
            repo,
            &["hash-object", "-w", "--stdin"],
            Some(&vec![b'a'; 60_000_000]),
        );
        let names: Vec<String> = (0..10).map(|i| format!("f{i}.bin")).collect();
        let mut entries: Vec<(&str, &str, &str, &str)> = names
            .iter()
            .map(|n| ("100644", "blob", blob.as_str(), n.as_str()))
            .collect();
        entries.push(("100644", "blob", gomod, "go.mod"));
        mk.tree(&entries)
    });

    // A go.mod of 17 MiB: over the go command's 16 MiB.
    let bigmod = hostile_repo(&repos, "bigmod", |repo, _, mk| {
        let mut text = b"module github.com/acme/bigmod\n".to_vec();
        while text.len() <= 17 << 20 {
            text.extend_from_slice(b"// padding padding padding padding padding padding\n");
        }
        let gomod = git(repo, &["hash-object", "-w", "--stdin"], Some(&text));
        mk.tree(&[("100644", "blob", &gomod, "go.mod")])
    });

    let root = scratch.path().join("storage");
    std::fs::create_dir_all(&root).expect("storage root");
    let gitconfig = scratch.path().join("gitconfig");
    let remotes: Vec<(&str, String)> = [
        ("normal", &normal),
        ("deep", &deep),
        ("bomb", &bomb),
        ("huge", &huge),
        ("bigmod", &bigmod),
    ]
    .iter()
    .map(|(name, path)| (*name, file_url(path)))
    .collect();
    write_gitconfig(&gitconfig, &remotes);
    let mut server = Server::start(&ServerSetup::disk(&root, &gitconfig));

    assert_served(&server, "github.com/acme/normal");
    assert_refused(
        &mut server,
        "github.com/acme/deep",
        "exceeded maximum allowed tree depth",
    );
    assert_refused(
        &mut server,
        "github.com/acme/bomb",
        "tree has more than 500000 entries",
    );
    assert_refused(
        &mut server,
        "github.com/acme/huge",
        "module source tree too large (max size is 524288000 bytes)",
    );
    assert_refused(
        &mut server,
        "github.com/acme/bigmod",
        "go.mod file too large (max size is 16777216 bytes)",
    );

    // Nothing partial was stored, and ordinary modules are still served.
    for name in ["deep", "bomb", "huge", "bigmod"] {
        assert!(
            !root
                .join("github.com/acme")
                .join(name)
                .join("v1.0.0")
                .join("v1.0.0.info")
                .exists(),
            "{name} was stored"
        );
    }
    std::fs::remove_dir_all(root.join("github.com/acme/normal")).expect("dropping normal");
    assert_served(&server, "github.com/acme/normal");
    assert!(server.is_running());
    let pid = server.pid();
    let peak = peak_rss_kb(pid);
    eprintln!("server peak RSS: {peak} kB");
    assert!(
        peak < MAX_PEAK_RSS_KB,
        "peak RSS {peak} kB over {MAX_PEAK_RSS_KB} kB"
    );
    let log = server.log_text();
    assert!(log.contains("repository refused by a limit"), "{log}");
    server.stop();
}
