#![allow(clippy::unwrap_used)]
//! Property: encoding an arbitrary valid message and decoding it again (with the same
//! session context) gives the message back, with no problem reported.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::attribute::flags;
use bgp_proto::*;
use ipnet::{Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

fn context() -> impl Strategy<Value = SessionContext> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0u8..4,
        any::<bool>(),
    )
        .prop_map(|(four_octet_as, ibgp, extended_message, add_path, enh)| {
            let mut families = FamilySet::EMPTY;
            if add_path & 1 != 0 {
                families.insert(Family::IPV4_UNICAST);
            }
            if add_path & 2 != 0 {
                families.insert(Family::IPV6_UNICAST);
            }
            let extended_next_hop = if enh {
                [Family::IPV4_UNICAST].into_iter().collect()
            } else {
                FamilySet::EMPTY
            };
            SessionContext {
                four_octet_as,
                ibgp,
                extended_message,
                add_path_receive: families,
                add_path_send: families,
                extended_next_hop,
                ..SessionContext::default()
            }
        })
}

fn family() -> impl Strategy<Value = Family> {
    (any::<u16>(), any::<u8>()).prop_map(|(afi, safi)| Family::new(Afi(afi), Safi(safi)))
}

fn capability() -> impl Strategy<Value = Capability> {
    let known = [1u8, 2, 5, 6, 64, 65, 69, 70, 73];
    prop_oneof![
        family().prop_map(|family| Capability::Multiprotocol { family }),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        Just(Capability::EnhancedRouteRefresh),
        vec((family(), any::<u16>()), 0..20).prop_map(|entries| Capability::ExtendedNextHop {
            entries: entries
                .into_iter()
                .map(|(family, afi)| ExtendedNextHop {
                    family,
                    next_hop_afi: Afi(afi)
                })
                .collect()
        }),
        (0u8..16, 0u16..4096, vec((family(), any::<u8>()), 0..20)).prop_map(
            |(flags, restart_time, families)| {
                Capability::GracefulRestart(GracefulRestart {
                    flags,
                    restart_time,
                    families: families
                        .into_iter()
                        .map(|(family, flags)| GracefulRestartFamily { family, flags })
                        .collect(),
                })
            }
        ),
        // RFC 7607: AS 0 is refused on decode (tests/data/rules.txt), so it is not generated.
        (1..=u32::MAX).prop_map(|asn| Capability::FourOctetAs { asn }),
        vec((family(), any::<u8>()), 0..20).prop_map(|entries| Capability::AddPath {
            entries: entries
                .into_iter()
                .map(|(family, send_receive)| AddPath {
                    family,
                    send_receive
                })
                .collect()
        }),
        ("[a-z0-9.-]{0,60}", "[a-z0-9.-]{0,60}")
            .prop_map(|(hostname, domain)| Capability::Hostname { hostname, domain }),
        (
            any::<u8>().prop_filter("unknown code", move |c| !known.contains(c)),
            vec(any::<u8>(), 0..40)
        )
            .prop_map(|(code, bytes)| Capability::Unknown { code, bytes }),
    ]
}

/// OPENs that decode without an error: AS 0 (RFC 7607) is refused on decode, so
/// `my_as` and the 4-octet AS start at 1 (tests/data/rules.txt checks the refusal).
fn open() -> impl Strategy<Value = Open> {
    (
        1..=u16::MAX,
        any::<u16>(),
        any::<u32>(),
        vec(capability(), 0..12),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(my_as, hold_time, id, capabilities, extended, split)| {
            let hold_time = if hold_time == 1 || hold_time == 2 {
                0
            } else {
                hold_time
            };
            // Cut the capabilities into optional parameters at the bits of `split`.
            let mut grouping = Vec::new();
            let mut count = 0u16;
            for i in 0..capabilities.len() {
                count += 1;
                if split & (1 << i) != 0 || i + 1 == capabilities.len() {
                    grouping.push(count);
                    count = 0;
                }
            }
            if grouping.iter().all(|&n| n == 1) {
                grouping.clear();
            }
            // A layout asks for the RFC 9072 format only when the parameters would fit
            // without it (otherwise the format is not a choice).
            let mut lengths = Vec::new();
            let mut rest = &capabilities[..];
            let counts: Vec<usize> = if grouping.is_empty() {
                vec![1; capabilities.len()]
            } else {
                grouping.iter().map(|&n| usize::from(n)).collect()
            };
            for count in counts {
                let (group, tail) = rest.split_at(count);
                lengths.push(group.iter().map(|c| 2 + c.value_len()).sum::<usize>());
                rest = tail;
            }
            let needed = lengths.iter().any(|&l| l > 255)
                || lengths.iter().map(|l| l + 2).sum::<usize>() > 255;
            let extended = extended && !needed;
            Open {
                version: 4,
                my_as,
                hold_time,
                bgp_identifier: Ipv4Addr::from(id),
                capabilities,
                layout: OpenLayout { extended, grouping },
            }
        })
}

fn v4(add_path: bool) -> impl Strategy<Value = Ipv4Prefix> {
    (any::<u32>(), 0u8..=32, any::<u32>()).prop_map(move |(addr, len, id)| Ipv4Prefix {
        path_id: add_path.then_some(id),
        net: Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc(),
    })
}

fn v6(add_path: bool) -> impl Strategy<Value = Ipv6Prefix> {
    (any::<u128>(), 0u8..=128, any::<u32>()).prop_map(move |(addr, len, id)| Ipv6Prefix {
        path_id: add_path.then_some(id),
        net: Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap().trunc(),
    })
}

fn unicast_v4() -> impl Strategy<Value = Ipv4Addr> {
    (0x0100_0000u32..0xe000_0000).prop_map(Ipv4Addr::from)
}

fn unicast_v6() -> impl Strategy<Value = Ipv6Addr> {
    (0x2000u128..0x3fff).prop_flat_map(|top| {
        any::<u128>().prop_map(move |low| Ipv6Addr::from((top << 112) | (low >> 16)))
    })
}

/// AS 0 in a path is treat-as-withdraw (RFC 7607, tests/data/rules.txt), so the ASNs
/// start at 1.
fn as_path(max_asn: u32, confed: bool) -> impl Strategy<Value = AsPath> {
    let kinds = if confed {
        vec![
            SegmentType::Sequence,
            SegmentType::Set,
            SegmentType::ConfedSequence,
            SegmentType::ConfedSet,
        ]
    } else {
        vec![SegmentType::Sequence, SegmentType::Set]
    };
    vec((select(kinds), vec(1..=max_asn, 1..8)), 0..4).prop_map(|segments| {
        let mut path = AsPath::new();
        for (kind, asns) in segments {
            path.push_segment(kind, &asns);
        }
        path
    })
}

fn attributes(ctx: SessionContext) -> impl Strategy<Value = PathAttributes> {
    let max_asn = if ctx.four_octet_as { u32::MAX } else { 0xffff };
    let known = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 32, 35];
    let unknown = vec(
        (
            any::<u8>().prop_filter("unknown", move |c| !known.contains(c)),
            0u8..4,
            vec(any::<u8>(), 0..20),
        ),
        0..3,
    )
    .prop_map(|mut list| {
        // The standard layout writes unknown attributes in ascending type order.
        list.sort_by_key(|(code, _, _)| *code);
        let mut seen = Vec::new();
        list.into_iter()
            .filter(|(code, _, _)| {
                let fresh = !seen.contains(code);
                seen.push(*code);
                fresh
            })
            .map(|(code, bits, value)| RawAttribute {
                flags: flags::OPTIONAL | (bits << 5),
                code,
                value,
            })
            .collect::<Vec<_>>()
    });
    let base = (
        select(vec![Origin::Igp, Origin::Egp, Origin::Incomplete]),
        as_path(max_asn, true),
        proptest::option::of(unicast_v4()),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        proptest::option::of((1..=max_asn, any::<u32>())),
        vec(any::<u32>(), 0..10),
        vec(any::<[u8; 8]>(), 0..5),
        vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..5),
        proptest::option::of(any::<u32>()),
        unknown,
    );
    let ibgp_only = (
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        vec(any::<u32>(), 0..4),
    );
    let as4 = (
        proptest::option::of(as_path(u32::MAX, false)),
        proptest::option::of((1..=u32::MAX, any::<u32>())),
    );
    (base, ibgp_only, as4).prop_map(move |(base, ibgp_only, as4)| {
        let (
            origin,
            as_path,
            next_hop,
            med,
            atomic_aggregate,
            aggregator,
            communities,
            ext,
            large,
            otc,
            unknown,
        ) = base;
        let (local_pref, originator_id, cluster_list) = if ctx.ibgp {
            ibgp_only
        } else {
            (None, None, Vec::new())
        };
        let (as4_path, as4_aggregator) = if ctx.four_octet_as { (None, None) } else { as4 };
        PathAttributes {
            origin: Some(origin),
            as_path: Some(as_path),
            next_hop,
            med,
            local_pref,
            atomic_aggregate,
            aggregator: aggregator.map(|(asn, id)| Aggregator {
                asn,
                address: Ipv4Addr::from(id),
            }),
            communities: communities.into_iter().map(Community).collect(),
            originator_id: originator_id.map(Ipv4Addr::from),
            cluster_list: cluster_list.into_iter().map(Ipv4Addr::from).collect(),
            extended_communities: ext.into_iter().map(ExtendedCommunity).collect(),
            as4_path,
            as4_aggregator: as4_aggregator.map(|(asn, id)| Aggregator {
                asn,
                address: Ipv4Addr::from(id),
            }),
            large_communities: large
                .into_iter()
                .map(|(global, local1, local2)| LargeCommunity {
                    global,
                    local1,
                    local2,
                })
                .collect(),
            otc,
            unknown,
        }
    })
}

fn next_hop6() -> impl Strategy<Value = NextHop> {
    (unicast_v6(), proptest::option::of(any::<u64>())).prop_map(|(global, ll)| NextHop::Ipv6 {
        global,
        link_local: ll.map(|low| Ipv6Addr::from((0xfe80u128 << 112) | u128::from(low))),
    })
}

fn mp_reach(ctx: SessionContext) -> impl Strategy<Value = Option<MpReach>> {
    let v6_add_path = ctx.add_path_send.contains(Family::IPV6_UNICAST);
    let v4_add_path = ctx.add_path_send.contains(Family::IPV4_UNICAST);
    let ipv6 = (next_hop6(), vec(v6(v6_add_path), 1..20)).prop_map(|(next_hop, nlri)| MpReach {
        family: Family::IPV6_UNICAST,
        next_hop,
        nlri: Nlri::Ipv6(nlri),
    });
    let ipv4 = (next_hop6(), vec(v4(v4_add_path), 1..20)).prop_map(|(next_hop, nlri)| MpReach {
        family: Family::IPV4_UNICAST,
        next_hop,
        nlri: Nlri::Ipv4(nlri),
    });
    let other =
        (vec(any::<u8>(), 0..40), vec(any::<u8>(), 0..40)).prop_map(|(next_hop, nlri)| MpReach {
            family: Family::new(Afi::L2VPN, Safi::EVPN),
            next_hop: NextHop::Other(next_hop),
            nlri: Nlri::Other(nlri),
        });
    if ctx.extended_next_hop.contains(Family::IPV4_UNICAST) {
        proptest::option::of(prop_oneof![ipv6, ipv4, other]).boxed()
    } else {
        proptest::option::of(prop_oneof![ipv6, other]).boxed()
    }
}

fn update(ctx: SessionContext) -> impl Strategy<Value = Update> {
    let add_path = ctx.add_path_send.contains(Family::IPV4_UNICAST);
    let v6_add_path = ctx.add_path_send.contains(Family::IPV6_UNICAST);
    let unreach = prop_oneof![
        vec(v6(v6_add_path), 0..20).prop_map(|w| MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: Nlri::Ipv6(w)
        }),
        vec(any::<u8>(), 0..20).prop_map(|w| MpUnreach {
            family: Family::new(Afi(25), Safi(70)),
            withdrawn: Nlri::Other(w)
        }),
    ];
    (
        vec(v4(add_path), 0..30),
        attributes(ctx),
        vec(v4(add_path), 0..30),
        mp_reach(ctx),
        proptest::option::of(unreach),
        unicast_v4(),
        any::<bool>(),
    )
        .prop_map(
            |(withdrawn, mut attributes, nlri, mp_reach, mp_unreach, next_hop, bare)| {
                if !nlri.is_empty() {
                    attributes.next_hop = Some(next_hop);
                }
                if bare && nlri.is_empty() && mp_reach.is_none() {
                    // Only withdrawals: no attribute is needed.
                    attributes = PathAttributes::default();
                }
                Update {
                    withdrawn,
                    attributes,
                    nlri,
                    mp_reach,
                    mp_unreach,
                    layout: Layout::default(),
                }
            },
        )
}

fn message(ctx: SessionContext) -> impl Strategy<Value = Message> {
    prop_oneof![
        open().prop_map(Message::Open),
        update(ctx).prop_map(Message::Update),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(|(code, subcode, data)| {
            Message::Notification(Notification::new(code, subcode, data))
        }),
        Just(Message::Keepalive),
        (family(), any::<u8>())
            .prop_map(|(family, subtype)| Message::RouteRefresh(RouteRefresh { family, subtype })),
    ]
}

fn with_context() -> impl Strategy<Value = (SessionContext, Message)> {
    context().prop_flat_map(|ctx| (Just(ctx), message(ctx)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_the_identity((ctx, message) in with_context()) {
        let bytes = match message.to_bytes(&ctx) {
            Ok(bytes) => bytes,
            Err(EncodeError::TooLong { .. }) => return Ok(()),
            Err(error) => panic!("{error}: {message:?}"),
        };
        let decoded = decode_message(&bytes, &ctx).unwrap_or_else(|e| panic!("{e}: {message:?}"));
        prop_assert_eq!(decoded.action, Action::None, "{:?}", decoded.errors);
        prop_assert_eq!(&decoded.message, &message);
        // And the bytes are stable.
        prop_assert_eq!(decoded.message.to_bytes(&ctx).unwrap(), bytes);
    }

    #[test]
    fn update_packer_output_decodes_to_its_input(
        ctx in context(),
        prefixes in vec(v4(false), 0..3000),
        next_hop in unicast_v4(),
    ) {
        let mut ctx = ctx;
        ctx.add_path_send = FamilySet::EMPTY;
        ctx.add_path_receive = FamilySet::EMPTY;
        let attributes = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(&[65001])),
            next_hop: Some(next_hop),
            ..PathAttributes::default()
        };
        let mut out = bytes::BytesMut::new();
        UpdatePacker::new(&ctx).announce_ipv4(&attributes, prefixes.iter().copied(), &mut out).unwrap();
        let mut rest = &out[..];
        let mut got = Vec::new();
        while !rest.is_empty() {
            let length = frame_length(rest, ctx.max_message_len()).unwrap().unwrap();
            let Message::Update(update) = decode_message(&rest[..length], &ctx).unwrap().message else { panic!() };
            prop_assert_eq!(&update.attributes, &attributes);
            got.extend(update.nlri);
            rest = &rest[length..];
        }
        prop_assert_eq!(got, prefixes);
    }
}
