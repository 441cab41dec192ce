//! The text bgpctl prints for each answer, from the same values `--json` prints as
//! they are: `show neighbors` like FRR's `show bgp summary`, `show neighbor` like
//! FRR's `show bgp neighbor`, `show fib` like `ip route` in columns, `show bfd` like
//! FRR's `show bfd peers brief` with the negotiated timers. (A reload summary
//! prints as control-proto's `Display` of it.)
//! Tables go through [`crate::table`]; `show routes` is in [`crate::routes`].

use std::fmt::Write;

use control_proto::fib::Snapshot;
use control_proto::{BfdSession, MessageCount, NeighborEntry};

use crate::table::{self, Column};

/// `Neighbor V AS MsgRcvd MsgSent Up/Down State/PfxRcd PfxSnt Desc`.
pub fn neighbors(entries: &[NeighborEntry]) -> String {
    const COLUMNS: [Column; 9] = [
        Column::left("Neighbor"),
        Column::right("V"),
        Column::right("AS"),
        Column::right("MsgRcvd"),
        Column::right("MsgSent"),
        Column::right("Up/Down"),
        Column::left("State/PfxRcd"),
        Column::right("PfxSnt"),
        Column::left("Desc"),
    ];
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|entry| {
            let view = &entry.view;
            let state = if view.state == "Established" {
                view.prefixes_received.to_string()
            } else if entry.admin_down {
                format!("{} (Admin)", view.state)
            } else {
                view.state.clone()
            };
            let up_down = if view.state == "Established" || entry.established_count > 0 {
                up_down(view.uptime_secs)
            } else {
                "never".to_owned()
            };
            vec![
                view.address.to_string(),
                "4".to_owned(),
                view.remote_asn.to_string(),
                entry.messages_received.to_string(),
                entry.messages_sent.to_string(),
                up_down,
                state,
                view.prefixes_advertised.to_string(),
                entry.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut out = table::render(&COLUMNS, &rows, true);
    let _ = write!(out, "\nTotal number of neighbors {}", entries.len());
    out
}

/// One neighbor in detail.
pub fn neighbor(entry: &NeighborEntry) -> String {
    let view = &entry.view;
    let detail = view.detail.as_ref();
    let negotiated = detail.and_then(|detail| detail.negotiated.as_ref());
    let mut out = String::new();
    let link = match negotiated.map(|n| n.ibgp) {
        Some(true) => "internal link",
        Some(false) => "external link",
        None => "link not established",
    };
    let _ = writeln!(
        out,
        "BGP neighbor is {}, remote AS {}, {link}",
        view.address, view.remote_asn
    );
    if let Some(description) = &entry.description {
        let _ = writeln!(out, "  Description: {description}");
    }
    if let Some(range) = detail.and_then(|detail| detail.dynamic_range) {
        let _ = writeln!(out, "  Dynamic neighbor from listen range {range}");
    }
    let admin = if entry.admin_down {
        " (administratively down)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  BGP state = {}{admin}, for {}",
        view.state,
        up_down(view.uptime_secs)
    );
    let Some(detail) = detail else {
        let _ = write!(out, "  (bgpd sent no detail)");
        return out;
    };
    if let Some(connection) = &detail.connection {
        let opener = match connection.initiator.as_str() {
            "local" => "we connected",
            "remote" => "the peer connected",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  Local address {}, remote address {} ({opener})",
            connection.local, connection.remote
        );
    }
    let timers = &detail.timers;
    let _ = writeln!(
        out,
        "  Configured hold time {} s, keepalive {}, connect retry {} s{}",
        timers.hold_time,
        timers
            .keepalive
            .map_or("a third of the hold time".to_owned(), |k| format!("{k} s")),
        timers.connect_retry,
        if detail.passive { ", passive" } else { "" }
    );
    if let Some(negotiated) = negotiated {
        let _ = writeln!(
            out,
            "  Peer router ID {}; negotiated hold time {} s, keepalive {} s{}",
            negotiated.peer_id,
            negotiated.hold_time,
            negotiated.keepalive,
            negotiated
                .send_hold_time_secs
                .map_or(String::new(), |s| format!(", send hold time {s} s"))
        );
        let _ = writeln!(out, "  Families: {}", list(&negotiated.families));
        let _ = writeln!(
            out,
            "  Capabilities sent: {}",
            list(&negotiated.local_capabilities)
        );
        let _ = writeln!(
            out,
            "  Capabilities received: {}",
            list(&negotiated.peer_capabilities)
        );
        let graceful = if negotiated.graceful_restart {
            format!(
                "negotiated, peer restart time {} s{}",
                negotiated
                    .peer_restart_time
                    .map_or("-".to_owned(), |t| t.to_string()),
                if negotiated.peer_restarted {
                    ", peer restarted"
                } else {
                    ""
                }
            )
        } else {
            "not negotiated".to_owned()
        };
        let _ = writeln!(out, "  Graceful restart: {graceful}");
        if let Some(host) = &negotiated.peer_hostname {
            let _ = writeln!(out, "  Peer hostname: {host}");
        }
    }
    let _ = writeln!(out, "  Message statistics:");
    let count = |name: &str, sent: u64, received: u64| {
        vec![name.to_owned(), sent.to_string(), received.to_string()]
    };
    let (sent, received): (&MessageCount, &MessageCount) =
        (&detail.messages_sent, &detail.messages_received);
    let rows = vec![
        count("Opens:", sent.open, received.open),
        count("Notifications:", sent.notification, received.notification),
        count("Updates:", sent.update, received.update),
        count("Keepalives:", sent.keepalive, received.keepalive),
        count("Route Refresh:", sent.route_refresh, received.route_refresh),
        count("Total:", entry.messages_sent, entry.messages_received),
    ];
    let statistics = table::render(
        &[
            Column::left("").min(16),
            Column::right("Sent").min(10),
            Column::right("Rcvd").min(10),
        ],
        &rows,
        true,
    );
    for line in statistics.lines() {
        let _ = writeln!(out, "    {line}");
    }
    if let Some(bfd) = &detail.bfd {
        let _ = writeln!(out, "  BFD: {bfd}");
    }
    let prefixes = &detail.prefixes;
    let _ = writeln!(
        out,
        "  Prefixes: received {}, accepted {}, advertised {}",
        prefixes.received, prefixes.accepted, prefixes.advertised
    );
    let _ = write!(
        out,
        "  Established {} time(s); last error: {}",
        entry.established_count,
        detail
            .last_error
            .as_ref()
            .map_or("none", |error| error.reason.as_str())
    );
    out
}

/// `bgpctl show fib`: what is installed, what failed, counters.
pub fn fib(snapshot: &Snapshot) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Table {}, protocol {}, metric {}, {}",
        snapshot.table,
        snapshot.protocol,
        snapshot.metric,
        if snapshot.converged {
            "converged"
        } else {
            "initial convergence in progress (adopted routes kept)"
        }
    );
    let rows: Vec<Vec<String>> = snapshot
        .installed
        .iter()
        .map(|route| {
            let hops: Vec<String> = route
                .next_hops
                .iter()
                .map(|hop| match hop.gateway {
                    Some(gateway) => format!("via {gateway} dev {}", hop.device),
                    None => format!("dev {}", hop.device),
                })
                .collect();
            let mut note = String::new();
            if route.adopted {
                note.push_str("adopted");
            }
            if let Some(warning) = &route.warning {
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str(warning);
            }
            vec![
                route.prefix.to_string(),
                route.kind.clone(),
                hops.join(", "),
                note,
            ]
        })
        .collect();
    text.push_str(&table::render(
        &[
            Column::left("Prefix"),
            Column::left("Kind"),
            Column::left("Next hops"),
            Column::left("Note"),
        ],
        &rows,
        true,
    ));
    if !snapshot.failed.is_empty() {
        let _ = writeln!(text, "\nNot installed:");
        let rows: Vec<Vec<String>> = snapshot
            .failed
            .iter()
            .map(|failed| vec![failed.prefix.to_string(), failed.reason.clone()])
            .collect();
        text.push_str(&table::render(
            &[Column::left("Prefix"), Column::left("Reason")],
            &rows,
            true,
        ));
    }
    let c = &snapshot.counters;
    let _ = writeln!(
        text,
        "\nadopted {} added {} replaced {} deleted {} refused {} external changes {} resyncs {}",
        c.adopted, c.added, c.replaced, c.deleted, c.refused, c.external_changes, c.resyncs
    );
    text
}

/// Formats a duration like FRR's Up/Down column: `00:05:12`, `3d04h12m`.
/// `show bfd`: one line per BFD session, like FRR's `show bfd peers brief` with the
/// negotiated timers.
pub fn bfd(sessions: &[BfdSession]) -> String {
    const COLUMNS: [Column; 9] = [
        Column::left("Peer"),
        Column::left("Interface/Local"),
        Column::left("State"),
        Column::right("LocalDisc"),
        Column::right("RemoteDisc"),
        Column::right("TxMs"),
        Column::right("DetectMs"),
        Column::right("Up/Down"),
        Column::left("LastDiag"),
    ];
    let millis = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|session| {
            vec![
                session.peer.to_string(),
                session.location(),
                session.state.clone(),
                session.local_discriminator.to_string(),
                session.remote_discriminator.to_string(),
                millis(session.transmit_interval_ms),
                millis(session.detection_time_ms),
                up_down(session.uptime_secs),
                session.diagnostic.clone(),
            ]
        })
        .collect();
    let mut out = table::render(&COLUMNS, &rows, true);
    let _ = write!(out, "\nTotal number of BFD sessions {}", sessions.len());
    out
}

pub fn up_down(seconds: u64) -> String {
    let (days, hours, minutes, seconds) = (
        seconds / 86_400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    if days > 0 {
        format!("{days}d{hours:02}h{minutes:02}m")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use control_proto::fib::{Counters, InstalledNextHop, InstalledRoute};
    use control_proto::{
        ConnectionInfo, LastError, NegotiatedInfo, NeighborDetail, NeighborView, PeerCounters,
        Timers,
    };

    use super::*;

    #[test]
    fn bfd_sessions_as_a_table() {
        let session = BfdSession {
            peer: "10.0.0.2".parse().unwrap(),
            interface: Some("eth1".into()),
            local: None,
            multihop: false,
            state: "Up".into(),
            local_discriminator: 7,
            remote_discriminator: 9,
            transmit_interval_ms: Some(300),
            detection_time_ms: Some(900),
            uptime_secs: 75,
            diagnostic: "0 (No Diagnostic)".into(),
            failures: 0,
            downs: Default::default(),
            packets_received: 4,
            packets_sent: 5,
        };
        let multihop = BfdSession {
            peer: "10.0.2.1".parse().unwrap(),
            interface: None,
            local: Some("10.0.1.1".parse().unwrap()),
            multihop: true,
            state: "Down".into(),
            remote_discriminator: 0,
            transmit_interval_ms: None,
            detection_time_ms: None,
            diagnostic: "1 (Control Detection Time Expired)".into(),
            ..session.clone()
        };
        let text = bfd(&[session, multihop]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[0].starts_with("Peer"), "{text}");
        let first: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            first,
            [
                "10.0.0.2",
                "eth1",
                "Up",
                "7",
                "9",
                "300",
                "900",
                "00:01:15",
                "0",
                "(No",
                "Diagnostic)"
            ],
            "{text}"
        );
        assert!(
            lines[2].contains("from 10.0.1.1") && lines[2].contains(" - "),
            "{text}"
        );
        assert_eq!(lines[4], "Total number of BFD sessions 2");
    }

    fn entry(address: &str, state: &str) -> NeighborEntry {
        NeighborEntry {
            view: NeighborView {
                address: address.parse().unwrap(),
                remote_asn: 65001,
                state: state.into(),
                uptime_secs: 312,
                prefixes_received: 3,
                prefixes_advertised: 1,
                detail: None,
            },
            description: Some("tor-1".into()),
            messages_received: 12,
            messages_sent: 10,
            admin_down: false,
            established_count: 1,
        }
    }

    #[test]
    fn up_down_reads_like_frr() {
        assert_eq!(up_down(0), "00:00:00");
        assert_eq!(up_down(3725), "01:02:05");
        assert_eq!(up_down(86_400 * 3 + 3600 * 4 + 60 * 12), "3d04h12m");
    }

    #[test]
    fn neighbor_summary_reads_like_frr() {
        let table = neighbors(&[
            entry("10.0.0.2", "Established"),
            entry("10.0.0.3", "Active"),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("Neighbor"), "{table}");
        assert!(lines[0].contains("State/PfxRcd"), "{table}");
        let columns: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            columns,
            [
                "10.0.0.2", "4", "65001", "12", "10", "00:05:12", "3", "1", "tor-1"
            ]
        );
        assert!(lines[2].contains("Active"), "{table}");
        assert!(table.ends_with("Total number of neighbors 2"));
    }

    #[test]
    fn neighbor_summary_aligns_a_39_character_ipv6_neighbor() {
        let long = "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff01";
        assert_eq!(long.len(), 39);
        let table = neighbors(&[entry("10.0.0.2", "Established"), entry(long, "Established")]);
        let lines: Vec<&str> = table.lines().collect();
        let column = |line: &str, text: &str| line.rfind(text);
        let desc = column(lines[0], "Desc").unwrap();
        assert_eq!(column(lines[1], "tor-1"), Some(desc), "{table}");
        assert_eq!(column(lines[2], "tor-1"), Some(desc), "{table}");
        let state = lines[0].find("State/PfxRcd").unwrap();
        assert_eq!(&lines[2][state..state + 1], "3", "{table}");
        assert_eq!(&lines[1][state..state + 1], "3", "{table}");
    }

    #[test]
    fn neighbor_detail_shows_every_typed_field() {
        let mut entry = entry("10.0.0.2", "Established");
        entry.view.detail = Some(NeighborDetail {
            description: Some("tor-1".into()),
            state: "Established".into(),
            seconds_in_state: 312,
            admin_down: false,
            passive: true,
            dynamic_range: Some("10.0.0.0/24".parse().unwrap()),
            configured_remote_asn: 65001,
            timers: Timers {
                hold_time: 90,
                keepalive: None,
                connect_retry: 5,
            },
            connection: Some(ConnectionInfo {
                local: "10.0.0.1:179".parse().unwrap(),
                remote: "10.0.0.2:40000".parse().unwrap(),
                initiator: "remote".into(),
            }),
            negotiated: Some(NegotiatedInfo {
                peer_as: 65001,
                peer_id: "10.0.0.2".parse().unwrap(),
                hold_time: 90,
                keepalive: 30,
                send_hold_time_secs: Some(180),
                ibgp: false,
                four_octet_as: true,
                families: vec!["ipv4-unicast".into()],
                route_refresh: true,
                enhanced_route_refresh: false,
                extended_message: false,
                graceful_restart: true,
                peer_restart_time: Some(120),
                peer_restarted: true,
                peer_hostname: Some("tor-1.lab".into()),
                local_capabilities: vec!["ipv4-unicast".into(), "4-octet-as".into()],
                peer_capabilities: vec!["route-refresh".into()],
            }),
            messages_sent: MessageCount {
                open: 1,
                update: 2,
                notification: 0,
                keepalive: 7,
                route_refresh: 0,
            },
            messages_received: MessageCount {
                open: 1,
                update: 4,
                notification: 0,
                keepalive: 7,
                route_refresh: 0,
            },
            prefixes: PeerCounters {
                received: 3,
                accepted: 2,
                advertised: 1,
            },
            established_count: 1,
            last_error: Some(LastError {
                reason: "hold timer expired".into(),
                unix_time: 1_700_000_000,
            }),
            bfd: Some("Up".into()),
        });
        let text = neighbor(&entry);
        for expected in [
            "BGP neighbor is 10.0.0.2, remote AS 65001, external link",
            "  Dynamic neighbor from listen range 10.0.0.0/24",
            "  BFD: Up",
            "  Local address 10.0.0.1:179, remote address 10.0.0.2:40000 (the peer connected)",
            "  Configured hold time 90 s, keepalive a third of the hold time, connect retry 5 s, passive",
            "  Peer router ID 10.0.0.2; negotiated hold time 90 s, keepalive 30 s, send hold time 180 s",
            "  Families: ipv4-unicast",
            "  Capabilities sent: ipv4-unicast, 4-octet-as",
            "  Graceful restart: negotiated, peer restart time 120 s, peer restarted",
            "  Peer hostname: tor-1.lab",
            "  Prefixes: received 3, accepted 2, advertised 1",
            "  Established 1 time(s); last error: hold timer expired",
        ] {
            assert!(
                text.lines().any(|line| line == expected),
                "{expected:?} in\n{text}"
            );
        }
        let updates: Vec<&str> = text
            .lines()
            .find(|line| line.trim_start().starts_with("Updates:"))
            .unwrap()
            .split_whitespace()
            .collect();
        assert_eq!(updates, ["Updates:", "2", "4"], "{text}");
    }

    #[test]
    fn fib_table_aligns_ipv6_routes() {
        let route = |prefix: &str, gateway: &str| InstalledRoute {
            prefix: prefix.parse().unwrap(),
            kind: "unicast".into(),
            next_hops: vec![InstalledNextHop {
                gateway: Some(gateway.parse().unwrap()),
                device: "eth1".into(),
            }],
            adopted: false,
            warning: None,
        };
        let snapshot = Snapshot {
            table: 254,
            protocol: 196,
            metric: 20,
            converged: true,
            installed: vec![
                route("10.1.0.0/24", "10.0.0.2"),
                route(
                    "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff00/120",
                    "2001:db80:aaaa:bbbb:cccc:dddd:eeee:ff01",
                ),
            ],
            failed: vec![],
            counters: Counters::default(),
        };
        let text = fib(&snapshot);
        let lines: Vec<&str> = text.lines().collect();
        let kind = lines[1].find("Kind").unwrap();
        assert_eq!(lines[2].find("unicast"), Some(kind), "{text}");
        assert_eq!(lines[3].find("unicast"), Some(kind), "{text}");
    }
}
