//! Encoding of path attributes (all but MP_REACH / MP_UNREACH, which the UPDATE
//! encoder writes).
//!
//! Two modes: *faithful* writes what the value holds (so a decoded UPDATE encodes back
//! to its bytes, with the flags its layout recorded); *propagate* is for routes sent
//! on to other peers: unknown optional transitive attributes get the Partial bit and
//! unknown non-transitive ones are left out (RFC 4271 section 5).
//!
//! For a 2-octet AS peer, AS numbers above 65535 become AS_TRANS and AS4_PATH /
//! AS4_AGGREGATOR are written (from the value, or derived when absent); for a 4-octet
//! peer they are never written (RFC 6793).

use bytes::{BufMut, BytesMut};

use super::community::{encode_communities, encode_extended, encode_large};
use super::{AsPath, PathAttributes, attribute_type as t, expected_flags, flags};
use crate::context::SessionContext;
use crate::error::EncodeError;
use crate::open::AS_TRANS;
use crate::wire::patch_u16;

/// A set of attribute type codes (256 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CodeSet([u64; 4]);

impl CodeSet {
    #[inline]
    pub(crate) fn insert(&mut self, code: u8) -> bool {
        let (word, bit) = (usize::from(code >> 6), 1u64 << (code & 63));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }

    #[inline]
    pub(crate) fn contains(&self, code: u8) -> bool {
        self.0[usize::from(code >> 6)] & (1u64 << (code & 63)) != 0
    }

    fn iter(self) -> impl Iterator<Item = u8> {
        (0u8..4).flat_map(move |word| {
            let mut bits = self.0[usize::from(word)];
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros() as u8;
                bits &= bits - 1;
                Some(word * 64 + bit)
            })
        })
    }
}

/// How unknown attributes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// As held.
    Faithful,
    /// For a route sent on: Partial on optional transitive unknowns, drop the rest.
    Propagate,
}

/// The codes present in `attrs` for this peer (derived AS4_* included).
pub(crate) fn present(attrs: &PathAttributes, ctx: &SessionContext, mode: Mode) -> CodeSet {
    let mut set = CodeSet::default();
    let mut add = |code: u8, present: bool| {
        if present {
            set.insert(code);
        }
    };
    add(t::ORIGIN, attrs.origin.is_some());
    add(t::AS_PATH, attrs.as_path.is_some());
    add(t::NEXT_HOP, attrs.next_hop.is_some());
    add(t::MULTI_EXIT_DISC, attrs.med.is_some());
    add(t::LOCAL_PREF, attrs.local_pref.is_some());
    add(t::ATOMIC_AGGREGATE, attrs.atomic_aggregate);
    add(t::AGGREGATOR, attrs.aggregator.is_some());
    add(t::COMMUNITIES, !attrs.communities.is_empty());
    add(t::ORIGINATOR_ID, attrs.originator_id.is_some());
    add(t::CLUSTER_LIST, !attrs.cluster_list.is_empty());
    add(
        t::EXTENDED_COMMUNITIES,
        !attrs.extended_communities.is_empty(),
    );
    add(
        t::AS4_PATH,
        !ctx.four_octet_as
            && (attrs.as4_path.is_some()
                || attrs
                    .as_path
                    .as_ref()
                    .is_some_and(AsPath::has_four_octet_asn)),
    );
    add(t::AS4_AGGREGATOR, as4_aggregator(attrs, ctx).is_some());
    add(t::LARGE_COMMUNITY, !attrs.large_communities.is_empty());
    add(t::OTC, attrs.otc.is_some());
    for raw in &attrs.unknown {
        let keep = mode == Mode::Faithful || raw.flags & flags::TRANSITIVE != 0;
        if keep && expected_flags(raw.code).is_none() && !is_mp(raw.code) {
            set.insert(raw.code);
        }
    }
    set
}

fn is_mp(code: u8) -> bool {
    code == t::MP_REACH_NLRI || code == t::MP_UNREACH_NLRI
}

/// Writes every code of `codes` not yet in `done`, in ascending order.
pub(crate) fn encode_remaining(
    codes: CodeSet,
    done: &mut CodeSet,
    attrs: &PathAttributes,
    ctx: &SessionContext,
    mode: Mode,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    for code in codes.iter() {
        if done.insert(code) {
            encode_one(code, None, attrs, ctx, mode, buf)?;
        }
    }
    Ok(())
}

/// Writes attribute `code` (which must be in [`present`]) with the given flag byte
/// (its Extended Length bit is a wish, forced when the value needs it) or the
/// standard flags.
pub(crate) fn encode_one(
    code: u8,
    layout_flags: Option<u8>,
    attrs: &PathAttributes,
    ctx: &SessionContext,
    mode: Mode,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let raw = attrs.unknown.iter().find(|raw| raw.code == code);
    let standard = match (expected_flags(code), raw) {
        (Some(expected), _) => expected,
        (None, Some(raw)) if mode == Mode::Propagate && raw.flags & flags::TRANSITIVE != 0 => {
            raw.flags | flags::PARTIAL
        }
        (None, Some(raw)) => raw.flags,
        (None, None) => return Ok(()),
    };
    let flag_byte = layout_flags.unwrap_or(standard);
    let at = begin(buf, flag_byte, code);
    let four = ctx.four_octet_as;
    match code {
        t::ORIGIN => buf.put_u8(attrs.origin.map_or(0, |origin| origin.code())),
        t::AS_PATH => {
            if let Some(path) = &attrs.as_path {
                path.encode(four, buf);
            }
        }
        t::NEXT_HOP => buf.extend_from_slice(&attrs.next_hop.map_or([0; 4], |a| a.octets())),
        t::MULTI_EXIT_DISC => buf.put_u32(attrs.med.unwrap_or(0)),
        t::LOCAL_PREF => buf.put_u32(attrs.local_pref.unwrap_or(0)),
        t::ATOMIC_AGGREGATE => {}
        t::AGGREGATOR => {
            if let Some(aggregator) = attrs.aggregator {
                if four {
                    buf.put_u32(aggregator.asn);
                } else {
                    buf.put_u16(u16::try_from(aggregator.asn).unwrap_or(AS_TRANS));
                }
                buf.extend_from_slice(&aggregator.address.octets());
            }
        }
        t::COMMUNITIES => encode_communities(&attrs.communities, buf),
        t::ORIGINATOR_ID => {
            buf.extend_from_slice(&attrs.originator_id.map_or([0; 4], |a| a.octets()))
        }
        t::CLUSTER_LIST => {
            for id in &attrs.cluster_list {
                buf.extend_from_slice(&id.octets());
            }
        }
        t::EXTENDED_COMMUNITIES => encode_extended(&attrs.extended_communities, buf),
        t::AS4_PATH => {
            if let Some(path) = as4_path(attrs, ctx) {
                path.encode(true, buf);
            }
        }
        t::AS4_AGGREGATOR => {
            if let Some(aggregator) = as4_aggregator(attrs, ctx) {
                buf.put_u32(aggregator.asn);
                buf.extend_from_slice(&aggregator.address.octets());
            }
        }
        t::LARGE_COMMUNITY => encode_large(&attrs.large_communities, buf),
        t::OTC => buf.put_u32(attrs.otc.unwrap_or(0)),
        _ => {
            if let Some(raw) = raw {
                buf.extend_from_slice(&raw.value);
            }
        }
    }
    finish(buf, at, flag_byte & flags::EXTENDED_LENGTH != 0)
}

/// Starts an attribute: flags (with Extended Length for now), type, two length octets.
/// Returns the offset of the flags octet for [`finish`].
#[inline]
pub(crate) fn begin(buf: &mut BytesMut, flag_byte: u8, code: u8) -> usize {
    let at = buf.len();
    buf.put_u8(flag_byte | flags::EXTENDED_LENGTH);
    buf.put_u8(code);
    buf.put_u16(0);
    at
}

/// Ends the attribute started at `at`: a one-octet length unless `extended` is wished
/// or the value needs two.
#[inline]
pub(crate) fn finish(buf: &mut BytesMut, at: usize, extended: bool) -> Result<(), EncodeError> {
    let len = buf.len() - at - 4;
    if extended || len > 255 {
        let len = u16::try_from(len).map_err(|_| EncodeError::FieldTooLong {
            what: "path attribute",
        })?;
        patch_u16(buf, at + 2, len);
    } else {
        buf[at] &= !flags::EXTENDED_LENGTH;
        // len <= 255 in this branch.
        buf[at + 2] = len as u8;
        buf.copy_within(at + 4.., at + 3);
        buf.truncate(buf.len() - 1);
    }
    Ok(())
}

/// AS4_PATH to send: none to a 4-octet peer; to a 2-octet peer the held one, else one
/// derived from AS_PATH when it has AS numbers above 65535.
fn as4_path(attrs: &PathAttributes, ctx: &SessionContext) -> Option<AsPath> {
    if ctx.four_octet_as {
        return None;
    }
    if let Some(path) = &attrs.as4_path {
        return Some(path.clone());
    }
    let path = attrs.as_path.as_ref()?;
    path.has_four_octet_asn().then(|| path.without_confed())
}

fn as4_aggregator(attrs: &PathAttributes, ctx: &SessionContext) -> Option<super::Aggregator> {
    if ctx.four_octet_as {
        return None;
    }
    attrs.as4_aggregator.or(attrs
        .aggregator
        .filter(|aggregator| aggregator.asn > 0xffff))
}
