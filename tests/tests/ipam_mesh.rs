//! Nodes sharing an etcd datastore, each a bgpd with `[ipam]` and the node mesh (no
//! configured neighbor), on one switch (a bridge namespace that also runs etcd):
//!
//! - the calico#3246 case, IPv4 and IPv6: the only block of each small pool belongs
//!   to node A (strict_affinity off), so node B borrows its pod's addresses from
//!   them; pods on both nodes ping each other, A keeps its blackholes for the blocks
//!   and has B's /32 and /128 toward B (B's plugin does not notify bgpd: its etcd
//!   watch finds the addresses), and drops them when B's pod goes;
//! - the mesh (one session per family) follows the registry: node C joining gets
//!   sessions with A and B (and they learn C's block), and `bgpctl ipam release-node
//!   node-c` drops C from the registry, its block from the store and its sessions
//!   from A and B, without a restart (C's bgpd warns that it is unregistered);
//! - `[bgp] node_mesh_bfd`: the mesh's sessions follow BFD, Up on both sides over
//!   IPv4 and IPv6 (`bgpctl show bfd --json`), and a reload without it stops BFD
//!   without resetting BGP.
//!
//! Needs root, etcd and the CNI plugins (skips otherwise; fails with
//! WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

use std::process::Output;

use lab::TIMEOUT;
use lab::cni::wren_ipam_config;
use lab::fixture::{Wren, kernel_route, wren_binary, wren_config};
use lab::topology::Pod;
use lab::{Etcd, Family, Netns, Veth};
use serde_json::Value;
use wren_tests::ipam_node::{forwarding, ipam_section, is_blackhole};

const SWITCH: &str = "10.74.0.100";
const POOL: &str = "10.246.0.0/26";
const POOL6: &str = "fd00:246::/122";
const POOL_C: &str = "10.247.0.0/26";

/// A node: its namespace, on the switch as 10.74.0.N and fd00:74::N.
struct Node {
    name: String,
    address: String,
    address6: String,
    netns: Netns,
    _link: Veth,
}

/// The switch: a namespace `name` with the bridge br0 at [`SWITCH`].
fn switch(name: &str) -> Netns {
    let switch = Netns::new(name).unwrap();
    switch
        .ip(&["link", "add", "br0", "type", "bridge"])
        .unwrap();
    switch.iface("br0").addr(&format!("{SWITCH}/24")).unwrap();
    switch.iface("br0").up().unwrap();
    switch
}

fn node(switch: &Netns, index: u8) -> Node {
    let netns = Netns::new("wi-mn").unwrap();
    let port = format!("p{index}");
    let link = Veth::new(&netns, "eth1", switch, &port).unwrap();
    switch.ip(&["link", "set", &port, "master", "br0"]).unwrap();
    let address = format!("10.74.0.{index}");
    netns.iface("eth1").addr(&format!("{address}/24")).unwrap();
    let address6 = format!("fd00:74::{index}");
    netns.iface("eth1").addr(&format!("{address6}/64")).unwrap();
    netns.lo_up().unwrap();
    forwarding(&netns);
    Node {
        name: format!("node-{}", char::from(b'a' + index - 1)),
        address,
        address6,
        netns,
        _link: link,
    }
}

/// Starts bgpd on `node` with `[ipam]` on `url` and `rest` in the section.
fn start(node: &Node, url: &str, rest: &str) -> Wren {
    let socket = Wren::socket_path(&node.netns);
    Wren::start(
        &node.netns,
        &wren_config(
            &node.address,
            &socket,
            true,
            &ipam_section(&node.name, url, &[&node.address, &node.address6], rest),
        ),
    )
}

/// [`start`] with `[bgp] node_mesh_bfd = true`.
fn start_with_mesh_bfd(node: &Node, url: &str, rest: &str) -> Wren {
    let socket = Wren::socket_path(&node.netns);
    Wren::start(
        &node.netns,
        &mesh_bfd_config(node, &socket, url, rest, true),
    )
}

fn mesh_bfd_config(
    node: &Node,
    socket: &std::path::Path,
    url: &str,
    rest: &str,
    bfd: bool,
) -> String {
    let config = wren_config(
        &node.address,
        socket,
        true,
        &ipam_section(&node.name, url, &[&node.address, &node.address6], rest),
    );
    if bfd {
        config.replacen("[bgp]\n", "[bgp]\nnode_mesh_bfd = true\n", 1)
    } else {
        config
    }
}

/// bgpctl run inside `node`'s namespace (to reach etcd with `--datastore`).
fn bgpctl_in(node: &Node, args: &[&str]) -> Output {
    node.netns
        .command(wren_binary("bgpctl"))
        .args(args)
        .output()
        .unwrap()
}

/// Waits until `wren` has the session with `address` in state `wanted` (`None`: no
/// such neighbor at all).
fn wait_neighbor(wren: &Wren, address: &str, wanted: Option<&str>) {
    wren.daemon
        .wait_for(
            TIMEOUT,
            &format!("neighbor {address} to be {wanted:?}"),
            || {
                let state = wren
                    .neighbor(address)
                    .map(|n| n["state"].as_str().unwrap_or("").to_owned());
                if state.as_deref() == wanted {
                    Ok(())
                } else {
                    Err(format!("{state:?}"))
                }
            },
        )
        .unwrap();
}

/// Waits until `node`'s kernel has bgpd's route for `prefix`; returns it.
fn wait_kernel(wren: &Wren, node: &Node, prefix: &str) -> Value {
    wren.daemon
        .wait_for(
            TIMEOUT,
            &format!("{prefix} in {}'s kernel", node.name),
            || kernel_route(&node.netns, prefix).ok_or("no route of protocol 196"),
        )
        .unwrap()
}

fn wait_ping(wren: &Wren, from: &Netns, to: &str) {
    wren.daemon
        .wait_until(TIMEOUT, &format!("{} to ping {to}", from.name()), || {
            from.ping(to)
        })
        .unwrap();
}

#[test]
fn borrowed_addresses_are_reachable_and_the_mesh_follows_the_registry() {
    let Some(_ready) = lab::require!(Root, Etcd, Cni) else {
        return;
    };
    wren_binary("wren-ipam");
    let switch = switch("wi-sw");
    let a = node(&switch, 1);
    let b = node(&switch, 2);
    let c = node(&switch, 3);
    let etcd = Etcd::in_netns(&switch, SWITCH.parse().unwrap()).unwrap();
    let url = etcd.endpoint().replace("http://", "etcd://");
    let shared = format!(
        "strict_affinity = false\n[[ipam.pool]]\ncidr = \"{POOL}\"\n[[ipam.pool]]\ncidr = \"{POOL6}\"\n"
    );

    // A takes the only block of each pool (IPv4 and IPv6).
    let wren_a = start(&a, &url, &shared);
    for pool in [POOL, POOL6] {
        let route = wait_kernel(&wren_a, &a, pool);
        assert!(is_blackhole(&route), "{route}");
    }
    let wren_b = start(&b, &url, &shared);
    // The mesh: one session per family, with no configured neighbor.
    wait_neighbor(&wren_a, &b.address, Some("Established"));
    wait_neighbor(&wren_a, &b.address6, Some("Established"));
    wait_neighbor(&wren_b, &a.address, Some("Established"));
    wait_neighbor(&wren_b, &a.address6, Some("Established"));
    for (pool, via) in [(POOL, &a.address), (POOL6, &a.address6)] {
        let route = wait_kernel(&wren_b, &b, pool);
        assert_eq!(route["gateway"], via.as_str(), "{route}");
    }

    // A pod on each node; B's addresses are borrowed from A's blocks.
    let pod_a = Pod::attach(
        &a.netns,
        &wren_ipam_config(&url, &a.name, Some(&wren_a.socket)),
    )
    .unwrap();
    // B's plugin does not notify bgpd (`"control_socket": ""`): B learns of the
    // borrowed addresses through its etcd watch.
    let pod_b = Pod::attach(
        &b.netns,
        &wren_ipam_config(&url, &b.name, Some(std::path::Path::new(""))),
    )
    .unwrap();
    let added = std::time::Instant::now();
    let host_b = format!("{}/32", pod_b.address_in(Family::Ipv4).unwrap());
    let to_b = wait_kernel(&wren_a, &a, &host_b);
    // A figure for the report, not a requirement of this test.
    eprintln!(
        "borrowed {host_b} in the owner's kernel {:?} after the CNI ADD returned",
        added.elapsed()
    );
    let host_b6 = format!("{}/128", pod_b.address_in(Family::Ipv6).unwrap());
    let to_b6 = wait_kernel(&wren_a, &a, &host_b6);
    let usage = wren_a.bgpctl_json(&["show", "ipam"]);
    for (pool, address) in [
        (POOL, pod_b.address_in(Family::Ipv4).unwrap()),
        (POOL6, pod_b.address_in(Family::Ipv6).unwrap()),
    ] {
        let pool: ipnet::IpNet = pool.parse().unwrap();
        assert!(pool.contains(&address.parse::<std::net::IpAddr>().unwrap()));
        let borrowed = usage["borrowed"].as_array().unwrap();
        assert!(
            borrowed
                .iter()
                .any(|info| info["address"] == address.as_str() && info["node"] == b.name.as_str()),
            "{address}: {usage}"
        );
    }

    // A: still the blackholes for its blocks, and B's pod toward B.
    assert_eq!(to_b["gateway"], b.address.as_str(), "{to_b}");
    assert_eq!(to_b6["gateway"], b.address6.as_str(), "{to_b6}");
    for pool in [POOL, POOL6] {
        let route = kernel_route(&a.netns, pool).unwrap();
        assert!(is_blackhole(&route), "A lost its blackhole: {route}");
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        wait_ping(&wren_a, pod_a.netns(), &pod_b.address_in(family).unwrap());
        wait_ping(&wren_b, pod_b.netns(), &pod_a.address_in(family).unwrap());
    }
    // B's pod goes: A drops the host routes and keeps its blackholes.
    drop(pod_b);
    wren_a
        .daemon
        .wait_until(
            TIMEOUT,
            &format!("A to drop {host_b} and {host_b6}"),
            || {
                kernel_route(&a.netns, &host_b).is_none()
                    && kernel_route(&a.netns, &host_b6).is_none()
            },
        )
        .unwrap();
    assert!(is_blackhole(&kernel_route(&a.netns, POOL).unwrap()));
    assert!(is_blackhole(&kernel_route(&a.netns, POOL6).unwrap()));

    // C joins (its own pool, through a node selector): A and B peer with it and
    // learn its block.
    let wren_c = start(
        &c,
        &url,
        &format!(
            "node_labels = {{ role = \"c\" }}\n[[ipam.pool]]\ncidr = \"{POOL_C}\"\nnode_selector = {{ role = \"c\" }}\n"
        ),
    );
    for wren in [&wren_a, &wren_b] {
        wait_neighbor(wren, &c.address, Some("Established"));
        wait_neighbor(wren, &c.address6, Some("Established"));
    }
    for other in [&a, &b] {
        wait_neighbor(&wren_c, &other.address, Some("Established"));
        wait_neighbor(&wren_c, &other.address6, Some("Established"));
    }
    wren_a.wait_route(POOL_C);
    wren_b.wait_route(POOL_C);

    // An operator deletes node C (its bgpd still runs, and says it is unregistered).
    let released = wren_a.bgpctl_json(&["ipam", "release-node", &c.name]);
    assert_eq!(released["node"], c.name.as_str(), "{released}");
    assert_eq!(
        released["blocks_released"],
        serde_json::json!([POOL_C]),
        "{released}"
    );
    wren_c
        .daemon
        .wait_log(TIMEOUT, "this node is no longer in the registry")
        .unwrap();
    for wren in [&wren_a, &wren_b] {
        wait_neighbor(wren, &c.address, None);
        wait_neighbor(wren, &c.address6, None);
        wren.wait_no_route(POOL_C);
    }
    let usage = wren_b.bgpctl_json(&["show", "ipam"]);
    assert!(
        !usage["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|block| block["node"] == c.name.as_str()),
        "{usage}"
    );
    // A and B keep their session.
    assert_eq!(wren_a.neighbor(&b.address).unwrap()["state"], "Established");
    assert_eq!(
        wren_a.neighbor(&b.address6).unwrap()["state"],
        "Established"
    );

    // The audit, through bgpd and directly against etcd, is clean (exit 0).
    let check = wren_a.bgpctl_json(&["ipam", "check"]);
    assert_eq!(check["problems"], 0, "{check}");
    let direct = bgpctl_in(&a, &["--json", "ipam", "check", "--datastore", &url]);
    assert!(direct.status.success(), "{direct:?}");
    let direct: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(direct, check);
    drop(pod_a);
}

/// `wren`'s BFD session with `peer` (`bgpctl show bfd --json`).
fn bfd_session(wren: &Wren, peer: &str) -> Option<Value> {
    wren.bgpctl_json(&["show", "bfd"])
        .as_array()?
        .iter()
        .find(|session| session["peer"] == peer)
        .cloned()
}

#[test]
fn node_mesh_bfd_brings_bfd_up_on_both_sides() {
    let Some(_ready) = lab::require!(Root, Etcd) else {
        return;
    };
    let switch = switch("wi-sb");
    let a = node(&switch, 1);
    let b = node(&switch, 2);
    let etcd = Etcd::in_netns(&switch, SWITCH.parse().unwrap()).unwrap();
    let url = etcd.endpoint().replace("http://", "etcd://");
    let pool = format!("[[ipam.pool]]\ncidr = \"{POOL}\"\n");
    let wren_a = start_with_mesh_bfd(&a, &url, &pool);
    let wren_b = start_with_mesh_bfd(&b, &url, &pool);
    let sides = [(&wren_a, &b), (&wren_b, &a)];
    for (wren, other) in sides {
        for peer in [&other.address, &other.address6] {
            wait_neighbor(wren, peer, Some("Established"));
            wren.daemon
                .wait_until(TIMEOUT, &format!("BFD with {peer} Up"), || {
                    bfd_session(wren, peer).is_some_and(|s| s["state"] == "Up")
                })
                .unwrap();
            let session = bfd_session(wren, peer).unwrap();
            assert_eq!(session["interface"], "eth1", "{session}");
            assert_eq!(session["multihop"], false, "{session}");
            assert_eq!(session["detection_time_ms"], 900, "{session}");
            let neighbor = wren.bgpctl_json(&["show", "neighbor", peer]);
            assert_eq!(neighbor["detail"]["bfd"], "Up", "{neighbor}");
        }
    }
    // Each side's discriminators are the other's, swapped.
    let ab = bfd_session(&wren_a, &b.address).unwrap();
    let ba = bfd_session(&wren_b, &a.address).unwrap();
    assert_eq!(ab["local_discriminator"], ba["remote_discriminator"]);
    assert_eq!(ab["remote_discriminator"], ba["local_discriminator"]);

    // Reloaded without node_mesh_bfd, A stops BFD and keeps its BGP sessions.
    let count = wren_a.neighbor(&b.address).unwrap()["established_count"].clone();
    std::fs::write(
        &wren_a.config_path,
        mesh_bfd_config(&a, &wren_a.socket, &url, &pool, false),
    )
    .unwrap();
    let summary = wren_a.bgpctl_json(&["reload"]);
    assert_eq!(summary["reset"], serde_json::json!([]), "{summary}");
    wren_a
        .daemon
        .wait_until(TIMEOUT, "A's BFD sessions gone", || {
            wren_a.bgpctl_json(&["show", "bfd"]) == serde_json::json!([])
        })
        .unwrap();
    let neighbor = wren_a.neighbor(&b.address).unwrap();
    assert_eq!(neighbor["state"], "Established", "{neighbor}");
    assert_eq!(neighbor["established_count"], count, "{neighbor}");
}
