//! BGP messages and their 19-octet header (RFC 4271 section 4.1): framing a byte
//! stream, decoding one framed message with the session context, encoding.
//!
//! Calling contract: [`frame_length`] finds message boundaries in a stream and fails
//! only when the stream itself is broken (bad marker, impossible length); every framed
//! message then goes to [`decode_message`], which never fails the stream: a message
//! that is wrong but framed comes back as [`Malformed`] with the NOTIFICATION to send,
//! and a usable one as [`Decoded`] with its RFC 7606 action (always `None` except for
//! UPDATE).

use bytes::{BufMut, Bytes, BytesMut};

use crate::context::{MAX_MESSAGE_LEN, SessionContext};
use crate::error::{Action, DecodeError, EncodeError, FramingError, Malformed};
use crate::notification::{Notification, code, header_subcode, route_refresh_subcode};
use crate::open::Open;
use crate::route_refresh::RouteRefresh;
use crate::update::Update;
use crate::update::decode::decode_update;
use crate::wire::patch_u16;

/// The header marker: 16 octets of ones.
pub const MARKER: [u8; 16] = [0xff; 16];
/// Octets in the message header.
pub const HEADER_LEN: usize = 19;
/// The TCP port BGP speakers listen on (RFC 4271 section 8.2.1).
pub const BGP_PORT: u16 = 179;

/// Message type codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// OPEN.
    Open = 1,
    /// UPDATE.
    Update = 2,
    /// NOTIFICATION.
    Notification = 3,
    /// KEEPALIVE.
    Keepalive = 4,
    /// ROUTE-REFRESH (RFC 2918).
    RouteRefresh = 5,
}

impl MessageType {
    /// The type of a wire value.
    pub fn from_code(code: u8) -> Option<MessageType> {
        Some(match code {
            1 => MessageType::Open,
            2 => MessageType::Update,
            3 => MessageType::Notification,
            4 => MessageType::Keepalive,
            5 => MessageType::RouteRefresh,
            _ => return None,
        })
    }

    /// The smallest valid message length of this type.
    pub fn min_len(self) -> usize {
        match self {
            MessageType::Open => 29,
            MessageType::Update => 23,
            MessageType::Notification => 21,
            MessageType::Keepalive => 19,
            MessageType::RouteRefresh => 23,
        }
    }
}

/// A BGP message.
// An UPDATE is a few hundred octets inline; a message is moved once or twice on its
// way to the session, so boxing it would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "type", rename_all = "kebab-case"))]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

/// A framed message that decoded, with what RFC 7606 says to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The message (for an UPDATE, malformed or discarded attributes are absent).
    pub message: Message,
    /// The strongest action of `errors` (`None` when empty); never `SessionReset`.
    /// For `TreatAsWithdraw`, every prefix of [`Update::announcements`] is withdrawn.
    pub action: Action,
    /// Every problem found.
    pub errors: Vec<DecodeError>,
}

/// A message decoded without any problem.
impl From<Message> for Decoded {
    fn from(message: Message) -> Decoded {
        Decoded {
            message,
            action: Action::None,
            errors: Vec::new(),
        }
    }
}

impl Decoded {
    /// The families to disable (the `AfiSafiDisable` problems).
    pub fn disabled_families(&self) -> impl Iterator<Item = crate::Family> + '_ {
        self.errors
            .iter()
            .filter(|error| error.action == Action::AfiSafiDisable)
            .filter_map(|error| error.family)
    }
}

/// Finds the length of the first message in `buf`: `Ok(None)` when more octets are
/// needed, an error when the stream cannot be framed (marker not all ones, length
/// outside `19..=max_len`).
pub fn frame_length(buf: &[u8], max_len: usize) -> Result<Option<usize>, FramingError> {
    let marker_seen = buf.len().min(MARKER.len());
    if buf[..marker_seen] != MARKER[..marker_seen] {
        return Err(FramingError::BadMarker);
    }
    let Some(&[l0, l1]) = buf.get(16..18).and_then(|s| <&[u8; 2]>::try_from(s).ok()) else {
        return Ok(None);
    };
    let length = u16::from_be_bytes([l0, l1]);
    if usize::from(length) < HEADER_LEN || usize::from(length) > max_len {
        return Err(FramingError::BadLength {
            length,
            max: max_len,
        });
    }
    if buf.len() < HEADER_LEN || buf.len() < usize::from(length) {
        return Ok(None);
    }
    Ok(Some(usize::from(length)))
}

/// Decodes one whole message (header included) received on a session with `ctx`.
pub fn decode_message(frame: &[u8], ctx: &SessionContext) -> Result<Decoded, Malformed> {
    let header_error = |subcode: u8, reason: String, data: &[u8]| {
        let kind = frame.get(18).copied().unwrap_or(0);
        Malformed::from_error(
            kind,
            DecodeError::new(Action::SessionReset, code::MESSAGE_HEADER, subcode, reason)
                .with_data(data),
        )
    };
    if frame.len() < HEADER_LEN {
        let length = u16::try_from(frame.len()).unwrap_or(u16::MAX).to_be_bytes();
        return Err(header_error(
            header_subcode::BAD_MESSAGE_LENGTH,
            format!("{} octets cannot hold a header", frame.len()),
            &length,
        ));
    }
    if frame[..16] != MARKER {
        return Err(header_error(
            header_subcode::CONNECTION_NOT_SYNCHRONIZED,
            "marker is not all ones".into(),
            &[],
        ));
    }
    let length_field = [frame[16], frame[17]];
    let length = usize::from(u16::from_be_bytes(length_field));
    let kind = frame[18];
    let body = &frame[HEADER_LEN..];
    let Some(message_type) = MessageType::from_code(kind) else {
        return Err(header_error(
            header_subcode::BAD_MESSAGE_TYPE,
            format!("message type {kind}"),
            &[kind],
        ));
    };
    let max = match message_type {
        MessageType::Open | MessageType::Keepalive => MAX_MESSAGE_LEN,
        _ => ctx.max_message_len(),
    };
    let fits = match message_type {
        MessageType::Keepalive => length == HEADER_LEN,
        _ => length >= message_type.min_len() && length <= max,
    };
    if length != frame.len() || !fits {
        return Err(header_error(
            header_subcode::BAD_MESSAGE_LENGTH,
            format!(
                "length field {length} (message of {} octets) for message type {kind}",
                frame.len()
            ),
            &length_field,
        ));
    }
    let plain = |message: Message| Ok(Decoded::from(message));
    match message_type {
        MessageType::Keepalive => plain(Message::Keepalive),
        MessageType::Open => match Open::decode_body(body) {
            Ok(open) => plain(Message::Open(open)),
            Err(error) => Err(Malformed::from_error(kind, error)),
        },
        MessageType::Notification => match Notification::decode_body(body) {
            Some(notification) => plain(Message::Notification(notification)),
            None => Err(header_error(
                header_subcode::BAD_MESSAGE_LENGTH,
                "NOTIFICATION too short".into(),
                &length_field,
            )),
        },
        MessageType::RouteRefresh => {
            let refresh = RouteRefresh::decode_body(body);
            match refresh {
                Some(refresh) if body.len() == 4 || refresh.is_ignorable() => {
                    plain(Message::RouteRefresh(refresh))
                }
                Some(_) => Err(Malformed::from_error(
                    kind,
                    DecodeError::new(
                        Action::SessionReset,
                        code::ROUTE_REFRESH,
                        route_refresh_subcode::INVALID_MESSAGE_LENGTH,
                        format!("ROUTE-REFRESH body of {} octets, expected 4", body.len()),
                    )
                    .with_data(frame),
                )),
                None => Err(header_error(
                    header_subcode::BAD_MESSAGE_LENGTH,
                    "ROUTE-REFRESH too short".into(),
                    &length_field,
                )),
            }
        }
        MessageType::Update => {
            // Filled in place: an Update is a few hundred octets, and moving it through
            // several return values costs more than decoding a small one.
            let mut decoded = Decoded::from(Message::Update(Update::default()));
            let Message::Update(update) = &mut decoded.message else {
                return Err(header_error(
                    header_subcode::BAD_MESSAGE_TYPE,
                    "UPDATE".into(),
                    &[kind],
                ));
            };
            match decode_update(body, ctx, update) {
                Ok((action, errors)) => {
                    decoded.action = action;
                    decoded.errors = errors;
                    Ok(decoded)
                }
                Err(errors) => {
                    let notification = errors
                        .iter()
                        .find(|error| error.action == Action::SessionReset)
                        .and_then(|error| error.notification.clone())
                        .unwrap_or_else(|| Notification::new(code::UPDATE_MESSAGE, 0, Vec::new()));
                    Err(Malformed {
                        message_type: kind,
                        notification,
                        errors,
                    })
                }
            }
        }
    }
}

impl Message {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Appends the whole message (header included) to `buf`. On error `buf` is left
    /// as it was.
    pub fn encode(&self, ctx: &SessionContext, buf: &mut BytesMut) -> Result<(), EncodeError> {
        let start = buf.len();
        let result = self.encode_unchecked(ctx, buf, start);
        if result.is_err() {
            buf.truncate(start);
        }
        result
    }

    /// The whole message as bytes.
    pub fn to_bytes(&self, ctx: &SessionContext) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::with_capacity(64);
        self.encode(ctx, &mut buf)?;
        Ok(buf.freeze())
    }

    fn encode_unchecked(
        &self,
        ctx: &SessionContext,
        buf: &mut BytesMut,
        start: usize,
    ) -> Result<(), EncodeError> {
        let message_type = self.message_type();
        buf.extend_from_slice(&MARKER);
        buf.put_u16(0);
        buf.put_u8(message_type as u8);
        match self {
            Message::Open(open) => open.encode_body(buf)?,
            Message::Update(update) => update.encode_body(ctx, buf)?,
            Message::Notification(notification) => notification.encode_body(buf),
            Message::Keepalive => {}
            Message::RouteRefresh(refresh) => refresh.encode_body(buf),
        }
        let length = buf.len() - start;
        let max = match message_type {
            MessageType::Open | MessageType::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len(),
        };
        if length > max {
            return Err(EncodeError::TooLong { length, max });
        }
        // length <= max <= 65535.
        patch_u16(buf, start + 16, length as u16);
        Ok(())
    }
}

impl From<Open> for Message {
    fn from(open: Open) -> Self {
        Message::Open(open)
    }
}

impl From<Update> for Message {
    fn from(update: Update) -> Self {
        Message::Update(update)
    }
}

impl From<Notification> for Message {
    fn from(notification: Notification) -> Self {
        Message::Notification(notification)
    }
}

impl From<RouteRefresh> for Message {
    fn from(refresh: RouteRefresh) -> Self {
        Message::RouteRefresh(refresh)
    }
}
