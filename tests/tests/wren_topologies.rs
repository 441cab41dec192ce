//! The shipped Wren topologies (containerlab/mesh, tor, rr and overlay), each deployed by the library
//! the `wren-lab` runner uses, under a unique prefix so they run beside other tests, and
//! checked from the peers' side:
//! - every BGP session is Established: FRR's `show bgp summary json` on the ToRs, and each
//!   Wren node's `bgpctl --json show neighbors` with the expected number of neighbors;
//! - every node's kernel routes every other node's blocks (the blocks and their owners read
//!   from the IPAM datastore), through the owner itself on a shared segment;
//! - every node's `bgpctl --json show routes` agrees with its kernel;
//! - a pod on every node pings a pod on every other node (across racks for `tor`);
//! - after tear-down no namespace, link or process of the lab is left, also when a check
//!   fails midway (the checks run under `catch_unwind`, and one test fails on purpose).
//!
//! Needs root, FRR, etcd and the CNI plugins (skips otherwise, fails with WREN_REQUIRE_LAB=1),
//! and Wren's binaries built in the target dir (bgpd, bgpctl, wren, wren-ipam, wren-lab: a missing
//! one fails, `cargo build --workspace --bins` builds them).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::fixture::wren_binary;
use lab::topology::Role;
use lab::{Lab, Topology, wait_for, wait_until};
use serde_json::Value;
use wren_tests::pod_traffic::{ping_size, tcp, vxlan_fdb};

const TIMEOUT: Duration = Duration::from_secs(90);

/// What one topology must show once converged.
struct Expect {
    file: &'static str,
    /// BGP sessions each node must have Established (FRR nodes and Wren nodes).
    sessions: &'static [(&'static str, usize)],
    /// Nodes on one segment reach each other's blocks directly (next hop: the owner).
    direct: bool,
    /// A topology's own check, after the common ones.
    extra: Option<fn(&Lab, &Path)>,
}

const MESH: Expect = Expect {
    file: "containerlab/mesh.clab.yml",
    sessions: &[("node1", 2), ("node2", 2), ("node3", 2)],
    direct: true,
    extra: None,
};

const TOR: Expect = Expect {
    file: "containerlab/tor.clab.yml",
    sessions: &[
        ("rack1-tor", 3),
        ("rack2-tor", 3),
        ("rack1-node1", 1),
        ("rack1-node2", 1),
        ("rack2-node1", 1),
        ("rack2-node2", 1),
    ],
    direct: false,
    extra: None,
};

const RR: Expect = Expect {
    file: "containerlab/rr.clab.yml",
    sessions: &[
        ("rr1", 3),
        ("rr2", 3),
        ("node1", 2),
        ("node2", 2),
        ("node3", 2),
    ],
    direct: true,
    extra: Some(one_reflector_is_enough),
};

#[test]
fn mesh_topology_converges_and_leaves_nothing_behind() {
    run(&MESH);
}

#[test]
fn tor_topology_converges_and_leaves_nothing_behind() {
    run(&TOR);
}

#[test]
fn rr_topology_converges_and_leaves_nothing_behind() {
    run(&RR);
}

const OVERLAY: Expect = Expect {
    file: "containerlab/overlay.clab.yml",
    sessions: &[("node1", 0), ("node2", 0), ("node3", 0)],
    direct: false,
    extra: None,
};

#[test]
fn overlay_topology_reaches_every_pod_without_bgp_and_leaves_nothing_behind() {
    if lab::require!(Tcpdump).is_none() {
        return;
    }
    run_with(&OVERLAY, check_overlay);
}

/// A check failing midway (here: on purpose, once the lab is up and peering) still leaves
/// nothing behind.
#[test]
fn a_failure_midway_leaves_nothing_behind() {
    let Some(bgpctl) = ready() else {
        return;
    };
    let (lab, prefix) = deploy(&MESH);
    let left = Leftovers::record(&lab, &prefix);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        wait_sessions(&lab, &bgpctl, &[("node1", 2)]);
        panic!("failing on purpose with the lab up");
    }));
    drop(lab);
    left.assert_gone();
    let payload = outcome.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>().copied(),
        Some("failing on purpose with the lab up")
    );
}

/// Deploys `expect.file`, runs every check, tears down and checks nothing is left (also
/// when a check failed, whose panic is then passed on).
fn run(expect: &Expect) {
    run_with(expect, |lab, bgpctl| check(lab, bgpctl, expect));
}

/// [`run`] with the checks of `checks`.
fn run_with(expect: &Expect, checks: impl Fn(&Lab, &Path)) {
    let Some(bgpctl) = ready() else {
        return;
    };
    let (lab, prefix) = deploy(expect);
    let left = Leftovers::record(&lab, &prefix);
    let outcome = catch_unwind(AssertUnwindSafe(|| checks(&lab, &bgpctl)));
    drop(lab);
    left.assert_gone();
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// The prerequisites, and bgpctl's path (bgpd, wren and wren-ipam are found the same way by the
/// lab; a missing one fails here); `None` (after printing why) when a prerequisite is
/// missing and the lab is not required.
fn ready() -> Option<PathBuf> {
    lab::require!(Root, Frr, Etcd, Cni)?;
    wren_binary("bgpd");
    wren_binary("wren-ipam");
    wren_binary("wren");
    Some(wren_binary("bgpctl"))
}

/// Deploys a shipped topology under a prefix unique to this test (namespaces
/// `PREFIX-NAME-NODE`), so it runs beside anything else, this same topology included.
fn deploy(expect: &Expect) -> (Lab, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(expect.file);
    let mut topology = Topology::load(&path).unwrap();
    let prefix = lab::unique_name("wt");
    topology.prefix = Some(prefix.clone());
    match topology.deploy() {
        Ok(lab) => (lab, prefix),
        Err(error) => {
            // A failed deploy removes what it made.
            let left = namespaces_with(&prefix);
            assert!(left.is_empty(), "failed deploy left {left:?}");
            panic!("deploying {}: {error}", expect.file);
        }
    }
}

/// The names of the nodes that have pods.
fn pod_nodes(lab: &Lab) -> Vec<&str> {
    lab.nodes()
        .iter()
        .filter(|n| !n.pods().is_empty())
        .map(|n| n.name())
        .collect()
}

fn check(lab: &Lab, bgpctl: &Path, expect: &Expect) {
    wait_sessions(lab, bgpctl, expect.sessions);

    let pod_nodes = pod_nodes(lab);
    let blocks = blocks(lab, bgpctl);

    // Every pod address lies in a block of its own node.
    for node in lab.nodes().iter().filter(|n| !n.pods().is_empty()) {
        for pod in node.pods() {
            let address: Ipv4Addr = pod.address().unwrap().parse().unwrap();
            let owner = blocks.iter().find(|(cidr, _)| contains(cidr, address));
            assert_eq!(
                owner.map(|(_, node)| node.as_str()),
                Some(node.name()),
                "pod {} at {address}: blocks {blocks:?}",
                pod.netns().name()
            );
        }
    }

    // Every node's kernel routes every other node's blocks (through the owner on a shared
    // segment), and its bgpctl says the same.
    for &node in &pod_nodes {
        let netns = lab.netns(node).unwrap();
        for (block, owner) in blocks.iter().filter(|(_, owner)| owner.as_str() != node) {
            let route = wait_for(
                TIMEOUT,
                &format!("{block} of {owner} in {node}'s kernel"),
                || match netns.route(block) {
                    Ok(Some(route)) if route["gateway"].is_string() => Ok(route),
                    Ok(other) => Err(format!("route {other:?}")),
                    Err(error) => Err(error.to_string()),
                },
            )
            .unwrap();
            let gateway = route["gateway"].as_str().unwrap().to_owned();
            if expect.direct {
                assert_eq!(
                    gateway,
                    eth1_address(lab, owner),
                    "{node}'s route to {block}: {route}"
                );
            }
            let routes = json(lab, node, bgpctl, &["show", "routes", block]).unwrap();
            let best: Vec<&Value> = routes
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["prefix"] == block.as_str() && r["best"] == true)
                .collect();
            assert_eq!(
                best.len(),
                1,
                "{node}: bgpctl show routes {block}: {routes}"
            );
            assert_eq!(
                best[0]["next_hops"],
                serde_json::json!([gateway]),
                "{node}: bgpctl and the kernel disagree on {block}"
            );
        }
        // Its own blocks are local routes in bgpctl, and bgpctl has nothing else.
        let routes = json(lab, node, bgpctl, &["show", "routes"]).unwrap();
        let best: BTreeMap<String, String> = routes
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["best"] == true)
            .map(|r| {
                (
                    r["prefix"].as_str().unwrap().to_owned(),
                    r["source"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            best.keys().collect::<BTreeSet<_>>(),
            blocks.keys().collect::<BTreeSet<_>>(),
            "{node}: bgpctl show routes: {routes}"
        );
        for (block, owner) in &blocks {
            assert_eq!(
                best[block] == "local",
                owner == node,
                "{node}: {block} of {owner} has source {}",
                best[block]
            );
        }
    }

    // FRR routers carry every block.
    for node in lab
        .nodes()
        .iter()
        .filter_map(|n| n.frr().map(|f| (n.name(), f)))
    {
        for block in blocks.keys() {
            node.1.wait_route(TIMEOUT, block).unwrap();
        }
    }

    // A pod of every node pings a pod of every other node.
    for from in lab.nodes().iter().filter(|n| !n.pods().is_empty()) {
        for (index, to) in lab
            .nodes()
            .iter()
            .filter(|n| !n.pods().is_empty() && n.name() != from.name())
            .enumerate()
        {
            let source = &from.pods()[0];
            let target = &to.pods()[index % to.pods().len()];
            let address = target.address().unwrap();
            wait_until(
                TIMEOUT,
                &format!(
                    "pod {} ({}) to ping pod {} ({address})",
                    source.netns().name(),
                    from.name(),
                    target.netns().name()
                ),
                || source.netns().ping(&address),
            )
            .unwrap();
        }
    }

    if let Some(extra) = expect.extra {
        extra(lab, bgpctl);
    }
}

/// The blocks and their owners, from the datastore (through the first pod node's
/// bgpd), once every pod node owns one.
fn blocks(lab: &Lab, bgpctl: &Path) -> BTreeMap<String, String> {
    let pod_nodes = pod_nodes(lab);
    assert!(pod_nodes.len() >= 3, "pod nodes: {pod_nodes:?}");
    wait_for(TIMEOUT, "a block for every pod node", || {
        let ipam = json(lab, pod_nodes[0], bgpctl, &["show", "ipam", "--blocks"])?;
        let blocks: BTreeMap<String, String> = ipam["blocks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| {
                Some((
                    b["cidr"].as_str()?.to_owned(),
                    b["node"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let owners: BTreeSet<&str> = blocks.values().map(String::as_str).collect();
        match pod_nodes.iter().find(|n| !owners.contains(**n)) {
            None => Ok(blocks),
            Some(node) => Err(format!("{node} owns no block yet: {blocks:?}")),
        }
    })
    .unwrap()
}

/// overlay (no BGP session anywhere, pool `cross_subnet`): node1 and node2 (one
/// subnet) route each other's blocks natively through eth1, every other pair through
/// vxlan.wren on link to the owner's tunnel address; each node has a permanent
/// neighbour and FDB entry per other node; pods ping each other and talk TCP; the pod
/// MTU carries a Don't Fragment ping of MTU-28 bytes and refuses one byte more; the
/// router sees UDP 4789 between the subnets and the pods' own packets within one.
fn check_overlay(lab: &Lab, bgpctl: &Path) {
    wait_sessions(lab, bgpctl, OVERLAY.sessions);
    let blocks = blocks(lab, bgpctl);
    let same_subnet = |a: &str, b: &str| a != "node3" && b != "node3";
    let tunnel_address = |node: &str| -> String {
        let addresses = lab
            .netns(node)
            .unwrap()
            .ip_json(&["-4", "addr", "show", "dev", "vxlan.wren"])
            .unwrap();
        addresses[0]["addr_info"][0]["local"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for &node in &pod_nodes(lab) {
        let netns = lab.netns(node).unwrap();
        for (block, owner) in blocks.iter().filter(|(_, owner)| owner.as_str() != node) {
            // Wren's protocol (which FRR's rt_protos.d names "static").
            let route = wait_for(
                TIMEOUT,
                &format!("{block} of {owner} in {node}'s kernel, protocol 196"),
                || match lab::fixture::kernel_route(netns, block) {
                    Some(route) if route["gateway"].is_string() => Ok(route),
                    other => Err(format!("route {other:?}")),
                },
            )
            .unwrap();
            if same_subnet(node, owner) {
                assert_eq!(route["dev"], "eth1", "{node}: {route}");
                assert_eq!(
                    route["gateway"],
                    eth1_address(lab, owner).as_str(),
                    "{route}"
                );
            } else {
                assert_eq!(route["dev"], "vxlan.wren", "{node}: {route}");
                assert_eq!(route["gateway"], tunnel_address(owner).as_str(), "{route}");
                assert!(route["flags"].to_string().contains("onlink"), "{route}");
            }
            let entries = vxlan_fdb(netns);
            assert!(
                entries.as_array().unwrap().iter().any(|e| {
                    e["dst"] == eth1_address(lab, owner).as_str() && e["state"] == "permanent"
                }),
                "{node}: fdb {entries}"
            );
            let neighbours = netns
                .ip_json(&["neigh", "show", "dev", "vxlan.wren"])
                .unwrap();
            assert!(
                neighbours.as_array().unwrap().iter().any(|n| {
                    n["dst"] == tunnel_address(owner).as_str()
                        && n["state"].to_string().contains("PERMANENT")
                }),
                "{node}: neighbours {neighbours}"
            );
        }
    }

    // Pods reach each other: ping and TCP, every pair.
    let pod = |node: &str| &lab.node(node).unwrap().pods()[0];
    for from in ["node1", "node2", "node3"] {
        for to in ["node1", "node2", "node3"]
            .into_iter()
            .filter(|to| *to != from)
        {
            let address = pod(to).address().unwrap();
            wait_until(
                TIMEOUT,
                &format!("a pod of {from} to ping {address}"),
                || pod(from).netns().ping(&address),
            )
            .unwrap();
            assert!(
                tcp(pod(to).netns(), &address, pod(from).netns()),
                "TCP from a pod of {from} to {address}"
            );
        }
    }

    // The pod MTU, through the tunnel.
    let mtu: u32 = lab
        .exec("node1", &["cat", "/var/lib/wren/mtu"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(mtu, 1450);
    let far = pod("node3").address().unwrap();
    let (passed, text) = ping_size(pod("node1").netns(), &far, mtu - 28);
    assert!(passed, "{text}");
    let (passed, text) = ping_size(pod("node1").netns(), &far, mtu - 27);
    assert!(!passed, "{text}");

    // What the router sees.
    let router = lab.netns("router").unwrap();
    let capture = router.dir().join("overlay.txt");
    let file = std::fs::File::create(&capture).unwrap();
    let mut tcpdump = router
        .command("tcpdump")
        .args(["-l", "-nn", "-i", "any", "udp port 4789 or icmp"])
        .stdout(file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let near = pod("node2").address().unwrap();
    assert!(pod("node1").netns().ping(&far));
    assert!(pod("node1").netns().ping(&near));
    std::thread::sleep(Duration::from_secs(1));
    let _ = tcpdump.kill();
    let _ = tcpdump.wait();
    let seen = std::fs::read_to_string(&capture).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("10.0.1.1.") && l.contains("10.0.2.3.4789")),
        "no VXLAN from node1 to node3: {seen}"
    );
    let near_source = pod("node1").address().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ICMP") && l.contains(&format!("{near_source} > {near}"))),
        "no plain ICMP from node1's pod to node2's: {seen}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("10.0.1.1.") && l.contains("10.0.1.2.4789")),
        "VXLAN within the shared subnet: {seen}"
    );
}

/// rr: with rr1's bgpd stopped (SIGTERM: it closes its sessions with a Cease, so its
/// clients drop its routes at once instead of keeping them for graceful restart), every
/// node has every other node's blocks through rr2 alone, and pods still reach each other.
fn one_reflector_is_enough(lab: &Lab, bgpctl: &Path) {
    let rr1 = &lab.node("rr1").unwrap().daemons()[0];
    rr1.stop().unwrap();
    let pod_nodes = pod_nodes(lab);
    for &node in &pod_nodes {
        wait_for(
            TIMEOUT,
            &format!("{node}: rr1 down, every route through rr2"),
            || {
                let neighbors = json(lab, node, bgpctl, &["show", "neighbors"])?;
                let rr1_state = neighbors
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|n| n["address"] == "10.0.0.1")
                    .map(|n| n["state"].clone());
                if rr1_state == Some(Value::from("Established")) {
                    return Err("rr1 still Established".to_owned());
                }
                let routes = json(lab, node, bgpctl, &["show", "routes"])?;
                let learned: Vec<&Value> = routes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["source"] != "local")
                    .collect();
                let via_rr2 = learned
                    .iter()
                    .filter(|r| r["best"] == true && r["source"] == "10.0.0.2")
                    .count();
                if learned.len() == pod_nodes.len() - 1 && via_rr2 == learned.len() {
                    Ok(())
                } else {
                    Err(format!("routes: {routes}"))
                }
            },
        )
        .unwrap();
    }
    for from in lab.nodes().iter().filter(|n| !n.pods().is_empty()) {
        for to in lab
            .nodes()
            .iter()
            .filter(|n| !n.pods().is_empty() && n.name() != from.name())
        {
            let address = to.pods()[0].address().unwrap();
            let source = &from.pods()[0];
            wait_until(
                TIMEOUT,
                &format!("{} to ping {address} with rr1 down", from.name()),
                || source.netns().ping(&address),
            )
            .unwrap();
        }
    }
}

/// Waits until each listed node has exactly that many sessions, all Established: FRR's
/// `show bgp summary json` on FRR nodes, `bgpctl --json show neighbors` on Wren nodes.
fn wait_sessions(lab: &Lab, bgpctl: &Path, sessions: &[(&str, usize)]) {
    for &(node, count) in sessions {
        let what = format!("{count} Established sessions on {node}");
        let lab_node = lab.node(node).unwrap();
        wait_for(TIMEOUT, &what, || {
            let states: Vec<String> = match lab_node.frr() {
                Some(frr) => {
                    let summary = frr.bgp_summary_json().map_err(|e| e.to_string())?;
                    summary["ipv4Unicast"]["peers"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(peer, v)| format!("{peer} {}", v["state"].as_str().unwrap_or("?")))
                        .collect()
                }
                None => {
                    assert!(matches!(lab_node.role(), Role::Wren { .. }), "{node}");
                    json(lab, node, bgpctl, &["show", "neighbors"])?
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|n| format!("{} {}", n["address"], n["state"].as_str().unwrap_or("?")))
                        .collect()
                }
            };
            if states.len() == count && states.iter().all(|s| s.ends_with(" Established")) {
                Ok(())
            } else {
                Err(format!("{states:?}"))
            }
        })
        .unwrap();
    }
}

/// `bgpctl --json ARGS` in a node (reaching the node's own bgpd without flags).
fn json(lab: &Lab, node: &str, bgpctl: &Path, args: &[&str]) -> Result<Value, String> {
    let mut all = vec![bgpctl.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = lab.exec(node, &all).map_err(|e| e.to_string())?;
    lab::fixture::parse_bgpctl_json(args, &out)
        .map_err(|e| format!("bgpctl {args:?} on {node}: {e}: {out}"))
}

/// A node's address on its eth1 (its address on the segment).
fn eth1_address(lab: &Lab, node: &str) -> String {
    let addresses = lab
        .netns(node)
        .unwrap()
        .ip_json(&["-4", "addr", "show", "dev", "eth1"])
        .unwrap();
    addresses[0]["addr_info"][0]["local"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn contains(cidr: &str, address: Ipv4Addr) -> bool {
    let (network, len) = cidr.split_once('/').unwrap();
    let network: Ipv4Addr = network.parse().unwrap();
    let len: u32 = len.parse().unwrap();
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(address) & mask == u32::from(network) & mask
}

fn namespaces_with(prefix: &str) -> Vec<String> {
    lab::netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(prefix) || n.contains(&format!(".{prefix}.")))
        .collect()
}

/// What a lab made, recorded while it is up, to check after tear-down that it is gone.
struct Leftovers {
    prefix: String,
    namespaces: Vec<String>,
    pids: Vec<i32>,
    /// Interface names inside the lab's namespaces other than the usual ones (the pods'
    /// host-side veths, named by the ptp plugin).
    interfaces: BTreeSet<String>,
}

impl Leftovers {
    fn record(lab: &Lab, prefix: &str) -> Leftovers {
        let mut namespaces: Vec<String> = Vec::new();
        for node in lab.nodes() {
            namespaces.push(node.netns().name().to_owned());
            namespaces.extend(node.pods().iter().map(|p| p.netns().name().to_owned()));
        }
        namespaces.extend(lab.mgmt_netns().map(|n| n.name().to_owned()));
        let found = namespaces_with(prefix);
        for name in &namespaces {
            assert!(found.contains(name), "{name} not among {found:?}");
        }
        let mut pids = Vec::new();
        let mut interfaces = BTreeSet::new();
        for name in &namespaces {
            pids.extend(lab::netns::pids(name).unwrap());
            let links = lab::run_command_json(
                std::process::Command::new("ip").args(["-j", "-n", name, "link", "show"]),
            )
            .unwrap();
            interfaces.extend(
                links
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l["ifname"].as_str())
                    .filter(|n| n.starts_with("veth"))
                    .map(str::to_owned),
            );
        }
        assert!(!pids.is_empty(), "no process in the lab");
        Leftovers {
            prefix: prefix.to_owned(),
            namespaces,
            pids,
            interfaces,
        }
    }

    fn assert_gone(&self) {
        let left = namespaces_with(&self.prefix);
        assert!(left.is_empty(), "namespaces left: {left:?}");
        for name in &self.namespaces {
            assert!(
                !Path::new(lab::netns::NETNS_RUN_DIR).join(name).exists(),
                "{name} left"
            );
        }
        for &pid in &self.pids {
            wait_until(TIMEOUT, &format!("process {pid} of the lab gone"), || {
                !alive(pid)
            })
            .unwrap();
        }
        let host =
            lab::run_command_json(std::process::Command::new("ip").args(["-j", "link", "show"]))
                .unwrap();
        let host: BTreeSet<&str> = host
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str())
            .collect();
        let stray: Vec<&String> = self
            .interfaces
            .iter()
            .filter(|n| host.contains(n.as_str()))
            .collect();
        assert!(stray.is_empty(), "lab interfaces in the host: {stray:?}");
    }
}

/// True while the process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    lab::topology::DaemonState {
        name: String::new(),
        pid: pid.unsigned_abs(),
        log: PathBuf::new(),
    }
    .is_alive()
}
