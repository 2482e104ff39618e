//! Storage for entries, addressed by `u32` so that slots and the overflow refer to an entry
//! without cloning its key.

use crate::ENTRIES_MAX;

/// Where an entry is filed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Deadline at or before the cursor, waiting to be returned by a poll.
    Due,
    Level {
        level: u8,
        slot: u8,
    },
    Overflow,
}

#[derive(Debug)]
pub(crate) struct Node<K> {
    pub key: K,
    pub deadline_ms: u64,
    pub place: Place,
}

#[derive(Debug)]
pub(crate) struct Arena<K> {
    nodes: Vec<Option<Node<K>>>,
    /// Each node's index in its slot's heap; kept apart from `nodes` so that a slot can update
    /// it while the levels are borrowed.
    pub positions: Vec<u32>,
    free: Vec<u32>,
}

impl<K> Arena<K> {
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            positions: Vec::new(),
            free: Vec::new(),
        }
    }

    pub fn alloc(&mut self, node: Node<K>) -> u32 {
        if let Some(id) = self.free.pop() {
            let vacant = &mut self.nodes[id as usize];
            debug_assert!(vacant.is_none(), "free list names a live node");
            *vacant = Some(node);
            return id;
        }
        assert!(
            self.nodes.len() < ENTRIES_MAX,
            "timing wheel full: {} entries (ENTRIES_MAX)",
            self.nodes.len()
        );
        let id = self.nodes.len() as u32;
        self.nodes.push(Some(node));
        self.positions.push(0);
        id
    }

    pub fn release(&mut self, id: u32) -> Node<K> {
        let node = self.nodes[id as usize]
            .take()
            .expect("released a vacant node");
        self.free.push(id);
        node
    }

    pub fn get(&self, id: u32) -> &Node<K> {
        self.nodes[id as usize]
            .as_ref()
            .expect("read a vacant node")
    }

    pub fn get_mut(&mut self, id: u32) -> &mut Node<K> {
        self.nodes[id as usize]
            .as_mut()
            .expect("wrote a vacant node")
    }
}
