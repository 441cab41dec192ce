//! `restart`: with 10k routes from one peer installed and re-advertised to a monitor peer,
//! the daemon is stopped gracefully (SIGTERM, as `systemctl restart` does) and started
//! again with the same configuration; both peers reconnect within 50 ms of it listening
//! and the generator sends its routes again. Figures: the number of kernel route changes
//! (RTM_NEWROUTE / RTM_DELROUTE of those prefixes) from the stop until the daemon is back
//! (goal for Wren: 0), and the time from the stop until the FIB holds every route and the
//! monitor peer has received every route again.
//!
//! FRR is restarted whole (zebra, staticd, bgpd). No daemon is configured for graceful
//! restart or to keep its kernel routes (BIRD's `persist`, zebra's `-r`): defaults, as
//! each package ships.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, anyhow};

use super::{Context, daemon_columns, remark_table, seconds, timeout_for};
use crate::dut::{Dut, DutConfig, Kind, PEER_ASN, TableKind, monitor_spec, peer_spec};
use crate::generator::{PeerSpec, updates};
use crate::report::{Collector, Table, Unit};
use crate::routelog::RouteLog;

pub fn run(context: &Context) -> Result<Table> {
    let routes: usize = context.size(10_000, 1_000);
    let mut collector = Collector::default();
    let kinds = context.daemons(&mut collector)?;
    let changes = "kernel route changes during the restart";
    let back = "time back to full convergence";
    collector.declare(changes, Unit::Count);
    collector.declare(back, Unit::Seconds);
    collector.chart(back);
    remark_table(&mut collector, back);
    for kind in &kinds {
        if kind.table_kind() == TableKind::Rib {
            collector.not_applicable(changes, kind.name(), super::GOBGP_RIB);
        }
    }
    for run in 1..=context.runs() {
        for &kind in &kinds {
            let step = format!("restart with {routes} routes");
            context.progress_run(kind.name(), run, step);
            if let Some((count, time)) =
                context.attempt(&mut collector, kind, || once(context, kind, routes))?
            {
                if kind.table_kind() == TableKind::Kernel {
                    collector.add(changes, Unit::Count, kind.name(), count as f64);
                }
                collector.add(back, Unit::Seconds, kind.name(), time);
            }
        }
    }
    let (subjects, ratios) = daemon_columns();
    Ok(Table {
        scenario: "restart".into(),
        title: format!(
            "restart: the daemon restarted with {} routes installed",
            routes
        ),
        notes: vec![format!(
            "One peer announces {routes} /26s, re-advertised to a monitor peer. The daemon gets \
             SIGTERM and is started again with the same configuration; the peers reconnect \
             (every 50 ms) and the generator re-sends its routes. Changes counts every netlink \
             route event for those prefixes from the stop until the daemon is back; the time \
             runs from the stop until the FIB holds every route and the monitor has received \
             every route again. Every daemon runs its package defaults for graceful restart \
             and kernel route retention (none configured)."
        )],
        rows: collector.rows(&subjects, "does not apply"),
        subjects,
        ratios,
        chart_axis: "seconds back to convergence".into(),
    })
}

/// One restart: (kernel route changes, seconds back to convergence).
fn once(context: &Context, kind: Kind, routes: usize) -> Result<(usize, f64)> {
    let bench = context.bench;
    let slot = bench.slot(kind.slug(), 1)?;
    let config = DutConfig::for_slot(&slot);
    let nets = updates::prefixes(0..routes as u32);
    let keys = updates::keys(&nets);
    let initial = updates::announce(slot.peer(0), PEER_ASN, &nets)?;
    let mut dut = Dut::start(kind, &slot, &config)?;
    let monitor_log = Arc::new(RouteLog::new(format!("monitor peer of {}", kind.name())));
    let monitor = bench.generator().peer(PeerSpec {
        reconnect: true,
        ..monitor_spec(&slot, monitor_log.clone())
    });
    let peer = bench.generator().peer(PeerSpec {
        reconnect: true,
        ..peer_spec(&slot, 0, initial)
    });
    let limit = timeout_for(routes) * 2;
    let deadline = Instant::now() + limit;
    peer.wait_established(deadline, 1)?;
    monitor.wait_established(deadline, 1)?;
    dut.table().wait_all_present(limit, &keys)?;
    monitor_log.wait_all_present(limit, &keys)?;

    let kernel = slot.kernel().clone();
    let kernel_mark = kernel.mark();
    let table_mark = dut.table().mark();
    let monitor_mark = monitor_log.mark();
    let stopped = Instant::now();
    dut.restart(&slot).context("restarting")?;
    let deadline = Instant::now() + limit;
    peer.wait_established(deadline, 2)?;
    monitor.wait_established(deadline, 2)?;
    let table = dut.table().clone();
    table.wait_all_present(limit, &keys)?;
    monitor_log.wait_all_present(limit, &keys)?;
    dut.check_alive()?;
    kernel.check_complete()?;
    let key_set: std::collections::HashSet<_> = keys.iter().copied().collect();
    let changes = kernel.count_since(kernel_mark, |e| key_set.contains(&e.key));
    // Back: the later of the last route event in the table and at the monitor (a daemon
    // that never touched the FIB is back when the monitor has everything again).
    let table_back = table.last_since(table_mark, |e| key_set.contains(&e.key));
    let monitor_back = monitor_log
        .last_since(monitor_mark, |e| e.added && key_set.contains(&e.key))
        .ok_or_else(|| anyhow!("the monitor saw no routes after the restart"))?;
    let back = table_back.map_or(monitor_back, |t| t.max(monitor_back));
    drop(peer);
    drop(monitor);
    drop(dut);
    Ok((changes, seconds(stopped, back)))
}
