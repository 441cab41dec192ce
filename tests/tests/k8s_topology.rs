//! The shipped topology containerlab/k8s.clab.yml: three Wren nodes on the Kubernetes
//! datastore (etcd, a real kube-apiserver, one FRR ToR), deployed once by the library the
//! `wren-lab` runner uses, under a unique prefix, and checked where an operator looks:
//! - the nodes' blocks are `IPAMBlock` objects (`kubectl get ipamblocks`) with their
//!   `BlockAffinity`, each pod's address lies in a block of its own node, and each bgpd
//!   wrote its address and AS on its Node object; `kubectl get wrennodes` shows the
//!   three Ready;
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

    /// Patches the BGPPeer rack1-tor's holdTime.
    fn set_tor_hold_time(&self, seconds: u64) {
        let patch = format!(r#"{{"spec":{{"holdTime":{seconds}}}}}"#);
        self.kubectl(&[
            "patch",
            "bgppeer",
            "rack1-tor",
            "--type=merge",
            "-p",
            &patch,
        ])
        .unwrap();
    }

    /// `kubectl apply` of a manifest given as text.
    fn apply(&self, manifest: &str) {
        let path = self
            .lab
            .dir()
            .join(format!("{}.yaml", lab::unique_name("manifest")));
        std::fs::write(&path, manifest).unwrap();
        self.kubectl(&["apply", "-f", path.to_str().unwrap()])
            .unwrap();
    }

    /// The neighbors bgpctl lists on a node: address to (state, times established).
    fn neighbors(&self, node: &str) -> Result<BTreeMap<String, (String, u64)>, String> {
        Ok(self
            .bgpctl(node, &["show", "neighbors"])?
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| {
                Some((
                    n["address"].as_str()?.to_owned(),
                    (
                        n["state"].as_str()?.to_owned(),
                        n["established_count"].as_u64()?,
                    ),
                ))
            })
            .collect())
    }

    /// Waits until every node's kernel routes every other node's block (in `blocks`)
    /// through its owner.
    fn wait_kernels(&self, blocks: &BTreeMap<String, String>) {
        for (node, _) in NODES {
            let netns = self.lab.netns(node).unwrap();
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

/// Item 3: the ToR's BGPPeer on exactly the nodes its nodeSelector picks, and a changed
/// holdTime resetting only those sessions.
fn bgp_peer_follows_its_node_selector(k8s: &K8s) {
    let before = tor_sessions(k8s);
    let mesh = mesh_sessions(k8s);
    for (node, (state, _, _)) in &before {
        assert_eq!(
            state, "Established",
            "ToR's session with {node}: {before:?}"
        );
    }
    k8s.kubectl(&[
        "label",
        "node",
        "node3",
        "topology.wren.io/rack=rack2",
        "--overwrite",
    ])
    .unwrap();
    let tor = k8s.lab.frr("tor").unwrap();
    wait_for(TIMEOUT, "node3 out of the BGPPeer rack1-tor", || {
        let state = tor.neighbor_state("10.0.0.3").map_err(|e| e.to_string())?;
        let node3 = k8s.neighbors("node3")?;
        if state.as_deref() != Some("Established") && !node3.contains_key("10.0.0.254") {
            Ok(())
        } else {
            Err(format!(
                "FRR sees node3 {state:?}; node3's neighbors {node3:?}"
            ))
        }
    })
    .unwrap();
    let after = tor_sessions(k8s);
    for node in ["node1", "node2"] {
        assert_eq!(after[node], before[node], "{node}'s ToR session moved");
    }

    // holdTime 30 -> 6 (below FRR's 9, so the negotiated hold time shows it): node1's and
    // node2's ToR sessions reset with it, node3 stays out, no mesh session moves.
    k8s.set_tor_hold_time(6);
    let reset = wait_for(TIMEOUT, "the selected nodes' ToR sessions reset", || {
        let now = tor_sessions(k8s);
        let done = ["node1", "node2"].iter().all(|node| {
            let (state, established, hold) = &now[node];
            state == "Established" && *established == before[node].1 + 1 && *hold == 6000
        });
        if done {
            Ok(now)
        } else {
            Err(format!("{now:?}"))
        }
    })
    .unwrap();
    assert_ne!(reset["node3"].0, "Established", "{reset:?}");
    assert_eq!(reset["node3"].1, before["node3"].1, "{reset:?}");
    assert_eq!(mesh_sessions(k8s), mesh, "a mesh session was reset");

    // node3 back in rack1: its session comes back with the new hold time.
    k8s.kubectl(&[
        "label",
        "node",
        "node3",
        "topology.wren.io/rack=rack1",
        "--overwrite",
    ])
    .unwrap();
    wait_for(TIMEOUT, "node3 back with the ToR", || {
        let now = tor_sessions(k8s);
        match &now["node3"] {
            (state, _, 6000) if state == "Established" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .unwrap();
}

/// A fourth Wren node outside the topology file: a namespace on the ToR's bridge
/// (10.0.0.4) and the management network (172.31.4.14), and its bgpd on the Kubernetes
/// datastore as node4. Dropping it stops bgpd and removes the links and the namespace.
struct Fourth {
    wren: Wren,
    _links: [Veth; 2],
    _netns: Netns,
}

impl Fourth {
    const ADDRESS: &str = "10.0.0.4";

    fn start(k8s: &K8s, prefix: &str, root: &Path) -> Fourth {
        let netns = Netns::new(&format!("{prefix}-node4")).unwrap();
        netns.lo_up().unwrap();
        let tor = k8s.lab.netns("tor").unwrap();
        let mgmt = k8s.lab.mgmt_netns().unwrap();
        let rack = Veth::new(tor, "eth4", &netns, "eth1").unwrap();
        let management = Veth::new(mgmt, "node4", &netns, "eth0").unwrap();
        tor.ip(&["link", "set", "eth4", "master", "br0"]).unwrap();
        mgmt.ip(&[
            "link",
            "set",
            "node4",
            "master",
            lab::topology::mgmt::BRIDGE,
        ])
        .unwrap();
        netns.iface("eth1").addr("10.0.0.4/24").unwrap();
        netns.iface("eth0").addr("172.31.4.14/24").unwrap();
        let kubeconfig = root
            .join("containerlab/k8s/admin.kubeconfig")
            .canonicalize()
            .unwrap();
        // Accepts the others whether or not its own registry read has listed them yet.
        let config = wren_config(
            Self::ADDRESS,
            &Wren::socket_path(&netns),
            false,
            &format!(
                "[ipam]\nnode = \"node4\"\ndatastore = \"kubernetes://{}\"\n\
                 node_addresses = [\"{}\"]\n\n\
                 [[bgp.listen_range]]\nprefix = \"10.0.0.0/24\"\nremote_asn = 64512\n",
                kubeconfig.display(),
                Self::ADDRESS
            ),
        );
        let wren = Wren::start(&netns, &config);
        Fourth {
            wren,
            _links: [rack, management],
            _netns: netns,
        }
    }
}

/// Item 2: the mesh follows the Node objects.
fn mesh_follows_the_nodes(k8s: &K8s, prefix: &str, root: &Path) {
    let fourth = Fourth::start(k8s, prefix, root);
    let created = std::time::Instant::now();
    k8s.apply(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node4\n  annotations:\n    \
         wren.io/asn: \"64512\"\n    wren.io/ipv4-address: 10.0.0.4\n",
    );
    wait_for(
        TIMEOUT,
        "mesh sessions of the three nodes with node4",
        || {
            for (node, _) in NODES {
                let neighbors = k8s.neighbors(node)?;
                match neighbors.get(Fourth::ADDRESS) {
                    Some((state, _)) if state == "Established" => {}
                    other => return Err(format!("{node}: {other:?}")),
                }
            }
            Ok(())
        },
    )
    .unwrap();
    let elapsed = created.elapsed();
    eprintln!("node4 created: mesh sessions Established on the three nodes after {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(2),
        "node4's mesh sessions took {elapsed:?}"
    );

    // node4's bgpd claims a block in the API server; it reaches every node's kernel
    // through node4.
    let block = wait_for(TIMEOUT, "an IPAMBlock affine to node4", || {
        k8s.blocks()?
            .into_iter()
            .find(|(_, owner)| owner == "node4")
            .map(|(cidr, _)| cidr)
            .ok_or_else(|| fourth.wren.daemon.log_tail(10).to_string())
    })
    .unwrap();
    for (node, _) in NODES {
        let netns = k8s.lab.netns(node).unwrap();
        wait_for(
            TIMEOUT,
            &format!("{block} of node4 in {node}'s kernel"),
            || match netns.route(&block) {
                Ok(Some(route)) if route["gateway"] == Fourth::ADDRESS => Ok(()),
                Ok(other) => Err(format!("route {other:?}")),
                Err(error) => Err(error.to_string()),
            },
        )
        .unwrap();
    }

    // The Node deleted: the three drop their sessions with node4 (which still runs).
    k8s.kubectl(&["delete", "node", "node4"]).unwrap();
    wait_for(TIMEOUT, "node4's mesh sessions gone", || {
        for (node, _) in NODES {
            if k8s.neighbors(node)?.contains_key(Fourth::ADDRESS) {
                return Err(format!("{node} still peers with node4"));
            }
        }
        Ok(())
    })
    .unwrap();
    assert!(fourth.wren.daemon.is_alive());
    drop(fourth);

    // node4 gone for good: the collector (elected among the three bgpd) frees its
    // block and affinity, and the datastore checks clean.
    let freed = std::time::Instant::now();
    freed_by_the_collector(k8s, "node4", &block);
    eprintln!(
        "node4's block freed {:?} after node4 stopped",
        freed.elapsed()
    );
}

/// Waits until `node`'s `block` and its affinity are gone from the API server (the
/// collector's work), then checks the datastore clean.
fn freed_by_the_collector(k8s: &K8s, node: &str, block: &str) {
    wait_for(
        TIMEOUT,
        &format!("{node}'s block freed by the collector"),
        || {
            let blocks = k8s.blocks()?;
            let affinities = k8s.kubectl(&["get", "blockaffinities", "-o", "name"])?;
            if blocks.contains_key(block) || affinities.contains(&format!("/{node}-")) {
                Err(format!("blocks {blocks:?}, affinities {affinities}"))
            } else {
                Ok(())
            }
        },
    )
    .unwrap();
    let check = k8s.bgpctl("node1", &["ipam", "check"]).unwrap();
    assert_eq!(check["problems"], 0, "{check}");
}

/// Item 3: a route reflector topology from BGPPeers with peerSelectors (no address
/// written down) and the mesh off.
fn route_reflectors_from_peer_selectors(k8s: &K8s) {
    k8s.kubectl(&[
        "label",
        "node",
        "node1",
        "topology.wren.io/route-reflector=true",
        "wren.io/route-reflector-cluster-id=10.0.0.1",
    ])
    .unwrap();
    k8s.apply(
        r#"apiVersion: wren.io/v1alpha1
kind: BGPPeer
metadata:
  name: to-reflectors
spec:
  nodeSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: DoesNotExist}
  peerSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: Exists}
---
apiVersion: wren.io/v1alpha1
kind: BGPPeer
metadata:
  name: reflector-clients
spec:
  nodeSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: Exists}
  peerSelector:
    matchExpressions:
      - {key: topology.wren.io/route-reflector, operator: DoesNotExist}
  routeReflectorClient: true
---
apiVersion: wren.io/v1alpha1
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
"#,
    );
    let wanted = [
        ("node1", vec!["10.0.0.2", "10.0.0.254", "10.0.0.3"]),
        ("node2", vec!["10.0.0.1", "10.0.0.254"]),
        ("node3", vec!["10.0.0.1", "10.0.0.254"]),
    ];
    for (node, addresses) in &wanted {
        wait_for(TIMEOUT, &format!("{node}'s sessions {addresses:?}"), || {
            let neighbors = k8s.neighbors(node)?;
            let established: Vec<&str> = neighbors
                .iter()
                .filter(|(_, (state, _))| state == "Established")
                .map(|(address, _)| address.as_str())
                .collect();
            if neighbors.len() == addresses.len() && established == *addresses {
                Ok(())
            } else {
                Err(format!("{neighbors:?}"))
            }
        })
        .unwrap();
    }
    let descriptions = k8s.bgpctl("node2", &["show", "neighbors"]).unwrap();
    assert!(
        descriptions.to_string().contains("to-reflectors"),
        "{descriptions}"
    );
    // node2 and node3 reach each other's blocks through the reflector, next hop the
    // owner (a reflector passes it on unchanged).
    let mut blocks = k8s.blocks().unwrap();
    blocks.retain(|_, owner| NODES.iter().any(|(node, _)| node == owner));
    k8s.wait_kernels(&blocks);
    let routes = k8s.bgpctl("node2", &["show", "routes"]).unwrap();
    let node3_block = blocks.iter().find(|(_, n)| *n == "node3").unwrap().0;
    let best = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["prefix"] == node3_block.as_str() && r["best"] == true)
        .unwrap_or_else(|| panic!("node2 has no best route to {node3_block}: {routes}"));
    assert_eq!(best["source"], "10.0.0.1", "{best}");
}

/// The three nodes' blocks (node4's, freed, excluded).
fn node_blocks(k8s: &K8s) -> BTreeMap<String, String> {
    let mut blocks = k8s.blocks().unwrap();
    blocks.retain(|_, owner| NODES.iter().any(|(node, _)| node == owner));
    blocks
}

/// Item 4: the API server, then etcd under it, killed and restarted under the three
/// running nodes.
fn control_plane_faults(k8s: &mut K8s) {
    let blocks = node_blocks(k8s);
    for (daemon_node, hold) in [("apiserver", 7), ("etcd", 8)] {
        let sessions: Vec<_> = NODES
            .iter()
            .map(|(n, _)| k8s.neighbors(n).unwrap())
            .collect();
        let logged: Vec<usize> = NODES
            .iter()
            .map(|(n, _)| k8s.lab.node(n).unwrap().daemons()[0].log().len())
            .collect();
        k8s.lab.node(daemon_node).unwrap().daemons()[0]
            .kill()
            .unwrap();
        // While it is down: sessions and routes stay.
        std::thread::sleep(Duration::from_secs(3));
        for ((node, _), before) in NODES.iter().zip(&sessions) {
            assert_eq!(
                &k8s.neighbors(node).unwrap(),
                before,
                "{node}'s sessions moved with {daemon_node} down"
            );
        }
        k8s.wait_kernels(&blocks);
        k8s.lab.node_mut(daemon_node).unwrap().daemons_mut()[0]
            .restart()
            .unwrap();
        wait_until(TIMEOUT, "the API server ready again", || {
            k8s.kubectl(&["get", "--raw", "/readyz"]).is_ok()
        })
        .unwrap();
        // Recovered by itself: a change made now reaches every node.
        k8s.set_tor_hold_time(hold);
        wait_for(
            TIMEOUT,
            &format!("holdTime {hold} on every node after {daemon_node}'s restart"),
            || {
                let now = tor_sessions(k8s);
                if now
                    .values()
                    .all(|(state, _, ms)| state == "Established" && *ms == hold * 1000)
                {
                    Ok(())
                } else {
                    Err(format!("{now:?}"))
                }
            },
        )
        .unwrap();
        for ((node, _), from) in NODES.iter().zip(logged) {
            let log = k8s.lab.node(node).unwrap().daemons()[0].log();
            let lines: Vec<&str> = log[from..]
                .lines()
                .filter(|l| {
                    l.contains("172.31.4.101") && (l.contains("WARN") || l.contains("ERROR"))
                })
                .collect();
            eprintln!(
                "{node}, {daemon_node} killed: {} warnings naming the API server, the first: {}",
                lines.len(),
                lines.first().unwrap_or(&"none")
            );
            if daemon_node == "apiserver" {
                // One line per watched resource at most (the IPAM store's 4 watches, the
                // cluster task's 4 reflectors, the status writer, the collector...), not
                // one per retry (48 before the IPAM watches logged once per outage).
                assert!(
                    (1..=12).contains(&lines.len()),
                    "{node}: {} warnings for one outage:\n{}",
                    lines.len(),
                    lines.join("\n")
                );
            }
        }
    }
}

/// Item 4: node3's bgpd killed with SIGKILL while its Node is deleted.
fn node_killed_while_deleted(k8s: &K8s) {
    let blocks = node_blocks(k8s);
    let block = blocks
        .iter()
        .find(|(_, owner)| *owner == "node3")
        .unwrap()
        .0
        .clone();
    k8s.lab.node("node3").unwrap().daemons()[0].kill().unwrap();
    k8s.kubectl(&["delete", "node", "node3"]).unwrap();
    wait_for(
        TIMEOUT,
        "node3's sessions gone from node1 and node2",
        || {
            for node in ["node1", "node2"] {
                if k8s.neighbors(node)?.contains_key("10.0.0.3") {
                    return Err(format!("{node} still has node3 as a neighbor"));
                }
            }
            Ok(())
        },
    )
    .unwrap();
    freed_by_the_collector(k8s, "node3", &block);
    for node in ["node1", "node2"] {
        let netns = k8s.lab.netns(node).unwrap();
        wait_for(
            TIMEOUT,
            &format!("{block} of node3 out of {node}'s kernel"),
            || match netns.route(&block) {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            },
        )
        .unwrap();
    }
}
