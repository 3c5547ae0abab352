//! Placement policies: which free block serves a request.
//!
//! The heap hands a policy its free list and a `fit` function that says whether (and
//! how) a request fits in one block; the policy decides which block to ask about and
//! which answer to take. The policy is a type parameter of [`FreeList`](crate::FreeList),
//! so the choice costs nothing at run time: each heap type is compiled with its own
//! search loop, and the stateless policies are zero-sized.
//!
//! | policy | searches | takes | cost of a search |
//! | --- | --- | --- | --- |
//! | [`FirstFit`] | from the front of the list | the first block that fits | O(free blocks), often O(1): the list is LIFO, so recently freed blocks come first |
//! | [`NextFit`] | from where the last search stopped (the *rover*), wrapping round | the first block that fits | O(free blocks); spreads requests over the list instead of crowding the front |
//! | [`BestFit`] | the whole list, unless it finds an exact fit | the block that leaves the least spare | O(free blocks) every time; the least waste |

use rawheap::tags::{BlockList, BlockRef};

/// How a request fits in one free block: what [`Placement::find`] gets from `fit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    /// Bytes in front of the new block, left behind as a free block (0 unless the
    /// payload is aligned beyond the block's natural alignment).
    pub gap: usize,
    /// Bytes the block has beyond the gap and the request: the waste a best fit
    /// minimises.
    pub spare: usize,
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::FirstFit {}
    impl Sealed for super::NextFit {}
    impl Sealed for super::BestFit {}
}

/// A placement policy for [`FreeList`](crate::FreeList): first, next or best fit.
///
/// The trait is sealed: a policy walks the heap's own free list, and a wrong answer
/// would break memory safety, so new policies are added in this crate, next to these.
pub trait Placement: sealed::Sealed + Default {
    /// Picks the free block a request is served from: a block of `free` for which `fit`
    /// answered `Some`, with that answer. `None` when no block fits.
    ///
    /// # Safety
    ///
    /// The blocks on `free` are live free blocks, and `remembered()` is one of them or
    /// `None`.
    unsafe fn find(
        &mut self,
        free: &BlockList,
        fit: impl FnMut(BlockRef) -> Option<Fit>,
    ) -> Option<(BlockRef, Fit)>;

    /// Told when `gone` leaves the free list; `successor` is the block that now stands
    /// where it stood (the block that replaced it, or the one after it).
    #[inline]
    fn left(&mut self, gone: BlockRef, successor: Option<BlockRef>) {
        let _ = (gone, successor);
    }

    /// The free block the policy remembers between requests (next fit's rover), if any.
    #[inline]
    fn remembered(&self) -> Option<BlockRef> {
        None
    }
}

/// First fit: the first block on the list that fits.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirstFit;

/// Next fit: the first block that fits, searching on from where the last search
/// stopped and wrapping round to the front.
#[derive(Clone, Copy, Debug, Default)]
pub struct NextFit {
    /// The free block the next search starts at, or `None` for the front of the list.
    /// Always a block on the free list: when it leaves, the rover moves to its successor.
    rover: Option<BlockRef>,
}

/// Best fit: the block that leaves the least spare; an exact fit ends the search.
#[derive(Clone, Copy, Debug, Default)]
pub struct BestFit;

// ANCHOR: first_fit
impl Placement for FirstFit {
    #[inline]
    unsafe fn find(
        &mut self,
        free: &BlockList,
        mut fit: impl FnMut(BlockRef) -> Option<Fit>,
    ) -> Option<(BlockRef, Fit)> {
        // SAFETY: the caller's promise: the list's blocks are live free blocks, and the
        // list does not change during the search.
        let mut blocks = unsafe { free.iter() };
        blocks.find_map(|block| Some((block, fit(block)?)))
    }
}
// ANCHOR_END: first_fit

// ANCHOR: next_fit
impl Placement for NextFit {
    #[inline]
    unsafe fn find(
        &mut self,
        free: &BlockList,
        mut fit: impl FnMut(BlockRef) -> Option<Fit>,
    ) -> Option<(BlockRef, Fit)> {
        let start = self.rover.or(free.first())?;
        let mut block = start;
        loop {
            if let Some(this) = fit(block) {
                // The heap will cut this block; `left` then moves the rover to what
                // takes its place.
                self.rover = Some(block);
                return Some((block, this));
            }
            // SAFETY: the caller's promise: the list's blocks are live free blocks and
            // the rover is one of them; the list does not change during the search.
            block = match unsafe { block.next_free() } {
                Some(next) => next,
                None => free.first()?,
            };
            if block == start {
                return None;
            }
        }
    }

    #[inline]
    fn left(&mut self, gone: BlockRef, successor: Option<BlockRef>) {
        if self.rover == Some(gone) {
            self.rover = successor;
        }
    }

    #[inline]
    fn remembered(&self) -> Option<BlockRef> {
        self.rover
    }
}
// ANCHOR_END: next_fit

// ANCHOR: best_fit
impl Placement for BestFit {
    #[inline]
    unsafe fn find(
        &mut self,
        free: &BlockList,
        mut fit: impl FnMut(BlockRef) -> Option<Fit>,
    ) -> Option<(BlockRef, Fit)> {
        let mut best: Option<(BlockRef, Fit)> = None;
        // SAFETY: the caller's promise: the list's blocks are live free blocks, and the
        // list does not change during the search.
        for block in unsafe { free.iter() } {
            let Some(this) = fit(block) else { continue };
            if best.is_none_or(|(_, so_far)| this.spare < so_far.spare) {
                best = Some((block, this));
                if this.spare == 0 {
                    break;
                }
            }
        }
        best
    }
}
// ANCHOR_END: best_fit
