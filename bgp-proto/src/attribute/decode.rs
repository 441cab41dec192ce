//! Decoding of one path attribute (other than MP_REACH / MP_UNREACH) into
//! [`PathAttributes`], and the RFC 7606 action for each way it can be wrong:
//!
//! | attribute | when malformed | notes |
//! |---|---|---|
//! | ORIGIN, AS_PATH, NEXT_HOP, MULTI_EXIT_DISC | treat-as-withdraw | |
//! | LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST | treat-as-withdraw (iBGP) | from eBGP: always discarded |
//! | COMMUNITIES, EXTENDED_COMMUNITIES, LARGE_COMMUNITY, OTC | treat-as-withdraw | |
//! | ATOMIC_AGGREGATE, AGGREGATOR | attribute discard | |
//! | AS4_PATH, AS4_AGGREGATOR | attribute discard | from a 4-octet peer: always discarded |
//! | AS 0 in AS_PATH or AS4_PATH | treat-as-withdraw | RFC 7607 |
//! | AS 0 in AGGREGATOR or AS4_AGGREGATOR | attribute discard | RFC 7607 |
//! | wrong Optional / Transitive flags (any known) | treat-as-withdraw | 3/4 |
//! | unknown, Optional bit clear | session reset | 3/2 |
//! | unknown, optional | kept as [`RawAttribute`] | |
//!
//! A decoder writes into `attrs` only once the whole value has parsed, so a malformed
//! attribute leaves no trace.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use super::community::{decode_communities, decode_extended, decode_large};
use super::{
    Aggregator, AsPath, Origin, PathAttributes, RawAttribute, attribute_type as t, expected_flags,
    flags, type_name,
};
use crate::context::SessionContext;
use crate::error::{Action, DecodeError, Problems};
use crate::notification::{code, update_subcode as sub};

/// A malformed value: the UPDATE error subcode and why.
struct Fault {
    subcode: u8,
    reason: Cow<'static, str>,
    /// Treat-as-withdraw even for an attribute whose faults are otherwise discarded
    /// (AS 0 in AS4_PATH, RFC 7607).
    withdraw: bool,
}

impl Fault {
    fn new(subcode: u8, reason: impl Into<Cow<'static, str>>) -> Fault {
        Fault {
            subcode,
            reason: reason.into(),
            withdraw: false,
        }
    }
}

fn length(expected: &'static str, got: usize) -> Fault {
    Fault::new(
        sub::ATTRIBUTE_LENGTH,
        format!("length {got}, expected {expected}"),
    )
}

/// RFC 7607: AS 0 in a path makes the routes treat-as-withdraw.
fn check_no_as_zero(path: &AsPath, name: &str) -> Result<(), Fault> {
    if path.contains(0) {
        return Err(Fault {
            withdraw: true,
            ..Fault::new(sub::MALFORMED_AS_PATH, format!("AS 0 in {name} (RFC 7607)"))
        });
    }
    Ok(())
}

/// Decodes one attribute. `raw` is the whole attribute (flags, type, length, value),
/// used as NOTIFICATION data.
pub(crate) fn decode_attribute(
    flags: u8,
    code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &SessionContext,
    attrs: &mut PathAttributes,
    errors: &mut Problems,
) {
    if !ctx.ibgp && matches!(code, t::LOCAL_PREF | t::ORIGINATOR_ID | t::CLUSTER_LIST) {
        errors.push(
            DecodeError::silent(
                Action::AttributeDiscard,
                "received from an eBGP peer, discarded",
            )
            .with_attribute(code),
        );
        return;
    }
    if ctx.four_octet_as && matches!(code, t::AS4_PATH | t::AS4_AGGREGATOR) {
        errors.push(
            DecodeError::silent(
                Action::AttributeDiscard,
                "received from a 4-octet AS peer, discarded",
            )
            .with_attribute(code),
        );
        return;
    }
    let Some(expected) = expected_flags(code) else {
        if flags & flags::OPTIONAL == 0 {
            errors.push(
                DecodeError::new(
                    Action::SessionReset,
                    code::UPDATE_MESSAGE,
                    sub::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    format!("unrecognized well-known attribute type {code}"),
                )
                .with_data(raw)
                .with_attribute(code),
            );
        } else {
            let flags = flags & (flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL);
            attrs.unknown.push(RawAttribute {
                flags,
                code,
                value: value.to_vec(),
            });
        }
        return;
    };
    if flags & (flags::OPTIONAL | flags::TRANSITIVE) != expected {
        errors.push(
            DecodeError::new(
                Action::TreatAsWithdraw,
                code::UPDATE_MESSAGE,
                sub::ATTRIBUTE_FLAGS,
                format!("flags 0x{flags:02x} conflict with the type"),
            )
            .with_data(raw)
            .with_attribute(code),
        );
        return;
    }
    if let Err(fault) = decode_value(code, value, ctx, attrs) {
        let action = match code {
            _ if fault.withdraw => Action::TreatAsWithdraw,
            t::ATOMIC_AGGREGATE | t::AGGREGATOR | t::AS4_PATH | t::AS4_AGGREGATOR => {
                Action::AttributeDiscard
            }
            _ => Action::TreatAsWithdraw,
        };
        let data = if fault.subcode == sub::MALFORMED_AS_PATH {
            &[][..]
        } else {
            raw
        };
        errors.push(
            DecodeError::new(action, code::UPDATE_MESSAGE, fault.subcode, fault.reason)
                .with_data(data)
                .with_attribute(code),
        );
    }
}

/// Parses a known attribute value into `attrs`.
fn decode_value(
    code: u8,
    value: &[u8],
    ctx: &SessionContext,
    attrs: &mut PathAttributes,
) -> Result<(), Fault> {
    match code {
        t::ORIGIN => {
            let [origin] = value else {
                return Err(length("1", value.len()));
            };
            attrs.origin = Some(Origin::from_code(*origin).ok_or_else(|| {
                Fault::new(sub::INVALID_ORIGIN, format!("undefined value {origin}"))
            })?);
        }
        t::AS_PATH => {
            let path = AsPath::decode(value, ctx.four_octet_as)
                .map_err(|error| Fault::new(sub::MALFORMED_AS_PATH, error.to_string()))?;
            check_no_as_zero(&path, "AS_PATH")?;
            attrs.as_path = Some(path);
        }
        t::NEXT_HOP => attrs.next_hop = Some(Ipv4Addr::from(u32_of(value)?)),
        t::MULTI_EXIT_DISC => attrs.med = Some(u32_of(value)?),
        t::LOCAL_PREF => attrs.local_pref = Some(u32_of(value)?),
        t::ATOMIC_AGGREGATE => {
            if !value.is_empty() {
                return Err(length("0", value.len()));
            }
            attrs.atomic_aggregate = true;
        }
        t::AGGREGATOR => attrs.aggregator = Some(aggregator(value, ctx.four_octet_as)?),
        t::COMMUNITIES => {
            attrs.communities = decode_communities(value)
                .ok_or_else(|| length("a non-zero multiple of 4", value.len()))?;
        }
        t::ORIGINATOR_ID => attrs.originator_id = Some(Ipv4Addr::from(u32_of(value)?)),
        t::CLUSTER_LIST => {
            if value.is_empty() || value.len() % 4 != 0 {
                return Err(length("a non-zero multiple of 4", value.len()));
            }
            attrs.cluster_list = value
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect();
        }
        t::EXTENDED_COMMUNITIES => {
            attrs.extended_communities = decode_extended(value)
                .ok_or_else(|| length("a non-zero multiple of 8", value.len()))?;
        }
        t::AS4_PATH => {
            let path = AsPath::decode(value, true)
                .map_err(|error| Fault::new(sub::OPTIONAL_ATTRIBUTE, error.to_string()))?;
            if path.segments().any(|segment| segment.kind.is_confed()) {
                return Err(Fault::new(
                    sub::OPTIONAL_ATTRIBUTE,
                    "confederation segment in AS4_PATH",
                ));
            }
            check_no_as_zero(&path, "AS4_PATH")?;
            attrs.as4_path = Some(path);
        }
        t::AS4_AGGREGATOR => attrs.as4_aggregator = Some(aggregator(value, true)?),
        t::LARGE_COMMUNITY => {
            attrs.large_communities = decode_large(value)
                .ok_or_else(|| length("a non-zero multiple of 12", value.len()))?;
        }
        t::OTC => attrs.otc = Some(u32_of(value)?),
        other => {
            return Err(Fault::new(
                sub::MALFORMED_ATTRIBUTE_LIST,
                format!("{} is not decoded here", type_name(other)),
            ));
        }
    }
    Ok(())
}

fn u32_of(value: &[u8]) -> Result<u32, Fault> {
    let bytes: [u8; 4] = value.try_into().map_err(|_| length("4", value.len()))?;
    Ok(u32::from_be_bytes(bytes))
}

/// AGGREGATOR or AS4_AGGREGATOR; AS 0 in it is a fault (attribute discard, RFC 7607).
fn aggregator(value: &[u8], four_octet: bool) -> Result<Aggregator, Fault> {
    let aggregator = match (four_octet, value) {
        (true, [a0, a1, a2, a3, b0, b1, b2, b3]) => Ok(Aggregator {
            asn: u32::from_be_bytes([*a0, *a1, *a2, *a3]),
            address: Ipv4Addr::new(*b0, *b1, *b2, *b3),
        }),
        (false, [a0, a1, b0, b1, b2, b3]) => Ok(Aggregator {
            asn: u32::from(u16::from_be_bytes([*a0, *a1])),
            address: Ipv4Addr::new(*b0, *b1, *b2, *b3),
        }),
        (true, _) => Err(length("8", value.len())),
        (false, _) => Err(length("6", value.len())),
    }?;
    if aggregator.asn == 0 {
        return Err(Fault::new(
            sub::OPTIONAL_ATTRIBUTE,
            "AS 0 in the aggregator (RFC 7607)",
        ));
    }
    Ok(aggregator)
}
