//! The BFD control packet of RFC 5880 section 4.1 (the mandatory section): its codec
//! and the reception checks of section 6.8.6 that drop a packet before any session
//! sees it.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! ```
//!
//! Authentication is out of scope, so a packet with the A bit set is dropped (section
//! 6.8.6: the A bit set while no authentication is in use), and so is the M bit
//! (multipoint, reserved). A Length above 24 is accepted as the RFC allows; the bytes
//! past the mandatory section are ignored, so such a packet encodes back as 24 bytes.

use std::fmt;
use std::time::Duration;

use crate::error::DropReason;
use crate::state::{Diagnostic, State};

/// The length of the mandatory section, and of every packet this crate encodes.
pub const PACKET_LEN: usize = 24;

/// The protocol version of RFC 5880.
pub const VERSION: u8 = 1;

/// The largest interval a packet carries: 2^32 - 1 microseconds (about 71 minutes).
pub const MAX_INTERVAL: Duration = Duration::from_micros(u32::MAX as u64);

const POLL: u8 = 0x20;
const FINAL: u8 = 0x10;
const CONTROL_PLANE_INDEPENDENT: u8 = 0x08;
const AUTHENTICATION_PRESENT: u8 = 0x04;
const DEMAND: u8 = 0x02;
const MULTIPOINT: u8 = 0x01;

/// One BFD control packet (version 1, no authentication section). Intervals are in
/// microseconds, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    /// Diag: the sender's reason for its last state change.
    pub diagnostic: Diagnostic,
    /// Sta: the sender's session state.
    pub state: State,
    /// P: the sender asks for a packet with F set in reply (a Poll Sequence).
    pub poll: bool,
    /// F: the reply to a packet with P set.
    pub r#final: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wishes to operate in demand mode.
    pub demand: bool,
    /// Detect Mult: the sender's detection time multiplier (never 0 once decoded).
    pub detect_mult: u8,
    /// My Discriminator: the sender's discriminator of the session (never 0 once
    /// decoded).
    pub my_discriminator: u32,
    /// Your Discriminator: the receiver's discriminator as the sender knows it, or 0.
    pub your_discriminator: u32,
    /// Desired Min TX Interval, in microseconds.
    pub desired_min_tx: u32,
    /// Required Min RX Interval, in microseconds (0: send me no periodic packets).
    pub required_min_rx: u32,
    /// Required Min Echo RX Interval, in microseconds (this crate sends 0: no echo).
    pub required_min_echo_rx: u32,
}

impl ControlPacket {
    /// Decodes one UDP payload, applying the checks of RFC 5880 section 6.8.6 that
    /// need no session: each failed check is its own [`DropReason`], for the caller to
    /// count. Bytes after the Length the packet gives are ignored.
    pub fn decode(datagram: &[u8]) -> Result<ControlPacket, DropReason> {
        let Some(header) = datagram.first_chunk::<PACKET_LEN>() else {
            return Err(DropReason::Truncated {
                length: datagram.len(),
            });
        };
        let version = header[0] >> 5;
        if version != VERSION {
            return Err(DropReason::Version { version });
        }
        let flags = header[1];
        let length = header[3];
        if usize::from(length) < PACKET_LEN {
            return Err(DropReason::LengthTooShort { length });
        }
        if usize::from(length) > datagram.len() {
            return Err(DropReason::LengthBeyondDatagram {
                length,
                datagram: datagram.len(),
            });
        }
        let detect_mult = header[2];
        if detect_mult == 0 {
            return Err(DropReason::ZeroDetectMult);
        }
        if flags & MULTIPOINT != 0 {
            return Err(DropReason::Multipoint);
        }
        let word = |at: usize| {
            u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
        };
        let my_discriminator = word(4);
        if my_discriminator == 0 {
            return Err(DropReason::ZeroMyDiscriminator);
        }
        let state = State::from_code(flags >> 6);
        let your_discriminator = word(8);
        if your_discriminator == 0 && !matches!(state, State::Down | State::AdminDown) {
            return Err(DropReason::ZeroYourDiscriminator { state });
        }
        if flags & AUTHENTICATION_PRESENT != 0 {
            return Err(DropReason::Authentication);
        }
        Ok(ControlPacket {
            diagnostic: Diagnostic::from_code(header[0] & 0x1f),
            state,
            poll: flags & POLL != 0,
            r#final: flags & FINAL != 0,
            control_plane_independent: flags & CONTROL_PLANE_INDEPENDENT != 0,
            demand: flags & DEMAND != 0,
            detect_mult,
            my_discriminator,
            your_discriminator,
            desired_min_tx: word(12),
            required_min_rx: word(16),
            required_min_echo_rx: word(20),
        })
    }

    /// The packet's 24 bytes (Length 24, A and M clear).
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut flags = self.state.code() << 6;
        for (set, bit) in [
            (self.poll, POLL),
            (self.r#final, FINAL),
            (self.control_plane_independent, CONTROL_PLANE_INDEPENDENT),
            (self.demand, DEMAND),
        ] {
            if set {
                flags |= bit;
            }
        }
        let mut bytes = [0u8; PACKET_LEN];
        bytes[0] = (VERSION << 5) | self.diagnostic.code();
        bytes[1] = flags;
        bytes[2] = self.detect_mult;
        bytes[3] = PACKET_LEN as u8;
        for (at, value) in [
            (4, self.my_discriminator),
            (8, self.your_discriminator),
            (12, self.desired_min_tx),
            (16, self.required_min_rx),
            (20, self.required_min_echo_rx),
        ] {
            bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        bytes
    }

    /// Desired Min TX Interval as a duration.
    pub fn desired_min_tx_interval(&self) -> Duration {
        Duration::from_micros(self.desired_min_tx.into())
    }

    /// Required Min RX Interval as a duration.
    pub fn required_min_rx_interval(&self) -> Duration {
        Duration::from_micros(self.required_min_rx.into())
    }
}

impl fmt::Display for ControlPacket {
    /// One line for logs: `Up diag 0 P mult 3 my 1 your 2 tx 300000us rx 300000us echo 0us`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} diag {}", self.state, self.diagnostic.code())?;
        for (set, name) in [
            (self.poll, " P"),
            (self.r#final, " F"),
            (self.control_plane_independent, " C"),
            (self.demand, " D"),
        ] {
            if set {
                f.write_str(name)?;
            }
        }
        write!(
            f,
            " mult {} my {} your {} tx {}us rx {}us echo {}us",
            self.detect_mult,
            self.my_discriminator,
            self.your_discriminator,
            self.desired_min_tx,
            self.required_min_rx,
            self.required_min_echo_rx
        )
    }
}

/// An interval as the packet's microseconds, saturating at [`MAX_INTERVAL`].
pub fn micros(interval: Duration) -> u32 {
    u32::try_from(interval.as_micros()).unwrap_or(u32::MAX)
}
