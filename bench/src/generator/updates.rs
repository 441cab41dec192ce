//! The routes the generator announces and their UPDATEs, encoded before any clock starts.
//!
//! Prefix number `i` is the /26 at 32.0.0.0 + 64·i (a million of them end at 36.0.0.0),
//! a range no namespace uses for anything else. Announcements carry ORIGIN IGP, an
//! AS_PATH of the peer's AS (empty, with LOCAL_PREF 100, to an iBGP daemon: [`Role`])
//! and the peer's address as NEXT_HOP, packed by bgp-proto's [`UpdatePacker`] into as
//! few 4096-octet UPDATEs as possible.

use std::net::Ipv4Addr;
use std::ops::Range;

use anyhow::{Context, Result, bail};
use bgp_proto::{AsPath, Ipv4Prefix, Origin, PathAttributes, SessionContext, UpdatePacker};
use bytes::{Bytes, BytesMut};
use ipnet::Ipv4Net;

use crate::routelog::Key;

/// The first address of the announced range.
const BASE: u32 = 0x2000_0000;
/// Prefix length of every announced route.
pub const PREFIX_LEN: u8 = 26;
/// How many prefixes the range holds (32.0.0.0/6).
pub const CAPACITY: u32 = 1 << 20;

/// Prefix number `i`.
pub fn prefix(i: u32) -> Ipv4Net {
    let addr = Ipv4Addr::from(BASE + (i % CAPACITY) * 64);
    Ipv4Net::new(addr, PREFIX_LEN).unwrap_or_default()
}

/// The prefixes numbered `range`.
pub fn prefixes(range: Range<u32>) -> Vec<Ipv4Net> {
    range.map(prefix).collect()
}

/// Their keys in a route log.
pub fn keys(nets: &[Ipv4Net]) -> Vec<Key> {
    nets.iter().map(|net| Key::of(*net)).collect()
}

/// Whether the daemon is in the peers' AS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The daemon is in another AS (every scenario but `scale-*`).
    External,
    /// The daemon is in the peers' AS: a mesh member or a route reflector.
    Internal,
}

/// The session parameters every pre-encoded UPDATE assumes: 4-octet AS numbers, no
/// add-path, no extended message, iBGP when `ibgp`. The generator's OPEN offers nothing
/// that could change them, and a session negotiating otherwise is refused
/// ([`check_context`]); whether it is iBGP follows from the daemon's AS.
pub fn context(ibgp: bool) -> SessionContext {
    SessionContext {
        ibgp,
        ..SessionContext::default()
    }
}

/// Fails when a negotiated session would need UPDATEs encoded differently.
pub fn check_context(negotiated: &SessionContext) -> Result<()> {
    let assumed = context(negotiated.ibgp);
    if negotiated.four_octet_as != assumed.four_octet_as
        || negotiated.extended_message != assumed.extended_message
        || negotiated.add_path_send != assumed.add_path_send
    {
        bail!(
            "the session negotiated {negotiated:?}, but the UPDATEs were encoded for {assumed:?}"
        );
    }
    Ok(())
}

/// UPDATEs announcing `nets` from a peer at `next_hop` in AS `asn` to an eBGP daemon.
pub fn announce(next_hop: Ipv4Addr, asn: u32, nets: &[Ipv4Net]) -> Result<Bytes> {
    announce_as(Role::External, next_hop, asn, nets)
}

/// UPDATEs announcing `nets` from a peer at `next_hop` in AS `asn`, to a daemon in the
/// role `role`.
pub fn announce_as(role: Role, next_hop: Ipv4Addr, asn: u32, nets: &[Ipv4Net]) -> Result<Bytes> {
    let ibgp = role == Role::Internal;
    let ctx = context(ibgp);
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(if ibgp {
            AsPath::from_sequence(&[])
        } else {
            AsPath::from_sequence(&[asn])
        }),
        next_hop: Some(next_hop),
        local_pref: ibgp.then_some(100),
        ..PathAttributes::default()
    };
    let mut out = BytesMut::with_capacity(nets.len() * 5 + 64);
    if !nets.is_empty() {
        UpdatePacker::new(&ctx)
            .announce_ipv4(
                &attributes,
                nets.iter().map(|n| Ipv4Prefix::new(*n)),
                &mut out,
            )
            .context("encoding announcements")?;
    }
    Ok(out.freeze())
}

/// UPDATEs withdrawing `nets`.
pub fn withdraw(nets: &[Ipv4Net]) -> Result<Bytes> {
    let ctx = context(false);
    let mut out = BytesMut::with_capacity(nets.len() * 5 + 64);
    if !nets.is_empty() {
        UpdatePacker::new(&ctx)
            .withdraw_ipv4(nets.iter().map(|n| Ipv4Prefix::new(*n)), &mut out)
            .context("encoding withdrawals")?;
    }
    Ok(out.freeze())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use bgp_proto::{Message, decode_message, frame_length};

    #[test]
    fn prefixes_are_distinct_26s_from_32_0_0_0() {
        assert_eq!(prefix(0).to_string(), "32.0.0.0/26");
        assert_eq!(prefix(1).to_string(), "32.0.0.64/26");
        assert_eq!(prefix(CAPACITY - 1).to_string(), "35.255.255.192/26");
        let all = prefixes(0..1000);
        let mut unique = all.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 1000);
    }

    /// Decodes a byte run of back-to-back messages.
    fn decode_all(bytes: &[u8]) -> Vec<Message> {
        decode_all_as(bytes, false)
    }

    fn decode_all_as(mut bytes: &[u8], ibgp: bool) -> Vec<Message> {
        let ctx = context(ibgp);
        let mut messages = Vec::new();
        while let Some(length) = frame_length(bytes, 4096).unwrap() {
            messages.push(decode_message(&bytes[..length], &ctx).unwrap().message);
            bytes = &bytes[length..];
        }
        assert!(bytes.is_empty());
        messages
    }

    #[test]
    fn announcements_decode_to_the_same_routes() {
        let nets = prefixes(0..2000);
        let bytes = announce(Ipv4Addr::new(10, 1, 1, 7), 65000, &nets).unwrap();
        let messages = decode_all(&bytes);
        assert!(
            messages.len() >= 3,
            "2000 /26s do not fit in fewer than 3 messages"
        );
        let mut seen = Vec::new();
        for message in messages {
            let Message::Update(update) = message else {
                panic!("not an UPDATE")
            };
            assert_eq!(update.attributes.next_hop, Some(Ipv4Addr::new(10, 1, 1, 7)));
            assert_eq!(
                update.attributes.as_path,
                Some(AsPath::from_sequence(&[65000]))
            );
            seen.extend(update.nlri.iter().map(|p| p.net));
        }
        assert_eq!(seen, nets);
    }

    #[test]
    fn withdrawals_decode_to_the_same_prefixes() {
        let nets = prefixes(10..20);
        let bytes = withdraw(&nets).unwrap();
        let messages = decode_all(&bytes);
        let Message::Update(update) = &messages[0] else {
            panic!("not an UPDATE")
        };
        let withdrawn: Vec<Ipv4Net> = update.withdrawn.iter().map(|p| p.net).collect();
        assert_eq!(withdrawn, nets);
        assert!(announce(Ipv4Addr::LOCALHOST, 1, &[]).unwrap().is_empty());
    }

    #[test]
    fn context_mismatch_is_refused() {
        check_context(&context(false)).unwrap();
        check_context(&context(true)).unwrap();
        let extended = SessionContext {
            extended_message: true,
            ..context(true)
        };
        assert!(check_context(&extended).is_err());
    }

    #[test]
    fn internal_announcements_carry_local_pref_and_no_as() {
        let nets = prefixes(0..3);
        let bytes = announce_as(Role::Internal, Ipv4Addr::new(10, 1, 1, 7), 64512, &nets).unwrap();
        let Message::Update(update) = &decode_all_as(&bytes, true)[0] else {
            panic!("not an UPDATE")
        };
        assert_eq!(update.attributes.local_pref, Some(100));
        assert_eq!(update.attributes.as_path, Some(AsPath::from_sequence(&[])));
        assert_eq!(update.nlri.len(), 3);
    }
}
