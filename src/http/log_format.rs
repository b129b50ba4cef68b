//! The plain-text log format, written without the generic formatter's
//! overhead for the common case.
//!
//! Every request logs one line, so the cost of formatting it is paid per
//! request. `tracing_subscriber`'s `Full` format spends most of its time in
//! machinery the plain (non-ANSI) output does not need: every piece goes
//! through `write!` and an ANSI style wrapper even when styles are off,
//! and the timestamp through several `Display` layers. [`PlainFormat`]
//! writes the same bytes directly for an event with no span in scope,
//! whose fields are of the common kinds, to a writer without ANSI
//! colours; for anything else (colours on, a span in scope, an event
//! forwarded from the `log` crate, error values, raw identifiers as field
//! names, a clock outside years 1970–9999) it hands the event to the
//! `Full` format itself. Tests compare both on every kind of event.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::SystemTime as FullTimer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The `Full` event format's output without its per-piece overhead; see
/// the module documentation.
#[derive(Debug, Default)]
pub struct PlainFormat {
    full: Format<Full, FullTimer>,
}

thread_local! {
    /// The line being built; kept per thread so that formatting does not
    /// allocate once it has grown to the longest line.
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

impl<S, N> FormatEvent<S, N> for PlainFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let simple = !writer.has_ansi_escapes()
            // Forwarded from the `log` crate: `Full` shows the record's
            // own target and level.
            && meta.fields().field("log.target").is_none()
            && ctx.event_scope().is_none();
        if simple {
            let written = LINE
                .try_with(|line| {
                    let Ok(mut line) = line.try_borrow_mut() else {
                        return None;
                    };
                    line.clear();
                    format_plain(&mut line, event, writer.sanitizes_ansi_escapes())?;
                    Some(writer.write_str(&line))
                })
                .ok()
                .flatten();
            if let Some(result) = written {
                return result;
            }
        }
        self.full.format_event(ctx, writer, event)
    }
}

/// Writes `event` as `Full` would, or returns `None` when it has something
/// only `Full` handles (the line is then left unfinished).
fn format_plain(line: &mut String, event: &Event<'_>, sanitize: bool) -> Option<()> {
    push_timestamp(line, SystemTime::now())?;
    line.push(' ');
    line.push_str(level_str(event.metadata().level()));
    line.push(' ');
    line.push_str(event.metadata().target());
    line.push_str(": ");
    let mut visitor = PlainVisitor {
        line,
        empty: true,
        sanitize,
        unsupported: false,
    };
    event.record(&mut visitor);
    if visitor.unsupported {
        return None;
    }
    line.push('\n');
    Some(())
}

/// The level as `Full` writes it without colours: five characters.
fn level_str(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => " INFO",
        Level::WARN => " WARN",
        _ => "ERROR",
    }
}

/// Seconds from 1970-01-01 to 10000-01-01: the years written with four
/// digits, the only ones formatted here.
const FOUR_DIGIT_YEARS_END: u64 = 253_402_300_800;

/// Appends `time` as `Full`'s default timer writes it,
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, microseconds); `None` outside
/// years 1970–9999.
fn push_timestamp(line: &mut String, time: SystemTime) -> Option<()> {
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    let secs = since_epoch.as_secs();
    if secs >= FOUR_DIGIT_YEARS_END {
        return None;
    }
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let of_day = secs % 86_400;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    put_digits(&mut out[0..4], year as u64);
    put_digits(&mut out[5..7], u64::from(month));
    put_digits(&mut out[8..10], u64::from(day));
    put_digits(&mut out[11..13], of_day / 3600);
    put_digits(&mut out[14..16], of_day / 60 % 60);
    put_digits(&mut out[17..19], of_day % 60);
    put_digits(&mut out[20..26], u64::from(since_epoch.subsec_micros()));
    // ASCII digits and separators only.
    line.push_str(std::str::from_utf8(&out).ok()?);
    Some(())
}

/// Writes the low `out.len()` decimal digits of `n`, zero-padded.
fn put_digits(out: &mut [u8], mut n: u64) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `Full`'s field visitor, writing straight into the line: fields
/// separated by spaces, the message as it is, every other field as
/// `name=value` with the value's `Debug` form.
struct PlainVisitor<'a> {
    line: &'a mut String,
    empty: bool,
    sanitize: bool,
    /// Set by anything left to `Full`.
    unsupported: bool,
}

impl PlainVisitor<'_> {
    /// The separator before a field, and whether the field is written at
    /// all (`log.` fields are the forwarded record's metadata).
    fn start(&mut self, name: &str) -> bool {
        if self.unsupported || name.starts_with("log.") {
            return false;
        }
        if name.starts_with("r#") {
            self.unsupported = true;
            return false;
        }
        if self.empty {
            self.empty = false;
        } else {
            self.line.push(' ');
        }
        true
    }

    /// `name=` for a field other than the message; `false` for the
    /// message, which is written bare.
    fn push_name(&mut self, name: &str) -> bool {
        if name == "message" {
            return false;
        }
        self.line.push_str(name);
        self.line.push('=');
        true
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if !self.start(name) {
            return;
        }
        if self.push_name(name) {
            if write!(self.line, "{value:?}").is_err() {
                self.unsupported = true;
            }
            return;
        }
        // The message, with terminal control characters escaped as `Full`
        // escapes them.
        let from = self.line.len();
        if write!(self.line, "{value:?}").is_err() {
            self.unsupported = true;
            return;
        }
        if self.sanitize && self.line[from..].chars().any(needs_escape) {
            let message = self.line.split_off(from);
            for c in message.chars() {
                push_escaped(self.line, c);
            }
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let name = field.name();
        if name == "message" {
            return self.record_debug(field, &value);
        }
        if self.start(name) {
            self.push_name(name);
            push_decimal(self.line, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let name = field.name();
        if name == "message" {
            return self.record_debug(field, &value);
        }
        if self.start(name) {
            self.push_name(name);
            if value < 0 {
                self.line.push('-');
            }
            push_decimal(self.line, value.unsigned_abs());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let name = field.name();
        if name == "message" {
            return self.record_debug(field, &value);
        }
        if self.start(name) {
            self.push_name(name);
            self.line.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_error(&mut self, _field: &Field, _value: &(dyn std::error::Error + 'static)) {
        self.unsupported = true;
    }
}

/// What `Full` escapes in messages: control characters a terminal acts on.
fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
    )
}

fn push_escaped(line: &mut String, c: char) {
    match c {
        '\x1b' => line.push_str("\\x1b"),
        '\x07' => line.push_str("\\x07"),
        '\x08' => line.push_str("\\x08"),
        '\x0c' => line.push_str("\\x0c"),
        '\x7f' => line.push_str("\\x7f"),
        '\u{80}'..='\u{9f}' => {
            let _ = write!(line, "\\u{{{:x}}}", c as u32);
        }
        c => line.push(c),
    }
}

fn push_decimal(line: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[start..] {
        line.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        }
    }

    #[derive(Debug)]
    struct Failure {
        source: Option<std::io::Error>,
    }
    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("it failed")
        }
    }
    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.as_ref().map(|e| e as _)
        }
    }

    /// Every kind of event the server logs, and some it might.
    fn emit_events() {
        let method = axum::http::Method::GET;
        let id = String::from("0123abcd-0000002a-00000001");
        tracing::info!(
            method = %method,
            path = %"/example.com/small/@v/v1.0.0.info",
            status = 200u16,
            duration_ms = 0.123_456_f64,
            request_id = %String::from_utf8_lossy(id.as_bytes()),
            "request"
        );
        tracing::info!(
            duration_ms = 12.0_f64,
            big = 1e300_f64,
            tiny = 1e-7_f64,
            "floats"
        );
        tracing::warn!(
            count = -42i64,
            zero = 0u64,
            max = u64::MAX,
            min = i64::MIN,
            "numbers"
        );
        tracing::error!(flag = true, other = false, "bools");
        tracing::debug!(text = "quoted \"value\"\n", "strings");
        tracing::info!("message with \x1b[31m escapes \u{85} and \x07 bell");
        tracing::info!(message = "message given as a field", extra = 1u64);
        tracing::info!(only = 1u64);
        tracing::info!(list = ?vec![1, 2, 3], shown = %"display", "debug and display");
        tracing::info!(r#type = "raw", "raw identifier");
        tracing::error!(
            error = &Failure { source: None } as &dyn std::error::Error,
            "an error"
        );
        tracing::error!(
            error = &Failure {
                source: Some(std::io::Error::other("inner"))
            } as &dyn std::error::Error,
            "an error with a source"
        );
        tracing::error!(text = "x", "{} formatted {:?}", 3, "args");
        tracing::trace!("trace level");
        let span = tracing::info_span!("outer", id = 7u64);
        span.in_scope(|| tracing::info!(inside = 1u64, "in a span"));
    }

    /// Lines of `emit_events` with the timestamp (27 bytes) cut off.
    fn lines_without_time(plain: bool, sanitize: bool) -> Vec<String> {
        let out = Capture::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .with_ansi_sanitization(sanitize)
            .with_max_level(tracing::Level::TRACE);
        if plain {
            let subscriber = builder.event_format(PlainFormat::default()).finish();
            tracing::subscriber::with_default(subscriber, emit_events);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit_events);
        }
        out.lines()
            .into_iter()
            .map(|line| {
                assert_eq!(line.as_bytes()[26], b'Z', "{line}");
                line[27..].to_string()
            })
            .collect()
    }

    #[test]
    fn lines_equal_the_full_formats_lines() {
        for sanitize in [true, false] {
            let ours = lines_without_time(true, sanitize);
            let full = lines_without_time(false, sanitize);
            assert_eq!(ours.len(), 15);
            assert_eq!(ours, full);
        }
        let ours = lines_without_time(true, true);
        assert_eq!(
            ours[0],
            "  INFO athens::http::log_format::tests: request method=GET \
             path=/example.com/small/@v/v1.0.0.info status=200 duration_ms=0.123456 \
             request_id=0123abcd-0000002a-00000001"
        );
    }

    #[test]
    fn colours_go_to_the_full_format() {
        let out = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(true)
            .event_format(PlainFormat::default())
            .finish();
        tracing::subscriber::with_default(subscriber, || tracing::info!(n = 1u64, "coloured"));
        let line = &out.lines()[0];
        assert!(line.contains("\x1b["), "{line}");
    }

    fn timestamp(secs: u64, micros: u32) -> Option<String> {
        let mut line = String::new();
        let time = UNIX_EPOCH + std::time::Duration::new(secs, micros * 1000 + 999);
        push_timestamp(&mut line, time)?;
        Some(line)
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(timestamp(0, 0).unwrap(), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            timestamp(1_796_374_211, 123_456).unwrap(),
            "2026-12-04T08:50:11.123456Z"
        );
        // Leap days, century rules and the last four-digit second.
        assert_eq!(
            timestamp(951_782_400, 1).unwrap(),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            timestamp(4_107_542_399, 999_999).unwrap(),
            "2100-02-28T23:59:59.999999Z"
        );
        assert_eq!(
            timestamp(4_107_542_400, 0).unwrap(),
            "2100-03-01T00:00:00.000000Z"
        );
        assert_eq!(
            timestamp(1_709_164_800, 0).unwrap(),
            "2024-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            timestamp(FOUR_DIGIT_YEARS_END - 1, 0).unwrap(),
            "9999-12-31T23:59:59.000000Z"
        );
        assert_eq!(timestamp(FOUR_DIGIT_YEARS_END, 0), None);
        assert_eq!(
            push_timestamp(
                &mut String::new(),
                UNIX_EPOCH - std::time::Duration::from_secs(1)
            ),
            None
        );
    }

    /// Every day from 1970 to 2400 against a day-by-day count.
    #[test]
    fn dates_follow_the_calendar() {
        let (mut year, mut month, mut day) = (1970i64, 1u32, 1u32);
        for days in 0..(430 * 366) {
            assert_eq!(civil_from_days(days), (year, month, day), "day {days}");
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let month_days = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > month_days {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
    }

    #[test]
    fn timestamps_equal_the_full_formats_clock() {
        // The default timer reads the clock itself: compare with ours read
        // just before and after, to the second (the microseconds move).
        let out = Capture::default();
        for _ in 0..5 {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(out.clone())
                .with_ansi(false)
                .finish();
            let mut before = String::new();
            push_timestamp(&mut before, SystemTime::now()).unwrap();
            tracing::subscriber::with_default(subscriber, || tracing::info!("tick"));
            let mut after = String::new();
            push_timestamp(&mut after, SystemTime::now()).unwrap();
            let lines = out.lines();
            let theirs = &lines.last().unwrap()[..27];
            if before[..19] == after[..19] {
                assert_eq!(&theirs[..19], &before[..19]);
                assert!(before.as_str() <= theirs && theirs <= after.as_str());
                return;
            }
        }
        panic!("the clock kept crossing second boundaries");
    }
}
