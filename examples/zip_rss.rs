//! Memory probe for module zips: one operation per process, so that
//! `/usr/bin/time -v` reports the peak RSS of that operation alone.
//!
//! ```text
//! cargo build --release --example zip_rss
//! target/release/examples/zip_rss gen    DIR        # write the 5,000-file / 50 MB tree
//! /usr/bin/time -v target/release/examples/zip_rss create DIR ZIP
//! /usr/bin/time -v target/release/examples/zip_rss hash   ZIP
//! /usr/bin/time -v target/release/examples/zip_rss check  ZIP
//! /usr/bin/time -v target/release/examples/zip_rss hashdir DIR
//! ```
//!
//! Figures are kept in benches/RESULTS.md.

use std::fs;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

#[path = "../benches/support/tree.rs"]
mod tree;

fn module() -> modzip::Version {
    modzip::Version {
        path: tree::MODULE.into(),
        version: "v1.0.0".into(),
    }
}

fn run(op: &str, args: &[PathBuf]) -> Result<String, Box<dyn std::error::Error>> {
    match (op, args) {
        ("gen", [dir]) => {
            fs::create_dir_all(dir)?;
            Ok(format!("{} bytes", tree::synthetic_tree(dir)?))
        }
        ("create", [dir, zip]) => {
            let out = BufWriter::new(fs::File::create(zip)?);
            modzip::zip::create_from_dir(out, &module(), dir)?;
            Ok(format!("{} bytes of zip", fs::metadata(zip)?.len()))
        }
        ("hash", [zip]) => Ok(modzip::dirhash::hash_zip(fs::File::open(zip)?)?),
        ("check", [zip]) => {
            let checked = modzip::zip::check_zip(&module(), fs::File::open(zip)?)?;
            checked.err()?;
            Ok(format!("{} files valid", checked.valid.len()))
        }
        ("hashdir", [dir]) => Ok(modzip::dirhash::hash_dir(
            dir,
            &format!("{}@v1.0.0", tree::MODULE),
        )?),
        _ => Err(
            "usage: zip_rss gen DIR | create DIR ZIP | hash ZIP | check ZIP | hashdir DIR".into(),
        ),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let op = args
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest: Vec<PathBuf> = args.map(PathBuf::from).collect();
    match run(&op, &rest) {
        Ok(summary) => {
            println!("{op}: {summary}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("zip_rss {op}: {err}");
            ExitCode::FAILURE
        }
    }
}
