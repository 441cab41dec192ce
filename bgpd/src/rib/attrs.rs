//! Interned attribute sets: every distinct (path attributes, next hop) pair is stored
//! once and named by a 4-octet [`AttrId`]; routes hold ids, never attributes.
//!
//! A million prefixes announced by one peer in UPDATEs that share their attributes
//! cost one entry here. Entries are reference counted by their holders (paths of the
//! tables, the import and export caches); an entry whose count drops to zero is freed
//! and its id reused. The facts the decision process compares are computed once per
//! entry ([`Facts`]), and so is the wire encoding of an attribute set that is sent
//! ([`AttrTable::encoded`]): a route reflector sends one route's attributes to
//! thousands of clients, encoded once and dropped with the entry.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, LazyLock};

use bgp_proto::{
    Community, EncodeError, EncodedAttributes, Family, NextHop, Origin, PathAttributes,
    SessionContext, UpdatePacker,
};
use hashbrown::DefaultHashBuilder;

/// The name of an interned attribute set.
pub type AttrId = u32;

/// No attribute set (a path the import policy rejected).
pub const NO_ATTR: AttrId = u32::MAX;

/// LOCAL_PREF of a route that carries none (RFC 4271 leaves it to the speaker; every
/// common implementation uses 100).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The next hop of a route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RouteNextHop {
    /// Originated by this node: the next hop is whatever address a peer reaches us at.
    #[default]
    Local,
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
}

impl RouteNextHop {
    /// The next hop of MP_REACH_NLRI, if it is an IP address.
    pub fn from_wire(next_hop: &NextHop) -> Option<RouteNextHop> {
        match next_hop {
            NextHop::Ipv4(address) => Some(RouteNextHop::V4(*address)),
            NextHop::Ipv6 { global, link_local } => Some(RouteNextHop::V6 {
                global: *global,
                link_local: *link_local,
            }),
            NextHop::Other(_) => None,
        }
    }

    /// The MP_REACH_NLRI form (None for [`RouteNextHop::Local`]).
    pub fn to_wire(self) -> Option<NextHop> {
        match self {
            RouteNextHop::Local => None,
            RouteNextHop::V4(address) => Some(NextHop::Ipv4(address)),
            RouteNextHop::V6 { global, link_local } => Some(NextHop::Ipv6 { global, link_local }),
        }
    }

    /// The address packets are forwarded to: the IPv6 global address, or the
    /// link-local one when the global one is unspecified.
    pub fn address(self) -> Option<IpAddr> {
        match self {
            RouteNextHop::Local => None,
            RouteNextHop::V4(address) => Some(IpAddr::V4(address)),
            RouteNextHop::V6 { global, link_local } => match link_local {
                Some(link_local) if global.is_unspecified() => Some(IpAddr::V6(link_local)),
                _ => Some(IpAddr::V6(global)),
            },
        }
    }
}

/// What routes share: path attributes and next hop. For an IPv4 next hop,
/// `path.next_hop` holds the same address (ready for the classic NEXT_HOP field);
/// otherwise it is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    pub path: PathAttributes,
    pub next_hop: RouteNextHop,
    /// A local route whose prefix the kernel should blackhole.
    pub blackhole: bool,
}

impl RouteAttrs {
    /// `path` with `next_hop`, keeping the invariant on `path.next_hop`.
    pub fn new(mut path: PathAttributes, next_hop: RouteNextHop) -> RouteAttrs {
        path.next_hop = match next_hop {
            RouteNextHop::V4(address) => Some(address),
            _ => None,
        };
        RouteAttrs {
            path,
            next_hop,
            blackhole: false,
        }
    }

    /// Replaces the next hop, keeping the invariant on `path.next_hop`.
    pub fn set_next_hop(&mut self, next_hop: RouteNextHop) {
        self.next_hop = next_hop;
        self.path.next_hop = match next_hop {
            RouteNextHop::V4(address) => Some(address),
            _ => None,
        };
    }
}

/// What the decision process and the export rules read of an attribute set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub local_pref: u32,
    pub as_path_len: u32,
    pub origin: u8,
    /// MULTI_EXIT_DISC; absent counts as 0 (RFC 4271 9.1.2.2 c).
    pub med: u32,
    /// The first AS of the path (None for a path starting otherwise, or empty).
    pub neighbor_as: Option<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_len: u32,
    pub no_export: bool,
    pub no_advertise: bool,
}

impl Facts {
    fn of(attrs: &RouteAttrs) -> Facts {
        let path = &attrs.path;
        let communities = &path.communities;
        Facts {
            local_pref: path.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            as_path_len: path
                .as_path
                .as_ref()
                .map_or(0, |p| u32::try_from(p.path_length()).unwrap_or(u32::MAX)),
            origin: path.origin.unwrap_or(Origin::Incomplete).code(),
            med: path.med.unwrap_or(0),
            neighbor_as: path.as_path.as_ref().and_then(|p| p.first_asn()),
            originator_id: path.originator_id,
            cluster_len: u32::try_from(path.cluster_list.len()).unwrap_or(u32::MAX),
            no_export: communities.contains(&Community::NO_EXPORT)
                || communities.contains(&Community::NO_EXPORT_SUBCONFED),
            no_advertise: communities.contains(&Community::NO_ADVERTISE),
        }
    }
}

/// The interning table.
#[derive(Debug, Default)]
pub struct AttrTable {
    slots: Vec<Slot>,
    index: HashMap<Arc<RouteAttrs>, AttrId, DefaultHashBuilder>,
    free: Vec<AttrId>,
}

#[derive(Debug)]
struct Slot {
    attrs: Option<Arc<RouteAttrs>>,
    refs: u32,
    facts: Facts,
    /// The attributes as last sent (see [`AttrTable::encoded`]).
    encoded: Option<Box<EncodedAttributes>>,
}

static EMPTY: LazyLock<RouteAttrs> = LazyLock::new(RouteAttrs::default);

impl AttrTable {
    pub fn new() -> AttrTable {
        AttrTable::default()
    }

    /// The id of `attrs`, adding it when new (with no reference yet: the caller
    /// retains it, or calls [`AttrTable::collect`]).
    pub fn intern(&mut self, attrs: RouteAttrs) -> AttrId {
        if let Some(&id) = self.index.get(&attrs) {
            return id;
        }
        self.insert(Arc::new(attrs))
    }

    /// Like [`AttrTable::intern`], cloning `attrs` only when it is new.
    pub fn intern_ref(&mut self, attrs: &RouteAttrs) -> AttrId {
        if let Some(&id) = self.index.get(attrs) {
            return id;
        }
        self.insert(Arc::new(attrs.clone()))
    }

    fn insert(&mut self, attrs: Arc<RouteAttrs>) -> AttrId {
        let facts = Facts::of(&attrs);
        let slot = Slot {
            attrs: Some(attrs.clone()),
            refs: 0,
            facts,
            encoded: None,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(free) = self.slots.get_mut(id as usize) {
                    *free = slot;
                }
                id
            }
            None => {
                // Ids stop short of NO_ATTR; four billion attribute sets do not fit in
                // memory long before.
                let id = AttrId::try_from(self.slots.len()).unwrap_or(NO_ATTR - 1);
                self.slots.push(slot);
                id
            }
        };
        self.index.insert(attrs, id);
        id
    }

    /// Adds a reference.
    pub fn retain(&mut self, id: AttrId) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            slot.refs += 1;
        }
    }

    /// Drops a reference; the entry goes when none is left.
    pub fn release(&mut self, id: AttrId) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            slot.refs = slot.refs.saturating_sub(1);
            if slot.refs == 0 {
                self.remove(id);
            }
        }
    }

    /// Frees an entry nobody retained after [`AttrTable::intern`].
    pub fn collect(&mut self, id: AttrId) {
        if self
            .slots
            .get(id as usize)
            .is_some_and(|slot| slot.refs == 0)
        {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: AttrId) {
        if let Some(slot) = self.slots.get_mut(id as usize)
            && let Some(attrs) = slot.attrs.take()
        {
            slot.encoded = None;
            self.index.remove(&*attrs);
            self.free.push(id);
        }
    }

    /// The attributes of `id` (an empty set for an id that is not in use).
    pub fn get(&self, id: AttrId) -> &RouteAttrs {
        self.slots
            .get(id as usize)
            .and_then(|slot| slot.attrs.as_deref())
            .unwrap_or(&EMPTY)
    }

    /// The path attributes of `id` as a session of `ctx` sends them with prefixes
    /// of `family` (for [`UpdatePacker::announce_encoded`]): encoded at the first
    /// use and kept with the entry until it goes, so every session they fit (same
    /// family, AS width and RFC 8950 next hop) shares one encoding. One encoding is
    /// kept per entry; a session that encodes otherwise replaces it.
    pub fn encoded(
        &mut self,
        id: AttrId,
        ctx: &SessionContext,
        family: Family,
    ) -> Result<&EncodedAttributes, EncodeError> {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return Err(EncodeError::MissingNextHop);
        };
        let Some(attrs) = slot.attrs.as_deref() else {
            return Err(EncodeError::MissingNextHop);
        };
        if !slot
            .encoded
            .as_deref()
            .is_some_and(|encoded| encoded.fits(ctx, family))
        {
            let packer = UpdatePacker::new(ctx);
            let encoded = match (family, attrs.next_hop.to_wire()) {
                (Family::IPV4_UNICAST, Some(NextHop::Ipv4(_))) => packer.encode_ipv4(&attrs.path),
                (family, Some(next_hop)) => packer.encode_mp(&attrs.path, family, &next_hop),
                (_, None) => Err(EncodeError::MissingNextHop),
            }?;
            slot.encoded = Some(Box::new(encoded));
        }
        slot.encoded.as_deref().ok_or(EncodeError::MissingNextHop)
    }

    /// A shared handle on the attributes of `id`.
    pub fn shared(&self, id: AttrId) -> Option<Arc<RouteAttrs>> {
        self.slots
            .get(id as usize)
            .and_then(|slot| slot.attrs.clone())
    }

    /// The decision facts of `id`.
    pub fn facts(&self, id: AttrId) -> Facts {
        self.slots
            .get(id as usize)
            .map(|slot| slot.facts)
            .unwrap_or_default()
    }

    /// The next hop of `id`.
    pub fn next_hop(&self, id: AttrId) -> RouteNextHop {
        self.get(id).next_hop
    }

    /// Attribute sets in use.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when no attribute set is in use.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// References held on `id` (for tests).
    pub fn refs(&self, id: AttrId) -> u32 {
        self.slots.get(id as usize).map_or(0, |slot| slot.refs)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bgp_proto::AsPath;

    fn attrs(asns: &[u32], next_hop: [u8; 4]) -> RouteAttrs {
        RouteAttrs::new(
            PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(AsPath::from_sequence(asns)),
                ..Default::default()
            },
            RouteNextHop::V4(Ipv4Addr::from(next_hop)),
        )
    }

    #[test]
    fn equal_sets_share_one_id_and_free_ids_are_reused() {
        let mut table = AttrTable::new();
        let a = table.intern(attrs(&[65001], [10, 0, 0, 1]));
        let b = table.intern(attrs(&[65001], [10, 0, 0, 1]));
        let c = table.intern_ref(&attrs(&[65001], [10, 0, 0, 2]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(table.len(), 2);
        assert_eq!(table.get(a).path.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(table.facts(a).as_path_len, 1);
        assert_eq!(table.facts(a).neighbor_as, Some(65001));
        assert_eq!(table.facts(a).local_pref, DEFAULT_LOCAL_PREF);

        table.retain(a);
        table.retain(a);
        table.release(a);
        assert_eq!(table.len(), 2);
        table.release(a);
        assert_eq!(table.len(), 1);
        table.collect(c);
        assert!(table.is_empty());
        let d = table.intern(attrs(&[65002], [10, 0, 0, 3]));
        assert!(d == a || d == c, "a freed id is reused");
        assert_eq!(table.facts(d).neighbor_as, Some(65002));
    }

    /// The UPDATEs `ctx` sends for `id` and one prefix, the attributes encoded by
    /// the table (`encoded`) or by the packer directly.
    fn update(table: &mut AttrTable, id: AttrId, ctx: &SessionContext, cached: bool) -> Vec<u8> {
        let prefix = bgp_proto::Ipv4Prefix::new("10.1.0.0/26".parse().unwrap());
        let packer = UpdatePacker::new(ctx);
        let mut out = bytes::BytesMut::new();
        if cached {
            let encoded = table.encoded(id, ctx, Family::IPV4_UNICAST).unwrap();
            packer.announce_encoded(encoded, [bgp_proto::Prefix::V4(prefix)], &mut out)
        } else {
            packer.announce_ipv4(&table.get(id).path, [prefix], &mut out)
        }
        .unwrap();
        out.to_vec()
    }

    #[test]
    fn encodings_are_kept_per_session_kind_and_go_with_their_entry() {
        let mut table = AttrTable::new();
        // A 4-octet AS beyond 65535: a 2-octet session gets AS_TRANS and AS4_PATH.
        let a = table.intern(attrs(&[4_200_000_000], [10, 0, 0, 1]));
        table.retain(a);
        let four = SessionContext::default();
        let two = SessionContext {
            four_octet_as: false,
            ..SessionContext::default()
        };
        let first = update(&mut table, a, &four, true);
        assert_eq!(first, update(&mut table, a, &four, false));
        assert_eq!(first, update(&mut table, a, &four, true));
        // Another AS width: encoded again, and right.
        let narrow = update(&mut table, a, &two, true);
        assert_ne!(narrow, first);
        assert_eq!(narrow, update(&mut table, a, &two, false));
        assert_eq!(first, update(&mut table, a, &four, true));
        // IPv6 prefixes with an IPv4 next hop cannot be sent: an error, not a panic.
        assert!(table.encoded(a, &four, Family::IPV6_UNICAST).is_err());
        // The encoding goes with its entry; the reused id encodes its new attributes.
        table.release(a);
        assert!(table.encoded(a, &four, Family::IPV4_UNICAST).is_err());
        let b = table.intern(attrs(&[65002], [10, 0, 0, 2]));
        table.retain(b);
        assert_eq!(b, a, "the freed id is reused");
        assert_eq!(
            update(&mut table, b, &four, true),
            update(&mut table, b, &four, false)
        );
        assert_ne!(update(&mut table, b, &four, true), first);
    }
}
