//! The `athens` binary. `pack` and `hash` are offline helpers handled by
//! [`cli`]; every other invocation belongs to the proxy server.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !cli::is_subcommand(&args) {
        eprintln!("athens: unrecognised invocation; supported subcommands are `pack` and `hash`");
        return ExitCode::from(cli::EXIT_USAGE);
    }
    let mut stdout = std::io::stdout().lock();
    match cli::run(&args, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("athens {}: {err}", args[0].to_string_lossy());
            ExitCode::from(err.exit_code())
        }
    }
}
