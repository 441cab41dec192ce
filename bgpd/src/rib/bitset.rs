//! A growable set of table slots, one bit each: what a peer still has to be sent
//! (its adj_rib_out's pending slots, taken lowest first). A million slots cost
//! 125 KiB. What it was sent is a [`super::slot_set::SlotSet`].

/// A set of `u32` slots.
#[derive(Clone, Debug, Default)]
pub struct Bitset {
    words: Vec<u64>,
    count: usize,
    /// No word below this one has a bit set.
    low: usize,
}

impl Bitset {
    /// Adds `slot`; true when it was not there.
    #[inline]
    pub fn insert(&mut self, slot: u32) -> bool {
        let (word, bit) = position(slot);
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let Some(value) = self.words.get_mut(word) else {
            return false;
        };
        if *value & bit != 0 {
            return false;
        }
        *value |= bit;
        self.count += 1;
        self.low = self.low.min(word);
        true
    }

    #[inline]
    pub fn contains(&self, slot: u32) -> bool {
        let (word, bit) = position(slot);
        self.words.get(word).is_some_and(|value| value & bit != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Empties the set and gives its memory back.
    pub fn clear(&mut self) {
        *self = Bitset::default();
    }

    /// Removes up to `max` of the lowest slots, appending them to `out`.
    pub fn take(&mut self, max: usize, out: &mut Vec<u32>) {
        let mut taken = 0;
        while taken < max && self.count > 0 {
            let Some(value) = self.words.get_mut(self.low) else {
                break;
            };
            while *value != 0 && taken < max {
                let bit = value.trailing_zeros();
                *value &= *value - 1;
                // Slots fit in u32 by construction (they come from u32s).
                out.push((self.low as u32) * 64 + bit);
                self.count -= 1;
                taken += 1;
            }
            if *value == 0 {
                self.low += 1;
            }
        }
        if self.count == 0 {
            // A peer's pending set empties after every flush; its words (a bit per
            // slot of the table, 625 octets at 5000 prefixes) would otherwise stay
            // with each of a route reflector's thousands of clients (issue 18).
            *self = Bitset::default();
        }
    }

    /// Every slot in the set, in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words
            .iter()
            .enumerate()
            .skip(self.low)
            .flat_map(|(index, &word)| {
                let mut bits = word;
                std::iter::from_fn(move || {
                    (bits != 0).then(|| {
                        let bit = bits.trailing_zeros();
                        bits &= bits - 1;
                        (index as u32) * 64 + bit
                    })
                })
            })
    }
}

#[inline]
fn position(slot: u32) -> (usize, u64) {
    ((slot / 64) as usize, 1 << (slot % 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_take() {
        let mut set = Bitset::default();
        assert!(set.insert(200));
        assert!(set.insert(3));
        assert!(!set.insert(3));
        assert!(set.insert(64));
        assert!(set.contains(64) && !set.contains(65));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![3, 64, 200]);
        let mut out = Vec::new();
        set.take(2, &mut out);
        assert_eq!(out, vec![3, 64]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![200]);
        assert!(set.insert(1));
        set.take(10, &mut out);
        assert_eq!(out, vec![3, 64, 1, 200]);
        assert!(set.is_empty());
        assert_eq!(
            set.words.capacity(),
            0,
            "taking the last slot frees the words"
        );
    }
}
