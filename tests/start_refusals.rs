//! Settings the real binary refuses at start (it exits with a failure and
//! one clear reason, before listening), and the home page template it
//! serves.

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

#[test]
fn home_template_outside_the_supported_subset_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("home.html");
    std::fs::write(
        &template,
        "<h1>proxy</h1>\n<pre>{{ .Host }}</pre>\n{{ range .Modules }}{{ . }}{{ end }}\n",
    )
    .expect("template");
    let shown = template.to_string_lossy().into_owned();
    let out = refused_start(dir.path(), &[("ATHENS_HOME_TEMPLATE_PATH", &shown)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HomeTemplatePath"), "{stderr}");
    assert!(stderr.contains(&shown), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("{{ range .Modules }}"), "{stderr}");
    assert!(stderr.contains("supports"), "{stderr}");

    std::fs::write(&template, "<a href=\"{{ .Host }}/catalog\">catalog</a>\n").expect("template");
    let out = refused_start(dir.path(), &[("ATHENS_HOME_TEMPLATE_PATH", &shown)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 1"), "{stderr}");
    assert!(stderr.contains("inside an attribute value"), "{stderr}");
}

#[test]
fn home_template_is_served_as_html_template_renders_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = dir.path().join("home.html");
    std::fs::write(
        &template,
        "<title>{{ .Host }}</title><!-- dropped -->\n1 < 2 \
         {{- if .NoSumPatterns }} GONOSUMDB={{ .NoSumPatterns }}{{ end }}\n",
    )
    .expect("template");
    let port = fixtures::services::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_athens"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
        .env("ATHENS_STORAGE_TYPE", "memory")
        .env("ATHENS_HOME_TEMPLATE_PATH", &template)
        .env("ATHENS_GONOSUM_PATTERNS", "corp.example/+x")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let server = fixtures::services::ServerProcess::spawn(
        "athens",
        command,
        addr,
        tempfile::tempdir().expect("log dir"),
    )
    .expect("athens starts");
    let (status, body) =
        fixtures::services::http_request(addr, "GET", "/", &[], b"").expect("GET /");
    assert_eq!(status, 200, "{}", server.log());
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!("<title>http://127.0.0.1:{port}</title>\n1 &lt; 2 GONOSUMDB=corp.example/&#43;x\n")
    );
}

/// A GOAUTH the go command would refuse (here `git` with a relative
/// directory) stops the server at start, naming the problem and not the
/// rest of the value.
#[test]
fn a_goauth_the_go_command_refuses_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = refused_start(
        dir.path(),
        &[(
            "ATHENS_GO_BINARY_ENV_VARS",
            "GOPROXY=direct; GOAUTH=git relative/dir-s3cret",
        )],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid GOAUTH"), "{stderr}");
    assert!(stderr.contains("not absolute"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
