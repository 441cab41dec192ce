//! What neighbors are sent: the default eBGP export (local routes only), iBGP split
//! horizon, route reflection, next hop, AS path, LOCAL_PREF and MED rules, export
//! filters and well-known communities; the UPDATEs decoded as a peer would.

#![allow(clippy::unwrap_used)]

mod rib_support;

use std::net::Ipv4Addr;

use bgp_proto::{Family, PathAttributes};
use control_proto::{RouteQuery, RouteTable};
use ipnet::IpNet;
use rib_support::*;

/// Announced prefixes (sorted) of what `peer` received.
fn announced(h: &mut Harness, peer: u32) -> Vec<(IpNet, PathAttributes)> {
    let mut routes: Vec<_> = h
        .received(peer)
        .announced()
        .into_iter()
        .map(|(net, attrs, _)| (net, attrs))
        .collect();
    routes.sort_by_key(|(net, _)| *net);
    routes
}

#[test]
fn ebgp_neighbors_get_only_local_routes_by_default() {
    let mut h = Harness::new(config(
        "[[bgp.network]]\nprefix = \"10.7.0.0/24\"\ncommunities = [\"65000:7\"]\n",
    ));
    let tor = h.up(Session::v4("10.0.0.2", 65001));
    let other = h.up(Session::v4("10.0.0.3", 65002));
    // The initial dump: the local route, then End-of-RIB.
    let received = h.received(tor);
    let routes = received.announced();
    assert_eq!(routes.len(), 1);
    let (prefix, sent, next_hop) = &routes[0];
    assert_eq!(*prefix, net("10.7.0.0/24"));
    assert_eq!(sent.as_path.as_ref().unwrap().to_string(), "64512");
    assert_eq!(sent.origin, Some(bgp_proto::Origin::Igp));
    assert_eq!(*next_hop, Some(ip("10.0.0.1")));
    assert_eq!(sent.local_pref, None);
    assert_eq!(sent.communities, vec![community("65000:7")]);
    assert_eq!(received.end_of_ribs(), vec![Family::IPV4_UNICAST]);
    let first = received
        .updates
        .iter()
        .position(|u| u.end_of_rib_family().is_some());
    assert_eq!(
        first,
        Some(received.updates.len() - 1),
        "End-of-RIB comes last"
    );

    // A route learned from one eBGP neighbor never goes to another: no transit.
    h.update(
        other,
        announce(&["10.9.0.0/24"], attrs(&[65002], "10.0.0.3")),
    );
    assert!(h.received(tor).updates.is_empty());
    assert_eq!(h.rib.counters(tor).advertised, 1);
    let advertised = h.rib.routes(&RouteQuery {
        neighbor: Some(ip("10.0.0.2")),
        view: RouteTable::Advertised,
        ..Default::default()
    });
    assert_eq!(advertised.len(), 1);
    assert_eq!(advertised[0].as_path, vec![ASN]);
    assert_eq!(advertised[0].next_hops, vec![ip("10.0.0.1")]);
}

#[test]
fn export_filter_lets_learned_routes_through_with_prepend_and_med_rules() {
    let mut h = Harness::new(config(
        r#"
        [[bgp.neighbor]]
        address = "10.0.0.2"
        remote_asn = 65001
        export = "transit"
        [[policy.filter]]
        name = "transit"
        default = "accept"
        [[policy.filter.rule]]
        community = ["65000:9"]
        action = "reject"
        [[policy.filter.rule]]
        source = "local"
        action = "accept"
        set_med = 50
        prepend = 2
        "#,
    ));
    let tor = h.up(Session::v4("10.0.0.2", 65001));
    let other = h.up(Session::v4("10.0.0.3", 65002));
    let ibgp = h.up(Session::v4("10.0.0.4", ASN));
    h.received(tor);
    let mut with_med = attrs(&[65002], "10.0.0.3");
    with_med.med = Some(7);
    h.update(other, announce(&["10.9.0.0/24"], with_med));
    let mut local_pref = attrs(&[], "10.0.0.4");
    local_pref.local_pref = Some(250);
    local_pref.as_path = Some(bgp_proto::AsPath::new());
    h.update(ibgp, announce(&["10.10.0.0/24"], local_pref.clone()));
    let mut tagged = local_pref;
    tagged.communities = vec![community("65000:9")];
    h.update(ibgp, announce(&["10.11.0.0/24"], tagged));
    h.input(bgpd::tasks::RibInput::Local(
        bgpd::tasks::LocalChange::Announce(bgpd::tasks::LocalRoute {
            prefix: net("10.7.0.0/24"),
            source: bgpd::tasks::LocalSource::Config,
            communities: vec![],
            blackhole: false,
        }),
    ));
    let routes = announced(&mut h, tor);
    assert_eq!(
        routes
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>(),
        vec!["10.7.0.0/24", "10.9.0.0/24", "10.10.0.0/24"]
    );
    // Local: the filter's MED and prepends, plus our AS.
    assert_eq!(routes[0].1.med, Some(50));
    assert_eq!(
        routes[0].1.as_path.as_ref().unwrap().to_string(),
        "64512 64512 64512"
    );
    // From another eBGP AS: MED not passed on, our AS prepended, next hop self.
    assert_eq!(routes[1].1.med, None);
    assert_eq!(
        routes[1].1.as_path.as_ref().unwrap().to_string(),
        "64512 65002"
    );
    assert_eq!(routes[1].1.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
    // From iBGP: LOCAL_PREF never leaves the AS.
    assert_eq!(routes[2].1.local_pref, None);
    assert_eq!(routes[2].1.as_path.as_ref().unwrap().to_string(), "64512");
}

#[test]
fn ibgp_split_horizon_and_next_hop_rules() {
    let mut h = Harness::new(config(
        r#"
        [[bgp.network]]
        prefix = "10.7.0.0/24"
        [[bgp.neighbor]]
        address = "10.0.0.5"
        remote_asn = 64512
        next_hop_self = true
        "#,
    ));
    let a = h.up(Session::v4("10.0.0.3", ASN));
    let b = h.up(Session::v4("10.0.0.4", ASN));
    let c = h.up(Session::v4("10.0.0.5", ASN));
    let ebgp = h.up(Session::v4("10.0.0.2", 65001));
    for peer in [a, b, c] {
        let routes = announced(&mut h, peer);
        assert_eq!(routes.len(), 1);
        // A local route to iBGP: next hop self, LOCAL_PREF 100, empty AS path.
        assert_eq!(routes[0].1.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(routes[0].1.local_pref, Some(100));
        assert!(routes[0].1.as_path.as_ref().unwrap().is_empty());
    }
    h.received(ebgp);

    // From eBGP to iBGP: next hop unchanged (except with next_hop_self), AS path as is.
    let mut with_med = attrs(&[65001], "10.0.0.2");
    with_med.med = Some(3);
    h.update(ebgp, announce(&["10.9.0.0/24"], with_med));
    let to_a = announced(&mut h, a);
    assert_eq!(to_a.len(), 1);
    assert_eq!(to_a[0].1.next_hop, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(to_a[0].1.as_path.as_ref().unwrap().to_string(), "65001");
    assert_eq!(to_a[0].1.local_pref, Some(100));
    assert_eq!(to_a[0].1.med, Some(3), "MED goes to iBGP");
    let to_c = announced(&mut h, c);
    assert_eq!(
        to_c[0].1.next_hop,
        Some(Ipv4Addr::new(10, 0, 0, 1)),
        "next_hop_self"
    );
    assert!(
        announced(&mut h, ebgp).is_empty(),
        "never back to the source"
    );
    assert_eq!(announced(&mut h, b).len(), 1);

    // From iBGP: not to other iBGP neighbors (no route reflection configured).
    let mut internal = attrs(&[], "10.0.0.3");
    internal.as_path = Some(bgp_proto::AsPath::new());
    internal.local_pref = Some(100);
    h.update(a, announce(&["10.8.0.0/24"], internal));
    assert!(announced(&mut h, b).is_empty());
    assert!(announced(&mut h, c).is_empty());
    assert!(
        announced(&mut h, ebgp).is_empty(),
        "and not to eBGP without a filter"
    );
    assert_eq!(
        h.take_fib().last(),
        Some(&install("10.8.0.0/24", &["10.0.0.3"]))
    );

    // Withdrawn at the source: withdrawn where it was advertised.
    h.update(ebgp, withdraw(&["10.9.0.0/24"]));
    for peer in [a, b, c] {
        assert_eq!(h.received(peer).withdrawn(), vec![net("10.9.0.0/24")]);
    }
}

#[test]
fn route_reflection_between_clients_and_non_clients() {
    let mut h = Harness::new(config(
        r#"
        cluster_id = "10.255.255.1"
        [[bgp.neighbor]]
        address = "10.0.0.3"
        remote_asn = 64512
        route_reflector_client = true
        [[bgp.neighbor]]
        address = "10.0.0.4"
        remote_asn = 64512
        route_reflector_client = true
        [[bgp.neighbor]]
        address = "10.0.0.5"
        remote_asn = 64512
        [[bgp.neighbor]]
        address = "10.0.0.6"
        remote_asn = 64512
        "#,
    ));
    let client_a = h.up(Session::v4("10.0.0.3", ASN).router_id("3.3.3.3"));
    let client_b = h.up(Session::v4("10.0.0.4", ASN).router_id("4.4.4.4"));
    let non_client_c = h.up(Session::v4("10.0.0.5", ASN).router_id("5.5.5.5"));
    let non_client_d = h.up(Session::v4("10.0.0.6", ASN).router_id("6.6.6.6"));
    let mut internal = attrs(&[], "10.0.0.3");
    internal.as_path = Some(bgp_proto::AsPath::new());
    internal.local_pref = Some(100);

    // From a client: to the other client and to the non-clients, with ORIGINATOR_ID and
    // our cluster id; never back to the client.
    h.update(client_a, announce(&["10.3.0.0/24"], internal.clone()));
    for peer in [client_b, non_client_c, non_client_d] {
        let routes = announced(&mut h, peer);
        assert_eq!(routes.len(), 1, "peer {peer}");
        let attrs = &routes[0].1;
        assert_eq!(attrs.originator_id, Some(Ipv4Addr::new(3, 3, 3, 3)));
        assert_eq!(attrs.cluster_list, vec![Ipv4Addr::new(10, 255, 255, 1)]);
        assert_eq!(
            attrs.next_hop,
            Some(Ipv4Addr::new(10, 0, 0, 3)),
            "next hop kept"
        );
    }
    assert!(announced(&mut h, client_a).is_empty());

    // From a non-client: to the clients only.
    let mut from_c = internal.clone();
    from_c.next_hop = Some(Ipv4Addr::new(10, 0, 0, 5));
    from_c.originator_id = Some(Ipv4Addr::new(9, 9, 9, 9));
    from_c.cluster_list = vec![Ipv4Addr::new(10, 9, 9, 9)];
    h.update(non_client_c, announce(&["10.5.0.0/24"], from_c));
    for peer in [client_a, client_b] {
        let routes = announced(&mut h, peer);
        assert_eq!(routes.len(), 1);
        assert_eq!(
            routes[0].1.originator_id,
            Some(Ipv4Addr::new(9, 9, 9, 9)),
            "kept"
        );
        assert_eq!(
            routes[0].1.cluster_list,
            vec![Ipv4Addr::new(10, 255, 255, 1), Ipv4Addr::new(10, 9, 9, 9)]
        );
    }
    assert!(announced(&mut h, non_client_d).is_empty());

    // Loops: our cluster id in CLUSTER_LIST, or our router id as ORIGINATOR_ID.
    let mut looped = internal.clone();
    looped.cluster_list = vec![Ipv4Addr::new(10, 255, 255, 1)];
    h.update(non_client_d, announce(&["10.6.0.0/24"], looped));
    let mut ours = internal;
    ours.originator_id = Some(ROUTER_ID);
    h.update(non_client_d, announce(&["10.6.1.0/24"], ours));
    assert!(
        h.rib
            .routes(&RouteQuery {
                prefix: Some(net("10.6.0.0/16")),
                ..Default::default()
            })
            .is_empty()
    );
    for peer in [client_a, client_b, non_client_c] {
        assert!(announced(&mut h, peer).is_empty());
    }
}

#[test]
fn well_known_communities_limit_export() {
    let mut h = Harness::new(config(""));
    let ebgp_in = h.up(Session::v4("10.0.0.2", 65001));
    let ibgp = h.up(Session::v4("10.0.0.4", ASN));
    let mut no_export = attrs(&[65001], "10.0.0.2");
    no_export.communities = vec![bgp_proto::Community::NO_EXPORT];
    let mut no_advertise = attrs(&[65001], "10.0.0.2");
    no_advertise.communities = vec![bgp_proto::Community::NO_ADVERTISE];
    h.update(ebgp_in, announce(&["10.1.0.0/24"], no_export));
    h.update(ebgp_in, announce(&["10.2.0.0/24"], no_advertise));
    // NO_EXPORT still goes to iBGP; NO_ADVERTISE to nobody; both are installed.
    let routes = announced(&mut h, ibgp);
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].0, net("10.1.0.0/24"));
    assert_eq!(h.take_fib().len(), 2);

    // NO_EXPORT on a local route keeps it from eBGP neighbors.
    let mut h = Harness::new(config(
        "[[bgp.network]]\nprefix = \"10.7.0.0/24\"\ncommunities = [\"no-export\"]\n",
    ));
    let tor = h.up(Session::v4("10.0.0.2", 65001));
    let ibgp = h.up(Session::v4("10.0.0.4", ASN));
    assert!(announced(&mut h, tor).is_empty());
    assert_eq!(announced(&mut h, ibgp).len(), 1);
}

#[test]
fn ipv6_routes_get_an_ipv6_next_hop_and_ipv4_only_sessions_none() {
    let mut h = Harness::new(config("[[bgp.network]]\nprefix = \"fd00:7::/64\"\n"));
    let dual = h.up(Session::v4("10.0.0.2", 65001)
        .families(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST])
        .local_ipv6("fd00::1"));
    let v4_only = h.up(Session::v4("10.0.0.3", 65002));
    let received = h.received(dual);
    let routes = received.announced();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].0, net("fd00:7::/64"));
    assert_eq!(routes[0].2, Some(ip("fd00::1")));
    assert_eq!(
        received.end_of_ribs(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    let received = h.received(v4_only);
    assert!(received.announced().is_empty());
    assert_eq!(received.end_of_ribs(), vec![Family::IPV4_UNICAST]);

    // Without an IPv6 address of ours, an IPv6 route cannot be sent to eBGP.
    let mut h = Harness::new(config("[[bgp.network]]\nprefix = \"fd00:7::/64\"\n"));
    let no_v6 = h
        .up(Session::v4("10.0.0.2", 65001).families(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST]));
    assert!(h.received(no_v6).announced().is_empty());
}

#[test]
fn reload_of_an_export_filter_re_exports_without_a_session_reset() {
    let neighbor = r#"
        [[bgp.neighbor]]
        address = "10.0.0.2"
        remote_asn = 65001
    "#;
    let with_filter = format!(
        "{neighbor}export = \"all\"\n[[policy.filter]]\nname = \"all\"\ndefault = \"accept\"\n"
    );
    let mut h = Harness::new(config(neighbor));
    let tor = h.up(Session::v4("10.0.0.2", 65001));
    let ibgp = h.up(Session::v4("10.0.0.4", ASN));
    h.received(tor);
    let mut internal = attrs(&[], "10.0.0.4");
    internal.as_path = Some(bgp_proto::AsPath::new());
    internal.local_pref = Some(100);
    h.update(ibgp, announce(&["10.8.0.0/24"], internal));
    assert!(h.received(tor).updates.is_empty());

    h.input(bgpd::tasks::RibInput::Reconfigure(config(&with_filter)));
    let routes = announced(&mut h, tor);
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].0, net("10.8.0.0/24"));
    assert_eq!(routes[0].1.as_path.as_ref().unwrap().to_string(), "64512");

    h.input(bgpd::tasks::RibInput::Reconfigure(config(neighbor)));
    assert_eq!(h.received(tor).withdrawn(), vec![net("10.8.0.0/24")]);
    assert_eq!(h.rib.counters(tor).advertised, 0);
}

#[test]
fn non_transitive_extended_communities_stay_in_the_as() {
    let mut h = Harness::new(config(
        r#"
        [[bgp.neighbor]]
        address = "10.0.0.2"
        remote_asn = 65001
        export = "all"
        [[policy.filter]]
        name = "all"
        default = "accept"
        "#,
    ));
    let tor = h.up(Session::v4("10.0.0.2", 65001));
    let other = h.up(Session::v4("10.0.0.3", 65002));
    let ibgp = h.up(Session::v4("10.0.0.4", ASN));
    h.received(tor);
    h.received(ibgp);
    // A route target (type 0x00, transitive) and a non-transitive two-octet-AS
    // specific one (type 0x40).
    let transitive = bgp_proto::ExtendedCommunity::route_target(65002, 7);
    let non_transitive = bgp_proto::ExtendedCommunity([0x40, 0x04, 0xfd, 0xea, 0, 0, 0, 9]);
    let mut tagged = attrs(&[65002], "10.0.0.3");
    tagged.extended_communities = vec![transitive, non_transitive];
    h.update(other, announce(&["10.9.0.0/24"], tagged));
    let to_ebgp = announced(&mut h, tor);
    assert_eq!(to_ebgp.len(), 1);
    assert_eq!(to_ebgp[0].1.extended_communities, vec![transitive]);
    let to_ibgp = announced(&mut h, ibgp);
    assert_eq!(
        to_ibgp[0].1.extended_communities,
        vec![transitive, non_transitive]
    );
}

#[test]
fn reflected_routes_are_built_once_yet_right_for_each_client() {
    // Clients without a filter or next_hop_self share one export of each route; the
    // one with next_hop_self, and the eBGP neighbor with a filter, get their own.
    let neighbors = r#"
        [[bgp.neighbor]]
        address = "10.0.0.3"
        remote_asn = 64512
        route_reflector_client = true
        [[bgp.neighbor]]
        address = "10.0.0.4"
        remote_asn = 64512
        route_reflector_client = true
        [[bgp.neighbor]]
        address = "10.0.0.5"
        remote_asn = 64512
        route_reflector_client = true
        [[bgp.neighbor]]
        address = "10.0.0.6"
        remote_asn = 64512
        route_reflector_client = true
        next_hop_self = true
        [[bgp.neighbor]]
        address = "10.0.0.7"
        remote_asn = 65007
        export = "everything"
        [[policy.filter]]
        name = "everything"
        default = "accept"
        "#;
    let cluster = |id: &str| config(&format!("cluster_id = \"{id}\"\n{neighbors}"));
    let mut h = Harness::new(cluster("10.255.255.1"));
    let client_a = h.up(Session::v4("10.0.0.3", ASN)
        .router_id("3.3.3.3")
        .graceful_restart());
    let client_b = h.up(Session::v4("10.0.0.4", ASN).router_id("4.4.4.4"));
    let client_c = h.up(Session::v4("10.0.0.5", ASN).router_id("5.5.5.5"));
    let self_client = h.up(Session::v4("10.0.0.6", ASN).router_id("6.6.6.6"));
    let external = h.up(Session::v4("10.0.0.7", 65007).router_id("7.7.7.7"));
    let ours = Some(Ipv4Addr::new(10, 0, 0, 1));
    let mut internal = attrs(&[], "10.0.0.3");
    internal.as_path = Some(bgp_proto::AsPath::new());
    internal.local_pref = Some(100);
    h.update(client_a, announce(&["10.3.0.0/26"], internal.clone()));
    let sent = |h: &mut Harness, peer| {
        let routes = announced(h, peer);
        assert_eq!(routes.len(), 1, "peer {peer}: {routes:?}");
        let attrs = &routes[0].1;
        (
            attrs.originator_id,
            attrs.next_hop,
            attrs.cluster_list.clone(),
        )
    };
    let reflected = |originator: [u8; 4], cluster: [u8; 4]| {
        (
            Some(Ipv4Addr::from(originator)),
            Some(Ipv4Addr::new(10, 0, 0, 3)),
            vec![Ipv4Addr::from(cluster)],
        )
    };
    assert_eq!(
        sent(&mut h, client_b),
        reflected([3, 3, 3, 3], [10, 255, 255, 1])
    );
    assert_eq!(
        sent(&mut h, client_c),
        reflected([3, 3, 3, 3], [10, 255, 255, 1])
    );
    let (originator, next_hop, _) = sent(&mut h, self_client);
    assert_eq!(
        (originator, next_hop),
        (Some(Ipv4Addr::new(3, 3, 3, 3)), ours)
    );
    let routes = announced(&mut h, external);
    assert_eq!(routes.len(), 1);
    let attrs = &routes[0].1;
    assert_eq!((attrs.originator_id, attrs.next_hop), (None, ours));
    assert!(attrs.cluster_list.is_empty() && attrs.local_pref.is_none());
    assert_eq!(attrs.as_path.as_ref().unwrap().to_string(), "64512");

    // The client restarts (graceful restart: its route stays, stale, so its index is
    // kept) and returns with another router id: a route it announces now is sent on
    // with the new ORIGINATOR_ID, though its attributes are those of the first.
    h.down(client_a, Some(std::time::Duration::from_secs(120)));
    h.up_as(
        client_a,
        Session::v4("10.0.0.3", ASN)
            .router_id("3.3.3.33")
            .graceful_restart(),
    );
    h.update(client_a, announce(&["10.3.0.64/26"], internal));
    for peer in [client_b, client_c] {
        let routes = announced(&mut h, peer);
        assert_eq!(routes.len(), 1, "peer {peer}: {routes:?}");
        assert_eq!(routes[0].0, net("10.3.0.64/26"));
        assert_eq!(routes[0].1.originator_id, Some(Ipv4Addr::new(3, 3, 3, 33)));
    }

    // A new cluster id: every client is sent the route again with it.
    h.input(bgpd::tasks::RibInput::Reconfigure(cluster("10.255.255.2")));
    for peer in [client_b, client_c] {
        let routes = announced(&mut h, peer);
        assert_eq!(routes.len(), 2, "peer {peer}: {routes:?}");
        for (_, attrs) in routes {
            assert_eq!(attrs.cluster_list, vec![Ipv4Addr::new(10, 255, 255, 2)]);
        }
    }
}
