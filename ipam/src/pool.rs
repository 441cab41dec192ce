//! IP pools: the address ranges blocks are carved from, and the arithmetic that maps a
//! pool's block index to a block CIDR and back (u128, so IPv6 pools of any size work).

use std::collections::BTreeMap;
use std::net::IpAddr;

use control_proto::PoolSettings;
pub use control_proto::ipam::{DEFAULT_VXLAN_PORT, DEFAULT_VXLAN_VNI, VxlanMode};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::IpamError;
use crate::family::{Family, addr_from, to_u128};

/// Block sizes (prefix lengths) allowed for IPv4 pools; at most 4096 addresses a block.
pub const V4_BLOCK_SIZES: std::ops::RangeInclusive<u8> = 20..=32;
/// Block sizes allowed for IPv6 pools.
pub const V6_BLOCK_SIZES: std::ops::RangeInclusive<u8> = 116..=128;
pub const DEFAULT_V4_BLOCK_SIZE: u8 = 26;
pub const DEFAULT_V6_BLOCK_SIZE: u8 = 122;

/// An IP pool as stored; the spec of the `IPPool` custom resource (named after its
/// CIDR) on the Kubernetes datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, CustomResource, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "IPPool",
    plural = "ippools",
    printcolumn = r#"{"name":"CIDR","type":"string","jsonPath":".spec.cidr"}"#,
    printcolumn = r#"{"name":"Block Size","type":"integer","jsonPath":".spec.blockSize"}"#,
    printcolumn = r#"{"name":"VXLAN","type":"string","jsonPath":".spec.vxlanMode"}"#,
    printcolumn = r#"{"name":"NAT","type":"boolean","jsonPath":".spec.natOutgoing"}"#,
    printcolumn = r#"{"name":"Disabled","type":"boolean","jsonPath":".spec.disabled"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct Pool {
    #[schemars(with = "String")]
    pub cidr: IpNet,
    /// Prefix length of the blocks carved from this pool.
    pub block_size: u8,
    /// A disabled pool hands out no new addresses; existing ones stay.
    #[serde(default)]
    pub disabled: bool,
    /// Labels a node must carry (all of them, equal values) to use this pool; empty
    /// selects every node.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Masquerade traffic from the pool to destinations outside every pool and
    /// node (bgpd's dataplane task, nftables table `inet wren`).
    #[serde(default)]
    pub nat_outgoing: bool,
    /// When traffic to this pool's blocks on other nodes goes through `vxlan.wren`.
    #[serde(default)]
    #[schemars(schema_with = "crate::schema::vxlan_mode")]
    pub vxlan_mode: VxlanMode,
    /// The VXLAN Network Identifier (24 bits).
    #[serde(default = "default_vxlan_vni")]
    pub vxlan_vni: u32,
    /// The VXLAN UDP port.
    #[serde(default = "default_vxlan_port")]
    pub vxlan_port: u16,
}

/// Largest VXLAN Network Identifier (24 bits, RFC 7348).
pub const MAX_VXLAN_VNI: u32 = (1 << 24) - 1;

fn default_vxlan_vni() -> u32 {
    DEFAULT_VXLAN_VNI
}

fn default_vxlan_port() -> u16 {
    DEFAULT_VXLAN_PORT
}

impl Pool {
    /// A pool with the family's default block size.
    pub fn new(cidr: IpNet) -> Pool {
        let block_size = match cidr {
            IpNet::V4(_) => DEFAULT_V4_BLOCK_SIZE,
            IpNet::V6(_) => DEFAULT_V6_BLOCK_SIZE,
        };
        Pool {
            cidr,
            block_size,
            disabled: false,
            node_selector: BTreeMap::new(),
            nat_outgoing: false,
            vxlan_mode: VxlanMode::Never,
            vxlan_vni: DEFAULT_VXLAN_VNI,
            vxlan_port: DEFAULT_VXLAN_PORT,
        }
    }

    /// The pool `settings` ask for, the defaults for what they leave out (not yet
    /// checked: see [`Pool::validate`]).
    pub fn from_settings(settings: &PoolSettings) -> Pool {
        let mut pool = Pool::new(settings.cidr);
        if let Some(size) = settings.block_size {
            pool.block_size = size;
        }
        pool.disabled = settings.disabled;
        pool.node_selector = settings.node_selector.clone();
        pool.nat_outgoing = settings.nat_outgoing;
        pool.vxlan_mode = settings.vxlan_mode;
        if let Some(vni) = settings.vxlan_vni {
            pool.vxlan_vni = vni;
        }
        if let Some(port) = settings.vxlan_port {
            pool.vxlan_port = port;
        }
        pool
    }

    /// Parses a pool CIDR given by a user (`10.244.0.0/16`), with one clear error.
    pub fn parse_cidr(text: &str) -> Result<IpNet, IpamError> {
        let bad = |reason: String| IpamError::BadPool {
            cidr: text.to_string(),
            reason,
        };
        let cidr: IpNet = text.trim().parse().map_err(|_| {
            bad(String::from(
                "not a CIDR such as 10.244.0.0/16 or fd00:10:244::/56",
            ))
        })?;
        if cidr.trunc() != cidr {
            return Err(bad(format!(
                "host bits are set (did you mean {}?)",
                cidr.trunc()
            )));
        }
        Ok(cidr)
    }

    pub fn family(&self) -> Family {
        Family::of(&self.cidr)
    }

    /// Why this pool cannot encapsulate beside `other`: both are VXLAN pools of one
    /// family with another VNI or port (the family's one VXLAN device takes one VNI
    /// and one port); `None` when they can.
    pub fn vxlan_conflict(&self, other: &Pool) -> Option<String> {
        let both = self.vxlan_mode.encapsulates()
            && other.vxlan_mode.encapsulates()
            && self.family() == other.family();
        if !both || (self.vxlan_vni, self.vxlan_port) == (other.vxlan_vni, other.vxlan_port) {
            return None;
        }
        Some(format!(
            "vxlan_vni {} and vxlan_port {} differ from VXLAN pool {}'s {} and {}: one VXLAN device serves every {} pool",
            self.vxlan_vni,
            self.vxlan_port,
            other.cidr,
            other.vxlan_vni,
            other.vxlan_port,
            self.family()
        ))
    }

    /// Checks the CIDR and block size.
    pub fn validate(&self) -> Result<(), IpamError> {
        let bad = |reason: String| IpamError::BadPool {
            cidr: self.cidr.to_string(),
            reason,
        };
        if self.cidr.trunc() != self.cidr {
            return Err(bad(format!(
                "host bits are set (did you mean {}?)",
                self.cidr.trunc()
            )));
        }
        let range = match self.family() {
            Family::Ipv4 => V4_BLOCK_SIZES,
            Family::Ipv6 => V6_BLOCK_SIZES,
        };
        if !range.contains(&self.block_size) {
            return Err(bad(format!(
                "block size {} is outside {}-{} for {}",
                self.block_size,
                range.start(),
                range.end(),
                self.family()
            )));
        }
        if self.block_size < self.cidr.prefix_len() {
            return Err(bad(format!(
                "block size /{} is larger than the pool /{}",
                self.block_size,
                self.cidr.prefix_len()
            )));
        }
        if !(1..=MAX_VXLAN_VNI).contains(&self.vxlan_vni) {
            return Err(bad(format!(
                "vxlan_vni {} is outside 1-{MAX_VXLAN_VNI}",
                self.vxlan_vni
            )));
        }
        if self.vxlan_port == 0 {
            return Err(bad(String::from("vxlan_port 0 is not a UDP port")));
        }
        Ok(())
    }

    /// Whether two pools share any address.
    pub fn overlaps(&self, other: &IpNet) -> bool {
        self.cidr.contains(&other.network()) || other.contains(&self.cidr.network())
    }

    /// Whether this pool hands out addresses to a node with these labels.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }

    /// Number of addresses in the pool.
    pub fn size(&self) -> u128 {
        1u128 << (self.family().bits() - self.cidr.prefix_len()).min(127)
    }

    /// Number of blocks in the pool.
    pub fn block_count(&self) -> u128 {
        1u128 << (self.block_size - self.cidr.prefix_len()).min(127)
    }

    /// The block with this index (0 ..= block_count - 1).
    pub fn block_at(&self, index: u128) -> IpNet {
        let host_bits = self.family().bits() - self.block_size;
        let base = to_u128(&self.cidr.network()) + (index << host_bits);
        net_from(self.family(), base, self.block_size)
    }

    /// The block of this pool containing `addr`, if the pool contains it.
    pub fn block_containing(&self, addr: &IpAddr) -> Option<IpNet> {
        if !self.cidr.contains(addr) {
            return None;
        }
        Some(net_from(self.family(), to_u128(addr), self.block_size))
    }

    /// The index of a block of this pool.
    pub fn block_index(&self, block: &IpNet) -> u128 {
        let host_bits = self.family().bits() - self.block_size;
        (to_u128(&block.network()) - to_u128(&self.cidr.network())) >> host_bits
    }
}

/// The pools, sorted by CIDR, whose VNI or port differs from their family's first
/// VXLAN pool (whose VNI and port the family's device takes): one line each, naming
/// both pools.
pub fn vxlan_conflicts(pools: &[Pool]) -> Vec<String> {
    let mut conflicts = Vec::new();
    for (index, pool) in pools.iter().enumerate() {
        let first = pools[..index]
            .iter()
            .find(|first| first.vxlan_mode.encapsulates() && first.family() == pool.family());
        if let Some(reason) = first.and_then(|first| pool.vxlan_conflict(first)) {
            conflicts.push(format!("pool {}: {reason}", pool.cidr));
        }
    }
    conflicts
}

/// Parses `zone=a,rack=r1` (an empty text selects every node).
pub fn parse_node_selector(text: &str) -> Result<BTreeMap<String, String>, IpamError> {
    let mut labels = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| IpamError::BadPool {
            cidr: String::from("(node selector)"),
            reason: format!("{pair:?} is not LABEL=VALUE"),
        })?;
        if key.trim().is_empty() {
            return Err(IpamError::BadPool {
                cidr: String::from("(node selector)"),
                reason: format!("{pair:?} has an empty label name"),
            });
        }
        labels.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(labels)
}

/// The selector as `zone=a,rack=r1`, or `all()` when it selects every node.
pub fn format_node_selector(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return String::from("all()");
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The network of `prefix_len` bits containing the address `value`.
fn net_from(family: Family, value: u128, prefix_len: u8) -> IpNet {
    match addr_from(family, value) {
        IpAddr::V4(a) => IpNet::V4(Ipv4Net::new_assert(a, prefix_len).trunc()),
        IpAddr::V6(a) => IpNet::V6(Ipv6Net::new_assert(a, prefix_len).trunc()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool(cidr: &str, mode: VxlanMode, vni: u32, port: u16) -> Pool {
        Pool {
            vxlan_mode: mode,
            vxlan_vni: vni,
            vxlan_port: port,
            ..Pool::new(cidr.parse().unwrap())
        }
    }

    #[test]
    fn vxlan_pools_of_a_family_must_share_the_first_ones_vni_and_port() {
        let pools = [
            pool("10.1.0.0/16", VxlanMode::Never, 9, 9),
            pool("10.2.0.0/16", VxlanMode::Always, 4096, 4789),
            pool("10.3.0.0/16", VxlanMode::CrossSubnet, 4096, 4789),
            pool("10.4.0.0/16", VxlanMode::Always, 5000, 4789),
            pool("10.5.0.0/16", VxlanMode::Never, 5000, 4789),
            pool("fd00:1::/48", VxlanMode::Always, 7, 4790),
            pool("fd00:2::/48", VxlanMode::Always, 7, 4791),
        ];
        assert_eq!(
            vxlan_conflicts(&pools),
            [
                "pool 10.4.0.0/16: vxlan_vni 5000 and vxlan_port 4789 differ from VXLAN pool 10.2.0.0/16's 4096 and 4789: one VXLAN device serves every IPv4 pool",
                "pool fd00:2::/48: vxlan_vni 7 and vxlan_port 4791 differ from VXLAN pool fd00:1::/48's 7 and 4790: one VXLAN device serves every IPv6 pool",
            ]
        );
        assert_eq!(vxlan_conflicts(&pools[1..3]), Vec::<String>::new());
    }
}
