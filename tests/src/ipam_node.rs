//! A node as the IPAM tests see it: its `[ipam]` config text, forwarding, blackhole
//! routes, and FRR's table. The tests' pods are `lab::topology::Pod::attach` with
//! `lab::cni::wren_ipam_config`.

use lab::Netns;
use serde_json::Value;

/// The `[ipam]` section: `node`, `datastore`, the node's addresses, then `rest`
/// (settings and `[[ipam.pool]]` tables).
pub fn ipam_section(node: &str, datastore: &str, addresses: &[&str], rest: &str) -> String {
    let addresses: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[ipam]\nnode = \"{node}\"\ndatastore = \"{datastore}\"\nnode_addresses = [{}]\n{rest}\n",
        addresses.join(", ")
    )
}

/// Turns IPv4 and IPv6 forwarding on in a node's namespace.
pub fn forwarding(netns: &Netns) {
    netns
        .exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    netns
        .exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        .unwrap();
}

/// Whether `route` (from `lab::fixture::kernel_route`) is a blackhole.
pub fn is_blackhole(route: &Value) -> bool {
    route["type"] == "blackhole"
}

/// The `ipv4` or `ipv6` table of FRR's `show bgp ... unicast json`: prefix -> paths.
pub fn frr_prefixes(frr: &lab::Frr, ipv4: bool) -> Vec<String> {
    let family = if ipv4 { "ipv4" } else { "ipv6" };
    let routes = frr
        .vtysh_json(&format!("show bgp {family} unicast json"))
        .unwrap();
    routes["routes"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}
