//! Path checks never panic, and their strictness is ordered: every valid
//! module path is a valid import path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modzip::module;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let as_module = module::check_path(s);
    let as_import = module::check_import_path(s);
    let _ = module::check_file_path(s);
    if as_module.is_ok() {
        assert!(as_import.is_ok(), "{s:?} is a module path but not an import path");
    }
    if let Some((prefix, major)) = module::split_path_version(s) {
        assert_eq!(format!("{prefix}{major}"), s);
    }
    let _ = module::check("example.com/m", s);
});
