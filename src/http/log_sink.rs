//! Where log lines go: stderr, written by a background thread for the
//! lines of every request, so that serving never waits for a `write`.
//!
//! - Lines at `info` and below (the per-request line among them) are
//!   appended to an in-memory buffer of at most [`BUFFER_LIMIT`] bytes; a
//!   writer thread wakes when the buffer stops being empty, lets lines
//!   gather for a few milliseconds and writes them with one `write` (under
//!   load, one call carries many lines, and the thread wakes a few hundred
//!   times a second rather than once per request).
//! - When the buffer is full (stderr is stalled, or slower than the
//!   request rate for long), new `info`/`debug` lines are **dropped**
//!   rather than making requests wait; how many is counted and reported
//!   by a `warn` line as soon as the output moves again. A stalled log
//!   consumer must not stall the proxy.
//! - `warn` and `error` lines are written at once, on the thread that
//!   logs them, after everything still buffered: they are rare, they are
//!   never dropped, order is kept, and a crash right after one cannot
//!   lose it.
//! - [`LogGuard`] (held by `main`) writes what is left when dropped; lines
//!   logged after that are written at once.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

/// Most bytes of lines waiting for the writer thread; beyond it lines are
/// dropped. About 10,000 request lines: a quarter of a second of logs at
/// the highest request rates measured on a small machine.
pub const BUFFER_LIMIT: usize = 2 << 20;

/// How long the writer thread lets lines gather after the first one wakes
/// it: request lines reach the output this much later at most.
const GATHER_LINES_FOR: std::time::Duration = std::time::Duration::from_millis(5);

/// The `MakeWriter` of the log subscriber; see the module documentation.
#[derive(Clone)]
pub struct LogSink {
    shared: Arc<Shared>,
}

struct Shared {
    /// Lines not yet written, and the writer thread's state.
    state: Mutex<Pending>,
    /// Signalled when `state` gains lines while the writer thread sleeps,
    /// and on close.
    wake: Condvar,
    /// The output. Whoever writes holds it from taking the pending lines
    /// until they are written, so lines reach it in the order logged.
    out: Mutex<Box<dyn Write + Send>>,
    limit: usize,
}

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// Lines refused since the last report.
    dropped: u64,
    /// The writer thread is waiting on `wake`.
    sleeping: bool,
    /// The writer thread has stopped (or never ran): write directly.
    closed: bool,
}

impl Shared {
    fn lock_state(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave `Pending` invalid.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_out(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues one line for the writer thread, or drops it when the buffer
    /// is full; writes it directly once the thread has stopped.
    fn queue(&self, line: &[u8]) {
        let mut state = self.lock_state();
        if state.closed {
            drop(state);
            self.write_now(line);
            return;
        }
        if state.lines.len() + line.len() > self.limit {
            state.dropped += 1;
            return;
        }
        state.lines.extend_from_slice(line);
        let wake = std::mem::take(&mut state.sleeping);
        drop(state);
        if wake {
            self.wake.notify_one();
        }
    }

    /// Writes whatever is pending, then `line`, on the calling thread.
    fn write_now(&self, line: &[u8]) {
        let mut out = self.lock_out();
        let (pending, dropped) = {
            let mut state = self.lock_state();
            (
                std::mem::take(&mut state.lines),
                std::mem::take(&mut state.dropped),
            )
        };
        // Write errors are ignored, as the standard stderr writer's are:
        // there is nowhere left to report them.
        let _ = out.write_all(&pending);
        let _ = out.write_all(line);
        let _ = out.flush();
        drop(out);
        if dropped > 0 {
            report_dropped(dropped);
        }
    }

    /// The writer thread: waits for lines, writes them, until closed and
    /// nothing is left.
    fn run(&self) {
        let mut spare = Vec::new();
        loop {
            {
                let mut state = self.lock_state();
                while state.lines.is_empty() && state.dropped == 0 && !state.closed {
                    state.sleeping = true;
                    state = self.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                if state.closed && state.lines.is_empty() && state.dropped == 0 {
                    return;
                }
                if !state.closed {
                    drop(state);
                    // Woken by the first line: let more gather before the
                    // write. Producers do not signal while this thread is
                    // not waiting, so under load the thread wakes at most
                    // once per interval instead of once per request, and a
                    // busy server stops paying a context switch per line.
                    std::thread::sleep(GATHER_LINES_FOR);
                }
            }
            let mut out = self.lock_out();
            let dropped = {
                let mut state = self.lock_state();
                std::mem::swap(&mut state.lines, &mut spare);
                std::mem::take(&mut state.dropped)
            };
            let _ = out.write_all(&spare);
            let _ = out.flush();
            drop(out);
            spare.clear();
            if dropped > 0 {
                report_dropped(dropped);
            }
        }
    }
}

/// Logged (at `warn`, so written at once) by whoever writes after lines
/// were dropped.
fn report_dropped(lines: u64) {
    tracing::warn!(
        lines,
        "log lines dropped: the log output did not keep up (the buffer of {BUFFER_LIMIT} bytes was full)"
    );
}

impl LogSink {
    /// A sink writing to stderr, with its writer thread started. The guard
    /// writes what is left when dropped.
    pub fn stderr() -> std::io::Result<(LogSink, LogGuard)> {
        Self::start(Box::new(std::io::stderr()), BUFFER_LIMIT)
    }

    fn start(out: Box<dyn Write + Send>, limit: usize) -> std::io::Result<(LogSink, LogGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            out: Mutex::new(out),
            limit,
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || worker.run())?;
        Ok((
            LogSink {
                shared: Arc::clone(&shared),
            },
            LogGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

/// Stops the writer thread of a [`LogSink`] once everything queued is
/// written; lines logged afterwards are written directly.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock_state().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Anything queued between the thread's last look and `closed`.
        self.shared.write_now(&[]);
    }
}

/// One event's writer: the formatter hands it the whole line in one
/// `write_all`.
pub struct LineWriter<'a> {
    shared: &'a Shared,
    at_once: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if self.at_once {
            self.shared.write_now(line);
        } else {
            self.shared.queue(line);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            at_once: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineWriter {
            shared: &self.shared,
            // `Level` orders by verbosity: WARN < INFO.
            at_once: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// An output that records what reaches it, and can be made to block
    /// until released, as a pipe nobody reads does.
    #[derive(Clone, Default)]
    struct Recorder {
        written: Arc<Mutex<Vec<u8>>>,
        blocked: Arc<(Mutex<bool>, Condvar)>,
        writes: Arc<Mutex<usize>>,
        entered: Arc<AtomicBool>,
    }

    impl Recorder {
        fn text(&self) -> String {
            String::from_utf8(self.written.lock().unwrap().clone()).unwrap()
        }
        fn block(&self) {
            *self.blocked.0.lock().unwrap() = true;
        }
        fn release(&self) {
            *self.blocked.0.lock().unwrap() = false;
            self.blocked.1.notify_all();
        }
    }

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.is_empty() {
                return Ok(0);
            }
            self.entered.store(true, Ordering::SeqCst);
            let (lock, cv) = &*self.blocked;
            let mut blocked = lock.lock().unwrap();
            while *blocked {
                blocked = cv.wait(blocked).unwrap();
            }
            *self.writes.lock().unwrap() += 1;
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn line(sink: &LogSink, level: Level, text: &str) {
        let mut writer = LineWriter {
            shared: &sink.shared,
            at_once: level <= Level::WARN,
        };
        writer.write_all(text.as_bytes()).unwrap();
    }

    fn wait_for(what: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !what() {
            assert!(std::time::Instant::now() < deadline, "timed out");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn queued_lines_are_written_by_the_thread_in_order() {
        let out = Recorder::default();
        let (sink, guard) = LogSink::start(Box::new(out.clone()), 1 << 20).unwrap();
        for i in 0..1000 {
            line(&sink, Level::INFO, &format!("line {i}\n"));
        }
        let want: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        wait_for(|| out.text() == want);
        drop(guard);
        assert_eq!(out.text(), want);
    }

    #[test]
    fn warnings_are_written_at_once_after_what_was_queued() {
        let out = Recorder::default();
        let (sink, _guard) = LogSink::start(Box::new(out.clone()), 1 << 20).unwrap();
        // Hold the writer thread inside a write so later lines stay queued.
        out.block();
        line(&sink, Level::INFO, "first\n");
        wait_for(|| out.entered.load(Ordering::SeqCst));
        line(&sink, Level::INFO, "second\n");
        let warner = {
            let sink = sink.clone();
            std::thread::spawn(move || line(&sink, Level::ERROR, "third\n"))
        };
        out.release();
        warner.join().unwrap();
        // The error line returned only once written, after both others.
        assert_eq!(out.text(), "first\nsecond\nthird\n");
    }

    #[test]
    fn a_full_buffer_drops_lines_and_counts_them() {
        let out = Recorder::default();
        let (sink, guard) = LogSink::start(Box::new(out.clone()), 64).unwrap();
        out.block();
        line(&sink, Level::INFO, "blocking\n");
        wait_for(|| out.entered.load(Ordering::SeqCst));
        // Five lines (55 of the 64 bytes) fit; the rest are dropped without
        // waiting.
        for _ in 0..20 {
            line(&sink, Level::INFO, "0123456789\n");
        }
        let dropped = sink.shared.lock_state().dropped;
        assert_eq!(dropped, 15);
        out.release();
        drop(guard);
        let text = out.text();
        assert_eq!(text.matches("0123456789\n").count(), 5, "{text}");
        assert!(text.starts_with("blocking\n"), "{text}");
    }

    #[test]
    fn the_guard_writes_what_is_left_and_later_lines_go_directly() {
        let out = Recorder::default();
        let (sink, guard) = LogSink::start(Box::new(out.clone()), 1 << 20).unwrap();
        line(&sink, Level::DEBUG, "before\n");
        drop(guard);
        assert_eq!(out.text(), "before\n");
        line(&sink, Level::INFO, "after\n");
        assert_eq!(out.text(), "before\nafter\n");
    }

    #[test]
    fn lines_are_batched_into_few_writes_while_the_output_is_busy() {
        let out = Recorder::default();
        let (sink, guard) = LogSink::start(Box::new(out.clone()), 1 << 20).unwrap();
        out.block();
        line(&sink, Level::INFO, "a\n");
        wait_for(|| out.entered.load(Ordering::SeqCst));
        for _ in 0..100 {
            line(&sink, Level::INFO, "b\n");
        }
        out.release();
        drop(guard);
        assert_eq!(out.text().len(), 2 + 200);
        // One write for "a", one for the 100 lines queued meanwhile.
        assert_eq!(*out.writes.lock().unwrap(), 2);
    }
}
