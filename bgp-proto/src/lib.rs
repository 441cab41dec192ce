//! bgp-proto: the BGP-4 wire format and its error model, sans I/O.
//!
//! - [`decode_message`] / [`Message::encode`]: OPEN (capabilities, RFC 9072 extended
//!   optional parameters), UPDATE, NOTIFICATION (with RFC 8203/9003 shutdown
//!   communication), KEEPALIVE, ROUTE-REFRESH (RFC 7313 subtypes).
//! - [`frame_length`]: message boundaries in a byte stream; with the `codec` feature,
//!   `codec::BgpCodec` is a tokio-util `Decoder`/`Encoder` built on it.
//! - [`SessionContext`]: the negotiated parameters (4-octet AS, add-path per family,
//!   extended message, extended next hop, iBGP or eBGP) every decode and encode takes
//!   explicitly; [`SessionContext::negotiate`] derives it from the two OPENs.
//! - [`Update`] keeps NLRI (classic and MP, with add-path ids) apart from
//!   [`PathAttributes`], a `Clone + Eq + Hash` value a speaker can intern.
//! - Errors: each problem in a received message is a [`DecodeError`] carrying its
//!   RFC 7606 [`Action`] and RFC 4271 NOTIFICATION; [`Malformed`] is a message that
//!   must reset the session; [`FramingError`] a stream that cannot be framed.
//!
//! Nothing here reads a clock, does I/O or panics on input; no allocation is larger
//! than the input length justifies.
//!
//! Features: `serde` (Serialize for every message type, used by `bgpctl decode`),
//! `codec` (tokio-util framing).

pub mod attribute;
pub mod attribute_type;
pub mod capability;
#[cfg(feature = "codec")]
pub mod codec;
pub mod context;
pub mod error;
pub mod family;
pub mod fsm;
pub mod message;
pub mod notification;
pub mod open;
mod pack;
pub mod route_refresh;
pub mod update;
mod wire;

pub use attribute::{
    Aggregator, AsPath, Community, ExtendedCommunity, LargeCommunity, Origin, PathAttributes,
    RawAttribute, Segment, SegmentType,
};
pub use capability::{
    AddPath, Capability, ExtendedNextHop, GracefulRestart, GracefulRestartFamily,
};
pub use context::{MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, SessionContext};
pub use error::{Action, DecodeError, EncodeError, FramingError, MAX_LISTED_PROBLEMS, Malformed};
pub use family::{Afi, Family, FamilySet, Safi};
pub use message::{
    BGP_PORT, Decoded, HEADER_LEN, MARKER, Message, MessageType, decode_message, frame_length,
};
pub use notification::Notification;
pub use open::{AS_TRANS, Open, OpenLayout, check_hold_time};
pub use pack::{EncodedAttributes, UpdatePacker};
pub use route_refresh::RouteRefresh;
pub use update::{
    Ipv4Prefix, Ipv6Prefix, Layout, MpReach, MpUnreach, NextHop, Nlri, Prefix, Update,
};

/// Serializes bytes as a lowercase hex string.
#[cfg(feature = "serde")]
pub(crate) fn serde_hex<S: serde::Serializer>(
    bytes: &[u8],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use std::fmt::Write;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    serializer.serialize_str(&text)
}
