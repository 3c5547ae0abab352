//! # bump: allocation by moving a pointer
//!
//! A bump heap keeps one pointer, `top`. Every request is served right at `top`, which
//! then moves past the new block: a few instructions, and no search. Memory comes back in
//! only two ways: [`Bump::reset`] frees everything at once, and freeing the most recent
//! block moves `top` back down over it (stack discipline). A block freed while a later
//! block is live stays where it is, dead, until everything above it is freed too.
//!
//! ## Beside static memory and the call stack
//!
//! *Static* memory is laid out by the compiler: sizes are fixed before the program runs
//! and blocks live as long as the program. A bump heap is its run-time counterpart:
//! sizes are known only when the request comes, but blocks still live until a reset,
//! which is why it suits "allocate a lot, then drop it all" work (a compiler pass, a
//! frame of a game, a request of a server).
//!
//! The *call stack* is a bump allocator too: a call moves the stack pointer past a new
//! frame, a return moves it back. The stack can do this because returns come in reverse
//! order of calls; a frame's memory is gone when its function returns. A bump heap lets
//! blocks outlive the code that made them and be freed in any order, at the price of not
//! reclaiming a block freed out of order until the blocks above it are gone as well.
//!
//! ## Block layout
//!
//! Each block records, in a two-word header right before its payload, the header of the
//! block below it and where its payload ends. The headers form a stack (a linked list
//! from `last` down), so freeing the most recent block can find the one below it, and
//! skip over blocks that were freed earlier. Blocks start on word boundaries (`GRAIN`);
//! when a payload needs more alignment than that, the bytes skipped in front of its
//! header are a *gap*, whose first word says how long it is so that a walk can step
//! over it.
//!
//! ```text
//!  base                                                             top         limit
//!  ┌──────────┬─────────────┬──┬─────┬──────────┬───────────┬──┬───┬────────────┐
//!  │ header A │  payload A  │  │ gap │ header B │ payload B │  │...│    free    │
//!  └──────────┴─────────────┴──┴─────┴──────────┴───────────┴──┴───┴────────────┘
//!    below: 0   rounding ──┘    len    below: A   rounding ──┘
//!    size: 20                          size: 40
//!
//!  header: [ below: the header of the block before (0: none) | size, top bit FREED ]
//!  last ──> the most recent block's header; its `below` leads down the stack.
//! ```
//!
//! `walk` reports each header, gap and freed-but-buried block as overhead, each live
//! payload (rounded up to the next word) as used, and `[top, limit)` as free. The top bit
//! of `size` marks a block freed out of order: freeing a buried block is one store.
//!
//! ## Invariants (checked by [`RawHeap::check`])
//!
//! 1. `base <= top <= limit`, and blocks tile `[base, top)` in allocation order, each
//!    starting on a word boundary.
//! 2. Each block's `below` names the block before it (0 for the first): the stack.
//! 3. `last` names the last block, and that block is live: a freed block at the top is
//!    popped at once, with every freed block right below it.
//!
//! ## Cost of each operation
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | O(1): align, add, compare, two stores |
//! | `deallocate` | O(1) to mark a buried block; popping is O(1) per block popped, so O(1) amortised |
//! | `resize_in_place` | O(1); succeeds for the most recent block (within the region) or within a block's rounding |
//! | `reset` | O(1) |
//! | `walk`, `stats`, `check` | O(blocks) |
//!
//! ## Example
//!
//! ```
//! use core::alloc::Layout;
//! use bump::Bump;
//! use rawheap::{Arena, RawHeap};
//!
//! let mut heap = Arena::<Bump>::new(4096);
//! let word = Layout::new::<u64>();
//! let a = heap.allocate(word)?;
//! let b = heap.allocate(word)?;
//! assert!(b > a, "the pointer only moves up");
//! // SAFETY: `a` came from this heap with `word` and is freed once.
//! unsafe { heap.deallocate(a, word) };
//! // `a` is buried under `b`: its memory is not free yet.
//! assert_ne!(heap.allocate(word)?, a);
//! // SAFETY: no block allocated so far is used again.
//! unsafe { heap.reset() };
//! assert_eq!(heap.allocate(word)?, a, "after a reset the first block starts over");
//! heap.check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]

use core::alloc::Layout;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;

use rawheap::{
    AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, align, check_walk, offset_in,
};

/// What each block records about itself, right before its payload.
#[repr(C)]
struct Header {
    /// The header of the block below this one, or 0 for the first block.
    below: usize,
    /// The requested size; the top bit ([`FREED`]) is set when the block was freed while
    /// a later one was live. Sizes never reach it (a `Layout`'s size is at most
    /// `isize::MAX`), and freeing writes the whole word, which needs no read first.
    size: usize,
}

/// Blocks start on multiples of this: a word, so headers and gap words are aligned.
const GRAIN: usize = align_of::<Header>();
/// Bytes of bookkeeping right before each payload.
const HEADER: usize = size_of::<Header>();
/// The bit of [`Header::size`] that marks a freed block.
const FREED: usize = 1 << (usize::BITS - 1);
/// The bit that marks the first word of a gap rather than a header: the rest of the word
/// is the gap's length. A header's first word never has it, since `below` is a
/// word-aligned address.
const GAP: usize = 0b10;

/// A bump heap; see the [crate documentation](crate).
pub struct Bump {
    /// The region as handed to `new`; every pointer the heap makes is derived from it.
    region: NonNull<[u8]>,
    /// Where the first block starts: the region's first word boundary (its end when it
    /// has none).
    base: usize,
    /// How far blocks may reach: the region's last word boundary, and `base <= limit`.
    limit: usize,
    /// Where the next block starts: `base <= top <= limit`, `top - base` a multiple of
    /// `GRAIN`; the blocks tile `[base, top)` and `[top, limit)` is free.
    top: usize,
    /// The header of the last block, which is live, or 0 when there is no block (then
    /// `top == base`).
    last: usize,
    /// The highest `top` before it was last lowered (`base` at first): `stats` reports
    /// the larger of this and the current `top` as the high-water mark.
    peak: usize,
}

// SAFETY: the heap is the only user of its region (the promise made to `new`), and all
// its addresses point into it: moving the heap to another thread moves everything.
unsafe impl Send for Bump {}

impl core::fmt::Debug for Bump {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Bump")
            .field("region_len", &self.region.len())
            .field("used", &(self.top - self.base))
            .field("free", &(self.limit - self.top))
            .finish_non_exhaustive()
    }
}

/// Where a request fits when the next block starts at `start`: the payload's address
/// and one past its last byte. `None` for size 0 and on overflow.
#[inline(always)]
fn place(start: usize, layout: Layout) -> Option<(usize, usize)> {
    let ptr = align::align_up(start.checked_add(HEADER)?, layout.align())?;
    let end = ptr.wrapping_add(layout.size());
    // One compare catches both a zero size and a sum that wrapped round.
    (end > ptr).then_some((ptr, end))
}

/// Where a block whose payload ends at `end` stops: the next word boundary. Never
/// overflows for an `end <= limit`, since `limit` is itself a word boundary.
#[inline(always)]
fn block_end(end: usize) -> usize {
    (end + (GRAIN - 1)) & !(GRAIN - 1)
}

/// One block as a walk meets it.
#[derive(Clone, Copy, Debug)]
struct Placed {
    /// Where the block starts: its gap, or its header when it has no gap.
    start: usize,
    /// Its header.
    header: usize,
    /// What the header says.
    below: usize,
    size: usize,
}

impl Placed {
    fn payload(&self) -> usize {
        self.header + HEADER
    }

    fn is_freed(&self) -> bool {
        self.size & FREED != 0
    }

    fn requested(&self) -> usize {
        self.size & !FREED
    }

    fn stop(&self) -> usize {
        block_end(self.payload() + self.requested())
    }
}

impl Bump {
    /// A raw pointer to `addr` with the region's provenance. Reading or writing through
    /// it is sound only for an `addr` inside the region.
    #[inline(always)]
    fn at<T>(&self, addr: usize) -> *mut T {
        self.region.cast::<u8>().as_ptr().with_addr(addr).cast()
    }

    /// # Safety
    /// `addr` is the header of a block of this heap.
    #[inline(always)]
    unsafe fn header(&self, addr: usize) -> &Header {
        // SAFETY: the caller's promise: a header lies at `addr`, written by `allocate`;
        // no payload overlaps it.
        unsafe { &*self.at::<Header>(addr) }
    }

    /// Remembers how high `top` is before lowering it.
    #[inline(always)]
    fn note_peak(&mut self) {
        self.peak = self.peak.max(self.top);
    }

    /// The highest offset from the region's start that a block ever reached (0 if no
    /// block ever did).
    fn high_water(&self) -> usize {
        match self.peak.max(self.top) {
            peak if peak == self.base => 0,
            peak => offset_in(self.region, peak),
        }
    }

    /// Frees every block at once: the next block starts at the region's start again.
    /// O(1).
    ///
    /// Use it for "allocate a lot, then drop it all" work, where freeing each block would
    /// be wasted effort.
    ///
    /// # Safety
    ///
    /// No block allocated before the reset is used or passed back to the heap afterwards:
    /// every pointer it handed out dangles, and its memory will be handed out again.
    ///
    /// `&mut self` is not enough to make this safe, because blocks are raw pointers with
    /// no lifetime tied to the heap. Wrappers hand them to safe code: a `Vec` allocating
    /// through a [`rawheap::Locked`] keeps its buffer while `Locked::with` lends the heap
    /// out, and a safe `reset` called there would leave the `Vec` reading freed memory.
    pub unsafe fn reset(&mut self) {
        self.note_peak();
        self.top = self.base;
        self.last = 0;
    }

    // ANCHOR: pop
    /// Takes the most recent block off the stack, and with it every freed block that is
    /// then on top, so `top` comes down to the highest live block.
    #[inline]
    fn pop(&mut self) {
        self.note_peak();
        // SAFETY: `last` is a block of this heap (invariant 3), and each `below` names
        // the block before it (invariant 2).
        unsafe {
            let mut last = self.header(self.last).below;
            while last != 0 && self.header(last).size & FREED != 0 {
                last = self.header(last).below;
            }
            self.last = last;
            self.top = if last == 0 {
                self.base
            } else {
                block_end(last + HEADER + self.header(last).size)
            };
        }
    }
    // ANCHOR_END: pop

    /// Why `layout` cannot be served: too big for even an empty heap, or not now.
    #[cold]
    fn refusal(&self, layout: Layout) -> AllocError {
        if layout.size() == 0 {
            AllocError::ZeroSize
        } else if place(self.base, layout).is_some_and(|(_, end)| end <= self.limit) {
            AllocError::Exhausted
        } else {
            AllocError::Unsupported
        }
    }

    /// The blocks from `base` to `top`, in address order. Stops early at a header that
    /// does not move forward, so a broken heap's walk still ends.
    fn blocks(&self) -> impl Iterator<Item = Placed> + '_ {
        let mut start = self.base;
        core::iter::from_fn(move || {
            if start >= self.top {
                return None;
            }
            // SAFETY: `[base, top)` is tiled by blocks (invariant 1), so a word boundary
            // below `top` where a block starts holds its gap word or its header.
            let first = unsafe { self.at::<usize>(start).read() };
            let header = if first & GAP != 0 {
                start + (first & !GAP)
            } else {
                start
            };
            if header.checked_add(HEADER)? > self.top {
                return None;
            }
            // SAFETY: as above; the header lies below `top`.
            let Header { below, size } = unsafe { self.at::<Header>(header).read() };
            let placed = Placed {
                start,
                header,
                below,
                size,
            };
            if placed.requested() > self.top - placed.payload() || placed.stop() > self.top {
                return None;
            }
            start = placed.stop();
            Some(placed)
        })
    }
}

// SAFETY: each block is carved from `[top, limit)`, which no live block or header
// overlaps (invariant 1), and lies inside the region; its payload is aligned by `place`
// and ends at or before the next block's start. Refusals change nothing; `reallocate`'s
// default keeps contents and `resize_in_place` never moves; walk and stats report the
// blocks as they are.
unsafe impl RawHeap for Bump {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let start = region.cast::<u8>().as_ptr().addr();
        let end = start + region.len();
        let base = align::align_up(start, GRAIN)
            .filter(|&base| base <= end)
            .unwrap_or(end);
        let limit = align::align_down(end, GRAIN).max(base);
        Bump {
            region,
            base,
            limit,
            top: base,
            last: 0,
            peak: base,
        }
    }

    // ANCHOR: allocate
    #[inline]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let start = self.top;
        let Some((ptr, end)) = place(start, layout).filter(|&(_, end)| end <= self.limit) else {
            return Err(self.refusal(layout));
        };
        let header = ptr - HEADER;
        if header != start {
            // SAFETY: the gap `[start, header)` is at least a word of free region.
            unsafe { self.at::<usize>(start).write(GAP | (header - start)) };
        }
        let below = self.last;
        let size = layout.size();
        // SAFETY: `[start, end)` lies in `[top, limit)`, which is free. `top` is a word
        // boundary, and so is `ptr` (`top + HEADER`, or a multiple of an alignment above a
        // word), so the header and a gap word are aligned.
        unsafe { self.at::<Header>(header).write(Header { below, size }) };
        self.last = header;
        self.top = block_end(end);
        // SAFETY: `ptr > start >= base > 0`.
        Ok(unsafe { NonNull::new_unchecked(self.at(ptr)) })
    }
    // ANCHOR_END: allocate

    // ANCHOR: deallocate
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let header = ptr.as_ptr().addr() - HEADER;
        if header == self.last {
            self.pop();
        } else {
            // SAFETY: the caller's promise: `ptr` is a live block of ours with `layout`,
            // so its header lies right before it and holds this size.
            unsafe { (*self.at::<Header>(header)).size = layout.size() | FREED };
        }
    }
    // ANCHOR_END: deallocate

    // ANCHOR: resize_in_place
    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        let ptr = ptr.as_ptr().addr();
        let header = ptr - HEADER;
        let end = ptr.checked_add(new.size()).ok_or(AllocError::Unsupported)?;
        if header == self.last {
            // The most recent block ends at `top`: move `top` with it.
            if end > self.limit {
                return Err(AllocError::Exhausted);
            }
            self.note_peak();
            self.top = block_end(end);
        } else if block_end(end) != block_end(ptr + old.size()) {
            // A block below others can change only within its rounding.
            return Err(AllocError::Exhausted);
        }
        // SAFETY: the caller's promise: `ptr` is a live block of ours.
        unsafe { (*self.at::<Header>(header)).size = new.size() };
        Ok(())
    }
    // ANCHOR_END: resize_in_place

    #[inline]
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        let ptr = ptr.as_ptr().addr();
        block_end(ptr + layout.size()) - ptr
    }

    fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    fn stats(&self) -> Stats {
        let mut stats = Stats {
            region: self.region.len(),
            free: self.limit - self.top,
            largest_free: self.limit - self.top,
            high_water: self.high_water(),
            ..Stats::default()
        };
        for block in self.blocks().filter(|block| !block.is_freed()) {
            stats.live_blocks += 1;
            stats.requested += block.requested();
            stats.usable += block.stop() - block.payload();
        }
        stats
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        let start = self.region.cast::<u8>().as_ptr().addr();
        let end = start + self.region.len();
        if self.base > start {
            visit(Block::overhead(start, self.base - start));
        }
        let mut reached = self.base;
        for block in self.blocks() {
            if block.header > block.start {
                visit(Block::overhead(block.start, block.header - block.start));
            }
            if block.is_freed() {
                visit(Block::overhead(block.header, block.stop() - block.header));
            } else {
                visit(Block::overhead(block.header, HEADER));
                visit(Block::used(block.payload(), block.stop() - block.payload()));
            }
            reached = block.stop();
        }
        if self.limit > reached {
            // Normally `reached == top`; a broken heap shows its gap here as free.
            visit(Block::free(reached, self.limit - reached));
        }
        if end > self.limit {
            visit(Block::overhead(self.limit, end - self.limit));
        }
    }

    // ANCHOR: check
    fn check(&self) -> Result<(), HeapError> {
        check_walk(self)?;
        let start = self.region.cast::<u8>().as_ptr().addr();
        if !(start <= self.base && self.base <= self.top && self.top <= self.limit)
            || self.limit > start + self.region.len()
        {
            return Err(HeapError::new("base <= top <= limit, inside the region").at(self.top));
        }
        let mut below = 0;
        let mut reached = self.base;
        for block in self.blocks() {
            let at = |invariant| HeapError::new(invariant).at(block.header);
            if block.start != reached || !align::is_aligned(block.start - self.base, GRAIN) {
                return Err(at("blocks tile [base, top), each on a word boundary"));
            }
            if block.below != below {
                return Err(at("each block names the block before it"));
            }
            below = block.header;
            reached = block.stop();
        }
        if reached != self.top {
            return Err(HeapError::new("blocks tile [base, top)").at(reached));
        }
        if self.last != below {
            return Err(HeapError::new("last names the last block").at(self.last));
        }
        // SAFETY: `last` is the last block's header, just checked.
        if self.last != 0 && unsafe { self.header(self.last) }.size & FREED != 0 {
            return Err(HeapError::new("the last block is live").at(self.last));
        }
        Ok(())
    }
    // ANCHOR_END: check

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reuse: Reuse::MostRecent,
            restores_when_empty: true,
            max_size: usize::MAX,
            max_align: 1 << (usize::BITS - 1),
            resizes_in_place: true,
        }
    }
}
