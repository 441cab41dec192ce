//! UPDATE message (RFC 4271 section 4.3) with its NLRI: the classic IPv4 withdrawn
//! routes and NLRI fields, MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760) for IPv6 and
//! for IPv4 with an IPv6 next hop (RFC 8950), add-path path ids (RFC 7911), and
//! End-of-RIB markers (RFC 4724).
//!
//! An [`Update`] keeps the NLRI apart from the [`PathAttributes`], so the attributes
//! can be interned and shared by every route that carries them. Decoding
//! ([`decode_message`](crate::decode_message)) applies the RFC 7606 error model;
//! encoding is faithful to the [`Layout`] a decoded UPDATE recorded.
//! [`UpdatePacker`](crate::UpdatePacker) (`pack.rs`, beside `message` because it
//! writes whole messages) builds as few UPDATEs as the negotiated size allows for
//! many prefixes that share one attribute set.
//!
//! Files: `nlri` (prefixes), `decode`, `encode`.

pub(crate) mod decode;
pub(crate) mod encode;
pub mod nlri;

use std::net::{Ipv4Addr, Ipv6Addr};

pub use nlri::{Ipv4Prefix, Ipv6Prefix, NlriError, Prefix};

use crate::attribute::PathAttributes;
use crate::family::{Afi, Family};

/// An UPDATE message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Update {
    /// IPv4 unicast prefixes withdrawn in the classic field.
    pub withdrawn: Vec<Ipv4Prefix>,
    /// Path attributes other than MP_REACH_NLRI / MP_UNREACH_NLRI.
    pub attributes: PathAttributes,
    /// IPv4 unicast prefixes announced in the classic field (next hop: NEXT_HOP).
    pub nlri: Vec<Ipv4Prefix>,
    /// MP_REACH_NLRI: one family's next hop and announced prefixes.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI: one family's withdrawn prefixes.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub mp_unreach: Option<MpUnreach>,
    /// Attribute order and flag bytes as received (empty: the standard layout).
    #[cfg_attr(feature = "serde", serde(skip))]
    pub layout: Layout,
}

/// The MP_REACH_NLRI attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MpReach {
    /// Family of the NLRI.
    pub family: Family,
    /// Next hop.
    pub next_hop: NextHop,
    /// Announced prefixes.
    pub nlri: Nlri,
}

/// The MP_UNREACH_NLRI attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MpUnreach {
    /// Family of the NLRI.
    pub family: Family,
    /// Withdrawn prefixes (empty: End-of-RIB when it is the only content).
    pub withdrawn: Nlri,
}

/// The next hop of MP_REACH_NLRI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum NextHop {
    /// An IPv4 next hop (IPv4 NLRI).
    Ipv4(Ipv4Addr),
    /// An IPv6 global next hop, optionally with a link-local one (32-octet form):
    /// IPv6 NLRI, or IPv4 NLRI with the extended next hop capability (RFC 8950).
    Ipv6 {
        /// Global address (may be `::` when only the link-local one is meaningful).
        global: Ipv6Addr,
        /// Link-local address.
        link_local: Option<Ipv6Addr>,
    },
    /// The next hop of a family this crate does not decode.
    Other(#[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex"))] Vec<u8>),
}

impl NextHop {
    /// Octets on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            NextHop::Ipv4(_) => 4,
            NextHop::Ipv6 {
                link_local: None, ..
            } => 16,
            NextHop::Ipv6 {
                link_local: Some(_),
                ..
            } => 32,
            NextHop::Other(bytes) => bytes.len(),
        }
    }

    pub(crate) fn encode(&self, buf: &mut bytes::BytesMut) {
        match self {
            NextHop::Ipv4(addr) => buf.extend_from_slice(&addr.octets()),
            NextHop::Ipv6 { global, link_local } => {
                buf.extend_from_slice(&global.octets());
                if let Some(link_local) = link_local {
                    buf.extend_from_slice(&link_local.octets());
                }
            }
            NextHop::Other(bytes) => buf.extend_from_slice(bytes),
        }
    }
}

/// The prefixes of an MP attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(untagged))]
pub enum Nlri {
    /// IPv4 prefixes (AFI 1, SAFI 1 or 2).
    Ipv4(Vec<Ipv4Prefix>),
    /// IPv6 prefixes (AFI 2, SAFI 1 or 2).
    Ipv6(Vec<Ipv6Prefix>),
    /// The NLRI of a family this crate does not decode, as bytes.
    Other(#[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex"))] Vec<u8>),
}

impl Nlri {
    /// An empty list of the kind `family` uses.
    pub fn empty(family: Family) -> Nlri {
        match (family.is_ip(), family.afi) {
            (true, Afi::IPV4) => Nlri::Ipv4(Vec::new()),
            (true, _) => Nlri::Ipv6(Vec::new()),
            (false, _) => Nlri::Other(Vec::new()),
        }
    }

    /// True when there is no prefix (and no byte).
    pub fn is_empty(&self) -> bool {
        match self {
            Nlri::Ipv4(prefixes) => prefixes.is_empty(),
            Nlri::Ipv6(prefixes) => prefixes.is_empty(),
            Nlri::Other(bytes) => bytes.is_empty(),
        }
    }

    /// Number of prefixes (0 for `Other`).
    pub fn len(&self) -> usize {
        match self {
            Nlri::Ipv4(prefixes) => prefixes.len(),
            Nlri::Ipv6(prefixes) => prefixes.len(),
            Nlri::Other(_) => 0,
        }
    }

    /// The prefixes as [`Prefix`] values.
    pub fn prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        let (v4, v6): (&[Ipv4Prefix], &[Ipv6Prefix]) = match self {
            Nlri::Ipv4(prefixes) => (prefixes, &[]),
            Nlri::Ipv6(prefixes) => (&[], prefixes),
            Nlri::Other(_) => (&[], &[]),
        };
        v4.iter()
            .copied()
            .map(Prefix::V4)
            .chain(v6.iter().copied().map(Prefix::V6))
    }
}

/// The order and flag octets of the attributes of a received UPDATE, so that it
/// encodes back to the same bytes. Empty means the standard layout: MP_REACH_NLRI,
/// MP_UNREACH_NLRI, then ascending type codes, standard flags, Extended Length only
/// when the value exceeds 255 octets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Layout {
    entries: Vec<(u8, u8)>,
}

impl Layout {
    /// `(type code, flag octet)` per attribute in wire order; empty for the standard.
    pub fn entries(&self) -> &[(u8, u8)] {
        &self.entries
    }

    /// True for the standard layout.
    pub fn is_standard(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn from_entries(entries: Vec<(u8, u8)>) -> Layout {
        Layout { entries }
    }
}

impl Update {
    /// The End-of-RIB marker of `family` (RFC 4724): an empty UPDATE for IPv4
    /// unicast, an UPDATE holding only an empty MP_UNREACH_NLRI for the others.
    pub fn end_of_rib(family: Family) -> Update {
        let mut update = Update::default();
        if family != Family::IPV4_UNICAST {
            update.mp_unreach = Some(MpUnreach {
                family,
                withdrawn: Nlri::empty(family),
            });
        }
        update
    }

    /// The family whose End-of-RIB this UPDATE is, if it is one.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.is_some()
            || !self.attributes.is_empty()
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::IPV4_UNICAST),
            Some(unreach) if unreach.withdrawn.is_empty() => Some(unreach.family),
            Some(_) => None,
        }
    }

    /// Every announced prefix with its family: the classic NLRI, then MP_REACH_NLRI.
    /// Under treat-as-withdraw these are the prefixes to withdraw (with
    /// [`Update::withdrawals`]).
    pub fn announcements(&self) -> impl Iterator<Item = (Family, Prefix)> + '_ {
        let classic = self
            .nlri
            .iter()
            .map(|p| (Family::IPV4_UNICAST, Prefix::V4(*p)));
        let mp = self
            .mp_reach
            .iter()
            .flat_map(|reach| reach.nlri.prefixes().map(|p| (reach.family, p)));
        classic.chain(mp)
    }

    /// Every withdrawn prefix with its family: the classic field, then MP_UNREACH_NLRI.
    pub fn withdrawals(&self) -> impl Iterator<Item = (Family, Prefix)> + '_ {
        let classic = self
            .withdrawn
            .iter()
            .map(|p| (Family::IPV4_UNICAST, Prefix::V4(*p)));
        let mp = self
            .mp_unreach
            .iter()
            .flat_map(|unreach| unreach.withdrawn.prefixes().map(|p| (unreach.family, p)));
        classic.chain(mp)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn end_of_rib_markers() {
        for family in [
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::new(Afi::L2VPN, crate::Safi::EVPN),
        ] {
            assert_eq!(Update::end_of_rib(family).end_of_rib_family(), Some(family));
        }
        let mut not = Update::end_of_rib(Family::IPV6_UNICAST);
        not.attributes.med = Some(1);
        assert_eq!(not.end_of_rib_family(), None);
    }
}
