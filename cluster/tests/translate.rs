//! The translation from BGP custom resources to one node's settings, as tables: specs
//! written as the API server stores them (JSON, camelCase), the `[[bgp.neighbor]]`
//! tables expected for each node, and the refusals with their reasons.

use std::collections::BTreeMap;
use std::net::IpAddr;

use cluster::resources::{BgpConfigurationSpec, BgpPeerSpec, SecretKeyRef};
use cluster::translate::{self, NodeFacts, NodeSettings, Peer};
use serde_json::json;

fn spec(value: serde_json::Value) -> BgpPeerSpec {
    serde_json::from_value(value).expect("BGPPeer spec")
}

fn node(name: &str, labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> NodeFacts {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    NodeFacts {
        name: name.into(),
        labels: map(labels),
        annotations: map(annotations),
    }
}

/// Four nodes: a and b in rack 1, c and d (route reflectors, AS 65100 by label) in
/// rack 2; d registered IPv4 and IPv6.
fn nodes() -> Vec<NodeFacts> {
    vec![
        node(
            "a",
            &[("rack", "1")],
            &[("wren.io/ipv4-address", "10.0.0.1")],
        ),
        node(
            "b",
            &[("rack", "1")],
            &[
                ("wren.io/ipv4-address", "10.0.0.2"),
                ("wren.io/asn", "65002"),
            ],
        ),
        node(
            "c",
            &[("rack", "2"), ("role", "rr"), ("wren.io/asn", "65100")],
            &[("wren.io/ipv4-address", "10.0.0.3")],
        ),
        node(
            "d",
            &[("rack", "2"), ("role", "rr"), ("wren.io/asn", "65100")],
            &[
                ("wren.io/ipv4-address", "10.0.0.4"),
                ("wren.io/ipv6-address", "fd00::4"),
                ("wren.io/route-reflector-cluster-id", "1.1.1.1"),
            ],
        ),
    ]
}

fn secret(reference: &SecretKeyRef) -> Option<String> {
    (reference.name == "bgp" && reference.key == "tor").then(|| "s3cret".to_owned())
}

fn settings_of(me: &str, peers: &[Peer]) -> NodeSettings {
    let nodes = nodes();
    let facts = nodes.iter().find(|n| n.name == me).expect("node");
    let configuration = translate::configuration(&BgpConfigurationSpec {
        as_number: Some(64512),
        node_to_node_mesh_enabled: Some(false),
        listen_port: Some(1179),
        communities: vec!["64512:100".into()],
    })
    .expect("configuration");
    translate::node_settings(
        facts,
        &facts.addresses(),
        Some(&configuration),
        peers,
        &nodes,
        secret,
    )
}

/// A neighbor table as `key = value` lines, sorted, for comparison.
fn lines(table: &toml::Table) -> String {
    let mut keys: Vec<String> = table.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    keys.sort();
    keys.join("; ")
}

#[test]
fn peers_become_neighbors_of_the_nodes_they_select() {
    let peers: Vec<Peer> = [
        (
            "tor-rack1",
            json!({"nodeSelector": {"matchLabels": {"rack": "1"}}, "peerIP": "192.168.1.1", "asNumber": 65001,
                   "holdTime": 30, "password": {"secretKeyRef": {"name": "bgp", "key": "tor"}}, "ttlSecurity": true,
                   "maxPrefixes": 1000}),
        ),
        ("one-node", json!({"node": "c", "peerIP": "fd00::99", "asNumber": 65009, "families": ["ipv6", "ipv4"],
                            "extendedNextHop": true, "sourceAddress": "None"})),
        ("to-reflectors", json!({"nodeSelector": {"matchExpressions": [{"key": "role", "operator": "DoesNotExist"}]},
                                 "peerSelector": {"matchLabels": {"role": "rr"}}})),
        ("reflector-clients", json!({"nodeSelector": {"matchLabels": {"role": "rr"}},
                                     "peerSelector": {"matchExpressions": [{"key": "role", "operator": "DoesNotExist"}]},
                                     "routeReflectorClient": true})),
    ]
    .iter()
    .map(|(name, value)| translate::peer(name, &spec(value.clone())).expect(name))
    .collect();

    let expected: [(&str, &[&str]); 4] = [
        (
            "a",
            &[
                "address = \"192.168.1.1\"; description = \"BGPPeer tor-rack1\"; hold_time = 30; local_address = \"10.0.0.1\"; max_prefixes = 1000; password = \"s3cret\"; remote_asn = 65001; ttl_security = true",
                "address = \"10.0.0.3\"; description = \"BGPPeer to-reflectors node c\"; local_address = \"10.0.0.1\"; remote_asn = 65100",
                // d's IPv6 address: a has none, so no local address; bgpd's check decides.
                "address = \"10.0.0.4\"; description = \"BGPPeer to-reflectors node d\"; local_address = \"10.0.0.1\"; remote_asn = 65100",
                "address = \"fd00::4\"; description = \"BGPPeer to-reflectors node d\"; remote_asn = 65100",
            ],
        ),
        (
            "b",
            &[
                "address = \"192.168.1.1\"; description = \"BGPPeer tor-rack1\"; hold_time = 30; local_address = \"10.0.0.2\"; max_prefixes = 1000; password = \"s3cret\"; remote_asn = 65001; ttl_security = true",
                "address = \"10.0.0.3\"; description = \"BGPPeer to-reflectors node c\"; local_address = \"10.0.0.2\"; remote_asn = 65100",
                "address = \"10.0.0.4\"; description = \"BGPPeer to-reflectors node d\"; local_address = \"10.0.0.2\"; remote_asn = 65100",
                "address = \"fd00::4\"; description = \"BGPPeer to-reflectors node d\"; remote_asn = 65100",
            ],
        ),
        (
            "c",
            &[
                "address = \"fd00::99\"; description = \"BGPPeer one-node\"; extended_next_hop = true; families = [\"ipv6\", \"ipv4\"]; remote_asn = 65009",
                // a has no AS of its own: the BGPConfiguration's; b has its annotation.
                "address = \"10.0.0.1\"; description = \"BGPPeer reflector-clients node a\"; local_address = \"10.0.0.3\"; remote_asn = 64512; route_reflector_client = true",
                "address = \"10.0.0.2\"; description = \"BGPPeer reflector-clients node b\"; local_address = \"10.0.0.3\"; remote_asn = 65002; route_reflector_client = true",
            ],
        ),
        (
            "d",
            &[
                "address = \"10.0.0.1\"; description = \"BGPPeer reflector-clients node a\"; local_address = \"10.0.0.4\"; remote_asn = 64512; route_reflector_client = true",
                "address = \"10.0.0.2\"; description = \"BGPPeer reflector-clients node b\"; local_address = \"10.0.0.4\"; remote_asn = 65002; route_reflector_client = true",
            ],
        ),
    ];
    for (me, neighbors) in expected {
        let settings = settings_of(me, &peers);
        let got: Vec<String> = settings.neighbors.iter().map(lines).collect();
        assert_eq!(got, neighbors, "node {me}");
        assert!(settings.problems.is_empty(), "{:?}", settings.problems);
    }
    // The node's own settings: AS by annotation, else label, else asNumber; the
    // cluster id by annotation; the BGPConfiguration's other fields.
    let asns: Vec<Option<u32>> = ["a", "b", "c"]
        .iter()
        .map(|me| settings_of(me, &peers).asn)
        .collect();
    assert_eq!(asns, [Some(64512), Some(65002), Some(65100)]);
    let d = settings_of("d", &peers);
    assert_eq!(d.cluster_id, Some("1.1.1.1".parse().expect("id")));
    assert_eq!((d.node_mesh, d.listen_port), (Some(false), Some(1179)));
    assert_eq!(d.block_communities, [(64512 << 16) | 100]);
}

#[test]
fn malformed_resources_are_refused_with_a_reason() {
    let cases = [
        (
            json!({"node": "a", "nodeSelector": {}, "peerIP": "10.0.0.9", "asNumber": 1}),
            "node and nodeSelector exclude each other",
            "BothNodeAndNodeSelector",
        ),
        (
            json!({"peerIP": "10.0.0.9", "peerSelector": {}, "asNumber": 1}),
            "peerIP and peerSelector exclude each other",
            "BothPeerIPAndPeerSelector",
        ),
        (
            json!({"asNumber": 1}),
            "needs peerIP or peerSelector",
            "NoPeerIPOrPeerSelector",
        ),
        (
            json!({"peerIP": "10.0.0.300", "asNumber": 1}),
            "peerIP \"10.0.0.300\" is not an IP address",
            "InvalidPeerIP",
        ),
        (
            json!({"peerIP": "10.0.0.9"}),
            "asNumber is required with peerIP",
            "MissingAsNumber",
        ),
        (
            json!({"peerIP": "10.0.0.9", "asNumber": 0}),
            "asNumber 0 is not a usable AS number",
            "UnusableAsNumber",
        ),
        (
            json!({"peerIP": "10.0.0.9", "asNumber": 1, "holdTime": 2}),
            "holdTime 2",
            "InvalidHoldTime",
        ),
        (
            json!({"peerIP": "10.0.0.9", "asNumber": 1, "families": ["ipv4", "l2vpn"]}),
            "families: \"l2vpn\"",
            "InvalidFamily",
        ),
        (
            json!({"peerIP": "10.0.0.9", "asNumber": 1, "sourceAddress": "Auto"}),
            "sourceAddress \"Auto\"",
            "InvalidSourceAddress",
        ),
        (
            json!({"node": "Node_A", "peerIP": "10.0.0.9", "asNumber": 1}),
            "node \"Node_A\"",
            "InvalidNodeName",
        ),
        (
            json!({"nodeSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}, "peerIP": "10.0.0.9", "asNumber": 1}),
            "nodeSelector: matchExpressions: unknown operator",
            "InvalidSelector",
        ),
    ];
    let bfd = |bfd: serde_json::Value| json!({"peerIP": "10.0.0.9", "asNumber": 1, "bfd": bfd});
    let cases = cases.into_iter().chain([
        (
            bfd(json!({"minTx": 5})),
            "bfd.minTx \"5\" is not 10 to 60000 milliseconds",
            "InvalidBfd",
        ),
        (
            bfd(json!({"minRx": 60001})),
            "bfd.minRx \"60001\"",
            "InvalidBfd",
        ),
        (
            bfd(json!({"multiplier": 0})),
            "bfd.multiplier \"0\"",
            "InvalidBfd",
        ),
        (
            bfd(json!({"onDown": "reset"})),
            "bfd.onDown \"reset\" is not Reset or Graceful",
            "InvalidBfd",
        ),
    ]);
    for (value, text, reason) in cases {
        let refusal = translate::peer("bad", &spec(value.clone())).expect_err(&value.to_string());
        let message = refusal.to_string();
        assert!(message.contains(text), "{value}: {message}");
        assert!(!message.contains('\n'), "{message}");
        assert_eq!(refusal.reason(), reason, "{value}");
    }
    let configurations = [
        (
            BgpConfigurationSpec {
                as_number: Some(23456),
                ..Default::default()
            },
            "asNumber 23456",
            "UnusableAsNumber",
        ),
        (
            BgpConfigurationSpec {
                listen_port: Some(0),
                ..Default::default()
            },
            "listenPort 0",
            "InvalidListenPort",
        ),
        (
            BgpConfigurationSpec {
                communities: vec!["65536:1".into()],
                ..Default::default()
            },
            "\"65536:1\" is not AS:VALUE",
            "InvalidCommunity",
        ),
        (
            BgpConfigurationSpec {
                communities: vec!["no-export".into()],
                ..Default::default()
            },
            "\"no-export\"",
            "InvalidCommunity",
        ),
    ];
    for (spec, text, reason) in configurations {
        let refusal = translate::configuration(&spec).expect_err(text);
        assert!(refusal.to_string().contains(text), "{refusal}");
        assert_eq!(refusal.reason(), reason, "{refusal}");
    }
}

#[test]
fn per_node_problems_skip_that_peer_only() {
    let peers: Vec<Peer> = [
        (
            "a-first",
            json!({"peerIP": "192.168.1.1", "asNumber": 65001}),
        ),
        (
            "b-same-address",
            json!({"peerIP": "192.168.1.1", "asNumber": 65002}),
        ),
        (
            "c-no-secret",
            json!({"peerIP": "192.168.1.3", "asNumber": 65003,
                               "password": {"secretKeyRef": {"name": "bgp", "key": "missing"}}}),
        ),
        (
            "d-own-address",
            json!({"peerIP": "10.0.0.1", "asNumber": 65004}),
        ),
        (
            "e-fine",
            json!({"peerIP": "192.168.1.5", "asNumber": 65005}),
        ),
    ]
    .iter()
    .map(|(name, value)| translate::peer(name, &spec(value.clone())).expect(name))
    .collect();
    let settings = settings_of("a", &peers);
    let addresses: Vec<IpAddr> = settings
        .neighbors
        .iter()
        .map(|t| t["address"].as_str().expect("address").parse().expect("ip"))
        .collect();
    assert_eq!(
        addresses,
        [
            "192.168.1.1".parse::<IpAddr>().expect("ip"),
            "192.168.1.5".parse().expect("ip")
        ]
    );
    let problems: Vec<String> = settings.problems.iter().map(ToString::to_string).collect();
    let reasons: Vec<&str> = settings
        .problems
        .iter()
        .map(|problem| problem.refusal.reason())
        .collect();
    assert_eq!(reasons, ["AddressAlreadyPeered", "SecretKeyNotFound"]);
    assert_eq!(
        problems,
        [
            "BGPPeer b-same-address: 192.168.1.1 is already a peer of BGPPeer a-first: skipped",
            "BGPPeer c-no-secret: Secret bgp has no key \"missing\": not peering",
        ]
    );
    // A node whose own annotation is bad: the cluster's AS, and a problem naming it.
    let me = node("x", &[], &[("wren.io/asn", "0")]);
    let settings = translate::node_settings(
        &me,
        &[],
        Some(&translate::Configuration {
            asn: Some(64512),
            ..Default::default()
        }),
        &[],
        &[],
        secret,
    );
    assert_eq!(settings.asn, Some(64512));
    assert_eq!(settings.problems.len(), 1, "{:?}", settings.problems);
    assert!(
        settings.problems[0]
            .to_string()
            .contains("Node x: node x: wren.io/asn \"0\" is not a usable AS number"),
        "{:?}",
        settings.problems
    );
    assert_eq!(settings.problems[0].refusal.reason(), "InvalidNodeSetting");
}

#[test]
fn bfd_becomes_the_neighbors_bfd_table() {
    let bfd_of = |value: serde_json::Value| {
        let peer = translate::peer("tor", &spec(value)).expect("peer");
        peer.session.get("bfd").cloned()
    };
    let base = json!({"peerIP": "10.0.0.9", "asNumber": 65001});
    assert_eq!(bfd_of(base.clone()), None);
    let mut with = base.clone();
    with["bfd"] = json!({});
    assert_eq!(
        bfd_of(with.clone()),
        Some(toml::Value::Table(toml::Table::new()))
    );
    with["bfd"] = json!({"minTx": 100, "minRx": 200, "multiplier": 5, "onDown": "Graceful"});
    let expected: toml::Table =
        toml::from_str("min_tx = 100\nmin_rx = 200\nmultiplier = 5\non_down = \"graceful\"\n")
            .expect("toml");
    assert_eq!(bfd_of(with), Some(toml::Value::Table(expected)));
}
