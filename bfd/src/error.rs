//! Why a received packet was dropped, and why a session configuration was refused.

use std::time::Duration;

use crate::state::State;

/// Why a received control packet was dropped (RFC 5880 section 6.8.6, and the
/// session's own checks). The session it was meant for is unaffected; the caller
/// counts the drop under [`DropReason::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// The datagram is shorter than the 24-byte mandatory section.
    #[error("datagram of {length} bytes is shorter than a control packet (24)")]
    Truncated {
        /// The datagram's length.
        length: usize,
    },
    /// Version is not 1.
    #[error("version {version} is not 1")]
    Version {
        /// The version field.
        version: u8,
    },
    /// Length is below 24.
    #[error("length {length} is below 24")]
    LengthTooShort {
        /// The Length field.
        length: u8,
    },
    /// Length is beyond the datagram.
    #[error("length {length} is beyond the datagram of {datagram} bytes")]
    LengthBeyondDatagram {
        /// The Length field.
        length: u8,
        /// The datagram's length.
        datagram: usize,
    },
    /// Detect Mult is 0.
    #[error("detect mult is 0")]
    ZeroDetectMult,
    /// The M (multipoint) bit is set.
    #[error("multipoint bit is set")]
    Multipoint,
    /// My Discriminator is 0.
    #[error("my discriminator is 0")]
    ZeroMyDiscriminator,
    /// Your Discriminator is 0 while the state is neither Down nor AdminDown.
    #[error("your discriminator is 0 in state {state}")]
    ZeroYourDiscriminator {
        /// The packet's state.
        state: State,
    },
    /// The A bit is set: no authentication is in use (and none is supported).
    #[error("authentication bit is set but no authentication is in use")]
    Authentication,
    /// Your Discriminator names no session here.
    #[error("your discriminator {discriminator} names no session")]
    UnknownDiscriminator {
        /// The Your Discriminator field.
        discriminator: u32,
    },
    /// Your Discriminator is 0 and no session is configured for the packet's
    /// addresses (a packet never creates a session).
    #[error("no session is configured for this peer")]
    NoSession,
}

impl DropReason {
    /// Every reason's [`DropReason::name`], for counters that list all of them.
    pub const NAMES: [&'static str; 11] = [
        "truncated",
        "version",
        "length_too_short",
        "length_beyond_datagram",
        "zero_detect_mult",
        "multipoint",
        "zero_my_discriminator",
        "zero_your_discriminator",
        "authentication",
        "unknown_discriminator",
        "no_session",
    ];

    /// A snake_case name to count the drop under (a metric label).
    pub fn name(&self) -> &'static str {
        let index = match self {
            DropReason::Truncated { .. } => 0,
            DropReason::Version { .. } => 1,
            DropReason::LengthTooShort { .. } => 2,
            DropReason::LengthBeyondDatagram { .. } => 3,
            DropReason::ZeroDetectMult => 4,
            DropReason::Multipoint => 5,
            DropReason::ZeroMyDiscriminator => 6,
            DropReason::ZeroYourDiscriminator { .. } => 7,
            DropReason::Authentication => 8,
            DropReason::UnknownDiscriminator { .. } => 9,
            DropReason::NoSession => 10,
        };
        DropReason::NAMES[index]
    }
}

/// A session configuration or discriminator that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The local discriminator is 0 (RFC 5880 section 6.8.1: it must be nonzero).
    #[error("local discriminator must not be 0")]
    ZeroDiscriminator,
    /// Detect Mult is 0.
    #[error("detect multiplier must be between 1 and 255, not 0")]
    ZeroDetectMult,
    /// An interval is 0 (RFC 5880 section 6.8.1 forbids a zero desired minimum
    /// transmit interval; a zero required minimum receive interval would ask the peer
    /// to send nothing, which only demand mode allows).
    #[error("{name} must be above 0")]
    ZeroInterval {
        /// Which interval (`min_tx`, `min_rx`).
        name: &'static str,
    },
    /// An interval does not fit the packet's 32-bit microseconds.
    #[error("{name} of {interval:?} is above the largest a packet carries (4294967295 us)")]
    IntervalTooLarge {
        /// Which interval (`min_tx`, `min_rx`).
        name: &'static str,
        /// The interval asked for.
        interval: Duration,
    },
}
