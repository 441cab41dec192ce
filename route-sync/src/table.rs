//! The route table of one syncer, packed for a million routes.
//!
//! One hash table per address family keyed by the prefix in 5 (IPv4) or 17
//! (IPv6) octets, each holding a 9-octet [`Slot`]: the interned desired
//! target, the interned kernel form of what the kernel holds of ours, and
//! flags. A hash bucket is 15 octets for IPv4 and 27 for IPv6 (a control
//! octet included). Prefixes waiting for a decision sit in a queue per
//! family, in the same packed form, marked `QUEUED` so each is queued once.
//!
//! Every change to a slot is counted ([`crate::census`]): a slot is changed
//! through a [`SlotMut`], whose drop reports it, and queueing, dequeueing and
//! removal are reported here.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use std::ops::{Deref, DerefMut};

use crate::census::{Census, View};

/// Per-route state: ids of interned values and flags (alignment 1, so a
/// slot costs its 9 octets and nothing for padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    desired: [u8; 4],
    kernel: [u8; 4],
    flags: u8,
}

/// Desired at some point since start (so not merely adopted).
pub(crate) const CLAIMED: u8 = 1;
/// In the queue of its family.
const QUEUED: u8 = 2;
/// Seen in the kernel dump under way.
pub(crate) const SEEN: u8 = 4;

const NONE: u32 = u32::MAX;

impl Slot {
    const EMPTY: Slot = Slot {
        desired: NONE.to_ne_bytes(),
        kernel: NONE.to_ne_bytes(),
        flags: 0,
    };

    /// The interned desired target, if any.
    pub(crate) fn desired(&self) -> Option<u32> {
        id(self.desired)
    }

    /// The interned kernel form of our route in the kernel, if any.
    pub(crate) fn kernel(&self) -> Option<u32> {
        id(self.kernel)
    }

    /// Sets the desired target; returns the one it replaces.
    pub(crate) fn set_desired(&mut self, desired: Option<u32>) -> Option<u32> {
        let old = self.desired();
        self.desired = desired.unwrap_or(NONE).to_ne_bytes();
        old
    }

    /// Sets the kernel form; returns the one it replaces.
    pub(crate) fn set_kernel(&mut self, kernel: Option<u32>) -> Option<u32> {
        let old = self.kernel();
        self.kernel = kernel.unwrap_or(NONE).to_ne_bytes();
        old
    }

    /// What the counts see of this slot.
    pub(crate) fn view(&self) -> View {
        View::new(self.desired().is_some(), self.kernel(), self.has(QUEUED))
    }

    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub(crate) fn set(&mut self, flag: u8, on: bool) {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
    }
}

fn id(octets: [u8; 4]) -> Option<u32> {
    let id = u32::from_ne_bytes(octets);
    (id != NONE).then_some(id)
}

/// Both families' tables and queues, and the counts kept of them.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    v4: Table<V4Key>,
    v6: Table<V6Key>,
    census: Census,
}

impl Tables {
    /// The slot of `prefix` (host bits already cleared), if present.
    pub(crate) fn get(&self, prefix: IpNet) -> Option<&Slot> {
        match prefix {
            IpNet::V4(net) => self.v4.slots.get(&V4Key::new(net)),
            IpNet::V6(net) => self.v6.slots.get(&V6Key::new(net)),
        }
    }

    /// The slot of `prefix`, if present, without queueing it.
    pub(crate) fn get_mut(&mut self, prefix: IpNet) -> Option<SlotMut<'_>> {
        match prefix {
            IpNet::V4(net) => self.v4.get_mut(V4Key::new(net), &mut self.census),
            IpNet::V6(net) => self.v6.get_mut(V6Key::new(net), &mut self.census),
        }
    }

    /// The slot of `prefix`, created empty if absent, queued for a decision.
    pub(crate) fn queued(&mut self, prefix: IpNet) -> SlotMut<'_> {
        match prefix {
            IpNet::V4(net) => self.v4.queued(V4Key::new(net), &mut self.census),
            IpNet::V6(net) => self.v6.queued(V6Key::new(net), &mut self.census),
        }
    }

    /// The slot of `prefix` queued for a decision, if present.
    pub(crate) fn queued_existing(&mut self, prefix: IpNet) -> Option<SlotMut<'_>> {
        match prefix {
            IpNet::V4(net) => self.v4.queued_existing(V4Key::new(net), &mut self.census),
            IpNet::V6(net) => self.v6.queued_existing(V6Key::new(net), &mut self.census),
        }
    }

    pub(crate) fn remove(&mut self, prefix: IpNet) -> Option<Slot> {
        let (slot, v6) = match prefix {
            IpNet::V4(net) => (self.v4.slots.remove(&V4Key::new(net)), false),
            IpNet::V6(net) => (self.v6.slots.remove(&V6Key::new(net)), true),
        };
        if let Some(slot) = &slot {
            self.census.change(v6, slot.view(), View::NONE);
        }
        slot
    }

    /// The next queued prefix and a copy of its slot, no longer marked
    /// queued (`None` for a prefix removed since it was queued).
    pub(crate) fn next_queued(&mut self) -> Option<(IpNet, Option<Slot>)> {
        if !self.v4.queue.is_empty() {
            return self.v4.next_queued(&mut self.census);
        }
        self.v6.next_queued(&mut self.census)
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.v4.queue.is_empty() || !self.v6.queue.is_empty()
    }

    /// Calls `visit` on every slot; queues those for which it returns true.
    pub(crate) fn visit(&mut self, mut visit: impl FnMut(IpNet, &mut Slot) -> bool) {
        self.v4.visit(&mut visit, &mut self.census);
        self.v6.visit(&mut visit, &mut self.census);
    }

    /// Every slot with its prefix.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpNet, &Slot)> {
        let v4 = self.v4.slots.iter().map(|(key, slot)| (key.net(), slot));
        let v6 = self.v6.slots.iter().map(|(key, slot)| (key.net(), slot));
        v4.chain(v6)
    }

    /// The counts kept of both tables.
    pub(crate) fn census(&self) -> &Census {
        &self.census
    }

    /// The counts, for a summary (which names the kernel forms new since the last).
    pub(crate) fn census_mut(&mut self) -> &mut Census {
        &mut self.census
    }

    /// Gives memory back after many routes went away: hash tables at most
    /// a quarter full and empty queues are shrunk.
    pub(crate) fn shrink(&mut self) {
        self.v4.shrink();
        self.v6.shrink();
    }
}

/// A slot borrowed for a change: the counts follow when it is dropped.
pub(crate) struct SlotMut<'a> {
    slot: &'a mut Slot,
    census: &'a mut Census,
    v6: bool,
    before: View,
}

impl<'a> SlotMut<'a> {
    /// `before` is the slot's view before this borrow changed anything (the
    /// table may have queued it already).
    pub(crate) fn new(
        slot: &'a mut Slot,
        census: &'a mut Census,
        v6: bool,
        before: View,
    ) -> SlotMut<'a> {
        SlotMut {
            slot,
            census,
            v6,
            before,
        }
    }
}

impl Deref for SlotMut<'_> {
    type Target = Slot;

    fn deref(&self) -> &Slot {
        self.slot
    }
}

impl DerefMut for SlotMut<'_> {
    fn deref_mut(&mut self) -> &mut Slot {
        self.slot
    }
}

impl Drop for SlotMut<'_> {
    fn drop(&mut self) {
        self.census.change(self.v6, self.before, self.slot.view());
    }
}

/// A prefix in a packed form.
trait Key: Copy + Eq + Hash {
    /// The family, for the counts (IPv6: true).
    const V6: bool;

    fn net(self) -> IpNet;
}

/// An IPv4 prefix: address octets then length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct V4Key([u8; 5]);

/// An IPv6 prefix: address octets then length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct V6Key([u8; 17]);

impl V4Key {
    fn new(net: Ipv4Net) -> V4Key {
        let [a, b, c, d] = net.addr().octets();
        V4Key([a, b, c, d, net.prefix_len()])
    }
}

impl Key for V4Key {
    const V6: bool = false;

    fn net(self) -> IpNet {
        let [a, b, c, d, length] = self.0;
        IpNet::V4(Ipv4Net::new(Ipv4Addr::new(a, b, c, d), length).unwrap_or_default())
    }
}

impl V6Key {
    fn new(net: Ipv6Net) -> V6Key {
        let mut key = [0; 17];
        key[..16].copy_from_slice(&net.addr().octets());
        key[16] = net.prefix_len();
        V6Key(key)
    }
}

impl Key for V6Key {
    const V6: bool = true;

    fn net(self) -> IpNet {
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.0[..16]);
        IpNet::V6(Ipv6Net::new(Ipv6Addr::from(octets), self.0[16]).unwrap_or_default())
    }
}

/// One family's slots and queue.
#[derive(Debug)]
struct Table<K> {
    slots: HashMap<K, Slot>,
    queue: VecDeque<K>,
}

impl<K> Default for Table<K> {
    fn default() -> Self {
        Table {
            slots: HashMap::new(),
            queue: VecDeque::new(),
        }
    }
}

/// Queues shrink back to this many prefixes once empty.
const QUEUE_KEPT: usize = 4096;

impl<K: Key> Table<K> {
    fn get_mut<'a>(&'a mut self, key: K, census: &'a mut Census) -> Option<SlotMut<'a>> {
        let slot = self.slots.get_mut(&key)?;
        let before = slot.view();
        Some(SlotMut::new(slot, census, K::V6, before))
    }

    fn queued<'a>(&'a mut self, key: K, census: &'a mut Census) -> SlotMut<'a> {
        let slot = self.slots.entry(key).or_insert(Slot::EMPTY);
        let before = slot.view();
        enqueue(&mut self.queue, key, slot);
        SlotMut::new(slot, census, K::V6, before)
    }

    fn queued_existing<'a>(&'a mut self, key: K, census: &'a mut Census) -> Option<SlotMut<'a>> {
        let slot = self.slots.get_mut(&key)?;
        let before = slot.view();
        enqueue(&mut self.queue, key, slot);
        Some(SlotMut::new(slot, census, K::V6, before))
    }

    fn next_queued(&mut self, census: &mut Census) -> Option<(IpNet, Option<Slot>)> {
        let key = self.queue.pop_front()?;
        if self.queue.is_empty() && self.queue.capacity() > QUEUE_KEPT {
            self.queue.shrink_to(QUEUE_KEPT);
        }
        let slot = self.slots.get_mut(&key).map(|slot| {
            let before = slot.view();
            slot.set(QUEUED, false);
            census.change(K::V6, before, slot.view());
            *slot
        });
        Some((key.net(), slot))
    }

    fn visit(&mut self, visit: &mut impl FnMut(IpNet, &mut Slot) -> bool, census: &mut Census) {
        for (key, slot) in self.slots.iter_mut() {
            let before = slot.view();
            if visit(key.net(), slot) {
                enqueue(&mut self.queue, *key, slot);
            }
            census.change(K::V6, before, slot.view());
        }
    }

    fn shrink(&mut self) {
        if self.slots.capacity() > 64 && self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to_fit();
        }
        if self.queue.is_empty() && self.queue.capacity() > QUEUE_KEPT {
            self.queue.shrink_to(QUEUE_KEPT);
        }
    }
}

fn enqueue<K>(queue: &mut VecDeque<K>, key: K, slot: &mut Slot) {
    if !slot.has(QUEUED) {
        slot.set(QUEUED, true);
        queue.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_nine_octets_and_keys_round_trip() {
        assert_eq!(std::mem::size_of::<Slot>(), 9);
        assert_eq!(std::mem::size_of::<(V4Key, Slot)>(), 14);
        assert_eq!(std::mem::size_of::<(V6Key, Slot)>(), 26);
        for text in ["10.1.2.0/24", "0.0.0.0/0", "255.255.255.255/32"] {
            let net: IpNet = text.parse().unwrap();
            let IpNet::V4(v4) = net else { panic!() };
            assert_eq!(V4Key::new(v4).net(), net);
        }
        for text in ["2001:db8::/64", "::/0", "ffff::1/128"] {
            let net: IpNet = text.parse().unwrap();
            let IpNet::V6(v6) = net else { panic!() };
            assert_eq!(V6Key::new(v6).net(), net);
        }
    }

    #[test]
    fn a_prefix_is_queued_once_and_ids_survive() {
        let mut tables = Tables::default();
        let a: IpNet = "10.0.0.0/24".parse().unwrap();
        let b: IpNet = "2001:db8::/64".parse().unwrap();
        assert_eq!(tables.queued(a).set_desired(Some(7)), None);
        tables.queued(a).set(CLAIMED, true);
        tables.queued(b).set_kernel(Some(3));
        assert_eq!(
            tables.census().installed().collect::<Vec<_>>(),
            [(true, 3, 1)]
        );
        assert!(
            tables
                .queued_existing("10.9.0.0/24".parse().unwrap())
                .is_none()
        );
        let (prefix, slot) = tables.next_queued().unwrap();
        assert_eq!(prefix, a);
        let slot = slot.unwrap();
        assert_eq!((slot.desired(), slot.kernel()), (Some(7), None));
        assert!(slot.has(CLAIMED));
        let (prefix, slot) = tables.next_queued().unwrap();
        assert_eq!((prefix, slot.unwrap().kernel()), (b, Some(3)));
        assert!(tables.next_queued().is_none());
        assert!(!tables.has_queued());
        tables.visit(|prefix, _| prefix == b);
        assert_eq!(tables.next_queued().unwrap().0, b);
        assert_eq!(tables.iter().count(), 2);
        // a is desired, decided and not installed: failed until it goes.
        assert_eq!(tables.census().failed(), 1);
        assert!(tables.remove(a).is_some());
        assert_eq!(tables.iter().count(), 1);
        assert_eq!(tables.census().failed(), 0);
    }
}
