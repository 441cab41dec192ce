//! The overlay a snapshot asks for on one node (pure).
//!
//! Per family with a pool whose `vxlan_mode` encapsulates: the device (VNI and port
//! of the family's first such pool, by CIDR: `Snapshot::vxlan_pool`), on the interface holding this node's
//! registered underlay address of the family, once this node has a tunnel endpoint
//! of the family in the registry (until then, nothing of that family). Every other
//! node with a tunnel endpoint and an underlay address of the family is a peer.
//! Every remote block of an encapsulating pool gets a route: through the tunnel,
//! or, with `cross_subnet` and an owner on the parent's subnet, straight to the
//! owner's underlay address. So does every address of such a pool that another
//! node borrowed (a /32 or /128 to its user, strict affinity off), whoever owns
//! its block: without BGP nothing else tells where that pod lives.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{Device, InterfaceAddress, Overlay, OverlayRoute, Parent, Peer, Via, device_name};
use crate::error::Error;
use crate::mtu::Encapsulation;
use crate::snapshot::{Node, Pool, Snapshot, VxlanMode};

/// The overlay `snapshot` asks for on `node`, given the host's interface addresses.
/// An error names the family's device and what is missing (this node's underlay
/// address, the interface holding it) or refused (a /32 or /128 underlay address
/// with `cross_subnet`, calico#4254).
pub fn desired(
    snapshot: &Snapshot,
    node: &str,
    interfaces: &[InterfaceAddress],
) -> Result<Overlay, Error> {
    let mut overlay = Overlay::default();
    let this = snapshot.nodes.iter().find(|n| n.name == node);
    for ipv4 in [true, false] {
        let pools: Vec<&Pool> = snapshot
            .pools
            .iter()
            .filter(|pool| pool.vxlan_mode.encapsulates() && is_ipv4(&pool.cidr.addr()) == ipv4)
            .collect();
        let Some(first) = snapshot.vxlan_pool(ipv4) else {
            continue;
        };
        let Some(vtep) = this.and_then(|n| vtep_of(n, ipv4)) else {
            continue;
        };
        let name = device_name(ipv4);
        let local = this
            .and_then(|n| underlay_of(n, ipv4))
            .ok_or_else(|| Error::Overlay {
                device: name,
                problem: format!(
                    "node {node} has no IPv{} address in the registry",
                    family(ipv4)
                ),
            })?;
        let held = interfaces
            .iter()
            .find(|i| i.address == local)
            .ok_or_else(|| Error::Overlay {
                device: name,
                problem: format!("no interface holds the node's underlay address {local}"),
            })?;
        let subnet = IpNet::new(local, held.prefix_len)
            .map_err(|_| Error::Overlay {
                device: name,
                problem: format!("{local}/{} is not a prefix", held.prefix_len),
            })?
            .trunc();
        let cross_subnet = pools.iter().any(|p| p.vxlan_mode == VxlanMode::CrossSubnet);
        if cross_subnet && held.prefix_len == subnet.max_prefix_len() {
            return Err(Error::Overlay {
                device: name,
                problem: format!(
                    "the underlay address {local} is a /{} on {}, so cross_subnet cannot tell which nodes share its subnet (give the interface its real prefix)",
                    held.prefix_len, held.name
                ),
            });
        }
        let overhead = if ipv4 {
            Encapsulation::VxlanIpv4
        } else {
            Encapsulation::VxlanIpv6
        }
        .overhead();
        let peers = snapshot
            .nodes
            .iter()
            .filter(|n| n.name != node)
            .filter_map(|n| {
                let vtep = vtep_of(n, ipv4)?;
                Some(Peer {
                    node: n.name.clone(),
                    tunnel_address: vtep.tunnel_address,
                    mac: vtep.mac,
                    underlay: underlay_of(n, ipv4)?,
                })
            })
            .collect::<Vec<_>>();
        // The remote blocks, then the addresses other nodes borrowed (from any
        // block, this node's too: the /32 or /128 is more specific than the block's
        // route or blackhole). This node's own borrowed addresses get nothing here:
        // its pods' host routes hold them.
        let blocks = snapshot.blocks.iter().map(|b| (b.block, &b.node));
        let borrowed = snapshot
            .borrowed
            .iter()
            .map(|b| (IpNet::from(b.address), &b.node));
        for (prefix, user) in blocks.chain(borrowed) {
            let Some(pool) = pools.iter().find(|p| p.cidr.contains(&prefix)) else {
                continue;
            };
            if *user == node {
                continue;
            }
            let Some(peer) = peers.iter().find(|p| p.node == *user) else {
                continue;
            };
            let via =
                if pool.vxlan_mode == VxlanMode::CrossSubnet && subnet.contains(&peer.underlay) {
                    Via::Direct {
                        address: peer.underlay,
                        device: held.name.clone(),
                    }
                } else {
                    Via::Tunnel {
                        tunnel_address: peer.tunnel_address,
                        device: name,
                    }
                };
            overlay.routes.push(OverlayRoute {
                block: prefix,
                owner: user.clone(),
                owner_addresses: snapshot
                    .nodes
                    .iter()
                    .find(|n| n.name == *user)
                    .map(|n| n.addresses.clone())
                    .unwrap_or_default(),
                via,
            });
        }
        overlay.devices.push(Device {
            name,
            vni: first.vxlan_vni,
            port: first.vxlan_port,
            local,
            parent: Parent {
                index: held.index,
                name: held.name.clone(),
                subnet,
            },
            mac: vtep.mac,
            mtu: held.mtu.saturating_sub(overhead),
            tunnel_address: vtep.tunnel_address,
            peers,
        });
    }
    overlay.routes.sort_by_key(|route| route.block);
    Ok(overlay)
}

fn is_ipv4(address: &IpAddr) -> bool {
    matches!(address, IpAddr::V4(_))
}

fn family(ipv4: bool) -> u8 {
    if ipv4 { 4 } else { 6 }
}

fn vtep_of(node: &Node, ipv4: bool) -> Option<&crate::snapshot::Vtep> {
    node.vteps
        .iter()
        .find(|v| is_ipv4(&v.tunnel_address) == ipv4)
}

/// A node's first registered address of the family that can carry the underlay
/// (not a link-local IPv6 address).
fn underlay_of(node: &Node, ipv4: bool) -> Option<IpAddr> {
    node.addresses.iter().copied().find(|a| match a {
        IpAddr::V4(_) => ipv4,
        IpAddr::V6(v6) => !ipv4 && !v6.is_unicast_link_local(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::snapshot::{BlockOwner, Borrowed, Vtep};

    fn pool(cidr: &str, mode: VxlanMode) -> Pool {
        Pool {
            cidr: cidr.parse().unwrap(),
            nat_outgoing: false,
            vxlan_mode: mode,
            vxlan_vni: 4096,
            vxlan_port: 4789,
        }
    }

    fn node(name: &str, address: &str, tunnel: &str, last: u8) -> Node {
        Node {
            name: name.into(),
            addresses: vec![address.parse().unwrap()],
            vteps: vec![Vtep {
                tunnel_address: tunnel.parse().unwrap(),
                mac: [2, 0, 0, 0, 0, last],
            }],
        }
    }

    fn owner(block: &str, node: &str) -> BlockOwner {
        BlockOwner {
            block: block.parse().unwrap(),
            node: node.into(),
        }
    }

    fn eth0(prefix_len: u8) -> Vec<InterfaceAddress> {
        vec![InterfaceAddress {
            index: 2,
            name: "eth0".into(),
            mtu: 1500,
            address: "192.0.2.1".parse().unwrap(),
            prefix_len,
        }]
    }

    fn cluster(mode: VxlanMode) -> Snapshot {
        Snapshot {
            pools: vec![
                pool("10.244.0.0/16", mode),
                pool("10.96.0.0/16", VxlanMode::Never),
            ],
            nodes: vec![
                node("a", "192.0.2.1", "10.244.0.1", 1),
                node("b", "192.0.2.2", "10.244.1.1", 2),
                node("c", "198.51.100.3", "10.244.2.1", 3),
                // No tunnel endpoint yet: no peer, no route.
                Node {
                    name: "d".into(),
                    addresses: vec!["192.0.2.4".parse().unwrap()],
                    vteps: vec![],
                },
            ],
            blocks: vec![
                owner("10.244.0.0/26", "a"),
                owner("10.244.1.0/26", "b"),
                owner("10.244.2.0/26", "c"),
                owner("10.244.3.0/26", "d"),
                owner("10.96.1.0/26", "b"),
            ],
            borrowed: vec![],
        }
    }

    #[test]
    fn always_sends_every_remote_block_of_the_pool_through_the_tunnel() {
        let overlay = desired(&cluster(VxlanMode::Always), "a", &eth0(24)).unwrap();
        assert_eq!(overlay.devices.len(), 1);
        let device = &overlay.devices[0];
        assert_eq!(device.name, "vxlan.wren");
        assert_eq!((device.vni, device.port, device.mtu), (4096, 4789, 1450));
        assert_eq!(device.tunnel_address.to_string(), "10.244.0.1");
        assert_eq!(device.parent.subnet.to_string(), "192.0.2.0/24");
        let peers: Vec<&str> = device.peers.iter().map(|p| p.node.as_str()).collect();
        assert_eq!(peers, ["b", "c"]);
        let routes: Vec<(String, Via)> = overlay
            .routes
            .iter()
            .map(|r| (r.block.to_string(), r.via.clone()))
            .collect();
        let tunnel = |address: &str| Via::Tunnel {
            tunnel_address: address.parse().unwrap(),
            device: "vxlan.wren",
        };
        assert_eq!(
            routes,
            [
                ("10.244.1.0/26".to_string(), tunnel("10.244.1.1")),
                ("10.244.2.0/26".to_string(), tunnel("10.244.2.1")),
            ]
        );
    }

    #[test]
    fn borrowed_addresses_go_to_the_node_that_uses_them() {
        let borrowed = |address: &str, node: &str| Borrowed {
            address: address.parse().unwrap(),
            node: node.into(),
        };
        let mut snapshot = cluster(VxlanMode::CrossSubnet);
        snapshot.borrowed = vec![
            // c's pod in a's block: a routes it to c rather than to its blackhole.
            borrowed("10.244.0.5", "c"),
            // b's pod in c's block: a sends it to b, not to c.
            borrowed("10.244.2.7", "b"),
            // a's own pod in b's block: its host route holds it.
            borrowed("10.244.1.9", "a"),
            // d has no tunnel endpoint; a never pool is BGP's.
            borrowed("10.244.1.10", "d"),
            borrowed("10.96.1.3", "c"),
        ];
        let overlay = desired(&snapshot, "a", &eth0(24)).unwrap();
        let routes: Vec<(String, &str, &Via)> = overlay
            .routes
            .iter()
            .map(|r| (r.block.to_string(), r.owner.as_str(), &r.via))
            .collect();
        let tunnel = Via::Tunnel {
            tunnel_address: "10.244.2.1".parse().unwrap(),
            device: "vxlan.wren",
        };
        let direct = Via::Direct {
            address: "192.0.2.2".parse().unwrap(),
            device: "eth0".into(),
        };
        assert_eq!(
            routes,
            [
                ("10.244.0.5/32".to_string(), "c", &tunnel),
                ("10.244.1.0/26".to_string(), "b", &direct),
                ("10.244.2.0/26".to_string(), "c", &tunnel),
                ("10.244.2.7/32".to_string(), "b", &direct),
            ]
        );
    }

    #[test]
    fn cross_subnet_routes_the_shared_subnet_natively() {
        let overlay = desired(&cluster(VxlanMode::CrossSubnet), "a", &eth0(24)).unwrap();
        let vias: Vec<&Via> = overlay.routes.iter().map(|r| &r.via).collect();
        assert_eq!(
            vias,
            [
                &Via::Direct {
                    address: "192.0.2.2".parse().unwrap(),
                    device: "eth0".into()
                },
                &Via::Tunnel {
                    tunnel_address: "10.244.2.1".parse().unwrap(),
                    device: "vxlan.wren"
                },
            ]
        );
    }

    #[test]
    fn a_host_prefix_underlay_is_refused_with_cross_subnet_only() {
        let error = desired(&cluster(VxlanMode::CrossSubnet), "a", &eth0(32)).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("192.0.2.1 is a /32 on eth0"), "{text}");
        assert!(text.contains("vxlan.wren"), "{text}");
        assert!(desired(&cluster(VxlanMode::Always), "a", &eth0(32)).is_ok());
    }

    #[test]
    fn nothing_without_a_vxlan_pool_or_an_endpoint_and_errors_name_what_is_missing() {
        assert_eq!(
            desired(&cluster(VxlanMode::Never), "a", &eth0(24)).unwrap(),
            Overlay::default()
        );
        assert_eq!(
            desired(&cluster(VxlanMode::Always), "d", &eth0(24)).unwrap(),
            Overlay::default()
        );
        let error = desired(&cluster(VxlanMode::Always), "b", &eth0(24)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("no interface holds the node's underlay address 192.0.2.2"),
            "{error}"
        );
    }
}
