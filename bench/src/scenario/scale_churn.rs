//! `scale-churn` (issue 18, "Churn"): two real route reflectors of one kind carrying the
//! blocks of N = 5000 simulated clients (`--quick`: 50), set up as in `scale-reflector`.
//! Once every client has every block, a tenth of the clients flap, spread over a minute
//! (`--quick`: 5 s): each closes both its sessions, stays down [`DOWN`], and connects
//! again announcing its block. Every other client (stable) follows the flapping clients'
//! blocks one by one ([`crate::generator::watch`]) and counts the rest.
//!
//! Figures: the reflectors' CPU (both, user + system) from the first flap until every
//! flapped block is back at every stable client; how long that took; the time a stable
//! client session waited for a flapped block to come back, from the moment the flapped
//! client started connecting again (median, p99 and worst over every stable session and
//! flapped block); stable blocks withdrawn from stable clients (must be 0); flapped blocks
//! missing at a stable client at the end; stable sessions lost (hold timer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::scale::{self, Figure, Recorder, SizeFigures};
use super::scale_reflector::{self as reflector, Side};
use super::{Context, list, seconds};
use crate::dut::Kind;
use crate::generator::Watch;
use crate::report::{Table, Unit};
use crate::stats::percentile;

/// How long a flapping client stays down.
const DOWN: Duration = Duration::from_secs(1);

/// One client in this many flaps.
const FLAPPING_ONE_IN: usize = 10;

pub fn run(context: &Context) -> Result<Table> {
    let sizes = scale::sizes(context, &[5000], &[50]);
    let limit = scale::limit(context);
    let period = context.size(Duration::from_secs(60), Duration::from_secs(5));
    let hold = scale::hold_time(context);
    let collector = scale::measure_all(
        context,
        &sizes,
        |largest| 2 * largest,
        |all| Figures::new(all, hold),
        |kind, size| measure(context, kind, size, limit, period),
    )?;
    Ok(scale::table(
        context,
        &collector,
        "scale-churn",
        format!(
            "scale-churn: two route reflectors, {} simulated clients, a tenth flapping over {} s",
            list(&sizes),
            period.as_secs()
        ),
        format!(
            "Two daemons of one kind (AS 64512) as in scale-reflector (every client a passive \
             iBGP route reflector client of both, hold time {hold} s). Once every client has \
             every block, one client in {FLAPPING_ONE_IN} flaps, one after another spread over \
             {} s: it closes both sessions (FIN), stays down {} s and connects again, \
             announcing its block. Stable clients follow the flapped blocks one by one. \
             Waits run from the flapped client's reconnect to the flapped block announced \
             again at a stable client session, over every stable session and flapped block \
             (median, p99, worst). CPU is both reflectors' user + system time from the first \
             flap until every flapped block is back everywhere. A kind that does not converge \
             within {} s first gets the count it reached and no churn figures. See \
             bench/src/scenario/scale_churn.rs.",
            period.as_secs(),
            DOWN.as_secs(),
            limit.as_secs()
        ),
        "seconds a stable client waits for a flapped block; CPU seconds",
    ))
}

/// The figures of one size.
struct Figures {
    converged: Figure,
    worst: Figure,
    median: Figure,
    p99: Figure,
    cpu: Figure,
    churn: Figure,
    stable_withdrawn: Figure,
    missing: Figure,
    lost: Figure,
}

impl Figures {
    fn new(all: &mut SizeFigures, hold: u16) -> Figures {
        let n = all.size();
        let flapping = n / FLAPPING_ONE_IN;
        let flaps = format!("{n} clients, {flapping} flapping");
        Figures {
            worst: all.time(format!("{flaps}: worst wait for a flapped block")),
            p99: all.add(
                format!("{flaps}: p99 wait for a flapped block"),
                Unit::Seconds,
            ),
            median: all.add(
                format!("{flaps}: median wait for a flapped block"),
                Unit::Seconds,
            ),
            churn: all.add(
                format!("{flaps}: first flap to every block back everywhere"),
                Unit::Seconds,
            ),
            converged: all.add(
                format!("{n} clients: every client has every block (before the churn)"),
                Unit::Seconds,
            ),
            cpu: all.memory(format!("{flaps}: CPU of both reflectors"), Unit::CpuSeconds),
            stable_withdrawn: all.add(
                format!("{flaps}: stable blocks withdrawn from stable clients"),
                Unit::Count,
            ),
            missing: all.add(
                format!("{flaps}: flapped blocks missing at stable clients"),
                Unit::Count,
            ),
            lost: all.add(
                format!("{n} clients: stable sessions lost (hold time {hold} s)"),
                Unit::Count,
            ),
        }
    }
}

struct Outcome {
    /// Seconds until every client session had every block, or how many had at the limit.
    converged: Result<f64, reflector::Shortfall>,
    churn: Option<Churn>,
    limit: Duration,
}

/// The churn's figures.
struct Churn {
    /// Every (stable session, flapped block) wait in seconds, sorted.
    waits: Vec<f64>,
    /// From the first flap until every block was back (or the deadline).
    took: f64,
    cpu: f64,
    stable_withdrawn: u64,
    /// Pairs whose block was never withdrawn through the flap (left out of `waits`).
    kept: usize,
    missing: usize,
    lost: usize,
}

impl scale::Measurement<Figures> for Outcome {
    fn record(self, f: &Figures, recorder: &mut Recorder) {
        reflector::record_converged(recorder, &f.converged, self.limit, self.converged);
        let Some(churn) = self.churn else {
            return;
        };
        if churn.missing == 0 {
            let quantiles = [(&f.median, 0.5), (&f.p99, 0.99), (&f.worst, 1.0)];
            for (figure, q) in quantiles {
                if let Some(value) = percentile(&churn.waits, q) {
                    recorder.add(figure, value);
                }
            }
            recorder.add(&f.churn, churn.took);
            if churn.kept > 0 {
                let what = format!(
                    "{} (stable session, flapped block) pairs kept the block through its flap \
                     (never withdrawn), left out of the waits",
                    churn.kept
                );
                recorder.progress(&what);
                recorder.remark(&f.worst, what);
            }
        } else {
            let what = format!(
                "{} (stable session, flapped block) pairs without the block {:.0} s after the \
                 first flap",
                churn.missing, churn.took
            );
            for figure in [&f.median, &f.p99, &f.worst, &f.churn] {
                recorder.short(figure, what.clone());
            }
        }
        recorder.add(&f.cpu, churn.cpu);
        recorder.add(&f.stable_withdrawn, churn.stable_withdrawn as f64);
        recorder.add(&f.missing, churn.missing as f64);
        recorder.add(&f.lost, churn.lost as f64);
    }
}

/// The clients that flap: one in [`FLAPPING_ONE_IN`], spread over the range.
fn flapping(size: usize) -> Vec<usize> {
    (0..size / FLAPPING_ONE_IN)
        .map(|k| k * FLAPPING_ONE_IN + FLAPPING_ONE_IN / 2)
        .collect()
}

fn measure(
    context: &Context,
    kind: Kind,
    size: usize,
    limit: Duration,
    period: Duration,
) -> Result<Outcome> {
    let mut sides = reflector::start_pair(context, kind, "c", size)?;
    let initial = reflector::client_updates(&sides, size)?;
    let flapping = flapping(size);
    let blocks: Vec<_> = flapping.iter().map(|&i| scale::node_block(i)).collect();
    let watch = Arc::new(Watch::new(&blocks));
    let start = Instant::now();
    for i in 0..size {
        let stable = !flapping.contains(&i);
        for (side, initial) in sides.iter_mut().zip(&initial) {
            let remote = side.slot.daemon();
            let bytes = initial[i].clone();
            let watch = stable.then(|| watch.clone());
            let peer = scale::start_watching_node(context, &side.slot, remote, i, bytes, watch);
            side.peers.push(peer);
        }
    }
    let converged = reflector::wait_converged(&sides, size as u64 - 1, start + limit)
        .map(|at| seconds(start, at));
    if converged.is_err() {
        reflector::finish(sides);
        return Ok(Outcome {
            converged,
            churn: None,
            limit,
        });
    }
    for side in &sides {
        if let Some(dut) = &side.dut {
            dut.check_alive()?;
        }
    }
    let churn = churn(context, &mut sides, size, &flapping, &watch, limit, period)?;
    for side in &sides {
        if let Some(dut) = &side.dut {
            dut.check_alive()?;
        }
    }
    reflector::finish(sides);
    Ok(Outcome {
        converged,
        churn: Some(churn),
        limit,
    })
}

/// Flaps the `flapping` clients over `period`, then waits (up to `limit` after the last
/// reconnect) until every stable client session has every flapped block again.
fn churn(
    context: &Context,
    sides: &mut [Side],
    size: usize,
    flapping: &[usize],
    watch: &Watch,
    limit: Duration,
    period: Duration,
) -> Result<Churn> {
    let initial = reflector::client_updates(sides, size)?;
    // Every flap's down and up, in time order.
    let count = flapping.len().max(1) as u32;
    let first = Instant::now() + Duration::from_millis(100);
    let mut events: Vec<(Instant, usize, bool)> = (0..flapping.len())
        .flat_map(|k| {
            let down = first + period * k as u32 / count;
            [(down, k, false), (down + DOWN, k, true)]
        })
        .collect();
    events.sort_by_key(|(at, _, up)| (*at, *up));
    let cpu_before = reflector::usage(sides)?.cpu_seconds;
    let mut flaps = vec![
        Flap {
            down: first,
            up: first
        };
        flapping.len()
    ];
    context.progress(format!(
        "{} of {size} clients flapping over {} s",
        flapping.len(),
        period.as_secs()
    ));
    for (at, k, up) in events {
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        let i = flapping[k];
        let now = Instant::now();
        if up {
            flaps[k].up = now;
        } else {
            flaps[k].down = now;
        }
        for (side, initial) in sides.iter_mut().zip(&initial) {
            if up {
                let remote = side.slot.daemon();
                let bytes = initial[i].clone();
                side.peers[i] = scale::start_node(context, &side.slot, remote, i, bytes);
            } else {
                side.peers[i].close();
            }
        }
    }
    // Every stable session gets every flapped block back (looked at every 10 ms).
    let deadline = Instant::now() + limit;
    for side in sides.iter() {
        for (i, peer) in side.peers.iter().enumerate() {
            if flapping.contains(&i) {
                continue;
            }
            while Instant::now() < deadline && !all_back(peer, watch, &flaps) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let ended = Instant::now();
    let cpu = reflector::usage(sides)?.cpu_seconds - cpu_before;
    let mut waits = Vec::new();
    let mut kept = 0;
    let mut missing = 0;
    let mut stable_withdrawn = 0;
    let mut stable = Vec::new();
    for side in sides.iter() {
        for (i, peer) in side.peers.iter().enumerate() {
            if flapping.contains(&i) {
                continue;
            }
            stable.push(peer);
            peer.seen(|seen| {
                stable_withdrawn += seen.other_withdrawn;
                for (k, flap) in flaps.iter().enumerate() {
                    match seen.present_since(watch, k) {
                        Some(at) if at < flap.down => kept += 1,
                        Some(at) => waits.push(seconds(flap.up, at)),
                        None => missing += 1,
                    }
                }
            });
        }
    }
    waits.sort_by(f64::total_cmp);
    let lost = stable
        .iter()
        .filter(|p| {
            let s = p.state();
            !s.established || s.sessions != 1
        })
        .count();
    Ok(Churn {
        waits,
        took: seconds(first, ended),
        cpu,
        stable_withdrawn,
        kept,
        missing,
        lost,
    })
}

/// When one flapping client went down and started connecting again.
#[derive(Clone, Copy, Debug)]
struct Flap {
    down: Instant,
    up: Instant,
}

/// Whether `peer` has every flapped block, announced since its client reconnected. (A
/// block a reflector never withdrew, still announced from before its flap, keeps this
/// false until the deadline: such a pair is counted apart, as kept, at the end.)
fn all_back(peer: &crate::generator::Peer, watch: &Watch, flaps: &[Flap]) -> bool {
    peer.seen(|seen| {
        flaps
            .iter()
            .enumerate()
            .all(|(k, flap)| seen.present_since(watch, k).is_some_and(|at| at >= flap.up))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn one_client_in_ten_flaps() {
        assert_eq!(flapping(50), [5, 15, 25, 35, 45]);
        assert!(flapping(9).is_empty());
    }

    /// The `--quick` churn against two real bgpd reflectors (the debug build CI makes):
    /// 5 of 50 clients flap over 5 s; every flapped block comes back at every stable
    /// client, no stable block is withdrawn, no stable session is lost.
    #[test]
    fn quick_churn_brings_every_flapped_block_back_with_wren() {
        let Some(table) = scale::quick_with_wren("scale-churn") else {
            return;
        };
        let figures = Figures::new(&mut SizeFigures::new(50), scale::DEFAULT_HOLD_TIME);
        let value = |figure| scale::wren_first_run(&table, figure);
        assert_eq!(value(&figures.missing), 0.0);
        assert_eq!(value(&figures.stable_withdrawn), 0.0);
        assert_eq!(value(&figures.lost), 0.0);
        assert!(value(&figures.worst) > 0.0);
        assert!(value(&figures.worst) >= value(&figures.median));
        assert!(value(&figures.cpu) > 0.0);
    }
}
