//! bgpctl: the command-line tool of Wren's BGP speaker. Parses the command line and
//! hands each subcommand to its module:
//! - [`show`]: `show neighbors|neighbor|routes|fib`, `neighbor ADDR ...`, `reload`,
//!   `health`
//!   (through bgpd's control socket, [`client`]); `show routes` streams ([`routes`]);
//! - [`ipam`]: `show ipam` and `ipam ...`, through bgpd or `--datastore URL`
//!   ([`ipam_tables`]: their tables);
//! - [`monitor`]: `monitor [routes|neighbors|fib]`, bgpd's changes as they happen;
//! - [`decode`]: BGP messages from hex dumps to JSON;
//! - [`table`]: the one table renderer every table goes through; [`render`]: what each
//!   answer looks like as text; [`output`]: writing answers and one-line failures.
//!
//! bgpctl links the control protocol (`control-proto`), bgp-proto (for `decode`) and
//! the ipam crate (for `--datastore`), never bgpd.

mod client;
mod decode;
mod ipam;
mod ipam_tables;
mod monitor;
mod output;
mod render;
mod routes;
mod show;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use client::Connection;
use show::{NeighborArgs, Show};

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
    Ipam(ipam::IpamArgs),
    /// Follow bgpd's changes as they happen: best routes, session states, kernel
    /// route operations (default: all three); one line each, --json for JSON lines.
    ///
    /// Exit status: 1 when bgpd cuts the monitor off for reading too slowly (the
    /// reason on stderr) or closes the stream; runs until interrupted otherwise.
    Monitor(monitor::MonitorArgs),
    /// Decode BGP messages given in hex; print one JSON object per message.
    ///
    /// Exit status: 0 when every message is well-formed, 1 when an RFC 7606 / RFC 4271
    /// action applies to one, 2 when the input is unusable.
    Decode(decode::DecodeArgs),
    /// Is bgpd ready (converged, IPAM datastore reachable)? For probes.
    ///
    /// Exit status: 0 when ready (with --live: when bgpd and its rib task answer at
    /// all), 1 otherwise.
    Health(show::HealthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Show(show) => show::show(&cli.connection, show),
        Command::Neighbor(args) => show::neighbor(&cli.connection, args),
        Command::Reload => show::reload(&cli.connection),
        Command::Ipam(args) => ipam::run(&cli.connection, args),
        Command::Monitor(args) => monitor::run(&cli.connection, args),
        Command::Decode(args) => decode::run(args),
        Command::Health(args) => show::health(&cli.connection, args),
    }
}
