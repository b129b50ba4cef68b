//! The first run of a new user: the README's run command works on a fresh
//! checkout (the example configuration in the repository, memory storage),
//! and the example configuration agrees with `athens --help`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXAMPLE: &str = "config.dev.toml";

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The arguments after `--` of the README's `cargo run` command.
fn readme_run_arguments() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let line = readme
        .lines()
        .find(|l| l.starts_with("Run the proxy:"))
        .expect("README names the run command");
    let command = line
        .split('`')
        .nth(1)
        .expect("the run command is quoted in backticks");
    let (cargo, args) = command.split_once(" -- ").unwrap_or((command, ""));
    assert_eq!(cargo.trim(), "cargo run --release", "{line}");
    args.split_whitespace().map(str::to_string).collect()
}

/// Keys and values `athens --help` lists: `Table.Key` -> value as TOML.
fn help_keys() -> BTreeMap<String, toml::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("--help")
        .output()
        .expect("athens --help runs");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut keys = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
            continue;
        }
        // Key lines are indented by two spaces, their details by six.
        let Some(entry) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) else {
            continue;
        };
        let Some((name, value)) = entry.split_once(" = ") else {
            continue;
        };
        let key = if table.is_empty() {
            name.to_string()
        } else {
            format!("{table}.{name}")
        };
        // --help redacts secrets that have a default.
        let value = if value == "(secret)" {
            "\"(secret)\""
        } else {
            value
        };
        let parsed: toml::Table = format!("v = {value}")
            .parse()
            .unwrap_or_else(|e| panic!("help value of {key} is not TOML: {value}: {e}"));
        keys.insert(key, parsed["v"].clone());
    }
    keys
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) if !name.starts_with("Params") => flatten(&key, inner, out),
            _ => {
                out.insert(key, value.clone());
            }
        }
    }
}

#[test]
fn help_and_the_example_configuration_agree() {
    let help = help_keys();
    assert!(help.len() > 50, "too few keys parsed from --help: {help:?}");
    let text = std::fs::read_to_string(repo_root().join(EXAMPLE)).expect("example config");
    let table: toml::Table = text.parse().expect("the example is TOML");
    let mut example = BTreeMap::new();
    flatten("", &table, &mut example);
    let help_names: Vec<&String> = help.keys().collect();
    let example_names: Vec<&String> = example.keys().collect();
    assert_eq!(help_names, example_names, "keys differ");
    for (key, shown) in &help {
        // --help redacts secrets that have a default.
        if shown.as_str() == Some("(secret)") {
            continue;
        }
        assert_eq!(Some(shown), example.get(key), "default of {key}");
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("local address").port()
}

fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_string()))
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The README's command, run as `cargo run` runs it (from the checkout,
/// with the listed arguments), starts a server on memory storage. Only the
/// port and the scratch directories are moved aside by the environment, so
/// that tests can run side by side.
#[test]
fn the_readme_run_command_serves_from_a_fresh_checkout() {
    let args = readme_run_arguments();
    assert!(
        args.iter().any(|a| a.ends_with(EXAMPLE)),
        "the README runs with the example configuration: {args:?}"
    );
    let scratch = tempfile::tempdir().expect("scratch dir");
    let goget = scratch.path().join("goget");
    let log = scratch.path().join("athens.log");
    let mut last_log = String::new();
    for _ in 0..3 {
        let port = free_port();
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_athens"))
            .args(&args)
            .current_dir(repo_root())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", scratch.path())
            .env("ATHENS_PORT", format!("127.0.0.1:{port}"))
            .env("ATHENS_GOGET_DIR", &goget)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .expect("spawning athens");
        let mut server = Running(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut up = false;
        while Instant::now() < deadline {
            if let Ok((200, _)) = get(port, "/healthz") {
                up = true;
                break;
            }
            if server.0.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        last_log = std::fs::read_to_string(&log).unwrap_or_default();
        if !up {
            continue;
        }
        assert_eq!(get(port, "/readyz").unwrap().0, 200);
        assert!(
            last_log.contains("configuration read") && last_log.contains("storage=memory"),
            "{last_log}"
        );
        return;
    }
    panic!("the README's run command did not serve; log:\n{last_log}");
}
