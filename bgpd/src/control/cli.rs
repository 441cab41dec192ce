//! bgpctl's commands that talk to bgpd: the clap definitions and what each prints.
//! Exit status: 0 on success, 1 when bgpd refuses or cannot be reached (one line on
//! stderr saying why).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use ipnet::IpNet;

use super::client::{self, ClientError};
use super::protocol::{NeighborEntry, Request};
use super::render;
use crate::config::FamilyName;
use crate::supervisor::{NeighborAction, ReloadSummary};
use crate::view::{RouteQuery, RouteTable, RouteView};

/// Options every control command takes.
#[derive(Debug, Args)]
pub struct Connection {
    /// The control socket (default: $WREN_CONTROL_SOCKET, else /run/wren/bgpd.sock).
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the answer as JSON (show commands).
    #[arg(long, global = true)]
    pub json: bool,
}

/// `bgpctl show ...`.
#[derive(Debug, Subcommand)]
pub enum Show {
    /// Every neighbor, like `show bgp summary`.
    Neighbors,
    /// One neighbor in detail.
    Neighbor { address: IpAddr },
    /// Routes of the Loc-RIB, or one neighbor's received or advertised routes.
    Routes(RoutesArgs),
    /// Routes in the kernel and those that failed to install.
    Fib,
    /// IPAM pools and blocks with their usage (GROUPING, CIDR, IPS TOTAL, IPS IN
    /// USE, IPS FREE), borrowed addresses, or one address (--ip).
    Ipam(crate::ipam::cli::ShowArgs),
}

/// `bgpctl show routes [PREFIX] [--family F] [--neighbor ADDR --received|--advertised]`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// A prefix (exact) or an address (longest match).
    pub prefix: Option<String>,
    #[arg(long, value_enum)]
    pub family: Option<Family>,
    /// With --received or --advertised: that neighbor's routes.
    #[arg(long, value_name = "ADDR")]
    pub neighbor: Option<IpAddr>,
    /// What the neighbor sent us (before import policy).
    #[arg(long, requires = "neighbor", conflicts_with = "advertised")]
    pub received: bool,
    /// What we send the neighbor.
    #[arg(long, requires = "neighbor")]
    pub advertised: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Family {
    Ipv4,
    Ipv6,
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
        Show::Routes(args) => match route_query(args) {
            Ok(query) => Request::ShowRoutes { query },
            Err(message) => return fail(&message),
        },
        Show::Fib => Request::ShowFib,
        Show::Ipam(args) => return crate::ipam::cli::show(connection, args),
    };
    let value = match ask(connection, &request) {
        Ok(value) => value,
        Err(error) => return fail(&error.to_string()),
    };
    if connection.json {
        return match serde_json::to_string_pretty(&value) {
            Ok(text) => print_answer(&format!("{text}\n")),
            Err(error) => fail(&error.to_string()),
        };
    }
    let text = match show {
        Show::Neighbors => {
            serde_json::from_value::<Vec<NeighborEntry>>(value).map(|e| render::neighbors(&e))
        }
        Show::Neighbor { .. } => {
            serde_json::from_value::<NeighborEntry>(value).map(|e| render::neighbor(&e))
        }
        Show::Routes(_) => {
            serde_json::from_value::<Vec<RouteView>>(value).map(|r| render::routes(&r))
        }
        Show::Fib => {
            serde_json::from_value::<route_sync::Snapshot>(value).map(|s| crate::fib::render(&s))
        }
        Show::Ipam(_) => return ExitCode::SUCCESS,
    };
    match text {
        Ok(text) => print_answer(&format!("{text}\n")),
        Err(error) => fail(&format!("bgpd sent an answer bgpctl cannot read: {error}")),
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
        Ok(value) => print_answer(&format!("{}\n", value.as_str().unwrap_or("done"))),
        Err(error) => fail(&error.to_string()),
    }
}

/// Runs `reload`.
pub fn reload(connection: &Connection) -> ExitCode {
    match ask(connection, &Request::Reload) {
        Ok(value) => {
            if connection.json {
                print_answer(&format!("{value}\n"))
            } else {
                match serde_json::from_value::<ReloadSummary>(value) {
                    Ok(summary) => print_answer(&format!("{}\n", render::reload(&summary))),
                    Err(error) => fail(&format!("bgpd sent an answer bgpctl cannot read: {error}")),
                }
            }
        }
        Err(error) => fail(&error.to_string()),
    }
}

fn ask(connection: &Connection, request: &Request) -> Result<serde_json::Value, ClientError> {
    let path = client::socket_path(connection.socket.as_deref());
    client::request(&path, request)
}

fn route_query(args: &RoutesArgs) -> Result<RouteQuery, String> {
    let prefix = match &args.prefix {
        None => None,
        Some(text) => Some(match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => text
                .parse::<IpAddr>()
                .map(IpNet::from)
                .map_err(|_| format!("{text:?} is neither a prefix nor an address"))?,
        }),
    };
    let view = if args.received {
        RouteTable::Received
    } else if args.advertised {
        RouteTable::Advertised
    } else {
        RouteTable::LocRib
    };
    if args.neighbor.is_some() && view == RouteTable::LocRib {
        return Err("--neighbor needs --received or --advertised".into());
    }
    Ok(RouteQuery {
        prefix,
        family: args.family.map(|family| match family {
            Family::Ipv4 => FamilyName::Ipv4,
            Family::Ipv6 => FamilyName::Ipv6,
        }),
        neighbor: args.neighbor,
        view,
    })
}

/// Prints an answer on stdout. A reader that went away (`bgpctl show routes | head`)
/// ends bgpctl quietly; another write error is one line on stderr and exit status 1.
pub(crate) fn print_answer(text: &str) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => fail(&format!("cannot write the answer: {error}")),
    }
}

/// One line on stderr (never a panic if stderr is gone) and exit status 1.
pub(crate) fn fail(message: &str) -> ExitCode {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "bgpctl: {message}");
    ExitCode::FAILURE
}
