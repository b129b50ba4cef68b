//! End-to-end runs of the built `athens` binary's `pack` and `hash`
//! subcommands, checked against the real go command reading the packed
//! files through `GOPROXY=file:///OUTDIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fixtures::GoOracle;

fn athens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_athens"))
        .args(args)
        .output()
        .expect("athens binary runs")
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `zip h1:...` and `mod h1:...` hashes printed by a successful pack.
fn printed_hashes(out: &Output) -> (String, String) {
    assert!(
        out.status.success(),
        "pack failed: {} {}",
        out.status,
        stderr(out)
    );
    let text = stdout(out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let zip = lines[0].strip_prefix("zip ").expect("zip line");
    let module = lines[1].strip_prefix("mod ").expect("mod line");
    assert!(
        zip.starts_with("h1:") && module.starts_with("h1:"),
        "{text}"
    );
    (zip.to_string(), module.to_string())
}

fn pack(dir: &Path, module: &str, version: &str, out: &Path, time: Option<&str>) -> Output {
    let mut args = vec![
        "pack".to_string(),
        dir.display().to_string(),
        "--module".into(),
        module.into(),
        "--version".into(),
        version.into(),
        "--out".into(),
        out.display().to_string(),
    ];
    if let Some(t) = time {
        args.push(format!("--time={t}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    athens(&refs)
}

fn all_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn pack_output_is_what_the_go_command_downloads() {
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("proxy");

    // A module whose path needs case escaping, at a /v2 major version.
    let upper = work.path().join("upper");
    write(
        &upper,
        "go.mod",
        "module example.com/Acme/Hello/v2\n\ngo 1.21\n",
    );
    write(&upper, "hello.go", "package hello\n");
    write(&upper, "internal/x/x.go", "package x\n");
    write(&upper, "nested/go.mod", "module example.com/other\n");
    write(&upper, "nested/n.go", "package n\n");
    write(&upper, "vendor/example.com/dep/d.go", "package dep\n");
    std::os::unix::fs::symlink("hello.go", upper.join("link.go")).expect("symlink");

    // A module without go.mod: the .mod file is synthesised.
    let plain = work.path().join("plain");
    write(&plain, "p.go", "package p\n");

    let cases = [
        (&upper, "example.com/Acme/Hello/v2", "v2.1.0"),
        (&plain, "example.com/plain", "v0.3.0-beta.1"),
    ];
    let mut printed = Vec::new();
    for (dir, module, version) in cases {
        let result = pack(dir, module, version, &out, Some("2024-02-03T04:05:06Z"));
        printed.push(printed_hashes(&result));
    }

    let files: Vec<String> = all_files(&out)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "example.com/!acme/!hello/v2/@v/list",
            "example.com/!acme/!hello/v2/@v/v2.1.0.info",
            "example.com/!acme/!hello/v2/@v/v2.1.0.mod",
            "example.com/!acme/!hello/v2/@v/v2.1.0.zip",
            "example.com/plain/@v/list",
            "example.com/plain/@v/v0.3.0-beta.1.info",
            "example.com/plain/@v/v0.3.0-beta.1.mod",
            "example.com/plain/@v/v0.3.0-beta.1.zip",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out.join("example.com/plain/@v/v0.3.0-beta.1.mod")).expect("mod"),
        "module example.com/plain\n"
    );

    // `athens hash` agrees with what pack printed.
    let zip = out.join("example.com/!acme/!hello/v2/@v/v2.1.0.zip");
    let hashed = athens(&["hash", &zip.display().to_string()]);
    assert!(hashed.status.success(), "{}", stderr(&hashed));
    assert_eq!(stdout(&hashed).trim(), printed[0].0);

    // The go command, reading the tree as a file:// proxy, computes the
    // same hashes and accepts the zip.
    let mut go = GoOracle::new().expect("go toolchain");
    go.set_proxy(&format!("file://{}", out.display()));
    for ((_, module, version), (zip_h1, mod_h1)) in cases.iter().zip(&printed) {
        let dl = go.download(module, version).expect("go runs");
        assert!(dl.is_ok(), "{module}@{version}: {}", dl.error);
        assert_eq!(&dl.version, version);
        assert_eq!(&dl.sum, zip_h1, "{module} zip hash");
        assert_eq!(&dl.go_mod_sum, mod_h1, "{module} go.mod hash");
        assert_eq!(dl.time, "2024-02-03T04:05:06Z");
    }
    let listed = go
        .list_versions("example.com/Acme/Hello/v2")
        .expect("go list runs");
    assert_eq!(listed.versions, ["v2.1.0"]);
}

#[test]
fn pack_defaults_time_to_now_in_utc() {
    let work = tempfile::tempdir().expect("tempdir");
    let src = work.path().join("m");
    write(&src, "go.mod", "module example.com/m\n");
    let out = work.path().join("out");
    printed_hashes(&pack(&src, "example.com/m", "v1.0.0", &out, None));
    let info: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("example.com/m/@v/v1.0.0.info")).expect("info"),
    )
    .expect("json");
    assert_eq!(info["Version"], "v1.0.0");
    let time = info["Time"].as_str().expect("Time is a string");
    assert!(time.ends_with('Z') && time.len() == 20, "{time}");
}

#[test]
fn bad_input_is_one_line_exit_2_and_writes_nothing() {
    let work = tempfile::tempdir().expect("tempdir");
    let good = work.path().join("good");
    write(&good, "go.mod", "module example.com/good\n");
    write(&good, "a.go", "package a\n");
    let colliding = work.path().join("colliding");
    write(&colliding, "go.mod", "module example.com/good\n");
    write(&colliding, "a.go", "package a\n");
    write(&colliding, "A.go", "package a\n");
    let badname = work.path().join("badname");
    write(&badname, "go.mod", "module example.com/good\n");
    write(&badname, "what?.go", "package a\n");
    let out = work.path().join("out");
    let out_s = out.display().to_string();
    let g = good.display().to_string();
    let c = colliding.display().to_string();
    let b = badname.display().to_string();
    let not_zip = format!("{g}/a.go");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "pack",
                &g,
                "--module",
                "example.com/good",
                "--version",
                "v1.0",
                "--out",
                &out_s,
            ],
            "not canonical",
        ),
        (
            vec![
                "pack",
                &g,
                "--module",
                "example.com/good",
                "--version",
                "banana",
                "--out",
                &out_s,
            ],
            "banana",
        ),
        (
            vec![
                "pack",
                &g,
                "--module",
                "example.com/good",
                "--version",
                "v2.0.0",
                "--out",
                &out_s,
            ],
            "v2.0.0",
        ),
        (
            vec![
                "pack",
                &g,
                "--module",
                "example.com/good/v2",
                "--version",
                "v2.0.0",
                "--out",
                &out_s,
            ],
            "example.com/good/v2",
        ),
        (
            vec![
                "pack",
                &g,
                "--module",
                "Example.com/good",
                "--version",
                "v1.0.0",
                "--out",
                &out_s,
            ],
            "Example.com/good",
        ),
        (
            vec![
                "pack",
                &g,
                "--module",
                "example.com/good",
                "--version",
                "v1.0.0",
                "--out",
                &out_s,
                "--time",
                "noon",
            ],
            "noon",
        ),
        (
            vec![
                "pack",
                &c,
                "--module",
                "example.com/good",
                "--version",
                "v1.0.0",
                "--out",
                &out_s,
            ],
            "A.go",
        ),
        (
            vec![
                "pack",
                &b,
                "--module",
                "example.com/good",
                "--version",
                "v1.0.0",
                "--out",
                &out_s,
            ],
            "what?.go",
        ),
        (
            vec![
                "pack",
                "/nonexistent/dir",
                "--module",
                "example.com/good",
                "--version",
                "v1.0.0",
                "--out",
                &out_s,
            ],
            "/nonexistent/dir",
        ),
        (
            vec![
                "pack",
                &g,
                "--module",
                "example.com/good",
                "--version",
                "v1.0.0",
            ],
            "--out",
        ),
        (vec!["pack", &g, "--bogus"], "--bogus"),
        (vec!["hash"], "hash"),
        (
            vec!["hash", "/nonexistent/file.zip"],
            "/nonexistent/file.zip",
        ),
        (vec!["hash", &not_zip], "a.go"),
        (vec!["--no-such-flag"], "unknown flag"),
    ];
    for (args, needle) in cases {
        let result = athens(&args);
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err:?}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
        assert!(stdout(&result).is_empty(), "{args:?}");
        assert!(!out.exists(), "{args:?} left {:?}", all_files(&out));
    }

    // An existing OUTDIR is left exactly as it was.
    std::fs::create_dir_all(&out).expect("mkdir");
    write(&out, "keep.txt", "x");
    let result = athens(&[
        "pack",
        &c,
        "--module",
        "example.com/good",
        "--version",
        "v1.0.0",
        "--out",
        &out_s,
    ]);
    assert_eq!(result.status.code(), Some(2));
    assert_eq!(all_files(&out), [PathBuf::from("keep.txt")]);
}
