//! Log records and the bodies the checksum database serves around them.
//!
//! A record is the go.sum text of one module version:
//!
//! ```text
//! example.com/m v1.0.0 h1:zip-hash
//! example.com/m v1.0.0/go.mod h1:go.mod-hash
//! ```
//!
//! `/lookup/M@V` answers `id\n` + record + `\n` followed by the signed tree
//! head note; a data tile is the records of its range, each followed by a
//! blank line.

use crate::tlog::TlogError;

/// The go.sum lines of one module version: the zip's and the go.mod's
/// `h1:` hashes.
pub fn gosum_record(path: &str, version: &str, zip_h1: &str, gomod_h1: &str) -> String {
    format!("{path} {version} {zip_h1}\n{path} {version}/go.mod {gomod_h1}\n")
}

/// Whether `text` may be a record: valid UTF-8, no control characters but
/// newline, no blank line, ending in a newline.
pub fn is_valid_record_text(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    text.ends_with('\n') && !text.contains("\n\n") && !text.chars().any(|c| c < ' ' && c != '\n')
}

/// The `/lookup` form of record `id`: `id\n` + text + `\n`. The signed tree
/// head follows it in a lookup answer.
pub fn format_record(id: i64, text: &[u8]) -> Result<Vec<u8>, TlogError> {
    if id < 0 || !is_valid_record_text(text) {
        return Err(TlogError::MalformedRecord);
    }
    let mut msg = format!("{id}\n").into_bytes();
    msg.extend_from_slice(text);
    msg.push(b'\n');
    Ok(msg)
}

/// A parsed `/lookup` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupAnswer<'a> {
    /// The record's position in the log.
    pub id: i64,
    /// The record (go.sum lines).
    pub text: &'a [u8],
    /// What follows: the signed tree head note.
    pub rest: &'a [u8],
}

/// Splits a `/lookup` answer into record id, record text and the tree note.
pub fn parse_record(msg: &[u8]) -> Result<LookupAnswer<'_>, TlogError> {
    let nl = msg
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(TlogError::MalformedRecord)?;
    let id = std::str::from_utf8(&msg[..nl])
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|id| *id >= 0)
        .ok_or(TlogError::MalformedRecord)?;
    let msg = &msg[nl + 1..];
    let end = msg
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or(TlogError::MalformedRecord)?;
    let (text, rest) = (&msg[..end + 1], &msg[end + 2..]);
    if !is_valid_record_text(text) {
        return Err(TlogError::MalformedRecord);
    }
    Ok(LookupAnswer { id, text, rest })
}

/// The contents of a data tile holding `records` (each a valid record text).
pub fn format_data_tile<'a>(
    records: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TlogError> {
    let mut data = Vec::new();
    for text in records {
        if !is_valid_record_text(text) {
            return Err(TlogError::MalformedRecord);
        }
        data.extend_from_slice(text);
        data.push(b'\n');
    }
    Ok(data)
}

/// Splits a data tile back into its records.
pub fn split_data_tile(data: &[u8]) -> Result<Vec<&[u8]>, TlogError> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\n\n")
            .ok_or(TlogError::MalformedRecord)?;
        records.push(&rest[..end + 1]);
        rest = &rest[end + 2..];
    }
    Ok(records)
}

/// The lines of `text` for `path` at `version` (`version` may end in
/// `/go.mod`), as the go command selects them from a lookup record: those
/// starting with `path version `.
pub fn lines_for<'t>(text: &'t str, path: &str, version: &str) -> Vec<&'t str> {
    let prefix = format!("{path} {version} ");
    text.split('\n')
        .filter(|l| l.starts_with(&prefix))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = "example.com/m v1.0.0 h1:AAA=\nexample.com/m v1.0.0/go.mod h1:BBB=\n";

    #[test]
    fn record_round_trip() {
        assert_eq!(
            gosum_record("example.com/m", "v1.0.0", "h1:AAA=", "h1:BBB="),
            REC
        );
        let mut msg = format_record(42, REC.as_bytes()).unwrap();
        msg.extend_from_slice(b"go.sum database tree\n...");
        let a = parse_record(&msg).unwrap();
        assert_eq!(a.id, 42);
        assert_eq!(a.text, REC.as_bytes());
        assert_eq!(a.rest, b"go.sum database tree\n...");
    }

    #[test]
    fn bad_records() {
        assert!(format_record(1, b"no newline").is_err());
        assert!(format_record(1, b"a\n\nb\n").is_err());
        assert!(format_record(1, b"a\tb\n").is_err());
        assert!(format_record(-1, b"a\n").is_err());
        for bad in [
            &b""[..],
            b"x\na\n\n",
            b"-1\na\n\n",
            b"1\na\n",
            b"1\na\tb\n\n",
            b"1\n\n",
            b"1\xff\na\n\n",
        ] {
            assert_eq!(
                parse_record(bad),
                Err(TlogError::MalformedRecord),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn data_tiles() {
        let recs = [REC.as_bytes(), b"b v1 h1:x\n"];
        let data = format_data_tile(recs).unwrap();
        assert_eq!(data, format!("{REC}\nb v1 h1:x\n\n").into_bytes());
        assert_eq!(split_data_tile(&data).unwrap(), recs.to_vec());
        assert!(split_data_tile(b"a\n").is_err());
        assert!(format_data_tile([&b"a"[..]]).is_err());
    }

    #[test]
    fn selecting_lines() {
        assert_eq!(
            lines_for(REC, "example.com/m", "v1.0.0"),
            vec!["example.com/m v1.0.0 h1:AAA="]
        );
        assert_eq!(
            lines_for(REC, "example.com/m", "v1.0.0/go.mod"),
            vec!["example.com/m v1.0.0/go.mod h1:BBB="]
        );
        assert!(lines_for(REC, "example.com", "v1.0.0").is_empty());
    }
}
