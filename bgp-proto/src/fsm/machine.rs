//! The state machine of one connection: [`Fsm::handle`] takes an [`Event`] and returns
//! the [`Action`]s, following RFC 4271 section 8.2.2 with the deviations listed in the
//! module documentation of [`crate::fsm`].

use std::sync::Arc;
use std::time::Duration;

use crate::context::SessionContext;
use crate::fsm::action::{Action, CloseMode};
use crate::fsm::config::{ConfigError, SessionConfig};
use crate::fsm::event::Event;
use crate::fsm::negotiated::Negotiated;
use crate::fsm::reason::DownReason;
use crate::fsm::state::{Initiator, Role, State};
use crate::fsm::template::Template;
use crate::fsm::timer::{Timer, TimerSet};
use crate::message::Message;
use crate::notification::{Notification, cease_subcode, code};
use crate::open::Open;

/// The state machine of one connection to a peer (see the module documentation for
/// the calling contract).
#[derive(Clone, Debug)]
pub struct Fsm {
    /// Shared with the other state machines of the same [`Template`].
    pub(super) config: Arc<SessionConfig>,
    /// Shared likewise, and with [`Negotiated::local_open`].
    pub(super) local_open: Arc<Open>,
    pub(super) state: State,
    role: Role,
    /// Administratively started (a manual start since the last manual stop).
    enabled: bool,
    /// Started passive: never connect.
    passive: bool,
    /// The connection in use, by who opened it.
    pub(super) connection: Option<Initiator>,
    /// Our connection attempt is in flight.
    connecting: bool,
    timers: TimerSet,
    /// Failures since the last manual start or stop (RFC 4271 ConnectRetryCounter).
    connect_retry_counter: u32,
    /// Failures since the session was last stable: the restart backoff exponent.
    failures: u32,
    pub(super) negotiated: Option<Arc<Negotiated>>,
    last_error: Option<DownReason>,
}

/// What happens after the connection is torn down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Restart {
    /// Restart after the backoff delay, and count a failure.
    Backoff,
    /// Restart after the initial backoff delay without counting a failure.
    Initial,
    /// Restart after this delay, and count a failure.
    After(Duration),
    /// Stay Idle.
    Never,
}

impl Fsm {
    /// A primary state machine in Idle, waiting for [`Event::ManualStart`].
    pub fn new(config: SessionConfig) -> Result<Fsm, ConfigError> {
        Ok(Fsm::from_template(&Template::new(config)?))
    }

    /// A primary state machine in Idle on a shared, already checked configuration.
    pub fn from_template(template: &Template) -> Fsm {
        Fsm::idle(Arc::clone(&template.config), Arc::clone(&template.open))
    }

    /// A secondary state machine for a second connection of this peer, opened by the
    /// peer: Active and passive, with no timer armed; feed it
    /// `Event::TcpConnected(Initiator::Remote)` at once. It never restarts: once Idle
    /// it is finished and can be dropped.
    pub fn secondary(&self) -> Fsm {
        Fsm {
            state: State::Active,
            role: Role::Secondary,
            enabled: true,
            passive: true,
            ..Fsm::idle(self.config.clone(), self.local_open.clone())
        }
    }

    /// Makes this secondary the peer's primary state machine after the primary
    /// `previous` lost a collision: it takes over the administrative state and the
    /// restart backoff.
    pub fn promote(&mut self, previous: &Fsm) {
        self.role = Role::Primary;
        self.enabled = previous.enabled;
        self.passive = previous.passive;
        self.connect_retry_counter = previous.connect_retry_counter;
        self.failures = previous.failures;
    }

    /// Handles one event; returns the actions to execute, in order.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        self.handle_into(event, &mut out);
        out
    }

    /// Like [`Fsm::handle`], appending the actions to `out`.
    pub fn handle_into(&mut self, event: Event, out: &mut Vec<Action>) {
        match event {
            Event::ManualStart => {
                let passive = self.config.passive;
                self.manual_start(passive, out);
            }
            Event::ManualStartPassive => self.manual_start(true, out),
            Event::AutomaticStart => {
                if self.state == State::Idle && self.enabled && self.role == Role::Primary {
                    self.start(out);
                }
            }
            Event::ManualStop { notification } => self.manual_stop(notification, out),
            Event::AutomaticStop {
                notification,
                restart_after,
            } => self.automatic_stop(notification, restart_after, out),
            Event::TcpConnected(initiator) => self.connected(initiator, out),
            Event::TcpFailed => self.connection_failed(out),
            Event::Received(Ok(decoded)) => {
                if self.connection.is_some() {
                    self.received(decoded, out);
                }
            }
            Event::Received(Err(malformed)) => {
                if self.connection.is_some() {
                    self.malformed(malformed, out);
                }
            }
            Event::FramingError(error) => {
                if self.connection.is_some() {
                    match error.notification() {
                        Some(notification) => self.fail(notification, error.to_string(), out),
                        None => {
                            let reason = DownReason::ConnectionClosed;
                            self.tear_down(None, CloseMode::Flush, reason, Restart::Backoff, out);
                        }
                    }
                }
            }
            Event::TimerExpired(timer) => {
                if self.timers.stop(timer) {
                    self.timer_expired(timer, out);
                }
            }
            Event::OutputProgressed => {
                if let Some(duration) = self.timers.get(Timer::SendHold) {
                    self.arm(Timer::SendHold, duration, out);
                }
            }
            Event::CollisionDump => self.collision_dump(out),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Primary or secondary.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The OPEN we send.
    pub fn local_open(&self) -> &Open {
        &self.local_open
    }

    /// True after a manual start, until a manual stop.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// True while a TCP connection is in use.
    pub fn is_connected(&self) -> bool {
        self.connection.is_some()
    }

    /// Who opened the connection in use.
    pub fn initiator(&self) -> Option<Initiator> {
        self.connection
    }

    /// True when a connection opened by `initiator` should be given to this state
    /// machine with [`Event::TcpConnected`]: our own while our attempt is in flight
    /// (Connect), the peer's while we wait for it (Active).
    pub fn wants_connection(&self, initiator: Initiator) -> bool {
        self.enabled
            && self.connection.is_none()
            && match initiator {
                Initiator::Local => self.connecting,
                Initiator::Remote => self.state == State::Active,
            }
    }

    /// True for a state machine with nothing left to do: Idle and no restart pending.
    /// A finished secondary can be dropped.
    pub fn is_finished(&self) -> bool {
        self.state == State::Idle && !self.timers.is_armed(Timer::IdleHold)
    }

    /// What both OPENs settled (from OpenConfirm on), shared: whoever keeps it for
    /// the session's lifetime holds no copy.
    pub fn negotiated(&self) -> Option<&Arc<Negotiated>> {
        self.negotiated.as_ref()
    }

    /// The context to decode received messages and encode sent ones with: the
    /// negotiated one once the peer's OPEN is accepted, before that one that only
    /// allows 4096-octet messages (all that OPEN, KEEPALIVE and NOTIFICATION need).
    pub fn codec_context(&self) -> SessionContext {
        self.negotiated
            .as_ref()
            .map_or_else(SessionContext::default, |negotiated| negotiated.context)
    }

    /// The armed timers with the duration each was armed for.
    pub fn armed_timers(&self) -> impl Iterator<Item = (Timer, Duration)> + '_ {
        self.timers.armed()
    }

    /// Failures since the last manual start or stop (RFC 4271 ConnectRetryCounter).
    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// The delay of the next automatic restart after a failure.
    pub fn restart_delay(&self) -> Duration {
        self.config.backoff.delay(self.failures)
    }

    /// Why the last connection went down.
    pub fn last_error(&self) -> Option<&DownReason> {
        self.last_error.as_ref()
    }

    // Transitions, by event.

    /// A primary in Idle, not started.
    fn idle(config: Arc<SessionConfig>, local_open: Arc<Open>) -> Fsm {
        let passive = config.passive;
        Fsm {
            config,
            local_open,
            state: State::Idle,
            role: Role::Primary,
            enabled: false,
            passive,
            connection: None,
            connecting: false,
            timers: TimerSet::default(),
            connect_retry_counter: 0,
            failures: 0,
            negotiated: None,
            last_error: None,
        }
    }

    fn manual_start(&mut self, passive: bool, out: &mut Vec<Action>) {
        if self.state != State::Idle || self.role != Role::Primary {
            return;
        }
        self.enabled = true;
        self.passive = passive;
        self.connect_retry_counter = 0;
        self.failures = 0;
        self.start(out);
    }

    /// Idle to Connect (connecting) or Active (listening).
    fn start(&mut self, out: &mut Vec<Action>) {
        if self.passive {
            self.stop(Timer::IdleHold, out);
            self.set_state(State::Active, None, out);
        } else {
            out.push(Action::Connect);
            self.connecting = true;
            self.stop(Timer::IdleHold, out);
            self.arm(Timer::ConnectRetry, self.config.connect_retry, out);
            self.set_state(State::Connect, None, out);
        }
    }

    fn connect(&mut self, out: &mut Vec<Action>) {
        out.push(Action::Connect);
        self.connecting = true;
        self.arm(Timer::ConnectRetry, self.config.connect_retry, out);
    }

    fn manual_stop(&mut self, notification: Option<Notification>, out: &mut Vec<Action>) {
        self.enabled = false;
        self.connect_retry_counter = 0;
        self.failures = 0;
        if self.state == State::Idle {
            self.stop(Timer::IdleHold, out);
            return;
        }
        let notification = self.state.open_sent().then(|| {
            notification.unwrap_or_else(|| {
                Notification::new(
                    code::CEASE,
                    cease_subcode::ADMINISTRATIVE_SHUTDOWN,
                    Vec::new(),
                )
            })
        });
        let reason = DownReason::Stopped {
            notification: notification.clone(),
        };
        self.tear_down(notification, CloseMode::Flush, reason, Restart::Never, out);
    }

    fn automatic_stop(
        &mut self,
        notification: Notification,
        restart_after: Option<Duration>,
        out: &mut Vec<Action>,
    ) {
        if self.state == State::Idle {
            return;
        }
        let notification = self.state.open_sent().then_some(notification);
        let reason = DownReason::AutomaticStop {
            notification: notification.clone(),
        };
        let restart = restart_after.map_or(Restart::Backoff, Restart::After);
        self.tear_down(notification, CloseMode::Flush, reason, restart, out);
    }

    fn connected(&mut self, initiator: Initiator, out: &mut Vec<Action>) {
        if !self.wants_connection(initiator) {
            return;
        }
        self.connection = Some(initiator);
        self.connecting = false;
        match self.config.delay_open {
            Some(delay) => {
                self.stop(Timer::ConnectRetry, out);
                self.arm(Timer::DelayOpen, delay, out);
            }
            None => self.send_open(out),
        }
    }

    /// Sends our OPEN and waits for the peer's (OpenSent).
    fn send_open(&mut self, out: &mut Vec<Action>) {
        out.push(Action::Send(Box::new(Message::Open(Open::clone(
            &self.local_open,
        )))));
        self.stop(Timer::ConnectRetry, out);
        self.arm(Timer::Hold, self.config.open_hold_time, out);
        self.set_state(State::OpenSent, None, out);
    }

    fn connection_failed(&mut self, out: &mut Vec<Action>) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => {
                if self.connection.is_none() && !self.connecting {
                    return;
                }
                let reason = if self.connection.is_some() {
                    DownReason::ConnectionClosed
                } else {
                    DownReason::ConnectFailed
                };
                if self.role == Role::Secondary {
                    self.tear_down(None, CloseMode::Flush, reason, Restart::Never, out);
                    return;
                }
                out.push(Action::Close(CloseMode::Flush));
                self.connection = None;
                self.connecting = false;
                self.stop(Timer::DelayOpen, out);
                if !self.passive {
                    self.arm(Timer::ConnectRetry, self.config.connect_retry, out);
                }
                self.last_error = Some(reason.clone());
                self.set_state(State::Active, Some(reason), out);
            }
            State::OpenSent | State::OpenConfirm | State::Established => {
                let reason = DownReason::ConnectionClosed;
                self.tear_down(None, CloseMode::Flush, reason, Restart::Backoff, out);
            }
        }
    }

    fn timer_expired(&mut self, timer: Timer, out: &mut Vec<Action>) {
        match (timer, self.state) {
            (Timer::ConnectRetry, State::Connect) => {
                // The attempt took too long: abandon it and try again.
                out.push(Action::Close(CloseMode::Flush));
                self.connect(out);
            }
            (Timer::ConnectRetry, State::Active) => {
                self.connect(out);
                self.set_state(State::Connect, None, out);
            }
            (Timer::DelayOpen, State::Connect | State::Active) => self.send_open(out),
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                let notification = Notification::hold_timer_expired();
                let reason = DownReason::HoldTimerExpired;
                self.tear_down(
                    Some(notification),
                    CloseMode::Flush,
                    reason,
                    Restart::Backoff,
                    out,
                );
            }
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                out.push(Action::Send(Box::new(Message::Keepalive)));
                if let Some(negotiated) = &self.negotiated {
                    let keepalive = Duration::from_secs(u64::from(negotiated.keepalive));
                    self.arm(Timer::Keepalive, keepalive, out);
                }
            }
            (Timer::SendHold, State::Established) => {
                let notification = Notification::send_hold_timer_expired();
                let reason = DownReason::SendHoldTimerExpired;
                self.tear_down(
                    Some(notification),
                    CloseMode::Abort,
                    reason,
                    Restart::Backoff,
                    out,
                );
            }
            (Timer::IdleHold, State::Idle) if self.enabled => self.start(out),
            (Timer::BackoffReset, State::Established) => self.failures = 0,
            // A timer left armed in a state that does not use it: nothing to do.
            _ => {}
        }
    }

    fn collision_dump(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Idle {
            self.stop(Timer::IdleHold, out);
            return;
        }
        let notification = self.state.open_sent().then(|| {
            Notification::new(
                code::CEASE,
                cease_subcode::CONNECTION_COLLISION_RESOLUTION,
                Vec::new(),
            )
        });
        let reason = DownReason::CollisionResolution;
        self.tear_down(notification, CloseMode::Flush, reason, Restart::Never, out);
    }

    // Helpers.

    /// Leaves the connection: NOTIFICATION (when connected), close, every timer
    /// stopped, Idle, the session-down notice when it was Established, and the
    /// automatic restart.
    /// We found an error: send `notification`, close, restart after the backoff.
    pub(super) fn fail(
        &mut self,
        notification: Notification,
        detail: String,
        out: &mut Vec<Action>,
    ) {
        let reason = DownReason::NotificationSent {
            notification: notification.clone(),
            detail,
        };
        self.tear_down(
            Some(notification),
            CloseMode::Flush,
            reason,
            Restart::Backoff,
            out,
        );
    }

    pub(super) fn tear_down(
        &mut self,
        notification: Option<Notification>,
        mode: CloseMode,
        reason: DownReason,
        restart: Restart,
        out: &mut Vec<Action>,
    ) {
        // RFC 8538: with the N bit on both sides, a hard end is said as Hard Reset.
        let graceful_notification = self
            .negotiated
            .as_ref()
            .is_some_and(|negotiated| negotiated.graceful_notification);
        let (notification, reason) = match notification {
            Some(inner) if graceful_notification && inner.calls_for_hard_reset() => {
                let hard = Notification::hard_reset(&inner);
                (Some(hard.clone()), reason.with_sent(hard))
            }
            other => (other, reason),
        };
        if let (Some(notification), Some(_)) = (notification, self.connection) {
            out.push(Action::Send(Box::new(Message::Notification(notification))));
        }
        if self.connection.is_some() || self.connecting {
            out.push(Action::Close(mode));
        }
        self.connection = None;
        self.connecting = false;
        for timer in Timer::ALL {
            self.stop(timer, out);
        }
        if restart != Restart::Never {
            self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
        }
        if self.enabled && self.role == Role::Primary {
            let delay = match restart {
                Restart::Backoff => Some(self.config.backoff.delay(self.failures)),
                Restart::Initial => Some(self.config.backoff.initial),
                Restart::After(delay) => Some(delay),
                Restart::Never => None,
            };
            if matches!(restart, Restart::Backoff | Restart::After(_)) {
                self.failures = self.failures.saturating_add(1);
            }
            if let Some(delay) = delay {
                self.arm(Timer::IdleHold, delay, out);
            }
        }
        let was_established = self.state == State::Established;
        self.negotiated = None;
        self.last_error = Some(reason.clone());
        if was_established {
            self.set_state(State::Idle, Some(reason.clone()), out);
            out.push(Action::SessionDown(reason));
        } else {
            self.set_state(State::Idle, Some(reason), out);
        }
    }

    pub(super) fn set_state(
        &mut self,
        to: State,
        reason: Option<DownReason>,
        out: &mut Vec<Action>,
    ) {
        let from = self.state;
        self.state = to;
        if from != to {
            out.push(Action::StateChanged { from, to, reason });
        }
    }

    pub(super) fn arm(&mut self, timer: Timer, duration: Duration, out: &mut Vec<Action>) {
        self.timers.arm(timer, duration);
        out.push(Action::ArmTimer { timer, duration });
    }

    pub(super) fn stop(&mut self, timer: Timer, out: &mut Vec<Action>) {
        if self.timers.stop(timer) {
            out.push(Action::StopTimer(timer));
        }
    }
}
