//! The tables bgpctl prints, from the same values `--json` prints as they are:
//! `show neighbors` like FRR's `show bgp summary`, `show neighbor` like FRR's
//! `show bgp neighbor`, `show routes` like `birdc show route`.

use std::fmt::Write;

use serde_json::Value;

use super::protocol::NeighborEntry;
use crate::session::status::up_down;
use crate::supervisor::ReloadSummary;
use crate::view::RouteView;

/// `Neighbor V AS MsgRcvd MsgSent Up/Down State/PfxRcd PfxSnt Desc`.
pub fn neighbors(entries: &[NeighborEntry]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<25} {:>1} {:>10} {:>9} {:>9} {:>9} {:<12} {:>8} Desc",
        "Neighbor", "V", "AS", "MsgRcvd", "MsgSent", "Up/Down", "State/PfxRcd", "PfxSnt"
    );
    for entry in entries {
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
        let _ = writeln!(
            out,
            "{:<25} {:>1} {:>10} {:>9} {:>9} {:>9} {:<12} {:>8} {}",
            view.address.to_string(),
            4,
            view.remote_asn,
            entry.messages_received,
            entry.messages_sent,
            up_down,
            state,
            view.prefixes_advertised,
            entry.description.as_deref().unwrap_or("")
        );
    }
    let _ = write!(out, "\nTotal number of neighbors {}", entries.len());
    out
}

/// One neighbor in detail.
pub fn neighbor(entry: &NeighborEntry) -> String {
    let view = &entry.view;
    let empty = Value::Null;
    let detail = view.detail.as_ref().unwrap_or(&empty);
    let negotiated = &detail["negotiated"];
    let mut out = String::new();
    let link = match negotiated["ibgp"].as_bool() {
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
    if let Some(range) = detail["dynamic_range"].as_str() {
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
    if let Some(connection) = detail["connection"].as_object() {
        let opener = match connection.get("initiator").and_then(Value::as_str) {
            Some("local") => "we connected",
            Some("remote") => "the peer connected",
            _ => "",
        };
        let _ = writeln!(
            out,
            "  Local address {}, remote address {} ({opener})",
            text(&connection["local"]),
            text(&connection["remote"])
        );
    }
    let timers = &detail["timers"];
    let _ = writeln!(
        out,
        "  Configured hold time {} s, keepalive {}, connect retry {} s{}",
        text(&timers["hold_time"]),
        timers["keepalive"]
            .as_u64()
            .map_or("a third of the hold time".to_owned(), |k| format!("{k} s")),
        text(&timers["connect_retry"]),
        if detail["passive"].as_bool() == Some(true) {
            ", passive"
        } else {
            ""
        }
    );
    if negotiated.is_object() {
        let _ = writeln!(
            out,
            "  Peer router ID {}; negotiated hold time {} s, keepalive {} s{}",
            text(&negotiated["peer_id"]),
            text(&negotiated["hold_time"]),
            text(&negotiated["keepalive"]),
            negotiated["send_hold_time_secs"]
                .as_u64()
                .map_or(String::new(), |s| format!(", send hold time {s} s"))
        );
        let _ = writeln!(out, "  Families: {}", list(&negotiated["families"]));
        let _ = writeln!(
            out,
            "  Capabilities sent: {}",
            list(&negotiated["local_capabilities"])
        );
        let _ = writeln!(
            out,
            "  Capabilities received: {}",
            list(&negotiated["peer_capabilities"])
        );
        let graceful = if negotiated["graceful_restart"].as_bool() == Some(true) {
            format!(
                "negotiated, peer restart time {} s{}",
                text(&negotiated["peer_restart_time"]),
                if negotiated["peer_restarted"].as_bool() == Some(true) {
                    ", peer restarted"
                } else {
                    ""
                }
            )
        } else {
            "not negotiated".to_owned()
        };
        let _ = writeln!(out, "  Graceful restart: {graceful}");
        if let Some(host) = negotiated["peer_hostname"].as_str() {
            let _ = writeln!(out, "  Peer hostname: {host}");
        }
    }
    let sent = &detail["messages_sent"];
    let received = &detail["messages_received"];
    let _ = writeln!(out, "  Message statistics:");
    let _ = writeln!(out, "    {:<16} {:>10} {:>10}", "", "Sent", "Rcvd");
    for (name, key) in [
        ("Opens:", "open"),
        ("Notifications:", "notification"),
        ("Updates:", "update"),
        ("Keepalives:", "keepalive"),
        ("Route Refresh:", "route_refresh"),
    ] {
        let _ = writeln!(
            out,
            "    {name:<16} {:>10} {:>10}",
            text(&sent[key]),
            text(&received[key])
        );
    }
    let _ = writeln!(
        out,
        "    {:<16} {:>10} {:>10}",
        "Total:", entry.messages_sent, entry.messages_received
    );
    let prefixes = &detail["prefixes"];
    let _ = writeln!(
        out,
        "  Prefixes: received {}, accepted {}, advertised {}",
        text(&prefixes["received"]),
        text(&prefixes["accepted"]),
        text(&prefixes["advertised"])
    );
    let _ = write!(
        out,
        "  Established {} time(s); last error: {}",
        entry.established_count,
        detail["last_error"]["reason"].as_str().unwrap_or("none")
    );
    out
}

/// Routes like `birdc show route`: the prefix once, then one line per path, the
/// best marked `*`: `10.58.3.0/24  via 10.17.8.30 [10.17.8.30] * (100) [AS65001i]`.
pub fn routes(routes: &[RouteView]) -> String {
    let mut out = String::new();
    let width = routes
        .iter()
        .map(|route| route.prefix.to_string().len())
        .max()
        .unwrap_or(0)
        .max(18);
    let mut previous = None;
    for route in routes {
        let prefix = route.prefix.to_string();
        let shown = if previous.as_ref() == Some(&prefix) {
            ""
        } else {
            prefix.as_str()
        };
        let via = if route.next_hops.is_empty() {
            "local".to_owned()
        } else {
            let hops: Vec<String> = route.next_hops.iter().map(ToString::to_string).collect();
            format!("via {}", hops.join(", "))
        };
        let best = if route.best { " *" } else { "" };
        let preference = route
            .local_pref
            .map_or(String::new(), |pref| format!(" ({pref})"));
        let origin = match route.origin.as_str() {
            "igp" => "i",
            "egp" => "e",
            _ => "?",
        };
        let origin_as = route
            .as_path
            .last()
            .map_or(String::new(), |asn| format!("AS{asn}"));
        let _ = writeln!(
            out,
            "{shown:<width$} {via} [{}]{best}{preference} [{origin_as}{origin}]",
            route.source
        );
        previous = Some(prefix);
    }
    if routes.is_empty() {
        out.push_str("No routes\n");
    }
    let prefixes = {
        let mut all: Vec<_> = routes.iter().map(|r| r.prefix).collect();
        all.dedup();
        all.len()
    };
    let _ = write!(out, "{prefixes} prefixes, {} paths", routes.len());
    out
}

/// What a reload did.
pub fn reload(summary: &ReloadSummary) -> String {
    let join = |list: &[std::net::IpAddr]| {
        if list.is_empty() {
            "none".to_owned()
        } else {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    format!(
        "configuration reloaded: added {}; removed {}; restarted {}; updated in place {}; {} unchanged",
        join(&summary.added),
        join(&summary.removed),
        join(&summary.reset),
        join(&summary.updated),
        summary.unchanged
    )
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::view::NeighborView;

    fn entry(state: &str) -> NeighborEntry {
        NeighborEntry {
            view: NeighborView {
                address: "10.0.0.2".parse().unwrap(),
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
    fn neighbor_summary_reads_like_frr() {
        let table = neighbors(&[entry("Established"), entry("Active")]);
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
    fn routes_read_like_bird() {
        let route = |next_hop: &str, best: bool| RouteView {
            prefix: "10.58.3.0/24".parse().unwrap(),
            next_hops: vec![next_hop.parse().unwrap()],
            as_path: vec![65002, 65001],
            origin: "igp".into(),
            local_pref: Some(100),
            med: None,
            communities: vec![],
            best,
            source: next_hop.into(),
        };
        let text = routes(&[route("10.17.8.30", true), route("10.17.8.31", false)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "10.58.3.0/24       via 10.17.8.30 [10.17.8.30] * (100) [AS65001i]"
        );
        assert_eq!(
            lines[1],
            "                   via 10.17.8.31 [10.17.8.31] (100) [AS65001i]"
        );
        assert_eq!(lines[2], "1 prefixes, 2 paths");
    }
}
