//! bgpctl's commands that talk to bgpd: the clap definitions and what each prints.
//! Exit status: 0 on success, 1 when bgpd refuses or cannot be reached (one line on
//! stderr saying why).

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use control_proto::{Answer, NeighborAction, Request};

use crate::client::{Connection, ask};
use crate::output::{fail, pretty, print_answer, unexpected};
use crate::{render, routes};

/// `bgpctl show ...`.
#[derive(Debug, Subcommand)]
pub enum Show {
    /// Every neighbor, like `show bgp summary`.
    Neighbors,
    /// One neighbor in detail.
    Neighbor { address: IpAddr },
    /// Routes of the Loc-RIB, or one neighbor's received or advertised routes, in
    /// prefix order, printed as they arrive.
    Routes(routes::RoutesArgs),
    /// Routes in the kernel and those that failed to install.
    Fib,
    /// IPAM pools and blocks with their usage (GROUPING, CIDR, IPS TOTAL, IPS IN
    /// USE, IPS FREE), borrowed addresses, or one address (--ip).
    Ipam(crate::ipam::ShowArgs),
    /// BFD sessions: peer, interface (single hop) or local address (multihop), state,
    /// discriminators, negotiated transmit interval and detection time, time in the
    /// state, last diagnostic (`--json` adds failures and packet counters).
    Bfd,
}

/// `bgpctl neighbor ADDR ...`.
#[derive(Debug, Args)]
pub struct NeighborArgs {
    pub address: IpAddr,
    #[command(subcommand)]
    pub action: NeighborCommand,
}

#[derive(Debug, Subcommand)]
pub enum NeighborCommand {
    /// Drop the session (Cease / Administrative Reset) and start over.
    Reset { message: Option<String> },
    /// Shut the session down (Cease / Administrative Shutdown) until `enable`.
    Shutdown { message: Option<String> },
    /// Start a shut down session again.
    Enable,
    /// Ask the peer to send its routes again (ROUTE-REFRESH).
    Refresh,
}

/// Runs `show`.
pub fn show(connection: &Connection, show: &Show) -> ExitCode {
    let request = match show {
        Show::Neighbors => Request::ShowNeighbors,
        Show::Neighbor { address } => Request::ShowNeighbor { address: *address },
        Show::Routes(args) => return routes::show(connection, args),
        Show::Fib => Request::ShowFib,
        Show::Bfd => Request::ShowBfd,
        Show::Ipam(args) => return crate::ipam::show(connection, args),
    };
    let answer = match ask(connection, &request) {
        Ok(answer) => answer,
        Err(error) => return fail(&error.to_string()),
    };
    let text = match (answer, connection.json) {
        (Answer::Neighbors(entries), true) => pretty(&entries),
        (Answer::Neighbors(entries), false) => Ok(render::neighbors(&entries)),
        (Answer::Neighbor(entry), true) => pretty(&entry),
        (Answer::Neighbor(entry), false) => Ok(render::neighbor(&entry)),
        (Answer::Fib(snapshot), true) => pretty(&snapshot),
        (Answer::Fib(snapshot), false) => Ok(render::fib(&snapshot)),
        (Answer::Bfd(sessions), true) => pretty(&sessions),
        (Answer::Bfd(sessions), false) => Ok(render::bfd(&sessions)),
        (other, _) => Err(unexpected(&other)),
    };
    match text {
        Ok(text) => print_answer(&format!("{}\n", text.trim_end())),
        Err(message) => fail(&message),
    }
}

/// Runs `neighbor ADDR ...`.
pub fn neighbor(connection: &Connection, args: &NeighborArgs) -> ExitCode {
    let (action, message) = match &args.action {
        NeighborCommand::Reset { message } => (NeighborAction::Reset, message.clone()),
        NeighborCommand::Shutdown { message } => (NeighborAction::Shutdown, message.clone()),
        NeighborCommand::Enable => (NeighborAction::Enable, None),
        NeighborCommand::Refresh => (NeighborAction::Refresh, None),
    };
    let request = Request::Neighbor {
        address: args.address,
        action,
        message,
    };
    match ask(connection, &request) {
        Ok(Answer::Done(text)) => print_answer(&format!("{text}\n")),
        Ok(other) => fail(&unexpected(&other)),
        Err(error) => fail(&error.to_string()),
    }
}

/// `health`'s options.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Succeed when bgpd answers at all (liveness), not only when ready.
    #[arg(long)]
    pub live: bool,
}

/// Runs `health`: prints bgpd's health; exit status 0 when ready (or, with
/// `--live`, when it answered), 1 otherwise.
pub fn health(connection: &Connection, args: &HealthArgs) -> ExitCode {
    let health = match ask(connection, &Request::ShowHealth) {
        Ok(Answer::Health(health)) => health,
        Ok(other) => return fail(&unexpected(&other)),
        Err(error) => return fail(&error.to_string()),
    };
    let printed = if connection.json {
        match pretty(&health) {
            Ok(text) => print_answer(&format!("{text}\n")),
            Err(message) => return fail(&message),
        }
    } else {
        print_answer(&format!("{health}\n"))
    };
    if printed != ExitCode::SUCCESS || args.live || health.ready() {
        printed
    } else {
        ExitCode::FAILURE
    }
}

/// Runs `reload`.
pub fn reload(connection: &Connection) -> ExitCode {
    match ask(connection, &Request::Reload) {
        Ok(Answer::Reloaded(summary)) if connection.json => match pretty(&summary) {
            Ok(text) => print_answer(&format!("{text}\n")),
            Err(message) => fail(&message),
        },
        Ok(Answer::Reloaded(summary)) => print_answer(&format!("{summary}\n")),
        Ok(other) => fail(&unexpected(&other)),
        Err(error) => fail(&error.to_string()),
    }
}
