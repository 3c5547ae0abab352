//! # segregated-fit: one free list per size class, found by a bit scan
//!
//! A single free list makes every request a search: best fit looks at every free block.
//! This heap keeps the free blocks on [`BINS`] lists instead, one per size class (a
//! *bin*), as dlmalloc and CS:APP's *segregated fits* do, and a bitmap with one bit per
//! bin that is set when the bin is non-empty. A request computes its bin from its size,
//! and the first bin at or above it that holds a block is one bit scan away: the search
//! becomes a lookup.
//!
//! - **Bins.** Below [`EXACT_LIMIT`] (1 KiB) each block size has its own bin, so any
//!   block on it fits exactly. Above, each power of two is split into [`SUB_BINS`] bins
//!   of equal width. See [`bin_of`] and the drawing in the chapter.
//! - **allocate** looks in the request's own bin for the block that fits best (on an
//!   exact bin the first one does), and if none fits, takes the smallest block of the
//!   first non-empty bin above, which the bitmap names. Both together give the block a
//!   best-fit search of one list would give, while looking at a single bin. The block
//!   is cut; a rest of at least [`MIN_BLOCK`] bytes is filed on the bin of its own size.
//! - **The top.** The free block that ends the region (dlmalloc's *top*, the
//!   wilderness) is on no bin: it serves a request only when no bin can, so it stays
//!   whole as long as possible, and cutting from it or freeing into it costs no list
//!   or bitmap work.
//! - **deallocate** merges the block at once with its free neighbours, found through
//!   boundary tags, and files the merged block on the bin of its size (or makes it the
//!   top when it ends the region).
//! - **resize_in_place** shrinks by freeing the tail and grows into a free block right
//!   after the block; a block at the heap's end grows into the top.
//!
//! ## Block layout
//!
//! The block format is [`rawheap::tags`]' (free-list's): a one-word header, a footer on
//! free blocks only, and a free block's payload holding the links of its bin's list.
//!
//! ```text
//!  used block                       free block
//!  ┌──────────────────────────┐     ┌──────────────────────────┐
//!  │ size │ PREV_USED │ USED=1│     │ size │ PREV_USED=1│USED=0│  header
//!  ├──────────────────────────┤ <── ├──────────────────────────┤
//!  │                          │ ptr │ next free in its bin ───────> a block of the same bin
//!  │ payload (size - 8 bytes, │     │ prev free in its bin ───────> (or none)
//!  │ all usable)              │     ├──────────────────────────┤
//!  │                          │     │ size                     │  footer
//!  └──────────────────────────┘     └──────────────────────────┘
//!
//!  the heap's own table, outside the region:
//!   nonempty bitmap   0 0 1 0 1 0 … 1 …
//!   bins   [2] 32 B  ──> F ──> B           (exact bin: every block here is 32 bytes)
//!          [4] 64 B  ──> D
//!          …
//!          [69] 2560..3071 B ──> E ──> A   (logarithmic bin: best fit walks it)
//!   top ──> the last block of the region, when it is free
//! ```
//!
//! ## Invariants (checked by [`RawHeap::check`])
//!
//! 1. The blocks tile the span from the first header to the epilogue; each is placed on
//!    the granule grid and at least `MIN_BLOCK` long.
//! 2. `PREV_USED` of every block (and of the epilogue) tells whether the block before is
//!    used; every free block's footer equals its size.
//! 3. No two free blocks are neighbours (immediate coalescing).
//! 4. Bin `b` holds exactly the free blocks but the top whose size maps to `b`, each
//!    once, and its links agree: the block a link leads to links back.
//! 5. Bit `b` of the bitmap is set iff bin `b` is non-empty.
//! 6. The top is the last block of the span when that block is free, and `None`
//!    otherwise.
//!
//! ## Cost of each operation
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | one bit scan per bitmap word (two on 64-bit targets), then O(1) on an exact bin, O(blocks in the bin) on a logarithmic one; splitting is O(1). With an alignment beyond `GRANULE`, O(free blocks) in the worst case. |
//! | `deallocate` | O(1): two tags read, at most two blocks unlinked, one filed |
//! | `resize_in_place` | O(1) |
//! | `usable_size` | O(1): the header |
//! | `stats`, `walk` | O(blocks) |
//! | `check` | O(blocks × blocks in a bin) |
//!
//! ## Example
//!
//! ```
//! use core::alloc::Layout;
//! use rawheap::{Arena, RawHeap};
//! use segregated_fit::SegregatedFit;
//!
//! let mut heap = Arena::<SegregatedFit>::new(4096);
//! let small = Layout::new::<[u64; 4]>();
//! let big = Layout::new::<[u64; 16]>();
//! let a = heap.allocate(big)?;
//! let _b = heap.allocate(small)?;
//! let c = heap.allocate(small)?;
//! let _d = heap.allocate(small)?;
//! // SAFETY: `a` and `c` came from this heap with these layouts and are freed once.
//! unsafe {
//!     heap.deallocate(a, big);
//!     heap.deallocate(c, small);
//! }
//! // `c`'s hole is on the exact bin of its size: the bitmap leads straight to it.
//! assert_eq!(heap.allocate(small)?, c);
//! heap.check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]

mod bins;

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::tags::{self, BlockRef, Cut, FreeLists, Grow, HEADER, Merge, Span};
use rawheap::{
    AllocError, Block, Capabilities, HeapError, RawHeap, Requested, Reuse, Stats, check_walk,
};

pub use bins::{BINS, EXACT_LIMIT, SUB_BINS, bin_of, smallest_in};
use bins::{Bins, EXACT_BINS};
pub use rawheap::tags::{GRANULE, MIN_BLOCK};

/// A segregated-fit heap: free blocks on one list per size class, a bitmap of the
/// non-empty ones, best fit within a class. See the [crate documentation](crate).
///
/// The fields every operation reads come first (`repr(C)`), so that they share a cache
/// line or two; the list heads, a kilobyte, come last.
#[repr(C)]
pub struct SegregatedFit {
    /// The last block of the span when it is free (dlmalloc's *top*), or `None` when
    /// the last block is used. It is on no bin, and serves a request only when no bin
    /// can: the one free block that can grow as other blocks merge into it is kept
    /// whole as long as possible.
    top: Option<BlockRef>,
    /// Requested bytes of the live blocks, and the furthest end of a block cut from
    /// the top: all that `stats` cannot read off the blocks (see [`Requested`]).
    requested: Requested,
    /// The region as handed to `new`; every block pointer is derived from it.
    region: NonNull<[u8]>,
    /// The span of blocks inside the region and its first block, or `None` when the
    /// region is too small for one block (then every request is refused).
    blocks: Option<(Span, BlockRef)>,
    /// Every free block but the top, on the bin of its size, each once; the bitmap
    /// marks exactly the non-empty bins.
    bins: Bins,
}

// SAFETY: the heap is the only user of its region (the promise made to `new`), and all
// its pointers point into it: moving the heap to another thread moves everything.
unsafe impl Send for SegregatedFit {}

/// Where a free block is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Home {
    /// On the list of this bin.
    Bin(usize),
    /// It is the top.
    Top,
}

impl core::fmt::Debug for SegregatedFit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SegregatedFit")
            .field("region_len", &self.region.len())
            .field("requested", &self.requested)
            .finish_non_exhaustive()
    }
}

impl SegregatedFit {
    // ANCHOR: best_in_bin
    /// The block of `bin` that fits a block of `need` bytes with the least to spare, if
    /// any. Every block of an exact bin has the bin's one size, so there the first block
    /// is it. On a logarithmic bin best fit walks the list, and a block of `unbeatable`
    /// bytes, the least a block of the bin can spare, ends the walk at once.
    ///
    /// # Safety
    ///
    /// The bins hold live free blocks (invariant 4); no block of `bin` is smaller than
    /// `unbeatable`, which is at least `need`, and if `bin` is exact its size is at least
    /// `need`.
    #[inline(always)]
    unsafe fn best_in_bin(&self, bin: usize, need: usize, unbeatable: usize) -> Option<BlockRef> {
        let list = self.bins.list(bin);
        if bin < EXACT_BINS {
            return list.first();
        }
        let mut best: Option<(BlockRef, usize)> = None;
        // SAFETY: the caller's promise; the list does not change during the walk.
        for block in unsafe { list.iter() } {
            // SAFETY: as above: a listed block is a live free block.
            let size = unsafe { block.size() };
            if size == unbeatable {
                return Some(block);
            }
            if size >= need && best.is_none_or(|(_, so_far)| size < so_far) {
                best = Some((block, size));
            }
        }
        best.map(|(block, _)| block)
    }
    // ANCHOR_END: best_in_bin

    // ANCHOR: find_fit
    /// Serves a request of `size` bytes with a block of `need` bytes, whose payload is
    /// aligned to `GRANULE` like every payload: the best fit in the request's own bin, or
    /// else the smallest block of the first non-empty bin above, or else the front of
    /// the top. `None` when none is large enough.
    #[inline(always)]
    fn serve_fit(&mut self, need: usize, size: usize) -> Option<NonNull<u8>> {
        let bin = bin_of(need);
        // SAFETY: the bins hold exactly the live free blocks but the top (invariant 4).
        // The exact bin of `need` holds blocks of `need` bytes only; a logarithmic bin
        // may hold smaller ones, which the walk skips.
        unsafe {
            let own = if bin < EXACT_BINS {
                // Every block here is `need` bytes: the first is a perfect fit.
                if let Some(block) = self.bins.pop_front(bin) {
                    return Some(self.take_whole(block, need, size));
                }
                None
            } else {
                self.best_in_bin(bin, need, need)
            };
            // An empty bin ends the walk at its head: asking the bitmap first would cost
            // more than it saves.
            let (block, bin) = match own {
                Some(block) => (block, bin),
                None => match self.bins.first_nonempty_from(bin + 1) {
                    // Every block of a higher bin is larger than any block `need` maps
                    // to, and the bitmap says that this one holds a block.
                    Some(above) => (self.best_in_bin(above, need, smallest_in(above))?, above),
                    None => return self.take_from_top(need, size),
                },
            };
            Some(self.take_from_bin(block, bin, need, size))
        }
    }
    // ANCHOR_END: find_fit

    /// Serves a request of `size` bytes with a block of `need` bytes whose payload is
    /// aligned to `align > GRANULE`: the block found by [`find_aligned_fit`], split
    /// around the aligned spot. Kept out of `allocate`'s common path, whose registers
    /// and stack frame it would otherwise weigh down.
    ///
    /// [`find_aligned_fit`]: Self::find_aligned_fit
    #[inline(never)]
    fn serve_aligned(&mut self, need: usize, align: usize, size: usize) -> Option<NonNull<u8>> {
        let (block, home, gap) = self.find_aligned_fit(need, align)?;
        // SAFETY: the block was found at `home` with this gap and need.
        Some(unsafe { self.split(block, home, gap, need, size) })
    }

    /// The free block, where it is kept and the gap in front of the new block that fits
    /// a block of `need` bytes whose payload is aligned to `align > GRANULE`: the least
    /// spare in the first bin, from the request's up, that has a fit, or else the top.
    /// Alignment shifts where a block starts, so a block's bin no longer says whether
    /// it fits: every block is asked.
    fn find_aligned_fit(&self, need: usize, align: usize) -> Option<(BlockRef, Home, usize)> {
        let mut from = bin_of(need);
        while let Some(bin) = self.bins.first_nonempty_from(from) {
            let mut best: Option<(BlockRef, usize, usize)> = None;
            // SAFETY: the bins hold exactly the live free blocks (invariant 4).
            for block in unsafe { self.bins.list(bin).iter() } {
                // SAFETY: as above.
                let size = unsafe { block.size() };
                let Some(gap) = tags::fit_gap(block.addr(), size, need, align) else {
                    continue;
                };
                let spare = size - gap - need;
                if best.is_none_or(|(_, _, so_far)| spare < so_far) {
                    best = Some((block, gap, spare));
                }
            }
            if let Some((block, gap, _)) = best {
                return Some((block, Home::Bin(bin), gap));
            }
            from = bin + 1;
        }
        let top = self.top?;
        // SAFETY: the top is a live free block (invariant 6).
        let gap = tags::fit_gap(top.addr(), unsafe { top.size() }, need, align)?;
        Some((top, Home::Top, gap))
    }

    // ANCHOR: split
    /// Cuts a block of `need` bytes from the front of `block`, a free block on `bin`
    /// that is at least that large, and hands it out for a request of `size` bytes. A
    /// rest of at least `MIN_BLOCK` bytes is filed on the bin of its size: in `block`'s
    /// place on the list, with no bitmap change, when that is `bin` again.
    ///
    /// # Safety
    ///
    /// `block` is on the list of `bin` and at least `need` bytes long; `need` is a block
    /// size (see [`tags::block_size`]).
    #[inline(always)]
    unsafe fn take_from_bin(
        &mut self,
        block: BlockRef,
        bin: usize,
        need: usize,
        size: usize,
    ) -> NonNull<u8> {
        // SAFETY: the caller's promise: `block` fits with no gap in front; the bins are
        // relinked before the tags are written, as `Cut` requires.
        unsafe {
            let whole = block.size();
            let cut = Cut::plan_front(block, whole, need);
            match cut.rest {
                Some(rest) => {
                    let rest_bin = bin_of(whole - need);
                    self.bins.refile(block, bin, rest, rest_bin);
                }
                None => self.bins.unlink(block, bin),
            }
            cut.write_tags();
            // No high-water mark to raise: `stats` finds the highest live block.
            self.requested.on_allocate(size);
            cut.used.payload()
        }
    }

    /// Hands out `block`, a free block of exactly `need` bytes taken off its bin, whole
    /// for a request of `size` bytes: no cut, and no header to read.
    ///
    /// # Safety
    ///
    /// `block` was a binned free block of `need` bytes and is on no list now.
    #[inline(always)]
    unsafe fn take_whole(&mut self, block: BlockRef, need: usize, size: usize) -> NonNull<u8> {
        // SAFETY: the caller's promise; the block before a free block is used
        // (invariant 3), and the block after it is a used block, not the epilogue, since
        // the last block, when free, is the top (invariant 6).
        unsafe {
            Cut::plan_front(block, need, need).write_tags();
            self.requested.on_allocate(size);
            block.payload()
        }
    }

    /// Cuts a block of `need` bytes from the front of the top, when the top is that
    /// large, and hands it out for a request of `size` bytes; the rest, when it can be
    /// a block, is the new top. No list and no bit changes, so the tags are written
    /// straight away.
    #[inline(always)]
    fn take_from_top(&mut self, need: usize, size: usize) -> Option<NonNull<u8>> {
        let top = self.top?;
        // SAFETY: the top is a live free block (invariant 6) on no list, after a used
        // block (invariant 3), and at least `need` bytes long past the check; the rest's
        // header is `need` bytes in, right after the used block's.
        unsafe {
            let whole = top.size();
            if whole < need {
                return None;
            }
            let cut = Cut::plan_front(top, whole, need);
            self.requested.on_allocate(size);
            // Only a cut from the top can raise the high-water mark: every other free
            // block has a used block after it, which reached further.
            self.requested.reach(cut.used_end());
            // A rest is the new top; with none, the whole top went and the epilogue
            // follows the used block.
            self.top = cut.rest;
            cut.write_tags();
            Some(top.payload())
        }
    }
    // ANCHOR_END: split

    /// Cuts a block of `need` bytes out of the free `block`, `gap` bytes in, and hands it
    /// out for a request of `size` bytes: the aligned path's cut. The front gap is filed
    /// on the bin of its size; a rest of at least `MIN_BLOCK` bytes too, or it is the
    /// new top when it was cut from the top.
    ///
    /// # Safety
    ///
    /// `block` is kept at `home`, and a fit was found in it with this `gap` and `need`.
    unsafe fn split(
        &mut self,
        block: BlockRef,
        home: Home,
        gap: usize,
        need: usize,
        size: usize,
    ) -> NonNull<u8> {
        // SAFETY: the caller's promise; the bins are relinked before the tags are
        // written, as `Cut` requires.
        unsafe {
            let whole = block.size();
            let cut = Cut::plan(block, gap, need);
            let rest_size = whole - gap - cut.used_size;
            match (home, cut.gap, cut.rest) {
                (Home::Top, gap_block, rest) => {
                    if gap_block.is_some() {
                        self.bins.push(block, bin_of(gap));
                    }
                    self.top = rest;
                    self.requested.reach(cut.used_end());
                }
                (Home::Bin(bin), None, Some(rest)) => {
                    self.bins.refile(block, bin, rest, bin_of(rest_size))
                }
                (Home::Bin(bin), None, None) => self.bins.unlink(block, bin),
                (Home::Bin(bin), Some(_), rest) => {
                    self.bins.refile(block, bin, block, bin_of(gap));
                    if let Some(rest) = rest {
                        self.bins.push(rest, bin_of(rest_size));
                    }
                }
            }
            cut.write_tags();
            self.requested.on_allocate(size);
            cut.used.payload()
        }
    }

    // ANCHOR: coalesce
    /// Frees the used `block`. A block with used blocks on both sides, the common case,
    /// goes straight on the bin of its size; any other is merged by
    /// [`merge_and_file`](Self::merge_and_file), out of line, so that the common path
    /// keeps no registers for the merges' work.
    ///
    /// # Safety
    ///
    /// `block` is a used block of this heap, and nobody uses its payload any more.
    #[inline]
    unsafe fn coalesce(&mut self, block: BlockRef) {
        // SAFETY: the caller's promise; with no free neighbour and a used block after
        // it that is not the epilogue, the block is filed alone, links before tags.
        unsafe {
            let merge = Merge::plan(block);
            if merge.prev.is_none() && merge.next.is_none() && !merge.before_epilogue() {
                self.bins.push(block, bin_of(merge.size));
                merge.write_tags();
            } else {
                self.merge_and_file(block);
            }
        }
    }

    /// Frees the used `block`, merging it with a free neighbour on either side. The
    /// merged block is the new top when it ends the span, and is otherwise filed on the
    /// bin of its size, in the place of the neighbour it grew from when that neighbour
    /// was on the same bin.
    ///
    /// # Safety
    ///
    /// `block` is a used block of this heap, and nobody uses its payload any more.
    #[inline(never)]
    unsafe fn merge_and_file(&mut self, block: BlockRef) {
        // SAFETY: the caller's promise; the invariants hold, so `Merge::plan` finds the
        // neighbours, and the bins are relinked before the tags are written.
        unsafe {
            let merge = Merge::plan(block);
            // The merged block ends the span when it absorbed the top (the one free
            // block that can end it, invariant 6) or when the epilogue follows the
            // freed block: both read off what the plan holds, with no address sums.
            let ends_span = match merge.next {
                Some(next) => self.top == Some(next),
                None => merge.before_epilogue(),
            };
            if ends_span {
                // A free block after `block` can only be the top, which is on no bin.
                if let Some(prev) = merge.prev {
                    self.bins.take_off(prev);
                }
                self.top = Some(merge.block);
            } else {
                match (merge.prev, merge.next) {
                    // A neighbour's size is the distance between addresses the plan
                    // holds: no header to read again.
                    (Some(prev), next) => {
                        if let Some(next) = next {
                            self.bins.take_off(next);
                        }
                        let bin = bin_of(block.addr() - prev.addr());
                        self.bins.refile(prev, bin, prev, bin_of(merge.size));
                    }
                    (None, Some(next)) => {
                        let bin = bin_of(block.addr() + merge.size - next.addr());
                        self.bins.refile(next, bin, block, bin_of(merge.size));
                    }
                    (None, None) => self.bins.push(block, bin_of(merge.size)),
                }
            }
            merge.write_tags();
        }
    }
    // ANCHOR_END: coalesce

    /// Checks every bin's list and the bitmap (invariants 4 and 5, all but "every free
    /// block is listed", which `check_blocks` adds); returns how many blocks the bins
    /// hold. Reads a block's links only after finding it inside the span.
    fn check_bins(&self, span: Span) -> Result<usize, HeapError> {
        let most_blocks = span.len() / MIN_BLOCK;
        let mut listed = 0;
        for bin in 0..BINS {
            let list = self.bins.list(bin);
            if self.bins.marked(bin) != list.first().is_some() {
                return Err(HeapError::new(
                    "a bin's bit is set iff the bin is non-empty",
                ));
            }
            let mut before = None;
            let mut cursor = list.first();
            while let Some(block) = cursor {
                let at = |invariant| HeapError::new(invariant).at(block.addr());
                if !span.holds(block.addr()) || block.addr() + MIN_BLOCK > span.epilogue {
                    return Err(at("the bins hold only blocks of the span"));
                }
                // SAFETY: `block` is a well-placed header inside the span, with room
                // for its links.
                let (used, size, prev, next) = unsafe {
                    (
                        block.is_used(),
                        block.size(),
                        block.prev_free(),
                        block.next_free(),
                    )
                };
                if used {
                    return Err(at("the bins hold only free blocks"));
                }
                if bin_of(size) != bin {
                    return Err(at("a free block is on the bin of its size"));
                }
                if prev != before {
                    return Err(at(
                        "bin links agree: a listed block links back to the one before it",
                    ));
                }
                listed += 1;
                if listed > most_blocks {
                    return Err(at("the bins' lists end"));
                }
                before = Some(block);
                cursor = next;
            }
        }
        Ok(listed)
    }

    /// Walks the blocks in address order checking invariants 1 to 3 (the tags, see
    /// [`tags::check_span`]), that every free block but the last is on its bin, and
    /// invariant 6; returns how many free blocks should be on bins.
    fn check_blocks(&self, span: Span, first: BlockRef) -> Result<usize, HeapError> {
        let mut last_free = None;
        let on_its_bin = |block: BlockRef, size: usize| {
            if block.addr() + size == span.epilogue {
                last_free = Some(block);
                return Ok(());
            }
            // SAFETY: `check_bins` found the lists' links sound.
            if unsafe { self.bins.list(bin_of(size)).iter() }.any(|b| b == block) {
                Ok(())
            } else {
                Err(
                    HeapError::new("every free block but the top is on the bin of its size")
                        .at(block.addr()),
                )
            }
        };
        // SAFETY: `first` is the first block of our span.
        let (free, _) = unsafe { tags::check_span(span, first, on_its_bin) }?;
        if self.top != last_free {
            return Err(HeapError::new(
                "the top is the last block when that is free, and none otherwise",
            ));
        }
        Ok(free - usize::from(last_free.is_some()))
    }
}

// ANCHOR: resize_in_place
/// Segregated fit's bins and top block behind the shared in-place resize
/// ([`tags::resize_in_place`]).
impl FreeLists for SegregatedFit {
    unsafe fn free_tail(&mut self, tail: BlockRef) {
        // SAFETY: the caller's promise: a used block nobody uses, freed like any other.
        unsafe { self.coalesce(tail) }
    }

    unsafe fn absorb(&mut self, grow: &Grow) {
        if self.top == Some(grow.next) {
            self.top = grow.rest;
            // Grown into the top: perhaps past the high-water mark.
            self.requested.reach(grow.used_end());
            return;
        }
        // SAFETY: the caller's promise: `grow.next` is a free block of ours in the bin
        // of its size; the rest lies inside it, and only links are written here.
        unsafe {
            let bin = bin_of(grow.next.size());
            match grow.rest {
                Some(rest) => {
                    self.bins
                        .refile(grow.next, bin, rest, bin_of(grow.rest_size()));
                }
                None => self.bins.unlink(grow.next, bin),
            }
        }
    }

    unsafe fn resized(&mut self, _block: BlockRef, old: usize, new: usize) {
        self.requested.on_resize(old, new);
    }
}
// ANCHOR_END: resize_in_place

// SAFETY: blocks are cut from free blocks of the region, which tile it without overlap
// (invariant 1); a used block is on no bin and its payload is `size - HEADER` bytes that
// no tag or link touches; refusals change nothing; `reallocate`'s default keeps the
// contents and `resize_in_place` never moves; walk and stats report the blocks as they are.
unsafe impl RawHeap for SegregatedFit {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let blocks = Span::of(region).map(|span| {
            // SAFETY: the caller's promise: `region` is ours alone and valid; the span
            // was computed from it.
            (span, unsafe { span.format(region) })
        });
        SegregatedFit {
            // The one free block a new heap has is the last one.
            top: blocks.map(|(_, first)| first),
            requested: Requested::default(),
            region,
            blocks,
            bins: Bins::new(),
        }
    }

    // ANCHOR: allocate
    #[inline]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let Some(need) = tags::block_size(layout.size()) else {
            return Err(tags::refusal(&self.blocks, layout));
        };
        // Every payload is aligned to `GRANULE`: the common request takes a path with no
        // gap in front to work out or file.
        let served = if layout.align() <= GRANULE {
            self.serve_fit(need, layout.size())
        } else {
            self.serve_aligned(need, layout.align(), layout.size())
        };
        served.ok_or_else(|| tags::refusal(&self.blocks, layout))
    }
    // ANCHOR_END: allocate

    // ANCHOR: deallocate
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise: `ptr` is the payload of a live block of ours.
        let block = unsafe { BlockRef::from_payload(ptr) };
        self.requested.on_deallocate(layout.size());
        // SAFETY: as above; the caller gives the block up.
        unsafe { self.coalesce(block) };
    }
    // ANCHOR_END: deallocate

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        // SAFETY: the caller's promise, passed on.
        unsafe { tags::resize_in_place(self, ptr, old, new) }
    }

    #[inline]
    unsafe fn usable_size(&self, ptr: NonNull<u8>, _layout: Layout) -> usize {
        // SAFETY: the caller's promise: `ptr` is the payload of a live block of ours.
        unsafe { BlockRef::from_payload(ptr).size() - HEADER }
    }

    fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    fn stats(&self) -> Stats {
        Stats::from_live_walk(self.region, &self.requested, |visit| self.walk(visit))
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        // SAFETY: `blocks` is our span, formatted in `region`; `&self` keeps it still.
        unsafe { tags::walk_span(self.region, self.blocks, visit) }
    }

    // ANCHOR: check
    fn check(&self) -> Result<(), HeapError> {
        check_walk(self)?;
        let Some((span, first)) = self.blocks else {
            return match (self.bins.first_nonempty_from(0), self.top) {
                (None, None) => Ok(()),
                _ => Err(HeapError::new(
                    "a heap without blocks has empty bins and no top",
                )),
            };
        };
        let listed = self.check_bins(span)?;
        let binned = self.check_blocks(span, first)?;
        if listed != binned {
            return Err(HeapError::new(
                "the bins hold as many blocks as there are free blocks but the top",
            ));
        }
        Ok(())
    }
    // ANCHOR_END: check

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reuse: Reuse::Any,
            restores_when_empty: true,
            max_size: usize::MAX,
            max_align: 1 << (usize::BITS - 1),
            resizes_in_place: true,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use rawheap::Arena;

    fn bytes(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    /// A heap with one 64-byte hole between used blocks, and the hole.
    fn heap_with_a_hole() -> (Arena<SegregatedFit>, BlockRef) {
        let mut heap = Arena::<SegregatedFit>::new(4096);
        let hole = heap.allocate(bytes(56)).unwrap();
        heap.allocate(bytes(8)).unwrap();
        // SAFETY: `hole` is live with this layout and freed once.
        unsafe { heap.deallocate(hole, bytes(56)) };
        heap.check().unwrap();
        // SAFETY: `hole` was the payload of a block of the heap, now free.
        (heap, unsafe { BlockRef::from_payload(hole) })
    }

    #[test]
    fn bins_holding_as_many_blocks_as_the_span_can_are_not_called_endless() {
        // The span cut into as many free blocks as fit, each filed on the bin of its
        // size, the last one too (so there is no top): the walk of the bins reaches its
        // bound exactly, not past it, and what is wrong is named by the walk of the
        // blocks.
        let mut heap = Arena::<SegregatedFit>::new(4096);
        let (span, _) = heap.blocks.unwrap();
        let count = span.len() / MIN_BLOCK;
        let start = heap.region.cast::<u8>();
        // SAFETY: the new heap's one block, the whole span, is the top, on no bin. It is
        // cut into `count` free blocks, the first taking what is left over, that tile the
        // span; each is filed once, after its tags are written.
        unsafe {
            // The first block takes what is left over, so that the last one, of
            // MIN_BLOCK bytes, ends at the epilogue.
            let spare = span.len() - count * MIN_BLOCK;
            for i in 0..count {
                let addr = if i == 0 {
                    span.first
                } else {
                    span.first + spare + i * MIN_BLOCK
                };
                let size = if i == 0 { MIN_BLOCK + spare } else { MIN_BLOCK };
                let block = BlockRef::at(start.with_addr(core::num::NonZero::new(addr).unwrap()));
                block.write_free(size, i == 0);
                heap.bins.push(block, bin_of(size));
            }
        }
        heap.top = None;
        let error = heap.check().unwrap_err();
        assert_eq!(
            (error.invariant, error.addr),
            (
                "no two free blocks are neighbours",
                Some(span.first + MIN_BLOCK + span.len() % MIN_BLOCK)
            )
        );
    }

    #[test]
    fn bins_holding_more_blocks_than_the_span_can_are_named() {
        // Free blocks are MIN_BLOCK long at least, so the bins hold at most
        // `span.len() / MIN_BLOCK` of them. Blocks forged a GRANULE apart inside a used
        // block can pass every other test of a listed block: each one's header is the
        // back link of the block before the one before it, an address of the region,
        // and every address of a 4 KiB region aligned to 4 KiB falls on one bin (the
        // bins of sizes from 16 KiB up start at multiples of 4 KiB, and the last takes
        // every size from its first up). Only the bound names such a list.
        let mut heap = Arena::<SegregatedFit>::new(4096);
        let (span, _) = heap.blocks.unwrap();
        let most = span.len() / MIN_BLOCK;
        let room = span.len() - 2 * MIN_BLOCK;
        let payload = heap.allocate(bytes(room)).unwrap();
        let bin = bin_of(payload.as_ptr().addr());
        assert!(
            payload.as_ptr().addr() >= 16 << 10,
            "no region lies that low"
        );
        // The head, then the dense blocks two granules on, as many as the room holds.
        let block = |granules: usize| {
            // SAFETY: the header lies inside the used block's payload.
            unsafe { BlockRef::from_payload(payload.byte_add(granules * GRANULE)) }
        };
        let head = block(1);
        let dense: std::vec::Vec<_> = (3..room / GRANULE).map(block).collect();
        assert!(1 + dense.len() > most, "more blocks than the span can hold");
        // SAFETY: every header and link written lies in the used block's payload, which
        // the test owns; the head and the first dense block get a size on the bin (the
        // others' headers are the links pushed after them). Pushed last to first, each
        // block's back link, the next block's header, ends up the block before.
        unsafe {
            for first in [head, dense[0]] {
                first
                    .payload()
                    .byte_sub(HEADER)
                    .cast::<usize>()
                    .write(smallest_in(bin));
            }
            for &block in dense.iter().rev().chain([&head]) {
                heap.bins.push(block, bin);
            }
        }
        let error = heap.check().unwrap_err();
        assert_eq!(
            (error.invariant, error.addr),
            ("the bins' lists end", Some(dense[most - 1].addr()))
        );
    }

    #[test]
    fn check_notices_a_block_on_the_wrong_bin() {
        let (mut heap, hole) = heap_with_a_hole();
        // SAFETY: `hole` is a free block of 64 bytes on its bin; it moves to another
        // bin's list, which keeps the lists sound but files it wrongly.
        unsafe {
            heap.bins.unlink(hole, bin_of(64));
            heap.bins.push(hole, bin_of(80));
        }
        let error = heap.check().unwrap_err();
        assert_eq!(error.invariant, "a free block is on the bin of its size");
    }

    #[test]
    fn check_notices_a_bitmap_that_lies() {
        let (mut heap, _) = heap_with_a_hole();
        heap.bins.mark_for_test(bin_of(48));
        let error = heap.check().unwrap_err();
        assert_eq!(
            error.invariant,
            "a bin's bit is set iff the bin is non-empty"
        );
    }

    #[test]
    fn check_notices_a_lost_top() {
        let (mut heap, _) = heap_with_a_hole();
        heap.top = None;
        let error = heap.check().unwrap_err();
        assert_eq!(
            error.invariant,
            "the top is the last block when that is free, and none otherwise"
        );
    }

    #[test]
    fn check_notices_a_free_block_missing_from_the_bins() {
        let (mut heap, hole) = heap_with_a_hole();
        // SAFETY: `hole` is on the bin of its size; taking it off leaves it free.
        unsafe { heap.bins.unlink(hole, bin_of(64)) };
        let error = heap.check().unwrap_err();
        assert_eq!(
            error.invariant,
            "every free block but the top is on the bin of its size"
        );
    }
}
