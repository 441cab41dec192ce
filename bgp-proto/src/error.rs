//! The error model: what a decode problem means for the session.
//!
//! Every problem found while decoding a framed message becomes a [`DecodeError`]: a
//! human-readable reason, the RFC 7606 [`Action`] it calls for, and the NOTIFICATION
//! (code, subcode, data) RFC 4271 assigns to it. A message whose problems are all
//! weaker than session reset decodes into [`Decoded`](crate::Decoded) with the
//! strongest action; one that needs a reset becomes [`Malformed`] carrying the
//! NOTIFICATION to send. [`FramingError`] is the only error of the byte stream itself
//! (no message boundary can be trusted any more). [`EncodeError`] is what encoding
//! refuses.

use std::borrow::Cow;
use std::fmt;

use crate::family::Family;
use crate::notification::Notification;

/// The RFC 7606 error-handling approach, weakest first: `Ord` gives "strongest wins".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
pub enum Action {
    /// Well-formed: nothing to do.
    #[default]
    None,
    /// Drop the offending attribute, process the rest of the UPDATE.
    AttributeDiscard,
    /// Process every route the UPDATE announces as a withdrawal.
    TreatAsWithdraw,
    /// Drop every route of the family and ignore it until the session restarts
    /// (RFC 4760 section 7); a speaker that cannot do that resets the session.
    AfiSafiDisable,
    /// Send the NOTIFICATION and close the session.
    SessionReset,
}

impl Action {
    /// The kebab-case name used in JSON and logs (`treat-as-withdraw` ...).
    pub fn name(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::AttributeDiscard => "attribute-discard",
            Action::TreatAsWithdraw => "treat-as-withdraw",
            Action::AfiSafiDisable => "afi-safi-disable",
            Action::SessionReset => "session-reset",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One problem found in a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct DecodeError {
    /// What the problem calls for.
    pub action: Action,
    /// The NOTIFICATION RFC 4271 assigns to the problem; it is sent only when the
    /// action is `SessionReset` (or when a speaker falls back to a reset instead of
    /// `AfiSafiDisable`). `None` for problems that never reset a session (an
    /// attribute discarded because an eBGP peer sent it, a duplicate, a semantically
    /// wrong next hop).
    pub notification: Option<Notification>,
    /// The path attribute type code concerned, if any.
    pub attribute: Option<u8>,
    /// The address family concerned (always set for `AfiSafiDisable`).
    pub family: Option<Family>,
    /// Human-readable description.
    pub reason: Cow<'static, str>,
}

impl DecodeError {
    pub(crate) fn new(
        action: Action,
        code: u8,
        subcode: u8,
        reason: impl Into<Cow<'static, str>>,
    ) -> DecodeError {
        DecodeError {
            action,
            notification: Some(Notification::new(code, subcode, Vec::new())),
            attribute: None,
            family: None,
            reason: reason.into(),
        }
    }

    /// A problem that never calls for a NOTIFICATION.
    pub(crate) fn silent(action: Action, reason: impl Into<Cow<'static, str>>) -> DecodeError {
        DecodeError {
            action,
            notification: None,
            attribute: None,
            family: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn with_data(mut self, data: &[u8]) -> DecodeError {
        if let Some(notification) = &mut self.notification {
            notification.data = data.to_vec();
        }
        self
    }

    pub(crate) fn with_attribute(mut self, code: u8) -> DecodeError {
        self.attribute = Some(code);
        self
    }

    pub(crate) fn with_family(mut self, family: Family) -> DecodeError {
        self.family = Some(family);
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.attribute {
            write!(f, "{}: ", crate::attribute_type::type_name(code))?;
        }
        write!(f, "{} ({}", self.reason, self.action)?;
        if let Some(family) = self.family {
            write!(f, " {family}")?;
        }
        match &self.notification {
            Some(n) => write!(f, ", {}/{} {})", n.code, n.subcode, n.subcode_name()),
            None => f.write_str(")"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The most problems listed for one message; the action still counts every problem.
pub const MAX_LISTED_PROBLEMS: usize = 32;

/// The problems found in one message, listed up to [`MAX_LISTED_PROBLEMS`] so that a
/// hostile message cannot make the list grow with its length; the strongest action and
/// the first session-reset problem are always kept.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<DecodeError>,
    strongest: Action,
}

impl Problems {
    pub(crate) fn push(&mut self, error: DecodeError) {
        let reset = error.action == Action::SessionReset;
        let first_reset = reset && self.strongest < Action::SessionReset;
        self.strongest = self.strongest.max(error.action);
        if self.list.len() < MAX_LISTED_PROBLEMS {
            self.list.push(error);
        } else if first_reset {
            if let Some(last) = self.list.last_mut() {
                *last = error;
            }
        }
    }

    pub(crate) fn strongest(&self) -> Action {
        self.strongest
    }

    pub(crate) fn into_list(self) -> Vec<DecodeError> {
        self.list
    }
}

/// A framed message that must be answered with a NOTIFICATION and a session reset.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Malformed {
    /// The message type octet of the header.
    pub message_type: u8,
    /// The NOTIFICATION to send (from the first session-reset problem found).
    pub notification: Notification,
    /// Every problem found, the session-reset one included.
    pub errors: Vec<DecodeError>,
}

impl Malformed {
    /// A message refused for `error`, whose notification is the one to send.
    pub(crate) fn from_error(message_type: u8, error: DecodeError) -> Malformed {
        let notification = error.notification.clone().unwrap_or_else(|| {
            Notification::new(crate::notification::code::MESSAGE_HEADER, 0, Vec::new())
        });
        Malformed {
            message_type,
            notification,
            errors: vec![error],
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed message (type {}): ", self.message_type)?;
        match self
            .errors
            .iter()
            .find(|e| e.action == Action::SessionReset)
        {
            Some(error) => write!(f, "{error}"),
            None => write!(f, "NOTIFICATION {}", self.notification),
        }
    }
}

impl std::error::Error for Malformed {}

/// The byte stream cannot be framed any more: the session must send
/// [`FramingError::notification`] (if any) and close.
#[derive(Debug, thiserror::Error)]
pub enum FramingError {
    /// The 16-octet marker is not all ones.
    #[error("message header marker is not all ones")]
    BadMarker,
    /// The length field is below 19 or above the negotiated maximum.
    #[error("message length {length} outside 19..={max}")]
    BadLength {
        /// The length field.
        length: u16,
        /// The largest length allowed for this message on this session.
        max: usize,
    },
    /// The transport failed.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
}

impl FramingError {
    /// The NOTIFICATION to send before closing (none for a transport failure).
    pub fn notification(&self) -> Option<Notification> {
        use crate::notification::{code, header_subcode};
        match self {
            FramingError::BadMarker => Some(Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            )),
            FramingError::BadLength { length, .. } => Some(Notification::new(
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                length.to_be_bytes().to_vec(),
            )),
            FramingError::Io(_) => None,
        }
    }
}

/// Why a message cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed the negotiated maximum size.
    #[error("message of {length} octets exceeds the maximum of {max}")]
    TooLong {
        /// The length the message would have.
        length: usize,
        /// The negotiated maximum.
        max: usize,
    },
    /// A field does not fit its wire encoding.
    #[error("{what} does not fit its wire encoding")]
    FieldTooLong {
        /// The field.
        what: &'static str,
    },
    /// An IPv4 prefix with an IPv6 next hop needs the extended next hop capability
    /// (RFC 8950) for its family.
    #[error("IPv6 next hop for {0} without the extended next hop capability")]
    ExtendedNextHopNotNegotiated(Family),
    /// The next hop or the prefixes do not belong to the family.
    #[error("next hop or prefixes do not fit family {0}")]
    FamilyMismatch(Family),
    /// An UPDATE announcing IPv4 prefixes in the classic NLRI field needs a NEXT_HOP.
    #[error("IPv4 NLRI without a NEXT_HOP attribute")]
    MissingNextHop,
    /// Pre-encoded attributes were made for another family or for a session that
    /// encodes attributes otherwise (AS width, RFC 8950 next hop).
    #[error("attributes encoded for {0} on another kind of session")]
    EncodedForAnotherSession(Family),
}
