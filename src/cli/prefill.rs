//! `athens prefill [-config_file=PATH] [--gomod PATH | --gowork FILE]
//! [--gosum FILE]... [--no-gosum] [--list FILE]... [--no-deps] [--jobs N]
//! [MODULE@VERSION | MODULE@all]...`: stores in the configured storage
//! every module version a build of the given modules needs offline (see
//! [`athens::prefill`]), through the same fetchers, checksum database
//! check and stash stack as the server ([`athens::app::stashing`]).
//!
//! On a terminal a progress bar runs on stderr and only failures are
//! printed; otherwise every version gets one line on stdout (`stored`,
//! `present`, `failed` or `mismatch`, then `module@version`). A summary
//! line ends the output. Exit status: 0 when every version is stored,
//! [`EXIT_MISMATCH`] when a version did not match go.sum or the checksum
//! database, [`EXIT_INCOMPLETE`] when some could not be stored otherwise,
//! 1 when the configuration or storage cannot be used, 2 for a bad command
//! line or input file.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use athens::config::Config;
use athens::fetch::Fetcher;
use athens::prefill::gosum::{GoSumCheckingFetcher, GoSums};
use athens::prefill::input::{self, InputError, SumFiles};
use athens::prefill::{Listed, Plan, Prefiller, Progress, Summary};

/// Exit status when a version did not match its checksums.
pub const EXIT_MISMATCH: u8 = 3;
/// Exit status when some versions could not be stored (no mismatch).
pub const EXIT_INCOMPLETE: u8 = 4;

/// What `athens prefill` was asked to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PrefillRequest {
    /// `-config_file`, when given.
    pub config_file: Option<PathBuf>,
    /// `--gomod`: a main module's go.mod or its directory.
    pub go_mod: Option<PathBuf>,
    /// `--gowork`: a go.work file.
    pub go_work: Option<PathBuf>,
    /// `--gosum`: more go.sum files to check against.
    pub go_sums: Vec<PathBuf>,
    /// `--no-gosum`: do not read the go.sum files beside go.mod / go.work.
    pub no_default_sums: bool,
    /// `--list`: files of `module@version` lines.
    pub lists: Vec<PathBuf>,
    /// `module@version` and `module@all` arguments.
    pub listed: Vec<Listed>,
    /// `--no-deps`: listed versions alone, without their requirement graph.
    pub no_deps: bool,
    /// `--jobs`: versions handled at once.
    pub jobs: Option<usize>,
}

/// Why `athens prefill` did not store everything.
#[derive(Debug, thiserror::Error)]
pub enum PrefillError {
    /// The configuration or the storage could not be used.
    #[error("{0:#}")]
    Setup(anyhow::Error),
    /// An input file is missing or malformed.
    #[error(transparent)]
    Input(#[from] InputError),
    /// It ran, and some versions could not be stored.
    #[error("{} of {} versions not stored ({} checksum mismatches)", .0.failed, .0.zips + .0.go_mods, .0.mismatched)]
    Incomplete(Summary),
}

impl PrefillError {
    /// The exit status for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            PrefillError::Setup(_) => super::EXIT_FAILURE,
            PrefillError::Input(_) => super::EXIT_USAGE,
            PrefillError::Incomplete(s) if s.mismatched > 0 => EXIT_MISMATCH,
            PrefillError::Incomplete(_) => EXIT_INCOMPLETE,
        }
    }
}

/// Parses the arguments after `prefill`.
pub fn parse(args: &[OsString]) -> Result<PrefillRequest, String> {
    let mut request = PrefillRequest::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let text = arg
            .to_str()
            .ok_or_else(|| format!("unexpected argument {:?}", arg.to_string_lossy()))?;
        if !text.starts_with('-') {
            request.listed.push(input::parse_listed(text)?);
            continue;
        }
        let flag = text.trim_start_matches('-');
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(OsString::from(value))),
            None => (flag, None),
        };
        match name {
            "no-gosum" | "no-deps" if inline.is_none() => {
                if name == "no-gosum" {
                    request.no_default_sums = true;
                } else {
                    request.no_deps = true;
                }
                continue;
            }
            "config_file" | "gomod" | "gowork" | "gosum" | "list" | "jobs" => {}
            _ => return Err(format!("unknown flag {text:?}")),
        }
        let value = match inline {
            Some(v) => v,
            None => iter
                .next()
                .cloned()
                .ok_or_else(|| format!("-{name} needs a value"))?,
        };
        let once = |slot: &mut Option<PathBuf>| {
            if slot.replace(PathBuf::from(&value)).is_some() {
                Err(format!("-{name} given twice"))
            } else {
                Ok(())
            }
        };
        match name {
            "config_file" => once(&mut request.config_file)?,
            "gomod" => once(&mut request.go_mod)?,
            "gowork" => once(&mut request.go_work)?,
            "gosum" => request.go_sums.push(PathBuf::from(value)),
            "list" => request.lists.push(PathBuf::from(value)),
            _ => {
                let jobs = value
                    .to_str()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("-jobs {value:?} is not a positive number"))?;
                request.jobs = Some(jobs);
            }
        }
    }
    if request.go_mod.is_some() && request.go_work.is_some() {
        return Err("-gomod and -gowork cannot be given together".into());
    }
    if request.go_mod.is_none()
        && request.go_work.is_none()
        && request.lists.is_empty()
        && request.listed.is_empty()
    {
        return Err("nothing to prefill: give -gomod, -gowork, -list or module@version".into());
    }
    Ok(request)
}

/// The plan `request` describes, its input files read.
pub fn plan(request: &PrefillRequest) -> Result<Plan, InputError> {
    let mut plan = Plan {
        listed_deps: !request.no_deps,
        ..Plan::default()
    };
    let sums = if request.no_default_sums {
        SumFiles::Explicit
    } else {
        SumFiles::Beside
    };
    if let Some(path) = &request.go_mod {
        input::add_go_mod(&mut plan, path, sums)?;
    }
    if let Some(path) = &request.go_work {
        input::add_go_work(&mut plan, path, sums)?;
    }
    for path in &request.go_sums {
        plan.sums.read_file(path)?;
    }
    for path in &request.lists {
        plan.listed.extend(input::read_list(path)?);
    }
    plan.listed.extend(request.listed.iter().cloned());
    Ok(plan)
}

/// Runs the prefill as asked, writing the report to `out`.
pub fn run(request: &PrefillRequest, out: &mut dyn Write) -> Result<(), PrefillError> {
    let plan = plan(request)?;
    let loaded = Config::load(request.config_file.as_deref())
        .map_err(|e| PrefillError::Setup(anyhow::anyhow!("{e}")))?;
    let config = loaded.config;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| PrefillError::Setup(e.into()))?;
    let summary = runtime.block_on(prefill(&config, plan, request.jobs, out));
    // Nothing left running may hold the process (see the server's run).
    runtime.shutdown_background();
    let summary = summary?;
    if summary.failed > 0 {
        return Err(PrefillError::Incomplete(summary));
    }
    Ok(())
}

async fn prefill(
    config: &Config,
    plan: Plan,
    jobs: Option<usize>,
    out: &mut dyn Write,
) -> Result<Summary, PrefillError> {
    let sums: Arc<GoSums> = Arc::new(plan.sums.clone());
    let check_sums = Arc::clone(&sums);
    let stashing = athens::app::stashing(config, move |fetcher: Arc<dyn Fetcher>| {
        Arc::new(GoSumCheckingFetcher::new(fetcher, check_sums)) as Arc<dyn Fetcher>
    })
    .await
    .map_err(PrefillError::Setup)?;
    // More at once than the stash stack lets wait would be refused.
    let jobs = jobs
        .unwrap_or(config.go_get_workers)
        .min(config.max_pending_fetches.max(1));
    let prefiller = Prefiller::new(
        stashing.storage,
        stashing.stasher,
        stashing.fetcher,
        sums,
        jobs,
    );
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} versions",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let mut write_failed = None;
    let summary = prefiller
        .run(&plan, |progress| match (&bar, progress) {
            (Some(bar), Progress::Found) => bar.inc_length(1),
            (Some(bar), Progress::Done(report)) => {
                bar.inc(1);
                if matches!(report.outcome, athens::prefill::Outcome::Failed { .. }) {
                    bar.println(report.to_string());
                }
            }
            (None, Progress::Found) => {}
            (None, Progress::Done(report)) => {
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
        return Err(PrefillError::Setup(anyhow::anyhow!(
            "writing the report: {e}"
        )));
    }
    writeln!(
        out,
        "{} versions ({} with their zip, {} for their go.mod only): {} stored, {} already stored, {} failed ({} checksum mismatches)",
        summary.zips + summary.go_mods,
        summary.zips,
        summary.go_mods,
        summary.stored,
        summary.present,
        summary.failed,
        summary.mismatched
    )
    .map_err(|e| PrefillError::Setup(e.into()))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use modzip::module::Version;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags() {
        let req = parse(&args(&[
            "-config_file",
            "a.toml",
            "--gomod=app",
            "--gosum",
            "x.sum",
            "--list=l1",
            "-list",
            "l2",
            "--jobs=3",
            "--no-deps",
            "--no-gosum",
            "example.com/m@v1.0.0",
            "example.com/n@all",
        ]))
        .unwrap();
        assert_eq!(req.config_file, Some(PathBuf::from("a.toml")));
        assert_eq!(req.go_mod, Some(PathBuf::from("app")));
        assert_eq!(req.go_sums, [PathBuf::from("x.sum")]);
        assert_eq!(req.lists, [PathBuf::from("l1"), PathBuf::from("l2")]);
        assert_eq!(req.jobs, Some(3));
        assert!(req.no_deps && req.no_default_sums);
        assert_eq!(
            req.listed,
            [
                Listed::Version(Version::new("example.com/m", "v1.0.0")),
                Listed::All("example.com/n".into())
            ]
        );
        let work = parse(&args(&["-gowork", "go.work"])).unwrap();
        assert_eq!(work.go_work, Some(PathBuf::from("go.work")));
        for bad in [
            &[][..],
            &["--frob"],
            &["--gomod"],
            &["--gomod=a", "--gowork=b"],
            &["--gomod=a", "--gomod=b"],
            &["--jobs=0", "m.com/x@v1.0.0"],
            &["--jobs=many", "m.com/x@v1.0.0"],
            &["--no-deps=yes", "m.com/x@v1.0.0"],
            &["not a module"],
            &["-config_file=a.toml"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
