//! bgpctl: the command-line tool of Wren's BGP speaker. Parses the command line and
//! hands each subcommand to the library (`bgpd::control::cli`, `bgpd::decode`).

use std::process::ExitCode;

use bgpd::control::cli::{self, Connection, NeighborArgs, Show};
use clap::{Parser, Subcommand};

/// Control and inspect Wren's BGP speaker.
#[derive(Debug, Parser)]
#[command(name = "bgpctl", version, about)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show neighbors, routes or the kernel routes (tables; --json for JSON).
    #[command(subcommand)]
    Show(Show),
    /// Reset, shut down, enable or refresh one neighbor's session.
    Neighbor(NeighborArgs),
    /// Re-read the configuration file (like SIGHUP).
    Reload,
    /// IPAM: audit, release addresses or nodes, manage pools (through bgpd, or
    /// with --datastore URL directly).
    Ipam(bgpd::ipam::cli::IpamArgs),
    /// Decode BGP messages given in hex; print one JSON object per message.
    ///
    /// Exit status: 0 when every message is well-formed, 1 when an RFC 7606 / RFC 4271
    /// action applies to one, 2 when the input is unusable.
    Decode(bgpd::decode::DecodeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Show(show) => cli::show(&cli.connection, show),
        Command::Neighbor(args) => cli::neighbor(&cli.connection, args),
        Command::Reload => cli::reload(&cli.connection),
        Command::Ipam(args) => bgpd::ipam::cli::run(&cli.connection, args),
        Command::Decode(args) => bgpd::decode::run(args),
    }
}
