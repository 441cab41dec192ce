//! bgpd: Wren's BGP speaker. Parses the command line, reads the configuration and
//! runs the daemon (see `bgpd::daemon`).

use std::path::PathBuf;
use std::process::ExitCode;

use bgpd::config::{Config, LogFormat};
use clap::{Parser, ValueEnum};
// C's pow and log, defined in this binary so that libm.so.6 is not mapped (see there).
use libm_symbols as _;

/// Wren's BGP speaker.
#[derive(Debug, Parser)]
#[command(name = "bgpd", version, about)]
struct Cli {
    /// The configuration file.
    #[arg(long, short = 'c', value_name = "PATH", default_value = bgpd::config::DEFAULT_PATH)]
    config: PathBuf,
    /// Check a configuration file and exit: 0 when valid, 1 with one line per error.
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    check_config: Option<PathBuf>,
    /// Log format (overrides `[log] format`).
    #[arg(long, value_enum)]
    log_format: Option<Format>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    // Before any thread exists (see bgpd::memory); said once logging is up.
    let allocator = bgpd::memory::configure();
    let cli = Cli::parse();
    if let Some(path) = &cli.check_config {
        return match Config::load(path) {
            Ok(_) => {
                say(
                    &mut std::io::stdout(),
                    &format!("{}: configuration is valid", path.display()),
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                say(&mut std::io::stderr(), &errors.to_string());
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(errors) => {
            say(&mut std::io::stderr(), &errors.to_string());
            return ExitCode::FAILURE;
        }
    };
    let format = match cli.log_format {
        Some(Format::Text) => LogFormat::Text,
        Some(Format::Json) => LogFormat::Json,
        None => config.log.format,
    };
    bgpd::daemon::init_logging(format, config.log.level.as_deref());
    if let Err(error) = allocator {
        tracing::warn!("allocator policy: {error}; glibc's defaults stay");
    }
    open_files(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            say(
                &mut std::io::stderr(),
                &format!("bgpd: cannot start the runtime: {error}"),
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bgpd::daemon::run(cli.config, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            say(&mut std::io::stderr(), &format!("bgpd: {error:#}"));
            // Whatever is left (a failed task's peers, route-sync mid-batch) is
            // dropped as it is, without waiting: the kernel routes stay for the next
            // start to adopt.
            runtime.shutdown_background();
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit of open files to the hard one, and says so when the
/// sessions the configuration allows could exceed it (see `bgpd::limits`).
fn open_files(config: &Config) {
    let limit = match bgpd::limits::raise_open_files() {
        Ok(files) => {
            if files.now != files.before {
                tracing::info!(
                    "open files: soft limit (RLIMIT_NOFILE) raised from {} to the hard limit {}",
                    files.before,
                    files.now
                );
            }
            files.now
        }
        Err(line) => {
            tracing::warn!("{line}");
            match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
                Ok((soft, _)) => soft,
                Err(_) => return,
            }
        }
    };
    if let Some(line) = bgpd::limits::shortfall(limit, bgpd::limits::sessions_allowed(config)) {
        tracing::warn!("{line}");
    }
}

/// Writes one message and a newline, ignoring a failed write: on a full disk or a
/// closed stderr the exit status still tells what happened (`println!` would panic).
fn say(out: &mut impl std::io::Write, message: &str) {
    let _ = writeln!(out, "{message}");
}
