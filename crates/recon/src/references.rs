//! Order references, each interned once as an index from 0. The join spends most of its time
//! waiting for the table's memory (a million references do not fit any cache, and payments and
//! ERP records name them in no order the table knows), so references are looked up a group at
//! a time: the group's slots are loaded together, their cache misses overlapping, before any
//! is compared.

use std::hash::BuildHasher;

use crate::arena::{Arena, NO};

/// References whose first slots are loaded together.
const GROUP: usize = 16;
const EMPTY: u64 = 0;
const MIN_SLOTS: usize = 1024;

#[derive(Default)]
pub struct References {
    text: Arena,
    /// Open addressing, linear probing: each slot empty, or the reference's hash's upper half
    /// (which also places it, so that growing never reads the references again) and its
    /// index + 1.
    slots: Vec<u64>,
    hasher: foldhash::fast::FixedState,
    /// The last reference interned: a channel export's rows of one order come together.
    last: Option<u32>,
}

impl References {
    pub fn len(&self) -> usize {
        self.text.len()
    }

    pub fn get(&self, i: u32) -> &str {
        self.text.get(i)
    }

    /// Appends each reference's index to `out` (a new reference gets the next one; an empty
    /// one is [`NO`]).
    pub fn intern_all(&mut self, references: &[&str], out: &mut Vec<u32>) {
        for group in references.chunks(GROUP) {
            self.reserve(group.len());
            let mask = self.slots.len() - 1;
            let mut tags = [0u32; GROUP];
            let mut loaded = 0;
            for (tag, r) in tags.iter_mut().zip(group) {
                *tag = (self.hasher.hash_one(r) >> 32) as u32;
                // Independent loads: the processor has them all in flight at once.
                loaded ^= self.slots[place(*tag) & mask];
            }
            std::hint::black_box(loaded);
            for (&tag, r) in tags.iter().zip(group) {
                out.push(self.intern(r, tag));
            }
        }
    }

    fn intern(&mut self, reference: &str, tag: u32) -> u32 {
        if reference.is_empty() {
            return NO;
        }
        if let Some(i) = self.last.filter(|&i| self.text.get(i) == reference) {
            return i;
        }
        let mask = self.slots.len() - 1;
        let mut at = place(tag) & mask;
        let i = loop {
            match self.slots[at] {
                EMPTY => {
                    let i = self.text.push(reference);
                    self.slots[at] = (tag as u64) << 32 | (i as u64 + 1);
                    break i;
                }
                s if (s >> 32) as u32 == tag && self.text.get((s as u32) - 1) == reference => break (s as u32) - 1,
                _ => at = (at + 1) & mask,
            }
        };
        self.last = Some(i);
        i
    }

    /// Room for `more` references at most three quarters full.
    fn reserve(&mut self, more: usize) {
        let needed = (self.len() + more) * 4 / 3 + 1;
        if needed <= self.slots.len() {
            return;
        }
        let size = needed.next_power_of_two().max(MIN_SLOTS).max(self.slots.len() * 2);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        let mask = size - 1;
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            let mut at = place((s >> 32) as u32) & mask;
            while self.slots[at] != EMPTY {
                at = (at + 1) & mask;
            }
            self.slots[at] = s;
        }
    }
}

/// A slot from the stored half of the hash, spread over every bit.
fn place(tag: u32) -> usize {
    (tag as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) as usize >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reference_once_across_growth() {
        let mut refs = References::default();
        let names: Vec<String> = (0..5000).map(|i| format!("#{}", i % 3000)).collect();
        let mut with_gaps: Vec<&str> = names.iter().map(String::as_str).collect();
        with_gaps.insert(7, "");
        let mut out = Vec::new();
        refs.intern_all(&with_gaps, &mut out);
        assert_eq!(refs.len(), 3000);
        assert_eq!(out[7], NO);
        out.remove(7);
        for (name, &i) in names.iter().zip(&out) {
            assert_eq!(refs.get(i), name);
        }
        // Interning again finds the same indexes.
        let mut again = Vec::new();
        refs.intern_all(&names.iter().map(String::as_str).collect::<Vec<_>>(), &mut again);
        assert_eq!(again, out);
    }
}
