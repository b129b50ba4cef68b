use super::*;

const LIMIT: Duration = Duration::from_secs(60);

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn shown(headers: Option<CredentialHeaders>) -> Vec<String> {
    headers
        .unwrap_or_default()
        .iter()
        .map(|(n, v)| format!("{}: {}", n, v.to_str().unwrap()))
        .collect()
}

#[test]
fn fatal_values_are_refused_as_the_go_command_refuses_them() {
    assert_eq!(parse_methods("").unwrap_err(), GoAuthError::EmptyCommand);
    assert_eq!(
        parse_methods("netrc;").unwrap_err(),
        GoAuthError::EmptyCommand
    );
    assert_eq!(
        parse_methods("netrc; ;x").unwrap_err(),
        GoAuthError::EmptyCommand
    );
    assert_eq!(
        parse_methods("off;netrc").unwrap_err(),
        GoAuthError::OffCombined
    );
    assert_eq!(
        parse_methods("netrc; off").unwrap_err(),
        GoAuthError::OffCombined
    );
    assert!(matches!(
        parse_methods("git").unwrap_err(),
        GoAuthError::GitDir(_)
    ));
    assert!(matches!(
        parse_methods("git a b").unwrap_err(),
        GoAuthError::GitDir(_)
    ));
    assert_eq!(
        parse_methods("git rel/dir").unwrap_err(),
        GoAuthError::GitDir(", dir is not absolute")
    );
    assert!(matches!(
        parse_methods("git /no/such/dir/here").unwrap_err(),
        GoAuthError::GitDirStat { .. }
    ));
    let file = tempfile::NamedTempFile::new().unwrap();
    assert_eq!(
        parse_methods(&format!("git {}", file.path().display())).unwrap_err(),
        GoAuthError::GitDir(", dir is not a directory")
    );
    let err = parse_methods("netrc; auth 'secret").unwrap_err();
    assert_eq!(
        err,
        GoAuthError::Quoting {
            program: "auth".into(),
            quote: '\''
        }
    );
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn lists_keep_their_order_and_commands_split_as_go_splits_them() {
    let dir = tempfile::tempdir().unwrap();
    let methods = parse_methods(&format!(
        " netrc ; git {} ;/bin/auth 'a b' \"c'd\" e",
        dir.path().display()
    ))
    .unwrap();
    assert_eq!(
        methods,
        vec![
            Method::Netrc,
            Method::Git(dir.path().to_path_buf()),
            Method::Command(vec![
                "/bin/auth".into(),
                "a b".into(),
                "c'd".into(),
                "e".into()
            ]),
        ]
    );
    assert_eq!(parse_methods("off").unwrap(), vec![]);
    // Only the first word selects a built-in method.
    assert_eq!(parse_methods("netrc extra").unwrap(), vec![Method::Netrc]);
    assert_eq!(
        split_command("x\"y z\"").unwrap(),
        vec!["x\"y".to_string(), "z\"".to_string()]
    );
}

#[test]
fn authenticator_output_is_parsed_as_the_go_command_parses_it() {
    let blocks = parse_user_auth(
        "https://example.com\nhttps://example.net/a/\n\nAuthorization: Bearer t\nX-Other:  v \n\nhttps://x.org\n\n\n",
    )
    .unwrap();
    let view: Vec<(String, Vec<String>)> = blocks
        .into_iter()
        .map(|(p, h)| (p, shown(Some(h))))
        .collect();
    assert_eq!(
        view,
        vec![
            (
                "example.com".to_string(),
                vec![
                    "authorization: Bearer t".to_string(),
                    "x-other: v".to_string()
                ]
            ),
            (
                "example.net/a/".to_string(),
                vec![
                    "authorization: Bearer t".to_string(),
                    "x-other: v".to_string()
                ]
            ),
            ("x.org".to_string(), vec![]),
        ]
    );
    assert!(parse_user_auth("").unwrap().is_empty());
    for bad in [
        "https://example.com\n",
        "https://example.com\n\nA: b\n",
        "https://example.com\n\nA:b\n\n",
        "https://example.com\n\nBad Name: b\n\n",
        "https://example.com\n\nA: b\x01c\n\n",
        "not a url\n\nA: b\n\n",
        "https://example.com\r\n\r\nA: b\r\n\r\n",
    ] {
        assert!(parse_user_auth(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn git_answers_give_their_url() {
    let (p, u, pw) =
        parse_git_credential("protocol=https\nhost=h.example:8443\nusername=u\npassword=p\n");
    assert_eq!(
        (p.as_str(), u.as_str(), pw.as_str()),
        ("https://h.example:8443", "u", "p")
    );
    let (p, ..) = parse_git_credential("protocol=https\nhost=h\npath=a/b\nurl=https://h/x\n");
    assert_eq!(p, "https://h/x");
    let (p, ..) = parse_git_credential("protocol=https\nhost=h\npath=a/b\nurl=::bad\n");
    assert_eq!(p, "https://h/a/b");
    assert_eq!(parse_git_credential("username=u\n").0, "");
}

#[test]
fn basic_auth_is_base64_of_user_and_password() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"user:pa:ss"), "dXNlcjpwYTpzcw==");
}

#[tokio::test]
async fn netrc_credentials_follow_the_prefix_rules() {
    let auth = GoAuth::from_netrc(Netrc::parse(
        "machine h.example login a password 1\nmachine h.example login b password 2\nmachine h.example/deep/er login c password 3\n",
    ));
    let basic = |u: &str, p: &str| {
        vec![format!(
            "authorization: Basic {}",
            base64(format!("{u}:{p}").as_bytes())
        )]
    };
    assert_eq!(
        shown(auth.initial(&url("https://h.example/x/y"), LIMIT).await),
        basic("a", "1")
    );
    assert_eq!(
        shown(
            auth.initial(&url("https://h.example/deep/er/z"), LIMIT)
                .await
        ),
        basic("c", "3")
    );
    // The query takes part in the match, as in the go command: the last
    // segment with its query is not a prefix of anything.
    assert_eq!(
        shown(
            auth.initial(&url("https://h.example/deep/er?go-get=1"), LIMIT)
                .await
        ),
        basic("a", "1")
    );
    assert_eq!(auth.initial(&url("http://h.example/x"), LIMIT).await, None);
    assert_eq!(
        auth.initial(&url("https://other.example/x"), LIMIT).await,
        None
    );
    assert_eq!(
        auth.initial(&url("https://h.example:8443/x"), LIMIT).await,
        None
    );
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn commands_prime_once_then_run_with_the_url_and_the_failed_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    // Without a URL it gives a stale token; with one, a fresh token, and
    // it records its arguments and standard input.
    let cmd = script(
        dir.path(),
        "auth",
        &format!(
            "echo \"args:$#:$*\" >> {log}\nif [ $# -eq 1 ]; then printf 'https://h.example\\n\\nAuthorization: Bearer stale\\n\\n'; exit 0; fi\ncat >> {log}\nprintf 'https://h.example/private\\n\\nAuthorization: Bearer fresh\\n\\n'\n",
            log = log.display()
        ),
    );
    let auth = GoAuth::new(&format!("{} 'one'", cmd.display()), None, Vec::new()).unwrap();
    let target = url("https://h.example/private/mod?go-get=1");
    assert_eq!(
        shown(auth.initial(&target, LIMIT).await),
        ["authorization: Bearer stale"]
    );
    assert_eq!(
        shown(auth.initial(&target, LIMIT).await),
        ["authorization: Bearer stale"]
    );
    let failed = FailedResponse {
        text: "HTTP/1.1 401 Unauthorized\nWww-Authenticate: Basic\n\n".into(),
    };
    assert_eq!(
        shown(auth.after_failure(&target, &failed, LIMIT).await),
        ["authorization: Bearer fresh"]
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        logged,
        format!(
            "args:1:one\nargs:2:one {target}\nHTTP/1.1 401 Unauthorized\nWww-Authenticate: Basic\n\n"
        )
    );
}

#[tokio::test]
async fn earlier_methods_win_and_failures_keep_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let first = script(
        dir.path(),
        "first",
        "printf 'https://h.example\\n\\nX-Token: first\\n\\n'\n",
    );
    let second = script(
        dir.path(),
        "second",
        "printf 'https://h.example\\nhttps://h.example/only-second\\n\\nX-Token: second\\n\\n'\n",
    );
    let broken = script(dir.path(), "broken", "echo garbage; exit 3\n");
    let auth = GoAuth::new(
        &format!(
            "{};{};{}",
            first.display(),
            broken.display(),
            second.display()
        ),
        None,
        Vec::new(),
    )
    .unwrap();
    assert_eq!(
        shown(auth.initial(&url("https://h.example/a"), LIMIT).await),
        ["x-token: first"]
    );
    assert_eq!(
        shown(
            auth.initial(&url("https://h.example/only-second/x"), LIMIT)
                .await
        ),
        ["x-token: second"]
    );
}

#[tokio::test]
async fn an_empty_header_block_removes_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let cmd = script(
        dir.path(),
        "auth",
        "if [ $# -eq 0 ]; then printf 'https://h.example\\n\\nX-Token: t\\n\\n'; else printf 'https://h.example\\n\\n\\n'; fi\n",
    );
    let auth = GoAuth::new(&cmd.display().to_string(), None, Vec::new()).unwrap();
    let target = url("https://h.example/a");
    assert_eq!(shown(auth.initial(&target, LIMIT).await), ["x-token: t"]);
    assert_eq!(
        auth.after_failure(&target, &FailedResponse::default(), LIMIT)
            .await,
        None
    );
}

#[tokio::test]
async fn a_command_that_hangs_is_killed_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let cmd = script(
        dir.path(),
        "auth",
        &format!("sleep 600 &\necho $! > {}\nwait\n", pidfile.display()),
    );
    let auth = GoAuth::new(&cmd.display().to_string(), None, Vec::new()).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        auth.initial(&url("https://h.example/a"), Duration::from_secs(2))
            .await,
        None
    );
    assert!(started.elapsed() < Duration::from_secs(120));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The group was killed; give the kernel a moment to reap it.
    let mut alive = true;
    for _ in 0..300 {
        // SAFETY: signal 0 only checks for existence.
        alive = unsafe { libc::kill(pid, 0) } == 0
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "));
        if !alive {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive, "the command's child survived");
}

#[tokio::test]
async fn git_dir_runs_git_credential_fill_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::write(&store, "https://u:p%40ss@h.example\n").unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let status = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let status = std::process::Command::new("git")
        .args(["config", "credential.helper"])
        .arg(format!("store --file={}", store.display()))
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(status.success());
    let env = vec![
        ("PATH".to_string(), std::env::var("PATH").unwrap()),
        ("HOME".to_string(), dir.path().display().to_string()),
        ("GIT_CONFIG_NOSYSTEM".to_string(), "1".to_string()),
    ];
    let auth = GoAuth::new(&format!("git {}", repo.display()), None, env).unwrap();
    let target = url("https://h.example/a/b?go-get=1");
    // Nothing before a URL is known.
    assert_eq!(auth.initial(&target, LIMIT).await, None);
    let got = shown(
        auth.after_failure(&target, &FailedResponse::default(), LIMIT)
            .await,
    );
    assert_eq!(got, [format!("authorization: Basic {}", base64(b"u:p@ss"))]);
    // Cached for the prefix git answered for.
    assert_eq!(
        shown(auth.initial(&url("https://h.example/other"), LIMIT).await),
        got
    );
    // No credential for another host: git fails (no terminal to ask on).
    assert_eq!(
        auth.after_failure(
            &url("https://elsewhere.example/x"),
            &FailedResponse::default(),
            LIMIT
        )
        .await,
        None
    );
}
