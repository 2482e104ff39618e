//! A slot: the entries filed under one slot of one level.
//!
//! A slot of a higher level spans many milliseconds, and [`crate::Wheel::next_deadline`] must be
//! exact without cascading it, so a slot is an indexed binary min-heap on the deadline. In a
//! level-0 slot every entry has the same deadline and the heap never reorders.

/// One entry as filed in a slot: the deadline is copied here so that heap comparisons stay in
/// the slot's own memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item {
    pub deadline_ms: u64,
    pub node: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Slot {
    heap: Vec<Item>,
}

/// Where each node sits in its slot's heap, indexed by node; the slot keeps it current.
pub(crate) type Positions = [u32];

impl Slot {
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    pub fn earliest_ms(&self) -> Option<u64> {
        self.heap.first().map(|item| item.deadline_ms)
    }

    pub fn push(&mut self, item: Item, positions: &mut Positions) {
        let at = self.heap.len();
        self.heap.push(item);
        self.sift_up(at, positions);
    }

    pub fn remove(&mut self, node: u32, positions: &mut Positions) -> Item {
        let at = positions[node as usize] as usize;
        debug_assert_eq!(self.heap[at].node, node, "position index out of date");
        let item = self.heap.swap_remove(at);
        if at < self.heap.len() {
            self.sift_down(at, positions);
            self.sift_up(at, positions);
        }
        item
    }

    /// Moves every item into `into` (which must be empty), leaving the slot empty. The caller
    /// re-files the items, so their positions need no update here.
    pub fn take_into(&mut self, into: &mut Vec<Item>) {
        debug_assert!(into.is_empty());
        std::mem::swap(&mut self.heap, into);
    }

    fn sift_up(&mut self, mut at: usize, positions: &mut Positions) {
        let item = self.heap[at];
        while at > 0 {
            let parent = (at - 1) / 2;
            if self.heap[parent].deadline_ms <= item.deadline_ms {
                break;
            }
            self.place(at, self.heap[parent], positions);
            at = parent;
        }
        self.place(at, item, positions);
    }

    fn sift_down(&mut self, mut at: usize, positions: &mut Positions) {
        let item = self.heap[at];
        let len = self.heap.len();
        loop {
            let left = 2 * at + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].deadline_ms < self.heap[left].deadline_ms
            {
                right
            } else {
                left
            };
            if item.deadline_ms <= self.heap[child].deadline_ms {
                break;
            }
            self.place(at, self.heap[child], positions);
            at = child;
        }
        self.place(at, item, positions);
    }

    fn place(&mut self, at: usize, item: Item, positions: &mut Positions) {
        self.heap[at] = item;
        positions[item.node as usize] = at as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_in_order(slot: &mut Slot, positions: &mut Positions) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(earliest) = slot.earliest_ms() {
            let node = slot.heap[0].node;
            let item = slot.remove(node, positions);
            assert_eq!(item.deadline_ms, earliest);
            out.push(earliest);
        }
        out
    }

    #[test]
    fn earliest_is_the_minimum_after_pushes_and_removals_anywhere() {
        let deadlines = [50, 10, 40, 10, 90, 20, 70, 30, 60, 80];
        let mut positions = vec![0; deadlines.len()];
        let mut slot = Slot::default();
        for (node, &deadline_ms) in deadlines.iter().enumerate() {
            slot.push(
                Item {
                    deadline_ms,
                    node: node as u32,
                },
                &mut positions,
            );
        }
        assert_eq!(slot.remove(4, &mut positions).deadline_ms, 90);
        assert_eq!(slot.remove(1, &mut positions).deadline_ms, 10);
        assert_eq!(slot.remove(2, &mut positions).deadline_ms, 40);
        assert_eq!(
            drain_in_order(&mut slot, &mut positions),
            [10, 20, 30, 50, 60, 70, 80]
        );
        assert!(slot.is_empty());
    }
}
