//! The RIB's selection as the FIB and `show routes` see it: best path between
//! neighbors, ECMP, withdrawals, input checks, import policy, local routes.

#![allow(clippy::unwrap_used)]

mod rib_support;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp_proto::Family;
use bgpd::tasks::{FibChange, LocalChange, LocalRoute, LocalSource, PrefixCursor, RibInput};
use control_proto::{FamilyName, RouteQuery, RouteTable};
use rib_support::*;

#[test]
fn shorter_as_path_wins_and_withdrawal_falls_back() {
    let mut h = Harness::new(config(""));
    let a = h.up(Session::v4("10.0.0.2", 65001));
    let b = h.up(Session::v4("10.0.0.3", 65002));
    h.update(
        a,
        announce(&["10.1.0.0/24"], attrs(&[65001, 65009], "10.0.0.2")),
    );
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["10.0.0.2"])]);
    h.update(b, announce(&["10.1.0.0/24"], attrs(&[65002], "10.0.0.3")));
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["10.0.0.3"])]);

    let routes = h.rib.routes(&RouteQuery::default());
    assert_eq!(routes.len(), 2);
    assert!(routes[0].best && routes[0].source == "10.0.0.3");
    assert_eq!(routes[0].as_path, vec![65002]);
    assert!(!routes[1].best && routes[1].source == "10.0.0.2");

    h.update(b, withdraw(&["10.1.0.0/24"]));
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["10.0.0.2"])]);
    h.update(a, withdraw(&["10.1.0.0/24"]));
    assert_eq!(
        h.take_fib(),
        vec![FibChange::Remove {
            prefix: net("10.1.0.0/24")
        }]
    );
    assert!(h.rib.routes(&RouteQuery::default()).is_empty());
    assert_eq!(h.rib.prefixes(), (0, 0));
    assert_eq!(h.rib.attribute_sets(), 0, "no attribute set is left behind");
}

#[test]
fn originator_id_replaces_router_id_and_cluster_list_length_counts() {
    // Two iBGP paths equal up to the router id step: A's router id is lower, but B
    // carries an ORIGINATOR_ID lower still (RFC 4456 section 9).
    let mut h = Harness::new(config(""));
    let a = h.up(Session::v4("10.0.0.2", ASN).router_id("1.1.1.2"));
    let b = h.up(Session::v4("10.0.0.3", ASN).router_id("9.9.9.9"));
    let mut with_local_pref = attrs(&[65010], "192.0.2.1");
    with_local_pref.local_pref = Some(100);
    h.update(a, announce(&["10.1.0.0/24"], with_local_pref.clone()));
    let mut reflected = with_local_pref.clone();
    reflected.next_hop = Some("192.0.2.2".parse().unwrap());
    reflected.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
    reflected.cluster_list = vec![Ipv4Addr::new(7, 7, 7, 7)];
    h.update(b, announce(&["10.1.0.0/24"], reflected.clone()));
    let fib = h.take_fib();
    assert_eq!(fib.last(), Some(&install("10.1.0.0/24", &["192.0.2.2"])));

    // Same ORIGINATOR_ID on both: the shorter CLUSTER_LIST wins.
    let mut shorter = with_local_pref;
    shorter.originator_id = Some(Ipv4Addr::new(1, 1, 1, 1));
    h.update(a, announce(&["10.1.0.0/24"], shorter));
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["192.0.2.1"])]);
}

#[test]
fn ecmp_over_equal_ebgp_paths_up_to_max_paths() {
    let mut h = Harness::new(config("max_paths = 2\n"));
    let peers: Vec<_> = ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
        .iter()
        .map(|address| h.up(Session::v4(address, 65001)))
        .collect();
    for (peer, hop) in peers.iter().zip(["10.0.0.2", "10.0.0.3", "10.0.0.4"]) {
        h.update(*peer, announce(&["10.1.0.0/24"], attrs(&[65001], hop)));
    }
    // Ordered by router id (the addresses here); cut at two.
    assert_eq!(
        h.take_fib(),
        vec![
            install("10.1.0.0/24", &["10.0.0.2"]),
            install("10.1.0.0/24", &["10.0.0.2", "10.0.0.3"]),
        ]
    );
    let best: Vec<_> = h
        .rib
        .routes(&RouteQuery::default())
        .into_iter()
        .filter(|r| r.best)
        .map(|r| r.view.source)
        .collect();
    assert_eq!(best, vec!["10.0.0.2", "10.0.0.3"]);

    // The best goes: the third joins.
    h.update(peers[0], withdraw(&["10.1.0.0/24"]));
    assert_eq!(
        h.take_fib(),
        vec![install("10.1.0.0/24", &["10.0.0.3", "10.0.0.4"])]
    );

    // A worse path (longer) leaves the set unchanged: no FIB change.
    let c = h.up(Session::v4("10.0.0.5", 65001));
    h.update(
        c,
        announce(&["10.1.0.0/24"], attrs(&[65001, 65001], "10.0.0.5")),
    );
    assert!(h.take_fib().is_empty());

    // Another neighbor AS never joins an eBGP best (no multipath relax).
    let mut h = Harness::new(config("max_paths = 4\n"));
    let a = h.up(Session::v4("10.0.0.2", 65001));
    let b = h.up(Session::v4("10.0.0.3", 65002));
    h.update(a, announce(&["10.1.0.0/24"], attrs(&[65001], "10.0.0.2")));
    h.update(b, announce(&["10.1.0.0/24"], attrs(&[65002], "10.0.0.3")));
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["10.0.0.2"])]);
}

#[test]
fn session_loss_withdraws_everything_it_brought() {
    let mut h = Harness::new(config(""));
    let a = h.up(Session::v4("10.0.0.2", 65001));
    let b = h.up(Session::v4("10.0.0.3", 65002));
    h.update(
        a,
        announce(&["10.1.0.0/24", "10.2.0.0/24"], attrs(&[65001], "10.0.0.2")),
    );
    h.update(
        b,
        announce(&["10.2.0.0/24"], attrs(&[65002, 65003], "10.0.0.3")),
    );
    h.take_fib();
    h.down(a, None);
    let mut fib = h.take_fib();
    fib.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        fib,
        vec![
            install("10.2.0.0/24", &["10.0.0.3"]),
            FibChange::Remove {
                prefix: net("10.1.0.0/24")
            },
        ]
    );
    assert_eq!(h.rib.prefixes(), (1, 0));
}

#[test]
fn unusable_routes_are_ignored_without_a_notification() {
    let mut h = Harness::new(config(""));
    let a = h.up(Session::v4("10.0.0.2", 65001));
    // (next hop, AS path): each is ignored.
    let cases: &[(&str, &[u32])] = &[
        ("0.0.0.0", &[65001]),
        ("127.0.0.1", &[65001]),
        ("224.0.0.5", &[65001]),
        ("255.255.255.255", &[65001]),
        ("10.0.0.1", &[65001]),             // our own session address
        ("10.0.0.2", &[65001, ASN, 65009]), // our AS in the path
    ];
    for (next_hop, path) in cases {
        h.update(a, announce(&["10.1.0.0/24"], attrs(path, next_hop)));
        assert!(h.take_fib().is_empty(), "{next_hop} {path:?}");
        assert!(h.rib.routes(&RouteQuery::default()).is_empty());
        assert!(h.received(a).closes.is_empty());
    }
    // An ignored announcement replaces (withdraws) an earlier good one.
    h.update(a, announce(&["10.1.0.0/24"], attrs(&[65001], "10.0.0.2")));
    assert_eq!(h.take_fib().len(), 1);
    h.update(a, announce(&["10.1.0.0/24"], attrs(&[65001], "127.0.0.1")));
    assert_eq!(
        h.take_fib(),
        vec![FibChange::Remove {
            prefix: net("10.1.0.0/24")
        }]
    );
    // treat-as-withdraw
    h.update(a, announce(&["10.1.0.0/24"], attrs(&[65001], "10.0.0.2")));
    h.take_fib();
    h.input(RibInput::Update {
        peer: a,
        update: Box::new(announce(&["10.1.0.0/24"], attrs(&[65001], "10.0.0.2"))),
        treat_as_withdraw: true,
    });
    assert_eq!(h.take_fib().len(), 1);
    assert!(h.rib.routes(&RouteQuery::default()).is_empty());
}

#[test]
fn import_policy_sets_local_pref_and_rejects_and_reload_reevaluates() {
    let policy = r#"
        [[bgp.neighbor]]
        address = "10.0.0.2"
        remote_asn = 65001
        import = "prefer"
        [[bgp.neighbor]]
        address = "10.0.0.3"
        remote_asn = 65002

        [[policy.prefix_list]]
        name = "pods"
        rules = [{ prefix = "10.0.0.0/8", ge = 24, le = 24 }]
        [[policy.filter]]
        name = "prefer"
        [[policy.filter.rule]]
        prefix_list = "pods"
        community = ["65000:1"]
        action = "accept"
        set_local_pref = 300
        [[policy.filter.rule]]
        prefix_list = "pods"
        action = "accept"
    "#;
    let mut h = Harness::new(config(policy));
    let a = h.up(Session::v4("10.0.0.2", 65001));
    let b = h.up(Session::v4("10.0.0.3", 65002));
    let mut marked = attrs(&[65001, 65005, 65006], "10.0.0.2");
    marked.communities = vec![community("65000:1")];
    h.update(a, announce(&["10.1.0.0/24", "192.168.0.0/24"], marked));
    h.update(b, announce(&["10.1.0.0/24"], attrs(&[65002], "10.0.0.3")));
    // LOCAL_PREF 300 beats the shorter path; 192.168.0.0/24 is rejected.
    let fib = h.take_fib();
    assert_eq!(fib, vec![install("10.1.0.0/24", &["10.0.0.2"])]);
    let received = h.rib.routes(&RouteQuery {
        neighbor: Some(ip("10.0.0.2")),
        view: RouteTable::Received,
        ..Default::default()
    });
    assert_eq!(
        received.len(),
        2,
        "received routes include the rejected one"
    );
    assert_eq!(received[0].local_pref, None, "as received: no LOCAL_PREF");
    let loc = h.rib.routes(&RouteQuery {
        prefix: Some(net("10.1.0.0/24")),
        ..Default::default()
    });
    assert_eq!(loc[0].local_pref, Some(300));
    assert!(loc[0].best);
    let counters = h.rib.counters(a);
    assert_eq!((counters.received, counters.accepted), (2, 1));

    // Reload without the import filter: everything is accepted, the shorter path
    // wins again, 192.168.0.0/24 appears.
    let relaxed = policy.replacen("import = \"prefer\"\n", "", 1);
    h.input(RibInput::Reconfigure(config(&relaxed)));
    let mut fib = h.take_fib();
    fib.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        fib,
        vec![
            install("10.1.0.0/24", &["10.0.0.3"]),
            install("192.168.0.0/24", &["10.0.0.2"]),
        ]
    );
}

#[test]
fn local_routes_win_blackhole_and_are_replaced() {
    let mut h = Harness::with_startup(config("[[bgp.network]]\nprefix = \"10.7.0.0/24\"\n"));
    // A configured network originates at once, and installs nothing in the FIB.
    let routes = h.rib.routes(&RouteQuery::default());
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].source, "local");
    assert!(routes[0].best && routes[0].as_path.is_empty() && routes[0].origin == "igp");
    assert_eq!(h.take_fib(), vec![FibChange::Converged]);

    // An IPAM block: blackholed.
    let block = LocalRoute {
        prefix: net("10.244.1.0/26"),
        source: LocalSource::IpamBlock,
        communities: vec![],
        blackhole: true,
    };
    h.input(RibInput::Local(LocalChange::Announce(block.clone())));
    assert_eq!(
        h.take_fib(),
        vec![FibChange::Blackhole {
            prefix: net("10.244.1.0/26")
        }]
    );
    // A peer announcing the same block loses to the local route.
    let a = h.up(Session::v4("10.0.0.2", 65001));
    h.update(a, announce(&["10.244.1.0/26"], attrs(&[65001], "10.0.0.2")));
    assert!(h.take_fib().is_empty());
    // The block goes: the peer's route takes over.
    h.input(RibInput::Local(LocalChange::Replace {
        source: LocalSource::IpamBlock,
        routes: vec![],
    }));
    assert_eq!(h.take_fib(), vec![install("10.244.1.0/26", &["10.0.0.2"])]);
    // Reload drops the configured network.
    h.input(RibInput::Reconfigure(config("")));
    assert_eq!(
        h.rib
            .routes(&RouteQuery::default())
            .iter()
            .filter(|r| r.source == "local")
            .count(),
        0
    );
}

#[test]
fn many_prefixes_share_one_attribute_set() {
    let mut h = Harness::new(config(""));
    let a = h.up(Session::v4("10.0.0.2", 65001));
    let all = prefixes(2000, 26);
    for chunk in all.chunks(500) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        h.update(a, announce(&chunk, attrs(&[65001], "10.0.0.2")));
    }
    assert_eq!(h.rib.prefixes(), (2000, 0));
    assert_eq!(h.rib.attribute_sets(), 1);
    assert_eq!(h.take_fib().len(), 2000);
    // IPv6 next to it, in its own table.
    let b = h
        .up(Session::v4("10.0.0.3", 65002).families(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]));
    h.update(
        b,
        announce_v6(
            &["fd00:1::/64", "fd00:2::/64"],
            attrs(&[65002], "10.0.0.3"),
            "fd00::3",
        ),
    );
    assert_eq!(h.rib.prefixes(), (2000, 2));
    assert_eq!(
        h.take_fib(),
        vec![
            install("fd00:1::/64", &["fd00::3"]),
            install("fd00:2::/64", &["fd00::3"])
        ]
    );
    h.update(b, withdraw_v6(&["fd00:1::/64"]));
    assert_eq!(
        h.take_fib(),
        vec![FibChange::Remove {
            prefix: net("fd00:1::/64")
        }]
    );
}

#[test]
fn show_routes_filters_by_prefix_family_and_longest_match() {
    let mut h = Harness::new(config(""));
    let a = h
        .up(Session::v4("10.0.0.2", 65001).families(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]));
    h.update(
        a,
        announce(&["10.1.0.0/16", "10.1.2.0/24"], attrs(&[65001], "10.0.0.2")),
    );
    h.update(
        a,
        announce_v6(&["fd00:1::/64"], attrs(&[65001], "10.0.0.2"), "fd00::2"),
    );
    let query = |prefix: Option<&str>, family| RouteQuery {
        prefix: prefix.map(net),
        family,
        ..Default::default()
    };
    let prefixes = |routes: Vec<control_proto::RouteLine>| {
        routes
            .into_iter()
            .map(|r| r.prefix.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(prefixes(h.rib.routes(&query(None, None))).len(), 3);
    assert_eq!(
        prefixes(
            h.rib
                .routes(&query(None, Some(bgpd::config::FamilyName::Ipv6)))
        ),
        vec!["fd00:1::/64"]
    );
    assert_eq!(
        prefixes(h.rib.routes(&query(Some("10.1.2.0/24"), None))),
        vec!["10.1.2.0/24"]
    );
    assert_eq!(
        prefixes(h.rib.routes(&query(Some("10.1.2.7/32"), None))),
        vec!["10.1.2.0/24"]
    );
    assert_eq!(
        prefixes(h.rib.routes(&query(Some("10.1.9.7/32"), None))),
        vec!["10.1.0.0/16"]
    );
    assert!(h.rib.routes(&query(Some("10.9.0.0/16"), None)).is_empty());
    let unknown = RouteQuery {
        neighbor: Some(ip("10.9.9.9")),
        view: RouteTable::Received,
        ..Default::default()
    };
    assert!(h.rib.routes(&unknown).is_empty());
}

#[test]
fn show_routes_turns_list_prefixes_in_bounded_scans_and_build_chunks_in_order() {
    let mut h = Harness::new(config(""));
    let a = h
        .up(Session::v4("10.0.0.2", 65001).families(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]));
    let b = h.up(Session::v4("10.0.0.3", 65002));
    let v4: Vec<String> = (0..10).map(|i| format!("10.1.{i}.0/24")).collect();
    let v4: Vec<&str> = v4.iter().map(String::as_str).collect();
    h.update(a, announce(&v4, attrs(&[65001], "10.0.0.2")));
    h.update(b, announce(&v4[..2], attrs(&[65002, 65003], "10.0.0.3")));
    h.update(
        a,
        announce_v6(
            &["fd00:1::/64", "fd00:2::/64"],
            attrs(&[65001], "10.0.0.2"),
            "fd00::2",
        ),
    );
    // Scans of 3 slots: every prefix once, IPv4 first, then IPv6, however the
    // slots fall; `after` and `family` filter.
    let scan = |family, after: Option<&str>| {
        let mut all = Vec::new();
        let mut from = Some(PrefixCursor::default());
        let mut turns = 0;
        while let Some(cursor) = from {
            let chunk = h.rib.prefix_chunk(family, after.map(net), cursor, 3);
            assert!(chunk.prefixes.len() <= 3);
            all.extend(chunk.prefixes);
            from = chunk.next;
            turns += 1;
        }
        all.sort();
        (all, turns)
    };
    let (all, turns) = scan(None, None);
    assert_eq!(all.len(), 12);
    assert!(turns >= 12 / 3, "{turns} turns");
    assert_eq!(all[0], net("10.1.0.0/24"));
    assert_eq!(all[11], net("fd00:2::/64"));
    let (after, _) = scan(None, Some("10.1.8.0/24"));
    assert_eq!(
        after,
        [net("10.1.9.0/24"), net("fd00:1::/64"), net("fd00:2::/64")]
    );
    let (v6, _) = scan(Some(FamilyName::Ipv6), None);
    assert_eq!(v6, [net("fd00:1::/64"), net("fd00:2::/64")]);
    // A chunk: the paths of exactly the prefixes asked for, in that order, best first.
    let asked = [net("fd00:1::/64"), net("10.1.0.0/24"), net("10.9.9.0/24")];
    let routes = h.rib.route_chunk(&asked, &RouteQuery::default());
    let seen: Vec<(String, bool, String)> = routes
        .iter()
        .map(|r| (r.prefix.to_string(), r.best, r.source.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("fd00:1::/64".to_owned(), true, "10.0.0.2".to_owned()),
            ("10.1.0.0/24".to_owned(), true, "10.0.0.2".to_owned()),
            ("10.1.0.0/24".to_owned(), false, "10.0.0.3".to_owned()),
        ]
    );
    let received_from_b = RouteQuery {
        neighbor: Some(ip("10.0.0.3")),
        view: RouteTable::Received,
        ..Default::default()
    };
    let routes = h.rib.route_chunk(&asked, &received_from_b);
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].as_path, [65002, 65003]);
}

#[test]
fn fresh_paths_win_over_stale_ones() {
    // A reflector killed by SIGKILL (graceful restart: its routes stay, stale) must
    // not hold its clients on its stale path while another neighbor offers a fresh
    // one, however much better the stale one looks.
    let mut h = Harness::new(config(""));
    let monitor = h.up(Session::v4("10.0.0.4", ASN));
    let session = Session::v4("10.0.0.2", 65001).graceful_restart();
    let a = h.up(session.clone());
    let b = h.up(Session::v4("10.0.0.3", 65002));
    h.update(a, announce(&["10.1.0.0/24"], attrs(&[65001], "10.0.0.2")));
    h.update(
        b,
        announce(&["10.1.0.0/24"], attrs(&[65002, 65009, 65010], "10.0.0.3")),
    );
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["10.0.0.2"])]);
    h.received(monitor);

    h.down(a, Some(Duration::from_secs(120)));
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["10.0.0.3"])]);
    let announced = h.received(monitor).announced();
    assert_eq!(announced.len(), 1);
    assert_eq!(
        announced[0].1.as_path.as_ref().map(ToString::to_string),
        Some("65002 65009 65010".to_owned())
    );
    let routes = h.rib.routes(&RouteQuery::default());
    assert_eq!(routes.len(), 2, "the stale path is kept");
    assert!(routes[0].best && routes[0].source == "10.0.0.3");

    // Back and refreshed: the shorter path wins again.
    h.up_as(a, session);
    h.update(a, announce(&["10.1.0.0/24"], attrs(&[65001], "10.0.0.2")));
    assert_eq!(h.take_fib(), vec![install("10.1.0.0/24", &["10.0.0.2"])]);

    // Only stale paths left: the best of them still routes.
    h.down(b, None);
    h.down(a, Some(Duration::from_secs(120)));
    assert!(h.take_fib().is_empty());
}

#[test]
fn show_routes_gives_the_whole_as_path_with_its_sets() {
    let mut h = Harness::new(config(""));
    let a = h.up(Session::v4("10.0.0.2", 65001));
    let mut aggregated = attrs(&[65001], "10.0.0.2");
    if let Some(path) = aggregated.as_path.as_mut() {
        path.push_segment(bgp_proto::SegmentType::Set, &[65002, 65003]);
    }
    h.update(a, announce(&["10.1.0.0/24"], aggregated));
    let routes = h.rib.routes(&RouteQuery::default());
    assert_eq!(routes[0].path, "65001 {65002,65003}");
    // The JSON view keeps its flat list.
    assert_eq!(routes[0].as_path, vec![65001, 65002, 65003]);
}
