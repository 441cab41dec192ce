//! One family's prefixes and their paths, stored compactly: an arena of entries
//! indexed by `u32` slot, and a hash index of slots keyed by prefix.
//!
//! An entry is the prefix, the number of paths selected (best and ECMP, at the front
//! of its paths) and its paths: one inline, two in one 24-octet box, more in a boxed
//! vector. A path is
//! 12 octets: the peer it came from, flags, and two interned attribute ids (as
//! received, and as the import policy accepted it). So an IPv4 prefix with one path
//! costs a 24-octet entry plus about 6-12 octets of index, and no allocation of its
//! own. Slots are stable while an entry lives; peers' adj_rib_out bitsets name
//! entries by slot.
//!
//! An entry with no path left stays (a "zombie") until no peer still has it as
//! advertised or pending, so a withdrawal can be sent later; [`Table::release`]
//! then frees the slot for reuse.

use std::fmt::Debug;
use std::hash::{BuildHasher, Hash};

use bgp_proto::{Family, Ipv4Prefix, Ipv6Prefix, Prefix};
use hashbrown::{DefaultHashBuilder, HashTable};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::attrs::{AttrId, NO_ATTR};

/// A peer's (or local source's) index inside the RIB.
pub type PeerIdx = u16;

/// A prefix type of one family.
pub trait Net: Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static {
    const FAMILY: Family;
    /// 0 for IPv4, 1 for IPv6 (index into per-family arrays).
    const INDEX: usize;
    fn ip_net(self) -> IpNet;
    fn wire(self) -> Prefix;
    fn table(tables: &Tables) -> &Table<Self>;
    fn table_mut(tables: &mut Tables) -> &mut Table<Self>;
}

/// Both families' tables.
#[derive(Debug, Default)]
pub struct Tables {
    pub v4: Table<Ipv4Net>,
    pub v6: Table<Ipv6Net>,
}

impl Net for Ipv4Net {
    const FAMILY: Family = Family::IPV4_UNICAST;
    const INDEX: usize = 0;
    fn ip_net(self) -> IpNet {
        IpNet::V4(self)
    }
    fn wire(self) -> Prefix {
        Prefix::V4(Ipv4Prefix {
            path_id: None,
            net: self,
        })
    }
    fn table(tables: &Tables) -> &Table<Self> {
        &tables.v4
    }
    fn table_mut(tables: &mut Tables) -> &mut Table<Self> {
        &mut tables.v4
    }
}

impl Net for Ipv6Net {
    const FAMILY: Family = Family::IPV6_UNICAST;
    const INDEX: usize = 1;
    fn ip_net(self) -> IpNet {
        IpNet::V6(self)
    }
    fn wire(self) -> Prefix {
        Prefix::V6(Ipv6Prefix {
            path_id: None,
            net: self,
        })
    }
    fn table(tables: &Tables) -> &Table<Self> {
        &tables.v6
    }
    fn table_mut(tables: &mut Tables) -> &mut Table<Self> {
        &mut tables.v6
    }
}

/// One path of a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Path {
    pub peer: PeerIdx,
    pub flags: u16,
    /// Attributes as received (adj_rib_in).
    pub received: AttrId,
    /// Attributes after import policy; [`NO_ATTR`] when rejected.
    pub accepted: AttrId,
}

impl Path {
    /// Kept for a restarting peer (graceful restart) until it refreshes it.
    pub const STALE: u16 = 1;

    pub fn stale(&self) -> bool {
        self.flags & Path::STALE != 0
    }

    /// True when the import policy accepted the path.
    pub fn eligible(&self) -> bool {
        self.accepted != NO_ATTR
    }
}

/// The paths of an entry.
#[derive(Clone, Debug, Default)]
pub enum Paths {
    /// The slot is free.
    #[default]
    Free,
    /// No path (a zombie waiting for withdrawals to be sent).
    Empty,
    One(Path),
    /// Two paths (a prefix heard from two neighbors, as from a pair of ToRs) in one
    /// 24-octet allocation.
    Two(Box<[Path; 2]>),
    /// Boxed so that `Paths` stays 16 octets (a thin pointer); prefixes with more than
    /// two paths are the exception.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Path>>),
}

impl Paths {
    pub fn as_slice(&self) -> &[Path] {
        match self {
            Paths::Free | Paths::Empty => &[],
            Paths::One(path) => std::slice::from_ref(path),
            Paths::Two(paths) => &paths[..],
            Paths::Many(paths) => paths,
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [Path] {
        match self {
            Paths::Free | Paths::Empty => &mut [],
            Paths::One(path) => std::slice::from_mut(path),
            Paths::Two(paths) => &mut paths[..],
            Paths::Many(paths) => paths,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Position of the path from `peer`.
    pub fn find(&self, peer: PeerIdx) -> Option<usize> {
        self.as_slice().iter().position(|path| path.peer == peer)
    }

    /// Adds a path (at the end).
    pub fn push(&mut self, path: Path) {
        *self = match std::mem::take(self) {
            Paths::Free | Paths::Empty => Paths::One(path),
            Paths::One(first) => Paths::Two(Box::new([first, path])),
            Paths::Two(paths) => Paths::Many(Box::new(vec![paths[0], paths[1], path])),
            Paths::Many(mut paths) => {
                paths.push(path);
                Paths::Many(paths)
            }
        };
    }

    /// Removes the path at `position` (the order of the others is kept).
    pub fn remove(&mut self, position: usize) -> Option<Path> {
        match std::mem::take(self) {
            Paths::One(path) if position == 0 => {
                *self = Paths::Empty;
                Some(path)
            }
            Paths::Two(paths) if position < 2 => {
                *self = Paths::One(paths[1 - position]);
                Some(paths[position])
            }
            Paths::Many(mut paths) if position < paths.len() => {
                let removed = paths.remove(position);
                *self = match paths.as_slice() {
                    [only] => Paths::One(*only),
                    [first, second] => Paths::Two(Box::new([*first, *second])),
                    _ => Paths::Many(paths),
                };
                Some(removed)
            }
            other => {
                *self = other;
                None
            }
        }
    }
}

/// One prefix.
#[derive(Clone, Debug)]
pub struct Entry<K> {
    pub net: K,
    /// Paths selected (best first, then the other ECMP paths) at the front of `paths`.
    pub best: u8,
    pub paths: Paths,
}

impl<K> Entry<K> {
    /// The selected paths (best first).
    pub fn selected(&self) -> &[Path] {
        let paths = self.paths.as_slice();
        &paths[..usize::from(self.best).min(paths.len())]
    }

    /// The best path.
    pub fn best_path(&self) -> Option<Path> {
        self.selected().first().copied()
    }

    pub fn is_free(&self) -> bool {
        matches!(self.paths, Paths::Free)
    }
}

/// One family's table.
#[derive(Debug)]
pub struct Table<K> {
    entries: Vec<Entry<K>>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    free: Vec<u32>,
    /// Entries without paths that some peer may still have to withdraw.
    pub zombies: Vec<u32>,
}

impl<K: Net> Default for Table<K> {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            free: Vec::new(),
            zombies: Vec::new(),
        }
    }
}

impl<K: Net> Table<K> {
    /// The slot of `net`.
    pub fn find(&self, net: K) -> Option<u32> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(net), |&slot| {
                entries[slot as usize].net == net
            })
            .copied()
    }

    /// The slot of `net`, adding an entry without paths when it is new.
    pub fn find_or_insert(&mut self, net: K) -> u32 {
        let hash = self.hasher.hash_one(net);
        let entries = &self.entries;
        if let Some(&slot) = self
            .index
            .find(hash, |&slot| entries[slot as usize].net == net)
        {
            return slot;
        }
        let entry = Entry {
            net,
            best: 0,
            paths: Paths::Empty,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.entries[slot as usize] = entry;
                slot
            }
            None => {
                self.entries.push(entry);
                // More than 4 billion prefixes do not fit in memory first.
                u32::try_from(self.entries.len() - 1).unwrap_or(u32::MAX)
            }
        };
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.index.insert_unique(hash, slot, |&other| {
            hasher.hash_one(entries[other as usize].net)
        });
        slot
    }

    /// Frees an entry that has no path left.
    pub fn release(&mut self, slot: u32) {
        let Some(entry) = self.entries.get_mut(slot as usize) else {
            return;
        };
        if !matches!(entry.paths, Paths::Empty) {
            return;
        }
        entry.paths = Paths::Free;
        entry.best = 0;
        let hash = self.hasher.hash_one(entry.net);
        if let Ok(found) = self.index.find_entry(hash, |&other| other == slot) {
            found.remove();
        }
        self.free.push(slot);
    }

    pub fn entry(&self, slot: u32) -> &Entry<K> {
        &self.entries[slot as usize]
    }

    pub fn entry_mut(&mut self, slot: u32) -> &mut Entry<K> {
        &mut self.entries[slot as usize]
    }

    /// Every entry in use (with or without paths), by slot.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Entry<K>)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| !entry.is_free())
            .map(|(slot, entry)| (slot as u32, entry))
    }

    /// Calls `found` with the prefix of every entry with paths among `max` slots from
    /// slot `from` on; returns the slot to go on from, or `None` at the end.
    pub fn scan(&self, from: u32, max: usize, mut found: impl FnMut(K)) -> Option<u32> {
        let start = (from as usize).min(self.entries.len());
        let end = start.saturating_add(max).min(self.entries.len());
        for entry in &self.entries[start..end] {
            if !entry.paths.is_empty() {
                found(entry.net);
            }
        }
        (end < self.entries.len()).then(|| u32::try_from(end).unwrap_or(u32::MAX))
    }

    /// Slots of every entry in use.
    pub fn slots(&self) -> Vec<u32> {
        self.iter().map(|(slot, _)| slot).collect()
    }

    /// Number of entries in use.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Octets of memory the table holds (entries, index, free list; not the boxes of
    /// multi-path prefixes).
    pub fn memory(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<K>>()
            + self.index.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.free.capacity() * 4
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn path(peer: PeerIdx) -> Path {
        Path {
            peer,
            flags: 0,
            received: 1,
            accepted: 1,
        }
    }

    #[test]
    fn entries_are_small() {
        assert_eq!(std::mem::size_of::<Path>(), 12);
        assert_eq!(std::mem::size_of::<Paths>(), 16);
        assert_eq!(std::mem::size_of::<Entry<Ipv4Net>>(), 24);
        assert_eq!(std::mem::size_of::<Entry<Ipv6Net>>(), 40);
    }

    #[test]
    fn paths_grow_and_shrink() {
        let mut paths = Paths::Empty;
        paths.push(path(1));
        assert!(matches!(paths, Paths::One(_)));
        paths.push(path(2));
        assert!(matches!(paths, Paths::Two(_)));
        paths.push(path(3));
        paths.push(path(4));
        assert!(matches!(paths, Paths::Many(_)));
        assert_eq!(paths.find(3), Some(2));
        assert_eq!(paths.remove(3).unwrap().peer, 4);
        assert_eq!(paths.remove(0).unwrap().peer, 1);
        assert!(matches!(paths, Paths::Two(_)));
        assert_eq!(paths.remove(0).unwrap().peer, 2);
        assert!(matches!(paths, Paths::One(p) if p.peer == 3));
        assert!(paths.remove(1).is_none());
        assert_eq!(paths.remove(0).unwrap().peer, 3);
        assert!(matches!(paths, Paths::Empty));
    }

    #[test]
    fn slots_are_found_released_and_reused() {
        let mut table = Table::<Ipv4Net>::default();
        let nets: Vec<Ipv4Net> = (0..1000u32)
            .map(|i| Ipv4Net::new((0x0a00_0000 + (i << 6)).into(), 26).unwrap())
            .collect();
        let slots: Vec<u32> = nets.iter().map(|&n| table.find_or_insert(n)).collect();
        assert_eq!(table.len(), 1000);
        for (net, slot) in nets.iter().zip(&slots) {
            assert_eq!(table.find(*net), Some(*slot));
            assert_eq!(table.find_or_insert(*net), *slot);
        }
        table.release(slots[10]);
        assert_eq!(table.find(nets[10]), None);
        assert_eq!(table.len(), 999);
        let other = Ipv4Net::new([192, 168, 0, 0].into(), 24).unwrap();
        assert_eq!(table.find_or_insert(other), slots[10]);
        assert_eq!(table.entry(slots[10]).net, other);
        assert_eq!(table.iter().count(), 1000);
        // An entry with a path is not released.
        table.entry_mut(slots[0]).paths.push(path(1));
        table.release(slots[0]);
        assert_eq!(table.find(nets[0]), Some(slots[0]));
    }
}
