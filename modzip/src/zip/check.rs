//! Sorting files into valid, omitted and invalid, for a list of files and
//! for an existing zip archive.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek};
use std::sync::Arc;

use super::read::{stream_size, Archive};
use super::{
    check_module_version, clean_path, clean_str, is_vendored_package, root_go_lang, str_to_fold,
    zip_prefix, CheckedFiles, CollisionChecker, FileError, FileErrorKind, FileKind, Limits,
    ModuleFile, ZipError,
};
use crate::module::{self, Version};

/// Decides, without reading any file content except the root `go.mod`,
/// which of `files` belong in a module zip, which are left out and which
/// make the zip invalid. Use [`CheckedFiles::err`] for the verdict.
///
/// Left out: files of nested modules (below a directory with its own
/// `go.mod`), files of vendored packages, `.hg_archival.txt`, symbolic links
/// and other irregular files. Invalid: unclean or absolute paths, paths the
/// module file path rules reject, `go.mod` in the wrong case, case-folding
/// collisions and duplicates, and a root `go.mod` or `LICENSE` over 16 MiB;
/// a total over [`MAX_ZIP_FILE`](super::MAX_ZIP_FILE) sets the size error.
pub fn check_files<F: ModuleFile>(files: &[F]) -> CheckedFiles {
    check_files_with(files, &Limits::GO).checked
}

/// [`check_files`] plus what [`create`](super::create) needs to write the
/// valid files without asking for their metadata again.
pub(crate) struct FileSelection {
    pub checked: CheckedFiles,
    /// Indexes into the input of the valid files, in order.
    pub valid_indexes: Vec<usize>,
    /// Their sizes as reported by `metadata`.
    pub valid_sizes: Vec<u64>,
}

/// Records each path's first problem only.
struct Problems<'a> {
    reported: HashSet<String>,
    checked: &'a mut CheckedFiles,
}

impl Problems<'_> {
    fn add(&mut self, path: &str, omitted: bool, reason: FileErrorKind) {
        if !self.reported.insert(path.to_string()) {
            return;
        }
        let error = FileError {
            path: path.to_string(),
            reason,
        };
        if omitted {
            self.checked.omitted.push(error);
        } else {
            self.checked.invalid.push(error);
        }
    }
}

/// Splits a path after its last slash: ("a/b/", "c") for "a/b/c".
fn split_dir(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(slash) => path.split_at(slash + 1),
        None => ("", path),
    }
}

pub(crate) fn check_files_with<F: ModuleFile>(files: &[F], limits: &Limits) -> FileSelection {
    check_files_until(files, limits, false)
}

/// [`check_files_with`]; with `stop_at_size_error`, the files after the one
/// that crosses the size limit are not looked at. The verdict of
/// [`CheckedFiles::err`] is the same (a size error wins over invalid
/// files), without asking for the metadata of every file of a huge tree.
pub(crate) fn check_files_until<F: ModuleFile>(
    files: &[F],
    limits: &Limits,
    stop_at_size_error: bool,
) -> FileSelection {
    let mut checked = CheckedFiles::default();
    let mut valid_indexes = Vec::new();
    let mut valid_sizes = Vec::new();
    let mut problems = Problems {
        reported: HashSet::new(),
        checked: &mut checked,
    };

    // Directories holding a go.mod (with trailing slash) start other
    // modules; the root one also tells which vendoring rules apply.
    let mut module_dirs: HashSet<String> = HashSet::new();
    let mut lang = String::new();
    for file in files {
        let path = file.path();
        let (dir, base) = split_dir(path);
        if str_to_fold(base) != "go.mod" {
            continue;
        }
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                problems.add(path, false, FileErrorKind::Io(Arc::new(e)));
                continue;
            }
        };
        if meta.kind != FileKind::Regular {
            continue;
        }
        module_dirs.insert(dir.to_string());
        // A go.mod over the limit is ignored when looking for the go
        // version; its size says so without reading it.
        if base == "go.mod" && dir.is_empty() && meta.size <= limits.go_mod {
            if let Ok(reader) = file.open() {
                lang = root_go_lang(reader, limits.go_mod);
            }
        }
    }

    // Whether each directory (with its trailing slash) lies inside a nested
    // module, remembered so that a file costs the length of its path, not
    // its depth times its length, whatever the shape of the tree.
    let mut nested: HashMap<String, bool> = HashMap::new();
    let mut in_submodule = |path: &str| -> bool {
        let (dir, _) = split_dir(path);
        // The directories from `dir` up to the first one already known.
        let mut pending: Vec<&str> = Vec::new();
        let mut known = false;
        let mut current = dir;
        while !current.is_empty() {
            if let Some(&answer) = nested.get(current) {
                known = answer;
                break;
            }
            pending.push(current);
            current = split_dir(&current[..current.len() - 1]).0;
        }
        // Top down: a directory is inside a nested module when it holds a
        // go.mod itself or its parent is inside one.
        for dir in pending.into_iter().rev() {
            known = known || module_dirs.contains(dir);
            nested.insert(dir.to_string(), known);
        }
        known
    };

    let mut collisions = CollisionChecker::default();
    let mut budget = limits.zip_file;
    for (index, file) in files.iter().enumerate() {
        let path = file.path();
        if clean_str(path) != path {
            problems.add(path, false, FileErrorKind::NotClean);
            continue;
        }
        if path.starts_with('/') {
            problems.add(path, false, FileErrorKind::NotRelative);
            continue;
        }
        if is_vendored_package(path, &lang) {
            problems.add(path, true, FileErrorKind::Vendored);
            continue;
        }
        if in_submodule(path) {
            problems.add(path, true, FileErrorKind::SubmoduleFile);
            continue;
        }
        if path == ".hg_archival.txt" {
            problems.add(path, true, FileErrorKind::HgArchival);
            continue;
        }
        if let Err(e) = module::check_file_path(path) {
            problems.add(path, false, FileErrorKind::InvalidPath(e));
            continue;
        }
        if path.eq_ignore_ascii_case("go.mod") && path != "go.mod" {
            problems.add(path, false, FileErrorKind::GoModCase);
            continue;
        }
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                problems.add(path, false, FileErrorKind::Io(Arc::new(e)));
                continue;
            }
        };
        if let Err(reason) = collisions.check(path, meta.kind == FileKind::Dir) {
            problems.add(path, false, reason);
            continue;
        }
        match meta.kind {
            FileKind::Regular => {}
            FileKind::Symlink => {
                problems.add(path, true, FileErrorKind::Symlink);
                continue;
            }
            FileKind::Dir | FileKind::Other => {
                problems.add(path, true, FileErrorKind::NotRegular);
                continue;
            }
        }
        if meta.size <= budget {
            budget -= meta.size;
        } else if problems.checked.size_error.is_none() {
            problems.checked.size_error = Some(ZipError::SourceTreeTooLarge {
                max: limits.zip_file,
            });
            if stop_at_size_error {
                break;
            }
        }
        if path == "go.mod" && meta.size > limits.go_mod {
            problems.add(
                path,
                false,
                FileErrorKind::GoModTooLarge { max: limits.go_mod },
            );
            continue;
        }
        if path == "LICENSE" && meta.size > limits.license {
            problems.add(
                path,
                false,
                FileErrorKind::LicenseTooLarge {
                    max: limits.license,
                },
            );
            continue;
        }
        problems.checked.valid.push(path.to_string());
        valid_indexes.push(index);
        valid_sizes.push(meta.size);
    }

    FileSelection {
        checked,
        valid_indexes,
        valid_sizes,
    }
}

/// Checks an existing zip archive for module `m`: every entry name must
/// start with `path@version/` and be a valid, clean module file path,
/// distinct from the others under case folding; `go.mod` may only appear at
/// the root, and the declared sizes must respect the limits.
///
/// Returns an error when `m` is not a valid module at a canonical version,
/// or when the archive cannot be read as a zip. Otherwise the returned
/// [`CheckedFiles`] lists full entry names as valid (directories are not
/// listed) and tells through [`CheckedFiles::err`] whether the zip is
/// acceptable. An archive over [`MAX_ZIP_FILE`](super::MAX_ZIP_FILE) bytes
/// is reported through the size error without being read. Entry data is
/// not read; [`unzip`](super::unzip) verifies it.
///
/// This is golang.org/x/mod's `zip.CheckZip`, the check a proxy runs on a
/// zip it did not build before serving it.
///
/// ```
/// use std::io::{Cursor, Write};
///
/// use modzip::zip::{check_zip, create, MemFile};
/// use modzip::Version;
///
/// let m = Version::new("example.com/m", "v1.0.0");
/// let files = [
///     MemFile::new("go.mod", "module example.com/m\n"),
///     MemFile::new("m.go", "package m\n"),
/// ];
/// let good = create(Cursor::new(Vec::new()), &m, &files)?.into_inner();
/// let checked = check_zip(&m, Cursor::new(&good))?;
/// assert!(checked.err().is_ok());
/// assert_eq!(checked.valid, ["example.com/m@v1.0.0/go.mod", "example.com/m@v1.0.0/m.go"]);
///
/// // A zip written by someone else, with an entry outside the module's
/// // directory, is readable but not a valid module zip.
/// let mut w = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
/// w.start_file("example.com/m@v1.0.0/go.mod", ::zip::write::SimpleFileOptions::default())?;
/// w.write_all(b"module example.com/m\n")?;
/// w.start_file("example.com/other@v1.0.0/x.go", ::zip::write::SimpleFileOptions::default())?;
/// w.write_all(b"package x\n")?;
/// let bad = w.finish()?.into_inner();
/// let checked = check_zip(&m, Cursor::new(&bad))?;
/// assert_eq!(checked.invalid.len(), 1);
/// assert!(checked.err().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_zip<R: Read + Seek>(m: &Version, reader: R) -> Result<CheckedFiles, ZipError> {
    check_zip_with(m, reader, &Limits::GO).map(|(_, checked)| checked)
}

pub(crate) fn check_zip_with<R: Read + Seek>(
    m: &Version,
    mut reader: R,
    limits: &Limits,
) -> Result<(Option<Archive<R>>, CheckedFiles), ZipError> {
    check_module_version(m)?;
    let size = stream_size(&mut reader)?;
    if size > limits.zip_file {
        let checked = CheckedFiles {
            size_error: Some(ZipError::ZipFileTooLarge {
                size,
                max: limits.zip_file,
            }),
            ..CheckedFiles::default()
        };
        return Ok((None, checked));
    }
    let archive = Archive::open(reader, size)?;

    let mut checked = CheckedFiles::default();
    let prefix = zip_prefix(m);
    let mut collisions = CollisionChecker::default();
    let mut total: u64 = 0;
    for entry in &archive.entries {
        let mut invalid = |reason: FileErrorKind| {
            checked.invalid.push(FileError {
                path: entry.display_name(),
                reason,
            });
        };
        let Some(rest) = entry.name.strip_prefix(prefix.as_bytes()) else {
            invalid(FileErrorKind::MissingPrefix {
                prefix: prefix.clone(),
            });
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let (name, is_dir) = match rest.strip_suffix(b"/") {
            Some(dir) => (dir, true),
            None => (rest, false),
        };
        if clean_path(name) != name {
            invalid(FileErrorKind::NotClean);
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            invalid(FileErrorKind::InvalidUtf8);
            continue;
        };
        if let Err(e) = module::check_file_path(name) {
            invalid(FileErrorKind::InvalidPath(e));
            continue;
        }
        if let Err(reason) = collisions.check(name, is_dir) {
            invalid(reason);
            continue;
        }
        if is_dir {
            continue;
        }
        let base = name.rsplit('/').next().unwrap_or(name);
        if str_to_fold(base) == "go.mod" {
            if base != name {
                invalid(FileErrorKind::GoModNotAtRoot);
                continue;
            }
            if name != "go.mod" {
                invalid(FileErrorKind::GoModCase);
                continue;
            }
        }
        let declared = entry.uncompressed_size;
        // Declared sizes that do not fit a signed 64-bit size count as over.
        if declared <= i64::MAX as u64 && limits.zip_file - total >= declared {
            total += declared;
        } else if checked.size_error.is_none() {
            checked.size_error = Some(ZipError::ContentsTooLarge {
                max: limits.zip_file,
            });
        }
        if name == "go.mod" && declared > limits.go_mod {
            invalid(FileErrorKind::GoModTooLarge { max: limits.go_mod });
            continue;
        }
        if name == "LICENSE" && declared > limits.license {
            invalid(FileErrorKind::LicenseTooLarge {
                max: limits.license,
            });
            continue;
        }
        checked.valid.push(entry.display_name());
    }
    Ok((Some(archive), checked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zip::MemFile;
    use std::io;

    /// A file whose metadata is made up, for kinds MemFile cannot express.
    struct FakeFile {
        path: String,
        kind: FileKind,
        size: u64,
        fail_metadata: bool,
    }

    impl FakeFile {
        fn new(path: &str, kind: FileKind, size: u64) -> Self {
            FakeFile {
                path: path.to_string(),
                kind,
                size,
                fail_metadata: false,
            }
        }
    }

    impl ModuleFile for FakeFile {
        fn path(&self) -> &str {
            &self.path
        }
        fn metadata(&self) -> io::Result<super::super::FileMeta> {
            if self.fail_metadata {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "denied"));
            }
            Ok(super::super::FileMeta {
                kind: self.kind,
                size: self.size,
            })
        }
        fn open(&self) -> io::Result<Box<dyn Read + '_>> {
            Ok(Box::new(io::repeat(b'x').take(self.size)))
        }
    }

    fn mem(paths: &[&str]) -> Vec<MemFile> {
        paths.iter().map(|p| MemFile::new(*p, "x")).collect()
    }

    fn reasons(errors: &[FileError]) -> Vec<(String, String)> {
        errors
            .iter()
            .map(|e| (e.path.clone(), format!("{:?}", e.reason)))
            .collect()
    }

    fn find<'a>(errors: &'a [FileError], path: &str) -> &'a FileErrorKind {
        &errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} not reported in {:?}", reasons(errors)))
            .reason
    }

    #[test]
    fn plain_files_are_valid() {
        let files = mem(&["go.mod", "a.go", "sub/b.go", "LICENSE", "vendor/x.go"]);
        let checked = check_files(&files);
        assert_eq!(
            checked.valid,
            ["go.mod", "a.go", "sub/b.go", "LICENSE", "vendor/x.go"]
        );
        assert!(checked.omitted.is_empty() && checked.invalid.is_empty());
        assert!(checked.err().is_ok());
    }

    #[test]
    fn unclean_and_absolute_paths_are_invalid() {
        let files = mem(&[
            "a//b.go",
            "./a.go",
            "a/../b.go",
            "a/",
            "",
            "/abs.go",
            "ok.go",
        ]);
        let checked = check_files(&files);
        assert_eq!(checked.valid, ["ok.go"]);
        for path in ["a//b.go", "./a.go", "a/../b.go", "a/", ""] {
            assert!(matches!(
                find(&checked.invalid, path),
                FileErrorKind::NotClean
            ));
        }
        assert!(matches!(
            find(&checked.invalid, "/abs.go"),
            FileErrorKind::NotRelative
        ));
        let message = checked.err().unwrap_err().to_string();
        assert!(
            message.contains("/abs.go: file path is not relative"),
            "{message}"
        );
    }

    #[test]
    fn vendored_packages_are_omitted_by_go_version() {
        let old = vec![
            MemFile::new("go.mod", "module m\ngo 1.23\n"),
            MemFile::new("vendor/modules.txt", ""),
            MemFile::new("vendor/a/a.go", ""),
            MemFile::new("pkg/vendor/vendor.go", ""),
            MemFile::new("vendor/top.go", ""),
        ];
        let checked = check_files(&old);
        assert_eq!(
            checked.valid,
            ["go.mod", "vendor/modules.txt", "vendor/top.go"]
        );
        assert!(matches!(
            find(&checked.omitted, "vendor/a/a.go"),
            FileErrorKind::Vendored
        ));
        assert!(matches!(
            find(&checked.omitted, "pkg/vendor/vendor.go"),
            FileErrorKind::Vendored
        ));

        let mut new = old.clone();
        new[0] = MemFile::new("go.mod", "module m\n\ngo 1.24.0\n");
        let checked = check_files(&new);
        assert_eq!(
            checked.valid,
            ["go.mod", "pkg/vendor/vendor.go", "vendor/top.go"]
        );
        assert!(matches!(
            find(&checked.omitted, "vendor/modules.txt"),
            FileErrorKind::Vendored
        ));

        // A go.mod the lax parser rejects counts as having no go version.
        new[0] = MemFile::new("go.mod", "module m\ngo 1.24\ngo 1.25\n");
        let checked = check_files(&new);
        assert!(checked.valid.contains(&"vendor/modules.txt".to_string()));
    }

    #[test]
    fn nested_modules_are_omitted() {
        let files = vec![
            MemFile::new("go.mod", "module m\n"),
            MemFile::new("a.go", ""),
            MemFile::new("sub/go.mod", "module m/sub\n"),
            MemFile::new("sub/x.go", ""),
            MemFile::new("sub/deep/y.go", ""),
            MemFile::new("other/GO.MOD", ""),
            MemFile::new("other/z.go", ""),
            MemFile::new("subx/w.go", ""),
        ];
        let checked = check_files(&files);
        assert_eq!(checked.valid, ["go.mod", "a.go", "subx/w.go"]);
        for path in [
            "sub/go.mod",
            "sub/x.go",
            "sub/deep/y.go",
            "other/GO.MOD",
            "other/z.go",
        ] {
            assert!(matches!(
                find(&checked.omitted, path),
                FileErrorKind::SubmoduleFile
            ));
        }
        // A go.mod that is not a regular file does not start a module.
        let files = vec![
            FakeFile::new("sub/go.mod", FileKind::Symlink, 0),
            FakeFile::new("sub/x.go", FileKind::Regular, 1),
        ];
        let checked = check_files(&files);
        assert_eq!(checked.valid, ["sub/x.go"]);
        assert!(matches!(
            find(&checked.omitted, "sub/go.mod"),
            FileErrorKind::Symlink
        ));
    }

    #[test]
    fn hg_archival_file_is_omitted_only_at_root() {
        let checked = check_files(&mem(&[".hg_archival.txt", "d/.hg_archival.txt"]));
        assert_eq!(checked.valid, ["d/.hg_archival.txt"]);
        assert!(matches!(
            find(&checked.omitted, ".hg_archival.txt"),
            FileErrorKind::HgArchival
        ));
    }

    #[test]
    fn bad_file_paths_and_go_mod_case_are_invalid() {
        let checked = check_files(&mem(&["a:b.go", "x/GO.MOD", "Go.Mod", "con.go", "ok.go"]));
        assert_eq!(checked.valid, ["ok.go"]);
        assert!(matches!(
            find(&checked.invalid, "a:b.go"),
            FileErrorKind::InvalidPath(_)
        ));
        assert!(matches!(
            find(&checked.invalid, "con.go"),
            FileErrorKind::InvalidPath(_)
        ));
        assert!(matches!(
            find(&checked.invalid, "Go.Mod"),
            FileErrorKind::GoModCase
        ));
        // Below the root a differently cased go.mod marks a nested module.
        assert!(matches!(
            find(&checked.omitted, "x/GO.MOD"),
            FileErrorKind::SubmoduleFile
        ));
    }

    #[test]
    fn collisions_and_duplicates_are_invalid() {
        let checked = check_files(&mem(&[
            "a.go", "A.go", "a.go", "dir/x", "DIR/y", "\u{212A}", "k",
        ]));
        assert_eq!(checked.valid, ["a.go", "dir/x", "\u{212A}"]);
        assert!(matches!(
            &checked.invalid[0].reason,
            FileErrorKind::CaseCollision { other, path } if other == "a.go" && path == "A.go"
        ));
        assert!(matches!(
            &checked.invalid[1].reason,
            FileErrorKind::Duplicate { path } if path == "a.go"
        ));
        assert!(matches!(
            find(&checked.invalid, "DIR/y"),
            FileErrorKind::CaseCollision { other, path } if other == "dir" && path == "DIR"
        ));
        assert!(matches!(
            find(&checked.invalid, "k"),
            FileErrorKind::CaseCollision { .. }
        ));
        let files = vec![
            FakeFile::new("d", FileKind::Regular, 1),
            FakeFile::new("d/x", FileKind::Regular, 1),
        ];
        let checked = check_files(&files);
        assert!(matches!(
            find(&checked.invalid, "d/x"),
            FileErrorKind::FileAndDirectory { path } if path == "d"
        ));
    }

    #[test]
    fn a_colliding_directory_fails_every_file_below_it() {
        let checked = check_files(&mem(&["a", "A/b/x", "A/b/y", "A/c"]));
        assert_eq!(checked.valid, ["a"]);
        for path in ["A/b/x", "A/b/y", "A/c"] {
            assert!(matches!(
                find(&checked.invalid, path),
                FileErrorKind::CaseCollision { other, path } if other == "a" && path == "A"
            ));
        }
    }

    #[test]
    fn deep_trees_cost_their_path_lengths_not_depth_times_files() {
        // 1000 files 1000 directories deep: walking every file's parents
        // would fold a billion characters.
        let deep = vec!["d"; 1000].join("/");
        let mut paths: Vec<String> = vec!["go.mod".into()];
        paths.extend((0..1000).map(|i| format!("{deep}/f{i}")));
        let files: Vec<MemFile> = paths
            .iter()
            .map(|p| MemFile::new(p.as_str(), "x"))
            .collect();
        let start = std::time::Instant::now();
        let checked = check_files(&files);
        assert!(checked.err().is_ok());
        assert_eq!(checked.valid.len(), 1001);
        let mut files = files;
        let nested = vec!["d"; 500].join("/");
        files.push(MemFile::new(format!("{nested}/go.mod"), "module n\n"));
        let checked = check_files(&files);
        assert_eq!(checked.valid, ["go.mod"]);
        assert_eq!(checked.omitted.len(), 1001);
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn symlinks_and_irregular_files_are_omitted() {
        let files = vec![
            FakeFile::new("link", FileKind::Symlink, 4),
            FakeFile::new("dir", FileKind::Dir, 0),
            FakeFile::new("fifo", FileKind::Other, 0),
            FakeFile::new("file", FileKind::Regular, 3),
        ];
        let checked = check_files(&files);
        assert_eq!(checked.valid, ["file"]);
        assert!(matches!(
            find(&checked.omitted, "link"),
            FileErrorKind::Symlink
        ));
        assert!(matches!(
            find(&checked.omitted, "dir"),
            FileErrorKind::NotRegular
        ));
        assert!(matches!(
            find(&checked.omitted, "fifo"),
            FileErrorKind::NotRegular
        ));
        assert!(checked.err().is_ok());
    }

    #[test]
    fn metadata_errors_are_invalid_and_reported_once() {
        let mut broken = FakeFile::new("go.mod", FileKind::Regular, 1);
        broken.fail_metadata = true;
        let checked = check_files(&[broken]);
        assert_eq!(checked.invalid.len(), 1);
        assert!(matches!(
            find(&checked.invalid, "go.mod"),
            FileErrorKind::Io(_)
        ));
    }

    #[test]
    fn size_limits_are_enforced() {
        let limits = Limits {
            zip_file: 10,
            go_mod: 4,
            license: 3,
        };
        let files = vec![
            FakeFile::new("go.mod", FileKind::Regular, 5),
            FakeFile::new("LICENSE", FileKind::Regular, 4),
            FakeFile::new("a", FileKind::Regular, 1),
        ];
        let checked = check_files_with(&files, &limits).checked;
        assert_eq!(checked.valid, ["a"]);
        assert!(matches!(
            find(&checked.invalid, "go.mod"),
            FileErrorKind::GoModTooLarge { max: 4 }
        ));
        assert!(matches!(
            find(&checked.invalid, "LICENSE"),
            FileErrorKind::LicenseTooLarge { max: 3 }
        ));
        assert!(checked.size_error.is_none());

        let files = vec![
            FakeFile::new("a", FileKind::Regular, 6),
            FakeFile::new("b", FileKind::Regular, 4),
        ];
        assert!(check_files_with(&files, &limits).checked.err().is_ok());
        let files = vec![
            FakeFile::new("a", FileKind::Regular, 6),
            FakeFile::new("b", FileKind::Regular, 5),
        ];
        let checked = check_files_with(&files, &limits).checked;
        assert_eq!(checked.valid, ["a", "b"]);
        assert!(matches!(
            checked.err(),
            Err(ZipError::SourceTreeTooLarge { max: 10 })
        ));
        // Files below the nested limits but at the real ones pass.
        let files = vec![FakeFile::new(
            "go.mod",
            FileKind::Regular,
            super::super::MAX_GO_MOD,
        )];
        let checked = check_files(&files);
        assert_eq!(checked.valid, ["go.mod"]);
        let files = vec![FakeFile::new(
            "go.mod",
            FileKind::Regular,
            super::super::MAX_GO_MOD + 1,
        )];
        assert!(check_files(&files).err().is_err());
    }
}
