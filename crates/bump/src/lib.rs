//! # bump: allocation by moving a pointer
//!
//! A bump heap keeps one pointer, `top`. Every request is served right at `top`, which
//! then moves past the new block: a few instructions, and no search. Memory comes back in
//! only two ways: [`Bump::reset`] frees everything at once, and freeing the most recent
//! block moves `top` back down over it (stack discipline). A block freed while a later
//! block is live stays where it is, dead, until the heap is empty or reset.
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
//! reclaiming a block freed out of order until every block is gone.
//!
//! ## Block layout
//!
//! Each block keeps one word right before its payload: a header holding the requested
//! size, with a flag in its top bit: `HAS_GAP` says that padding came before the header,
//! because the payload needed more alignment than a word. Both ends of such a gap hold
//! `HAS_GAP | length` (one word, when the gap is one word long), so a walk from the left
//! and a pop from the right both find where the block starts. After the blocks' room,
//! at `limit`, come the *marks* of freed blocks (next section).
//!
//! ```text
//!  base                                                          top        limit
//!  ┌────┬─────────────┬──┬───────┬──────┬───────────┬──┬─────┬──────────┬───────┐
//!  │ 20 │  payload A  │  │G|24 ..│ 40|G │ payload B │  │ ... │   free   │ marks │
//!  └────┴─────────────┴──┴───────┴──────┴───────────┴──┴─────┴──────────┴───────┘
//!  header   rounding ──┘   gap    header   rounding ──┘
//! ```
//!
//! A block ends at the first word boundary after its payload: that rounding belongs to
//! the block and is part of its `usable_size`. `walk` reports headers, gaps, buried
//! freed blocks and the marks as overhead, live payloads as used and `[top, limit)` as
//! free.
//!
//! Freeing the block that ends at `top` moves `top` back to where that block starts.
//! Freeing any other block sets its mark. When the last live block goes, `top` returns
//! to `base` and the marks are cleared, so a heap emptied in any order is as good as
//! new.
//!
//! Why a header at all, when bumpalo keeps none? `walk` must show exactly the live
//! blocks, and freeing must know whether a block is the most recent: both need each
//! block's size, and the region is the only memory the heap has. One word per block,
//! written once, next to the payload the program is about to use anyway, is the least
//! that tells it.
//!
//! ## Marks: where frees are written down
//!
//! A block freed while a later block is live stays buried, and `walk` must report it as
//! overhead, so the heap writes the free down. It does so in a bitmap after `limit`,
//! one bit per `MARK_GRAIN` bytes (16 on a 64-bit machine, the numbers used below): a
//! set bit says that the block whose payload starts in those bytes was freed (a block
//! is at least a header and a word, so no two payloads start in the same 16 bytes).
//! The marks take 1/129 of the region.
//!
//! The first version kept a `FREED` bit in the header instead. Freeing a buried block
//! then stored into a header last touched when the block was allocated, long ago: a
//! cache line that has gone cold by then. The marks of a whole KiB of blocks share one
//! word, so they stay in the cache; setting one is a read-modify-write of a hot word.
//! The price is that emptying the heap (or [`Bump::reset`]) must clear the marks below
//! `top`: one word per KiB, paid for by the allocations that raised `top` that far.
//!
//! Measured on the benches' `small-fixed` workload, where half the operations free a
//! buried block (best of many passes, on the machine this was written on): 2.25 ns per
//! operation with the header bit, 2.0 with the marks and the leaner `allocate` and
//! `deallocate` of the same change; bumpalo, which keeps no header and writes nothing
//! when it frees, takes 1.8. Writing the free down is most of what is left of the
//! difference: a bit, a byte or a logged pointer per free all measured about the same.
//!
//! `marks` is biased so that finding a mark costs two shifts and an add: it holds the
//! address the bitmap would start at if it covered memory from address 0.
//!
//! ## Invariants (checked by [`RawHeap::check`])
//!
//! 1. `base <= top <= limit`, and blocks tile `[base, top)` in allocation order, each
//!    starting on a word boundary where the one before it ends.
//! 2. A header holds its block's requested size; `HAS_GAP` is set exactly when a gap
//!    precedes it, and then both ends of the gap hold its length.
//! 3. A mark is set exactly at the payload of each block freed while buried: none at
//!    or above `top`.
//! 4. `live` counts the blocks not marked, and when it is 0, `top == base`.
//!
//! ## Cost of each operation
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | O(1): add, compare, store the header |
//! | `deallocate` | O(1): a compare, then `top` moves down or one bit is set in the marks |
//! | `resize_in_place` | O(1); succeeds for the most recent block (within the region) or within a block's rounding |
//! | `reset` | amortised O(1): clears one word of marks per KiB below `top` |
//! | `new` | O(region): clears one word of marks per KiB |
//! | `walk`, `stats` | O(blocks) |
//! | `check` | O(blocks + marks) |
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
use core::mem::size_of;
use core::ptr::NonNull;

use rawheap::{
    AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, align, check_walk, offset_in,
};

/// Bytes in a word: the header, and the grain blocks start on.
const WORD: usize = size_of::<usize>();
/// Blocks start on multiples of this, so headers and gap words are aligned.
const GRAIN: usize = WORD;
/// Bytes of bookkeeping right before each payload.
const HEADER: usize = WORD;
/// Header bit: a gap comes before the header. Also the tag of the words at both ends of
/// a gap (`HAS_GAP | length`); a block with no gap starts with its header, which then
/// lacks the bit, so a walk can tell a gap from a header.
const HAS_GAP: usize = 1 << (usize::BITS - 1);
/// The bits of a header or gap word that hold a size; also the largest block size.
const SIZE: usize = HAS_GAP - 1;
/// Bytes of memory that one mark stands for. A block is at least a header and a word
/// of payload, so no two blocks' payloads start in the same `MARK_GRAIN` bytes.
const MARK_GRAIN: usize = HEADER + GRAIN;
/// Marks in one word of marks.
const MARKS_PER_WORD: usize = usize::BITS as usize;
/// Bytes of memory whose marks one word of marks holds.
const BYTES_PER_MARK_WORD: usize = MARKS_PER_WORD * MARK_GRAIN;

/// A bump heap; see the [crate documentation](crate).
pub struct Bump {
    /// The region as handed to `new`; every pointer the heap makes is derived from it.
    region: NonNull<[u8]>,
    /// Where the first block starts: the region's first word boundary (its end when it
    /// has none).
    base: usize,
    /// How far blocks may reach: `base <= limit`, a word boundary, and
    /// `limit - base <= SIZE`, so any size that fits also fits in a header.
    limit: usize,
    /// Where the marks would start if they covered memory from address 0: the mark of
    /// the `MARK_GRAIN` bytes at `addr` is bit `addr / MARK_GRAIN % MARKS_PER_WORD` of
    /// the word at `marks + addr / BYTES_PER_MARK_WORD * WORD`. The words of marks that
    /// cover `[base, limit)` lie in the region from `limit` on. A mark is set exactly at
    /// the payload of each block freed while buried.
    marks: usize,
    /// Where the next block starts: `base <= top <= limit`, `top - base` a multiple of
    /// `GRAIN`; blocks tile `[base, top)` and `[top, limit)` is free, with no marks.
    top: usize,
    /// How many blocks are live (not marked); when it is 0, `top == base`.
    live: usize,
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
            .field("live", &self.live)
            .field("used", &(self.top - self.base))
            .field("free", &(self.limit - self.top))
            .finish_non_exhaustive()
    }
}

/// Where a request fits when the next block starts at `start`: the payload's address
/// and one past its last byte. `None` for size 0 and on overflow.
#[inline(always)]
fn place(start: usize, layout: Layout) -> Option<(usize, usize)> {
    // `start + HEADER` is a word boundary: aligning it is needed only for more than that.
    let mut ptr = start.checked_add(HEADER)?;
    if may_have_gap(layout) {
        ptr = align::align_up(ptr, layout.align())?;
    }
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

/// Whether a block allocated with `layout` may have a gap: only when its payload needs
/// more than a word of alignment, since `top + HEADER` is always word-aligned.
#[inline(always)]
fn may_have_gap(layout: Layout) -> bool {
    layout.align() > GRAIN
}

/// One block as a walk meets it.
#[derive(Clone, Copy, Debug)]
struct Placed {
    /// Where the block starts: its gap, or its header when it has no gap.
    start: usize,
    /// Its header.
    header: usize,
    /// What the header holds.
    word: usize,
}

impl Placed {
    fn payload(&self) -> usize {
        self.header + HEADER
    }

    fn has_gap(&self) -> bool {
        self.word & HAS_GAP != 0
    }

    fn requested(&self) -> usize {
        self.word & SIZE
    }

    fn stop(&self) -> usize {
        block_end(self.payload() + self.requested())
    }
}

impl Bump {
    /// A raw pointer to `addr` with the region's provenance. Reading or writing through
    /// it is sound only for an `addr` inside the region.
    #[inline(always)]
    fn at(&self, addr: usize) -> *mut usize {
        self.region.cast::<u8>().as_ptr().with_addr(addr).cast()
    }

    /// Remembers how high `top` is before lowering it.
    #[inline(always)]
    fn note_peak(&mut self) {
        self.peak = self.peak.max(self.top);
    }

    /// Where the mark of `addr` is: the address of its word of marks, and its bit
    /// there. Two shifts, and no subtraction, thanks to the bias in `marks`.
    #[inline(always)]
    fn mark_of(&self, addr: usize) -> (usize, usize) {
        let word = self.marks + addr / BYTES_PER_MARK_WORD * WORD;
        (word, 1 << (addr / MARK_GRAIN % MARKS_PER_WORD))
    }

    /// The addresses of the words of marks that cover `[base, end)`, for an
    /// `end <= limit`.
    fn mark_words(&self, end: usize) -> impl Iterator<Item = usize> + use<> {
        let past = if end > self.base {
            self.mark_of(end - 1).0 + WORD
        } else {
            self.limit
        };
        (self.limit..past).step_by(WORD)
    }

    /// Marks the block at `ptr`, in `[base, limit)`, as freed.
    #[inline(always)]
    fn mark(&mut self, ptr: usize) {
        let (word, bit) = self.mark_of(ptr);
        // SAFETY: the marks of `[base, limit)` lie in the region after `limit` (`new`
        // left room for them), initialised by `new`.
        unsafe { *self.at(word) |= bit };
    }

    /// Whether `block`, one that `blocks` yields, is marked as freed.
    fn is_freed(&self, block: &Placed) -> bool {
        // `blocks` yields only blocks with a payload below `top`.
        let (word, bit) = self.mark_of(block.payload());
        // SAFETY: as in `mark`.
        unsafe { self.at(word).read() & bit != 0 }
    }

    /// Clears the marks of `[base, end)`, for an `end <= limit`.
    fn clear_marks(&mut self, end: usize) {
        for word in self.mark_words(end) {
            // SAFETY: the marks of `[base, limit)` lie in the region.
            unsafe { self.at(word).write(0) };
        }
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
    /// Amortised O(1): it clears the marks below `top`, one word per KiB (on a 64-bit
    /// machine) that the blocks took since the heap was last empty.
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
    // ANCHOR: reset
    pub unsafe fn reset(&mut self) {
        self.start_over();
    }

    /// Frees every block: clears the marks, which all lie below `top`, and brings `top`
    /// down to `base`. Writes one word per `BYTES_PER_MARK_WORD` bytes below `top`,
    /// which the allocations that raised `top` paid for in advance.
    fn start_over(&mut self) {
        self.clear_marks(self.top);
        self.note_peak();
        self.top = self.base;
        self.live = 0;
    }
    // ANCHOR_END: reset

    /// Writes the words at both ends of the gap `[start, header)`.
    ///
    /// # Safety
    ///
    /// The gap is free region memory, a whole number of words, at least one.
    ///
    /// Two stores, written where they are needed: a call here made the aligned path save
    /// and restore six registers, dearer than the stores.
    #[inline(always)]
    unsafe fn mark_gap(&mut self, start: usize, header: usize) {
        let word = HAS_GAP | (header - start);
        // SAFETY: the caller's promise: both words lie in the gap (they are the same word
        // when the gap is one word long).
        unsafe {
            self.at(start).write(word);
            self.at(header - WORD).write(word);
        }
    }

    // ANCHOR: allocate_after_gap
    /// Serves a request that needs more than a word of alignment: the payload's
    /// alignment may leave a gap between `top` and the header.
    #[inline(never)]
    fn allocate_after_gap(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let start = self.top;
        let Some((ptr, end)) = place(start, layout).filter(|&(_, end)| end <= self.limit) else {
            return Err(self.refusal(layout));
        };
        let header = ptr - HEADER;
        let mut word = layout.size();
        if header != start {
            // SAFETY: `[start, header)` is free: it lies in `[top, limit)`. Both ends are
            // word boundaries, since `top` and `ptr` are.
            unsafe { self.mark_gap(start, header) };
            word |= HAS_GAP;
        }
        // SAFETY: the block lies in `[top, limit)`, which is free.
        Ok(unsafe { self.take(header, word, end) })
    }

    /// Makes the block with its header at `header` and its payload ending at `end` the
    /// most recent one: counts it, moves `top` past it and writes `word` in its header.
    ///
    /// # Safety
    ///
    /// `[header, end)` lies in `[top, limit)`, and `header` is a word boundary.
    #[inline(always)]
    unsafe fn take(&mut self, header: usize, word: usize, end: usize) -> NonNull<u8> {
        // The heap's own fields first: after the store into the region, the compiler
        // would have to read them again.
        self.live += 1;
        self.top = block_end(end);
        // SAFETY: the caller's promise: the header is free memory in the region.
        unsafe { self.at(header).write(word) };
        // SAFETY: the payload starts after the header, at an address above 0.
        unsafe { NonNull::new_unchecked(self.at(header + HEADER).cast()) }
    }
    // ANCHOR_END: allocate_after_gap

    /// Whether the live block at `ptr` holding `size` bytes is the most recent one. Its
    /// end rounded up to a word is then `top`, less than a word past its end: a later
    /// block would have put at least a header and a byte between them. (The sum cannot
    /// overflow: the block ends by `limit`, and the marks follow `limit`.)
    #[inline(always)]
    fn is_most_recent(&self, ptr: usize, size: usize) -> bool {
        self.top < ptr + size + GRAIN
    }

    /// Where the live block at `ptr` starts: at its header, or at its gap.
    ///
    /// # Safety
    ///
    /// `ptr` is a live block of this heap allocated with `layout`'s alignment.
    #[inline(always)]
    unsafe fn block_start(&self, ptr: usize, layout: Layout) -> usize {
        let header = ptr - HEADER;
        if !may_have_gap(layout) {
            return header;
        }
        // SAFETY: the caller's promise: the header is ours (invariant 2).
        let word = unsafe { self.at(header).read() };
        if word & HAS_GAP == 0 {
            return header;
        }
        // SAFETY: the header says a gap comes first, so the word before it is the gap's
        // last, which holds its length (invariant 2).
        let gap = unsafe { self.at(header - WORD).read() } & SIZE;
        header - gap
    }

    /// How many marks are set, all words of marks together.
    fn marks_set(&self) -> usize {
        self.mark_words(self.limit)
            .map(|word| {
                // SAFETY: the marks of `[base, limit)` lie in the region.
                unsafe { self.at(word).read() }.count_ones() as usize
            })
            .sum()
    }

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

    /// The blocks from `base` to `top`, in address order. Stops early at a word that
    /// does not describe a block inside `[base, top)`, so a broken heap's walk still ends.
    fn blocks(&self) -> impl Iterator<Item = Placed> + '_ {
        let mut start = self.base;
        core::iter::from_fn(move || {
            if start >= self.top {
                return None;
            }
            // SAFETY: blocks tile `[base, top)` (invariant 1), so a block starts at
            // `start` with its header or a gap word.
            let first = unsafe { self.at(start).read() };
            let header = match first & HAS_GAP {
                0 => start,
                _ => start.checked_add(first & SIZE)?,
            };
            if header.checked_add(HEADER)? > self.top {
                return None;
            }
            // SAFETY: as above; the header lies below `top`.
            let word = unsafe { self.at(header).read() };
            let placed = Placed {
                start,
                header,
                word,
            };
            // A size of 0 would put the payload at `top`, where no mark may be read. A
            // size that ends by `top` stops by it too, `top` being a word boundary.
            let requested = 1..=self.top - placed.payload();
            if !requested.contains(&placed.requested()) {
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
        // Of every `BYTES_PER_MARK_WORD / WORD + 1` words, blocks get all but one, which
        // holds their marks; one more word of marks covers a `base` that is not a
        // multiple of `BYTES_PER_MARK_WORD`.
        let words = (align::align_down(end, GRAIN).max(base) - base) / WORD;
        let mark_words = words.div_ceil(BYTES_PER_MARK_WORD / WORD + 1) + 1;
        let block_bytes = words.saturating_sub(mark_words) * WORD;
        let limit = base + block_bytes.min(align::align_down(SIZE, GRAIN));
        let mut heap = Bump {
            region,
            base,
            limit,
            marks: limit - base / BYTES_PER_MARK_WORD * WORD,
            top: base,
            live: 0,
            peak: base,
        };
        // The region's memory is uninitialised: the marks start out clear.
        heap.clear_marks(limit);
        heap
    }

    // ANCHOR: allocate
    #[inline]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if may_have_gap(layout) {
            return self.allocate_after_gap(layout);
        }
        // No gap: the header goes at `top` and the payload right after it.
        let header = self.top;
        let Some((_, end)) = place(header, layout).filter(|&(_, end)| end <= self.limit) else {
            return Err(self.refusal(layout));
        };
        // SAFETY: the block lies in `[top, limit)`, which is free.
        Ok(unsafe { self.take(header, layout.size(), end) })
    }
    // ANCHOR_END: allocate

    // ANCHOR: deallocate
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let ptr = ptr.as_ptr().addr();
        self.live -= 1;
        if self.live == 0 {
            // The heap is empty: start over, whatever was freed in which order.
            self.start_over();
        } else if !self.is_most_recent(ptr, layout.size()) {
            // A buried block: its mark, not its cold header, records the free.
            self.mark(ptr);
        } else {
            // `top` comes down to where the block starts.
            self.note_peak();
            // SAFETY: the caller's promise: `ptr` is live here with `layout`.
            self.top = unsafe { self.block_start(ptr, layout) };
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
        if may_have_gap(old) && !may_have_gap(new) {
            // `deallocate` trusts a small alignment to mean "no gap": keep it true.
            return Err(AllocError::Unsupported);
        }
        let ptr = ptr.as_ptr().addr();
        let end = ptr.checked_add(new.size()).ok_or(AllocError::Unsupported)?;
        if self.is_most_recent(ptr, old.size()) {
            // `top` moves with the block's end.
            if end > self.limit {
                return Err(AllocError::Exhausted);
            }
            self.note_peak();
            self.top = block_end(end);
        } else if block_end(end) != block_end(ptr + old.size()) {
            // A buried block can change only within its rounding.
            return Err(AllocError::Exhausted);
        }
        // SAFETY: the caller's promise: `ptr` is a live block of ours; the new size fits
        // `SIZE` because the block stays below `limit`.
        unsafe { *self.at(ptr - HEADER) = (*self.at(ptr - HEADER) & HAS_GAP) | new.size() };
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
        for block in self.blocks().filter(|block| !self.is_freed(block)) {
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
            if self.is_freed(&block) {
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
        // First the bounds, which the walk and the stats both rely on.
        let start = self.region.cast::<u8>().as_ptr().addr();
        if !(start <= self.base && self.base <= self.top && self.top <= self.limit)
            || self.limit > start + self.region.len()
        {
            return Err(HeapError::new("base <= top <= limit, inside the region").at(self.top));
        }
        check_walk(self)?;
        let (mut reached, mut live, mut freed) = (self.base, 0, 0);
        for block in self.blocks() {
            // The walk starts each block where the one before stopped, on a word
            // boundary: the blocks tile by construction, up to where the walk ends.
            let at = |invariant| HeapError::new(invariant).at(block.header);
            let gap = block.header - block.start;
            let gap_marked = gap == 0 || {
                // SAFETY: the gap lies inside `[base, top)` and is at least a word long.
                let last_word = unsafe { self.at(block.header - WORD).read() };
                last_word == HAS_GAP | gap
            };
            if block.has_gap() != (gap > 0) || !gap_marked {
                return Err(at(
                    "HAS_GAP is set exactly when a gap, marked at both ends, comes first",
                ));
            }
            let is_freed = self.is_freed(&block);
            live += usize::from(!is_freed);
            freed += usize::from(is_freed);
            reached = block.stop();
        }
        if reached != self.top {
            return Err(HeapError::new("blocks tile [base, top)").at(reached));
        }
        if live != self.live {
            return Err(HeapError::new("live counts the blocks not marked"));
        }
        if self.marks_set() != freed {
            return Err(HeapError::new("marks are set only at blocks below top"));
        }
        if live == 0 && self.top != self.base {
            return Err(HeapError::new("an empty heap starts over at base").at(self.top));
        }
        Ok(())
    }
    // ANCHOR_END: check

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reuse: Reuse::MostRecent,
            restores_when_empty: true,
            max_size: SIZE,
            max_align: 1 << (usize::BITS - 1),
            resizes_in_place: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawheap::Arena;

    /// What `check` says of a heap of 4 KiB holding two blocks, with `break_it` done to
    /// its fields.
    fn check_broken(break_it: impl FnOnce(&mut Bump)) -> &'static str {
        let mut heap = Arena::<Bump>::new(4096);
        let layout = Layout::from_size_align(24, 8).unwrap();
        heap.allocate(layout).unwrap();
        heap.allocate(layout).unwrap();
        heap.check().unwrap();
        break_it(&mut heap);
        heap.check().unwrap_err().invariant
    }

    #[test]
    fn check_names_a_pointer_out_of_order() {
        let bounds = "base <= top <= limit, inside the region";
        assert_eq!(check_broken(|h| h.top = h.limit + WORD), bounds);
        assert_eq!(check_broken(|h| h.base = h.top + WORD), bounds);
        assert_eq!(
            check_broken(|h| h.base -= WORD),
            bounds,
            "base before the region"
        );
        assert_eq!(
            check_broken(|h| h.limit += 64 * 1024),
            bounds,
            "limit past the region"
        );
    }
}
