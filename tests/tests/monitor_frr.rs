//! `bgpctl monitor` against bgpd peering with FRR 8.4 in network namespaces, the
//! kernel FIB on: an announce and a withdraw from FRR are shown as best-route
//! changes and kernel operations (the time from telling FRR to the line reaching
//! the test is printed), FRR's neighbor shut down and back as session state
//! changes, topics filtered, the human lines; and monitors that stop reading while
//! FRR announces and withdraws thousands of routes are cut off (bgpctl says why on
//! stderr and exits 1), with bgpd's resident memory compared with the same churn
//! without them.
//! Needs root and FRR (skips otherwise; fails with WREN_REQUIRE_LAB=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lab::fixture::{Pair, Wren, bgpctl_command, frr_config, pair, wren_config};
use lab::{Frr, TIMEOUT};
use serde_json::Value;

/// FRR at `NET.1` (AS 65001, with static blackholes for `statics`) in `pair.a`,
/// bgpd at `NET.2` (AS 64512, FIB on) in `pair.b`; waits until both see the session
/// Established.
fn peering(pair: &Pair, net: &str, statics: &[&str]) -> (Frr, Wren) {
    let frr = Frr::start(
        &pair.a,
        &frr_config(
            65001,
            &format!("{net}.1"),
            // No coalescing of a new route's first announcement (1 s by default)
            // and no advertisement interval: FRR sends a change at once.
            &format!(
                " coalesce-time 0\n neighbor {net}.2 remote-as 64512\n neighbor {net}.2 timers connect 1\n neighbor {net}.2 advertisement-interval 0"
            ),
            "",
            "",
            statics,
        ),
    )
    .unwrap();
    let config = wren_config(
        &format!("{net}.2"),
        &Wren::socket_path(&pair.b),
        true,
        &format!(
            "[[bgp.neighbor]]\naddress = \"{net}.1\"\nremote_asn = 65001\nhold_time = 9\nconnect_retry = 1\n"
        ),
    );
    let wren = Wren::start(&pair.b, &config);
    wren.wait_established(&[&format!("{net}.1")]);
    frr.wait_established(TIMEOUT, &[&format!("{net}.2")])
        .unwrap();
    (frr, wren)
}

/// A running `bgpctl monitor`: its stdout lines arrive on `lines` with the instant
/// each was read; killed when dropped.
struct Monitor {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
    stderr: mpsc::Receiver<String>,
}

impl Monitor {
    /// Starts `bgpctl monitor ARGS` and waits until bgpd listens (bgpctl's
    /// `monitoring ...` line on stderr).
    fn start(wren: &Wren, args: &[&str]) -> Monitor {
        let mut child = bgpctl_command(&wren.socket)
            .arg("monitor")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (line_sender, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                if line_sender.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        let (error_sender, stderr) = mpsc::channel();
        let errors = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in errors.lines() {
                let Ok(line) = line else { return };
                if error_sender.send(line).is_err() {
                    return;
                }
            }
        });
        let monitor = Monitor {
            child,
            lines,
            stderr,
        };
        let first = monitor.stderr.recv_timeout(TIMEOUT);
        assert!(
            first
                .as_ref()
                .is_ok_and(|line| line.starts_with("monitoring ")),
            "bgpctl monitor {args:?} said {first:?}"
        );
        monitor
    }

    /// Waits for the first JSON line `matches` accepts; returns it and when it was
    /// read. Lines before it are returned in `skipped`.
    fn wait_json(
        &self,
        what: &str,
        skipped: &mut Vec<Value>,
        matches: impl Fn(&Value) -> bool,
    ) -> (Instant, Value) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within {TIMEOUT:?}; before: {skipped:?}"));
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
            if matches(&value) {
                return (at, value);
            }
            skipped.push(value);
        }
    }

    /// Waits for the first text line containing every one of `words`.
    fn wait_text(&self, what: &str, words: &[&str]) -> String {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((_, line)) = self.lines.recv_timeout(left) else {
                panic!("no {what} within {TIMEOUT:?}; lines: {seen:#?}");
            };
            if words.iter().all(|word| line.contains(word)) {
                return line;
            }
            seen.push(line);
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// FRR's `address-family ipv4 unicast` lines, run in one vtysh.
fn frr_af4(frr: &Frr, lines: &[&str]) {
    let mut commands = vec![
        "configure terminal",
        "router bgp 65001",
        "address-family ipv4 unicast",
    ];
    commands.extend_from_slice(lines);
    frr.vtysh_lines(&commands).unwrap();
}

fn route_event<'a>(value: &'a Value, action: &str, prefix: &str) -> Option<&'a Value> {
    let route = &value["change"]["route"];
    (route["action"] == action && route["prefix"] == prefix).then_some(route)
}

fn fib_event<'a>(value: &'a Value, action: &str, prefix: &str) -> Option<&'a Value> {
    let fib = &value["change"]["fib"];
    (fib["action"] == action && fib["prefix"] == prefix).then_some(fib)
}

/// RFC 3339, UTC, milliseconds: `2026-12-06T22:50:01.123Z`.
fn is_rfc3339_millis(time: &str) -> bool {
    let bytes = time.as_bytes();
    bytes.len() == 24
        && time.ends_with('Z')
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[19] == b'.'
        && time[20..23].bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn monitor_shows_routes_sessions_and_kernel_operations_as_they_happen() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = "10.61.0";
    let pair = pair("wmon-", net, "fd00:61");
    let (frr, wren) = peering(&pair, net, &[]);
    let frr_address = format!("{net}.1");
    let prefix = "10.161.1.0/24";

    let json = Monitor::start(&wren, &["--json"]);
    let routes = Monitor::start(&wren, &["routes"]);
    let mut skipped = Vec::new();

    // An announce: the best route, then the kernel's add.
    let mut latencies = Vec::new();
    let told = Instant::now();
    frr_af4(&frr, &[&format!("network {prefix}")]);
    let configured = Instant::now();
    let (route_at, added) = json.wait_json("route add", &mut skipped, |v| {
        route_event(v, "add", prefix).is_some()
    });
    let route = &added["change"]["route"];
    assert_eq!(
        route["next_hops"],
        serde_json::json!([frr_address]),
        "{added}"
    );
    assert_eq!(route["as_path"], "65001", "{added}");
    assert_eq!(route["source"], frr_address.as_str(), "{added}");
    let time = added["time"].as_str().unwrap();
    assert!(is_rfc3339_millis(time), "{time}");
    let (fib_at, installed) = json.wait_json("kernel add", &mut skipped, |v| {
        fib_event(v, "add", prefix).is_some()
    });
    let fib = &installed["change"]["fib"];
    assert_eq!(fib["kind"], "unicast", "{installed}");
    assert_eq!(
        fib["next_hops"],
        serde_json::json!([{"gateway": frr_address, "device": "eth1"}]),
        "{installed}"
    );
    assert_eq!(fib["error"], Value::Null, "{installed}");
    assert!(lab::fixture::kernel_route(&pair.b, prefix).is_some());
    latencies.push(Latency::of("announce", told, configured, route_at, &added));
    latencies.push(Latency::of(
        "kernel add",
        told,
        configured,
        fib_at,
        &installed,
    ));

    // The human line of the routes-only monitor.
    let line = routes.wait_text(
        "the human route line",
        &[
            " route ",
            " add ",
            prefix,
            &format!("via {frr_address}"),
            "as-path 65001",
        ],
    );
    assert!(line.ends_with(&format!("from {frr_address}")), "{line}");
    assert!(is_rfc3339_millis(&line[..24]), "{line}");
    eprintln!("human: {line}");
    eprintln!("json: {added}");
    eprintln!("json: {installed}");

    // A withdraw: the best route goes, then the kernel's delete.
    let told = Instant::now();
    frr_af4(&frr, &[&format!("no network {prefix}")]);
    let configured = Instant::now();
    let (route_at, withdrawn) = json.wait_json("route withdraw", &mut skipped, |v| {
        route_event(v, "withdraw", prefix).is_some()
    });
    assert_eq!(
        withdrawn["change"]["route"]["source"],
        frr_address.as_str(),
        "{withdrawn}"
    );
    let (fib_at, deleted) = json.wait_json("kernel delete", &mut skipped, |v| {
        fib_event(v, "delete", prefix).is_some()
    });
    assert_eq!(
        deleted["change"]["fib"]["next_hops"],
        serde_json::json!([{"gateway": frr_address, "device": "eth1"}]),
        "{deleted}"
    );
    latencies.push(Latency::of(
        "withdraw", told, configured, route_at, &withdrawn,
    ));
    latencies.push(Latency::of(
        "kernel delete",
        told,
        configured,
        fib_at,
        &deleted,
    ));
    let line = routes.wait_text("the human withdraw line", &[" withdraw ", prefix]);
    eprintln!("human: {line}");
    eprintln!("json: {withdrawn}");
    eprintln!("json: {deleted}");

    // FRR shuts its neighbor down and brings it back: bgpd's session leaves
    // Established and comes back.
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        &format!("neighbor {net}.2 shutdown"),
    ])
    .unwrap();
    let (_, down) = json.wait_json("the session going down", &mut skipped, |v| {
        let neighbor = &v["change"]["neighbor"];
        neighbor["address"] == frr_address.as_str() && neighbor["from"] == "Established"
    });
    assert_ne!(down["change"]["neighbor"]["to"], "Established", "{down}");
    frr.vtysh_lines(&[
        "configure terminal",
        "router bgp 65001",
        &format!("no neighbor {net}.2 shutdown"),
    ])
    .unwrap();
    let (_, up) = json.wait_json("the session coming back", &mut skipped, |v| {
        let neighbor = &v["change"]["neighbor"];
        neighbor["address"] == frr_address.as_str() && neighbor["to"] == "Established"
    });
    eprintln!("json: {down}");
    eprintln!("json: {up}");

    // The routes-only monitor saw no session or kernel lines.
    while let Ok((_, line)) = routes.lines.try_recv() {
        assert!(line.contains(" route "), "{line}");
    }
    for latency in &latencies {
        eprintln!(
            "{:<13} from running vtysh {:>4} ms, from vtysh's return {:>4} ms; bgpd's task to the line read {:>3} ms",
            latency.what,
            latency.from_told.as_millis(),
            latency.from_configured.as_millis(),
            latency.from_task
        );
        // The bound, on what is Wren's: from the moment bgpd's task told
        // the change (its timestamp) to bgpctl's line in the test's hands.
        assert!(
            latency.from_task <= 100,
            "{}: {} ms from bgpd's task to the monitor line",
            latency.what,
            latency.from_task
        );
    }
}

/// How long one change took to reach the test as a monitor line.
struct Latency {
    what: &'static str,
    /// From the moment the test ran vtysh (vtysh itself takes tens of ms).
    from_told: Duration,
    /// From the moment vtysh returned (FRR has the change).
    from_configured: Duration,
    /// Milliseconds from the event's timestamp (when bgpd's task told it) to the
    /// moment the test read the line (both the wall clock).
    from_task: i64,
}

impl Latency {
    fn of(
        what: &'static str,
        told: Instant,
        configured: Instant,
        read: Instant,
        event: &Value,
    ) -> Latency {
        let time = event["time"].as_str().unwrap();
        let read_wall = std::time::SystemTime::now() - read.elapsed();
        let read_ms = read_wall
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        const DAY: i64 = 86_400_000;
        let from_task = (read_ms % DAY - millis_of_day(time)).rem_euclid(DAY);
        Latency {
            what,
            from_told: read - told,
            from_configured: read.saturating_duration_since(configured),
            from_task,
        }
    }
}

/// `HH:MM:SS.mmm` of an RFC 3339 UTC time, in milliseconds since midnight.
fn millis_of_day(time: &str) -> i64 {
    let number = |range: std::ops::Range<usize>| -> i64 { time[range].parse().unwrap() };
    ((number(11..13) * 60 + number(14..16)) * 60 + number(17..19)) * 1000 + number(20..23)
}

/// Routes FRR redistributes from its kernel table for the churn (kernel routes, not
/// FRR statics: staticd takes minutes to load thousands).
const CHURN_ROUTES: usize = 4000;
/// Announce-and-withdraw cycles per phase.
const CHURN_CYCLES: usize = 6;
/// How much more bgpd may hold after the churn with stuck monitors than after the
/// same churn without them. Buffering their lines would hold CHURN_ROUTES × 4
/// events × CHURN_CYCLES, over 150 octets each: more than 14 MB.
const RSS_BOUND_KB: u64 = 6 * 1024;

fn vm_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// bgpd's kernel routes of protocol 196.
fn kernel_routes(netns: &lab::Netns) -> usize {
    let text = netns
        .ip(&["-4", "route", "show", "proto", lab::fixture::PROTOCOL])
        .unwrap();
    text.lines().count()
}

/// FRR announces its kernel routes and withdraws them `cycles` times, each step
/// waiting until bgpd's kernel table follows.
fn churn(frr: &Frr, pair: &Pair, cycles: usize) {
    for _ in 0..cycles {
        frr_af4(frr, &["redistribute kernel"]);
        lab::wait_until(TIMEOUT, "FRR's routes in bgpd's kernel table", || {
            kernel_routes(&pair.b) >= CHURN_ROUTES
        })
        .unwrap();
        frr_af4(frr, &["no redistribute kernel"]);
        lab::wait_until(
            TIMEOUT,
            "FRR's routes gone from bgpd's kernel table",
            || kernel_routes(&pair.b) == 0,
        )
        .unwrap();
    }
}

#[test]
fn monitors_that_stop_reading_are_cut_off_and_memory_stays_bounded() {
    let Some(_ready) = lab::require!(Root, Frr) else {
        return;
    };
    let net = "10.62.0";
    let pair = pair("wmsl-", net, "fd00:62");
    let batch: String = (0..CHURN_ROUTES)
        .map(|index| {
            format!(
                "route add blackhole 10.{}.{}.0/24\n",
                128 + index / 256,
                index % 256
            )
        })
        .collect();
    let batch_path = pair.a.dir().join("churn.batch");
    std::fs::write(&batch_path, batch).unwrap();
    pair.a
        .ip(&["-batch", batch_path.to_str().unwrap()])
        .unwrap();
    let (frr, wren) = peering(&pair, net, &[]);
    let pid = wren.daemon.pid();

    // The churn without a monitor, twice: the first warms up what any churn
    // allocates, the second is the reference.
    churn(&frr, &pair, 1);
    churn(&frr, &pair, CHURN_CYCLES);
    let without = vm_rss_kb(pid);

    // A client that asks to monitor and never reads, and bgpctl whose own output is
    // not read (it stops reading the socket once its stdout pipe is full).
    let mut stuck = UnixStream::connect(&wren.socket).unwrap();
    stuck
        .write_all(b"{\"command\":\"monitor\",\"topics\":[\"routes\",\"neighbors\",\"fib\"]}\n")
        .unwrap();
    let mut bgpctl = bgpctl_command(&wren.socket)
        .args(["monitor", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bgpctl_stderr = BufReader::new(bgpctl.stderr.take().unwrap());
    let mut first = String::new();
    bgpctl_stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("monitoring "), "{first}");

    // bgpctl's output is read again once bgpd has cut both monitors off (within
    // bgpd's patience for the last line, LAST_LINE_TIMEOUT): then bgpctl reads on
    // and gets that line.
    let mut stdout = bgpctl.stdout.take().unwrap();
    let log = wren.daemon.log_path().to_path_buf();
    let reader = std::thread::spawn(move || {
        let cut = lab::wait_until(TIMEOUT * 4, "bgpd to cut both monitors off", || {
            std::fs::read_to_string(&log).is_ok_and(|log| {
                log.matches("a monitor was disconnected for reading too slowly")
                    .count()
                    >= 2
            })
        });
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        (cut, text.len())
    });
    churn(&frr, &pair, CHURN_CYCLES);
    let with = vm_rss_kb(pid);

    // bgpctl, read again, got bgpd's last line: stderr says why, status 1.
    let status = wait_exit(&mut bgpctl);
    let mut rest = String::new();
    bgpctl_stderr.read_to_string(&mut rest).unwrap();
    let (cut, printed) = reader.join().unwrap();
    cut.unwrap();
    assert_eq!(status.code(), Some(1), "bgpctl monitor: {rest}");
    assert!(
        rest.contains("disconnected for reading too slowly") && rest.contains("events missed"),
        "bgpctl's stderr: {rest}"
    );
    eprintln!("bgpctl printed {printed} octets, then: {}", rest.trim());

    // The client that never read finds the end of the stream after what was sent.
    stuck.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut received = Vec::new();
    stuck.read_to_end(&mut received).unwrap();
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.starts_with("{\"ok\":{\"monitoring\":[\"routes\",\"neighbors\",\"fib\"]}}\n"),
        "{}",
        &text[..text.len().min(200)]
    );
    let log = wren.daemon.log();
    let cut: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("a monitor was disconnected"))
        .collect();
    eprintln!(
        "bgpd VmRSS after {CHURN_CYCLES} cycles of {CHURN_ROUTES} routes: {without} kB without monitors, {with} kB with two stuck ones ({} kB more); the stuck client got {} octets; {cut:#?}",
        with.saturating_sub(without),
        received.len()
    );
    assert!(
        with <= without + RSS_BOUND_KB,
        "bgpd grew from {without} kB to {with} kB with stuck monitors"
    );
    assert!(wren.daemon.is_alive());
}

/// Waits for a child to exit (killing it after [`TIMEOUT`]).
fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bgpctl monitor did not exit within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
