//! # The reference solution of assignment 1: an implicit free list
//!
//! Staff only: this file replaces the template's `src/lib.rs` to show that the kit
//! works end to end (`cargo xtask ci` builds the template with it, runs its tests and
//! grades it). It is kept out of the template, so students never receive it.
//!
//! The region is cut into blocks that lie back to back, each with a one-word header
//! giving its size and whether it is used. A request walks *every* block from the
//! first (the list of blocks is *implicit* in their sizes) and takes the first free one
//! that fits (first fit), cutting the rest off as a new free block when it is large
//! enough. Freeing merges the block with a free neighbour on either side at once: a free
//! block repeats its size in a footer, so the block after it finds its start in O(1).
//! The block format and the cut and merge plans come from [`rawheap::tags`].
//!
//! ## Block layout
//!
//! ```text
//!  used block                        free block
//!  ┌──────────────────────────┐      ┌──────────────────────────┐
//!  │ size | PREV_USED | USED=1│      │ size | PREV_USED=1|USED=0│  header
//!  ├──────────────────────────┤ <─── ├──────────────────────────┤
//!  │ payload: size - 8 bytes, │ ptr  │ (unused)                 │
//!  │ all usable               │      ├──────────────────────────┤
//!  │                          │      │ size                     │  footer
//!  └──────────────────────────┘      └──────────────────────────┘
//!
//!  the region:
//!  ┌─────┬────────┬──────────┬────────┬─────────┬──────────┬─────┐
//!  │ pad │ used A │  free B  │ used C │  free D │ epilogue │ pad │
//!  └─────┴────────┴──────────┴────────┴─────────┴──────────┴─────┘
//! ```
//!
//! ## Invariants (checked by `check`)
//!
//! 1. The blocks tile the span from the first header to the epilogue; each is at least
//!    `MIN_BLOCK` bytes, a multiple of `GRANULE`.
//! 2. `PREV_USED` of every block tells whether the block before is used; a free block's
//!    footer equals its size.
//! 3. No two free blocks are neighbours (immediate coalescing).
//! 4. The used blocks are exactly the live blocks `usage` counts.
//!
//! ## Cost of each operation (`n` blocks)
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | O(n): first fit walks every block, used ones too |
//! | `deallocate` | O(1): two tags read |
//! | `usable_size` | O(1): the header |
//! | `walk`, `stats`, `check` | O(n) |
#![no_std]

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::tags::{self, BlockRef, Cut, GRANULE, HEADER, MIN_BLOCK, Merge, Span};
use rawheap::{
    AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, Usage, check_walk, offset_in,
};

/// The largest alignment the heap serves.
const MAX_ALIGN: usize = 4096;

/// An implicit free list with boundary tags; see the crate documentation.
pub struct Heap {
    /// The region as handed to `new`; every block pointer is derived from it.
    region: NonNull<[u8]>,
    /// Live blocks, bytes requested and the high-water mark.
    usage: Usage,
    /// The span of blocks inside the region and its first block, or `None` when the
    /// region is too small for one block (then every request is refused).
    blocks: Option<(Span, BlockRef)>,
}

impl Heap {
    // ANCHOR: first_fit
    /// The first free block, in address order, that can hold a block of `need` bytes
    /// with its payload aligned to `align`, and the gap in front of the block in it.
    fn first_fit(&self, need: usize, align: usize) -> Option<(BlockRef, usize)> {
        let (span, first) = self.blocks?;
        // SAFETY: `first` is the span's first block and the blocks tile the span
        // (invariant 1), so every header the walk reads is one of ours.
        unsafe { span.blocks(first) }.find_map(|block| {
            // SAFETY: `blocks` yields headers inside the span.
            let (size, used) = unsafe { (block.size(), block.is_used()) };
            let gap = tags::fit_gap(block.addr(), size, need, align);
            gap.filter(|_| !used).map(|gap| (block, gap))
        })
    }
    // ANCHOR_END: first_fit

    /// Why `layout` cannot be served: too big for even an empty heap, or not now.
    fn refusal(&self, layout: Layout) -> AllocError {
        let fits_when_empty = tags::block_size(layout.size())
            .zip(self.blocks)
            .is_some_and(|(need, (span, _))| {
                tags::fit_gap(span.first, span.len(), need, layout.align()).is_some()
            });
        if fits_when_empty {
            AllocError::Exhausted
        } else {
            AllocError::Unsupported
        }
    }

    /// Walks the blocks checking invariants 1 to 3; returns how many are used.
    fn check_blocks(&self, span: Span, first: BlockRef) -> Result<usize, HeapError> {
        let mut used = 0;
        let mut prev_used = true;
        let mut end = span.first;
        // SAFETY: `first` is the span's first block; `blocks` stops at a header whose
        // size would leave the span.
        for block in unsafe { span.blocks(first) } {
            let at = |invariant| HeapError::new(invariant).at(block.addr());
            // SAFETY: `blocks` yields headers inside the span.
            let (size, is_used, says_prev_used) =
                unsafe { (block.size(), block.is_used(), block.prev_used()) };
            if block.addr() != end {
                return Err(at("the blocks tile the span"));
            }
            if size < MIN_BLOCK || size % GRANULE != 0 {
                return Err(at(
                    "a block is at least MIN_BLOCK bytes, a multiple of GRANULE",
                ));
            }
            if says_prev_used != prev_used {
                return Err(at("PREV_USED tells whether the block before is used"));
            }
            if is_used {
                used += 1;
            } else if !prev_used {
                return Err(at("no two free blocks are neighbours"));
            // SAFETY: a free block of at least MIN_BLOCK bytes inside the span.
            } else if unsafe { block.footer() } != size {
                return Err(at("a free block's footer equals its size"));
            }
            prev_used = is_used;
            end = block.addr() + size;
        }
        if end != span.epilogue {
            return Err(HeapError::new("the blocks reach the epilogue exactly").at(end));
        }
        Ok(used)
    }
}

// SAFETY: blocks are cut from free blocks of the region, which tile it (invariant 1); a
// used block's payload is `size - HEADER` bytes that no tag touches; refusals change
// nothing; `walk` and `stats` report the blocks as they are.
unsafe impl RawHeap for Heap {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let blocks = Span::of(region).map(|span| {
            // SAFETY: the caller's promise: `region` is ours alone and valid; the span
            // was computed from it.
            (span, unsafe { span.format(region) })
        });
        Heap {
            region,
            usage: Usage::default(),
            blocks,
        }
    }

    // ANCHOR: allocate
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        let need = match tags::block_size(layout.size()) {
            Some(need) if layout.align() <= MAX_ALIGN => need,
            _ => return Err(AllocError::Unsupported),
        };
        let Some((block, gap)) = self.first_fit(need, layout.align()) else {
            return Err(self.refusal(layout));
        };
        // SAFETY: `first_fit` found this free block with this gap for `need` bytes.
        unsafe {
            let cut = Cut::plan(block, gap, need);
            cut.write_tags();
            self.usage
                .on_allocate(layout.size(), offset_in(self.region, cut.used.end()));
            Ok(cut.used.payload())
        }
    }
    // ANCHOR_END: allocate

    // ANCHOR: deallocate
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.usage.on_deallocate(layout.size());
        // SAFETY: the caller's promise: `ptr` is the payload of a live block of ours,
        // so its header is right before it and the invariants hold for `Merge`.
        unsafe { Merge::plan(BlockRef::from_payload(ptr)).write_tags() };
    }
    // ANCHOR_END: deallocate

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
        let start = self.region.cast::<u8>().as_ptr().addr();
        let end = start + self.region.len();
        let Some((span, first)) = self.blocks else {
            if end > start {
                visit(Block::overhead(start, end - start));
            }
            return;
        };
        if span.first > start {
            visit(Block::overhead(start, span.first - start));
        }
        // SAFETY: `first` is the span's first block and nothing changes while we walk.
        for block in unsafe { span.blocks(first) } {
            // SAFETY: `blocks` yields headers inside the span.
            let (size, used) = unsafe { (block.size(), block.is_used()) };
            if used {
                visit(Block::overhead(block.addr(), HEADER));
                visit(Block::used(block.addr() + HEADER, size - HEADER));
            } else {
                visit(Block::free(block.addr(), size));
            }
        }
        visit(Block::overhead(span.epilogue, end - span.epilogue));
    }

    fn check(&self) -> Result<(), HeapError> {
        check_walk(self)?;
        let Some((span, first)) = self.blocks else {
            return Ok(());
        };
        if self.check_blocks(span, first)? != self.usage.live_blocks {
            return Err(HeapError::new("the used blocks are exactly the live ones"));
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reuse: Reuse::Any,
            restores_when_empty: true,
            max_size: usize::MAX,
            max_align: MAX_ALIGN,
            resizes_in_place: false,
        }
    }
}
