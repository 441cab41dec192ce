//! `bfd` (issue 17): how fast a BFD failure reaches the kernel, and what 100 BFD sessions
//! cost. Wren, FRR (bgpd, zebra and bfdd) and BIRD (`protocol bfd`) in the same role,
//! each against the generator's BFD responder (`generator::bfd_responder`: the `bfd`
//! crate's state machine at 300 ms × 3, one session per generator peer) and its BGP
//! peers; every daemon runs 300 ms × 3 (detection time 900 ms) and hold time 90 s.
//! GoBGP is left out: Debian's GoBGP 3 has no BFD, and GoBGP v4 (`scripts/gobgp`) writes
//! no kernel routes without FRR's zebra.
//!
//! - Detection: `lanes` generator peers each announce one /26 with BFD Up and settled at
//!   300 ms both ways; one nftables rule set in the daemon's namespace then drops all
//!   their traffic both ways, and each route's deletion from the kernel is timed
//!   (netlink events) from the instant before `nft` ran. Lanes are independent trials
//!   (each BFD session's phase against the drop is its own), so `rounds` rounds of
//!   `lanes` lanes make the trials: 5 × 10 = 50 per run. Between rounds traffic comes
//!   back and the generator peers connect again.
//! - CPU: `sessions` generator peers, BGP Established and BFD Up at 300 ms with each;
//!   the CPU time of the process running BFD over `idle` seconds (FRR: bfdd alone; Wren
//!   and BIRD: the whole daemon, its BGP keepalives included).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::{Context, daemon_columns};
use crate::dut::{Dut, DutConfig, HOLD_TIME, Kind, PEER_ASN, peer_spec};
use crate::generator::bfd_responder::Responder;
use crate::generator::{Peer, PeerSpec, updates};
use crate::report::{Collector, Table, Unit};
use crate::routelog::Key;
use crate::stats::percentile;
use crate::topology::Slot;

/// The configured detection time: 300 ms × 3.
const DETECTION_MS: f64 = 900.0;
/// The nftables table the scenario drops traffic with, in the daemon's namespace.
const DROP_TABLE: &str = "wren_bench_bfd";
/// How long BFD and BGP get to come up.
const UP_TIMEOUT: Duration = Duration::from_secs(90);

pub fn run(context: &Context) -> Result<Table> {
    let lanes = context.size(10, 5);
    let rounds = context.size(5, 2);
    let sessions = context.size(100, 10);
    let idle = context.size(Duration::from_secs(60), Duration::from_secs(10));
    let trials = lanes * rounds;
    let mut collector = Collector::default();
    let p50 = format!("detect-to-kernel p50 ({trials} trials)");
    let p99 = format!("detect-to-kernel p99 ({trials} trials)");
    let max = format!("detect-to-kernel max ({trials} trials)");
    let cpu = format!(
        "CPU, {sessions} BFD sessions at 300 ms for {} s",
        idle.as_secs()
    );
    collector.declare(&p50, Unit::Milliseconds);
    collector.declare(&p99, Unit::Milliseconds);
    collector.declare(&max, Unit::Milliseconds);
    collector.declare(&cpu, Unit::CpuSeconds);
    collector.chart(&p99);
    let kinds: Vec<Kind> = context
        .daemons(&mut collector)?
        .into_iter()
        .filter(|kind| *kind != Kind::Gobgp)
        .collect();
    collector.unavailable(
        Kind::Gobgp.name(),
        "Debian's GoBGP 3 has no BFD; GoBGP v4 writes no kernel routes without zebra",
    );
    collector.remark(&cpu, Kind::Frr.name(), "bfdd alone");
    let mut nft_times = Vec::new();
    for run in 1..=context.runs() {
        for &kind in &kinds {
            context.progress_run(kind.name(), run, format!("{trials} detections"));
            if let Some((times, nft)) = context.attempt(&mut collector, kind, || {
                detections(context, kind, lanes, rounds)
            })? {
                nft_times.extend(nft);
                let quantile = |q| percentile(&times, q).unwrap_or(f64::NAN);
                context.progress(format!(
                    "{}: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                    kind.name(),
                    quantile(0.5),
                    quantile(0.99),
                    quantile(1.0)
                ));
                collector.add(&p50, Unit::Milliseconds, kind.name(), quantile(0.5));
                collector.add(&p99, Unit::Milliseconds, kind.name(), quantile(0.99));
                collector.add(&max, Unit::Milliseconds, kind.name(), quantile(1.0));
            }
        }
        for &kind in &kinds {
            let step = format!("CPU with {sessions} sessions over {} s", idle.as_secs());
            context.progress_run(kind.name(), run, step);
            if let Some(seconds) = context.attempt(&mut collector, kind, || {
                cpu_time(context, kind, sessions, idle)
            })? {
                context.progress(format!("{}: {seconds:.2} CPU s", kind.name()));
                collector.add(&cpu, Unit::CpuSeconds, kind.name(), seconds);
            }
        }
    }
    let nft_median = percentile(&nft_times, 0.5).unwrap_or(f64::NAN);
    let (subjects, ratios) = daemon_columns();
    Ok(Table {
        scenario: "bfd".into(),
        title: format!(
            "bfd: BFD failure to kernel route gone, and the CPU of {sessions} BFD sessions"
        ),
        notes: vec![
            format!(
                "Every daemon runs BFD at 300 ms × 3 (detection time {DETECTION_MS:.0} ms; \
                 goal for Wren: p99 ≤ 1.2 × that, {:.0} ms) with hold time {HOLD_TIME} s \
                 against the generator's BFD responder (the bfd crate at 300 ms × 3) and \
                 BGP peers. Detection: {lanes} peers each announce one /26; with BFD Up and \
                 settled at 300 ms, one nftables rule set drops their traffic both ways in \
                 the daemon's namespace, and each route's deletion (netlink event) is timed \
                 from the instant before `nft` ran (median nft run {nft_median:.1} ms, \
                 included). {rounds} rounds of {lanes} parallel lanes: {trials} trials per \
                 run; the peers reconnect between rounds.",
                1.2 * DETECTION_MS
            ),
            format!(
                "CPU: {sessions} BGP peers with BFD Up at 300 ms, CPU time (user + system) \
                 over {} s of the process running BFD: Wren's bgpd and BIRD whole, FRR's \
                 bfdd alone (its bgpd and zebra not counted). Goal for Wren: CPU ≤ BIRD's.",
                idle.as_secs()
            ),
        ],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "ms from the drop to the kernel route gone (p99)".into(),
    })
}

/// The daemon `kind` with BFD towards `peers` generator peers of a new slot.
fn start(context: &Context, kind: Kind, peers: usize) -> Result<(Slot, Dut)> {
    let slot = context.bench.slot(kind.slug(), peers)?;
    let mut config = DutConfig::for_slot(&slot);
    config.bfd = true;
    let dut = Dut::start(kind, &slot, &config)?;
    Ok((slot, dut))
}

/// A generator peer of `slot` announcing `initial`.
fn peer(context: &Context, slot: &Slot, index: usize, initial: bytes::Bytes) -> Peer {
    context.bench.generator().peer(PeerSpec {
        reconnect: true,
        ..peer_spec(slot, index, initial)
    })
}

/// `rounds` rounds of `lanes` detections: the milliseconds from each drop to each
/// route gone, and how long each `nft` run took (ms).
fn detections(
    context: &Context,
    kind: Kind,
    lanes: usize,
    rounds: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (slot, dut) = start(context, kind, lanes)?;
    let nets: Vec<_> = (0..lanes)
        .map(|lane| updates::prefixes(lane as u32..lane as u32 + 1))
        .collect();
    let keys: Vec<Key> = nets.iter().flat_map(|net| updates::keys(net)).collect();
    let addresses = slot.peers();
    let responder = context.bench.generator().bfd(slot.daemon(), &addresses)?;
    let mut times = Vec::new();
    let mut nft_times = Vec::new();
    for round in 1..=rounds {
        let peers: Vec<Peer> = nets
            .iter()
            .enumerate()
            .map(|(lane, net)| {
                Ok(peer(
                    context,
                    &slot,
                    lane,
                    updates::announce(slot.peer(lane), PEER_ASN, net)?,
                ))
            })
            .collect::<Result<_>>()?;
        let deadline = Instant::now() + UP_TIMEOUT;
        for peer in &peers {
            peer.wait_established(deadline, 1)?;
        }
        dut.table().wait_all_present(UP_TIMEOUT, &keys)?;
        wait_settled(&dut, &responder, lanes).with_context(|| format!("round {round}"))?;
        // Both sides at 300 ms for a few intervals before the drop.
        std::thread::sleep(Duration::from_secs(1));
        if responder.settled() != lanes {
            bail!("round {round}: a BFD session left Up before the drop");
        }
        let mark = dut.table().mark();
        let (dropped, nft) = block(&slot, &addresses)?;
        nft_times.push(nft.as_secs_f64() * 1000.0);
        let gone = dut
            .table()
            .wait_none_present(Duration::from_secs(10), &keys);
        unblock(&slot)?;
        gone.with_context(|| {
            format!("round {round}: routes still in the kernel 10 s after the drop")
        })?;
        for key in &keys {
            let at = dut
                .table()
                .first_since(mark, |event| event.key == *key && !event.added)
                .with_context(|| format!("round {round}: no deletion event"))?;
            times.push(at.saturating_duration_since(dropped).as_secs_f64() * 1000.0);
        }
        // The old sessions are dead for the daemon: close them, and the next round
        // connects anew.
        drop(peers);
    }
    dut.check_alive()?;
    slot.kernel().check_complete()?;
    Ok((times, nft_times))
}

/// CPU seconds of the BFD process of `kind` over `idle` with `sessions` sessions Up.
fn cpu_time(context: &Context, kind: Kind, sessions: usize, idle: Duration) -> Result<f64> {
    let (slot, dut) = start(context, kind, sessions)?;
    let addresses = slot.peers();
    let responder = context.bench.generator().bfd(slot.daemon(), &addresses)?;
    let peers: Vec<Peer> = (0..sessions)
        .map(|index| peer(context, &slot, index, bytes::Bytes::new()))
        .collect();
    let deadline = Instant::now() + UP_TIMEOUT;
    for peer in &peers {
        peer.wait_established(deadline, 1)?;
    }
    wait_settled(&dut, &responder, sessions)?;
    std::thread::sleep(Duration::from_secs(2));
    let pids = dut.bfd_pids();
    if pids.is_empty() {
        bail!("no BFD process");
    }
    let before = crate::system::usage_sum(&pids)?;
    std::thread::sleep(idle);
    let after = crate::system::usage_sum(&pids)?;
    dut.check_alive()?;
    let settled = responder.settled();
    if settled != sessions {
        bail!("{settled} of {sessions} BFD sessions Up at the end of the measurement");
    }
    drop(peers);
    Ok(after.cpu_seconds - before.cpu_seconds)
}

/// Waits until all `sessions` of `responder` are Up at 300 ms both ways.
fn wait_settled(dut: &Dut, responder: &Responder, sessions: usize) -> Result<()> {
    lab::wait_for(UP_TIMEOUT, "every BFD session Up at 300 ms", || {
        dut.check_alive()?;
        let settled = responder.settled();
        if settled == sessions {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{settled} of {sessions} settled"))
        }
    })?;
    Ok(())
}

/// Drops all traffic between the daemon and `peers`, both ways, with one nftables
/// command in the daemon's namespace; returns the instant before it ran and how long
/// it took.
fn block(slot: &Slot, peers: &[Ipv4Addr]) -> Result<(Instant, Duration)> {
    let set = peers
        .iter()
        .map(Ipv4Addr::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        "add table inet {DROP_TABLE}
add chain inet {DROP_TABLE} input {{ type filter hook input priority 0 ; policy accept ; }}
add chain inet {DROP_TABLE} output {{ type filter hook output priority 0 ; policy accept ; }}
add rule inet {DROP_TABLE} input ip saddr {{ {set} }} drop
add rule inet {DROP_TABLE} output ip daddr {{ {set} }} drop
"
    );
    let path = slot.netns().dir().join("bfd-drop.nft");
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    let path = path.to_string_lossy().into_owned();
    let before = Instant::now();
    slot.netns().exec(&["nft", "-f", &path])?;
    Ok((before, before.elapsed()))
}

/// Deletes the table [`block`] made.
fn unblock(slot: &Slot) -> Result<()> {
    slot.netns()
        .exec(&["nft", "delete", "table", "inet", DROP_TABLE])?;
    Ok(())
}
