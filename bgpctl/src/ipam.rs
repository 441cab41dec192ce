//! bgpctl's IPAM commands: `show ipam` and `ipam check|release|release-node|pool`.
//!
//! Each command becomes one [`IpamRequest`]: sent to bgpd over the control socket,
//! or, with `--datastore URL`, run by bgpctl itself against the datastore (no bgpd
//! needed: an operator can inspect and repair a cluster's store directly). The
//! output is the same either way: calicoctl-like tables of the ipam crate's reports
//! ([`crate::ipam_tables`]), or with `--json` the reports themselves.
//!
//! Exit status: 0 on success; 1 when the command fails (one line on stderr) or when
//! `ipam check` finds problems.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use ipam::{AddressInfo, CheckReport, NodeRelease, Pool, Released, UsageReport};
use ipnet::IpNet;
use serde::Serialize;
use serde::de::DeserializeOwned;

use control_proto::{Answer, IpamRequest, PoolSettings, Request, VxlanMode};

use crate::client::Connection;
use crate::client::{self, ClientError};
use crate::ipam_tables;
use crate::output::pretty as pretty_json;
use crate::output::{fail, print_answer};

/// `--datastore URL`: talk to the datastore, not to bgpd.
#[derive(Debug, Args)]
pub struct Target {
    /// Run against this datastore directly (sqlite:///PATH or etcd://HOST:PORT),
    /// without a running bgpd.
    #[arg(long, value_name = "URL", global = true)]
    pub datastore: Option<String>,
}

/// `bgpctl show ipam [--blocks] [--borrowed] [--ip ADDR]`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Also one row per block.
    #[arg(long)]
    pub blocks: bool,
    /// Also the addresses nodes borrowed from other nodes' blocks.
    #[arg(long)]
    pub borrowed: bool,
    /// What one address is allocated to (handle, node, block).
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["blocks", "borrowed"])]
    pub ip: Option<IpAddr>,
    #[command(flatten)]
    pub target: Target,
}

/// `bgpctl ipam ...`.
#[derive(Debug, Args)]
pub struct IpamArgs {
    #[command(subcommand)]
    pub command: IpamCommand,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Subcommand)]
pub enum IpamCommand {
    /// Audit the datastore like `calicoctl ipam check` (exit 1 when it finds problems).
    Check,
    /// Release one allocated address.
    Release {
        #[arg(long, value_name = "ADDR")]
        ip: IpAddr,
    },
    /// Delete a node: release its addresses and blocks, and remove it from the
    /// registry (its mesh sessions end).
    ReleaseNode { name: String },
    /// Add, list or delete IP pools.
    #[command(subcommand)]
    Pool(PoolCommand),
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Add a pool.
    Add {
        /// The pool, e.g. 10.244.0.0/16 or fd00:10:244::/56.
        cidr: String,
        /// Prefix length of its blocks (default 26 for IPv4, 122 for IPv6).
        #[arg(long, value_name = "LEN")]
        block_size: Option<u8>,
        /// Hand out no address from it.
        #[arg(long)]
        disabled: bool,
        /// Only nodes with these labels, e.g. zone=a,rack=r1.
        #[arg(long, value_name = "LABELS")]
        node_selector: Option<String>,
        /// Masquerade traffic from the pool to destinations outside every pool and
        /// node (bgpd's nftables table `inet wren`).
        #[arg(long)]
        nat_outgoing: bool,
        /// Encapsulate traffic to other nodes' blocks in VXLAN: always, cross_subnet
        /// (only to nodes outside this node's subnet) or never (the default).
        #[arg(long, value_name = "MODE")]
        vxlan_mode: Option<VxlanMode>,
        /// The VXLAN Network Identifier (default 4096).
        #[arg(long, value_name = "VNI")]
        vxlan_vni: Option<u32>,
        /// The VXLAN UDP port (default 4789).
        #[arg(long, value_name = "PORT")]
        vxlan_port: Option<u16>,
        /// Refused: Wren has no IPIP overlay (use --vxlan-mode).
        #[arg(long, value_name = "MODE", hide = true)]
        ipip_mode: Option<String>,
    },
    /// List the pools.
    List,
    /// Delete a pool whose addresses are all released.
    Delete { cidr: String },
}

/// Runs `show ipam`.
pub fn show(connection: &Connection, args: &ShowArgs) -> ExitCode {
    let request = match args.ip {
        Some(address) => IpamRequest::Address { address },
        None => IpamRequest::Usage,
    };
    run_request(connection, &args.target, &request, |text, json| {
        if let Some(address) = args.ip {
            let info: Option<AddressInfo> = parse(text)?;
            return Ok(match (info, json) {
                (info, true) => pretty(&info)?,
                (Some(info), false) => info.render(),
                (None, false) => format!("IP {address} is not allocated\n"),
            });
        }
        let report: UsageReport = parse(text)?;
        if json {
            return pretty(&report);
        }
        let mut out = ipam_tables::usage(&report, args.blocks);
        if args.borrowed {
            out.push('\n');
            if report.borrowed.is_empty() {
                out.push_str("No borrowed addresses.\n");
            } else {
                out.push_str(&ipam_tables::borrowed(&report));
            }
        }
        Ok(out)
    })
}

/// Runs `ipam ...`.
pub fn run(connection: &Connection, args: &IpamArgs) -> ExitCode {
    let request = match request_of(&args.command) {
        Ok(request) => request,
        Err(message) => return fail(&message),
    };
    let mut problems = 0;
    let status = run_request(
        connection,
        &args.target,
        &request,
        |text, json| match &request {
            IpamRequest::Check => {
                let report: CheckReport = parse(text)?;
                problems = report.problems;
                if json {
                    pretty(&report)
                } else {
                    Ok(report.render())
                }
            }
            IpamRequest::Release { .. } => {
                let released: Released = parse(text)?;
                if json {
                    pretty(&released)
                } else {
                    Ok(format!(
                        "released {} (handle {})\n",
                        released.address, released.handle
                    ))
                }
            }
            IpamRequest::ReleaseNode { .. } => {
                let report: NodeRelease = parse(text)?;
                if json {
                    return pretty(&report);
                }
                let mut out = format!(
                    "node {}: released {} addresses and {} blocks",
                    report.node,
                    report.addresses_released,
                    report.blocks_released.len()
                );
                if !report.blocks_orphaned.is_empty() {
                    out.push_str(&format!(
                        "; {} blocks kept without an owner while other nodes borrow from them ({})",
                        report.blocks_orphaned.len(),
                        join(&report.blocks_orphaned)
                    ));
                }
                out.push('\n');
                Ok(out)
            }
            IpamRequest::Pools => {
                let pools: Vec<Pool> = parse(text)?;
                if json {
                    pretty(&pools)
                } else {
                    Ok(ipam_tables::pools(&pools))
                }
            }
            IpamRequest::PoolAdd { .. } => {
                let pool: Pool = parse(text)?;
                if json {
                    pretty(&pool)
                } else {
                    Ok(format!(
                        "pool {} added (blocks /{})\n",
                        pool.cidr, pool.block_size
                    ))
                }
            }
            IpamRequest::PoolDelete { .. } => {
                let cidr: IpNet = parse(text)?;
                if json {
                    pretty(&cidr)
                } else {
                    Ok(format!("pool {cidr} deleted\n"))
                }
            }
            IpamRequest::Usage | IpamRequest::Address { .. } => {
                Err(String::from("`show ipam` is not an `ipam` subcommand"))
            }
        },
    );
    if status == ExitCode::SUCCESS && problems > 0 {
        return ExitCode::FAILURE;
    }
    status
}

/// The request of an `ipam` subcommand (its arguments checked).
fn request_of(command: &IpamCommand) -> Result<IpamRequest, String> {
    Ok(match command {
        IpamCommand::Check => IpamRequest::Check,
        IpamCommand::Release { ip } => IpamRequest::Release { address: *ip },
        IpamCommand::ReleaseNode { name } => {
            ipam::keys::validate_node(name).map_err(|e| e.to_string())?;
            IpamRequest::ReleaseNode { node: name.clone() }
        }
        IpamCommand::Pool(PoolCommand::List) => IpamRequest::Pools,
        IpamCommand::Pool(PoolCommand::Delete { cidr }) => IpamRequest::PoolDelete {
            cidr: Pool::parse_cidr(cidr).map_err(|e| e.to_string())?,
        },
        IpamCommand::Pool(PoolCommand::Add {
            cidr,
            block_size,
            disabled,
            node_selector,
            nat_outgoing,
            vxlan_mode,
            vxlan_vni,
            vxlan_port,
            ipip_mode,
        }) => {
            let settings = PoolSettings {
                cidr: Pool::parse_cidr(cidr).map_err(|e| e.to_string())?,
                block_size: *block_size,
                disabled: *disabled,
                node_selector: match node_selector {
                    Some(selector) => {
                        ipam::parse_node_selector(selector).map_err(|e| e.to_string())?
                    }
                    None => Default::default(),
                },
                nat_outgoing: *nat_outgoing,
                vxlan_mode: vxlan_mode.unwrap_or_default(),
                vxlan_vni: *vxlan_vni,
                vxlan_port: *vxlan_port,
                ipip_mode: ipip_mode.clone(),
            };
            // Checked here already (the store checks again).
            let pool = ipam::ops::new_pool(&settings).map_err(|e| e.to_string())?;
            IpamRequest::PoolAdd(PoolSettings {
                block_size: Some(pool.block_size),
                vxlan_vni: Some(pool.vxlan_vni),
                vxlan_port: Some(pool.vxlan_port),
                ..settings
            })
        }
    })
}

/// Runs `request` (through bgpd, or against `--datastore`) and prints what `render`
/// makes of the answer (`render` gets the answer's JSON text and `--json`).
fn run_request(
    connection: &Connection,
    target: &Target,
    request: &IpamRequest,
    mut render: impl FnMut(&str, bool) -> Result<String, String>,
) -> ExitCode {
    let answer = match &target.datastore {
        Some(url) => direct(url, request),
        None => through_bgpd(connection, request),
    };
    let text = match answer {
        Ok(text) => text,
        Err(message) => return fail(&message),
    };
    match render(&text, connection.json) {
        Ok(out) => print_answer(&out),
        Err(message) => fail(&message),
    }
}

/// Runs the request in bgpctl against the datastore at `url`.
fn direct(url: &str, request: &IpamRequest) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime
        .block_on(async {
            let ipam = ipam::connect(url).await?;
            ipam::ops::execute(&ipam, request).await
        })
        .map_err(|e| e.to_string())
}

/// Sends the request to bgpd.
fn through_bgpd(connection: &Connection, request: &IpamRequest) -> Result<String, String> {
    let path = client::socket_path(connection.socket.as_deref());
    let message = Request::Ipam {
        request: request.clone(),
    };
    match client::request(&path, &message) {
        Ok(Answer::Ipam(text)) => Ok(text),
        Ok(other) => Err(crate::output::unexpected(&other)),
        Err(error @ (ClientError::NotRunning(_) | ClientError::Refused(_))) => Err(format!(
            "{error} (give --datastore URL to work on the datastore without bgpd)"
        )),
        Err(error) => Err(error.to_string()),
    }
}

fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("an answer bgpctl cannot read: {e}"))
}

fn pretty<T: Serialize>(value: &T) -> Result<String, String> {
    pretty_json(value).map(|text| text + "\n")
}

fn join(cidrs: &[IpNet]) -> String {
    cidrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
