//! Every request and answer of the control protocol against a fixed JSON text, both
//! ways: the value encodes to exactly that text and the text decodes to exactly that
//! value. A renamed field or tag fails here, not in an operator's script.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Debug;

use control_proto::fib::{
    Counters, FailedRoute, InstalledNextHop, InstalledRoute, KernelAction, KernelOperation,
    Snapshot,
};
use control_proto::health::{Datastore, Health};
use control_proto::{
    Answer, BfdSession, ConnectionInfo, FamilyName, IpamRequest, LastError, MessageCount,
    NegotiatedInfo, NeighborAction, NeighborDetail, NeighborEntry, NeighborView, PeerCounters,
    ReloadSummary, Request, Response, RouteLine, RouteQuery, RouteTable, RouteView, RoutesEnd,
    Timers,
};
use control_proto::{
    Disconnected, MonitorChange, MonitorEvent, MonitorTopic, NeighborChange, RouteAction,
    RouteChange,
};
use control_proto::{PoolSettings, VxlanMode};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn both_ways<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, text: &str) {
    assert_eq!(
        serde_json::to_string(value).unwrap(),
        text,
        "encoding {value:?}"
    );
    assert_eq!(
        &serde_json::from_str::<T>(text).unwrap(),
        value,
        "decoding {text}"
    );
}

fn ip(text: &str) -> std::net::IpAddr {
    text.parse().unwrap()
}

#[test]
fn requests() {
    let cases = [
        (Request::ShowNeighbors, r#"{"command":"show-neighbors"}"#),
        (
            Request::ShowNeighbor {
                address: ip("10.0.0.2"),
            },
            r#"{"command":"show-neighbor","address":"10.0.0.2"}"#,
        ),
        (
            Request::ShowRoutes {
                query: RouteQuery {
                    prefix: None,
                    family: Some(FamilyName::Ipv6),
                    neighbor: Some(ip("fd00::2")),
                    view: RouteTable::Received,
                },
                after: Some("fd00:1::/64".parse().unwrap()),
                limit: Some(100),
            },
            r#"{"command":"show-routes","query":{"prefix":null,"family":"ipv6","neighbor":"fd00::2","view":"received"},"after":"fd00:1::/64","limit":100}"#,
        ),
        (
            Request::ShowRoutes {
                query: RouteQuery {
                    prefix: Some("10.1.0.0/24".parse().unwrap()),
                    family: Some(FamilyName::Ipv4),
                    neighbor: None,
                    view: RouteTable::Advertised,
                },
                after: None,
                limit: None,
            },
            r#"{"command":"show-routes","query":{"prefix":"10.1.0.0/24","family":"ipv4","neighbor":null,"view":"advertised"},"after":null,"limit":null}"#,
        ),
        (Request::ShowFib, r#"{"command":"show-fib"}"#),
        (
            Request::Neighbor {
                address: ip("10.0.0.2"),
                action: NeighborAction::Shutdown,
                message: Some("maintenance".into()),
            },
            r#"{"command":"neighbor","address":"10.0.0.2","action":"shutdown","message":"maintenance"}"#,
        ),
        (
            Request::Neighbor {
                address: ip("10.0.0.2"),
                action: NeighborAction::Reset,
                message: None,
            },
            r#"{"command":"neighbor","address":"10.0.0.2","action":"reset","message":null}"#,
        ),
        (
            Request::Neighbor {
                address: ip("10.0.0.2"),
                action: NeighborAction::Enable,
                message: None,
            },
            r#"{"command":"neighbor","address":"10.0.0.2","action":"enable","message":null}"#,
        ),
        (
            Request::Neighbor {
                address: ip("10.0.0.2"),
                action: NeighborAction::Refresh,
                message: None,
            },
            r#"{"command":"neighbor","address":"10.0.0.2","action":"refresh","message":null}"#,
        ),
        (Request::Reload, r#"{"command":"reload"}"#),
        (
            Request::Ipam {
                request: IpamRequest::Usage,
            },
            r#"{"command":"ipam","request":{"op":"usage"}}"#,
        ),
        (Request::IpamChanged, r#"{"command":"ipam-changed"}"#),
        (Request::ShowHealth, r#"{"command":"show-health"}"#),
        (Request::ShowBfd, r#"{"command":"show-bfd"}"#),
        (
            Request::Monitor {
                topics: vec![
                    MonitorTopic::Routes,
                    MonitorTopic::Neighbors,
                    MonitorTopic::Fib,
                ],
            },
            r#"{"command":"monitor","topics":["routes","neighbors","fib"]}"#,
        ),
    ];
    for (request, text) in &cases {
        both_ways(request, text);
    }
    // What older bgpctl sends and hand-written requests leave out.
    let short: Request = serde_json::from_str(r#"{"command":"show-routes"}"#).unwrap();
    assert_eq!(
        short,
        Request::ShowRoutes {
            query: RouteQuery::default(),
            after: None,
            limit: None
        }
    );
    for refused in [
        r#"{"command":"format-disk"}"#,
        r#"{"command":"show-neighbor","address":"10.0.0.2","extra":1}"#,
        r#"{"command":"show-routes","query":{"prefixes":null}}"#,
        r#"{"command":"neighbor","address":"10.0.0.2","action":"explode"}"#,
        r#"{"command":"monitor","topics":["bgp"]}"#,
        r#"{"command":"monitor"}"#,
    ] {
        assert!(
            serde_json::from_str::<Request>(refused).is_err(),
            "{refused}"
        );
    }
}

#[test]
fn read_only_requests() {
    let read_only: Vec<Request> = [
        r#"{"command":"show-neighbors"}"#,
        r#"{"command":"show-routes"}"#,
        r#"{"command":"show-fib"}"#,
        r#"{"command":"show-bfd"}"#,
        r#"{"command":"ipam","request":{"op":"check"}}"#,
        r#"{"command":"monitor","topics":["fib"]}"#,
    ]
    .iter()
    .map(|text| serde_json::from_str(text).unwrap())
    .collect();
    assert!(read_only.iter().all(Request::is_read_only));
    let changing: Vec<Request> = [
        r#"{"command":"reload"}"#,
        r#"{"command":"ipam-changed"}"#,
        r#"{"command":"neighbor","address":"10.0.0.2","action":"enable"}"#,
        r#"{"command":"ipam","request":{"op":"release","address":"10.244.0.5"}}"#,
    ]
    .iter()
    .map(|text| serde_json::from_str(text).unwrap())
    .collect();
    assert!(!changing.iter().any(Request::is_read_only));
}

#[test]
fn ipam_requests() {
    let cases = [
        (IpamRequest::Usage, r#"{"op":"usage"}"#),
        (
            IpamRequest::Address {
                address: ip("10.244.0.5"),
            },
            r#"{"op":"address","address":"10.244.0.5"}"#,
        ),
        (IpamRequest::Check, r#"{"op":"check"}"#),
        (
            IpamRequest::Release {
                address: ip("10.244.0.5"),
            },
            r#"{"op":"release","address":"10.244.0.5"}"#,
        ),
        (
            IpamRequest::ReleaseNode {
                node: "node-b".into(),
            },
            r#"{"op":"release-node","node":"node-b"}"#,
        ),
        (IpamRequest::Pools, r#"{"op":"pools"}"#),
        (
            IpamRequest::PoolAdd(PoolSettings {
                cidr: "fd00:10:244::/56".parse().unwrap(),
                block_size: Some(122),
                disabled: true,
                node_selector: BTreeMap::from([("zone".to_owned(), "a".to_owned())]),
                nat_outgoing: true,
                vxlan_mode: VxlanMode::CrossSubnet,
                vxlan_vni: Some(4097),
                vxlan_port: None,
                ipip_mode: None,
            }),
            r#"{"op":"pool-add","cidr":"fd00:10:244::/56","block_size":122,"disabled":true,"node_selector":{"zone":"a"},"nat_outgoing":true,"vxlan_mode":"cross_subnet","vxlan_vni":4097,"vxlan_port":null}"#,
        ),
        (
            IpamRequest::PoolDelete {
                cidr: "10.244.0.0/16".parse().unwrap(),
            },
            r#"{"op":"pool-delete","cidr":"10.244.0.0/16"}"#,
        ),
    ];
    for (request, text) in &cases {
        both_ways(request, text);
    }
    assert!(serde_json::from_str::<IpamRequest>(r#"{"op":"format"}"#).is_err());
    assert!(IpamRequest::Check.is_read_only());
    assert!(IpamRequest::Pools.is_read_only());
    assert!(!IpamRequest::ReleaseNode { node: "b".into() }.is_read_only());
}

fn entry(detail: Option<NeighborDetail>) -> NeighborEntry {
    NeighborEntry {
        view: NeighborView {
            address: ip("10.0.0.2"),
            remote_asn: 65001,
            state: "Established".into(),
            uptime_secs: 5,
            prefixes_received: 3,
            prefixes_advertised: 1,
            detail,
        },
        description: Some("tor-1".into()),
        messages_received: 10,
        messages_sent: 9,
        admin_down: false,
        established_count: 1,
    }
}

const ENTRY: &str = r#""address":"10.0.0.2","remote_asn":65001,"state":"Established","uptime_secs":5,"prefixes_received":3,"prefixes_advertised":1"#;
const ENTRY_TAIL: &str = r#""description":"tor-1","messages_received":10,"messages_sent":9,"admin_down":false,"established_count":1"#;

fn detail() -> NeighborDetail {
    NeighborDetail {
        description: Some("tor-1".into()),
        state: "Established".into(),
        seconds_in_state: 5,
        admin_down: false,
        passive: false,
        dynamic_range: Some("10.0.0.0/24".parse().unwrap()),
        configured_remote_asn: 65001,
        timers: Timers {
            hold_time: 90,
            keepalive: Some(30),
            connect_retry: 5,
        },
        connection: Some(ConnectionInfo {
            local: "10.0.0.1:179".parse().unwrap(),
            remote: "10.0.0.2:40100".parse().unwrap(),
            initiator: "remote".into(),
        }),
        negotiated: Some(NegotiatedInfo {
            peer_as: 65001,
            peer_id: "10.0.0.2".parse().unwrap(),
            hold_time: 90,
            keepalive: 30,
            send_hold_time_secs: None,
            ibgp: false,
            four_octet_as: true,
            families: vec!["ipv4-unicast".into()],
            route_refresh: true,
            enhanced_route_refresh: false,
            extended_message: false,
            graceful_restart: true,
            peer_restart_time: Some(120),
            peer_restarted: false,
            peer_hostname: Some("tor-1".into()),
            local_capabilities: vec!["ipv4-unicast".into()],
            peer_capabilities: vec!["route-refresh".into()],
        }),
        messages_sent: MessageCount {
            open: 1,
            update: 2,
            notification: 0,
            keepalive: 6,
            route_refresh: 0,
        },
        messages_received: MessageCount {
            open: 1,
            update: 3,
            notification: 0,
            keepalive: 6,
            route_refresh: 0,
        },
        prefixes: PeerCounters {
            received: 3,
            accepted: 3,
            advertised: 1,
        },
        established_count: 1,
        last_error: Some(LastError {
            reason: "hold timer expired".into(),
            unix_time: 1_700_000_000,
        }),
        bfd: Some("Up".into()),
    }
}

const DETAIL: &str = concat!(
    r#"{"description":"tor-1","state":"Established","seconds_in_state":5,"admin_down":false,"passive":false,"#,
    r#""dynamic_range":"10.0.0.0/24","configured_remote_asn":65001,"#,
    r#""timers":{"hold_time":90,"keepalive":30,"connect_retry":5},"#,
    r#""connection":{"local":"10.0.0.1:179","remote":"10.0.0.2:40100","initiator":"remote"},"#,
    r#""negotiated":{"peer_as":65001,"peer_id":"10.0.0.2","hold_time":90,"keepalive":30,"send_hold_time_secs":null,"#,
    r#""ibgp":false,"four_octet_as":true,"families":["ipv4-unicast"],"route_refresh":true,"enhanced_route_refresh":false,"#,
    r#""extended_message":false,"graceful_restart":true,"peer_restart_time":120,"peer_restarted":false,"#,
    r#""peer_hostname":"tor-1","local_capabilities":["ipv4-unicast"],"peer_capabilities":["route-refresh"]},"#,
    r#""messages_sent":{"open":1,"update":2,"notification":0,"keepalive":6,"route_refresh":0},"#,
    r#""messages_received":{"open":1,"update":3,"notification":0,"keepalive":6,"route_refresh":0},"#,
    r#""prefixes":{"received":3,"accepted":3,"advertised":1},"established_count":1,"#,
    r#""last_error":{"reason":"hold timer expired","unix_time":1700000000},"bfd":"Up"}"#
);

fn route() -> RouteLine {
    let view = RouteView {
        prefix: "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ff00/120"
            .parse()
            .unwrap(),
        next_hops: vec![ip("2001:db8::1"), ip("fe80::1")],
        as_path: vec![65002, 65001],
        origin: "igp".into(),
        local_pref: Some(100),
        med: None,
        communities: vec!["65001:100".into(), "65001:1:2".into()],
        best: true,
        source: "2001:db8::1".into(),
    };
    RouteLine {
        view,
        path: "65002 {65001,65003}".into(),
    }
}

#[test]
fn answers() {
    let fib = Snapshot {
        table: 254,
        protocol: 196,
        metric: 20,
        converged: true,
        installed: vec![InstalledRoute {
            prefix: "10.1.0.0/24".parse().unwrap(),
            kind: "unicast".into(),
            next_hops: vec![InstalledNextHop {
                gateway: Some(ip("10.0.0.2")),
                device: "eth1".into(),
            }],
            adopted: false,
            warning: None,
        }],
        failed: vec![FailedRoute {
            prefix: "10.2.0.0/24".parse().unwrap(),
            reason: "10.2.0.0/24: no route to 10.9.9.9".into(),
        }],
        counters: Counters {
            adopted: 1,
            added: 2,
            replaced: 3,
            deleted: 4,
            refused: 5,
            external_changes: 6,
            resyncs: 7,
            batches: 8,
        },
    };
    let cases = [
        (
            Response::Ok(Answer::Neighbors(vec![entry(None)])),
            format!(r#"{{"ok":{{"neighbors":[{{{ENTRY},{ENTRY_TAIL}}}]}}}}"#),
        ),
        (
            Response::Ok(Answer::Neighbor(Box::new(entry(Some(detail()))))),
            format!(r#"{{"ok":{{"neighbor":{{{ENTRY},"detail":{DETAIL},{ENTRY_TAIL}}}}}}}"#),
        ),
        (
            Response::Ok(Answer::Fib(fib)),
            concat!(
                r#"{"ok":{"fib":{"table":254,"protocol":196,"metric":20,"converged":true,"#,
                r#""installed":[{"prefix":"10.1.0.0/24","kind":"unicast","next_hops":[{"gateway":"10.0.0.2","device":"eth1"}],"adopted":false,"warning":null}],"#,
                r#""failed":[{"prefix":"10.2.0.0/24","reason":"10.2.0.0/24: no route to 10.9.9.9"}],"#,
                r#""counters":{"adopted":1,"added":2,"replaced":3,"deleted":4,"refused":5,"external_changes":6,"resyncs":7,"batches":8}}}}"#
            )
            .to_owned(),
        ),
        (
            Response::Ok(Answer::Done("10.0.0.2: shut down".into())),
            r#"{"ok":{"done":"10.0.0.2: shut down"}}"#.to_owned(),
        ),
        (
            Response::Ok(Answer::Reloaded(ReloadSummary {
                added: vec![ip("10.0.0.3")],
                removed: vec![],
                reset: vec![ip("fd00::2")],
                updated: vec![],
                unchanged: 2,
            })),
            r#"{"ok":{"reloaded":{"added":["10.0.0.3"],"removed":[],"reset":["fd00::2"],"updated":[],"unchanged":2}}}"#.to_owned(),
        ),
        (
            Response::Ok(Answer::Ipam(r#"{"problems":0}"#.into())),
            r#"{"ok":{"ipam":"{\"problems\":0}"}}"#.to_owned(),
        ),
        (
            Response::Ok(Answer::Notified),
            r#"{"ok":"notified"}"#.to_owned(),
        ),
        (
            Response::Ok(Answer::Health(Health {
                converged: true,
                datastore: Datastore::Reachable,
            })),
            r#"{"ok":{"health":{"converged":true,"datastore":"reachable"}}}"#.to_owned(),
        ),
        (
            Response::Ok(Answer::Health(Health {
                converged: false,
                datastore: Datastore::Unreachable("etcd://10.0.0.5:2379: refused".into()),
            })),
            r#"{"ok":{"health":{"converged":false,"datastore":{"unreachable":"etcd://10.0.0.5:2379: refused"}}}}"#.to_owned(),
        ),
        (
            Response::Ok(Answer::Bfd(vec![
                BfdSession {
                    peer: ip("10.0.0.2"),
                    interface: Some("eth1".into()),
                    local: None,
                    multihop: false,
                    state: "Up".into(),
                    local_discriminator: 7,
                    remote_discriminator: 9,
                    transmit_interval_ms: Some(300),
                    detection_time_ms: Some(900),
                    uptime_secs: 12,
                    diagnostic: "0 (No Diagnostic)".into(),
                    failures: 1,
                    downs: [("control_detection_time_expired".to_owned(), 1)].into(),
                    packets_received: 40,
                    packets_sent: 41,
                },
                BfdSession {
                    peer: ip("fd00::2"),
                    interface: None,
                    local: Some(ip("fd00::1")),
                    multihop: true,
                    state: "Down".into(),
                    local_discriminator: 8,
                    remote_discriminator: 0,
                    transmit_interval_ms: None,
                    detection_time_ms: None,
                    uptime_secs: 3,
                    diagnostic: "1 (Control Detection Time Expired)".into(),
                    failures: 0,
                    downs: Default::default(),
                    packets_received: 0,
                    packets_sent: 3,
                },
            ])),
            concat!(
                r#"{"ok":{"bfd":[{"peer":"10.0.0.2","interface":"eth1","local":null,"multihop":false,"state":"Up","#,
                r#""local_discriminator":7,"remote_discriminator":9,"transmit_interval_ms":300,"detection_time_ms":900,"#,
                r#""uptime_secs":12,"diagnostic":"0 (No Diagnostic)","failures":1,"downs":{"control_detection_time_expired":1},"packets_received":40,"packets_sent":41},"#,
                r#"{"peer":"fd00::2","interface":null,"local":"fd00::1","multihop":true,"state":"Down","#,
                r#""local_discriminator":8,"remote_discriminator":0,"transmit_interval_ms":null,"detection_time_ms":null,"#,
                r#""uptime_secs":3,"diagnostic":"1 (Control Detection Time Expired)","failures":0,"downs":{},"packets_received":0,"packets_sent":3}]}}"#
            )
            .to_owned(),
        ),
        (
            Response::Route(route()),
            concat!(
                r#"{"route":{"view":{"prefix":"2001:db8:aaaa:bbbb:cccc:dddd:eeee:ff00/120","next_hops":["2001:db8::1","fe80::1"],"#,
                r#""as_path":[65002,65001],"origin":"igp","local_pref":100,"med":null,"communities":["65001:100","65001:1:2"],"#,
                r#""best":true,"source":"2001:db8::1"},"path":"65002 {65001,65003}"}}"#
            )
            .to_owned(),
        ),
        (
            Response::End(RoutesEnd {
                prefixes: 1,
                paths: 2,
                next: Some("10.1.0.0/24".parse().unwrap()),
            }),
            r#"{"end":{"prefixes":1,"paths":2,"next":"10.1.0.0/24"}}"#.to_owned(),
        ),
        (
            Response::Error("no neighbor 10.9.9.9".into()),
            r#"{"error":"no neighbor 10.9.9.9"}"#.to_owned(),
        ),
    ];
    for (response, text) in &cases {
        both_ways(response, text);
    }
    assert!(serde_json::from_str::<Response>(r#"{"ok":{"neighbours":[]}}"#).is_err());
}

#[test]
fn the_summary_list_leaves_the_detail_out() {
    let text = serde_json::to_string(&entry(None)).unwrap();
    assert!(!text.contains("detail"), "{text}");
}

#[test]
fn reload_summaries_read_as_one_line() {
    let summary = ReloadSummary {
        added: vec![ip("10.0.0.3")],
        removed: vec![],
        reset: vec![ip("10.0.0.4"), ip("fd00::2")],
        updated: vec![],
        unchanged: 2,
    };
    assert_eq!(
        summary.to_string(),
        "configuration reloaded: added 10.0.0.3; removed none; restarted 10.0.0.4, fd00::2; updated in place none; 2 unchanged"
    );
}

#[test]
fn monitor_lines() {
    let time = "2026-12-06T22:50:01.123Z".to_owned();
    let cases = [
        (
            Response::Ok(Answer::Monitoring(vec![
                MonitorTopic::Routes,
                MonitorTopic::Fib,
            ])),
            r#"{"ok":{"monitoring":["routes","fib"]}}"#,
        ),
        (
            Response::Event(MonitorEvent {
                time: time.clone(),
                change: MonitorChange::Route(RouteChange {
                    action: RouteAction::Add,
                    prefix: "10.1.0.0/26".parse().unwrap(),
                    next_hops: vec![ip("10.0.0.2"), ip("10.0.0.3")],
                    as_path: "65001 {65003,65004}".into(),
                    source: "10.0.0.2".into(),
                }),
            }),
            concat!(
                r#"{"event":{"time":"2026-12-06T22:50:01.123Z","change":{"route":{"action":"add","#,
                r#""prefix":"10.1.0.0/26","next_hops":["10.0.0.2","10.0.0.3"],"as_path":"65001 {65003,65004}","source":"10.0.0.2"}}}}"#
            ),
        ),
        (
            Response::Event(MonitorEvent {
                time: time.clone(),
                change: MonitorChange::Route(RouteChange {
                    action: RouteAction::Withdraw,
                    prefix: "fd00:1::/64".parse().unwrap(),
                    next_hops: vec![],
                    as_path: String::new(),
                    source: "local".into(),
                }),
            }),
            concat!(
                r#"{"event":{"time":"2026-12-06T22:50:01.123Z","change":{"route":{"action":"withdraw","#,
                r#""prefix":"fd00:1::/64","next_hops":[],"as_path":"","source":"local"}}}}"#
            ),
        ),
        (
            Response::Event(MonitorEvent {
                time: time.clone(),
                change: MonitorChange::Neighbor(NeighborChange {
                    address: ip("fd00::2"),
                    from: "OpenConfirm".into(),
                    to: "Established".into(),
                }),
            }),
            concat!(
                r#"{"event":{"time":"2026-12-06T22:50:01.123Z","change":{"neighbor":{"#,
                r#""address":"fd00::2","from":"OpenConfirm","to":"Established"}}}}"#
            ),
        ),
        (
            Response::Event(MonitorEvent {
                time: time.clone(),
                change: MonitorChange::Fib(KernelOperation {
                    action: KernelAction::Replace,
                    prefix: "10.1.0.0/26".parse().unwrap(),
                    kind: "unicast".into(),
                    next_hops: vec![InstalledNextHop {
                        gateway: Some(ip("10.0.0.2")),
                        device: "eth1".into(),
                    }],
                    error: None,
                }),
            }),
            concat!(
                r#"{"event":{"time":"2026-12-06T22:50:01.123Z","change":{"fib":{"action":"replace","#,
                r#""prefix":"10.1.0.0/26","kind":"unicast","next_hops":[{"gateway":"10.0.0.2","device":"eth1"}],"error":null}}}}"#
            ),
        ),
        (
            Response::Event(MonitorEvent {
                time,
                change: MonitorChange::Fib(KernelOperation {
                    action: KernelAction::NotInstalled,
                    prefix: "10.2.0.0/24".parse().unwrap(),
                    kind: "unicast".into(),
                    next_hops: vec![],
                    error: Some(
                        "10.2.0.0/24: next hop 10.9.9.9 is unresolvable: no route; not installed"
                            .into(),
                    ),
                }),
            }),
            concat!(
                r#"{"event":{"time":"2026-12-06T22:50:01.123Z","change":{"fib":{"action":"not-installed","#,
                r#""prefix":"10.2.0.0/24","kind":"unicast","next_hops":[],"#,
                r#""error":"10.2.0.0/24: next hop 10.9.9.9 is unresolvable: no route; not installed"}}}}"#
            ),
        ),
        (
            Response::Disconnected(Disconnected {
                missed: 4100,
                message: "disconnected for reading too slowly: 4100 events missed".into(),
            }),
            r#"{"disconnected":{"missed":4100,"message":"disconnected for reading too slowly: 4100 events missed"}}"#,
        ),
    ];
    for (response, text) in &cases {
        both_ways(response, text);
    }
    assert!(
        serde_json::from_str::<Response>(
            r#"{"event":{"time":"x","change":{"route":{"action":"flap","prefix":"10.0.0.0/8","next_hops":[],"as_path":"","source":"local"}}}}"#
        )
        .is_err()
    );
}
