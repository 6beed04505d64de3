//! A generational slab: participants live in one `Vec` and are named by a
//! small copyable [`PKey`], so per-packet lookups are an index, not a hash,
//! and a stale key (participant gone, slot reused) never aliases a new one.

/// Key of one participant on this worker. Stale keys resolve to `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PKey {
    idx: u32,
    generation: u32,
}

#[derive(Debug)]
struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// The slab. Removal frees the slot for reuse under a new generation.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Inserts the value built by `make` (which learns its own key).
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(PKey) -> T) -> PKey {
        self.len += 1;
        if let Some(idx) = self.free.pop() {
            let slot = &mut self.slots[idx as usize];
            slot.generation = slot.generation.wrapping_add(1);
            let key = PKey {
                idx,
                generation: slot.generation,
            };
            slot.value = Some(make(key));
            key
        } else {
            let idx = self.slots.len() as u32;
            let key = PKey { idx, generation: 0 };
            self.slots.push(Slot {
                generation: 0,
                value: Some(make(key)),
            });
            key
        }
    }

    pub(crate) fn get(&self, key: PKey) -> Option<&T> {
        let slot = self.slots.get(key.idx as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, key: PKey) -> Option<&mut T> {
        let slot = self.slots.get_mut(key.idx as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        slot.value.as_mut()
    }

    pub(crate) fn remove(&mut self, key: PKey) -> Option<T> {
        let slot = self.slots.get_mut(key.idx as usize)?;
        if slot.generation != key.generation {
            return None;
        }
        let value = slot.value.take()?;
        self.free.push(key.idx);
        self.len -= 1;
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Keys of every live value, in slot order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = PKey> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|_| PKey {
                idx: i as u32,
                generation: s.generation,
            })
        })
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().filter_map(|s| s.value.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_do_not_alias_reused_slots() {
        let mut slab = Slab::default();
        let a = slab.insert_with(|_| "a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert_with(|_| "b");
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
        assert_eq!(slab.keys().collect::<Vec<_>>(), vec![b]);
    }
}
