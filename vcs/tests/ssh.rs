//! ssh remotes from hostile sources (go-import meta tags are anyone's):
//! nothing a remote URL says may reach the ssh program as an option, and
//! an ssh program that never answers is killed at the deadline.
//!
//! The "ssh program" here is a script recording its arguments, set through
//! `GIT_SSH_COMMAND`/`GIT_SSH` as users do; no sshd is needed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vcs::git::{GitOptions, GitRepo};
use vcs::interrupt::Interrupt;

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn options(env: &[(&str, String)], interrupt: Interrupt) -> GitOptions {
    let mut spawn_env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    spawn_env.push(("PATH".into(), std::env::var("PATH").unwrap()));
    GitOptions {
        spawn_env,
        interrupt,
        ..GitOptions::default()
    }
}

#[test]
fn remote_urls_cannot_inject_ssh_options() {
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("argv");
    let fake_ssh = script(
        tmp.path(),
        "fake-ssh",
        &format!("printf '%s\\n' \"$@\" >> {}\nexit 1", record.display()),
    );
    let pwned = tmp.path().join("pwned");
    let cache = tmp.path().join("cache");
    for url in [
        format!("ssh://-oProxyCommand=touch%20{}/r", pwned.display()),
        format!("ssh://-oProxyCommand=touch {}/r", pwned.display()),
        "-oProxyCommand=id:r".to_string(),
        "git@-oProxyCommand=id:r".to_string(),
        format!("ssh://-oProxyCommand=touch%20{}@h/r", pwned.display()),
        "git+ssh://h:-oProxyCommand=x/r".to_string(),
        "ssh://h/r%0a-oProxyCommand=x".to_string(),
        "h:-oProxyCommand=x".to_string(),
        format!("ssh://h$(touch%20{})/r", pwned.display()),
        format!("ssh://h;touch%20{}/r", pwned.display()),
    ] {
        for (var, value) in [
            ("GIT_SSH", fake_ssh.display().to_string()),
            ("GIT_SSH_COMMAND", fake_ssh.display().to_string()),
        ] {
            let err = GitRepo::open(&url, &cache, options(&[(var, value)], Interrupt::new()))
                .expect_err(&url);
            assert!(
                err.to_string().contains("blocked") || err.to_string().contains("strange"),
                "{url}: {err}"
            );
        }
    }
    assert!(
        !record.exists(),
        "ssh ran: {}",
        std::fs::read_to_string(&record).unwrap()
    );
    assert!(!pwned.exists());

    // A sound URL reaches the program, each part as one argument and the
    // path quoted for the remote shell. (Named neither ssh nor plink, the
    // program would first be probed with -G, as git does.)
    let url = "ssh://git@example.com:2222/o/r'x.git";
    let env = [
        ("GIT_SSH", fake_ssh.display().to_string()),
        ("GIT_SSH_VARIANT", "ssh".to_string()),
    ];
    let err = GitRepo::open(url, &cache, options(&env, Interrupt::new())).unwrap_err();
    let argv = std::fs::read_to_string(&record).unwrap();
    assert_eq!(
        argv,
        "-o\nSendEnv=GIT_PROTOCOL\n-p\n2222\ngit@example.com\ngit-upload-pack '/o/r'\\''x.git'\n",
        "{err}"
    );
}

#[test]
fn ssh_command_arguments_stay_out_of_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let fake_ssh = script(tmp.path(), "fake-ssh", "echo 'no route' >&2\nexit 255");
    let command = format!("{} --token=T0PSECRET", fake_ssh.display());
    for variant in ["simple", "ssh"] {
        let env = [
            ("GIT_SSH_COMMAND", command.clone()),
            ("GIT_SSH_VARIANT", variant.to_string()),
        ];
        let err = GitRepo::open(
            "ssh://h:2222/r.git",
            &tmp.path().join("cache"),
            options(&env, Interrupt::new()),
        )
        .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains("T0PSECRET"), "{text}");
        // What ssh said is kept for the operator.
        if variant == "ssh" {
            assert!(text.contains("no route"), "{text}");
        }
    }
}

#[test]
fn a_silent_ssh_program_is_killed_at_the_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let pid_file = tmp.path().join("pid");
    // Never answers, like a host that accepts the connection and stalls.
    let stalled = script(
        tmp.path(),
        "stalled-ssh",
        &format!("echo $$ > {}\nexec sleep 600", pid_file.display()),
    );
    let started = Instant::now();
    let err = GitRepo::open(
        "ssh://example.com/r.git",
        &tmp.path().join("cache"),
        options(
            &[("GIT_SSH_COMMAND", stalled.display().to_string())],
            Interrupt::with_timeout(Duration::from_secs(2)),
        ),
    )
    .unwrap_err();
    assert!(err.to_string().contains("stopped"), "{err}");
    // Generous for a loaded machine; without the kill it would be 600 s.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The process is gone, not left running (a zombie waiting for a
    // container's init to reap it counts as gone).
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while running() {
        assert!(Instant::now() < deadline, "ssh program {pid} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}
