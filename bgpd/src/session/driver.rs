//! The session task: waits for the next thing to happen (a command, a frame on a
//! connection, our connection attempt, a timer, write progress, UPDATEs from the
//! rib task), turns it into state machine events and executes the actions
//! (child module `actions`), then applies the collision procedure between the primary and
//! the secondary state machine.

mod actions;
mod bfd;
mod wait;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::Notification;
use bgp_proto::fsm::{Event, Fsm, Initiator, Loser, State, Timer, collision};
use bgp_proto::notification::cease_subcode;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::SessionCommand;
use super::connection::{Connection, Frame};
use super::settings::{NeighborSettings, SpeakerSettings};
use super::status::{MessageCounters, NeighborStatus, SharedStatus};
use crate::events::Events;
use crate::queue;
use crate::tasks::{Outbound, PeerId, RibInput};
use bgp_proto::FramingError;
use futures::FutureExt;
use wait::{
    ConnectionEvent, connection_event, poll_connecting, poll_seldom, recv_outbound, seldom,
    sleep_until,
};

/// Most frames and progress reports taken at once before a hold or send hold timer
/// expires (see `Driver::take_arrived`).
const ARRIVED_EVENTS: usize = 64;

/// The state machines of one neighbor and what each one holds.
pub(super) struct Driver {
    peer: PeerId,
    /// Shared with the supervisor's entry of the neighbor.
    settings: Arc<NeighborSettings>,
    speaker: Arc<SpeakerSettings>,
    rib: mpsc::Sender<RibInput>,
    commands: queue::Receiver<Box<SessionCommand>>,
    status: SharedStatus,
    counters: Arc<MessageCounters>,
    events: Events,
    primary: Slot,
    /// Boxed: a collision is rare, and the task's future carries the Driver.
    secondary: Option<Box<Slot>>,
    /// Our connection attempt in flight (the primary's).
    connecting: Option<Connecting>,
    /// The Established session, if any (on the slot whose `up` is set).
    up: Option<Up>,
    /// Writers still flushing closed connections.
    closing: Vec<JoinHandle<()>>,
    admin_down: bool,
    /// Set by `Stop`: end once the NOTIFICATION is out.
    stopping: Option<oneshot::Sender<()>>,
    /// A dynamic neighbor had a connection (it ends when it has none any more).
    had_connection: bool,
    /// Graceful restart helper: the peer's routes are kept stale until then, unless
    /// it comes back (then its End-of-RIB decides).
    stale_deadline: Option<Instant>,
    malformed_log: actions::RateLimit,
    /// What was last published, and a counter of settings changes for it.
    published: Option<actions::Published>,
    settings_generation: u64,
    /// The BFD task, for `bfd`.
    bfd: Option<crate::bfd_task::BfdHandle>,
    /// The BFD session this neighbor follows (`bfd` configured, local address known).
    bfd_subscription: Option<crate::bfd_task::Subscription>,
    /// The session is closing because BFD went down with `on_down = "graceful"`:
    /// its loss keeps the peer's routes stale.
    bfd_graceful_close: bool,
}

/// One state machine with its connection and timers.
struct Slot {
    fsm: Fsm,
    conn: Option<Connection>,
    timers: [Option<Instant>; Timer::ALL.len()],
    /// This slot's connection is the Established session.
    up: bool,
}

/// The Established session.
struct Up {
    outbound: queue::Receiver<Box<Outbound>>,
    /// The rib task dropped its sender (it ended): stop polling.
    outbound_closed: bool,
    /// A batch was taken from a full channel and the rib's input channel had no
    /// room for the `Drained` that says so: it is sent from `wait` when there is.
    /// A session parked there holds its small waiting future; parked inside a turn
    /// it held the turn's boxed future (5.4 KB), and a route reflector's thousands
    /// of clients asking for their next batch at once held 27 MB of them (issue 18,
    /// heaptrack at 5000 clients).
    drained_owed: bool,
    negotiated: Arc<bgp_proto::fsm::Negotiated>,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

/// Which state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Primary,
    Secondary,
}

/// What woke the task (a frame is large, but moved once; boxing would cost an
/// allocation per message).
#[allow(clippy::large_enum_variant)]
enum Wake {
    Command(Option<SessionCommand>),
    Frame(Which, Option<Result<Frame, FramingError>>),
    Connected(io::Result<TcpStream>),
    Progress(Which),
    Timers,
    Outbound(Option<Outbound>),
    /// The `Drained` owed to the rib was sent (or the rib is gone).
    DrainedTold,
    /// The followed BFD session changed.
    Bfd,
}

impl Slot {
    fn new(fsm: Fsm) -> Slot {
        Slot {
            fsm,
            conn: None,
            timers: [None; Timer::ALL.len()],
            up: false,
        }
    }
}

/// A primary state machine for `settings`, on the template of the sessions
/// configured alike.
fn state_machine(
    settings: &NeighborSettings,
    speaker: &SpeakerSettings,
) -> Result<Fsm, bgp_proto::fsm::ConfigError> {
    let config = settings.session_config(speaker, Instant::now());
    Ok(Fsm::from_template(&super::templates::template(config)?))
}

fn timer_index(timer: Timer) -> usize {
    Timer::ALL.iter().position(|t| *t == timer).unwrap_or(0)
}

/// The status before anything happened.
pub(super) fn initial_status(peer: PeerId, settings: &NeighborSettings) -> NeighborStatus {
    NeighborStatus {
        peer,
        address: settings.address,
        remote_asn: settings.remote_asn.get(),
        description: settings.description.clone(),
        range: settings.range,
        state: State::Idle,
        since: Instant::now(),
        changed_at: std::time::SystemTime::now(),
        admin_down: settings.shutdown,
        passive: settings.passive,
        hold_time: settings.hold_time.seconds(),
        keepalive: settings.keepalive,
        connect_retry: settings.connect_retry,
        connection: None,
        negotiated: None,
        established_count: 0,
        last_error: None,
    }
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        peer: PeerId,
        settings: Arc<NeighborSettings>,
        speaker: Arc<SpeakerSettings>,
        rib: mpsc::Sender<RibInput>,
        commands: queue::Receiver<Box<SessionCommand>>,
        status: SharedStatus,
        counters: Arc<MessageCounters>,
        events: Events,
        bfd: Option<crate::bfd_task::BfdHandle>,
    ) -> Result<Driver, bgp_proto::fsm::ConfigError> {
        let fsm = state_machine(&settings, &speaker)?;
        let admin_down = settings.shutdown;
        Ok(Driver {
            peer,
            settings,
            speaker,
            rib,
            commands,
            status,
            counters,
            events,
            primary: Slot::new(fsm),
            secondary: None,
            connecting: None,
            up: None,
            closing: Vec::new(),
            admin_down,
            stopping: None,
            had_connection: false,
            stale_deadline: None,
            malformed_log: actions::RateLimit::default(),
            published: None,
            settings_generation: 0,
            bfd,
            bfd_subscription: None,
            bfd_graceful_close: false,
        })
    }

    /// The task: runs until stopped, or (dynamic neighbors) until the connection
    /// is gone.
    ///
    /// The future of this task lives as long as the session, and there are thousands
    /// of sessions in a large mesh or at a route reflector: it holds the `Driver` and
    /// the wait, while what a wake-up does (`turn`, and the start and the end) runs
    /// boxed, allocated for that turn only. Inline, their nested futures made each
    /// session's task about four times larger (issue 18's memory per session).
    ///
    /// Not an `async fn`: rustc gives an `async fn`'s by-value argument room twice in
    /// its future (the argument, and the local it is moved into), so an `async move`
    /// block that uses the captured Driver in place holds one copy instead of two.
    #[allow(clippy::manual_async_fn)] // on purpose, see above
    pub(super) fn run(mut self) -> impl Future<Output = ()> + Send {
        async move {
            Box::pin(self.start()).await;
            loop {
                let turn = {
                    let wake = self.wait().await;
                    Box::pin(self.turn(wake))
                };
                turn.await;
                if self.finished() {
                    break;
                }
            }
            Box::pin(self.finish()).await;
        }
    }

    async fn start(&mut self) {
        self.follow_bfd_now().await;
        if !self.admin_down {
            self.feed(Which::Primary, Event::ManualStart).await;
        }
        self.publish();
    }

    /// What one wake-up does.
    async fn turn(&mut self, wake: Wake) {
        self.process(wake).await;
        self.after_batch().await;
        self.publish();
    }

    async fn wait(&mut self) -> Wake {
        let deadline = self.next_deadline();
        let outbound_ready = self.outbound_ready();
        let drained_owed = self.up.as_ref().is_some_and(|up| up.drained_owed);
        let Driver {
            peer,
            rib,
            commands,
            primary,
            secondary,
            connecting,
            up,
            bfd_subscription,
            ..
        } = self;
        let mut seldom = seldom(
            secondary.as_mut().and_then(|slot| slot.conn.as_mut()),
            drained_owed.then_some((&*rib, *peer)),
            bfd_subscription.as_mut(),
        );
        tokio::select! {
            command = commands.recv() => Wake::Command(command.map(|command| *command)),
            event = connection_event(primary.conn.as_mut()) => event.wake(Which::Primary),
            result = poll_connecting(connecting.as_mut()) => Wake::Connected(result),
            () = sleep_until(deadline) => Wake::Timers,
            item = recv_outbound(up.as_mut()), if outbound_ready => Wake::Outbound(item),
            wake = poll_seldom(seldom.as_mut()) => wake,
        }
    }

    async fn process(&mut self, wake: Wake) {
        match wake {
            Wake::Command(Some(command)) => self.command(command).await,
            Wake::Command(None) => {
                // The supervisor is gone: the daemon is stopping.
                let notification = Notification::new(
                    bgp_proto::notification::code::CEASE,
                    cease_subcode::ADMINISTRATIVE_SHUTDOWN,
                    Vec::new(),
                );
                let (done, _) = oneshot::channel();
                self.stop(notification, done).await;
            }
            Wake::Frame(which, item) => {
                let event = self.frame_event(item);
                self.feed(which, event).await;
            }
            Wake::Connected(result) => {
                self.connecting = None;
                match result {
                    Ok(stream) => self.connected(stream).await,
                    Err(error) => {
                        tracing::debug!(neighbor = %self.settings.address, "connect: {error}");
                        self.feed(Which::Primary, Event::TcpFailed).await;
                    }
                }
            }
            Wake::Progress(which) => self.feed(which, Event::OutputProgressed).await,
            Wake::Timers => self.timers().await,
            Wake::Outbound(item) => self.outbound(item).await,
            Wake::DrainedTold => {
                if let Some(up) = &mut self.up {
                    up.drained_owed = false;
                }
            }
            Wake::Bfd => self.bfd_changed().await,
        }
    }

    async fn command(&mut self, command: SessionCommand) {
        match command {
            SessionCommand::Incoming(stream) => self.incoming(stream).await,
            SessionCommand::Shutdown { message } => {
                self.admin_down = true;
                let notification = Notification::shutdown(
                    cease_subcode::ADMINISTRATIVE_SHUTDOWN,
                    message.as_deref().unwrap_or(""),
                );
                self.stop_machines(notification).await;
            }
            SessionCommand::Enable => {
                if self.admin_down {
                    self.admin_down = false;
                    self.rebuild_and_start().await;
                }
            }
            SessionCommand::Reset { message } => {
                let notification = Notification::shutdown(
                    cease_subcode::ADMINISTRATIVE_RESET,
                    message.as_deref().unwrap_or(""),
                );
                self.stop_machines(notification).await;
                if !self.admin_down {
                    self.rebuild_and_start().await;
                }
            }
            SessionCommand::Refresh { reply } => {
                let _ = reply.send(self.refresh());
            }
            SessionCommand::Reconfigure { settings, speaker } => {
                self.reconfigure(settings, speaker).await;
            }
            SessionCommand::Stop { notification, done } => self.stop(notification, done).await,
        }
    }

    async fn reconfigure(
        &mut self,
        settings: Arc<NeighborSettings>,
        speaker: Arc<SpeakerSettings>,
    ) {
        let now = Instant::now();
        let new_open = self.settings.needs_new_open(&settings)
            || speaker.local_asn != self.speaker.local_asn
            || speaker.router_id != self.speaker.router_id
            || speaker.graceful_restart != self.speaker.graceful_restart;
        let was_down = self.settings.shutdown;
        let bfd_before = (self.settings.bfd, self.settings.local_address);
        self.settings = settings;
        if (self.settings.bfd, self.settings.local_address) != bfd_before {
            self.bfd_reconfigured().await;
        }
        self.settings_generation += 1;
        self.speaker = speaker;
        if self.settings.shutdown && !was_down {
            self.admin_down = true;
            let notification = Notification::shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "");
            self.stop_machines(notification).await;
            return;
        }
        if !self.settings.shutdown && was_down {
            self.admin_down = false;
            self.rebuild_and_start().await;
            return;
        }
        let desired = self.settings.session_config(&self.speaker, now);
        if new_open && !self.admin_down {
            tracing::info!(neighbor = %self.settings.address, "session settings changed: restarting the session");
            let notification = Notification::new(
                bgp_proto::notification::code::CEASE,
                cease_subcode::OTHER_CONFIGURATION_CHANGE,
                Vec::new(),
            );
            self.stop_machines(notification).await;
            self.rebuild_and_start().await;
        } else if *self.primary.fsm.config() != desired && !self.primary.fsm.is_connected() {
            // Only timers of future attempts changed (connect retry).
            if !self.admin_down {
                self.rebuild_and_start().await;
            }
        }
    }

    /// Manual stop of both state machines (the secondary goes).
    async fn stop_machines(&mut self, notification: Notification) {
        if let Some(mut secondary) = self.secondary.take() {
            let actions = secondary.fsm.handle(Event::ManualStop {
                notification: Some(notification.clone()),
            });
            self.secondary = Some(secondary);
            self.execute(Which::Secondary, actions).await;
            self.secondary = None;
        }
        self.feed(
            Which::Primary,
            Event::ManualStop {
                notification: Some(notification),
            },
        )
        .await;
    }

    /// A new primary state machine from the current settings, started.
    async fn rebuild_and_start(&mut self) {
        match state_machine(&self.settings, &self.speaker) {
            Ok(fsm) => {
                if let Some(conn) = self.primary.conn.take() {
                    if let Some(handle) = conn.close(false) {
                        self.closing.push(handle);
                    }
                }
                self.connecting = None;
                self.primary = Slot::new(fsm);
                self.feed(Which::Primary, Event::ManualStart).await;
            }
            Err(error) => {
                tracing::error!(neighbor = %self.settings.address, "session cannot start: {error}");
                self.set_last_error(format!("session cannot start: {error}"));
            }
        }
    }

    async fn stop(&mut self, notification: Notification, done: oneshot::Sender<()>) {
        self.admin_down = true;
        self.stopping = Some(done);
        self.stop_machines(notification).await;
    }

    /// A connection the listener accepted from this neighbor.
    async fn incoming(&mut self, stream: TcpStream) {
        let options = self.settings.socket_options(&self.speaker);
        if let Err(error) = crate::socket::accepted(&stream, &options) {
            tracing::warn!(neighbor = %self.settings.address, "socket options on an accepted connection: {error}");
        }
        let context = self.primary.fsm.codec_context();
        let conn = match Connection::new(stream, context) {
            Ok(conn) => conn,
            Err(error) => {
                tracing::debug!(neighbor = %self.settings.address, "accepted connection unusable: {error}");
                return;
            }
        };
        if self.primary.fsm.state() == State::Idle
            && self.primary.fsm.is_enabled()
            && !self.admin_down
        {
            // Waiting out a restart delay: the peer is back, so are we.
            self.feed(Which::Primary, Event::AutomaticStart).await;
        }
        if self.primary.fsm.wants_connection(Initiator::Remote) && self.primary.conn.is_none() {
            self.had_connection = true;
            self.primary.conn = Some(conn);
            self.feed(Which::Primary, Event::TcpConnected(Initiator::Remote))
                .await;
        } else if self.primary.fsm.state() != State::Idle && self.secondary.is_none() {
            self.had_connection = true;
            let mut slot = Slot::new(self.primary.fsm.secondary());
            slot.conn = Some(conn);
            self.secondary = Some(Box::new(slot));
            self.feed(Which::Secondary, Event::TcpConnected(Initiator::Remote))
                .await;
        } else {
            tracing::info!(
                neighbor = %self.settings.address,
                state = %self.primary.fsm.state(),
                "connection from the neighbor refused (session {})",
                if self.admin_down { "shut down" } else { "busy" }
            );
            drop(conn.close(false));
        }
    }

    /// Our connection attempt succeeded.
    async fn connected(&mut self, stream: TcpStream) {
        if !(self.primary.fsm.wants_connection(Initiator::Local) && self.primary.conn.is_none()) {
            return;
        }
        match Connection::new(stream, self.primary.fsm.codec_context()) {
            Ok(conn) => {
                self.had_connection = true;
                self.primary.conn = Some(conn);
                self.feed(Which::Primary, Event::TcpConnected(Initiator::Local))
                    .await;
            }
            Err(error) => {
                tracing::debug!(neighbor = %self.settings.address, "connection unusable: {error}");
                self.feed(Which::Primary, Event::TcpFailed).await;
            }
        }
    }

    /// Feeds every timer that expired, one at a time (each may stop others).
    /// The state machine's event for what the reader yielded.
    fn frame_event(&mut self, item: Option<Result<Frame, FramingError>>) -> Event {
        match item {
            Some(Ok((bytes, decoded))) => {
                self.received(&bytes, &decoded);
                Event::Received(decoded)
            }
            Some(Err(error)) => Event::FramingError(error),
            None => Event::TcpFailed,
        }
    }

    /// Takes what a connection has already received or written (up to
    /// [`ARRIVED_EVENTS`] frames and progress reports), without waiting; true when
    /// there was something. A hold timer (or send hold timer) that falls due while
    /// the task was busy elsewhere (waiting for room in the rib's channel, or on a
    /// starved runtime) must not expire with the peer's KEEPALIVE unread in the
    /// socket: the wake-up that brings the timer may bring the frame too, and
    /// `select!` picks one of them at random.
    async fn take_arrived(&mut self, which: Which) -> bool {
        let mut any = false;
        for _ in 0..ARRIVED_EVENTS {
            let Some(conn) = self.slot_mut(which).and_then(|slot| slot.conn.as_mut()) else {
                break;
            };
            let Some(arrived) = connection_event(Some(conn)).now_or_never() else {
                break;
            };
            any = true;
            let event = match arrived {
                ConnectionEvent::Frame(item) => self.frame_event(item),
                ConnectionEvent::Progress => Event::OutputProgressed,
            };
            self.feed(which, event).await;
        }
        any
    }

    async fn timers(&mut self) {
        loop {
            let now = Instant::now();
            if self.stale_deadline.is_some_and(|deadline| deadline <= now) {
                self.stale_deadline = None;
                self.flush_stale().await;
                continue;
            }
            let mut due = None;
            for which in [Which::Primary, Which::Secondary] {
                let Some(slot) = self.slot(which) else {
                    continue;
                };
                if let Some(index) = slot.timers.iter().position(|t| t.is_some_and(|t| t <= now)) {
                    due = Some((which, index));
                    break;
                }
            }
            let Some((which, index)) = due else {
                return;
            };
            let watchdog = matches!(Timer::ALL[index], Timer::Hold | Timer::SendHold);
            if watchdog && self.take_arrived(which).await {
                // Look again: what arrived restarted the timer, or ended the session.
                continue;
            }
            if let Some(slot) = self.slot_mut(which) {
                slot.timers[index] = None;
            }
            self.feed(which, Event::TimerExpired(Timer::ALL[index]))
                .await;
        }
    }

    /// Hands `event` to a state machine and executes its actions.
    async fn feed(&mut self, which: Which, event: Event) {
        let Some(slot) = self.slot_mut(which) else {
            return;
        };
        let actions = slot.fsm.handle(event);
        self.execute(which, actions).await;
    }

    /// The collision procedure and the end of finished secondaries.
    async fn after_batch(&mut self) {
        while let Some(secondary) = &self.secondary {
            if secondary.fsm.is_finished() {
                self.secondary = None;
                break;
            }
            match collision::decide(&self.primary.fsm, &secondary.fsm) {
                None => break,
                Some(Loser::Secondary) => {
                    tracing::info!(neighbor = %self.settings.address, "connection collision: keeping the existing connection");
                    self.feed(Which::Secondary, Event::CollisionDump).await;
                    if let Some(slot) = self.secondary.take() {
                        self.drop_slot(*slot);
                    }
                }
                Some(Loser::Primary) => {
                    tracing::info!(neighbor = %self.settings.address, "connection collision: keeping the new connection");
                    self.feed(Which::Primary, Event::CollisionDump).await;
                    if let Some(slot) = self.secondary.take() {
                        let mut slot = *slot;
                        slot.fsm.promote(&self.primary.fsm);
                        let old = std::mem::replace(&mut self.primary, slot);
                        self.connecting = None;
                        self.drop_slot(old);
                    }
                }
            }
        }
        self.maybe_refresh_capabilities().await;
        for which in [Which::Primary, Which::Secondary] {
            if let Some(slot) = self.slot_mut(which) {
                let context = slot.fsm.codec_context();
                if let Some(conn) = slot.conn.as_mut() {
                    conn.set_context(context);
                }
            }
        }
    }

    /// After the restart window of a restarting speaker, sessions that start anew
    /// advertise graceful restart without the Restart State bit.
    async fn maybe_refresh_capabilities(&mut self) {
        if self.speaker.restarting_until.is_none()
            || self.admin_down
            || self.primary.fsm.is_connected()
            || self.connecting.is_some()
            || self.primary.fsm.state() != State::Idle
        {
            return;
        }
        let desired = self.settings.session_config(&self.speaker, Instant::now());
        if *self.primary.fsm.config() != desired {
            self.rebuild_and_start().await;
        }
    }

    fn drop_slot(&mut self, mut slot: Slot) {
        if let Some(conn) = slot.conn.take() {
            if let Some(handle) = conn.close(true) {
                self.closing.push(handle);
            }
        }
    }

    fn finished(&self) -> bool {
        let quiet = !self.primary.fsm.is_connected()
            && self.secondary.is_none()
            && self.connecting.is_none()
            && self.up.is_none();
        if self.stopping.is_some() {
            return quiet;
        }
        // A dynamic neighbor ends with its connection.
        self.settings.range.is_some() && self.had_connection && quiet
    }

    async fn finish(mut self) {
        for handle in self.closing.drain(..) {
            let _ = tokio::time::timeout(
                super::connection::FLUSH_TIMEOUT + Duration::from_secs(1),
                handle,
            )
            .await;
        }
        // A dynamic neighbor's end is seen by the supervisor in its set of session
        // tasks.
        if let Some(done) = self.stopping.take() {
            let _ = done.send(());
        }
    }

    fn slot(&self, which: Which) -> Option<&Slot> {
        match which {
            Which::Primary => Some(&self.primary),
            Which::Secondary => self.secondary.as_deref(),
        }
    }

    fn slot_mut(&mut self, which: Which) -> Option<&mut Slot> {
        match which {
            Which::Primary => Some(&mut self.primary),
            Which::Secondary => self.secondary.as_deref_mut(),
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let timers = [Some(&self.primary), self.secondary.as_deref()]
            .into_iter()
            .flatten()
            .flat_map(|slot| slot.timers.iter().flatten().copied());
        timers.chain(self.stale_deadline).min()
    }

    fn outbound_ready(&self) -> bool {
        let Some(up) = &self.up else {
            return false;
        };
        if up.outbound_closed {
            return false;
        }
        [Some(&self.primary), self.secondary.as_deref()]
            .into_iter()
            .flatten()
            .find(|slot| slot.up)
            .and_then(|slot| slot.conn.as_ref())
            .is_some_and(Connection::has_room)
    }

    /// The local address to connect from and the peer's socket address.
    fn endpoints(&self) -> (SocketAddr, Option<IpAddr>) {
        (
            SocketAddr::new(self.settings.address, self.settings.port),
            self.settings.local_address,
        )
    }
}
