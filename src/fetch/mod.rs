//! Getting modules from outside: the [`Fetcher`] trait, implemented by the
//! GOPROXY-speaking [`UpstreamProxyFetcher`] and, through it, by whatever
//! "direct" fetcher is plugged in (the native VCS fetcher). Both honour
//! the one go environment of the server ([`go_env`]).

pub mod go_env;
pub mod gogetdir;
pub mod native;
pub mod upstream;

use std::path::Path;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use modzip::module::is_canonical_version;
pub use native::NativeFetcher;
pub use upstream::{UpstreamOptions, UpstreamProxyFetcher};

/// The JSON of `.info` and `@latest` responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevInfo {
    /// Canonical version.
    #[serde(rename = "Version")]
    pub version: String,
    /// Commit time, RFC 3339; empty when unknown (then left out of the
    /// JSON, which Go's decoder reads as the zero time, where `""` would
    /// fail to decode).
    #[serde(rename = "Time", default, skip_serializing_if = "String::is_empty")]
    pub time: String,
    /// Where the version came from (VCS, URL, ref, hash), passed through
    /// untouched.
    #[serde(rename = "Origin", default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<serde_json::Value>,
}

impl RevInfo {
    /// The JSON encoding served for `.info` and `@latest`.
    pub fn to_json(&self) -> Bytes {
        // Serializing strings and a JSON value cannot fail.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// A fetched zip waiting in a temporary file, deleted when dropped.
#[derive(Debug)]
pub struct FetchedZip {
    path: tempfile::TempPath,
    size: u64,
}

impl FetchedZip {
    /// Takes over a finished temporary file.
    pub fn from_temp_path(path: tempfile::TempPath) -> std::io::Result<Self> {
        let size = std::fs::metadata(&path)?.len();
        Ok(FetchedZip { path, size })
    }

    /// Writes `data` to a new temporary file in `dir` (or the system
    /// temporary directory).
    pub fn from_bytes(data: &[u8], dir: Option<&Path>) -> std::io::Result<Self> {
        use std::io::Write;
        let mut file = match dir {
            Some(dir) => tempfile::Builder::new()
                .prefix(".athens-zip-")
                .tempfile_in(dir)?,
            None => tempfile::Builder::new().prefix(".athens-zip-").tempfile()?,
        };
        file.write_all(data)?;
        file.flush()?;
        Self::from_temp_path(file.into_temp_path())
    }

    /// Where the zip is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Opens it for reading.
    pub async fn open(&self) -> std::io::Result<tokio::fs::File> {
        tokio::fs::File::open(&self.path).await
    }
}

/// Everything the proxy stores for one module version.
#[derive(Debug)]
pub struct FetchedModule {
    /// The canonical version the request resolved to.
    pub version: String,
    /// `.info` JSON for that version.
    pub info: Bytes,
    /// The `go.mod` file.
    pub go_mod: Bytes,
    /// The module zip.
    pub zip: FetchedZip,
}

fn at(module: &str, version: &str) -> String {
    if version.is_empty() {
        module.to_string()
    } else {
        format!("{module}@{version}")
    }
}

/// Why a fetch failed. Clone so one failure can be handed to every request
/// waiting on the same fetch.
#[derive(Debug, Clone, Error)]
pub enum FetchError {
    /// The module or version does not exist upstream (HTTP 404/410 or an
    /// unknown revision). The go command treats this as "try elsewhere".
    #[error("{}: not found: {reason}", at(module, version))]
    NotFound {
        /// Module path.
        module: String,
        /// Version or query; empty for module-wide requests.
        version: String,
        /// Upstream's explanation.
        reason: String,
    },
    /// GOPROXY is `off`.
    #[error("{}: module lookup disabled by GOPROXY=off", at(module, version))]
    Disabled {
        /// Module path.
        module: String,
        /// Version or query.
        version: String,
    },
    /// An upstream proxy failed (connection error or unexpected status).
    #[error("{}: {upstream}: {message}", at(module, version))]
    Upstream {
        /// Module path.
        module: String,
        /// Version or query.
        version: String,
        /// The upstream (URL without credentials).
        upstream: String,
        /// HTTP status, when one was received.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// Upstream answered with something that is not a valid answer.
    #[error("{}: invalid response from {upstream}: {message}", at(module, version))]
    InvalidResponse {
        /// Module path.
        module: String,
        /// Version or query.
        version: String,
        /// The upstream.
        upstream: String,
        /// What is wrong with it.
        message: String,
    },
    /// The module's go-import tag names a module proxy at `url`: the go
    /// command fetches such a module from there as from a GOPROXY entry.
    /// A direct fetcher answers this; the GOPROXY chain
    /// ([`UpstreamProxyFetcher`]) follows it. Anyone else treats it as not
    /// found, as the go command treats a repository it cannot fetch.
    #[error("{}: served by the module proxy at {url}", at(module, version))]
    ModuleProxy {
        /// Module path.
        module: String,
        /// Version or query.
        version: String,
        /// The module proxy's base URL, from the go-import tag.
        url: String,
    },
    /// The checksum database refused the download or could not vouch for
    /// it, so it must not be stored (see `crate::sumdb_client`). The
    /// message is the go command's and names the module version.
    #[error("{message}")]
    Verification {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The HTTP status to answer.
        status: u16,
        /// The go command's wording ("SECURITY ERROR" for a mismatch).
        message: String,
    },
    /// Any other failure (no direct fetcher configured, local I/O, ...).
    #[error("{}: {message}", at(module, version))]
    Other {
        /// Module path.
        module: String,
        /// Version or query.
        version: String,
        /// What went wrong.
        message: String,
    },
}

impl FetchError {
    /// Whether the error means the module or version does not exist (or
    /// lookups are off), which clients treat as "try the next source".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            FetchError::NotFound { .. }
                | FetchError::Disabled { .. }
                | FetchError::ModuleProxy { .. }
        )
    }

    /// Shorthand for [`FetchError::NotFound`].
    pub fn not_found(module: &str, version: &str, reason: impl Into<String>) -> Self {
        FetchError::NotFound {
            module: module.to_string(),
            version: version.to_string(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`FetchError::Other`].
    pub fn other(module: &str, version: &str, message: impl Into<String>) -> Self {
        FetchError::Other {
            module: module.to_string(),
            version: version.to_string(),
            message: message.into(),
        }
    }
}

/// A source of modules. Module paths given to it are valid and unescaped;
/// versions may be any query the go command sends to `.info` (canonical
/// versions, branch names, commit hashes, `v1.2`).
#[async_trait]
pub trait Fetcher: Send + Sync + 'static {
    /// Downloads `module` at `version` (resolving queries) and returns its
    /// canonical version, `.info`, `go.mod` and zip.
    async fn fetch(&self, module: &str, version: &str) -> Result<FetchedModule, FetchError>;

    /// Tagged (non-pseudo) versions of `module`, in any order.
    async fn list(&self, module: &str) -> Result<Vec<String>, FetchError>;

    /// What `@latest` means for `module`.
    async fn latest(&self, module: &str) -> Result<RevInfo, FetchError>;

    /// Resolves a query (branch, hash, partial or canonical version) to
    /// the canonical version's info, without downloading the module.
    async fn query(&self, module: &str, rev: &str) -> Result<RevInfo, FetchError>;
}
