//! The module zip of a version (the `Zip` method of Go's
//! `cmd/go/internal/modfetch/coderepo.go`): the module directory's files at
//! that revision, plus the repository root's LICENSE for a module in a
//! subdirectory without its own, written in the canonical layout.

use std::io::{Read, Seek, Write};

use modzip::{module, pseudo};

use super::{ModuleRepo, ResolveError, MAX_LICENSE};
use crate::codehost::{CodeError, TreeFile};
use crate::phases::phase;

impl ModuleRepo {
    /// The `.zip` answer for canonical `version`, written to `w`: the files
    /// of the module directory (the repository root's LICENSE added for
    /// modules in subdirectories without their own), in the canonical
    /// module zip layout.
    pub fn zip<W: Write + Seek>(&self, version: &str, w: W) -> Result<W, ResolveError> {
        if version != module::canonical_version(version) {
            return Err(self.invalid(version, format!("version {version} is not canonical")));
        }
        if pseudo::is_pseudo_version(version) {
            self.stat(version)?;
        }
        let found = self.find_dir(version)?;
        let subdir = found.dir.trim_matches('/').to_string();
        let tree = phase!("zip_files")
            .in_scope(|| self.repo.files(&found.rev, &subdir))
            .map_err(|e| self.code_error(version, e))?;
        let mut entries: Vec<ZipEntry> = Vec::with_capacity(tree.len() + 1);
        let mut have_license = false;
        for file in tree {
            let path = file.path();
            if path.is_empty() || path.ends_with('/') {
                continue;
            }
            have_license |= path == "LICENSE";
            entries.push(ZipEntry::Tree(file));
        }
        if !have_license && !subdir.is_empty() {
            // A root LICENSE over the limit makes the go command's zip
            // invalid (it copies it whatever its size); any other failure
            // reading it just means none is copied.
            match self.repo.read_file(&found.rev, "LICENSE", MAX_LICENSE) {
                Ok(Some(data)) => entries.push(ZipEntry::Data {
                    path: "LICENSE".to_string(),
                    data,
                }),
                Err(refused @ CodeError::Refused(_)) => return Err(self.upstream(refused)),
                Ok(None) | Err(_) => {}
            }
        }
        let m = modzip::Version {
            path: self.module_path.clone(),
            version: version.to_string(),
        };
        let _writing = phase!("zip_write").entered();
        let written = match &self.deflate_cache {
            Some(cache) => modzip::zip::create_cached(w, &m, &entries, cache),
            None => modzip::zip::create(w, &m, &entries),
        };
        written.map_err(|source| ResolveError::Zip {
            module: self.module_path.clone(),
            version: version.to_string(),
            source: Box::new(source),
        })
    }
}

/// A file of the module zip: from the repository tree, or synthesized.
enum ZipEntry {
    Tree(TreeFile),
    Data { path: String, data: Vec<u8> },
}

impl modzip::zip::ModuleFile for ZipEntry {
    fn path(&self) -> &str {
        match self {
            ZipEntry::Tree(file) => file.path(),
            ZipEntry::Data { path, .. } => path,
        }
    }

    fn metadata(&self) -> std::io::Result<modzip::zip::FileMeta> {
        match self {
            ZipEntry::Tree(file) => file.metadata(),
            ZipEntry::Data { data, .. } => Ok(modzip::zip::FileMeta {
                kind: modzip::zip::FileKind::Regular,
                size: data.len() as u64,
            }),
        }
    }

    fn open(&self) -> std::io::Result<Box<dyn Read + '_>> {
        match self {
            ZipEntry::Tree(file) => file.open(),
            ZipEntry::Data { data, .. } => Ok(Box::new(data.as_slice())),
        }
    }

    fn content_key(&self) -> Option<&[u8]> {
        match self {
            ZipEntry::Tree(file) => file.content_key(),
            ZipEntry::Data { .. } => None,
        }
    }

    fn will_not_be_read(&self) {
        if let ZipEntry::Tree(file) = self {
            file.will_not_be_read();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::Arc;

    use crate::resolve::testrepo::{module, zip_names, FakeRepo, T0};
    use crate::resolve::ModuleRepo;

    #[test]
    fn major_subdirectory_layout_copies_license() {
        let mut r = FakeRepo::new();
        let c = r.commit(
            &[],
            T0,
            &[
                ("go.mod", "module example.com/m\n"),
                ("LICENSE", "root license\n"),
                ("v2/go.mod", "module example.com/m/v2\n"),
                ("v2/y.go", "package y\n"),
            ],
        );
        r.tag("v2.0.0", c);
        r.tag("v1.0.0", c);
        r.branch("main", c);
        let m = module(r, "example.com/m/v2", "example.com/m", None);
        assert_eq!(m.versions("").unwrap(), ["v2.0.0"]);
        assert_eq!(m.go_mod("v2.0.0").unwrap(), b"module example.com/m/v2\n");
        let names = zip_names(&m, "v2.0.0");
        assert_eq!(
            names,
            [
                "example.com/m/v2@v2.0.0/LICENSE",
                "example.com/m/v2@v2.0.0/go.mod",
                "example.com/m/v2@v2.0.0/y.go"
            ]
        );
    }

    #[test]
    fn license_is_copied_only_into_subdirectory_modules_without_one() {
        let mut r = FakeRepo::new();
        let c = r.commit(
            &[],
            T0,
            &[
                ("LICENSE", "root\n"),
                ("go.mod", "module example.com/repo\n"),
                ("a/go.mod", "module example.com/repo/a\n"),
                ("b/go.mod", "module example.com/repo/b\n"),
                ("b/LICENSE", "own\n"),
            ],
        );
        r.tag("a/v1.0.0", c);
        r.tag("b/v1.0.0", c);
        r.tag("v1.0.0", c);
        r.branch("main", c);
        let r = Arc::new(r);
        let a = ModuleRepo::new("example.com/repo/a", r.clone(), "example.com/repo", None).unwrap();
        let zipped = a
            .zip("v1.0.0", Cursor::new(Vec::new()))
            .unwrap()
            .into_inner();
        let checked = modzip::zip::check_zip(
            &modzip::Version::new("example.com/repo/a", "v1.0.0"),
            Cursor::new(zipped.clone()),
        )
        .unwrap();
        let mut valid = checked.valid.clone();
        valid.sort();
        assert_eq!(
            valid,
            [
                "example.com/repo/a@v1.0.0/LICENSE",
                "example.com/repo/a@v1.0.0/go.mod"
            ]
        );
        // The copied LICENSE carries the root's contents.
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a");
        modzip::zip::unzip(
            &out,
            &modzip::Version::new("example.com/repo/a", "v1.0.0"),
            Cursor::new(zipped),
        )
        .unwrap();
        assert_eq!(std::fs::read(out.join("LICENSE")).unwrap(), b"root\n");

        let b = ModuleRepo::new("example.com/repo/b", r.clone(), "example.com/repo", None).unwrap();
        let zipped = b
            .zip("v1.0.0", Cursor::new(Vec::new()))
            .unwrap()
            .into_inner();
        let checked = modzip::zip::check_zip(
            &modzip::Version::new("example.com/repo/b", "v1.0.0"),
            Cursor::new(zipped),
        )
        .unwrap();
        let mut valid = checked.valid;
        valid.sort();
        assert_eq!(
            valid,
            [
                "example.com/repo/b@v1.0.0/LICENSE",
                "example.com/repo/b@v1.0.0/go.mod"
            ]
        );

        let root = ModuleRepo::new("example.com/repo", r, "example.com/repo", None).unwrap();
        let names = zip_names(&root, "v1.0.0");
        // The root module holds everything except the nested modules' trees.
        assert!(names.iter().any(|n| n == "example.com/repo@v1.0.0/LICENSE"));
        assert!(!names.iter().any(|n| n.contains("/a/")));
    }
}
