//! The node-to-node mesh: from the node registry to the neighbors this node peers
//! with.
//!
//! One session per other node and address family that both nodes registered an
//! address of (as Calico's mesh does): to the other node's first address of the
//! family, from ours (`local_address`, so the other side sees the address it expects
//! and accepts the connection). The remote AS is the node's registered ASN: iBGP
//! within one AS, eBGP between nodes of different ones. Everything else keeps the
//! defaults of a configured neighbor (both sides connect; collision detection keeps
//! one connection).

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::config::{Asn, NeighborConfig, SessionOptions};

/// The mesh neighbors of node `me` with `addresses`, given every registered node
/// (sorted by name, as the registry lists them). A node's address that is one of
/// ours, or that an earlier node registered too, is skipped (with a warning).
pub fn neighbors(me: &str, addresses: &[IpAddr], nodes: &[ipam::Node]) -> Vec<NeighborConfig> {
    let mut taken: BTreeSet<IpAddr> = addresses.iter().copied().collect();
    let mut out = Vec::new();
    for node in nodes.iter().filter(|node| node.name != me) {
        let Some(asn) =
            Asn::new(node.asn).filter(|asn| asn.get() != u32::from(bgp_proto::AS_TRANS))
        else {
            tracing::warn!(node = %node.name, asn = node.asn, "node mesh: node registered with an unusable AS number; not peering");
            continue;
        };
        for ipv4 in [true, false] {
            let Some(local) = addresses.iter().find(|a| a.is_ipv4() == ipv4) else {
                continue;
            };
            let Some(remote) = node.addresses.iter().find(|a| a.is_ipv4() == ipv4) else {
                continue;
            };
            if !taken.insert(*remote) {
                tracing::warn!(node = %node.name, address = %remote, "node mesh: address already used by this node or another; not peering");
                continue;
            }
            out.push(neighbor(&node.name, *remote, asn, *local));
        }
    }
    out
}

fn neighbor(name: &str, address: IpAddr, remote_asn: Asn, local: IpAddr) -> NeighborConfig {
    NeighborConfig {
        address,
        session: SessionOptions {
            description: Some(format!("node {name}")),
            local_address: Some(local),
            ..SessionOptions::new(remote_asn)
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn node(name: &str, addresses: &[&str], asn: u32) -> ipam::Node {
        ipam::Node {
            name: name.into(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            asn,
            labels: Default::default(),
            vteps: vec![],
        }
    }

    #[test]
    fn one_session_per_other_node_and_shared_family() {
        let ours: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        let nodes = [
            node("a", &["10.0.0.1", "fd00::1"], 64512),
            node("b", &["10.0.0.2", "fd00::2"], 64512),
            node("c", &["10.0.0.3"], 65003),
            node("d", &["fd00::4"], 64512),
        ];
        let list = neighbors("a", &ours, &nodes);
        let summary: Vec<(String, u32, String, String)> = list
            .iter()
            .map(|n| {
                (
                    n.address.to_string(),
                    n.remote_asn.get(),
                    n.local_address.unwrap().to_string(),
                    n.description.clone().unwrap(),
                )
            })
            .collect();
        let expected = [
            ("10.0.0.2", 64512, "10.0.0.1", "node b"),
            ("fd00::2", 64512, "fd00::1", "node b"),
            ("10.0.0.3", 65003, "10.0.0.1", "node c"),
            ("fd00::4", 64512, "fd00::1", "node d"),
        ];
        assert_eq!(
            summary,
            expected
                .iter()
                .map(|(a, asn, l, d)| (a.to_string(), *asn, l.to_string(), d.to_string()))
                .collect::<Vec<_>>()
        );
        // An IPv4-only node peers over IPv4 only.
        let list = neighbors("a", &ours[..1], &nodes);
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|n| n.address.is_ipv4()));
    }

    #[test]
    fn unusable_registrations_are_skipped() {
        let ours: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let nodes = [
            node("b", &["10.0.0.1"], 64512), // claims our address
            node("c", &["10.0.0.3"], 0),     // AS 0
            node("d", &["10.0.0.3"], 64512), // fine
            node("e", &["10.0.0.3"], 64512), // d's address again
            node("f", &["10.0.0.6"], 23456), // AS_TRANS
        ];
        let list = neighbors("a", &ours, &nodes);
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].description.as_deref(), Some("node d"));
        assert!(neighbors("a", &ours, &[]).is_empty());
    }
}
