//! GoBGP 3 under test, and why its routes are timed in its RIB.
//!
//! GoBGP writes the kernel FIB only through FRR's zebra (`[zebra.config]`). Debian's
//! gobgpd 3.10 with FRR 8.4's zebra (ZAPI 6) fails at the first message: with any
//! `software-name` it accepts (frr7.5 … frr8.2) it cannot decode zebra's interface-add
//! message and panics (`slice bounds out of range` in zapi.go's interfaceUpdateBody), so
//! there is no FIB to time. Its best-path changes are timed instead through its own API:
//! `gobgp -j monitor global rib` streams them (a gRPC watch, not polling), and a reader
//! thread records each line's prefixes into a [`RouteLog`]. Tables mark these figures
//! "RIB".
//!
//! Policy: GoBGP's import and export policies are global, so the export policy accepts
//! routes only toward the monitor's neighbor set and rejects by default.

use std::fmt::Write;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ipnet::Ipv4Net;
use serde_json::Value;

use super::{DUT_ASN, DutConfig, MONITOR_ASN};
use crate::routelog::{Key, RouteLog};
use crate::topology::Slot;

/// A probe route added through the API to prove the watch stream is subscribed.
const PROBE: &str = "198.18.0.0/32";

/// gobgpd and the watch feeding its RIB log.
#[derive(Debug)]
pub struct Running {
    // Dropped first: its stream ends when gobgpd stops.
    _watch: Watch,
    gobgp: lab::Gobgp,
}

impl Running {
    /// gobgpd's pid.
    pub fn pid(&self) -> u32 {
        self.gobgp.daemon().pid()
    }

    /// gobgpd's guard.
    pub fn daemon(&self) -> &lab::Daemon {
        self.gobgp.daemon()
    }
}

/// Starts gobgpd in the slot's namespace and subscribes `log` to its RIB.
pub fn start(slot: &Slot, config: &DutConfig, log: Arc<RouteLog>) -> Result<Running> {
    let gobgp = lab::Gobgp::start(slot.netns(), &config_text(config))?;
    let watch = Watch::start(slot.netns().name(), log.clone())?;
    probe(&gobgp, &log, config)?;
    Ok(Running {
        _watch: watch,
        gobgp,
    })
}

/// Adds and removes the probe route until the watch has seen both.
fn probe(gobgp: &lab::Gobgp, log: &RouteLog, config: &DutConfig) -> Result<()> {
    let key = Key::of(PROBE.parse::<Ipv4Net>().context("probe prefix")?);
    let next_hop = config.router_id.to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        gobgp.gobgp(&[
            "global", "rib", "add", "-a", "ipv4", PROBE, "nexthop", &next_hop,
        ])?;
        if log
            .wait(Duration::from_secs(1), "the probe route", |inner| {
                inner.contains(key)
            })
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(anyhow!(
                "GoBGP's watch stream never showed the probe route {PROBE}"
            ));
        }
    }
    gobgp.gobgp(&["global", "rib", "del", "-a", "ipv4", PROBE])?;
    log.wait(Duration::from_secs(60), "the probe route to go", |inner| {
        !inner.contains(key)
    })
}

/// The gobgpd TOML configuration.
pub fn config_text(config: &DutConfig) -> String {
    let id = config.router_id;
    let keepalive = config.keepalive();
    let hold_time = config.hold_time;
    let mut text = format!(
        r#"[global.config]
  as = {DUT_ASN}
  router-id = "{id}"
  local-address-list = ["{id}"]

[global.apply-policy.config]
  default-import-policy = "accept-route"
  export-policy-list = ["to-monitor"]
  default-export-policy = "reject-route"

[[defined-sets.neighbor-sets]]
  neighbor-set-name = "monitor"
  neighbor-info-list = ["{monitor}"]

[[policy-definitions]]
  name = "to-monitor"
  [[policy-definitions.statements]]
    name = "accept-toward-monitor"
    [policy-definitions.statements.conditions.match-neighbor-set]
      neighbor-set = "monitor"
    [policy-definitions.statements.actions]
      route-disposition = "accept-route"

"#,
        monitor = config.monitor
    );
    let mut neighbor = |address: std::net::Ipv4Addr, asn: u32| {
        let _ = write!(
            text,
            r#"[[neighbors]]
  [neighbors.config]
    neighbor-address = "{address}"
    peer-as = {asn}
  [neighbors.timers.config]
    hold-time = {hold_time}
    keepalive-interval = {keepalive}
  [neighbors.transport.config]
    passive-mode = true
    local-address = "{id}"

"#
        );
    };
    neighbor(config.monitor, MONITOR_ASN);
    for peer in &config.peers {
        neighbor(*peer, config.peer_asn);
    }
    text
}

/// `gobgp -j monitor global rib` and the thread reading it.
#[derive(Debug)]
struct Watch {
    child: Child,
    reader: Option<JoinHandle<()>>,
}

impl Watch {
    fn start(netns: &str, log: Arc<RouteLog>) -> Result<Watch> {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                netns,
                "gobgp",
                "-u",
                "127.0.0.1",
                "-p",
                "50051",
            ])
            .args(["-j", "monitor", "global", "rib", "-a", "ipv4", "--current"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", lab::command_line(&command)))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("gobgp monitor has no stdout"))?;
        let reader = std::thread::Builder::new()
            .name("gobgp watch".into())
            .spawn(move || read_stream(BufReader::new(stdout), &log))
            .context("starting the GoBGP watch reader")?;
        Ok(Watch {
            child,
            reader: Some(reader),
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn read_stream(stream: impl BufRead, log: &RouteLog) {
    let mut changes = Vec::new();
    for line in stream.lines() {
        let Ok(line) = line else { break };
        let at = Instant::now();
        changes.clear();
        match parse_line(&line, &mut changes) {
            Ok(()) => log.record(at, changes.drain(..)),
            Err(error) => {
                log.record_failure(format!("gobgp monitor printed {line:?}: {error}"));
                return;
            }
        }
    }
}

/// The changes in one line of `gobgp -j monitor global rib`: a JSON array of paths, each
/// `{"nlri": {"prefix": "P"}, ..., "withdrawal": true}` (withdrawal absent when false).
fn parse_line(line: &str, out: &mut Vec<(Key, bool)>) -> Result<()> {
    let value: Value = serde_json::from_str(line).context("not JSON")?;
    let paths = value.as_array().ok_or_else(|| anyhow!("not an array"))?;
    for path in paths {
        let prefix = path["nlri"]["prefix"]
            .as_str()
            .ok_or_else(|| anyhow!("a path without nlri.prefix"))?;
        let net: Ipv4Net = prefix
            .parse()
            .with_context(|| format!("prefix {prefix:?}"))?;
        let withdrawn = path["withdrawal"].as_bool().unwrap_or(false);
        out.push((Key::of(net), !withdrawn));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// Lines printed by gobgp 3.10 (`gobgp -j monitor global rib`) for an add, a second
    /// add and a delete through `gobgp global rib add/del`.
    const LINES: [&str; 3] = [
        r#"[{"nlri":{"prefix":"10.9.0.0/24"},"age":1795507125,"best":false,"attrs":[{"type":1,"value":2},{"type":3,"nexthop":"10.0.1.1"}],"stale":false}]"#,
        r#"[{"nlri":{"prefix":"10.9.1.0/24"},"age":1795507125,"best":false,"attrs":[{"type":1,"value":2},{"type":3,"nexthop":"10.0.1.1"}],"stale":false}]"#,
        r#"[{"nlri":{"prefix":"10.9.0.0/24"},"age":1795507125,"best":false,"attrs":[{"type":1,"value":2},{"type":3,"nexthop":"10.0.1.1"}],"stale":false,"withdrawal":true}]"#,
    ];

    #[test]
    fn watch_lines_become_changes() {
        let mut out = Vec::new();
        for line in LINES {
            parse_line(line, &mut out).unwrap();
        }
        let key = |p: &str| Key::of(p.parse().unwrap());
        assert_eq!(
            out,
            [
                (key("10.9.0.0/24"), true),
                (key("10.9.1.0/24"), true),
                (key("10.9.0.0/24"), false)
            ]
        );
        assert!(parse_line("{}", &mut out).is_err());
        assert!(parse_line(r#"[{"nlri":{}}]"#, &mut out).is_err());
    }
}
