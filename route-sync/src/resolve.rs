//! Next-hop resolution through the kernel's own routes.
//!
//! The resolver mirrors the links and the routes of other protocols in the
//! main table and in our table (from dumps and notifications). A gateway
//! covered by a connected route (no gateway of its own) is installed
//! directly through that route's device; a gateway covered by a route
//! through another gateway is installed through that route's next hops
//! (recursive resolution, one level is enough because the kernel only holds
//! resolved routes). Our own routes are never used, so BGP routes cannot
//! resolve through each other. The default route is used only when the
//! config allows it. A link-local gateway is never resolved: it needs its
//! device (given, or the one of a global/link-local pair whose global
//! address does not resolve).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::message::{KernelKind, KernelNextHop, KernelRoute};
use crate::route::NextHop;
use crate::watch::Link;

/// Why one next hop has no kernel form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HopFailure {
    Unresolvable { gateway: IpAddr, why: String },
    UnknownDevice(String),
}

/// The mirror of links and foreign routes.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    routes: HashMap<IpNet, Vec<KernelRoute>>,
    lengths_v4: BTreeSet<u8>,
    lengths_v6: BTreeSet<u8>,
    links: HashMap<u32, Link>,
    names: HashMap<String, u32>,
    resolve_via_default: bool,
}

impl Resolver {
    pub(crate) fn new(resolve_via_default: bool) -> Resolver {
        Resolver {
            resolve_via_default,
            ..Resolver::default()
        }
    }

    /// Forgets every route (before a fresh dump).
    pub(crate) fn clear_routes(&mut self) {
        self.routes.clear();
        self.lengths_v4.clear();
        self.lengths_v6.clear();
    }

    /// Forgets every link (before a fresh dump).
    pub(crate) fn clear_links(&mut self) {
        self.links.clear();
        self.names.clear();
    }

    /// Applies a foreign route change; true if the mirror changed.
    pub(crate) fn update_route(&mut self, deleted: bool, route: KernelRoute) -> bool {
        let prefix = route.prefix;
        // IPv6 keeps one route per device for the same prefix and metric
        // (fe80::/64 on every link); IPv4 one per prefix, metric and table.
        let device = |r: &KernelRoute| match (&r.prefix, &r.kind) {
            (IpNet::V6(_), KernelKind::Unicast(hops)) => hops.first().map(|h| h.ifindex),
            _ => None,
        };
        let same = |r: &KernelRoute| {
            r.table == route.table && r.metric == route.metric && device(r) == device(&route)
        };
        let list = self.routes.entry(prefix).or_default();
        let before = list.len();
        let changed = if deleted {
            list.retain(|r| !same(r));
            list.len() != before
        } else if let Some(existing) = list.iter_mut().find(|r| same(r)) {
            let changed = *existing != route;
            *existing = route;
            changed
        } else {
            list.push(route);
            true
        };
        if list.is_empty() {
            self.routes.remove(&prefix);
        } else {
            self.lengths(prefix).insert(prefix.prefix_len());
        }
        changed
    }

    /// Applies a link change; true if its up state or name changed.
    pub(crate) fn update_link(&mut self, link: Link) -> bool {
        let old = self.links.remove(&link.index);
        if let Some(old_name) = old.as_ref().and_then(|l| l.name.clone()) {
            self.names.remove(&old_name);
        }
        let changed = match &old {
            None => !link.deleted,
            Some(old) => {
                link.deleted
                    || old.up != link.up
                    || old.running != link.running
                    || (link.name.is_some() && old.name != link.name)
            }
        };
        if !link.deleted {
            let mut link = link;
            if link.name.is_none() {
                link.name = old.and_then(|l| l.name);
            }
            if let Some(name) = &link.name {
                self.names.insert(name.clone(), link.index);
            }
            self.links.insert(link.index, link);
        }
        changed
    }

    /// The name of a link, for snapshots.
    pub(crate) fn link_name(&self, index: u32) -> Option<&str> {
        self.links.get(&index).and_then(|l| l.name.as_deref())
    }

    /// The kernel next hops one desired next hop stands for.
    pub(crate) fn resolve(&self, hop: &NextHop) -> Result<Vec<KernelNextHop>, HopFailure> {
        match hop {
            NextHop::Device(name) => Ok(vec![KernelNextHop {
                gateway: None,
                ifindex: self.device(name)?,
                onlink: false,
            }]),
            NextHop::OnLink { address, device } => Ok(vec![KernelNextHop {
                gateway: Some(*address),
                ifindex: self.device(device)?,
                onlink: true,
            }]),
            NextHop::Gateway {
                address,
                device: Some(name),
            } => Ok(vec![KernelNextHop {
                gateway: Some(*address),
                ifindex: self.device(name)?,
                onlink: false,
            }]),
            NextHop::Gateway {
                address,
                device: None,
            } => self.resolve_gateway(*address),
            NextHop::GlobalOrLinkLocal {
                global,
                link_local,
                device,
            } => match self.resolve_gateway(IpAddr::V6(*global)) {
                Ok(hops) if !hops.is_empty() => Ok(hops),
                _ => Ok(vec![KernelNextHop {
                    gateway: Some(IpAddr::V6(*link_local)),
                    ifindex: self.device(device)?,
                    onlink: false,
                }]),
            },
        }
    }

    fn device(&self, name: &str) -> Result<u32, HopFailure> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| HopFailure::UnknownDevice(name.to_string()))
    }

    fn resolve_gateway(&self, gateway: IpAddr) -> Result<Vec<KernelNextHop>, HopFailure> {
        let unresolvable = |why: String| HopFailure::Unresolvable { gateway, why };
        if let IpAddr::V6(v6) = gateway {
            if v6.is_unicast_link_local() {
                return Err(unresolvable("a link-local next hop needs a device".into()));
            }
        }
        let lengths = match gateway {
            IpAddr::V4(_) => &self.lengths_v4,
            IpAddr::V6(_) => &self.lengths_v6,
        };
        for &length in lengths.iter().rev() {
            let Ok(prefix) = IpNet::new(gateway, length).map(|p| p.trunc()) else {
                continue;
            };
            let Some(candidates) = self.routes.get(&prefix) else {
                continue;
            };
            let mut usable: Vec<&KernelRoute> =
                candidates.iter().filter(|r| self.usable(r)).collect();
            usable.sort_by_key(|r| r.metric);
            let Some(route) = usable.first() else {
                continue;
            };
            if length == 0 && !self.resolve_via_default {
                return Err(unresolvable(
                    "only the default route covers it (resolve_via_default is off)".into(),
                ));
            }
            return match &route.kind {
                KernelKind::Unicast(hops) => Ok(hops
                    .iter()
                    .zip(route.down.iter().chain(std::iter::repeat(&false)))
                    .filter(|(hop, down)| !**down && self.link_up(hop.ifindex))
                    .map(|(hop, _)| KernelNextHop {
                        gateway: Some(hop.gateway.unwrap_or(gateway)),
                        ifindex: hop.ifindex,
                        onlink: false,
                    })
                    .collect()),
                KernelKind::Blackhole => Err(unresolvable(format!(
                    "covered by blackhole route {}",
                    route.prefix
                ))),
                KernelKind::Other(kind) => Err(unresolvable(format!(
                    "covered by route {} of type {kind}",
                    route.prefix
                ))),
            };
        }
        Err(unresolvable("no route covers it in the kernel".into()))
    }

    /// A unicast route with at least one live next hop, or a reject route.
    fn usable(&self, route: &KernelRoute) -> bool {
        match &route.kind {
            KernelKind::Unicast(hops) => hops
                .iter()
                .zip(route.down.iter().chain(std::iter::repeat(&false)))
                .any(|(hop, down)| !*down && self.link_up(hop.ifindex)),
            _ => true,
        }
    }

    /// Links we have not heard of count as up (the kernel knows better).
    /// Carrier is not looked at: the kernel marks routes of a link without
    /// carrier linkdown itself, and still accepts routes through it.
    fn link_up(&self, index: u32) -> bool {
        self.links.get(&index).is_none_or(|l| l.up)
    }

    fn lengths(&mut self, prefix: IpNet) -> &mut BTreeSet<u8> {
        match prefix {
            IpNet::V4(_) => &mut self.lengths_v4,
            IpNet::V6(_) => &mut self.lengths_v6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, metric: u32, hops: &[(Option<&str>, u32)]) -> KernelRoute {
        KernelRoute {
            table: 254,
            protocol: 2,
            prefix: prefix.parse().unwrap(),
            metric,
            kind: KernelKind::Unicast(
                hops.iter()
                    .map(|(gateway, ifindex)| KernelNextHop {
                        gateway: gateway.map(|g| g.parse().unwrap()),
                        ifindex: *ifindex,
                        onlink: false,
                    })
                    .collect(),
            ),
            down: vec![false; hops.len()],
        }
    }

    fn link(index: u32, name: &str, up: bool) -> Link {
        Link {
            index,
            name: Some(name.into()),
            up,
            running: up,
            deleted: false,
        }
    }

    fn gateway(address: &str) -> NextHop {
        NextHop::gateway(address.parse().unwrap())
    }

    fn hop(gateway: &str, ifindex: u32) -> KernelNextHop {
        KernelNextHop {
            gateway: Some(gateway.parse().unwrap()),
            ifindex,
            onlink: false,
        }
    }

    #[test]
    fn connected_gateway_is_direct_and_remote_one_recursive() {
        let mut resolver = Resolver::new(false);
        resolver.update_link(link(3, "eth0", true));
        resolver.update_route(false, route("10.0.0.0/24", 0, &[(None, 3)]));
        resolver.update_route(false, route("192.0.2.0/24", 0, &[(Some("10.0.0.1"), 3)]));
        assert_eq!(
            resolver.resolve(&gateway("10.0.0.9")),
            Ok(vec![hop("10.0.0.9", 3)])
        );
        assert_eq!(
            resolver.resolve(&gateway("192.0.2.7")),
            Ok(vec![hop("10.0.0.1", 3)])
        );
        // The covering route moves to another gateway: re-resolution follows.
        resolver.update_route(false, route("192.0.2.0/24", 0, &[(Some("10.0.0.2"), 3)]));
        assert_eq!(
            resolver.resolve(&gateway("192.0.2.7")),
            Ok(vec![hop("10.0.0.2", 3)])
        );
        // A more specific route wins.
        resolver.update_route(false, route("192.0.2.0/25", 0, &[(Some("10.0.0.3"), 3)]));
        assert_eq!(
            resolver.resolve(&gateway("192.0.2.7")),
            Ok(vec![hop("10.0.0.3", 3)])
        );
    }

    #[test]
    fn unresolvable_cases_say_why() {
        let mut resolver = Resolver::new(false);
        resolver.update_link(link(3, "eth0", true));
        resolver.update_route(false, route("0.0.0.0/0", 0, &[(Some("10.0.0.1"), 3)]));
        let Err(HopFailure::Unresolvable { why, .. }) = resolver.resolve(&gateway("198.51.100.1"))
        else {
            panic!("default route must not resolve");
        };
        assert!(why.contains("default route"));
        let mut blackhole = route("198.51.100.0/24", 0, &[]);
        blackhole.kind = KernelKind::Blackhole;
        resolver.update_route(false, blackhole);
        let Err(HopFailure::Unresolvable { why, .. }) = resolver.resolve(&gateway("198.51.100.1"))
        else {
            panic!("blackhole must not resolve");
        };
        assert!(why.contains("blackhole"));
        assert!(matches!(
            resolver.resolve(&gateway("2001:db8::1")),
            Err(HopFailure::Unresolvable { .. })
        ));
        assert_eq!(
            resolver.resolve(&NextHop::Device("nope0".into())),
            Err(HopFailure::UnknownDevice("nope0".into()))
        );
        let mut via_default = Resolver::new(true);
        via_default.update_route(false, route("0.0.0.0/0", 0, &[(Some("10.0.0.1"), 3)]));
        assert_eq!(
            via_default.resolve(&gateway("198.51.100.1")),
            Ok(vec![hop("10.0.0.1", 3)])
        );
    }

    #[test]
    fn ipv6_routes_per_device_are_kept_apart() {
        let mut resolver = Resolver::new(false);
        resolver.update_route(false, route("fe80::/64", 256, &[(None, 3)]));
        resolver.update_route(false, route("fe80::/64", 256, &[(None, 4)]));
        resolver.update_route(false, route("2001:db8::/64", 256, &[(None, 3)]));
        resolver.update_route(false, route("2001:db8:1::/64", 256, &[(None, 4)]));
        assert_eq!(
            resolver.routes[&"fe80::/64".parse::<IpNet>().unwrap()].len(),
            2
        );
        assert!(resolver.resolve(&gateway("fe80::1")).is_err());
        let linklocal = NextHop::Gateway {
            address: "fe80::1".parse().unwrap(),
            device: Some("eth1".into()),
        };
        resolver.update_link(link(4, "eth1", true));
        assert_eq!(resolver.resolve(&linklocal), Ok(vec![hop("fe80::1", 4)]));
        assert_eq!(
            resolver.resolve(&gateway("2001:db8:1::9")),
            Ok(vec![hop("2001:db8:1::9", 4)])
        );
    }

    #[test]
    fn global_or_link_local_takes_the_global_address_when_it_resolves() {
        let mut resolver = Resolver::new(false);
        resolver.update_link(link(4, "eth1", true));
        let pair = NextHop::GlobalOrLinkLocal {
            global: "2001:db8:1::9".parse().unwrap(),
            link_local: "fe80::9".parse().unwrap(),
            device: "eth1".into(),
        };
        assert_eq!(resolver.resolve(&pair), Ok(vec![hop("fe80::9", 4)]));
        resolver.update_route(false, route("2001:db8:1::/64", 256, &[(None, 4)]));
        assert_eq!(resolver.resolve(&pair), Ok(vec![hop("2001:db8:1::9", 4)]));
        // The link goes down: back to the link-local address (the kernel marks it
        // linkdown too, but the route stays wanted).
        resolver.update_route(true, route("2001:db8:1::/64", 256, &[(None, 4)]));
        assert_eq!(resolver.resolve(&pair), Ok(vec![hop("fe80::9", 4)]));
        let unknown = NextHop::GlobalOrLinkLocal {
            global: "2001:db8:1::9".parse().unwrap(),
            link_local: "fe80::9".parse().unwrap(),
            device: "nope0".into(),
        };
        assert_eq!(
            resolver.resolve(&unknown),
            Err(HopFailure::UnknownDevice("nope0".into()))
        );
    }

    #[test]
    fn down_links_and_deleted_routes_stop_resolving() {
        let mut resolver = Resolver::new(false);
        resolver.update_link(link(3, "eth0", true));
        resolver.update_link(link(4, "eth1", true));
        resolver.update_route(false, route("10.0.0.0/24", 0, &[(None, 3)]));
        resolver.update_route(false, route("10.0.0.0/16", 0, &[(Some("10.1.0.1"), 4)]));
        assert_eq!(
            resolver.resolve(&gateway("10.0.0.9")),
            Ok(vec![hop("10.0.0.9", 3)])
        );
        assert!(resolver.update_link(link(3, "eth0", false)));
        assert_eq!(
            resolver.resolve(&gateway("10.0.0.9")),
            Ok(vec![hop("10.1.0.1", 4)])
        );
        assert!(resolver.update_route(true, route("10.0.0.0/16", 0, &[])));
        assert!(resolver.resolve(&gateway("10.0.0.9")).is_err());
        assert_eq!(
            resolver.resolve(&NextHop::Device("eth1".into())),
            Ok(vec![KernelNextHop {
                gateway: None,
                ifindex: 4,
                onlink: false,
            }])
        );
    }
}
