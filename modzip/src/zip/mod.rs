//! Module zip files: deciding which files belong in a module, writing the
//! zip, and checking or extracting a zip someone else wrote, with the rules
//! the go command enforces.
//!
//! A module zip holds every file of the module under the directory
//! `path@version/`. Files of nested modules, most of `vendor/`, version
//! control metadata, symbolic links and other irregular files are left out;
//! names must be valid module file paths, distinct under Unicode case
//! folding, and `go.mod` may only appear (spelled exactly so) at the root.
//! Sizes are capped: [`MAX_ZIP_FILE`] for the archive and for its unpacked
//! content, [`MAX_GO_MOD`] for `go.mod` and [`MAX_LICENSE`] for `LICENSE`.
//!
//! Memory stays bounded whatever the module size: a file of up to 512 KiB
//! may be held whole while it is deflated (a few at a time), larger files
//! are streamed, and no whole archive is ever held.

mod cache;
mod check;
mod create;
mod dir;
pub(crate) mod read;
#[cfg(test)]
pub(crate) mod test_util;
mod write;

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::gover;
use crate::module::{self, ModuleError, PathError, Version};

pub use cache::DeflateCache;
pub use check::{check_files, check_zip};
pub use create::{create, create_cached, create_from_dir, unzip, verify_zip};
pub use dir::{check_dir, list_dir, DirFile};

/// Largest allowed module zip, and largest allowed total size of the files
/// in it, in bytes (500 MiB).
pub const MAX_ZIP_FILE: u64 = 500 << 20;

/// Largest allowed `go.mod` at the root of a module zip, in bytes (16 MiB).
pub const MAX_GO_MOD: u64 = 16 << 20;

/// Largest allowed `LICENSE` at the root of a module zip, in bytes (16 MiB).
pub const MAX_LICENSE: u64 = 16 << 20;

/// The size limits in force; tests shrink them to exercise the checks
/// without writing hundreds of megabytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub zip_file: u64,
    pub go_mod: u64,
    pub license: u64,
}

impl Limits {
    /// The limits the go command uses.
    pub const GO: Limits = Limits {
        zip_file: MAX_ZIP_FILE,
        go_mod: MAX_GO_MOD,
        license: MAX_LICENSE,
    };
}

/// What kind of file system object a [`ModuleFile`] is (as `lstat` sees
/// it: a symbolic link is reported as such, not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    Regular,
    /// A symbolic link.
    Symlink,
    /// A directory.
    Dir,
    /// Anything else: device, socket, named pipe...
    Other,
}

/// The metadata of a [`ModuleFile`] that the zip rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    /// What kind of object this is.
    pub kind: FileKind,
    /// Size in bytes. For a regular file this is the size that gets copied:
    /// content beyond it makes [`create`] fail.
    pub size: u64,
}

/// A file offered for inclusion in a module zip: from a directory, from a
/// version control checkout, or synthesized in memory.
pub trait ModuleFile {
    /// The clean, slash-separated path of the file relative to the module
    /// root, such as `go.mod` or `internal/x/x.go`.
    fn path(&self) -> &str;

    /// The file's kind and size, without following a symbolic link.
    fn metadata(&self) -> io::Result<FileMeta>;

    /// Opens a regular file for reading. May fail for anything else.
    fn open(&self) -> io::Result<Box<dyn Read + '_>>;

    /// A name for this file's content, such as the id of a git blob, under
    /// which [`create_cached`] keeps its deflated form for later zips of
    /// the same module path. Files with the same key must have the same
    /// content. `None` (the default) leaves the file out of any cache.
    fn content_key(&self) -> Option<&[u8]> {
        None
    }

    /// Called by [`create_cached`] before it opens any file of the zip,
    /// for each file whose deflated form the cache holds: the zip takes
    /// that form and does not read the file. A source that reads contents
    /// ahead of [`ModuleFile::open`] can leave this one out. The default
    /// does nothing.
    fn will_not_be_read(&self) {}
}

/// A regular file whose content is held in memory, for synthesized files
/// (such as a generated `go.mod`) and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemFile {
    /// Slash-separated path relative to the module root.
    pub path: String,
    /// The file content.
    pub data: Vec<u8>,
}

impl MemFile {
    /// Builds an in-memory file.
    pub fn new(path: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        MemFile {
            path: path.into(),
            data: data.into(),
        }
    }
}

impl ModuleFile for MemFile {
    fn path(&self) -> &str {
        &self.path
    }

    fn metadata(&self) -> io::Result<FileMeta> {
        Ok(FileMeta {
            kind: FileKind::Regular,
            size: self.data.len() as u64,
        })
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.data.as_slice()))
    }
}

/// Why a file is left out of a module zip, or makes it invalid.
#[derive(Debug, Clone, Error)]
pub enum FileErrorKind {
    /// The path has redundant parts (`./`, `//`, `..`, a trailing `/`) or is empty.
    #[error("file path is not clean")]
    NotClean,
    /// The path is absolute.
    #[error("file path is not relative")]
    NotRelative,
    /// The file belongs to a vendored package (omitted).
    #[error("file is in vendor directory")]
    Vendored,
    /// A directory above the file holds a `go.mod` of its own (omitted).
    #[error("file is in another module")]
    SubmoduleFile,
    /// The directory holds a `go.mod` of its own and is skipped (omitted).
    #[error("directory is in another module")]
    SubmoduleDir,
    /// A version control directory: `.bzr`, `.git`, `.hg` or `.svn` (omitted).
    #[error("directory is a version control repository")]
    Vcs,
    /// The `.hg_archival.txt` that `hg archive` adds (always omitted).
    #[error("file is inserted by 'hg archive' and is always omitted")]
    HgArchival,
    /// The path breaks the module file path rules.
    #[error(transparent)]
    InvalidPath(PathError),
    /// The name in the zip is not valid UTF-8.
    #[error("malformed file path: invalid UTF-8")]
    InvalidUtf8,
    /// `go.mod` spelled with other letter case.
    #[error("go.mod files must have lowercase names")]
    GoModCase,
    /// A `go.mod` below the root of a zip.
    #[error("go.mod file not in module root directory")]
    GoModNotAtRoot,
    /// Two paths (this file's or its parent directories') that are equal
    /// under Unicode case folding.
    #[error("case-insensitive file name collision: {other:?} and {path:?}")]
    CaseCollision {
        /// The path seen first.
        other: String,
        /// The colliding path, this file or one of its parent directories.
        path: String,
    },
    /// The same path is listed both as a file and as a directory.
    #[error("entry {path:?} is both a file and a directory")]
    FileAndDirectory {
        /// The path in question.
        path: String,
    },
    /// The same file is listed twice.
    #[error("multiple entries for file {path:?}")]
    Duplicate {
        /// The repeated path.
        path: String,
    },
    /// A symbolic link (omitted).
    #[error("file is a symbolic link")]
    Symlink,
    /// A directory, device or other irregular file (omitted).
    #[error("not a regular file")]
    NotRegular,
    /// The root `go.mod` is over the limit.
    #[error("go.mod file too large (max size is {max} bytes)")]
    GoModTooLarge {
        /// The limit in bytes.
        max: u64,
    },
    /// The root `LICENSE` is over the limit.
    #[error("LICENSE file too large (max size is {max} bytes)")]
    LicenseTooLarge {
        /// The limit in bytes.
        max: u64,
    },
    /// A zip entry outside the `path@version/` directory.
    #[error("path does not have prefix {prefix:?}")]
    MissingPrefix {
        /// The required prefix.
        prefix: String,
    },
    /// The file's metadata could not be read.
    #[error("{0}")]
    Io(Arc<io::Error>),
}

/// A file that is omitted from, or invalid in, a module zip.
#[derive(Debug, Clone, Error)]
#[error("{path}: {reason}")]
pub struct FileError {
    /// The file's path (module-relative, a file system path for
    /// [`check_dir`], or the full entry name for [`check_zip`]).
    pub path: String,
    /// What is wrong with it.
    pub reason: FileErrorKind,
}

/// Failure to create, check, read or extract a module zip.
#[derive(Debug, Clone, Error)]
pub enum ZipError {
    /// Reading or writing a file or the archive failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, directory or entry involved.
        path: String,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The version is not written in canonical form.
    #[error("version {version:?} is not canonical (should be {canonical:?})")]
    NotCanonical {
        /// The version given.
        version: String,
        /// Its canonical form ("" if it is not a semantic version).
        canonical: String,
    },
    /// The module path or version is invalid, or they do not match.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The files chosen for the zip add up to more than the limit.
    #[error("module source tree too large (max size is {max} bytes)")]
    SourceTreeTooLarge {
        /// The limit in bytes.
        max: u64,
    },
    /// The zip archive itself is over the limit.
    #[error("module zip file is too large ({size} bytes; limit is {max} bytes)")]
    ZipFileTooLarge {
        /// The archive size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// The declared sizes of the files in the zip add up to more than the limit.
    #[error("total uncompressed size of module contents too large (max size is {max} bytes)")]
    ContentsTooLarge {
        /// The limit in bytes.
        max: u64,
    },
    /// Some files may not be in a module zip; one line per file.
    #[error("{}", join_lines(.0))]
    InvalidFiles(Vec<FileError>),
    /// A file holds more data than its size as listed (or as declared in
    /// the zip header).
    #[error("file {path:?} is larger than declared size ({declared} bytes)")]
    LargerThanDeclared {
        /// The file or entry.
        path: String,
        /// The size it was supposed to have.
        declared: u64,
    },
    /// A zip entry's data ends before its declared size.
    #[error("file {path:?} is shorter than declared size ({declared} bytes)")]
    ShorterThanDeclared {
        /// The entry.
        path: String,
        /// The size declared in the zip.
        declared: u64,
    },
    /// A zip entry's CRC-32 does not match its data.
    #[error("file {path:?}: checksum error")]
    Checksum {
        /// The entry.
        path: String,
    },
    /// A zip entry uses a compression method other than store or deflate.
    #[error("file {path:?}: unsupported compression method {method}")]
    UnsupportedMethod {
        /// The entry.
        path: String,
        /// The method number from the header.
        method: u16,
    },
    /// The archive is not a readable zip file.
    #[error("not a valid zip file: {reason}")]
    Format {
        /// What is malformed.
        reason: &'static str,
    },
    /// One entry of the archive is malformed.
    #[error("file {path:?}: not a valid zip entry: {reason}")]
    EntryFormat {
        /// The entry.
        path: String,
        /// What is malformed.
        reason: &'static str,
    },
    /// [`unzip`] was pointed at a directory that already has content.
    #[error("target directory {} exists and is not empty", .dir.display())]
    TargetNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// The zip writer refused an entry.
    #[error("writing zip entry {path:?}: {message}")]
    Writer {
        /// The entry name.
        path: String,
        /// The writer's complaint.
        message: String,
    },
}

fn join_lines(errors: &[FileError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ZipError {
    pub(crate) fn io(path: impl Into<String>, source: io::Error) -> Self {
        ZipError::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }
}

/// The outcome of checking a set of files against the module zip rules.
/// Every file lands in one of the three lists, except that a path already
/// reported once is not reported again.
#[derive(Debug, Clone, Default)]
pub struct CheckedFiles {
    /// Files that belong in the zip, in input order.
    pub valid: Vec<String>,
    /// Files left out on purpose, with the reason.
    pub omitted: Vec<FileError>,
    /// Files that make the zip invalid, with the reason.
    pub invalid: Vec<FileError>,
    /// Set when the valid files, or the zip itself, exceed a size limit.
    pub size_error: Option<ZipError>,
}

impl CheckedFiles {
    /// Whether these files make a valid module zip: the size error if there
    /// is one, else [`ZipError::InvalidFiles`] if any file is invalid.
    pub fn err(&self) -> Result<(), ZipError> {
        if let Some(size_error) = &self.size_error {
            return Err(size_error.clone());
        }
        if !self.invalid.is_empty() {
            return Err(ZipError::InvalidFiles(self.invalid.clone()));
        }
        Ok(())
    }
}

/// Checks that `m` names a valid module at a canonical version, as required
/// before writing or reading its zip.
fn check_module_version(m: &Version) -> Result<(), ZipError> {
    let canonical = module::canonical_version(&m.version);
    if canonical != m.version {
        return Err(ZipError::NotCanonical {
            version: m.version.clone(),
            canonical,
        });
    }
    module::check(&m.path, &m.version)?;
    Ok(())
}

/// The directory every entry of the module's zip lives in.
fn zip_prefix(m: &Version) -> String {
    format!("{}@{}/", m.path, m.version)
}

/// Reads the root `go.mod` (at most `limit` bytes; a bigger one is ignored)
/// and returns the Go language version it declares, such as `go1.21`, or ""
/// when there is none.
fn root_go_lang(file: impl Read, limit: u64) -> String {
    let mut data = Vec::new();
    match file.take(limit.saturating_add(1)).read_to_end(&mut data) {
        Ok(n) if (n as u64) <= limit => {}
        _ => return String::new(),
    }
    match crate::gomod::go_version(&data) {
        Some(version) => gover::lang(&format!("go{version}")),
        None => String::new(),
    }
}

/// Whether a file belongs to a vendored package and is left out of the
/// zip. `lang` is the module's Go language version (`go1.24`, or "" when
/// unknown): from Go 1.24 on, `vendor/modules.txt` is left out too, and a
/// nested `x/vendor/` directory is recognized correctly.
fn is_vendored_package(name: &str, lang: &str) -> bool {
    let modern = gover::compare(lang, "go1.24").is_ge();
    if modern && name == "vendor/modules.txt" {
        return true;
    }
    let package_start = if name.starts_with("vendor/") {
        "vendor/".len()
    } else if let Some(at) = name.find("/vendor/") {
        if modern {
            at + "/vendor/".len()
        } else {
            // Before Go 1.24 the offset ignored where "/vendor/" was found;
            // keep that so older modules keep their checksums.
            "/vendor/".len()
        }
    } else {
        return false;
    };
    name.as_bytes()[package_start..].contains(&b'/')
}

/// Lexically cleans a slash-separated path like Go's `path.Clean`: merges
/// slashes, drops `.` elements, resolves `..` where possible, and returns
/// `.` for an empty result.
pub(crate) fn clean_path(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let rooted = path[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    // Number of leading ".." elements that cannot be resolved (relative only).
    let mut unresolved_up = 0usize;
    for element in path.split(|&b| b == b'/') {
        match element {
            b"" | b"." => {}
            b".." => {
                if parts.len() > unresolved_up {
                    parts.pop();
                } else if !rooted {
                    parts.push(b"..");
                    unresolved_up += 1;
                }
            }
            _ => parts.push(element),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(b'/');
    }
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// [`clean_path`] for text.
fn clean_str(path: &str) -> String {
    // Cleaning only removes or keeps whole elements split at ASCII '/', so
    // valid UTF-8 stays valid.
    String::from_utf8(clean_path(path.as_bytes())).unwrap_or_default()
}

/// Go's `path.Dir` for a path: everything before the last slash, cleaned.
fn parent_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(slash) => clean_str(&path[..=slash]),
        None => ".".to_string(),
    }
}

/// Maps a string to a key that is equal for two strings exactly when they
/// are equal under Unicode simple case folding (Go's `strings.EqualFold`).
pub(crate) fn str_to_fold(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return s.to_string();
    }
    s.chars().map(fold_char).collect()
}

/// Case-folding pairs that the standard library's one-character case
/// mappings do not connect (checked exhaustively against Go's tables).
const EXTRA_FOLDS: [(char, char); 6] = [
    ('\u{345}', '\u{3B9}'),
    ('\u{B5}', '\u{3BC}'),
    ('\u{1FD3}', '\u{390}'),
    ('\u{1FE3}', '\u{3B0}'),
    ('\u{A64B}', '\u{1C88}'),
    ('\u{FB05}', '\u{FB06}'),
];

/// The smallest character equivalent to `c` under simple case folding,
/// with ASCII upper case mapped to lower case.
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
        let first = chars.next()?;
        chars.next().is_none().then_some(first)
    }
    let mut class = vec![c];
    let mut next = 0;
    while let Some(&x) = class.get(next) {
        next += 1;
        // Dotless i has no simple case folding partner.
        if x == '\u{131}' {
            continue;
        }
        let mut neighbors = vec![single(x.to_lowercase()), single(x.to_uppercase())];
        for &(a, b) in &EXTRA_FOLDS {
            if x == a {
                neighbors.push(Some(b));
            } else if x == b {
                neighbors.push(Some(a));
            }
        }
        for n in neighbors.into_iter().flatten() {
            if !class.contains(&n) {
                class.push(n);
            }
        }
    }
    let min = class.into_iter().min().unwrap_or(c);
    min.to_ascii_lowercase()
}

/// Finds paths that collide under case folding, and paths used both as a
/// file and as a directory. Every parent directory of a path is registered
/// as a directory.
#[derive(Default)]
struct CollisionChecker {
    /// Folded path -> (original path, is a directory).
    seen: HashMap<String, (String, bool)>,
    /// Directory -> what checking its parents gave the first time. A
    /// directory met again would give the same (recorded entries never
    /// change), so a file costs its depth once per directory, not per file.
    parents_checked: HashMap<String, Result<(), FileErrorKind>>,
}

impl CollisionChecker {
    fn check(&mut self, path: &str, is_dir: bool) -> Result<(), FileErrorKind> {
        let mut passed: Vec<String> = Vec::new();
        let result = self.check_up(path, is_dir, &mut passed);
        for dir in passed {
            self.parents_checked
                .entry(dir)
                .or_insert_with(|| result.clone());
        }
        result
    }

    /// Checks `path` and its parents in turn, recording in `passed` the
    /// directories whose parents are checked by the same walk.
    fn check_up(
        &mut self,
        path: &str,
        is_dir: bool,
        passed: &mut Vec<String>,
    ) -> Result<(), FileErrorKind> {
        let mut current = path.to_string();
        let mut current_is_dir = is_dir;
        loop {
            let fold = str_to_fold(&current);
            match self.seen.get(&fold) {
                Some((other, other_is_dir)) => {
                    if *other != current {
                        return Err(FileErrorKind::CaseCollision {
                            other: other.clone(),
                            path: current,
                        });
                    }
                    if *other_is_dir != current_is_dir {
                        return Err(FileErrorKind::FileAndDirectory { path: current });
                    }
                    if !current_is_dir {
                        return Err(FileErrorKind::Duplicate { path: current });
                    }
                    // The same directory again, expected for sibling files.
                    if let Some(result) = self.parents_checked.get(&current) {
                        return result.clone();
                    }
                }
                None => {
                    self.seen.insert(fold, (current.clone(), current_is_dir));
                }
            }
            let parent = parent_dir(&current);
            if parent == "." {
                return Ok(());
            }
            if current_is_dir {
                passed.push(current);
            }
            current = parent;
            current_is_dir = true;
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::Regular => "regular file",
            FileKind::Symlink => "symbolic link",
            FileKind::Dir => "directory",
            FileKind::Other => "irregular file",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_matches_go_path_clean() {
        let cases: [(&str, &str); 16] = [
            ("", "."),
            ("a", "a"),
            ("a/", "a"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("..", ".."),
            ("../..", "../.."),
            ("a/../..", ".."),
            ("/", "/"),
            ("/..", "/"),
            ("/a/../../b", "/b"),
            ("a/b/../../..", ".."),
            ("../a/..", ".."),
            ("abc/def/", "abc/def"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_str(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn parent_dir_matches_go_path_dir() {
        assert_eq!(parent_dir("a"), ".");
        assert_eq!(parent_dir("a/b"), "a");
        assert_eq!(parent_dir("a/b/c.go"), "a/b");
    }

    #[test]
    fn str_to_fold_identifies_case_folding_classes() {
        assert_eq!(str_to_fold("abc/def.go"), "abc/def.go");
        assert_eq!(str_to_fold("ABC/Def.GO"), "abc/def.go");
        // Kelvin sign and long s fold with ASCII letters.
        assert_eq!(str_to_fold("\u{212A}"), "k");
        assert_eq!(str_to_fold("\u{17F}"), "s");
        // Greek sigma forms, micro sign and mu.
        assert_eq!(str_to_fold("Σ"), str_to_fold("ς"));
        assert_eq!(str_to_fold("σ"), str_to_fold("ς"));
        assert_eq!(str_to_fold("\u{B5}"), str_to_fold("\u{39C}"));
        assert_eq!(str_to_fold("\u{345}"), str_to_fold("\u{399}"));
        assert_eq!(str_to_fold("\u{1E9E}"), str_to_fold("ß"));
        assert_eq!(str_to_fold("\u{FB05}"), str_to_fold("\u{FB06}"));
        // Dotless and dotted capital I stand alone.
        assert_ne!(str_to_fold("\u{131}"), str_to_fold("i"));
        assert_ne!(str_to_fold("\u{130}"), str_to_fold("i"));
        assert_ne!(str_to_fold("a"), str_to_fold("b"));
    }

    #[test]
    fn vendored_packages_follow_the_go_version() {
        // Before go 1.24 (or without a go line).
        for lang in ["", "go1.23"] {
            assert!(is_vendored_package("vendor/a/x.go", lang));
            assert!(!is_vendored_package("vendor/x.go", lang));
            assert!(!is_vendored_package("vendor/modules.txt", lang));
            assert!(is_vendored_package("pkg/vendor/a/x.go", lang));
            // The historical offset bug: "pkg/vendor/vendor.go" counts as vendored.
            assert!(is_vendored_package("pkg/vendor/vendor.go", lang));
            assert!(!is_vendored_package("x/vendorx/a/b.go", lang));
        }
        assert!(is_vendored_package("vendor/modules.txt", "go1.24"));
        assert!(is_vendored_package("vendor/modules.txt", "go1.25"));
        assert!(!is_vendored_package("pkg/vendor/vendor.go", "go1.24"));
        assert!(is_vendored_package("pkg/vendor/a/x.go", "go1.24"));
        assert!(!is_vendored_package("vendor/x.go", "go1.24"));
        // Multi-byte characters before "/vendor/" must not break the old offset.
        assert!(is_vendored_package("日日日/vendor/a/b", ""));
    }

    #[test]
    fn collision_checker_reports_each_kind() {
        let mut checker = CollisionChecker::default();
        assert!(checker.check("a/b.go", false).is_ok());
        assert!(checker.check("a/c.go", false).is_ok());
        assert!(matches!(
            checker.check("a/b.go", false),
            Err(FileErrorKind::Duplicate { path }) if path == "a/b.go"
        ));
        assert!(matches!(
            checker.check("A/d.go", false),
            Err(FileErrorKind::CaseCollision { other, path }) if other == "a" && path == "A"
        ));
        assert!(matches!(
            checker.check("a", false),
            Err(FileErrorKind::FileAndDirectory { path }) if path == "a"
        ));
        assert!(matches!(
            checker.check("A/B.GO", false),
            Err(FileErrorKind::CaseCollision { other, path }) if other == "a/b.go" && path == "A/B.GO"
        ));
    }

    #[test]
    fn root_go_lang_reads_the_go_directive() {
        assert_eq!(root_go_lang(&b"module m\ngo 1.24.1\n"[..], 100), "go1.24");
        assert_eq!(root_go_lang(&b"module m\n"[..], 100), "");
        assert_eq!(root_go_lang(&b"go 1.24 /* bad */\n"[..], 100), "");
        assert_eq!(root_go_lang(&b"module m\ngo 1.24\n"[..], 5), "");
    }
}
