//! The real binary at start: an unsafe GoGetDir stops it with the reason,
//! and what crashed saves and fetches left behind is removed once old
//! enough that no live instance sharing the directories can own it.

// Only some helpers are used here.
#[allow(dead_code, unused_imports)]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use support::{Server, ServerSetup};

/// Sets a file's or directory's modification time to `ago` in the past.
fn age(path: &Path, ago: Duration) {
    let file = std::fs::File::open(path).unwrap();
    file.set_modified(SystemTime::now() - ago).unwrap();
}

#[test]
fn world_writable_go_get_dir_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let open = tmp.path().join("goget");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_athens"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", tmp.path())
        .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
        .env("ATHENS_STORAGE_TYPE", "memory")
        .env("ATHENS_GOGET_DIR", &open)
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("athens kept running with a world-writable GoGetDir");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!status.success(), "{text}");
    assert!(text.contains("writable by every user"), "{text}");
    // Nothing was written into it.
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
}

#[test]
fn leftovers_of_crashed_saves_and_fetches_are_removed_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("storage");
    let goget = tmp.path().join("goget");
    let module = root.join("example.com/m");
    let vcs = goget.join("vcs");
    for dir in [&module, &vcs] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let day = Duration::from_secs(86_400);
    let entry = "0123456789abcdef0123456789abcdef01234567";
    let old = [
        module.join(".tmp-v1.0.0-1-2-3"),
        goget.join(".athens-fetch-abc.zip"),
        goget.join(".athens-zip-def"),
        vcs.join(format!("{entry}.tmp77")),
    ];
    let fresh = [
        module.join(".tmp-v1.1.0-4-5-6"),
        goget.join(".athens-fetch-ghi.zip"),
        vcs.join(format!("{entry}.tmp78")),
    ];
    for path in old.iter().chain(&fresh) {
        let name = path.file_name().unwrap().to_str().unwrap();
        if name.starts_with(".athens-") {
            std::fs::write(path, b"partial").unwrap();
        } else {
            std::fs::create_dir(path).unwrap();
        }
    }
    for path in &old {
        age(path, day);
    }
    let gitconfig = tmp.path().join("gitconfig");
    support::write_gitconfig(&gitconfig, &[]);
    let mut setup = ServerSetup::disk(&root, &gitconfig);
    setup.extra_env.push((
        "ATHENS_GOGET_DIR".into(),
        goget.to_str().unwrap().to_string(),
    ));
    let mut server = Server::start(&setup);
    let deadline = Instant::now() + Duration::from_secs(20);
    while old.iter().any(|p| p.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in &old {
        assert!(!path.exists(), "{} still there", path.display());
    }
    for path in &fresh {
        assert!(path.exists(), "{} removed while fresh", path.display());
    }
    server.stop();
}
