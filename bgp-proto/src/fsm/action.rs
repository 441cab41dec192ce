//! What the state machine asks the driver to do. Within one batch the order is:
//! sends, then close, then timers, then the state change, then the notices for the
//! speaker (established, session down, a received UPDATE or ROUTE-REFRESH); execute
//! them in order (see the calling contract in the module documentation).

use std::fmt;
use std::time::Duration;

use crate::error::{self, DecodeError};
use crate::family::Family;
use crate::fsm::negotiated::Negotiated;
use crate::fsm::reason::{DownReason, short_notification};
use crate::fsm::state::State;
use crate::fsm::timer::{Timer, format_duration};
use crate::message::Message;
use crate::route_refresh::RouteRefresh;
use crate::update::Update;

/// An output of the state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; report [`Event::TcpConnected`] or
    /// [`Event::TcpFailed`]. Give up on it when told [`Action::Close`].
    ///
    /// [`Event::TcpConnected`]: crate::fsm::Event::TcpConnected
    /// [`Event::TcpFailed`]: crate::fsm::Event::TcpFailed
    Connect,
    /// Encode the message with [`Fsm::codec_context`](crate::fsm::Fsm::codec_context)
    /// and queue it behind anything already queued. (Boxed: a message is a few
    /// hundred octets inline, and the state machine only sends OPEN, KEEPALIVE and
    /// NOTIFICATION.)
    Send(Box<Message>),
    /// Close the connection (or abandon the connection attempt).
    Close(CloseMode),
    /// Arm `timer` to expire after `duration`, replacing any earlier arming.
    ArmTimer {
        /// The timer.
        timer: Timer,
        /// Its duration from now.
        duration: Duration,
    },
    /// Stop `timer`; an expiry already pending for it must not be reported.
    StopTimer(Timer),
    /// The state changed (for logs and `show neighbors`).
    StateChanged {
        /// The previous state.
        from: State,
        /// The new state.
        to: State,
        /// Why the connection was left, when it was.
        reason: Option<DownReason>,
    },
    /// The session is up: switch the codec to `context`, give the speaker the
    /// parameters; it may now send UPDATEs on this connection. Shared with the state
    /// machine, which keeps it for the session's life (one copy of both OPENs per
    /// session, not two).
    Established(std::sync::Arc<Negotiated>),
    /// The Established session is gone: the speaker stops sending, and withdraws the
    /// peer's routes (or keeps them as stale under graceful restart).
    SessionDown(DownReason),
    /// An UPDATE for the speaker (the hold timer was restarted).
    Update(Box<ReceivedUpdate>),
    /// A ROUTE-REFRESH for the speaker: a request, or the beginning or end of the
    /// peer's re-advertisement (RFC 7313). Subtypes to ignore and families we did not
    /// advertise are not passed on.
    RouteRefresh(RouteRefresh),
}

/// How to close a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseMode {
    /// Write what is queued (the NOTIFICATION last), bounded by a few seconds, then
    /// close.
    Flush,
    /// The peer does not read (RFC 9687): drop whatever is queued, write the message
    /// just sent only if the socket takes it at once and no earlier message is half
    /// written, and close without waiting.
    Abort,
}

/// An UPDATE as received, with what RFC 7606 says to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedUpdate {
    /// The UPDATE (malformed or discarded attributes are absent).
    pub update: Update,
    /// The strongest RFC 7606 action: `TreatAsWithdraw` means every announced prefix
    /// is withdrawn; `AfiSafiDisable` only with
    /// [`FamilyErrorPolicy::DisableFamily`](crate::fsm::FamilyErrorPolicy::DisableFamily).
    pub action: error::Action,
    /// Every problem found, for logs.
    pub errors: Vec<DecodeError>,
}

impl ReceivedUpdate {
    /// The families whose routes must be dropped and ignored until the session
    /// restarts (the `AfiSafiDisable` problems).
    pub fn disabled_families(&self) -> impl Iterator<Item = Family> + '_ {
        self.errors
            .iter()
            .filter(|error| error.action == error::Action::AfiSafiDisable)
            .filter_map(|error| error.family)
    }
}

impl fmt::Display for Action {
    /// One line: `connect`, `send OPEN`, `send NOTIFICATION 6/2 "bye"`,
    /// `arm hold 90s`, `state OpenConfirm -> Established` ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Connect => f.write_str("connect"),
            Action::Send(message) => match message.as_ref() {
                Message::Open(_) => f.write_str("send OPEN"),
                Message::Update(_) => f.write_str("send UPDATE"),
                Message::Keepalive => f.write_str("send KEEPALIVE"),
                Message::RouteRefresh(refresh) => {
                    write!(f, "send ROUTE-REFRESH {}", refresh.family)
                }
                Message::Notification(notification) => {
                    f.write_str("send NOTIFICATION ")?;
                    short_notification(notification, f)
                }
            },
            Action::Close(CloseMode::Flush) => f.write_str("close"),
            Action::Close(CloseMode::Abort) => f.write_str("close abort"),
            Action::ArmTimer { timer, duration } => {
                write!(f, "arm {timer} ")?;
                format_duration(*duration, f)
            }
            Action::StopTimer(timer) => write!(f, "stop {timer}"),
            Action::StateChanged { from, to, reason } => {
                write!(f, "state {from} -> {to}")?;
                match reason {
                    Some(reason) => write!(f, " ({reason})"),
                    None => Ok(()),
                }
            }
            Action::Established(negotiated) => {
                write!(
                    f,
                    "established AS {} id {} hold {}s keepalive {}s",
                    negotiated.peer_as,
                    negotiated.peer_id,
                    negotiated.hold_time,
                    negotiated.keepalive
                )?;
                if negotiated.context.ibgp {
                    f.write_str(" ibgp")?;
                }
                Ok(())
            }
            Action::SessionDown(reason) => write!(f, "session down ({reason})"),
            Action::Update(received) => write!(f, "deliver UPDATE {}", received.action),
            Action::RouteRefresh(refresh) => write!(
                f,
                "deliver ROUTE-REFRESH {} subtype {}",
                refresh.family, refresh.subtype
            ),
        }
    }
}
