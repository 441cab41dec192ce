//! BIRD 2 under test: one IPv4 table (master4), a kernel protocol exporting every route to
//! the main kernel table (learn off, scan time an hour so no periodic scan lands in a
//! measurement), one BGP protocol per peer from a template.

use std::fmt::Write;

use anyhow::Result;

use super::{DUT_ASN, DutConfig, MONITOR_ASN};
use crate::topology::Slot;

/// Starts BIRD in the slot's namespace.
pub fn start(slot: &Slot, config: &DutConfig) -> Result<lab::Bird> {
    Ok(lab::Bird::start(slot.netns(), &config_text(config))?)
}

/// The bird.conf.
pub fn config_text(config: &DutConfig) -> String {
    let id = config.router_id;
    let keepalive = config.keepalive();
    let hold_time = config.hold_time;
    // iBGP (the scale scenarios): the peers are on the link (`direct`: BIRD takes iBGP
    // as multihop otherwise, with recursive next hops), and the daemon's own blocks (a
    // static protocol) go to every peer; a reflector sends every client's routes to
    // every other client. eBGP: nothing goes back.
    let (session, generator_export) = match (config.internal(), config.reflector) {
        (true, true) => ("\n  direct;\n  rr client;", "all"),
        (true, false) => ("\n  direct;", "where source = RTS_STATIC"),
        _ => ("", "none"),
    };
    let mut text = format!(
        "\
router id {id};
log stderr {{ info, remote, warning, error, auth, fatal, bug }};

protocol device {{
  scan time 3600;
}}

protocol kernel {{
  ipv4 {{ import none; export all; }};
  learn off;
  scan time 3600;
}}

template bgp generator {{
  local {id} as {DUT_ASN};
  passive on;{session}
  hold time {hold_time};
  keepalive time {keepalive};
  ipv4 {{ import all; export {generator_export}; }};{bfd_on}
}}

protocol bgp monitor {{
  local {id} as {DUT_ASN};
  neighbor {monitor} as {MONITOR_ASN};
  passive on;
  hold time {hold_time};
  keepalive time {keepalive};
  ipv4 {{ import none; export all; }};
}}
",
        monitor = config.monitor,
        // BIRD waits a minute after a session error before it starts again; with BFD
        // (the `bfd` scenario takes sessions down on purpose) 1 s, as FRR and Wren do.
        bfd_on = if config.bfd {
            "\n  bfd on;\n  error wait time 1, 5;"
        } else {
            ""
        },
    );
    if config.bfd {
        text.push_str(
            "\nprotocol bfd {\n  interface \"*\" { min rx interval 300 ms; min tx interval 300 ms; multiplier 3; };\n}\n",
        );
    }
    if !config.networks.is_empty() {
        text.push_str("\nprotocol static {\n  ipv4;\n");
        for network in &config.networks {
            let _ = writeln!(text, "  route {network} blackhole;");
        }
        text.push_str("}\n\n");
    }
    let peer_asn = config.peer_asn;
    for (i, peer) in config.peers.iter().enumerate() {
        let _ = writeln!(
            text,
            "protocol bgp g{i} from generator {{ neighbor {peer} as {peer_asn}; }}"
        );
    }
    text
}
