//! The CNI IPAM plugin (`wren-ipam`), CNI spec 1.1: ADD, DEL, CHECK, STATUS, GC and
//! VERSION.
//!
//! The runtime (or a main plugin such as `ptp`) runs the binary with `CNI_*`
//! environment variables and the network configuration on stdin; the plugin prints a
//! result (or a CNI error object) on stdout. [`run`] is the whole plugin minus the
//! process plumbing, so tests can drive it in-process too.
//!
//! - The handle of a pod's addresses is `CNI_CONTAINERID.CNI_IFNAME`. ADD for a
//!   handle that already has addresses returns them again.
//! - The node is `ipam.node`, else `NODENAME`, else the host name (bgpd's rule,
//!   `crate::node_name`).
//! - ADD assigns one address per family that has an enabled pool selecting the node.
//!   When `CNI_ARGS` names the pod (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`,
//!   `K8S_POD_UID`), the handle's record names it, for the collector's pod-gone rule.
//! - Without `"gateway": true` (the `wren` main plugin) each address is returned as a
//!   host prefix (`/32`, `/128`) without gateway or route: the main plugin routes the
//!   pod, and no address is used but the pods'.
//! - With `"gateway": true` (`ptp`) the gateway is the node's own address of that family
//!   (handle `wren-gateway.NODE.ipv4|ipv6`, assigned once per node): `ptp` puts it on
//!   the host side of every pod's veth. Each address is returned with the longest prefix
//!   that holds both it and the gateway (at most the pool's), so the gateway is on-link
//!   when the routes are installed; the default route points at the gateway.
//! - STATUS fails with code 50 unless the datastore answers and an enabled pool selects
//!   the node. GC releases every address this node uses whose handle belongs to no
//!   attachment of `cni.dev/valid-attachments`; handles beginning `wren-` are Wren's own
//!   (gateways, tunnel addresses) and never collected.
//! - After an ADD or DEL the plugin tells bgpd through its control socket
//!   (`"control_socket"` in the `ipam` object, default `/run/wren/bgpd.sock`, `""` for
//!   none), best effort: see [`notify`].

mod config;
pub mod notify;
mod result;

use std::net::IpAddr;

pub use config::{CniEnv, Command, IpamConf, NetConf};
pub use result::{CniError, CniResult, IpConfig, Route, SUPPORTED_VERSIONS, VersionResult};

use crate::family::Family;
use crate::family::to_u128;
use crate::records::PodReference;
use crate::store::Datastore;
use crate::{Assigned, Ipam, IpamError, StoreError};

/// CNI error codes (spec section "Error").
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const INVALID_ENVIRONMENT: u32 = 4;
    pub const DECODE_FAILED: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot hand out addresses now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// Plugin-specific: the allocation failed (no pool, exhausted, strict affinity...).
    pub const ALLOCATION_FAILED: u32 = 100;
    /// Plugin-specific: CHECK found the container's addresses missing or different.
    pub const CHECK_FAILED: u32 = 101;
}

/// Runs one plugin invocation; `Ok` is the JSON to print on stdout (exit 0), `Err`
/// the error object to print (exit 1).
pub async fn run(env: &CniEnv, stdin: &[u8]) -> Result<String, CniError> {
    if env.command == Command::Version {
        return Ok(VersionResult::new(stdin).to_json());
    }
    let conf = NetConf::parse(stdin)?;
    let version = conf.cni_version.clone();
    let node = conf
        .ipam
        .node_name(env.nodename.as_deref())
        .map_err(|e| e.with_version(&version))?;
    let connected = crate::connect(&conf.ipam.datastore).await;
    if env.command == Command::Status {
        let ipam = connected.map_err(|e| unavailable(&version, &e.to_string()))?;
        return status(&ipam, &conf, &node).await.map(|()| String::new());
    }
    let ipam = connected.map_err(|e| from_ipam(&version, e))?;
    if env.command == Command::Gc {
        let released = gc(&ipam, &conf, &node).await?;
        if released > 0
            && let Some(socket) = conf.ipam.control_socket()
        {
            notify::ipam_changed(socket);
        }
        return Ok(String::new());
    }
    let handle = env.handle().map_err(|e| e.with_version(&version))?;
    let outcome = match env.command {
        Command::Add => add(&ipam, &conf, &node, &handle, env.pod.as_ref()).await,
        Command::Check => return check(&ipam, &conf, &handle).await.map(|()| String::new()),
        _ => {
            ipam.release_handle(&handle)
                .await
                .map_err(|e| from_ipam(&version, e))?;
            Ok(String::new())
        }
    };
    // ADD and DEL tell bgpd (best effort), so it advertises the change at once.
    if let Some(socket) = conf.ipam.control_socket() {
        notify::ipam_changed(socket);
    }
    outcome
}

/// Handles of Wren's own addresses (gateways, tunnel addresses) begin with this; GC
/// never collects them.
pub const RESERVED_HANDLE_PREFIX: &str = "wren-";

fn unavailable(version: &str, reason: &str) -> CniError {
    CniError::new(version, code::NOT_AVAILABLE, reason.to_string())
}

/// STATUS: the datastore answers and at least one enabled pool selects the node.
async fn status<S: Datastore>(ipam: &Ipam<S>, conf: &NetConf, node: &str) -> Result<(), CniError> {
    let version = &conf.cni_version;
    for family in [Family::Ipv4, Family::Ipv6] {
        let pools = ipam
            .usable_pools(node, family)
            .await
            .map_err(|e| unavailable(version, &e.to_string()))?;
        if !pools.is_empty() {
            return Ok(());
        }
    }
    Err(unavailable(
        version,
        &format!(
            "no enabled pool in {} selects node {node}",
            ipam.store().url()
        ),
    ))
}

/// GC: releases the handles of this node's addresses that no valid attachment holds;
/// returns how many were released.
async fn gc<S: Datastore>(ipam: &Ipam<S>, conf: &NetConf, node: &str) -> Result<usize, CniError> {
    let version = &conf.cni_version;
    let valid: std::collections::HashSet<String> = conf
        .valid_attachments
        .as_ref()
        .ok_or_else(|| {
            CniError::new(
                version,
                code::INVALID_CONFIG,
                String::from(
                    "GC needs \"cni.dev/valid-attachments\" (an empty list releases every pod address of the node)",
                ),
            )
        })?
        .iter()
        .map(|a| format!("{}.{}", a.container_id, a.ifname))
        .collect();
    let snapshot = ipam.snapshot().await.map_err(|e| from_ipam(version, e))?;
    let stale: std::collections::BTreeSet<String> = snapshot
        .blocks
        .iter()
        .flat_map(|block| {
            block
                .value
                .allocations
                .values()
                .filter(|a| block.value.user_of(a) == Some(node))
                .map(|a| a.handle.clone())
                .collect::<Vec<_>>()
        })
        .filter(|handle| !handle.starts_with(RESERVED_HANDLE_PREFIX) && !valid.contains(handle))
        .collect();
    for handle in &stale {
        ipam.release_handle(handle)
            .await
            .map_err(|e| from_ipam(version, e))?;
    }
    Ok(stale.len())
}

/// The name of a node's gateway handle for a family.
pub fn gateway_handle(node: &str, family: Family) -> String {
    let family = match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    };
    format!("wren-gateway.{node}.{family}")
}

async fn add<S: Datastore>(
    ipam: &Ipam<S>,
    conf: &NetConf,
    node: &str,
    handle: &str,
    pod: Option<&PodReference>,
) -> Result<String, CniError> {
    // The pod's handle record names it (the collector's pod-gone rule); the gateway's
    // is the node's and names none.
    let assign_pod = |family| async move {
        match pod {
            Some(pod) => ipam.assign_once_for_pod(node, handle, family, pod).await,
            None => ipam.assign_once(node, handle, family).await,
        }
    };
    let version = &conf.cni_version;
    let fail = |e| from_ipam(version, e);
    let mut families = Vec::new();
    for family in [Family::Ipv4, Family::Ipv6] {
        if !ipam
            .usable_pools(node, family)
            .await
            .map_err(fail)?
            .is_empty()
        {
            families.push(family);
        }
    }
    if families.is_empty() {
        return Err(from_ipam(
            version,
            IpamError::NoPool {
                node: node.to_string(),
                family: Family::Ipv4,
            },
        )
        .detail(
            "no enabled IPv4 or IPv6 pool selects this node; add one with `bgpctl ipam pool add`",
        ));
    }
    let mut result = CniResult::new(version);
    if !conf.ipam.gateway {
        for family in families {
            let address = match assign_pod(family).await {
                Ok(assigned) => assigned.first().map(|a| a.address),
                Err(e) => {
                    let _ = ipam.release_handle(handle).await;
                    return Err(fail(e));
                }
            };
            if let Some(address) = address {
                result.push_host(address);
            }
        }
        return Ok(result.to_json());
    }
    for family in families {
        // The node's gateway first: a pod never gets an address it cannot route.
        let assigned = match ipam
            .assign_once(node, &gateway_handle(node, family), family)
            .await
        {
            Ok(gateway) => match assign_pod(family).await {
                Ok(assigned) => Ok((assigned, gateway)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let (assigned, gateway) = match assigned {
            Ok(pair) => pair,
            Err(e) => {
                // Leave nothing behind for a failed ADD (the runtime will DEL, too).
                let _ = ipam.release_handle(handle).await;
                return Err(fail(e));
            }
        };
        let (Some(address), Some(gateway)) = (assigned.first(), gateway.first()) else {
            continue;
        };
        result.push(
            address.address,
            gateway.address,
            prefix_len(address, gateway.address),
        );
    }
    Ok(result.to_json())
}

async fn check<S: Datastore>(ipam: &Ipam<S>, conf: &NetConf, handle: &str) -> Result<(), CniError> {
    let version = &conf.cni_version;
    let ours = ipam
        .addresses_of(handle)
        .await
        .map_err(|e| from_ipam(version, e))?;
    if ours.is_empty() {
        return Err(CniError::new(
            version,
            code::CHECK_FAILED,
            format!("handle {handle} has no address in {}", ipam.store().url()),
        ));
    }
    let pools = ipam.pools().await.map_err(|e| from_ipam(version, e))?;
    for address in conf.previous_addresses()? {
        let in_pool = pools.iter().any(|p| p.cidr.contains(&address));
        if in_pool && !ours.iter().any(|a| a.address == address) {
            return Err(CniError::new(
                version,
                code::CHECK_FAILED,
                format!("address {address} of the previous result is not allocated to {handle}"),
            ));
        }
    }
    Ok(())
}

/// The longest prefix (at most the pool's) that holds both the address and the
/// gateway and of which neither is the first or last address.
fn prefix_len(address: &Assigned, gateway: IpAddr) -> u8 {
    let bits = Family::of_addr(&address.address).bits();
    let (a, g) = (to_u128(&address.address), to_u128(&gateway));
    let common = ((a ^ g) << (128 - u32::from(bits)))
        .leading_zeros()
        .min(u32::from(bits)) as u8;
    let mut len = common.min(address.pool.prefix_len());
    while len > 0 {
        let host_bits = u32::from(bits - len);
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let edge = |v: u128| v & mask == 0 || v & mask == mask;
        if host_bits >= 2 && !edge(a) && !edge(g) {
            break;
        }
        len -= 1;
    }
    len
}

fn from_ipam(version: &str, error: IpamError) -> CniError {
    let code = match &error {
        IpamError::Store(StoreError::BadUrl { .. }) => code::INVALID_CONFIG,
        IpamError::Store(_) | IpamError::Contention { .. } => code::TRY_AGAIN_LATER,
        IpamError::BadName { .. } | IpamError::BadPod { .. } => code::INVALID_ENVIRONMENT,
        _ => code::ALLOCATION_FAILED,
    };
    CniError::new(version, code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assigned(address: &str, pool: &str) -> Assigned {
        Assigned {
            address: address.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            block: pool.parse().unwrap_or_default(),
            pool: pool.parse().unwrap_or_default(),
            sequence: 1,
            borrowed: false,
        }
    }

    #[test]
    fn prefix_holds_address_and_gateway() {
        let gw = |s: &str| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(
            prefix_len(&assigned("10.244.3.5", "10.244.0.0/16"), gw("10.244.3.1")),
            16
        );
        assert_eq!(
            prefix_len(&assigned("10.244.3.5", "10.244.3.0/24"), gw("10.244.3.1")),
            24
        );
        // The pool's last address would be its broadcast address: widen.
        assert_eq!(
            prefix_len(
                &assigned("10.244.255.255", "10.244.0.0/16"),
                gw("10.244.0.1")
            ),
            15
        );
        // The gateway at the pool's first address: widen until it is not the first
        // address either (244 = 0b1111_0100: /13).
        assert_eq!(
            prefix_len(&assigned("10.244.0.7", "10.244.0.0/16"), gw("10.244.0.0")),
            13
        );
        assert_eq!(
            prefix_len(&assigned("fd00::7", "fd00::/64"), gw("fd00::1:1")),
            64
        );
    }
}
