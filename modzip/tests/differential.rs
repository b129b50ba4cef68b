//! Differential test of module zips and `h1:` hashes against the go command.
//!
//! Every fixture under `testdata/trees/` becomes a git repository; the real
//! go command downloads it offline (`go mod download`, direct mode, the
//! repository standing in for `https://github.com/acme/NAME`) and its
//! answers are the reference:
//!
//! - (a) `hash_zip` of the go command's zip equals its `Sum`;
//! - (b) `hash_go_mod` of its `.mod` file equals its `GoModSum`;
//! - (c) a zip made by `create_from_dir` from the tagged tree, checked out
//!   without `.git`, hashes to `Sum` (less any `dir-omits:` prefixes, which
//!   a directory walk skips by design) and passes `check_zip`;
//! - (c') a zip made by `create` from the tree's full file list (VCS
//!   directories and symlinks included, as `git archive` yields them, plus
//!   the root LICENSE for modules in subdirectories) hashes to `Sum`
//!   exactly: this is the path the fetcher takes;
//! - (d) where the go command refuses the zip, modzip refuses it for the
//!   same reason;
//! - and `check_zip` accepts the go command's zip, and `hash_dir` of the
//!   directory it extracted equals `Sum`.
//!
//! One test walks all fixtures and reports every mismatch at once.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use fixtures::{all_trees, Download, Expect, FailCategory, FixtureRepo, GoOracle, Tree};
use modzip::zip::{
    self as modzip_zip, CheckedFiles, FileErrorKind, FileKind, FileMeta, ModuleFile,
};
use modzip::{dirhash, Version};

/// A file of an exported tree, listed the way `git archive` lists it:
/// regular files and symlinks, VCS directories included.
enum TreeFile {
    OnDisk { path: String, abs: PathBuf },
    InMemory { path: String, data: Vec<u8> },
}

impl ModuleFile for TreeFile {
    fn path(&self) -> &str {
        match self {
            TreeFile::OnDisk { path, .. } | TreeFile::InMemory { path, .. } => path,
        }
    }

    fn metadata(&self) -> io::Result<FileMeta> {
        match self {
            TreeFile::OnDisk { abs, .. } => {
                let meta = abs.symlink_metadata()?;
                let kind = if meta.file_type().is_symlink() {
                    FileKind::Symlink
                } else if meta.is_file() {
                    FileKind::Regular
                } else if meta.is_dir() {
                    FileKind::Dir
                } else {
                    FileKind::Other
                };
                Ok(FileMeta {
                    kind,
                    size: meta.len(),
                })
            }
            TreeFile::InMemory { data, .. } => Ok(FileMeta {
                kind: FileKind::Regular,
                size: data.len() as u64,
            }),
        }
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        match self {
            TreeFile::OnDisk { abs, .. } => Ok(Box::new(File::open(abs)?)),
            TreeFile::InMemory { data, .. } => Ok(Box::new(Cursor::new(data.as_slice()))),
        }
    }
}

/// Lists every non-directory entry under `root` with its slash path.
/// Non-UTF-8 names are converted lossily; the replacement character is not
/// a letter, so such a name stays invalid, as it is for the go command.
fn walk(root: &Path) -> io::Result<Vec<TreeFile>> {
    let mut files = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            let abs = entry.path();
            if abs.symlink_metadata()?.is_dir() {
                stack.push((abs, format!("{rel}/")));
            } else {
                files.push(TreeFile::OnDisk { path: rel, abs });
            }
        }
    }
    Ok(files)
}

/// The entries of a zip file, name to content.
fn read_zip(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("reading zip: {e}"))?;
    let mut entries = BTreeMap::new();
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| format!("zip entry {i}: {e}"))?;
        if entry.is_dir() {
            continue;
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("zip entry {}: {e}", entry.name()))?;
        entries.insert(entry.name().to_string(), data);
    }
    Ok(entries)
}

/// `h1:` over the entries of `zip` whose module-relative path does not
/// start with one of `omit`.
fn hash_zip_entries_without(
    zip: &BTreeMap<String, Vec<u8>>,
    m: &Version,
    omit: &[String],
) -> Result<String, String> {
    let prefix = format!("{}@{}/", m.path, m.version);
    let names: Vec<String> = zip
        .keys()
        .filter(|name| {
            let rel = name.strip_prefix(&prefix).unwrap_or(name);
            !omit.iter().any(|o| rel.starts_with(o.as_str()))
        })
        .cloned()
        .collect();
    dirhash::hash1(&names, |name: &str| -> io::Result<Box<dyn Read>> {
        let data = zip
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
        Ok(Box::new(Cursor::new(data)))
    })
    .map_err(|e| format!("hash1: {e}"))
}

/// The failure categories that a set of checked files exhibits.
fn categories(cf: &CheckedFiles) -> Vec<FailCategory> {
    let mut found: Vec<FailCategory> = cf
        .invalid
        .iter()
        .filter_map(|fe| category_of(&fe.reason))
        .collect();
    found.dedup();
    found
}

fn category_of(reason: &FileErrorKind) -> Option<FailCategory> {
    match reason {
        FileErrorKind::InvalidPath(_) => Some(FailCategory::InvalidName),
        FileErrorKind::CaseCollision { .. } => Some(FailCategory::Collision),
        FileErrorKind::GoModCase => Some(FailCategory::GoModCase),
        FileErrorKind::GoModTooLarge { .. } => Some(FailCategory::GoModSize),
        FileErrorKind::LicenseTooLarge { .. } => Some(FailCategory::LicenseSize),
        _ => None,
    }
}

/// What a fixture's checks came to.
struct Checked {
    summary: String,
    problems: Vec<String>,
    identical_zip: bool,
}

struct Fixture<'a> {
    tree: &'a Tree,
    /// Kept alive so the repository outlives the checks.
    _repo: FixtureRepo,
    /// Kept alive: its private module cache holds the go command's files.
    _oracle: GoOracle,
    dl: Download,
    /// The module as modzip must name it (resolved version for successes).
    module: Version,
    /// Checked-out tree of the tagged revision.
    export: PathBuf,
    /// The tree's files as `git archive` lists them.
    files: Vec<TreeFile>,
    scratch: tempfile::TempDir,
}

fn prepare(tree: &Tree) -> Result<Fixture<'_>, String> {
    let repo = FixtureRepo::build(tree).map_err(|e| format!("building repo: {e}"))?;
    let oracle = GoOracle::for_fixture(tree, &repo).map_err(|e| e.to_string())?;
    let dl = oracle
        .download(&tree.header.module, &tree.header.query)
        .map_err(|e| e.to_string())?;
    let rev = match dl.origin.as_ref().filter(|o| !o.hash.is_empty()) {
        Some(origin) => origin.hash.clone(),
        None => repo
            .rev_parse(&tree.header.query)
            .map_err(|e| format!("resolving {}: {e}", tree.header.query))?,
    };
    let version = if dl.version.is_empty() {
        tree.header.query.clone()
    } else {
        dl.version.clone()
    };
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let export = scratch.path().join("tree");
    repo.export(&rev, &tree.header.subdir, &export)
        .map_err(|e| format!("exporting {rev}: {e}"))?;
    let mut files = walk(&export).map_err(|e| format!("listing export: {e}"))?;
    // The go command gives a module in a subdirectory the repository's root
    // LICENSE when it has none of its own; the fetcher must do the same, so
    // the inputs here do too.
    if !tree.header.subdir.is_empty() && !export.join("LICENSE").exists() {
        if let Some(license) = repo
            .read_file(&rev, "LICENSE")
            .map_err(|e| format!("reading root LICENSE: {e}"))?
        {
            std::fs::write(export.join("LICENSE"), &license).map_err(|e| e.to_string())?;
            files.push(TreeFile::InMemory {
                path: "LICENSE".into(),
                data: license,
            });
        }
    }
    Ok(Fixture {
        tree,
        _repo: repo,
        _oracle: oracle,
        dl,
        module: Version {
            path: tree.header.module.clone(),
            version,
        },
        export,
        files,
        scratch,
    })
}

fn create_from_dir_into(fx: &Fixture<'_>, name: &str) -> Result<PathBuf, String> {
    let path = fx.scratch.path().join(name);
    let file = File::create(&path).map_err(|e| e.to_string())?;
    modzip_zip::create_from_dir(file, &fx.module, &fx.export).map_err(|e| e.to_string())?;
    Ok(path)
}

fn create_from_files_into(fx: &Fixture<'_>, name: &str) -> Result<PathBuf, String> {
    let path = fx.scratch.path().join(name);
    let file = File::create(&path).map_err(|e| e.to_string())?;
    modzip_zip::create(file, &fx.module, &fx.files).map_err(|e| e.to_string())?;
    Ok(path)
}

fn hash_zip_at(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    dirhash::hash_zip(file).map_err(|e| e.to_string())
}

/// `check_zip` must accept the zip at `path` without invalid entries.
fn accepted_by_check_zip(m: &Version, path: &Path) -> Result<CheckedFiles, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let cf = modzip_zip::check_zip(m, file).map_err(|e| format!("check_zip error: {e}"))?;
    cf.err().map_err(|e| format!("check_zip refused: {e}"))?;
    if !cf.invalid.is_empty() {
        return Err(format!("check_zip invalid entries: {:?}", cf.invalid));
    }
    Ok(cf)
}

fn check_success(fx: &Fixture<'_>, problems: &mut Vec<String>) -> bool {
    let dl = &fx.dl;
    let mut note = |what: &str, r: Result<(), String>| {
        if let Err(e) = r {
            problems.push(format!("{what}: {e}"));
        }
    };

    // (a) our hash of the go command's zip.
    let go_zip = PathBuf::from(&dl.zip);
    note(
        "(a) hash_zip(go zip)",
        hash_zip_at(&go_zip).and_then(|h| expect_eq(&h, &dl.sum)),
    );
    // (b) our hash of the go command's .mod.
    note(
        "(b) hash_go_mod(go .mod)",
        dl.go_mod_bytes()
            .map_err(|e| e.to_string())
            .and_then(|b| expect_eq(&dirhash::hash_go_mod(&b), &dl.go_mod_sum)),
    );
    // The go command's zip passes our checks, file for file.
    let go_entries = read_zip(&go_zip);
    note(
        "check_zip(go zip)",
        accepted_by_check_zip(&fx.module, &go_zip).and_then(|cf| {
            let count = go_entries.as_ref().map(|e| e.len()).unwrap_or(0);
            expect_eq(&cf.valid.len(), &count)
        }),
    );
    // The directory the go command extracted hashes the same.
    note(
        "hash_dir(go extracted dir)",
        dirhash::hash_dir(Path::new(&dl.dir), &fx.module.to_string())
            .map_err(|e| e.to_string())
            .and_then(|h| expect_eq(&h, &dl.sum)),
    );

    // (c) create_from_dir on the checked-out tree.
    let omits = &fx.tree.header.dir_omits;
    let expected_dir_sum = go_entries
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|entries| hash_zip_entries_without(entries, &fx.module, omits));
    if !omits.is_empty() {
        // The fixture must really exercise the difference it declares.
        note(
            "dir-omits changes the hash",
            expected_dir_sum.clone().and_then(|h| {
                if h == dl.sum {
                    Err("declared dir-omits prefixes match nothing".into())
                } else {
                    Ok(())
                }
            }),
        );
    }
    let ours = create_from_dir_into(fx, "from-dir.zip");
    note(
        "(c) create_from_dir hash",
        ours.clone().and_then(|p| {
            let expected = expected_dir_sum.clone()?;
            expect_eq(&hash_zip_at(&p)?, &expected)
        }),
    );
    note(
        "(c) check_zip(create_from_dir)",
        ours.clone()
            .and_then(|p| accepted_by_check_zip(&fx.module, &p).map(drop)),
    );

    // (c') create from the archive's file list: exactly the go command's hash.
    let from_files = create_from_files_into(fx, "from-files.zip");
    note(
        "(c') create(files) hash",
        from_files
            .clone()
            .and_then(|p| expect_eq(&hash_zip_at(&p)?, &dl.sum)),
    );
    note(
        "(c') check_zip(create)",
        from_files.and_then(|p| accepted_by_check_zip(&fx.module, &p).map(drop)),
    );

    match (ours, std::fs::read(&go_zip)) {
        (Ok(p), Ok(go_bytes)) if omits.is_empty() => {
            std::fs::read(p).map(|b| b == go_bytes).unwrap_or(false)
        }
        _ => false,
    }
}

fn check_zip_failure(fx: &Fixture<'_>, category: FailCategory, problems: &mut Vec<String>) {
    if create_from_dir_into(fx, "from-dir.zip").is_ok() {
        problems.push(format!(
            "(d) create_from_dir accepted a tree the go command refuses ({category})"
        ));
    }
    if create_from_files_into(fx, "from-files.zip").is_ok() {
        problems.push(format!(
            "(d) create accepted files the go command refuses ({category})"
        ));
    }
    let found = categories(&modzip_zip::check_files(&fx.files));
    if !found.contains(&category) {
        problems.push(format!(
            "(d) check_files(files) found {found:?}, want {category}"
        ));
    }
    match modzip_zip::list_dir(&fx.export) {
        Ok((files, _omitted)) => {
            let found = categories(&modzip_zip::check_files(&files));
            if !found.contains(&category) {
                problems.push(format!(
                    "(d) check_files(list_dir) found {found:?}, want {category}"
                ));
            }
        }
        // A name that cannot even be listed (invalid UTF-8) is refused
        // while listing, which is the same verdict.
        Err(_) if category == FailCategory::InvalidName => {}
        Err(e) => problems.push(format!("(d) list_dir failed unexpectedly: {e}")),
    }
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

fn check_fixture(tree: &Tree) -> Checked {
    let fx = match prepare(tree) {
        Ok(fx) => fx,
        Err(e) => {
            return Checked {
                summary: "setup failed".into(),
                problems: vec![e],
                identical_zip: false,
            }
        }
    };
    let mut problems = Vec::new();
    let mut identical_zip = false;
    let summary = match &tree.header.expect {
        Expect::Ok => {
            if !fx.dl.is_ok() {
                problems.push(format!("go command failed: {}", fx.dl.error));
            } else {
                identical_zip = check_success(&fx, &mut problems);
            }
            format!("ok {} {}", fx.dl.version, fx.dl.sum)
        }
        Expect::Fail(category) => {
            if fx.dl.is_ok() || !fx.dl.error.contains(category.go_error_fragment()) {
                problems.push(format!(
                    "go command did not fail with {category}: {:?}",
                    fx.dl.error
                ));
            }
            check_zip_failure(&fx, *category, &mut problems);
            format!("refused ({category}) by both")
        }
        Expect::GoError(text) => {
            if fx.dl.is_ok() || !fx.dl.error.contains(text.as_str()) {
                problems.push(format!(
                    "go command did not fail with {text:?}: {:?}",
                    fx.dl.error
                ));
            }
            // Not a zip rule: the tree itself must still make a valid zip.
            let made = create_from_dir_into(&fx, "from-dir.zip")
                .and_then(|p| accepted_by_check_zip(&fx.module, &p).map(drop));
            if let Err(e) = made {
                problems.push(format!(
                    "zip of a tree refused only by resolution failed: {e}"
                ));
            }
            format!("go error ({text}); zip still valid")
        }
    };
    Checked {
        summary,
        problems,
        identical_zip,
    }
}

#[test]
fn modzip_agrees_with_go_on_every_fixture() {
    let trees = all_trees().expect("fixture trees parse");
    assert!(trees.len() >= 35, "only {} fixtures", trees.len());
    let mut failures = Vec::new();
    let mut identical = 0;
    for tree in &trees {
        let checked = check_fixture(tree);
        eprintln!("{:32} {}", tree.name, checked.summary);
        identical += usize::from(checked.identical_zip);
        for p in checked.problems {
            failures.push(format!("{}: {p}", tree.name));
        }
    }
    eprintln!(
        "{} fixtures, {} mismatches, {identical} zips byte-identical to the go command's",
        trees.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
