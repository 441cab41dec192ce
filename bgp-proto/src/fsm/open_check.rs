//! The checks of a received OPEN (RFC 4271 section 6.2, RFC 6793 for 4-octet AS,
//! RFC 6286 for the BGP identifier, RFC 5492 for capabilities) against our
//! configuration, in the RFC's order: version, peer AS, BGP identifier, hold time,
//! capabilities. The codec already refuses what no configuration can accept (version,
//! hold time 1-2, optional parameters other than capabilities); this module checks
//! again so that an `Open` built by hand is held to the same rules.

use std::sync::Arc;

use crate::capability::Capability;
use crate::fsm::config::{PeerAs, SessionConfig};
use crate::fsm::negotiated::Negotiated;
use crate::fsm::state::Initiator;
use crate::notification::{Notification, code, open_subcode};
use crate::open::{AS_TRANS, BGP_VERSION, Open, check_hold_time};

/// A refused OPEN: the NOTIFICATION to send and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRefusal {
    /// OPEN Message Error with its subcode (and data).
    pub notification: Notification,
    /// What was wrong, in words.
    pub detail: String,
}

/// Checks the peer's OPEN; on success, the negotiated parameters.
pub fn check_open(
    config: &SessionConfig,
    local_open: &Arc<Open>,
    peer: &Open,
    initiator: Initiator,
) -> Result<Negotiated, OpenRefusal> {
    if peer.version != BGP_VERSION {
        return Err(refuse(
            open_subcode::UNSUPPORTED_VERSION,
            u16::from(BGP_VERSION).to_be_bytes().to_vec(),
            format!("version {} is not supported (4 is)", peer.version),
        ));
    }
    let asn = check_peer_as(config, peer)?;
    let ibgp = asn == config.local_as;
    if peer.bgp_identifier.is_unspecified() {
        return Err(refuse(
            open_subcode::BAD_BGP_IDENTIFIER,
            Vec::new(),
            "BGP identifier 0.0.0.0".into(),
        ));
    }
    if ibgp && peer.bgp_identifier == config.local_id {
        return Err(refuse(
            open_subcode::BAD_BGP_IDENTIFIER,
            Vec::new(),
            format!("internal peer has our BGP identifier {}", config.local_id),
        ));
    }
    if let Err(notification) = check_hold_time(peer.hold_time) {
        return Err(OpenRefusal {
            notification,
            detail: format!("hold time {} s is not allowed", peer.hold_time),
        });
    }
    check_capabilities(config, local_open, peer)?;
    let hold_time = config.hold_time.min(peer.hold_time);
    let mut negotiated = Negotiated::new(
        local_open,
        peer,
        ibgp,
        initiator,
        hold_time,
        config.keepalive_for(hold_time),
        config.send_hold_for(hold_time),
    );
    if config.enforce_first_as && !ibgp {
        // Over 2-octet AS_PATHs a peer with a 4-octet AS writes AS_TRANS.
        let context = &mut negotiated.context;
        context.first_as = Some(match u16::try_from(asn) {
            Err(_) if !context.four_octet_as => u32::from(AS_TRANS),
            _ => asn,
        });
    }
    Ok(negotiated)
}

/// The peer's AS, or Bad Peer AS (2/2).
fn check_peer_as(config: &SessionConfig, peer: &Open) -> Result<u32, OpenRefusal> {
    let bad = |detail: String| refuse(open_subcode::BAD_PEER_AS, Vec::new(), detail);
    let trans = u32::from(AS_TRANS);
    let asn = match peer.four_octet_as() {
        Some(asn) => {
            if peer.my_as != AS_TRANS && u32::from(peer.my_as) != asn {
                return Err(bad(format!(
                    "My Autonomous System {} disagrees with the 4-octet AS {asn}",
                    peer.my_as
                )));
            }
            asn
        }
        None if peer.my_as == AS_TRANS => {
            return Err(bad("AS_TRANS without the 4-octet AS capability".into()));
        }
        None => u32::from(peer.my_as),
    };
    if asn == 0 || asn == trans {
        return Err(bad(format!("AS {asn} is reserved")));
    }
    if !config.peer_as.accepts(asn) {
        let expected = match &config.peer_as {
            PeerAs::Exact(expected) => expected.to_string(),
            PeerAs::OneOf(list) => list
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
            PeerAs::Any => String::from("any"),
        };
        return Err(bad(format!("peer AS {asn}, expected {expected}")));
    }
    Ok(asn)
}

/// Unsupported Capability (2/7) for a required capability the peer lacks, or when no
/// family is common; the data lists our capabilities concerned (RFC 5492).
fn check_capabilities(
    config: &SessionConfig,
    local_open: &Open,
    peer: &Open,
) -> Result<(), OpenRefusal> {
    let missing: Vec<u8> = config
        .required_capabilities
        .iter()
        .copied()
        .filter(|&code| !peer.has_capability(code))
        .collect();
    if !missing.is_empty() {
        let mut data = Vec::new();
        for &code in &missing {
            let ours: Vec<&Capability> = local_open
                .capabilities
                .iter()
                .filter(|capability| capability.code() == code)
                .collect();
            if ours.is_empty() {
                data.extend_from_slice(&[code, 0]);
            }
            ours.into_iter()
                .for_each(|capability| append_capability(capability, &mut data));
        }
        let codes: Vec<String> = missing.iter().map(u8::to_string).collect();
        return Err(refuse(
            open_subcode::UNSUPPORTED_CAPABILITY,
            data,
            format!("required capability {} missing", codes.join(", ")),
        ));
    }
    let peer_families = peer.families();
    if !local_open
        .families()
        .iter()
        .any(|family| peer_families.contains(family))
    {
        let mut data = Vec::new();
        local_open
            .capabilities
            .iter()
            .filter(|capability| matches!(capability, Capability::Multiprotocol { .. }))
            .for_each(|capability| append_capability(capability, &mut data));
        let theirs: Vec<String> = peer_families.iter().map(|f| f.to_string()).collect();
        return Err(refuse(
            open_subcode::UNSUPPORTED_CAPABILITY,
            data,
            format!("no common address family (peer has {})", theirs.join(", ")),
        ));
    }
    Ok(())
}

/// Appends a capability as code, length, value (values over 255 octets cannot be
/// in an OPEN we built, so they are left out).
fn append_capability(capability: &Capability, data: &mut Vec<u8>) {
    let Ok(length) = u8::try_from(capability.value_len()) else {
        return;
    };
    let mut value = bytes::BytesMut::new();
    capability.encode_value(&mut value);
    data.push(capability.code());
    data.push(length);
    data.extend_from_slice(&value);
}

fn refuse(subcode: u8, data: Vec<u8>, detail: String) -> OpenRefusal {
    OpenRefusal {
        notification: Notification::new(code::OPEN_MESSAGE, subcode, data),
        detail,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::fsm::config::LocalCapabilities;

    fn config(peer_as: u32, enforce_first_as: bool, four_octet_as: bool) -> SessionConfig {
        let mut config =
            SessionConfig::new(64512, Ipv4Addr::new(10, 0, 0, 1), PeerAs::Exact(peer_as));
        config.enforce_first_as = enforce_first_as;
        config.capabilities.four_octet_as = four_octet_as;
        config
    }

    fn first_as(config: &SessionConfig, peer_as: u32) -> Option<u32> {
        let peer = SessionConfig {
            local_as: peer_as,
            local_id: Ipv4Addr::new(10, 0, 0, 2),
            ..config.clone()
        };
        check_open(
            config,
            &Arc::new(config.local_open()),
            &peer.local_open(),
            Initiator::Local,
        )
        .unwrap()
        .context
        .first_as
    }

    #[test]
    fn enforce_first_as_names_the_ebgp_peers_as() {
        assert_eq!(first_as(&config(65001, true, true), 65001), Some(65001));
        assert_eq!(first_as(&config(65001, false, true), 65001), None);
        // iBGP paths start with whatever AS the route came from.
        assert_eq!(first_as(&config(64512, true, true), 64512), None);
        // A 4-octet AS over 2-octet AS_PATHs is AS_TRANS there.
        let two_octet = config(4_200_000_001, true, false);
        let peer = SessionConfig {
            capabilities: LocalCapabilities {
                four_octet_as: true,
                ..two_octet.capabilities.clone()
            },
            ..two_octet.clone()
        };
        let open = SessionConfig {
            local_as: 4_200_000_001,
            local_id: Ipv4Addr::new(10, 0, 0, 2),
            ..peer
        }
        .local_open();
        let local_open = Arc::new(two_octet.local_open());
        let negotiated = check_open(&two_octet, &local_open, &open, Initiator::Local).unwrap();
        assert_eq!(negotiated.context.first_as, Some(u32::from(AS_TRANS)));
    }
}
