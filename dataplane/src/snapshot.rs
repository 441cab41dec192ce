//! What the dataplane is built from: the pools and the node registry as the IPAM
//! task last read them from the datastore. bgpd's IPAM task publishes a
//! [`Snapshot`] on a `tokio::sync::watch` (`None` until its first read) and the
//! dataplane task follows it. The VXLAN overlay is built from it alone: the blocks
//! and their owners (the datastore's affinities), the addresses borrowed from
//! other nodes' blocks and their users, and each node's tunnel endpoints.

use std::net::IpAddr;

pub use control_proto::VxlanMode;
use ipnet::IpNet;

use crate::mtu::Encapsulation;

/// The cluster as the dataplane sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every pool, disabled ones included (their addresses are still in use).
    pub pools: Vec<Pool>,
    /// Every registered node (this one included).
    pub nodes: Vec<Node>,
    /// Every block that has an owner, sorted by block.
    pub blocks: Vec<BlockOwner>,
    /// Every address used by another node than its block's owner (borrowed with
    /// strict affinity off), sorted by address.
    pub borrowed: Vec<Borrowed>,
}

/// A block and the node that owns it, as the datastore says.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlockOwner {
    pub block: IpNet,
    pub node: String,
}

/// An address a node uses in a block it does not own (`ipam::Block::user_of`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Borrowed {
    pub address: IpAddr,
    /// The node whose pod has the address.
    pub node: String,
}

/// A pool, as far as the dataplane cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub cidr: IpNet,
    /// Masquerade traffic from the pool to destinations outside every pool and
    /// every node.
    pub nat_outgoing: bool,
    /// When traffic to the pool's blocks on other nodes is encapsulated in VXLAN.
    pub vxlan_mode: VxlanMode,
    /// The VXLAN Network Identifier of the family's device.
    pub vxlan_vni: u32,
    /// The VXLAN UDP port of the family's device.
    pub vxlan_port: u16,
}

/// A registered node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub addresses: Vec<IpAddr>,
    /// Its VXLAN tunnel endpoints, one per family with a VXLAN pool.
    pub vteps: Vec<Vtep>,
}

/// A node's VXLAN tunnel endpoint of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vtep {
    /// The address on the node's VXLAN device.
    pub tunnel_address: IpAddr,
    /// The MAC of the node's VXLAN device.
    pub mac: [u8; 6],
}

impl Snapshot {
    /// How pod traffic leaves the node, for the pod MTU: VXLAN over IPv6 when an
    /// IPv6 pool encapsulates (the larger overhead: a pod has one MTU for both
    /// families), else over IPv4 when an IPv4 pool does, else routed as is. Disabled
    /// pools count: their addresses are still in use.
    pub fn encapsulation(&self) -> Encapsulation {
        let encapsulating = |ipv4: bool| {
            self.pools.iter().any(|pool| {
                pool.vxlan_mode.encapsulates() && matches!(pool.cidr, IpNet::V4(_)) == ipv4
            })
        };
        if encapsulating(false) {
            Encapsulation::VxlanIpv6
        } else if encapsulating(true) {
            Encapsulation::VxlanIpv4
        } else {
            Encapsulation::None
        }
    }

    /// The pool whose VNI and port the family's VXLAN device takes: the first pool
    /// of the family (by CIDR) whose `vxlan_mode` encapsulates.
    pub fn vxlan_pool(&self, ipv4: bool) -> Option<&Pool> {
        self.pools
            .iter()
            .filter(|pool| pool.vxlan_mode.encapsulates() && pool.cidr.addr().is_ipv4() == ipv4)
            .min_by_key(|pool| pool.cidr)
    }

    /// Whether some pool asks for masquerading.
    pub fn needs_nat(&self) -> bool {
        self.pools.iter().any(|pool| pool.nat_outgoing)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool(cidr: &str, vxlan_mode: VxlanMode) -> Pool {
        Pool {
            cidr: cidr.parse().unwrap(),
            nat_outgoing: false,
            vxlan_mode,
            vxlan_vni: 4096,
            vxlan_port: 4789,
        }
    }

    #[test]
    fn the_encapsulation_follows_the_pools_vxlan_mode() {
        let snapshot = |pools: Vec<Pool>| Snapshot {
            pools,
            ..Snapshot::default()
        };
        let v4 = |mode| pool("10.244.0.0/16", mode);
        let v6 = |mode| pool("fd00:10:244::/56", mode);
        let cases = [
            (vec![], Encapsulation::None),
            (
                vec![v4(VxlanMode::Never), v6(VxlanMode::Never)],
                Encapsulation::None,
            ),
            (vec![v4(VxlanMode::Always)], Encapsulation::VxlanIpv4),
            (
                vec![v4(VxlanMode::CrossSubnet), v6(VxlanMode::Never)],
                Encapsulation::VxlanIpv4,
            ),
            (
                vec![v4(VxlanMode::Never), v6(VxlanMode::CrossSubnet)],
                Encapsulation::VxlanIpv6,
            ),
            (
                vec![v4(VxlanMode::Always), v6(VxlanMode::Always)],
                Encapsulation::VxlanIpv6,
            ),
        ];
        for (pools, expected) in cases {
            let text = format!("{pools:?}");
            assert_eq!(snapshot(pools).encapsulation(), expected, "{text}");
        }
    }
}
