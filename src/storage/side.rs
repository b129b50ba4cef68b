//! Side objects: data a store keeps next to the module versions without
//! changing what Athens reads.
//!
//! - The checksum record of a stored version ([`SideKey::Sums`]): its
//!   zip and go.mod `h1:` sums as the two go.sum lines
//!   (`M V h1:...` and `M V/go.mod h1:...`). Disk stores keep it in the
//!   version directory as `<version>.gosum`, object stores as
//!   `<module>/@v/<version>.gosum`. Athens lists versions by their
//!   directories (disk) or by keys ending in `.info` (object stores), so
//!   the extra file is invisible to it.
//! - Reserved objects ([`SideKey::Reserved`]): the private checksum log
//!   and quarantined versions, under `.athens/` (a directory of the disk
//!   root, a key prefix of object stores). No module path starts with a
//!   dot, so nothing there can be taken for a module, and Athens' walks
//!   of the tree match only `.info` names, which reserved keys never end
//!   with.

use std::fmt;

/// The directory (disk) or key prefix (object stores) of reserved objects.
pub const RESERVED_PREFIX: &str = ".athens";

/// The file-name suffix of a version's checksum record.
pub const SUMS_SUFFIX: &str = "gosum";

/// Names one side object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideKey<'a> {
    /// The checksum record of `module@version`.
    Sums {
        /// Module path.
        module: &'a str,
        /// Canonical version.
        version: &'a str,
    },
    /// An object under [`RESERVED_PREFIX`]: a slash-separated relative
    /// path checked by [`check_reserved`].
    Reserved(&'a str),
}

impl<'a> SideKey<'a> {
    /// The checksum record of `module@version`.
    pub fn sums(module: &'a str, version: &'a str) -> Self {
        SideKey::Sums { module, version }
    }
}

impl fmt::Display for SideKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SideKey::Sums { module, version } => {
                write!(f, "{module}/@v/{version}.{SUMS_SUFFIX}")
            }
            SideKey::Reserved(path) => write!(f, "{RESERVED_PREFIX}/{path}"),
        }
    }
}

/// Checks that a reserved path is safe as a relative file path and as an
/// object key: non-empty elements of ASCII letters, digits and `-._~@+!`,
/// none of them `.` or `..`, none starting with `.tmp-` (the disk store's
/// temporary names).
pub fn check_reserved(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty reserved path".into());
    }
    for element in path.split('/') {
        if element.is_empty() || element == "." || element == ".." {
            return Err(format!(
                "reserved path {path:?} has an empty, . or .. element"
            ));
        }
        if element.starts_with(".tmp-") {
            return Err(format!("reserved path {path:?} uses a temporary name"));
        }
        if !element
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~@+!".contains(&b))
        {
            return Err(format!(
                "reserved path {path:?} has a character outside [A-Za-z0-9-._~@+!]"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_paths_are_checked() {
        for good in [
            "sumdb/log/latest",
            "quarantine/example.com/m/@v/v1.0.0.zip",
            "a",
        ] {
            check_reserved(good).unwrap();
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/./b", "a/.tmp-x", "a b", "a\\b", "é",
        ] {
            assert!(check_reserved(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Put, replace, read and delete, on the backends that need no
    /// service (the object stores run the same through `athens verify`'s
    /// tests).
    #[tokio::test]
    async fn side_objects_on_memory_and_disk() {
        use crate::storage::{DiskStorage, MemoryStorage, Storage};
        let root = tempfile::tempdir().unwrap();
        let disk = DiskStorage::new(root.path()).unwrap();
        let memory = MemoryStorage::new();
        for storage in [&disk as &dyn Storage, &memory] {
            let key = SideKey::Reserved("sumdb/log/latest");
            assert_eq!(storage.get_side(&key).await.unwrap(), None);
            storage.put_side(&key, &mut &b"one"[..]).await.unwrap();
            storage.put_side(&key, &mut &b"two"[..]).await.unwrap();
            assert_eq!(
                storage.get_side(&key).await.unwrap().as_deref(),
                Some(&b"two"[..])
            );
            storage.delete_side(&key).await.unwrap();
            storage.delete_side(&key).await.unwrap();
            assert_eq!(storage.get_side(&key).await.unwrap(), None);

            let sums = SideKey::sums("example.com/m", "v1.0.0");
            let err = storage.put_side(&sums, &mut &b"x"[..]).await.unwrap_err();
            assert!(err.is_not_found(), "{err}");
            for bad in [
                SideKey::Reserved("../escape"),
                SideKey::sums("../x", "v1.0.0"),
            ] {
                assert!(storage.put_side(&bad, &mut &b"x"[..]).await.is_err());
                assert_eq!(storage.get_side(&bad).await.unwrap(), None);
            }
        }
        // Nothing a disk walk could take for a version appeared.
        let names: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![RESERVED_PREFIX.to_string()]);
        assert!(disk.catalog("", 0).await.unwrap().entries.is_empty());
    }

    #[test]
    fn keys_display_as_object_keys() {
        assert_eq!(
            SideKey::sums("example.com/m", "v1.0.0").to_string(),
            "example.com/m/@v/v1.0.0.gosum"
        );
        assert_eq!(
            SideKey::Reserved("sumdb/x/latest").to_string(),
            ".athens/sumdb/x/latest"
        );
    }
}
