//! # free-list: an explicit free list with boundary tags
//!
//! The region is cut into blocks that lie back to back, each with a one-word header
//! giving its size and whether it is used. The free blocks are also threaded on a
//! doubly linked list through their own payloads, so a request looks only at free
//! blocks (an *explicit* list, unlike the *implicit* list that walks every block).
//!
//! - **allocate** asks the [`Placement`] policy for a free block that fits ([`FirstFit`],
//!   [`NextFit`] or [`BestFit`], a type parameter), cuts the request off its front, and
//!   leaves the rest on the list when it is at least [`MIN_BLOCK`] bytes (*splitting*).
//! - **deallocate** merges the block at once with a free neighbour on either side
//!   (*immediate coalescing*): the header of the block after it and the footer of the
//!   block before it (a *boundary tag*, Knuth's) say whether they are free, in O(1).
//!   A block with no free neighbour goes to the front of the list (LIFO).
//! - **reallocate** grows a block in place into a free block after it, and shrinks it in
//!   place by freeing its tail; only when growing in place fails does it move.
//!
//! ## Block layout
//!
//! Sizes are multiples of [`GRANULE`] (16 bytes on 64-bit targets) and every payload is
//! aligned to it. A used block spends one word on its header; a free block also holds
//! two links and a footer, so no block is smaller than [`MIN_BLOCK`] (32 bytes).
//!
//! ```text
//!  used block                       free block
//!  ┌──────────────────────────┐     ┌──────────────────────────┐
//!  │ size │ PREV_USED │ USED=1│     │ size │ PREV_USED=1│USED=0│  header
//!  ├──────────────────────────┤ <── ├──────────────────────────┤
//!  │                          │ ptr │ next free ──────────────────> another free block
//!  │ payload (size - 8 bytes, │     │ prev free ──────────────────> (or none)
//!  │ all usable)              │     │ (unused)                 │
//!  │                          │     ├──────────────────────────┤
//!  │                          │     │ size                     │  footer
//!  └──────────────────────────┘     └──────────────────────────┘
//!
//!  the region, which may start and end anywhere:
//!  ┌─────┬────────┬──────────┬────────┬────────┬─────────┬──────────┬─────┐
//!  │ pad │ used A │  free B  │ used C │ used D │  free E │ epilogue │ pad │
//!  └─────┴────────┴──────────┴────────┴────────┴─────────┴──────────┴─────┘
//!   <16 B  free list: head ──> E ──> B            size 0, used    <16 B
//! ```
//!
//! `PREV_USED` in a header says whether the block before is used; when it is clear, the
//! word before the header is that free block's footer. So used blocks need no footer
//! (the CS:APP refinement). The first block's `PREV_USED` is set and a zero-sized used
//! *epilogue* header closes the region, so merging never runs off either end. The bytes
//! before the first header and after the epilogue, needed to align blocks in a region
//! that starts at any address, are reported by `walk` as overhead. The block format and
//! its plans (cut, merge, grow) live in [`rawheap::tags`], shared with the heaps that
//! keep several lists.
//!
//! A payload aligned beyond `GRANULE` is placed at the first aligned spot in a free block
//! that leaves a gap of 0 or at least `MIN_BLOCK` bytes in front; the gap stays behind as
//! a free block of its own (it keeps the old block's place on the list), so alignment
//! costs no hidden padding.
//!
//! ## Invariants (checked by [`RawHeap::check`])
//!
//! 1. The blocks tile the span from the first header to the epilogue; each is placed on
//!    the granule grid and at least `MIN_BLOCK` long.
//! 2. `PREV_USED` of every block (and of the epilogue) tells whether the block before is
//!    used; every free block's footer equals its size.
//! 3. No two free blocks are neighbours (immediate coalescing).
//! 4. The free list holds exactly the free blocks, each once, and its links agree:
//!    the block a link leads to links back.
//! 5. Next fit's rover is a block on the free list, or none.
//!
//! ## Cost of each operation (`f` free blocks)
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | first and next fit: O(f) worst case, O(1) when a recently freed block fits; best fit: O(f) unless an exact fit comes first. Splitting is O(1). |
//! | `deallocate` | O(1): two tags read, at most one block unlinked |
//! | `resize_in_place` | O(1) |
//! | `usable_size` | O(1): the header |
//! | `stats`, `walk` | O(blocks) |
//! | `check` | O(blocks + f²) |
//!
//! ## Example
//!
//! ```
//! use core::alloc::Layout;
//! use free_list::{BestFit, FreeList};
//! use rawheap::{Arena, RawHeap};
//!
//! let mut heap = Arena::<FreeList<BestFit>>::new(4096);
//! let small = Layout::new::<[u64; 4]>();
//! let a = heap.allocate(small)?;
//! let b = heap.allocate(small)?;
//! let c = heap.allocate(small)?;
//! // SAFETY: `a` and `c` came from this heap with `small` and are freed once.
//! unsafe {
//!     heap.deallocate(a, small);
//!     heap.deallocate(c, small);
//! }
//! // `c` merged with the free rest of the region; `a` is a hole in front of `b`.
//! let again = heap.allocate(small)?;
//! assert_eq!(again, a, "best fit takes the hole that fits exactly");
//! # let _ = b;
//! heap.check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]

mod placement;

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::tags::{self, BlockList, BlockRef, Cut, FreeLists, Grow, HEADER, Merge, Span};
use rawheap::{
    AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, Usage, check_walk, offset_in,
};

pub use placement::{BestFit, FirstFit, Fit, NextFit, Placement};
pub use rawheap::tags::{GRANULE, MIN_BLOCK};

/// An explicit free-list heap with boundary tags; `P` chooses the placement policy.
/// See the [crate documentation](crate).
pub struct FreeList<P: Placement = FirstFit> {
    /// The region as handed to `new`; every block pointer is derived from it.
    region: NonNull<[u8]>,
    /// The span of blocks inside the region and its first block, or `None` when the
    /// region is too small for one block (then every request is refused).
    blocks: Option<(Span, BlockRef)>,
    /// Exactly the free blocks, each once; freed blocks with no free neighbour in front.
    free: BlockList,
    /// The placement policy, and what it remembers between requests.
    placement: P,
    /// Live blocks, requested bytes and high-water mark, updated by every operation.
    usage: Usage,
}

// SAFETY: the heap is the only user of its region (the promise made to `new`), and all
// its pointers point into it: moving the heap to another thread moves everything.
unsafe impl<P: Placement + Send> Send for FreeList<P> {}

impl<P: Placement> core::fmt::Debug for FreeList<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FreeList")
            .field("region_len", &self.region.len())
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

impl<P: Placement> FreeList<P> {
    /// The offset from the region's start of one past a block's last byte.
    ///
    /// # Safety
    ///
    /// `block` is a block of this heap.
    #[inline]
    unsafe fn end_offset(&self, block: BlockRef) -> usize {
        // SAFETY: the caller's promise.
        offset_in(self.region, unsafe { block.end() })
    }

    /// Takes `block` off the free list, telling the policy.
    ///
    /// # Safety
    ///
    /// `block` is on the free list.
    #[inline]
    unsafe fn unlink(&mut self, block: BlockRef) {
        // SAFETY: the caller's promise.
        let successor = unsafe { self.free.unlink(block) };
        self.placement.left(block, successor);
    }

    /// Puts `new` in the place of `old` on the free list, telling the policy.
    ///
    /// # Safety
    ///
    /// As for [`BlockList::replace`].
    #[inline]
    unsafe fn replace(&mut self, old: BlockRef, new: BlockRef) {
        // SAFETY: the caller's promise.
        unsafe { self.free.replace(old, new) };
        self.placement.left(old, Some(new));
    }

    // ANCHOR: find_fit
    /// A free block that can hold a block of `need` bytes with its payload aligned to
    /// `align`, as the policy `P` chooses it.
    #[inline]
    fn find_fit(&mut self, need: usize, align: usize) -> Option<(BlockRef, Fit)> {
        let size_of = |block: BlockRef| {
            // SAFETY: the policy asks only about blocks on the free list, which are live.
            unsafe { block.size() }
        };
        // SAFETY: the free list holds exactly the live free blocks (invariant 4), and
        // the rover is one of them (invariant 5).
        unsafe {
            if align <= GRANULE {
                // Every payload is aligned this much: a fit is a matter of size, and the
                // search loop compiled for this case does nothing else.
                self.placement.find(&self.free, |block| {
                    let spare = size_of(block).checked_sub(need)?;
                    Some(Fit { gap: 0, spare })
                })
            } else {
                self.placement.find(&self.free, |block| {
                    let size = size_of(block);
                    let gap = tags::fit_gap(block.addr(), size, need, align)?;
                    Some(Fit {
                        gap,
                        spare: size - gap - need,
                    })
                })
            }
        }
    }
    // ANCHOR_END: find_fit

    // ANCHOR: split
    /// Cuts a block of `need` bytes out of the free `block`, `gap` bytes in, and hands it
    /// out for a request of `size` bytes. The front gap keeps `block`'s place on the
    /// list; a rest of at least `MIN_BLOCK` bytes takes it when there is no gap.
    ///
    /// # Safety
    ///
    /// `block` is on the free list and `find_fit` found it with this `gap` and `need`.
    #[inline]
    unsafe fn split(
        &mut self,
        block: BlockRef,
        gap: usize,
        need: usize,
        size: usize,
    ) -> NonNull<u8> {
        // SAFETY: the caller's promise; the lists are relinked before the tags are
        // written, as `Cut` requires.
        unsafe {
            let cut = Cut::plan(block, gap, need);
            match (cut.gap, cut.rest) {
                (None, Some(rest)) => self.replace(block, rest),
                (None, None) => self.unlink(block),
                (Some(_), Some(rest)) => {
                    self.free.push_front(rest);
                }
                (Some(_), None) => {}
            }
            cut.write_tags();
            self.usage.on_allocate(size, self.end_offset(cut.used));
            cut.used.payload()
        }
    }
    // ANCHOR_END: split

    // ANCHOR: coalesce
    /// Frees the used `block`, merging it with a free neighbour on either side. A merged
    /// block keeps the place of the free neighbour it grew from; a block with no free
    /// neighbour goes to the front of the list.
    ///
    /// # Safety
    ///
    /// `block` is a used block of this heap, and nobody uses its payload any more.
    #[inline]
    unsafe fn coalesce(&mut self, block: BlockRef) {
        // SAFETY: the caller's promise; the invariants hold, so `Merge::plan` finds the
        // neighbours, and the list is relinked before the tags are written.
        unsafe {
            let merge = Merge::plan(block);
            match (merge.prev, merge.next) {
                (None, None) => {
                    self.free.push_front(block);
                }
                (None, Some(next)) => self.replace(next, block),
                (Some(_), Some(next)) => self.unlink(next),
                (Some(_), None) => {}
            }
            merge.write_tags();
        }
    }
    // ANCHOR_END: coalesce

    /// Whether `block` is on the free list. O(free blocks).
    ///
    /// # Safety
    ///
    /// The free list's links are sound (checked before calling this).
    unsafe fn listed(&self, block: BlockRef) -> bool {
        // SAFETY: the caller's promise.
        unsafe { self.free.iter() }.any(|listed| listed == block)
    }

    /// Walks the free list checking each listed block and its links; returns how many
    /// blocks it holds. Reads a block's links only after finding it inside the span.
    fn check_free_list(&self, span: Span) -> Result<usize, HeapError> {
        let most_blocks = span.len() / MIN_BLOCK;
        let mut listed = 0;
        let mut before = None;
        let mut cursor = self.free.first();
        while let Some(block) = cursor {
            let at = |invariant| HeapError::new(invariant).at(block.addr());
            if !span.holds(block.addr()) || block.addr() + MIN_BLOCK > span.epilogue {
                return Err(at("the free list holds only blocks of the span"));
            }
            // SAFETY: `block` is a well-placed header inside the span, with room for
            // its links.
            let (used, prev, next) =
                unsafe { (block.is_used(), block.prev_free(), block.next_free()) };
            if used {
                return Err(at("the free list holds only free blocks"));
            }
            if prev != before {
                return Err(at(
                    "free-list links agree: a listed block links back to the one before it",
                ));
            }
            listed += 1;
            if listed > most_blocks {
                return Err(at("the free list ends"));
            }
            before = Some(block);
            cursor = next;
        }
        Ok(listed)
    }

    /// Walks the blocks in address order checking invariants 1 to 3 (the tags, see
    /// [`tags::check_span`]) and 4 (every free block is on the list); returns the free
    /// and used blocks counted.
    fn check_blocks(&self, span: Span, first: BlockRef) -> Result<(usize, usize), HeapError> {
        let on_the_list = |block: BlockRef, _| {
            // SAFETY: `check_free_list` found the list's links sound.
            match unsafe { self.listed(block) } {
                true => Ok(()),
                false => {
                    Err(HeapError::new("every free block is on the free list").at(block.addr()))
                }
            }
        };
        // SAFETY: `first` is the first block of our span.
        unsafe { tags::check_span(span, first, on_the_list) }
    }
}

// ANCHOR: resize_in_place
/// The free list behind the shared in-place resize ([`tags::resize_in_place`]).
impl<P: Placement> FreeLists for FreeList<P> {
    unsafe fn free_tail(&mut self, tail: BlockRef) {
        // SAFETY: the caller's promise: a used block nobody uses, freed like any other.
        unsafe { self.coalesce(tail) }
    }

    unsafe fn absorb(&mut self, grow: &Grow) {
        // SAFETY: the caller's promise: `grow.next` is a free block of ours, on the
        // list; the rest takes its place there, and only links are written here.
        unsafe {
            match grow.rest {
                Some(rest) => self.replace(grow.next, rest),
                None => self.unlink(grow.next),
            }
        }
    }

    unsafe fn resized(&mut self, block: BlockRef, old: usize, new: usize) {
        // SAFETY: the caller's promise: `block` is a used block of ours.
        let end = unsafe { self.end_offset(block) };
        self.usage.on_resize(old, new, end);
    }
}
// ANCHOR_END: resize_in_place

// SAFETY: blocks are cut from free blocks of the region, which tile it without overlap
// (invariant 1); a used block is on no list and its payload is `size - HEADER` bytes
// that no tag or link touches; refusals change nothing; `reallocate`'s default keeps the
// contents and `resize_in_place` never moves; walk and stats report the blocks as they are.
unsafe impl<P: Placement> RawHeap for FreeList<P> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let mut free = BlockList::new();
        let blocks = Span::of(region).map(|span| {
            // SAFETY: the caller's promise: `region` is ours alone and valid; the span
            // was computed from it.
            let first = unsafe { span.format(region) };
            // SAFETY: `first` is a fresh free block on no list.
            unsafe { free.push_front(first) };
            (span, first)
        });
        FreeList {
            region,
            blocks,
            free,
            placement: P::default(),
            usage: Usage::default(),
        }
    }

    // ANCHOR: allocate
    #[inline]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let Some(need) = tags::block_size(layout.size()) else {
            return Err(tags::refusal(&self.blocks, layout));
        };
        match self.find_fit(need, layout.align()) {
            // SAFETY: `find_fit` found this free block on the list with this fit.
            Some((block, fit)) => Ok(unsafe { self.split(block, fit.gap, need, layout.size()) }),
            None => Err(tags::refusal(&self.blocks, layout)),
        }
    }
    // ANCHOR_END: allocate

    // ANCHOR: deallocate
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise: `ptr` is the payload of a live block of ours.
        let block = unsafe { BlockRef::from_payload(ptr) };
        self.usage.on_deallocate(layout.size());
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
        Stats::from_walk(self.region.len(), &self.usage, |visit| self.walk(visit))
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        // SAFETY: `blocks` is our span, formatted in `region`; `&self` keeps it still.
        unsafe { tags::walk_span(self.region, self.blocks, visit) }
    }

    // ANCHOR: check
    fn check(&self) -> Result<(), HeapError> {
        check_walk(self)?;
        let Some((span, first)) = self.blocks else {
            return match self.free.first() {
                None => Ok(()),
                Some(block) => {
                    Err(HeapError::new("a heap without blocks lists none").at(block.addr()))
                }
            };
        };
        let listed = self.check_free_list(span)?;
        let (free, used) = self.check_blocks(span, first)?;
        if listed != free {
            return Err(HeapError::new(
                "the free list holds as many blocks as there are free blocks",
            ));
        }
        if used != self.usage.live_blocks {
            return Err(HeapError::new("every used block is a live one"));
        }
        if let Some(rover) = self.placement.remembered() {
            // SAFETY: `check_free_list` found the list's links sound.
            if !unsafe { self.listed(rover) } {
                return Err(
                    HeapError::new("the rover is a block on the free list").at(rover.addr())
                );
            }
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
