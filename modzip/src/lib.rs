//! Go module paths, versions, pseudo-versions, canonical module zips and
//! `h1:` hashes, computed exactly as the go command computes them.
//!
//! Nothing here touches the network or needs an async runtime: the crate is
//! the pure core that the fetcher (`vcs`) and the proxy server build on.
//!
//! Each module mirrors a package of golang.org/x/mod (or of the go command
//! where x/mod has none):
//!
//! - [`module`]: module, import and file path checks ([`module::check_path`]),
//!   case escaping for proxy URLs ([`module::escape_path`],
//!   [`module::escape_version`]) and major-version suffixes (`module`);
//! - [`semver`]: the go command's semantic versions (`semver`);
//! - [`pseudo`]: pseudo-versions for untagged commits (`module`'s
//!   pseudo-version half);
//! - [`zip`]: what goes in a module zip, writing it
//!   ([`zip::create`], [`zip::create_from_dir`]), checking one written
//!   elsewhere ([`zip::check_zip`]) and extracting it (`zip`);
//! - [`dirhash`]: the `h1:` hashes of go.sum ([`dirhash::hash_zip`],
//!   [`dirhash::hash_go_mod`]) (`sumdb/dirhash`);
//! - [`gomod`]: the module path and `go` directive of a go.mod, read as the
//!   go command's lax parser reads them (`modfile`);
//! - [`modfile`]: the requirement-graph directives of go.mod and go.work
//!   files (`require`, `exclude`, `replace`, `use`) (`modfile`);
//! - [`gover`]: Go toolchain version names (`go/version`).
//!
//! ```
//! use modzip::{module, pseudo, semver};
//!
//! // The proxy URL of a version: case-escaped path and version.
//! let url = format!(
//!     "/{}/@v/{}.info",
//!     module::escape_path("github.com/Masterminds/semver/v3")?,
//!     module::escape_version("v3.2.1")?,
//! );
//! assert_eq!(url, "/github.com/!masterminds/semver/v3/@v/v3.2.1.info");
//!
//! // Versions sort as the go command sorts them; pseudo-versions sit just
//! // after their base tag.
//! let mut list = vec![
//!     "v1.10.0".to_string(),
//!     "v1.2.1-0.20240302083000-0123456789ab".to_string(),
//!     "v1.2.0".to_string(),
//!     "v1.2.0-rc.1".to_string(),
//! ];
//! semver::sort(&mut list);
//! assert_eq!(
//!     list,
//!     ["v1.2.0-rc.1", "v1.2.0", "v1.2.1-0.20240302083000-0123456789ab", "v1.10.0"]
//! );
//! assert!(pseudo::is_pseudo_version(&list[2]));
//! assert_eq!(pseudo::pseudo_version_base(&list[2])?, "v1.2.0");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod dirhash;
pub mod gomod;
pub mod gover;
pub mod modfile;
pub mod module;
pub mod pseudo;
pub mod semver;
pub mod zip;

pub use module::Version;
