//! Spans around the phases of a download, for timing them.
//!
//! Each phase (listing the remote, receiving a pack, resolving the query,
//! listing the zip's files, reading blobs ahead, writing the zip) is a
//! span at debug level under the target [`TARGET`], and each piece of a
//! git response as it is read is an event there at trace level (a pack
//! arrives in many). A subscriber recording when these open and close
//! tells where a download spent its time (the fetch benchmark's
//! `FETCH_BENCH_PHASES=1` does); without one they cost an interest check
//! each.

/// The target of the phase spans and events.
pub const TARGET: &str = "vcs::phases";

/// A span for the phase `$name`, at debug level under [`TARGET`].
macro_rules! phase {
    ($name:literal) => {
        tracing::debug_span!(target: $crate::phases::TARGET, $name)
    };
}
pub(crate) use phase;
