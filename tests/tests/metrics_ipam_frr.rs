//! bgpd's metrics listener with an FRR peer, `[ipam]` on a real etcd and the FIB on
//! the namespace's kernel:
//!
//! - `/readyz` says 503 (not converged) until FRR has sent End-of-RIB, then 200;
//!   503 again while etcd is killed, with the datastore named in the body, and 200
//!   once it is back; `wren_ipam_datastore_up` follows; `/healthz` stays 200;
//! - the FIB series equal `bgpctl show fib --json` (routes per family and kind,
//!   refused routes, operations, batches, convergence) with unicast routes from FRR
//!   and the IPAM blocks' blackholes in both families;
//! - the IPAM series equal `bgpctl show ipam --json` (this node's blocks and
//!   addresses in use per pool, after `wren-ipam` assigned some);
//! - the datastore operation counters only grow, through the outage too;
//! - the text scrape passes `promtool check metrics`, the OpenMetrics one the
//!   OpenMetrics parser of Python's `prometheus_client`, ending in `# EOF`;
//! - every metric name of the Grafana dashboard (`deploy/grafana/wren.json`) is in
//!   the scrape, and every `wren_` family of the scrape is on the dashboard.
//!
//! Needs root, FRR, etcd, the CNI plugins, promtool and python3-prometheus-client
//! (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;

use ipnet::IpNet;
use lab::cni::wren_ipam_config;
use lab::fixture::{Wren, frr_config, wren_binary, wren_config};
use lab::metrics::{self, ACCEPT_OPENMETRICS, Answer, Samples};
use lab::topology::Pod;
use lab::{Etcd, Frr, Netns, TIMEOUT};
use serde_json::Value;
use wren_tests::ipam_node::{forwarding, ipam_section};

const NODE: &str = "node-metrics";
const POOL4: &str = "10.244.0.0/16";
const POOL6: &str = "fd00:244::/56";

struct Daemon<'a> {
    wren: &'a Wren,
    netns: &'a Netns,
    listen: SocketAddr,
}

impl Daemon<'_> {
    fn get(&self, path: &str, accept: Option<&str>) -> Answer {
        metrics::get(self.netns, self.listen, path, accept)
            .unwrap_or_else(|error| panic!("{error}\n{}", self.wren.daemon.log_tail(30)))
    }

    fn scrape(&self) -> Samples {
        let answer = self.get("/metrics", None);
        assert_eq!(answer.status, 200, "{}", answer.body);
        Samples::parse(&answer.body).unwrap()
    }

    /// Polls `/readyz` until its status is `status` with `text` in the body.
    fn wait_ready(&self, status: u16, text: &str) -> String {
        self.wren
            .daemon
            .wait_for(
                TIMEOUT,
                &format!("/readyz {status} saying {text:?}"),
                || {
                    let answer = self.get("/readyz", None);
                    if answer.status == status && answer.body.contains(text) {
                        Ok(answer.body)
                    } else {
                        Err(format!("{} {:?}", answer.status, answer.body))
                    }
                },
            )
            .unwrap()
    }

    /// Polls until `check` passes on a scrape and the JSON of `bgpctl ARGS` taken
    /// right before and after it (the same state).
    fn wait_agree(
        &self,
        what: &str,
        args: &[&str],
        check: impl Fn(&Samples, &Value) -> Result<(), String>,
    ) {
        self.wren
            .daemon
            .wait_for(TIMEOUT, what, || {
                let before = self.wren.bgpctl_json(args);
                let samples = self.scrape();
                let after = self.wren.bgpctl_json(args);
                if before != after {
                    return Err(String::from("changed during the scrape"));
                }
                check(&samples, &after)
            })
            .unwrap();
    }
}

/// Every `wren_ipam_datastore_operations_total` series: (op, result) -> value.
fn operations(samples: &Samples) -> BTreeMap<(String, String), f64> {
    samples
        .matching("wren_ipam_datastore_operations_total", &[])
        .map(|(_, labels, value)| ((labels["op"].clone(), labels["result"].clone()), *value))
        .collect()
}

fn grew_only(before: &BTreeMap<(String, String), f64>, after: &BTreeMap<(String, String), f64>) {
    for (key, old) in before {
        let new = after.get(key).copied().unwrap_or_default();
        assert!(new >= *old, "{key:?} went from {old} to {new}");
    }
}

/// The FIB series against `show fib --json`.
fn fib_agrees(samples: &Samples, fib: &Value) -> Result<(), String> {
    let mut listed: BTreeMap<(String, String), f64> = BTreeMap::new();
    for route in fib["installed"].as_array().unwrap() {
        let prefix: IpNet = route["prefix"].as_str().unwrap().parse().unwrap();
        let family = if prefix.addr().is_ipv6() {
            "ipv6-unicast"
        } else {
            "ipv4-unicast"
        };
        *listed
            .entry((
                family.to_owned(),
                route["kind"].as_str().unwrap().to_owned(),
            ))
            .or_default() += 1.0;
    }
    let counted: BTreeMap<(String, String), f64> = samples
        .matching("wren_fib_routes", &[])
        .map(|(_, labels, value)| ((labels["family"].clone(), labels["kind"].clone()), *value))
        .collect();
    if counted != listed {
        return Err(format!("routes: scraped {counted:?}, listed {listed:?}"));
    }
    let counters = &fib["counters"];
    let pairs = [
        ("add", "added"),
        ("replace", "replaced"),
        ("delete", "deleted"),
        ("refused", "refused"),
    ];
    for (op, field) in pairs {
        let scraped = samples.value("wren_fib_operations_total", &[("op", op)]);
        if scraped != counters[field].as_f64() {
            return Err(format!("{op}: scraped {scraped:?}, counters {counters}"));
        }
    }
    let batches = samples.value("wren_fib_batch_duration_seconds_count", &[]);
    if batches != counters["batches"].as_f64() {
        return Err(format!("batches: scraped {batches:?}, counters {counters}"));
    }
    let failed = fib["failed"].as_array().unwrap().len() as f64;
    if samples.value("wren_fib_refused_routes", &[]) != Some(failed) {
        return Err(format!("refused routes: listed {failed}"));
    }
    let converged = f64::from(u8::from(fib["converged"].as_bool().unwrap()));
    if samples.value("wren_fib_converged", &[]) != Some(converged) {
        return Err(format!("converged: listed {converged}"));
    }
    Ok(())
}

/// The IPAM series against `show ipam --json`: this node's blocks and addresses in
/// use, per pool.
fn ipam_agrees(samples: &Samples, ipam: &Value) -> Result<(), String> {
    for pool in [POOL4, POOL6] {
        let cidr: IpNet = pool.parse().unwrap();
        let mine: Vec<&Value> = ipam["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["node"] == NODE)
            .filter(|b| cidr.contains(&b["cidr"].as_str().unwrap().parse::<IpNet>().unwrap()))
            .collect();
        let in_use: f64 = mine.iter().map(|b| b["in_use"].as_f64().unwrap()).sum();
        let labels = [("pool", pool)];
        let scraped = (
            samples.value("wren_ipam_blocks", &labels),
            samples.value("wren_ipam_addresses_in_use", &labels),
            samples.value("wren_ipam_addresses_borrowed", &labels),
        );
        if scraped != (Some(mine.len() as f64), Some(in_use), Some(0.0)) {
            return Err(format!(
                "{pool}: scraped (blocks, in use, borrowed) {scraped:?}, listed {} blocks, {in_use} in use",
                mine.len()
            ));
        }
    }
    Ok(())
}

/// A sample's or an expression's metric family: histogram series named by theirs.
fn family_of(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Every `expr` (panel targets) and `query` (template variables) string in `value`.
fn expressions(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr" | "definition", Value::String(text)) => found.push(text.clone()),
                    _ => expressions(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| expressions(item, found)),
        _ => {}
    }
}

/// The metric families deploy/grafana/wren.json's expressions use.
fn dashboard_families() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/wren.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dashboard["schemaVersion"], 39);
    let mut found = Vec::new();
    expressions(&dashboard, &mut found);
    let mut families = BTreeSet::new();
    for expression in &found {
        for token in
            expression.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        {
            if token.starts_with("wren_") || token.starts_with("process_") {
                families.insert(family_of(token).to_owned());
            }
        }
    }
    families
}

/// Every name the dashboard uses is in the text scrape (as a sample, or as a
/// family without samples yet, such as NOTIFICATIONs before any), and every
/// `wren_` family of the scrape is on the dashboard.
fn dashboard_matches(text: &str) {
    let samples = Samples::parse(text).unwrap();
    let mut scraped: BTreeSet<String> = samples
        .0
        .iter()
        .map(|(name, _, _)| family_of(name).to_owned())
        .collect();
    scraped.extend(text.lines().filter_map(|line| {
        let name = line.strip_prefix("# TYPE ")?.split(' ').next()?;
        Some(family_of(name).to_owned())
    }));
    let used = dashboard_families();
    let missing: Vec<&String> = used.difference(&scraped).collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses names no scrape has: {missing:?}"
    );
    let unused: Vec<&String> = scraped
        .iter()
        .filter(|name| name.starts_with("wren_") && !used.contains(*name))
        .collect();
    assert!(unused.is_empty(), "the dashboard leaves out {unused:?}");
}

#[test]
fn metrics_follow_the_fib_and_ipam_and_readyz_follows_etcd() {
    let Some(_ready) = lab::require!(Root, Frr, Etcd, Cni, Promtool, OpenMetricsParser) else {
        return;
    };
    wren_binary("wren-ipam");
    let net = lab::fixture::pair("mfi", "10.85.0", "fd00:85");
    forwarding(&net.b);
    net.b.lo_up().unwrap();
    let mut etcd = Etcd::in_netns(&net.b, "127.0.0.1".parse().unwrap()).unwrap();
    let url = etcd.endpoint().replace("http://", "etcd://");
    let socket = Wren::socket_path(&net.b);
    let listen: SocketAddr = "10.85.0.2:9180".parse().unwrap();
    // A restart time longer than the test: convergence waits for FRR's End-of-RIB.
    let config = wren_config(
        "10.85.0.2",
        &socket,
        true,
        &format!(
            "[bgp.graceful_restart]\nrestart_time = 600\n\n\
             [[bgp.neighbor]]\naddress = \"10.85.0.1\"\nremote_asn = 65001\nfamilies = [\"ipv4\", \"ipv6\"]\n\n{}",
            ipam_section(
                NODE,
                &url,
                &["10.85.0.2"],
                &format!(
                    "[[ipam.pool]]\ncidr = \"{POOL4}\"\nblock_size = 30\n\
                     [[ipam.pool]]\ncidr = \"{POOL6}\"\n"
                ),
            )
        ),
    );
    // The listener from the environment, as the DaemonSet gives it.
    let wren = Wren::start_with_env(
        &net.b,
        &config,
        &[("WREN_METRICS_LISTEN", &listen.to_string())],
    );
    let daemon = Daemon {
        wren: &wren,
        netns: &net.b,
        listen,
    };

    // Before FRR: live, not ready, not converged.
    assert_eq!(daemon.get("/healthz", None).status, 200);
    let body = daemon.wait_ready(503, "converged: no");
    assert!(body.contains("ready: no"), "{body}");
    let samples = daemon.scrape();
    assert_eq!(samples.value("wren_fib_converged", &[]), Some(0.0));

    let frr = Frr::start(
        &net.a,
        &frr_config(
            65001,
            "10.85.0.1",
            " neighbor 10.85.0.2 remote-as 64512",
            "  network 10.90.1.0/24\n  network 10.90.2.0/24\n  network 10.90.3.0/24",
            "  neighbor 10.85.0.2 activate\n  network fd00:90:1::/64\n  network fd00:90:2::/64",
            &[],
        ),
    )
    .unwrap();
    frr.wait_established(TIMEOUT, &["10.85.0.2"]).unwrap();
    let body = daemon.wait_ready(200, "ready: yes");
    assert!(body.contains("datastore: reachable"), "{body}");

    // Pods: addresses from the node's /30 block (with the gateway, it is full).
    let conf = wren_ipam_config(&url, NODE, Some(&socket));
    let pods: Vec<Pod> = (0..3)
        .map(|_| Pod::attach(&net.b, &conf).unwrap())
        .collect();

    // Unicast routes from FRR and blackholes of the blocks, in both families.
    daemon.wait_agree(
        "the FIB series to equal show fib",
        &["show", "fib"],
        |samples, fib| {
            fib_agrees(samples, fib)?;
            for (family, kind, least) in [
                ("ipv4-unicast", "unicast", 3.0),
                ("ipv6-unicast", "unicast", 2.0),
                ("ipv4-unicast", "blackhole", 1.0),
                ("ipv6-unicast", "blackhole", 1.0),
            ] {
                let routes = samples
                    .value("wren_fib_routes", &[("family", family), ("kind", kind)])
                    .unwrap_or_default();
                if routes < least {
                    return Err(format!("{family} {kind}: {routes} routes"));
                }
            }
            Ok(())
        },
    );
    daemon.wait_agree(
        "the IPAM series to equal show ipam",
        &["show", "ipam"],
        |samples, ipam| {
            ipam_agrees(samples, ipam)?;
            // The gateway and the three pods.
            let in_use = samples.sum("wren_ipam_addresses_in_use", &[]);
            if in_use < 4.0 {
                return Err(format!("{in_use} addresses in use"));
            }
            Ok(())
        },
    );

    // Both formats pass the outside checkers.
    let text = daemon.get("/metrics", None);
    let content_type = text.content_type().unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    metrics::promtool_check(&text.body).unwrap();
    let open = daemon.get("/metrics", Some(ACCEPT_OPENMETRICS));
    let content_type = open.content_type().unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(open.body.ends_with("# EOF\n"), "no # EOF at the end");
    let parsed = metrics::parse_openmetrics(&open.body).unwrap();
    for family in [
        "wren_fib_routes",
        "wren_fib_operations",
        "wren_fib_batch_duration_seconds",
        "wren_ipam_blocks",
        "wren_ipam_operation_duration_seconds",
    ] {
        assert!(
            parsed.iter().any(|sample| sample.family == family),
            "no {family} in the OpenMetrics answer"
        );
    }

    let samples = daemon.scrape();
    assert_eq!(samples.value("wren_ipam_datastore_up", &[]), Some(1.0));
    // A daemon with an FRR peer, IPAM and kernel routes has every family of the
    // dashboard.
    dashboard_matches(&text.body);
    let before = operations(&samples);
    for (op, result) in [
        ("connect", "ok"),
        ("read", "ok"),
        ("create", "ok"),
        ("watch", "ok"),
        ("revision", "ok"),
    ] {
        let value = before.get(&(op.to_owned(), result.to_owned())).copied();
        assert!(value.is_some_and(|v| v > 0.0), "{op} {result}: {value:?}");
    }
    let read = samples
        .value(
            "wren_ipam_operation_duration_seconds_count",
            &[("op", "read")],
        )
        .unwrap();
    assert!(read > 0.0);

    // etcd killed: not ready, the datastore named; routes stay.
    etcd.kill().unwrap();
    let body = daemon.wait_ready(503, "datastore: unreachable");
    assert!(
        body.contains("127.0.0.1"),
        "the datastore is not named: {body}"
    );
    assert!(body.contains("converged: yes"), "{body}");
    assert_eq!(daemon.get("/healthz", None).status, 200);
    // The IPAM task's attempts to connect again fail, and are counted.
    let down = wren
        .daemon
        .wait_for(TIMEOUT, "a failed connection to be counted", || {
            let samples = daemon.scrape();
            match samples.value(
                "wren_ipam_datastore_operations_total",
                &[("op", "connect"), ("result", "error")],
            ) {
                Some(failed) if failed > 0.0 => Ok(samples),
                other => Err(format!("connect errors: {other:?}")),
            }
        })
        .unwrap();
    assert_eq!(down.value("wren_ipam_datastore_up", &[]), Some(0.0));
    grew_only(&before, &operations(&down));
    assert!(
        down.sum("wren_fib_routes", &[("kind", "blackhole")]) >= 2.0,
        "the blocks' routes stay while etcd is down"
    );

    // Back: ready again.
    etcd.restart().unwrap();
    daemon.wait_ready(200, "datastore: reachable");
    let up = daemon.scrape();
    assert_eq!(up.value("wren_ipam_datastore_up", &[]), Some(1.0));
    let after = operations(&up);
    grew_only(&operations(&down), &after);
    daemon.wait_agree(
        "the IPAM series after the outage",
        &["show", "ipam"],
        ipam_agrees,
    );
    drop(pods);
}
