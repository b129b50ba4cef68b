//! `athens prefill` end to end: the real binary fills a disk store from
//! fixture repositories (`testdata/repos/prefill-*.tree`), then the
//! repositories are moved away and the go command builds through the
//! `athens` server on that store alone.

#[allow(dead_code, unused_imports)]
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use fixtures::{FixtureRepo, GoOracle};
use support::{
    build_repo, direct_client, file_url, go_ok, proxy_client, write_gitconfig, Server, ServerSetup,
};

const LIB: &str = "github.com/acme/prefill-lib";
const UTIL: &str = "github.com/acme/prefill-deps/util";
const OLD: &str = "github.com/acme/prefill-deps/old";
const DEEP: &str = "github.com/acme/prefill-deps/deep";
const DEEPER: &str = "github.com/acme/prefill-deps/deeper";
const TESTONLY: &str = "github.com/acme/prefill-deps/testonly";

/// How long one prefill run may take on a loaded machine.
const PREFILL_LIMIT: Duration = Duration::from_secs(600);

/// The fixture repositories, and a way to make them disappear.
struct Origins {
    lib: FixtureRepo,
    deps: FixtureRepo,
}

impl Origins {
    fn build() -> Origins {
        Origins {
            lib: build_repo("prefill-lib"),
            deps: build_repo("prefill-deps"),
        }
    }

    fn repos(&self) -> [(&'static str, &Path); 2] {
        [
            ("prefill-lib", self.lib.path()),
            ("prefill-deps", self.deps.path()),
        ]
    }

    /// The go command in direct mode on the repositories.
    fn direct(&self) -> GoOracle {
        direct_client(&self.repos())
    }

    /// A git configuration for athens pointing at the repositories.
    fn gitconfig(&self, path: &Path) {
        let remotes: Vec<(&str, String)> = self
            .repos()
            .iter()
            .map(|(name, path)| (*name, file_url(path)))
            .collect();
        write_gitconfig(path, &remotes);
    }

    /// Moves the repositories away until the guard is dropped.
    fn hide(&self) -> Hidden {
        let moved = self
            .repos()
            .iter()
            .map(|(_, path)| {
                let away = path.with_extension("moved-away");
                std::fs::rename(path, &away).expect("moving a repository away");
                (path.to_path_buf(), away)
            })
            .collect();
        Hidden { moved }
    }
}

struct Hidden {
    moved: Vec<(PathBuf, PathBuf)>,
}

impl Drop for Hidden {
    fn drop(&mut self) {
        for (home, away) in &self.moved {
            let _ = std::fs::rename(away, home);
        }
    }
}

/// Writes a module in `dir` importing `imports` and requiring `require`,
/// with `extra` appended to its go.mod, and makes it tidy with `direct`.
fn write_module(
    direct: &GoOracle,
    dir: &Path,
    module: &str,
    require: &[(&str, &str)],
    imports: &[&str],
    extra: &str,
) {
    std::fs::create_dir_all(dir).expect("module dir");
    let mut go_mod = format!("module {module}\n\ngo 1.21\n\nrequire (\n");
    for (path, version) in require {
        go_mod.push_str(&format!("\t{path} {version}\n"));
    }
    go_mod.push_str(")\n");
    go_mod.push_str(extra);
    std::fs::write(dir.join("go.mod"), go_mod).expect("go.mod");
    let mut main = String::from("package main\n\nimport (\n");
    for (i, path) in imports.iter().enumerate() {
        main.push_str(&format!("\tp{i} \"{path}\"\n"));
    }
    main.push_str(")\n\nfunc main() {\n");
    for (i, _) in imports.iter().enumerate() {
        main.push_str(&format!("\t_ = p{i}.{}\n", exported(imports[i])));
    }
    main.push_str("}\n");
    std::fs::write(dir.join("main.go"), main).expect("main.go");
    go_ok(direct, dir, &["mod", "tidy"], &[]);
}

/// The exported function each fixture package has.
fn exported(path: &str) -> &'static str {
    match path {
        LIB => "Greeting",
        UTIL => "Shout",
        OLD => "Level",
        _ => panic!("no known function in {path}"),
    }
}

/// The app of most tests: lib (pruned, which needs util) and old (no go
/// directive, so deep's and deeper's go.mod files are read), util
/// replaced by a later version.
fn write_app(direct: &GoOracle, dir: &Path) {
    write_module(
        direct,
        dir,
        "example.com/prefillapp",
        &[(LIB, "v1.1.0"), (OLD, "v1.0.0")],
        &[LIB, OLD],
        &format!("\nreplace {UTIL} v1.0.0 => {UTIL} v1.1.0\n"),
    );
}

/// A finished `athens prefill` run.
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }

    fn lines(&self, word: &str) -> BTreeSet<String> {
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{word} ")))
            .map(|rest| rest.split(':').next().unwrap_or(rest).to_string())
            .collect()
    }

    fn summary(&self) -> &str {
        self.stdout.lines().last().unwrap_or_default()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }
}

/// `athens prefill ARGS` on a disk store at `root`, fetching as
/// `gitconfig` says.
fn prefill_command(root: &Path, gitconfig: &Path, scratch: &Path, args: &[&str]) -> Command {
    let home = scratch.join("home");
    let goget = scratch.join("goget");
    for dir in [&home, &goget] {
        std::fs::create_dir_all(dir).expect("prefill dirs");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_athens"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("ATHENS_GOGET_DIR", &goget)
        .env(
            "ATHENS_GO_BINARY_ENV_VARS",
            format!(
                "GIT_CONFIG_GLOBAL={}; GIT_CONFIG_NOSYSTEM=1; GOPROXY=direct; GOSUMDB=off",
                gitconfig.display()
            ),
        )
        .env("ATHENS_STORAGE_TYPE", "disk")
        .env("ATHENS_DISK_STORAGE_ROOT", root)
        .current_dir(scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .arg("prefill")
        .args(args);
    if let Some(tmp) = std::env::var_os("TMPDIR") {
        cmd.env("TMPDIR", tmp);
    }
    cmd
}

fn prefill(root: &Path, gitconfig: &Path, args: &[&str]) -> Run {
    let scratch = tempfile::Builder::new()
        .prefix("athens-prefill-")
        .tempdir()
        .expect("scratch");
    let mut child = prefill_command(root, gitconfig, scratch.path(), args)
        .spawn()
        .expect("spawning athens prefill");
    // Read both pipes while waiting, so a full pipe never blocks it.
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + PREFILL_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for prefill") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("athens prefill {args:?} did not finish in {PREFILL_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// `module@version` of every complete version in the disk store at
/// `root` (a directory holding the go.mod, the zip and the .info).
fn stored(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.join("source.zip").is_file()
                && path.join("go.mod").is_file()
                && path.join(format!("{name}.info")).is_file()
            {
                let module = dir.strip_prefix(root).expect("under root");
                found.insert(format!("{}@{name}", module.display()));
            } else {
                walk(root, &path, found);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(root, root, &mut found);
    found
}

/// `module@version` of every `.mod` (or `.zip`) the go command put in
/// its download cache.
fn downloaded(client: &GoOracle, ext: &str) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, ext: &str, found: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, ext, found);
            } else if path.extension().and_then(|e| e.to_str()) == Some(ext)
                && path.parent().and_then(|p| p.file_name()) == Some("@v".as_ref())
            {
                let module = path
                    .parent()
                    .and_then(Path::parent)
                    .and_then(|m| m.strip_prefix(base).ok())
                    .expect("module dir");
                let version = path.file_stem().expect("version").to_string_lossy();
                found.insert(format!("{}@{version}", module.display()));
            }
        }
    }
    let base = client.mod_cache().join("cache").join("download");
    let mut found = BTreeSet::new();
    walk(&base, &base, ext, &mut found);
    found
}

fn at(module: &str, version: &str) -> String {
    format!("{module}@{version}")
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// Builds `dir` through an athens server on `root` with the origins gone;
/// returns the client, whose cache shows what the build downloaded.
fn build_offline(
    origins: &Origins,
    root: &Path,
    gitconfig: &Path,
    dir: &Path,
    env: &[(&str, &str)],
) -> GoOracle {
    let _hidden = origins.hide();
    let server = Server::start(&ServerSetup::disk(root, gitconfig));
    let client = proxy_client(&server.url());
    let out = dir.join("app.bin").display().to_string();
    go_ok(&client, dir, &["build", "-o", &out, "."], env);
    assert!(Path::new(&out).is_file(), "no binary");
    client
}

#[test]
fn prefilled_store_builds_the_app_with_the_origins_gone() {
    let origins = Origins::build();
    let direct = origins.direct();
    let scratch = tempfile::tempdir().expect("scratch");
    let app = scratch.path().join("app");
    write_app(&direct, &app);
    let go_sum = std::fs::read_to_string(app.join("go.sum")).expect("go.sum");
    let gitconfig = scratch.path().join("gitconfig");
    origins.gitconfig(&gitconfig);
    let app_arg = app.to_str().unwrap();

    // From the module graph alone (no go.sum): what a pruned main module
    // with an unpruned dependency needs. The roots (util as its
    // replacement) with their zips, and deeper's go.mod, read through
    // old; not testonly (lib requires it for its tests, a pruned graph
    // never reads it), not the replaced util v1.0.0.
    let graph_only = scratch.path().join("graph-only");
    std::fs::create_dir_all(&graph_only).expect("store");
    let run = prefill(&graph_only, &gitconfig, &["--gomod", app_arg, "--no-gosum"]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let want = set(&[
        at(DEEP, "v1.0.0"),
        at(DEEPER, "v1.0.0"),
        at(OLD, "v1.0.0"),
        at(UTIL, "v1.1.0"),
        at(LIB, "v1.1.0"),
    ]);
    assert_eq!(stored(&graph_only), want, "{run:?}");
    assert_eq!(run.lines("stored"), want, "{run:?}");
    // The oracle: `go mod download` without arguments, in direct mode,
    // fetches exactly these go.mod files and, of them, these zips.
    let oracle = origins.direct();
    go_ok(&oracle, &app, &["mod", "download"], &[]);
    assert_eq!(downloaded(&oracle, "mod"), want);
    let zips = set(&[
        at(DEEP, "v1.0.0"),
        at(OLD, "v1.0.0"),
        at(UTIL, "v1.1.0"),
        at(LIB, "v1.1.0"),
    ]);
    assert_eq!(downloaded(&oracle, "zip"), zips);
    assert!(
        run.summary().starts_with(
            "5 versions (4 with their zip, 1 for their go.mod only): 5 stored, 0 already stored, 0 failed"
        ),
        "{run:?}"
    );

    // With the go.sum beside the go.mod (the default), the versions its
    // lines name are stored too: go mod tidy recorded testonly's and
    // deeper's zips (go test all reads them).
    let root = scratch.path().join("store");
    std::fs::create_dir_all(&root).expect("store");
    let run = prefill(&root, &gitconfig, &["--gomod", app_arg]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    let mut with_sums = want.clone();
    with_sums.insert(at(TESTONLY, "v1.0.0"));
    assert_eq!(stored(&root), with_sums, "{run:?}");
    assert!(
        run.summary()
            .starts_with("6 versions (6 with their zip, 0 for their go.mod only)"),
        "{run:?}"
    );

    // The build through the graph-only store succeeds with the origins
    // gone. (It reads less than `go mod download`: with a tidy go.mod,
    // lazy loading reads the roots' go.mod files only.)
    let client = build_offline(
        &origins,
        &graph_only,
        &gitconfig,
        &app,
        &[("GOFLAGS", "-modcacherw -mod=mod")],
    );
    assert!(downloaded(&client, "mod").is_subset(&want));
    assert!(downloaded(&client, "zip").is_subset(&zips));
    assert_eq!(
        std::fs::read_to_string(app.join("go.sum")).expect("go.sum"),
        go_sum,
        "go.sum changed"
    );

    // Everything is there: a second run fetches nothing (the origins are
    // gone) and says so.
    let _hidden = origins.hide();
    let again = prefill(&root, &gitconfig, &["--gomod", app_arg]);
    assert_eq!(again.code(), Some(0), "{again:?}");
    assert_eq!(again.lines("present"), with_sums, "{again:?}");
}

#[test]
fn go_sum_mismatch_stores_nothing_of_that_version_and_fails() {
    let origins = Origins::build();
    let direct = origins.direct();
    let scratch = tempfile::tempdir().expect("scratch");
    let app = scratch.path().join("app");
    write_app(&direct, &app);
    let go_sum = std::fs::read_to_string(app.join("go.sum")).expect("go.sum");
    // lib's zip hash replaced by old's.
    let hash_of = |module: &str| {
        go_sum
            .lines()
            .find(|l| l.starts_with(&format!("{module} ")) && !l.contains("/go.mod"))
            .and_then(|l| l.split(' ').nth(2))
            .unwrap_or_else(|| panic!("no zip line for {module} in\n{go_sum}"))
            .to_string()
    };
    let tampered = go_sum.replace(&hash_of(LIB), &hash_of(OLD));
    assert_ne!(tampered, go_sum);
    std::fs::write(app.join("go.sum"), &tampered).expect("go.sum");
    let gitconfig = scratch.path().join("gitconfig");
    origins.gitconfig(&gitconfig);
    let root = scratch.path().join("store");
    std::fs::create_dir_all(&root).expect("store");

    let run = prefill(&root, &gitconfig, &["--gomod", app.to_str().unwrap()]);
    assert_eq!(run.code(), Some(3), "{run:?}");
    assert_eq!(run.lines("mismatch"), set(&[at(LIB, "v1.1.0")]), "{run:?}");
    assert!(run.stdout.contains("checksum mismatch"), "{run:?}");
    assert!(run.stderr.contains("1 checksum mismatches"), "{run:?}");
    let stored = stored(&root);
    assert!(!stored.contains(&at(LIB, "v1.1.0")), "{stored:?}");
    assert!(stored.contains(&at(OLD, "v1.0.0")), "{stored:?}");

    // Without the go.sum beside it, the same version is fine.
    let run = prefill(
        &root,
        &gitconfig,
        &[
            "--gomod",
            app.join("go.mod").to_str().unwrap(),
            "--no-gosum",
        ],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(run.lines("stored").contains(&at(LIB, "v1.1.0")), "{run:?}");
}

#[test]
fn an_interrupted_prefill_resumes_without_fetching_again() {
    let origins = Origins::build();
    let direct = origins.direct();
    let scratch = tempfile::tempdir().expect("scratch");
    let app = scratch.path().join("app");
    write_app(&direct, &app);
    let gitconfig = scratch.path().join("gitconfig");
    origins.gitconfig(&gitconfig);
    let root = scratch.path().join("store");
    std::fs::create_dir_all(&root).expect("store");
    let app_arg = app.to_str().unwrap();

    // One version at a time, killed as soon as the first is stored.
    let run_dir = tempfile::tempdir().expect("scratch");
    let mut child = prefill_command(
        &root,
        &gitconfig,
        run_dir.path(),
        &["--gomod", app_arg, "--jobs", "1"],
    )
    .stderr(Stdio::null())
    .spawn()
    .expect("spawning athens prefill");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("reading prefill output");
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.starts_with("stored "), "first line {first:?}");
    let after_kill = stored(&root);
    assert!(!after_kill.is_empty());

    // The rest is fetched; what was stored is not fetched again.
    let run = prefill(&root, &gitconfig, &["--gomod", app_arg]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert!(after_kill.is_subset(&run.lines("present")), "{run:?}");
    assert_eq!(stored(&root).len(), 6, "{run:?}");
    // Every version stored is whole: the go command builds with the
    // origins gone.
    build_offline(
        &origins,
        &root,
        &gitconfig,
        &app,
        &[("GOFLAGS", "-modcacherw -mod=mod")],
    );
}

#[test]
fn list_file_and_arguments() {
    let origins = Origins::build();
    let scratch = tempfile::tempdir().expect("scratch");
    let gitconfig = scratch.path().join("gitconfig");
    origins.gitconfig(&gitconfig);
    let root = scratch.path().join("store");
    std::fs::create_dir_all(&root).expect("store");
    let list = scratch.path().join("modules.txt");
    std::fs::write(
        &list,
        format!("# what we need\n{OLD}@v1.0.0\n\n{UTIL}@all\n"),
    )
    .expect("list");

    let run = prefill(
        &root,
        &gitconfig,
        &["--list", list.to_str().unwrap(), &format!("{LIB}@v1.0")],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    // Listed: old, both util versions, lib v1.0 resolved to v1.0.0; and
    // the go.mod files of old's whole graph.
    let want = set(&[
        at(DEEP, "v1.0.0"),
        at(DEEPER, "v1.0.0"),
        at(OLD, "v1.0.0"),
        at(UTIL, "v1.0.0"),
        at(UTIL, "v1.1.0"),
        at(LIB, "v1.0.0"),
    ]);
    assert_eq!(stored(&root), want, "{run:?}");
    assert!(
        run.summary()
            .starts_with("6 versions (4 with their zip, 2 for their go.mod only)"),
        "{run:?}"
    );

    // lib v1.1.0 with --no-deps: only itself, not util or testonly.
    let alone = scratch.path().join("alone");
    std::fs::create_dir_all(&alone).expect("store");
    let run = prefill(&alone, &gitconfig, &["--no-deps", &format!("{LIB}@v1.1.0")]);
    assert_eq!(run.code(), Some(0), "{run:?}");
    assert_eq!(stored(&alone), set(&[at(LIB, "v1.1.0")]));

    // What cannot be found is reported and fails the run; the rest is
    // stored.
    let run = prefill(
        &alone,
        &gitconfig,
        &[&format!("{UTIL}@v9.9.9"), &format!("{TESTONLY}@v1.0.0")],
    );
    assert_eq!(run.code(), Some(4), "{run:?}");
    assert_eq!(run.lines("failed"), set(&[at(UTIL, "v9.9.9")]), "{run:?}");
    assert!(stored(&alone).contains(&at(TESTONLY, "v1.0.0")));

    // A malformed list is refused before anything runs.
    std::fs::write(&list, "not a module line\n").expect("list");
    let run = prefill(&alone, &gitconfig, &["--list", list.to_str().unwrap()]);
    assert_eq!(run.code(), Some(2), "{run:?}");
}

#[test]
fn workspace_builds_with_the_origins_gone() {
    let origins = Origins::build();
    let direct = origins.direct();
    let scratch = tempfile::tempdir().expect("scratch");
    let work = scratch.path().join("work");
    // one needs lib v1.0.0, two lib v1.1.0: the workspace selects v1.1.0.
    write_module(
        &direct,
        &work.join("one"),
        "example.com/one",
        &[(LIB, "v1.0.0")],
        &[LIB],
        "",
    );
    write_module(
        &direct,
        &work.join("two"),
        "example.com/two",
        &[(LIB, "v1.1.0"), (OLD, "v1.0.0")],
        &[LIB, OLD],
        "",
    );
    std::fs::write(
        work.join("go.work"),
        "go 1.21\n\nuse (\n\t./one\n\t./two\n)\n",
    )
    .expect("go.work");
    let gitconfig = scratch.path().join("gitconfig");
    origins.gitconfig(&gitconfig);
    let root = scratch.path().join("store");
    std::fs::create_dir_all(&root).expect("store");

    let run = prefill(
        &root,
        &gitconfig,
        &["--gowork", work.join("go.work").to_str().unwrap()],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    let in_store = stored(&root);
    for want in [
        at(LIB, "v1.0.0"),
        at(LIB, "v1.1.0"),
        at(UTIL, "v1.0.0"),
        at(OLD, "v1.0.0"),
        at(DEEP, "v1.0.0"),
        at(DEEPER, "v1.0.0"),
    ] {
        assert!(
            in_store.contains(&want),
            "{want} missing: {in_store:?}\n{run:?}"
        );
    }

    // From the graph alone, exactly what `go mod download` fetches in the
    // workspace.
    let graph_only = scratch.path().join("graph-only");
    std::fs::create_dir_all(&graph_only).expect("store");
    let run = prefill(
        &graph_only,
        &gitconfig,
        &[
            "--gowork",
            work.join("go.work").to_str().unwrap(),
            "--no-gosum",
        ],
    );
    assert_eq!(run.code(), Some(0), "{run:?}");
    let work_file = work.join("go.work").display().to_string();
    let oracle = origins.direct();
    go_ok(
        &oracle,
        &work,
        &["mod", "download"],
        &[("GOWORK", &work_file)],
    );
    let mods = downloaded(&oracle, "mod");
    let zips = downloaded(&oracle, "zip");
    assert_eq!(stored(&graph_only), &mods | &zips, "{run:?}");
    assert!(
        run.summary().starts_with(&format!(
            "{} versions ({} with their zip, {} for their go.mod only)",
            mods.union(&zips).count(),
            zips.len(),
            mods.difference(&zips).count()
        )),
        "{run:?}\ngo mod download: mod {mods:?} zip {zips:?}"
    );

    let client = build_offline(
        &origins,
        &root,
        &gitconfig,
        &work.join("one"),
        &[("GOWORK", &work_file)],
    );
    assert!(downloaded(&client, "mod").is_subset(&in_store));
    assert!(downloaded(&client, "zip").is_subset(&in_store));
}
