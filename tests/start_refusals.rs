//! Settings the real binary refuses at start: it exits with a failure and
//! one clear reason, before listening.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Runs the server with `env` (on a free loopback port, memory storage
/// unless `env` says otherwise) and returns its output once it exits; a
/// server still running after 60 s is killed and the test fails.
fn refused_start(dir: &Path, env: &[(&str, &str)]) -> Output {
    let port = fixtures::services::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_athens"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
        .env("ATHENS_STORAGE_TYPE", "memory")
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawning athens");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("waiting for athens").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("athens output");
            panic!(
                "athens did not stop within 60 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("athens output");
    assert!(!out.status.success(), "athens must refuse to start");
    out
}

#[test]
fn mongo_storage_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = refused_start(
        dir.path(),
        &[
            ("ATHENS_STORAGE_TYPE", "mongo"),
            ("ATHENS_MONGO_STORAGE_URL", "mongodb://127.0.0.1:27017"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("StorageType"), "{stderr}");
    assert!(
        stderr.contains("no MongoDB server can be installed where it is built and tested"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
