//! The VXLAN overlay's devices and entries in two namespaces joined by a veth (the
//! underlay, 192.0.2.0/24), through the library: the device as asked (VNI, port,
//! local address, parent, learning off, MAC, MTU, tunnel address), a permanent
//! neighbour and FDB entry per peer, a ping through the tunnel, nothing sent when
//! nothing changed, entries following the peers, the device made again when its VNI
//! changes and deleted when no pool encapsulates. Needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dataplane::snapshot::VxlanMode;
use dataplane::vxlan::{Overlay, kernel};
use dataplane::{BlockOwner, Node, Pool, Snapshot, Vtep};
use lab::Netns;
use serde_json::Value;

fn cluster(vni: u32, peers: &[(&str, &str, &str, u8)]) -> Snapshot {
    Snapshot {
        pools: vec![Pool {
            cidr: "10.244.0.0/16".parse().unwrap(),
            nat_outgoing: false,
            vxlan_mode: VxlanMode::Always,
            vxlan_vni: vni,
            vxlan_port: 4789,
        }],
        nodes: peers
            .iter()
            .map(|(name, address, tunnel, last)| Node {
                name: (*name).into(),
                addresses: vec![address.parse().unwrap()],
                vteps: vec![Vtep {
                    tunnel_address: tunnel.parse().unwrap(),
                    mac: [0x02, 0, 0, 0, 0, *last],
                }],
            })
            .collect(),
        blocks: peers
            .iter()
            .map(|(name, _, tunnel, _)| BlockOwner {
                block: format!("{tunnel}/26")
                    .parse::<ipnet::IpNet>()
                    .unwrap()
                    .trunc(),
                node: (*name).into(),
            })
            .collect(),
        borrowed: vec![],
    }
}

/// The desired overlay of `node` and one sync of it inside `netns`: the changes made.
fn sync(netns: &Netns, snapshot: &Snapshot, node: &str) -> (Overlay, Vec<String>) {
    netns
        .enter(|| kernel::sync_once(snapshot, node))
        .unwrap()
        .unwrap()
}

fn device(netns: &Netns) -> Option<Value> {
    netns
        .ip_json(&["-d", "link", "show", "dev", "vxlan.wren"])
        .ok()
        .and_then(|links| links.get(0).cloned())
}

fn neighbours(netns: &Netns) -> Vec<(String, String, String)> {
    let list = netns
        .ip_json(&["neigh", "show", "dev", "vxlan.wren"])
        .unwrap();
    let mut found: Vec<(String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["dst"].as_str().unwrap_or_default().to_string(),
                n["lladdr"].as_str().unwrap_or_default().to_string(),
                n["state"].to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn fdb(netns: &Netns) -> Vec<(String, String, String)> {
    let output = netns
        .command("bridge")
        .args(["-j", "fdb", "show", "dev", "vxlan.wren"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut found: Vec<(String, String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["mac"].as_str().unwrap_or_default().to_string(),
                n["dst"].as_str().unwrap_or_default().to_string(),
                format!("{} {}", n["state"], n["flags"]),
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn the_overlay_follows_the_snapshot_and_carries_packets() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let a = Netns::new("wd-vx-a").unwrap();
    let b = Netns::new("wd-vx-b").unwrap();
    let _veth = lab::Veth::new(&a, "ua", &b, "ub").unwrap();
    a.iface("ua")
        .addr("192.0.2.1/24")
        .unwrap()
        .mtu(1400)
        .unwrap()
        .up()
        .unwrap();
    b.iface("ub")
        .addr("192.0.2.2/24")
        .unwrap()
        .mtu(1400)
        .unwrap()
        .up()
        .unwrap();
    let nodes = [
        ("a", "192.0.2.1", "10.244.0.1", 1),
        ("b", "192.0.2.2", "10.244.1.1", 2),
        ("c", "192.0.2.3", "10.244.2.1", 3),
    ];
    let snapshot = cluster(4100, &nodes);

    let (overlay, changes) = sync(&a, &snapshot, "a");
    assert!(changes.iter().any(|c| c.contains("made")), "{changes:?}");
    let link = device(&a).expect("vxlan.wren made");
    let info = &link["linkinfo"]["info_data"];
    assert_eq!(info["id"], 4100, "{link}");
    assert_eq!(info["port"], 4789, "{link}");
    assert_eq!(info["local"], "192.0.2.1", "{link}");
    assert_eq!(info["link"], "ua", "{link}");
    assert_eq!(info["learning"], false, "{link}");
    assert_eq!(link["address"], "02:00:00:00:00:01", "{link}");
    assert_eq!(link["mtu"], 1350, "{link}");
    assert!(link["flags"].to_string().contains("UP"), "{link}");
    let addresses = a.ip(&["-4", "addr", "show", "dev", "vxlan.wren"]).unwrap();
    assert!(addresses.contains("inet 10.244.0.1/32"), "{addresses}");
    assert_eq!(
        neighbours(&a),
        [
            (
                "10.244.1.1".into(),
                "02:00:00:00:00:02".into(),
                "[\"PERMANENT\"]".into()
            ),
            (
                "10.244.2.1".into(),
                "02:00:00:00:00:03".into(),
                "[\"PERMANENT\"]".into()
            ),
        ]
    );
    let entries = fdb(&a);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0].0, "02:00:00:00:00:02");
    assert_eq!(entries[0].1, "192.0.2.2");
    assert!(
        entries[0].2.contains("permanent") && entries[0].2.contains("self"),
        "{entries:?}"
    );
    assert_eq!(
        overlay
            .routes
            .iter()
            .map(|r| r.block.to_string())
            .collect::<Vec<_>>(),
        ["10.244.1.0/26", "10.244.2.0/26"]
    );

    // Packets: b's side too, and the route to b's block as route-sync would put it.
    sync(&b, &snapshot, "b");
    a.ip(&[
        "route",
        "add",
        "10.244.1.0/26",
        "via",
        "10.244.1.1",
        "dev",
        "vxlan.wren",
        "onlink",
    ])
    .unwrap();
    b.ip(&[
        "route",
        "add",
        "10.244.0.0/26",
        "via",
        "10.244.0.1",
        "dev",
        "vxlan.wren",
        "onlink",
    ])
    .unwrap();
    assert!(
        a.ping("10.244.1.1"),
        "a reaches b's tunnel address through vxlan.wren"
    );

    // Nothing moved: nothing sent.
    assert_eq!(sync(&a, &snapshot, "a").1, Vec::<String>::new());

    // c leaves, b's MAC changes: the entries follow.
    let moved = cluster(
        4100,
        &[
            ("a", "192.0.2.1", "10.244.0.1", 1),
            ("b", "192.0.2.2", "10.244.1.1", 9),
        ],
    );
    let changes = sync(&a, &moved, "a").1;
    assert!(!changes.iter().any(|c| c.contains("made")), "{changes:?}");
    assert_eq!(
        neighbours(&a),
        [(
            "10.244.1.1".into(),
            "02:00:00:00:00:09".into(),
            "[\"PERMANENT\"]".into()
        )]
    );
    let entries = fdb(&a);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, "02:00:00:00:00:09");

    // A new VNI needs a new device.
    let changes = sync(&a, &cluster(4200, &nodes), "a").1;
    assert!(
        changes.iter().any(|c| c.contains("made again")),
        "{changes:?}"
    );
    assert_eq!(device(&a).unwrap()["linkinfo"]["info_data"]["id"], 4200);

    // No VXLAN pool: no device.
    let mut native = cluster(4200, &nodes);
    native.pools[0].vxlan_mode = VxlanMode::Never;
    let changes = sync(&a, &native, "a").1;
    assert!(changes.iter().any(|c| c.contains("deleted")), "{changes:?}");
    assert!(device(&a).is_none());
}

/// The VXLAN port already in use: by a UDP socket, then by another VXLAN device
/// with the VNI. Each time one error line naming the device, the port and what
/// holds it, and no device left behind; once the port is free, the next sync makes
/// the device.
#[test]
fn a_port_in_use_is_one_clear_error_and_leaves_nothing() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let a = Netns::new("wd-vx-port").unwrap();
    a.ip(&["link", "add", "ua", "type", "veth", "peer", "name", "ub"])
        .unwrap();
    a.iface("ua").addr("192.0.2.1/24").unwrap().up().unwrap();
    a.iface("ub").up().unwrap();
    let snapshot = cluster(4100, &[("a", "192.0.2.1", "10.244.0.1", 1)]);
    let attempt = || {
        a.enter(|| kernel::sync_once(&snapshot, "a"))
            .unwrap()
            .unwrap_err()
            .to_string()
    };

    // A UDP socket on the port.
    let socket = a
        .enter(|| std::net::UdpSocket::bind("0.0.0.0:4789"))
        .unwrap()
        .unwrap();
    let error = attempt();
    assert!(
        error.starts_with(
            "dataplane: vxlan.wren: UDP port 4789 is already in use by another socket"
        ),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
    assert_eq!(device(&a), None, "nothing half-made");
    drop(socket);

    // Another VXLAN device with the VNI on the port.
    a.ip(&[
        "link",
        "add",
        "vx-other",
        "type",
        "vxlan",
        "id",
        "4100",
        "dstport",
        "4789",
        "local",
        "192.0.2.1",
        "dev",
        "ua",
    ])
    .unwrap();
    let error = attempt();
    assert!(
        error.starts_with(
            "dataplane: vxlan.wren: UDP port 4789 is already in use by the VXLAN device vx-other"
        ),
        "{error}"
    );
    assert_eq!(device(&a), None, "nothing half-made");

    // Freed: made at the next sync.
    a.ip(&["link", "del", "vx-other"]).unwrap();
    let (_, changes) = sync(&a, &snapshot, "a");
    assert!(changes.iter().any(|c| c.contains("made")), "{changes:?}");
    assert!(device(&a).is_some());
}
