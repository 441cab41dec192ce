//! The smaller stored records (affinities, handles, the IPAM configuration, registered
//! nodes) and the JSON encoding of every record, with decoding errors that name the key.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IpamError;
use crate::store::Entry;

/// The state of a node's affinity to a block CIDR. A claim writes `Pending`, then the
/// block naming the node, then `Confirmed`; a release writes `PendingDeletion`, then
/// deletes the block, then the affinity (see `claim.rs`). Only a confirmed affinity
/// whose block names the node lets the node allocate there; the node's next operation
/// completes or drops every other state left by a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AffinityState {
    Pending,
    Confirmed,
    PendingDeletion,
}

/// The spec of the `BlockAffinity` custom resource (named after the node and the
/// CIDR) on the Kubernetes datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, CustomResource, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "BlockAffinity",
    plural = "blockaffinities",
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#,
    printcolumn = r#"{"name":"CIDR","type":"string","jsonPath":".spec.cidr"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".spec.state"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct Affinity {
    pub node: String,
    #[schemars(with = "String")]
    pub cidr: IpNet,
    pub state: AffinityState,
}

/// A handle's addresses, by block. An assignment lists an address here before its
/// block allocates it, and a release removes it here before the block frees it, so
/// that no allocated address is ever missing from its handle's record (see
/// `handles.rs`). `releasing` is set by a release of the whole handle before it frees
/// the addresses; the record is deleted last. The spec of the `IPAMHandle` custom
/// resource (named after the handle) on the Kubernetes datastore.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, CustomResource, JsonSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "IPAMHandle",
    plural = "ipamhandles"
)]
pub struct HandleRecord {
    pub handle: String,
    #[schemars(schema_with = "crate::schema::addresses_by_block")]
    pub blocks: BTreeMap<IpNet, BTreeSet<IpAddr>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub releasing: bool,
    /// The pod the addresses are for, when the runtime said (`CNI_ARGS`): the
    /// collector releases them once that pod is gone. Absent in records of Wren's own
    /// addresses and in records written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodReference>,
}

/// A pod, as the CNI runtime names it in `CNI_ARGS` (`K8S_POD_NAMESPACE`,
/// `K8S_POD_NAME` and, from containerd and CRI-O, `K8S_POD_UID`). With a uid, a pod
/// of the same name made again is another pod.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodReference {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl PodReference {
    /// Checks the names as Kubernetes does (the namespace an RFC 1123 label, the name
    /// a subdomain) and the uid (at most 128 letters, digits and `-`), so that a
    /// record never names a path the collector would GET.
    pub fn validate(&self) -> Result<(), String> {
        let label = self.namespace.len() <= 63 && !self.namespace.contains('.');
        crate::node_name::validate(&self.namespace)
            .and_then(|()| {
                label
                    .then_some(())
                    .ok_or_else(|| String::from("is not an RFC 1123 label"))
            })
            .map_err(|reason| format!("pod namespace {:?} {reason}", self.namespace))?;
        crate::node_name::validate(&self.name)
            .map_err(|reason| format!("pod name {:?} {reason}", self.name))?;
        if let Some(uid) = &self.uid
            && (uid.is_empty()
                || uid.len() > 128
                || !uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(format!(
                "pod uid {uid:?} is not 1-128 letters, digits and '-'"
            ));
        }
        Ok(())
    }
}

impl fmt::Display for PodReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        match &self.uid {
            Some(uid) => write!(f, " (uid {uid})"),
            None => Ok(()),
        }
    }
}

impl HandleRecord {
    pub fn new(handle: &str) -> HandleRecord {
        HandleRecord {
            handle: handle.to_string(),
            ..HandleRecord::default()
        }
    }

    pub fn total(&self) -> u64 {
        self.blocks.values().map(|c| c.len() as u64).sum()
    }

    /// Whether the record lists every one of `addresses` in `block`.
    pub fn lists(&self, block: &IpNet, addresses: &[IpAddr]) -> bool {
        self.blocks
            .get(block)
            .is_some_and(|listed| addresses.iter().all(|a| listed.contains(a)))
    }

    pub fn add(&mut self, block: IpNet, addresses: &[IpAddr]) {
        self.blocks
            .entry(block)
            .or_default()
            .extend(addresses.iter().copied());
    }

    pub fn remove(&mut self, block: &IpNet, addresses: &[IpAddr]) {
        if let Some(listed) = self.blocks.get_mut(block) {
            for address in addresses {
                listed.remove(address);
            }
            if listed.is_empty() {
                self.blocks.remove(block);
            }
        }
    }
}

/// Cluster-wide allocation settings, stored at `keys::CONFIG`; the spec of the one
/// `IPAMConfig` custom resource, `default`, on the Kubernetes datastore.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, CustomResource, JsonSchema,
)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "IPAMConfig",
    plural = "ipamconfigs"
)]
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
    /// Its VXLAN tunnel endpoints, one per family with a VXLAN pool (see `tunnel.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vteps: Vec<Vtep>,
}

/// An Ethernet address, written `02:4a:7f:00:12:9c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddress(pub [u8; 6]);

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<MacAddress, String> {
        let bad = || format!("{text:?} is not a MAC address such as 02:4a:7f:00:12:9c");
        let mut octets = [0; 6];
        let mut parts = text.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddress(octets))
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<MacAddress, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A node's VXLAN tunnel endpoint of one family, as the registry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vtep {
    /// The address on the node's VXLAN device (from the node's block).
    pub tunnel_address: IpAddr,
    /// The MAC of the node's VXLAN device.
    pub mac: MacAddress,
}

/// What a node uses: the blocks it owns and the addresses it borrowed from other
/// nodes' blocks (what bgpd advertises).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeAllocations {
    pub node: String,
    pub blocks: BTreeSet<IpNet>,
    pub borrowed: BTreeSet<IpAddr>,
    /// Addresses allocated in each of the node's blocks (every block of `blocks`).
    pub in_use: BTreeMap<IpNet, u32>,
    /// The store revision this was read at.
    pub revision: u64,
}

/// Who uses which block and address in the cluster ([`crate::Ipam::block_users`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockUsers {
    /// Every block that has an owner, with its owner, sorted.
    pub owners: Vec<(IpNet, String)>,
    /// Every address used by another node than its block's owner (borrowed, or in
    /// a block without owner), with that node, sorted.
    pub borrowed: Vec<(IpAddr, String)>,
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
