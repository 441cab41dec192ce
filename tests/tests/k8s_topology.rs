//! The shipped topology containerlab/k8s.clab.yml: three Wren nodes on the Kubernetes
//! datastore (etcd, a real kube-apiserver, one FRR ToR), deployed once by the library the
//! `wren-lab` runner uses, under a unique prefix, and checked where an operator looks:
//! - the nodes' blocks are `IPAMBlock` objects (`kubectl get ipamblocks`) with their
//!   `BlockAffinity`, each pod's address lies in a block of its own node, and each bgpd
//!   wrote its address and AS on its Node object;
//! - the ToR's sessions come from the BGPPeer of the topology (no neighbor in any
//!   bgpd.toml) and FRR's `show bgp ipv4 unicast json` holds every node's block;
//! - every node's kernel routes every other node's blocks through the owner (the node mesh
//!   over the Node objects), and pods on all three nodes ping each other;
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

use lab::fixture::wren_binary;
use lab::{Lab, Topology, wait_for, wait_until};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);
const FILE: &str = "containerlab/k8s.clab.yml";
/// The Wren nodes of the topology, with their address on the rack's segment.
const NODES: [(&str, &str); 3] = [
    ("node1", "10.0.0.1"),
    ("node2", "10.0.0.2"),
    ("node3", "10.0.0.3"),
];

/// The deployed topology and the tools the checks run.
struct K8s {
    lab: Lab,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    bgpctl: PathBuf,
}

impl K8s {
    /// `kubectl ARGS` as the lab's administrator, in the API server's node.
    fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec![
            self.kubectl.to_str().unwrap(),
            "--kubeconfig",
            self.kubeconfig.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        self.lab
            .exec("apiserver", &all)
            .map_err(|e| format!("kubectl {args:?}: {e}"))
    }

    /// `kubectl get WHAT -o json`.
    fn get(&self, what: &str) -> Result<Value, String> {
        let text = self.kubectl(&["get", what, "-o", "json"])?;
        serde_json::from_str(&text).map_err(|e| format!("kubectl get {what}: {e}: {text}"))
    }

    /// `bgpctl --json ARGS` in a node (reaching the node's own bgpd).
    fn bgpctl(&self, node: &str, args: &[&str]) -> Result<Value, String> {
        let mut all = vec![self.bgpctl.to_str().unwrap(), "--json"];
        all.extend_from_slice(args);
        let out = self.lab.exec(node, &all).map_err(|e| e.to_string())?;
        lab::fixture::parse_bgpctl_json(args, &out)
            .map_err(|e| format!("bgpctl {args:?} on {node}: {e}: {out}"))
    }

    /// The IPAMBlock objects: CIDR to the node it is affine to.
    fn blocks(&self) -> Result<BTreeMap<String, String>, String> {
        Ok(self
            .get("ipamblocks")?
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| {
                Some((
                    b["spec"]["cidr"].as_str()?.to_owned(),
                    b["spec"]["affinity"].as_str()?.to_owned(),
                ))
            })
            .collect())
    }
}

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
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        converges(&k8s);
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
    for (node, _) in NODES {
        let netns = k8s.lab.netns(node).unwrap();
        for (block, owner) in blocks.iter().filter(|(_, owner)| *owner != node) {
            let address = NODES.iter().find(|(n, _)| n == owner).unwrap().1;
            wait_for(
                TIMEOUT,
                &format!("{block} of {owner} in {node}'s kernel"),
                || match netns.route(block) {
                    Ok(Some(route)) if route["gateway"] == address => Ok(()),
                    Ok(other) => Err(format!("route {other:?}")),
                    Err(error) => Err(error.to_string()),
                },
            )
            .unwrap();
        }
    }

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
