//! BIRD 2 under test: one IPv4 table (master4), a kernel protocol exporting every route to
//! the main kernel table (learn off, scan time an hour so no periodic scan lands in a
//! measurement), one BGP protocol per peer from a template.

use std::fmt::Write;

use anyhow::Result;

use super::{DUT_ASN, DutConfig, HOLD_TIME, MONITOR_ASN, PEER_ASN};
use crate::topology::Slot;

/// Starts BIRD in the slot's namespace.
pub fn start(slot: &Slot, config: &DutConfig) -> Result<lab::Bird> {
    Ok(lab::Bird::start(slot.netns(), &config_text(config))?)
}

/// The bird.conf.
pub fn config_text(config: &DutConfig) -> String {
    let id = config.router_id;
    let keepalive = HOLD_TIME / 3;
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
  passive on;
  hold time {HOLD_TIME};
  keepalive time {keepalive};
  ipv4 {{ import all; export none; }};
}}

protocol bgp monitor {{
  local {id} as {DUT_ASN};
  neighbor {monitor} as {MONITOR_ASN};
  passive on;
  hold time {HOLD_TIME};
  keepalive time {keepalive};
  ipv4 {{ import none; export all; }};
}}
",
        monitor = config.monitor
    );
    for (i, peer) in config.peers.iter().enumerate() {
        let _ = writeln!(
            text,
            "protocol bgp g{i} from generator {{ neighbor {peer} as {PEER_ASN}; }}"
        );
    }
    text
}
