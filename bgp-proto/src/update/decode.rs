//! UPDATE decoding and the message-level RFC 7606 rules:
//!
//! - withdrawn routes length or total path attribute length overrunning the message:
//!   session reset 3/1; unparsable withdrawn routes or NLRI: session reset 3/10;
//! - an attribute overrunning the attribute section, or fewer than 3 (4 with Extended
//!   Length) octets left for a header: treat-as-withdraw, the NLRI is found with the
//!   Total Path Attribute Length (session reset 3/9 when the attribute is MP_REACH /
//!   MP_UNREACH, whose NLRI is then lost);
//! - MP_REACH_NLRI or MP_UNREACH_NLRI twice: session reset 3/1; any other attribute
//!   twice: the first is kept, the others discarded;
//! - MP attribute too short for AFI/SAFI: session reset 3/9; with AFI/SAFI but a bad
//!   next hop or NLRI: AFI/SAFI disable (3/9 if the speaker resets instead);
//! - a missing ORIGIN or AS_PATH (or NEXT_HOP with classic NLRI) when routes are
//!   announced: treat-as-withdraw 3/3;
//! - a semantically wrong next hop (unspecified, multicast, broadcast): the routes are
//!   ignored, i.e. treat-as-withdraw without NOTIFICATION.
//!
//! Per-attribute rules are in [`crate::attribute`]'s `decode`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::nlri::{decode_ipv4, decode_ipv4_into, decode_ipv6};
use super::{Layout, MpReach, MpUnreach, NextHop, Nlri, Update};
use crate::attribute::decode::decode_attribute;
use crate::attribute::encode::CodeSet;
use crate::attribute::{attribute_type as t, expected_flags, flags};
use crate::context::SessionContext;
use crate::error::{Action, DecodeError, Problems};
use crate::family::{Afi, Family, Safi};
use crate::notification::{code, update_subcode as sub};

/// The strongest action and every problem of a decoded UPDATE, or (session reset) the
/// problems, at least one of which is a reset.
pub(crate) type UpdateOutcome = Result<(Action, Vec<DecodeError>), Vec<DecodeError>>;

/// Decodes an UPDATE body (the message without its 19-octet header; at least 4 octets)
/// into `update`, which must be empty (filled in place: an `Update` is large, and
/// moving it costs more than decoding a small one).
pub(crate) fn decode_update(
    body: &[u8],
    ctx: &SessionContext,
    update: &mut Update,
) -> UpdateOutcome {
    let reset = |subcode: u8, reason: &'static str| {
        vec![DecodeError::new(
            Action::SessionReset,
            code::UPDATE_MESSAGE,
            subcode,
            reason,
        )]
    };
    let u16_at = |at: usize| {
        body.get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let Some(withdrawn_len) = u16_at(0) else {
        return Err(reset(sub::MALFORMED_ATTRIBUTE_LIST, "UPDATE too short"));
    };
    let Some(attributes_len) = u16_at(2 + withdrawn_len) else {
        return Err(reset(
            sub::MALFORMED_ATTRIBUTE_LIST,
            "withdrawn routes length overruns the message",
        ));
    };
    let attributes_start = 4 + withdrawn_len;
    if attributes_start + attributes_len > body.len() {
        return Err(reset(
            sub::MALFORMED_ATTRIBUTE_LIST,
            "total path attribute length overruns the message",
        ));
    }
    let withdrawn = &body[2..2 + withdrawn_len];
    let attributes = &body[attributes_start..attributes_start + attributes_len];
    let nlri = &body[attributes_start + attributes_len..];

    let mut errors = Problems::default();
    let add_path = ctx.add_path_receive.contains(Family::IPV4_UNICAST);
    if let Err(error) = decode_ipv4_into(withdrawn, add_path, &mut update.withdrawn) {
        errors.push(DecodeError::new(
            Action::SessionReset,
            code::UPDATE_MESSAGE,
            sub::INVALID_NETWORK_FIELD,
            format!("withdrawn routes: {error}"),
        ));
    }
    let Attributes { seen, overrun } = decode_attributes(attributes, ctx, update, &mut errors);
    if let Err(error) = decode_ipv4_into(nlri, add_path, &mut update.nlri) {
        errors.push(DecodeError::new(
            Action::SessionReset,
            code::UPDATE_MESSAGE,
            sub::INVALID_NETWORK_FIELD,
            format!("NLRI: {error}"),
        ));
    }
    if !overrun {
        check_mandatory(update, &seen, &mut errors);
    }
    if let Some(first_as) = ctx.first_as {
        check_first_as(update, first_as, &mut errors);
    }
    check_next_hops(update, &mut errors);

    let action = errors.strongest();
    if action == Action::SessionReset {
        return Err(errors.into_list());
    }
    Ok((action, errors.into_list()))
}

/// What the attribute walk tells the checks after it.
struct Attributes {
    /// Codes met (malformed and discarded ones included).
    seen: CodeSet,
    /// The walk stopped at a length error.
    overrun: bool,
}

fn decode_attributes(
    mut rest: &[u8],
    ctx: &SessionContext,
    update: &mut Update,
    errors: &mut Problems,
) -> Attributes {
    let mut seen = CodeSet::default();
    let mut recorder = LayoutRecorder::new();
    let mut overrun = false;
    while !rest.is_empty() {
        let (header, length) = match rest {
            [f, _, len, ..] if f & flags::EXTENDED_LENGTH == 0 => (3, usize::from(*len)),
            [_, _, l0, l1, ..] => (4, usize::from(u16::from_be_bytes([*l0, *l1]))),
            _ => {
                errors.push(DecodeError::new(
                    Action::TreatAsWithdraw,
                    code::UPDATE_MESSAGE,
                    sub::ATTRIBUTE_LENGTH,
                    format!("{} octets left, too few for an attribute header; NLRI located by the total path attribute length", rest.len()),
                ));
                overrun = true;
                break;
            }
        };
        let (flag_byte, code) = (rest[0], rest[1]);
        if header + length > rest.len() {
            let error = if code == t::MP_REACH_NLRI || code == t::MP_UNREACH_NLRI {
                DecodeError::new(
                    Action::SessionReset,
                    code::UPDATE_MESSAGE,
                    sub::OPTIONAL_ATTRIBUTE,
                    format!(
                        "length {length} overruns the path attributes; its NLRI cannot be located"
                    ),
                )
            } else {
                DecodeError::new(
                    Action::TreatAsWithdraw,
                    code::UPDATE_MESSAGE,
                    sub::ATTRIBUTE_LENGTH,
                    format!(
                        "length {length} overruns the path attributes; NLRI located by the total path attribute length"
                    ),
                )
            };
            errors.push(error.with_data(rest).with_attribute(code));
            overrun = true;
            break;
        }
        let (raw, tail) = rest.split_at(header + length);
        rest = tail;
        let value = &raw[header..];
        recorder.record(code, flag_byte, length);
        if !seen.insert(code) {
            if code == t::MP_REACH_NLRI || code == t::MP_UNREACH_NLRI {
                errors.push(
                    DecodeError::new(
                        Action::SessionReset,
                        code::UPDATE_MESSAGE,
                        sub::MALFORMED_ATTRIBUTE_LIST,
                        "appears more than once",
                    )
                    .with_attribute(code),
                );
            } else {
                errors.push(
                    DecodeError::silent(
                        Action::AttributeDiscard,
                        "appears more than once; the first is kept, this one discarded",
                    )
                    .with_attribute(code),
                );
            }
            continue;
        }
        match code {
            t::MP_REACH_NLRI | t::MP_UNREACH_NLRI => {
                check_mp_flags(flag_byte, code, raw, errors);
                if code == t::MP_REACH_NLRI {
                    decode_mp_reach(value, raw, ctx, update, errors);
                } else {
                    decode_mp_unreach(value, raw, ctx, update, errors);
                }
            }
            _ => decode_attribute(
                flag_byte,
                code,
                value,
                raw,
                ctx,
                &mut update.attributes,
                errors,
            ),
        }
    }
    update.layout = recorder.finish();
    Attributes { seen, overrun }
}

fn check_mp_flags(flag_byte: u8, code: u8, raw: &[u8], errors: &mut Problems) {
    if Some(flag_byte & (flags::OPTIONAL | flags::TRANSITIVE)) != expected_flags(code) {
        errors.push(
            DecodeError::new(
                Action::TreatAsWithdraw,
                code::UPDATE_MESSAGE,
                sub::ATTRIBUTE_FLAGS,
                format!("flags 0x{flag_byte:02x} conflict with the type"),
            )
            .with_data(raw)
            .with_attribute(code),
        );
    }
}

/// AFI and SAFI at the start of an MP attribute; a session reset when absent.
fn mp_family(value: &[u8], raw: &[u8], code: u8, errors: &mut Problems) -> Option<Family> {
    let [a0, a1, safi, ..] = *value else {
        errors.push(
            DecodeError::new(
                Action::SessionReset,
                code::UPDATE_MESSAGE,
                sub::OPTIONAL_ATTRIBUTE,
                format!("length {} is too short for AFI and SAFI", value.len()),
            )
            .with_data(raw)
            .with_attribute(code),
        );
        return None;
    };
    Some(Family::new(Afi(u16::from_be_bytes([a0, a1])), Safi(safi)))
}

fn disable(family: Family, code: u8, raw: &[u8], reason: String) -> DecodeError {
    DecodeError::new(
        Action::AfiSafiDisable,
        code::UPDATE_MESSAGE,
        sub::OPTIONAL_ATTRIBUTE,
        reason,
    )
    .with_data(raw)
    .with_attribute(code)
    .with_family(family)
}

fn decode_mp_reach(
    value: &[u8],
    raw: &[u8],
    ctx: &SessionContext,
    update: &mut Update,
    errors: &mut Problems,
) {
    let code = t::MP_REACH_NLRI;
    let Some(family) = mp_family(value, raw, code, errors) else {
        return;
    };
    let Some(&next_hop_len) = value.get(3) else {
        errors.push(disable(family, code, raw, "next hop length missing".into()));
        return;
    };
    let next_hop_end = 4 + usize::from(next_hop_len);
    // One reserved octet (RFC 4760: formerly the SNPA count) follows the next hop.
    let (Some(next_hop), Some(nlri)) = (value.get(4..next_hop_end), value.get(next_hop_end + 1..))
    else {
        errors.push(disable(
            family,
            code,
            raw,
            format!("next hop length {next_hop_len} overruns the attribute"),
        ));
        return;
    };
    if !family.is_ip() {
        let next_hop = NextHop::Other(next_hop.to_vec());
        update.mp_reach = Some(MpReach {
            family,
            next_hop,
            nlri: Nlri::Other(nlri.to_vec()),
        });
        return;
    }
    let v6 = |at: usize| {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&next_hop[at..at + 16]);
        Ipv6Addr::from(octets)
    };
    let v6_allowed = family.afi == Afi::IPV6 || ctx.extended_next_hop.contains(family);
    let next_hop = match (family.afi, next_hop.len()) {
        (Afi::IPV4, 4) => NextHop::Ipv4(Ipv4Addr::new(
            next_hop[0],
            next_hop[1],
            next_hop[2],
            next_hop[3],
        )),
        (_, 16) if v6_allowed => NextHop::Ipv6 {
            global: v6(0),
            link_local: None,
        },
        (_, 32) if v6_allowed => NextHop::Ipv6 {
            global: v6(0),
            link_local: Some(v6(16)),
        },
        (_, length) => {
            let hint = if family.afi == Afi::IPV4 && matches!(length, 16 | 32) {
                " (extended next hop not negotiated)"
            } else {
                ""
            };
            errors.push(disable(
                family,
                code,
                raw,
                format!("next hop length {length} does not fit {family}{hint}"),
            ));
            return;
        }
    };
    match decode_nlri(family, nlri, ctx) {
        Ok(nlri) => {
            update.mp_reach = Some(MpReach {
                family,
                next_hop,
                nlri,
            })
        }
        Err(error) => errors.push(disable(family, code, raw, format!("NLRI: {error}"))),
    }
}

fn decode_mp_unreach(
    value: &[u8],
    raw: &[u8],
    ctx: &SessionContext,
    update: &mut Update,
    errors: &mut Problems,
) {
    let code = t::MP_UNREACH_NLRI;
    let Some(family) = mp_family(value, raw, code, errors) else {
        return;
    };
    let withdrawn = &value[3..];
    if !family.is_ip() {
        update.mp_unreach = Some(MpUnreach {
            family,
            withdrawn: Nlri::Other(withdrawn.to_vec()),
        });
        return;
    }
    match decode_nlri(family, withdrawn, ctx) {
        Ok(withdrawn) => update.mp_unreach = Some(MpUnreach { family, withdrawn }),
        Err(error) => errors.push(disable(
            family,
            code,
            raw,
            format!("withdrawn NLRI: {error}"),
        )),
    }
}

fn decode_nlri(
    family: Family,
    bytes: &[u8],
    ctx: &SessionContext,
) -> Result<Nlri, super::NlriError> {
    let add_path = ctx.add_path_receive.contains(family);
    if family.afi == Afi::IPV4 {
        decode_ipv4(bytes, add_path).map(Nlri::Ipv4)
    } else {
        decode_ipv6(bytes, add_path).map(Nlri::Ipv6)
    }
}

/// RFC 7606 3(d): well-known mandatory attributes when routes are announced.
fn check_mandatory(update: &Update, seen: &CodeSet, errors: &mut Problems) {
    let classic = !update.nlri.is_empty();
    if !classic && update.mp_reach.is_none() {
        return;
    }
    let required: &[u8] = if classic {
        &[t::ORIGIN, t::AS_PATH, t::NEXT_HOP]
    } else {
        &[t::ORIGIN, t::AS_PATH]
    };
    for &missing in required.iter().filter(|&&code| !seen.contains(code)) {
        errors.push(
            DecodeError::new(
                Action::TreatAsWithdraw,
                code::UPDATE_MESSAGE,
                sub::MISSING_WELL_KNOWN_ATTRIBUTE,
                "missing",
            )
            .with_data(&[missing])
            .with_attribute(missing),
        );
    }
}

/// RFC 4271 6.3 (the check an eBGP speaker MAY make, FRR's `enforce-first-as`): routes
/// whose AS_PATH does not start with the peer's AS are treat-as-withdraw, Malformed
/// AS_PATH (RFC 7606 7.2).
fn check_first_as(update: &Update, first_as: u32, errors: &mut Problems) {
    let announces = !update.nlri.is_empty()
        || update
            .mp_reach
            .as_ref()
            .is_some_and(|reach| !reach.nlri.is_empty());
    let Some(path) = update.attributes.as_path.as_ref() else {
        return;
    };
    if !announces || path.first_asn() == Some(first_as) {
        return;
    }
    let first = path
        .first_asn()
        .map_or_else(|| "no AS_SEQUENCE".to_owned(), |asn| format!("AS {asn}"));
    errors.push(
        DecodeError::new(
            Action::TreatAsWithdraw,
            code::UPDATE_MESSAGE,
            sub::MALFORMED_AS_PATH,
            format!("AS_PATH starts with {first}, not the peer's AS {first_as} (enforce_first_as)"),
        )
        .with_attribute(t::AS_PATH),
    );
}

/// RFC 4271 6.3: a semantically wrong next hop makes the routes ignored, without a
/// NOTIFICATION.
fn check_next_hops(update: &Update, errors: &mut Problems) {
    let bad_v4 =
        |addr: Ipv4Addr| addr.is_unspecified() || addr.is_multicast() || addr.is_broadcast();
    if let (false, Some(next_hop)) = (update.nlri.is_empty(), update.attributes.next_hop) {
        if bad_v4(next_hop) {
            errors.push(
                DecodeError::silent(
                    Action::TreatAsWithdraw,
                    format!("next hop {next_hop} is not a unicast address; routes ignored"),
                )
                .with_attribute(t::NEXT_HOP),
            );
        }
    }
    let Some(reach) = &update.mp_reach else {
        return;
    };
    let bad = match &reach.next_hop {
        NextHop::Ipv4(addr) => bad_v4(*addr),
        NextHop::Ipv6 { global, link_local } => {
            global.is_multicast() || (global.is_unspecified() && link_local.is_none())
        }
        NextHop::Other(_) => false,
    };
    if bad && !reach.nlri.is_empty() {
        errors.push(
            DecodeError::silent(
                Action::TreatAsWithdraw,
                "next hop is not a unicast address; routes ignored",
            )
            .with_attribute(t::MP_REACH_NLRI)
            .with_family(reach.family),
        );
    }
}

/// Records attribute order and flags, allocating only when they differ from the
/// standard layout (see [`Layout`]) or there are more than 16 attributes.
struct LayoutRecorder {
    standard: bool,
    last_rank: u16,
    count: usize,
    first: [(u8, u8); 16],
    more: Vec<(u8, u8)>,
}

impl LayoutRecorder {
    fn new() -> LayoutRecorder {
        LayoutRecorder {
            standard: true,
            last_rank: 0,
            count: 0,
            first: [(0, 0); 16],
            more: Vec::new(),
        }
    }

    #[inline]
    fn record(&mut self, code: u8, flag_byte: u8, length: usize) {
        let rank = match code {
            t::MP_REACH_NLRI => 0,
            t::MP_UNREACH_NLRI => 1,
            other => u16::from(other) + 2,
        };
        let base = expected_flags(code)
            .unwrap_or(flag_byte & (flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL));
        let standard_flags = base
            | if length > 255 {
                flags::EXTENDED_LENGTH
            } else {
                0
            };
        if (self.count > 0 && rank <= self.last_rank) || flag_byte != standard_flags {
            self.standard = false;
        }
        if let Some(slot) = self.first.get_mut(self.count) {
            *slot = (code, flag_byte);
        } else {
            if self.more.is_empty() {
                self.more.extend_from_slice(&self.first);
            }
            self.more.push((code, flag_byte));
        }
        self.last_rank = rank;
        self.count += 1;
    }

    fn finish(self) -> Layout {
        if self.standard {
            Layout::default()
        } else if self.count <= self.first.len() {
            Layout::from_entries(self.first[..self.count].to_vec())
        } else {
            Layout::from_entries(self.more)
        }
    }
}
