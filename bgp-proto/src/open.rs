//! OPEN message (RFC 4271 section 4.2) with capability optional parameters (RFC 5492)
//! and the extended optional parameters format of RFC 9072.
//!
//! Decoding refuses what no session can accept: a version other than 4 (2/1), a hold
//! time of 1 or 2 seconds (2/6), optional parameters other than capabilities (2/4),
//! inconsistent parameter lengths and malformed capabilities (2/0). Checks that need
//! configuration (peer AS, BGP identifier against ours) belong to the session.
//!
//! `OpenLayout` records how the capabilities were grouped into optional parameters so
//! that a received OPEN encodes back to the same bytes.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};

use crate::capability::Capability;
use crate::error::{Action, DecodeError, EncodeError};
use crate::family::Family;
use crate::notification::{Notification, code, open_subcode};
use crate::wire::{Reader, patch_u16};

/// The BGP version this crate speaks.
pub const BGP_VERSION: u8 = 4;
/// AS_TRANS (RFC 6793): the 2-octet stand-in for a 4-octet AS number.
pub const AS_TRANS: u16 = 23456;
/// Optional parameter type: Capabilities (RFC 5492).
pub const PARAMETER_CAPABILITIES: u8 = 2;
/// Non-Ext OP Type marking the extended optional parameters format (RFC 9072).
pub const PARAMETER_EXTENDED_LENGTH: u8 = 255;

/// An OPEN message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Open {
    /// Protocol version (4).
    pub version: u8,
    /// The sender's 2-octet AS number (AS_TRANS when its AS needs 4 octets).
    pub my_as: u16,
    /// Proposed hold time in seconds (0, or at least 3).
    pub hold_time: u16,
    /// The sender's BGP identifier.
    pub bgp_identifier: Ipv4Addr,
    /// Every capability, in the order received.
    pub capabilities: Vec<Capability>,
    /// How the capabilities are laid out in optional parameters.
    #[cfg_attr(
        feature = "serde",
        serde(skip_serializing_if = "OpenLayout::is_default")
    )]
    pub layout: OpenLayout,
}

/// How the capabilities of an OPEN sit in its optional parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct OpenLayout {
    /// Use the RFC 9072 extended format even when the parameters would fit without.
    pub extended: bool,
    /// The number of capabilities in each Capabilities parameter, in order. Empty (or
    /// not adding up to the number of capabilities) means one parameter per capability.
    pub grouping: Vec<u16>,
}

impl OpenLayout {
    /// True for the layout this crate writes by default.
    pub fn is_default(&self) -> bool {
        !self.extended && self.grouping.is_empty()
    }
}

/// Refuses the hold times RFC 4271 forbids (1 and 2 seconds) with 2/6.
pub fn check_hold_time(hold_time: u16) -> Result<(), Notification> {
    if hold_time == 1 || hold_time == 2 {
        return Err(Notification::new(
            code::OPEN_MESSAGE,
            open_subcode::UNACCEPTABLE_HOLD_TIME,
            Vec::new(),
        ));
    }
    Ok(())
}

impl Open {
    /// An OPEN for `asn` (written as AS_TRANS in `my_as` when it needs 4 octets; add
    /// [`Capability::FourOctetAs`] to `capabilities` to carry it).
    pub fn new(
        asn: u32,
        hold_time: u16,
        bgp_identifier: Ipv4Addr,
        capabilities: Vec<Capability>,
    ) -> Open {
        Open {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_identifier,
            capabilities,
            layout: OpenLayout::default(),
        }
    }

    /// The 4-octet AS of the 4-octet AS capability, if advertised.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities
            .iter()
            .find_map(|capability| match capability {
                Capability::FourOctetAs { asn } => Some(*asn),
                _ => None,
            })
    }

    /// The sender's AS: the 4-octet AS capability when present, else `my_as`.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The families of the multiprotocol capabilities; IPv4 unicast alone when there
    /// are none (RFC 4760 section 8).
    pub fn families(&self) -> Vec<Family> {
        let families: Vec<Family> = self
            .capabilities
            .iter()
            .filter_map(|capability| match capability {
                Capability::Multiprotocol { family } => Some(*family),
                _ => None,
            })
            .collect();
        if families.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            families
        }
    }

    /// True when a capability with this code was advertised.
    pub fn has_capability(&self, code: u8) -> bool {
        self.capabilities
            .iter()
            .any(|capability| capability.code() == code)
    }

    /// Decodes an OPEN body (the message without its 19-octet header).
    pub fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let unspecific = |reason: &'static str| {
            DecodeError::new(
                Action::SessionReset,
                code::OPEN_MESSAGE,
                open_subcode::UNSPECIFIC,
                reason,
            )
        };
        let mut reader = Reader::new(body);
        let (Some(version), Some(my_as), Some(hold_time), Some(identifier), Some(opt_len)) = (
            reader.u8(),
            reader.u16(),
            reader.u16(),
            reader.array::<4>(),
            reader.u8(),
        ) else {
            return Err(unspecific("OPEN shorter than its fixed fields"));
        };
        if version != BGP_VERSION {
            return Err(DecodeError::new(
                Action::SessionReset,
                code::OPEN_MESSAGE,
                open_subcode::UNSUPPORTED_VERSION,
                format!("version {version} is not 4"),
            )
            .with_data(&u16::from(BGP_VERSION).to_be_bytes()));
        }
        if let Err(notification) = check_hold_time(hold_time) {
            return Err(DecodeError {
                notification: Some(notification),
                ..DecodeError::new(
                    Action::SessionReset,
                    0,
                    0,
                    format!("hold time {hold_time} is refused"),
                )
            });
        }
        let rest = reader.rest();
        let extended = opt_len != 0 && rest.first() == Some(&PARAMETER_EXTENDED_LENGTH);
        let params = if extended {
            let mut ext = Reader::new(&rest[1..]);
            let length = ext
                .u16()
                .ok_or_else(|| unspecific("extended parameters length missing"))?;
            if ext.len() != usize::from(length) {
                return Err(unspecific(
                    "extended optional parameters length disagrees with the message",
                ));
            }
            ext.rest()
        } else {
            if rest.len() != usize::from(opt_len) {
                return Err(unspecific(
                    "optional parameters length disagrees with the message",
                ));
            }
            rest
        };
        let mut capabilities = Vec::new();
        let mut grouping = Vec::new();
        let mut parameter_lengths = Vec::new();
        let mut params = Reader::new(params);
        while !params.is_empty() {
            let kind = params.u8();
            let length = if extended {
                params.u16()
            } else {
                params.u8().map(u16::from)
            };
            let (Some(kind), Some(length)) = (kind, length) else {
                return Err(unspecific("optional parameter header truncated"));
            };
            let value = params
                .take(usize::from(length))
                .ok_or_else(|| unspecific("optional parameter overruns the parameters"))?;
            if kind != PARAMETER_CAPABILITIES {
                return Err(DecodeError::new(
                    Action::SessionReset,
                    code::OPEN_MESSAGE,
                    open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                    format!("optional parameter type {kind} is not supported"),
                ));
            }
            let before = capabilities.len();
            parameter_lengths.push(value.len());
            let mut caps = Reader::new(value);
            while !caps.is_empty() {
                let (Some(code), Some(length)) = (caps.u8(), caps.u8()) else {
                    return Err(unspecific("capability header truncated"));
                };
                let value = caps
                    .take(usize::from(length))
                    .ok_or_else(|| unspecific("capability overruns its optional parameter"))?;
                capabilities.push(Capability::decode(code, value)?);
            }
            grouping.push(u16::try_from(capabilities.len() - before).unwrap_or(u16::MAX));
        }
        // Record the extended format only when it was a choice, not a necessity.
        let extended = extended && !needs_extended_format(parameter_lengths.into_iter());
        let mut layout = OpenLayout { extended, grouping };
        if layout.grouping.iter().all(|&count| count == 1) {
            layout.grouping.clear();
        }
        let open = Open {
            version,
            my_as,
            hold_time,
            bgp_identifier: Ipv4Addr::from(identifier),
            capabilities,
            layout,
        };
        // RFC 7607: no configuration accepts a peer of AS 0.
        if open.my_as == 0 || open.four_octet_as() == Some(0) {
            let field = if open.my_as == 0 {
                "My Autonomous System"
            } else {
                "the 4-octet AS capability"
            };
            return Err(DecodeError::new(
                Action::SessionReset,
                code::OPEN_MESSAGE,
                open_subcode::BAD_PEER_AS,
                format!("AS 0 in {field} (RFC 7607)"),
            ));
        }
        Ok(open)
    }

    /// Writes the OPEN body (without the 19-octet header).
    pub(crate) fn encode_body(&self, buf: &mut BytesMut) -> Result<(), EncodeError> {
        if self
            .capabilities
            .iter()
            .any(|c| !c.fits() || c.value_len() > 255)
        {
            return Err(EncodeError::FieldTooLong {
                what: "capability value",
            });
        }
        let groups = self.groups();
        let group_len = |group: &[Capability]| -> usize {
            group
                .iter()
                .map(|capability| 2 + capability.value_len())
                .sum()
        };
        let plain_len: usize = groups.iter().map(|group| 2 + group_len(group)).sum();
        let extended = self.layout.extended
            || needs_extended_format(groups.iter().map(|group| group_len(group)));
        buf.put_u8(self.version);
        buf.put_u16(self.my_as);
        buf.put_u16(self.hold_time);
        buf.extend_from_slice(&self.bgp_identifier.octets());
        if extended {
            buf.put_u8(255);
            buf.put_u8(PARAMETER_EXTENDED_LENGTH);
            let total: usize = groups.iter().map(|group| 3 + group_len(group)).sum();
            let total = u16::try_from(total).map_err(|_| EncodeError::FieldTooLong {
                what: "optional parameters",
            })?;
            buf.put_u16(total);
        } else {
            // plain_len <= 255 here.
            buf.put_u8(plain_len as u8);
        }
        for group in groups {
            buf.put_u8(PARAMETER_CAPABILITIES);
            let at = buf.len();
            if extended {
                buf.put_u16(0);
            } else {
                buf.put_u8(0);
            }
            for capability in group {
                buf.put_u8(capability.code());
                // value_len() <= 255, checked above.
                buf.put_u8(capability.value_len() as u8);
                capability.encode_value(buf);
            }
            let length = buf.len() - at - if extended { 2 } else { 1 };
            if extended {
                // Bounded by `total` above.
                patch_u16(buf, at, length as u16);
            } else {
                buf[at] = length as u8;
            }
        }
        Ok(())
    }

    /// The capabilities split into optional parameters per the layout.
    fn groups(&self) -> Vec<&[Capability]> {
        let grouping = &self.layout.grouping;
        let counted: usize = grouping.iter().map(|&count| usize::from(count)).sum();
        if grouping.is_empty() || counted != self.capabilities.len() {
            return self.capabilities.chunks(1).collect();
        }
        let mut rest = &self.capabilities[..];
        grouping
            .iter()
            .map(|&count| {
                let (head, tail) = rest.split_at(usize::from(count));
                rest = tail;
                head
            })
            .collect()
    }
}

/// True when parameters of these value lengths do not fit the RFC 4271 format.
fn needs_extended_format(lengths: impl Iterator<Item = usize>) -> bool {
    let mut total = 0;
    for length in lengths {
        if length > 255 {
            return true;
        }
        total += 2 + length;
    }
    total > 255
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::capability::AddPath;

    fn sample() -> Open {
        Open::new(
            4_200_000_001,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![
                Capability::Multiprotocol {
                    family: Family::IPV4_UNICAST,
                },
                Capability::FourOctetAs { asn: 4_200_000_001 },
                Capability::AddPath {
                    entries: vec![AddPath {
                        family: Family::IPV4_UNICAST,
                        send_receive: 1,
                    }],
                },
            ],
        )
    }

    fn encode(open: &Open) -> BytesMut {
        let mut buf = BytesMut::new();
        open.encode_body(&mut buf).unwrap();
        buf
    }

    #[test]
    fn as_trans_and_four_octet_as() {
        let open = sample();
        assert_eq!(open.my_as, AS_TRANS);
        assert_eq!(open.asn(), 4_200_000_001);
        assert_eq!(Open::decode_body(&encode(&open)).unwrap(), open);
    }

    #[test]
    fn grouped_and_extended_layouts_round_trip() {
        let mut grouped = sample();
        grouped.layout.grouping = vec![2, 1];
        let bytes = encode(&grouped);
        assert_eq!(bytes[9], 2 + 12 + 2 + 6);
        assert_eq!(Open::decode_body(&bytes).unwrap(), grouped);

        let mut extended = sample();
        extended.layout.extended = true;
        let bytes = encode(&extended);
        assert_eq!(&bytes[9..11], &[255, 255]);
        assert_eq!(Open::decode_body(&bytes).unwrap(), extended);
    }

    #[test]
    fn large_parameters_switch_to_extended_format() {
        let mut open = sample();
        for code in 200..205 {
            open.capabilities.push(Capability::Unknown {
                code,
                bytes: vec![7; 100],
            });
        }
        let bytes = encode(&open);
        assert_eq!(&bytes[9..11], &[255, 255]);
        let decoded = Open::decode_body(&bytes).unwrap();
        // The format was a necessity, so the layout does not need to ask for it.
        assert_eq!(decoded, open);
    }

    #[test]
    fn refusals() {
        let mut bytes = encode(&sample()).to_vec();
        bytes[0] = 3;
        let error = Open::decode_body(&bytes).unwrap_err();
        assert_eq!(
            error.notification,
            Some(Notification::new(2, 1, vec![0, 4]))
        );

        let mut open = sample();
        open.hold_time = 2;
        let error = Open::decode_body(&encode(&open)).unwrap_err();
        assert_eq!(
            error.notification.map(|n| (n.code, n.subcode)),
            Some((2, 6))
        );
        assert!(check_hold_time(0).is_ok() && check_hold_time(3).is_ok());
        assert!(check_hold_time(1).is_err());

        // Authentication parameter (type 1): unsupported optional parameter.
        let bytes = [4, 0, 1, 0, 90, 1, 1, 1, 1, 3, 1, 1, 0];
        let error = Open::decode_body(&bytes).unwrap_err();
        assert_eq!(
            error.notification.map(|n| (n.code, n.subcode)),
            Some((2, 4))
        );

        // Parameter length overrunning the message.
        let bytes = [4, 0, 1, 0, 90, 1, 1, 1, 1, 4, 2, 6, 1, 4];
        let error = Open::decode_body(&bytes).unwrap_err();
        assert_eq!(
            error.notification.map(|n| (n.code, n.subcode)),
            Some((2, 0))
        );
    }
}
