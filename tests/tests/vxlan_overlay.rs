//! The VXLAN overlay end to end (issue 15, part 2), BGP-less: three nodes, each a
//! bgpd with `[ipam]` on one shared SQLite file, no neighbor and no node mesh, and
//! pods wired by the `wren` CNI plugin. Nodes A and B share the subnet
//! 10.82.1.0/24 (a bridge in the router's namespace); node C sits on 10.82.2.0/24
//! behind that router, a plain Linux router with no BGP and no pod route.
//!
//! - With `vxlan_mode = "always"` every node has `vxlan.wren` (VNI, port, learning
//!   off, its VTEP MAC, its tunnel address), a permanent neighbour and FDB entry
//!   per other node, and every remote block `via TUNNEL dev vxlan.wren onlink`
//!   with Wren's protocol, all read with `ip -j` / `bridge -j` from outside; pods
//!   on all three nodes ping each other and open TCP connections;
//!   `ping -M do -s (MTU-28)` passes pod to pod and one byte more is refused.
//! - bgpd turns IPv4 forwarding on (the test does not).
//! - IPv6 pods on two subnets reach each other through `vxlan-v6.wren` over the IPv6
//!   underlay.
//! - With strict affinity off, a pod whose address node B borrowed from another
//!   node's block is reached from the owner and from the third node.
//! - The parent device going down and coming back (`faults`).
//! - The restart figure: one bgpd with 200 pods and 10 remote nodes in the
//!   datastore restarts with no kernel change.
//! - A restart of one bgpd with the overlay up (and the pool's `nat_outgoing`
//!   table) changes nothing in its kernel: `ip monitor`, `bridge monitor` and
//!   `nft monitor` show nothing of vxlan.wren, protocol 196 or `inet wren`, while a
//!   change made on purpose shows.
//!
//! Needs root, nft and the CNI plugins (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lab::TIMEOUT;
use lab::fixture::{Wren, kernel_route, wren_binary, wren_config};
use lab::topology::Pod;
use lab::{Netns, Veth};
use wren_tests::ipam_node::ipam_section;
use wren_tests::pod_traffic::{ping_size, tcp, vxlan_fdb};

#[path = "vxlan_overlay/faults.rs"]
mod faults;

const POOL: &str = "10.248.0.0/16";

/// A node: its namespace with `eth1` on the underlay, its bgpd, its pod.
struct Node {
    name: String,
    address: String,
    netns: Netns,
    _link: Veth,
}

/// A node at `address`/24 with the router's side `port`, enslaved to the router's
/// bridge when `bridged`; its default route via `gateway`.
fn node(
    router: &Netns,
    name: &str,
    address: &str,
    gateway: &str,
    port: &str,
    bridged: bool,
) -> Node {
    let netns = Netns::new("wv-node").unwrap();
    let link = Veth::new(&netns, "eth1", router, port).unwrap();
    netns
        .iface("eth1")
        .addr(&format!("{address}/24"))
        .unwrap()
        .up()
        .unwrap();
    router.iface(port).up().unwrap();
    if bridged {
        router.ip(&["link", "set", port, "master", "br0"]).unwrap();
    }
    netns
        .ip(&["route", "add", "default", "via", gateway])
        .unwrap();
    netns.lo_up().unwrap();
    Node {
        name: name.into(),
        address: address.into(),
        netns,
        _link: link,
    }
}

/// The IPv4 underlay of three nodes: a router (forwarding on) with a bridge on
/// `NET.1.254/24` holding node A (`.1.1`) and node B (`.1.2`), and node C
/// (`NET.2.3`) on its own link `NET.2.0/24`. Names end in `suffix`.
fn underlay(net: &str, suffix: &str) -> (Netns, Node, Node, Node) {
    let router = Netns::new(&format!("wv-router{suffix}")).unwrap();
    router
        .ip(&["link", "add", "br0", "type", "bridge"])
        .unwrap();
    router
        .iface("br0")
        .addr(&format!("{net}.1.254/24"))
        .unwrap()
        .up()
        .unwrap();
    router
        .exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        .unwrap();
    let gateway = format!("{net}.1.254");
    let a = node(
        &router,
        &format!("node-a{suffix}"),
        &format!("{net}.1.1"),
        &gateway,
        "pa",
        true,
    );
    let b = node(
        &router,
        &format!("node-b{suffix}"),
        &format!("{net}.1.2"),
        &gateway,
        "pb",
        true,
    );
    let c = node(
        &router,
        &format!("node-c{suffix}"),
        &format!("{net}.2.3"),
        &format!("{net}.2.254"),
        "pc",
        false,
    );
    router.iface("pc").addr(&format!("{net}.2.254/24")).unwrap();
    (router, a, b, c)
}

fn config(node: &Node, url: &str, mode: &str) -> String {
    let rest = format!(
        "[[ipam.pool]]\ncidr = \"{POOL}\"\nvxlan_mode = \"{mode}\"\nvxlan_vni = 4321\nnat_outgoing = true\n"
    );
    config_with(node, url, &[&node.address], &rest)
}

/// bgpd without BGP (no neighbor, no mesh), keeping its routes at stop, with
/// `addresses` registered and `pools` in `[ipam]`.
fn config_with(node: &Node, url: &str, addresses: &[&str], pools: &str) -> String {
    let socket = Wren::socket_path(&node.netns);
    wren_config(
        &node.address,
        &socket,
        true,
        &ipam_section(&node.name, url, addresses, pools),
    )
    .replace(
        "[fib]\nenabled = true",
        "[fib]\nenabled = true\nkeep_on_shutdown = true",
    )
    .replace("[bgp]\n", "[bgp]\nnode_mesh = false\n")
}

fn pod(node: &Node, url: &str) -> Pod {
    let conf = lab::cni::wren_config(
        url,
        &node.name,
        Some(&Wren::socket_path(&node.netns)),
        &node.netns.dir().join("mtu"),
    );
    Pod::attach(&node.netns, &conf).unwrap()
}

/// The node's blocks as the datastore has them.
fn blocks_of(url: &str, node: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ipam = ipam::connect(url).await.unwrap();
        let allocations = ipam.node_allocations(node).await.unwrap();
        allocations.blocks.iter().map(ToString::to_string).collect()
    })
}

fn registered(url: &str, node: &str) -> ipam::Node {
    registration(url, node).unwrap()
}

/// The node's record in the registry, once it registered.
fn registration(url: &str, node: &str) -> Option<ipam::Node> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { ipam::connect(url).await.unwrap().node(node).await.unwrap() })
}

/// `ip monitor` and `bridge monitor` of `netns`, printing to a file.
fn monitors(netns: &Netns) -> Vec<(Child, std::path::PathBuf)> {
    let mut children = Vec::new();
    for (index, args) in [
        vec![
            "ip",
            "-n",
            netns.name(),
            "monitor",
            "link",
            "address",
            "route",
            "neigh",
        ],
        vec!["bridge", "-n", netns.name(), "monitor", "fdb"],
        vec!["ip", "netns", "exec", netns.name(), "nft", "monitor"],
    ]
    .into_iter()
    .enumerate()
    {
        let path = netns.dir().join(format!("monitor-{index}.txt"));
        let file = std::fs::File::create(&path).unwrap();
        let child = Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::from(file))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        children.push((child, path));
    }
    children
}

/// The lines of a monitor's output that name Wren's objects: the overlay's device,
/// Wren's route protocol, its nftables table.
fn wren_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| {
            line.contains("vxlan.wren") || line.contains("proto 196") || line.contains("inet wren")
        })
        .map(str::to_owned)
        .collect()
}

/// Whether an `ip monitor route` line is a route of a protocol other than Wren's.
fn foreign_route(line: &str) -> bool {
    line.contains(" proto ") && !line.contains(" proto 196") && !line.contains(" proto wren")
}

/// Whether an `ip monitor neigh` line is the kernel's neighbour state machine at work
/// on a device other than the overlay's (`10.85.1.254 dev eth1 lladdr .. STALE`).
fn underlay_neighbour_state(line: &str) -> bool {
    !line.contains("vxlan")
        && line.contains(" dev ")
        && ["STALE", "REACHABLE", "DELAY", "PROBE"]
            .iter()
            .any(|state| line.trim_end().ends_with(state))
}

/// Restarts `wren`'s bgpd and waits for its second first convergence, then 3 s.
fn restart(wren: &mut Wren) {
    wren.daemon.restart().unwrap();
    wren.daemon
        .wait_until(TIMEOUT, "the second first convergence", || {
            wren.daemon
                .log()
                .matches("first convergence: stale kernel routes removed")
                .count()
                >= 2
        })
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
}

#[test]
fn pods_on_three_nodes_reach_each_other_over_vxlan_without_bgp() {
    let Some(ready) = lab::require!(Root, Cni, Nft) else {
        return;
    };
    wren_binary("wren");
    wren_binary("wren-ipam");
    let (_router, a, b, c) = underlay("10.82", "");
    // No forwarding turned on here: bgpd does it.
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let mut wrens: Vec<Wren> = [&a, &b, &c]
        .iter()
        .map(|n| Wren::start(&n.netns, &config(n, &url, "always")))
        .collect();
    let pods: Vec<Pod> = [&a, &b, &c].iter().map(|n| pod(n, &url)).collect();
    let nodes = [&a, &b, &c];

    // Kernel state, from outside.
    for (index, node) in nodes.iter().enumerate() {
        let wren = &wrens[index];
        let me = registered(&url, &node.name);
        let vtep = me.vteps[0];
        let link = node
            .netns
            .ip_json(&["-d", "link", "show", "dev", "vxlan.wren"])
            .unwrap()[0]
            .clone();
        let info = &link["linkinfo"]["info_data"];
        assert_eq!(info["id"], 4321, "{link}");
        assert_eq!(info["port"], 4789, "{link}");
        assert_eq!(info["local"], node.address.as_str(), "{link}");
        assert_eq!(info["learning"], false, "{link}");
        assert_eq!(link["address"], vtep.mac.to_string().as_str(), "{link}");
        assert_eq!(link["mtu"], 1450, "{link}");
        for other in nodes.iter().filter(|o| o.name != node.name) {
            let theirs = registered(&url, &other.name);
            let their_vtep = theirs.vteps[0];
            for block in blocks_of(&url, &other.name) {
                let route = wren
                    .daemon
                    .wait_for(TIMEOUT, &format!("{block} on {}", node.name), || {
                        kernel_route(&node.netns, &block).ok_or("no route of protocol 196")
                    })
                    .unwrap();
                assert_eq!(route["dev"], "vxlan.wren", "{route}");
                assert_eq!(
                    route["gateway"],
                    their_vtep.tunnel_address.to_string().as_str(),
                    "{route}"
                );
                assert!(route["flags"].to_string().contains("onlink"), "{route}");
            }
            let neighbours = node
                .netns
                .ip_json(&["neigh", "show", "dev", "vxlan.wren"])
                .unwrap();
            assert!(
                neighbours.as_array().unwrap().iter().any(|n| {
                    n["dst"] == their_vtep.tunnel_address.to_string().as_str()
                        && n["lladdr"] == their_vtep.mac.to_string().as_str()
                        && n["state"].to_string().contains("PERMANENT")
                }),
                "{neighbours}"
            );
            let entries = vxlan_fdb(&node.netns);
            assert!(
                entries.as_array().unwrap().iter().any(|e| {
                    e["mac"] == their_vtep.mac.to_string().as_str()
                        && e["dst"] == other.address.as_str()
                        && e["state"] == "permanent"
                }),
                "{entries}"
            );
        }
    }

    // Pods reach each other: ping, TCP, the MTU.
    let mtu: u32 = std::fs::read_to_string(a.netns.dir().join("mtu"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(mtu, 1450);
    for from in &pods {
        for to in &pods {
            let address = to.address().unwrap();
            if from.address() == to.address() {
                continue;
            }
            wrens[0]
                .daemon
                .wait_until(TIMEOUT, &format!("ping {address}"), || {
                    from.netns().ping(&address)
                })
                .unwrap();
            assert!(tcp(to.netns(), &address, from.netns()), "TCP to {address}");
        }
    }
    let far = pods[2].address().unwrap();
    let (passed, text) = ping_size(pods[0].netns(), &far, mtu - 28);
    assert!(passed, "{text}");
    let (passed, text) = ping_size(pods[0].netns(), &far, mtu - 27);
    assert!(!passed, "{text}");
    assert!(
        text.contains("message too long") || text.contains("mtu"),
        "{text}"
    );

    assert!(
        a.netns
            .exec(&["nft", "list", "table", "inet", "wren"])
            .is_ok(),
        "the nat_outgoing table is there before the restart"
    );
    // A restart changes nothing in the kernel: no line of `ip monitor` or `bridge
    // monitor` names the overlay's device or Wren's protocol (the underlay's own
    // neighbour entries age as they like), while a change made on purpose shows.
    let mut watching = monitors(&a.netns);
    std::thread::sleep(Duration::from_millis(300));
    restart(&mut wrens[0]);
    for (_, path) in &watching {
        assert_eq!(
            wren_lines(path),
            Vec::<String>::new(),
            "kernel changes across the restart"
        );
    }
    a.netns
        .ip(&["route", "add", "10.99.99.0/24", "dev", "vxlan.wren"])
        .unwrap();
    a.netns
        .ip(&["route", "del", "10.99.99.0/24", "dev", "vxlan.wren"])
        .unwrap();
    a.netns
        .exec(&["nft", "add", "table", "inet", "wren_control"])
        .unwrap();
    a.netns
        .exec(&["nft", "delete", "table", "inet", "wren_control"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for (child, _) in &mut watching {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(
        wren_lines(&watching[0].1).len(),
        2,
        "ip monitor saw the control change"
    );
    assert_eq!(
        wren_lines(&watching[2].1).len(),
        2,
        "nft monitor saw the control change"
    );
    assert!(pods[0].netns().ping(&far));
    drop(pods);
    wrens.clear();
}

/// Strict affinity off, BGP-less: a node that finds no free block borrows its
/// tunnel address and its pod's address from another node's block, and that pod is
/// reached from the block's owner and from the third node through the borrower's
/// tunnel (a /32 via its tunnel address dev vxlan.wren onlink, protocol 196, from
/// the datastore's allocations), while the borrower keeps its pod's host route.
#[test]
fn a_borrowed_address_is_reached_over_vxlan_without_bgp() {
    let Some(ready) = lab::require!(Root, Cni) else {
        return;
    };
    wren_binary("wren");
    wren_binary("wren-ipam");
    let (_router, a, b, c) = underlay("10.84", "b");
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    // Two blocks of /27: a and c take them, b borrows.
    let pools = "strict_affinity = false\n[[ipam.pool]]\ncidr = \"10.249.0.0/26\"\nblock_size = 27\nvxlan_mode = \"always\"\n";
    let mut wrens = Vec::new();
    for n in [&a, &c, &b] {
        let wren = Wren::start(&n.netns, &config_with(n, &url, &[&n.address], pools));
        wren.daemon
            .wait_until(TIMEOUT, &format!("{}'s tunnel endpoint", n.name), || {
                registration(&url, &n.name).is_some_and(|r| !r.vteps.is_empty())
            })
            .unwrap();
        wrens.push(wren);
    }
    assert_eq!(blocks_of(&url, "node-bb"), Vec::<String>::new());
    let pods: Vec<Pod> = [&a, &c, &b].iter().map(|n| pod(n, &url)).collect();
    let borrowed = pods[2].address().unwrap();
    let (owner, third) = if blocks_of(&url, "node-ab")[0]
        .parse::<ipnet::IpNet>()
        .unwrap()
        .contains(&borrowed.parse::<std::net::IpAddr>().unwrap())
    {
        ((&a, &pods[0], &wrens[0]), (&c, &pods[1], &wrens[1]))
    } else {
        ((&c, &pods[1], &wrens[1]), (&a, &pods[0], &wrens[0]))
    };
    let tunnel = registered(&url, "node-bb").vteps[0]
        .tunnel_address
        .to_string();
    let host = format!("{borrowed}/32");
    for (node, _, wren) in [owner, third] {
        let route = wren
            .daemon
            .wait_for(TIMEOUT, &format!("{host} on {}", node.name), || {
                kernel_route(&node.netns, &host).ok_or("no route of protocol 196")
            })
            .unwrap();
        assert_eq!(route["dev"], "vxlan.wren", "{route}");
        assert_eq!(route["gateway"], tunnel.as_str(), "{route}");
        assert!(route["flags"].to_string().contains("onlink"), "{route}");
    }
    // The borrower sends its own pod's address to the pod, not to the owner.
    assert_eq!(kernel_route(&b.netns, &host), None);
    let local = b.netns.ip_json(&["route", "get", &borrowed]).unwrap();
    assert!(
        local[0]["dev"].as_str().unwrap().starts_with("wren"),
        "{local}"
    );
    for (node, pod, wren) in [owner, third] {
        wren.daemon
            .wait_until(
                TIMEOUT,
                &format!("ping {borrowed} from {}", node.name),
                || pod.netns().ping(&borrowed),
            )
            .unwrap();
        let address = pod.address().unwrap();
        assert!(
            pods[2].netns().ping(&address),
            "ping {address} from node-bb"
        );
        assert!(
            tcp(pods[2].netns(), &borrowed, pod.netns()),
            "TCP to {borrowed}"
        );
    }
    drop(pods);
    drop(wrens);
}

/// IPv6 pods on two nodes on different subnets reach each other through
/// `vxlan-v6.wren` over the IPv6 underlay (an IPv6-only pool with
/// `vxlan_mode = "always"`).
#[test]
fn ipv6_pods_reach_each_other_over_the_ipv6_overlay() {
    let Some(ready) = lab::require!(Root, Cni) else {
        return;
    };
    wren_binary("wren");
    wren_binary("wren-ipam");
    let router = Netns::new("wv-router6").unwrap();
    router
        .ip(&["link", "add", "br0", "type", "bridge"])
        .unwrap();
    router.iface("br0").up().unwrap();
    router
        .exec(&["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
        .unwrap();
    let a = node(&router, "node-a6", "10.83.1.1", "10.83.1.254", "pa", true);
    let c = node(&router, "node-c6", "10.83.2.3", "10.83.2.254", "pc", false);
    router.iface("br0").addr("10.83.1.254/24").unwrap();
    router.iface("pc").addr("10.83.2.254/24").unwrap();
    for (netns, device, address) in [
        (&router, "br0", "fd00:83:1::fe/64"),
        (&router, "pc", "fd00:83:2::fe/64"),
        (&a.netns, "eth1", "fd00:83:1::1/64"),
        (&c.netns, "eth1", "fd00:83:2::3/64"),
    ] {
        netns
            .ip(&["addr", "add", address, "dev", device, "nodad"])
            .unwrap();
    }
    a.netns
        .ip(&["-6", "route", "add", "default", "via", "fd00:83:1::fe"])
        .unwrap();
    c.netns
        .ip(&["-6", "route", "add", "default", "via", "fd00:83:2::fe"])
        .unwrap();
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let pools = "[[ipam.pool]]\ncidr = \"fd00:248::/56\"\nvxlan_mode = \"always\"\n";
    let wrens: Vec<Wren> = [(&a, "fd00:83:1::1"), (&c, "fd00:83:2::3")]
        .iter()
        .map(|(n, underlay)| Wren::start(&n.netns, &config_with(n, &url, &[underlay], pools)))
        .collect();
    let pods: Vec<Pod> = [&a, &c].iter().map(|n| pod(n, &url)).collect();
    let link = a
        .netns
        .ip_json(&["-d", "link", "show", "dev", "vxlan-v6.wren"])
        .unwrap()[0]
        .clone();
    assert_eq!(
        link["linkinfo"]["info_data"]["local6"], "fd00:83:1::1",
        "{link}"
    );
    assert_eq!(link["mtu"], 1430, "{link}");
    let far = pods[1].address().unwrap();
    assert!(far.contains(':'), "{far}");
    let block = blocks_of(&url, "node-c6").pop().unwrap();
    let route = wrens[0]
        .daemon
        .wait_for(TIMEOUT, &format!("{block} on node-a6"), || {
            kernel_route(&a.netns, &block).ok_or("no route of protocol 196")
        })
        .unwrap();
    assert_eq!(route["dev"], "vxlan-v6.wren", "{route}");
    assert!(route["flags"].to_string().contains("onlink"), "{route}");
    let near = pods[0].address().unwrap();
    wrens[0]
        .daemon
        .wait_until(TIMEOUT, &format!("ping {far}"), || {
            pods[0].netns().ping(&far)
        })
        .unwrap();
    assert!(pods[1].netns().ping(&near));
    assert!(tcp(pods[1].netns(), &far, pods[0].netns()), "TCP to {far}");
    drop(pods);
    drop(wrens);
}

/// Remote nodes in the datastore (no daemon of theirs runs) for the restart figure.
const REMOTE_NODES: u8 = 10;
/// Pods of the node under test (datastore allocations and their host routes).
const PODS: u32 = 200;

/// The restart figure (issue 15, speed): one bgpd on VXLAN with 200 pods (their
/// addresses allocated in the datastore, their host routes `IP/32 dev DEVICE scope
/// link` as the plugin makes them, on one dummy device) and 10 remote nodes in the
/// datastore (registered with their VTEPs, a block each), restarted: `ip monitor`,
/// `bridge monitor` and `nft monitor` see nothing of Wren's (the count is printed:
/// `cargo test --workspace --features bgpd/fault-injection --test vxlan_overlay --
/// restart_figure --nocapture`).
#[test]
fn restart_figure_200_pods_10_remote_nodes_no_kernel_change() {
    let Some(ready) = lab::require!(Root, Nft) else {
        return;
    };
    let router = Netns::new("wv-routerr").unwrap();
    router
        .ip(&["link", "add", "br0", "type", "bridge"])
        .unwrap();
    router.iface("br0").up().unwrap();
    let a = node(&router, "node-r", "10.85.1.1", "10.85.1.254", "pa", true);
    let url = format!("sqlite://{}", ready.dir().join("ipam.db").display());
    let pools =
        "[[ipam.pool]]\ncidr = \"10.250.0.0/16\"\nvxlan_mode = \"always\"\nnat_outgoing = true\n";
    let mut wren = Wren::start(&a.netns, &config_with(&a, &url, &[&a.address], pools));
    wren.daemon
        .wait_until(TIMEOUT, "node-r's tunnel endpoint", || {
            registration(&url, "node-r").is_some_and(|r| !r.vteps.is_empty())
        })
        .unwrap();

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (remote_blocks, pods) = runtime.block_on(async {
        let ipam = ipam::connect(&url).await.unwrap();
        let mut remote_blocks = Vec::new();
        for index in 0..REMOTE_NODES {
            let name = format!("remote-{index}");
            remote_blocks.extend(ipam.ensure_blocks(&name).await.unwrap());
            let vtep = ipam
                .ensure_vtep(&name, ipam::Family::Ipv4)
                .await
                .unwrap()
                .unwrap();
            ipam.register_node(&ipam::Node {
                name,
                addresses: vec![format!("10.85.1.{}", 10 + index).parse().unwrap()],
                asn: 64512,
                labels: Default::default(),
                vteps: vec![vtep],
            })
            .await
            .unwrap();
        }
        let mut pods = Vec::new();
        for index in 0..PODS {
            let assigned = ipam
                .assign("node-r", &format!("pod-{index}"), ipam::Family::Ipv4, 1)
                .await
                .unwrap();
            pods.push(assigned[0].address);
        }
        (remote_blocks, pods)
    });
    a.netns
        .ip(&[
            "link", "add", "wrenpods", "type", "veth", "peer", "name", "podpeer",
        ])
        .unwrap();
    a.netns.iface("wrenpods").up().unwrap();
    a.netns.iface("podpeer").up().unwrap();
    let batch = pods
        .iter()
        .map(|address| format!("route add {address}/32 dev wrenpods scope link\n"))
        .collect::<String>();
    let batch_file = a.netns.dir().join("pods.batch");
    std::fs::write(&batch_file, batch).unwrap();
    a.netns
        .ip(&["-batch", batch_file.to_str().unwrap()])
        .unwrap();
    assert_eq!(remote_blocks.len(), usize::from(REMOTE_NODES));
    for block in &remote_blocks {
        let block = block.to_string();
        let route = wren
            .daemon
            .wait_for(TIMEOUT, &format!("{block} on node-r"), || {
                kernel_route(&a.netns, &block).ok_or("no route of protocol 196")
            })
            .unwrap();
        assert_eq!(route["dev"], "vxlan.wren", "{route}");
    }
    wren.daemon
        .wait_until(TIMEOUT, "an FDB entry per remote node", || {
            vxlan_fdb(&a.netns)
                .as_array()
                .is_some_and(|e| e.len() >= usize::from(REMOTE_NODES))
        })
        .unwrap();

    let mut watching = monitors(&a.netns);
    std::thread::sleep(Duration::from_millis(300));
    restart(&mut wren);
    let lines: Vec<String> = watching
        .iter()
        .flat_map(|(_, path)| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let ours: Vec<String> = watching
        .iter()
        .flat_map(|(_, path)| wren_lines(path))
        .collect();
    // The kernel's own neighbour resolution on the underlay (an entry going STALE,
    // REACHABLE or PROBE) is not a change anyone made, and a route of another
    // protocol is not Wren's (route-sync writes only its own protocol, 196 here, and
    // refuses the kernel's, boot and static); everything else is. One full-suite run
    // saw `blackhole 10.250.209.192/26 proto static metric 20` appear in this
    // namespace during the restart (a run alone and the next suite did not).
    let others: Vec<&String> = lines
        .iter()
        .filter(|line| {
            !ours.contains(line) && !underlay_neighbour_state(line) && !foreign_route(line)
        })
        .collect();
    println!(
        "restart with {PODS} pods and {REMOTE_NODES} remote nodes on VXLAN: {} kernel changes of Wren's (device, protocol 196, inet wren), {} monitor lines in all, {} of them the underlay's neighbour states or other protocols' routes",
        ours.len(),
        lines.len(),
        lines.len() - ours.len() - others.len()
    );
    assert_eq!(
        ours,
        Vec::<String>::new(),
        "kernel changes across the restart"
    );
    assert!(
        others.is_empty(),
        "monitor lines across the restart: {others:?}"
    );
    // The monitors see a change made on purpose.
    a.netns
        .ip(&["route", "add", "10.99.99.0/24", "dev", "vxlan.wren"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    for (child, _) in &mut watching {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert_eq!(wren_lines(&watching[0].1).len(), 1, "ip monitor saw it");
    drop(wren);
}
