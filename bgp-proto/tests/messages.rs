#![allow(clippy::unwrap_used)]
//! Whole messages through `decode_message` and `Message::encode`: hand-built byte
//! vectors (RFC layouts) checked both ways, and the header refusals.

use bgp_proto::notification::cease_subcode;
use bgp_proto::*;

fn hex(text: &str) -> Vec<u8> {
    hex::decode(text.split_whitespace().collect::<String>()).unwrap()
}

fn both_ways(bytes: &[u8], ctx: &SessionContext) -> Decoded {
    let decoded = decode_message(bytes, ctx).unwrap();
    assert_eq!(decoded.action, Action::None, "{:?}", decoded.errors);
    let encoded = decoded.message.to_bytes(ctx).unwrap();
    assert_eq!(hex::encode(&encoded), hex::encode(bytes));
    decoded
}

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

#[test]
fn keepalive_notification_route_refresh() {
    let ctx = SessionContext::default();
    let keepalive = hex(&format!("{MARKER} 0013 04"));
    assert_eq!(both_ways(&keepalive, &ctx).message, Message::Keepalive);

    let shutdown = hex(&format!("{MARKER} 001a 03 06 02 04 62 79 65 21"));
    let Message::Notification(notification) = both_ways(&shutdown, &ctx).message else {
        panic!()
    };
    assert_eq!(notification.subcode, cease_subcode::ADMINISTRATIVE_SHUTDOWN);
    assert_eq!(notification.shutdown_communication(), Some(Ok("bye!")));

    let borr = hex(&format!("{MARKER} 0017 05 0002 01 01"));
    let Message::RouteRefresh(refresh) = both_ways(&borr, &ctx).message else {
        panic!()
    };
    assert_eq!(refresh.family, Family::IPV6_UNICAST);
    assert_eq!(refresh.subtype, RouteRefresh::BEGINNING_OF_RIB_REFRESH);
}

#[test]
fn update_with_mp_reach_first_and_extended_lengths() {
    // MP_REACH (ext length) first, then ORIGIN, AS_PATH (ext length), MED: the layout
    // FRR uses; IPv6 2001:db8:1::/48 via 2001:db8::1 and fe80::1.
    let ctx = SessionContext::default();
    let bytes = hex(&format!(
        "{MARKER} 005c 02 0000 0045
         900e 002c 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00
         30 20010db80001
         40 01 01 00
         50 02 0006 02 01 0000fde9
         80 04 04 00000000"
    ));
    let decoded = both_ways(&bytes, &ctx);
    let Message::Update(update) = decoded.message else {
        panic!()
    };
    let reach = update.mp_reach.as_ref().unwrap();
    assert_eq!(reach.family, Family::IPV6_UNICAST);
    let NextHop::Ipv6 { link_local, .. } = reach.next_hop else {
        panic!()
    };
    assert_eq!(link_local, Some("fe80::1".parse().unwrap()));
    assert_eq!(
        update.attributes.as_path.as_ref().unwrap().to_string(),
        "65001"
    );
    assert_eq!(update.attributes.med, Some(0));
    assert!(!update.layout.is_standard());
    let announced: Vec<String> = update.announcements().map(|(_, p)| p.to_string()).collect();
    assert_eq!(announced, ["2001:db8:1::/48"]);
}

#[test]
fn header_refusals_name_their_notification() {
    let ctx = SessionContext::default();
    let cases = [
        (format!("{MARKER} 0014 04 00"), (1, 2)),
        (format!("{MARKER} 0013 07"), (1, 3)),
        (format!("fe{} 0013 04", &MARKER[2..]), (1, 1)),
        (format!("{MARKER} 0018 05 0001 01 01 00"), (7, 1)),
        (format!("{MARKER} 0016 02 0000 00"), (1, 2)),
        (format!("{MARKER} 0017 02 0005 0000"), (3, 1)),
    ];
    for (text, (code, subcode)) in cases {
        let malformed = decode_message(&hex(&text), &ctx).unwrap_err();
        assert_eq!(
            (malformed.notification.code, malformed.notification.subcode),
            (code, subcode),
            "{text}"
        );
    }
}

#[test]
fn problems_are_listed_up_to_a_bound_but_all_count() {
    let ctx = SessionContext::default();
    let origin = "40010100";
    let update = |attributes: &str, nlri: &str| {
        let attributes = hex(attributes);
        let nlri = hex(nlri);
        let mut body = vec![0, 0];
        body.extend_from_slice(&u16::try_from(attributes.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&attributes);
        body.extend_from_slice(&nlri);
        let mut message = hex(MARKER);
        message.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
        message.push(2);
        message.extend_from_slice(&body);
        message
    };
    // 1000 duplicate ORIGINs: attribute discard, at most MAX_LISTED_PROBLEMS listed.
    let duplicates = origin.repeat(1000);
    let decoded = decode_message(&update(&duplicates, ""), &ctx).unwrap();
    assert_eq!(decoded.action, Action::AttributeDiscard);
    assert_eq!(decoded.errors.len(), MAX_LISTED_PROBLEMS);
    // The same with a bad NLRI after them: the reset is still found and named.
    let malformed = decode_message(&update(&duplicates, "21 0102030405"), &ctx).unwrap_err();
    assert_eq!(
        (malformed.notification.code, malformed.notification.subcode),
        (3, 10)
    );
    assert!(malformed.errors.len() <= MAX_LISTED_PROBLEMS);
    assert!(
        malformed
            .errors
            .iter()
            .any(|e| e.action == Action::SessionReset)
    );
}
