//! bgpctl: the command-line tool of Wren's BGP speaker. Parses the command line and
//! hands each subcommand to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Control and inspect Wren's BGP speaker.
#[derive(Debug, Parser)]
#[command(name = "bgpctl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode BGP messages given in hex; print one JSON object per message.
    ///
    /// Exit status: 0 when every message is well-formed, 1 when an RFC 7606 / RFC 4271
    /// action applies to one, 2 when the input is unusable.
    Decode(bgpd::decode::DecodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode(args) => bgpd::decode::run(&args),
    }
}
