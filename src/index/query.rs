//! The feed's query and the Go parsers its settings need: the query string
//! as Go's `Request.FormValue` reads it, `strconv.Atoi`,
//! `time.Parse(time.RFC3339, …)` and `time.ParseDuration`.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Lines answered when the query has no `limit` (Athens' default; Athens
/// sets no maximum).
pub const DEFAULT_LIMIT: u64 = 2000;

/// A parsed `/index` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexQuery {
    /// Lines recorded at or after this time; the Unix epoch when absent.
    pub since: OffsetDateTime,
    /// At most this many lines (positive).
    pub limit: u64,
}

impl IndexQuery {
    /// Parses a raw query string. Like Go's `FormValue`, the first value of
    /// a key counts and an empty value is as good as none; a pair Go's
    /// `ParseQuery` drops (bad escape, `;`) is ignored.
    pub fn parse(raw: &str) -> Result<IndexQuery, String> {
        let mut query = IndexQuery {
            since: OffsetDateTime::UNIX_EPOCH,
            limit: DEFAULT_LIMIT,
        };
        if let Some(limit) = form_value(raw, "limit").filter(|v| !v.is_empty()) {
            query.limit = match go_atoi(&limit) {
                Some(n) if n > 0 => n as u64,
                Some(_) => return Err(format!("limit {limit:?} must be a positive integer")),
                None => return Err(format!("limit {limit:?} is not an integer")),
            };
        }
        if let Some(since) = form_value(raw, "since").filter(|v| !v.is_empty()) {
            query.since = parse_go_rfc3339(&since)
                .ok_or_else(|| format!("since {since:?} is not an RFC 3339 time"))?;
        }
        Ok(query)
    }
}

/// The first value of `key` in `raw`, unescaped as Go's `url.ParseQuery`
/// does (`+` is a space).
fn form_value(raw: &str, key: &str) -> Option<String> {
    raw.split('&')
        .filter(|pair| !pair.is_empty() && !pair.contains(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(k)?, unescape(v)?))
        })
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                let hi = hex(*b.get(i + 1)?)?;
                let lo = hex(*b.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `strconv.Atoi` on a 64-bit platform: an optional sign, then
/// decimal digits only, within `i64`.
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// What Go's `time.Parse(time.RFC3339, s)` accepts, as a time: its exact
/// form (`2006-01-02T15:04:05`, an optional `.digits` fraction, `Z` or
/// `±hh:mm`) and what its layout parser also takes (a one-digit hour, a
/// `,` before the fraction, zone offsets up to 24:60). Fields must be in
/// range, the day within its month; fraction digits past the ninth are
/// dropped.
pub fn parse_go_rfc3339(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let mut at = 0;
    let expect =
        |at: &mut usize, c: u8| -> Option<()> { (b.get(*at) == Some(&c)).then(|| *at += 1) };
    let fixed = |at: &mut usize, n: usize| -> Option<u32> {
        let digits = b.get(*at..*at + n)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *at += n;
        Some(digits.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0')))
    };
    let year = fixed(&mut at, 4)?;
    expect(&mut at, b'-')?;
    let month = fixed(&mut at, 2)?;
    expect(&mut at, b'-')?;
    let day = fixed(&mut at, 2)?;
    expect(&mut at, b'T')?;
    // The layout's hour takes one or two digits.
    let hour_digits = if b.get(at + 1).is_some_and(u8::is_ascii_digit) {
        2
    } else {
        1
    };
    let hour = fixed(&mut at, hour_digits)?;
    expect(&mut at, b':')?;
    let minute = fixed(&mut at, 2)?;
    expect(&mut at, b':')?;
    let second = fixed(&mut at, 2)?;
    let mut nanos = 0u32;
    if matches!(b.get(at), Some(b'.' | b',')) && b.get(at + 1).is_some_and(u8::is_ascii_digit) {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = &b[start..at.min(start + 9)];
        nanos = digits.iter().fold(0, |v, d| v * 10 + u32::from(d - b'0'))
            * 10u32.pow(9 - digits.len() as u32);
    }
    let offset_seconds: i32 = match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() => {
            let sign = if *sign == b'-' { -1 } else { 1 };
            at += 1;
            let hours = fixed(&mut at, 2)?;
            expect(&mut at, b':')?;
            let minutes = fixed(&mut at, 2)?;
            if hours > 24 || minutes > 60 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60) as i32
        }
        _ => return None,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = Date::from_calendar_date(year as i32, month, u8::try_from(day).ok()?).ok()?;
    let time = Time::from_hms_nano(hour as u8, minute as u8, second as u8, nanos).ok()?;
    // Offsets up to 24:60 are past what a UtcOffset holds: apply them as
    // a shift instead.
    let utc = PrimitiveDateTime::new(date, time).assume_utc()
        - time::Duration::seconds(i64::from(offset_seconds));
    Some(utc.to_offset(UtcOffset::UTC))
}

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal
/// numbers (fraction allowed) each with a unit of `ns`, `us` (`µs`),
/// `ms`, `s`, `m` or `h`; `0` alone is zero. Negative durations are
/// refused here (a timeout cannot be negative).
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if body == "0" {
        return Some(std::time::Duration::ZERO);
    }
    if body.is_empty() || body.starts_with('-') {
        return None;
    }
    let mut rest = body;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * nanos_per;
    }
    // Go refuses what overflows an int64 of nanoseconds.
    (total <= i64::MAX as f64).then(|| std::time::Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn rfc3339_as_go_parses_it() {
        for (input, want) in [
            ("2021-01-02T03:04:05Z", "2021-01-02T03:04:05Z"),
            ("2021-01-02T03:04:05.5Z", "2021-01-02T03:04:05.5Z"),
            ("2021-01-02T03:04:05,25Z", "2021-01-02T03:04:05.25Z"),
            ("2021-01-02T3:04:05Z", "2021-01-02T03:04:05Z"),
            ("2021-01-02T03:04:05+01:00", "2021-01-02T02:04:05Z"),
            ("2021-01-02T03:04:05-00:30", "2021-01-02T03:34:05Z"),
            ("2021-01-02T03:04:05+24:00", "2021-01-01T03:04:05Z"),
            (
                "2020-02-29T23:59:59.1234567891Z",
                "2020-02-29T23:59:59.123456789Z",
            ),
            ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"),
        ] {
            assert_eq!(parse_go_rfc3339(input), Some(utc(want)), "{input}");
        }
        for bad in [
            "",
            "2021-01-02",
            "2021-01-02 03:04:05Z",
            "2021-01-02t03:04:05Z",
            "2021-01-02T03:04:05",
            "2021-01-02T03:04:05z",
            "2021-13-02T03:04:05Z",
            "2021-02-29T03:04:05Z",
            "2021-01-02T24:00:00Z",
            "2021-01-02T03:60:05Z",
            "2021-01-02T03:04:60Z",
            "2021-01-02T03:04:05+25:00",
            "2021-01-02T03:04:05+01:61",
            "2021-01-02T03:04:05+0100",
            "2021-01-02T03:04:05.Z",
            "2021-01-02T03:04:05ZZ",
            "2021-1-02T03:04:05Z",
            "+021-01-02T03:04:05Z",
            "2021-01-02T003:04:05Z",
            "2021-01-02T03:04:05Z\n",
        ] {
            assert_eq!(parse_go_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn query_parameters_as_athens_reads_them() {
        let q = IndexQuery::parse("").unwrap();
        assert_eq!((q.since, q.limit), (OffsetDateTime::UNIX_EPOCH, 2000));
        let q = IndexQuery::parse("limit=5&since=2021-01-02T03:04:05%2B01:00").unwrap();
        assert_eq!((q.since, q.limit), (utc("2021-01-02T02:04:05Z"), 5));
        // The first value counts; an empty value is the default.
        assert_eq!(IndexQuery::parse("limit=7&limit=x").unwrap().limit, 7);
        assert_eq!(IndexQuery::parse("limit=&since=").unwrap().limit, 2000);
        assert_eq!(IndexQuery::parse("limit=%2B9").unwrap().limit, 9);
        // No maximum, as in Athens.
        assert_eq!(IndexQuery::parse("limit=100000").unwrap().limit, 100000);
        // Pairs Go drops are ignored.
        assert_eq!(IndexQuery::parse("limit=%zz&x=1").unwrap().limit, 2000);
        assert_eq!(IndexQuery::parse("limit=3;x=1").unwrap().limit, 2000);
        for bad in [
            "limit=0",
            "limit=-1",
            "limit=x",
            "limit=1.5",
            "limit= 5",
            "limit=99999999999999999999",
            "since=yesterday",
            "since=2021-01-02T03:04:05",
            "since=2021-01-02T03:04:05+01:00",
        ] {
            assert!(IndexQuery::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_as_go_parses_them() {
        use std::time::Duration;
        for (input, want) in [
            ("30s", Duration::from_secs(30)),
            ("0", Duration::ZERO),
            ("1m30s", Duration::from_secs(90)),
            ("1.5h", Duration::from_secs(5400)),
            ("250ms", Duration::from_millis(250)),
            ("10us", Duration::from_micros(10)),
            ("+2s", Duration::from_secs(2)),
        ] {
            assert_eq!(parse_go_duration(input), Some(want), "{input}");
        }
        for bad in ["", "30", "s", "-1s", "1x", "1..5s", "1s2"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
