//! Collecting a module's files from a directory tree.

use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::check::check_files;
use super::{
    is_vendored_package, root_go_lang, CheckedFiles, FileError, FileErrorKind, FileKind, FileMeta,
    ModuleFile, ZipError, MAX_GO_MOD,
};

/// Version control metadata directories that are never part of a module.
const VCS_DIRS: [&str; 4] = [".bzr", ".git", ".hg", ".svn"];

/// A file found under a module directory by [`list_dir`].
#[derive(Debug, Clone)]
pub struct DirFile {
    fs_path: PathBuf,
    slash_path: String,
    meta: FileMeta,
}

impl DirFile {
    /// Where the file is on disk.
    pub fn fs_path(&self) -> &Path {
        &self.fs_path
    }
}

impl ModuleFile for DirFile {
    fn path(&self) -> &str {
        &self.slash_path
    }

    /// The metadata seen while listing the directory (not refreshed).
    fn metadata(&self) -> io::Result<FileMeta> {
        Ok(self.meta)
    }

    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(&self.fs_path)?))
    }
}

fn file_meta(meta: &Metadata) -> FileMeta {
    let file_type = meta.file_type();
    let kind = if file_type.is_symlink() {
        FileKind::Symlink
    } else if file_type.is_dir() {
        FileKind::Dir
    } else if file_type.is_file() {
        FileKind::Regular
    } else {
        FileKind::Other
    };
    FileMeta {
        kind,
        size: meta.len(),
    }
}

/// File names in byte order, the order the go command walks a directory in.
fn sorted_names(dir: &Path) -> io::Result<Vec<OsString>> {
    let mut names = fs::read_dir(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<Vec<_>>>()?;
    names.sort_by(|a, b| name_bytes(a).cmp(&name_bytes(b)));
    Ok(names)
}

#[cfg(unix)]
fn name_bytes(name: &std::ffi::OsStr) -> std::borrow::Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    std::borrow::Cow::Borrowed(name.as_bytes())
}

#[cfg(not(unix))]
fn name_bytes(name: &std::ffi::OsStr) -> std::borrow::Cow<'_, [u8]> {
    match name.to_string_lossy() {
        std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
        std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
    }
}

struct Lister {
    lang: String,
    files: Vec<DirFile>,
    omitted: Vec<FileError>,
}

impl Lister {
    fn omit(&mut self, path: &str, reason: FileErrorKind) {
        self.omitted.push(FileError {
            path: path.to_string(),
            reason,
        });
    }

    /// Records `fs_path` (module-relative `slash_path`). For a directory
    /// to descend into, returns the names inside it in walk order.
    fn visit(
        &mut self,
        fs_path: &Path,
        slash_path: &str,
        meta: &Metadata,
    ) -> Result<Option<Vec<OsString>>, ZipError> {
        if !meta.is_dir() {
            if is_vendored_package(slash_path, &self.lang) {
                self.omit(slash_path, FileErrorKind::Vendored);
            } else if !meta.file_type().is_file() {
                self.omit(slash_path, FileErrorKind::NotRegular);
            } else {
                self.files.push(DirFile {
                    fs_path: fs_path.to_path_buf(),
                    slash_path: slash_path.to_string(),
                    meta: file_meta(meta),
                });
            }
            return Ok(None);
        }

        // The listing comes first, so an unreadable directory is an error
        // even if it would have been skipped.
        let names =
            sorted_names(fs_path).map_err(|e| ZipError::io(fs_path.display().to_string(), e))?;
        if is_vendored_package(slash_path, &self.lang) {
            // Recorded, but still descended into: each file below is
            // reported on its own.
            self.omit(slash_path, FileErrorKind::Vendored);
        } else if slash_path != "." {
            let base = fs_path.file_name().map(|n| n.to_string_lossy());
            if base.is_some_and(|b| VCS_DIRS.contains(&b.as_ref())) {
                self.omit(slash_path, FileErrorKind::Vcs);
                return Ok(None);
            }
            if fs::symlink_metadata(fs_path.join("go.mod")).is_ok_and(|m| !m.is_dir()) {
                self.omit(slash_path, FileErrorKind::SubmoduleDir);
                return Ok(None);
            }
        }
        Ok(Some(names))
    }

    /// Walks the tree depth first in name order, with an explicit stack so
    /// that deep trees cannot exhaust the thread's stack.
    fn walk(&mut self, root: &Path, root_meta: &Metadata) -> Result<(), ZipError> {
        let Some(names) = self.visit(root, ".", root_meta)? else {
            return Ok(());
        };
        let mut stack = vec![(root.to_path_buf(), String::new(), names.into_iter())];
        while let Some((dir, slash_dir, names)) = stack.last_mut() {
            let Some(name) = names.next() else {
                stack.pop();
                continue;
            };
            let child = dir.join(&name);
            let name = name.to_string_lossy();
            let child_slash = if slash_dir.is_empty() {
                name.into_owned()
            } else {
                format!("{slash_dir}/{name}")
            };
            let child_meta = fs::symlink_metadata(&child)
                .map_err(|e| ZipError::io(child.display().to_string(), e))?;
            if let Some(names) = self.visit(&child, &child_slash, &child_meta)? {
                stack.push((child, child_slash, names.into_iter()));
            }
        }
        Ok(())
    }
}

/// Lists the files of the module rooted at `dir` the way the go command
/// does before zipping it, in lexical walk order.
///
/// Returns the candidate files (still to be checked with
/// [`check_files`]) and what was left out along the way: version control
/// directories (`.bzr`, `.git`, `.hg`, `.svn`), directories holding their
/// own `go.mod`, vendored packages and anything that is not a regular file
/// (including symbolic links, which are never followed). Non-UTF-8 names
/// are converted lossily and then fail the path checks. Fails if the tree
/// cannot be read.
pub fn list_dir(dir: &Path) -> Result<(Vec<DirFile>, Vec<FileError>), ZipError> {
    let lang = match File::open(dir.join("go.mod")) {
        Ok(file) => root_go_lang(file, MAX_GO_MOD),
        Err(_) => String::new(),
    };
    let mut lister = Lister {
        lang,
        files: Vec::new(),
        omitted: Vec::new(),
    };
    let root_meta =
        fs::symlink_metadata(dir).map_err(|e| ZipError::io(dir.display().to_string(), e))?;
    lister.walk(dir, &root_meta)?;
    Ok((lister.files, lister.omitted))
}

/// Checks the module rooted at `dir`: [`list_dir`] followed by
/// [`check_files`], with every reported path turned into a file system
/// path under `dir`. Omitted directories (nested modules, VCS directories)
/// appear once, not file by file.
///
/// Fails only if the tree cannot be read; whether the files make a valid
/// module zip is told by [`CheckedFiles::err`] on the result.
pub fn check_dir(dir: &Path) -> Result<CheckedFiles, ZipError> {
    let (files, omitted) = list_dir(dir)?;
    let mut checked = check_files(&files);
    let on_disk = |path: &str| -> String {
        if path == "." {
            dir.display().to_string()
        } else {
            dir.join(path).display().to_string()
        }
    };
    for path in &mut checked.valid {
        *path = on_disk(path);
    }
    checked.omitted.extend(omitted);
    for error in checked.omitted.iter_mut().chain(checked.invalid.iter_mut()) {
        error.path = on_disk(&error.path);
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, data: &str) {
        let full = root.join(path);
        fs::create_dir_all(full.parent().expect("has parent")).expect("mkdir");
        fs::write(full, data).expect("write");
    }

    fn omitted_paths(omitted: &[FileError]) -> Vec<(String, String)> {
        omitted
            .iter()
            .map(|e| (e.path.clone(), e.reason.to_string()))
            .collect()
    }

    #[test]
    fn list_dir_skips_vcs_nested_modules_and_irregular_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        write(root, "go.mod", "module example.com/m\n\ngo 1.21\n");
        write(root, "b.go", "package m\n");
        write(root, "a.go", "package m\n");
        write(root, ".git/config", "");
        write(root, "x/.hg/store", "");
        write(root, "sub/go.mod", "module example.com/m/sub\n");
        write(root, "sub/s.go", "");
        write(root, "vendor/modules.txt", "");
        write(root, "vendor/v/v.go", "");
        write(root, "vendor/v/w/w.go", "");
        write(root, "pkg/p.go", "");
        #[cfg(unix)]
        std::os::unix::fs::symlink("a.go", root.join("link.go")).expect("symlink");

        let (files, omitted) = list_dir(root).expect("list");
        let paths: Vec<&str> = files.iter().map(|f| f.path()).collect();
        assert_eq!(
            paths,
            ["a.go", "b.go", "go.mod", "pkg/p.go", "vendor/modules.txt"]
        );
        let mut want = vec![(
            ".git".to_string(),
            "directory is a version control repository".to_string(),
        )];
        #[cfg(unix)]
        want.push(("link.go".to_string(), "not a regular file".to_string()));
        want.extend([
            (
                "sub".to_string(),
                "directory is in another module".to_string(),
            ),
            (
                "vendor/v/v.go".to_string(),
                "file is in vendor directory".to_string(),
            ),
            (
                "vendor/v/w".to_string(),
                "file is in vendor directory".to_string(),
            ),
            (
                "vendor/v/w/w.go".to_string(),
                "file is in vendor directory".to_string(),
            ),
            (
                "x/.hg".to_string(),
                "directory is a version control repository".to_string(),
            ),
        ]);
        assert_eq!(omitted_paths(&omitted), want);
        assert_eq!(files[0].metadata().expect("meta").size, 10);
    }

    #[test]
    fn list_dir_uses_go_124_vendoring_rules() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        write(root, "go.mod", "module example.com/m\n\ngo 1.24\n");
        write(root, "vendor/modules.txt", "");
        write(root, "pkg/vendor/vendor.go", "");
        let (files, omitted) = list_dir(root).expect("list");
        let paths: Vec<&str> = files.iter().map(|f| f.path()).collect();
        assert_eq!(paths, ["go.mod", "pkg/vendor/vendor.go"]);
        assert_eq!(omitted[0].path, "vendor/modules.txt");
    }

    #[test]
    fn list_dir_fails_for_missing_directory() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = list_dir(&tmp.path().join("nope")).unwrap_err();
        assert!(matches!(err, ZipError::Io { .. }));
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn check_dir_reports_file_system_paths() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        write(root, "go.mod", "module example.com/m\n");
        write(root, "a.go", "");
        write(root, "A.go", "");
        write(root, "sub/go.mod", "module example.com/m/sub\n");
        let checked = check_dir(root).expect("check");
        assert_eq!(
            checked.valid,
            [
                root.join("A.go").display().to_string(),
                root.join("go.mod").display().to_string()
            ]
        );
        assert_eq!(checked.invalid.len(), 1);
        assert_eq!(
            checked.invalid[0].path,
            root.join("a.go").display().to_string()
        );
        assert_eq!(checked.omitted.len(), 1);
        assert_eq!(
            checked.omitted[0].path,
            root.join("sub").display().to_string()
        );
        assert!(checked.err().is_err());
    }
}
