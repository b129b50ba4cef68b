//! The `athens` binary. `pack` and `hash` are offline helpers handled by
//! [`cli`]; every other invocation runs the proxy server, configured the
//! way Athens is: `-config_file=PATH` (or `athens.toml` in the working
//! directory, or defaults) overridden by `ATHENS_*` environment variables.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use athens::config::{help_text, Config};

/// The allocator of the whole process: jemalloc rather than the system's,
/// because it records where sampled allocations come from, which is what
/// the heap profiles of `EnablePprof` (`/debug/pprof/heap`, src/pprof.rs)
/// are made of; the system allocator keeps no such record. It is chosen
/// here, in the binary, so that the library and its tests keep the system
/// allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options, read by jemalloc itself under this name
/// (tikv-jemallocator prefixes jemalloc's symbols with `_rjem_`). The
/// profiler is compiled in and enabled but inactive (`prof_active:false`):
/// no allocation is sampled, so it costs nothing measurable, until
/// `EnablePprof` activates it at start (`pprof::start`). Once active, one
/// allocation per 2^19 bytes (512 KiB) allocated on average is sampled
/// (`lg_prof_sample:19`), jemalloc's default, explicit here.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"prof:true,prof_active:false,lg_prof_sample:19\0";

const USAGE: &str = "usage: athens [-config_file=PATH] | athens verify [-config_file=PATH] [--quarantine] | athens sumdb-keygen NAME [-out FILE] | athens storage-server [-config_file=PATH] -listen=HOST:PORT | athens pack DIR --module PATH --version VER --out DIR [--layout goproxy|athens] | athens hash ZIP | athens prefill [-config_file=PATH] [--gomod PATH | --gowork FILE] [--gosum FILE]... [--no-gosum] [--list FILE]... [--no-deps] [--jobs N] [MODULE@VERSION|MODULE@all]...";

fn main() -> ExitCode {
    // More than one rustls crypto provider is compiled in (through
    // different dependencies), so rustls cannot choose one by itself for
    // the clients that rely on the process default; ring is the one the
    // server's own TLS uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if cli::is_subcommand(&args) {
        let mut stdout = std::io::stdout().lock();
        return match cli::run(&args, &mut stdout) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("athens {}: {err}", args[0].to_string_lossy());
                ExitCode::from(err.exit_code())
            }
        };
    }
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().map(String::as_str) == Some("storage-server") {
        return match storage_server_args(&args[1..]) {
            Ok((config_file, listen)) => match run_storage_server(config_file, &listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("athens storage-server: {err:#}");
                    ExitCode::FAILURE
                }
            },
            Err(message) => {
                eprintln!("athens storage-server: {message} (see athens --help)");
                ExitCode::from(cli::EXIT_USAGE)
            }
        };
    }
    match server_args(&args) {
        Ok(ServerArgs::Help) => {
            println!("{USAGE}\n\n{}", help_text());
            ExitCode::SUCCESS
        }
        Ok(ServerArgs::Version) => {
            // Athens' build details, laid out as its `-version` prints them.
            println!("{}", athens::build_info::DETAILS.console_text());
            ExitCode::SUCCESS
        }
        Ok(ServerArgs::Serve(config_file)) => match run_server(config_file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("athens: {err:#}");
                ExitCode::FAILURE
            }
        },
        Err(message) => {
            eprintln!("athens: {message} (see athens --help)");
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}

enum ServerArgs {
    Help,
    Version,
    Serve(Option<PathBuf>),
}

/// Athens' flag package accepts `-config_file=X`, `--config_file=X` and the
/// value as the next argument; we accept the same.
fn server_args(args: &[String]) -> Result<ServerArgs, String> {
    let mut config_file = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].trim_start_matches('-');
        if !args[i].starts_with('-') {
            return Err(format!("unexpected argument {:?}", args[i]));
        }
        match arg.split_once('=') {
            Some(("config_file", value)) => config_file = Some(PathBuf::from(value)),
            None if arg == "config_file" => {
                i += 1;
                let value = args.get(i).ok_or("-config_file needs a value")?;
                config_file = Some(PathBuf::from(value));
            }
            None if arg == "help" || arg == "h" => return Ok(ServerArgs::Help),
            None if arg == "version" => return Ok(ServerArgs::Version),
            // Go's flag package takes a boolean flag's value after `=`.
            Some(("version", value)) => match go_bool(value) {
                Some(true) => return Ok(ServerArgs::Version),
                Some(false) => {}
                None => return Err(format!("invalid boolean value {value:?} for -version")),
            },
            _ => return Err(format!("unknown flag {:?}", args[i])),
        }
        i += 1;
    }
    Ok(ServerArgs::Serve(config_file))
}

/// A boolean as Go's `strconv.ParseBool` reads it.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `-config_file=PATH` (optional) and `-listen=HOST:PORT` (required), in
/// the same flag forms the server accepts.
fn storage_server_args(args: &[String]) -> Result<(Option<PathBuf>, String), String> {
    let mut config_file = None;
    let mut listen = None;
    let mut i = 0;
    while i < args.len() {
        if !args[i].starts_with('-') {
            return Err(format!("unexpected argument {:?}", args[i]));
        }
        let arg = args[i].trim_start_matches('-');
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, value.to_string()),
            None => {
                i += 1;
                let value = args.get(i).ok_or(format!("-{arg} needs a value"))?;
                (arg, value.clone())
            }
        };
        match name {
            "config_file" => config_file = Some(PathBuf::from(value)),
            "listen" => listen = Some(value),
            _ => return Err(format!("unknown flag {:?}", args[i])),
        }
        i += 1;
    }
    let listen = listen.ok_or("-listen=HOST:PORT is required")?;
    Ok((config_file, listen))
}

/// Serves the configured storage over Athens' external-storage protocol.
fn run_storage_server(config_file: Option<PathBuf>, listen: &str) -> anyhow::Result<()> {
    let loaded = Config::load(config_file.as_deref())?;
    // Held to the end: dropping it writes the log lines still queued.
    let _log = athens::http::init_logging(&loaded.config)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let config = loaded.config;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let backends = athens::backends::open(&config).await?;
        let app = athens::http::storage_server::storage_router(backends.storage);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("listening on {listen}: {e}"))?;
        tracing::info!(address = %listen, storage = %config.storage_type, "serving storage");
        athens::http::serve_listener(
            listener,
            app,
            athens::http::shutdown_signal(),
            config.shutdown_timeout_duration(),
        )
        .await?;
        Ok(())
    });
    // See run_server: nothing left running may hold the process.
    runtime.shutdown_background();
    result
}

fn run_server(config_file: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = Config::load(config_file.as_deref())?;
    // Held to the end: dropping it writes the log lines still queued.
    let _log = athens::http::init_logging(&loaded.config)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let storage = loaded.config.storage_type;
    match &loaded.file {
        Some(file) => tracing::info!(file = %file.display(), %storage, "configuration read"),
        // As Athens says when it finds no file.
        None => tracing::info!(
            %storage,
            "no configuration file: running with the default settings (see config.dev.toml)"
        ),
    }
    let config = loaded.config;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // tokio's default, named here because the admission limits are
        // sized against it (see `athens::protocol`).
        .max_blocking_threads(BLOCKING_THREADS)
        .build()?;
    let result = runtime.block_on(async {
        let app = athens::app::build(&config).await?;
        athens::pprof::start(&config).await?;
        let served = athens::http::serve(&config, app.router).await;
        // The last spans, bounded in time: a hung collector cannot hold
        // the process.
        if let Some(traces) = app.traces {
            traces.shutdown().await;
        }
        served
    });
    // `serve` returns once in-flight requests are done or ShutdownTimeout
    // has passed. Stashes nobody waits for and blocking fetch threads may
    // still run; dropping the runtime would wait for the blocking ones
    // without limit, so the process ends without waiting for them (a stash
    // cut short stores nothing: storage writes are atomic).
    runtime.shutdown_background();
    result
}

/// Threads of tokio's blocking pool.
const BLOCKING_THREADS: usize = 512;
