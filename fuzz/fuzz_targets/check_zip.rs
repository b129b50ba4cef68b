//! Any byte string offered as a module zip must be judged without a panic.
//! A zip that passes the checks and hashes must unzip to a tree with the same
//! `h1:` hash: what we store and what the client extracts agree.
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
    if modzip::zip::unzip(&dir, &m, Cursor::new(data)).is_ok() {
        let tree = modzip::dirhash::hash_dir(&dir, "example.com/m@v1.0.0")
            .expect("an unzipped tree must hash");
        assert_eq!(tree, h1, "unzipped tree hashes differently from its zip");
    }
    let _ = std::fs::remove_dir_all(&dir);
});
