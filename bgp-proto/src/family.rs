//! Address families: AFI (RFC 4760 / IANA Address Family Numbers), SAFI, and the
//! `Family` pair that MP-BGP, add-path, graceful restart and route refresh name.
//!
//! `Afi` and `Safi` are open newtypes: any value read from the wire is representable,
//! and the values this crate understands have named constants. `FamilySet` is a small
//! copyable set over the families whose NLRI this crate decodes (IPv4/IPv6 unicast and
//! multicast); it is what the negotiated [`SessionContext`](crate::SessionContext) uses.

use std::fmt;

/// Address Family Identifier (2 octets on the wire).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    /// IP version 4.
    pub const IPV4: Afi = Afi(1);
    /// IP version 6.
    pub const IPV6: Afi = Afi(2);
    /// Layer-2 VPN (EVPN uses it); recognised by name only.
    pub const L2VPN: Afi = Afi(25);
}

/// Subsequent Address Family Identifier (1 octet on the wire).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    /// Unicast forwarding.
    pub const UNICAST: Safi = Safi(1);
    /// Multicast RPF.
    pub const MULTICAST: Safi = Safi(2);
    /// MPLS-labeled VPN; recognised by name only.
    pub const MPLS_VPN: Safi = Safi(128);
    /// EVPN; recognised by name only.
    pub const EVPN: Safi = Safi(70);
    /// Flow specification; recognised by name only.
    pub const FLOWSPEC: Safi = Safi(133);
}

/// An (AFI, SAFI) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
}

impl Family {
    /// IPv4 unicast (the family of the classic UPDATE fields).
    pub const IPV4_UNICAST: Family = Family::new(Afi::IPV4, Safi::UNICAST);
    /// IPv4 multicast.
    pub const IPV4_MULTICAST: Family = Family::new(Afi::IPV4, Safi::MULTICAST);
    /// IPv6 unicast.
    pub const IPV6_UNICAST: Family = Family::new(Afi::IPV6, Safi::UNICAST);
    /// IPv6 multicast.
    pub const IPV6_MULTICAST: Family = Family::new(Afi::IPV6, Safi::MULTICAST);

    /// Builds a family from its parts.
    pub const fn new(afi: Afi, safi: Safi) -> Family {
        Family { afi, safi }
    }

    /// True for the families whose NLRI this crate decodes into prefixes
    /// (IPv4/IPv6, unicast/multicast). Other families travel as raw bytes.
    pub const fn is_ip(self) -> bool {
        (self.afi.0 == 1 || self.afi.0 == 2) && (self.safi.0 == 1 || self.safi.0 == 2)
    }

    /// Parses the names `Display` produces (`ipv4-unicast`, `ipv6`, `1/128` ...).
    /// `ipv4` and `ipv6` alone mean unicast.
    pub fn parse(text: &str) -> Option<Family> {
        let text = text.trim().to_ascii_lowercase();
        let named = match text.as_str() {
            "ipv4" | "ipv4-unicast" | "ipv4_unicast" => Some(Family::IPV4_UNICAST),
            "ipv6" | "ipv6-unicast" | "ipv6_unicast" => Some(Family::IPV6_UNICAST),
            "ipv4-multicast" | "ipv4_multicast" => Some(Family::IPV4_MULTICAST),
            "ipv6-multicast" | "ipv6_multicast" => Some(Family::IPV6_MULTICAST),
            _ => None,
        };
        if named.is_some() {
            return named;
        }
        let (afi, safi) = text.split_once('/')?;
        Some(Family::new(
            Afi(afi.parse().ok()?),
            Safi(safi.parse().ok()?),
        ))
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let afi = match self.afi {
            Afi::IPV4 => "ipv4",
            Afi::IPV6 => "ipv6",
            Afi::L2VPN => "l2vpn",
            Afi(other) => return write!(f, "{other}/{}", self.safi.0),
        };
        let safi = match self.safi {
            Safi::UNICAST => "unicast",
            Safi::MULTICAST => "multicast",
            Safi::MPLS_VPN => "vpn",
            Safi::EVPN => "evpn",
            Safi::FLOWSPEC => "flowspec",
            Safi(other) => return write!(f, "{}/{other}", self.afi.0),
        };
        write!(f, "{afi}-{safi}")
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The families a [`FamilySet`] can hold, in bit order.
const SET_MEMBERS: [Family; 4] = [
    Family::IPV4_UNICAST,
    Family::IPV4_MULTICAST,
    Family::IPV6_UNICAST,
    Family::IPV6_MULTICAST,
];

/// A copyable set of IP families (IPv4/IPv6 unicast/multicast): the families for
/// which a negotiated option (add-path, extended next hop ...) is in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FamilySet(u8);

impl FamilySet {
    /// The empty set.
    pub const EMPTY: FamilySet = FamilySet(0);
    /// Every family the set can hold.
    pub const ALL: FamilySet = FamilySet(0b1111);

    /// Adds `family`; returns false (and leaves the set alone) when the family is not
    /// one a `FamilySet` can hold.
    pub fn insert(&mut self, family: Family) -> bool {
        match Self::bit(family) {
            Some(bit) => {
                self.0 |= bit;
                true
            }
            None => false,
        }
    }

    /// Removes `family`.
    pub fn remove(&mut self, family: Family) {
        if let Some(bit) = Self::bit(family) {
            self.0 &= !bit;
        }
    }

    /// True when `family` is in the set.
    #[inline]
    pub fn contains(self, family: Family) -> bool {
        Self::bit(family).is_some_and(|bit| self.0 & bit != 0)
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The families in the set.
    pub fn iter(self) -> impl Iterator<Item = Family> {
        SET_MEMBERS
            .into_iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, family)| family)
    }

    #[inline]
    fn bit(family: Family) -> Option<u8> {
        let index = match (family.afi.0, family.safi.0) {
            (1, 1) => 0,
            (1, 2) => 1,
            (2, 1) => 2,
            (2, 2) => 3,
            _ => return None,
        };
        Some(1 << index)
    }
}

impl FromIterator<Family> for FamilySet {
    fn from_iter<I: IntoIterator<Item = Family>>(iter: I) -> Self {
        let mut set = FamilySet::EMPTY;
        for family in iter {
            set.insert(family);
        }
        set
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for FamilySet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for family in SET_MEMBERS {
            assert_eq!(Family::parse(&family.to_string()), Some(family));
        }
        assert_eq!(Family::parse("ipv6"), Some(Family::IPV6_UNICAST));
        assert_eq!(
            Family::parse("1/128"),
            Some(Family::new(Afi::IPV4, Safi::MPLS_VPN))
        );
        assert_eq!(Family::new(Afi(99), Safi(1)).to_string(), "99/1");
        assert_eq!(Family::parse("ipv5"), None);
    }

    #[test]
    fn set_holds_ip_families_only() {
        let mut set = FamilySet::EMPTY;
        assert!(set.insert(Family::IPV6_UNICAST));
        assert!(!set.insert(Family::new(Afi::L2VPN, Safi::EVPN)));
        assert!(set.contains(Family::IPV6_UNICAST));
        assert!(!set.contains(Family::IPV4_UNICAST));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![Family::IPV6_UNICAST]);
        set.remove(Family::IPV6_UNICAST);
        assert!(set.is_empty());
    }
}
