//! `check()`'s pieces: the trees read from the bitmaps, then each order's list and bits
//! held against them.

use rawheap::{HeapError, bits};

use crate::Buddy;
use crate::list::links_of;
use crate::tree::{Kind, Node};

/// What the walk down the trees counted, per order.
pub(crate) struct Tree<const ORDERS: usize> {
    /// Free leaves of each order.
    free: [usize; ORDERS],
    /// Split nodes of each order.
    split: [usize; ORDERS],
}

impl<const MIN_BLOCK: usize, const ORDERS: usize> Buddy<MIN_BLOCK, ORDERS> {
    /// Walks the trees checking invariants 1 and 3 on the way: no node is free and
    /// split, and no two free buddies sit side by side under their parent.
    pub(crate) fn check_tree(&self) -> Result<Tree<ORDERS>, HeapError> {
        let mut tree = Tree {
            free: [0; ORDERS],
            split: [0; ORDERS],
        };
        let mut previous: Option<Node> = None;
        for node in self.nodes() {
            let at = |invariant| HeapError::new(invariant).at(node.addr);
            let k = node.order as usize;
            match node.kind {
                Kind::Split => {
                    // SAFETY: `nodes` yields nodes of the area, whose slots have bits.
                    if unsafe { self.free.get(node.order, node.addr) } {
                        return Err(at("a split block is not free"));
                    }
                    tree.split[k] += 1;
                }
                Kind::Free => {
                    let buddy = node.addr ^ Self::size_of(node.order);
                    let unmerged = buddy < node.addr
                        && node.order + 1 < ORDERS as u32
                        && self.covers(buddy, node.order)
                        && previous.is_some_and(|left| {
                            left.kind == Kind::Free
                                && left.addr == buddy
                                && left.order == node.order
                        });
                    if unmerged {
                        return Err(at("no two free buddies are left unmerged"));
                    }
                    tree.free[k] += 1;
                }
                Kind::Used => {}
            }
            if node.kind != Kind::Split {
                previous = Some(node);
            }
        }
        Ok(tree)
    }

    /// Checks order `k`: its list holds exactly its free leaves, with sound links; its
    /// bits are set on its free leaves and split nodes only; `nonempty` knows it.
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
        // SAFETY: the bitmaps were laid out for `[lo, hi)`.
        let (free_bits, split_bits) =
            unsafe { (self.free.count(k, lo, hi), self.split.count(k, lo, hi)) };
        if free_bits != tree.free[k as usize] {
            return Err(HeapError::new("free bits are set on free blocks only"));
        }
        if k > 0 && split_bits != tree.split[k as usize] {
            return Err(HeapError::new("split bits are set on split blocks only"));
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
            // SAFETY: `addr` starts a block of order `k` in the area: it has a bit.
            if !unsafe { self.free.get(k, addr) } {
                return Err(at("a listed block has its free bit set"));
            }
            // SAFETY: a block in the area has room for its links, which `push` wrote
            // when its free bit was set.
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
