//! `bulk-unpinned`: a node's start load (1 peer × 200k distinct IPv4 /26s sent at once on
//! an Established session, as in `bulk`) with the daemons NOT pinned: every thread of the
//! daemon may run on both CPUs, beside the generator and a /proc poller reading the
//! daemon's status and threads every 10 ms, the way a node runs it next to a monitoring
//! agent. Issue 18's held-out runs found Wren bimodal there while the pinned `bulk` was
//! steady, so this scenario makes at least [`MIN_RUNS`] runs and lists every run's time in
//! its notes, with the spread and the goal (every Wren run at most BIRD's slowest).

use anyhow::Result;

use super::bulk::{self, Figures, Load, Placement};
use super::{Context, daemon_columns, remark_table};
use crate::dut::Kind;
use crate::report::{Collector, Table, Unit};
use crate::stats::Summary;

/// Runs made at least, whatever `--runs` says (except with `--quick`).
pub const MIN_RUNS: usize = 7;

pub fn run(context: &Context) -> Result<Table> {
    let load = context.size(
        Load {
            peers: 1,
            per_peer: 200_000,
        },
        Load {
            peers: 1,
            per_peer: 20_000,
        },
    );
    let runs = if context.options.quick {
        context.runs()
    } else {
        context.runs().max(MIN_RUNS)
    };
    let name = load.name();
    let time = bulk::time_figure(&name);
    let to_first = format!("{name}: first UPDATE octet → first route");
    let per_route = format!("{name}: bytes per route");
    let mut collector = Collector::default();
    let kinds = context.daemons(&mut collector)?;
    collector.declare(&time, Unit::Seconds);
    collector.declare(&to_first, Unit::Seconds);
    collector.chart(&time);
    for figure in [&time, &to_first, &bulk::spread_figure(&name)] {
        remark_table(&mut collector, figure);
    }
    for run in 1..=runs {
        for &kind in &kinds {
            context.progress(format!(
                "{} run {run}/{runs}: {name}, unpinned",
                kind.name()
            ));
            let figures = context.attempt(&mut collector, kind, || {
                bulk::once(context, kind, load, Placement::Unpinned)
            })?;
            if let Some(figures) = figures {
                collector.add(&to_first, Unit::Seconds, kind.name(), figures.to_first);
                figures.record(&mut collector, &name, kind);
                context.progress(describe(kind, &figures));
            }
        }
    }
    let (subjects, ratios) = daemon_columns();
    let mut notes = vec![format!(
        "The daemon is not pinned: after it listens, every thread of it may run on both CPUs, \
         beside the generator (pinned to one of them) and a /proc poller (allowed both) that \
         reads the daemon's /proc/PID/status and every /proc/PID/task/TID/stat every 10 ms. \
         At least {MIN_RUNS} runs, interleaved across daemons. Times as in `bulk`: from the \
         instant the generator starts writing the pre-encoded UPDATEs to the netlink event \
         of the first and of the last route; bytes per route = (VmHWM − VmRSS before the \
         routes) / routes; FRR is bgpd + zebra."
    )];
    notes.push(every_run(&collector, &subjects, &time, "time to FIB"));
    notes.push(every_run(
        &collector,
        &subjects,
        &to_first,
        "first UPDATE octet → first route",
    ));
    notes.push(goals(&collector, &time, &per_route));
    Ok(Table {
        scenario: "bulk-unpinned".into(),
        title: "bulk-unpinned: a node's bulk load with the daemons not pinned, every run".into(),
        notes,
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "seconds to all routes in the FIB".into(),
    })
}

/// One run's progress line: times and the busiest threads.
fn describe(kind: Kind, figures: &Figures) -> String {
    let threads: Vec<String> = figures
        .threads
        .iter()
        .take(5)
        .map(|(name, cpu)| format!("{name} {cpu:.2}"))
        .collect();
    format!(
        "{}: {:.2} s to FIB, first route at {:.2} s, {:.2} CPU s, {:.0} B/route; threads (CPU s): {}",
        kind.name(),
        figures.time,
        figures.to_first,
        figures.cpu,
        figures.per_route,
        threads.join(", ")
    )
}

/// "Every run, time to FIB (s): Wren 1.02, 3.97, …; BIRD …" in run order.
fn every_run(collector: &Collector, subjects: &[String], figure: &str, what: &str) -> String {
    let parts: Vec<String> = subjects
        .iter()
        .filter(|subject| !collector.runs(figure, subject).is_empty())
        .map(|subject| {
            let runs: Vec<String> = collector
                .runs(figure, subject)
                .iter()
                .map(|value| Unit::Seconds.format(*value))
                .collect();
            format!("{subject} {}", runs.join(", "))
        })
        .collect();
    format!("Every run, {what} (s), in run order: {}.", parts.join("; "))
}

/// Issue 18's goals, checked on this batch: every Wren run at most BIRD's slowest, and
/// Wren's bytes per route at most BIRD's (medians).
fn goals(collector: &Collector, time: &str, per_route: &str) -> String {
    let wren = Kind::Wren.name();
    let bird = Kind::Bird.name();
    let (Some(wren_time), Some(bird_time)) = (
        Summary::of(collector.runs(time, wren)),
        Summary::of(collector.runs(time, bird)),
    ) else {
        return "Goals not checked: Wren or BIRD has no runs.".into();
    };
    let within = collector
        .runs(time, wren)
        .iter()
        .filter(|t| **t <= bird_time.max)
        .count();
    let mut text = format!(
        "Goal, every Wren run at most BIRD's slowest ({} s): {within} of {} runs \
         (Wren's slowest {} s, spread {} s; BIRD's spread {} s).",
        Unit::Seconds.format(bird_time.max),
        wren_time.runs,
        Unit::Seconds.format(wren_time.max),
        Unit::Seconds.format(wren_time.max - wren_time.min),
        Unit::Seconds.format(bird_time.max - bird_time.min),
    );
    if let (Some(w), Some(b)) = (
        Summary::of(collector.runs(per_route, wren)),
        Summary::of(collector.runs(per_route, bird)),
    ) {
        text.push_str(&format!(
            " Goal, peak bytes per route at most BIRD's: Wren {} B, BIRD {} B (medians; {}).",
            Unit::Bytes.format(w.median),
            Unit::Bytes.format(b.median),
            if w.median <= b.median {
                "met"
            } else {
                "missed"
            }
        ));
    }
    text
}
