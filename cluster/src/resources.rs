//! The BGP custom resources (group `wren.io`, version `v1alpha1`, cluster-scoped), as
//! Calico's datastore has them: these types are the one source of their CRDs.
//!
//! - `BGPConfiguration` (the one named `default`): the cluster's AS number, whether
//!   nodes mesh, the BGP port, the communities of every node's blocks.
//! - `BGPPeer`: a peer (`peerIP`) or a set of nodes (`peerSelector`), for one node
//!   (`node`), the nodes matching `nodeSelector`, or every node.
//!
//! Strings that hold addresses, communities and the like stay strings here: the
//! API server's schema cannot check them, so [`crate::translate`] does, and a bad
//! one refuses that resource alone (its status says why), never the whole list.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API group of Wren's resources.
pub const GROUP: &str = "wren.io";
/// The CustomResourceDefinitions of the BGP resources (rendered into
/// `deploy/crds.yaml` beside the IPAM ones).
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![BgpConfiguration::crd(), BgpPeer::crd()]
}

/// The one `BGPConfiguration` bgpd reads.
pub const DEFAULT_CONFIGURATION: &str = "default";

/// `BGPConfiguration.spec`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "BGPConfiguration",
    plural = "bgpconfigurations",
    root = "BgpConfiguration",
    status = "ResourceStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct BgpConfigurationSpec {
    /// The AS of every node that sets none itself (annotation or label `wren.io/asn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<u32>,
    /// Whether every node peers with every other (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    /// The TCP port bgpd listens on (default 179).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen_port: Option<u16>,
    /// Communities (`AS:VALUE`) attached to the routes of every node's IPAM blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// `BGPPeer.spec`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "wren.io",
    version = "v1alpha1",
    kind = "BGPPeer",
    plural = "bgppeers",
    root = "BgpPeer",
    status = "ResourceStatus",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Peer IP","type":"string","jsonPath":".spec.peerIP"}"#,
    printcolumn = r#"{"name":"ASN","type":"integer","jsonPath":".spec.asNumber"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".spec.node"}"#,
    printcolumn = r#"{"name":"Node Selector","type":"string","jsonPath":".spec.nodeSelector.matchLabels"}"#,
    printcolumn = r#"{"name":"Peer Selector","type":"string","jsonPath":".spec.peerSelector.matchLabels"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BgpPeerSpec {
    /// The one node this peering is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The nodes this peering is for; with neither `node` nor this: every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    /// The peer's address (exclusive with `peerSelector`).
    #[serde(default, rename = "peerIP", skip_serializing_if = "Option::is_none")]
    pub peer_ip: Option<String>,
    /// Peer with every node matching these labels (a route reflector topology),
    /// at the addresses the nodes registered, with their AS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_selector: Option<LabelSelector>,
    /// The peer's AS; required with `peerIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<u32>,
    /// Hold time in seconds: 0, or 3 to 65535 (default 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<u32>,
    /// `ipv4`, `ipv6` (default: the family of the peer's address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub families: Option<Vec<String>>,
    /// The TCP-MD5 key, from a Secret in bgpd's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    /// GTSM (RFC 5082): TTL 255 both ways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_security: Option<bool>,
    /// RFC 8950: IPv4 routes with IPv6 next hops over an IPv6 session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_next_hop: Option<bool>,
    /// Most prefixes accepted per family; one more closes the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefixes: Option<u32>,
    /// This node reflects routes to the peer (RFC 4456).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_reflector_client: Option<bool>,
    /// `UseNodeIP` (default: the node's address of the peer's family) or `None`
    /// (the kernel picks the source address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_address: Option<String>,
    /// BFD (RFC 5880) with the peer: present (`{}` for FRR's defaults, 300 ms, 300
    /// ms, 3) turns it on; the session closes within the detection time of a path
    /// failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<Bfd>,
}

/// `BGPPeer.spec.bfd`: bgpd's `bfd = { min_tx, min_rx, multiplier, on_down }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bfd {
    /// Desired minimum transmit interval, 10 to 60000 milliseconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tx: Option<u32>,
    /// Required minimum receive interval, 10 to 60000 milliseconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rx: Option<u32>,
    /// Detection time multiplier, 1 to 255 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<u32>,
    /// `Reset` (default: the peer's routes go) or `Graceful` (they stay, stale, as
    /// graceful restart keeps them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_down: Option<String>,
}

/// `BGPPeer.spec.password`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Password {
    pub secret_key_ref: SecretKeyRef,
}

/// A key of a Secret in bgpd's own namespace.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// The status bgpd writes: one `Accepted` condition (`False` with the reason when the
/// resource is refused).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
