//! The shipped topology containerlab/k8s.clab.yml: three Wren nodes on the Kubernetes
//! datastore (etcd, a real kube-apiserver, one FRR ToR), deployed once by the library the
//! `wren-lab` runner uses, under a unique prefix, and checked where an operator looks:
//! - the nodes' blocks are `IPAMBlock` objects (`kubectl get ipamblocks`) with their
//!   `BlockAffinity`, each pod's address lies in a block of its own node, and each bgpd
//!   wrote its address and AS on its Node object; `kubectl get wrennodes` shows the
//!   three Ready, and `kubectl get` of the pools, blocks, affinities and BGPPeers
//!   prints their columns (CIDR, owner, addresses in use, state, peer, selectors);
//! - the ToR's sessions come from the BGPPeer of the topology (no neighbor in any
//!   bgpd.toml) and FRR's `show bgp ipv4 unicast json` holds every node's block;
//! - every node's kernel routes every other node's blocks through the owner (the node mesh
//!   over the Node objects), and pods on all three nodes ping each other;
//! - the `BGPPeer` of the ToR follows its `nodeSelector`: a node relabelled out of it
//!   loses its session (FRR's `show bgp summary json`) while the others keep theirs, and a
//!   changed `holdTime` resets exactly the selected nodes' ToR sessions (FRR's
//!   `connectionsEstablished`, the negotiated hold time), no mesh session;
//! - a fourth Node created with the annotations of a fourth bgpd (in a namespace of its
//!   own, on the rack's bridge and the management network) gets mesh sessions from the
//!   three others within 2 s, its block reaches their kernels, and deleting the Node
//!   removes those sessions and, through the collector, its block (`ipam check` clean);
//! - a route reflector topology declared with `peerSelector`s only (node1 labelled
//!   reflector, the mesh off in the `BGPConfiguration`) converges: node2 and node3 peer
//!   with node1 alone, and every node's kernel routes every other node's block;
//! - faults: the API server killed (SIGKILL) and restarted, then etcd under it, with the
//!   three nodes running: no session resets, every kernel keeps every block, each bgpd
//!   logs the API server's outage naming it, and a BGPPeer change made after the restart
//!   reaches every node (FRR sees the new hold time); node3's bgpd killed with SIGKILL
//!   while its Node is deleted: the others drop their sessions with it, the collector
//!   frees its block, `ipam check` is clean;
//! - after tear-down no namespace of the lab is left, also when a check fails (the checks
//!   run under `catch_unwind`).
//!
//! Needs root, FRR, etcd, the CNI plugins and the built kube-apiserver and kubectl (skips
//! otherwise, fails with WREN_REQUIRE_LAB=1), and Wren's binaries in the target dir
//! (`cargo build --workspace --bins`).
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::fixture::{Wren, frr_neighbor, wren_binary, wren_config};
use lab::{Lab, Netns, Topology, Veth, wait_for, wait_until};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);
const FILE: &str = "containerlab/k8s.clab.yml";
/// The Wren nodes of the topology, with their address on the rack's segment.
const NODES: [(&str, &str); 3] = [
    ("node1", "10.0.0.1"),
    ("node2", "10.0.0.2"),
    ("node3", "10.0.0.3"),
];

#[path = "k8s_topology/columns.rs"]
mod columns;
#[path = "k8s_topology/deployment.rs"]
mod deployment;
#[path = "k8s_topology/faults.rs"]
mod faults;
#[path = "k8s_topology/mesh.rs"]
mod mesh;
#[path = "k8s_topology/peers.rs"]
mod peers;

use self::columns::*;
use self::deployment::*;
use self::faults::*;
use self::mesh::*;
use self::peers::*;

#[test]
fn k8s_topology_on_the_kubernetes_datastore() {
    let Some(_ready) = lab::require!(Root, Frr, Etcd, Cni, KubeApiserver) else {
        return;
    };
    for binary in ["bgpd", "wren-ipam", "wren"] {
        wren_binary(binary);
    }
    let bgpctl = wren_binary("bgpctl");
    let kubectl = lab::kube::kubectl_binary().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut topology = Topology::load(&root.join(FILE)).unwrap();
    let prefix = lab::unique_name("wk");
    topology.prefix = Some(prefix.clone());
    let lab = topology
        .deploy()
        .unwrap_or_else(|error| panic!("deploying {FILE}: {error}"));
    let k8s = K8s {
        lab,
        kubectl,
        kubeconfig: root.join("containerlab/k8s/admin.kubeconfig"),
        bgpctl,
    };
    let mut k8s = k8s;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        converges(&k8s);
        bgp_peer_follows_its_node_selector(&k8s);
        mesh_follows_the_nodes(&k8s, &prefix, &root);
        route_reflectors_from_peer_selectors(&k8s);
        control_plane_faults(&mut k8s);
        node_killed_while_deleted(&k8s);
    }));
    drop(k8s);
    let left: Vec<String> = lab::netns::list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with(&prefix) || n.contains(&format!(".{prefix}.")))
        .collect();
    assert!(left.is_empty(), "namespaces left: {left:?}");
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// Item 1 of the topology: blocks in the API server, the ToR's sessions from the BGPPeer,
/// every block at FRR and in every other node's kernel, pods reaching each other.
fn converges(k8s: &K8s) {
    let blocks = wait_for(TIMEOUT, "an IPAMBlock affine to every node", || {
        let blocks = k8s.blocks()?;
        match NODES
            .iter()
            .find(|(node, _)| !blocks.values().any(|owner| owner == node))
        {
            None => Ok(blocks),
            Some((node, _)) => Err(format!("{node} owns no IPAMBlock yet: {blocks:?}")),
        }
    })
    .unwrap();
    assert_eq!(blocks.len(), NODES.len(), "one block per node: {blocks:?}");
    let affinities = k8s.get("blockaffinities").unwrap();
    let mut confirmed: Vec<(String, String)> = affinities["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["spec"]["state"], "confirmed", "{a}");
            (
                a["spec"]["cidr"].as_str().unwrap().to_owned(),
                a["spec"]["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    confirmed.sort();
    assert_eq!(
        confirmed,
        blocks
            .iter()
            .map(|(c, n)| (c.clone(), n.clone()))
            .collect::<Vec<_>>()
    );

    // Each bgpd registered itself on its Node object.
    for (node, address) in NODES {
        let object = k8s.get(&format!("node/{node}")).unwrap();
        let annotations = &object["metadata"]["annotations"];
        assert_eq!(annotations["wren.io/asn"], "64512", "{node}: {object}");
        assert_eq!(
            annotations["wren.io/ipv4-address"], address,
            "{node}: {object}"
        );
    }

    // Each node's WrenNode says Ready, as `kubectl get wrennodes` shows it.
    wait_for(TIMEOUT, "the three WrenNodes Ready", || {
        let nodes = k8s.get("wrennodes")?;
        let ready: Vec<&str> = nodes["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
            .filter_map(|n| n["metadata"]["name"].as_str())
            .collect();
        if ready == ["node1", "node2", "node3"] {
            Ok(())
        } else {
            Err(format!("Ready: {ready:?}: {nodes}"))
        }
    })
    .unwrap();
    let table = k8s.kubectl(&["get", "wrennodes"]).unwrap();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0][..5],
        ["NAME", "NODE", "ASN", "PEERS", "UP"],
        "{table}"
    );
    for (row, (node, _)) in rows[1..].iter().zip(NODES) {
        // NAME NODE ASN PEERS-UP BLOCKS READY AGE: three peers up (two nodes, the ToR).
        assert_eq!(row[..6], [node, node, "64512", "3", "1", "True"], "{table}");
    }
    eprintln!("kubectl get wrennodes:\n{table}");
    printer_columns(k8s, &blocks);

    // Every pod's address is in a block of its own node.
    for (node, _) in NODES {
        let lab_node = k8s.lab.node(node).unwrap();
        assert!(!lab_node.pods().is_empty(), "{node} has no pods");
        for pod in lab_node.pods() {
            let address: Ipv4Addr = pod.address().unwrap().parse().unwrap();
            let owner = blocks
                .iter()
                .find(|(cidr, _)| cidr.parse::<ipnet::Ipv4Net>().unwrap().contains(&address));
            assert_eq!(
                owner.map(|(_, n)| n.as_str()),
                Some(node),
                "pod {} at {address}: {blocks:?}",
                pod.netns().name()
            );
        }
    }

    // The ToR: a session with each node (from the BGPPeer rack1-tor), and every block,
    // next hop its owner.
    let tor = k8s.lab.frr("tor").unwrap();
    let addresses: Vec<&str> = NODES.iter().map(|(_, a)| *a).collect();
    tor.wait_established(TIMEOUT, &addresses).unwrap();
    for (block, owner) in &blocks {
        let paths = tor.wait_route(TIMEOUT, block).unwrap();
        let address = NODES.iter().find(|(n, _)| n == owner).unwrap().1;
        assert_eq!(
            paths[0]["nexthops"][0]["ip"], address,
            "FRR's path to {block} of {owner}: {paths:?}"
        );
    }
    for (node, _) in NODES {
        let neighbors = k8s.bgpctl(node, &["show", "neighbors"]).unwrap();
        let tor = neighbors
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["address"] == "10.0.0.254")
            .unwrap_or_else(|| panic!("{node} has no ToR session: {neighbors}"));
        assert_eq!(tor["state"], "Established", "{node}: {tor}");
    }

    // Every node's kernel routes every other node's block through its owner (the mesh).
    k8s.wait_kernels(&blocks);

    // A pod of every node pings a pod of every other node.
    for (from, _) in NODES {
        let source = &k8s.lab.node(from).unwrap().pods()[0];
        for (to, _) in NODES.iter().filter(|(n, _)| *n != from) {
            let target = k8s.lab.node(to).unwrap().pods().last().unwrap();
            let address = target.address().unwrap();
            wait_until(
                TIMEOUT,
                &format!("a pod of {from} to ping {address} on {to}"),
                || source.netns().ping(&address),
            )
            .unwrap();
        }
    }
}

/// FRR's count of sessions established with each node, and its state now.
fn tor_sessions(k8s: &K8s) -> BTreeMap<&'static str, (String, u64, u64)> {
    let tor = k8s.lab.frr("tor").unwrap();
    NODES
        .iter()
        .map(|(node, address)| {
            let neighbor = frr_neighbor(tor, address);
            (
                *node,
                (
                    neighbor["bgpState"].as_str().unwrap_or("?").to_owned(),
                    neighbor["connectionsEstablished"].as_u64().unwrap_or(0),
                    neighbor["bgpTimerHoldTimeMsecs"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect()
}

/// The mesh sessions of every node (its neighbors other than the ToR).
fn mesh_sessions(k8s: &K8s) -> BTreeMap<String, BTreeMap<String, (String, u64)>> {
    NODES
        .iter()
        .map(|(node, _)| {
            let mut neighbors = k8s.neighbors(node).unwrap();
            neighbors.remove("10.0.0.254");
            ((*node).to_owned(), neighbors)
        })
        .collect()
}
