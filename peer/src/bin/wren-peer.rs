//! `wren-peer`: the adversarial peer by hand.
//!
//! ```text
//! wren-peer --connect 10.0.0.1:179 --asn 65001 --announce 10.9.0.0/24 \
//!           --send-hex broken.hex --sentinel 10.250.0.1/32 \
//!           --bgpctl bgpctl --socket /run/wren/bgpd.sock --wait 5
//! ```
//! Connects, sends an OPEN (built from the flags, or `--open-hex`), completes the
//! handshake, announces `--announce` prefixes, sends each `--send-hex` file (hex, any
//! number of messages, `#` comments), then the sentinel, and prints what it saw as
//! JSON lines: the handshake, a NOTIFICATION, the close, the outcome for each
//! announced prefix when `--socket` is given (RIB state from bgpctl), and a summary.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use ipnet::IpNet;
use peer::wire::{self, Attributes};
use peer::{ConnectOptions, Daemon, Handshake, Peer, Probe, Session, Victim};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(
    name = "wren-peer",
    about = "An adversarial BGP peer: sends raw, broken messages and reports what the daemon did"
)]
struct Args {
    /// The daemon's address and port.
    #[arg(long)]
    connect: SocketAddr,
    /// Our AS number.
    #[arg(long)]
    asn: u32,
    /// Our BGP identifier.
    #[arg(long, default_value = "192.0.2.200")]
    router_id: Ipv4Addr,
    /// The hold time we offer.
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
    /// Source address of the connection.
    #[arg(long)]
    local: Option<IpAddr>,
    /// TTL (hop limit) of our packets.
    #[arg(long)]
    ttl: Option<u32>,
    /// Offer IPv6 unicast too.
    #[arg(long)]
    ipv6: bool,
    /// Do not offer the 4-octet AS capability (AS numbers in 2 octets).
    #[arg(long)]
    two_octet: bool,
    /// Send this OPEN (hex file) instead of the one built from the flags.
    #[arg(long)]
    open_hex: Option<PathBuf>,
    /// Announce these prefixes (well-formed) before the raw messages.
    #[arg(long)]
    announce: Vec<IpNet>,
    /// Next hop of announced IPv4 prefixes (default: our address).
    #[arg(long)]
    next_hop: Option<Ipv4Addr>,
    /// Next hop of announced IPv6 prefixes.
    #[arg(long)]
    next_hop6: Option<std::net::Ipv6Addr>,
    /// Files of hex to send as is, in order, after the handshake.
    #[arg(long)]
    send_hex: Vec<PathBuf>,
    /// A prefix announced after the raw messages: its arrival in the RIB shows the
    /// daemon went on.
    #[arg(long)]
    sentinel: Option<IpNet>,
    /// bgpctl binary, for the RIB checks.
    #[arg(long, default_value = "bgpctl")]
    bgpctl: PathBuf,
    /// The daemon's control socket: check its RIB.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Stop reading the socket after the handshake (TCP zero window).
    #[arg(long)]
    stop_reading: bool,
    /// Seconds to stay connected at the end, watching.
    #[arg(long, default_value_t = 2)]
    wait: u64,
}

fn main() {
    if let Err(error) = run(&Args::parse()) {
        eprintln!("wren-peer: {error:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(30);
    let mut options = ConnectOptions::new(args.connect);
    options.local = args.local;
    options.ttl = args.ttl;
    if args.stop_reading {
        options.receive_buffer = Some(4096);
    }
    let peer =
        Peer::connect(&options).with_context(|| format!("connecting to {}", args.connect))?;
    let open = match &args.open_hex {
        Some(path) => read_hex(path)?,
        None => {
            let mut families = vec![(1, 1)];
            if args.ipv6 {
                families.push((2, 1));
            }
            wire::open(
                args.asn,
                args.hold_time,
                args.router_id,
                &families,
                args.two_octet,
                &[],
            )
        }
    };
    match peer.establish(&open, timeout)? {
        Handshake::Established(daemon) => print(json!({
            "event": "established",
            "local": peer.local_addr().to_string(),
            "daemon_as": daemon.asn(),
            "daemon_id": daemon.bgp_identifier.to_string(),
            "hold_time": daemon.hold_time,
        })),
        Handshake::Refused {
            notification,
            reason,
        } => {
            print(
                json!({ "event": "refused", "reason": reason, "notification": notification.map(|n| notification_json(&n)) }),
            );
            return Ok(());
        }
    }
    if args.stop_reading {
        peer.pause_reading();
        print(json!({ "event": "stopped-reading" }));
    }
    let attributes = Attributes {
        four_octet: !args.two_octet,
        ..Attributes::from_as(args.asn)
    };
    let own_v4 = match peer.local_addr().ip() {
        IpAddr::V4(address) => Some(address),
        IpAddr::V6(_) => None,
    };
    let announce = |prefix: IpNet, med: Option<u32>| -> anyhow::Result<Vec<u8>> {
        let attributes = Attributes {
            med,
            ..attributes.clone()
        };
        Ok(match prefix {
            IpNet::V4(net) => {
                let next_hop = args
                    .next_hop
                    .or(own_v4)
                    .context("an IPv4 prefix needs --next-hop on an IPv6 session")?;
                wire::announce_v4(&[net], &attributes, next_hop)
            }
            IpNet::V6(net) => {
                let next_hop = args.next_hop6.context("an IPv6 prefix needs --next-hop6")?;
                wire::announce_v6(&[net], &attributes, next_hop, None)
            }
        })
    };
    let daemon = args
        .socket
        .as_ref()
        .map(|socket| Daemon::new(&args.bgpctl, socket, None));
    let victims: Vec<Victim> = args
        .announce
        .iter()
        .zip(1_000_000u32..)
        .map(|(&prefix, med)| Victim { prefix, med })
        .collect();
    let announcements = victims
        .iter()
        .map(|victim| announce(victim.prefix, Some(victim.med)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut raw = Vec::new();
    for path in &args.send_hex {
        raw.extend(read_hex(path)?);
    }
    match (&daemon, args.sentinel) {
        (Some(daemon), Some(sentinel)) => {
            let probe = Probe {
                peer: &peer,
                daemon,
                kernel: false,
                timeout,
            };
            probe.prepare(&victims, &announcements)?;
            let observation = probe.run(&raw, &announce(sentinel, None)?, sentinel, &victims)?;
            let session = match &observation.session {
                Session::Up => json!("up"),
                Session::Stuck => json!("stuck: no sentinel, no reset"),
                Session::Reset(notification) => {
                    json!({ "reset": notification.as_ref().map(notification_json) })
                }
            };
            print(json!({ "event": "outcome", "session": session }));
            for victim in &observation.victims {
                print(json!({
                    "event": "route",
                    "prefix": victim.prefix.to_string(),
                    "state": format!("{:?}", victim.rib),
                }));
            }
        }
        (None, Some(_)) => bail!("--sentinel needs --socket to check the daemon's RIB"),
        _ => {
            for message in &announcements {
                peer.send(message)?;
            }
            if !raw.is_empty() {
                peer.send(&raw)?;
            }
        }
    }
    let _ = peer.wait_for(Duration::from_secs(args.wait), "the end", |seen| {
        if seen.closed.is_some() {
            Ok(())
        } else {
            Err(String::new())
        }
    });
    let seen = peer.observed();
    if let Some(notification) = &seen.notification {
        print(json!({ "event": "notification", "notification": notification_json(notification) }));
    }
    print(json!({
        "event": "summary",
        "closed": seen.closed,
        "keepalives": seen.keepalives,
        "updates": seen.updates,
        "routes": seen.routes.keys().map(ToString::to_string).collect::<Vec<_>>(),
        "undecodable": seen.undecodable,
    }));
    Ok(())
}

fn read_hex(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    wire::parse_hex(&text).with_context(|| format!("in {}", path.display()))
}

fn notification_json(notification: &bgp_proto::Notification) -> serde_json::Value {
    json!({
        "code": notification.code,
        "subcode": notification.subcode,
        "data": hex::encode(&notification.data),
        "text": notification.to_string(),
    })
}

fn print(value: serde_json::Value) {
    println!("{value}");
}
