//! The dataplane's metrics against the kernel (issue 16): bgpd with `[ipam]` on
//! SQLite in a node namespace, one pool with `vxlan_mode = "always"` and
//! `nat_outgoing`, one other node registered with a tunnel endpoint, and the
//! metrics listener on.
//!
//! - `wren_dataplane_pod_mtu_bytes` is the MTU file's value,
//!   `wren_dataplane_underlay_mtu_bytes{interface}` the underlay's MTU as `ip -j
//!   link` says;
//! - `wren_vxlan_tunnel_up{device}` is 1 with `vxlan.wren` up (`ip -j -d link`),
//!   `wren_vxlan_remote_nodes{device}` the FDB entries `bridge -j fdb` lists;
//! - `wren_nat_outgoing_pools{family}` counts the pool, `wren_nat_table_synced` is
//!   1 with the table `inet wren` listed by `nft`;
//! - the table removed by hand is made again at the next sync (a datastore change
//!   here, the periodic check being 30 s away): `wren_nat_table_repairs_total` goes
//!   from 0 to 1, and the second node registered shows as one more remote node and
//!   FDB entry, `wren_vxlan_changes_total` growing.
//!
//! Needs root and nft (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use lab::fixture::{Wren, wren_config};
use lab::metrics::{self, Samples};
use lab::{Netns, TIMEOUT, Veth};
use serde_json::Value;
use wren_tests::ipam_node::ipam_section;

const POOL: &str = "10.249.0.0/16";
const NODE: &str = "10.86.0.1";
const UNDERLAY_MTU: u32 = 1400;
const LISTEN: &str = "10.86.0.1:9181";

/// Registers `name` at `address` with a tunnel endpoint in the pool.
fn register(url: &str, name: &str, address: &str, tunnel: &str, last: u8) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ipam = ipam::connect(url).await.unwrap();
        let node = ipam::Node {
            name: name.into(),
            addresses: vec![address.parse().unwrap()],
            asn: 64512,
            labels: Default::default(),
            vteps: vec![ipam::Vtep {
                tunnel_address: tunnel.parse().unwrap(),
                mac: ipam::MacAddress([0x02, 0, 0, 0, 0, last]),
            }],
        };
        ipam.register_node(&node).await.unwrap();
    });
}

fn scrape(netns: &Netns, listen: SocketAddr) -> Result<Samples, String> {
    let answer = metrics::get(netns, listen, "/metrics", None).map_err(|e| e.to_string())?;
    if answer.status != 200 {
        return Err(format!("{}: {}", answer.status, answer.body));
    }
    Samples::parse(&answer.body).map_err(|e| e.to_string())
}

/// The remote VTEPs' entries of vxlan.wren (`self`, with a destination; not the
/// device's own).
fn fdb_destinations(netns: &Netns) -> Vec<String> {
    let fdb = netns
        .exec_json(&["bridge", "-j", "fdb", "show", "dev", "vxlan.wren"])
        .unwrap();
    fdb.as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry.get("dst").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

fn link(netns: &Netns, name: &str) -> Value {
    let links = netns
        .exec_json(&["ip", "-j", "-d", "link", "show", name])
        .unwrap();
    links[0].clone()
}

fn nat_table(netns: &Netns) -> bool {
    netns
        .exec(&["nft", "list", "table", "inet", "wren"])
        .is_ok()
}

#[test]
fn dataplane_series_equal_the_kernel() {
    let Some(ready) = lab::require!(Root, Nft) else {
        return;
    };
    let node = Netns::new("wt-mdp").unwrap();
    let underlay = Netns::new("wt-mdpu").unwrap();
    let _link = Veth::new(&node, "eth1", &underlay, "eth0").unwrap();
    node.iface("eth1")
        .addr(&format!("{NODE}/24"))
        .unwrap()
        .up()
        .unwrap();
    node.ip(&["link", "set", "eth1", "mtu", &UNDERLAY_MTU.to_string()])
        .unwrap();
    node.lo_up().unwrap();

    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    register(&url, "node-b", "10.86.0.2", "10.249.255.2", 0x0b);
    let config = wren_config(
        NODE,
        &Wren::socket_path(&node),
        true,
        &format!(
            "[metrics]\nlisten = \"{LISTEN}\"\n\n{}",
            ipam_section(
                "node-a",
                &url,
                &[NODE],
                &format!(
                    "resync_interval = 1\n[[ipam.pool]]\ncidr = \"{POOL}\"\nvxlan_mode = \"always\"\nnat_outgoing = true\n"
                ),
            )
        ),
    )
    .replace("[bgp]\n", "[bgp]\nnode_mesh = false\n");
    let wren = Wren::start(&node, &config);
    let listen: SocketAddr = LISTEN.parse().unwrap();

    let samples = wren
        .daemon
        .wait_for(TIMEOUT, "the overlay and the table synced", || {
            let samples = scrape(&node, listen)?;
            let up = samples.value("wren_vxlan_tunnel_up", &[("device", "vxlan.wren")]);
            let synced = samples.value("wren_nat_table_synced", &[]);
            let mtu = samples.value("wren_dataplane_pod_mtu_bytes", &[]);
            match (up, synced, mtu) {
                (Some(1.0), Some(1.0), Some(_)) => Ok(samples),
                other => Err(format!(
                    "tunnel up, table synced, pod MTU: {other:?}; {}",
                    metrics::get(&node, listen, "/metrics", None)
                        .map(|a| a.body)
                        .unwrap_or_default()
                )),
            }
        })
        .unwrap();

    // MTU: the file and the underlay.
    let written: f64 = std::fs::read_to_string(node.dir().join("mtu"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        samples.value("wren_dataplane_pod_mtu_bytes", &[]),
        Some(written)
    );
    assert_eq!(written, f64::from(UNDERLAY_MTU - 50), "VXLAN's overhead");
    let eth1 = link(&node, "eth1");
    assert_eq!(
        samples.value(
            "wren_dataplane_underlay_mtu_bytes",
            &[("interface", "eth1")]
        ),
        eth1["mtu"].as_f64()
    );

    // VXLAN: the device up, one remote node, one FDB entry to it.
    let device = link(&node, "vxlan.wren");
    let flags: Vec<&str> = device["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(flags.contains(&"UP"), "{device}");
    assert_eq!(device["linkinfo"]["info_kind"], "vxlan");
    assert_eq!(fdb_destinations(&node), ["10.86.0.2"]);
    assert_eq!(
        samples.value("wren_vxlan_remote_nodes", &[("device", "vxlan.wren")]),
        Some(1.0)
    );
    assert!(
        !samples.any_with("device", "vxlan-v6.wren"),
        "no IPv6 VXLAN pool, no vxlan-v6.wren series"
    );
    let changes = samples.value("wren_vxlan_changes_total", &[]).unwrap();
    // The device, its address, a neighbour and an FDB entry.
    assert!(changes >= 4.0, "{changes} changes");

    // nat_outgoing: one IPv4 pool, the table there, no repair yet, no error.
    assert!(nat_table(&node));
    assert_eq!(
        samples.value("wren_nat_outgoing_pools", &[("family", "ipv4")]),
        Some(1.0)
    );
    assert_eq!(
        samples.value("wren_nat_outgoing_pools", &[("family", "ipv6")]),
        Some(0.0)
    );
    assert_eq!(
        samples.value("wren_nat_table_repairs_total", &[]),
        Some(0.0)
    );
    assert_eq!(samples.sum("wren_dataplane_errors_total", &[]), 0.0);

    // The table removed by hand, and a third node registered: the next sync puts
    // the table back (a repair) and adds the node's entries.
    node.exec(&["nft", "delete", "table", "inet", "wren"])
        .unwrap();
    assert!(!nat_table(&node));
    register(&url, "node-c", "10.86.0.3", "10.249.255.3", 0x0c);
    let after = wren
        .daemon
        .wait_for(TIMEOUT, "the table repaired and node-c added", || {
            let samples = scrape(&node, listen)?;
            let repairs = samples.value("wren_nat_table_repairs_total", &[]);
            let remote = samples.value("wren_vxlan_remote_nodes", &[("device", "vxlan.wren")]);
            match (repairs, remote) {
                (Some(1.0), Some(2.0)) => Ok(samples),
                other => Err(format!("repairs, remote nodes: {other:?}")),
            }
        })
        .unwrap();
    assert!(nat_table(&node), "the table is back");
    assert_eq!(after.value("wren_nat_table_synced", &[]), Some(1.0));
    let mut destinations = fdb_destinations(&node);
    destinations.sort();
    assert_eq!(destinations, ["10.86.0.2", "10.86.0.3"]);
    let grown = after.value("wren_vxlan_changes_total", &[]).unwrap();
    // node-c's neighbour and FDB entries.
    assert!(grown >= changes + 2.0, "{changes} -> {grown}");
    assert_eq!(after.sum("wren_dataplane_errors_total", &[]), 0.0);
}
