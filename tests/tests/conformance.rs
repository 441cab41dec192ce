//! bgpd against hostile and broken input, as a black box (issue 8): the table in
//! `tests/data/conformance.txt` (every row of bgp-proto's RFC 7606 table
//! `bgp-proto/tests/data/rules.txt`, the incidents byte for byte, and more) run against ONE
//! bgpd by the adversarial peer, each case's outcome read from the session (the
//! NOTIFICATION, the close), the RIB (`bgpctl --json`) and the kernel FIB.
//!
//! Each new session comes from a fresh address of a listen range (a new dynamic
//! neighbor), so a reset never waits for the restart backoff. The observed outcome
//! of every case is printed as a table (`cargo test -p wren-tests --test conformance --
//! --nocapture`). Needs root (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use peer::table::{self, Row};
use peer::wire::{self, Attributes};
use peer::{Handshake, Peer, Probe, RibRoute, RouteState, Session, Victim};
use wren_tests::peer_bench::{Bench, config, listen_range};

/// Bound of each wait of a case.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);
/// The listen range and AS of the eBGP neighbor that `exported` checks read.
const OBSERVER_RANGE: u8 = 7;
const OBSERVER_ASN: u32 = 65007;
/// How long the victims of a `kept` case must stay after the session ended.
const KEPT_WAIT: Duration = Duration::from_secs(3);

const V4_VICTIM: &str = "198.51.100.0/24";
const V6_VICTIM: &str = "2001:db8:1::/48";
const V4_NEXT_HOP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const V6_NEXT_HOP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

#[test]
fn conformance_table() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let cases = load_cases();
    let bench = Bench::start("wcf", |socket| {
        config(
            socket,
            true,
            &[
                listen_range(1, 65001, ""),
                listen_range(2, 64512, ""),
                listen_range(3, 4_200_000_001, ""),
                listen_range(4, 65001, "max_prefixes = { limit = 3, restart = 1 }"),
                listen_range(5, 65001, "enforce_first_as = false"),
                listen_range(
                    6,
                    65001,
                    "max_prefixes = { ipv4 = 3, ipv6 = 1, restart = 1 }",
                ),
                listen_range(OBSERVER_RANGE, OBSERVER_ASN, "export = \"everything\""),
                "[[policy.filter]]\nname = \"everything\"\ndefault = \"accept\"\n".to_owned(),
            ]
            .concat(),
        )
    });
    let mut runner = Runner {
        bench: &bench,
        session: None,
        sentinels: std::cell::Cell::new(0),
        observer: None,
    };
    let started = Instant::now();
    let mut report = String::new();
    let mut failures = Vec::new();
    for case in &cases {
        let begun = Instant::now();
        let (expected, observed, pass) = match &case.skip {
            Some(reason) => ("-".to_owned(), format!("not applicable: {reason}"), true),
            None => {
                let observed = runner.run(case);
                bench.assert_alive();
                let pass = case.expect.matches(&observed);
                (case.expect.to_string(), observed.to_string(), pass)
            }
        };
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {:.2} s |",
            case.name,
            expected,
            observed,
            if pass { "ok" } else { "FAIL" },
            begun.elapsed().as_secs_f64()
        );
        if !pass {
            failures.push(format!(
                "conformance.txt:{} {}: expected {expected}, observed {observed}",
                case.line, case.name
            ));
        }
    }
    drop(runner);
    eprintln!(
        "| case | expected | observed | | time |\n|---|---|---|---|---|\n{report}\n{} cases in {:.1} s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n--- bgpd log tail ---\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        bench.bgpd.log_tail(40)
    );
}

/// Graceful restart keeps a lost peer's routes (stale), but a stale path loses to
/// any fresh one: a reflector killed by SIGKILL must not hold the clients on its
/// stale routes while another neighbor offers fresh ones. Two peers, RIB and kernel
/// seen from outside.
#[test]
fn fresh_paths_win_over_stale_ones() {
    let Some(_ready) = lab::require!(Root) else {
        return;
    };
    let bench = Bench::start("wfs", |socket| {
        config(
            socket,
            true,
            &[listen_range(1, 65001, ""), listen_range(8, 65008, "")].concat(),
        )
    });
    let victim: IpNet = V4_VICTIM.parse().unwrap();
    let prefix: Ipv4Net = V4_VICTIM.parse().unwrap();
    let restarting_source = bench.fresh_address(1);
    let restarting = bench.connect(restarting_source);
    match restarting.establish(&Kind::EbgpGr.open(restarting_source), CASE_TIMEOUT) {
        Ok(Handshake::Established(_)) => {}
        other => panic!("graceful restart session: {other:?}"),
    }
    restarting
        .send(&wire::announce_v4(
            &[prefix],
            &Attributes::from_as(65001),
            V4_NEXT_HOP,
        ))
        .unwrap();
    let other_source = bench.fresh_address(8);
    let other = bench.connect(other_source);
    let open = wire::open(65008, 90, other_source, &[(1, 1), (2, 1)], false, &[]);
    match other.establish(&open, CASE_TIMEOUT) {
        Ok(Handshake::Established(_)) => {}
        other => panic!("second session: {other:?}"),
    }
    let mut longer = Attributes::from_as(65008);
    longer.as_path = vec![65008, 65009, 65010];
    let other_hop = Ipv4Addr::new(192, 0, 2, 2);
    other
        .send(&wire::announce_v4(&[prefix], &longer, other_hop))
        .unwrap();
    let best_via = |hop: Ipv4Addr, paths: usize| {
        let deadline = Instant::now() + CASE_TIMEOUT;
        loop {
            let routes = bench.observer.paths(victim).unwrap();
            let best: Vec<&RibRoute> = routes.iter().filter(|route| route.best).collect();
            let kernel = bench
                .observer
                .kernel_route(victim)
                .unwrap()
                .map(|route| route.gateways());
            if routes.len() == paths
                && best.len() == 1
                && best[0].next_hops == [IpAddr::V4(hop)]
                && kernel == Some(vec![IpAddr::V4(hop)])
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "expected the best path via {hop} of {paths}; RIB {routes:?}, kernel {kernel:?}\n{}",
                bench.bgpd.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The shorter path wins while both are fresh.
    best_via(V4_NEXT_HOP, 2);
    // The connection is lost: its path stays, stale, and the fresh one takes over.
    restarting.close();
    best_via(other_hop, 2);
    bench.assert_alive();
    other.notify_and_close(6, 2, &[]);
}

/// One row of the table.
struct Case {
    line: usize,
    name: String,
    bytes: Vec<u8>,
    kind: Kind,
    on_open: bool,
    expect: Expect,
    checks: Vec<Check>,
    /// Checks on the accepted route as bgpd sends it on to an eBGP neighbor.
    exported: Vec<Check>,
    skip: Option<String>,
}

/// The kind of session a case needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ebgp,
    EbgpAs2,
    Ibgp,
    EbgpGr,
    Ebgp4200000001,
    EbgpMax,
    EbgpNoFirstAs,
    EbgpMaxFamily,
    EbgpGrN,
    EbgpMaxGrN,
}

impl Kind {
    fn parse(text: &str) -> Kind {
        match text {
            "ebgp" => Kind::Ebgp,
            "ebgp-as2" => Kind::EbgpAs2,
            "ibgp" => Kind::Ibgp,
            "ebgp-gr" => Kind::EbgpGr,
            "ebgp-4200000001" => Kind::Ebgp4200000001,
            "ebgp-max" => Kind::EbgpMax,
            "ebgp-no-first-as" => Kind::EbgpNoFirstAs,
            "ebgp-max-family" => Kind::EbgpMaxFamily,
            "ebgp-gr-n" => Kind::EbgpGrN,
            "ebgp-max-gr-n" => Kind::EbgpMaxGrN,
            other => panic!("unknown session kind {other:?}"),
        }
    }

    /// The listen range (10.66.R.0/24) whose AS and settings fit.
    fn range(self) -> u8 {
        match self {
            Kind::Ebgp | Kind::EbgpAs2 | Kind::EbgpGr | Kind::EbgpGrN => 1,
            Kind::Ibgp => 2,
            Kind::Ebgp4200000001 => 3,
            Kind::EbgpMax | Kind::EbgpMaxGrN => 4,
            Kind::EbgpNoFirstAs => 5,
            Kind::EbgpMaxFamily => 6,
        }
    }

    fn asn(self) -> u32 {
        match self {
            Kind::Ibgp => 64512,
            Kind::Ebgp4200000001 => 4_200_000_001,
            _ => 65001,
        }
    }

    fn open(self, router_id: Ipv4Addr) -> Vec<u8> {
        // Graceful restart, with RFC 8538's N bit (0x4) or without.
        let flags = match self {
            Kind::EbgpGr => Some(0),
            Kind::EbgpGrN | Kind::EbgpMaxGrN => Some(0x4),
            _ => None,
        };
        let graceful_restart = flags
            .map(|flags| {
                wire::capability::graceful_restart(flags, 120, &[(1, 1, 0x80), (2, 1, 0x80)])
            })
            .into_iter()
            .collect::<Vec<_>>();
        wire::open(
            self.asn(),
            90,
            router_id,
            &[(1, 1), (2, 1)],
            self == Kind::EbgpAs2,
            &graceful_restart,
        )
    }

    /// Well-formed attributes for the victims and sentinels.
    fn attributes(self, med: Option<u32>) -> Attributes {
        let mut attributes = Attributes::from_as(self.asn());
        attributes.four_octet = self != Kind::EbgpAs2;
        attributes.med = med;
        if self == Kind::Ibgp {
            attributes.as_path.clear();
            attributes.local_pref = Some(100);
        }
        attributes
    }
}

/// An address family of the victims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Fam {
    V4,
    V6,
}

impl Fam {
    fn parse(text: &str) -> Fam {
        match text {
            "v4" => Fam::V4,
            "v6" => Fam::V6,
            other => panic!("unknown family {other:?}"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Fam::V4 => "v4",
            Fam::V6 => "v6",
        }
    }

    fn other(self) -> Fam {
        match self {
            Fam::V4 => Fam::V6,
            Fam::V6 => Fam::V4,
        }
    }
}

/// An outcome, expected or observed, in the table's words.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Withdrawn(Vec<Fam>),
    Accepted(Fam, Option<Box<RibRoute>>),
    Disabled(Fam),
    /// `kept`: the victims stayed (stale, graceful restart) instead of going.
    Reset {
        code: u8,
        subcode: u8,
        data: Option<Vec<u8>>,
        kept: bool,
    },
    Closed {
        kept: bool,
    },
    Established,
    Refused {
        code: u8,
        subcode: u8,
        data: Option<Vec<u8>>,
    },
    /// Anything else, described.
    Other(String),
}

type Expect = Outcome;

impl Outcome {
    fn parse(text: &str) -> Outcome {
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let kept = words.last() == Some(&"kept");
        if kept {
            words.pop();
        }
        let notification = |words: &[&str]| {
            let (code, subcode) = words[1].split_once('/').expect("C/S");
            let data = words
                .get(2)
                .and_then(|w| w.strip_prefix("data="))
                .map(|hex| wire::parse_hex(hex).unwrap());
            (code.parse().unwrap(), subcode.parse().unwrap(), data)
        };
        match words[0] {
            "unchanged" => Outcome::Unchanged,
            "withdrawn" => Outcome::Withdrawn(words[1..].iter().map(|w| Fam::parse(w)).collect()),
            "accepted" => Outcome::Accepted(Fam::parse(words[1]), None),
            "disabled" => Outcome::Disabled(Fam::parse(words[1])),
            "closed" => Outcome::Closed { kept },
            "established" => Outcome::Established,
            "reset" => {
                let (code, subcode, data) = notification(&words);
                Outcome::Reset {
                    code,
                    subcode,
                    data,
                    kept,
                }
            }
            "refused" => {
                let (code, subcode, data) = notification(&words);
                Outcome::Refused {
                    code,
                    subcode,
                    data,
                }
            }
            other => panic!("unknown outcome {other:?}"),
        }
    }

    /// The victims are expected to stay after the session ends.
    fn kept(&self) -> bool {
        matches!(
            self,
            Outcome::Reset { kept: true, .. } | Outcome::Closed { kept: true }
        )
    }

    /// Whether `observed` is this expectation: the same words; the NOTIFICATION data
    /// only when the expectation names it; the accepted route's checks elsewhere.
    fn matches(&self, observed: &Outcome) -> bool {
        match (self, observed) {
            (Outcome::Accepted(a, _), Outcome::Accepted(b, _)) => a == b,
            (
                Outcome::Reset {
                    code,
                    subcode,
                    data,
                    kept,
                },
                Outcome::Reset {
                    code: c,
                    subcode: s,
                    data: d,
                    kept: k,
                },
            ) => code == c && subcode == s && (data.is_none() || data == d) && kept == k,
            (
                Outcome::Refused {
                    code,
                    subcode,
                    data,
                },
                Outcome::Refused {
                    code: c,
                    subcode: s,
                    data: d,
                },
            ) => code == c && subcode == s && (data.is_none() || data == d),
            (expected, observed) => expected == observed,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let notification =
            |f: &mut std::fmt::Formatter<'_>, word, code, subcode, data: &Option<Vec<u8>>| {
                write!(f, "{word} {code}/{subcode}")?;
                match data {
                    Some(data) if !data.is_empty() => write!(f, " data={}", hex::encode(data)),
                    _ => Ok(()),
                }
            };
        match self {
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Withdrawn(families) => {
                f.write_str("withdrawn")?;
                for family in families {
                    write!(f, " {}", family.name())?;
                }
                Ok(())
            }
            Outcome::Accepted(family, route) => {
                write!(f, "accepted {}", family.name())?;
                if let Some(route) = route {
                    write!(
                        f,
                        " (as_path {:?}, origin {}, local_pref {:?}, med {:?}, communities {:?})",
                        route.as_path, route.origin, route.local_pref, route.med, route.communities
                    )?;
                }
                Ok(())
            }
            Outcome::Disabled(family) => write!(f, "disabled {}", family.name()),
            Outcome::Reset {
                code,
                subcode,
                data,
                kept,
            } => {
                notification(f, "reset", code, subcode, data)?;
                if *kept {
                    f.write_str(" kept")?;
                }
                Ok(())
            }
            Outcome::Closed { kept } => f.write_str(if *kept { "closed kept" } else { "closed" }),
            Outcome::Established => f.write_str("established"),
            Outcome::Refused {
                code,
                subcode,
                data,
            } => notification(f, "refused", code, subcode, data),
            Outcome::Other(text) => f.write_str(text),
        }
    }
}

/// A check on the accepted route: `key=value` or `key!=value`.
struct Check {
    key: String,
    value: String,
    equal: bool,
}

impl Check {
    fn parse(text: &str) -> Check {
        let (key, value, equal) = match text.split_once("!=") {
            Some((key, value)) => (key, value, false),
            None => {
                let (key, value) = text.split_once('=').expect("key=value");
                (key, value, true)
            }
        };
        Check {
            key: key.to_owned(),
            value: value.to_owned(),
            equal,
        }
    }

    /// The failure, if the attributes bgpd sent do not pass (`as_path`, or
    /// `extended_communities` as 16 hex digits each).
    fn exported_failure(&self, sent: &bgp_proto::PathAttributes) -> Option<String> {
        let actual = match self.key.as_str() {
            "as_path" => sent
                .as_path
                .as_ref()
                .map_or(String::new(), |path| path.to_string().replace(' ', ",")),
            "extended_communities" => sent
                .extended_communities
                .iter()
                .map(|community| hex::encode(community.0))
                .collect::<Vec<_>>()
                .join(","),
            other => panic!("unknown exported check {other:?}"),
        };
        self.judge(actual)
    }

    /// The failure, if the route does not pass.
    fn failure(&self, route: &RibRoute) -> Option<String> {
        let join = |values: Vec<String>| values.join(",");
        let actual = match self.key.as_str() {
            "local_pref" => route.local_pref.map_or("-".into(), |v| v.to_string()),
            "med" => route.med.map_or("-".into(), |v| v.to_string()),
            "origin" => route.origin.clone(),
            "as_path" => join(route.as_path.iter().map(ToString::to_string).collect()),
            "communities" => join(route.communities.clone()),
            other => panic!("unknown route check {other:?}"),
        };
        self.judge(actual)
    }

    fn judge(&self, actual: String) -> Option<String> {
        ((actual == self.value) != self.equal).then(|| {
            format!(
                "{} is {actual}, expected {}{}",
                self.key,
                if self.equal { "" } else { "not " },
                self.value
            )
        })
    }
}

/// Reads the table, takes the bytes of `rule:` rows from bgp-proto's rules.txt and
/// checks that every rules.txt row is in the table.
fn load_cases() -> Vec<Case> {
    let rules_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bgp-proto/tests/data/rules.txt"
    );
    let rules_text = std::fs::read_to_string(rules_path).unwrap();
    let rules: BTreeMap<String, Vec<u8>> = table::parse(&rules_text, "rules.txt")
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.require("rules.txt", "rule").unwrap().to_owned(),
                wire::parse_hex(row.require("rules.txt", "hex").unwrap()).unwrap(),
            )
        })
        .collect();
    let file = "conformance.txt";
    let text = include_str!("../data/conformance.txt");
    let rows = table::parse(text, file).unwrap();
    let mut cases = Vec::new();
    let mut covered = Vec::new();
    for row in &rows {
        let case = case(row, &rules, file);
        if row.get("rule").is_some() {
            covered.push(case.name.clone());
        }
        cases.push(case);
    }
    let missing: Vec<&String> = rules
        .keys()
        .filter(|name| !covered.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "rules.txt rows missing from {file} (add each with an expect or a skip): {missing:?}"
    );
    cases
}

fn case(row: &Row, rules: &BTreeMap<String, Vec<u8>>, file: &str) -> Case {
    let at = |detail: &str| format!("{file}:{}: {detail}", row.line);
    let (name, bytes) = if let Some(rule) = row.get("rule") {
        let bytes = rules
            .get(rule)
            .unwrap_or_else(|| panic!("{}", at(&format!("no rules.txt row {rule:?}"))));
        (rule.to_owned(), bytes.clone())
    } else {
        let name = row.require(file, "case").unwrap().to_owned();
        let hex = |key: &str| row.get(key).map(|h| wire::parse_hex(h).unwrap());
        let bytes = if let Some(bytes) = hex("hex") {
            bytes
        } else if let Some(message) = hex("message") {
            let (kind, body) = message.split_first().expect("message: TYPE BODY");
            wire::message(*kind, body)
        } else {
            wire::update(
                &hex("withdrawn").unwrap_or_default(),
                &hex("attributes").unwrap_or_default(),
                &hex("nlri").unwrap_or_default(),
            )
        };
        (name, bytes)
    };
    let skip = row.get("skip").map(str::to_owned);
    let expect = match (&skip, row.get("expect")) {
        (Some(_), _) => Outcome::Other("-".into()),
        (None, Some(expect)) => Outcome::parse(expect),
        (None, None) => panic!("{}", at("no expect")),
    };
    Case {
        line: row.line,
        name,
        bytes,
        kind: Kind::parse(row.get("session").unwrap_or("ebgp")),
        on_open: match row.get("on").unwrap_or("established") {
            "established" => false,
            "open" => true,
            other => panic!("{}", at(&format!("unknown `on: {other}`"))),
        },
        expect,
        checks: row
            .get("route")
            .map(|r| r.split_whitespace().map(Check::parse).collect())
            .unwrap_or_default(),
        exported: row
            .get("exported")
            .map(|r| r.split_whitespace().map(Check::parse).collect())
            .unwrap_or_default(),
        skip,
    }
}

/// Runs cases one after the other over sessions it opens as needed.
struct Runner<'a> {
    bench: &'a Bench,
    /// The established session and its kind, reused by the next case of that kind.
    session: Option<(Kind, Peer)>,
    /// Sentinels used so far (each case gets new ones).
    sentinels: std::cell::Cell<u16>,
    /// An eBGP neighbor that bgpd sends every route (for `exported` checks), once
    /// one is needed.
    observer: Option<Peer>,
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        if let Some((_, peer)) = self.session.take() {
            peer.notify_and_close(6, 2, &[]);
        }
        if let Some(observer) = self.observer.take() {
            observer.notify_and_close(6, 2, &[]);
        }
    }
}

impl Runner<'_> {
    fn run(&mut self, case: &Case) -> Outcome {
        let outcome = if case.on_open {
            self.run_open(case)
        } else {
            self.run_established(case)
        };
        match (&outcome, &case.expect) {
            (Outcome::Accepted(_, Some(route)), Outcome::Accepted(..)) => {
                let failures: Vec<String> = case
                    .checks
                    .iter()
                    .filter_map(|c| c.failure(route))
                    .collect();
                if !failures.is_empty() {
                    return Outcome::Other(format!("{outcome}: {}", failures.join("; ")));
                }
                match self.check_exported(case) {
                    Ok(()) => outcome,
                    Err(error) => Outcome::Other(format!("{outcome}, exported: {error}")),
                }
            }
            _ => outcome,
        }
    }

    /// The `exported` checks: the IPv4 victim as bgpd sends it to the observer.
    fn check_exported(&mut self, case: &Case) -> Result<(), String> {
        if case.exported.is_empty() {
            return Ok(());
        }
        if self.observer.is_none() {
            let source = self.bench.fresh_address(OBSERVER_RANGE);
            let peer = self.bench.connect(source);
            let open = wire::open(OBSERVER_ASN, 90, source, &[(1, 1), (2, 1)], false, &[]);
            match peer.establish(&open, CASE_TIMEOUT) {
                Ok(Handshake::Established(_)) => {}
                other => return Err(format!("observer not established: {other:?}")),
            }
            self.observer = Some(peer);
        }
        let observer = self.observer.as_ref().expect("observer");
        let victim: IpNet = V4_VICTIM.parse().unwrap();
        observer
            .wait_for(CASE_TIMEOUT, "the exported route to pass", |seen| {
                let route = seen
                    .routes
                    .get(&victim)
                    .ok_or_else(|| format!("{victim} not sent"))?;
                let failures: Vec<String> = case
                    .exported
                    .iter()
                    .filter_map(|check| check.exported_failure(&route.attributes))
                    .collect();
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(failures.join("; "))
                }
            })
            .map_err(|error| error.to_string())
    }

    /// The case's bytes as the OPEN of a new connection.
    fn run_open(&mut self, case: &Case) -> Outcome {
        self.close_session();
        let source = self.bench.fresh_address(case.kind.range());
        let peer = self.bench.connect(source);
        match peer.establish(&case.bytes, CASE_TIMEOUT) {
            Ok(Handshake::Established(_)) => {
                peer.notify_and_close(6, 2, &[]);
                Outcome::Established
            }
            Ok(Handshake::Refused {
                notification: Some(n),
                ..
            }) => Outcome::Refused {
                code: n.code,
                subcode: n.subcode,
                data: Some(n.data),
            },
            Ok(Handshake::Refused {
                notification: None,
                reason,
            }) => Outcome::Other(format!("closed without NOTIFICATION: {reason}")),
            Err(error) => Outcome::Other(format!("no answer: {error}")),
        }
    }

    /// The case's bytes on an established session, between victims and a sentinel.
    fn run_established(&mut self, case: &Case) -> Outcome {
        let kind = case.kind;
        if self
            .session
            .as_ref()
            .is_none_or(|(k, peer)| *k != kind || peer.observed().closed.is_some())
        {
            self.close_session();
            let source = self.bench.fresh_address(kind.range());
            let peer = self.bench.connect(source);
            match peer.establish(&kind.open(source), CASE_TIMEOUT) {
                Ok(Handshake::Established(_)) => {}
                other => {
                    return Outcome::Other(format!("session {kind:?} not established: {other:?}"));
                }
            }
            self.session = Some((kind, peer));
        }
        let (_, peer) = self.session.as_ref().expect("session");
        let probe = Probe {
            peer,
            daemon: &self.bench.observer,
            kernel: true,
            timeout: CASE_TIMEOUT,
        };
        let marker = 10_000 + u32::from(self.next_number());
        let victims = [
            Victim {
                prefix: V4_VICTIM.parse().unwrap(),
                med: marker,
            },
            Victim {
                prefix: V6_VICTIM.parse().unwrap(),
                med: marker,
            },
        ];
        let announcements = vec![
            wire::announce_v4(
                &[V4_VICTIM.parse().unwrap()],
                &kind.attributes(Some(marker)),
                V4_NEXT_HOP,
            ),
            wire::announce_v6(
                &[V6_VICTIM.parse().unwrap()],
                &kind.attributes(Some(marker)),
                V6_NEXT_HOP,
                None,
            ),
        ];
        if let Err(error) = probe.prepare(&victims, &announcements) {
            return Outcome::Other(format!("victims not installed: {error}"));
        }
        // A case that disables IPv4 needs an IPv6 sentinel.
        let sentinel_family = match case.expect {
            Outcome::Disabled(Fam::V4) => Fam::V6,
            _ => Fam::V4,
        };
        let (sentinel_prefix, sentinel) = self.sentinel(kind, sentinel_family);
        // Victims expected to stay are watched for a while, not until they go.
        let probe = Probe {
            timeout: if case.expect.kept() {
                KEPT_WAIT
            } else {
                CASE_TIMEOUT
            },
            ..probe
        };
        let observation = match probe.run(&case.bytes, &sentinel, sentinel_prefix, &victims) {
            Ok(observation) => observation,
            Err(error) => return Outcome::Other(format!("probe failed: {error}")),
        };
        let states: Vec<(Fam, RouteState, bool)> = observation
            .victims
            .iter()
            .map(|v| {
                let family = if v.prefix.addr().is_ipv4() {
                    Fam::V4
                } else {
                    Fam::V6
                };
                (family, v.rib.clone(), v.kernel)
            })
            .collect();
        let outcome = match observation.session {
            Session::Reset(notification) => {
                let source = self.session.take().map(|(_, peer)| peer.local_addr().ip());
                let leftover: Vec<String> = states
                    .iter()
                    .filter(|(_, rib, kernel)| *rib != RouteState::Absent || *kernel)
                    .map(|(family, rib, kernel)| {
                        format!("{} {rib:?} kernel {kernel}", family.name())
                    })
                    .collect();
                // Kept as graceful restart keeps them: every victim as it was.
                let kept = states
                    .iter()
                    .all(|(_, rib, kernel)| *rib == RouteState::Unchanged && *kernel);
                let outcome = match notification {
                    Some(n) => Outcome::Reset {
                        code: n.code,
                        subcode: n.subcode,
                        data: Some(n.data),
                        kept,
                    },
                    None => Outcome::Closed { kept },
                };
                if kept {
                    if let Err(error) = self.flush_kept(kind, source, &victims) {
                        return Outcome::Other(format!("{outcome}, then {error}"));
                    }
                    outcome
                } else if leftover.is_empty() {
                    outcome
                } else {
                    Outcome::Other(format!(
                        "{outcome} but routes left: {}",
                        leftover.join(", ")
                    ))
                }
            }
            Session::Stuck => {
                self.close_session();
                Outcome::Other("stuck: no sentinel, no reset".into())
            }
            Session::Up => self.up_outcome(case, kind, &states),
        };
        if let Some((_, peer)) = &self.session {
            let _ = peer.send(&wire::withdraw(&[sentinel_prefix]));
        }
        outcome
    }

    /// The outcome of a case after which the session is still up.
    fn up_outcome(
        &mut self,
        case: &Case,
        kind: Kind,
        states: &[(Fam, RouteState, bool)],
    ) -> Outcome {
        // The kernel must agree with the RIB.
        for (family, rib, kernel) in states {
            if (*rib != RouteState::Absent) != *kernel {
                return Outcome::Other(format!(
                    "{} is {rib:?} in the RIB but kernel route {}",
                    family.name(),
                    if *kernel { "present" } else { "absent" }
                ));
            }
        }
        let absent: Vec<Fam> = states
            .iter()
            .filter(|(_, rib, _)| *rib == RouteState::Absent)
            .map(|(family, _, _)| *family)
            .collect();
        let replaced: Vec<(Fam, RibRoute)> = states
            .iter()
            .filter_map(|(family, rib, _)| match rib {
                RouteState::Replaced(route) => Some((*family, (**route).clone())),
                _ => None,
            })
            .collect();
        match (absent.as_slice(), replaced.as_slice()) {
            ([], []) => Outcome::Unchanged,
            ([family], []) if case.expect == Outcome::Disabled(*family) => {
                self.check_disabled(kind, *family)
            }
            (absent, []) => Outcome::Withdrawn(absent.to_vec()),
            ([], [(family, route)]) => Outcome::Accepted(*family, Some(Box::new(route.clone()))),
            _ => Outcome::Other(format!("absent {absent:?}, replaced {replaced:?}")),
        }
    }

    /// After a victim of `family` went: a new route of that family must be ignored
    /// while one of the other family arrives. The session is closed afterwards (the
    /// family stays disabled until it restarts).
    fn check_disabled(&mut self, kind: Kind, family: Fam) -> Outcome {
        let (ignored_prefix, ignored) = self.sentinel(kind, family);
        let (sentinel_prefix, sentinel) = self.sentinel(kind, family.other());
        let (_, peer) = self.session.as_ref().expect("session");
        let probe = Probe {
            peer,
            daemon: &self.bench.observer,
            kernel: true,
            timeout: CASE_TIMEOUT,
        };
        let outcome = match probe.run(&ignored, &sentinel, sentinel_prefix, &[]) {
            Ok(observation) if observation.session == Session::Up => {
                match probe.has_route(ignored_prefix) {
                    Ok(false) => Outcome::Disabled(family),
                    Ok(true) => Outcome::Withdrawn(vec![family]),
                    Err(error) => Outcome::Other(error.to_string()),
                }
            }
            Ok(observation) => Outcome::Other(format!(
                "withdrawn {} then {:?}",
                family.name(),
                observation.session
            )),
            Err(error) => Outcome::Other(error.to_string()),
        };
        self.close_session();
        outcome
    }

    /// After a `kept` case: the neighbor at `source` comes back and sends End-of-RIB,
    /// so its stale victims go before the next case (they would stand in the kernel
    /// for its victims), then leaves with a Hard Reset.
    fn flush_kept(
        &self,
        kind: Kind,
        source: Option<IpAddr>,
        victims: &[Victim],
    ) -> Result<(), String> {
        let Some(IpAddr::V4(source)) = source else {
            return Err("no IPv4 source to come back from".into());
        };
        let peer = self.bench.connect(source);
        match peer.establish(&kind.open(source), CASE_TIMEOUT) {
            Ok(Handshake::Established(_)) => {}
            other => return Err(format!("coming back: {other:?}")),
        }
        for (afi, safi) in [(1, 1), (2, 1)] {
            peer.send(&wire::end_of_rib(afi, safi))
                .map_err(|error| format!("End-of-RIB: {error}"))?;
        }
        let probe = Probe {
            peer: &peer,
            daemon: &self.bench.observer,
            kernel: true,
            timeout: CASE_TIMEOUT,
        };
        let deadline = Instant::now() + CASE_TIMEOUT;
        loop {
            let states = probe.states(victims).map_err(|error| error.to_string())?;
            if states
                .iter()
                .all(|state| state.rib == RouteState::Absent && !state.kernel)
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("stale victims left after End-of-RIB: {states:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        peer.notify_and_close(6, 9, &[6, 2]);
        Ok(())
    }

    /// A new sentinel route of `family`: its prefix and its UPDATE.
    fn sentinel(&self, kind: Kind, family: Fam) -> (IpNet, Vec<u8>) {
        let number = self.next_number();
        let [high, low] = number.to_be_bytes();
        match family {
            Fam::V4 => {
                let net = Ipv4Net::new(Ipv4Addr::new(10, 250, high, low), 32).unwrap();
                (
                    IpNet::V4(net),
                    wire::announce_v4(&[net], &kind.attributes(None), V4_NEXT_HOP),
                )
            }
            Fam::V6 => {
                let address = Ipv6Addr::new(0x2001, 0xdb8, 0x250, 0, 0, 0, 0, number);
                let net = Ipv6Net::new(address, 128).unwrap();
                (
                    IpNet::V6(net),
                    wire::announce_v6(&[net], &kind.attributes(None), V6_NEXT_HOP, None),
                )
            }
        }
    }

    /// A number used by no earlier marker or sentinel.
    fn next_number(&self) -> u16 {
        self.sentinels.set(self.sentinels.get() + 1);
        self.sentinels.get()
    }

    /// Ends the current session with Cease / Administrative Shutdown.
    fn close_session(&mut self) {
        if let Some((_, peer)) = self.session.take() {
            peer.notify_and_close(6, 2, &[]);
        }
    }
}
