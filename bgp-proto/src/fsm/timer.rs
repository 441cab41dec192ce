//! The timers of a session. There is no clock in this crate: the state machine asks
//! the driver to arm and stop them ([`Action::ArmTimer`], [`Action::StopTimer`]) and
//! the driver reports their expiry ([`Event::TimerExpired`]).
//!
//! [`Action::ArmTimer`]: crate::fsm::Action::ArmTimer
//! [`Action::StopTimer`]: crate::fsm::Action::StopTimer
//! [`Event::TimerExpired`]: crate::fsm::Event::TimerExpired

use std::fmt;
use std::time::Duration;

/// One timer of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// ConnectRetryTimer: bounds a connection attempt and spaces attempts.
    ConnectRetry,
    /// HoldTimer: the peer must send something within it.
    Hold,
    /// KeepaliveTimer: when to send the next KEEPALIVE.
    Keepalive,
    /// DelayOpenTimer: how long to wait for the peer's OPEN before sending ours.
    DelayOpen,
    /// IdleHoldTimer: the restart backoff delay in Idle, after which the session
    /// starts again by itself.
    IdleHold,
    /// SendHoldTimer (RFC 9687): we must manage to send something within it.
    SendHold,
    /// How long a session must stay Established for the restart backoff to start over.
    BackoffReset,
}

impl Timer {
    /// Every timer, in a fixed order.
    pub const ALL: [Timer; 7] = [
        Timer::ConnectRetry,
        Timer::Hold,
        Timer::Keepalive,
        Timer::DelayOpen,
        Timer::IdleHold,
        Timer::SendHold,
        Timer::BackoffReset,
    ];

    /// The kebab-case name (`connect-retry`, `hold` ...).
    pub fn name(self) -> &'static str {
        match self {
            Timer::ConnectRetry => "connect-retry",
            Timer::Hold => "hold",
            Timer::Keepalive => "keepalive",
            Timer::DelayOpen => "delay-open",
            Timer::IdleHold => "idle-hold",
            Timer::SendHold => "send-hold",
            Timer::BackoffReset => "backoff-reset",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which timers are armed, with the duration each was last armed for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerSet([Option<Duration>; 7]);

impl TimerSet {
    pub(crate) fn arm(&mut self, timer: Timer, duration: Duration) {
        self.0[timer.index()] = Some(duration);
    }

    /// Marks `timer` stopped; true when it was armed.
    pub(crate) fn stop(&mut self, timer: Timer) -> bool {
        self.0[timer.index()].take().is_some()
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Duration> {
        self.0[timer.index()]
    }

    pub(crate) fn is_armed(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    pub(crate) fn armed(&self) -> impl Iterator<Item = (Timer, Duration)> + '_ {
        Timer::ALL
            .into_iter()
            .filter_map(|timer| self.get(timer).map(|duration| (timer, duration)))
    }
}

/// Formats a duration the way actions print it: `90s`, `1500ms`.
pub(crate) fn format_duration(duration: Duration, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if duration.subsec_nanos() == 0 {
        write!(f, "{}s", duration.as_secs())
    } else {
        write!(f, "{}ms", duration.as_millis())
    }
}
