//! `athens hash ZIP`: the `h1:` hash the go command would record in go.sum
//! for a module zip.

use std::fs::File;
use std::path::Path;

use modzip::dirhash::{self, HashError};

/// Why a zip could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashCommandError {
    /// The file could not be opened.
    #[error("opening {path}: {source}")]
    Open {
        /// The zip path.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a readable zip archive.
    #[error("hashing {path}: {source}")]
    Hash {
        /// The zip path.
        path: String,
        /// The underlying error.
        source: HashError,
    },
}

impl HashCommandError {
    /// Whether the caller's input is at fault: a missing file or one that
    /// is not a zip.
    pub fn is_bad_input(&self) -> bool {
        match self {
            HashCommandError::Open { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
            ),
            HashCommandError::Hash { .. } => true,
        }
    }
}

/// Hashes the zip file at `path`.
pub fn hash_zip_file(path: &Path) -> Result<String, HashCommandError> {
    let file = File::open(path).map_err(|source| HashCommandError::Open {
        path: path.display().to_string(),
        source,
    })?;
    dirhash::hash_zip(file).map_err(|source| HashCommandError::Hash {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_missing_and_non_zip_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = hash_zip_file(&dir.path().join("absent.zip")).unwrap_err();
        assert!(missing.is_bad_input());
        let junk = dir.path().join("junk.zip");
        std::fs::write(&junk, b"not a zip at all").unwrap();
        let err = hash_zip_file(&junk).unwrap_err();
        assert!(err.is_bad_input());
        assert!(err.to_string().contains("junk.zip"), "{err}");
    }
}
