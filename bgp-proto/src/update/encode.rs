//! Faithful UPDATE encoding: withdrawn routes, path attributes in the order and with
//! the flags of the [`Layout`](super::Layout) (attributes not in the layout follow in
//! the standard order), NLRI. Add-path ids are written for the families in the
//! context's `add_path_send`.

use bytes::{BufMut, BytesMut};

use super::{MpReach, MpUnreach, NextHop, Nlri, Update};
use crate::attribute::encode::{
    CodeSet, Mode, begin, encode_one, encode_remaining, finish, present,
};
use crate::attribute::{attribute_type as t, expected_flags, flags};
use crate::context::SessionContext;
use crate::error::EncodeError;
use crate::family::{Afi, Family};
use crate::wire::patch_u16;

impl Update {
    /// Writes the UPDATE body (without the 19-octet header).
    pub(crate) fn encode_body(
        &self,
        ctx: &SessionContext,
        buf: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let add_path = ctx.add_path_send.contains(Family::IPV4_UNICAST);
        let at = buf.len();
        buf.put_u16(0);
        for prefix in &self.withdrawn {
            prefix.encode(add_path, buf);
        }
        patch_len(buf, at, "withdrawn routes")?;

        let at = buf.len();
        buf.put_u16(0);
        encode_attributes(self, ctx, Mode::Faithful, buf)?;
        patch_len(buf, at, "path attributes")?;

        for prefix in &self.nlri {
            prefix.encode(add_path, buf);
        }
        Ok(())
    }
}

/// Writes a 2-octet length at `at` covering what follows it.
pub(crate) fn patch_len(
    buf: &mut BytesMut,
    at: usize,
    what: &'static str,
) -> Result<(), EncodeError> {
    let len = u16::try_from(buf.len() - at - 2).map_err(|_| EncodeError::FieldTooLong { what })?;
    patch_u16(buf, at, len);
    Ok(())
}

/// All attributes of `update` (MP ones included).
pub(crate) fn encode_attributes(
    update: &Update,
    ctx: &SessionContext,
    mode: Mode,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let attrs = &update.attributes;
    let mut codes = present(attrs, ctx, mode);
    if update.mp_reach.is_some() {
        codes.insert(t::MP_REACH_NLRI);
    }
    if update.mp_unreach.is_some() {
        codes.insert(t::MP_UNREACH_NLRI);
    }
    let mut done = CodeSet::default();
    for &(code, flag_byte) in update.layout.entries() {
        if !codes.contains(code) || !done.insert(code) {
            continue;
        }
        match code {
            t::MP_REACH_NLRI => {
                encode_mp_reach(update.mp_reach.as_ref(), Some(flag_byte), ctx, buf)?
            }
            t::MP_UNREACH_NLRI => {
                encode_mp_unreach(update.mp_unreach.as_ref(), Some(flag_byte), ctx, buf)?
            }
            _ => encode_one(code, Some(flag_byte), attrs, ctx, mode, buf)?,
        }
    }
    if done.insert(t::MP_REACH_NLRI) {
        encode_mp_reach(update.mp_reach.as_ref(), None, ctx, buf)?;
    }
    if done.insert(t::MP_UNREACH_NLRI) {
        encode_mp_unreach(update.mp_unreach.as_ref(), None, ctx, buf)?;
    }
    encode_remaining(codes, &mut done, attrs, ctx, mode, buf)
}

fn mp_flags(layout_flags: Option<u8>, code: u8) -> u8 {
    layout_flags.unwrap_or_else(|| expected_flags(code).unwrap_or(flags::OPTIONAL))
}

fn encode_mp_reach(
    reach: Option<&MpReach>,
    layout_flags: Option<u8>,
    ctx: &SessionContext,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let Some(reach) = reach else { return Ok(()) };
    let flag_byte = mp_flags(layout_flags, t::MP_REACH_NLRI);
    let at = begin(buf, flag_byte, t::MP_REACH_NLRI);
    write_mp_reach_head(reach.family, &reach.next_hop, ctx, buf)?;
    write_nlri(reach.family, &reach.nlri, ctx, buf)?;
    finish(buf, at, flag_byte & flags::EXTENDED_LENGTH != 0)
}

fn encode_mp_unreach(
    unreach: Option<&MpUnreach>,
    layout_flags: Option<u8>,
    ctx: &SessionContext,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let Some(unreach) = unreach else {
        return Ok(());
    };
    let flag_byte = mp_flags(layout_flags, t::MP_UNREACH_NLRI);
    let at = begin(buf, flag_byte, t::MP_UNREACH_NLRI);
    buf.put_u16(unreach.family.afi.0);
    buf.put_u8(unreach.family.safi.0);
    write_nlri(unreach.family, &unreach.withdrawn, ctx, buf)?;
    finish(buf, at, flag_byte & flags::EXTENDED_LENGTH != 0)
}

/// AFI, SAFI, next hop length, next hop, reserved octet: checking that the next hop
/// fits the family and the session.
pub(crate) fn write_mp_reach_head(
    family: Family,
    next_hop: &NextHop,
    ctx: &SessionContext,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    if family.is_ip() {
        match (family.afi, next_hop) {
            (Afi::IPV4, NextHop::Ipv4(_)) | (Afi::IPV6, NextHop::Ipv6 { .. }) => {}
            (Afi::IPV4, NextHop::Ipv6 { .. }) if ctx.extended_next_hop.contains(family) => {}
            (Afi::IPV4, NextHop::Ipv6 { .. }) => {
                return Err(EncodeError::ExtendedNextHopNotNegotiated(family));
            }
            _ => return Err(EncodeError::FamilyMismatch(family)),
        }
    }
    let next_hop_len = u8::try_from(next_hop.wire_len())
        .map_err(|_| EncodeError::FieldTooLong { what: "next hop" })?;
    buf.put_u16(family.afi.0);
    buf.put_u8(family.safi.0);
    buf.put_u8(next_hop_len);
    next_hop.encode(buf);
    buf.put_u8(0);
    Ok(())
}

fn write_nlri(
    family: Family,
    nlri: &Nlri,
    ctx: &SessionContext,
    buf: &mut BytesMut,
) -> Result<(), EncodeError> {
    let add_path = ctx.add_path_send.contains(family);
    match (nlri, family.is_ip(), family.afi) {
        (Nlri::Ipv4(prefixes), true, Afi::IPV4) => {
            prefixes.iter().for_each(|p| p.encode(add_path, buf))
        }
        (Nlri::Ipv6(prefixes), true, Afi::IPV6) => {
            prefixes.iter().for_each(|p| p.encode(add_path, buf))
        }
        (Nlri::Other(bytes), false, _) => buf.extend_from_slice(bytes),
        _ => return Err(EncodeError::FamilyMismatch(family)),
    }
    Ok(())
}
