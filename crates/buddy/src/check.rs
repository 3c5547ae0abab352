//! `check()`'s pieces: the trees read from the bitmap, then each order's list and bits
//! held against them.

use rawheap::{HeapError, bits};

use crate::Buddy;
use crate::list::links_of;
use crate::tree::Kind;

/// What the walk down the trees counted, per order.
pub(crate) struct Tree<const ORDERS: usize> {
    /// Free leaves of each order.
    free: [usize; ORDERS],
    /// Bits each order should have set: its taken nodes (split or used) and the
    /// sentinels of its roots.
    set: [usize; ORDERS],
}

impl<const MIN_BLOCK: usize, const ORDERS: usize> Buddy<MIN_BLOCK, ORDERS> {
    /// Walks the trees checking invariant 1 on the way: a split node is taken. Counts
    /// the free leaves and the bits that should be set, per order.
    pub(crate) fn check_tree(&self) -> Result<Tree<ORDERS>, HeapError> {
        let mut tree = Tree {
            free: [0; ORDERS],
            set: [0; ORDERS],
        };
        for node in self.nodes() {
            let k = node.order as usize;
            match node.kind {
                Kind::Split => {
                    // SAFETY: `nodes` yields nodes of the area, whose slots have bits.
                    if !unsafe { self.taken.get(node.order, node.addr) } {
                        return Err(HeapError::new("a split block is taken").at(node.addr));
                    }
                    tree.set[k] += 1;
                }
                Kind::Used => tree.set[k] += 1,
                Kind::Free => tree.free[k] += 1,
            }
        }
        for (at, k) in Self::SHAPE.roots(self.cover.lo, self.cover.hi) {
            if self.has_sentinel(at, k) {
                tree.set[k as usize] += 1;
            }
        }
        Ok(tree)
    }

    /// Checks order `k`: its list holds exactly its free leaves, with sound links; its
    /// bits are set on its taken nodes and its roots' sentinels only; `nonempty` knows
    /// it.
    pub(crate) fn check_order(&self, k: u32, tree: &Tree<ORDERS>) -> Result<(), HeapError> {
        let listed = self.check_list(k, tree.free[k as usize])?;
        if listed != tree.free[k as usize] {
            return Err(HeapError::new(
                "each list holds as many blocks as walk shows free blocks of its order",
            ));
        }
        if bits::is_set(self.nonempty, k) != (listed > 0) {
            return Err(HeapError::new(
                "bit k of nonempty is set iff list k has a block",
            ));
        }
        if k >= self.cover.orders {
            return Ok(());
        }
        let (lo, hi) = (self.cover.lo, self.cover.hi);
        // SAFETY: the bitmap was laid out for `[lo, hi)`.
        if unsafe { self.taken.count(k, lo, hi) } != tree.set[k as usize] {
            return Err(HeapError::new(
                "bits are set on taken blocks and on the sentinels of roots only",
            ));
        }
        Ok(())
    }

    /// Walks list `k`, checking that each block on it is a free node of order `k` and
    /// that its links agree; returns how many it holds. Stops past `most + 1` blocks,
    /// so a list that loops ends. Reads a block's links only after placing it.
    fn check_list(&self, k: u32, most: usize) -> Result<usize, HeapError> {
        let mut listed = 0;
        let mut before = None;
        let mut cursor = self.lists[k as usize].first();
        while let Some(block) = cursor {
            let addr = block.addr().get();
            let at = |invariant| HeapError::new(invariant).at(addr);
            if k >= self.cover.orders
                || !self.covers(addr, k)
                || !rawheap::align::is_aligned(addr, Self::size_of(k))
            {
                return Err(at("a listed block is a block of its list's order"));
            }
            // SAFETY: `addr` starts a block of order `k` in the area: it has a bit, and
            // so has its buddy.
            let pair = unsafe { self.taken.pair(k, addr) };
            if pair.own() {
                return Err(at("a listed block has its taken bit clear"));
            }
            // A free node's buddy is taken (or carries a sentinel), except for a root of
            // the largest order beside another; a block that is no node has a clear
            // buddy bit too, so this also finds a listed block that is no node.
            if !pair.buddy() && k + 1 < ORDERS as u32 {
                return Err(at("no two free buddies are left unmerged"));
            }
            // SAFETY: a block in the area has room for its links, which `push` wrote
            // when it was listed.
            let (next, prev) = unsafe { links_of(block) };
            if prev != before {
                return Err(at(
                    "list links agree: a listed block links back to the one before it",
                ));
            }
            listed += 1;
            if listed > most {
                return Err(at(
                    "a list holds only the free blocks of its order, each once",
                ));
            }
            before = Some(block);
            cursor = next;
        }
        Ok(listed)
    }
}
