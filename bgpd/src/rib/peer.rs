//! What the RIB keeps per neighbor (and per local route source, which it treats as a
//! pseudo-peer so that local routes go through the same tables and decision).
//!
//! A neighbor keeps its index while it has routes, also between sessions (graceful
//! restart keeps its routes stale), and its index is freed once it has neither a
//! session nor routes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use bgp_proto::{Family, Notification};
use hashbrown::DefaultHashBuilder;

use super::attrs::AttrId;
use super::bitset::Bitset;
use super::slot_set::SlotSet;
use super::table::PeerIdx;
use crate::config::{Config, MaxPrefixes};
use crate::policy::{Applied, Filter, Policy, RouteSource};
use crate::tasks::{LocalSource, Outbound, PeerId, PeerInfo};

/// The local sources, at peer indexes 0, 1 and 2.
pub const LOCAL_SOURCES: [LocalSource; 3] = [
    LocalSource::Config,
    LocalSource::IpamBlock,
    LocalSource::IpamBorrowed,
];

/// The pseudo-peer index of a local source.
pub fn local_index(source: LocalSource) -> PeerIdx {
    match source {
        LocalSource::Config => 0,
        LocalSource::IpamBlock => 1,
        LocalSource::IpamBorrowed => 2,
    }
}

/// A cache of attribute sets keyed by ids of ours (never by a peer's bytes), looked
/// up for every route exported to every peer: hashed with hashbrown's fast hasher
/// (SipHash was 9% of a reflector's CPU).
pub type Cache<K> = HashMap<K, AttrId, DefaultHashBuilder>;

/// One neighbor or local source.
#[derive(Debug)]
pub struct Peer {
    /// The supervisor's id (None for a local source).
    pub id: Option<PeerId>,
    pub local: Option<LocalSource>,
    /// The last session's facts (kept while its routes are stale).
    pub info: Option<Arc<PeerInfo>>,
    pub session: Option<Session>,
    pub settings: PeerSettings,
    /// Stale routes (graceful restart) are dropped at this time (set through
    /// `Rib::set_stale_until`, which keeps the ordered deadlines in step).
    pub stale_until: Option<Instant>,
    /// Per family (IPv4, IPv6).
    pub counters: [FamilyCounters; 2],
    pub out: [AdjRibOut; 2],
    /// Families disabled by RFC 7606 (until the next session).
    pub disabled: [bool; 2],
    /// (received attributes, applied import rules) -> accepted attributes.
    pub import_cache: Cache<(AttrId, Applied)>,
    /// Per family: (source peer, accepted attributes, applied export rules) ->
    /// attributes sent to this peer, or NO_ATTR for "not sent".
    pub export_cache: [Cache<(PeerIdx, AttrId, Applied)>; 2],
    /// This peer's routes as every iBGP neighbor without an export filter or
    /// `next_hop_self` is sent them (see `export::Shared`): computed once for all of
    /// them, not once per neighbor. (accepted attributes, family index, extended next
    /// hop negotiated) -> attributes sent, or NO_ATTR for "not sent".
    pub shared_exports: Cache<(AttrId, u8, bool)>,
    /// Over max_prefixes: the session is being closed; its UPDATEs are ignored.
    pub closing: bool,
    /// A Close that did not fit into the outbound channel yet (boxed, as it travels:
    /// it is rare, and every neighbor's record would carry its room).
    pub close_pending: Option<Box<Outbound>>,
    /// max_prefixes warning logged (warning_only), per family.
    pub warned: [bool; 2],
}

/// An established session.
#[derive(Debug)]
pub struct Session {
    pub outbound: crate::queue::Sender<Box<Outbound>>,
    /// The outbound channel was full: wait for `Drained`.
    pub blocked: bool,
    /// Per family: End-of-RIB still to send once the initial dump is out.
    pub eor_due: [bool; 2],
    /// Per family: End-of-RIB received from the peer.
    pub eor_received: [bool; 2],
}

/// Prefix counters of one family, kept as paths change (never counted by walking
/// the tables).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyCounters {
    /// Paths from the peer (adj_rib_in).
    pub received: u64,
    /// Of those, the ones the import policy accepted.
    pub accepted: u64,
    /// Of those, the ones kept stale for a restarting peer (graceful restart).
    pub stale: u64,
}

/// A peer's adj_rib_out for one family, as two sets of table slots: what it was
/// sent and still has, and what must be (re)computed and sent. What it was sent is
/// derived from the Loc-RIB when needed, never stored per prefix.
#[derive(Debug, Default)]
pub struct AdjRibOut {
    pub advertised: SlotSet,
    pub pending: Bitset,
}

/// A filter by name as a neighbor refers to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterRef {
    None,
    Filter(Arc<Filter>),
    /// Named but not defined: rejects everything (and was logged).
    Missing(String),
}

/// The configured settings of a neighbor that the RIB applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSettings {
    pub import: FilterRef,
    pub export: FilterRef,
    pub route_reflector_client: bool,
    pub next_hop_self: bool,
    pub max_prefixes: Option<MaxPrefixes>,
}

impl Default for PeerSettings {
    fn default() -> Self {
        PeerSettings {
            import: FilterRef::None,
            export: FilterRef::None,
            route_reflector_client: false,
            next_hop_self: false,
            max_prefixes: None,
        }
    }
}

impl PeerSettings {
    /// The settings of the neighbor at `address`: its `[[bgp.neighbor]]`, or the
    /// `[[bgp.listen_range]]` holding it; defaults when neither exists.
    pub fn from_config(config: &Config, policy: &Policy, address: IpAddr) -> PeerSettings {
        let resolve = |name: &Option<String>| match name {
            None => FilterRef::None,
            Some(name) => match policy.filter(name) {
                Some(filter) => FilterRef::Filter(filter),
                None => {
                    tracing::error!(
                        neighbor = %address,
                        "filter {name:?} is not defined in [policy]: every route it sees is rejected"
                    );
                    FilterRef::Missing(name.clone())
                }
            },
        };
        match config.session_options(address) {
            Some(session) => PeerSettings {
                import: resolve(&session.import),
                export: resolve(&session.export),
                route_reflector_client: session.route_reflector_client,
                next_hop_self: session.next_hop_self,
                max_prefixes: session.max_prefixes,
            },
            None => PeerSettings::default(),
        }
    }
}

impl Peer {
    /// A neighbor seen for the first time.
    pub fn neighbor(id: PeerId) -> Peer {
        Peer::new(Some(id), None)
    }

    /// The pseudo-peer of a local source.
    pub fn local(source: LocalSource) -> Peer {
        Peer::new(None, Some(source))
    }

    fn new(id: Option<PeerId>, local: Option<LocalSource>) -> Peer {
        Peer {
            id,
            local,
            info: None,
            session: None,
            settings: PeerSettings::default(),
            stale_until: None,
            counters: Default::default(),
            out: Default::default(),
            disabled: [false; 2],
            import_cache: Cache::default(),
            export_cache: Default::default(),
            shared_exports: Cache::default(),
            closing: false,
            close_pending: None,
            warned: [false; 2],
        }
    }

    /// Where routes from this peer come from.
    pub fn source(&self) -> RouteSource {
        match (&self.local, &self.info) {
            (Some(_), _) => RouteSource::Local,
            (None, Some(info)) if info.local_asn == info.remote_asn => RouteSource::Ibgp,
            _ => RouteSource::Ebgp,
        }
    }

    /// True for an eBGP neighbor.
    pub fn ebgp(&self) -> bool {
        self.source() == RouteSource::Ebgp
    }

    /// True when the session is up and negotiated `family`, and it is not disabled.
    pub fn takes(&self, family: Family, index: usize) -> bool {
        self.session.is_some()
            && !self.disabled[index]
            && self
                .info
                .as_ref()
                .is_some_and(|info| info.context.families.contains(family))
    }

    /// Routes from this peer, all families.
    pub fn routes(&self) -> u64 {
        self.counters.iter().map(|c| c.received).sum()
    }

    /// The address shown as a route's source.
    pub fn address(&self) -> Option<IpAddr> {
        self.info.as_ref().map(|info| info.address)
    }
}

/// The NOTIFICATION of RFC 4486 for too many prefixes: Cease / Maximum Number of
/// Prefixes Reached, with AFI (2 octets), SAFI (1) and the limit (4).
pub fn max_prefixes_notification(family: Family, limit: u32) -> Notification {
    let mut data = Vec::with_capacity(7);
    data.extend_from_slice(&family.afi.0.to_be_bytes());
    data.push(family.safi.0);
    data.extend_from_slice(&limit.to_be_bytes());
    Notification::new(
        bgp_proto::notification::code::CEASE,
        bgp_proto::notification::cease_subcode::MAX_PREFIXES,
        data,
    )
}
