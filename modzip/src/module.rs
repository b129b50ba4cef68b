//! Module paths, import paths, file paths and module versions: validation,
//! the case-escaping used in proxy URLs and cache directories, and the
//! major-version suffix rules (`/v2`, `gopkg.in/x.v2`), all with exactly the
//! go command's rules.
//!
//! Escaping: file systems and web servers cannot be trusted to keep
//! `rsc.io/QUOTE` and `rsc.io/quote` apart, so the escaped form replaces each
//! upper-case ASCII letter by `!` and the lower-case letter
//! (`github.com/Azure/x` → `github.com/!azure/x`). Valid paths never contain
//! `!`, so the mapping is reversible.

use std::cmp::Ordering;
use std::fmt;

use thiserror::Error;

use crate::semver;

/// A module path and version pair, both in plain (unescaped) form.
///
/// The version is normally a canonical semantic version, but it may be empty
/// (the main module, or a directory replacement) or `none`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Version {
    /// Module path, such as `golang.org/x/text` or `rsc.io/quote/v3`.
    pub path: String,
    /// Version, such as `v1.2.3`; may be empty.
    pub version: String,
}

impl Version {
    /// Builds a pair from anything string-like.
    pub fn new(path: impl Into<String>, version: impl Into<String>) -> Self {
        Version {
            path: path.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for Version {
    /// Writes `path@version`, or only the path when the version is empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.version.is_empty() {
            f.write_str(&self.path)
        } else {
            write!(f, "{}@{}", self.path, self.version)
        }
    }
}

/// Which set of rules a path was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// A module path ([`check_path`]): strictest.
    Module,
    /// A package import path ([`check_import_path`]).
    Import,
    /// A slash-separated file path inside a module ([`check_file_path`]).
    File,
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::Module => "module",
            PathKind::Import => "import",
            PathKind::File => "file",
        })
    }
}

/// What is wrong with a path (or with one element of it).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathProblem {
    /// The path is the empty string.
    #[error("the path is empty")]
    Empty,
    /// Module and import paths may not start with `-`.
    #[error("it starts with a dash")]
    LeadingDash,
    /// Two slashes in a row.
    #[error("it contains a double slash")]
    DoubleSlash,
    /// The path ends with `/`.
    #[error("it ends with a slash")]
    TrailingSlash,
    /// An element between slashes is empty (the path starts with `/`).
    #[error("it has an empty path element")]
    EmptyElement,
    /// An element consists only of dots, like `.` or `..`.
    #[error("path element {0:?} consists only of dots")]
    DotsOnlyElement(String),
    /// A module path element starts with `.`.
    #[error("a path element starts with a dot")]
    LeadingDot,
    /// An element ends with `.`.
    #[error("a path element ends with a dot")]
    TrailingDot,
    /// A character not allowed for this kind of path.
    #[error("character {0:?} is not allowed")]
    InvalidChar(char),
    /// The part of an element before its first dot is a reserved device name
    /// on Windows (`CON`, `nul`, `Com1`, ...).
    #[error("{0:?} is a reserved name on Windows and cannot be a path element")]
    WindowsReservedName(String),
    /// The part of an element before its first dot ends in `~` and digits,
    /// which could collide with a Windows 8.3 short name such as `GO~1`.
    #[error("a path element ends in a tilde followed by digits, like a Windows short name")]
    WindowsShortName,
    /// A module path starts with `/`.
    #[error("it starts with a slash")]
    LeadingSlash,
    /// The first element of a module path (a domain name) has no dot.
    #[error("the first path element has no dot")]
    MissingDotInFirstElement,
    /// The first element of a module path starts with `-`.
    #[error("the first path element starts with a dash")]
    LeadingDashInFirstElement,
    /// The first element of a module path allows only `a-z 0-9 - .`.
    #[error("character {0:?} is not allowed in the first path element")]
    InvalidCharInFirstElement(char),
    /// The final element looks like a major version suffix but is not a
    /// valid one (`/v1`, `/v0`, `/v02`, `/v2.1`, or a gopkg.in path without
    /// `.vN`).
    #[error("its major version suffix is invalid")]
    InvalidMajorVersionSuffix,
}

/// A module, import or file path that breaks the naming rules.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed {kind} path {path:?}: {problem}")]
pub struct PathError {
    /// Which rules were applied.
    pub kind: PathKind,
    /// The rejected path.
    pub path: String,
    /// What was wrong.
    pub problem: PathProblem,
}

/// A module path and version that do not belong together, or an invalid
/// version.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModuleError {
    /// The module path itself is malformed.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The version is not a semantic version.
    #[error("{path}@{version}: invalid version: not a semantic version")]
    NotSemver {
        /// The module path.
        path: String,
        /// The rejected version.
        version: String,
    },
    /// The version's major version does not match the path's major suffix
    /// (for instance `v2.0.0` for a path without `/v2`).
    #[error("{}", describe_major_mismatch(path, version, expected, found))]
    MajorMismatch {
        /// The module path, or "" when only a path suffix was checked.
        path: String,
        /// The rejected version.
        version: String,
        /// What the path allows: `v0 or v1`, `v2`, ...
        expected: String,
        /// The version's actual major version ("" when it has none).
        found: String,
    },
}

fn describe_major_mismatch(path: &str, version: &str, expected: &str, found: &str) -> String {
    if path.is_empty() {
        format!("version {version:?} invalid: should be {expected}, not {found}")
    } else {
        format!("{path}@{version}: invalid version: should be {expected}, not {found}")
    }
}

/// Failure to escape or unescape a module path or version.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeError {
    /// The module path to escape is invalid.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The version cannot be escaped: it is not a valid file name element,
    /// or it contains `!`.
    #[error("version {version:?} cannot be escaped: it is not a valid file name or contains '!'")]
    DisallowedVersion {
        /// The rejected version.
        version: String,
    },
    /// The escaped module path uses `!` wrongly, contains an upper-case
    /// letter or a non-ASCII character.
    #[error("invalid escaped module path {escaped:?}")]
    MalformedEscapedPath {
        /// The rejected escaped path.
        escaped: String,
    },
    /// The escaped module path decodes to an invalid module path.
    #[error("invalid escaped module path {escaped:?}: {source}")]
    InvalidUnescapedPath {
        /// The escaped input.
        escaped: String,
        /// Why the decoded path is invalid.
        source: PathError,
    },
    /// The escaped version uses `!` wrongly, contains an upper-case letter
    /// or a non-ASCII character.
    #[error("invalid escaped version {escaped:?}")]
    MalformedEscapedVersion {
        /// The rejected escaped version.
        escaped: String,
    },
    /// The escaped version decodes to something that is not a valid file
    /// name element.
    #[error("invalid escaped version {version:?}: {problem}")]
    InvalidUnescapedVersion {
        /// The decoded version.
        version: String,
        /// Why it is not acceptable.
        problem: PathProblem,
    },
}

/// Characters allowed in the first element of a module path: a lower-case
/// domain name.
fn first_element_char_ok(c: char) -> bool {
    c == '-' || c == '.' || c.is_ascii_digit() || c.is_ascii_lowercase()
}

/// Characters allowed in module path elements: ASCII letters, digits and
/// `- . _ ~`. Characters such as `+` or `%` would mean something else in URLs.
fn module_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Import paths additionally allow `+` (historically used for names like
/// `g++`).
fn import_char_ok(c: char) -> bool {
    module_char_ok(c) || c == '+'
}

/// File names allow any Unicode letter, ASCII digits, space and the
/// punctuation that is harmless in shells and on Windows and macOS.
fn file_char_ok(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!#$%&()+,-.=@[]^_{}~ ".contains(c);
    }
    is_unicode_letter(c)
}

/// Whether `c` is in Unicode general category L (Lu, Ll, Lt, Lm, Lo), using
/// the same Unicode version as the Go toolchain we mirror. `char::is_alphabetic`
/// is broader (it includes marks and letter numbers), so it cannot be used.
fn is_unicode_letter(c: char) -> bool {
    let c = u32::from(c);
    LETTER_RANGES
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                Ordering::Less
            } else if lo > c {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        })
        .is_ok()
}

/// Device names Windows reserves in every directory, whatever the case and
/// whatever extension follows.
const WINDOWS_RESERVED_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

fn check_element(elem: &str, kind: PathKind) -> Result<(), PathProblem> {
    if elem.is_empty() {
        return Err(PathProblem::EmptyElement);
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(PathProblem::DotsOnlyElement(elem.to_string()));
    }
    if kind == PathKind::Module && elem.starts_with('.') {
        return Err(PathProblem::LeadingDot);
    }
    if elem.ends_with('.') {
        return Err(PathProblem::TrailingDot);
    }
    let char_ok = match kind {
        PathKind::Module => module_char_ok,
        PathKind::Import => import_char_ok,
        PathKind::File => file_char_ok,
    };
    if let Some(bad) = elem.chars().find(|&c| !char_ok(c)) {
        return Err(PathProblem::InvalidChar(bad));
    }
    // Windows ignores everything from the first dot on when deciding whether
    // a name is a device ("nul.txt" is still NUL).
    let stem = elem.split('.').next().unwrap_or(elem);
    // Every reserved name has three or four letters.
    if (3..=4).contains(&stem.len())
        && WINDOWS_RESERVED_NAMES
            .iter()
            .any(|name| name.eq_ignore_ascii_case(stem))
    {
        return Err(PathProblem::WindowsReservedName(stem.to_string()));
    }
    // Short names only matter where paths become directories the go command
    // creates (module and import paths), not for files inside a module.
    if kind != PathKind::File {
        if let Some(tilde) = stem.rfind('~') {
            let digits = &stem[tilde + 1..];
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PathProblem::WindowsShortName);
            }
        }
    }
    Ok(())
}

fn check_general_path(path: &str, kind: PathKind) -> Result<(), PathProblem> {
    if path.is_empty() {
        return Err(PathProblem::Empty);
    }
    if kind != PathKind::File && path.starts_with('-') {
        return Err(PathProblem::LeadingDash);
    }
    if path.contains("//") {
        return Err(PathProblem::DoubleSlash);
    }
    if path.ends_with('/') {
        return Err(PathProblem::TrailingSlash);
    }
    path.split('/')
        .try_for_each(|elem| check_element(elem, kind))
}

fn check_module_path_rules(path: &str) -> Result<(), PathProblem> {
    check_general_path(path, PathKind::Module)?;
    let first = path.split('/').next().unwrap_or("");
    if first.is_empty() {
        return Err(PathProblem::LeadingSlash);
    }
    if !first.contains('.') {
        return Err(PathProblem::MissingDotInFirstElement);
    }
    if first.starts_with('-') {
        return Err(PathProblem::LeadingDashInFirstElement);
    }
    if let Some(bad) = first.chars().find(|&c| !first_element_char_ok(c)) {
        return Err(PathProblem::InvalidCharInFirstElement(bad));
    }
    if split_path_version(path).is_none() {
        return Err(PathProblem::InvalidMajorVersionSuffix);
    }
    Ok(())
}

/// Checks a module path.
///
/// A module path is a valid import path ([`check_import_path`]) that also
/// satisfies: the first element is a lower-case domain name (`a-z`, `0-9`,
/// `-`, `.`, with at least one dot and no leading dash); no element starts
/// with a dot; no `+`; and a final `/vN` element is a valid major version
/// suffix (N ≥ 2, no leading zero, no dots), or for `gopkg.in/` paths the
/// path ends in a valid `.vN`.
///
/// This is `module.CheckPath` of golang.org/x/mod, which the go command and
/// proxies apply before serving anything for a path.
///
/// ```
/// use modzip::module::{check_path, PathProblem};
///
/// assert!(check_path("github.com/Azure/azure-sdk-for-go/v68").is_ok());
/// assert!(check_path("gopkg.in/yaml.v3").is_ok());
/// // The first element must look like a domain name...
/// let err = check_path("localhost/x").unwrap_err();
/// assert_eq!(err.problem, PathProblem::MissingDotInFirstElement);
/// let err = check_path("Example.com/x").unwrap_err();
/// assert_eq!(err.problem, PathProblem::InvalidCharInFirstElement('E'));
/// // ...and a major version suffix must be /v2 or above.
/// let err = check_path("example.com/m/v1").unwrap_err();
/// assert_eq!(err.problem, PathProblem::InvalidMajorVersionSuffix);
/// assert_eq!(
///     err.to_string(),
///     r#"malformed module path "example.com/m/v1": its major version suffix is invalid"#
/// );
/// ```
pub fn check_path(path: &str) -> Result<(), PathError> {
    check_module_path_rules(path).map_err(|problem| PathError {
        kind: PathKind::Module,
        path: path.to_string(),
        problem,
    })
}

/// Checks a package import path.
///
/// An import path is one or more non-empty elements separated by single
/// slashes, not starting with `-` nor ending with `/`. Elements use ASCII
/// letters, digits and `- . _ ~ +`, are not all dots and do not end with a
/// dot. The part of an element before its first dot must not be a Windows
/// device name (any case) nor end in `~` followed by digits.
pub fn check_import_path(path: &str) -> Result<(), PathError> {
    check_general_path(path, PathKind::Import).map_err(|problem| PathError {
        kind: PathKind::Import,
        path: path.to_string(),
        problem,
    })
}

/// Checks a slash-separated file path inside a module.
///
/// The rules are those of [`check_import_path`] except that a leading dash
/// and Windows short names are allowed, and elements may use any Unicode
/// letter, ASCII digits, space and ``!#$%&()+,-.=@[]^_{}~``. Still excluded:
/// ``" ' * < > ? ` | : \`` and control characters.
pub fn check_file_path(path: &str) -> Result<(), PathError> {
    check_general_path(path, PathKind::File).map_err(|problem| PathError {
        kind: PathKind::File,
        path: path.to_string(),
        problem,
    })
}

/// Checks that `version` is a valid semantic version whose major version
/// matches the major version suffix of the module path `path`.
pub fn check(path: &str, version: &str) -> Result<(), ModuleError> {
    check_path(path)?;
    if !semver::is_valid(version) {
        return Err(ModuleError::NotSemver {
            path: path.to_string(),
            version: version.to_string(),
        });
    }
    let path_major = split_path_version(path).map_or("", |(_, path_major)| path_major);
    check_path_major(version, path_major).map_err(|err| match err {
        ModuleError::MajorMismatch {
            version,
            expected,
            found,
            ..
        } => ModuleError::MajorMismatch {
            path: path.to_string(),
            version,
            expected,
            found,
        },
        other => other,
    })
}

/// Splits a module path into the prefix and its major version suffix, such
/// that `prefix + path_major == path`: `example.com/m/v2` gives
/// `("example.com/m", "/v2")`, `example.com/m` gives `("example.com/m", "")`,
/// `gopkg.in/yaml.v2` gives `("gopkg.in/yaml", ".v2")`.
///
/// Returns `None` when the final element looks like a version suffix that
/// [`check_path`] would reject: `/v0`, `/v1`, `/v02`, `/v2.0`, and for
/// `gopkg.in/` paths anything not ending in a valid `.vN` (optionally
/// followed by `-unstable`). `gopkg.in` also allows `.v0` and `.v1`.
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let bytes = path.as_bytes();
    let mut start = bytes.len();
    let mut saw_dot = false;
    while start > 0 && (bytes[start - 1].is_ascii_digit() || bytes[start - 1] == b'.') {
        saw_dot |= bytes[start - 1] == b'.';
        start -= 1;
    }
    if start <= 1 || start == bytes.len() || bytes[start - 1] != b'v' || bytes[start - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, path_major) = path.split_at(start - 2);
    if saw_dot || path_major.len() <= 2 || path_major.as_bytes()[2] == b'0' || path_major == "/v1" {
        return None;
    }
    Some((prefix, path_major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let bytes = path.as_bytes();
    let mut start = bytes.len();
    if path.ends_with("-unstable") {
        start -= "-unstable".len();
    }
    while start > 0 && bytes[start - 1].is_ascii_digit() {
        start -= 1;
    }
    if start <= 1 || bytes[start - 1] != b'v' || bytes[start - 2] != b'.' {
        return None;
    }
    let (prefix, path_major) = path.split_at(start - 2);
    if path_major.len() <= 2 || (path_major.as_bytes()[2] == b'0' && path_major != ".v0") {
        return None;
    }
    Some((prefix, path_major))
}

/// Removes the `-unstable` that gopkg.in allows after `.vN`.
fn trim_unstable(path_major: &str) -> &str {
    if path_major.starts_with(".v") {
        path_major.strip_suffix("-unstable").unwrap_or(path_major)
    } else {
        path_major
    }
}

/// Checks that the semantic version `version` is allowed for a module whose
/// path ends in the major version suffix `path_major` (as returned by
/// [`split_path_version`]).
///
/// Without a suffix, `v0`, `v1` and any `+incompatible` version are allowed;
/// with `/vN` or `.vN` the major version must be `vN`. As a concession to old
/// go.mod files, `v0.0.0-` pseudo-versions are accepted for `.v1`. The error
/// is [`ModuleError::MajorMismatch`] with an empty `path`.
pub fn check_path_major(version: &str, path_major: &str) -> Result<(), ModuleError> {
    let path_major = trim_unstable(path_major);
    if version.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(());
    }
    let found = semver::major(version);
    let expected = if path_major.is_empty() {
        if found == "v0" || found == "v1" || semver::build(version) == "+incompatible" {
            return Ok(());
        }
        "v0 or v1"
    } else if path_major.starts_with('/') || path_major.starts_with('.') {
        let wanted = &path_major[1..];
        if found == wanted {
            return Ok(());
        }
        wanted
    } else {
        path_major
    };
    Err(ModuleError::MajorMismatch {
        path: String::new(),
        version: version.to_string(),
        expected: expected.to_string(),
        found: found.to_string(),
    })
}

/// Reports whether [`check_path_major`] accepts `version` for `path_major`.
pub fn match_path_major(version: &str, path_major: &str) -> bool {
    check_path_major(version, path_major).is_ok()
}

/// Returns the tag prefix implied by a major version suffix: `v2` for `/v2`
/// or `.v2` (and `.v2-unstable`); "" for no suffix, meaning `v0` or `v1`.
///
/// Input that is not a suffix [`split_path_version`] can return (missing the
/// leading `/` or `.`, or not naming a valid major version) also yields "".
pub fn path_major_prefix(path_major: &str) -> &str {
    if !(path_major.starts_with('/') || path_major.starts_with('.')) {
        return "";
    }
    let major = &trim_unstable(path_major)[1..];
    if semver::major(major) != major {
        return "";
    }
    major
}

/// Returns the canonical form of `version` like [`semver::canonical`], but
/// keeps a `+incompatible` suffix.
pub fn canonical_version(version: &str) -> String {
    let mut canonical = semver::canonical(version);
    if semver::build(version) == "+incompatible" {
        canonical.push_str("+incompatible");
    }
    canonical
}

/// Whether `version` is a valid semantic version already in the canonical
/// form [`canonical_version`] gives it (`v1.2.3`, `v1.2.3-pre`,
/// `v2.0.0+incompatible`; not `v1.2`, `v1.2.3+meta` or a branch name): the
/// only form the go command accepts for a resolved version.
pub fn is_canonical_version(version: &str) -> bool {
    // What `canonical_version(version) == version` means, without building
    // the string: complete, and no build metadata but `+incompatible`
    // (checked on every request the proxy serves).
    matches!(semver::complete_build(version), Some("" | "+incompatible"))
}

/// Whether a go.mod declaring module path `mpath` may serve the module
/// whose path has major version suffix `path_major` (as returned by
/// [`split_path_version`]; "" for none).
///
/// Only the major version matters, not the rest of the path, so that forks
/// declaring the original path stay usable (as `replace` targets). Without
/// a suffix, `mpath` must allow `v0`/`v1`; with one, `mpath` must carry a
/// suffix with the same major version (`/v2` and `.v2` alike). An empty or
/// invalid `mpath` fits nothing. A `gopkg.in/` `mpath` fits a path without
/// suffix whatever its own suffix, a leniency old go commands had that
/// existing modules rely on.
pub fn go_mod_path_fits_major(mpath: &str, path_major: &str) -> bool {
    if path_major.is_empty() && mpath.starts_with("gopkg.in/") {
        return true;
    }
    if mpath.is_empty() {
        return false;
    }
    let Some((_, mpath_major)) = split_path_version(mpath) else {
        return false;
    };
    if path_major.is_empty() {
        return matches!(path_major_prefix(mpath_major), "" | "v0" | "v1");
    }
    if mpath_major.is_empty() {
        return false;
    }
    path_major[1..] == mpath_major[1..]
}

/// Orders module versions by path, then by version. A version may carry a
/// `/suffix` (as in go.sum's `v1.2.3/go.mod`): the part before the slash is
/// compared as a semantic version, the suffix as a string.
pub fn compare_versions(a: &Version, b: &Version) -> Ordering {
    a.path.cmp(&b.path).then_with(|| {
        let (va, fa) = a
            .version
            .find('/')
            .map_or((a.version.as_str(), ""), |k| a.version.split_at(k));
        let (vb, fb) = b
            .version
            .find('/')
            .map_or((b.version.as_str(), ""), |k| b.version.split_at(k));
        if va != vb {
            semver::compare(va, vb)
        } else {
            fa.cmp(fb)
        }
    })
}

/// Sorts module versions by [`compare_versions`].
pub fn sort(list: &mut [Version]) {
    list.sort_by(compare_versions);
}

/// Replaces each upper-case ASCII letter by `!` and its lower-case form.
/// Callers guarantee `s` has no `!`, so the result decodes unambiguously.
fn escape_upper(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reverses [`escape_upper`]; `None` when `escaped` contains an upper-case
/// letter or non-ASCII character, or a `!` not followed by `a-z`.
fn unescape_upper(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if !c.is_ascii() {
            return None;
        }
        if bang {
            bang = false;
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return None;
        } else {
            out.push(c);
        }
    }
    if bang {
        return None;
    }
    Some(out)
}

/// Returns the case-escaped form of a module path (`github.com/!azure/x` for
/// `github.com/Azure/x`), as used in proxy URLs and the module cache. The path
/// must be valid ([`check_path`]).
///
/// Each upper-case letter becomes `!` and its lower-case form, so that
/// paths differing only in case stay distinct on case-insensitive file
/// systems (golang.org/x/mod's `module.EscapePath`).
///
/// ```
/// use modzip::module::{escape_path, escape_version, unescape_path};
///
/// assert_eq!(
///     escape_path("github.com/BurntSushi/toml").unwrap(),
///     "github.com/!burnt!sushi/toml"
/// );
/// assert_eq!(escape_version("v1.0.0-RC1").unwrap(), "v1.0.0-!r!c1");
/// assert_eq!(
///     unescape_path("github.com/!burnt!sushi/toml").unwrap(),
///     "github.com/BurntSushi/toml"
/// );
/// // An escaped path never holds upper-case letters itself.
/// assert!(unescape_path("github.com/BurntSushi/toml").is_err());
/// ```
pub fn escape_path(path: &str) -> Result<String, PathError> {
    check_path(path)?;
    Ok(escape_upper(path))
}

/// Returns the case-escaped form of a version. Versions need not be semantic
/// versions, but they must be valid file name elements, ASCII only (the
/// escaping has no rule for non-ASCII letters) and must not contain `!`.
pub fn escape_version(version: &str) -> Result<String, EscapeError> {
    if check_element(version, PathKind::File).is_err()
        || version.contains('!')
        || !version.is_ascii()
    {
        return Err(EscapeError::DisallowedVersion {
            version: version.to_string(),
        });
    }
    Ok(escape_upper(version))
}

/// Decodes an escaped module path and checks that the result is a valid
/// module path.
pub fn unescape_path(escaped: &str) -> Result<String, EscapeError> {
    let path = unescape_upper(escaped).ok_or_else(|| EscapeError::MalformedEscapedPath {
        escaped: escaped.to_string(),
    })?;
    check_path(&path).map_err(|source| EscapeError::InvalidUnescapedPath {
        escaped: escaped.to_string(),
        source,
    })?;
    Ok(path)
}

/// Decodes an escaped version and checks that the result is a valid file
/// name element.
pub fn unescape_version(escaped: &str) -> Result<String, EscapeError> {
    let version = unescape_upper(escaped).ok_or_else(|| EscapeError::MalformedEscapedVersion {
        escaped: escaped.to_string(),
    })?;
    check_element(&version, PathKind::File).map_err(|problem| {
        EscapeError::InvalidUnescapedVersion {
            version: version.clone(),
            problem,
        }
    })?;
    Ok(version)
}

/// Reports whether some leading run of path elements of `target` matches one
/// of the comma-separated glob patterns in `globs` — the matching used for
/// `GOPRIVATE`, `GONOPROXY` and `GONOSUMDB`.
///
/// A pattern with N slashes is matched against the first N+1 elements of
/// `target`, so `*.corp.example.com` matches `git.corp.example.com/x/y`.
/// Patterns use the syntax of Go's `path.Match` (`*`, `?`, `[a-z]`, `[^x]`,
/// `\` escapes; `*` and `?` never match `/`). Empty and malformed patterns
/// are skipped, and a trailing slash on a pattern is ignored.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    for glob in globs.split(',') {
        let glob = glob.strip_suffix('/').unwrap_or(glob);
        if glob.is_empty() {
            continue;
        }
        let Some(prefix) = prefix_for_pattern(glob, target) else {
            continue;
        };
        if glob_match(glob.as_bytes(), prefix.as_bytes()) == Ok(true) {
            return true;
        }
    }
    false
}

/// Why a pattern breaks `path.Match` syntax (internal form, without the
/// pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BadSyntax(&'static str);

const UNTERMINATED_CLASS: BadSyntax = BadSyntax("unterminated character class");
const MISPLACED_CLASS_CHAR: BadSyntax = BadSyntax("'-' or ']' where a class character belongs");
const TRAILING_BACKSLASH: BadSyntax = BadSyntax("trailing backslash");

/// A pattern that Go's `path.Match` syntax rejects.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed pattern {pattern:?}: {reason}")]
pub struct BadPattern {
    /// The offending pattern.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Go's `path.Match`: whether all of `name` matches the shell pattern
/// `pattern`.
///
/// `*` is any run of characters other than `/`, `?` one character other
/// than `/`, `[...]` a character class (`[^...]` negated, `a-z` a range; a
/// class may match `/`), `\c` the character `c`. A malformed pattern is an
/// error even where the name already failed to match, as in Go.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    glob_match(pattern.as_bytes(), name.as_bytes()).map_err(|BadSyntax(reason)| BadPattern {
        pattern: pattern.to_string(),
        reason,
    })
}

/// Checks that `pattern` is well formed for [`path_match`].
pub fn check_pattern(pattern: &str) -> Result<(), BadPattern> {
    path_match(pattern, "").map(drop)
}

/// The leading part of `target` with as many path elements as `pattern`
/// has (`pattern` with N slashes gets the first N+1 elements), or `None`
/// when `target` has fewer elements.
pub fn prefix_for_pattern<'t>(pattern: &str, target: &'t str) -> Option<&'t str> {
    let mut slashes_left = pattern.matches('/').count();
    for (i, b) in target.bytes().enumerate() {
        if b == b'/' {
            if slashes_left == 0 {
                return Some(&target[..i]);
            }
            slashes_left -= 1;
        }
    }
    (slashes_left == 0).then_some(target)
}

/// Decodes one UTF-8 character the way Go does: malformed input (including
/// a slice that starts inside a character) yields U+FFFD with width 1.
fn decode_char(s: &[u8]) -> (u32, usize) {
    const REPLACEMENT: u32 = 0xFFFD;
    let Some(&lead) = s.first() else {
        return (REPLACEMENT, 0);
    };
    let width = match lead {
        0x00..=0x7F => return (u32::from(lead), 1),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return (REPLACEMENT, 1),
    };
    match s.get(..width).map(std::str::from_utf8) {
        Some(Ok(text)) => text
            .chars()
            .next()
            .map_or((REPLACEMENT, 1), |c| (u32::from(c), width)),
        _ => (REPLACEMENT, 1),
    }
}

/// Splits a pattern into leading stars and the following literal chunk (up
/// to the next `*` outside brackets).
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut rest = pattern;
    let mut star = false;
    while let [b'*', tail @ ..] = rest {
        rest = tail;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            // An escaped character is skipped, whatever it is.
            b'\\' if i + 1 < rest.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &rest[..i], &rest[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, rest, &[])
}

/// Reads one possibly escaped character of a bracket expression.
fn range_char(chunk: &[u8]) -> Result<(u32, &[u8]), BadSyntax> {
    let mut chunk = chunk;
    match chunk.first() {
        None => return Err(UNTERMINATED_CLASS),
        Some(b'-') | Some(b']') => return Err(MISPLACED_CLASS_CHAR),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(UNTERMINATED_CLASS);
            }
        }
        Some(_) => {}
    }
    let (c, width) = decode_char(chunk);
    let rest = &chunk[width..];
    if (c == 0xFFFD && width == 1) || rest.is_empty() {
        return Err(UNTERMINATED_CLASS);
    }
    Ok((c, rest))
}

/// Matches one chunk (no `*`) against the start of `s`, returning what is
/// left of `s` on success. Syntax errors are reported even after a mismatch
/// so that malformed patterns are rejected consistently.
fn match_chunk<'s>(chunk: &[u8], s: &'s [u8]) -> Result<Option<&'s [u8]>, BadSyntax> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(&first) = chunk.first() {
        failed = failed || s.is_empty();
        match first {
            b'[' => {
                let mut c = 0;
                if !failed {
                    let (decoded, width) = decode_char(s);
                    c = decoded;
                    s = &s[width..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = range_char(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (end, rest) = range_char(&chunk[1..])?;
                        hi = end;
                        chunk = rest;
                    }
                    matched = matched || (lo <= c && c <= hi);
                    ranges += 1;
                }
                failed = failed || matched == negated;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    let (_, width) = decode_char(s);
                    s = &s[width..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if first == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(TRAILING_BACKSLASH);
                    }
                }
                if !failed {
                    failed = chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// Go's `path.Match`: whether the whole of `name` matches `pattern`.
fn glob_match(pattern: &[u8], name: &[u8]) -> Result<bool, BadSyntax> {
    let mut pattern = pattern;
    let mut name = name;
    'chunks: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing star matches the rest of this element only.
            return Ok(!name.contains(&b'/'));
        }
        let attempt = match_chunk(chunk, name);
        if let Ok(Some(left)) = attempt {
            if left.is_empty() || !pattern.is_empty() {
                name = left;
                continue;
            }
        }
        attempt?;
        if star {
            // Let the star absorb more and more of the element.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                match match_chunk(chunk, &name[i + 1..]) {
                    Ok(Some(left)) => {
                        if pattern.is_empty() && !left.is_empty() {
                            i += 1;
                            continue;
                        }
                        name = left;
                        continue 'chunks;
                    }
                    Ok(None) => {}
                    Err(bad) => return Err(bad),
                }
                i += 1;
            }
        }
        // No match; still reject a malformed remainder of the pattern.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, &[])?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Code point ranges (inclusive) of Unicode general category L above ASCII,
/// generated from the Go toolchain's `unicode.IsLetter` (Unicode 17.0.0) so that
/// file name checks agree with the go command character for character.
#[rustfmt::skip]
const LETTER_RANGES: &[(u32, u32)] = &[
    (0x00AA, 0x00AA), (0x00B5, 0x00B5), (0x00BA, 0x00BA), (0x00C0, 0x00D6), (0x00D8, 0x00F6), (0x00F8, 0x02C1),
    (0x02C6, 0x02D1), (0x02E0, 0x02E4), (0x02EC, 0x02EC), (0x02EE, 0x02EE), (0x0370, 0x0374), (0x0376, 0x0377),
    (0x037A, 0x037D), (0x037F, 0x037F), (0x0386, 0x0386), (0x0388, 0x038A), (0x038C, 0x038C), (0x038E, 0x03A1),
    (0x03A3, 0x03F5), (0x03F7, 0x0481), (0x048A, 0x052F), (0x0531, 0x0556), (0x0559, 0x0559), (0x0560, 0x0588),
    (0x05D0, 0x05EA), (0x05EF, 0x05F2), (0x0620, 0x064A), (0x066E, 0x066F), (0x0671, 0x06D3), (0x06D5, 0x06D5),
    (0x06E5, 0x06E6), (0x06EE, 0x06EF), (0x06FA, 0x06FC), (0x06FF, 0x06FF), (0x0710, 0x0710), (0x0712, 0x072F),
    (0x074D, 0x07A5), (0x07B1, 0x07B1), (0x07CA, 0x07EA), (0x07F4, 0x07F5), (0x07FA, 0x07FA), (0x0800, 0x0815),
    (0x081A, 0x081A), (0x0824, 0x0824), (0x0828, 0x0828), (0x0840, 0x0858), (0x0860, 0x086A), (0x0870, 0x0887),
    (0x0889, 0x088F), (0x08A0, 0x08C9), (0x0904, 0x0939), (0x093D, 0x093D), (0x0950, 0x0950), (0x0958, 0x0961),
    (0x0971, 0x0980), (0x0985, 0x098C), (0x098F, 0x0990), (0x0993, 0x09A8), (0x09AA, 0x09B0), (0x09B2, 0x09B2),
    (0x09B6, 0x09B9), (0x09BD, 0x09BD), (0x09CE, 0x09CE), (0x09DC, 0x09DD), (0x09DF, 0x09E1), (0x09F0, 0x09F1),
    (0x09FC, 0x09FC), (0x0A05, 0x0A0A), (0x0A0F, 0x0A10), (0x0A13, 0x0A28), (0x0A2A, 0x0A30), (0x0A32, 0x0A33),
    (0x0A35, 0x0A36), (0x0A38, 0x0A39), (0x0A59, 0x0A5C), (0x0A5E, 0x0A5E), (0x0A72, 0x0A74), (0x0A85, 0x0A8D),
    (0x0A8F, 0x0A91), (0x0A93, 0x0AA8), (0x0AAA, 0x0AB0), (0x0AB2, 0x0AB3), (0x0AB5, 0x0AB9), (0x0ABD, 0x0ABD),
    (0x0AD0, 0x0AD0), (0x0AE0, 0x0AE1), (0x0AF9, 0x0AF9), (0x0B05, 0x0B0C), (0x0B0F, 0x0B10), (0x0B13, 0x0B28),
    (0x0B2A, 0x0B30), (0x0B32, 0x0B33), (0x0B35, 0x0B39), (0x0B3D, 0x0B3D), (0x0B5C, 0x0B5D), (0x0B5F, 0x0B61),
    (0x0B71, 0x0B71), (0x0B83, 0x0B83), (0x0B85, 0x0B8A), (0x0B8E, 0x0B90), (0x0B92, 0x0B95), (0x0B99, 0x0B9A),
    (0x0B9C, 0x0B9C), (0x0B9E, 0x0B9F), (0x0BA3, 0x0BA4), (0x0BA8, 0x0BAA), (0x0BAE, 0x0BB9), (0x0BD0, 0x0BD0),
    (0x0C05, 0x0C0C), (0x0C0E, 0x0C10), (0x0C12, 0x0C28), (0x0C2A, 0x0C39), (0x0C3D, 0x0C3D), (0x0C58, 0x0C5A),
    (0x0C5C, 0x0C5D), (0x0C60, 0x0C61), (0x0C80, 0x0C80), (0x0C85, 0x0C8C), (0x0C8E, 0x0C90), (0x0C92, 0x0CA8),
    (0x0CAA, 0x0CB3), (0x0CB5, 0x0CB9), (0x0CBD, 0x0CBD), (0x0CDC, 0x0CDE), (0x0CE0, 0x0CE1), (0x0CF1, 0x0CF2),
    (0x0D04, 0x0D0C), (0x0D0E, 0x0D10), (0x0D12, 0x0D3A), (0x0D3D, 0x0D3D), (0x0D4E, 0x0D4E), (0x0D54, 0x0D56),
    (0x0D5F, 0x0D61), (0x0D7A, 0x0D7F), (0x0D85, 0x0D96), (0x0D9A, 0x0DB1), (0x0DB3, 0x0DBB), (0x0DBD, 0x0DBD),
    (0x0DC0, 0x0DC6), (0x0E01, 0x0E30), (0x0E32, 0x0E33), (0x0E40, 0x0E46), (0x0E81, 0x0E82), (0x0E84, 0x0E84),
    (0x0E86, 0x0E8A), (0x0E8C, 0x0EA3), (0x0EA5, 0x0EA5), (0x0EA7, 0x0EB0), (0x0EB2, 0x0EB3), (0x0EBD, 0x0EBD),
    (0x0EC0, 0x0EC4), (0x0EC6, 0x0EC6), (0x0EDC, 0x0EDF), (0x0F00, 0x0F00), (0x0F40, 0x0F47), (0x0F49, 0x0F6C),
    (0x0F88, 0x0F8C), (0x1000, 0x102A), (0x103F, 0x103F), (0x1050, 0x1055), (0x105A, 0x105D), (0x1061, 0x1061),
    (0x1065, 0x1066), (0x106E, 0x1070), (0x1075, 0x1081), (0x108E, 0x108E), (0x10A0, 0x10C5), (0x10C7, 0x10C7),
    (0x10CD, 0x10CD), (0x10D0, 0x10FA), (0x10FC, 0x1248), (0x124A, 0x124D), (0x1250, 0x1256), (0x1258, 0x1258),
    (0x125A, 0x125D), (0x1260, 0x1288), (0x128A, 0x128D), (0x1290, 0x12B0), (0x12B2, 0x12B5), (0x12B8, 0x12BE),
    (0x12C0, 0x12C0), (0x12C2, 0x12C5), (0x12C8, 0x12D6), (0x12D8, 0x1310), (0x1312, 0x1315), (0x1318, 0x135A),
    (0x1380, 0x138F), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1401, 0x166C), (0x166F, 0x167F), (0x1681, 0x169A),
    (0x16A0, 0x16EA), (0x16F1, 0x16F8), (0x1700, 0x1711), (0x171F, 0x1731), (0x1740, 0x1751), (0x1760, 0x176C),
    (0x176E, 0x1770), (0x1780, 0x17B3), (0x17D7, 0x17D7), (0x17DC, 0x17DC), (0x1820, 0x1878), (0x1880, 0x1884),
    (0x1887, 0x18A8), (0x18AA, 0x18AA), (0x18B0, 0x18F5), (0x1900, 0x191E), (0x1950, 0x196D), (0x1970, 0x1974),
    (0x1980, 0x19AB), (0x19B0, 0x19C9), (0x1A00, 0x1A16), (0x1A20, 0x1A54), (0x1AA7, 0x1AA7), (0x1B05, 0x1B33),
    (0x1B45, 0x1B4C), (0x1B83, 0x1BA0), (0x1BAE, 0x1BAF), (0x1BBA, 0x1BE5), (0x1C00, 0x1C23), (0x1C4D, 0x1C4F),
    (0x1C5A, 0x1C7D), (0x1C80, 0x1C8A), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x1CE9, 0x1CEC), (0x1CEE, 0x1CF3),
    (0x1CF5, 0x1CF6), (0x1CFA, 0x1CFA), (0x1D00, 0x1DBF), (0x1E00, 0x1F15), (0x1F18, 0x1F1D), (0x1F20, 0x1F45),
    (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B), (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D),
    (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE), (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3),
    (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC), (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2071, 0x2071), (0x207F, 0x207F),
    (0x2090, 0x209C), (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113), (0x2115, 0x2115), (0x2119, 0x211D),
    (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128), (0x212A, 0x212D), (0x212F, 0x2139), (0x213C, 0x213F),
    (0x2145, 0x2149), (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2CE4), (0x2CEB, 0x2CEE), (0x2CF2, 0x2CF3),
    (0x2D00, 0x2D25), (0x2D27, 0x2D27), (0x2D2D, 0x2D2D), (0x2D30, 0x2D67), (0x2D6F, 0x2D6F), (0x2D80, 0x2D96),
    (0x2DA0, 0x2DA6), (0x2DA8, 0x2DAE), (0x2DB0, 0x2DB6), (0x2DB8, 0x2DBE), (0x2DC0, 0x2DC6), (0x2DC8, 0x2DCE),
    (0x2DD0, 0x2DD6), (0x2DD8, 0x2DDE), (0x2E2F, 0x2E2F), (0x3005, 0x3006), (0x3031, 0x3035), (0x303B, 0x303C),
    (0x3041, 0x3096), (0x309D, 0x309F), (0x30A1, 0x30FA), (0x30FC, 0x30FF), (0x3105, 0x312F), (0x3131, 0x318E),
    (0x31A0, 0x31BF), (0x31F0, 0x31FF), (0x3400, 0x4DBF), (0x4E00, 0xA48C), (0xA4D0, 0xA4FD), (0xA500, 0xA60C),
    (0xA610, 0xA61F), (0xA62A, 0xA62B), (0xA640, 0xA66E), (0xA67F, 0xA69D), (0xA6A0, 0xA6E5), (0xA717, 0xA71F),
    (0xA722, 0xA788), (0xA78B, 0xA7DC), (0xA7F1, 0xA801), (0xA803, 0xA805), (0xA807, 0xA80A), (0xA80C, 0xA822),
    (0xA840, 0xA873), (0xA882, 0xA8B3), (0xA8F2, 0xA8F7), (0xA8FB, 0xA8FB), (0xA8FD, 0xA8FE), (0xA90A, 0xA925),
    (0xA930, 0xA946), (0xA960, 0xA97C), (0xA984, 0xA9B2), (0xA9CF, 0xA9CF), (0xA9E0, 0xA9E4), (0xA9E6, 0xA9EF),
    (0xA9FA, 0xA9FE), (0xAA00, 0xAA28), (0xAA40, 0xAA42), (0xAA44, 0xAA4B), (0xAA60, 0xAA76), (0xAA7A, 0xAA7A),
    (0xAA7E, 0xAAAF), (0xAAB1, 0xAAB1), (0xAAB5, 0xAAB6), (0xAAB9, 0xAABD), (0xAAC0, 0xAAC0), (0xAAC2, 0xAAC2),
    (0xAADB, 0xAADD), (0xAAE0, 0xAAEA), (0xAAF2, 0xAAF4), (0xAB01, 0xAB06), (0xAB09, 0xAB0E), (0xAB11, 0xAB16),
    (0xAB20, 0xAB26), (0xAB28, 0xAB2E), (0xAB30, 0xAB5A), (0xAB5C, 0xAB69), (0xAB70, 0xABE2), (0xAC00, 0xD7A3),
    (0xD7B0, 0xD7C6), (0xD7CB, 0xD7FB), (0xF900, 0xFA6D), (0xFA70, 0xFAD9), (0xFB00, 0xFB06), (0xFB13, 0xFB17),
    (0xFB1D, 0xFB1D), (0xFB1F, 0xFB28), (0xFB2A, 0xFB36), (0xFB38, 0xFB3C), (0xFB3E, 0xFB3E), (0xFB40, 0xFB41),
    (0xFB43, 0xFB44), (0xFB46, 0xFBB1), (0xFBD3, 0xFD3D), (0xFD50, 0xFD8F), (0xFD92, 0xFDC7), (0xFDF0, 0xFDFB),
    (0xFE70, 0xFE74), (0xFE76, 0xFEFC), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A), (0xFF66, 0xFFBE), (0xFFC2, 0xFFC7),
    (0xFFCA, 0xFFCF), (0xFFD2, 0xFFD7), (0xFFDA, 0xFFDC), (0x10000, 0x1000B), (0x1000D, 0x10026), (0x10028, 0x1003A),
    (0x1003C, 0x1003D), (0x1003F, 0x1004D), (0x10050, 0x1005D), (0x10080, 0x100FA), (0x10280, 0x1029C), (0x102A0, 0x102D0),
    (0x10300, 0x1031F), (0x1032D, 0x10340), (0x10342, 0x10349), (0x10350, 0x10375), (0x10380, 0x1039D), (0x103A0, 0x103C3),
    (0x103C8, 0x103CF), (0x10400, 0x1049D), (0x104B0, 0x104D3), (0x104D8, 0x104FB), (0x10500, 0x10527), (0x10530, 0x10563),
    (0x10570, 0x1057A), (0x1057C, 0x1058A), (0x1058C, 0x10592), (0x10594, 0x10595), (0x10597, 0x105A1), (0x105A3, 0x105B1),
    (0x105B3, 0x105B9), (0x105BB, 0x105BC), (0x105C0, 0x105F3), (0x10600, 0x10736), (0x10740, 0x10755), (0x10760, 0x10767),
    (0x10780, 0x10785), (0x10787, 0x107B0), (0x107B2, 0x107BA), (0x10800, 0x10805), (0x10808, 0x10808), (0x1080A, 0x10835),
    (0x10837, 0x10838), (0x1083C, 0x1083C), (0x1083F, 0x10855), (0x10860, 0x10876), (0x10880, 0x1089E), (0x108E0, 0x108F2),
    (0x108F4, 0x108F5), (0x10900, 0x10915), (0x10920, 0x10939), (0x10940, 0x10959), (0x10980, 0x109B7), (0x109BE, 0x109BF),
    (0x10A00, 0x10A00), (0x10A10, 0x10A13), (0x10A15, 0x10A17), (0x10A19, 0x10A35), (0x10A60, 0x10A7C), (0x10A80, 0x10A9C),
    (0x10AC0, 0x10AC7), (0x10AC9, 0x10AE4), (0x10B00, 0x10B35), (0x10B40, 0x10B55), (0x10B60, 0x10B72), (0x10B80, 0x10B91),
    (0x10C00, 0x10C48), (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x10D00, 0x10D23), (0x10D4A, 0x10D65), (0x10D6F, 0x10D85),
    (0x10E80, 0x10EA9), (0x10EB0, 0x10EB1), (0x10EC2, 0x10EC7), (0x10F00, 0x10F1C), (0x10F27, 0x10F27), (0x10F30, 0x10F45),
    (0x10F70, 0x10F81), (0x10FB0, 0x10FC4), (0x10FE0, 0x10FF6), (0x11003, 0x11037), (0x11071, 0x11072), (0x11075, 0x11075),
    (0x11083, 0x110AF), (0x110D0, 0x110E8), (0x11103, 0x11126), (0x11144, 0x11144), (0x11147, 0x11147), (0x11150, 0x11172),
    (0x11176, 0x11176), (0x11183, 0x111B2), (0x111C1, 0x111C4), (0x111DA, 0x111DA), (0x111DC, 0x111DC), (0x11200, 0x11211),
    (0x11213, 0x1122B), (0x1123F, 0x11240), (0x11280, 0x11286), (0x11288, 0x11288), (0x1128A, 0x1128D), (0x1128F, 0x1129D),
    (0x1129F, 0x112A8), (0x112B0, 0x112DE), (0x11305, 0x1130C), (0x1130F, 0x11310), (0x11313, 0x11328), (0x1132A, 0x11330),
    (0x11332, 0x11333), (0x11335, 0x11339), (0x1133D, 0x1133D), (0x11350, 0x11350), (0x1135D, 0x11361), (0x11380, 0x11389),
    (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5), (0x113B7, 0x113B7), (0x113D1, 0x113D1), (0x113D3, 0x113D3),
    (0x11400, 0x11434), (0x11447, 0x1144A), (0x1145F, 0x11461), (0x11480, 0x114AF), (0x114C4, 0x114C5), (0x114C7, 0x114C7),
    (0x11580, 0x115AE), (0x115D8, 0x115DB), (0x11600, 0x1162F), (0x11644, 0x11644), (0x11680, 0x116AA), (0x116B8, 0x116B8),
    (0x11700, 0x1171A), (0x11740, 0x11746), (0x11800, 0x1182B), (0x118A0, 0x118DF), (0x118FF, 0x11906), (0x11909, 0x11909),
    (0x1190C, 0x11913), (0x11915, 0x11916), (0x11918, 0x1192F), (0x1193F, 0x1193F), (0x11941, 0x11941), (0x119A0, 0x119A7),
    (0x119AA, 0x119D0), (0x119E1, 0x119E1), (0x119E3, 0x119E3), (0x11A00, 0x11A00), (0x11A0B, 0x11A32), (0x11A3A, 0x11A3A),
    (0x11A50, 0x11A50), (0x11A5C, 0x11A89), (0x11A9D, 0x11A9D), (0x11AB0, 0x11AF8), (0x11BC0, 0x11BE0), (0x11C00, 0x11C08),
    (0x11C0A, 0x11C2E), (0x11C40, 0x11C40), (0x11C72, 0x11C8F), (0x11D00, 0x11D06), (0x11D08, 0x11D09), (0x11D0B, 0x11D30),
    (0x11D46, 0x11D46), (0x11D60, 0x11D65), (0x11D67, 0x11D68), (0x11D6A, 0x11D89), (0x11D98, 0x11D98), (0x11DB0, 0x11DDB),
    (0x11EE0, 0x11EF2), (0x11F02, 0x11F02), (0x11F04, 0x11F10), (0x11F12, 0x11F33), (0x11FB0, 0x11FB0), (0x12000, 0x12399),
    (0x12480, 0x12543), (0x12F90, 0x12FF0), (0x13000, 0x1342F), (0x13441, 0x13446), (0x13460, 0x143FA), (0x14400, 0x14646),
    (0x16100, 0x1611D), (0x16800, 0x16A38), (0x16A40, 0x16A5E), (0x16A70, 0x16ABE), (0x16AD0, 0x16AED), (0x16B00, 0x16B2F),
    (0x16B40, 0x16B43), (0x16B63, 0x16B77), (0x16B7D, 0x16B8F), (0x16D40, 0x16D6C), (0x16E40, 0x16E7F), (0x16EA0, 0x16EB8),
    (0x16EBB, 0x16ED3), (0x16F00, 0x16F4A), (0x16F50, 0x16F50), (0x16F93, 0x16F9F), (0x16FE0, 0x16FE1), (0x16FE3, 0x16FE3),
    (0x16FF2, 0x16FF3), (0x17000, 0x18CD5), (0x18CFF, 0x18D1E), (0x18D80, 0x18DF2), (0x1AFF0, 0x1AFF3), (0x1AFF5, 0x1AFFB),
    (0x1AFFD, 0x1AFFE), (0x1B000, 0x1B122), (0x1B132, 0x1B132), (0x1B150, 0x1B152), (0x1B155, 0x1B155), (0x1B164, 0x1B167),
    (0x1B170, 0x1B2FB), (0x1BC00, 0x1BC6A), (0x1BC70, 0x1BC7C), (0x1BC80, 0x1BC88), (0x1BC90, 0x1BC99), (0x1D400, 0x1D454),
    (0x1D456, 0x1D49C), (0x1D49E, 0x1D49F), (0x1D4A2, 0x1D4A2), (0x1D4A5, 0x1D4A6), (0x1D4A9, 0x1D4AC), (0x1D4AE, 0x1D4B9),
    (0x1D4BB, 0x1D4BB), (0x1D4BD, 0x1D4C3), (0x1D4C5, 0x1D505), (0x1D507, 0x1D50A), (0x1D50D, 0x1D514), (0x1D516, 0x1D51C),
    (0x1D51E, 0x1D539), (0x1D53B, 0x1D53E), (0x1D540, 0x1D544), (0x1D546, 0x1D546), (0x1D54A, 0x1D550), (0x1D552, 0x1D6A5),
    (0x1D6A8, 0x1D6C0), (0x1D6C2, 0x1D6DA), (0x1D6DC, 0x1D6FA), (0x1D6FC, 0x1D714), (0x1D716, 0x1D734), (0x1D736, 0x1D74E),
    (0x1D750, 0x1D76E), (0x1D770, 0x1D788), (0x1D78A, 0x1D7A8), (0x1D7AA, 0x1D7C2), (0x1D7C4, 0x1D7CB), (0x1DF00, 0x1DF1E),
    (0x1DF25, 0x1DF2A), (0x1E030, 0x1E06D), (0x1E100, 0x1E12C), (0x1E137, 0x1E13D), (0x1E14E, 0x1E14E), (0x1E290, 0x1E2AD),
    (0x1E2C0, 0x1E2EB), (0x1E4D0, 0x1E4EB), (0x1E5D0, 0x1E5ED), (0x1E5F0, 0x1E5F0), (0x1E6C0, 0x1E6DE), (0x1E6E0, 0x1E6E2),
    (0x1E6E4, 0x1E6E5), (0x1E6E7, 0x1E6ED), (0x1E6F0, 0x1E6F4), (0x1E6FE, 0x1E6FF), (0x1E7E0, 0x1E7E6), (0x1E7E8, 0x1E7EB),
    (0x1E7ED, 0x1E7EE), (0x1E7F0, 0x1E7FE), (0x1E800, 0x1E8C4), (0x1E900, 0x1E943), (0x1E94B, 0x1E94B), (0x1EE00, 0x1EE03),
    (0x1EE05, 0x1EE1F), (0x1EE21, 0x1EE22), (0x1EE24, 0x1EE24), (0x1EE27, 0x1EE27), (0x1EE29, 0x1EE32), (0x1EE34, 0x1EE37),
    (0x1EE39, 0x1EE39), (0x1EE3B, 0x1EE3B), (0x1EE42, 0x1EE42), (0x1EE47, 0x1EE47), (0x1EE49, 0x1EE49), (0x1EE4B, 0x1EE4B),
    (0x1EE4D, 0x1EE4F), (0x1EE51, 0x1EE52), (0x1EE54, 0x1EE54), (0x1EE57, 0x1EE57), (0x1EE59, 0x1EE59), (0x1EE5B, 0x1EE5B),
    (0x1EE5D, 0x1EE5D), (0x1EE5F, 0x1EE5F), (0x1EE61, 0x1EE62), (0x1EE64, 0x1EE64), (0x1EE67, 0x1EE6A), (0x1EE6C, 0x1EE72),
    (0x1EE74, 0x1EE77), (0x1EE79, 0x1EE7C), (0x1EE7E, 0x1EE7E), (0x1EE80, 0x1EE89), (0x1EE8B, 0x1EE9B), (0x1EEA1, 0x1EEA3),
    (0x1EEA5, 0x1EEA9), (0x1EEAB, 0x1EEBB), (0x20000, 0x2A6DF), (0x2A700, 0x2B81D), (0x2B820, 0x2CEAD), (0x2CEB0, 0x2EBE0),
    (0x2EBF0, 0x2EE5D), (0x2F800, 0x2FA1D), (0x30000, 0x3134A), (0x31350, 0x33479),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_display() {
        assert_eq!(
            Version::new("rsc.io/quote", "v1.5.2").to_string(),
            "rsc.io/quote@v1.5.2"
        );
        assert_eq!(Version::new("rsc.io/quote", "").to_string(), "rsc.io/quote");
    }

    #[test]
    fn module_paths_accepted() {
        let ok = [
            "x.y",
            "x.y/z",
            "example.com",
            "example.com/a-b_c~d.e",
            "github.com/Azure/azure-sdk-for-go",
            "a-b.c",
            "1.2.3.4/x",
            "example.com/x/v2",
            "example.com/x/v10",
            "example.com/v2",
            "example.com/x/v2x",
            "example.com/x/v",
            "example.com/x/2",
            "example.com/x/go~",
            "example.com/x/go~a1",
            "example.com/x/con1",
            "example.com/x/conx",
            "example.com/x/com0",
            "example.com/x/com10",
            "gopkg.in/yaml.v2",
            "gopkg.in/yaml.v0",
            "gopkg.in/yaml.v1",
            "gopkg.in/yaml.v10",
            "gopkg.in/user/repo.v3",
            "gopkg.in/yaml.v2-unstable",
        ];
        for path in ok {
            assert_eq!(check_path(path), Ok(()), "{path}");
            assert_eq!(check_import_path(path), Ok(()), "{path} as import path");
            assert_eq!(check_file_path(path), Ok(()), "{path} as file path");
        }
    }

    #[test]
    fn module_paths_rejected() {
        use PathProblem::*;
        let cases = [
            ("", Empty),
            ("-x.y", LeadingDash),
            ("x.y//z", DoubleSlash),
            ("x.y/", TrailingSlash),
            ("/x.y", EmptyElement),
            ("x.y/./z", DotsOnlyElement(".".into())),
            ("x.y/../z", DotsOnlyElement("..".into())),
            ("x.y/.z", LeadingDot),
            ("x.y/z.", TrailingDot),
            ("x.y.", TrailingDot),
            ("x.y/a+b", InvalidChar('+')),
            ("x.y/a b", InvalidChar(' ')),
            ("x.y/a@b", InvalidChar('@')),
            ("x.y/a%b", InvalidChar('%')),
            ("x.y/é", InvalidChar('é')),
            ("x.y/a:b", InvalidChar(':')),
            ("x.y/con", WindowsReservedName("con".into())),
            ("x.y/NUL.txt", WindowsReservedName("NUL".into())),
            ("x.y/Lpt9.a.b", WindowsReservedName("Lpt9".into())),
            ("x.y/aux", WindowsReservedName("aux".into())),
            ("x.y/GO~1", WindowsShortName),
            ("x.y/GO~123.x", WindowsShortName),
            ("x.y/~1", WindowsShortName),
            ("xy", MissingDotInFirstElement),
            ("xy/a.b", MissingDotInFirstElement),
            ("Example.com", InvalidCharInFirstElement('E')),
            ("ex_ample.com", InvalidCharInFirstElement('_')),
            ("ex~ample.com/x", InvalidCharInFirstElement('~')),
            ("example.com/x/v1", InvalidMajorVersionSuffix),
            ("example.com/x/v0", InvalidMajorVersionSuffix),
            ("example.com/x/v02", InvalidMajorVersionSuffix),
            ("example.com/x/v2.0", InvalidMajorVersionSuffix),
            ("example.com/x/v1.2.3", InvalidMajorVersionSuffix),
            ("gopkg.in/yaml", InvalidMajorVersionSuffix),
            ("gopkg.in/yaml.v", InvalidMajorVersionSuffix),
            ("gopkg.in/yaml.v01", InvalidMajorVersionSuffix),
            ("gopkg.in/yaml/v2", InvalidMajorVersionSuffix),
            ("gopkg.in/v2", InvalidMajorVersionSuffix),
        ];
        for (path, want) in cases {
            let err = check_path(path).expect_err(path);
            assert_eq!(err.problem, want, "{path}");
            assert_eq!(err.kind, PathKind::Module);
            assert_eq!(err.path, path);
        }
    }

    #[test]
    fn import_paths() {
        use PathProblem::*;
        for path in [
            "fmt",
            "a/b",
            "x/.hidden",
            "x/g++",
            "a/B",
            "a/v1",
            "gopkg.in/yaml",
            "x.y/z/v0",
        ] {
            assert_eq!(check_import_path(path), Ok(()), "{path}");
        }
        let cases = [
            ("", Empty),
            ("-x", LeadingDash),
            ("a//b", DoubleSlash),
            ("a/", TrailingSlash),
            ("/a", EmptyElement),
            ("a/..", DotsOnlyElement("..".into())),
            ("a/b.", TrailingDot),
            ("a/b c", InvalidChar(' ')),
            ("a/b!", InvalidChar('!')),
            ("a/é", InvalidChar('é')),
            ("a/com1.go", WindowsReservedName("com1".into())),
            ("a/PRN", WindowsReservedName("PRN".into())),
            ("a/x~9", WindowsShortName),
        ];
        for (path, want) in cases {
            let err = check_import_path(path).expect_err(path);
            assert_eq!((err.kind, err.problem), (PathKind::Import, want), "{path}");
        }
    }

    #[test]
    fn file_paths() {
        use PathProblem::*;
        let ok = [
            "go.mod",
            "-leading-dash",
            "a/-b",
            ".hidden/.file",
            "x/GO~1",
            "a b/c d",
            "!#$%&()+,-.=@[]^_{}~",
            "é/ü/日本語/ǅ",
            "ʰmodifier",
            "a/con1",
            "a/conx.txt",
        ];
        for path in ok {
            assert_eq!(check_file_path(path), Ok(()), "{path}");
        }
        let cases = [
            ("", Empty),
            ("a//b", DoubleSlash),
            ("a/", TrailingSlash),
            ("/abs", EmptyElement),
            (".", DotsOnlyElement(".".into())),
            ("a/../b", DotsOnlyElement("..".into())),
            ("a/b.", TrailingDot),
            ("a\\b", InvalidChar('\\')),
            ("a:b", InvalidChar(':')),
            ("a*b", InvalidChar('*')),
            ("a?b", InvalidChar('?')),
            ("a\"b", InvalidChar('"')),
            ("a'b", InvalidChar('\'')),
            ("a<b", InvalidChar('<')),
            ("a>b", InvalidChar('>')),
            ("a|b", InvalidChar('|')),
            ("a`b", InvalidChar('`')),
            ("a\tb", InvalidChar('\t')),
            ("a\u{7f}", InvalidChar('\u{7f}')),
            // Digits, marks, symbols and letter-numbers outside ASCII are
            // not letters.
            ("x\u{0661}", InvalidChar('\u{0661}')),
            ("e\u{0301}", InvalidChar('\u{0301}')),
            ("\u{2167}", InvalidChar('\u{2167}')),
            ("\u{00a0}", InvalidChar('\u{00a0}')),
            ("€", InvalidChar('€')),
            ("😀", InvalidChar('😀')),
            ("dir/CON", WindowsReservedName("CON".into())),
            ("aux.c", WindowsReservedName("aux".into())),
        ];
        for (path, want) in cases {
            let err = check_file_path(path).expect_err(path);
            assert_eq!((err.kind, err.problem), (PathKind::File, want), "{path:?}");
        }
    }

    #[test]
    fn letter_table_is_sorted_and_disjoint() {
        assert!(LETTER_RANGES.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(LETTER_RANGES.iter().all(|&(lo, hi)| lo <= hi && lo >= 0x80));
        assert!(is_unicode_letter('ª'));
        assert!(is_unicode_letter('ß'));
        assert!(!is_unicode_letter('×'));
    }

    #[test]
    fn splitting_path_versions() {
        let cases: [(&str, Option<(&str, &str)>); 18] = [
            ("example.com/x", Some(("example.com/x", ""))),
            ("example.com/x/v2", Some(("example.com/x", "/v2"))),
            ("example.com/x/v10", Some(("example.com/x", "/v10"))),
            ("example.com/x/v1", None),
            ("example.com/x/v0", None),
            ("example.com/x/v01", None),
            ("example.com/x/v2.1", None),
            ("example.com/x/v", Some(("example.com/x/v", ""))),
            ("example.com/x/xv2", Some(("example.com/x/xv2", ""))),
            ("v2", Some(("v2", ""))),
            ("/v2", Some(("", "/v2"))),
            ("x/v2", Some(("x", "/v2"))),
            ("gopkg.in/yaml.v2", Some(("gopkg.in/yaml", ".v2"))),
            ("gopkg.in/yaml.v0", Some(("gopkg.in/yaml", ".v0"))),
            (
                "gopkg.in/yaml.v1-unstable",
                Some(("gopkg.in/yaml", ".v1-unstable")),
            ),
            ("gopkg.in/yaml.v00", None),
            ("gopkg.in/yaml", None),
            ("gopkg.in/", None),
        ];
        for (path, want) in cases {
            assert_eq!(split_path_version(path), want, "{path}");
        }
    }

    #[test]
    fn path_major_checks() {
        let ok = [
            ("v0.1.0", ""),
            ("v1.2.3", ""),
            ("v2.0.0+incompatible", ""),
            ("v2.0.0", "/v2"),
            ("v2.1.0-pre", "/v2"),
            ("v2", "/v2"),
            ("v1.0.0", ".v1"),
            ("v0.0.0-20191109021931-daa7c04131f5", ".v1"),
            ("v2.0.0", ".v2-unstable"),
            ("v0.3.0", ".v0"),
        ];
        for (version, path_major) in ok {
            assert_eq!(
                check_path_major(version, path_major),
                Ok(()),
                "{version} {path_major}"
            );
            assert!(match_path_major(version, path_major));
        }
        let bad = [
            ("v2.0.0", "", "v0 or v1", "v2"),
            ("v1.0.0", "/v2", "v2", "v1"),
            ("v3.0.0", "/v2", "v2", "v3"),
            ("v0.0.0-20191109021931-daa7c04131f5", "/v2", "v2", "v0"),
            ("v0.0.0-20191109021931-daa7c04131f5", ".v2", "v2", "v0"),
            ("bad", "", "v0 or v1", ""),
            ("v2.0.0", "/v2-unstable", "v2-unstable", "v2"),
            ("v2.0.0", "v2", "v2", "v2"),
        ];
        for (version, path_major, expected, found) in bad {
            let err = check_path_major(version, path_major).expect_err(version);
            assert_eq!(
                err,
                ModuleError::MajorMismatch {
                    path: String::new(),
                    version: version.into(),
                    expected: expected.into(),
                    found: found.into()
                }
            );
            assert!(!match_path_major(version, path_major));
        }
        let prefixes = [
            ("", ""),
            ("/v2", "v2"),
            (".v1", "v1"),
            (".v3-unstable", "v3"),
            ("/v3-unstable", ""),
            ("v2", ""),
            ("/v02", ""),
            ("/x", ""),
        ];
        for (path_major, want) in prefixes {
            assert_eq!(path_major_prefix(path_major), want, "{path_major}");
        }
    }

    #[test]
    fn checking_path_and_version_together() {
        assert_eq!(check("example.com/x", "v1.2.3"), Ok(()));
        assert_eq!(check("example.com/x/v2", "v2.0.0"), Ok(()));
        assert_eq!(check("example.com/x", "v3.0.0+incompatible"), Ok(()));
        assert_eq!(check("gopkg.in/yaml.v2", "v2.4.0"), Ok(()));
        assert!(matches!(
            check("Example.com/x", "v1.0.0"),
            Err(ModuleError::Path(_))
        ));
        assert!(matches!(
            check("example.com/x", "1.0.0"),
            Err(ModuleError::NotSemver { .. })
        ));
        let err = check("example.com/x/v2", "v1.0.0").unwrap_err();
        assert!(
            matches!(&err, ModuleError::MajorMismatch { path, .. } if path == "example.com/x/v2")
        );
        assert_eq!(
            err.to_string(),
            "example.com/x/v2@v1.0.0: invalid version: should be v2, not v1"
        );
    }

    #[test]
    fn canonical_versions_keep_incompatible() {
        assert_eq!(canonical_version("v2.0+incompatible"), "");
        assert_eq!(
            canonical_version("v2.0.0+incompatible"),
            "v2.0.0+incompatible"
        );
        assert_eq!(canonical_version("v2.0.0+meta"), "v2.0.0");
        assert_eq!(canonical_version("v2"), "v2.0.0");
        assert_eq!(canonical_version("bad"), "");
    }

    #[test]
    fn sorting_versions() {
        let mut list = vec![
            Version::new("b.c", "v1.0.0"),
            Version::new("a.c", "v1.10.0"),
            Version::new("a.c", "v1.2.0/go.mod"),
            Version::new("a.c", "v1.2.0"),
            Version::new("a.c", "v1.9.0"),
        ];
        sort(&mut list);
        let got: Vec<String> = list.iter().map(Version::to_string).collect();
        assert_eq!(
            got,
            [
                "a.c@v1.2.0",
                "a.c@v1.2.0/go.mod",
                "a.c@v1.9.0",
                "a.c@v1.10.0",
                "b.c@v1.0.0"
            ]
        );
    }

    #[test]
    fn escaping() {
        let pairs = [
            (
                "github.com/Azure/azure-sdk-for-go",
                "github.com/!azure/azure-sdk-for-go",
            ),
            (
                "github.com/GoogleCloudPlatform/x",
                "github.com/!google!cloud!platform/x",
            ),
            ("rsc.io/quote", "rsc.io/quote"),
        ];
        for (path, escaped) in pairs {
            assert_eq!(escape_path(path).as_deref(), Ok(escaped));
            assert_eq!(unescape_path(escaped).as_deref(), Ok(path));
        }
        assert!(escape_path("Github.com/x").is_err());
        assert!(matches!(
            unescape_path("github.com/Azure"),
            Err(EscapeError::MalformedEscapedPath { .. })
        ));
        assert!(matches!(
            unescape_path("github.com/!!azure"),
            Err(EscapeError::MalformedEscapedPath { .. })
        ));
        assert!(matches!(
            unescape_path("github.com/azure!"),
            Err(EscapeError::MalformedEscapedPath { .. })
        ));
        assert!(matches!(
            unescape_path("github.com/!1"),
            Err(EscapeError::MalformedEscapedPath { .. })
        ));
        assert!(matches!(
            unescape_path("github.com/é"),
            Err(EscapeError::MalformedEscapedPath { .. })
        ));
        assert!(matches!(
            unescape_path("!github.com/x"),
            Err(EscapeError::InvalidUnescapedPath { .. })
        ));
        assert!(matches!(
            unescape_path("github.com/x/v1"),
            Err(EscapeError::InvalidUnescapedPath { .. })
        ));

        let versions = [
            ("v1.2.3", "v1.2.3"),
            ("v1.2.3-RC1", "v1.2.3-!r!c1"),
            ("master", "master"),
            ("Branch With Space", "!branch !with !space"),
            ("-x", "-x"),
        ];
        for (version, escaped) in versions {
            assert_eq!(escape_version(version).as_deref(), Ok(escaped));
            assert_eq!(unescape_version(escaped).as_deref(), Ok(version));
        }
        for bad in ["", "a/b", "v1!", "..", "x.", "con", "a:b", "é"] {
            assert!(
                matches!(
                    escape_version(bad),
                    Err(EscapeError::DisallowedVersion { .. })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            unescape_version("V1"),
            Err(EscapeError::MalformedEscapedVersion { .. })
        ));
        assert!(matches!(
            unescape_version("v1!"),
            Err(EscapeError::MalformedEscapedVersion { .. })
        ));
        assert!(matches!(
            unescape_version("é"),
            Err(EscapeError::MalformedEscapedVersion { .. })
        ));
        assert!(matches!(
            unescape_version("a/b"),
            Err(EscapeError::InvalidUnescapedVersion { .. })
        ));
        assert!(matches!(
            unescape_version(""),
            Err(EscapeError::InvalidUnescapedVersion { .. })
        ));
        assert!(matches!(
            unescape_version("!nul"),
            Err(EscapeError::InvalidUnescapedVersion { .. })
        ));
    }

    #[test]
    fn prefix_patterns() {
        let cases = [
            ("*.corp.example.com", "git.corp.example.com/x/y", true),
            ("*.corp.example.com", "corp.example.com/x", false),
            ("rsc.io/private", "rsc.io/private", true),
            ("rsc.io/private", "rsc.io/private/sub/pkg", true),
            ("rsc.io/private", "rsc.io/privateer", false),
            ("rsc.io/private", "rsc.io", false),
            ("rsc.io/private/", "rsc.io/private/x", true),
            ("a.com,b.com", "b.com/x", true),
            (",,a.com,", "a.com", true),
            ("", "a.com", false),
            (",", "a.com", false),
            ("/", "a.com", false),
            ("*", "anything/at/all", true),
            ("*/x", "a.com/x/y", true),
            ("*/x", "a.com/y", false),
            ("a?c.com", "abc.com", true),
            ("a?c.com", "a/c.com", false),
            ("[a-c].com", "b.com", true),
            ("[^a-c].com", "b.com", false),
            ("[^a-c].com", "d.com", true),
            ("[a-c.com", "b.com", false),
            ("[]a].com", "a.com", false),
            ("[\\]].com", "].com", true),
            ("a\\", "a", false),
            ("a\\*", "a*", true),
            ("[é].com", "é.com", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("bad[,good.com", "good.com/x", true),
            ("*.com", "x.org", false),
            ("x*[", "xyz", false),
        ];
        for (globs, target, want) in cases {
            assert_eq!(
                match_prefix_patterns(globs, target),
                want,
                "{globs:?} vs {target:?}"
            );
        }
    }

    #[test]
    fn path_match_like_go() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[/]", "/", true),
            ("*x", "xxx", true),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(
                path_match(pattern, name),
                Ok(want),
                "pattern {pattern:?} name {name:?}"
            );
        }
    }

    #[test]
    fn path_match_rejects_malformed_patterns() {
        for pattern in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "[\\", "a\\",
        ] {
            assert!(
                path_match(pattern, "a").is_err(),
                "pattern {pattern:?} should be rejected"
            );
            assert!(check_pattern(pattern).is_err());
            assert!(!match_prefix_patterns(pattern, "a"));
        }
    }

    #[test]
    fn canonical_versions_and_go_mod_majors() {
        for v in [
            "v1.2.3",
            "v0.0.0-20200101000000-abcdefabcdef",
            "v2.0.0+incompatible",
            "v1.0.0-rc.1",
        ] {
            assert!(is_canonical_version(v), "{v}");
        }
        for v in [
            "",
            "v1",
            "v1.2",
            "1.2.3",
            "v1.2.3+meta",
            "master",
            "v01.2.3",
        ] {
            assert!(!is_canonical_version(v), "{v}");
        }
        // The definition, checked over versions of every shape.
        for v in [
            "v1.2.3-pre+incompatible",
            "v1.2.3+incompatible+x",
            "v1.2+incompatible",
            "v1-pre",
            "v1.2.3-",
            "v1.2.3+",
            "v1.2.3-0.20200101000000-abcdefabcdef+incompatible",
            "v3.0.0+INCOMPATIBLE",
            "v1.2.3.4",
            "v1.2.3-01",
            "v0.0.0",
            "v",
        ] {
            assert_eq!(
                is_canonical_version(v),
                semver::is_valid(v) && canonical_version(v) == v,
                "{v}"
            );
        }
        let fits = go_mod_path_fits_major;
        assert!(fits("example.com/m", "") && fits("other.example/fork", ""));
        assert!(fits("gopkg.in/yaml.v1", "") && fits("gopkg.in/yaml.v3", ""));
        assert!(!fits("example.com/m/v2", "") && !fits("", "") && !fits("example.com/m/v1", ""));
        assert!(fits("example.com/m/v2", "/v2") && fits("gopkg.in/x.v2", "/v2"));
        assert!(fits("example.com/m/v2", ".v2") && !fits("example.com/m", ".v2"));
        assert!(!fits("example.com/m/v3", "/v2") && !fits("example.com/m", "/v2"));
    }

    #[test]
    fn glob_syntax_errors() {
        assert_eq!(glob_match(b"[", b"a"), Err(UNTERMINATED_CLASS));
        assert_eq!(glob_match(b"a[", b"b"), Err(UNTERMINATED_CLASS));
        assert_eq!(glob_match(b"[a-", b"a"), Err(UNTERMINATED_CLASS));
        assert_eq!(glob_match(b"\\", b"a"), Err(TRAILING_BACKSLASH));
        assert_eq!(glob_match(b"x*[", b"xyz"), Err(UNTERMINATED_CLASS));
        assert_eq!(glob_match(b"[]a]", b"a"), Err(MISPLACED_CLASS_CHAR));
        assert_eq!(
            path_match("a[", "b").unwrap_err().to_string(),
            "malformed pattern \"a[\": unterminated character class"
        );
        assert_eq!(check_pattern("[a-c]*"), Ok(()));
        assert!(check_pattern("ok/[").is_err());
        assert_eq!(prefix_for_pattern("a/*", "a/b/c"), Some("a/b"));
        assert_eq!(prefix_for_pattern("a/*", "a"), None);
        assert_eq!(prefix_for_pattern("a", "a"), Some("a"));
        assert_eq!(glob_match(b"*x", b"yx"), Ok(true));
        assert_eq!(glob_match(b"*", b"a/b"), Ok(false));
    }
}
