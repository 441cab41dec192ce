//! Capabilities advertised in OPEN (RFC 5492): multiprotocol (RFC 4760), route refresh
//! (RFC 2918), extended next hop (RFC 8950), extended message (RFC 8654), graceful
//! restart (RFC 4724), 4-octet AS (RFC 6793), add-path (RFC 7911), enhanced route
//! refresh (RFC 7313), hostname (FRR's FQDN capability, draft-walton-bgp-hostname) and
//! any other code kept as bytes.
//!
//! Decoding is strict for capabilities that change how later messages are read (a
//! wrong length there is an OPEN error 2/0); the informational hostname capability is
//! kept as `Unknown` when it does not parse.

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::multi::length_data;
use nom::number::complete::be_u8;

use crate::error::{Action, DecodeError};
use crate::family::{Afi, Family, Safi};
use crate::notification::{code, open_subcode};
use crate::wire::Reader;

/// Capability codes (IANA "Capability Codes").
pub mod capability_code {
    /// Multiprotocol Extensions (RFC 4760).
    pub const MULTIPROTOCOL: u8 = 1;
    /// Route Refresh (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 2;
    /// Extended Next Hop Encoding (RFC 8950).
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    /// Extended Message (RFC 8654).
    pub const EXTENDED_MESSAGE: u8 = 6;
    /// BGP Role (RFC 9234); kept as `Unknown`.
    pub const ROLE: u8 = 9;
    /// Graceful Restart (RFC 4724).
    pub const GRACEFUL_RESTART: u8 = 64;
    /// Support for 4-octet AS numbers (RFC 6793).
    pub const FOUR_OCTET_AS: u8 = 65;
    /// ADD-PATH (RFC 7911).
    pub const ADD_PATH: u8 = 69;
    /// Enhanced Route Refresh (RFC 7313).
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    /// Hostname / FQDN (draft-walton-bgp-hostname-capability, sent by FRR).
    pub const HOSTNAME: u8 = 73;
    /// Pre-standard route refresh (Cisco); kept as `Unknown`.
    pub const ROUTE_REFRESH_OLD: u8 = 128;
}

/// One capability.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "kebab-case"))]
pub enum Capability {
    /// Multiprotocol Extensions for one family.
    Multiprotocol {
        /// The family.
        family: Family,
    },
    /// Route Refresh.
    RouteRefresh,
    /// Extended Next Hop Encoding: the (NLRI family, next hop AFI) pairs supported.
    ExtendedNextHop {
        /// The pairs.
        entries: Vec<ExtendedNextHop>,
    },
    /// Extended Message.
    ExtendedMessage,
    /// Graceful Restart.
    GracefulRestart(GracefulRestart),
    /// Support for 4-octet AS numbers, with the speaker's AS.
    FourOctetAs {
        /// The speaker's (4-octet) AS number.
        asn: u32,
    },
    /// ADD-PATH: per family, whether the speaker sends and/or receives path ids.
    AddPath {
        /// The families.
        entries: Vec<AddPath>,
    },
    /// Enhanced Route Refresh.
    EnhancedRouteRefresh,
    /// Hostname and domain name (FRR).
    Hostname {
        /// Host name.
        hostname: String,
        /// Domain name (often empty).
        domain: String,
    },
    /// Any other capability, kept as its value bytes.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex"))]
        bytes: Vec<u8>,
    },
}

/// One entry of the extended next hop capability (RFC 8950).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ExtendedNextHop {
    /// NLRI family (the SAFI is 2 octets on the wire; only values below 256 parse).
    pub family: Family,
    /// AFI of the next hop (IPv6 for IPv4 NLRI).
    pub next_hop_afi: Afi,
}

/// The graceful restart capability (RFC 4724).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GracefulRestart {
    /// The 4 restart flag bits (R = 0x8, N = 0x4 per RFC 8538).
    pub flags: u8,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Families whose forwarding state may be preserved.
    pub families: Vec<GracefulRestartFamily>,
}

impl GracefulRestart {
    /// Restart State bit.
    pub const RESTART_STATE: u8 = 0x8;
    /// Graceful Notification bit (RFC 8538).
    pub const NOTIFICATION: u8 = 0x4;

    /// True when the speaker says it has restarted.
    pub fn restart_state(&self) -> bool {
        self.flags & Self::RESTART_STATE != 0
    }

    /// True when the speaker supports graceful restart after a NOTIFICATION
    /// (RFC 8538's N bit).
    pub fn notification(&self) -> bool {
        self.flags & Self::NOTIFICATION != 0
    }
}

/// One family of the graceful restart capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct GracefulRestartFamily {
    /// The family.
    pub family: Family,
    /// The per-family flags (Forwarding State = 0x80).
    pub flags: u8,
}

impl GracefulRestartFamily {
    /// Forwarding State bit.
    pub const FORWARDING_STATE: u8 = 0x80;

    /// True when forwarding state was preserved for the family.
    pub fn forwarding_preserved(&self) -> bool {
        self.flags & Self::FORWARDING_STATE != 0
    }
}

/// One family of the add-path capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct AddPath {
    /// The family.
    pub family: Family,
    /// Send/Receive field: 1 receive, 2 send, 3 both (other values kept as sent).
    pub send_receive: u8,
}

impl AddPath {
    /// The speaker can receive multiple paths.
    pub const RECEIVE: u8 = 1;
    /// The speaker can send multiple paths.
    pub const SEND: u8 = 2;
    /// Both.
    pub const BOTH: u8 = 3;

    /// True when the advertising speaker is able to receive path ids.
    pub fn can_receive(&self) -> bool {
        matches!(self.send_receive, 1 | 3)
    }

    /// True when the advertising speaker is able to send path ids.
    pub fn can_send(&self) -> bool {
        matches!(self.send_receive, 2 | 3)
    }
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        use capability_code as c;
        match self {
            Capability::Multiprotocol { .. } => c::MULTIPROTOCOL,
            Capability::RouteRefresh => c::ROUTE_REFRESH,
            Capability::ExtendedNextHop { .. } => c::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => c::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => c::GRACEFUL_RESTART,
            Capability::FourOctetAs { .. } => c::FOUR_OCTET_AS,
            Capability::AddPath { .. } => c::ADD_PATH,
            Capability::EnhancedRouteRefresh => c::ENHANCED_ROUTE_REFRESH,
            Capability::Hostname { .. } => c::HOSTNAME,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Length of the capability value in octets.
    pub fn value_len(&self) -> usize {
        match self {
            Capability::Multiprotocol { .. } | Capability::FourOctetAs { .. } => 4,
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => 0,
            Capability::ExtendedNextHop { entries } => 6 * entries.len(),
            Capability::GracefulRestart(gr) => 2 + 4 * gr.families.len(),
            Capability::AddPath { entries } => 4 * entries.len(),
            Capability::Hostname { hostname, domain } => 2 + hostname.len() + domain.len(),
            Capability::Unknown { bytes, .. } => bytes.len(),
        }
    }

    /// Decodes one capability value. A capability this crate reads whose value has
    /// the wrong size is an OPEN error (2/0).
    pub fn decode(code: u8, value: &[u8]) -> Result<Capability, DecodeError> {
        use capability_code as c;
        let bad = || {
            DecodeError::new(
                Action::SessionReset,
                code::OPEN_MESSAGE,
                open_subcode::UNSPECIFIC,
                format!(
                    "capability {code} has a malformed value of {} octets",
                    value.len()
                ),
            )
        };
        let mut reader = Reader::new(value);
        let capability = match code {
            c::MULTIPROTOCOL => {
                let [a0, a1, _reserved, safi] = reader.array::<4>().ok_or_else(bad)?;
                Capability::Multiprotocol {
                    family: Family::new(Afi(u16::from_be_bytes([a0, a1])), Safi(safi)),
                }
            }
            c::ROUTE_REFRESH => Capability::RouteRefresh,
            c::EXTENDED_MESSAGE => Capability::ExtendedMessage,
            c::ENHANCED_ROUTE_REFRESH => Capability::EnhancedRouteRefresh,
            c::EXTENDED_NEXT_HOP => {
                if value.len() % 6 != 0 {
                    return Err(bad());
                }
                let mut entries = Vec::with_capacity(value.len() / 6);
                while let Some([a0, a1, s0, s1, n0, n1]) = reader.array::<6>() {
                    if s0 != 0 {
                        return Err(bad());
                    }
                    entries.push(ExtendedNextHop {
                        family: Family::new(Afi(u16::from_be_bytes([a0, a1])), Safi(s1)),
                        next_hop_afi: Afi(u16::from_be_bytes([n0, n1])),
                    });
                }
                Capability::ExtendedNextHop { entries }
            }
            c::GRACEFUL_RESTART => {
                let head = reader.u16().ok_or_else(bad)?;
                if reader.len() % 4 != 0 {
                    return Err(bad());
                }
                let mut families = Vec::with_capacity(reader.len() / 4);
                while let Some([a0, a1, safi, flags]) = reader.array::<4>() {
                    let family = Family::new(Afi(u16::from_be_bytes([a0, a1])), Safi(safi));
                    families.push(GracefulRestartFamily { family, flags });
                }
                Capability::GracefulRestart(GracefulRestart {
                    flags: (head >> 12) as u8,
                    restart_time: head & 0x0fff,
                    families,
                })
            }
            c::FOUR_OCTET_AS => Capability::FourOctetAs {
                asn: reader.u32().ok_or_else(bad)?,
            },
            c::ADD_PATH => {
                if value.len() % 4 != 0 {
                    return Err(bad());
                }
                let mut entries = Vec::with_capacity(value.len() / 4);
                while let Some([a0, a1, safi, send_receive]) = reader.array::<4>() {
                    let family = Family::new(Afi(u16::from_be_bytes([a0, a1])), Safi(safi));
                    entries.push(AddPath {
                        family,
                        send_receive,
                    });
                }
                Capability::AddPath { entries }
            }
            c::HOSTNAME => {
                return Ok(
                    decode_hostname(value).unwrap_or_else(|| Capability::Unknown {
                        code,
                        bytes: value.to_vec(),
                    }),
                );
            }
            _ => {
                return Ok(Capability::Unknown {
                    code,
                    bytes: value.to_vec(),
                });
            }
        };
        if !reader.is_empty() {
            return Err(bad());
        }
        Ok(capability)
    }

    /// Writes the capability value (without code and length).
    pub(crate) fn encode_value(&self, buf: &mut BytesMut) {
        match self {
            Capability::Multiprotocol { family } => put_family_reserved(buf, *family),
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop { entries } => {
                for entry in entries {
                    buf.put_u16(entry.family.afi.0);
                    buf.put_u16(u16::from(entry.family.safi.0));
                    buf.put_u16(entry.next_hop_afi.0);
                }
            }
            Capability::GracefulRestart(gr) => {
                buf.put_u16((u16::from(gr.flags & 0xf) << 12) | (gr.restart_time & 0x0fff));
                for entry in &gr.families {
                    buf.put_u16(entry.family.afi.0);
                    buf.put_u8(entry.family.safi.0);
                    buf.put_u8(entry.flags);
                }
            }
            Capability::FourOctetAs { asn } => buf.put_u32(*asn),
            Capability::AddPath { entries } => {
                for entry in entries {
                    buf.put_u16(entry.family.afi.0);
                    buf.put_u8(entry.family.safi.0);
                    buf.put_u8(entry.send_receive);
                }
            }
            Capability::Hostname { hostname, domain } => {
                for text in [hostname, domain] {
                    // `Capability::check` limits both to 255 octets before encoding.
                    buf.put_u8(text.len().min(255) as u8);
                    buf.extend_from_slice(&text.as_bytes()[..text.len().min(255)]);
                }
            }
            Capability::Unknown { bytes, .. } => buf.extend_from_slice(bytes),
        }
    }

    /// True when the value can be encoded as is (hostname parts fit a length octet).
    pub(crate) fn fits(&self) -> bool {
        match self {
            Capability::Hostname { hostname, domain } => hostname.len() < 256 && domain.len() < 256,
            Capability::GracefulRestart(gr) => gr.restart_time <= 0x0fff && gr.flags <= 0xf,
            _ => true,
        }
    }
}

fn put_family_reserved(buf: &mut BytesMut, family: Family) {
    buf.put_u16(family.afi.0);
    buf.put_u8(0);
    buf.put_u8(family.safi.0);
}

/// Hostname capability value: length-prefixed host name then length-prefixed domain.
fn decode_hostname(value: &[u8]) -> Option<Capability> {
    let (rest, hostname) = length_data(be_u8::<&[u8], ()>).parse(value).ok()?;
    let (rest, domain) = length_data(be_u8::<&[u8], ()>).parse(rest).ok()?;
    if !rest.is_empty() {
        return None;
    }
    Some(Capability::Hostname {
        hostname: String::from_utf8(hostname.to_vec()).ok()?,
        domain: String::from_utf8(domain.to_vec()).ok()?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip(capability: &Capability) -> Capability {
        let mut buf = BytesMut::new();
        capability.encode_value(&mut buf);
        assert_eq!(buf.len(), capability.value_len());
        Capability::decode(capability.code(), &buf).unwrap()
    }

    #[test]
    fn every_kind_round_trips() {
        let all = [
            Capability::Multiprotocol {
                family: Family::IPV6_UNICAST,
            },
            Capability::RouteRefresh,
            Capability::ExtendedNextHop {
                entries: vec![ExtendedNextHop {
                    family: Family::IPV4_UNICAST,
                    next_hop_afi: Afi::IPV6,
                }],
            },
            Capability::ExtendedMessage,
            Capability::GracefulRestart(GracefulRestart {
                flags: 0xc,
                restart_time: 120,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    flags: 0x80,
                }],
            }),
            Capability::FourOctetAs { asn: 4_200_000_000 },
            Capability::AddPath {
                entries: vec![AddPath {
                    family: Family::IPV4_UNICAST,
                    send_receive: 3,
                }],
            },
            Capability::EnhancedRouteRefresh,
            Capability::Hostname {
                hostname: "node-1".into(),
                domain: String::new(),
            },
            Capability::Unknown {
                code: 128,
                bytes: vec![],
            },
        ];
        for capability in &all {
            assert_eq!(&round_trip(capability), capability);
        }
    }

    #[test]
    fn wrong_sizes_are_open_errors() {
        for (code, value) in [
            (1u8, &[0u8, 1, 0][..]),
            (65, &[0, 0, 1]),
            (69, &[0, 1, 1]),
            (2, &[0]),
        ] {
            let error = Capability::decode(code, value).unwrap_err();
            assert_eq!(
                error.notification.map(|n| (n.code, n.subcode)),
                Some((2, 0))
            );
        }
        // A hostname that does not parse is kept, not refused.
        assert_eq!(
            Capability::decode(73, &[9, b'a']).unwrap(),
            Capability::Unknown {
                code: 73,
                bytes: vec![9, b'a']
            }
        );
    }
}
