//! Running a version-control command line under the fetch's bounds.
//!
//! The go command runs `hg`, `svn` and `fossil` with the call's context and
//! no output limit. Here every child also has its standard output capped
//! (a hostile server must not fill memory), an optional output file capped
//! in size (archives), stdin closed (no password prompt can hang it), and
//! is killed, with everything it started, when the fetch's deadline passes
//! or the caller gives up.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::interrupt::Interrupt;

/// How often a running child is checked against the deadline and limits.
const POLL: Duration = Duration::from_millis(20);

/// Most of a failing command's standard error kept for its error message.
const MAX_STDERR: usize = 4096;

/// Why a command did not give its output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The program is not installed (not found on `PATH`).
    #[error("{tool}: the {tool} command is not installed (it was not found on PATH); install it to fetch {what} repositories")]
    Missing {
        /// The program, `hg`, `svn` or `fossil`.
        tool: String,
        /// The version-control system it serves.
        what: String,
    },
    /// The program could not be started for another reason.
    #[error("{tool}: could not run: {reason}")]
    Spawn {
        /// The program.
        tool: String,
        /// What the system said.
        reason: String,
    },
    /// The program ran and failed.
    #[error("{command}: {status}{}", if stderr.is_empty() { String::new() } else { format!("\n{stderr}") })]
    Failed {
        /// The command line (program and arguments).
        command: String,
        /// How it ended.
        status: String,
        /// The start of its standard error, trimmed.
        stderr: String,
    },
    /// Its output (or output file) grew past the limit; it was killed.
    #[error("{command}: output exceeds {limit} bytes")]
    TooLarge {
        /// The command line.
        command: String,
        /// The limit crossed.
        limit: u64,
    },
    /// The fetch's deadline passed or the caller gave up; it was killed.
    #[error("{command}: stopped: {reason}")]
    Stopped {
        /// The command line.
        command: String,
        /// Deadline or interruption.
        reason: String,
    },
}

/// Runs version-control commands with one environment and one interrupt.
#[derive(Debug, Clone)]
pub struct Runner {
    /// Variables set on top of the server's own environment.
    pub env: Vec<(String, String)>,
    /// The fetch's deadline and cancellation.
    pub interrupt: Interrupt,
    /// The version-control system, for the "not installed" message.
    pub what: String,
}

/// One command to run.
#[derive(Debug)]
pub struct Job<'a> {
    /// Program and arguments.
    pub args: &'a [String],
    /// Working directory.
    pub dir: &'a Path,
    /// Most bytes of standard output accepted.
    pub max_stdout: u64,
    /// A file the command writes, and the most bytes it may reach.
    pub output_file: Option<(PathBuf, u64)>,
}

impl Runner {
    /// Runs `job` to completion and returns its standard output; a nonzero
    /// exit is [`RunError::Failed`].
    pub fn run(&self, job: Job<'_>) -> Result<Vec<u8>, RunError> {
        let command = job.args.join(" ");
        let tool = job.args[0].clone();
        if let Err(stopped) = self.interrupt.check() {
            return Err(RunError::Stopped {
                command,
                reason: stopped.to_string(),
            });
        }
        let mut cmd = Command::new(&tool);
        cmd.args(&job.args[1..])
            .current_dir(job.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so ssh or anything else it starts is
            // killed with it.
            .process_group(0);
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let mut child = cmd.spawn().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => RunError::Missing {
                tool: tool.clone(),
                what: self.what.clone(),
            },
            _ => RunError::Spawn {
                tool: tool.clone(),
                reason: e.to_string(),
            },
        })?;
        let over = Arc::new(AtomicBool::new(false));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let limit = job.max_stdout;
        let stdout_over = over.clone();
        let out_reader = std::thread::spawn(move || capture(stdout, limit, &stdout_over));
        let err_reader =
            std::thread::spawn(move || capture(stderr, MAX_STDERR as u64, &AtomicBool::new(false)));
        let pid = child.id();
        let kill = |child: &mut std::process::Child| {
            // SAFETY: kill(2) with a negative pid signals the process group
            // the child leads; it touches no memory of ours.
            unsafe {
                libc::kill(-(pid as i32), libc::SIGKILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        };
        let status: ExitStatus = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    kill(&mut child);
                    return Err(RunError::Spawn {
                        tool,
                        reason: e.to_string(),
                    });
                }
            }
            if let Err(stopped) = self.interrupt.check() {
                kill(&mut child);
                return Err(RunError::Stopped {
                    command,
                    reason: stopped.to_string(),
                });
            }
            let file_over = job
                .output_file
                .as_ref()
                .is_some_and(|(path, max)| std::fs::metadata(path).is_ok_and(|m| m.len() > *max));
            if over.load(Ordering::Relaxed) || file_over {
                kill(&mut child);
                let limit = match &job.output_file {
                    Some((_, max)) if file_over => *max,
                    _ => limit,
                };
                return Err(RunError::TooLarge { command, limit });
            }
            std::thread::sleep(POLL);
        };
        // Anything the child left running in its group still holds the
        // pipes open; the readers finish once it is gone.
        // SAFETY: as above.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
        let out = out_reader.join().unwrap_or_default();
        let err = err_reader.join().unwrap_or_default();
        if over.load(Ordering::Relaxed) {
            return Err(RunError::TooLarge { command, limit });
        }
        if let Some((path, max)) = &job.output_file {
            if std::fs::metadata(path).is_ok_and(|m| m.len() > *max) {
                return Err(RunError::TooLarge {
                    command,
                    limit: *max,
                });
            }
        }
        if !status.success() {
            let stderr = String::from_utf8_lossy(&err).trim().to_string();
            return Err(RunError::Failed {
                command,
                status: status.to_string(),
                stderr,
            });
        }
        Ok(out)
    }
}

/// Reads `from` to its end, keeping at most `limit` bytes; sets `over`
/// (and stops reading) when there is more.
fn capture(mut from: impl Read, limit: u64, over: &AtomicBool) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len() as u64) as usize;
                if n > room {
                    kept.extend_from_slice(&chunk[..room]);
                    over.store(true, Ordering::Relaxed);
                    // Keep draining so the child is not blocked on a full
                    // pipe before it is killed.
                    continue;
                }
                kept.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner(interrupt: Interrupt) -> Runner {
        Runner {
            env: Vec::new(),
            interrupt,
            what: "Test".to_string(),
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn output_and_failure() {
        let dir = std::env::temp_dir();
        let r = runner(Interrupt::new());
        let a = args(&["sh", "-c", "printf hello"]);
        let out = r
            .run(Job {
                args: &a,
                dir: &dir,
                max_stdout: 100,
                output_file: None,
            })
            .unwrap();
        assert_eq!(out, b"hello");
        let a = args(&["sh", "-c", "echo oops >&2; exit 3"]);
        let err = r
            .run(Job {
                args: &a,
                dir: &dir,
                max_stdout: 100,
                output_file: None,
            })
            .unwrap_err();
        assert!(
            matches!(&err, RunError::Failed { stderr, .. } if stderr == "oops"),
            "{err}"
        );
    }

    #[test]
    fn missing_tool_is_named() {
        let dir = std::env::temp_dir();
        let a = args(&["no-such-vcs-tool-xyz", "log"]);
        let err = runner(Interrupt::new())
            .run(Job {
                args: &a,
                dir: &dir,
                max_stdout: 100,
                output_file: None,
            })
            .unwrap_err();
        assert!(matches!(err, RunError::Missing { .. }));
        assert!(err
            .to_string()
            .contains("the no-such-vcs-tool-xyz command is not installed"));
    }

    #[test]
    fn output_limit_kills() {
        let dir = std::env::temp_dir();
        let a = args(&["sh", "-c", "yes"]);
        let err = runner(Interrupt::new())
            .run(Job {
                args: &a,
                dir: &dir,
                max_stdout: 1000,
                output_file: None,
            })
            .unwrap_err();
        assert!(
            matches!(err, RunError::TooLarge { limit: 1000, .. }),
            "{err}"
        );
    }

    #[test]
    fn deadline_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        // The grandchild would write the marker long after the deadline.
        let script = format!("(sleep 60; touch {}) & sleep 60", marker.display());
        let a = args(&["sh", "-c", &script]);
        let err = runner(Interrupt::with_timeout(Duration::from_millis(300)))
            .run(Job {
                args: &a,
                dir: dir.path(),
                max_stdout: 100,
                output_file: None,
            })
            .unwrap_err();
        assert!(matches!(err, RunError::Stopped { .. }), "{err}");
        assert!(!marker.exists());
    }
}
