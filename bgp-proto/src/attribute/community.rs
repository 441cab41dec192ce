//! Community values: COMMUNITIES (RFC 1997), EXTENDED_COMMUNITIES (RFC 4360) and
//! LARGE_COMMUNITY (RFC 8092), with the RFC 7606 length rules (a non-zero multiple of
//! 4, 8 and 12 octets).

use std::fmt;

use bytes::{BufMut, BytesMut};

/// A standard community: `asn:value` in 2 + 2 octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// GRACEFUL_SHUTDOWN (RFC 8326).
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xffff_0000);
    /// BLACKHOLE (RFC 7999).
    pub const BLACKHOLE: Community = Community(0xffff_029a);
    /// NO_EXPORT.
    pub const NO_EXPORT: Community = Community(0xffff_ff01);
    /// NO_ADVERTISE.
    pub const NO_ADVERTISE: Community = Community(0xffff_ff02);
    /// NO_EXPORT_SUBCONFED.
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xffff_ff03);

    /// `asn:value`.
    pub const fn new(asn: u16, value: u16) -> Community {
        Community(((asn as u32) << 16) | value as u32)
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// An extended community (8 octets: type, subtype, value), kept as its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

impl ExtendedCommunity {
    /// Route target with a 2-octet AS (type 0x00, subtype 0x02).
    pub fn route_target(asn: u16, value: u32) -> ExtendedCommunity {
        let [a0, a1] = asn.to_be_bytes();
        let [v0, v1, v2, v3] = value.to_be_bytes();
        ExtendedCommunity([0x00, 0x02, a0, a1, v0, v1, v2, v3])
    }

    /// The type octet (high bit 0x40 set means non-transitive).
    pub fn kind(&self) -> u8 {
        self.0[0]
    }

    /// The subtype octet.
    pub fn subtype(&self) -> u8 {
        self.0[1]
    }

    /// Whether it may cross AS boundaries: bit 0x40 of the type octet clear (RFC 4360
    /// section 2); non-transitive ones are not sent to eBGP peers.
    pub fn is_transitive(&self) -> bool {
        self.kind() & 0x40 == 0
    }
}

impl fmt::Display for ExtendedCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        match (b[0], b[1]) {
            (0x00, 0x02) => write!(
                f,
                "rt:{}:{}",
                u16::from_be_bytes([b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]])
            ),
            (0x02, 0x02) => write!(
                f,
                "rt:{}:{}",
                u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            (0x01, 0x02) => write!(
                f,
                "rt:{}.{}.{}.{}:{}",
                b[2],
                b[3],
                b[4],
                b[5],
                u16::from_be_bytes([b[6], b[7]])
            ),
            _ => b.iter().try_for_each(|byte| write!(f, "{byte:02x}")),
        }
    }
}

/// A large community `global:local1:local2` (3 x 4 octets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (an AS number).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

#[cfg(feature = "serde")]
macro_rules! serialize_as_display {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    )*};
}

#[cfg(feature = "serde")]
serialize_as_display!(Community, ExtendedCommunity, LargeCommunity);

/// Decodes COMMUNITIES; `None` unless the length is a non-zero multiple of 4.
pub(crate) fn decode_communities(value: &[u8]) -> Option<Vec<Community>> {
    if value.is_empty() || value.len() % 4 != 0 {
        return None;
    }
    Some(
        value
            .chunks_exact(4)
            .map(|c| Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    )
}

/// Decodes EXTENDED_COMMUNITIES; `None` unless the length is a non-zero multiple of 8.
pub(crate) fn decode_extended(value: &[u8]) -> Option<Vec<ExtendedCommunity>> {
    if value.is_empty() || value.len() % 8 != 0 {
        return None;
    }
    Some(
        value
            .chunks_exact(8)
            .map(|c| ExtendedCommunity([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    )
}

/// Decodes LARGE_COMMUNITY; `None` unless the length is a non-zero multiple of 12.
pub(crate) fn decode_large(value: &[u8]) -> Option<Vec<LargeCommunity>> {
    if value.is_empty() || value.len() % 12 != 0 {
        return None;
    }
    let word = |c: &[u8]| u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    Some(
        value
            .chunks_exact(12)
            .map(|c| LargeCommunity {
                global: word(&c[0..4]),
                local1: word(&c[4..8]),
                local2: word(&c[8..12]),
            })
            .collect(),
    )
}

pub(crate) fn encode_communities(values: &[Community], buf: &mut BytesMut) {
    for value in values {
        buf.put_u32(value.0);
    }
}

pub(crate) fn encode_extended(values: &[ExtendedCommunity], buf: &mut BytesMut) {
    for value in values {
        buf.extend_from_slice(&value.0);
    }
}

pub(crate) fn encode_large(values: &[LargeCommunity], buf: &mut BytesMut) {
    for value in values {
        buf.put_u32(value.global);
        buf.put_u32(value.local1);
        buf.put_u32(value.local2);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lengths_follow_rfc7606() {
        assert_eq!(
            decode_communities(&[0, 1, 0, 2]),
            Some(vec![Community::new(1, 2)])
        );
        assert_eq!(decode_communities(&[]), None);
        assert_eq!(decode_communities(&[0, 1, 0]), None);
        assert_eq!(decode_extended(&[0; 12]), None);
        assert_eq!(decode_large(&[0; 13]), None);
        let large = decode_large(&[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]).unwrap();
        assert_eq!(large[0].to_string(), "1:2:3");
    }

    #[test]
    fn display() {
        assert_eq!(Community::NO_EXPORT.to_string(), "65535:65281");
        assert_eq!(
            ExtendedCommunity::route_target(65000, 7).to_string(),
            "rt:65000:7"
        );
        assert_eq!(
            ExtendedCommunity([0x43, 0, 0, 0, 0, 0, 0, 1]).to_string(),
            "4300000000000001"
        );
    }
}
