//! Any byte string offered as a module zip must be judged without a panic.
//! A zip that passes the checks must unzip; zipping the unzipped tree again
//! (which drops what creation omits, such as vendored packages) must give a
//! canonical zip that extracts to a tree with the zip's own `h1:` hash.
//!
//! (The received zip's hash may differ from its tree's: like Go's HashZip,
//! `hash_zip` counts directory entries, which a tree does not have. Go
//! behaves the same way, so that is not asserted.)
#![no_main]

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use modzip::Version;

static RUN: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let m = Version {
        path: "example.com/m".to_string(),
        version: "v1.0.0".to_string(),
    };
    let checked = modzip::zip::check_zip(&m, Cursor::new(data));
    let hashed = modzip::dirhash::hash_zip(Cursor::new(data));
    let (Ok(cf), Ok(h1)) = (checked, hashed) else {
        return;
    };
    if cf.err().is_err() {
        return;
    }
    let dir = std::env::temp_dir().join(format!(
        "modzip-fuzz-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = h1;
    if modzip::zip::unzip(&dir, &m, Cursor::new(data)).is_ok() {
        modzip::dirhash::hash_dir(&dir, "example.com/m@v1.0.0")
            .expect("an unzipped tree must hash");
        let rezipped = modzip::zip::create_from_dir(Cursor::new(Vec::new()), &m, &dir)
            .expect("an unzipped tree must zip again")
            .into_inner();
        let again = modzip::zip::check_zip(&m, Cursor::new(&rezipped)).expect("re-zipped zip reads");
        assert!(again.err().is_ok(), "re-zipped zip fails its checks");
        let h2 = modzip::dirhash::hash_zip(Cursor::new(&rezipped)).expect("re-zipped zip hashes");
        let dir2 = dir.with_extension("again");
        modzip::zip::unzip(&dir2, &m, Cursor::new(&rezipped)).expect("a zip we create unzips");
        let tree2 = modzip::dirhash::hash_dir(&dir2, "example.com/m@v1.0.0").expect("tree hashes");
        let _ = std::fs::remove_dir_all(&dir2);
        assert_eq!(h2, tree2, "a zip we create hashes differently from the tree it extracts to");
    }
    let _ = std::fs::remove_dir_all(&dir);
});
