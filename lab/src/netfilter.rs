//! Netfilter state that is not Wren's, for tests that check Wren leaves it alone:
//! rules of kube-proxy's kind in iptables-nft's tables, and a snapshot of every
//! iptables-nft rule and every nftables table but Wren's `inet wren`.

use crate::error::{Error, Result};
use crate::netns::Netns;

/// Adds rules of kube-proxy's kind in `netns` through iptables-nft: a MASQUERADE of
/// 192.168.99.0/24 in nat's POSTROUTING and a FORWARD accept of `pool`.
pub fn add_kube_proxy_rules(netns: &Netns, pool: &str) -> Result<()> {
    netns.exec(&[
        "iptables-nft",
        "-t",
        "nat",
        "-A",
        "POSTROUTING",
        "-s",
        "192.168.99.0/24",
        "-j",
        "MASQUERADE",
    ])?;
    netns.exec(&["iptables-nft", "-A", "FORWARD", "-s", pool, "-j", "ACCEPT"])?;
    Ok(())
}

/// What is not Wren's in `netns`'s netfilter: iptables-nft's rules (nat and filter),
/// the nftables tables other than `inet wren` with their handles (a table made again
/// gets a new one), and iptables-nft's `ip nat` table with its rules' handles.
pub fn others_state(netns: &Netns) -> Result<String> {
    let rules =
        netns.exec(&["iptables-nft", "-t", "nat", "-S"])? + &netns.exec(&["iptables-nft", "-S"])?;
    let listing = netns.exec_json(&["nft", "-j", "list", "tables"])?;
    let tables = listing["nftables"].as_array().ok_or_else(|| {
        Error::invalid(
            format!("nft -j list tables in {}", netns.name()),
            format!("no \"nftables\" array: {listing}"),
        )
    })?;
    let others: Vec<String> = tables
        .iter()
        .filter_map(|object| object.get("table"))
        .filter(|table| table["name"] != "wren")
        .map(|table| format!("{} {} {}", table["family"], table["name"], table["handle"]))
        .collect();
    let nat = netns.exec(&["nft", "-a", "list", "table", "ip", "nat"])?;
    Ok(format!("{rules}\n{others:?}\n{nat}"))
}
