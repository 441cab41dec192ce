//! NOTIFICATION message (RFC 4271 section 4.5): error code, subcode and data, the
//! named codes and subcodes of the IANA registry, and the shutdown communication of
//! RFC 8203 / RFC 9003 carried by Cease / Administrative Shutdown and Reset.
//!
//! A shutdown communication comes from the peer: it is length-checked and UTF-8
//! checked before it is handed out, and [`Notification`]'s `Display` escapes control
//! characters so it can go into a log line as is.

use std::fmt;

use bytes::{BufMut, BytesMut};

/// NOTIFICATION error codes.
pub mod code {
    /// Message Header Error.
    pub const MESSAGE_HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN_MESSAGE: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE_MESSAGE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH: u8 = 7;
    /// Send Hold Timer Expired (RFC 9687).
    pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;
}

/// Subcodes of Message Header Error (1).
pub mod header_subcode {
    /// Connection Not Synchronized (the marker is not all ones).
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    /// Bad Message Length; data is the 2-octet length field.
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    /// Bad Message Type; data is the type octet.
    pub const BAD_MESSAGE_TYPE: u8 = 3;
}

/// Subcodes of OPEN Message Error (2).
pub mod open_subcode {
    /// Unspecific.
    pub const UNSPECIFIC: u8 = 0;
    /// Unsupported Version Number; data is the largest supported version (2 octets).
    pub const UNSUPPORTED_VERSION: u8 = 1;
    /// Bad Peer AS.
    pub const BAD_PEER_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    /// Unsupported Optional Parameter.
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Unacceptable Hold Time.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// Unsupported Capability (RFC 5492); data lists the capabilities.
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    /// Role Mismatch (RFC 9234).
    pub const ROLE_MISMATCH: u8 = 11;
}

/// Subcodes of UPDATE Message Error (3).
pub mod update_subcode {
    /// Malformed Attribute List.
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    /// Unrecognized Well-known Attribute.
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    /// Missing Well-known Attribute; data is the type code.
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    /// Attribute Flags Error.
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    /// Attribute Length Error.
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    /// Invalid ORIGIN Attribute.
    pub const INVALID_ORIGIN: u8 = 6;
    /// Invalid NEXT_HOP Attribute.
    pub const INVALID_NEXT_HOP: u8 = 8;
    /// Optional Attribute Error.
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    /// Invalid Network Field.
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    /// Malformed AS_PATH.
    pub const MALFORMED_AS_PATH: u8 = 11;
}

/// Subcodes of Finite State Machine Error (5), RFC 6608.
pub mod fsm_subcode {
    /// Unspecified Error.
    pub const UNSPECIFIED: u8 = 0;
    /// Receive Unexpected Message in OpenSent State.
    pub const UNEXPECTED_IN_OPEN_SENT: u8 = 1;
    /// Receive Unexpected Message in OpenConfirm State.
    pub const UNEXPECTED_IN_OPEN_CONFIRM: u8 = 2;
    /// Receive Unexpected Message in Established State.
    pub const UNEXPECTED_IN_ESTABLISHED: u8 = 3;
}

/// Subcodes of Cease (6), RFC 4486 / RFC 8538.
pub mod cease_subcode {
    /// Maximum Number of Prefixes Reached.
    pub const MAX_PREFIXES: u8 = 1;
    /// Administrative Shutdown (may carry a shutdown communication).
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    /// Peer De-configured.
    pub const PEER_DECONFIGURED: u8 = 3;
    /// Administrative Reset (may carry a shutdown communication).
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    /// Connection Rejected.
    pub const CONNECTION_REJECTED: u8 = 5;
    /// Other Configuration Change.
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    /// Connection Collision Resolution.
    pub const CONNECTION_COLLISION_RESOLUTION: u8 = 7;
    /// Out of Resources.
    pub const OUT_OF_RESOURCES: u8 = 8;
    /// Hard Reset (RFC 8538).
    pub const HARD_RESET: u8 = 9;
    /// BFD Down (RFC 9384).
    pub const BFD_DOWN: u8 = 10;
}

/// Subcodes of ROUTE-REFRESH Message Error (7), RFC 7313.
pub mod route_refresh_subcode {
    /// Invalid Message Length.
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// The longest shutdown communication RFC 9003 allows, in octets.
pub const SHUTDOWN_COMMUNICATION_MAX: usize = 255;

/// A NOTIFICATION message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Notification {
    /// Error code (see [`code`]).
    pub code: u8,
    /// Error subcode (see the `*_subcode` modules).
    pub subcode: u8,
    /// Diagnostic data; its meaning depends on code and subcode.
    #[cfg_attr(feature = "serde", serde(serialize_with = "crate::serde_hex"))]
    pub data: Vec<u8>,
}

/// Why a shutdown communication cannot be shown as text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShutdownCommunicationError {
    /// The length octet promises more bytes than the data holds.
    #[error("shutdown communication length {declared} exceeds the {available} octets present")]
    Truncated {
        /// The length octet.
        declared: usize,
        /// Octets actually present after it.
        available: usize,
    },
    /// The text is not UTF-8.
    #[error("shutdown communication is not valid UTF-8")]
    NotUtf8,
}

impl Notification {
    /// A NOTIFICATION with the given code, subcode and data.
    pub fn new(code: u8, subcode: u8, data: impl Into<Vec<u8>>) -> Notification {
        Notification {
            code,
            subcode,
            data: data.into(),
        }
    }

    /// Cease with the given subcode (`ADMINISTRATIVE_SHUTDOWN` or `ADMINISTRATIVE_RESET`)
    /// carrying `message` as an RFC 9003 shutdown communication. The message is cut at
    /// a character boundary to fit 255 octets.
    pub fn shutdown(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(SHUTDOWN_COMMUNICATION_MAX);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let text = &message.as_bytes()[..end];
        let mut data = Vec::with_capacity(1 + text.len());
        // `end` is at most 255, so it fits the length octet.
        data.push(end as u8);
        data.extend_from_slice(text);
        Notification::new(code::CEASE, subcode, data)
    }

    /// Cease / Hard Reset (RFC 8538 3.1): `inner`'s code, subcode and data carried
    /// as its data.
    pub fn hard_reset(inner: &Notification) -> Notification {
        let mut data = Vec::with_capacity(2 + inner.data.len());
        data.push(inner.code);
        data.push(inner.subcode);
        data.extend_from_slice(&inner.data);
        Notification::new(code::CEASE, cease_subcode::HARD_RESET, data)
    }

    /// True for Cease / Hard Reset: the session ends without graceful restart, its
    /// routes flushed on both sides (RFC 8538).
    pub fn is_hard_reset(&self) -> bool {
        self.code == code::CEASE && self.subcode == cease_subcode::HARD_RESET
    }

    /// The NOTIFICATION a Cease / Hard Reset carries; `None` for any other, or when
    /// its data is shorter than a code and a subcode.
    pub fn hard_reset_inner(&self) -> Option<Notification> {
        match self.data.as_slice() {
            [code, subcode, data @ ..] if self.is_hard_reset() => {
                Some(Notification::new(*code, *subcode, data))
            }
            _ => None,
        }
    }

    /// Whether, once both sides advertised the N bit, this NOTIFICATION goes out as
    /// a Hard Reset (RFC 8538 5.1): Cease with Maximum Number of Prefixes Reached,
    /// Administrative Shutdown, Peer De-configured, Administrative Reset (the
    /// section leaves it to the implementation; an operator's reset means to start
    /// afresh, as FRR's default `bgp hard-administrative-reset` has it) or BFD Down.
    /// Every other NOTIFICATION keeps the peer's routes as graceful restart does.
    pub fn calls_for_hard_reset(&self) -> bool {
        self.code == code::CEASE
            && matches!(
                self.subcode,
                cease_subcode::MAX_PREFIXES
                    | cease_subcode::ADMINISTRATIVE_SHUTDOWN
                    | cease_subcode::PEER_DECONFIGURED
                    | cease_subcode::ADMINISTRATIVE_RESET
                    | cease_subcode::BFD_DOWN
            )
    }

    /// Hold Timer Expired (4/0).
    pub fn hold_timer_expired() -> Notification {
        Notification::new(code::HOLD_TIMER_EXPIRED, 0, Vec::new())
    }

    /// Send Hold Timer Expired (8/0), RFC 9687.
    pub fn send_hold_timer_expired() -> Notification {
        Notification::new(code::SEND_HOLD_TIMER_EXPIRED, 0, Vec::new())
    }

    /// The shutdown communication of a Cease / Administrative Shutdown or Reset:
    /// `None` for any other NOTIFICATION or when the data is empty (no message).
    pub fn shutdown_communication(&self) -> Option<Result<&str, ShutdownCommunicationError>> {
        let carries = self.code == code::CEASE
            && (self.subcode == cease_subcode::ADMINISTRATIVE_SHUTDOWN
                || self.subcode == cease_subcode::ADMINISTRATIVE_RESET);
        let (&declared, rest) = self.data.split_first().filter(|_| carries)?;
        let declared = usize::from(declared);
        let Some(text) = rest.get(..declared) else {
            return Some(Err(ShutdownCommunicationError::Truncated {
                declared,
                available: rest.len(),
            }));
        };
        Some(std::str::from_utf8(text).map_err(|_| ShutdownCommunicationError::NotUtf8))
    }

    /// The IANA name of the error code.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            code::MESSAGE_HEADER => "Message Header Error",
            code::OPEN_MESSAGE => "OPEN Message Error",
            code::UPDATE_MESSAGE => "UPDATE Message Error",
            code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            code::FSM => "Finite State Machine Error",
            code::CEASE => "Cease",
            code::ROUTE_REFRESH => "ROUTE-REFRESH Message Error",
            code::SEND_HOLD_TIMER_EXPIRED => "Send Hold Timer Expired",
            _ => "Unknown Error Code",
        }
    }

    /// The IANA name of the subcode within its code (`"Unspecific"` for 0).
    pub fn subcode_name(&self) -> &'static str {
        match (self.code, self.subcode) {
            (_, 0) => "Unspecific",
            (code::MESSAGE_HEADER, 1) => "Connection Not Synchronized",
            (code::MESSAGE_HEADER, 2) => "Bad Message Length",
            (code::MESSAGE_HEADER, 3) => "Bad Message Type",
            (code::OPEN_MESSAGE, 1) => "Unsupported Version Number",
            (code::OPEN_MESSAGE, 2) => "Bad Peer AS",
            (code::OPEN_MESSAGE, 3) => "Bad BGP Identifier",
            (code::OPEN_MESSAGE, 4) => "Unsupported Optional Parameter",
            (code::OPEN_MESSAGE, 6) => "Unacceptable Hold Time",
            (code::OPEN_MESSAGE, 7) => "Unsupported Capability",
            (code::OPEN_MESSAGE, 11) => "Role Mismatch",
            (code::UPDATE_MESSAGE, 1) => "Malformed Attribute List",
            (code::UPDATE_MESSAGE, 2) => "Unrecognized Well-known Attribute",
            (code::UPDATE_MESSAGE, 3) => "Missing Well-known Attribute",
            (code::UPDATE_MESSAGE, 4) => "Attribute Flags Error",
            (code::UPDATE_MESSAGE, 5) => "Attribute Length Error",
            (code::UPDATE_MESSAGE, 6) => "Invalid ORIGIN Attribute",
            (code::UPDATE_MESSAGE, 8) => "Invalid NEXT_HOP Attribute",
            (code::UPDATE_MESSAGE, 9) => "Optional Attribute Error",
            (code::UPDATE_MESSAGE, 10) => "Invalid Network Field",
            (code::UPDATE_MESSAGE, 11) => "Malformed AS_PATH",
            (code::FSM, 1) => "Receive Unexpected Message in OpenSent State",
            (code::FSM, 2) => "Receive Unexpected Message in OpenConfirm State",
            (code::FSM, 3) => "Receive Unexpected Message in Established State",
            (code::CEASE, 1) => "Maximum Number of Prefixes Reached",
            (code::CEASE, 2) => "Administrative Shutdown",
            (code::CEASE, 3) => "Peer De-configured",
            (code::CEASE, 4) => "Administrative Reset",
            (code::CEASE, 5) => "Connection Rejected",
            (code::CEASE, 6) => "Other Configuration Change",
            (code::CEASE, 7) => "Connection Collision Resolution",
            (code::CEASE, 8) => "Out of Resources",
            (code::CEASE, 9) => "Hard Reset",
            (code::CEASE, 10) => "BFD Down",
            (code::ROUTE_REFRESH, 1) => "Invalid Message Length",
            _ => "Unknown Subcode",
        }
    }

    /// Writes the message body (without the 19-octet header).
    pub(crate) fn encode_body(&self, buf: &mut BytesMut) {
        buf.put_u8(self.code);
        buf.put_u8(self.subcode);
        buf.extend_from_slice(&self.data);
    }

    /// Reads a message body (the caller checked it holds at least two octets).
    pub(crate) fn decode_body(body: &[u8]) -> Option<Notification> {
        match body {
            [code, subcode, data @ ..] => Some(Notification::new(*code, *subcode, data)),
            _ => None,
        }
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} ({} / {})",
            self.code,
            self.subcode,
            self.code_name(),
            self.subcode_name()
        )?;
        if let Some(inner) = self.hard_reset_inner() {
            return write!(f, " of {inner}");
        }
        match self.shutdown_communication() {
            Some(Ok(text)) => write!(f, ": \"{}\"", text.escape_debug()),
            Some(Err(error)) => write!(f, ": {error}"),
            None if self.data.is_empty() => Ok(()),
            None => {
                f.write_str(", data ")?;
                self.data
                    .iter()
                    .try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hard_reset_carries_the_notification_it_stands_for() {
        let inner = Notification::shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "bye");
        assert!(inner.calls_for_hard_reset() && !inner.is_hard_reset());
        let hard = Notification::hard_reset(&inner);
        assert_eq!((hard.code, hard.subcode), (6, 9));
        assert_eq!(hard.data, b"\x06\x02\x03bye");
        assert_eq!(hard.hard_reset_inner(), Some(inner));
        assert_eq!(
            hard.to_string(),
            "6/9 (Cease / Hard Reset) of 6/2 (Cease / Administrative Shutdown): \"bye\""
        );
        assert!(!hard.calls_for_hard_reset(), "never wrapped twice");
        assert_eq!(Notification::new(6, 9, vec![6]).hard_reset_inner(), None);
        for graceful in [
            Notification::hold_timer_expired(),
            Notification::new(6, 6, Vec::new()),
            Notification::new(3, 1, Vec::new()),
        ] {
            assert!(!graceful.calls_for_hard_reset(), "{graceful}");
        }
    }

    #[test]
    fn shutdown_communication_round_trips_and_is_cut_at_a_character() {
        let notification = Notification::shutdown(cease_subcode::ADMINISTRATIVE_SHUTDOWN, "bye");
        assert_eq!(notification.data, b"\x03bye");
        assert_eq!(notification.shutdown_communication(), Some(Ok("bye")));
        let long = "é".repeat(200);
        let cut = Notification::shutdown(cease_subcode::ADMINISTRATIVE_RESET, &long);
        assert_eq!(cut.data[0], 254);
        assert_eq!(
            cut.shutdown_communication().map(|text| text.map(str::len)),
            Some(Ok(254))
        );
    }

    #[test]
    fn hostile_shutdown_communication_is_refused() {
        let truncated = Notification::new(6, 2, b"\x09abc".to_vec());
        assert_eq!(
            truncated.shutdown_communication(),
            Some(Err(ShutdownCommunicationError::Truncated {
                declared: 9,
                available: 3
            }))
        );
        let not_utf8 = Notification::new(6, 4, b"\x02\xff\xfe".to_vec());
        assert_eq!(
            not_utf8.shutdown_communication(),
            Some(Err(ShutdownCommunicationError::NotUtf8))
        );
        assert_eq!(
            Notification::new(6, 3, b"\x01a".to_vec()).shutdown_communication(),
            None
        );
        let shown = Notification::new(6, 2, b"\x05a\nb\x1bc".to_vec()).to_string();
        assert_eq!(
            shown,
            "6/2 (Cease / Administrative Shutdown): \"a\\nb\\u{1b}c\""
        );
    }
}
