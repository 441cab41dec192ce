//! Configuration parsing: defaults, and every kind of error naming file, line and key.

#![allow(clippy::unwrap_used)]

use super::*;

const BASE: &str = r#"
[bgp]
asn = 64512
router_id = "10.0.0.1"
"#;

fn errors(text: &str) -> Vec<String> {
    match Config::parse(text, "test.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// The single error of `text`, checked to be on `line` and to name `key`.
fn error(text: &str, line: usize, key: &str) -> String {
    let all = match Config::parse(text, "test.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(errors) => errors,
    };
    assert_eq!(all.0.len(), 1, "{all}");
    let error = &all.0[0];
    assert_eq!(error.file, "test.toml");
    assert_eq!((error.line, error.key.as_str()), (line, key), "{error}");
    let text = error.to_string();
    assert!(text.starts_with(&format!("test.toml:{line}:")), "{text}");
    assert!(!text.contains('\n'), "{text}");
    text
}

#[test]
fn the_documented_example_parses_with_defaults() {
    let text = r#"
[bgp]
asn = 64512
router_id = "10.0.0.1"
listen = ["0.0.0.0:179", "[::]:179"]
[[bgp.neighbor]]
address = "10.0.0.2"
remote_asn = 65001
[[bgp.network]]
prefix = "10.1.0.0/24"
[control]
socket = "/run/wren/bgpd.sock"
"#;
    let config = Config::parse(text, "x").unwrap();
    let neighbor = &config.bgp.neighbors[0];
    assert_eq!(neighbor.port, 179);
    assert_eq!(neighbor.hold_time, HoldTime::DEFAULT);
    assert_eq!(neighbor.connect_retry, 5);
    assert!(config.bgp.graceful_restart.enabled);
    assert_eq!(config.bgp.graceful_restart.restart_time, 120);
    assert_eq!(config.bgp.graceful_restart.stale_routes_time, 360);
    assert_eq!(config.control.mode.bits(), 0o660);
    assert!(config.fib.enabled);
    assert_eq!(config.fib.sync, route_sync::Config::default());
    assert_eq!(
        config
            .neighbor("10.0.0.2".parse().unwrap())
            .unwrap()
            .remote_asn
            .get(),
        65001
    );
}

#[test]
fn every_key_of_every_section_parses() {
    let text = r#"
[bgp]
asn = 4200000001
router_id = "10.0.0.1"
listen = ["[::]:1179"]
max_paths = 4
cluster_id = "10.0.0.100"
[bgp.graceful_restart]
enabled = false
restart_time = 30
stale_routes_time = 60
[[bgp.neighbor]]
address = "fd00::2"
remote_asn = 65001
port = 1179
passive = true
hold_time = 9
keepalive = 3
connect_retry = 2
send_hold_time = 60
password = "secret"
ttl_security = true
families = ["ipv4", "ipv6"]
route_reflector_client = true
next_hop_self = true
max_prefixes = { limit = 100, restart = 5, warning_only = false }
import = "in"
export = "out"
description = "tor-1"
local_address = "fd00::1"
shutdown = false
[[bgp.listen_range]]
prefix = "10.1.0.0/16"
remote_asn = 64512
multihop = 2
max_neighbors = 50
[[bgp.network]]
prefix = "10.2.0.0/24"
communities = ["65000:1", "no-export"]
[control]
socket = "/tmp/x.sock"
mode = "0640"
owner = "root"
group = "wren"
read_only_group = "wren-view"
[log]
format = "json"
level = "bgpd=debug,info"
[fib]
enabled = true
table = 100
keep_on_shutdown = true
[[policy.prefix_list]]
name = "pods"
rules = [{ prefix = "10.0.0.0/8", ge = 24, le = 32 }]
[[policy.filter]]
name = "in"
[[policy.filter.rule]]
prefix_list = "pods"
action = "accept"
[[policy.filter]]
name = "out"
default = "accept"
"#;
    let config = Config::parse(text, "x").unwrap();
    assert_eq!(config.bgp.asn.get(), 4_200_000_001);
    assert!(!config.bgp.graceful_restart.enabled);
    assert_eq!(config.control.mode.bits(), 0o640);
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.fib.sync.table, 100);
    assert!(config.fib.sync.keep_on_shutdown);
    assert_eq!(config.bgp.listen_ranges[0].max_neighbors, Some(50));
    assert!(config.listen_range("10.1.2.3".parse().unwrap()).is_some());
    assert!(config.listen_range("10.3.2.3".parse().unwrap()).is_none());
}

#[test]
fn syntax_errors_name_line_and_key() {
    error(
        &format!("{BASE}[[bgp.neighbor]]\naddress = 10.0.0.2\n"),
        6,
        "bgp.neighbor[0].address",
    );
    error(&format!("{BASE}[control\nsocket = \"x\"\n"), 5, "control");
}

#[test]
fn type_errors_name_line_and_key() {
    let text = format!(
        "{BASE}[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\n\n[[bgp.neighbor]]\naddress = \"10.0.0.3\"\nremote_asn = 1\nhold_time = 2\n"
    );
    let message = error(&text, 12, "bgp.neighbor[1].hold_time");
    assert!(
        message.contains("hold time must be 0 or between 3"),
        "{message}"
    );

    error(
        &format!("{BASE}[[bgp.neighbor]]\naddress = \"10.0.0.300\"\nremote_asn = 1\n"),
        6,
        "bgp.neighbor[0].address",
    );
    error(&BASE.replace("64512", "0"), 3, "bgp.asn");
    error(
        &BASE.replace("\"10.0.0.1\"", "\"10.0.0\""),
        4,
        "bgp.router_id",
    );
    error(&format!("{BASE}[control]\nmode = 660\n"), 6, "control.mode");
    error(&format!("{BASE}[log]\nformat = \"xml\"\n"), 6, "log.format");
}

#[test]
fn unknown_and_missing_keys_name_the_key() {
    let text = error(
        &format!("{BASE}[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_as = 1\n"),
        7,
        "bgp.neighbor[0].remote_as",
    );
    assert!(text.contains("unknown field `remote_as`"), "{text}");
    let text = error(
        &format!("{BASE}[[bgp.neighbor]]\naddress = \"10.0.0.2\"\n"),
        5,
        "bgp.neighbor[0].remote_asn",
    );
    assert!(text.contains("missing field `remote_asn`"), "{text}");
    error(&format!("{BASE}colour = 1\n"), 5, "bgp.colour");
    error(&format!("{BASE}[fib]\ntabel = 100\n"), 6, "fib.tabel");
    let text = error(
        &format!("{BASE}[fib]\nmetric = 3\nprotocol = 2\n"),
        7,
        "fib.protocol",
    );
    assert!(text.contains("belongs to the kernel"), "{text}");
    error(
        &format!("{BASE}[bgp.graceful_restart]\nrestart = 5\n"),
        6,
        "bgp.graceful_restart.restart",
    );
}

#[test]
fn cross_reference_errors_name_line_and_key() {
    let neighbor = |extra: &str| {
        format!("{BASE}[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65001\n{extra}")
    };
    let text = error(
        &neighbor("import = \"nope\"\n"),
        8,
        "bgp.neighbor[0].import",
    );
    assert!(text.contains("\"nope\""), "{text}");
    error(
        &neighbor("export = \"nope\"\n"),
        8,
        "bgp.neighbor[0].export",
    );
    let text = error(
        &neighbor(&format!("password = \"{}\"\n", "k".repeat(81))),
        8,
        "bgp.neighbor[0].password",
    );
    assert!(text.contains("81 bytes"), "{text}");
    error(
        &neighbor("ttl_security = true\nmultihop = 2\n"),
        8,
        "bgp.neighbor[0].ttl_security",
    );
    error(
        &neighbor("hold_time = 9\nkeepalive = 9\n"),
        9,
        "bgp.neighbor[0].keepalive",
    );
    error(
        &neighbor("local_address = \"fd00::1\"\n"),
        8,
        "bgp.neighbor[0].local_address",
    );
    error(&neighbor("families = []\n"), 8, "bgp.neighbor[0].families");
    error(
        &neighbor("families = [\"ipv6\"]\nextended_next_hop = true\n"),
        9,
        "bgp.neighbor[0].extended_next_hop",
    );
    error(
        &neighbor("passive = true\n").replace("[bgp]\n", "[bgp]\nlisten = []\n"),
        9,
        "bgp.neighbor[0].passive",
    );
    error(
        &neighbor("hold_time = 9\nsend_hold_time = 9\n"),
        9,
        "bgp.neighbor[0].send_hold_time",
    );
    error(&BASE.replace("10.0.0.1", "0.0.0.0"), 4, "bgp.router_id");

    let duplicate = format!(
        "{}{}",
        neighbor(""),
        "[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65002\n"
    );
    let text = error(&duplicate, 9, "bgp.neighbor[1].address");
    assert!(text.contains("bgp.neighbor[0]"), "{text}");

    let ranges = format!(
        "{BASE}[[bgp.listen_range]]\nprefix = \"10.1.0.0/16\"\nremote_asn = 1\n[[bgp.listen_range]]\nprefix = \"10.1.2.0/24\"\nremote_asn = 1\n"
    );
    let text = error(&ranges, 9, "bgp.listen_range[1].prefix");
    assert!(text.contains("overlaps"), "{text}");

    let filter = format!(
        "{BASE}[[policy.filter]]\nname = \"f\"\n[[policy.filter.rule]]\nprefix_list = \"missing\"\naction = \"accept\"\n"
    );
    error(&filter, 8, "policy.filter[0].rule[0].prefix_list");
    let list = format!(
        "{BASE}[[policy.prefix_list]]\nname = \"l\"\nrules = [{{ prefix = \"10.0.0.0/8\", ge = 4 }}]\n"
    );
    error(&list, 7, "policy.prefix_list[0].rules[0]");
    error(
        &format!("{BASE}[[bgp.network]]\nprefix = \"10.1.0.1/24\"\n"),
        6,
        "bgp.network[0].prefix",
    );
    error(
        &format!("{BASE}[bgp.graceful_restart]\nrestart_time = 5000\n"),
        6,
        "bgp.graceful_restart.restart_time",
    );
    error(
        &format!("{BASE}[log]\nlevel = \"bgpd=loud\"\n"),
        6,
        "log.level",
    );
}

#[test]
fn several_problems_are_all_reported_in_file_order() {
    let text = format!(
        "{}[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nimport = \"x\"\npassword = \"\"\n",
        BASE.replace("10.0.0.1", "0.0.0.0")
    );
    let all = errors(&text);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[0].starts_with("test.toml:4:"), "{all:?}");
    assert!(all[1].starts_with("test.toml:8:"), "{all:?}");
    assert!(all[2].starts_with("test.toml:9:"), "{all:?}");
}

#[test]
fn unreadable_file_names_it() {
    let error = Config::load(std::path::Path::new("/nonexistent/bgpd.toml")).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("/nonexistent/bgpd.toml: cannot read"),
        "{text}"
    );
}

#[test]
fn every_example_config_parses() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let Ok(entries) = std::fs::read_dir(&examples) else {
        return;
    };
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // Other components' examples (IPAM, lab topologies) live there too.
        if path.extension().is_some_and(|e| e == "toml")
            && text.lines().any(|l| l.trim() == "[bgp]")
        {
            if let Err(errors) = Config::load(&path) {
                panic!("{errors}");
            }
            checked += 1;
        }
    }
    eprintln!("{checked} example configs parse");
}

#[test]
fn link_local_neighbors_need_their_interface() {
    let text = format!(
        "{BASE}[[bgp.neighbor]]\naddress = \"fe80::2\"\nremote_asn = 65001\ninterface = \"eth1\"\n"
    );
    let config = Config::parse(&text, "test.toml").unwrap();
    assert_eq!(
        config.bgp.neighbors[0]
            .interface
            .as_ref()
            .map(|i| i.as_str()),
        Some("eth1")
    );
    error(
        &format!("{BASE}[[bgp.neighbor]]\naddress = \"fe80::2\"\nremote_asn = 65001\n"),
        6,
        "bgp.neighbor[0].address",
    );
    error(
        &format!(
            "{BASE}[[bgp.neighbor]]\naddress = \"fd00::2\"\nremote_asn = 65001\ninterface = \"eth1\"\n"
        ),
        8,
        "bgp.neighbor[0].interface",
    );
    let text = error(
        &format!(
            "{BASE}[[bgp.neighbor]]\naddress = \"fe80::2\"\nremote_asn = 65001\ninterface = \"a/b\"\n"
        ),
        8,
        "bgp.neighbor[0].interface",
    );
    assert!(text.contains("not an interface name"), "{text}");
}

#[test]
fn listen_ranges_refuse_the_keys_of_outgoing_sessions() {
    let range = |extra: &str| {
        format!("{BASE}[[bgp.listen_range]]\nprefix = \"10.1.0.0/16\"\nremote_asn = 64512\n{extra}")
    };
    for key in session::NEIGHBOR_ONLY {
        let value = match key {
            "port" | "connect_retry" => "9",
            "passive" | "shutdown" => "true",
            "local_address" => "\"10.0.0.1\"",
            _ => "\"eth0\"",
        };
        let text = error(
            &range(&format!("{key} = {value}\n")),
            8,
            &format!("bgp.listen_range[0].{key}"),
        );
        assert!(text.contains("applies to [[bgp.neighbor]] only"), "{text}");
    }
    // The session options a range shares with neighbors are checked there too.
    error(
        &range("hold_time = 9\nsend_hold_time = 9\n"),
        9,
        "bgp.listen_range[0].send_hold_time",
    );
    error(
        &range("extended_next_hop = true\n").replace("10.1.0.0/16", "fd00::/64"),
        8,
        "bgp.listen_range[0].extended_next_hop",
    );
    let config = Config::parse(&range("send_hold_time = 600\n"), "x").unwrap();
    assert_eq!(config.bgp.listen_ranges[0].send_hold_time, Some(600));
}

#[test]
fn each_section_knows_its_own_keys() {
    let text = error(
        &format!("{BASE}[[bgp.neighbor]]\naddres = \"10.0.0.2\"\nremote_asn = 1\n"),
        6,
        "bgp.neighbor[0].addres",
    );
    assert!(
        text.contains("unknown field `addres`, expected one of `address`, `remote_asn`"),
        "{text}"
    );
    let text = error(
        &format!(
            "{BASE}[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 1\nmax_neighbors = 2\n"
        ),
        8,
        "bgp.neighbor[0].max_neighbors",
    );
    assert!(text.contains("unknown field `max_neighbors`"), "{text}");
    error(
        &format!(
            "{BASE}[[bgp.listen_range]]\nprefix = \"10.1.0.0/16\"\naddress = \"10.1.0.1\"\nremote_asn = 1\n"
        ),
        7,
        "bgp.listen_range[0].address",
    );
    let text = error(
        &format!("{BASE}[[bgp.listen_range]]\nremote_asn = 1\n"),
        5,
        "bgp.listen_range[0].prefix",
    );
    assert!(text.contains("missing field `prefix`"), "{text}");
    error(
        &format!("{BASE}[[bgp.listen_range]]\nprefix = \"10.1.0.0/33\"\nremote_asn = 1\n"),
        6,
        "bgp.listen_range[0].prefix",
    );
    error(
        &format!(
            "{BASE}[[bgp.listen_range]]\nprefix = \"10.1.0.0/16\"\nremote_asn = 1\nmax_neighbors = -1\n"
        ),
        8,
        "bgp.listen_range[0].max_neighbors",
    );
    // Inline tables are sections too.
    let text = "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\nneighbor = [{ remote_asn = 7, address = \"10.0.0.7\", hold_time = 30 }]\n";
    let config = Config::parse(text, "x").unwrap();
    assert_eq!(
        config.bgp.neighbors[0].address,
        "10.0.0.7".parse::<IpAddr>().unwrap()
    );
    assert_eq!(config.bgp.neighbors[0].hold_time.seconds(), 30);
}

#[test]
fn max_prefixes_is_one_limit_or_one_per_family() {
    let neighbor = |value: &str| {
        format!(
            "{BASE}[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65001\nmax_prefixes = {value}\n"
        )
    };
    let limits = |value: &str| {
        let config = Config::parse(&neighbor(value), "x").unwrap();
        let max = config.bgp.neighbors[0].max_prefixes.unwrap();
        (
            max.limit(0),
            max.limit(1),
            max.restart_secs,
            max.warning_only,
        )
    };
    assert_eq!(limits("1000"), (Some(1000), Some(1000), 60, false));
    assert_eq!(
        limits("{ limit = 5, restart = 9, warning_only = true }"),
        (Some(5), Some(5), 9, true)
    );
    assert_eq!(
        limits("{ ipv4 = 1000, ipv6 = 500 }"),
        (Some(1000), Some(500), 60, false)
    );
    assert_eq!(limits("{ ipv6 = 500 }"), (None, Some(500), 60, false));
    assert_eq!(
        limits("{ limit = 7, ipv4 = 9 }"),
        (Some(9), Some(7), 60, false)
    );
    for bad in [
        "{ restart = 5 }",
        "{ ipv4 = 0 }",
        "0",
        "{ ipv5 = 1 }",
        "\"many\"",
    ] {
        let text = error(&neighbor(bad), 8, "bgp.neighbor[0].max_prefixes");
        assert!(text.contains("max_prefixes"), "{text}");
    }
}

#[test]
fn the_metrics_listener_comes_from_the_environment_only_when_the_file_names_none() {
    let without = Config::parse(BASE, "test.toml").unwrap();
    assert!(without.metrics.is_none());
    let config = without
        .clone()
        .with_metrics_listen(BASE, "test.toml", Some("192.0.2.7:9180"))
        .unwrap();
    assert_eq!(
        config.metrics.unwrap().listen,
        "192.0.2.7:9180".parse().unwrap()
    );
    // Empty or absent: no listener.
    let config = without
        .clone()
        .with_metrics_listen(BASE, "test.toml", Some(""))
        .unwrap();
    assert!(config.metrics.is_none());
    // The file wins.
    let with = format!("{BASE}\n[metrics]\nlisten = \"127.0.0.1:9100\"\n");
    let config = Config::parse(&with, "test.toml")
        .unwrap()
        .with_metrics_listen(&with, "test.toml", Some("192.0.2.7:9180"))
        .unwrap();
    assert_eq!(config.metrics.unwrap().listen.port(), 9100);
    // Not an address and port: one line naming the variable.
    let bad = without
        .with_metrics_listen(BASE, "test.toml", Some("192.0.2.7"))
        .unwrap_err();
    assert_eq!(bad.0.len(), 1);
    let text = bad.0[0].to_string();
    assert!(text.contains("WREN_METRICS_LISTEN=\"192.0.2.7\""), "{text}");
}

#[test]
fn the_router_id_comes_from_the_environment_only_when_the_file_names_none() {
    let without = "[bgp]\nasn = 64512\n";
    let config = Config::parse_with(without, "test.toml", Some("192.0.2.7")).unwrap();
    assert_eq!(config.bgp.router_id, Ipv4Addr::new(192, 0, 2, 7));
    // The file wins.
    let config = Config::parse_with(BASE, "test.toml", Some("192.0.2.7")).unwrap();
    assert_eq!(config.bgp.router_id, Ipv4Addr::new(10, 0, 0, 1));
    // Neither: one error naming both places.
    let all = errors(without);
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(all[0].contains("router_id is missing") && all[0].contains(ROUTER_ID_ENV));
    // Not an IPv4 address (an IPv6-only node's hostIP): one line naming the variable.
    let bad = Config::parse_with(without, "test.toml", Some("fd00::1")).unwrap_err();
    assert_eq!(bad.0.len(), 1);
    let text = bad.0[0].to_string();
    assert!(text.contains("WREN_ROUTER_ID=\"fd00::1\""), "{text}");
}

#[test]
fn the_collector_pod_grace_defaults_to_five_minutes() {
    let config = Config::parse(&format!("{BASE}[kubernetes]\n"), "x").unwrap();
    assert_eq!(config.kubernetes.unwrap().collector_pod_grace, 300);
    let text = format!("{BASE}[kubernetes]\ncollector_pod_grace = 30\n");
    let config = Config::parse(&text, "x").unwrap();
    assert_eq!(config.kubernetes.unwrap().collector_pod_grace, 30);
    error(
        &format!("{BASE}[kubernetes]\ncollector_pod_grace = \"5m\"\n"),
        6,
        "kubernetes.collector_pod_grace",
    );
}

#[test]
fn bfd_is_true_false_or_a_table_of_timers() {
    let neighbor = |bfd: &str| {
        format!("{BASE}\n[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65001\n{bfd}\n")
    };
    let bfd_of = |bfd: &str| {
        Config::parse(&neighbor(bfd), "test.toml")
            .unwrap()
            .bgp
            .neighbors[0]
            .session
            .bfd
    };
    let frr_defaults = bfd::BfdOptions {
        min_tx: 300,
        min_rx: 300,
        multiplier: 3,
        on_down: bfd::OnDown::Reset,
    };
    assert_eq!(bfd_of(""), None);
    assert_eq!(bfd_of("bfd = false"), None);
    assert_eq!(bfd_of("bfd = true"), Some(frr_defaults));
    assert_eq!(
        bfd_of("bfd = { min_tx = 100, multiplier = 5, on_down = \"reset\" }"),
        Some(bfd::BfdOptions {
            min_tx: 100,
            multiplier: 5,
            ..frr_defaults
        })
    );
    assert_eq!(
        frr_defaults.session_config(),
        ::bfd::SessionConfig::default()
    );
    // A listen range takes it too.
    let range = format!(
        "{BASE}\n[[bgp.listen_range]]\nprefix = \"10.1.0.0/16\"\nremote_asn = 65001\nbfd = true\n"
    );
    assert_eq!(
        Config::parse(&range, "test.toml")
            .unwrap()
            .bgp
            .listen_ranges[0]
            .session
            .bfd,
        Some(frr_defaults)
    );

    let text = error(
        &neighbor("bfd = { min_tx = 5 }"),
        9,
        "bgp.neighbor[0].bfd.min_tx",
    );
    assert!(text.contains("between 10 and 60000 milliseconds"), "{text}");
    let text = error(
        &neighbor("bfd = { multiplier = 0 }"),
        9,
        "bgp.neighbor[0].bfd.multiplier",
    );
    assert!(text.contains("between 1 and 255"), "{text}");
    assert_eq!(
        bfd_of("bfd = { on_down = \"graceful\" }"),
        Some(bfd::BfdOptions {
            on_down: bfd::OnDown::Graceful,
            ..frr_defaults
        })
    );
    // graceful keeps routes through graceful restart: not with it disabled.
    let text = error(
        &format!(
            "{BASE}[bgp.graceful_restart]\nenabled = false\n{}",
            neighbor("bfd = { on_down = \"graceful\" }").trim_start_matches(BASE)
        ),
        11,
        "bgp.neighbor[0].bfd.on_down",
    );
    assert!(text.contains("[bgp.graceful_restart] disables"), "{text}");
    for (bad, says) in [
        ("bfd = { on_down = \"gentle\" }", "gentle"),
        ("bfd = { min_txx = 300 }", "min_txx"),
        ("bfd = \"yes\"", "true, false or a table"),
        ("bfd = { multiplier = 300 }", "300"),
    ] {
        let all = errors(&neighbor(bad));
        assert_eq!(all.len(), 1, "{all:?}");
        assert!(all[0].starts_with("test.toml:9:"), "{bad}: {all:?}");
        assert!(all[0].contains(says), "{bad}: {all:?}");
    }
}

#[test]
fn node_mesh_bfd_is_a_bfd_key_for_the_node_mesh() {
    let mesh = |mesh: &str, bfd: &str| {
        format!("[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n{mesh}{bfd}\n[ipam]\nnode = \"n\"\n")
    };
    let parsed = Config::parse(&mesh("", "node_mesh_bfd = true"), "test.toml").unwrap();
    assert_eq!(parsed.bgp.node_mesh_bfd, Some(bfd::BfdOptions::default()));
    let parsed = Config::parse(
        &mesh(
            "",
            "node_mesh_bfd = { min_rx = 500, on_down = \"graceful\" }",
        ),
        "test.toml",
    )
    .unwrap();
    assert_eq!(
        parsed.bgp.node_mesh_bfd,
        Some(bfd::BfdOptions {
            min_rx: 500,
            on_down: bfd::OnDown::Graceful,
            ..Default::default()
        })
    );
    assert_eq!(
        Config::parse(&mesh("", ""), "test.toml")
            .unwrap()
            .bgp
            .node_mesh_bfd,
        None
    );
    let text = error(
        &mesh("", "node_mesh_bfd = { multiplier = 0 }"),
        4,
        "bgp.node_mesh_bfd.multiplier",
    );
    assert!(text.contains("between 1 and 255"), "{text}");
    // Not accepted and ignored: without the node mesh it is refused.
    let text = error(
        &mesh("node_mesh = false\n", "node_mesh_bfd = true"),
        5,
        "bgp.node_mesh_bfd",
    );
    assert!(text.contains("node mesh, which is off"), "{text}");
    let text = error(
        "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\nnode_mesh_bfd = true\n",
        4,
        "bgp.node_mesh_bfd",
    );
    assert!(text.contains("node mesh, which is off"), "{text}");
}
