//! Why a connection or session went down, for the speaker (graceful restart decides
//! on it), for logs and for `show neighbor`'s last error.

use std::fmt;

use crate::fsm::state::State;
use crate::message::MessageType;
use crate::notification::{Notification, ShutdownCommunicationError};

/// Why the state machine left a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We found an error and sent this NOTIFICATION (a malformed message, a refused
    /// OPEN, an unexpected message, a broken stream).
    NotificationSent {
        /// The NOTIFICATION sent.
        notification: Notification,
        /// What was wrong, in words.
        detail: String,
    },
    /// The peer sent a NOTIFICATION.
    NotificationReceived {
        /// The NOTIFICATION.
        notification: Notification,
        /// Its shutdown communication (RFC 9003) for Cease / Administrative Shutdown
        /// or Reset: the text, or why it cannot be shown; `None` when absent.
        communication: Option<Result<String, ShutdownCommunicationError>>,
    },
    /// The peer sent nothing within the hold time (we sent 4/0).
    HoldTimerExpired,
    /// We could send nothing within the send hold time (RFC 9687; we tried 8/0).
    SendHoldTimerExpired,
    /// The TCP connection was closed or reset.
    ConnectionClosed,
    /// Our connection attempt failed or timed out.
    ConnectFailed,
    /// A message arrived before our OPEN was sent (with delay open); the connection
    /// was closed without a NOTIFICATION (RFC 4271 8.2.2).
    UnexpectedMessage {
        /// The message type.
        message: MessageType,
        /// The state it arrived in.
        state: State,
    },
    /// The peer sent a NOTIFICATION too short to read; none is sent back.
    InvalidNotification {
        /// What was wrong.
        detail: String,
    },
    /// Stopped administratively ([`Event::ManualStop`](crate::fsm::Event::ManualStop)).
    Stopped {
        /// The NOTIFICATION sent, if our OPEN was.
        notification: Option<Notification>,
    },
    /// Stopped by the speaker
    /// ([`Event::AutomaticStop`](crate::fsm::Event::AutomaticStop)).
    AutomaticStop {
        /// The NOTIFICATION sent, if our OPEN was.
        notification: Option<Notification>,
    },
    /// This connection lost a connection collision (RFC 4271 section 6.8).
    CollisionResolution,
}

impl DownReason {
    /// A received NOTIFICATION with its shutdown communication decoded.
    pub fn received(notification: Notification) -> DownReason {
        let communication = notification
            .shutdown_communication()
            .map(|text| text.map(str::to_owned));
        DownReason::NotificationReceived {
            notification,
            communication,
        }
    }

    /// The NOTIFICATION sent to the peer, if any.
    pub fn notification_sent(&self) -> Option<&Notification> {
        match self {
            DownReason::NotificationSent { notification, .. } => Some(notification),
            DownReason::Stopped { notification } | DownReason::AutomaticStop { notification } => {
                notification.as_ref()
            }
            _ => None,
        }
    }

    /// Whether a peer's routes may be kept (graceful restart, RFC 4724) after this
    /// loss of an Established session: a lost connection, or a replaced one;
    /// with `graceful_notification` (RFC 8538's N bit on both sides) also an expired
    /// timer or any NOTIFICATION sent or received other than Cease / Hard Reset.
    pub fn keeps_routes(&self, graceful_notification: bool) -> bool {
        match self {
            DownReason::ConnectionClosed | DownReason::CollisionResolution => true,
            DownReason::HoldTimerExpired | DownReason::SendHoldTimerExpired => {
                graceful_notification
            }
            DownReason::NotificationSent { notification, .. }
            | DownReason::NotificationReceived { notification, .. } => {
                graceful_notification && !notification.is_hard_reset()
            }
            DownReason::Stopped { notification } | DownReason::AutomaticStop { notification } => {
                graceful_notification
                    && !notification
                        .as_ref()
                        .is_some_and(Notification::is_hard_reset)
            }
            DownReason::ConnectFailed
            | DownReason::UnexpectedMessage { .. }
            | DownReason::InvalidNotification { .. } => false,
        }
    }

    /// The same reason with `sent` as the NOTIFICATION sent (the Hard Reset that
    /// wrapped the one the reason was built with).
    pub(crate) fn with_sent(mut self, sent: Notification) -> DownReason {
        match &mut self {
            DownReason::NotificationSent { notification, .. } => *notification = sent,
            DownReason::Stopped { notification } | DownReason::AutomaticStop { notification } => {
                *notification = Some(sent);
            }
            _ => {}
        }
        self
    }

    /// The NOTIFICATION received from the peer, if any.
    pub fn notification_received(&self) -> Option<&Notification> {
        match self {
            DownReason::NotificationReceived { notification, .. } => Some(notification),
            _ => None,
        }
    }
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::NotificationSent {
                notification,
                detail,
            } => {
                f.write_str("sent NOTIFICATION ")?;
                short_notification(notification, f)?;
                write!(f, ": {detail}")
            }
            DownReason::NotificationReceived { notification, .. } => {
                f.write_str("received NOTIFICATION ")?;
                short_notification(notification, f)
            }
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::SendHoldTimerExpired => f.write_str("send hold timer expired"),
            DownReason::ConnectionClosed => f.write_str("connection closed"),
            DownReason::ConnectFailed => f.write_str("connection attempt failed"),
            DownReason::UnexpectedMessage { message, state } => {
                write!(f, "unexpected {} in {state}", message_type_name(*message))
            }
            DownReason::InvalidNotification { detail } => {
                write!(f, "invalid NOTIFICATION received: {detail}")
            }
            DownReason::Stopped { notification } => {
                f.write_str("stopped")?;
                sent_suffix(notification.as_ref(), f)
            }
            DownReason::AutomaticStop { notification } => {
                f.write_str("stopped by the speaker")?;
                sent_suffix(notification.as_ref(), f)
            }
            DownReason::CollisionResolution => f.write_str("connection collision resolution"),
        }
    }
}

fn sent_suffix(notification: Option<&Notification>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match notification {
        Some(notification) => {
            f.write_str(", sent NOTIFICATION ")?;
            short_notification(notification, f)
        }
        None => Ok(()),
    }
}

/// `code/subcode`, then the shutdown communication in quotes (escaped) or the data
/// in hex.
pub(crate) fn short_notification(
    notification: &Notification,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    write!(f, "{}/{}", notification.code, notification.subcode)?;
    if let Some(inner) = notification.hard_reset_inner() {
        f.write_str(" of ")?;
        return short_notification(&inner, f);
    }
    match notification.shutdown_communication() {
        Some(Ok(text)) => write!(f, " \"{}\"", text.escape_debug()),
        Some(Err(error)) => write!(f, " ({error})"),
        None if notification.data.is_empty() => Ok(()),
        None => {
            f.write_str(" data ")?;
            notification
                .data
                .iter()
                .try_for_each(|byte| write!(f, "{byte:02x}"))
        }
    }
}

/// The RFC name of a message type (`OPEN`, `UPDATE` ...).
pub(crate) fn message_type_name(message: MessageType) -> &'static str {
    match message {
        MessageType::Open => "OPEN",
        MessageType::Update => "UPDATE",
        MessageType::Notification => "NOTIFICATION",
        MessageType::Keepalive => "KEEPALIVE",
        MessageType::RouteRefresh => "ROUTE-REFRESH",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_kept_after_a_lost_connection_and_with_the_n_bit_after_a_notification() {
        let sent = |code, subcode| DownReason::NotificationSent {
            notification: Notification::new(code, subcode, Vec::new()),
            detail: String::new(),
        };
        let hard = Notification::hard_reset(&Notification::new(6, 2, Vec::new()));
        // (reason, kept without the N bit, kept with it)
        let table = [
            (DownReason::ConnectionClosed, true, true),
            (DownReason::CollisionResolution, true, true),
            (DownReason::HoldTimerExpired, false, true),
            (DownReason::SendHoldTimerExpired, false, true),
            (sent(3, 1), false, true),
            (
                DownReason::received(Notification::new(6, 6, Vec::new())),
                false,
                true,
            ),
            (DownReason::received(hard.clone()), false, false),
            (
                DownReason::Stopped {
                    notification: Some(hard),
                },
                false,
                false,
            ),
            (
                DownReason::AutomaticStop {
                    notification: Some(Notification::new(6, 6, Vec::new())),
                },
                false,
                true,
            ),
            (
                DownReason::InvalidNotification {
                    detail: String::new(),
                },
                false,
                false,
            ),
        ];
        for (reason, without, with) in table {
            assert_eq!(reason.keeps_routes(false), without, "{reason} without N");
            assert_eq!(reason.keeps_routes(true), with, "{reason} with N");
        }
    }
}
