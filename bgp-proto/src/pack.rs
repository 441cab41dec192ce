//! Packing many prefixes that share one attribute set into as few UPDATEs as the
//! negotiated maximum message size (4096, or 65535 with extended message) allows.
//!
//! The attribute part of the message is encoded once per call and copied into each
//! message; prefixes are streamed from any iterator. IPv4 unicast with an IPv4 next
//! hop uses the classic fields; every other family (IPv6, and IPv4 with an IPv6 next
//! hop per RFC 8950) uses MP_REACH_NLRI / MP_UNREACH_NLRI, written first (RFC 7606
//! section 5.1) with a two-octet length. Attributes are written for propagation:
//! unknown optional transitive attributes carry the Partial bit, unknown
//! non-transitive ones are left out, and for a 2-octet AS peer AS4_PATH and
//! AS4_AGGREGATOR are added when needed (RFC 6793).
//!
//! Messages are appended back to back to a `BytesMut`, ready to be written to the
//! socket in one go; each method returns how many messages it appended.
//!
//! What many sessions send with the same attributes (a route reflector's clients)
//! can share one encoding: [`UpdatePacker::encode_ipv4`] / [`UpdatePacker::encode_mp`]
//! make an [`EncodedAttributes`] and [`UpdatePacker::announce_encoded`] packs
//! prefixes after it, for any session it [fits](EncodedAttributes::fits); the
//! `announce_*` methods are those two steps, so both ways give the same bytes.

use bytes::{BufMut, BytesMut};

use crate::attribute::encode::{CodeSet, Mode, encode_remaining, present};
use crate::attribute::{PathAttributes, attribute_type as t, flags};
use crate::context::SessionContext;
use crate::error::EncodeError;
use crate::family::Family;
use crate::message::{HEADER_LEN, MARKER, Message, MessageType};
use crate::update::encode::write_mp_reach_head;
use crate::update::{Ipv4Prefix, NextHop, Prefix, Update};
use crate::wire::patch_u16;

/// Builds UPDATEs for one session.
#[derive(Clone, Copy, Debug)]
pub struct UpdatePacker<'a> {
    ctx: &'a SessionContext,
}

impl<'a> UpdatePacker<'a> {
    /// A packer for the session of `ctx` (its add-path send families, AS width,
    /// extended message and extended next hop apply).
    pub fn new(ctx: &'a SessionContext) -> UpdatePacker<'a> {
        UpdatePacker { ctx }
    }

    /// Announces IPv4 unicast `prefixes` in the NLRI field with `attributes`, which
    /// must hold NEXT_HOP.
    pub fn announce_ipv4<I>(
        &self,
        attributes: &PathAttributes,
        prefixes: I,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError>
    where
        I: IntoIterator<Item = Ipv4Prefix>,
    {
        let encoded = self.encode_ipv4(attributes)?;
        self.announce_encoded(&encoded, prefixes.into_iter().map(Prefix::V4), out)
    }

    /// Announces `prefixes` of `family` in MP_REACH_NLRI with `next_hop`: IPv6
    /// unicast, or IPv4 unicast with an IPv6 next hop (RFC 8950, which the session
    /// must have negotiated). A NEXT_HOP in `attributes` is not sent (RFC 4760).
    pub fn announce_mp<I>(
        &self,
        attributes: &PathAttributes,
        family: Family,
        next_hop: &NextHop,
        prefixes: I,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError>
    where
        I: IntoIterator,
        I::Item: Into<Prefix>,
    {
        let encoded = self.encode_mp(attributes, family, next_hop)?;
        self.announce_encoded(&encoded, prefixes, out)
    }

    /// The attribute section of [`UpdatePacker::announce_ipv4`], for
    /// [`UpdatePacker::announce_encoded`].
    pub fn encode_ipv4(
        &self,
        attributes: &PathAttributes,
    ) -> Result<EncodedAttributes, EncodeError> {
        if attributes.next_hop.is_none() {
            return Err(EncodeError::MissingNextHop);
        }
        let mut head = header();
        head.put_u16(0);
        let at = head.len();
        head.put_u16(0);
        let codes = present(attributes, self.ctx, Mode::Propagate);
        encode_remaining(
            codes,
            &mut CodeSet::default(),
            attributes,
            self.ctx,
            Mode::Propagate,
            &mut head,
        )?;
        let attributes_len = len16(head.len() - at - 2)?;
        patch_u16(&mut head, at, attributes_len);
        Ok(EncodedAttributes {
            family: Family::IPV4_UNICAST,
            mp: false,
            four_octet_as: self.ctx.four_octet_as,
            head: head.to_vec().into_boxed_slice(),
            tail: Box::default(),
        })
    }

    /// The attribute section of [`UpdatePacker::announce_mp`], for
    /// [`UpdatePacker::announce_encoded`].
    pub fn encode_mp(
        &self,
        attributes: &PathAttributes,
        family: Family,
        next_hop: &NextHop,
    ) -> Result<EncodedAttributes, EncodeError> {
        let mut head = header();
        head.put_u16(0);
        head.put_u16(0);
        head.put_u8(flags::OPTIONAL | flags::EXTENDED_LENGTH);
        head.put_u8(t::MP_REACH_NLRI);
        head.put_u16(0);
        write_mp_reach_head(family, next_hop, self.ctx, &mut head)?;
        let mut tail = BytesMut::new();
        let mut codes = present(attributes, self.ctx, Mode::Propagate);
        let mut done = CodeSet::default();
        done.insert(t::NEXT_HOP);
        codes.insert(t::NEXT_HOP);
        encode_remaining(
            codes,
            &mut done,
            attributes,
            self.ctx,
            Mode::Propagate,
            &mut tail,
        )?;
        Ok(EncodedAttributes {
            family,
            mp: true,
            four_octet_as: self.ctx.four_octet_as,
            head: head.to_vec().into_boxed_slice(),
            tail: tail.to_vec().into_boxed_slice(),
        })
    }

    /// Announces `prefixes` (of the family of `encoded`) with attributes encoded
    /// before, by this packer or by one of another session that `encoded` fits;
    /// the messages are those of `announce_ipv4` / `announce_mp` with the same
    /// attributes.
    pub fn announce_encoded<I>(
        &self,
        encoded: &EncodedAttributes,
        prefixes: I,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError>
    where
        I: IntoIterator,
        I::Item: Into<Prefix>,
    {
        let family = encoded.family;
        if !encoded.fits(self.ctx, family) {
            return Err(EncodeError::EncodedForAnotherSession(family));
        }
        let add_path = self.ctx.add_path_send.contains(family);
        let max = self.ctx.max_message_len();
        if !encoded.mp {
            return undo_on_error(out, |out| {
                let mut messages = Batch::new(max, &encoded.head, 0, |_, _| Ok(()));
                for prefix in prefixes {
                    let Prefix::V4(prefix) = prefix.into() else {
                        return Err(EncodeError::FamilyMismatch(family));
                    };
                    messages.reserve(out, prefix.wire_len(add_path))?;
                    prefix.encode(add_path, out);
                }
                messages.finish(out)
            });
        }
        let tail = &encoded.tail;
        pack_mp(max, &encoded.head, tail, family, add_path, prefixes, out)
    }

    /// Withdraws IPv4 unicast `prefixes` in the withdrawn routes field.
    pub fn withdraw_ipv4<I>(&self, prefixes: I, out: &mut BytesMut) -> Result<usize, EncodeError>
    where
        I: IntoIterator<Item = Ipv4Prefix>,
    {
        let mut head = header();
        head.put_u16(0);
        let add_path = self.ctx.add_path_send.contains(Family::IPV4_UNICAST);
        let finisher = |out: &mut BytesMut, start: usize| {
            let withdrawn_len = out.len() - (start + HEADER_LEN + 2);
            patch_u16(out, start + HEADER_LEN, len16(withdrawn_len)?);
            out.put_u16(0);
            Ok(())
        };
        undo_on_error(out, |out| {
            let mut messages = Batch::new(self.ctx.max_message_len(), &head, 2, finisher);
            for prefix in prefixes {
                messages.reserve(out, prefix.wire_len(add_path))?;
                prefix.encode(add_path, out);
            }
            messages.finish(out)
        })
    }

    /// Withdraws `prefixes` of `family` in MP_UNREACH_NLRI.
    pub fn withdraw_mp<I>(
        &self,
        family: Family,
        prefixes: I,
        out: &mut BytesMut,
    ) -> Result<usize, EncodeError>
    where
        I: IntoIterator,
        I::Item: Into<Prefix>,
    {
        let mut head = header();
        head.put_u16(0);
        head.put_u16(0);
        head.put_u8(flags::OPTIONAL | flags::EXTENDED_LENGTH);
        head.put_u8(t::MP_UNREACH_NLRI);
        head.put_u16(0);
        head.put_u16(family.afi.0);
        head.put_u8(family.safi.0);
        let add_path = self.ctx.add_path_send.contains(family);
        let max = self.ctx.max_message_len();
        pack_mp(max, &head, &[], family, add_path, prefixes, out)
    }

    /// Appends the End-of-RIB marker of `family` (RFC 4724).
    pub fn end_of_rib(&self, family: Family, out: &mut BytesMut) -> Result<usize, EncodeError> {
        Message::Update(Update::end_of_rib(family)).encode(self.ctx, out)?;
        Ok(1)
    }
}

/// The path attributes of an announcement of one family, encoded once (see
/// [`UpdatePacker::encode_ipv4`], [`UpdatePacker::encode_mp`]) and packed after by
/// [`UpdatePacker::announce_encoded`] for every session it fits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedAttributes {
    family: Family,
    /// In MP_REACH_NLRI (else IPv4 unicast in the classic NLRI field).
    mp: bool,
    /// The AS width the AS_PATH and AGGREGATOR were written for (RFC 6793).
    four_octet_as: bool,
    /// Each message up to its first prefix: header, withdrawn routes length, path
    /// attributes length, then every attribute (classic) or MP_REACH_NLRI's head.
    head: Box<[u8]>,
    /// MP: the attributes after MP_REACH_NLRI.
    tail: Box<[u8]>,
}

impl EncodedAttributes {
    /// True when a session of `ctx` announcing `family` sends these very
    /// attributes: same family, same AS width, and for IPv4 in MP_REACH_NLRI (an
    /// IPv6 next hop) the extended next hop capability (RFC 8950).
    pub fn fits(&self, ctx: &SessionContext, family: Family) -> bool {
        self.family == family
            && self.four_octet_as == ctx.four_octet_as
            && (!self.mp
                || family.afi != crate::family::Afi::IPV4
                || ctx.extended_next_hop.contains(family))
    }

    /// The family these attributes announce.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Octets held.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// True when nothing is held (never, for an encoding the packer made).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Packs `prefixes` of `family` into messages that start with `head` (header, the
/// two length fields, then MP_REACH_NLRI or MP_UNREACH_NLRI up to its prefixes) and
/// end with `tail` (the attributes after it), patching the lengths of each.
fn pack_mp<I>(
    max: usize,
    head: &[u8],
    tail: &[u8],
    family: Family,
    add_path: bool,
    prefixes: I,
    out: &mut BytesMut,
) -> Result<usize, EncodeError>
where
    I: IntoIterator,
    I::Item: Into<Prefix>,
{
    // The MP attribute starts after the header and the two length fields.
    let mp_at = HEADER_LEN + 4;
    let finisher = |out: &mut BytesMut, start: usize| {
        let mp_len = out.len() - (start + mp_at + 4);
        patch_u16(out, start + mp_at + 2, len16(mp_len)?);
        out.extend_from_slice(tail);
        let attributes_len = out.len() - (start + HEADER_LEN + 4);
        patch_u16(out, start + HEADER_LEN + 2, len16(attributes_len)?);
        Ok(())
    };
    undo_on_error(out, |out| {
        let mut messages = Batch::new(max, head, tail.len(), finisher);
        for prefix in prefixes {
            let prefix = prefix.into();
            if prefix.afi() != family.afi || !family.is_ip() {
                return Err(EncodeError::FamilyMismatch(family));
            }
            messages.reserve(out, prefix.wire_len(add_path))?;
            prefix.encode(add_path, out);
        }
        messages.finish(out)
    })
}

fn header() -> BytesMut {
    let mut head = BytesMut::with_capacity(64);
    head.extend_from_slice(&MARKER);
    head.put_u16(0);
    head.put_u8(MessageType::Update as u8);
    head
}

fn len16(len: usize) -> Result<u16, EncodeError> {
    u16::try_from(len).map_err(|_| EncodeError::FieldTooLong {
        what: "UPDATE field",
    })
}

/// The messages of one call: each starts with `head`, gets prefixes while they fit
/// with `tail_len` octets still to come, and is closed by `finisher(out, start)`
/// (which patches fields and appends the tail) before the next one starts.
struct Batch<'h, F> {
    max: usize,
    head: &'h [u8],
    tail_len: usize,
    current: Option<usize>,
    count: usize,
    finisher: F,
}

impl<'h, F> Batch<'h, F>
where
    F: FnMut(&mut BytesMut, usize) -> Result<(), EncodeError>,
{
    fn new(max: usize, head: &'h [u8], tail_len: usize, finisher: F) -> Batch<'h, F> {
        Batch {
            max,
            head,
            tail_len,
            current: None,
            count: 0,
            finisher,
        }
    }

    /// Makes room for a prefix of `need` octets, starting a new message if needed.
    #[inline]
    fn reserve(&mut self, out: &mut BytesMut, need: usize) -> Result<(), EncodeError> {
        if let Some(start) = self.current {
            if out.len() - start + need + self.tail_len <= self.max {
                return Ok(());
            }
            self.close(out, start)?;
        }
        let length = self.head.len() + need + self.tail_len;
        if length > self.max {
            return Err(EncodeError::TooLong {
                length,
                max: self.max,
            });
        }
        if self.count == 0 {
            out.reserve(self.max.min(4096));
        }
        self.current = Some(out.len());
        out.extend_from_slice(self.head);
        Ok(())
    }

    fn close(&mut self, out: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
        (self.finisher)(out, start)?;
        let length = len16(out.len() - start)?;
        patch_u16(out, start + 16, length);
        self.count += 1;
        Ok(())
    }

    fn finish(mut self, out: &mut BytesMut) -> Result<usize, EncodeError> {
        if let Some(start) = self.current.take() {
            self.close(out, start)?;
        }
        Ok(self.count)
    }
}

/// Runs `build`, removing whatever it appended to `out` when it fails.
fn undo_on_error<T>(
    out: &mut BytesMut,
    build: impl FnOnce(&mut BytesMut) -> Result<T, EncodeError>,
) -> Result<T, EncodeError> {
    let first = out.len();
    let result = build(out);
    if result.is_err() {
        out.truncate(first);
    }
    result
}
