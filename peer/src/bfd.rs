//! Hostile BFD control packets (RFC 5880/5881) for black-box tests of bgpd's BFD task.
//!
//! Every packet here is built from one well-formed "session killer" ([`session_down`]:
//! state Down, diagnostic 3 "Neighbor Signaled Session Down", the discriminators of a
//! live session) with exactly one defect ([`Hostile`]), so that a receiver that missed
//! the defect would take the session down: a session that stays Up proves the check.
//! The well-formed pieces come from the `bfd` crate's codec; the defects are patched
//! into its bytes.
//!
//! [`BfdSender`] sends them over UDP to port 3784 from a chosen address with a chosen
//! TTL (255 for single hop, anything else to test the TTL check); [`flood`] sends
//! session-less packets from many addresses, to show a flood never creates sessions.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use bfd::{ControlPacket, Diagnostic, PACKET_LEN, State};
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{Error, Result};

/// The single hop BFD control port (RFC 5881).
pub const CONTROL_PORT: u16 = 3784;

/// The discriminators of the live session a hostile packet aims at, as the peer sends
/// them: My Discriminator is the peer's (bgpd's remote discriminator), Your
/// Discriminator bgpd's local one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The peer's discriminator (`remote_discriminator` in `bgpctl show bfd`).
    pub my_discriminator: u32,
    /// bgpd's discriminator (`local_discriminator` in `bgpctl show bfd`).
    pub your_discriminator: u32,
}

/// The well-formed packet that would take `target`'s session down if accepted: state
/// Down with diagnostic 3 (Neighbor Signaled Session Down), 300 ms × 3.
pub fn session_down(target: Target) -> ControlPacket {
    ControlPacket {
        diagnostic: Diagnostic::NEIGHBOR_SIGNALED_SESSION_DOWN,
        state: State::Down,
        poll: false,
        r#final: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discriminator: target.my_discriminator,
        your_discriminator: target.your_discriminator,
        desired_min_tx: 300_000,
        required_min_rx: 300_000,
        required_min_echo_rx: 0,
    }
}

/// One defect of RFC 5880 section 6.8.6 that makes a receiver drop the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hostile {
    /// 20 bytes: shorter than the mandatory section.
    Truncated,
    /// Version 2.
    Version,
    /// Length 20: below the mandatory section.
    LengthTooShort,
    /// Length 48 in a 24-byte datagram.
    LengthBeyondDatagram,
    /// Detect Mult 0.
    ZeroDetectMult,
    /// The M (multipoint) bit.
    Multipoint,
    /// My Discriminator 0.
    ZeroMyDiscriminator,
    /// Your Discriminator 0 in state Up (only Down and AdminDown may send 0).
    ZeroYourDiscriminator,
    /// The A bit without authentication in use.
    Authentication,
    /// A Your Discriminator no session has.
    UnknownDiscriminator,
}

impl Hostile {
    /// Every defect.
    pub const ALL: [Hostile; 10] = [
        Hostile::Truncated,
        Hostile::Version,
        Hostile::LengthTooShort,
        Hostile::LengthBeyondDatagram,
        Hostile::ZeroDetectMult,
        Hostile::Multipoint,
        Hostile::ZeroMyDiscriminator,
        Hostile::ZeroYourDiscriminator,
        Hostile::Authentication,
        Hostile::UnknownDiscriminator,
    ];

    /// The reason the `bfd` crate drops it under ([`bfd::DropReason::name`], bgpd's
    /// `wren_bfd_packets_dropped_total{reason}`).
    pub fn reason(self) -> &'static str {
        match self {
            Hostile::Truncated => "truncated",
            Hostile::Version => "version",
            Hostile::LengthTooShort => "length_too_short",
            Hostile::LengthBeyondDatagram => "length_beyond_datagram",
            Hostile::ZeroDetectMult => "zero_detect_mult",
            Hostile::Multipoint => "multipoint",
            Hostile::ZeroMyDiscriminator => "zero_my_discriminator",
            Hostile::ZeroYourDiscriminator => "zero_your_discriminator",
            Hostile::Authentication => "authentication",
            Hostile::UnknownDiscriminator => "unknown_discriminator",
        }
    }

    /// The datagram: [`session_down`] of `target` with this defect.
    pub fn packet(self, target: Target) -> Vec<u8> {
        let mut packet = session_down(target);
        match self {
            Hostile::ZeroDetectMult => packet.detect_mult = 0,
            Hostile::ZeroMyDiscriminator => packet.my_discriminator = 0,
            Hostile::ZeroYourDiscriminator => {
                packet.state = State::Up;
                packet.your_discriminator = 0;
            }
            Hostile::UnknownDiscriminator => {
                packet.your_discriminator = target.your_discriminator.wrapping_add(0x5a5a) | 1;
            }
            _ => {}
        }
        let mut bytes = packet.encode().to_vec();
        match self {
            Hostile::Truncated => bytes.truncate(20),
            Hostile::Version => bytes[0] = (2 << 5) | (bytes[0] & 0x1f),
            Hostile::LengthTooShort => bytes[3] = 20,
            Hostile::LengthBeyondDatagram => bytes[3] = 2 * PACKET_LEN as u8,
            Hostile::Multipoint => bytes[1] |= 0x01,
            Hostile::Authentication => bytes[1] |= 0x04,
            _ => {}
        }
        bytes
    }
}

/// A UDP socket bound to one local address, sending with one TTL (hop limit).
#[derive(Debug)]
pub struct BfdSender {
    socket: UdpSocket,
    source: IpAddr,
}

impl BfdSender {
    /// Binds `source` (any port) and sets the TTL or hop limit of what it sends.
    pub fn bind(source: IpAddr, ttl: u32) -> Result<BfdSender> {
        let what = |step: &str| format!("BFD sender {source}: {step}");
        let domain = if source.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
            .map_err(|e| Error::io(what("socket"), e))?;
        if source.is_ipv4() {
            socket.set_ttl_v4(ttl)
        } else {
            socket.set_unicast_hops_v6(ttl)
        }
        .map_err(|e| Error::io(what("setting the TTL"), e))?;
        socket
            .bind(&SocketAddr::new(source, 0).into())
            .map_err(|e| Error::io(what("bind"), e))?;
        Ok(BfdSender {
            socket: socket.into(),
            source,
        })
    }

    /// Sends one datagram to `peer`'s single hop control port.
    pub fn send(&self, peer: IpAddr, bytes: &[u8]) -> Result<()> {
        self.socket
            .send_to(bytes, SocketAddr::new(peer, CONTROL_PORT))
            .map(drop)
            .map_err(|e| Error::io(format!("BFD sender {}: sending to {peer}", self.source), e))
    }
}

/// Sends `per_source` session-less packets (state Down, Your Discriminator 0, a My
/// Discriminator of its own per source) from each of `sources` to `peer` with TTL 255:
/// what a flood of strangers looks like. Returns how many were sent.
pub fn flood(sources: &[IpAddr], peer: IpAddr, per_source: u32) -> Result<u64> {
    let mut sent = 0;
    for (index, source) in sources.iter().enumerate() {
        let sender = BfdSender::bind(*source, 255)?;
        let target = Target {
            my_discriminator: 0x1000_0000 | u32::try_from(index).unwrap_or(u32::MAX >> 4),
            your_discriminator: 0,
        };
        let mut packet = session_down(target);
        packet.diagnostic = Diagnostic::NONE;
        let bytes = packet.encode();
        for _ in 0..per_source {
            sender.send(peer, &bytes)?;
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const TARGET: Target = Target {
        my_discriminator: 7,
        your_discriminator: 9,
    };

    #[test]
    fn the_killer_is_well_formed() {
        let packet = ControlPacket::decode(&session_down(TARGET).encode()).unwrap();
        assert_eq!(packet.state, State::Down);
        assert_eq!(packet.your_discriminator, 9);
    }

    #[test]
    fn each_defect_is_dropped_for_its_reason() {
        for hostile in Hostile::ALL {
            match ControlPacket::decode(&hostile.packet(TARGET)) {
                Err(reason) => assert_eq!(reason.name(), hostile.reason(), "{hostile:?}"),
                // Unknown discriminators pass the codec: the transport finds no session.
                Ok(packet) => {
                    assert_eq!(hostile, Hostile::UnknownDiscriminator);
                    assert_ne!(packet.your_discriminator, TARGET.your_discriminator);
                }
            }
        }
    }
}
