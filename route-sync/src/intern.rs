//! Reference-counted interning: each distinct value is kept once and named
//! by a small id, so a million routes through the same next hops cost one
//! copy of those next hops and four octets per route.
//!
//! Calling contract: every id handed out by `intern`/`retain`
//! is one reference and must be given back with `release` exactly once;
//! while a reference is held the id names the same value, and equal values
//! have equal ids (so ids compare like the values do).

use std::collections::HashMap;
use std::hash::Hash;

/// Distinct values with reference counts, named by ids below `u32::MAX`.
#[derive(Debug)]
pub(crate) struct Interner<T> {
    ids: HashMap<T, u32>,
    values: Vec<Option<Interned<T>>>,
    free: Vec<u32>,
}

#[derive(Debug)]
struct Interned<T> {
    value: T,
    references: u32,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            ids: HashMap::new(),
            values: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Clone + Eq + Hash> Interner<T> {
    /// One reference to `value`, which is kept if it is new.
    pub(crate) fn intern(&mut self, value: T) -> u32 {
        if let Some(&id) = self.ids.get(&value) {
            self.retain(id);
            return id;
        }
        self.insert(value)
    }

    /// One more reference to a held id.
    pub(crate) fn retain(&mut self, id: u32) {
        if let Some(Some(interned)) = self.values.get_mut(id as usize) {
            interned.references += 1;
        }
    }

    /// Gives one reference back; true when that was the last and the id is
    /// free for another value.
    pub(crate) fn release(&mut self, id: u32) -> bool {
        let Some(slot) = self.values.get_mut(id as usize) else {
            return false;
        };
        let Some(interned) = slot else {
            return false;
        };
        interned.references = interned.references.saturating_sub(1);
        if interned.references > 0 {
            return false;
        }
        if let Some(interned) = slot.take() {
            self.ids.remove(&interned.value);
        }
        self.free.push(id);
        true
    }

    /// The value of a held id.
    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        match self.values.get(id as usize) {
            Some(Some(interned)) => Some(&interned.value),
            _ => None,
        }
    }

    /// Every value held, with its id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.values
            .iter()
            .enumerate()
            .filter_map(|(id, slot)| slot.as_ref().map(|i| (id as u32, &i.value)))
    }

    fn insert(&mut self, value: T) -> u32 {
        let interned = Interned {
            value: value.clone(),
            references: 1,
        };
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.values.get_mut(id as usize) {
                    *slot = Some(interned);
                }
                id
            }
            None => {
                self.values.push(Some(interned));
                (self.values.len() - 1) as u32
            }
        };
        self.ids.insert(value, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_an_id_until_the_last_release() {
        let mut interner = Interner::default();
        let a = interner.intern(vec![1, 2]);
        let b = interner.intern(vec![1, 2]);
        let c = interner.intern(vec![3]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(interner.iter().count(), 2);
        assert!(!interner.release(a));
        assert_eq!(interner.get(b), Some(&vec![1, 2]));
        assert!(interner.release(b));
        assert_eq!(interner.get(a), None);
        assert_eq!(interner.iter().count(), 1);
        // The freed id is used again for the next new value.
        let d = interner.intern(vec![4]);
        assert_eq!(d, a);
        interner.retain(d);
        assert!(!interner.release(d));
        assert!(interner.release(d));
        assert!(interner.release(c));
        assert_eq!(interner.iter().count(), 0);
    }
}
