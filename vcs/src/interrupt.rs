//! Cancellation of blocking origin work: a shared flag plus an optional
//! deadline.
//!
//! Fetching from an origin runs on blocking threads (gix is blocking), so a
//! caller that gives up cannot simply drop the work: the thread would go on
//! talking to the server and holding the cache entry's lock. Every blocking
//! step instead looks at an [`Interrupt`]: gix receives its flag (it checks
//! it while reading and indexing packs), the HTTP transport checks it while
//! waiting for bytes, and the zip writer checks it per file. The async
//! wrapper sets the flag when its future is dropped, and the flag counts as
//! set once the deadline has passed, so a stalled server costs at most the
//! deadline plus a short poll interval.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cancellation handle shared by an async caller and its blocking work.
///
/// Clones share the flag. The default handle has no deadline and is never
/// set unless [`Interrupt::interrupt`] is called.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    deadline: Option<Instant>,
}

/// Why work stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// The deadline passed.
    #[error("deadline exceeded")]
    Deadline,
    /// The caller gave up (its future was dropped or it interrupted).
    #[error("interrupted")]
    Interrupted,
}

impl Interrupt {
    /// A handle without deadline.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// A handle whose work must be finished within `limit` from now.
    pub fn with_timeout(limit: Duration) -> Interrupt {
        Interrupt {
            flag: Arc::default(),
            deadline: Instant::now().checked_add(limit),
        }
    }

    /// The same flag with a deadline no later than `limit` from now (the
    /// earlier of the existing deadline and the new one).
    pub fn tightened(&self, limit: Duration) -> Interrupt {
        let new = Instant::now().checked_add(limit);
        let deadline = match (self.deadline, new) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Interrupt {
            flag: Arc::clone(&self.flag),
            deadline,
        }
    }

    /// Asks all work sharing this handle to stop.
    pub fn interrupt(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None` without one; zero once
    /// passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether work should stop, and why. A passed deadline also sets the
    /// flag, so code that only sees [`Interrupt::flag`] (gix) stops too.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.interrupt();
            return Err(Stopped::Deadline);
        }
        if self.flag.load(Ordering::Relaxed) {
            return Err(Stopped::Interrupted);
        }
        Ok(())
    }

    /// Whether work should stop.
    pub fn is_stopped(&self) -> bool {
        self.check().is_err()
    }

    /// The raw flag, for APIs (gix) that poll an `AtomicBool`.
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// A guard that interrupts this handle when dropped, for async callers:
    /// dropping the caller's future drops the guard and stops the blocking
    /// work it started.
    pub fn on_drop(&self) -> InterruptOnDrop {
        InterruptOnDrop(Some(self.clone()))
    }
}

/// Interrupts its [`Interrupt`] when dropped (see [`Interrupt::on_drop`]).
#[derive(Debug)]
pub struct InterruptOnDrop(Option<Interrupt>);

impl InterruptOnDrop {
    /// Lets the work run on after the guard is dropped (for work that
    /// completed normally).
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if let Some(interrupt) = &self.0 {
            interrupt.interrupt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_sets_the_flag() {
        let i = Interrupt::with_timeout(Duration::from_millis(20));
        assert_eq!(i.check(), Ok(()));
        assert!(!i.flag().load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(i.check(), Err(Stopped::Deadline));
        assert!(i.flag().load(Ordering::SeqCst));
    }

    #[test]
    fn clones_share_the_flag_and_guards_set_it() {
        let i = Interrupt::new();
        let c = i.tightened(Duration::from_secs(60));
        assert!(c.remaining().is_some() && i.remaining().is_none());
        drop(i.on_drop());
        assert_eq!(c.check(), Err(Stopped::Interrupted));
        let j = Interrupt::new();
        j.on_drop().disarm();
        assert_eq!(j.check(), Ok(()));
    }

    #[test]
    fn tightened_keeps_the_earlier_deadline() {
        let i = Interrupt::with_timeout(Duration::from_millis(10));
        let t = i.tightened(Duration::from_secs(60));
        assert!(t.remaining().unwrap() <= Duration::from_millis(10));
    }
}
