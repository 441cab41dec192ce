#![allow(clippy::unwrap_used)]
//! The update packer: every prefix arrives, in as few messages as the maximum size
//! allows, with attributes written for propagation.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::attribute::flags;
use bgp_proto::*;
use bytes::BytesMut;
use ipnet::{Ipv4Net, Ipv6Net};

fn attributes() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(&[65001, 4_200_000_000])),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        communities: vec![Community::new(65001, 1)],
        unknown: vec![
            RawAttribute {
                flags: flags::OPTIONAL | flags::TRANSITIVE,
                code: 99,
                value: vec![1, 2],
            },
            RawAttribute {
                flags: flags::OPTIONAL,
                code: 98,
                value: vec![3],
            },
        ],
        ..Default::default()
    }
}

fn v4_prefixes(n: u32) -> Vec<Ipv4Prefix> {
    (0..n)
        .map(|i| Ipv4Prefix::new(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 6)), 26).unwrap()))
        .collect()
}

fn v6_prefixes(n: u32) -> Vec<Ipv6Prefix> {
    (0..n)
        .map(|i| {
            let addr = Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(i) << 64));
            Ipv6Prefix::new(Ipv6Net::new(addr, 64).unwrap())
        })
        .collect()
}

/// Splits a buffer of back-to-back messages and decodes each one.
fn decode_all(buf: &[u8], ctx: &SessionContext) -> Vec<(usize, Update)> {
    let mut rest = buf;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let length = frame_length(rest, ctx.max_message_len()).unwrap().unwrap();
        let decoded = decode_message(&rest[..length], ctx).unwrap();
        assert_eq!(decoded.action, Action::None, "{:?}", decoded.errors);
        let Message::Update(update) = decoded.message else {
            panic!("not an UPDATE")
        };
        out.push((length, update));
        rest = &rest[length..];
    }
    out
}

/// Every message but the last is full: the next prefix would not have fit.
fn assert_packed(messages: &[(usize, Update)], max: usize, prefix_len: usize) {
    for (length, _) in &messages[..messages.len() - 1] {
        assert!(
            *length <= max && length + prefix_len > max,
            "message of {length} octets is not full"
        );
    }
}

#[test]
fn ipv4_announcements_fill_each_message() {
    let ctx = SessionContext {
        four_octet_as: false,
        ..SessionContext::default()
    };
    let prefixes = v4_prefixes(2000);
    let mut out = BytesMut::new();
    let count = UpdatePacker::new(&ctx)
        .announce_ipv4(&attributes(), prefixes.iter().copied(), &mut out)
        .unwrap();
    let messages = decode_all(&out, &ctx);
    assert_eq!(count, messages.len());
    assert_packed(&messages, 4096, 5);
    let got: Vec<Ipv4Prefix> = messages
        .iter()
        .flat_map(|(_, u)| u.nlri.iter().copied())
        .collect();
    assert_eq!(got, prefixes);
    let attrs = &messages[0].1.attributes;
    // 2-octet peer: AS_TRANS in AS_PATH, the real path in AS4_PATH.
    assert_eq!(attrs.as_path.as_ref().unwrap().to_string(), "65001 23456");
    assert_eq!(
        attrs.as4_path.as_ref().unwrap().to_string(),
        "65001 4200000000"
    );
    assert_eq!(
        attrs.effective_as_path().unwrap().to_string(),
        "65001 4200000000"
    );
    // Unknown transitive: Partial set; unknown non-transitive: not sent.
    assert_eq!(
        attrs.unknown,
        vec![RawAttribute {
            flags: 0xe0,
            code: 99,
            value: vec![1, 2]
        }]
    );
}

#[test]
fn ipv6_and_withdrawals_with_add_path_and_extended_message() {
    let families: FamilySet = [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        .into_iter()
        .collect();
    let ctx = SessionContext {
        extended_message: true,
        add_path_send: families,
        add_path_receive: families,
        ..SessionContext::default()
    };
    let packer = UpdatePacker::new(&ctx);
    let prefixes = v6_prefixes(20_000);
    let next_hop = NextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let mut out = BytesMut::new();
    packer
        .announce_mp(
            &attributes(),
            Family::IPV6_UNICAST,
            &next_hop,
            prefixes.iter().copied(),
            &mut out,
        )
        .unwrap();
    let messages = decode_all(&out, &ctx);
    assert_packed(&messages, 65535, 4 + 1 + 8);
    let mut got = Vec::new();
    for (_, update) in &messages {
        let reach = update.mp_reach.as_ref().unwrap();
        assert_eq!(reach.next_hop, next_hop);
        assert!(
            update.attributes.next_hop.is_none(),
            "NEXT_HOP is not sent with MP_REACH only"
        );
        let Nlri::Ipv6(list) = &reach.nlri else {
            panic!()
        };
        got.extend(list.iter().map(|p| p.net));
    }
    assert_eq!(got, prefixes.iter().map(|p| p.net).collect::<Vec<_>>());

    let mut out = BytesMut::new();
    packer
        .withdraw_mp(Family::IPV6_UNICAST, prefixes.iter().copied(), &mut out)
        .unwrap();
    packer.withdraw_ipv4(v4_prefixes(30_000), &mut out).unwrap();
    packer.end_of_rib(Family::IPV6_UNICAST, &mut out).unwrap();
    let messages = decode_all(&out, &ctx);
    let withdrawn: usize = messages.iter().map(|(_, u)| u.withdrawals().count()).sum();
    assert_eq!(withdrawn, 50_000);
    assert!(messages.iter().all(|(length, _)| *length <= 65535));
    assert_eq!(
        messages.last().unwrap().1.end_of_rib_family(),
        Some(Family::IPV6_UNICAST)
    );
    assert!(
        messages
            .iter()
            .all(|(_, u)| u.withdrawals().all(|(_, p)| p.path_id() == Some(0)))
    );
}

#[test]
fn ipv4_with_ipv6_next_hop_needs_rfc8950() {
    let next_hop = NextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let mut out = BytesMut::new();
    let plain = SessionContext::default();
    let error = UpdatePacker::new(&plain)
        .announce_mp(
            &attributes(),
            Family::IPV4_UNICAST,
            &next_hop,
            v4_prefixes(3),
            &mut out,
        )
        .unwrap_err();
    assert_eq!(
        error,
        EncodeError::ExtendedNextHopNotNegotiated(Family::IPV4_UNICAST)
    );
    assert!(out.is_empty());

    let ctx = SessionContext {
        extended_next_hop: [Family::IPV4_UNICAST].into_iter().collect(),
        ..plain
    };
    UpdatePacker::new(&ctx)
        .announce_mp(
            &attributes(),
            Family::IPV4_UNICAST,
            &next_hop,
            v4_prefixes(3),
            &mut out,
        )
        .unwrap();
    let messages = decode_all(&out, &ctx);
    let reach = messages[0].1.mp_reach.as_ref().unwrap();
    assert_eq!(reach.family, Family::IPV4_UNICAST);
    assert_eq!(reach.nlri.len(), 3);

    // Wrong family prefixes are refused and leave nothing behind.
    let error = UpdatePacker::new(&ctx)
        .announce_mp(
            &attributes(),
            Family::IPV6_UNICAST,
            &next_hop,
            v4_prefixes(3),
            &mut out,
        )
        .unwrap_err();
    assert_eq!(error, EncodeError::FamilyMismatch(Family::IPV6_UNICAST));
    assert_eq!(decode_all(&out, &ctx).len(), 1);
}

#[test]
fn attributes_too_large_for_any_prefix_are_refused() {
    let ctx = SessionContext::default();
    let mut attrs = attributes();
    attrs.communities = (0..1100).map(Community).collect();
    let mut out = BytesMut::new();
    let error = UpdatePacker::new(&ctx)
        .announce_ipv4(&attrs, v4_prefixes(1), &mut out)
        .unwrap_err();
    assert!(matches!(error, EncodeError::TooLong { .. }), "{error:?}");
    assert!(out.is_empty());
    let mut missing = attributes();
    missing.next_hop = None;
    assert_eq!(
        UpdatePacker::new(&ctx).announce_ipv4(&missing, v4_prefixes(1), &mut out),
        Err(EncodeError::MissingNextHop)
    );
}

/// Every way an UPDATE's attributes are encoded: classic IPv4, IPv6 and IPv4 with an
/// IPv6 next hop (RFC 8950) in MP_REACH_NLRI; announcing `prefixes` (all of one
/// family) with `announce_*` directly.
fn announce_direct(
    ctx: &SessionContext,
    family: Family,
    next_hop: Option<&NextHop>,
    prefixes: &[Prefix],
) -> BytesMut {
    let packer = UpdatePacker::new(ctx);
    let mut out = BytesMut::new();
    match next_hop {
        None => packer.announce_ipv4(
            &attributes(),
            prefixes.iter().map(|p| match p {
                Prefix::V4(p) => *p,
                Prefix::V6(_) => panic!("IPv6 prefix in the classic NLRI"),
            }),
            &mut out,
        ),
        Some(next_hop) => packer.announce_mp(
            &attributes(),
            family,
            next_hop,
            prefixes.iter().copied(),
            &mut out,
        ),
    }
    .unwrap();
    out
}

/// The same through `encode_*` once and `announce_encoded`, the encoding made by
/// the packer of `encoded_by`.
fn encode(
    encoded_by: &SessionContext,
    family: Family,
    next_hop: Option<&NextHop>,
) -> Result<EncodedAttributes, EncodeError> {
    let packer = UpdatePacker::new(encoded_by);
    match next_hop {
        None => packer.encode_ipv4(&attributes()),
        Some(next_hop) => packer.encode_mp(&attributes(), family, next_hop),
    }
}

#[test]
fn pre_encoded_attributes_give_the_same_updates() {
    let both: FamilySet = [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
        .into_iter()
        .collect();
    let four_octet = SessionContext {
        extended_next_hop: [Family::IPV4_UNICAST].into_iter().collect(),
        ..SessionContext::default()
    };
    // Sessions that encode attributes alike but pack differently: 4096 or 65535
    // octets (extended message), with add-path or without.
    let packing = [
        four_octet,
        SessionContext {
            extended_message: true,
            ..four_octet
        },
        SessionContext {
            add_path_send: both,
            add_path_receive: both,
            ..four_octet
        },
    ];
    let v6_next_hop = NextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: Some("fe80::1".parse().unwrap()),
    };
    let v4: Vec<Prefix> = v4_prefixes(20_000).into_iter().map(Prefix::V4).collect();
    let v6: Vec<Prefix> = v6_prefixes(20_000).into_iter().map(Prefix::V6).collect();
    let cases: [(Family, Option<&NextHop>, &[Prefix]); 3] = [
        (Family::IPV4_UNICAST, None, &v4),
        (Family::IPV6_UNICAST, Some(&v6_next_hop), &v6),
        (Family::IPV4_UNICAST, Some(&v6_next_hop), &v4),
    ];
    for (family, next_hop, prefixes) in cases {
        for encoded_by in &packing {
            let encoded = encode(encoded_by, family, next_hop).unwrap();
            assert_eq!(encoded.family(), family);
            for ctx in &packing {
                assert!(encoded.fits(ctx, family));
                for count in [1, 3, 700, 20_000] {
                    let prefixes = &prefixes[..count];
                    let direct = announce_direct(ctx, family, next_hop, prefixes);
                    let mut reused = BytesMut::new();
                    // Twice into one buffer: the encoding is not used up.
                    for _ in 0..2 {
                        UpdatePacker::new(ctx)
                            .announce_encoded(&encoded, prefixes.iter().copied(), &mut reused)
                            .unwrap();
                    }
                    assert_eq!(reused.len(), 2 * direct.len());
                    assert_eq!(&reused[..direct.len()], &direct[..]);
                    assert_eq!(&reused[direct.len()..], &direct[..]);
                    // Split as the size allows, every prefix there once.
                    let messages = decode_all(&direct, ctx);
                    let max = ctx.max_message_len();
                    assert!(messages.iter().all(|(length, _)| *length <= max));
                    if count == 20_000 {
                        assert!(messages.len() > 1, "{family} {max}: one message");
                    }
                    let got: usize = messages
                        .iter()
                        .map(|(_, u)| u.announcements().count())
                        .sum();
                    assert_eq!(got, count);
                }
            }
        }
    }
}

#[test]
fn pre_encoded_attributes_only_fit_sessions_that_encode_alike() {
    let ctx = SessionContext {
        extended_next_hop: [Family::IPV4_UNICAST].into_iter().collect(),
        ..SessionContext::default()
    };
    let two_octet = SessionContext {
        four_octet_as: false,
        ..ctx
    };
    let no_rfc8950 = SessionContext::default();
    let v6_next_hop = NextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let v4: Vec<Prefix> = v4_prefixes(3).into_iter().map(Prefix::V4).collect();
    let v6: Vec<Prefix> = v6_prefixes(3).into_iter().map(Prefix::V6).collect();
    let mut out = BytesMut::from(&b"kept"[..]);
    let refused = |encoded: &EncodedAttributes,
                   session: &SessionContext,
                   prefixes: &[Prefix],
                   out: &mut BytesMut| {
        UpdatePacker::new(session)
            .announce_encoded(encoded, prefixes.iter().copied(), out)
            .unwrap_err()
    };

    // AS width: the AS_PATH (and AS4_PATH) differ.
    let classic = encode(&ctx, Family::IPV4_UNICAST, None).unwrap();
    assert!(!classic.fits(&two_octet, Family::IPV4_UNICAST));
    assert_eq!(
        refused(&classic, &two_octet, &v4, &mut out),
        EncodeError::EncodedForAnotherSession(Family::IPV4_UNICAST)
    );
    // Another family.
    assert!(!classic.fits(&ctx, Family::IPV6_UNICAST));
    // IPv4 with an IPv6 next hop needs RFC 8950 on the session packing too.
    let rfc8950 = encode(&ctx, Family::IPV4_UNICAST, Some(&v6_next_hop)).unwrap();
    assert!(!rfc8950.fits(&no_rfc8950, Family::IPV4_UNICAST));
    assert_eq!(
        refused(&rfc8950, &no_rfc8950, &v4, &mut out),
        EncodeError::EncodedForAnotherSession(Family::IPV4_UNICAST)
    );
    // IPv6 does not need it.
    let ipv6 = encode(&ctx, Family::IPV6_UNICAST, Some(&v6_next_hop)).unwrap();
    assert!(ipv6.fits(&no_rfc8950, Family::IPV6_UNICAST));
    // Prefixes of another family are refused.
    assert_eq!(
        refused(&classic, &ctx, &v6, &mut out),
        EncodeError::FamilyMismatch(Family::IPV4_UNICAST)
    );
    assert_eq!(
        refused(&ipv6, &ctx, &v4, &mut out),
        EncodeError::FamilyMismatch(Family::IPV6_UNICAST)
    );
    // Nothing was appended by the refusals.
    assert_eq!(&out[..], b"kept");
}
