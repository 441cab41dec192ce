//! FRR 8.4 under test: bgpd with zebra installing into the kernel (staticd runs too, as
//! the lab starts it, but is not counted). Generator peers are a passive peer group whose
//! routes are accepted and never advertised back; the monitor gets everything with no
//! minimum advertisement interval (BIRD and GoBGP have none either).

use std::fmt::Write;

use anyhow::Result;

use super::{DUT_ASN, DutConfig, MONITOR_ASN};
use crate::topology::Slot;

/// Starts zebra, staticd and bgpd (and bfdd with BFD) in the slot's namespace.
pub fn start(slot: &Slot, config: &DutConfig) -> Result<lab::Frr> {
    let daemons: &[&str] = if config.bfd {
        &["bgpd", "bfdd"]
    } else {
        &["bgpd"]
    };
    Ok(lab::Frr::start_daemons(
        slot.netns(),
        &config_text(config),
        daemons,
    )?)
}

/// The integrated frr.conf.
pub fn config_text(config: &DutConfig) -> String {
    let id = config.router_id;
    let monitor = config.monitor;
    let keepalive = config.keepalive();
    let hold_time = config.hold_time;
    let peer_asn = config.peer_asn;
    // iBGP (the scale scenarios): the daemon's own blocks go to every peer, and the
    // rules of RFC 4271 keep the peers' routes from going back; eBGP: nothing goes back.
    let generator_out = if config.internal() { "ALL" } else { "NONE" };
    let generator_client = if config.reflector {
        "  neighbor GEN route-reflector-client\n"
    } else {
        ""
    };
    let mut text = format!(
        "\
frr defaults traditional
hostname dut
log stdout informational
!
route-map ALL permit 10
exit
route-map NONE deny 10
exit
!
router bgp {DUT_ASN}
 bgp router-id {id}
 no bgp ebgp-requires-policy
 no bgp network import-check
 no bgp default ipv4-unicast
 timers bgp {keepalive} {hold_time}
 neighbor GEN peer-group
 neighbor GEN remote-as {peer_asn}
 neighbor GEN passive
 neighbor {monitor} remote-as {MONITOR_ASN}
 neighbor {monitor} passive
 neighbor {monitor} advertisement-interval 0
"
    );
    if config.bfd {
        // bfdd's defaults: 300 ms, 300 ms, 3.
        let _ = writeln!(text, " neighbor GEN bfd");
    }
    for peer in &config.peers {
        let _ = writeln!(text, " neighbor {peer} peer-group GEN");
    }
    text.push_str(" !\n address-family ipv4 unicast\n");
    for network in &config.networks {
        let _ = writeln!(text, "  network {network}");
    }
    let _ = write!(
        text,
        "\
  neighbor GEN activate
  neighbor GEN route-map ALL in
  neighbor GEN route-map {generator_out} out
{generator_client}  neighbor {monitor} activate
  neighbor {monitor} route-map NONE in
  neighbor {monitor} route-map ALL out
 exit-address-family
exit
!
"
    );
    text
}
