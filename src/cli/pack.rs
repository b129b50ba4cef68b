//! `athens pack`: a source directory in, GOPROXY files (or an Athens disk
//! store entry) out.
//!
//! Everything that can be wrong with the input is checked before anything
//! is written; the three files are then produced in a private staging
//! directory inside OUTDIR and only moved into place once all of them
//! exist, so a failure never leaves a partial version behind.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use athens::storage::{DiskStorage, Storage, StorageError};
use bytes::Bytes;
use modzip::module::{self, EscapeError, ModuleError};
use modzip::zip::ZipError;
use modzip::{dirhash, gomod, Version};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// How the packed files are laid out under OUTDIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// A GOPROXY tree, `OUT/<escaped module>/@v/VER.{info,mod,zip}` plus
    /// `@v/list`, which `GOPROXY=file:///OUT` serves.
    #[default]
    GoProxy,
    /// Athens' disk storage, `OUT/<module>/<version>/{go.mod,source.zip,
    /// <version>.info}`, so a server with `StorageType = "disk"` and
    /// `RootPath = OUT` serves the version without fetching it.
    Athens,
}

impl Layout {
    /// The layout named `name` on the command line (`goproxy`, `athens`).
    pub fn from_name(name: &str) -> Option<Layout> {
        match name {
            "goproxy" => Some(Layout::GoProxy),
            "athens" => Some(Layout::Athens),
            _ => None,
        }
    }
}

/// What to pack and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRequest {
    /// Module root directory.
    pub dir: PathBuf,
    /// Module path.
    pub module: String,
    /// Canonical semantic version to publish as.
    pub version: String,
    /// Output root: a GOPROXY tree or an Athens disk store, per `layout`.
    pub out: PathBuf,
    /// RFC 3339 time for the `.info` file; now when absent.
    pub time: Option<String>,
    /// How files are laid out under `out`.
    pub layout: Layout,
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
    /// The Athens store already holds this version with other content;
    /// stored versions are immutable, so it is left as it is.
    #[error("{module}@{version} is already stored under {root} with a different {file}")]
    AlreadyStored {
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The storage root.
        root: String,
        /// Which stored file differs.
        file: &'static str,
    },
    /// Saving into the Athens store failed.
    #[error("storing into {root}: {source}")]
    Store {
        /// The storage root.
        root: String,
        /// The failure.
        source: Box<StorageError>,
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
            PackError::Io { .. }
                | PackError::Zip { .. }
                | PackError::Hash { .. }
                | PackError::Store { .. }
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
    // A go.mod that is a directory is no go.mod, as for the go command
    // (CreateFromDir reads no go version from it and zips the files inside
    // it like any others): the module gets the synthesized one.
    let gomod_is_dir = std::fs::symlink_metadata(&gomod_path).is_ok_and(|m| m.is_dir());
    let read_gomod = if gomod_is_dir {
        Err(std::io::ErrorKind::NotFound.into())
    } else {
        std::fs::read(&gomod_path)
    };
    let go_mod = match read_gomod {
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
/// under `OUT/<escaped module>/@v/` and records the version in `@v/list`
/// or, for [`Layout::Athens`], stores the version in the disk store at OUT.
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

    if req.layout == Layout::Athens {
        let (mod_path, zip_path, info_path) = store_in_athens(req, &plan, &zip_tmp)?;
        created.path = None;
        return Ok(Packed {
            zip_hash,
            mod_hash,
            info_path,
            mod_path,
            zip_path,
        });
    }

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

/// Saves the version through the disk storage backend itself, so the
/// entry is exactly what the server would have stored (and appears
/// atomically). Packing the same content again is a no-op; different
/// content for a stored version is refused. Returns the go.mod, zip and
/// info paths.
fn store_in_athens(
    req: &PackRequest,
    plan: &Plan,
    zip_tmp: &Path,
) -> Result<(PathBuf, PathBuf, PathBuf), PackError> {
    let root = req.out.display().to_string();
    let store_err = |source: StorageError| PackError::Store {
        root: root.clone(),
        source: Box::new(source),
    };
    let storage = DiskStorage::new(&req.out).map_err(&store_err)?;
    let (module, version) = (&plan.module.path, &plan.module.version);
    let version_dir = req.out.join(module).join(version);
    let paths = (
        version_dir.join("go.mod"),
        version_dir.join("source.zip"),
        version_dir.join(format!("{version}.info")),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the storage runtime for", &req.out))?;
    let stored = runtime
        .block_on(storage.exists(module, version))
        .map_err(&store_err)?;
    if stored {
        for (file, ours, theirs) in [
            ("go.mod", plan.go_mod.clone(), &paths.0),
            (
                "source.zip",
                std::fs::read(zip_tmp).map_err(io_err("reading", zip_tmp))?,
                &paths.1,
            ),
        ] {
            if std::fs::read(theirs).map_err(io_err("reading", theirs))? != ours {
                return Err(PackError::AlreadyStored {
                    module: module.clone(),
                    version: version.clone(),
                    root,
                    file,
                });
            }
        }
        return Ok(paths);
    }
    runtime
        .block_on(async {
            let mut zip =
                tokio::fs::File::open(zip_tmp)
                    .await
                    .map_err(|source| StorageError::ZipSource {
                        module: module.clone(),
                        version: version.clone(),
                        source,
                    })?;
            storage
                .save(
                    module,
                    version,
                    Bytes::from(plan.go_mod.clone()),
                    &mut zip,
                    Bytes::from(plan.info.clone()),
                )
                .await
        })
        .map_err(&store_err)?;
    Ok(paths)
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
            layout: Layout::GoProxy,
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
    fn packs_into_athens_disk_store() {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("go.mod"), "module example.com/Up/m\n").unwrap();
        std::fs::write(src.path().join("a.go"), "package m\n").unwrap();
        let root = tempfile::tempdir().unwrap();
        let req = PackRequest {
            layout: Layout::Athens,
            ..request(src.path(), root.path(), "example.com/Up/m", "v1.2.0")
        };
        let packed = pack(&req).unwrap();
        // Athens keeps module paths unescaped and has no list file.
        let vdir = root.path().join("example.com/Up/m/v1.2.0");
        assert_eq!(packed.mod_path, vdir.join("go.mod"));
        assert_eq!(packed.zip_path, vdir.join("source.zip"));
        assert_eq!(packed.info_path, vdir.join("v1.2.0.info"));
        assert_eq!(entries(&vdir), ["go.mod", "source.zip", "v1.2.0.info"]);
        assert_eq!(
            std::fs::read_to_string(&packed.info_path).unwrap(),
            r#"{"Version":"v1.2.0","Time":"2023-04-05T04:07:08Z"}"#
        );
        let zip = File::open(&packed.zip_path).unwrap();
        assert_eq!(dirhash::hash_zip(zip).unwrap(), packed.zip_hash);
        assert_eq!(entries(root.path()), ["example.com"]);

        // The same content again is accepted; other content is refused and
        // the stored copy kept.
        assert_eq!(pack(&req).unwrap(), packed);
        std::fs::write(src.path().join("b.go"), "package m\n").unwrap();
        let err = pack(&req).unwrap_err();
        assert!(
            matches!(
                err,
                PackError::AlreadyStored {
                    file: "source.zip",
                    ..
                }
            ),
            "{err}"
        );
        let zip = File::open(&packed.zip_path).unwrap();
        assert_eq!(dirhash::hash_zip(zip).unwrap(), packed.zip_hash);
        assert_eq!(entries(root.path()), ["example.com"]);

        // A new store root is created, ready for the server.
        let fresh = PackRequest {
            out: root.path().join("fresh"),
            ..req.clone()
        };
        pack(&fresh).unwrap();
        assert!(fresh.out.join("example.com/Up/m/v1.2.0/go.mod").is_file());
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

    /// A go.mod that is a directory is zipped like any directory and the
    /// module has no go.mod file, as with golang.org/x/mod's CreateFromDir;
    /// a go.mod directory below the root does not make a nested module.
    #[test]
    fn a_go_mod_directory_is_an_ordinary_directory() {
        let src = tempfile::tempdir().unwrap();
        let write = |path: &str| {
            let full = src.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, format!("// {path}\n")).unwrap();
        };
        for path in [
            "a.go",
            "go.mod/x.go",
            "sub/go.mod/y.go",
            "sub/s.go",
            "nested/go.mod",
            "nested/n.go",
        ] {
            write(path);
        }
        let out = tempfile::tempdir().unwrap();
        // No go.mod file: +incompatible is allowed, and the .mod is the
        // synthesized one.
        let req = request(
            src.path(),
            out.path(),
            "example.com/a",
            "v2.0.0+incompatible",
        );
        let packed = pack(&req).unwrap();
        assert_eq!(
            std::fs::read(&packed.mod_path).unwrap(),
            b"module example.com/a\n"
        );
        let m = Version {
            path: "example.com/a".into(),
            version: "v2.0.0+incompatible".into(),
        };
        let checked = modzip::zip::check_zip(&m, File::open(&packed.zip_path).unwrap()).unwrap();
        checked.err().unwrap();
        let mut names = checked.valid.clone();
        names.sort();
        let prefix = "example.com/a@v2.0.0+incompatible/";
        assert_eq!(
            names,
            ["a.go", "go.mod/x.go", "sub/go.mod/y.go", "sub/s.go"].map(|p| format!("{prefix}{p}"))
        );
        let zip_go_mod =
            modzip::zip::verify_zip(&m, File::open(&packed.zip_path).unwrap()).unwrap();
        assert_eq!(zip_go_mod, None);
        // The same tree as v1.0.0: nothing to compare a module path with.
        pack(&request(src.path(), out.path(), "example.com/a", "v1.0.0")).unwrap();
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
