//! What a session needs from the configuration, and the state machine's
//! configuration built from it.
//!
//! [`NeighborSettings`] is one neighbor's view of the config: a `[[bgp.neighbor]]`
//! entry, or a `[[bgp.listen_range]]` applied to one address that connected.
//! [`NeighborSettings::needs_new_open`] tells a reload which changes must reset the
//! session (they change the OPEN or the connection) and which apply in place.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::Deref;
use std::time::{Duration, Instant};

use bgp_proto::fsm::{Backoff, FamilyErrorPolicy, LocalCapabilities, PeerAs, SessionConfig};
use bgp_proto::{ExtendedNextHop, GracefulRestart, GracefulRestartFamily};
use ipnet::IpNet;

use crate::config::{
    Config, FamilyName, GracefulRestartConfig, ListenRangeConfig, NeighborConfig, SessionOptions,
    unicast_family,
};
use crate::socket::SocketOptions;

/// One neighbor's session settings: its address, and the options of its
/// `[[bgp.neighbor]]` (or of the listen range it came from, always passive). It
/// reads as its options (`settings.hold_time`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborSettings {
    pub address: IpAddr,
    /// The listen range a dynamic neighbor came from.
    pub range: Option<IpNet>,
    pub session: SessionOptions,
}

impl Deref for NeighborSettings {
    type Target = SessionOptions;
    fn deref(&self) -> &SessionOptions {
        &self.session
    }
}

/// Settings every session shares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeakerSettings {
    pub local_asn: u32,
    pub router_id: Ipv4Addr,
    pub graceful_restart: GracefulRestartConfig,
    /// Until then, we are a restarting speaker (RFC 4724): sessions set the Restart
    /// State bit and the Forwarding State flags (the kernel kept our routes).
    pub restarting_until: Option<Instant>,
}

impl SpeakerSettings {
    pub fn from_config(config: &Config) -> SpeakerSettings {
        SpeakerSettings {
            local_asn: config.bgp.asn.get(),
            router_id: config.bgp.router_id,
            graceful_restart: config.bgp.graceful_restart,
            restarting_until: None,
        }
    }

    /// True while the restart window is open.
    pub fn restarting(&self, now: Instant) -> bool {
        self.restarting_until.is_some_and(|until| now < until)
    }
}

impl NeighborSettings {
    /// A configured neighbor.
    pub fn from_neighbor(neighbor: &NeighborConfig) -> NeighborSettings {
        NeighborSettings {
            address: neighbor.address,
            range: None,
            session: neighbor.session.clone(),
        }
    }

    /// A dynamic neighbor: `address` connected from inside `range`.
    pub fn from_range(range: &ListenRangeConfig, address: IpAddr) -> NeighborSettings {
        NeighborSettings {
            address,
            range: Some(range.prefix),
            session: SessionOptions {
                passive: true,
                ..range.session.clone()
            },
        }
    }

    /// The families to negotiate.
    pub fn families(&self) -> Vec<FamilyName> {
        self.session.families_for(self.address)
    }

    /// The settings for `address` in `config`: its neighbor entry, else the listen
    /// range holding it.
    pub fn lookup(config: &Config, address: IpAddr) -> Option<NeighborSettings> {
        if let Some(neighbor) = config.neighbor(address) {
            return Some(NeighborSettings::from_neighbor(neighbor));
        }
        config
            .listen_range(address)
            .map(|range| NeighborSettings::from_range(range, address))
    }

    /// The session is eBGP.
    pub fn ebgp(&self, speaker: &SpeakerSettings) -> bool {
        self.remote_asn.get() != speaker.local_asn
    }

    /// Socket options of the session's connections.
    pub fn socket_options(&self, speaker: &SpeakerSettings) -> SocketOptions {
        SocketOptions::new(
            self.ebgp(speaker),
            self.ttl_security,
            self.multihop,
            self.password.as_deref(),
        )
    }

    /// True when going from `self` to `new` changes the OPEN or the connection, so
    /// the session must start over (other changes apply in place).
    pub fn needs_new_open(&self, new: &NeighborSettings) -> bool {
        // What the rib applies (policy, reflection, limits), what only the
        // supervisor or the status use, and BFD (followed anew in place).
        let in_place = |settings: &NeighborSettings| NeighborSettings {
            session: SessionOptions {
                description: None,
                shutdown: false,
                connect_retry: 0,
                route_reflector_client: false,
                next_hop_self: false,
                max_prefixes: None,
                import: None,
                export: None,
                // The session follows BFD or stops following it in place.
                bfd: None,
                ..settings.session.clone()
            },
            ..settings.clone()
        };
        in_place(self) != in_place(new)
    }

    /// The state machine's configuration.
    pub fn session_config(&self, speaker: &SpeakerSettings, now: Instant) -> SessionConfig {
        let mut config = SessionConfig::new(
            speaker.local_asn,
            speaker.router_id,
            PeerAs::Exact(self.remote_asn.get()),
        );
        config.hold_time = self.hold_time.seconds();
        config.keepalive = self.keepalive;
        config.connect_retry = Duration::from_secs(u64::from(self.connect_retry.max(1)));
        config.passive = self.passive;
        config.send_hold_time = self
            .send_hold_time
            .map(|seconds| Duration::from_secs(u64::from(seconds)));
        // A restarted node must be back in seconds: the first retry after a failure
        // waits no longer than the connect retry time, later ones back off to 30 s.
        config.backoff = Backoff {
            initial: Duration::from_secs(1).min(config.connect_retry),
            ..Backoff::default()
        };
        config.family_errors = FamilyErrorPolicy::DisableFamily;
        config.enforce_first_as = self.enforce_first_as;
        let families: Vec<_> = self
            .families()
            .iter()
            .copied()
            .map(unicast_family)
            .collect();
        config.capabilities = LocalCapabilities {
            families: families.clone(),
            graceful_restart: graceful_restart(speaker, &families, now),
            extended_next_hop: if self.extended_next_hop
                && families.contains(&bgp_proto::Family::IPV4_UNICAST)
            {
                vec![ExtendedNextHop {
                    family: bgp_proto::Family::IPV4_UNICAST,
                    next_hop_afi: bgp_proto::Afi::IPV6,
                }]
            } else {
                Vec::new()
            },
            ..LocalCapabilities::default()
        };
        config
    }
}

/// Our graceful restart capability: the restart time, and while restarting the R
/// bit and the F flag of every family (the kernel kept their routes).
fn graceful_restart(
    speaker: &SpeakerSettings,
    families: &[bgp_proto::Family],
    now: Instant,
) -> Option<GracefulRestart> {
    let config = speaker.graceful_restart;
    if !config.enabled {
        return None;
    }
    let restarting = speaker.restarting(now);
    // RFC 8538's N bit: a NOTIFICATION other than Hard Reset keeps the routes too.
    let restart_state = if restarting {
        GracefulRestart::RESTART_STATE
    } else {
        0
    };
    Some(GracefulRestart {
        flags: restart_state | GracefulRestart::NOTIFICATION,
        restart_time: config
            .restart_time
            .min(crate::config::check::MAX_RESTART_TIME),
        families: families
            .iter()
            .map(|&family| GracefulRestartFamily {
                family,
                flags: if restarting {
                    GracefulRestartFamily::FORWARDING_STATE
                } else {
                    0
                },
            })
            .collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::parse(
            &format!(
                "[bgp]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n[[bgp.neighbor]]\naddress = \"10.0.0.2\"\nremote_asn = 65001\n{extra}\n[[bgp.listen_range]]\nprefix = \"10.9.0.0/16\"\nremote_asn = 64512\n"
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn settings_come_from_neighbors_and_ranges() {
        let config = config("");
        let speaker = SpeakerSettings::from_config(&config);
        let neighbor = NeighborSettings::lookup(&config, "10.0.0.2".parse().unwrap()).unwrap();
        assert!(neighbor.ebgp(&speaker));
        assert_eq!(neighbor.families(), vec![FamilyName::Ipv4]);
        assert_eq!(neighbor.socket_options(&speaker).ttl, Some(1));
        let dynamic = NeighborSettings::lookup(&config, "10.9.1.1".parse().unwrap()).unwrap();
        assert!(dynamic.passive && !dynamic.ebgp(&speaker));
        assert_eq!(dynamic.range, Some("10.9.0.0/16".parse().unwrap()));
        assert!(NeighborSettings::lookup(&config, "10.8.1.1".parse().unwrap()).is_none());
        let session = neighbor.session_config(&speaker, Instant::now());
        assert!(session.capabilities.extended_next_hop.is_empty());
        assert!(bgp_proto::fsm::Fsm::new(session).is_ok());
    }

    #[test]
    fn extended_next_hop_advertises_ipv4_with_ipv6_next_hops() {
        let config = config("families = [\"ipv4\", \"ipv6\"]\nextended_next_hop = true");
        let speaker = SpeakerSettings::from_config(&config);
        let neighbor = NeighborSettings::lookup(&config, "10.0.0.2".parse().unwrap()).unwrap();
        assert!(neighbor.extended_next_hop);
        let session = neighbor.session_config(&speaker, Instant::now());
        assert_eq!(
            session.capabilities.extended_next_hop,
            vec![ExtendedNextHop {
                family: bgp_proto::Family::IPV4_UNICAST,
                next_hop_afi: bgp_proto::Afi::IPV6,
            }]
        );
    }

    #[test]
    fn only_open_changes_need_a_new_session() {
        let old = NeighborSettings::from_neighbor(&config("").bgp.neighbors[0]);
        let described = NeighborSettings::from_neighbor(
            &config("description = \"x\"\nconnect_retry = 9")
                .bgp
                .neighbors[0],
        );
        assert!(!old.needs_new_open(&described));
        let timed = NeighborSettings::from_neighbor(&config("hold_time = 9").bgp.neighbors[0]);
        assert!(old.needs_new_open(&timed));
    }

    #[test]
    fn restarting_speaker_sets_the_flags() {
        let config = config("");
        let mut speaker = SpeakerSettings::from_config(&config);
        let neighbor = NeighborSettings::from_neighbor(&config.bgp.neighbors[0]);
        let now = Instant::now();
        let normal = neighbor.session_config(&speaker, now);
        let gr = normal.capabilities.graceful_restart.unwrap();
        assert_eq!(
            (gr.flags, gr.restart_time),
            (GracefulRestart::NOTIFICATION, 120)
        );
        speaker.restarting_until = Some(now + Duration::from_secs(120));
        let restarting = neighbor.session_config(&speaker, now);
        let gr = restarting.capabilities.graceful_restart.unwrap();
        assert!(gr.restart_state());
        assert!(gr.families[0].forwarding_preserved());
    }
}
