//! Invariants of Go's semver and pseudo-version syntax on arbitrary strings.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use modzip::{pseudo, semver};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (v, w) = s.split_once('\n').unwrap_or((s, "v1.0.0"));
    let canon = semver::canonical(v);
    if semver::is_valid(v) {
        assert!(semver::is_valid(&canon), "canonical of valid {v:?} is {canon:?}");
        assert_eq!(semver::canonical(&canon), canon, "canonical is idempotent");
        assert_eq!(semver::compare(v, &canon), Ordering::Equal);
        assert!(!semver::major(v).is_empty());
    } else {
        assert!(canon.is_empty());
        assert_eq!(semver::major(v), "");
    }
    assert_eq!(semver::compare(v, w), semver::compare(w, v).reverse());
    assert_eq!(semver::compare(v, v), Ordering::Equal);

    if pseudo::is_pseudo_version(v) {
        assert!(semver::is_valid(v));
        // A base can be refused (build metadata without a base), as in Go.
        if let Ok(base) = pseudo::pseudo_version_base(v) {
            assert!(base.is_empty() || semver::is_valid(&base));
        }
        let rev = pseudo::pseudo_version_rev(v).expect("rev of a pseudo-version");
        assert!(!rev.is_empty());
        // The shape admits impossible dates (month 19): Go rejects those
        // only when the time is read, so an error here is legitimate.
        let _ = pseudo::pseudo_version_time(v);
    }
});
