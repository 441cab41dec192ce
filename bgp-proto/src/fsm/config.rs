//! The configuration of one session: who we are, whom we accept, the timers, and the
//! capabilities we advertise. [`SessionConfig::new`] gives the defaults; [`Fsm::new`]
//! refuses a configuration that [`SessionConfig::validate`] rejects, so a running
//! state machine always has a usable one.
//!
//! [`Fsm::new`]: crate::fsm::Fsm::new

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::capability::{AddPath, Capability, ExtendedNextHop, GracefulRestart};
use crate::context::SessionContext;
use crate::family::Family;
use crate::message::Message;
use crate::open::{AS_TRANS, Open};

/// RFC 4271's suggested hold time, in seconds.
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Connect retry time: how long one connection attempt may take, and the wait between
/// attempts (Calico's BIRD template uses 5 s; RFC 4271 suggests 120 s).
pub const DEFAULT_CONNECT_RETRY: Duration = Duration::from_secs(5);
/// The hold timer while waiting for the peer's OPEN ("a large value", RFC 4271 8.2.2).
pub const DEFAULT_OPEN_HOLD_TIME: Duration = Duration::from_secs(240);
/// The floor of the default send hold time (RFC 9687: the greater of 8 minutes and
/// twice the hold time).
pub const MIN_DEFAULT_SEND_HOLD_TIME: Duration = Duration::from_secs(480);

/// Which AS the peer may have.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAs {
    /// Exactly this AS (a configured neighbor).
    Exact(u32),
    /// Any AS of this list (a listen range accepting several ASes).
    OneOf(Vec<u32>),
    /// Whatever the peer says (a dynamic neighbor from a listen range); iBGP or eBGP
    /// follows from its OPEN.
    Any,
}

impl PeerAs {
    /// True when a peer of AS `asn` is accepted.
    pub fn accepts(&self, asn: u32) -> bool {
        match self {
            PeerAs::Exact(expected) => *expected == asn,
            PeerAs::OneOf(list) => list.contains(&asn),
            PeerAs::Any => true,
        }
    }
}

/// The delay before an automatic restart after the session failed: `initial`, doubled
/// after every failure up to `max`, back to `initial` once a session stayed
/// Established for `reset_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The cap.
    pub max: Duration,
    /// How long a session must stay Established before the delay starts over.
    pub reset_after: Duration,
}

impl Default for Backoff {
    /// 1 s, doubling to a cap of 30 s, reset after 60 s Established: a restarted peer
    /// is back within seconds, a flapping one costs a connection every 30 s.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (0: the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |delay| delay.min(self.max))
    }
}

/// What to do with an UPDATE whose RFC 7606 action is AFI/SAFI disable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FamilyErrorPolicy {
    /// Reset the session with the error's NOTIFICATION (what RFC 7606 allows a speaker
    /// that cannot disable a family to do).
    #[default]
    ResetSession,
    /// Deliver the UPDATE with its action; the speaker withdraws every route of the
    /// families in [`ReceivedUpdate::disabled_families`] and ignores them until the
    /// session restarts.
    ///
    /// [`ReceivedUpdate::disabled_families`]: crate::fsm::ReceivedUpdate::disabled_families
    DisableFamily,
}

/// The capabilities we advertise (RFC 5492), in the order they are sent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LocalCapabilities {
    /// Multiprotocol families (RFC 4760); one capability each.
    pub families: Vec<Family>,
    /// 4-octet AS numbers (RFC 6793).
    pub four_octet_as: bool,
    /// Route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// Add-path per family (RFC 7911); empty: not advertised.
    pub add_path: Vec<AddPath>,
    /// Extended message (RFC 8654).
    pub extended_message: bool,
    /// Extended next hop pairs (RFC 8950); empty: not advertised.
    pub extended_next_hop: Vec<ExtendedNextHop>,
    /// Graceful restart (RFC 4724).
    pub graceful_restart: Option<GracefulRestart>,
    /// Host name and domain name (FRR's hostname capability).
    pub hostname: Option<(String, String)>,
    /// Anything else, sent as is after the above.
    pub other: Vec<Capability>,
}

impl Default for LocalCapabilities {
    /// IPv4 unicast, 4-octet AS, route refresh and enhanced route refresh.
    fn default() -> Self {
        LocalCapabilities {
            families: vec![Family::IPV4_UNICAST],
            four_octet_as: true,
            route_refresh: true,
            enhanced_route_refresh: true,
            add_path: Vec::new(),
            extended_message: false,
            extended_next_hop: Vec::new(),
            graceful_restart: None,
            hostname: None,
            other: Vec::new(),
        }
    }
}

impl LocalCapabilities {
    /// The capabilities as sent, for `local_as`.
    pub fn to_capabilities(&self, local_as: u32) -> Vec<Capability> {
        let mut list: Vec<Capability> = self
            .families
            .iter()
            .map(|&family| Capability::Multiprotocol { family })
            .collect();
        if self.route_refresh {
            list.push(Capability::RouteRefresh);
        }
        if self.enhanced_route_refresh {
            list.push(Capability::EnhancedRouteRefresh);
        }
        if self.four_octet_as {
            list.push(Capability::FourOctetAs { asn: local_as });
        }
        if !self.add_path.is_empty() {
            list.push(Capability::AddPath {
                entries: self.add_path.clone(),
            });
        }
        if self.extended_message {
            list.push(Capability::ExtendedMessage);
        }
        if !self.extended_next_hop.is_empty() {
            list.push(Capability::ExtendedNextHop {
                entries: self.extended_next_hop.clone(),
            });
        }
        if let Some(gr) = &self.graceful_restart {
            list.push(Capability::GracefulRestart(gr.clone()));
        }
        if let Some((hostname, domain)) = &self.hostname {
            list.push(Capability::Hostname {
                hostname: hostname.clone(),
                domain: domain.clone(),
            });
        }
        list.extend(self.other.iter().cloned());
        list
    }
}

/// The configuration of one session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    /// Our AS.
    pub local_as: u32,
    /// Our BGP identifier (router id).
    pub local_id: Ipv4Addr,
    /// The AS the peer must have. iBGP when it equals `local_as`.
    pub peer_as: PeerAs,
    /// The hold time we propose, in seconds: 0 (no keepalives, no hold timer) or at
    /// least 3. The session uses the smaller of ours and the peer's.
    pub hold_time: u16,
    /// The keepalive interval in seconds; `None`: a third of the hold time. Scaled
    /// down when the negotiated hold time is smaller than ours (never above a third
    /// of it).
    pub keepalive: Option<u16>,
    /// Connect retry time: the bound of one connection attempt and the wait before
    /// the next one.
    pub connect_retry: Duration,
    /// The hold timer while waiting for the peer's OPEN.
    pub open_hold_time: Duration,
    /// The send hold time (RFC 9687); `None`: the greater of 8 minutes and twice the
    /// negotiated hold time. Must exceed `hold_time`.
    pub send_hold_time: Option<Duration>,
    /// Wait this long for the peer's OPEN before sending ours (RFC 4271 DelayOpen).
    pub delay_open: Option<Duration>,
    /// Restart delays after failures.
    pub backoff: Backoff,
    /// Never initiate a connection; wait for the peer's.
    pub passive: bool,
    /// What we advertise.
    pub capabilities: LocalCapabilities,
    /// Capability codes the peer must advertise; a peer without one of them is refused
    /// with OPEN error 2/7 (Unsupported Capability) listing ours.
    pub required_capabilities: Vec<u8>,
    /// What an AFI/SAFI-disable UPDATE error does.
    pub family_errors: FamilyErrorPolicy,
    /// On an eBGP session, routes whose AS_PATH does not start with the peer's AS
    /// are treat-as-withdraw (FRR's `enforce-first-as`; see
    /// [`SessionContext::first_as`](crate::SessionContext::first_as)).
    pub enforce_first_as: bool,
}

/// Why a [`SessionConfig`] is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// AS 0 or AS_TRANS as our AS.
    #[error("local AS {0} is reserved and cannot be used")]
    LocalAs(u32),
    /// A 4-octet AS without the 4-octet AS capability.
    #[error("local AS {0} needs the 4-octet AS capability")]
    FourOctetAsNeeded(u32),
    /// A BGP identifier of 0.0.0.0.
    #[error("local BGP identifier 0.0.0.0 is not allowed")]
    LocalId,
    /// A peer AS that cannot be valid, or an empty list.
    #[error("peer AS {0}")]
    PeerAs(&'static str),
    /// A hold time of 1 or 2 seconds.
    #[error("hold time {0} s is refused: use 0 or at least 3")]
    HoldTime(u16),
    /// A keepalive of 0, or not below the hold time.
    #[error("keepalive {keepalive} s must be at least 1 and below the hold time {hold_time} s")]
    Keepalive {
        /// The configured keepalive.
        keepalive: u16,
        /// The configured hold time.
        hold_time: u16,
    },
    /// A zero duration where one is needed.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// A backoff whose cap is below its start.
    #[error("restart backoff maximum {max:?} is below its initial delay {initial:?}")]
    Backoff {
        /// The initial delay.
        initial: Duration,
        /// The cap.
        max: Duration,
    },
    /// A send hold time not above the hold time (RFC 9687).
    #[error("send hold time {send_hold_time:?} must exceed the hold time {hold_time} s")]
    SendHoldTime {
        /// The configured send hold time.
        send_hold_time: Duration,
        /// The configured hold time.
        hold_time: u16,
    },
    /// No family to advertise.
    #[error("no address family configured")]
    NoFamily,
    /// The OPEN built from the configuration does not encode.
    #[error("the OPEN message does not encode: {0}")]
    Open(String),
}

impl SessionConfig {
    /// A configuration with the defaults: hold time 90 s, keepalive a third of it,
    /// connect retry 5 s, restart backoff 1 s to 30 s, active, IPv4 unicast with
    /// 4-octet AS and (enhanced) route refresh.
    pub fn new(local_as: u32, local_id: Ipv4Addr, peer_as: PeerAs) -> SessionConfig {
        SessionConfig {
            local_as,
            local_id,
            peer_as,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive: None,
            connect_retry: DEFAULT_CONNECT_RETRY,
            open_hold_time: DEFAULT_OPEN_HOLD_TIME,
            send_hold_time: None,
            delay_open: None,
            backoff: Backoff::default(),
            passive: false,
            capabilities: LocalCapabilities::default(),
            required_capabilities: Vec::new(),
            family_errors: FamilyErrorPolicy::default(),
            enforce_first_as: false,
        }
    }

    /// Checks everything [`Fsm::new`](crate::fsm::Fsm::new) relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let trans = u32::from(AS_TRANS);
        if self.local_as == 0 || self.local_as == trans {
            return Err(ConfigError::LocalAs(self.local_as));
        }
        if self.local_as > 0xffff && !self.capabilities.four_octet_as {
            return Err(ConfigError::FourOctetAsNeeded(self.local_as));
        }
        if self.local_id.is_unspecified() {
            return Err(ConfigError::LocalId);
        }
        match &self.peer_as {
            PeerAs::Exact(asn) if *asn == 0 || *asn == trans => {
                return Err(ConfigError::PeerAs(
                    "0 or AS_TRANS (23456) cannot be a peer",
                ));
            }
            PeerAs::OneOf(list) if list.is_empty() => {
                return Err(ConfigError::PeerAs("list is empty"));
            }
            _ => {}
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if let Some(keepalive) = self.keepalive {
            let hold_time = self.hold_time;
            if hold_time != 0 && (keepalive == 0 || keepalive >= hold_time) {
                return Err(ConfigError::Keepalive {
                    keepalive,
                    hold_time,
                });
            }
        }
        for (what, duration) in [
            ("connect retry time", self.connect_retry),
            ("open hold time", self.open_hold_time),
            ("restart backoff initial delay", self.backoff.initial),
            ("restart backoff reset time", self.backoff.reset_after),
        ] {
            if duration.is_zero() {
                return Err(ConfigError::ZeroDuration(what));
            }
        }
        if self.delay_open.is_some_and(|delay| delay.is_zero()) {
            return Err(ConfigError::ZeroDuration("delay open time"));
        }
        if self.backoff.max < self.backoff.initial {
            return Err(ConfigError::Backoff {
                initial: self.backoff.initial,
                max: self.backoff.max,
            });
        }
        if let Some(send_hold_time) = self.send_hold_time {
            if send_hold_time <= Duration::from_secs(u64::from(self.hold_time)) {
                return Err(ConfigError::SendHoldTime {
                    send_hold_time,
                    hold_time: self.hold_time,
                });
            }
        }
        if self.capabilities.families.is_empty() {
            return Err(ConfigError::NoFamily);
        }
        Message::Open(self.local_open())
            .to_bytes(&SessionContext::default())
            .map_err(|error| ConfigError::Open(error.to_string()))?;
        Ok(())
    }

    /// The OPEN we send.
    pub fn local_open(&self) -> Open {
        Open::new(
            self.local_as,
            self.hold_time,
            self.local_id,
            self.capabilities.to_capabilities(self.local_as),
        )
    }

    /// The keepalive interval for a negotiated hold time, in seconds (0: none).
    pub fn keepalive_for(&self, hold_time: u16) -> u16 {
        if hold_time == 0 {
            return 0;
        }
        let configured = self.keepalive.unwrap_or(self.hold_time / 3);
        configured.min(hold_time / 3).max(1)
    }

    /// The send hold time for a negotiated hold time (`None` when it is 0: RFC 9687
    /// stops the send hold timer then).
    pub fn send_hold_for(&self, hold_time: u16) -> Option<Duration> {
        if hold_time == 0 {
            return None;
        }
        let twice = Duration::from_secs(2 * u64::from(hold_time));
        Some(
            self.send_hold_time
                .unwrap_or_else(|| MIN_DEFAULT_SEND_HOLD_TIME.max(twice)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionConfig {
        SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), PeerAs::Exact(65002))
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|n| backoff.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn timers_follow_the_negotiated_hold_time() {
        let config = config();
        assert_eq!(config.keepalive_for(90), 30);
        assert_eq!(config.keepalive_for(9), 3);
        assert_eq!(config.keepalive_for(3), 1);
        assert_eq!(config.keepalive_for(0), 0);
        assert_eq!(config.send_hold_for(90), Some(Duration::from_secs(480)));
        assert_eq!(config.send_hold_for(300), Some(Duration::from_secs(600)));
        assert_eq!(config.send_hold_for(0), None);
    }

    #[test]
    fn refusals() {
        assert_eq!(config().validate(), Ok(()));
        type Change = fn(&mut SessionConfig);
        let cases: [(Change, &str); 10] = [
            (
                |c| c.hold_time = 2,
                "hold time 2 s is refused: use 0 or at least 3",
            ),
            (
                |c| c.local_as = 23456,
                "local AS 23456 is reserved and cannot be used",
            ),
            (
                |c| c.local_id = Ipv4Addr::UNSPECIFIED,
                "local BGP identifier 0.0.0.0 is not allowed",
            ),
            (
                |c| c.peer_as = PeerAs::OneOf(vec![]),
                "peer AS list is empty",
            ),
            (
                |c| c.keepalive = Some(90),
                "keepalive 90 s must be at least 1 and below the hold time 90 s",
            ),
            (
                |c| c.connect_retry = Duration::ZERO,
                "connect retry time must be longer than zero",
            ),
            (
                |c| c.send_hold_time = Some(Duration::from_secs(90)),
                "send hold time 90s must exceed the hold time 90 s",
            ),
            (
                |c| c.capabilities.families.clear(),
                "no address family configured",
            ),
            (
                |c| {
                    c.local_as = 4_200_000_000;
                    c.capabilities.four_octet_as = false;
                },
                "local AS 4200000000 needs the 4-octet AS capability",
            ),
            (
                |c| c.backoff.max = Duration::from_millis(10),
                "restart backoff maximum 10ms is below its initial delay 1s",
            ),
        ];
        for (change, message) in cases {
            let mut config = config();
            change(&mut config);
            assert_eq!(
                config.validate().map_err(|e| e.to_string()),
                Err(message.to_string())
            );
        }
    }

    #[test]
    fn local_open_carries_the_capabilities() {
        let mut config = config();
        config.local_as = 4_200_000_001;
        let open = config.local_open();
        assert_eq!(open.my_as, AS_TRANS);
        assert_eq!(open.asn(), 4_200_000_001);
        assert_eq!(open.hold_time, 90);
        assert!(open.has_capability(2) && open.has_capability(70));
        assert_eq!(open.families(), vec![Family::IPV4_UNICAST]);
    }
}
