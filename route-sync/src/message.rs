//! The kernel's view of a route and its rtnetlink encoding.
//!
//! `KernelRoute` is a route as the kernel holds it (next hops resolved to a
//! gateway and an interface index). `encode` appends one RTM_NEWROUTE or
//! RTM_DELROUTE request to a batch buffer; `decode` turns a dumped or
//! notified RTM_NEWROUTE/RTM_DELROUTE into a `KernelRoute`. Both go through
//! netlink-packet-route's types. An IPv6 gateway of an IPv4 route travels as
//! RTA_VIA (struct rtvia: family, then address), every other gateway as
//! RTA_GATEWAY, in single-path routes and in RTA_MULTIPATH entries alike.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A route as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelRoute {
    pub table: u32,
    pub protocol: u8,
    pub prefix: IpNet,
    pub metric: u32,
    pub kind: KernelKind,
    /// Per unicast next hop: the kernel marked it dead or link-down.
    pub down: Vec<bool>,
}

/// What a kernel route does with packets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum KernelKind {
    /// Next hops sorted and without duplicates.
    Unicast(Vec<KernelNextHop>),
    Blackhole,
    /// Local, unreachable, prohibit, nexthop-object routes...: the kernel
    /// route type number.
    Other(u8),
}

/// One resolved next hop: a gateway (or none for a device route) and the
/// interface it leaves through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct KernelNextHop {
    pub gateway: Option<IpAddr>,
    pub ifindex: u32,
    /// RTNH_F_ONLINK: the gateway is taken as on the device's link, with no
    /// connected subnet (a VXLAN peer's tunnel address).
    pub onlink: bool,
}

/// A request to put in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// RTM_NEWROUTE with NLM_F_CREATE|NLM_F_EXCL: fails if any route with
    /// the same prefix and metric is there (never overwrites a foreign one).
    Add,
    /// RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE, for a route of ours.
    Replace,
    /// RTM_DELROUTE restricted to our protocol and metric.
    Delete,
}

/// Where our routes live: the same for every request of a syncer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placement {
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
}

const RT_TABLE_COMPAT: u8 = 252;

/// Appends one request; the kernel acks only if `ack` (errors always come).
pub(crate) fn encode(
    out: &mut Vec<u8>,
    request: Request,
    seq: u32,
    ack: bool,
    placement: Placement,
    prefix: IpNet,
    kind: Option<&KernelKind>,
) {
    let mut header = RouteHeader {
        address_family: family(prefix),
        destination_prefix_length: prefix.prefix_len(),
        table: u8::try_from(placement.table)
            .ok()
            .filter(|t| *t != 0)
            .unwrap_or(RT_TABLE_COMPAT),
        protocol: RouteProtocol::from(placement.protocol),
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        ..RouteHeader::default()
    };
    let mut attributes = Vec::with_capacity(5);
    if prefix.prefix_len() > 0 {
        attributes.push(RouteAttribute::Destination(RouteAddress::from(
            prefix.addr(),
        )));
    }
    attributes.push(RouteAttribute::Table(placement.table));
    attributes.push(RouteAttribute::Priority(placement.metric));
    match (request, kind) {
        (Request::Delete, _) => {
            header.scope = RouteScope::NoWhere;
            header.kind = RouteType::Unspec;
        }
        (_, Some(KernelKind::Blackhole)) => header.kind = RouteType::BlackHole,
        (_, Some(KernelKind::Unicast(hops))) => {
            if hops.iter().all(|hop| hop.gateway.is_none()) {
                header.scope = RouteScope::Link;
            }
            if let [hop] = hops.as_slice() {
                if let Some(gateway) = hop.gateway {
                    attributes.push(gateway_attribute(prefix, gateway));
                }
                attributes.push(RouteAttribute::Oif(hop.ifindex));
                if hop.onlink {
                    header.flags |=
                        RouteFlags::from_bits_truncate(u32::from(RouteNextHopFlags::Onlink.bits()));
                }
            } else {
                let paths = hops
                    .iter()
                    .map(|hop| {
                        let mut path = RouteNextHop::default();
                        path.interface_index = hop.ifindex;
                        if hop.onlink {
                            path.flags |= RouteNextHopFlags::Onlink;
                        }
                        if let Some(gateway) = hop.gateway {
                            path.attributes.push(gateway_attribute(prefix, gateway));
                        }
                        path
                    })
                    .collect();
                attributes.push(RouteAttribute::MultiPath(paths));
            }
        }
        (_, Some(KernelKind::Other(kind))) => header.kind = RouteType::from(*kind),
        (_, None) => {}
    }
    let mut message = RouteMessage::default();
    message.header = header;
    message.attributes = attributes;
    let (payload, flags) = match request {
        Request::Add => (
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
        ),
        Request::Replace => (
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_REPLACE,
        ),
        Request::Delete => (RouteNetlinkMessage::DelRoute(message), 0),
    };
    let mut netlink_header = NetlinkHeader::default();
    netlink_header.flags = NLM_F_REQUEST | flags | if ack { NLM_F_ACK } else { 0 };
    netlink_header.sequence_number = seq;
    let mut netlink = NetlinkMessage::new(netlink_header, NetlinkPayload::InnerMessage(payload));
    netlink.finalize();
    let start = out.len();
    out.resize(start + netlink.buffer_len(), 0);
    netlink.serialize(&mut out[start..]);
}

/// Reads a route message; `None` for cached clones and non-IP families.
pub(crate) fn decode(message: &RouteMessage) -> Option<KernelRoute> {
    let header = &message.header;
    if header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut destination = None;
    let mut metric = 0;
    let mut gateway = None;
    let mut oif = 0;
    let mut multipath = None;
    let mut nexthop_object = false;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(address) => destination = ip(address),
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Gateway(address) => gateway = ip(address),
            RouteAttribute::Via(via) => gateway = via_ip(via),
            RouteAttribute::Oif(index) => oif = *index,
            RouteAttribute::MultiPath(paths) => multipath = Some(paths),
            RouteAttribute::NhId(_) => nexthop_object = true,
            _ => {}
        }
    }
    let length = header.destination_prefix_length;
    let prefix = match (header.address_family, destination) {
        (AddressFamily::Inet, Some(address @ IpAddr::V4(_)))
        | (AddressFamily::Inet6, Some(address @ IpAddr::V6(_))) => {
            IpNet::new(address, length).ok()?
        }
        (AddressFamily::Inet, None) if length == 0 => IpNet::V4(Default::default()),
        (AddressFamily::Inet6, None) if length == 0 => IpNet::V6(Default::default()),
        _ => return None,
    };
    let mut down = Vec::new();
    let kind = match header.kind {
        RouteType::Unicast if !nexthop_object => {
            let mut hops = Vec::new();
            if let Some(paths) = multipath {
                for path in paths {
                    let gateway = path
                        .attributes
                        .iter()
                        .find_map(|attribute| match attribute {
                            RouteAttribute::Gateway(address) => ip(address),
                            RouteAttribute::Via(via) => via_ip(via),
                            _ => None,
                        });
                    hops.push((
                        KernelNextHop {
                            gateway,
                            ifindex: path.interface_index,
                            onlink: path.flags.contains(RouteNextHopFlags::Onlink),
                        },
                        path.flags
                            .intersects(RouteNextHopFlags::Dead | RouteNextHopFlags::Linkdown),
                    ));
                }
            } else {
                let flags = RouteNextHopFlags::from_bits_truncate(header.flags.bits() as u8);
                hops.push((
                    KernelNextHop {
                        gateway,
                        ifindex: oif,
                        onlink: flags.contains(RouteNextHopFlags::Onlink),
                    },
                    flags.intersects(RouteNextHopFlags::Dead | RouteNextHopFlags::Linkdown),
                ));
            }
            hops.sort();
            hops.dedup_by(|a, b| a.0 == b.0);
            down = hops.iter().map(|(_, down)| *down).collect();
            KernelKind::Unicast(hops.into_iter().map(|(hop, _)| hop).collect())
        }
        RouteType::BlackHole => KernelKind::Blackhole,
        other => KernelKind::Other(u8::from(other)),
    };
    Some(KernelRoute {
        table,
        protocol: u8::from(header.protocol),
        prefix,
        metric,
        kind,
        down,
    })
}

/// A dump request for the routes of one family and table (strict checking
/// lets the kernel filter by table).
pub(crate) fn dump_routes(out: &mut Vec<u8>, seq: u32, ipv6: bool, table: u32) {
    let mut message = RouteMessage::default();
    message.header.address_family = if ipv6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    message.header.table = u8::try_from(table).unwrap_or(RT_TABLE_COMPAT);
    message.attributes.push(RouteAttribute::Table(table));
    push_dump(out, seq, RouteNetlinkMessage::GetRoute(message));
}

/// A dump request for all links.
pub(crate) fn dump_links(out: &mut Vec<u8>, seq: u32) {
    let message = netlink_packet_route::link::LinkMessage::default();
    push_dump(out, seq, RouteNetlinkMessage::GetLink(message));
}

fn push_dump(out: &mut Vec<u8>, seq: u32, payload: RouteNetlinkMessage) {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | netlink_packet_core::NLM_F_DUMP;
    header.sequence_number = seq;
    let mut netlink = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
    netlink.finalize();
    let start = out.len();
    out.resize(start + netlink.buffer_len(), 0);
    netlink.serialize(&mut out[start..]);
}

fn family(prefix: IpNet) -> AddressFamily {
    match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

/// RTA_GATEWAY for a gateway of the route's family; RTA_VIA for an IPv6
/// gateway of an IPv4 route (RFC 8950; the kernel refuses RTA_GATEWAY there).
fn gateway_attribute(prefix: IpNet, gateway: IpAddr) -> RouteAttribute {
    match (prefix, gateway) {
        (IpNet::V4(_), IpAddr::V6(v6)) => RouteAttribute::Via(RouteVia::Inet6(v6)),
        _ => RouteAttribute::Gateway(RouteAddress::from(gateway)),
    }
}

fn via_ip(via: &RouteVia) -> Option<IpAddr> {
    match via {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NetlinkMessage;

    const PLACEMENT: Placement = Placement {
        table: 254,
        protocol: 196,
        metric: 20,
    };

    fn round_trip(request: Request, prefix: &str, kind: Option<KernelKind>) -> KernelRoute {
        let mut out = Vec::new();
        encode(
            &mut out,
            request,
            7,
            true,
            PLACEMENT,
            prefix.parse().unwrap(),
            kind.as_ref(),
        );
        let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&out).unwrap();
        assert_eq!(message.header.sequence_number, 7);
        assert_eq!(message.header.length as usize, out.len());
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route))
            | NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelRoute(route)) => {
                decode(&route).unwrap()
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn ipv4_add_encodes_like_iproute2() {
        // `ip route add 10.1.0.0/24 via 10.0.0.2 dev <ifindex 3> proto 196 metric 20`.
        // Layout from include/uapi/linux/{netlink,rtnetlink}.h. iproute2 6.1 sends the
        // same nlmsghdr flags (plus NLM_F_ACK) and rtmsg, with RTA_DST, RTA_GATEWAY,
        // RTA_PRIORITY and RTA_OIF (seen with `strace -e trace=sendmsg -xx`); we add
        // RTA_TABLE so that tables above 255 work too.
        let mut out = Vec::new();
        let hop = KernelNextHop {
            gateway: Some("10.0.0.2".parse().unwrap()),
            ifindex: 3,
            onlink: false,
        };
        encode(
            &mut out,
            Request::Add,
            1,
            false,
            PLACEMENT,
            "10.1.0.0/24".parse().unwrap(),
            Some(&KernelKind::Unicast(vec![hop])),
        );
        let expected: Vec<u8> = [
            &[68, 0, 0, 0, 24, 0, 0x01, 0x06, 1, 0, 0, 0, 0, 0, 0, 0][..], // nlmsghdr: NEWROUTE, REQUEST|EXCL|CREATE
            &[2, 24, 0, 0, 254, 196, 0, 1, 0, 0, 0, 0], // rtmsg: inet /24 main proto 196 universe unicast
            &[8, 0, 1, 0, 10, 1, 0, 0],                 // RTA_DST
            &[8, 0, 15, 0, 254, 0, 0, 0],               // RTA_TABLE
            &[8, 0, 6, 0, 20, 0, 0, 0],                 // RTA_PRIORITY
            &[8, 0, 5, 0, 10, 0, 0, 2],                 // RTA_GATEWAY
            &[8, 0, 4, 0, 3, 0, 0, 0],                  // RTA_OIF
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn ipv4_route_via_ipv6_gateway_encodes_rta_via() {
        // `ip route add 10.1.0.0/24 via inet6 fe80::1 dev <ifindex 3> proto 196 metric 20`:
        // RTA_VIA (18) holds struct rtvia (include/uapi/linux/rtnetlink.h): a 2-octet
        // family (AF_INET6 = 10) then the 16 address octets, padded to 4 octets.
        let mut out = Vec::new();
        let hop = KernelNextHop {
            gateway: Some("fe80::1".parse().unwrap()),
            ifindex: 3,
            onlink: false,
        };
        encode(
            &mut out,
            Request::Add,
            1,
            false,
            PLACEMENT,
            "10.1.0.0/24".parse().unwrap(),
            Some(&KernelKind::Unicast(vec![hop])),
        );
        let via: Vec<u8> = [
            &[22, 0, 18, 0, 10, 0][..],
            &[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            &[0, 0],
        ]
        .concat();
        // nlmsghdr 16 + rtmsg 12 + RTA_DST 8 + RTA_TABLE 8 + RTA_PRIORITY 8, then RTA_VIA.
        assert_eq!(&out[52..76], via.as_slice());
        assert_eq!(&out[76..], &[8, 0, 4, 0, 3, 0, 0, 0]);
        assert_eq!(out[0] as usize, out.len());
        // Decoded back, single path and ECMP.
        let route = round_trip(
            Request::Add,
            "10.1.0.0/24",
            Some(KernelKind::Unicast(vec![hop])),
        );
        assert_eq!(route.kind, KernelKind::Unicast(vec![hop]));
        let other = KernelNextHop {
            gateway: Some("2001:db8::2".parse().unwrap()),
            ifindex: 4,
            onlink: false,
        };
        let ecmp = round_trip(
            Request::Replace,
            "10.1.0.0/24",
            Some(KernelKind::Unicast(vec![other, hop])),
        );
        assert_eq!(ecmp.kind, KernelKind::Unicast(vec![other, hop]));
        // IPv6 routes keep RTA_GATEWAY.
        let v6 = round_trip(
            Request::Add,
            "2001:db8:1::/48",
            Some(KernelKind::Unicast(vec![hop])),
        );
        assert_eq!(v6.kind, KernelKind::Unicast(vec![hop]));
    }

    #[test]
    fn unicast_multipath_blackhole_and_device_round_trip() {
        let a = KernelNextHop {
            gateway: Some("10.0.0.2".parse().unwrap()),
            ifindex: 3,
            onlink: false,
        };
        let b = KernelNextHop {
            gateway: Some("10.0.1.2".parse().unwrap()),
            ifindex: 4,
            onlink: false,
        };
        let single = round_trip(
            Request::Add,
            "10.1.0.0/24",
            Some(KernelKind::Unicast(vec![a])),
        );
        assert_eq!(single.kind, KernelKind::Unicast(vec![a]));
        assert_eq!(
            (single.table, single.protocol, single.metric),
            (254, 196, 20)
        );
        let ecmp = round_trip(
            Request::Replace,
            "10.1.0.0/24",
            Some(KernelKind::Unicast(vec![a, b])),
        );
        assert_eq!(ecmp.kind, KernelKind::Unicast(vec![a, b]));
        let blackhole = round_trip(Request::Add, "2001:db8::/64", Some(KernelKind::Blackhole));
        assert_eq!(blackhole.kind, KernelKind::Blackhole);
        assert_eq!(blackhole.prefix, "2001:db8::/64".parse::<IpNet>().unwrap());
        let device = KernelNextHop {
            gateway: None,
            ifindex: 9,
            onlink: false,
        };
        let route = round_trip(
            Request::Add,
            "0.0.0.0/0",
            Some(KernelKind::Unicast(vec![device])),
        );
        assert_eq!(route.kind, KernelKind::Unicast(vec![device]));
        assert_eq!(route.prefix.prefix_len(), 0);
        // On-link next hops (a VXLAN peer's tunnel address), alone and in ECMP.
        let onlink = KernelNextHop {
            gateway: Some("10.244.1.0".parse().unwrap()),
            ifindex: 7,
            onlink: true,
        };
        for hops in [vec![onlink], vec![a, onlink]] {
            let route = round_trip(
                Request::Add,
                "10.244.1.0/26",
                Some(KernelKind::Unicast(hops.clone())),
            );
            assert_eq!(route.kind, KernelKind::Unicast(hops));
        }
    }
}
