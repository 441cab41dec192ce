//! NLRI prefixes (RFC 4271 section 4.3, RFC 4760 section 5) with the optional add-path
//! path identifier of RFC 7911.
//!
//! A prefix on the wire is a length octet and the fewest octets that hold that many
//! bits, preceded by a 4-octet path identifier when add-path is negotiated for the
//! family. Decoding validates and decodes in one pass into a vector sized from the
//! field length (never more than a fixed multiple of it). Bits past the prefix length
//! are cleared (RFC 4271: they are irrelevant).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{Ipv4Net, Ipv6Net};

use crate::family::Afi;

/// An IPv4 prefix with its add-path path identifier (when add-path is in force).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Prefix {
    /// Path identifier (RFC 7911), `None` without add-path.
    pub path_id: Option<u32>,
    /// The prefix.
    pub net: Ipv4Net,
}

/// An IPv6 prefix with its add-path path identifier (when add-path is in force).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Prefix {
    /// Path identifier (RFC 7911), `None` without add-path.
    pub path_id: Option<u32>,
    /// The prefix.
    pub net: Ipv6Net,
}

/// Either kind of prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// IPv4.
    V4(Ipv4Prefix),
    /// IPv6.
    V6(Ipv6Prefix),
}

impl Ipv4Prefix {
    /// A prefix without path id; host bits are cleared.
    pub fn new(net: Ipv4Net) -> Ipv4Prefix {
        Ipv4Prefix {
            path_id: None,
            net: net.trunc(),
        }
    }

    /// Octets this prefix takes on the wire.
    #[inline]
    pub fn wire_len(&self, add_path: bool) -> usize {
        1 + usize::from(self.net.prefix_len()).div_ceil(8) + if add_path { 4 } else { 0 }
    }

    #[inline]
    pub(crate) fn encode(&self, add_path: bool, buf: &mut BytesMut) {
        if add_path {
            buf.put_u32(self.path_id.unwrap_or(0));
        }
        let len = self.net.prefix_len();
        buf.put_u8(len);
        let octets = self.net.addr().octets();
        buf.extend_from_slice(&octets[..usize::from(len).div_ceil(8)]);
    }
}

impl Ipv6Prefix {
    /// A prefix without path id; host bits are cleared.
    pub fn new(net: Ipv6Net) -> Ipv6Prefix {
        Ipv6Prefix {
            path_id: None,
            net: net.trunc(),
        }
    }

    /// Octets this prefix takes on the wire.
    #[inline]
    pub fn wire_len(&self, add_path: bool) -> usize {
        1 + usize::from(self.net.prefix_len()).div_ceil(8) + if add_path { 4 } else { 0 }
    }

    #[inline]
    pub(crate) fn encode(&self, add_path: bool, buf: &mut BytesMut) {
        if add_path {
            buf.put_u32(self.path_id.unwrap_or(0));
        }
        let len = self.net.prefix_len();
        buf.put_u8(len);
        let octets = self.net.addr().octets();
        buf.extend_from_slice(&octets[..usize::from(len).div_ceil(8)]);
    }
}

impl Prefix {
    /// The address family of the prefix.
    pub fn afi(&self) -> Afi {
        match self {
            Prefix::V4(_) => Afi::IPV4,
            Prefix::V6(_) => Afi::IPV6,
        }
    }

    /// The path identifier.
    pub fn path_id(&self) -> Option<u32> {
        match self {
            Prefix::V4(p) => p.path_id,
            Prefix::V6(p) => p.path_id,
        }
    }

    /// Octets this prefix takes on the wire.
    pub fn wire_len(&self, add_path: bool) -> usize {
        match self {
            Prefix::V4(p) => p.wire_len(add_path),
            Prefix::V6(p) => p.wire_len(add_path),
        }
    }

    /// Writes the prefix as NLRI.
    pub fn encode(&self, add_path: bool, buf: &mut BytesMut) {
        match self {
            Prefix::V4(p) => p.encode(add_path, buf),
            Prefix::V6(p) => p.encode(add_path, buf),
        }
    }
}

impl From<Ipv4Prefix> for Prefix {
    fn from(prefix: Ipv4Prefix) -> Self {
        Prefix::V4(prefix)
    }
}

impl From<Ipv6Prefix> for Prefix {
    fn from(prefix: Ipv6Prefix) -> Self {
        Prefix::V6(prefix)
    }
}

impl From<Ipv4Net> for Ipv4Prefix {
    fn from(net: Ipv4Net) -> Self {
        Ipv4Prefix::new(net)
    }
}

impl From<Ipv6Net> for Ipv6Prefix {
    fn from(net: Ipv6Net) -> Self {
        Ipv6Prefix::new(net)
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net)?;
        match self.path_id {
            Some(id) => write!(f, " path-id {id}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net)?;
        match self.path_id {
            Some(id) => write!(f, " path-id {id}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prefix::V4(p) => p.fmt(f),
            Prefix::V6(p) => p.fmt(f),
        }
    }
}

/// A prefix serializes as `"10.0.0.0/24"`, or `{"prefix": "10.0.0.0/24", "path_id": 7}`
/// with add-path.
#[cfg(feature = "serde")]
macro_rules! serialize_prefix {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                match self.path_id {
                    None => serializer.collect_str(&self.net),
                    Some(id) => {
                        let mut map = serializer.serialize_map(Some(2))?;
                        map.serialize_entry("prefix", &self.net.to_string())?;
                        map.serialize_entry("path_id", &id)?;
                        map.end()
                    }
                }
            }
        }
    )*};
}

#[cfg(feature = "serde")]
serialize_prefix!(Ipv4Prefix, Ipv6Prefix);

/// Why an NLRI field does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NlriError {
    /// A prefix length above 32 (IPv4) or 128 (IPv6).
    #[error("prefix length {length} exceeds {max} at offset {offset}")]
    PrefixTooLong {
        /// The length octet.
        length: u8,
        /// The family's maximum.
        max: u8,
        /// Offset of the length octet within the field.
        offset: usize,
    },
    /// A prefix (or its path id) runs past the end of the field.
    #[error("prefix at offset {offset} runs past the end of the field")]
    Truncated {
        /// Offset of the prefix within the field.
        offset: usize,
    },
}

/// Decodes an IPv4 NLRI field (withdrawn routes, NLRI, or MP NLRI of AFI 1).
///
/// One pass, validating as it goes. The vector is sized from the field length for
/// prefixes of four octets (five with a path id): exact for /17 to /24, a quarter too
/// large for /25 to /32, grown once or twice for shorter ones.
pub fn decode_ipv4(bytes: &[u8], add_path: bool) -> Result<Vec<Ipv4Prefix>, NlriError> {
    let mut out = Vec::new();
    decode_ipv4_into(bytes, add_path, &mut out)?;
    Ok(out)
}

/// [`decode_ipv4`] appending to `out` (left empty on error). Decoding straight into
/// the UPDATE saves moving the vector through a return value.
pub(crate) fn decode_ipv4_into(
    bytes: &[u8],
    add_path: bool,
    out: &mut Vec<Ipv4Prefix>,
) -> Result<(), NlriError> {
    let result = decode_ipv4_append(bytes, add_path, out);
    if result.is_err() {
        out.clear();
    }
    result
}

fn decode_ipv4_append(
    bytes: &[u8],
    add_path: bool,
    out: &mut Vec<Ipv4Prefix>,
) -> Result<(), NlriError> {
    let id_len = if add_path { 4 } else { 0 };
    out.reserve(bytes.len() / (4 + id_len));
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let path_id = if add_path {
            let id = bytes
                .get(at..at + 4)
                .ok_or(NlriError::Truncated { offset: start })?;
            at += 4;
            Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
        } else {
            None
        };
        let &len = bytes
            .get(at)
            .ok_or(NlriError::Truncated { offset: start })?;
        if len > 32 {
            return Err(NlriError::PrefixTooLong {
                length: len,
                max: 32,
                offset: at,
            });
        }
        let n = usize::from(len).div_ceil(8);
        // Four octets when they are there (the mask clears what belongs to the next
        // prefix), else only the prefix's own octets.
        let word = match bytes.get(at + 1..at + 5) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => {
                let own = bytes
                    .get(at + 1..at + 1 + n)
                    .ok_or(NlriError::Truncated { offset: start })?;
                let mut octets = [0u8; 4];
                octets[..n].copy_from_slice(own);
                u32::from_be_bytes(octets)
            }
        };
        at += 1 + n;
        if at > bytes.len() {
            return Err(NlriError::Truncated { offset: start });
        }
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        };
        let net = Ipv4Net::new(Ipv4Addr::from(word & mask), len).map_err(|_| {
            NlriError::PrefixTooLong {
                length: len,
                max: 32,
                offset: start,
            }
        })?;
        out.push(Ipv4Prefix { path_id, net });
    }
    Ok(())
}

/// Decodes an IPv6 NLRI field (MP NLRI of AFI 2); sized for /64 prefixes (9 octets).
pub fn decode_ipv6(bytes: &[u8], add_path: bool) -> Result<Vec<Ipv6Prefix>, NlriError> {
    let id_len = if add_path { 4 } else { 0 };
    let mut out = Vec::with_capacity(bytes.len() / (9 + id_len));
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let path_id = if add_path {
            let id = bytes
                .get(at..at + 4)
                .ok_or(NlriError::Truncated { offset: start })?;
            at += 4;
            Some(u32::from_be_bytes([id[0], id[1], id[2], id[3]]))
        } else {
            None
        };
        let &len = bytes
            .get(at)
            .ok_or(NlriError::Truncated { offset: start })?;
        if len > 128 {
            return Err(NlriError::PrefixTooLong {
                length: len,
                max: 128,
                offset: at,
            });
        }
        let n = usize::from(len).div_ceil(8);
        let own = bytes
            .get(at + 1..at + 1 + n)
            .ok_or(NlriError::Truncated { offset: start })?;
        let mut octets = [0u8; 16];
        octets[..n].copy_from_slice(own);
        at += 1 + n;
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        let net = Ipv6Net::new(Ipv6Addr::from(u128::from_be_bytes(octets) & mask), len).map_err(
            |_| NlriError::PrefixTooLong {
                length: len,
                max: 128,
                offset: start,
            },
        )?;
        out.push(Ipv6Prefix { path_id, net });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_prefixes_decode_and_encode() {
        let bytes = [0, 8, 10, 26, 10, 1, 2, 0xc0, 32, 1, 2, 3, 4];
        let prefixes = decode_ipv4(&bytes, false).unwrap();
        let shown: Vec<String> = prefixes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["0.0.0.0/0", "10.0.0.0/8", "10.1.2.192/26", "1.2.3.4/32"]
        );
        let mut buf = BytesMut::new();
        for prefix in &prefixes {
            prefix.encode(false, &mut buf);
        }
        assert_eq!(&buf[..], &bytes);
    }

    #[test]
    fn host_bits_are_cleared() {
        let prefixes = decode_ipv4(&[7, 0xff], false).unwrap();
        assert_eq!(prefixes[0].net.to_string(), "254.0.0.0/7");
    }

    #[test]
    fn add_path_ids_and_ipv6() {
        let bytes = [0, 0, 0, 7, 64, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 1];
        let prefixes = decode_ipv6(&bytes, true).unwrap();
        assert_eq!(prefixes[0].to_string(), "2001:db8:0:1::/64 path-id 7");
        let mut buf = BytesMut::new();
        prefixes[0].encode(true, &mut buf);
        assert_eq!(&buf[..], &bytes);
    }

    #[test]
    fn malformed_fields_are_refused() {
        assert_eq!(
            decode_ipv4(&[33, 1, 2, 3, 4, 5], false),
            Err(NlriError::PrefixTooLong {
                length: 33,
                max: 32,
                offset: 0
            })
        );
        assert_eq!(
            decode_ipv4(&[24, 10, 0], false),
            Err(NlriError::Truncated { offset: 0 })
        );
        assert_eq!(
            decode_ipv4(&[0, 0, 1], true),
            Err(NlriError::Truncated { offset: 0 })
        );
        assert_eq!(
            decode_ipv6(&[129; 17], false),
            Err(NlriError::PrefixTooLong {
                length: 129,
                max: 128,
                offset: 0
            })
        );
    }
}
