//! What both OPENs settled: everything the speaker needs once the session is
//! Established, and what `show neighbor` prints.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use crate::capability::{Capability, GracefulRestart, capability_code};
use crate::context::SessionContext;
use crate::family::Family;
use crate::fsm::state::Initiator;
use crate::open::Open;

/// The parameters of a session, fixed when the peer's OPEN is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The decode / encode context: give it to the codec and the update packer.
    pub context: SessionContext,
    /// The OPEN we sent (shared with the state machine that sent it).
    pub local_open: Arc<Open>,
    /// The OPEN the peer sent.
    pub peer_open: Open,
    /// The peer's AS (from the 4-octet AS capability when present).
    pub peer_as: u32,
    /// The peer's BGP identifier.
    pub peer_id: Ipv4Addr,
    /// Who opened the connection.
    pub initiator: Initiator,
    /// The hold time in effect, in seconds (0: no hold timer, no keepalives).
    pub hold_time: u16,
    /// The keepalive interval in effect, in seconds (0: none).
    pub keepalive: u16,
    /// The send hold time in effect (RFC 9687); `None` when the hold time is 0.
    pub send_hold_time: Option<Duration>,
    /// Families both sides advertised (RFC 4760; IPv4 unicast when a side advertised
    /// none), in our order. Unlike `context.families` this holds any family.
    pub families: Vec<Family>,
    /// Both sides advertised route refresh (RFC 2918): we may send ROUTE-REFRESH.
    pub route_refresh: bool,
    /// Both sides advertised enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// The peer's graceful restart capability (RFC 4724), as advertised.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// Both sides advertised graceful restart.
    pub graceful_restart: bool,
    /// Both sides set the N bit in their graceful restart capability (RFC 8538): a
    /// NOTIFICATION other than Cease / Hard Reset keeps the routes as a lost
    /// connection does, and the Cease subcodes meant as hard go out as Hard Reset.
    pub graceful_notification: bool,
    /// The peer's host name and domain name (FRR's hostname capability).
    pub peer_hostname: Option<(String, String)>,
}

/// A copy of the peer's OPEN that holds no spare room: it is kept for the session's
/// lifetime, and the decoder's list of capabilities may have grown past its length.
fn compact(open: &Open) -> Open {
    let mut open = open.clone();
    open.capabilities.shrink_to_fit();
    open.layout.grouping.shrink_to_fit();
    open
}

impl Negotiated {
    /// Builds the negotiated parameters from both OPENs.
    pub(crate) fn new(
        local_open: &Arc<Open>,
        peer_open: &Open,
        ibgp: bool,
        initiator: Initiator,
        hold_time: u16,
        keepalive: u16,
        send_hold_time: Option<Duration>,
    ) -> Negotiated {
        let both = |code| local_open.has_capability(code) && peer_open.has_capability(code);
        let peer_families = peer_open.families();
        let families = local_open
            .families()
            .into_iter()
            .filter(|family| peer_families.contains(family))
            .collect();
        let graceful_notification = [&**local_open, peer_open].iter().all(|open| {
            open.capabilities.iter().any(|capability| {
                matches!(capability, Capability::GracefulRestart(gr) if gr.notification())
            })
        });
        let peer_graceful_restart =
            peer_open
                .capabilities
                .iter()
                .find_map(|capability| match capability {
                    Capability::GracefulRestart(gr) => Some(gr.clone()),
                    _ => None,
                });
        let peer_hostname = peer_open
            .capabilities
            .iter()
            .find_map(|capability| match capability {
                Capability::Hostname { hostname, domain } => {
                    Some((hostname.clone(), domain.clone()))
                }
                _ => None,
            });
        Negotiated {
            context: SessionContext::negotiate(local_open, peer_open, ibgp),
            local_open: Arc::clone(local_open),
            peer_open: compact(peer_open),
            peer_as: peer_open.asn(),
            peer_id: peer_open.bgp_identifier,
            initiator,
            hold_time,
            keepalive,
            send_hold_time,
            families,
            route_refresh: both(capability_code::ROUTE_REFRESH),
            enhanced_route_refresh: both(capability_code::ENHANCED_ROUTE_REFRESH),
            graceful_restart: both(capability_code::GRACEFUL_RESTART),
            graceful_notification,
            peer_graceful_restart,
            peer_hostname,
        }
    }
}
