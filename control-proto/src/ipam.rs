//! The operator's IPAM commands as one request type. bgpd runs them for bgpctl
//! (`{"command":"ipam","request":{...}}`), and bgpctl runs them itself with
//! `--datastore URL` when no bgpd runs; both through `ipam::ops::execute`, which
//! answers with the JSON text of the ipam crate's report for the request.
//!
//! ```text
//! {"op":"usage"}                          UsageReport (pools, blocks, borrowed)
//! {"op":"address","address":"10.244.0.5"} AddressInfo or null when free
//! {"op":"check"}                          CheckReport (problems, counts, items)
//! {"op":"release","address":"10.244.0.5"} Released
//! {"op":"release-node","node":"node-b"}   NodeRelease
//! {"op":"pools"}                          [Pool]
//! {"op":"pool-add","cidr":"10.244.0.0/16","block_size":26,"vxlan_mode":"always",...}   Pool
//! {"op":"pool-delete","cidr":"10.244.0.0/16"}   the CIDR
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One IPAM command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum IpamRequest {
    Usage,
    Address {
        address: IpAddr,
    },
    Check,
    Release {
        address: IpAddr,
    },
    ReleaseNode {
        node: String,
    },
    Pools,
    /// `ipam pool add`: the pool's settings as given (the store checks them).
    PoolAdd(PoolSettings),
    PoolDelete {
        cidr: IpNet,
    },
}

/// A pool to add, as the operator gave it (`ipam pool add`, `[[ipam.pool]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    pub cidr: IpNet,
    /// None: the family's default.
    #[serde(default)]
    pub block_size: Option<u8>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default)]
    pub nat_outgoing: bool,
    /// When traffic between the pool's blocks of different nodes is encapsulated in
    /// VXLAN.
    #[serde(default)]
    pub vxlan_mode: VxlanMode,
    /// None: [`DEFAULT_VXLAN_VNI`].
    #[serde(default)]
    pub vxlan_vni: Option<u32>,
    /// None: [`DEFAULT_VXLAN_PORT`].
    #[serde(default)]
    pub vxlan_port: Option<u16>,
    /// Read only to be refused with a clear error: Wren has no IPIP overlay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipip_mode: Option<String>,
}

impl PoolSettings {
    /// A pool of `cidr` with every other setting at its default.
    pub fn new(cidr: IpNet) -> PoolSettings {
        PoolSettings {
            cidr,
            block_size: None,
            disabled: false,
            node_selector: BTreeMap::new(),
            nat_outgoing: false,
            vxlan_mode: VxlanMode::Never,
            vxlan_vni: None,
            vxlan_port: None,
            ipip_mode: None,
        }
    }
}

/// The VXLAN Network Identifier of a pool that does not name one (Calico's).
pub const DEFAULT_VXLAN_VNI: u32 = 4096;
/// The UDP port of a pool that does not name one (IANA's, RFC 7348).
pub const DEFAULT_VXLAN_PORT: u16 = 4789;

/// When a pool's traffic to another node's block is encapsulated in VXLAN (Calico's
/// `vxlanMode`): `always`, `cross_subnet` (only to nodes outside this node's underlay
/// subnet) or `never` (routed natively to the BGP next hop).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VxlanMode {
    Always,
    CrossSubnet,
    #[default]
    Never,
}

impl VxlanMode {
    /// Whether any traffic of the pool is encapsulated.
    pub fn encapsulates(self) -> bool {
        self != VxlanMode::Never
    }

    /// The name as written in configuration (`always`, `cross_subnet`, `never`).
    pub fn as_str(self) -> &'static str {
        match self {
            VxlanMode::Always => "always",
            VxlanMode::CrossSubnet => "cross_subnet",
            VxlanMode::Never => "never",
        }
    }
}

impl std::fmt::Display for VxlanMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for VxlanMode {
    type Err = String;

    fn from_str(text: &str) -> Result<VxlanMode, String> {
        match text {
            "always" => Ok(VxlanMode::Always),
            "cross_subnet" => Ok(VxlanMode::CrossSubnet),
            "never" => Ok(VxlanMode::Never),
            other => Err(format!(
                "vxlan mode {other:?} is not one of always, cross_subnet, never"
            )),
        }
    }
}

/// Why a pool with `ipip_mode` is refused.
pub const IPIP_REFUSED: &str =
    "IPIP (tunl0) is not supported by Wren; use vxlan_mode = \"always\" or \"cross_subnet\"";

impl IpamRequest {
    /// True for requests that change nothing.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            IpamRequest::Usage
                | IpamRequest::Address { .. }
                | IpamRequest::Check
                | IpamRequest::Pools
        )
    }
}
