//! The rib task: owns the [`Rib`], reads [`RibInput`], flushes peers and hands FIB
//! changes on.
//!
//! Coalescing without delay: the task waits for one input, then takes whatever else
//! is already queued (up to [`MAX_BATCH`] inputs) before it flushes peers and the
//! FIB. A lone change is flushed at once; under backlog, many changes share one round
//! of UPDATE packing and FIB batching. No timer ever delays a change.

use std::time::Instant;

use tokio::sync::mpsc;

use super::Rib;
use crate::events::{Event, Events};
use crate::tasks::{FibChange, LocalChange, LocalSource, PREFIX_SCAN, RibInput, RibQuery};

/// Inputs handled between two flushes at most.
pub const MAX_BATCH: usize = 64;

impl Rib {
    /// Handles one input (`now` is the current time).
    pub fn handle(&mut self, input: RibInput, now: Instant) {
        match input {
            RibInput::PeerUp(up) => self.peer_up(up, now),
            RibInput::Update {
                peer,
                update,
                treat_as_withdraw,
            } => {
                crate::fault::on_update(crate::fault::Site::Rib, &update);
                self.update(peer, *update, treat_as_withdraw)
            }
            RibInput::EndOfRib { peer, family } => self.end_of_rib(peer, family, now),
            RibInput::RouteRefresh { peer, family } => self.route_refresh(peer, family),
            RibInput::DisableFamily { peer, family } => self.disable_family(peer, family),
            RibInput::PeerDown { peer, stale_for } => self.peer_down(peer, stale_for, now),
            RibInput::Drained { peer } => self.drained(peer),
            RibInput::Local(change) => {
                // The first replacement of the node's IPAM blocks is the IPAM task's
                // first synchronisation (see `Convergence`).
                let ipam_sync = matches!(
                    &change,
                    LocalChange::Replace {
                        source: LocalSource::IpamBlock,
                        ..
                    }
                );
                self.local_change(change);
                if ipam_sync {
                    self.ipam_synced(now);
                }
            }
            RibInput::Reconfigure(config) => self.reconfigure(config, now),
            RibInput::Query(query) => self.answer(query),
        }
    }

    /// Answers one question of the control server, the metrics task or the cluster
    /// task, in this turn.
    pub fn answer(&mut self, query: RibQuery) {
        match query {
            RibQuery::Routes { query, reply } => {
                // The asker may have given up; nothing to do then.
                let _ = reply.send(self.routes(&query));
            }
            RibQuery::Prefixes {
                family,
                after,
                from,
                reply,
            } => {
                let _ = reply.send(self.prefix_chunk(family, after, from, PREFIX_SCAN));
            }
            RibQuery::RouteChunk {
                prefixes,
                query,
                reply,
            } => {
                let _ = reply.send(self.route_chunk(&prefixes, &query));
            }
            RibQuery::PeerCounters { peer, reply } => {
                let _ = reply.send(self.counters(peer));
            }
            RibQuery::Counts { reply } => {
                let _ = reply.send(self.counts());
            }
            RibQuery::Converged { reply } => {
                let _ = reply.send(self.convergence.done);
            }
        }
    }
}

/// Runs the rib task until every sender of `inputs` is gone.
///
/// `questions` jump the queue: they are answered before any waiting input and
/// between two inputs of a batch, so a scrape or a health check waits for at most one
/// input (one UPDATE), not for the thousand queued before it under a bulk load.
pub async fn run(
    mut rib: Rib,
    mut inputs: mpsc::Receiver<RibInput>,
    mut questions: mpsc::Receiver<RibQuery>,
    mut fib: Option<mpsc::Sender<FibChange>>,
    events: Events,
) {
    send_fib(&mut rib, &mut fib, &events).await;
    // False once every sender of `questions` is gone (then it is not polled again).
    let mut asked = true;
    loop {
        let deadline = rib.next_deadline();
        let first = tokio::select! {
            biased;
            question = questions.recv(), if asked => {
                match question {
                    Some(question) => rib.answer(question),
                    None => asked = false,
                }
                continue;
            }
            input = inputs.recv() => match input {
                Some(input) => Some(input),
                None => break,
            },
            () = sleep_until(deadline) => None,
        };
        // Best-route changes are recorded only while somebody listens.
        rib.watch(events.wanted());
        if let Some(input) = first {
            rib.handle(input, Instant::now());
            for _ in 1..MAX_BATCH {
                while let Ok(question) = questions.try_recv() {
                    rib.answer(question);
                }
                match inputs.try_recv() {
                    Ok(input) => rib.handle(input, Instant::now()),
                    Err(_) => break,
                }
            }
        }
        rib.on_timer(Instant::now());
        rib.flush();
        send_fib(&mut rib, &mut fib, &events).await;
    }
    tracing::debug!("rib task: every input sender is gone, stopping");
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Tells the best-route changes of the turn on `events`, then hands the FIB changes
/// made so far to the fib task (waiting for room: the fib task drains quickly, and
/// the kernel is where a large table has to go anyway), telling the first
/// convergence on `events` too.
async fn send_fib(rib: &mut Rib, fib: &mut Option<mpsc::Sender<FibChange>>, events: &Events) {
    for change in rib.take_best_routes() {
        events.send_with(|| Event::BestRoute(change));
    }
    let changes = rib.take_fib();
    if changes.contains(&FibChange::Converged) {
        events.send_with(|| Event::Converged);
    }
    let Some(sender) = fib else {
        return;
    };
    for change in changes {
        if sender.send(change).await.is_err() {
            tracing::error!("the fib task stopped: best routes no longer reach the kernel");
            *fib = None;
            return;
        }
    }
}
