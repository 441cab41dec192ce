//! The BFD series, from the BFD task's sessions (the same answer as `bgpctl show
//! bfd`, one turn of the task):
//!
//! - `wren_bfd_session_up{peer,interface}` (single hop) or `{peer,local}`
//!   (multihop): the session is Up (0/1), labelled by its key (RFC 5881: interface
//!   and peer; RFC 5883: local address and peer);
//! - `wren_bfd_session_down_total{peer,diag}`: times the session left Up, by the
//!   diagnostic it left with (`control_detection_time_expired`,
//!   `neighbor_signaled_session_down`, `administratively_down`, ...);
//! - `wren_bfd_packets_received_total{peer}`, `wren_bfd_packets_sent_total{peer}`;
//! - `wren_bfd_detection_time_seconds{peer}`: the negotiated detection time (only
//!   once the peer is heard);
//! - `wren_bfd_packets_dropped_total{reason}`: received packets dropped since bgpd
//!   started, by reason (`truncated`, `version`, `zero_detect_mult`, `ttl`,
//!   `no_session`, `wrong_source`, ...: the `bfd` crate's drop reasons and the
//!   transport's), every reason listed.
//!
//! Counters count since the session was made: a session nobody follows any more is
//! removed, and its series with it. Without any BFD session the BFD families are
//! there without series; if the task does not answer, they are left out (the
//! scrape goes on without them).

use std::collections::BTreeMap;
use std::fmt;

use control_proto::BfdSession;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::series::{self, Labels};

/// One scrape's view of the BFD sessions.
#[derive(Clone, Debug)]
pub struct BfdSample {
    pub sessions: Vec<BfdSession>,
    /// Received packets dropped, by reason.
    pub dropped: BTreeMap<String, u64>,
}

fn peer(session: &BfdSession) -> Labels {
    vec![("peer", session.peer.to_string())]
}

impl Collector for BfdSample {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let sessions = &self.sessions;
        series::gauges(
            &mut encoder,
            "wren_bfd_session_up",
            "The BFD session is Up (0 or 1); by interface (single hop) or local address (multihop).",
            sessions.iter().map(|session| {
                let mut labels = peer(session);
                match (&session.interface, session.local) {
                    (Some(interface), _) => labels.push(("interface", interface.clone())),
                    (None, Some(local)) => labels.push(("local", local.to_string())),
                    (None, None) => {}
                }
                (labels, series::flag(session.state == "Up"))
            }),
        )?;
        series::counters(
            &mut encoder,
            "wren_bfd_session_down",
            "Times the BFD session left Up, by the diagnostic it left with.",
            sessions.iter().flat_map(|session| {
                session.downs.iter().map(|(diag, count)| {
                    let mut labels = peer(session);
                    labels.push(("diag", diag.clone()));
                    (labels, *count)
                })
            }),
        )?;
        series::counters(
            &mut encoder,
            "wren_bfd_packets_received",
            "BFD control packets accepted by the session.",
            sessions
                .iter()
                .map(|session| (peer(session), session.packets_received)),
        )?;
        series::counters(
            &mut encoder,
            "wren_bfd_packets_sent",
            "BFD control packets sent by the session.",
            sessions
                .iter()
                .map(|session| (peer(session), session.packets_sent)),
        )?;
        series::gauges(
            &mut encoder,
            "wren_bfd_detection_time_seconds",
            "The negotiated BFD detection time, in seconds.",
            sessions.iter().filter_map(|session| {
                let millis = session.detection_time_ms?;
                Some((peer(session), millis as f64 / 1000.0))
            }),
        )?;
        series::counters(
            &mut encoder,
            "wren_bfd_packets_dropped",
            "Received BFD packets dropped, by reason.",
            self.dropped
                .iter()
                .map(|(reason, count)| (vec![("reason", reason.clone())], *count)),
        )?;
        Ok(())
    }
}
