//! The checks the go command applies to what a module proxy returns, before
//! anything of it is kept: `.info` decoded as Go's JSON decoder decodes it
//! (field names matched without regard to case, `Time` in RFC 3339), a
//! canonical version that fits the request, a `.mod` that the go command's
//! lax go.mod parser accepts with a module path fitting the module's major
//! version, and a zip that passes every module zip rule with its data.

use std::path::Path;

use serde_json::Value;

use crate::fetch::RevInfo;

/// Decodes an `.info` or `@latest` body as the go command's JSON decoder
/// fills its `RevInfo`: unknown fields are ignored, known ones are matched
/// whatever their case and must have the right type (`null` leaves a field
/// unset), and `Time` must be RFC 3339 as Go's time decoder reads it.
pub(super) fn decode_info(body: &[u8]) -> Result<RevInfo, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid .info JSON: {e}"))?;
    let mut info = RevInfo {
        version: String::new(),
        time: String::new(),
        origin: None,
    };
    let fields = match value {
        // Go's decoder leaves the struct untouched for a top-level null.
        Value::Null => return Ok(info),
        Value::Object(fields) => fields,
        other => {
            return Err(format!(
                "invalid .info JSON: a {} where an object belongs",
                json_kind(&other)
            ))
        }
    };
    for (key, value) in fields {
        if key.eq_ignore_ascii_case("Version") {
            if let Some(v) = string_field(&key, value)? {
                info.version = v;
            }
        } else if key.eq_ignore_ascii_case("Time") {
            if let Some(t) = string_field(&key, value)? {
                if !is_go_rfc3339(&t) {
                    return Err(format!("invalid .info JSON: Time {t:?} is not RFC 3339"));
                }
                info.time = t;
            }
        } else if key.eq_ignore_ascii_case("Origin") {
            match value {
                Value::Null => {}
                Value::Object(origin) => {
                    for (name, field) in &origin {
                        let known = ORIGIN_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name));
                        if known && !matches!(field, Value::String(_) | Value::Null) {
                            return Err(format!(
                                "invalid .info JSON: Origin.{name} is a {}, not a string",
                                json_kind(field)
                            ));
                        }
                    }
                    info.origin = Some(Value::Object(origin));
                }
                other => {
                    return Err(format!(
                        "invalid .info JSON: Origin is a {}, not an object",
                        json_kind(&other)
                    ))
                }
            }
        }
    }
    Ok(info)
}

/// The string fields of the go command's `codehost.Origin`.
const ORIGIN_FIELDS: [&str; 8] = [
    "VCS",
    "URL",
    "Subdir",
    "Hash",
    "TagPrefix",
    "TagSum",
    "Ref",
    "RepoSum",
];

fn string_field(key: &str, value: Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        other => Err(format!(
            "invalid .info JSON: {key} is a {}, not a string",
            json_kind(&other)
        )),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether Go's time decoder reads `s` as RFC 3339 through its exact path:
/// `YYYY-MM-DDTHH:MM:SS`, an optional `.digits` fraction, then `Z` or
/// `±HH:MM`, every field in range (day within its month). Go falls back to
/// a looser layout parse for anything else (one-digit hours, a comma
/// before the fraction); no proxy writes such times, so they are refused.
pub(super) fn is_go_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 19 {
        return false;
    }
    let number = |range: std::ops::Range<usize>, min: u32, max: u32| -> Option<u32> {
        let digits = &b[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        (min..=max).contains(&n).then_some(n)
    };
    let separators =
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    let (Some(year), Some(month)) = (number(0..4, 0, 9999), number(5..7, 1, 12)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let fields = number(8..10, 1, days).is_some()
        && number(11..13, 0, 23).is_some()
        && number(14..16, 0, 59).is_some()
        && number(17..19, 0, 59).is_some();
    if !separators || !fields {
        return false;
    }
    let mut rest = &b[19..];
    if rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit() {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        rest = &rest[1 + digits..];
    }
    if rest == b"Z" {
        return true;
    }
    if rest.len() != 6 || !matches!(rest[0], b'+' | b'-') || rest[3] != b':' {
        return false;
    }
    let zone = |at: usize, max: u32| {
        rest[at..at + 2].iter().all(u8::is_ascii_digit)
            && u32::from(rest[at] - b'0') * 10 + u32::from(rest[at + 1] - b'0') <= max
    };
    zone(1, 23) && zone(4, 59)
}

/// Checks the version an `.info` answer resolved `rev` to: canonical, the
/// requested one itself when a canonical version valid for `module` was
/// asked for (the go command's rule), its `+incompatible` version when
/// the request can only mean that, and valid for `module`.
pub(super) fn check_info_version(module: &str, rev: &str, info: &RevInfo) -> Result<(), String> {
    let version = &info.version;
    if !modzip::module::is_canonical_version(version) {
        return Err(format!("version {version:?} is not canonical"));
    }
    if !rev.is_empty()
        && modzip::module::is_canonical_version(rev)
        && modzip::module::check(module, rev).is_ok()
        && version != rev
    {
        return Err(format!("returned info for version {version} instead"));
    }
    // vN.x.y of an unsuffixed path exists only as the same tag's
    // +incompatible version (the go command's Stat never answers another).
    if let Some(twin) = crate::protocol::incompatible_twin(module, rev) {
        if *version != twin {
            return Err(format!(
                "returned info for version {version} instead of {twin}"
            ));
        }
    }
    modzip::module::check(module, version)
        .map_err(|e| format!("returned version {version} that {module} cannot have: {e}"))
}

/// Checks a `.mod` answer for `module` as the go command reads a
/// dependency's go.mod: the lax parse must succeed and name a module path,
/// and that path must fit the module's major version (the rule the go
/// command applies to go.mod files it fetches itself; a fork declaring its
/// original path stays usable as a `replace` target).
pub(super) fn check_go_mod(module: &str, data: &[u8]) -> Result<(), String> {
    let parsed = modzip::gomod::parse_lax(data).map_err(|e| format!("invalid .mod: {e}"))?;
    let declared = parsed
        .module
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "invalid .mod: no module statement".to_string())?;
    let path_major = modzip::module::split_path_version(module).map_or("", |(_, major)| major);
    if !modzip::module::go_mod_path_fits_major(&declared, path_major) {
        return Err(format!(
            "invalid .mod: module path {declared:?} does not fit {module}"
        ));
    }
    Ok(())
}

/// Checks the zip at `path` for `module@version` with every rule the go
/// command applies when it unpacks a module (data and checksums included),
/// and that the `go.mod` inside, when there is one, is the `.mod` answer.
pub(super) fn check_zip(
    module: &str,
    version: &str,
    path: &Path,
    go_mod: &[u8],
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("reading downloaded zip: {e}"))?;
    let m = modzip::Version::new(module, version);
    let inside = modzip::zip::verify_zip(&m, std::io::BufReader::new(file))
        .map_err(|e| format!("invalid zip: {e}"))?;
    match inside {
        Some(inside) if inside != go_mod => {
            Err("invalid zip: its go.mod differs from the .mod answer".to_string())
        }
        _ => Ok(()),
    }
}
