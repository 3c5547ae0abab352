//! The blocks of the cover as a forest of binary trees, visited in address order.

use crate::Buddy;

/// What a block of the tree is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Cut into two halves, its *buddies*, which are blocks of the next order down.
    Split,
    /// A leaf on the free list of its order.
    Free,
    /// A leaf handed out: a live block.
    Used,
}

/// One block of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// Its first byte, a multiple of its size.
    pub(crate) addr: usize,
    /// Its order: it is `MIN_BLOCK << order` bytes long.
    pub(crate) order: u32,
    /// Split, free or used.
    pub(crate) kind: Kind,
}

/// The blocks of every root, in pre-order: a split block comes before its halves, and
/// the leaves come in address order. A block is split when a bit of its halves is set,
/// else free when its own bit is clear, else used. Reads only the bitmap, so it ends on
/// a broken heap too: each step either goes one order down or moves past a leaf.
pub(crate) struct Nodes<'h, const MIN_BLOCK: usize, const ORDERS: usize> {
    heap: &'h Buddy<MIN_BLOCK, ORDERS>,
    /// The start of the next block to visit.
    at: usize,
    /// The order of the next block to visit (meaningless when `at == root_end`).
    order: u32,
    /// The end of the root being visited; when `at` reaches it, the next root begins.
    root_end: usize,
}

impl<'h, const MIN_BLOCK: usize, const ORDERS: usize> Nodes<'h, MIN_BLOCK, ORDERS> {
    /// The blocks of `heap`, from its first root.
    pub(crate) fn of(heap: &'h Buddy<MIN_BLOCK, ORDERS>) -> Self {
        let lo = heap.cover.lo;
        Nodes {
            heap,
            at: lo,
            order: 0,
            root_end: lo,
        }
    }
}

impl<const MIN_BLOCK: usize, const ORDERS: usize> Iterator for Nodes<'_, MIN_BLOCK, ORDERS> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        let heap = self.heap;
        if self.at == self.root_end {
            if self.at >= heap.cover.hi {
                return None;
            }
            self.order = Buddy::<MIN_BLOCK, ORDERS>::SHAPE.root_order(self.at, heap.cover.hi);
            self.root_end = self.at + Buddy::<MIN_BLOCK, ORDERS>::size_of(self.order);
        }
        let (addr, order) = (self.at, self.order);
        // SAFETY: `addr` starts a block of order `order` inside a root of the cover, so
        // its slot has a bit, and so have its halves' (orders below are in the bitmap).
        let (split, free) = unsafe {
            (
                order > 0 && heap.taken.pair(order - 1, addr).any(),
                !heap.taken.get(order, addr),
            )
        };
        let kind = if split {
            self.order -= 1;
            Kind::Split
        } else {
            self.at += Buddy::<MIN_BLOCK, ORDERS>::size_of(order);
            if self.at < self.root_end {
                // Inside a root, the next block is the right half of the smallest
                // block whose left half just ended: its order is `at`'s alignment.
                self.order = self.at.trailing_zeros() - Buddy::<MIN_BLOCK, ORDERS>::SHIFT;
            }
            if free { Kind::Free } else { Kind::Used }
        };
        Some(Node { addr, order, kind })
    }
}
