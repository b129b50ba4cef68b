//! `athens verify [-config_file=PATH] [--quarantine]`: re-hashes every
//! version in the configured storage and compares it with its checksum
//! record and, for public modules, the checksum database (see
//! [`athens::verify`]).
//!
//! On a terminal a progress bar runs on stderr and only the problems are
//! printed; otherwise every version gets one line on stdout. A summary
//! line ends the output. Exit status: 0 when every version was verified,
//! [`EXIT_CORRUPT`] when any is corrupt, [`EXIT_UNVERIFIABLE`] when none
//! is corrupt but some could not be verified or, for public modules,
//! matched their record but could not be checked against the checksum
//! database (unreachable, say), 1 when the store could not be walked, 2
//! for a bad command line.
//!
//! The checksum database and which modules it vouches for come from the
//! configuration exactly as for the server ([`athens::app`]): the one go
//! environment of `GoBinaryEnvVars` and `NoSumPatterns`; its tiles and
//! tree head are shared with the server in the store's side objects.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use athens::config::Config;
use athens::fetch::{go_env, gogetdir};
use athens::sumdb_client::SumdbChecker;
use athens::verify::{Status, StoreVerifier, Summary};

/// Exit status when a corrupt version was found.
pub const EXIT_CORRUPT: u8 = 3;
/// Exit status when no version is corrupt but some are unverifiable.
pub const EXIT_UNVERIFIABLE: u8 = 4;

/// What `athens verify` was asked to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VerifyRequest {
    /// `-config_file`, when given.
    pub config_file: Option<PathBuf>,
    /// Move corrupt versions aside.
    pub quarantine: bool,
}

/// Why `athens verify` did not report a clean store.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The configuration or the storage could not be used.
    #[error("{0:#}")]
    Setup(anyhow::Error),
    /// Verification ran and found problems.
    #[error("{} corrupt, {} unverifiable, {} not checked against the checksum database of {} versions", .0.corrupt, .0.unverifiable, .0.unchecked, .0.ok + .0.corrupt + .0.unverifiable)]
    Findings(Summary),
}

impl VerifyError {
    /// The exit status for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            VerifyError::Setup(_) => super::EXIT_FAILURE,
            VerifyError::Findings(s) if s.corrupt > 0 => EXIT_CORRUPT,
            VerifyError::Findings(_) => EXIT_UNVERIFIABLE,
        }
    }
}

/// Parses the flags after `verify`.
pub fn parse(args: &[OsString]) -> Result<VerifyRequest, String> {
    let mut request = VerifyRequest::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| format!("unexpected argument {:?}", arg.to_string_lossy()))?;
        if !text.starts_with('-') {
            return Err(format!("unexpected argument {text:?}"));
        }
        let flag = text.trim_start_matches('-');
        match flag.split_once('=') {
            Some(("config_file", value)) => request.config_file = Some(PathBuf::from(value)),
            None if flag == "config_file" => {
                let value = iter.next().ok_or("-config_file needs a value")?;
                request.config_file = Some(PathBuf::from(value));
            }
            None if flag == "quarantine" => request.quarantine = true,
            _ => return Err(format!("unknown flag {text:?}")),
        }
    }
    Ok(request)
}

/// Runs verification as asked, writing the report to `out`.
pub fn run(request: &VerifyRequest, out: &mut dyn Write) -> Result<(), VerifyError> {
    let loaded = Config::load(request.config_file.as_deref())
        .map_err(|e| VerifyError::Setup(anyhow::anyhow!("{e}")))?;
    let config = loaded.config;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| VerifyError::Setup(e.into()))?;
    let summary = runtime.block_on(verify_store(&config, request.quarantine, out));
    runtime.shutdown_background();
    let summary = summary?;
    if summary.corrupt > 0 || summary.unverifiable > 0 || summary.unchecked > 0 {
        return Err(VerifyError::Findings(summary));
    }
    Ok(())
}

async fn verify_store(
    config: &Config,
    quarantine: bool,
    out: &mut dyn Write,
) -> Result<Summary, VerifyError> {
    let backends = athens::backends::open(config)
        .await
        .map_err(VerifyError::Setup)?;
    let go_get_dir = gogetdir::prepare(&config.go_get_dir)
        .map_err(|e| VerifyError::Setup(anyhow::anyhow!(e)))?;
    let go_env = go_env::from_config(config, &go_get_dir)
        .map_err(|e| VerifyError::Setup(anyhow::anyhow!(e)))?;
    let checker = SumdbChecker::from_config(config, &go_env, Arc::clone(&backends.storage))
        .map_err(|e| VerifyError::Setup(anyhow::anyhow!(e)))?;
    // Which modules are public is the checker's policy, so no patterns
    // of our own.
    let verifier = StoreVerifier::new(Arc::clone(&backends.storage))
        .with_sumdb(Arc::new(checker), Vec::new())
        .with_quarantine(quarantine);
    let versions = verifier
        .versions()
        .await
        .map_err(|e| VerifyError::Setup(e.into()))?;
    let total = versions.len() as u64;
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} versions ({eta})",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut write_failed = None;
    let summary = verifier
        .run(versions, |report| match &bar {
            Some(bar) => {
                bar.inc(1);
                if !matches!(report.status, Status::Ok(_)) || report.note.is_some() {
                    bar.println(report.to_string());
                }
            }
            None => {
                if let Err(e) = writeln!(out, "{report}") {
                    write_failed.get_or_insert(e);
                }
            }
        })
        .await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some(e) = write_failed {
        return Err(VerifyError::Setup(anyhow::anyhow!(
            "writing the report: {e}"
        )));
    }
    let unchecked = match summary.unchecked {
        0 => String::new(),
        n => format!(" ({n} ok by their record only: not checked against the checksum database)"),
    };
    writeln!(
        out,
        "{total} versions: {} ok, {} corrupt, {} unverifiable, {} quarantined{unchecked}",
        summary.ok, summary.corrupt, summary.unverifiable, summary.quarantined
    )
    .map_err(|e| VerifyError::Setup(e.into()))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags() {
        assert_eq!(parse(&[]).unwrap(), VerifyRequest::default());
        let req = parse(&args(&["-config_file", "a.toml", "--quarantine"])).unwrap();
        assert_eq!(req.config_file, Some(PathBuf::from("a.toml")));
        assert!(req.quarantine);
        let req = parse(&args(&["--config_file=b.toml"])).unwrap();
        assert_eq!(req.config_file, Some(PathBuf::from("b.toml")));
        for bad in [&["--frob"][..], &["x"], &["-config_file"]] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
