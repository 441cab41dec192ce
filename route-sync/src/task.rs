//! The syncer task: the one owner of both netlink sockets and of the route
//! tables. It takes commands from a bounded channel and kernel events from
//! the watch socket, and after each round brings the kernel in line in
//! batches before it answers waiting callers.

use ipnet::IpNet;
use netlink_packet_route::RouteNetlinkMessage;
use tokio::sync::{mpsc, oneshot};

use crate::Snapshot;
use crate::config::{Config, TABLE_MAIN};
use crate::error::Error;
use crate::message;
use crate::netlink::RequestSocket;
use crate::reconcile::State;
use crate::route::Route;
use crate::summary::{Histogram, Summary};
use crate::watch::{self, Event, WatchSocket};

/// Requests per batch at most (errors for all of them fit the receive buffer).
const OPERATIONS_PER_BATCH: usize = 2048;
/// Commands taken per round before the kernel is brought in line.
const COMMANDS_PER_ROUND: usize = 4096;
const DUMP_ATTEMPTS: usize = 5;

/// A change to the desired routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Install or replace the route for `route.prefix`.
    Install(Route),
    /// Remove the route for this prefix.
    Remove(IpNet),
}

/// What handles send to the task.
#[derive(Debug)]
pub(crate) enum Command {
    Apply(Vec<Change>),
    Converged(oneshot::Sender<u64>),
    Sync(oneshot::Sender<()>),
    Snapshot(oneshot::Sender<Snapshot>),
    Shutdown {
        keep_routes: bool,
        done: oneshot::Sender<()>,
    },
}

/// A caller waiting for the end of the current round.
#[derive(Debug)]
enum Waiter {
    Sync(oneshot::Sender<()>),
    Snapshot(oneshot::Sender<Snapshot>),
    /// Answered with the routes deleted since `before`.
    Converged {
        reply: oneshot::Sender<u64>,
        before: u64,
    },
    Shutdown {
        keep_routes: bool,
        done: oneshot::Sender<()>,
    },
}

/// Where commands that arrive while batches are being sent go: they are
/// taken between batches, so that callers' changes wait in the packed
/// table rather than in the channel as `Change` values.
struct Intake<'a> {
    commands: &'a mut mpsc::Receiver<Command>,
    waiting: &'a mut Vec<Waiter>,
}

/// Everything the task owns.
#[derive(Debug)]
pub(crate) struct Syncer {
    config: Config,
    socket: RequestSocket,
    watch: WatchSocket,
    state: State,
    resync_wanted: bool,
    /// How long each batch took, for [`Summary`].
    batch_durations: Histogram,
    /// Where the [`Summary`] goes after every batch and every round.
    summary: tokio::sync::watch::Sender<Summary>,
}

impl Syncer {
    /// Opens the sockets and adopts what the kernel holds of ours.
    /// Returns the task with the receiving side of its [`Summary`].
    pub(crate) async fn start(
        config: Config,
        mut state: State,
    ) -> Result<(Syncer, tokio::sync::watch::Receiver<Summary>), Error> {
        let socket = RequestSocket::open()?;
        let watch = WatchSocket::open(socket.portid())?;
        let batch_durations = Histogram::default();
        let (summary, summaries) =
            tokio::sync::watch::channel(state.summary(batch_durations.clone()));
        let mut syncer = Syncer {
            config,
            socket,
            watch,
            state,
            resync_wanted: false,
            batch_durations,
            summary,
        };
        syncer.resync(true).await?;
        syncer.flush(None).await;
        syncer.publish();
        Ok((syncer, summaries))
    }

    /// Publishes the counts as they are now (a few counts per family and kind,
    /// however many routes).
    fn publish(&mut self) {
        self.summary
            .send_replace(self.state.summary(self.batch_durations.clone()));
    }

    /// Runs until shut down or until every handle is gone.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut retry = tokio::time::interval(self.config.retry_interval);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events = Vec::new();
        let mut waiting: Vec<Waiter> = Vec::new();
        loop {
            tokio::select! {
                biased;
                result = self.watch.next(&mut events) => {
                    if let Err(error) = result {
                        tracing::warn!("{error}");
                        self.resync_wanted = true;
                    }
                    for event in events.drain(..) {
                        self.event(event);
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else {
                        let keep = self.config.keep_on_shutdown;
                        self.shutdown(keep).await;
                        return;
                    };
                    self.command(command, &mut waiting);
                    for _ in 0..COMMANDS_PER_ROUND {
                        match commands.try_recv() {
                            Ok(command) => self.command(command, &mut waiting),
                            Err(_) => break,
                        }
                    }
                }
                _ = retry.tick() => self.state.retry_refused(),
            }
            let mut intake = Intake {
                commands: &mut commands,
                waiting: &mut waiting,
            };
            self.settle(Some(&mut intake)).await;
            // Before the waiters: a caller that synced reads the counts of what it
            // waited for.
            self.publish();
            for waiter in waiting.drain(..) {
                match waiter {
                    Waiter::Sync(reply) => {
                        let _ = reply.send(());
                    }
                    Waiter::Snapshot(reply) => {
                        let snapshot = self.state.snapshot();
                        let _ = reply.send(snapshot);
                    }
                    Waiter::Converged { reply, before } => {
                        let _ = reply.send(self.state.counters.deleted.saturating_sub(before));
                    }
                    Waiter::Shutdown { keep_routes, done } => {
                        self.shutdown(keep_routes).await;
                        let _ = done.send(());
                        return;
                    }
                }
            }
        }
    }

    fn command(&mut self, command: Command, waiting: &mut Vec<Waiter>) {
        match command {
            Command::Apply(changes) => {
                for change in changes {
                    match change {
                        Change::Install(route) => self.state.desire(route),
                        Change::Remove(prefix) => self.state.withdraw(prefix),
                    }
                }
            }
            Command::Converged(reply) => {
                self.state.mark_converged();
                let before = self.state.counters.deleted;
                waiting.push(Waiter::Converged { reply, before });
            }
            Command::Sync(reply) => waiting.push(Waiter::Sync(reply)),
            Command::Snapshot(reply) => waiting.push(Waiter::Snapshot(reply)),
            Command::Shutdown { keep_routes, done } => {
                waiting.push(Waiter::Shutdown { keep_routes, done })
            }
        }
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Route { deleted, route } => self.state.route_event(deleted, route),
            Event::Link(link) => {
                if self.state.link_event(link) {
                    self.resync_wanted = true;
                }
            }
            Event::Overrun => {
                tracing::info!(
                    "route-sync: rtnetlink notifications were lost; dumping the kernel again"
                );
                self.resync_wanted = true;
            }
        }
    }

    /// Takes the commands queued in the channel (after a shutdown, no
    /// more).
    fn absorb(&mut self, intake: &mut Intake<'_>) {
        for _ in 0..COMMANDS_PER_ROUND {
            if intake
                .waiting
                .iter()
                .any(|w| matches!(w, Waiter::Shutdown { .. }))
            {
                return;
            }
            match intake.commands.try_recv() {
                Ok(command) => self.command(command, intake.waiting),
                Err(_) => return,
            }
        }
    }

    /// Resyncs if needed, then sends every pending request (and those of
    /// commands arriving meanwhile, when there is an intake).
    async fn settle(&mut self, mut intake: Option<&mut Intake<'_>>) {
        for _ in 0..3 {
            if self.resync_wanted {
                if let Err(error) = self.resync(false).await {
                    tracing::warn!("{error}");
                    return;
                }
            }
            self.flush(intake.as_deref_mut()).await;
            if !self.resync_wanted {
                return;
            }
        }
    }

    async fn shutdown(&mut self, keep_routes: bool) {
        self.settle(None).await;
        if !keep_routes {
            self.state.remove_all();
            self.flush(None).await;
        }
    }

    /// Sends batches until no prefix needs a request; with an intake,
    /// takes the commands that arrived after each batch.
    async fn flush(&mut self, mut intake: Option<&mut Intake<'_>>) {
        while self.state.has_work() {
            self.state.observe();
            let mut batch = self.socket.batch();
            let mut operations = Vec::with_capacity(OPERATIONS_PER_BATCH);
            while !batch.is_full() && operations.len() < OPERATIONS_PER_BATCH {
                let Some(operation) = self.state.next_operation() else {
                    break;
                };
                let offset = batch.buffer.len();
                let mut placement = self.state.placement;
                placement.metric = operation.metric;
                let seq = batch.next_seq();
                message::encode(
                    &mut batch.buffer,
                    operation.request,
                    seq,
                    false,
                    placement,
                    operation.prefix,
                    self.state.kernel_kind(operation.kind),
                );
                batch.pushed(offset);
                operations.push(operation);
            }
            if operations.is_empty() {
                self.socket.recycle(batch);
                break;
            }
            self.state.counters.batches += 1;
            let started = std::time::Instant::now();
            let result = self.socket.execute(batch).await;
            self.batch_durations.observe(started.elapsed());
            match result {
                Ok(refusals) => self.state.applied(operations, refusals),
                Err(Error::Io { source, .. })
                    if source.raw_os_error().is_some_and(|e| e != libc::ENOBUFS) =>
                {
                    let errno = source.raw_os_error().unwrap_or(libc::EIO);
                    self.state.refused_all(operations, errno);
                }
                Err(Error::Permission { .. }) => self.state.refused_all(operations, libc::EPERM),
                Err(error) => {
                    tracing::warn!("{error}; dumping the kernel again");
                    self.state.abandon(operations);
                    self.resync_wanted = true;
                    return;
                }
            }
            self.publish();
            if let Some(intake) = intake.as_deref_mut() {
                self.absorb(intake);
            }
        }
        self.state.shrink();
    }

    /// Dumps links and routes and reloads both mirrors, route by route as
    /// the dump arrives (a million routes are never held twice).
    async fn resync(&mut self, initial: bool) -> Result<(), Error> {
        self.resync_wanted = false;
        if !initial {
            self.state.counters.resyncs += 1;
        }
        let result = self.dump(initial).await;
        if result.is_err() {
            self.resync_wanted = true;
        }
        result
    }

    async fn dump(&mut self, initial: bool) -> Result<(), Error> {
        let placement = self.state.placement;
        let mut tables = vec![placement.table];
        if placement.table != TABLE_MAIN {
            tables.push(TABLE_MAIN);
        }
        for attempt in 1..=DUMP_ATTEMPTS {
            let mut links = Vec::new();
            let mut consistent = self
                .socket
                .dump(message::dump_links, |message| {
                    if let RouteNetlinkMessage::NewLink(link) = message {
                        links.push(watch::link_state(&link, false));
                    }
                })
                .await?;
            self.state.resolver.clear_links();
            for link in links {
                self.state.resolver.update_link(link);
            }
            self.state.resolver.clear_routes();
            self.state.begin_dump();
            for ipv6 in [false, true] {
                for &table in &tables {
                    let state = &mut self.state;
                    consistent &= self
                        .socket
                        .dump(
                            |out, seq| message::dump_routes(out, seq, ipv6, table),
                            |message| {
                                if let RouteNetlinkMessage::NewRoute(route) = message {
                                    if let Some(route) = message::decode(&route) {
                                        state.dumped(route, &tables);
                                    }
                                }
                            },
                        )
                        .await?;
                }
            }
            if !consistent && attempt < DUMP_ATTEMPTS {
                continue;
            }
            self.state.end_dump(initial);
            return Ok(());
        }
        Ok(())
    }
}
