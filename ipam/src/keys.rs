//! The key layout in the datastore, and the validation of every name that becomes part
//! of a key (node names and handles), so that keys stay ASCII and unambiguous.
//!
//! ```text
//! /wren/v1/ipam/config                         IpamConfig
//! /wren/v1/ipam/pools/10.244.0.0-16            Pool
//! /wren/v1/ipam/blocks/10.244.3.64-26          Block
//! /wren/v1/ipam/affinities/NODE/10.244.3.64-26 Affinity (pending or confirmed)
//! /wren/v1/ipam/handles/HANDLE                 HandleRecord
//! /wren/v1/nodes/NODE                          Node
//! ```

use ipnet::IpNet;

/// A name that cannot be part of a key (wrapped by `IpamError::BadName`).
#[derive(Debug, thiserror::Error)]
#[error("invalid {what} {value:?}: {reason}")]
pub struct BadName {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Every IPAM key (pools, blocks, affinities, handles, config) is under this prefix.
pub const IPAM: &str = "/wren/v1/ipam/";
pub const CONFIG: &str = "/wren/v1/ipam/config";
pub const POOLS: &str = "/wren/v1/ipam/pools/";
pub const BLOCKS: &str = "/wren/v1/ipam/blocks/";
pub const AFFINITIES: &str = "/wren/v1/ipam/affinities/";
pub const HANDLES: &str = "/wren/v1/ipam/handles/";
/// The node registry.
pub const NODES: &str = "/wren/v1/nodes/";

pub fn pool(cidr: &IpNet) -> String {
    format!("{POOLS}{}", cidr_part(cidr))
}

pub fn block(cidr: &IpNet) -> String {
    format!("{BLOCKS}{}", cidr_part(cidr))
}

pub fn affinity(node: &str, cidr: &IpNet) -> String {
    format!("{AFFINITIES}{node}/{}", cidr_part(cidr))
}

/// The prefix of one node's affinities.
pub fn node_affinities(node: &str) -> String {
    format!("{AFFINITIES}{node}/")
}

pub fn handle(handle: &str) -> String {
    format!("{HANDLES}{handle}")
}

pub fn node(name: &str) -> String {
    format!("{NODES}{name}")
}

fn cidr_part(cidr: &IpNet) -> String {
    cidr.to_string().replace('/', "-")
}

/// A node name: 1-253 characters of letters, digits, `.`, `-` and `_` (a Kubernetes
/// node name or host name).
pub fn validate_node(name: &str) -> Result<(), BadName> {
    validate("node name", name, 253, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
    })
}

/// A handle: 1-512 characters of letters, digits, `.`, `-`, `_`, `:` and `@` (a CNI
/// container id plus interface name, or a name such as `wren-gateway.NODE.ipv4`).
pub fn validate_handle(handle: &str) -> Result<(), BadName> {
    validate("handle", handle, 512, |c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '@')
    })
}

fn validate(
    what: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), BadName> {
    let bad = |reason| BadName {
        what,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(bad("empty"));
    }
    if value.len() > max {
        return Err(bad("too long"));
    }
    if !value.chars().all(allowed) {
        return Err(bad(
            "only letters, digits and . - _ (and : @ in handles) are allowed",
        ));
    }
    Ok(())
}
