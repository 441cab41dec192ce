//! What the dataplane is built from: the pools and the node registry as the IPAM
//! task last read them from the datastore. bgpd's IPAM task publishes a
//! [`Snapshot`] on a `tokio::sync::watch` (`None` until its first read) and the
//! dataplane task follows it; a field added here (the VXLAN overlay's block
//! affinities and tunnel endpoints) reaches the dataplane the same way.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::mtu::Encapsulation;

/// The cluster as the dataplane sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every pool, disabled ones included (their addresses are still in use).
    pub pools: Vec<Pool>,
    /// Every registered node (this one included).
    pub nodes: Vec<Node>,
}

/// A pool, as far as the dataplane cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub cidr: IpNet,
    /// Masquerade traffic from the pool to destinations outside every pool and
    /// every node.
    pub nat_outgoing: bool,
}

/// A registered node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub addresses: Vec<IpAddr>,
}

impl Snapshot {
    /// How pod traffic leaves the node: no pool encapsulates yet (the pools'
    /// `vxlan_mode` arrives with the VXLAN overlay), so routed as is.
    pub fn encapsulation(&self) -> Encapsulation {
        Encapsulation::None
    }

    /// Whether some pool asks for masquerading.
    pub fn needs_nat(&self) -> bool {
        self.pools.iter().any(|pool| pool.nat_outgoing)
    }
}
