//! Offline subcommands of the `athens` binary:
//!
//! - `athens pack DIR --module PATH --version VER --out OUTDIR [--time T]
//!   [--layout goproxy|athens]` turns a directory into `.info`, `.mod` and
//!   `.zip` files laid out as a GOPROXY tree under OUTDIR (so
//!   `GOPROXY=file:///OUTDIR` serves them) or, with `--layout athens`, as
//!   an entry of the Athens disk store rooted at OUTDIR (to pre-fill it);
//! - `athens hash ZIP` prints a module zip's `h1:` hash;
//! - `athens verify [-config_file=PATH] [--quarantine]` checks every
//!   stored version against its recorded sums (see [`verify`]);
//! - `athens sumdb-keygen NAME [-out FILE]` writes a signer key for the
//!   private checksum database and prints its verifier key;
//! - `athens prefill [-config_file=PATH] [--gomod PATH | --gowork FILE] ...`
//!   stores everything a build of the given modules needs offline (see
//!   [`prefill`]).
//!
//! Anything else is not a subcommand and is left to the proxy server.

mod hash;
mod keygen;
mod pack;
mod prefill;
mod verify;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

pub use pack::{Layout, PackError, PackRequest};

/// Exit status for bad input: unknown flags, invalid module path or version,
/// a directory that cannot become a module zip.
pub const EXIT_USAGE: u8 = 2;
/// Exit status for failures that are not the caller's fault (I/O).
pub const EXIT_FAILURE: u8 = 1;

const USAGE: &str = "usage: athens pack DIR --module PATH --version VER --out OUTDIR [--time RFC3339] [--layout goproxy|athens] | athens hash ZIP | athens verify [-config_file=PATH] [--quarantine] | athens sumdb-keygen NAME [-out FILE] | athens prefill [-config_file=PATH] [--gomod PATH | --gowork FILE] [--gosum FILE]... [--no-gosum] [--list FILE]... [--no-deps] [--jobs N] [MODULE@VERSION|MODULE@all]...";

/// A subcommand failure, reported as one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line itself is wrong.
    #[error("{0} ({USAGE})")]
    Usage(String),
    /// `pack` refused or failed.
    #[error(transparent)]
    Pack(Box<PackError>),
    /// `hash` failed.
    #[error(transparent)]
    Hash(#[from] hash::HashCommandError),
    /// `verify` could not run or found problems.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
    /// `prefill` could not run or did not store everything.
    #[error(transparent)]
    Prefill(#[from] prefill::PrefillError),
    /// `sumdb-keygen` failed.
    #[error(transparent)]
    Keygen(#[from] keygen::KeygenError),
    /// Writing the result to stdout failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<PackError> for CliError {
    fn from(err: PackError) -> Self {
        CliError::Pack(Box::new(err))
    }
}

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::Pack(e) if e.is_bad_input() => EXIT_USAGE,
            CliError::Hash(e) if e.is_bad_input() => EXIT_USAGE,
            CliError::Verify(e) => e.exit_code(),
            CliError::Prefill(e) => e.exit_code(),
            _ => EXIT_FAILURE,
        }
    }
}

/// Whether `args` (without the program name) invoke one of these
/// subcommands rather than the server.
pub fn is_subcommand(args: &[OsString]) -> bool {
    matches!(
        args.first().and_then(|a| a.to_str()),
        Some("pack" | "hash" | "verify" | "sumdb-keygen" | "prefill")
    )
}

/// Runs the subcommand named by `args[0]`, writing results to `out`.
pub fn run(args: &[OsString], out: &mut dyn Write) -> Result<(), CliError> {
    let (name, rest) = args
        .split_first()
        .ok_or_else(|| CliError::Usage("missing subcommand".into()))?;
    match name.to_str() {
        Some("pack") => {
            let request = parse_pack(rest)?;
            let packed = pack::pack(&request)?;
            writeln!(out, "zip {}", packed.zip_hash)?;
            writeln!(out, "mod {}", packed.mod_hash)?;
            Ok(())
        }
        Some("hash") => {
            let [zip] = rest else {
                return Err(CliError::Usage(
                    "hash takes exactly one argument, the zip file".into(),
                ));
            };
            let h1 = hash::hash_zip_file(&PathBuf::from(zip))?;
            writeln!(out, "{h1}")?;
            Ok(())
        }
        Some("verify") => {
            let request = verify::parse(rest).map_err(CliError::Usage)?;
            verify::run(&request, out)?;
            Ok(())
        }
        Some("prefill") => {
            let request = prefill::parse(rest).map_err(CliError::Usage)?;
            prefill::run(&request, out)?;
            Ok(())
        }
        Some("sumdb-keygen") => {
            let request = keygen::parse(rest).map_err(CliError::Usage)?;
            let vkey = keygen::run(&request)?;
            writeln!(out, "{vkey}")?;
            Ok(())
        }
        _ => Err(CliError::Usage(format!(
            "unknown subcommand {:?}",
            name.to_string_lossy()
        ))),
    }
}

fn parse_pack(args: &[OsString]) -> Result<PackRequest, CliError> {
    let mut dir = None;
    let mut module = None;
    let mut version = None;
    let mut out = None;
    let mut time = None;
    let mut layout = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else {
            // Only DIR and OUTDIR may be arbitrary bytes; flags are ASCII.
            if dir.is_none() {
                dir = Some(PathBuf::from(arg));
                continue;
            }
            return Err(CliError::Usage(format!(
                "unexpected argument {:?}",
                arg.to_string_lossy()
            )));
        };
        let flag = text.trim_start_matches('-');
        if text.starts_with('-') && text != "-" {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(OsString::from(v))),
                None => (flag, None),
            };
            let slot = match name {
                "module" => &mut module,
                "version" => &mut version,
                "out" => &mut out,
                "time" => &mut time,
                "layout" => &mut layout,
                _ => return Err(CliError::Usage(format!("unknown flag {text:?}"))),
            };
            let value = match inline {
                Some(v) => v,
                None => iter
                    .next()
                    .cloned()
                    .ok_or_else(|| CliError::Usage(format!("flag --{name} needs a value")))?,
            };
            if slot.replace(value).is_some() {
                return Err(CliError::Usage(format!("flag --{name} given twice")));
            }
        } else if dir.is_none() {
            dir = Some(PathBuf::from(arg));
        } else {
            return Err(CliError::Usage(format!("unexpected argument {text:?}")));
        }
    }
    let utf8 = |flag: &str, v: Option<OsString>| -> Result<Option<String>, CliError> {
        v.map(|v| {
            v.into_string()
                .map_err(|_| CliError::Usage(format!("--{flag} must be UTF-8")))
        })
        .transpose()
    };
    let missing = |what: &str| CliError::Usage(format!("pack needs {what}"));
    let layout = match utf8("layout", layout)? {
        None => Layout::default(),
        Some(name) => Layout::from_name(&name).ok_or_else(|| {
            CliError::Usage(format!("--layout {name:?} is not goproxy or athens"))
        })?,
    };
    Ok(PackRequest {
        dir: dir.ok_or_else(|| missing("a source directory"))?,
        module: utf8("module", module)?.ok_or_else(|| missing("--module"))?,
        version: utf8("version", version)?.ok_or_else(|| missing("--version"))?,
        out: out.map(PathBuf::from).ok_or_else(|| missing("--out"))?,
        time: utf8("time", time)?,
        layout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_pack_flags_in_both_spellings() {
        let req = parse_pack(&args(&[
            "src",
            "--module",
            "example.com/m",
            "-version=v1.2.3",
            "--out=o",
            "--time",
            "2020-01-02T03:04:05Z",
        ]))
        .unwrap();
        assert_eq!(req.dir, PathBuf::from("src"));
        assert_eq!(req.module, "example.com/m");
        assert_eq!(req.version, "v1.2.3");
        assert_eq!(req.out, PathBuf::from("o"));
        assert_eq!(req.time.as_deref(), Some("2020-01-02T03:04:05Z"));
        let later_dir = parse_pack(&args(&[
            "--module=m.com/x",
            "--version=v1.0.0",
            "--out=o",
            "d",
        ]))
        .unwrap();
        assert_eq!(later_dir.dir, PathBuf::from("d"));
        assert_eq!(later_dir.time, None);
        assert_eq!(later_dir.layout, Layout::GoProxy);
        let athens = parse_pack(&args(&[
            "d",
            "--module=m.com/x",
            "--version=v1.0.0",
            "--out=o",
            "--layout",
            "athens",
        ]))
        .unwrap();
        assert_eq!(athens.layout, Layout::Athens);
    }

    #[test]
    fn rejects_malformed_command_lines() {
        let bad: &[&[&str]] = &[
            &[],
            &["--module=m.com/x", "--version=v1.0.0", "--out=o"],
            &["d", "--version=v1.0.0", "--out=o"],
            &["d", "--module=m.com/x", "--out=o"],
            &["d", "--module=m.com/x", "--version=v1.0.0"],
            &["d", "e", "--module=m.com/x", "--version=v1.0.0", "--out=o"],
            &[
                "d",
                "--module",
                "m.com/x",
                "--module",
                "m.com/y",
                "--version=v1",
                "--out=o",
            ],
            &["d", "--colour=red"],
            &[
                "d",
                "--module=m.com/x",
                "--version=v1.0.0",
                "--out=o",
                "--layout=disk",
            ],
            &["d", "--module"],
        ];
        for case in bad {
            let err = parse_pack(&args(case)).expect_err(&format!("accepted {case:?}"));
            assert_eq!(err.exit_code(), EXIT_USAGE);
        }
    }

    #[test]
    fn dispatch() {
        assert!(is_subcommand(&args(&["pack"])));
        assert!(is_subcommand(&args(&["hash", "x"])));
        assert!(!is_subcommand(&args(&["-config_file=config.toml"])));
        assert!(!is_subcommand(&args(&[])));
        let mut out = Vec::new();
        let err = run(&args(&["hash"]), &mut out).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        let err = run(&args(&["frob"]), &mut out).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert!(out.is_empty());
    }
}
