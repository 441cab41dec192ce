//! What a peer was sent and still has (its adj_rib_out's `advertised`): a set of table
//! slots that is usually nearly every slot of the table. A bit per slot costs 625
//! octets per client at a route reflector of 5000 (issue 18's memory per session), so
//! a set that holds every slot below some end but a few keeps only those few
//! ([`MAX_MISSING`] at most), and goes back to a bit per slot when more go missing.

/// Most slots missing below the end in the complement form; one more and the set is a
/// bit per slot again.
const MAX_MISSING: usize = 16;

/// Slots missing below the end at which a bit-per-slot set takes the complement form:
/// half of [`MAX_MISSING`], so that a slot going and coming back at the limit does
/// not switch forms each time.
const COMPACT_AT: usize = MAX_MISSING / 2;

/// Fewest words a bit-per-slot set has before it may take the complement form (a
/// small set is smaller as bits).
const MIN_WORDS: usize = 4;

/// A set of `u32` slots.
#[derive(Clone, Debug, Default)]
pub struct SlotSet {
    form: Form,
    count: usize,
}

#[derive(Clone, Debug)]
enum Form {
    /// One bit per slot; `end` is one past the highest slot in the set (0 when empty).
    Bits { words: Vec<u64>, end: u32 },
    /// Every slot below `end` except `missing` (sorted, at most [`MAX_MISSING`]).
    AllBut { end: u32, missing: Vec<u32> },
}

impl Default for Form {
    fn default() -> Self {
        Form::Bits {
            words: Vec::new(),
            end: 0,
        }
    }
}

impl SlotSet {
    /// Adds `slot`; true when it was not there.
    pub fn insert(&mut self, slot: u32) -> bool {
        let added = match &mut self.form {
            Form::Bits { words, end } => {
                let (word, bit) = position(slot);
                if word >= words.len() {
                    words.resize(word + 1, 0);
                }
                match words.get_mut(word) {
                    Some(value) if *value & bit == 0 => {
                        *value |= bit;
                        *end = (*end).max(slot.saturating_add(1));
                        true
                    }
                    _ => false,
                }
            }
            Form::AllBut { end, missing } => {
                if slot < *end {
                    match missing.binary_search(&slot) {
                        Ok(at) => {
                            missing.remove(at);
                            true
                        }
                        Err(_) => false,
                    }
                } else if (slot - *end) as usize <= MAX_MISSING - missing.len() {
                    missing.extend(*end..slot);
                    *end = slot.saturating_add(1);
                    true
                } else {
                    self.back_to_bits();
                    return self.insert(slot);
                }
            }
        };
        if added {
            self.count += 1;
            self.compact();
        }
        added
    }

    /// Removes `slot`; true when it was there.
    pub fn remove(&mut self, slot: u32) -> bool {
        let removed = match &mut self.form {
            Form::Bits { words, .. } => {
                let (word, bit) = position(slot);
                match words.get_mut(word) {
                    Some(value) if *value & bit != 0 => {
                        *value &= !bit;
                        true
                    }
                    _ => false,
                }
            }
            Form::AllBut { end, missing } => {
                if slot >= *end {
                    false
                } else {
                    match missing.binary_search(&slot) {
                        Ok(_) => false,
                        Err(at) => {
                            missing.insert(at, slot);
                            true
                        }
                    }
                }
            }
        };
        if removed {
            self.count -= 1;
            if self.is_empty() {
                *self = SlotSet::default();
            } else if matches!(&self.form, Form::AllBut { missing, .. } if missing.len() > MAX_MISSING)
            {
                self.back_to_bits();
            }
        }
        removed
    }

    pub fn contains(&self, slot: u32) -> bool {
        match &self.form {
            Form::Bits { words, .. } => {
                let (word, bit) = position(slot);
                words.get(word).is_some_and(|value| value & bit != 0)
            }
            Form::AllBut { end, missing } => slot < *end && missing.binary_search(&slot).is_err(),
        }
    }

    /// Number of slots in the set.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A bit-per-slot set holding every slot below its end but [`COMPACT_AT`] at most
    /// takes the complement form.
    fn compact(&mut self) {
        let Form::Bits { words, end } = &self.form else {
            return;
        };
        let absent = *end as usize - self.count;
        if words.len() < MIN_WORDS || absent > COMPACT_AT {
            return;
        }
        let end = *end;
        let missing: Vec<u32> = (0..end).filter(|&slot| !self.contains(slot)).collect();
        self.form = Form::AllBut { end, missing };
    }

    /// The complement form as a bit per slot.
    fn back_to_bits(&mut self) {
        let Form::AllBut { end, missing } = &self.form else {
            return;
        };
        let end = *end;
        let mut words = vec![u64::MAX; (end as usize).div_ceil(64)];
        if let Some(last) = words.last_mut()
            && end % 64 != 0
        {
            *last = (1 << (end % 64)) - 1;
        }
        for &slot in missing {
            let (word, bit) = position(slot);
            if let Some(value) = words.get_mut(word) {
                *value &= !bit;
            }
        }
        self.form = Form::Bits { words, end };
    }
}

#[inline]
fn position(slot: u32) -> (usize, u64) {
    ((slot / 64) as usize, 1 << (slot % 64))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The octets the set holds on the heap.
    fn heap(set: &SlotSet) -> usize {
        match &set.form {
            Form::Bits { words, .. } => words.capacity() * 8,
            Form::AllBut { missing, .. } => missing.capacity() * 4,
        }
    }

    /// A reflector client's set: every slot of 5000 but its own, sent in order.
    #[test]
    fn nearly_every_slot_is_kept_as_the_few_missing() {
        let mut set = SlotSet::default();
        for slot in (0..5000).filter(|&slot| slot != 1234) {
            assert!(set.insert(slot));
        }
        assert_eq!(set.len(), 4999);
        assert!(!set.contains(1234) && set.contains(0) && set.contains(4999));
        assert!(!set.contains(5000));
        assert!(heap(&set) <= 4 * MAX_MISSING, "{} octets", heap(&set));
        // Slots going missing, up to the limit, then one more: bits again.
        for slot in 0..MAX_MISSING as u32 - 1 {
            assert!(set.remove(slot));
        }
        assert!(matches!(set.form, Form::AllBut { .. }));
        assert!(set.remove(4000));
        assert!(matches!(set.form, Form::Bits { .. }));
        assert_eq!(set.len(), 4999 - MAX_MISSING);
        assert!(!set.contains(4000) && set.contains(3999) && !set.contains(1234));
        // And back once half of them returned.
        for slot in (0..MAX_MISSING as u32 - 1).chain([4000]) {
            assert!(set.insert(slot));
            let missing = 4999 + 1 - set.len();
            assert_eq!(
                matches!(set.form, Form::AllBut { .. }),
                missing <= COMPACT_AT,
                "{missing} missing"
            );
        }
        assert!(matches!(set.form, Form::AllBut { .. }));
        assert_eq!(set.len(), 4999);
    }

    #[test]
    fn inserting_far_past_the_end_goes_back_to_bits() {
        let mut set = SlotSet::default();
        for slot in 0..300 {
            set.insert(slot);
        }
        assert!(matches!(set.form, Form::AllBut { .. }));
        assert!(set.insert(310)); // 10 missing: still the complement
        assert!(matches!(set.form, Form::AllBut { .. }));
        assert!(set.insert(1000));
        assert!(matches!(set.form, Form::Bits { .. }));
        assert!(set.contains(310) && set.contains(1000) && !set.contains(305));
        assert_eq!(set.len(), 302);
    }

    /// Random operations against a `BTreeSet` (xorshift, fixed seed).
    #[test]
    fn behaves_as_a_set() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut complements, mut back_to_bits) = (0, 0);
        for round in 0..200 {
            let mut set = SlotSet::default();
            let mut model = BTreeSet::new();
            let range = [70, 300, 700, 5000][round % 4];
            // Mostly inserts at first, so that the complement form is reached.
            for step in 0..4000 {
                let slot = (next() % range) as u32;
                let insert = next() % 100 < if step < 2000 { 95 } else { 50 };
                if insert {
                    assert_eq!(set.insert(slot), model.insert(slot), "insert {slot}");
                } else {
                    let before = matches!(set.form, Form::AllBut { .. });
                    assert_eq!(set.remove(slot), model.remove(&slot), "remove {slot}");
                    back_to_bits += usize::from(before && matches!(set.form, Form::Bits { .. }));
                }
                assert_eq!(set.len(), model.len());
                let was_complement = matches!(set.form, Form::AllBut { .. });
                complements += usize::from(was_complement);
                let probe = (next() % (range + 10)) as u32;
                assert_eq!(
                    set.contains(probe),
                    model.contains(&probe),
                    "contains {probe}"
                );
            }
            for slot in 0..range as u32 + 10 {
                assert_eq!(set.contains(slot), model.contains(&slot));
            }
        }
        // Both forms and the way back were exercised.
        assert!(
            complements > 1000 && back_to_bits >= 5,
            "{complements} {back_to_bits}"
        );
    }

    #[test]
    fn empty_holds_nothing() {
        let mut set = SlotSet::default();
        assert!(set.insert(9) && set.remove(9));
        assert!(set.is_empty() && heap(&set) == 0);
        assert!(!set.remove(9) && !set.contains(9));
    }
}
