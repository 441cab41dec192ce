//! Topologies in containerlab's own format (`*.clab.yml`), built out of network namespaces:
//! [`Topology::load`] reads and checks a file, [`Topology::deploy`] builds it into a [`Lab`]
//! that removes everything on drop, [`Lab::persist`] leaves it running for the `wren-lab`
//! runner, and [`teardown`] removes a lab from its topology file alone.
//!
//! How a file maps onto namespaces, so it stays valid for containerlab itself:
//! - every node (`kind: linux`) is a namespace named like its container (`clab-LAB-NODE`);
//! - every link `endpoints: ["a:eth1", "b:eth1"]` is a veth pair with those names;
//! - each node's `exec:` commands run inside it (after the links are up);
//! - the image decides what runs: `quay.io/frrouting/frr:*` starts the host's FRR with the
//!   bound `/etc/frr/frr.conf` and `/etc/frr/daemons`, `wren:*` starts `bgpd --config` with
//!   the bound `/etc/wren/bgpd.toml`, an etcd image (`quay.io/coreos/etcd:*`) starts the
//!   host's etcd configured by the node's `ETCD_*` environment, a kube-apiserver image
//!   (`registry.k8s.io/kube-apiserver:*`) starts the kube-apiserver built by
//!   `scripts/kube-apiserver` with the node's `cmd:` flags, anything else runs nothing;
//! - `mgmt-ipv4` / `mgmt-ipv6` put a node on the management network (see [`mgmt`]), where
//!   Wren nodes reach an etcd node as they would on containerlab's Docker network;
//! - the label `wren.io/pods: "N"` adds N pod namespaces through the CNI config bound under
//!   `/etc/cni/net.d/` (plugin `ptp` with the IPAM it names).
//!
//! See [`node`] for the node context in which commands and daemons run.

mod cni;
mod deploy;
mod file;
pub mod mgmt;
pub mod node;
mod state;

pub use cni::{Network, NodeContext, Pod};
pub use deploy::{Lab, LabNode, pod_netns_name, teardown};
pub use file::{
    Bind, File, Link, LinkConfig, MGMT_IFNAME, MgmtConfig, Node, NodeConfig, Scalar, Section,
    Topology,
};
pub use node::{
    PODS_LABEL, Role, WREN_CONTROL_SOCKET, etcd_client_url, find_wren_binary, node_command,
};
pub use state::{DaemonState, LinkState, NodeState, PodState, State, run_dir};
