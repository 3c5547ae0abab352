//! What any heap on a [`rawheap::tags`] span reports and checks whatever its free lists:
//! the walk of its blocks and the tag invariants 1 to 3 of that module.
//!
//! Nothing here knows about TLSF's lists; free-list and segregated-fit walk and check
//! their spans the same way, so this module belongs in `rawheap::tags` (see the crate's
//! report).

use core::ptr::NonNull;

use rawheap::tags::{BlockRef, GRANULE, HEADER, MIN_BLOCK, Span};
use rawheap::{Block, HeapError, align};

/// Reports the stretches of `region`: the bytes before the span and after its epilogue
/// as overhead, a used block as its header (overhead) and payload (used), a free block
/// whole as free. `blocks` is the span and its first block, `None` for a region too
/// small to hold one.
///
/// # Safety
///
/// `blocks` describes a live span formatted in `region`, and no header changes while
/// this runs.
pub(crate) unsafe fn walk(
    region: NonNull<[u8]>,
    blocks: Option<(Span, BlockRef)>,
    visit: &mut dyn FnMut(Block),
) {
    let start = region.cast::<u8>().as_ptr().addr();
    let end = start + region.len();
    let Some((span, first)) = blocks else {
        if end > start {
            visit(Block::overhead(start, end - start));
        }
        return;
    };
    if span.first > start {
        visit(Block::overhead(start, span.first - start));
    }
    // SAFETY: the caller's promise; `blocks` stops at a header whose size leaves the span.
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

/// Walks the blocks in address order checking that they tile the span on the granule
/// grid, that every `PREV_USED` bit and free footer tells the truth, that no two free
/// blocks touch and that the epilogue closes the span; hands each free block and its
/// size to `on_free` (which checks the heap's lists). Returns the free and used blocks
/// counted.
///
/// # Safety
///
/// `first` is the first block of a live span formatted from `span`.
pub(crate) unsafe fn check_blocks(
    span: Span,
    first: BlockRef,
    mut on_free: impl FnMut(BlockRef, usize) -> Result<(), HeapError>,
) -> Result<(usize, usize), HeapError> {
    let (mut free, mut used) = (0, 0);
    let mut prev_used = true;
    let mut end = span.first;
    // SAFETY: the caller's promise; `blocks` stops at a header whose size leaves the span.
    for block in unsafe { span.blocks(first) } {
        let at = |invariant| HeapError::new(invariant).at(block.addr());
        // SAFETY: `blocks` yields headers inside the span.
        let (size, is_used, says_prev_used) =
            unsafe { (block.size(), block.is_used(), block.prev_used()) };
        if block.addr() != end || !span.holds(block.addr()) {
            return Err(at("the blocks tile the span"));
        }
        if size < MIN_BLOCK || !align::is_aligned(size, GRANULE) {
            return Err(at(
                "a block is at least MIN_BLOCK bytes, a multiple of GRANULE",
            ));
        }
        if says_prev_used != prev_used {
            return Err(at("PREV_USED tells whether the block before is used"));
        }
        if is_used {
            used += 1;
        } else {
            if !prev_used {
                return Err(at("no two free blocks are neighbours"));
            }
            // SAFETY: a free block of at least MIN_BLOCK bytes inside the span.
            if unsafe { block.footer() } != size {
                return Err(at("a free block's footer equals its size"));
            }
            on_free(block, size)?;
            free += 1;
        }
        prev_used = is_used;
        end = block.addr() + size;
    }
    if end != span.epilogue {
        return Err(HeapError::new("the blocks reach the epilogue exactly").at(end));
    }
    // SAFETY: the blocks tile the span, so the epilogue header is where it was put.
    let epilogue = unsafe { span.epilogue_of(first) };
    // SAFETY: as above.
    let (size, is_used, says_prev_used) =
        unsafe { (epilogue.size(), epilogue.is_used(), epilogue.prev_used()) };
    if size != 0 || !is_used || says_prev_used != prev_used {
        return Err(HeapError::new(
            "the epilogue is a used, zero-sized header that knows the last block",
        )
        .at(span.epilogue));
    }
    Ok((free, used))
}

/// Whether a request for `layout` fits in the one free block of the empty heap on
/// `blocks`: the answer that tells `Exhausted` (not now) from `Unsupported` (never).
pub(crate) fn fits_when_empty(
    blocks: Option<(Span, BlockRef)>,
    layout: core::alloc::Layout,
) -> bool {
    rawheap::tags::block_size(layout.size())
        .zip(blocks)
        .is_some_and(|(need, (span, _))| {
            rawheap::tags::fit_gap(span.first, span.len(), need, layout.align()).is_some()
        })
}
