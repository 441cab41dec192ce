//! Path attributes (RFC 4271 section 5 and the RFCs of each attribute), apart from
//! MP_REACH_NLRI and MP_UNREACH_NLRI which belong to the UPDATE's NLRI (see
//! [`crate::update`]).
//!
//! [`PathAttributes`] is a standalone value (`Clone + Eq + Hash`) describing a route's
//! attributes: it holds no NLRI and no next hop of an MP family, so a speaker can intern
//! one and share it between every route that carries it. Unknown attributes are kept
//! with their flags. Encoding order and flag bytes of a received UPDATE live in the
//! UPDATE's [`Layout`](crate::update::Layout), not here.
//!
//! Files: `as_path` (AS_PATH / AS4_PATH), `community` (the three community kinds),
//! `decode` (per-attribute parsing and the RFC 7606 action of each), `encode`.

mod as_path;
mod community;
pub(crate) mod decode;
pub(crate) mod encode;

use std::net::Ipv4Addr;

pub use crate::attribute_type::{self, type_name};
pub use as_path::{AsPath, AsPathError, Segment, SegmentType, Segments};
pub use community::{Community, ExtendedCommunity, LargeCommunity};

use crate::open::AS_TRANS;

/// Attribute flag bits.
pub mod flags {
    /// Optional (else well-known).
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial: an optional transitive attribute some speaker did not recognise.
    pub const PARTIAL: u8 = 0x20;
    /// The length field is two octets.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// The Optional and Transitive bits a known attribute must carry; `None` for codes
/// this crate does not know.
pub fn expected_flags(code: u8) -> Option<u8> {
    use attribute_type as t;
    use flags::{OPTIONAL, TRANSITIVE};
    Some(match code {
        t::ORIGIN | t::AS_PATH | t::NEXT_HOP | t::LOCAL_PREF | t::ATOMIC_AGGREGATE => TRANSITIVE,
        t::MULTI_EXIT_DISC
        | t::ORIGINATOR_ID
        | t::CLUSTER_LIST
        | t::MP_REACH_NLRI
        | t::MP_UNREACH_NLRI => OPTIONAL,
        t::AGGREGATOR
        | t::COMMUNITIES
        | t::EXTENDED_COMMUNITIES
        | t::AS4_PATH
        | t::AS4_AGGREGATOR
        | t::LARGE_COMMUNITY
        | t::OTC => OPTIONAL | TRANSITIVE,
        _ => return None,
    })
}

/// ORIGIN values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Origin {
    /// IGP (0).
    Igp,
    /// EGP (1).
    Egp,
    /// INCOMPLETE (2).
    Incomplete,
}

impl Origin {
    /// The wire value.
    pub fn code(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }

    /// The origin of a wire value.
    pub fn from_code(code: u8) -> Option<Origin> {
        Some(match code {
            0 => Origin::Igp,
            1 => Origin::Egp,
            2 => Origin::Incomplete,
            _ => return None,
        })
    }
}

/// AGGREGATOR / AS4_AGGREGATOR: the AS and BGP identifier of the aggregating speaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Aggregator {
    /// AS number (AS_TRANS in AGGREGATOR when the real one is in AS4_AGGREGATOR).
    pub asn: u32,
    /// BGP identifier of the aggregating speaker.
    pub address: Ipv4Addr,
}

/// An attribute this crate does not interpret, kept as received.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct RawAttribute {
    /// Optional, Transitive and Partial bits (Extended Length is an encoding detail
    /// and is not kept here).
    pub flags: u8,
    /// Type code.
    pub code: u8,
    /// Value.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex"))]
    pub value: Vec<u8>,
}

/// The path attributes of a route, without NLRI and MP next hop.
///
/// Empty community and cluster vectors mean the attribute is absent (RFC 7606 makes a
/// zero-length one malformed, so absent and empty are the same).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct PathAttributes {
    /// ORIGIN.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub origin: Option<Origin>,
    /// AS_PATH (as received: 2-octet AS numbers from a 2-octet speaker).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (the next hop of the classic IPv4 NLRI).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub med: Option<u32>,
    /// LOCAL_PREF.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "std::ops::Not::not"))]
    pub atomic_aggregate: bool,
    /// AGGREGATOR.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub communities: Vec<Community>,
    /// ORIGINATOR_ID.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub cluster_list: Vec<Ipv4Addr>,
    /// EXTENDED_COMMUNITIES.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub extended_communities: Vec<ExtendedCommunity>,
    /// AS4_PATH (only from a 2-octet speaker; see [`PathAttributes::effective_as_path`]).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub as4_path: Option<AsPath>,
    /// AS4_AGGREGATOR (only from a 2-octet speaker).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub as4_aggregator: Option<Aggregator>,
    /// LARGE_COMMUNITY.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub large_communities: Vec<LargeCommunity>,
    /// Only to Customer (RFC 9234): an AS number.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub otc: Option<u32>,
    /// Attributes this crate does not interpret, in the order received.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Vec::is_empty"))]
    pub unknown: Vec<RawAttribute>,
}

impl PathAttributes {
    /// True when no attribute is present.
    pub fn is_empty(&self) -> bool {
        *self == PathAttributes::default()
    }

    /// The real AS path (RFC 6793 section 4.2.3): AS_PATH merged with AS4_PATH when
    /// AS4_PATH is present and AGGREGATOR does not say otherwise; AS_PATH alone when a
    /// 4-octet speaker sent it (then AS4_PATH was already discarded at decode).
    pub fn effective_as_path(&self) -> Option<AsPath> {
        let as_path = self.as_path.as_ref()?;
        match (&self.as4_path, self.aggregator) {
            (Some(_), Some(aggregator)) if aggregator.asn != u32::from(AS_TRANS) => {
                Some(as_path.clone())
            }
            (Some(as4), _) => Some(as_path.reconstruct(as4)),
            (None, _) => Some(as_path.clone()),
        }
    }

    /// The real aggregator (RFC 6793 section 4.2.3): AS4_AGGREGATOR when AGGREGATOR
    /// holds AS_TRANS, else AGGREGATOR.
    pub fn effective_aggregator(&self) -> Option<Aggregator> {
        match (self.aggregator, self.as4_aggregator) {
            (Some(aggregator), Some(as4)) if aggregator.asn == u32::from(AS_TRANS) => Some(as4),
            (aggregator, _) => aggregator,
        }
    }

    /// Replaces AS_PATH and AGGREGATOR with their effective values and drops AS4_PATH
    /// and AS4_AGGREGATOR: what a 4-octet speaker stores for a route learned from a
    /// 2-octet one. Encoding for a 2-octet peer recreates them as needed.
    pub fn merge_as4(&mut self) {
        if let Some(path) = self.effective_as_path() {
            self.as_path = Some(path);
        }
        self.aggregator = self.effective_aggregator();
        self.as4_path = None;
        self.as4_aggregator = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn as4_merge_follows_the_aggregator_rule() {
        let mut attrs = PathAttributes {
            as_path: Some(AsPath::from_sequence(&[65001, 23456])),
            as4_path: Some(AsPath::from_sequence(&[4_200_000_000])),
            aggregator: Some(Aggregator {
                asn: 23456,
                address: Ipv4Addr::new(1, 1, 1, 1),
            }),
            as4_aggregator: Some(Aggregator {
                asn: 4_200_000_000,
                address: Ipv4Addr::new(1, 1, 1, 1),
            }),
            ..Default::default()
        };
        let mut ignored = attrs.clone();
        attrs.merge_as4();
        assert_eq!(
            attrs.as_path.as_ref().map(ToString::to_string).as_deref(),
            Some("65001 4200000000")
        );
        assert_eq!(attrs.aggregator.map(|a| a.asn), Some(4_200_000_000));
        assert!(attrs.as4_path.is_none() && attrs.as4_aggregator.is_none());

        // An AGGREGATOR with a real 2-octet AS makes AS4_PATH and AS4_AGGREGATOR void.
        ignored.aggregator = Some(Aggregator {
            asn: 65009,
            address: Ipv4Addr::new(1, 1, 1, 1),
        });
        ignored.merge_as4();
        assert_eq!(
            ignored.as_path.as_ref().map(ToString::to_string).as_deref(),
            Some("65001 23456")
        );
        assert_eq!(ignored.aggregator.map(|a| a.asn), Some(65009));
    }
}
