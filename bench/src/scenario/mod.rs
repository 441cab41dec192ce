//! The scenarios of issue 7 (and `k8s-join`, issue 14; `metrics`, issue 16; `bulk-unpinned`, issue 18; `bfd`, issue 17) and what they share: options (full or `--quick` sizes, runs,
//! daemons), progress lines, and the rule for failures — an anchor daemon (BIRD, FRR,
//! GoBGP) that fails fails the scenario loudly; Wren failing (while its bgpd is being
//! written) makes it "not available: <reason>" in the table, unless `--require-wren`.
//!
//! Each scenario runs every daemon once per run, runs interleaved (run 1 of every daemon,
//! then run 2, ...), so slow drifts of the machine spread over all daemons alike.

mod bfd;
mod bulk;
mod bulk_unpinned;
mod churn;
mod ipam;
mod ipam_contention;
mod k8s_join;
mod mesh;
mod metrics;
mod propagation;
mod restart;
mod scale;
mod scale_churn;
mod scale_mesh;
mod scale_reflector;

use std::fmt::Display;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};

use crate::dut::{Kind, TableKind};
use crate::report::{Collector, Table};
use crate::topology::Bench;

/// The `scale` family (issue 18), run by `scale` and by name, not by `all`: its sizes
/// take longer than the rest together.
pub const SCALE: [&str; 4] = ["scale-mesh", "scale-reflector", "scale-churn", "scale-ipam"];

/// The scenarios `--hold-time` and `--sizes` apply to (the ones with BGP sessions).
pub const SCALE_SESSION_SCENARIOS: [&str; 3] = ["scale-mesh", "scale-reflector", "scale-churn"];

/// Every scenario, in the order `all` runs them.
pub const NAMES: [&str; 10] = [
    "propagation",
    "mesh",
    "bulk",
    "bulk-unpinned",
    "churn",
    "restart",
    "ipam",
    "k8s-join",
    "metrics",
    "bfd",
];

/// The remark on GoBGP's timings of its routing table.
pub const GOBGP_RIB: &str = "GoBGP: time to its RIB (gRPC watch stream), not to the kernel: \
     gobgpd 3.10 can write the FIB only through FRR's zebra, and panics on FRR 8.4's ZAPI messages";

/// How a run is done.
#[derive(Clone, Debug)]
pub struct Options {
    /// Small sizes, one run, short idle and flap periods (CI keeps the harness working).
    pub quick: bool,
    /// Runs per figure.
    pub runs: usize,
    /// The daemons to run.
    pub daemons: Vec<Kind>,
    /// A Wren failure fails the scenario instead of marking Wren not available.
    pub require_wren: bool,
    /// The `scale` family's session hold time, when not its default
    /// ([`scale::DEFAULT_HOLD_TIME`]); its results then go to files named with it.
    pub hold_time: Option<u16>,
    /// The `scale` family's sizes (N), when not its scenarios' own (scale-ipam takes
    /// one: its claimers).
    pub sizes: Option<Vec<usize>>,
}

/// What a scenario gets.
#[derive(Debug)]
pub struct Context<'a> {
    pub options: &'a Options,
    pub bench: &'a Bench,
    scenario: &'static str,
    started: Instant,
}

impl Context<'_> {
    /// Prints a progress line to stderr: elapsed time, scenario, step.
    pub fn progress(&self, step: impl Display) {
        let elapsed = self.started.elapsed().as_secs();
        eprintln!(
            "[{:02}:{:02}] {} · {step}",
            elapsed / 60,
            elapsed % 60,
            self.scenario
        );
    }

    /// A progress line for run `run` of `subject` (a daemon, a store, a floor):
    /// `SUBJECT run R/N: STEP`.
    pub fn progress_run(&self, subject: &str, run: usize, step: impl Display) {
        self.progress(format!("{subject} run {run}/{}: {step}", self.runs()));
    }

    /// The number of runs.
    pub fn runs(&self) -> usize {
        self.options.runs
    }

    /// A full-size value or its `--quick` counterpart.
    pub fn size<T>(&self, full: T, quick: T) -> T {
        if self.options.quick { quick } else { full }
    }

    /// The daemons to run, after marking unavailable ones in `collector`; an anchor that
    /// is not installed is an error.
    pub fn daemons(&self, collector: &mut Collector) -> Result<Vec<Kind>> {
        let mut kinds = Vec::new();
        for kind in Kind::ALL {
            if !self.options.daemons.contains(&kind) {
                collector.unavailable(kind.name(), "not run (left out with --daemons)");
                continue;
            }
            match kind.available() {
                Ok(()) => kinds.push(kind),
                Err(reason) if kind == Kind::Wren && !self.options.require_wren => {
                    collector.unavailable(kind.name(), reason);
                }
                Err(reason) => bail!("{} is needed: {reason}", kind.name()),
            }
        }
        Ok(kinds)
    }

    /// Runs one measurement of `kind`. An anchor's error is returned; Wren's marks Wren
    /// not available in `collector` (and gives `None`) unless `--require-wren`.
    pub fn attempt<T>(
        &self,
        collector: &mut Collector,
        kind: Kind,
        body: impl FnOnce() -> Result<T>,
    ) -> Result<Option<T>> {
        if collector.is_unavailable(kind.name()) {
            return Ok(None);
        }
        match body() {
            Ok(value) => Ok(Some(value)),
            Err(error) if kind == Kind::Wren && !self.options.require_wren => {
                let reason = format!("{error:#}");
                let first = reason.lines().next().unwrap_or("failed").to_owned();
                self.progress(format!("Wren failed, marked not available: {first}"));
                collector.unavailable(kind.name(), first);
                Ok(None)
            }
            Err(error) => Err(error.context(format!("{} in {}", kind.name(), self.scenario))),
        }
    }
}

/// The daemon columns and Wren's ratio columns every daemon table has.
pub fn daemon_columns() -> (Vec<String>, Vec<(String, String)>) {
    let subjects = Kind::ALL.iter().map(|k| k.name().to_owned()).collect();
    let ratios = Kind::ANCHORS
        .iter()
        .map(|k| (Kind::Wren.name().to_owned(), k.name().to_owned()))
        .collect();
    (subjects, ratios)
}

/// Adds the GoBGP RIB remark to `figure` when GoBGP's table is its RIB.
pub fn remark_table(collector: &mut Collector, figure: &str) {
    if Kind::Gobgp.table_kind() == TableKind::Rib {
        collector.remark(figure, Kind::Gobgp.name(), GOBGP_RIB);
    }
}

/// Runs the scenario `name`.
pub fn run(name: &str, options: &Options, bench: &Bench) -> Result<Table> {
    let scenario = NAMES
        .into_iter()
        .chain(SCALE)
        .find(|n| *n == name)
        .ok_or_else(|| {
            anyhow!(
                "unknown scenario {name:?} (one of: all, {}, scale, {})",
                NAMES.join(", "),
                SCALE.join(", ")
            )
        })?;
    let context = Context {
        options,
        bench,
        scenario,
        started: Instant::now(),
    };
    context.progress(format!(
        "starting ({} run{}{})",
        options.runs,
        if options.runs == 1 { "" } else { "s" },
        if options.quick { ", quick sizes" } else { "" }
    ));
    let table = match scenario {
        "propagation" => propagation::run(&context),
        "mesh" => mesh::run(&context),
        "bulk" => bulk::run(&context),
        "bulk-unpinned" => bulk_unpinned::run(&context),
        "churn" => churn::run(&context),
        "restart" => restart::run(&context),
        "ipam" => ipam::run(&context),
        "metrics" => metrics::run(&context),
        "scale-mesh" => scale_mesh::run(&context),
        "scale-reflector" => scale_reflector::run(&context),
        "scale-churn" => scale_churn::run(&context),
        "scale-ipam" => ipam_contention::run(&context),
        "bfd" => bfd::run(&context),
        _ => k8s_join::run(&context),
    }?;
    context.progress(format!(
        "done in {:.0} s",
        context.started.elapsed().as_secs_f64()
    ));
    Ok(table)
}

/// Sizes as a list for a title: "10, 50, 150".
pub fn list(sizes: &[usize]) -> String {
    sizes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds between two instants (0 when `to` is earlier).
pub fn seconds(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

/// Bytes as MiB.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A generous limit for waits that scale with a number of routes: a minute plus a
/// millisecond per route.
pub fn timeout_for(routes: usize) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(routes as u64)
}
