//! `[ipam]`: pod address management in the datastore that bgpd advertises from, and
//! the node registry the node-to-node mesh follows (issue 4).
//!
//! ```toml
//! [ipam]
//! node = "node-a"                           # default: the host name
//! datastore = "sqlite:///var/lib/wren/ipam.db"   # or "etcd://10.0.0.5:2379,10.0.0.6:2379"
//! node_addresses = ["10.0.0.1", "fd00::1"]  # registered for the mesh; default: router_id
//! node_labels = { zone = "a" }              # registered; pools' node_selector matches them
//! strict_affinity = false                   # cluster-wide, written at start when given
//! max_blocks_per_node = 0                   # cluster-wide, written at start when given
//! resync_interval = 10                      # seconds between full re-reads (a fallback)
//! [[ipam.pool]]                             # created at start when missing
//! cidr = "10.244.0.0/16"
//! block_size = 26                           # default 26 (IPv4), 122 (IPv6)
//! disabled = false
//! node_selector = { zone = "a" }
//! nat_outgoing = false
//! ```
//!
//! With `[ipam]`, `[bgp] node_mesh` defaults to true: bgpd peers with every other
//! node of the registry. Changes to `[ipam]` take effect at the next start.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

/// The datastore bgpd and `wren-ipam` use when not told.
pub const DEFAULT_DATASTORE: &str = "sqlite:///var/lib/wren/ipam.db";
/// Seconds between full re-reads of the node's allocations when nothing announced a
/// change (the control socket notification and the datastore watch come first).
pub const DEFAULT_RESYNC_INTERVAL: u32 = 10;

/// The `[ipam]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamConfig {
    /// This node's name in IPAM and the registry; default: the host name.
    #[serde(default)]
    pub node: Option<String>,
    /// `sqlite:///PATH` or `etcd://HOST:PORT[,HOST:PORT...]`.
    #[serde(default = "default_datastore")]
    pub datastore: String,
    /// Addresses other nodes peer with (one session per family both nodes have);
    /// default: the router id.
    #[serde(default)]
    pub node_addresses: Vec<IpAddr>,
    /// Labels recorded with the node (pools' `node_selector` matches them).
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    /// Cluster-wide: never borrow addresses from other nodes' blocks. Written to the
    /// datastore at start when set; left as stored when absent.
    #[serde(default)]
    pub strict_affinity: Option<bool>,
    /// Cluster-wide: most blocks per node and family (0: no limit). Written at start
    /// when set.
    #[serde(default)]
    pub max_blocks_per_node: Option<u32>,
    /// Seconds between full re-reads when nothing announced a change.
    #[serde(default = "default_resync_interval")]
    pub resync_interval: u32,
    /// Pools created at start when missing.
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolConfig>,
}

/// `[[ipam.pool]]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub cidr: IpNet,
    /// Prefix length of the blocks; default 26 (IPv4) or 122 (IPv6).
    #[serde(default)]
    pub block_size: Option<u8>,
    #[serde(default)]
    pub disabled: bool,
    /// Labels a node must carry to take addresses from this pool; empty: every node.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub nat_outgoing: bool,
}

impl PoolConfig {
    /// The pool as the datastore records it.
    pub fn to_pool(&self) -> ipam::Pool {
        let mut pool = ipam::Pool::new(self.cidr);
        if let Some(block_size) = self.block_size {
            pool.block_size = block_size;
        }
        pool.disabled = self.disabled;
        pool.node_selector = self.node_selector.clone();
        pool.nat_outgoing = self.nat_outgoing;
        pool
    }
}

impl IpamConfig {
    /// The node name: `node`, else the host name.
    pub fn node_name(&self) -> Result<String, String> {
        if let Some(node) = &self.node {
            return Ok(node.clone());
        }
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .map_err(|error| {
                format!("ipam.node is not set and the host name cannot be read: {error}")
            })?;
        ipam::keys::validate_node(&name).map_err(|error| {
            format!("ipam.node is not set and the host name is not usable: {error}")
        })?;
        Ok(name)
    }

    /// The addresses registered for the mesh: `node_addresses`, else the router id.
    pub fn addresses(&self, router_id: std::net::Ipv4Addr) -> Vec<IpAddr> {
        if self.node_addresses.is_empty() {
            vec![IpAddr::V4(router_id)]
        } else {
            self.node_addresses.clone()
        }
    }
}

fn default_datastore() -> String {
    DEFAULT_DATASTORE.to_owned()
}

fn default_resync_interval() -> u32 {
    DEFAULT_RESYNC_INTERVAL
}
