//! The smaller stored records (affinities, handles, the IPAM configuration, registered
//! nodes) and the JSON encoding of every record, with decoding errors that name the key.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::IpamError;
use crate::store::Entry;

/// A node's claim on a block CIDR. Claims are two-phase: `Pending` is written first
/// (claiming the CIDR against other nodes), then the block is created and the affinity
/// confirmed in one transaction. A pending affinity left by a crash is completed (or
/// dropped when another node won the block) by the node's next operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AffinityState {
    Pending,
    Confirmed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affinity {
    pub node: String,
    pub cidr: IpNet,
    pub state: AffinityState,
}

/// The blocks holding a handle's addresses, with how many in each; written in the
/// same transaction as the blocks, so release by handle finds every address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandleRecord {
    pub handle: String,
    pub blocks: BTreeMap<IpNet, u32>,
}

impl HandleRecord {
    pub fn total(&self) -> u64 {
        self.blocks.values().map(|c| u64::from(*c)).sum()
    }

    pub fn add(&mut self, block: IpNet, count: u32) {
        *self.blocks.entry(block).or_insert(0) += count;
    }

    pub fn remove(&mut self, block: &IpNet, count: u32) {
        if let Some(c) = self.blocks.get_mut(block) {
            *c = c.saturating_sub(count);
            if *c == 0 {
                self.blocks.remove(block);
            }
        }
    }
}

/// Cluster-wide allocation settings, stored at `keys::CONFIG`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamConfig {
    /// When set, a node never borrows addresses from another node's block.
    #[serde(default)]
    pub strict_affinity: bool,
    /// Most blocks a node may own per family (0: no limit).
    #[serde(default)]
    pub max_blocks_per_node: u32,
}

/// A node in the registry (`keys::NODES`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: String,
    /// Addresses other nodes peer with.
    pub addresses: Vec<IpAddr>,
    pub asn: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// What a node uses: the blocks it owns and the addresses it borrowed from other
/// nodes' blocks (what bgpd advertises).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeAllocations {
    pub node: String,
    pub blocks: BTreeSet<IpNet>,
    pub borrowed: BTreeSet<IpAddr>,
    /// The store revision this was read at.
    pub revision: u64,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Records are plain structs of strings, numbers and maps with string keys:
    // serializing them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

pub(crate) fn decode<T: DeserializeOwned>(url: &str, entry: &Entry) -> Result<T, IpamError> {
    serde_json::from_slice(&entry.value).map_err(|e| IpamError::Corrupt {
        url: url.to_string(),
        key: entry.key.clone(),
        reason: e.to_string(),
    })
}
