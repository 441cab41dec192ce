//! tokio-util framing: [`BgpCodec`] is a `Decoder` whose items are every framed
//! message, decoded with the session context (`Ok(Decoded)`) or refused
//! (`Err(Malformed)`, to be answered with its NOTIFICATION); its only error is a
//! stream that cannot be framed any more ([`FramingError`]). As an `Encoder` it takes
//! [`Message`]s, or `Bytes` already encoded (e.g. by the update packer).
//!
//! The context starts as given to [`BgpCodec::new`] (what is known before OPEN) and is
//! replaced with [`BgpCodec::set_context`] once the OPENs are exchanged.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::context::SessionContext;
use crate::error::{EncodeError, FramingError, Malformed};
use crate::message::{Decoded, HEADER_LEN, Message, decode_message, frame_length};

/// BGP framing with the session context.
#[derive(Clone, Debug)]
pub struct BgpCodec {
    ctx: SessionContext,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message does not encode.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The transport failed.
    #[error("transport: {0}")]
    Io(#[from] std::io::Error),
}

impl BgpCodec {
    /// A codec using `ctx`.
    pub fn new(ctx: SessionContext) -> BgpCodec {
        BgpCodec { ctx }
    }

    /// The context in use.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Replaces the context (after the OPEN exchange).
    pub fn set_context(&mut self, ctx: SessionContext) {
        self.ctx = ctx;
    }
}

impl Decoder for BgpCodec {
    type Item = Result<Decoded, Malformed>;
    type Error = FramingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FramingError> {
        match frame_length(src, self.ctx.max_message_len())? {
            Some(length) => {
                let frame = src.split_to(length);
                Ok(Some(decode_message(&frame, &self.ctx)))
            }
            None => {
                if let Some(length) = src.get(16..18) {
                    let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
                    src.reserve(length.saturating_sub(src.len()));
                } else {
                    src.reserve(HEADER_LEN);
                }
                Ok(None)
            }
        }
    }
}

impl Encoder<Message> for BgpCodec {
    type Error = SendError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), SendError> {
        Encoder::<&Message>::encode(self, &item, dst)
    }
}

impl Encoder<&Message> for BgpCodec {
    type Error = SendError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), SendError> {
        item.encode(&self.ctx, dst)?;
        Ok(())
    }
}

impl Encoder<Bytes> for BgpCodec {
    type Error = SendError;

    /// Already-encoded messages, passed through.
    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), SendError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::notification::Notification;

    #[test]
    fn frames_travel_as_items_and_only_broken_streams_fail() {
        let ctx = SessionContext::default();
        let mut codec = BgpCodec::new(ctx);
        let mut buf = BytesMut::new();
        codec.encode(Message::Keepalive, &mut buf).unwrap();
        // A framed message of unknown type 9: an item, answered with 1/3.
        buf.extend_from_slice(&[0xff; 16]);
        buf.extend_from_slice(&[0, 19, 9]);
        codec
            .encode(
                Message::Notification(Notification::new(6, 2, vec![0])),
                &mut buf,
            )
            .unwrap();
        let mut half = buf.split_off(buf.len() - 3);

        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap().unwrap().message,
            Message::Keepalive
        );
        let malformed = codec.decode(&mut buf).unwrap().unwrap().unwrap_err();
        assert_eq!(malformed.notification, Notification::new(1, 3, vec![9]));
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.unsplit(half.split());
        let last = codec.decode(&mut buf).unwrap().unwrap().unwrap();
        assert_eq!(
            last.message,
            Message::Notification(Notification::new(6, 2, vec![0]))
        );

        let mut broken = BytesMut::from(&[0xff, 0xff, 0x00][..]);
        assert!(matches!(
            codec.decode(&mut broken),
            Err(FramingError::BadMarker)
        ));
        let mut long = BytesMut::from(&[0xff; 16][..]);
        long.extend_from_slice(&[0x10, 0x01]);
        let error = codec.decode(&mut long).unwrap_err();
        assert_eq!(
            error.notification(),
            Some(Notification::new(1, 2, vec![0x10, 0x01]))
        );
        codec.set_context(SessionContext {
            extended_message: true,
            ..ctx
        });
        let mut long = BytesMut::from(&[0xff; 16][..]);
        long.extend_from_slice(&[0x10, 0x01]);
        assert!(codec.decode(&mut long).unwrap().is_none());
    }
}
