//! `athens pack`: a source directory in, GOPROXY files out.
//!
//! Everything that can be wrong with the input is checked before anything
//! is written; the three files are then produced in a private staging
//! directory inside OUTDIR and only renamed into place once all of them
//! exist, so a failure never leaves a partial version behind.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use modzip::module::{self, EscapeError, ModuleError};
use modzip::zip::ZipError;
use modzip::{dirhash, gomod, Version};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// What to pack and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRequest {
    /// Module root directory.
    pub dir: PathBuf,
    /// Module path.
    pub module: String,
    /// Canonical semantic version to publish as.
    pub version: String,
    /// GOPROXY root: files go to `OUT/<escaped module>/@v/`.
    pub out: PathBuf,
    /// RFC 3339 time for the `.info` file; now when absent.
    pub time: Option<String>,
}

/// The result of a successful pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// `h1:` hash of the zip.
    pub zip_hash: String,
    /// `h1:` hash of the `.mod` file.
    pub mod_hash: String,
    /// Where the `.info` file was written.
    pub info_path: PathBuf,
    /// Where the `.mod` file was written.
    pub mod_path: PathBuf,
    /// Where the `.zip` file was written.
    pub zip_path: PathBuf,
}

/// Why `pack` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The module path or version is invalid, or they do not match (path
    /// major version suffix against the version's major).
    #[error("{0}")]
    Module(#[from] ModuleError),
    /// The version is valid but not in canonical form.
    #[error("version {version:?} is not canonical (use {canonical:?})")]
    NotCanonical {
        /// Version given.
        version: String,
        /// Its canonical form.
        canonical: String,
    },
    /// The module path or version cannot be escaped for the proxy layout.
    #[error("{0}")]
    Escape(#[from] EscapeError),
    /// `--time` is not an RFC 3339 time.
    #[error("--time {value:?} is not an RFC 3339 time such as 2024-01-02T15:04:05Z")]
    BadTime {
        /// Value given.
        value: String,
    },
    /// DIR is missing or not a directory.
    #[error("{dir} is not a directory")]
    NotADirectory {
        /// The path given.
        dir: String,
    },
    /// DIR/go.mod declares another module (or none).
    #[error("{gomod} declares module {declared:?}, not {module:?}")]
    GoModMismatch {
        /// Path of the go.mod file.
        gomod: String,
        /// Module path it declares ("" when it has no module line).
        declared: String,
        /// Module path requested.
        module: String,
    },
    /// `+incompatible` versions are for trees without go.mod.
    #[error("version {version} is +incompatible but {gomod} exists")]
    IncompatibleWithGoMod {
        /// The version.
        version: String,
        /// The go.mod that rules it out.
        gomod: String,
    },
    /// The directory breaks a module zip rule (bad file name, case
    /// collision, size limit, ...).
    #[error("{dir} cannot be a module zip: {source}")]
    InvalidTree {
        /// The directory.
        dir: String,
        /// The rule it breaks.
        source: Box<ZipError>,
    },
    /// Writing the zip failed after the tree was checked.
    #[error("creating zip for {dir}: {source}")]
    Zip {
        /// The directory.
        dir: String,
        /// The failure.
        source: Box<ZipError>,
    },
    /// Hashing the written zip failed.
    #[error("hashing {path}: {source}")]
    Hash {
        /// The zip.
        path: String,
        /// The failure.
        source: dirhash::HashError,
    },
    /// A filesystem operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path involved.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl PackError {
    /// Whether the caller's input is at fault (as opposed to the system).
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            PackError::Io { .. } | PackError::Zip { .. } | PackError::Hash { .. }
        )
    }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PackError {
    let path = path.display().to_string();
    move |source| PackError::Io { what, path, source }
}

/// The `.info` document, with the go command's field names and order.
#[derive(Serialize)]
struct Info<'a> {
    #[serde(rename = "Version")]
    version: &'a str,
    #[serde(rename = "Time")]
    time: &'a str,
}

/// Everything validated and computed before touching OUTDIR.
struct Plan {
    module: Version,
    escaped_module: String,
    escaped_version: String,
    go_mod: Vec<u8>,
    info: Vec<u8>,
}

fn plan(req: &PackRequest) -> Result<Plan, PackError> {
    module::check(&req.module, &req.version)?;
    let canonical = module::canonical_version(&req.version);
    if canonical != req.version {
        return Err(PackError::NotCanonical {
            version: req.version.clone(),
            canonical,
        });
    }
    let escaped_module = module::escape_path(&req.module).map_err(EscapeError::from)?;
    let escaped_version = module::escape_version(&req.version)?;
    let time = match &req.time {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).map_err(|_| PackError::BadTime {
            value: text.clone(),
        })?,
        None => OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc()),
    };
    let time = time
        .to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .map_err(|_| PackError::BadTime {
            value: req.time.clone().unwrap_or_default(),
        })?;

    if !req.dir.is_dir() {
        return Err(PackError::NotADirectory {
            dir: req.dir.display().to_string(),
        });
    }
    let gomod_path = req.dir.join("go.mod");
    let go_mod = match std::fs::read(&gomod_path) {
        Ok(bytes) => {
            let declared = gomod::module_path(&bytes).unwrap_or_default();
            if declared != req.module {
                return Err(PackError::GoModMismatch {
                    gomod: gomod_path.display().to_string(),
                    declared,
                    module: req.module.clone(),
                });
            }
            if req.version.ends_with("+incompatible") {
                return Err(PackError::IncompatibleWithGoMod {
                    version: req.version.clone(),
                    gomod: gomod_path.display().to_string(),
                });
            }
            bytes
        }
        // The go command synthesises this for modules without a go.mod.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("module {}\n", req.module).into_bytes()
        }
        Err(e) => return Err(io_err("reading", &gomod_path)(e)),
    };

    let invalid = |source| PackError::InvalidTree {
        dir: req.dir.display().to_string(),
        source: Box::new(source),
    };
    modzip::zip::check_dir(&req.dir)
        .map_err(invalid)?
        .err()
        .map_err(invalid)?;

    let info = serde_json::to_vec(&Info {
        version: &req.version,
        time: &time,
    })
    .map_err(|e| io_err("encoding info for", &req.dir)(std::io::Error::other(e)))?;
    Ok(Plan {
        module: Version {
            path: req.module.clone(),
            version: req.version.clone(),
        },
        escaped_module,
        escaped_version,
        go_mod,
        info,
    })
}

/// Removes OUTDIR again if this run created it and a later step failed.
struct CreatedDir {
    path: Option<PathBuf>,
}

impl Drop for CreatedDir {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            // Only succeeds when empty, which is the point: never delete
            // anything but what this run made.
            let _ = std::fs::remove_dir(path);
        }
    }
}

/// Validates the request, then writes `VER.info`, `VER.mod` and `VER.zip`
/// under `OUT/<escaped module>/@v/` and records the version in `@v/list`.
pub fn pack(req: &PackRequest) -> Result<Packed, PackError> {
    let plan = plan(req)?;

    let mut created = CreatedDir { path: None };
    if !req.out.exists() {
        std::fs::create_dir_all(&req.out).map_err(io_err("creating", &req.out))?;
        created.path = Some(req.out.clone());
    }
    let staging = tempfile::Builder::new()
        .prefix(".athens-pack-")
        .tempdir_in(&req.out)
        .map_err(io_err("creating staging directory in", &req.out))?;

    let zip_tmp = staging.path().join("zip");
    let file = File::create(&zip_tmp).map_err(io_err("creating", &zip_tmp))?;
    let file = modzip::zip::create_from_dir(file, &plan.module, &req.dir).map_err(|source| {
        PackError::Zip {
            dir: req.dir.display().to_string(),
            source: Box::new(source),
        }
    })?;
    file.sync_all().map_err(io_err("writing", &zip_tmp))?;
    drop(file);
    let zip_file = File::open(&zip_tmp).map_err(io_err("reopening", &zip_tmp))?;
    let zip_hash = dirhash::hash_zip(zip_file).map_err(|source| PackError::Hash {
        path: zip_tmp.display().to_string(),
        source,
    })?;
    let mod_hash = dirhash::hash_go_mod(&plan.go_mod);

    let mod_tmp = staging.path().join("mod");
    write_file(&mod_tmp, &plan.go_mod)?;
    let info_tmp = staging.path().join("info");
    write_file(&info_tmp, &plan.info)?;

    let version_dir = req.out.join(&plan.escaped_module).join("@v");
    let list_path = version_dir.join("list");
    let list_tmp = staging.path().join("list");
    let mut list = match std::fs::read_to_string(&list_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err("reading", &list_path)(e)),
    };
    if !list.lines().any(|line| line.trim() == req.version) {
        if !list.is_empty() && !list.ends_with('\n') {
            list.push('\n');
        }
        list.push_str(&req.version);
        list.push('\n');
    }
    write_file(&list_tmp, list.as_bytes())?;

    std::fs::create_dir_all(&version_dir).map_err(io_err("creating", &version_dir))?;
    created.path = None;
    let target = |ext: &str| version_dir.join(format!("{}.{ext}", plan.escaped_version));
    let (mod_path, zip_path, info_path) = (target("mod"), target("zip"), target("info"));
    // The .info file goes last: its presence is what makes a version exist
    // for proxy clients.
    for (from, to) in [
        (&mod_tmp, &mod_path),
        (&zip_tmp, &zip_path),
        (&info_tmp, &info_path),
        (&list_tmp, &list_path),
    ] {
        std::fs::rename(from, to).map_err(io_err("moving into place", to))?;
    }
    Ok(Packed {
        zip_hash,
        mod_hash,
        info_path,
        mod_path,
        zip_path,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), PackError> {
    let mut file = File::create(path).map_err(io_err("creating", path))?;
    file.write_all(bytes).map_err(io_err("writing", path))?;
    file.sync_all().map_err(io_err("writing", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dir: &Path, out: &Path, module: &str, version: &str) -> PackRequest {
        PackRequest {
            dir: dir.to_path_buf(),
            module: module.into(),
            version: version.into(),
            out: out.to_path_buf(),
            time: Some("2023-04-05T06:07:08+02:00".into()),
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn packs_into_proxy_layout() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(
            src.path().join("go.mod"),
            "module example.com/Upper/v2\n\ngo 1.22\n",
        )
        .unwrap();
        std::fs::write(src.path().join("a.go"), "package a\n").unwrap();
        let out = tempfile::tempdir().unwrap();
        let req = request(src.path(), out.path(), "example.com/Upper/v2", "v2.0.0-RC1");
        let packed = pack(&req).unwrap();
        let vdir = out.path().join("example.com/!upper/v2/@v");
        assert_eq!(packed.info_path, vdir.join("v2.0.0-!r!c1.info"));
        assert_eq!(
            std::fs::read_to_string(&packed.info_path).unwrap(),
            r#"{"Version":"v2.0.0-RC1","Time":"2023-04-05T04:07:08Z"}"#
        );
        assert_eq!(
            std::fs::read(&packed.mod_path).unwrap(),
            std::fs::read(src.path().join("go.mod")).unwrap()
        );
        assert_eq!(
            packed.mod_hash,
            dirhash::hash_go_mod(b"module example.com/Upper/v2\n\ngo 1.22\n")
        );
        let zip = File::open(&packed.zip_path).unwrap();
        assert_eq!(dirhash::hash_zip(zip).unwrap(), packed.zip_hash);
        assert_eq!(
            std::fs::read_to_string(vdir.join("list")).unwrap(),
            "v2.0.0-RC1\n"
        );
        // Packing again is idempotent for the list and leaves no staging.
        pack(&req).unwrap();
        assert_eq!(
            std::fs::read_to_string(vdir.join("list")).unwrap(),
            "v2.0.0-RC1\n"
        );
        assert_eq!(entries(out.path()), ["example.com"]);
    }

    #[test]
    fn synthesizes_go_mod() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("a.go"), "package a\n").unwrap();
        let out = tempfile::tempdir().unwrap();
        let packed = pack(&request(src.path(), out.path(), "example.com/a", "v1.0.0")).unwrap();
        assert_eq!(
            std::fs::read(&packed.mod_path).unwrap(),
            b"module example.com/a\n"
        );
    }

    #[test]
    fn refuses_bad_input_without_writing() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("go.mod"), "module example.com/a\n").unwrap();
        let bad_names = tempfile::tempdir().unwrap();
        std::fs::write(bad_names.path().join("a.go"), "").unwrap();
        std::fs::write(bad_names.path().join("A.go"), "").unwrap();
        let out = tempfile::tempdir().unwrap();
        let fresh = out.path().join("fresh");
        let cases = [
            request(src.path(), out.path(), "example.com/a", "v1.0"),
            request(src.path(), out.path(), "example.com/a", "1.0.0"),
            request(src.path(), out.path(), "example.com/a", "v2.0.0"),
            request(
                src.path(),
                out.path(),
                "example.com/a",
                "v1.0.0+incompatible",
            ),
            request(src.path(), out.path(), "not a path", "v1.0.0"),
            request(src.path(), out.path(), "example.com/b", "v1.0.0"),
            request(
                &src.path().join("nope"),
                out.path(),
                "example.com/a",
                "v1.0.0",
            ),
            request(bad_names.path(), &fresh, "example.com/a", "v1.0.0"),
            PackRequest {
                time: Some("yesterday".into()),
                ..request(src.path(), out.path(), "example.com/a", "v1.0.0")
            },
        ];
        for req in &cases {
            let err = pack(req).expect_err(&format!("accepted {req:?}"));
            assert!(err.is_bad_input(), "{err}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        assert!(entries(out.path()).is_empty(), "{:?}", entries(out.path()));
        assert!(!fresh.exists());
    }
}
