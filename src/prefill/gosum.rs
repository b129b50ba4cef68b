//! go.sum files for `athens prefill`: reading them, checking versions
//! against them the way the go command does, and a [`Fetcher`] layer that
//! refuses a download that does not match, so that the stash stack above
//! it stores nothing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use modzip::module::Version;

use crate::fetch::{FetchError, FetchedModule, Fetcher, RevInfo};
use crate::sums::VersionSums;

/// The HTTP status of a checksum mismatch, as for the checksum database's
/// "SECURITY ERROR" (see [`crate::sumdb_client`]).
pub const MISMATCH_STATUS: u16 = 403;

/// The hashes of one or more go.sum files, keyed as the go command keys
/// them: `path version` for a zip, `path version/go.mod` for a go.mod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoSums {
    hashes: HashMap<Version, Vec<String>>,
    /// Keys in the order they were first read.
    order: Vec<Version>,
}

/// Why a go.sum file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum GoSumError {
    /// The file cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `path version hash`.
    #[error("{path}:{line}: malformed go.sum line {text:?}")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

/// What a go.sum says a version needs: its zip, or only its go.mod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SumKind {
    /// A `path version/go.mod` line.
    GoMod,
    /// A `path version` line.
    Zip,
}

impl GoSums {
    /// Adds the lines of the go.sum file at `path`.
    pub fn read_file(&mut self, path: &Path) -> Result<(), GoSumError> {
        let text = std::fs::read(path).map_err(|source| GoSumError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.add_text(&path.display().to_string(), &String::from_utf8_lossy(&text))
    }

    /// Adds the lines of go.sum text; `name` names it in errors. Blank
    /// lines are skipped; any other line must have exactly three fields,
    /// as the go command requires.
    pub fn add_text(&mut self, name: &str, text: &str) -> Result<(), GoSumError> {
        for (index, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                [] => continue,
                [path, version, hash] => {
                    let key = Version::new(*path, *version);
                    let list = self.hashes.entry(key.clone()).or_insert_with(|| {
                        self.order.push(key);
                        Vec::new()
                    });
                    if !list.iter().any(|h| h == hash) {
                        list.push(hash.to_string());
                    }
                }
                _ => {
                    return Err(GoSumError::Malformed {
                        path: name.to_string(),
                        line: index + 1,
                        text: line.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    /// Whether no line was read.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether any line names `module@version` (its zip or its go.mod).
    pub fn covers(&self, module: &str, version: &str) -> bool {
        self.hashes.contains_key(&Version::new(module, version))
            || self
                .hashes
                .contains_key(&Version::new(module, format!("{version}/go.mod")))
    }

    /// Every module version the lines name, with what they need of it
    /// (a version with both lines needs its zip), in file order.
    pub fn versions(&self) -> Vec<(Version, SumKind)> {
        let mut seen: HashMap<Version, usize> = HashMap::new();
        let mut out: Vec<(Version, SumKind)> = Vec::new();
        for key in &self.order {
            let (version, kind) = match key.version.strip_suffix("/go.mod") {
                Some(v) => (Version::new(key.path.clone(), v), SumKind::GoMod),
                None => (key.clone(), SumKind::Zip),
            };
            match seen.get(&version) {
                Some(&i) => out[i].1 = out[i].1.max(kind),
                None => {
                    seen.insert(version.clone(), out.len());
                    out.push((version, kind));
                }
            }
        }
        out
    }

    /// Checks the sums of `module@version` against the lines naming it,
    /// as the go command does: the first `h1:` line that differs before
    /// one that matches is a mismatch. Versions without lines pass.
    pub fn check(&self, module: &str, version: &str, sums: &VersionSums) -> Result<(), String> {
        let one = |key: Version, noun: &str, have: &str| -> Result<(), String> {
            for want in self.hashes.get(&key).into_iter().flatten() {
                if want == have {
                    return Ok(());
                }
                if want.starts_with("h1:") {
                    return Err(format!(
                        "{module}@{version}: verifying {noun}: checksum mismatch: downloaded {have}, go.sum {want}"
                    ));
                }
            }
            Ok(())
        };
        one(Version::new(module, version), "module", &sums.zip)?;
        one(
            Version::new(module, format!("{version}/go.mod")),
            "go.mod",
            &sums.go_mod,
        )
    }
}

/// A fetcher whose downloads must match the go.sum lines naming them: one
/// that does not is refused with [`FetchError::Verification`] (status
/// [`MISMATCH_STATUS`]), so nothing of it is stored.
pub struct GoSumCheckingFetcher {
    inner: Arc<dyn Fetcher>,
    sums: Arc<GoSums>,
}

impl GoSumCheckingFetcher {
    /// Checks what `inner` fetches against `sums`.
    pub fn new(inner: Arc<dyn Fetcher>, sums: Arc<GoSums>) -> Self {
        GoSumCheckingFetcher { inner, sums }
    }
}

#[async_trait]
impl Fetcher for GoSumCheckingFetcher {
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError> {
        let fetched = self.inner.fetch(module, version).await?;
        if !self.sums.covers(module, &fetched.version) {
            return Ok(fetched);
        }
        let resolved = fetched.version.clone();
        let go_mod = fetched.go_mod.clone();
        let zip_path = fetched.zip.path().to_path_buf();
        let sums = tokio::task::spawn_blocking(move || VersionSums::of_files(&go_mod, &zip_path))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|e| FetchError::other(module, &resolved, format!("hashing: {e}")))?;
        match self.sums.check(module, &resolved, &sums) {
            Ok(()) => Ok(fetched),
            Err(message) => Err(FetchError::Verification {
                module: module.to_string(),
                version: resolved,
                status: MISMATCH_STATUS,
                message,
            }),
        }
    }

    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError> {
        self.inner.list(module).await
    }

    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError> {
        self.inner.latest(module).await
    }

    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError> {
        self.inner.query(module, rev).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const B: &str = "h1:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=";

    fn sums(zip: &str, go_mod: &str) -> VersionSums {
        VersionSums {
            zip: zip.into(),
            go_mod: go_mod.into(),
        }
    }

    #[test]
    fn reads_lines_and_what_they_need() {
        let mut s = GoSums::default();
        s.add_text(
            "go.sum",
            &format!("a.com/x v1.0.0/go.mod {A}\n\nb.com/y v1.1.0 {A}\nb.com/y v1.1.0/go.mod {B}\na.com/x v1.0.0/go.mod {A}\n"),
        )
        .unwrap();
        assert_eq!(
            s.versions(),
            vec![
                (Version::new("a.com/x", "v1.0.0"), SumKind::GoMod),
                (Version::new("b.com/y", "v1.1.0"), SumKind::Zip),
            ]
        );
        assert!(s.covers("a.com/x", "v1.0.0"));
        assert!(!s.covers("a.com/x", "v1.0.1"));
        let err = s.add_text("other.sum", "a.com/x v1.0.0\n").unwrap_err();
        assert!(err.to_string().contains("other.sum:1"), "{err}");
    }

    #[test]
    fn checks_like_the_go_command() {
        let mut s = GoSums::default();
        s.add_text(
            "go.sum",
            &format!("m.com/a v1.0.0 {A}\nm.com/a v1.0.0/go.mod {B}\nm.com/b v1.0.0/go.mod {A}\n"),
        )
        .unwrap();
        assert!(s.check("m.com/a", "v1.0.0", &sums(A, B)).is_ok());
        let err = s.check("m.com/a", "v1.0.0", &sums(B, B)).unwrap_err();
        assert!(err.contains("verifying module: checksum mismatch"), "{err}");
        let err = s.check("m.com/a", "v1.0.0", &sums(A, A)).unwrap_err();
        assert!(err.contains("verifying go.mod"), "{err}");
        // Only the go.mod line: the zip is not checked.
        assert!(s.check("m.com/b", "v1.0.0", &sums(B, A)).is_ok());
        // Not named at all: nothing to check.
        assert!(s.check("m.com/c", "v1.0.0", &sums(A, A)).is_ok());
        // A later matching line does not excuse an earlier h1 mismatch.
        s.add_text("more.sum", &format!("m.com/b v1.0.0/go.mod {B}\n"))
            .unwrap();
        assert!(s.check("m.com/b", "v1.0.0", &sums(A, B)).is_err());
    }
}
