//! The log format of `CloudRuntime = "GCP"`, as Athens writes it for
//! Cloud Logging: one JSON object per line whose first keys are
//! `timestamp` (RFC 3339, whole seconds), `severity` (a Cloud Logging
//! `LogSeverity`: `DEBUG`, `INFO`, `WARNING` or `ERROR`) and `message`,
//! followed by the event's fields as top-level keys. `LogFormat` does not
//! apply then, as in Athens.
//!
//! Two details differ from Athens, whose logger writes to stdout in the
//! local time zone: lines go to stderr like every other format here, and
//! the timestamp is in UTC (`Z`), which Cloud Logging reads the same.

use std::fmt::{self, Write as _};

use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The `CloudRuntime` value that selects this format (compared exactly,
/// as Athens does).
pub const GCP_RUNTIME: &str = "GCP";

/// The event formatter; see the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct GcpFormat;

/// Cloud Logging's name for a level; anything else would be read as
/// `DEFAULT` severity. Trace lines are debug lines to it.
fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

impl<S, N> FormatEvent<S, N> for GcpFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = time::OffsetDateTime::now_utc();
        let timestamp = now
            .format(format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .map_err(|_| fmt::Error)?;
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        writer.write_str("{\"timestamp\":")?;
        write_json_str(&mut writer, &timestamp)?;
        writer.write_str(",\"severity\":\"")?;
        writer.write_str(severity(event.metadata().level()))?;
        writer.write_str("\",\"message\":")?;
        write_json_str(&mut writer, &fields.message)?;
        writer.write_str(&fields.rest)?;
        writer.write_str("}\n")
    }
}

/// Writes `text` as a JSON string.
fn write_json_str(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    // Serializing a string to JSON cannot fail.
    let quoted = serde_json::to_string(text).map_err(|_| fmt::Error)?;
    out.write_str(&quoted)
}

/// An event's fields: the message apart, the others as `,"key":value`.
#[derive(Default)]
struct JsonFields {
    message: String,
    rest: String,
}

impl JsonFields {
    fn push_raw(&mut self, field: &Field, json: &str) {
        let _ = write!(self.rest, ",");
        let _ = write_json_str(&mut self.rest, field.name());
        let _ = write!(self.rest, ":{json}");
    }

    fn push_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else if !field.name().starts_with("log.") {
            // `log.*` are the `log` crate's record details, which Athens'
            // lines do not carry.
            let _ = write!(self.rest, ",");
            let _ = write_json_str(&mut self.rest, field.name());
            let _ = write!(self.rest, ":");
            let _ = write_json_str(&mut self.rest, value);
        }
    }
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_str(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push_str(field, &format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push_str(field, &value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push_raw(field, &value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push_raw(field, &value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push_raw(field, if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match serde_json::Number::from_f64(value) {
            Some(number) => self.push_raw(field, &number.to_string()),
            // NaN and infinities have no JSON number.
            None => self.push_str(field, &value.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(log: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_writer(move || out.clone())
            .event_format(GcpFormat)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn lines_are_cloud_logging_json_with_fields_at_the_top() {
        let error = std::io::Error::other("disk \"full\"");
        let lines = lines_of(|| {
            tracing::info!(
                method = %"GET",
                status = 404u16,
                delta = -3i64,
                duration_ms = 1.5,
                cached = false,
                "request"
            );
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "slow {}",
                "storage"
            );
            tracing::error!("failed");
            tracing::debug!("detail");
            tracing::trace!("finer");
        });
        assert_eq!(lines.len(), 5, "{lines:?}");
        let first = &lines[0];
        // Key order as Athens writes it.
        assert!(first.starts_with("{\"timestamp\":\""), "{first}");
        let rest = first.split_once("\",\"severity\":\"INFO\",\"message\":\"request\",");
        assert!(rest.is_some(), "{first}");
        let value: serde_json::Value = serde_json::from_str(first).unwrap();
        let timestamp = value["timestamp"].as_str().unwrap();
        let parsed =
            time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(parsed.nanosecond(), 0);
        assert!(
            timestamp.ends_with('Z') && timestamp.len() == 20,
            "{timestamp}"
        );
        assert_eq!(value["method"], "GET");
        assert_eq!(value["status"], 404);
        assert_eq!(value["delta"], -3);
        assert_eq!(value["duration_ms"], 1.5);
        assert_eq!(value["cached"], false);
        assert_eq!(value.as_object().unwrap().len(), 8, "{first}");

        let warn: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(warn["severity"], "WARNING");
        assert_eq!(warn["message"], "slow storage");
        assert_eq!(warn["error"], "disk \"full\"");
        let severities: Vec<String> = lines[2..]
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["severity"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(severities, ["ERROR", "DEBUG", "DEBUG"]);
    }
}
