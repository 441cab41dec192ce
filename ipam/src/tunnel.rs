//! A node's VXLAN tunnel endpoints (issue 15), one per family: the MAC of its
//! `vxlan.wren` (`vxlan-v6.wren`) device and its tunnel address, both recorded in the
//! node registry ([`crate::Node::vteps`]) for the other nodes to program.
//!
//! - The MAC is derived from the node name and the family (FNV-1a, locally
//!   administered, unicast), so it is the same after a restart or a reinstall and
//!   needs no write to stay so.
//! - The tunnel address is an allocation of the handle `wren-vxlan-tunnel.NODE.ipv4`
//!   (`.ipv6`) from a pool with VXLAN on, in one of the node's own blocks when it can
//!   (as Calico takes it), so `show ipam --ip` names it and a remote node's packets to
//!   it follow the block's route. A node whose VXLAN pools are all gone gives it back.

use crate::Ipam;
use crate::claim::node_seed;
use crate::error::IpamError;
use crate::family::Family;
use crate::keys;
use crate::pool::Pool;
use crate::records::{MacAddress, Vtep};
use crate::store::Datastore;

/// The VTEP MAC of `node`'s device of `family`: stable for a node name, locally
/// administered and unicast (the first octet's low bits are `10`).
pub fn vtep_mac(node: &str, family: Family) -> MacAddress {
    let hash = node_seed(&format!("{}/{node}", family_name(family))).to_be_bytes();
    let mut octets = [0; 6];
    octets.copy_from_slice(&hash[2..]);
    octets[0] = (octets[0] & 0xfc) | 0x02;
    MacAddress(octets)
}

/// The handle of a node's tunnel address of a family.
pub fn tunnel_handle(node: &str, family: Family) -> String {
    format!("wren-vxlan-tunnel.{node}.{}", family_name(family))
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

impl<S: Datastore> Ipam<S> {
    /// The node's tunnel endpoint of `family`: its tunnel address (kept when it has
    /// one in a usable VXLAN pool, else assigned from the node's blocks of such a
    /// pool, claiming one when needed, as [`Ipam::assign_once`] does) and its MAC.
    /// `None`, after giving back any tunnel address, when no usable pool of the family
    /// has VXLAN on.
    pub async fn ensure_vtep(&self, node: &str, family: Family) -> Result<Option<Vtep>, IpamError> {
        keys::validate_node(node)?;
        let handle = tunnel_handle(node, family);
        let pools: Vec<Pool> = self
            .usable_pools(node, family)
            .await?
            .into_iter()
            .filter(|pool| pool.vxlan_mode.encapsulates())
            .collect();
        let held = self.addresses_of(&handle).await?;
        if held
            .iter()
            .any(|a| !pools.iter().any(|p| p.cidr.contains(&a.address)))
        {
            let released = self.release_handle(&handle).await?;
            tracing::info!(
                node,
                ?released,
                "vxlan tunnel address no longer in a usable VXLAN pool; released"
            );
        }
        if pools.is_empty() {
            return Ok(None);
        }
        let assigned = self
            .assign_once_from(node, &handle, family, true, None)
            .await?;
        Ok(assigned.first().map(|a| Vtep {
            tunnel_address: a.address,
            mac: vtep_mac(node, family),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_stable_unicast_and_local_per_node_and_family() {
        let a4 = vtep_mac("node-a", Family::Ipv4);
        assert_eq!(a4, vtep_mac("node-a", Family::Ipv4));
        assert_ne!(a4, vtep_mac("node-a", Family::Ipv6));
        assert_ne!(a4, vtep_mac("node-b", Family::Ipv4));
        for mac in [a4, vtep_mac("x", Family::Ipv6)] {
            assert_eq!(mac.0[0] & 0x03, 0x02, "{mac}");
        }
        // Pinned: a change of derivation would move every node's MAC at upgrade.
        assert_eq!(a4.to_string(), "42:ab:c0:58:76:a1");
        assert_eq!(a4.to_string().parse::<MacAddress>().unwrap(), a4);
        let json = serde_json::to_string(&a4).unwrap();
        assert_eq!(serde_json::from_str::<MacAddress>(&json).unwrap(), a4);
    }

    #[test]
    fn bad_macs_are_refused_with_the_text() {
        for text in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "02:00:00:00:00:0g",
            "2:00:00:00:00:000",
        ] {
            let error = text.parse::<MacAddress>().unwrap_err();
            assert!(error.contains("is not a MAC address"), "{error}");
        }
        assert_eq!(
            "02:4A:7f:00:12:9c"
                .parse::<MacAddress>()
                .unwrap()
                .to_string(),
            "02:4a:7f:00:12:9c"
        );
    }
}
