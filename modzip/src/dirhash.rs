//! The `h1:` hashes of module content recorded in go.sum files and the
//! checksum database.
//!
//! An `h1:` hash is `"h1:"` followed by the standard base64 encoding of the
//! SHA-256 of a summary text with one line per file, in byte order of the
//! file names: the lowercase hex SHA-256 of the file's content, two spaces,
//! the name, and a newline. For a module zip the names are the full entry
//! names (`path@version/file`); for a `go.mod` alone the single name is
//! `go.mod`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::zip::read::{entry_error, stream_size, Archive};
use crate::zip::{clean_path, ZipError};

/// Failure to compute a hash.
#[derive(Debug, Clone, Error)]
pub enum HashError {
    /// A file name contains a newline, which the summary format cannot hold.
    #[error("file name {name:?} contains a newline, which hashing does not support")]
    NewlineInName {
        /// The offending name.
        name: String,
    },
    /// A file could not be opened or read.
    #[error("{name}: {source}")]
    Io {
        /// The file (its hashed name, or its path on disk).
        name: String,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// [`hash_dir`] was given something that is not a directory.
    #[error("{} is not a directory", .path.display())]
    NotADirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The zip archive could not be read, or an entry's data is corrupt.
    #[error(transparent)]
    Zip(#[from] ZipError),
}

impl HashError {
    fn io(name: impl Into<String>, source: io::Error) -> Self {
        HashError::Io {
            name: name.into(),
            source: Arc::new(source),
        }
    }
}

/// SHA-256 of everything `reader` yields.
fn sha256_of(reader: &mut dyn Read) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// Builds the `h1:` hash from file names (raw bytes) and a function giving
/// the SHA-256 of each named file's content. Names are sorted first; a
/// repeated name contributes a line each time.
fn summarize<N: AsRef<[u8]>>(
    mut names: Vec<N>,
    mut digest: impl FnMut(&N) -> Result<[u8; 32], HashError>,
) -> Result<String, HashError> {
    names.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
    let mut summary = Sha256::new();
    for name in &names {
        let bytes = name.as_ref();
        if bytes.contains(&b'\n') {
            return Err(HashError::NewlineInName { name: lossy(bytes) });
        }
        let file_digest = digest(name)?;
        let mut hex = [0u8; 64];
        for (i, byte) in file_digest.iter().enumerate() {
            hex[2 * i] = HEX_DIGITS[usize::from(byte >> 4)];
            hex[2 * i + 1] = HEX_DIGITS[usize::from(byte & 0xf)];
        }
        summary.update(hex);
        summary.update(b"  ");
        summary.update(bytes);
        summary.update(b"\n");
    }
    Ok(format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(summary.finalize())
    ))
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Computes the `h1:` hash of the files `names`, reading each through
/// `open`. The order of `names` does not matter.
pub fn hash1(
    names: &[String],
    mut open: impl FnMut(&str) -> io::Result<Box<dyn Read>>,
) -> Result<String, HashError> {
    summarize(names.to_vec(), |name: &String| {
        let mut reader = open(name).map_err(|e| HashError::io(name.as_str(), e))?;
        sha256_of(&mut reader).map_err(|e| HashError::io(name.as_str(), e))
    })
}

/// Computes the `h1:` hash of a `go.mod` file's content, as recorded on the
/// `path version/go.mod` lines of go.sum.
pub fn hash_go_mod(data: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(data).into();
    // Cannot fail: the only name has no newline and the digest is at hand.
    summarize(vec!["go.mod"], |_| Ok(digest)).unwrap_or_default()
}

/// Computes the `h1:` hash of a module zip: every entry (directories
/// included, as empty files) under its full name. Entry data is verified
/// against its declared size and CRC-32 while hashing. When a name occurs
/// twice, both lines use the content of the last entry with that name.
pub fn hash_zip<R: Read + Seek>(mut reader: R) -> Result<String, HashError> {
    let size = stream_size(&mut reader)?;
    let mut archive = Archive::open(reader, size)?;
    let mut last_index: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut names = Vec::with_capacity(archive.entries.len());
    for (index, entry) in archive.entries.iter().enumerate() {
        names.push(entry.name.clone());
        last_index.insert(entry.name.clone(), index);
    }
    summarize(names, |name: &Vec<u8>| {
        let index = last_index
            .get(name)
            .copied()
            .ok_or_else(|| HashError::io(lossy(name), io::Error::from(io::ErrorKind::NotFound)))?;
        let declared = archive.entries[index].uncompressed_size;
        let mut entry = archive.open_entry(index)?;
        sha256_of(&mut entry).map_err(|e| HashError::Zip(entry_error(&lossy(name), declared, e)))
    })
}

/// Lists the files below `dir` (anything that is not a directory, symbolic
/// links included) as slash-separated names under `prefix`, together with
/// their location on disk.
fn walk_files(dir: &Path, prefix: &str) -> Result<Vec<(Vec<u8>, PathBuf)>, HashError> {
    let meta =
        fs::symlink_metadata(dir).map_err(|e| HashError::io(dir.display().to_string(), e))?;
    if !meta.is_dir() {
        return Err(HashError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let mut files = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), Vec::<u8>::new())];
    while let Some((fs_dir, rel_dir)) = pending.pop() {
        let listing =
            fs::read_dir(&fs_dir).map_err(|e| HashError::io(fs_dir.display().to_string(), e))?;
        for item in listing {
            let item = item.map_err(|e| HashError::io(fs_dir.display().to_string(), e))?;
            let fs_path = item.path();
            let mut rel = rel_dir.clone();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(&os_bytes(&item.file_name()));
            let meta = fs::symlink_metadata(&fs_path)
                .map_err(|e| HashError::io(fs_path.display().to_string(), e))?;
            if meta.is_dir() {
                pending.push((fs_path, rel));
            } else {
                let mut joined = prefix.as_bytes().to_vec();
                if !joined.is_empty() {
                    joined.push(b'/');
                }
                joined.extend_from_slice(&rel);
                files.push((clean_path(&joined), fs_path));
            }
        }
    }
    Ok(files)
}

#[cfg(unix)]
fn os_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    name.as_bytes().to_vec()
}

#[cfg(not(unix))]
fn os_bytes(name: &std::ffi::OsStr) -> Vec<u8> {
    name.to_string_lossy().into_owned().into_bytes()
}

/// Lists the files below `dir` the way [`hash_dir`] names them: relative
/// slash-separated paths joined to `prefix` and cleaned, directories left
/// out, symbolic links listed as files. The order is unspecified.
pub fn dir_files(dir: &Path, prefix: &str) -> Result<Vec<String>, HashError> {
    Ok(walk_files(dir, prefix)?
        .into_iter()
        .map(|(name, _)| lossy(&name))
        .collect())
}

/// Computes the `h1:` hash of the files below `dir`, named as if `dir`
/// were the directory `prefix` (normally `path@version`). Symbolic links
/// are followed when reading, so one pointing at a directory or nowhere is
/// an error.
pub fn hash_dir(dir: &Path, prefix: &str) -> Result<String, HashError> {
    let files: HashMap<Vec<u8>, PathBuf> = walk_files(dir, prefix)?.into_iter().collect();
    let names: Vec<Vec<u8>> = files.keys().cloned().collect();
    summarize(names, |name: &Vec<u8>| {
        let path = files
            .get(name)
            .ok_or_else(|| HashError::io(lossy(name), io::Error::from(io::ErrorKind::NotFound)))?;
        let mut file =
            File::open(path).map_err(|e| HashError::io(path.display().to_string(), e))?;
        sha256_of(&mut file).map_err(|e| HashError::io(path.display().to_string(), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::Version;
    use crate::zip::test_util::{raw_zip, RawEntry};
    use crate::zip::{create, create_from_dir, MemFile};
    use std::io::Cursor;
    use std::process::Command;

    /// The reference value computed by shell tools, as the format defines it:
    /// `sha256sum` lines of the files, hashed again and base64-encoded.
    fn shell_h1(dir: &Path, names: &[&str]) -> String {
        let list = names.join(" ");
        let script = format!("sha256sum {list} | sha256sum | cut -d' ' -f1 | xxd -r -p | base64");
        let out = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .output()
            .expect("run shell");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("h1:{}", String::from_utf8_lossy(&out.stdout).trim())
    }

    fn have_shell_tools() -> bool {
        Command::new("sh")
            .arg("-c")
            .arg("command -v sha256sum && command -v xxd && command -v base64")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn go_mod_hash_known_values() {
        // Computed with: printf 'module example.com/m\n' > go.mod
        //   sha256sum go.mod | sha256sum | cut -d' ' -f1 | xxd -r -p | base64
        assert_eq!(
            hash_go_mod(b"module example.com/m\n"),
            "h1:flS2VctbRrTv+sBE+VKgxx6hlkMGPVz9MGOmzMYFg3k="
        );
        // The empty file, computed the same way from `: > go.mod`.
        assert_eq!(
            hash_go_mod(b""),
            "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY="
        );
        // The synthesized go.mod of golang.org/x/text v0.3.0, as every go.sum
        // that depends on it records.
        assert_eq!(
            hash_go_mod(b"module golang.org/x/text\n"),
            "h1:NqM8EUOU14njkJ3fqMW+pc6Ldnwhi/IjpwHt7yyuwOQ="
        );
    }

    #[test]
    fn hash1_matches_shell_tools() {
        if !have_shell_tools() {
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        fs::write(root.join("go.mod"), "module example.com/m\n").expect("write");
        fs::write(root.join("b.go"), "package m\n").expect("write");
        fs::write(root.join("a.txt"), "hello\n").expect("write");
        let want = shell_h1(root, &["a.txt", "b.go", "go.mod"]);
        assert_eq!(
            hash_go_mod(b"module example.com/m\n"),
            shell_h1(root, &["go.mod"])
        );
        let names = vec![
            "go.mod".to_string(),
            "b.go".to_string(),
            "a.txt".to_string(),
        ];
        let dir = root.to_path_buf();
        let got = hash1(&names, |name| {
            Ok(Box::new(File::open(dir.join(name))?) as Box<dyn Read>)
        })
        .expect("hash");
        assert_eq!(got, want);
        assert_eq!(hash_dir(root, "").expect("hash dir"), want);
    }

    #[test]
    fn hash1_rejects_newlines_and_reports_open_errors() {
        let err = hash1(&["a\nb".to_string()], |_| {
            Ok(Box::new(io::empty()) as Box<dyn Read>)
        })
        .unwrap_err();
        assert!(matches!(err, HashError::NewlineInName { .. }));
        let err = hash1(&["gone".to_string()], |_| {
            Err(io::Error::from(io::ErrorKind::NotFound))
        })
        .unwrap_err();
        assert!(
            matches!(&err, HashError::Io { name, .. } if name == "gone"),
            "{err}"
        );
    }

    #[test]
    fn hash_zip_equals_hash_dir_with_prefix() {
        let version = Version::new("example.com/m", "v1.0.0");
        let files = vec![
            MemFile::new("go.mod", "module example.com/m\n"),
            MemFile::new("m.go", "package m\n"),
            MemFile::new("sub/x.go", "package sub\n"),
        ];
        let zip = create(Cursor::new(Vec::new()), &version, &files)
            .expect("create")
            .into_inner();
        let from_zip = hash_zip(Cursor::new(&zip)).expect("hash zip");

        let tmp = tempfile::tempdir().expect("tempdir");
        crate::zip::unzip(tmp.path(), &version, Cursor::new(&zip)).expect("unzip");
        let from_dir = hash_dir(tmp.path(), "example.com/m@v1.0.0").expect("hash dir");
        assert_eq!(from_zip, from_dir);

        let mut names = dir_files(tmp.path(), "example.com/m@v1.0.0").expect("list");
        names.sort();
        assert_eq!(
            names,
            [
                "example.com/m@v1.0.0/go.mod",
                "example.com/m@v1.0.0/m.go",
                "example.com/m@v1.0.0/sub/x.go"
            ]
        );

        // The zip of a directory hashes like the directory itself.
        let again = create_from_dir(Cursor::new(Vec::new()), &version, tmp.path())
            .expect("create")
            .into_inner();
        assert_eq!(hash_zip(Cursor::new(&again)).expect("hash"), from_zip);

        if have_shell_tools() {
            let prefixed = tempfile::tempdir().expect("tempdir");
            let module_dir = prefixed.path().join("example.com/m@v1.0.0");
            fs::create_dir_all(&module_dir).expect("mkdir");
            crate::zip::unzip(&module_dir, &version, Cursor::new(&zip)).expect("unzip");
            let want = shell_h1(
                prefixed.path(),
                &[
                    "example.com/m@v1.0.0/go.mod",
                    "example.com/m@v1.0.0/m.go",
                    "example.com/m@v1.0.0/sub/x.go",
                ],
            );
            assert_eq!(from_zip, want);
        }
    }

    #[test]
    fn hash_zip_counts_directories_and_duplicates_like_go() {
        let plain = raw_zip(&[RawEntry::new("m@v1/a", "x")]);
        let with_dir = raw_zip(&[RawEntry::new("m@v1/", ""), RawEntry::new("m@v1/a", "x")]);
        let empty_digest: [u8; 32] = Sha256::digest(b"").into();
        let x_digest: [u8; 32] = Sha256::digest(b"x").into();
        let want = summarize(vec!["m@v1/", "m@v1/a"], |name| {
            Ok(if name.ends_with('/') {
                empty_digest
            } else {
                x_digest
            })
        })
        .expect("summary");
        assert_eq!(hash_zip(Cursor::new(with_dir)).expect("hash"), want);
        assert_ne!(hash_zip(Cursor::new(plain)).expect("hash"), want);

        let duplicated = raw_zip(&[
            RawEntry::new("m@v1/a", "first"),
            RawEntry::new("m@v1/a", "last"),
        ]);
        let last: [u8; 32] = Sha256::digest(b"last").into();
        let want = summarize(vec!["m@v1/a", "m@v1/a"], |_| Ok(last)).expect("summary");
        assert_eq!(hash_zip(Cursor::new(duplicated)).expect("hash"), want);

        let mut corrupt = RawEntry::new("m@v1/a", "abc");
        corrupt.crc = Some(7);
        let err = hash_zip(Cursor::new(raw_zip(&[corrupt]))).unwrap_err();
        assert!(
            matches!(err, HashError::Zip(ZipError::Checksum { .. })),
            "{err}"
        );
        assert!(matches!(
            hash_zip(Cursor::new(b"junk".to_vec())).unwrap_err(),
            HashError::Zip(ZipError::Format { .. })
        ));
    }

    #[test]
    fn hash_dir_rejects_non_directories() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let file = tmp.path().join("f");
        fs::write(&file, "x").expect("write");
        assert!(matches!(
            hash_dir(&file, "p").unwrap_err(),
            HashError::NotADirectory { .. }
        ));
        assert!(matches!(
            hash_dir(&tmp.path().join("missing"), "p").unwrap_err(),
            HashError::Io { .. }
        ));
    }

    #[cfg(unix)]
    #[test]
    fn hash_dir_follows_file_symlinks_and_fails_on_dangling_ones() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        fs::write(root.join("a"), "data").expect("write");
        std::os::unix::fs::symlink("a", root.join("b")).expect("symlink");
        let data: [u8; 32] = Sha256::digest(b"data").into();
        let want = summarize(vec!["p/a", "p/b"], |_| Ok(data)).expect("summary");
        assert_eq!(hash_dir(root, "p").expect("hash"), want);
        std::os::unix::fs::symlink("missing", root.join("c")).expect("symlink");
        assert!(hash_dir(root, "p").is_err());
    }
}
