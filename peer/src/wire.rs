//! BGP messages built by hand, byte by byte: well-formed ones for the setup of a test
//! (OPENs, announcements, withdrawals) and the pieces to build broken ones (a header
//! with a lying length, an attribute with a lying length, any flags, any type code).
//!
//! Nothing here validates: a builder writes what it is given, so a test can send
//! exactly the bytes it means. Only the convenience builders ([`open`], [`announce_v4`],
//! [`announce_v6`], [`withdraw`]) produce well-formed messages. The wire layout is
//! RFC 4271 section 4 (header, OPEN, UPDATE, NOTIFICATION), RFC 4760 (MP_REACH_NLRI,
//! MP_UNREACH_NLRI), RFC 5492 (capabilities) and RFC 6793 (4-octet AS).

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use bgp_proto::attribute_type as code;
use bgp_proto::{HEADER_LEN, MARKER, MessageType};

use crate::error::Error;

/// Attribute flag bits (RFC 4271 4.3): bgp-proto's, with two combinations tests use.
pub mod flags {
    pub use bgp_proto::attribute::flags::*;
    /// Well-known attributes: transitive, not optional.
    pub const WELL_KNOWN: u8 = TRANSITIVE;
    /// Optional transitive attributes (COMMUNITIES, LARGE_COMMUNITY, ...).
    pub const OPTIONAL_TRANSITIVE: u8 = OPTIONAL | TRANSITIVE;
}

/// A whole message: marker, the true length, `kind`, `body`. A body longer than
/// 65516 octets gets the length 65535 (a lie a test may want).
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let length = u16::try_from(HEADER_LEN + body.len()).unwrap_or(u16::MAX);
    with_length(kind, length, body)
}

/// A message whose header says `length`, whatever the body's real size.
pub fn with_length(kind: u8, length: u16, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + body.len());
    bytes.extend_from_slice(&MARKER);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.push(kind);
    bytes.extend_from_slice(body);
    bytes
}

/// KEEPALIVE.
pub fn keepalive() -> Vec<u8> {
    message(MessageType::Keepalive as u8, &[])
}

/// NOTIFICATION with `code`, `subcode` and `data` as given.
pub fn notification(code: u8, subcode: u8, data: &[u8]) -> Vec<u8> {
    let mut body = vec![code, subcode];
    body.extend_from_slice(data);
    message(MessageType::Notification as u8, &body)
}

/// ROUTE-REFRESH for (`afi`, `safi`) with `subtype` (0 request, 1 BoRR, 2 EoRR).
pub fn route_refresh(afi: u16, safi: u8, subtype: u8) -> Vec<u8> {
    let mut body = afi.to_be_bytes().to_vec();
    body.extend_from_slice(&[subtype, safi]);
    message(MessageType::RouteRefresh as u8, &body)
}

/// The fields of an OPEN, written as given (`parameters` is the raw optional
/// parameters field; its length octet is computed, capped at 255).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenFields {
    pub version: u8,
    pub my_as: u16,
    pub hold_time: u16,
    pub router_id: Ipv4Addr,
    pub parameters: Vec<u8>,
}

/// An OPEN from its fields.
pub fn open_message(fields: &OpenFields) -> Vec<u8> {
    let mut body = vec![fields.version];
    body.extend_from_slice(&fields.my_as.to_be_bytes());
    body.extend_from_slice(&fields.hold_time.to_be_bytes());
    body.extend_from_slice(&fields.router_id.octets());
    body.push(u8::try_from(fields.parameters.len()).unwrap_or(u8::MAX));
    body.extend_from_slice(&fields.parameters);
    message(MessageType::Open as u8, &body)
}

/// A well-formed OPEN: version 4, `asn` (AS_TRANS in the 2-octet field when it needs
/// 4 octets), one Capabilities parameter with multiprotocol for each family (AFI,
/// SAFI), route refresh, 4-octet AS unless `two_octet`, then `extra` capabilities
/// (each from a [`capability`] builder).
pub fn open(
    asn: u32,
    hold_time: u16,
    router_id: Ipv4Addr,
    families: &[(u16, u8)],
    two_octet: bool,
    extra: &[Vec<u8>],
) -> Vec<u8> {
    let mut capabilities: Vec<Vec<u8>> = families
        .iter()
        .map(|&(afi, safi)| capability::multiprotocol(afi, safi))
        .collect();
    capabilities.push(capability::route_refresh());
    if !two_octet {
        capabilities.push(capability::four_octet_as(asn));
    }
    capabilities.extend(extra.iter().cloned());
    let my_as = u16::try_from(asn).unwrap_or(23456);
    open_message(&OpenFields {
        version: 4,
        my_as,
        hold_time,
        router_id,
        parameters: capabilities_parameter(&capabilities),
    })
}

/// One optional parameter of type 2 (Capabilities) holding `capabilities`.
pub fn capabilities_parameter(capabilities: &[Vec<u8>]) -> Vec<u8> {
    let value: Vec<u8> = capabilities.concat();
    let mut parameter = vec![2, u8::try_from(value.len()).unwrap_or(u8::MAX)];
    parameter.extend_from_slice(&value);
    parameter
}

/// Capability TLVs (RFC 5492): code, length, value.
pub mod capability {
    /// A capability with `code` and `value` (the length octet is computed).
    pub fn raw(code: u8, value: &[u8]) -> Vec<u8> {
        let mut bytes = vec![code, u8::try_from(value.len()).unwrap_or(u8::MAX)];
        bytes.extend_from_slice(value);
        bytes
    }

    /// Multiprotocol extensions (1) for AFI/SAFI.
    pub fn multiprotocol(afi: u16, safi: u8) -> Vec<u8> {
        let afi = afi.to_be_bytes();
        raw(1, &[afi[0], afi[1], 0, safi])
    }

    /// Route refresh (2).
    pub fn route_refresh() -> Vec<u8> {
        raw(2, &[])
    }

    /// 4-octet AS (65) with our AS.
    pub fn four_octet_as(asn: u32) -> Vec<u8> {
        raw(65, &asn.to_be_bytes())
    }

    /// Graceful restart (64): restart flags (R = 0x8) and time, then per family
    /// (AFI, SAFI, flags; forwarding state = 0x80).
    pub fn graceful_restart(flags: u8, restart_time: u16, families: &[(u16, u8, u8)]) -> Vec<u8> {
        let head = (u16::from(flags & 0x0f) << 12) | (restart_time & 0x0fff);
        let mut value = head.to_be_bytes().to_vec();
        for &(afi, safi, family_flags) in families {
            value.extend_from_slice(&afi.to_be_bytes());
            value.extend_from_slice(&[safi, family_flags]);
        }
        raw(64, &value)
    }
}

/// An UPDATE from its three fields; the two length fields are computed (capped at
/// 65535).
pub fn update(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + withdrawn.len() + attributes.len() + nlri.len());
    body.extend_from_slice(
        &u16::try_from(withdrawn.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(
        &u16::try_from(attributes.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    body.extend_from_slice(attributes);
    body.extend_from_slice(nlri);
    message(MessageType::Update as u8, &body)
}

/// A path attribute with its true length. The Extended Length flag is added when the
/// value exceeds 255 octets; when `flags` has it, the length takes two octets.
pub fn attribute(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let flags = if value.len() > 255 {
        flags | self::flags::EXTENDED_LENGTH
    } else {
        flags
    };
    let length = u16::try_from(value.len()).unwrap_or(u16::MAX);
    attribute_with_length(flags, code, length, value)
}

/// A path attribute whose length field says `length` (two octets when `flags` has
/// Extended Length, else the low octet), followed by `value` whatever its size.
pub fn attribute_with_length(flags: u8, code: u8, length: u16, value: &[u8]) -> Vec<u8> {
    let mut bytes = vec![flags, code];
    if flags & self::flags::EXTENDED_LENGTH != 0 {
        bytes.extend_from_slice(&length.to_be_bytes());
    } else {
        bytes.push(length.to_be_bytes()[1]);
    }
    bytes.extend_from_slice(value);
    bytes
}

/// A prefix as NLRI: the length octet, then the octets the length covers.
pub fn prefix(net: IpNet) -> Vec<u8> {
    let length = net.prefix_len();
    let octets = usize::from(length).div_ceil(8);
    let address = match net {
        IpNet::V4(net) => net.network().octets().to_vec(),
        IpNet::V6(net) => net.network().octets().to_vec(),
    };
    let mut bytes = vec![length];
    bytes.extend_from_slice(&address[..octets]);
    bytes
}

/// Several prefixes as NLRI.
pub fn prefixes<'a>(nets: impl IntoIterator<Item = &'a IpNet>) -> Vec<u8> {
    nets.into_iter().flat_map(|net| prefix(*net)).collect()
}

/// The well-formed attributes of an announcement (next hop apart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// 0 IGP, 1 EGP, 2 INCOMPLETE.
    pub origin: u8,
    /// One AS_SEQUENCE (empty: an empty AS_PATH, as iBGP originations have).
    pub as_path: Vec<u32>,
    /// AS numbers in 4 octets (the session negotiated 4-octet AS).
    pub four_octet: bool,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// RFC 1997 communities.
    pub communities: Vec<u32>,
}

impl Attributes {
    /// ORIGIN IGP, AS_PATH `[asn]`, 4-octet AS, nothing else.
    pub fn from_as(asn: u32) -> Attributes {
        Attributes {
            origin: 0,
            as_path: vec![asn],
            four_octet: true,
            med: None,
            local_pref: None,
            communities: Vec::new(),
        }
    }

    /// ORIGIN, AS_PATH, then MED, LOCAL_PREF and COMMUNITIES when set, encoded.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = attr::origin(self.origin);
        bytes.extend(attr::as_path(&self.as_path, self.four_octet));
        if let Some(med) = self.med {
            bytes.extend(attr::med(med));
        }
        if let Some(local_pref) = self.local_pref {
            bytes.extend(attr::local_pref(local_pref));
        }
        if !self.communities.is_empty() {
            bytes.extend(attr::communities(&self.communities));
        }
        bytes
    }
}

/// Well-formed attributes, each encoded whole (flags, type, length, value).
pub mod attr {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::{attribute, code, flags};

    /// ORIGIN.
    pub fn origin(value: u8) -> Vec<u8> {
        attribute(flags::WELL_KNOWN, code::ORIGIN, &[value])
    }

    /// AS_PATH with one AS_SEQUENCE segment (none when `asns` is empty).
    pub fn as_path(asns: &[u32], four_octet: bool) -> Vec<u8> {
        attribute(
            flags::WELL_KNOWN,
            code::AS_PATH,
            &segment(2, asns, four_octet),
        )
    }

    /// AS4_PATH (optional transitive) with one AS_SEQUENCE of 4-octet numbers.
    pub fn as4_path(asns: &[u32]) -> Vec<u8> {
        attribute(
            flags::OPTIONAL_TRANSITIVE,
            code::AS4_PATH,
            &segment(2, asns, true),
        )
    }

    /// One AS_PATH segment of `kind` (1 AS_SET, 2 AS_SEQUENCE); empty input, no bytes.
    pub fn segment(kind: u8, asns: &[u32], four_octet: bool) -> Vec<u8> {
        if asns.is_empty() {
            return Vec::new();
        }
        let mut value = vec![kind, u8::try_from(asns.len()).unwrap_or(u8::MAX)];
        for &asn in asns {
            if four_octet {
                value.extend_from_slice(&asn.to_be_bytes());
            } else {
                value.extend_from_slice(&u16::try_from(asn).unwrap_or(23456).to_be_bytes());
            }
        }
        value
    }

    /// NEXT_HOP.
    pub fn next_hop(address: Ipv4Addr) -> Vec<u8> {
        attribute(flags::WELL_KNOWN, code::NEXT_HOP, &address.octets())
    }

    /// MULTI_EXIT_DISC.
    pub fn med(value: u32) -> Vec<u8> {
        attribute(flags::OPTIONAL, code::MULTI_EXIT_DISC, &value.to_be_bytes())
    }

    /// LOCAL_PREF.
    pub fn local_pref(value: u32) -> Vec<u8> {
        attribute(flags::WELL_KNOWN, code::LOCAL_PREF, &value.to_be_bytes())
    }

    /// COMMUNITIES.
    pub fn communities(values: &[u32]) -> Vec<u8> {
        let value: Vec<u8> = values.iter().flat_map(|c| c.to_be_bytes()).collect();
        attribute(flags::OPTIONAL_TRANSITIVE, code::COMMUNITIES, &value)
    }

    /// MP_REACH_NLRI for IPv6 unicast: the global next hop (and link-local), no SNPA,
    /// then `nlri` (already encoded).
    pub fn mp_reach_ipv6(global: Ipv6Addr, link_local: Option<Ipv6Addr>, nlri: &[u8]) -> Vec<u8> {
        let mut next_hop = global.octets().to_vec();
        if let Some(link_local) = link_local {
            next_hop.extend_from_slice(&link_local.octets());
        }
        mp_reach(2, 1, &next_hop, nlri)
    }

    /// MP_REACH_NLRI with any AFI/SAFI, next hop octets and NLRI octets.
    pub fn mp_reach(afi: u16, safi: u8, next_hop: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut value = afi.to_be_bytes().to_vec();
        value.push(safi);
        value.push(u8::try_from(next_hop.len()).unwrap_or(u8::MAX));
        value.extend_from_slice(next_hop);
        value.push(0);
        value.extend_from_slice(nlri);
        attribute(flags::OPTIONAL, code::MP_REACH_NLRI, &value)
    }

    /// MP_UNREACH_NLRI with any AFI/SAFI and NLRI octets.
    pub fn mp_unreach(afi: u16, safi: u8, nlri: &[u8]) -> Vec<u8> {
        let mut value = afi.to_be_bytes().to_vec();
        value.push(safi);
        value.extend_from_slice(nlri);
        attribute(flags::OPTIONAL, code::MP_UNREACH_NLRI, &value)
    }
}

/// A well-formed UPDATE announcing IPv4 `prefixes` via `next_hop` in the classic
/// NLRI field.
pub fn announce_v4(prefixes: &[Ipv4Net], attributes: &Attributes, next_hop: Ipv4Addr) -> Vec<u8> {
    let mut bytes = attributes.encode();
    bytes.extend(attr::next_hop(next_hop));
    let nets: Vec<IpNet> = prefixes.iter().copied().map(IpNet::V4).collect();
    update(&[], &bytes, &self::prefixes(&nets))
}

/// A well-formed UPDATE announcing IPv6 `prefixes` in MP_REACH_NLRI.
pub fn announce_v6(
    prefixes: &[Ipv6Net],
    attributes: &Attributes,
    global: Ipv6Addr,
    link_local: Option<Ipv6Addr>,
) -> Vec<u8> {
    let nets: Vec<IpNet> = prefixes.iter().copied().map(IpNet::V6).collect();
    let mut bytes = attr::mp_reach_ipv6(global, link_local, &self::prefixes(&nets));
    bytes.extend(attributes.encode());
    update(&[], &bytes, &[])
}

/// A well-formed UPDATE withdrawing `nets`: IPv4 ones in the classic field, IPv6
/// ones in MP_UNREACH_NLRI. Two messages when both families are present.
pub fn withdraw(nets: &[IpNet]) -> Vec<u8> {
    let v4: Vec<IpNet> = nets
        .iter()
        .copied()
        .filter(|n| n.addr().is_ipv4())
        .collect();
    let v6: Vec<IpNet> = nets
        .iter()
        .copied()
        .filter(|n| n.addr().is_ipv6())
        .collect();
    let mut bytes = Vec::new();
    if !v4.is_empty() {
        bytes.extend(update(&prefixes(&v4), &[], &[]));
    }
    if !v6.is_empty() {
        bytes.extend(update(&[], &attr::mp_unreach(2, 1, &prefixes(&v6)), &[]));
    }
    bytes
}

/// End-of-RIB for IPv4 unicast (an empty UPDATE) or another AFI/SAFI (an empty
/// MP_UNREACH_NLRI).
pub fn end_of_rib(afi: u16, safi: u8) -> Vec<u8> {
    if (afi, safi) == (1, 1) {
        update(&[], &[], &[])
    } else {
        update(&[], &attr::mp_unreach(afi, safi, &[]), &[])
    }
}

/// Octets from hex text; whitespace (spaces, newlines) anywhere and `#` comments to
/// the end of a line are ignored, as in bgp-proto's test data.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, Error> {
    let digits: String = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or(""))
        .flat_map(|line| line.chars().filter(|c| !c.is_whitespace()))
        .collect();
    hex::decode(&digits).map_err(|error| Error::Hex(error.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use bgp_proto::{Message, SessionContext, decode_message};

    use super::*;

    fn decode(bytes: &[u8]) -> Message {
        let decoded = decode_message(bytes, &SessionContext::default()).unwrap();
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        decoded.message
    }

    #[test]
    fn builders_match_bgp_proto_test_vectors() {
        // bgp-proto/tests/data/rules.txt, "well-formed" rows.
        assert_eq!(
            keepalive(),
            parse_hex("ffffffffffffffffffffffffffffffff 0013 04").unwrap()
        );
        let attributes = Attributes::from_as(65001);
        assert_eq!(
            announce_v4(
                &["198.51.100.0/24".parse().unwrap()],
                &attributes,
                "192.0.2.1".parse().unwrap()
            ),
            parse_hex(
                "ffffffffffffffffffffffffffffffff 002f 02 0000 0014 40010100 40020602010000fde9 400304c0000201 18c63364"
            )
            .unwrap()
        );
        assert_eq!(
            end_of_rib(2, 1),
            parse_hex("ffffffffffffffffffffffffffffffff 001d 02 0000 0006 800f03000201").unwrap()
        );
    }

    #[test]
    fn well_formed_messages_decode() {
        let open_bytes = open(
            4_200_000_001,
            90,
            "10.0.0.1".parse().unwrap(),
            &[(1, 1), (2, 1)],
            false,
            &[capability::graceful_restart(0, 120, &[(1, 1, 0x80)])],
        );
        let Message::Open(open) = decode(&open_bytes) else {
            panic!("not an OPEN")
        };
        assert_eq!(open.asn(), 4_200_000_001);
        assert_eq!(open.my_as, 23456);
        assert_eq!(open.families().len(), 2);

        let mut attributes = Attributes::from_as(65001);
        attributes.med = Some(7);
        attributes.communities = vec![0xfde9_0064];
        let bytes = announce_v6(
            &["2001:db8:1::/48".parse().unwrap()],
            &attributes,
            "2001:db8::1".parse().unwrap(),
            None,
        );
        let Message::Update(update) = decode(&bytes) else {
            panic!("not an UPDATE")
        };
        assert_eq!(update.mp_reach.unwrap().nlri.len(), 1);
        assert_eq!(update.attributes.med, Some(7));

        let nets: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        let bytes = withdraw(&nets);
        let first_len = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
        let Message::Update(v4) = decode(&bytes[..first_len]) else {
            panic!()
        };
        assert_eq!(v4.withdrawn.len(), 1);
        let Message::Update(v6) = decode(&bytes[first_len..]) else {
            panic!()
        };
        assert_eq!(v6.mp_unreach.unwrap().withdrawn.len(), 1);
    }

    #[test]
    fn lying_lengths_are_written_as_asked() {
        let otc = attribute_with_length(0xf0, code::OTC, 0x0400, &[0, 0, 0xfd, 0xe9]);
        assert_eq!(otc, parse_hex("f02304000000fde9").unwrap());
        assert_eq!(
            with_length(4, 0x12, &[]),
            parse_hex(&format!("{} 0012 04", "ff".repeat(16))).unwrap()
        );
        let long = attribute(flags::OPTIONAL_TRANSITIVE, 0xfd, &[7; 300]);
        assert_eq!(&long[..4], &[0xd0, 0xfd, 0x01, 0x2c]);
        assert_eq!(prefix("10.1.2.0/23".parse().unwrap()), vec![23, 10, 1, 2]);
        assert_eq!(prefix("0.0.0.0/0".parse().unwrap()), vec![0]);
        assert!(parse_hex("ff f").is_err());
        assert_eq!(parse_hex("01 # comment\n02").unwrap(), vec![1, 2]);
    }
}
