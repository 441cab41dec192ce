//! One BFD session's state machine (RFC 5880 sections 6.2 and 6.8): reception
//! (6.8.6), transmission (6.8.7), detection (6.8.4), the Poll Sequence (6.5) for a
//! change of our intervals, and administrative control (6.8.16). Asynchronous mode
//! only: no echo, no demand mode of our own, no authentication.

use std::time::{Duration, Instant};

use crate::action::{Action, Transition};
use crate::config::SessionConfig;
use crate::error::{ConfigError, DropReason};
use crate::jitter::Jitter;
use crate::packet::{ControlPacket, micros};
use crate::state::{Diagnostic, State};
use crate::timers;

/// The two intervals a session advertises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Intervals {
    /// Desired Min TX Interval.
    pub desired_min_tx: Duration,
    /// Required Min RX Interval.
    pub required_min_rx: Duration,
}

/// What the session knows of the peer from its last packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remote {
    /// bfd.RemoteDiscr: the peer's discriminator, 0 until heard and again once the
    /// detection time passed without a packet.
    pub discriminator: u32,
    /// bfd.RemoteSessionState.
    pub state: State,
    /// The peer's last diagnostic.
    pub diagnostic: Diagnostic,
    /// The peer's Desired Min TX Interval.
    pub desired_min_tx: Duration,
    /// bfd.RemoteMinRxInterval (1 us until heard, as section 6.8.1 says).
    pub required_min_rx: Duration,
    /// The peer's Detect Mult, 0 until heard.
    pub detect_mult: u8,
    /// bfd.RemoteDemandMode (recorded; this crate does not run demand mode).
    pub demand: bool,
}

impl Remote {
    const UNHEARD: Remote = Remote {
        discriminator: 0,
        state: State::Down,
        diagnostic: Diagnostic::NONE,
        desired_min_tx: Duration::ZERO,
        required_min_rx: Duration::from_micros(1),
        detect_mult: 0,
        demand: false,
    };
}

/// One BFD session (see the calling contract in the crate documentation).
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    local_discriminator: u32,
    state: State,
    diagnostic: Diagnostic,
    remote: Remote,
    /// What our packets carry.
    advertised: Intervals,
    /// What our timers use: differs from `advertised` during a Poll Sequence, where
    /// a slower transmit interval or a faster receive interval waits for the Final.
    in_use: Intervals,
    /// A Poll Sequence is in progress: our periodic packets carry P.
    polling: bool,
    next_transmit: Option<Instant>,
    detection_deadline: Option<Instant>,
    jitter: Jitter,
}

impl Session {
    /// A session in Down, which sends its first packet at the first
    /// [`Session::on_timer`] from `now` on. `local_discriminator` must be nonzero and
    /// unique among the caller's sessions; `jitter_seed` seeds the transmit jitter.
    pub fn new(
        now: Instant,
        config: SessionConfig,
        local_discriminator: u32,
        jitter_seed: u64,
    ) -> Result<Session, ConfigError> {
        config.validate()?;
        if local_discriminator == 0 {
            return Err(ConfigError::ZeroDiscriminator);
        }
        let intervals = Session::target(&config, State::Down);
        Ok(Session {
            config,
            local_discriminator,
            state: State::Down,
            diagnostic: Diagnostic::NONE,
            remote: Remote::UNHEARD,
            advertised: intervals,
            in_use: intervals,
            polling: false,
            next_transmit: Some(now),
            detection_deadline: None,
            jitter: Jitter::new(jitter_seed),
        })
    }

    /// bfd.SessionState.
    pub fn state(&self) -> State {
        self.state
    }

    /// bfd.LocalDiag: why the session last went down (0 once it is Up again).
    pub fn diagnostic(&self) -> Diagnostic {
        self.diagnostic
    }

    /// bfd.LocalDiscr.
    pub fn local_discriminator(&self) -> u32 {
        self.local_discriminator
    }

    /// The peer as last heard.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The intervals our packets advertise.
    pub fn advertised(&self) -> Intervals {
        self.advertised
    }

    /// A Poll Sequence of ours is waiting for the peer's Final.
    pub fn is_polling(&self) -> bool {
        self.polling
    }

    /// The periodic transmit interval before jitter; `None` while the peer asks for no
    /// periodic packets.
    pub fn transmit_interval(&self) -> Option<Duration> {
        timers::transmit_interval(self.in_use.desired_min_tx, self.remote.required_min_rx)
    }

    /// The detection time; `None` until the peer is heard.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote.detect_mult != 0).then(|| {
            timers::detection_time(
                self.remote.detect_mult,
                self.in_use.required_min_rx,
                self.remote.desired_min_tx,
            )
        })
    }

    /// When to call [`Session::on_timer`] next: the earlier of the next periodic
    /// transmission and the detection deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.next_transmit, self.detection_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles a packet the transport matched to this session (already decoded, so the
    /// checks of [`ControlPacket::decode`] passed). A packet whose Your Discriminator
    /// is neither 0 nor ours is dropped. Section 6.8.6.
    pub fn on_packet(
        &mut self,
        now: Instant,
        packet: &ControlPacket,
    ) -> Result<Vec<Action>, DropReason> {
        if packet.your_discriminator != 0 && packet.your_discriminator != self.local_discriminator {
            return Err(DropReason::UnknownDiscriminator {
                discriminator: packet.your_discriminator,
            });
        }
        let interval_before = self.transmit_interval();
        self.remote = Remote {
            discriminator: packet.my_discriminator,
            state: packet.state,
            diagnostic: packet.diagnostic,
            desired_min_tx: packet.desired_min_tx_interval(),
            required_min_rx: packet.required_min_rx_interval(),
            detect_mult: packet.detect_mult,
            demand: packet.demand,
        };
        let mut actions = Vec::new();
        if packet.r#final && self.polling {
            self.polling = false;
            self.in_use = self.advertised;
            // A change made during the sequence starts the next one.
            if self.refresh_intervals() {
                actions.push(Action::Send(self.packet(true, false)));
            }
        }
        if self.state == State::AdminDown {
            self.reschedule(now, interval_before);
            return Ok(actions);
        }
        self.detection_deadline = self.detection_time().map(|time| now + time);

        let from = self.state;
        match (self.state, packet.state) {
            (State::Init | State::Up, State::AdminDown) | (State::Up, State::Down) => {
                self.go_down(Diagnostic::NEIGHBOR_SIGNALED_SESSION_DOWN)
            }
            (State::Down, State::Down) => self.state = State::Init,
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.state = State::Up;
                self.diagnostic = Diagnostic::NONE;
            }
            _ => {}
        }
        if self.state != from {
            self.refresh_intervals();
            actions.push(Action::Send(self.packet(self.polling, false)));
            self.schedule_from(now);
            actions.push(Action::StateChanged(self.transition(from)));
        } else {
            self.reschedule(now, interval_before);
        }
        if packet.poll {
            // Section 6.8.7: answer a Poll at once, without P.
            actions.insert(0, Action::Send(self.packet(false, true)));
        }
        Ok(actions)
    }

    /// Handles the passing of time: the detection time expiring (section 6.8.4: Init or
    /// Up go Down with diagnostic 1) and periodic transmission (section 6.8.7). Call it
    /// at [`Session::poll_timeout`]; an early call does nothing.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self
            .detection_deadline
            .is_some_and(|deadline| deadline <= now)
        {
            self.detection_deadline = None;
            let from = self.state;
            if matches!(self.state, State::Init | State::Up) {
                self.go_down(Diagnostic::CONTROL_DETECTION_TIME_EXPIRED);
                let transition = self.transition(from);
                self.forget_remote();
                actions.push(Action::Send(self.packet(self.polling, false)));
                self.schedule_from(now);
                actions.push(Action::StateChanged(transition));
            } else {
                self.forget_remote();
            }
        }
        if self.next_transmit.is_some_and(|next| next <= now) {
            actions.push(Action::Send(self.packet(self.polling, false)));
            self.schedule_from(now);
        }
        actions
    }

    /// Takes the session administratively down (section 6.8.16: AdminDown with
    /// diagnostic 7, no detection) or brings it back to Down.
    pub fn set_admin_down(&mut self, now: Instant, admin_down: bool) -> Vec<Action> {
        let from = self.state;
        if admin_down == (from == State::AdminDown) {
            return Vec::new();
        }
        if admin_down {
            self.state = State::AdminDown;
            self.diagnostic = Diagnostic::ADMINISTRATIVELY_DOWN;
            self.detection_deadline = None;
        } else {
            self.state = State::Down;
            self.diagnostic = Diagnostic::NONE;
        }
        self.polling = false;
        self.refresh_intervals();
        let actions = vec![
            Action::Send(self.packet(false, false)),
            Action::StateChanged(self.transition(from)),
        ];
        self.schedule_from(now);
        actions
    }

    /// Changes the configured intervals and multiplier (section 6.8.3): while Up, a
    /// change of the advertised intervals starts a Poll Sequence and a slower transmit
    /// or faster receive interval takes effect only at the peer's Final.
    pub fn set_config(
        &mut self,
        now: Instant,
        config: SessionConfig,
    ) -> Result<Vec<Action>, ConfigError> {
        config.validate()?;
        let interval_before = self.transmit_interval();
        let mult_changed = config.detect_mult != self.config.detect_mult;
        self.config = config;
        let mut actions = Vec::new();
        if (self.refresh_intervals() && self.polling) || mult_changed {
            actions.push(Action::Send(self.packet(self.polling, false)));
        }
        self.reschedule(now, interval_before);
        Ok(actions)
    }

    /// The intervals to advertise in `state`.
    fn target(config: &SessionConfig, state: State) -> Intervals {
        Intervals {
            desired_min_tx: timers::advertised_min_tx(config.desired_min_tx, state),
            required_min_rx: config.required_min_rx,
        }
    }

    /// Moves the advertised intervals towards the target; true when they changed.
    /// While Up, a change starts a Poll Sequence and only the safe half takes effect
    /// now (a faster transmit interval, a slower receive interval); otherwise it takes
    /// effect at once. During a Poll Sequence nothing changes until its Final.
    fn refresh_intervals(&mut self) -> bool {
        let target = Session::target(&self.config, self.state);
        if self.polling || target == self.advertised {
            return false;
        }
        if self.state == State::Up {
            self.in_use = Intervals {
                desired_min_tx: self.in_use.desired_min_tx.min(target.desired_min_tx),
                required_min_rx: self.in_use.required_min_rx.max(target.required_min_rx),
            };
            self.polling = true;
        } else {
            self.in_use = target;
        }
        self.advertised = target;
        true
    }

    fn go_down(&mut self, diagnostic: Diagnostic) {
        self.state = State::Down;
        self.diagnostic = diagnostic;
        self.polling = false;
        self.refresh_intervals();
    }

    /// Section 6.8.1: the remote discriminator is forgotten once the detection time
    /// passes without a packet.
    fn forget_remote(&mut self) {
        self.remote.discriminator = 0;
        self.remote.state = State::Down;
    }

    fn transition(&self, from: State) -> Transition {
        Transition {
            from,
            to: self.state,
            diagnostic: self.diagnostic,
            remote_state: self.remote.state,
        }
    }

    fn packet(&self, poll: bool, r#final: bool) -> ControlPacket {
        ControlPacket {
            diagnostic: self.diagnostic,
            state: self.state,
            poll,
            r#final,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.config.detect_mult,
            my_discriminator: self.local_discriminator,
            your_discriminator: self.remote.discriminator,
            desired_min_tx: micros(self.advertised.desired_min_tx),
            required_min_rx: micros(self.advertised.required_min_rx),
            required_min_echo_rx: 0,
        }
    }

    /// The next periodic packet one jittered interval after `now` (none while the
    /// peer asks for none).
    fn schedule_from(&mut self, now: Instant) {
        self.next_transmit = self
            .transmit_interval()
            .map(|interval| now + self.jitter.apply(interval, self.config.detect_mult));
    }

    /// After the transmit interval may have changed: a shorter one brings the next
    /// packet forward, and periodic packets start or stop with the peer's wish.
    fn reschedule(&mut self, now: Instant, before: Option<Duration>) {
        let after = self.transmit_interval();
        match (before, after, self.next_transmit) {
            (_, None, _) => self.next_transmit = None,
            (_, Some(_), None) => self.schedule_from(now),
            (Some(before), Some(after), Some(next)) if after < before => {
                let sooner = now + self.jitter.apply(after, self.config.detect_mult);
                self.next_transmit = Some(next.min(sooner));
            }
            _ => {}
        }
    }
}
