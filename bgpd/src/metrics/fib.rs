//! The FIB's series, from route-sync's [`Summary`] (its counts, one turn of its
//! task: never a walk of the routes):
//!
//! - `wren_fib_routes{family,kind}`: routes of Wren's in the kernel (`kind` as
//!   `bgpctl show fib` names it: `unicast`, `blackhole`, `type N`; the VXLAN
//!   overlay's on-link routes are `unicast`);
//! - `wren_fib_refused_routes`: desired routes that are not in the kernel (the
//!   kernel refused them or their next hop does not resolve; `show fib`'s failed);
//! - `wren_fib_operations_total{op}`: `add`, `replace`, `delete` done and `refused`
//!   by the kernel, since start;
//! - `wren_fib_batch_duration_seconds`: how long each batch of requests took the
//!   kernel (a histogram);
//! - `wren_fib_converged`: the first convergence reached route-sync (0/1).
//!
//! Without a FIB (`[fib] enabled = false`) there are none; if route-sync does not
//! answer, none either (the scrape goes on without them).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use route_sync::Summary;

use super::series::{self, Labels};

/// One scrape's view of the FIB.
#[derive(Clone, Debug)]
pub struct FibSample {
    pub summary: Summary,
}

/// `ipv4-unicast` or `ipv6-unicast`: the `family` label of every series (the BGP and
/// RIB series', bgpctl's name of the family), so that a query can join them.
pub fn family(ipv6: bool) -> &'static str {
    if ipv6 { "ipv6-unicast" } else { "ipv4-unicast" }
}

impl Collector for FibSample {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let summary = &self.summary;
        series::gauges(
            &mut encoder,
            "wren_fib_routes",
            "Routes of Wren's in the kernel, per family and route type.",
            summary.routes.iter().map(|count| {
                let labels: Labels = vec![
                    ("family", family(count.ipv6).to_owned()),
                    ("kind", count.kind.clone()),
                ];
                (labels, count.routes as i64)
            }),
        )?;
        series::gauge(
            &mut encoder,
            "wren_fib_refused_routes",
            "Desired routes that are not in the kernel (refused by it, or next hop unresolved).",
            summary.failed as i64,
        )?;
        let counters = &summary.counters;
        series::counters(
            &mut encoder,
            "wren_fib_operations",
            "Route operations done in the kernel (add, replace, delete) and refused by it, since start.",
            [
                ("add", counters.added),
                ("replace", counters.replaced),
                ("delete", counters.deleted),
                ("refused", counters.refused),
            ]
            .map(|(op, value)| (vec![("op", op.to_owned())], value)),
        )?;
        let durations = &summary.batch_durations;
        series::histograms(
            &mut encoder,
            "wren_fib_batch_duration_seconds",
            "Time the kernel took to apply one batch of route requests, in seconds.",
            [(
                Labels::new(),
                durations.sum_seconds,
                durations.count,
                durations.buckets(),
            )],
        )?;
        series::gauge(
            &mut encoder,
            "wren_fib_converged",
            "The first convergence reached the kernel: stale routes are gone (0 or 1).",
            series::flag(summary.converged),
        )?;
        Ok(())
    }
}
