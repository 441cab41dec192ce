#![allow(clippy::unwrap_used)]
//! Byte vectors from real peers (FRR 8.4, BIRD 2.0, GoBGP 3; see vectors/peers.txt and
//! vectors/capture.sh), checked both ways: every message decodes without a problem and
//! encodes back to the same bytes. Each direction of a session is decoded with the
//! context negotiated from the two OPENs of that session.

use std::collections::HashMap;

use bgp_proto::notification::{cease_subcode, code};
use bgp_proto::*;

const PEERS: &str = include_str!("vectors/peers.txt");

/// One TCP connection: its messages as (speaker, comment, bytes).
struct Session {
    name: String,
    ibgp: bool,
    messages: Vec<(String, String, Vec<u8>)>,
}

fn sessions() -> Vec<Session> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut comment = String::new();
    for line in PEERS.lines() {
        if let Some(text) = line.strip_prefix("# ") {
            comment = text.to_owned();
        } else if let Some(rest) = line.strip_prefix("session ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            sessions.push(Session {
                name: name.to_owned(),
                ibgp: kind == "ibgp",
                messages: Vec::new(),
            });
        } else if let Some((speaker, hex)) = line.split_once(' ') {
            let session = sessions.last_mut().unwrap();
            session.messages.push((
                speaker.to_owned(),
                comment.clone(),
                hex::decode(hex).unwrap(),
            ));
        }
    }
    sessions
}

/// What the vectors must cover, so a regenerated file cannot silently lose a case.
#[derive(Default, Debug)]
struct Seen {
    opens: HashMap<String, usize>,
    keepalive: bool,
    ipv4_nlri: bool,
    ipv6_reach: bool,
    ipv4_with_ipv6_next_hop: bool,
    link_local_next_hop: bool,
    communities: bool,
    large_communities: bool,
    add_path: bool,
    as4_path: bool,
    withdrawn_ipv4: bool,
    withdrawn_ipv6: bool,
    end_of_rib: Vec<Family>,
    route_refresh: bool,
    shutdown_communication: Vec<String>,
    non_standard_layout: bool,
}

#[test]
fn real_peer_messages_decode_and_encode_back_to_the_same_bytes() {
    let mut seen = Seen::default();
    let sessions = sessions();
    assert!(sessions.len() >= 4);
    for session in &sessions {
        let mut opens: HashMap<&str, Open> = HashMap::new();
        for (speaker, _, bytes) in &session.messages {
            if let Ok(Decoded {
                message: Message::Open(open),
                ..
            }) = decode_message(bytes, &SessionContext::default())
            {
                opens.entry(speaker.as_str()).or_insert(open);
            }
        }
        for (speaker, comment, bytes) in &session.messages {
            let remote = opens.get(speaker.as_str());
            let local = opens
                .iter()
                .find(|(name, _)| *name != speaker)
                .map(|(_, open)| open);
            let ctx = match (local, remote) {
                (Some(local), Some(remote)) => {
                    let mut ctx = SessionContext::negotiate(local, remote, session.ibgp);
                    // Encoding back as the sender did: it sent path ids where we receive them.
                    ctx.add_path_send = ctx.add_path_receive;
                    ctx
                }
                _ => SessionContext::default(),
            };
            let where_ = format!("session {} {speaker}: {comment}", session.name);
            let decoded = decode_message(bytes, &ctx).unwrap_or_else(|e| panic!("{where_}: {e}"));
            assert_eq!(
                decoded.action,
                Action::None,
                "{where_}: {:?}",
                decoded.errors
            );
            let encoded = decoded.message.to_bytes(&ctx).unwrap();
            assert_eq!(hex::encode(&encoded), hex::encode(bytes), "{where_}");
            note(&mut seen, speaker, &ctx, &decoded.message);
        }
    }
    for daemon in ["frr", "bird", "gobgp"] {
        assert!(
            seen.opens.get(daemon).is_some_and(|&n| n > 0),
            "no OPEN from {daemon}"
        );
    }
    assert!(
        seen.keepalive && seen.ipv4_nlri && seen.ipv6_reach,
        "{seen:?}"
    );
    assert!(
        seen.ipv4_with_ipv6_next_hop && seen.link_local_next_hop,
        "{seen:?}"
    );
    assert!(
        seen.communities && seen.large_communities && seen.add_path && seen.as4_path,
        "{seen:?}"
    );
    assert!(
        seen.withdrawn_ipv4 && seen.withdrawn_ipv6 && seen.route_refresh,
        "{seen:?}"
    );
    assert!(seen.non_standard_layout, "{seen:?}");
    assert!(
        seen.end_of_rib.contains(&Family::IPV4_UNICAST)
            && seen.end_of_rib.contains(&Family::IPV6_UNICAST)
    );
    for daemon in ["FRR", "BIRD", "GoBGP"] {
        assert!(
            seen.shutdown_communication
                .iter()
                .any(|text| text.contains(daemon)),
            "no shutdown communication from {daemon}: {:?}",
            seen.shutdown_communication
        );
    }
}

fn note(seen: &mut Seen, speaker: &str, ctx: &SessionContext, message: &Message) {
    match message {
        Message::Open(open) => {
            *seen.opens.entry(speaker.to_owned()).or_default() += 1;
            assert_eq!(open.version, 4);
        }
        Message::Keepalive => seen.keepalive = true,
        Message::RouteRefresh(_) => seen.route_refresh = true,
        Message::Notification(notification) => {
            if notification.code == code::CEASE
                && notification.subcode == cease_subcode::ADMINISTRATIVE_SHUTDOWN
            {
                // A Cease without data is a shutdown without a message.
                if let Some(text) = notification.shutdown_communication() {
                    seen.shutdown_communication.push(text.unwrap().to_owned());
                }
            }
        }
        Message::Update(update) => {
            if let Some(family) = update.end_of_rib_family() {
                seen.end_of_rib.push(family);
                return;
            }
            let attrs = &update.attributes;
            seen.ipv4_nlri |= !update.nlri.is_empty();
            seen.withdrawn_ipv4 |= !update.withdrawn.is_empty();
            seen.communities |= !attrs.communities.is_empty();
            seen.large_communities |= !attrs.large_communities.is_empty();
            seen.non_standard_layout |= !update.layout.is_standard();
            if let Some(as4) = &attrs.as4_path {
                assert!(!ctx.four_octet_as);
                assert!(attrs.effective_as_path().unwrap().contains(4_200_000_009));
                assert!(
                    attrs
                        .as_path
                        .as_ref()
                        .unwrap()
                        .contains(u32::from(AS_TRANS))
                );
                seen.as4_path |= as4.contains(4_200_000_009);
            }
            seen.add_path |= update
                .announcements()
                .chain(update.withdrawals())
                .any(|(_, p)| p.path_id().is_some());
            if let Some(reach) = &update.mp_reach {
                seen.ipv6_reach |= reach.family == Family::IPV6_UNICAST && !reach.nlri.is_empty();
                if let NextHop::Ipv6 { link_local, .. } = reach.next_hop {
                    seen.link_local_next_hop |= link_local.is_some();
                    seen.ipv4_with_ipv6_next_hop |= reach.family == Family::IPV4_UNICAST;
                }
            }
            if let Some(unreach) = &update.mp_unreach {
                seen.withdrawn_ipv6 |=
                    unreach.family == Family::IPV6_UNICAST && !unreach.withdrawn.is_empty();
            }
        }
    }
}
