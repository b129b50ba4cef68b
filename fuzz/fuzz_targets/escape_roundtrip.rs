//! Case-escaping is a bijection between valid paths (or versions) and their
//! escaped forms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modzip::module;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(escaped) = module::escape_path(s) {
        assert_eq!(module::unescape_path(&escaped).as_deref().ok(), Some(s));
    }
    if let Ok(unescaped) = module::unescape_path(s) {
        assert_eq!(module::escape_path(&unescaped).as_deref().ok(), Some(s));
    }
    if let Ok(escaped) = module::escape_version(s) {
        assert_eq!(module::unescape_version(&escaped).as_deref().ok(), Some(s));
    }
    if let Ok(unescaped) = module::unescape_version(s) {
        assert_eq!(module::escape_version(&unescaped).as_deref().ok(), Some(s));
    }
});
