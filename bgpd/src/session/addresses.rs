//! Our addresses on a session's interface, for next hops of the other family
//! (an IPv4 session carrying IPv6 routes needs our IPv6 address) and the IPv6
//! link-local next hop; the scope of a link-local neighbor's address.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Our addresses on the interface that holds a session's local address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalAddresses {
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub link_local: Option<Ipv6Addr>,
}

/// Finds the interface holding `local` and its other addresses. `local` itself is
/// the answer for its own family; unknown interfaces give only `local`.
pub fn local_addresses(local: IpAddr) -> LocalAddresses {
    let local = canonical(local);
    let mut found = LocalAddresses::default();
    set(&mut found, local);
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return found;
    };
    let entries: Vec<(String, IpAddr)> = interfaces
        .filter_map(|entry| {
            let address = entry.address?;
            let ip = if let Some(v4) = address.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(address.as_sockaddr_in6()?.ip())
            };
            Some((entry.interface_name, ip))
        })
        .collect();
    let Some(interface) = entries
        .iter()
        .find(|(_, ip)| *ip == local)
        .map(|(name, _)| name.clone())
    else {
        return found;
    };
    for (_, ip) in entries.iter().filter(|(name, _)| *name == interface) {
        match ip {
            IpAddr::V4(v4) if found.ipv4.is_none() => found.ipv4 = Some(*v4),
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                found.link_local.get_or_insert(*v6);
            }
            IpAddr::V6(v6) if found.ipv6.is_none() => found.ipv6 = Some(*v6),
            _ => {}
        }
    }
    found
}

/// `peer` with the index of `interface` as its IPv6 scope id (a link-local
/// neighbor is reachable only through its interface); other peers as they are.
pub fn scoped(peer: SocketAddr, interface: Option<&str>) -> io::Result<SocketAddr> {
    match (peer, interface) {
        (SocketAddr::V6(mut v6), Some(name)) => {
            let index = nix::net::if_::if_nametoindex(name).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "interface {name} of link-local neighbor {}: {error}",
                        v6.ip()
                    ),
                )
            })?;
            v6.set_scope_id(index);
            Ok(SocketAddr::V6(v6))
        }
        _ => Ok(peer),
    }
}

/// An IPv4-mapped IPv6 address as IPv4.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn set(found: &mut LocalAddresses, address: IpAddr) {
    match address {
        IpAddr::V4(v4) => found.ipv4 = Some(v4),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => found.link_local = Some(v6),
        IpAddr::V6(v6) => found.ipv6 = Some(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn link_local_neighbors_get_their_interface_as_scope() {
        let peer: SocketAddr = "[fe80::2]:179".parse().unwrap();
        let SocketAddr::V6(scoped) = scoped(peer, Some("lo")).unwrap() else {
            panic!("not IPv6");
        };
        assert_ne!(scoped.scope_id(), 0);
        assert_eq!(scoped.ip(), &"fe80::2".parse::<Ipv6Addr>().unwrap());
        let error = super::scoped(peer, Some("nope0")).unwrap_err().to_string();
        assert!(error.contains("interface nope0"), "{error}");
        assert_eq!(super::scoped(peer, None).unwrap(), peer);
    }

    #[test]
    fn loopback_is_found_with_its_interface() {
        let found = local_addresses(
            "127.0.0.1"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        );
        assert_eq!(found.ipv4, Some(Ipv4Addr::LOCALHOST));
        let mapped: IpAddr = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(canonical(mapped), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
    }
}
