//! Errors of module resolution, split by what a proxy should answer.

use crate::codehost::CodeError;

/// Why a module, version or query could not be resolved.
///
/// The split is by how a proxy must answer the go command:
///
/// - [`ResolveError::NotFound`] and [`ResolveError::InvalidVersion`] both
///   mean "this module has no such version". The go proxy protocol says a
///   server answers 404 or 410 when a module or version does not exist, and
///   the go command only falls through to the next entry of `GOPROXY` (for
///   example `direct`) on those two codes; any other status is reported as a
///   hard failure. A malformed or non-canonical version is just a version
///   that does not exist, and the go command's own checks on the direct path
///   would reject it the same way, so both map to 404 (see
///   [`ResolveError::http_status`]). They stay separate variants so callers
///   can log or cache them differently (an invalid version never becomes
///   valid; an unknown revision may appear later).
/// - [`ResolveError::Upstream`] is a failure talking to or reading the
///   repository; the answer is not known, so it must not be cached as a 404.
/// - [`ResolveError::BadModulePath`] means the module path and repository
///   root cannot belong together.
/// - [`ResolveError::Zip`] means the files at that version cannot form a
///   module zip (too large, bad names, ...).
/// - [`ResolveError::Refused`] means the repository holds, at that version,
///   something past a limit (see [`CodeError::Refused`]); like a zip that
///   cannot be built, that version can never exist here.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The revision, version or module does not exist (unknown revision,
    /// missing or mismatched go.mod at that revision, no matching version).
    #[error("{0}")]
    NotFound(VersionProblem),
    /// The version string is malformed, not canonical where it must be, or
    /// names a version the module cannot have (wrong major version, bad
    /// pseudo-version, `+incompatible` where not allowed, ...).
    #[error("{0}")]
    InvalidVersion(VersionProblem),
    /// The repository could not be read.
    #[error("module {module}: {source}")]
    Upstream {
        /// The module being resolved.
        module: String,
        /// What the code host reported.
        #[source]
        source: CodeError,
    },
    /// The module path cannot live in the repository it was mapped to.
    #[error("{reason}")]
    BadModulePath {
        /// The module path.
        module: String,
        /// The go command's wording of the problem.
        reason: String,
    },
    /// What the repository holds crosses a limit ([`CodeError::Refused`]).
    #[error("module {module}: {source}")]
    Refused {
        /// The module being resolved.
        module: String,
        /// The limit crossed, in the go command's or git's words.
        #[source]
        source: CodeError,
    },
    /// The module zip could not be built from the files at `version`.
    #[error("{module}@{version}: {source}")]
    Zip {
        /// The module path.
        module: String,
        /// The version being zipped.
        version: String,
        /// What the zip writer rejected.
        #[source]
        source: Box<modzip::zip::ZipError>,
    },
}

impl ResolveError {
    /// The HTTP status a module proxy should answer with: 404 for a missing
    /// or invalid version (so the go command may fall through to the next
    /// proxy), also for versions refused by a limit, 502 for repository
    /// failures, 500 for failures writing the zip.
    pub fn http_status(&self) -> u16 {
        match self {
            ResolveError::NotFound(_)
            | ResolveError::InvalidVersion(_)
            | ResolveError::BadModulePath { .. }
            | ResolveError::Refused { .. } => 404,
            ResolveError::Upstream { .. } => 502,
            // Bad names, collisions or sizes are permanent: that version can
            // never exist, so the client may fall through. Only a failure to
            // write the zip is the server's fault.
            ResolveError::Zip { source, .. } => match **source {
                modzip::zip::ZipError::Io { .. } | modzip::zip::ZipError::Writer { .. } => 500,
                _ => 404,
            },
        }
    }

    /// Reports whether the answer is "no such version/module" (404 class).
    pub fn is_not_found(&self) -> bool {
        self.http_status() == 404
    }
}

/// A problem with one version (or with the module, when `version` is
/// `None`), displayed the way the go command words module errors:
/// `path@version: invalid version: reason` or `module path: reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionProblem {
    /// The module path.
    pub module: String,
    /// The version or query concerned, if any.
    pub version: Option<String>,
    /// Whether the go command calls the version a pseudo-version in the
    /// message ("invalid pseudo-version").
    pub pseudo: bool,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for VersionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(version) => {
                let noun = if self.pseudo {
                    "pseudo-version"
                } else {
                    "version"
                };
                write!(
                    f,
                    "{}@{}: invalid {}: {}",
                    self.module, version, noun, self.reason
                )
            }
            None => write!(f, "module {}: {}", self.module, self.reason),
        }
    }
}
