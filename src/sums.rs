//! The `h1:` sums of stored versions: computing them, recording them
//! beside each stored version (see [`crate::storage::side`]) and reading
//! the record back.
//!
//! A record holds the two lines go.sum holds for the version, which are
//! also the checksum database's record for it:
//!
//! ```text
//! example.com/m v1.2.3 h1:<base64 of the zip's dirhash>
//! example.com/m v1.2.3/go.mod h1:<base64 of the go.mod's dirhash>
//! ```
//!
//! Two instances sharing a store that fetch different bytes for one
//! version both publish (only one copy of the version survives) and both
//! write a record; the record can then disagree with the stored version,
//! which `athens verify` reports as corrupt. That is the outcome wanted:
//! two fetches of one version giving different bytes is exactly what the
//! checksums are there to reveal.

use std::io::{Seek, Write};
use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use thiserror::Error;
use tokio::io::AsyncReadExt;

use crate::storage::{SideKey, Storage, StorageError};

/// The `h1:` sums of one module version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionSums {
    /// The zip's `h1:` hash.
    pub zip: String,
    /// The go.mod's `h1:` hash.
    pub go_mod: String,
}

/// Why sums could not be computed or a record read.
#[derive(Debug, Error)]
pub enum SumsError {
    /// Reading from storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The zip is not a module zip that can be hashed (damaged, truncated).
    #[error("{module}@{version}: hashing the zip: {message}")]
    Hash {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// What went wrong.
        message: String,
    },
    /// Spooling the zip to a temporary file failed.
    #[error("{module}@{version}: spooling the zip: {source}")]
    Spool {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stored record is not the two go.sum lines of the version.
    #[error("{module}@{version}: malformed checksum record: {reason}")]
    MalformedRecord {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl VersionSums {
    /// The go.sum lines of `module@version` with these sums.
    pub fn go_sum_lines(&self, module: &str, version: &str) -> String {
        format!(
            "{module} {version} {}\n{module} {version}/go.mod {}\n",
            self.zip, self.go_mod
        )
    }

    /// Parses the record of `module@version` written by
    /// [`VersionSums::go_sum_lines`]: exactly those two lines, in that
    /// order.
    pub fn parse(module: &str, version: &str, text: &[u8]) -> Result<VersionSums, SumsError> {
        let malformed = |reason: &str| SumsError::MalformedRecord {
            module: module.to_string(),
            version: version.to_string(),
            reason: reason.to_string(),
        };
        let text = std::str::from_utf8(text).map_err(|_| malformed("not UTF-8"))?;
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| malformed("no final newline"))?;
        let mut lines = body.split('\n');
        let (Some(zip_line), Some(mod_line), None) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(malformed("not exactly two lines"));
        };
        let field = |line: &str, expect_version: &str| -> Result<String, SumsError> {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(m), Some(v), Some(h), None)
                    if m == module && v == expect_version && is_h1(h) =>
                {
                    Ok(h.to_string())
                }
                _ => Err(malformed(&format!("unexpected line {line:?}"))),
            }
        };
        Ok(VersionSums {
            zip: field(zip_line, version)?,
            go_mod: field(mod_line, &format!("{version}/go.mod"))?,
        })
    }

    /// The sums of a version whose zip is the file at `zip_path`.
    /// Blocking: hashes the whole zip.
    pub fn of_files(go_mod: &[u8], zip_path: &Path) -> Result<VersionSums, String> {
        let file = std::fs::File::open(zip_path).map_err(|e| e.to_string())?;
        let zip =
            modzip::dirhash::hash_zip(std::io::BufReader::new(file)).map_err(|e| e.to_string())?;
        Ok(VersionSums {
            zip,
            go_mod: modzip::dirhash::hash_go_mod(go_mod),
        })
    }
}

/// Whether `hash` looks like an `h1:` hash: the prefix and 44 characters
/// of standard base64 (a SHA-256 digest).
fn is_h1(hash: &str) -> bool {
    use base64::Engine;
    hash.strip_prefix("h1:").is_some_and(|b64| {
        b64.len() == 44
            && base64::engine::general_purpose::STANDARD
                .decode(b64)
                .is_ok_and(|d| d.len() == 32)
    })
}

/// Writes the record of a stored version.
pub async fn record(
    storage: &dyn Storage,
    module: &str,
    version: &str,
    sums: &VersionSums,
) -> Result<(), StorageError> {
    let text = sums.go_sum_lines(module, version);
    storage
        .put_side(
            &SideKey::sums(module, version),
            &mut std::io::Cursor::new(text.into_bytes()),
        )
        .await
}

/// The record of `module@version`; `None` when there is none.
pub async fn recorded(
    storage: &dyn Storage,
    module: &str,
    version: &str,
) -> Result<Option<VersionSums>, SumsError> {
    match storage.get_side(&SideKey::sums(module, version)).await? {
        Some(text) => VersionSums::parse(module, version, &text).map(Some),
        None => Ok(None),
    }
}

/// Re-hashes a stored version: the go.mod in memory, the zip streamed to a
/// temporary file (in `spool_dir`, or the system's) and hashed from
/// there, so memory stays bounded whatever the zip's size.
pub async fn hash_stored(
    storage: &dyn Storage,
    module: &str,
    version: &str,
    spool_dir: Option<&Path>,
) -> Result<VersionSums, SumsError> {
    let go_mod: Bytes = storage.go_mod(module, version).await?;
    let mut zip = storage.zip(module, version).await?;
    let spool_err = |source: std::io::Error| SumsError::Spool {
        module: module.to_string(),
        version: version.to_string(),
        source,
    };
    let mut spool = match spool_dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    }
    .map_err(spool_err)?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = zip.reader.read(&mut buf).await.map_err(|e| {
            SumsError::Storage(StorageError::Io {
                op: "reading zip",
                path: format!("{module}@{version}").into(),
                source: e,
            })
        })?;
        if n == 0 {
            break;
        }
        spool.write_all(&buf[..n]).map_err(spool_err)?;
    }
    spool.rewind().map_err(spool_err)?;
    let zip_hash = tokio::task::spawn_blocking(move || {
        modzip::dirhash::hash_zip(std::io::BufReader::new(spool)).map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|join| Err(join.to_string()))
    .map_err(|message| SumsError::Hash {
        module: module.to_string(),
        version: version.to_string(),
        message,
    })?;
    Ok(VersionSums {
        zip: zip_hash,
        go_mod: modzip::dirhash::hash_go_mod(&go_mod),
    })
}

/// Told about each version the stash stores, with its sums (the private
/// checksum log appends it).
#[async_trait]
pub trait StoredObserver: Send + Sync + 'static {
    /// `module@version` was stored with `sums`. Failures are the
    /// observer's to log: the version is stored and served regardless.
    async fn stored(&self, module: &str, version: &str, sums: &VersionSums);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn sums() -> VersionSums {
        VersionSums {
            zip: modzip::dirhash::hash_go_mod(b"zip stand-in"),
            go_mod: modzip::dirhash::hash_go_mod(b"module example.com/m\n"),
        }
    }

    #[test]
    fn records_round_trip_and_malformed_ones_are_refused() {
        let text = sums().go_sum_lines("example.com/m", "v1.0.0");
        assert_eq!(
            VersionSums::parse("example.com/m", "v1.0.0", text.as_bytes()).unwrap(),
            sums()
        );
        let wrong_version = sums().go_sum_lines("example.com/m", "v1.0.1");
        let swapped = {
            let mut lines: Vec<&str> = text.lines().collect();
            lines.swap(0, 1);
            format!("{}\n", lines.join("\n"))
        };
        for bad in [
            wrong_version.as_str(),
            swapped.as_str(),
            text.trim_end(),
            "",
            "example.com/m v1.0.0 h1:short\nexample.com/m v1.0.0/go.mod h1:short\n",
        ] {
            assert!(
                VersionSums::parse("example.com/m", "v1.0.0", bad.as_bytes()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn records_go_with_their_version() {
        let storage = MemoryStorage::new();
        let err = record(&storage, "example.com/m", "v1.0.0", &sums())
            .await
            .unwrap_err();
        assert!(err.is_not_found(), "{err}");
        storage
            .save(
                "example.com/m",
                "v1.0.0",
                Bytes::from_static(b"module example.com/m\n"),
                &mut &b"zip"[..],
                Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
        record(&storage, "example.com/m", "v1.0.0", &sums())
            .await
            .unwrap();
        assert_eq!(
            recorded(&storage, "example.com/m", "v1.0.0").await.unwrap(),
            Some(sums())
        );
        storage.delete("example.com/m", "v1.0.0").await.unwrap();
        assert_eq!(
            recorded(&storage, "example.com/m", "v1.0.0").await.unwrap(),
            None
        );
    }
}
