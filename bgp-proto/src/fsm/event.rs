//! What the driver tells the state machine (RFC 4271 section 8.1, with RFC 9687's
//! send hold timer and the collision dump of section 6.8).

use std::time::Duration;

use crate::error::{FramingError, Malformed};
use crate::fsm::state::Initiator;
use crate::fsm::timer::Timer;
use crate::message::Decoded;
use crate::notification::Notification;

/// An input of the state machine.
// `Received` carries the decoded message inline, as the codec yields it: boxing it
// would cost an allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event {
    /// Start the session administratively (RFC 4271 event 1), connecting unless the
    /// configuration is passive. Clears the restart backoff. Ignored unless Idle.
    ManualStart,
    /// Start without ever connecting: wait for the peer (event 4).
    ManualStartPassive,
    /// Stop the session administratively (event 2) and keep it down until the next
    /// manual start. When our OPEN was sent, the NOTIFICATION goes out first: the one
    /// given, or Cease / Administrative Shutdown (6/2) without a message. Build one
    /// with a shutdown communication with [`Notification::shutdown`].
    ManualStop {
        /// The NOTIFICATION to send.
        notification: Option<Notification>,
    },
    /// Start now if the session is enabled and Idle (event 3): skips what remains of
    /// the restart backoff. Ignored after a manual stop.
    AutomaticStart,
    /// Stop the session because of a local decision (event 8: maximum prefixes, an
    /// error the speaker found, a configuration change) and restart it automatically
    /// after `restart_after`, or after the restart backoff when `None`.
    AutomaticStop {
        /// The NOTIFICATION to send (when our OPEN was sent).
        notification: Notification,
        /// The delay before the automatic restart.
        restart_after: Option<Duration>,
    },
    /// A TCP connection is up (events 16 and 17). Offer it only when
    /// [`Fsm::wants_connection`](crate::fsm::Fsm::wants_connection) says so; otherwise
    /// the event is ignored and the connection is the driver's to close or to give to
    /// a [secondary](crate::fsm::Fsm::secondary) state machine.
    TcpConnected(Initiator),
    /// Our connection attempt failed, or the connection was closed or reset by the
    /// peer or the network (event 18).
    TcpFailed,
    /// A framed message arrived: the codec's item, decoded with
    /// [`Fsm::codec_context`](crate::fsm::Fsm::codec_context). A message that is
    /// malformed but framed is answered with its NOTIFICATION.
    Received(Result<Decoded, Malformed>),
    /// The byte stream cannot be framed any more (bad marker, bad length) or the
    /// transport failed while reading.
    FramingError(FramingError),
    /// A timer armed by [`Action::ArmTimer`](crate::fsm::Action::ArmTimer) expired.
    /// An expiry of a timer that is not armed (stopped or re-armed meanwhile) is
    /// ignored.
    TimerExpired(Timer),
    /// Bytes of our messages reached the socket since the last report (RFC 9687: the
    /// send hold timer restarts). Report after every successful write; coalescing
    /// reports within a second is fine.
    OutputProgressed,
    /// This connection lost the collision resolution (RFC 4271 section 6.8, event
    /// 23): close it with Cease / Connection Collision Resolution (6/7) when our OPEN
    /// was sent, and do not restart (the session goes on over the other connection).
    CollisionDump,
}

impl Event {
    /// A manual stop with Cease / Administrative Shutdown carrying `message` as its
    /// shutdown communication (RFC 9003).
    pub fn shutdown(message: &str) -> Event {
        Event::ManualStop {
            notification: Some(Notification::shutdown(
                crate::notification::cease_subcode::ADMINISTRATIVE_SHUTDOWN,
                message,
            )),
        }
    }
}
