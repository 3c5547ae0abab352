//! # headerless: a heap that keeps no header on used blocks
//!
//! C's `free(ptr)` is handed a pointer and nothing else, so a C allocator must find the
//! block's size from the pointer: it writes a header (8 or 16 bytes) in front of every
//! block it hands out. Rust's `dealloc(ptr, layout)` and `realloc(ptr, layout, new)` are
//! handed the layout too: the caller gives the size back. This heap uses it, and keeps
//! nothing in or around a used block.
//!
//! A heap still needs two facts about a block's neighbours when it frees one: *is the
//! block after it free, and how long is it?* and *is the block before it free, and where
//! does it start?* Free blocks can say so themselves (their memory is the heap's), used
//! blocks cannot (their memory is the caller's, any bit pattern at all). So the heap keeps
//! one bit per 8-byte granule in a side table at the start of the region, the *start
//! map*, and marks it so that one or two bits answer both questions:
//!
//! - a **used** block of `n >= 2` granules has its first granule's bit set, the others clear;
//! - a **free** block of `m >= 2` granules has its first, second and last granules' bits
//!   set, the others clear, and holds its size in its first word and its last.
//!
//! The block at granule `g` is therefore free exactly when bit `g + 1` is set (a used
//! block's second granule is never marked), the block ending at granule `g - 1` is free
//! exactly when bit `g - 1` is set (a used block's last granule is never marked), and a
//! used block ends where the next set bit is: that is how [`RawHeap::walk`] finds every
//! used block without a header. Used blocks take at least two granules (16 bytes) so that
//! the two kinds never look alike.
//!
//! ## Layout
//!
//! ```text
//!  region
//!  ┌───────────┬───────────────────────────────────────────────────────────────┬────┐
//!  │ start map │ arena: granules 0 .. granules, 8 bytes each                   │tail│
//!  └───────────┴───────────────────────────────────────────────────────────────┴────┘
//!    1 bit per arena granule, 1/65 of the region
//!
//!  arena      used (5 granules)        free (4 granules)          used (2)
//!            ┌───┬───┬───┬───┬───┐ ┌────────┬────────┬───┬──────┐ ┌───┬───┐
//!            │ caller's bytes    │ │size|nxt│prev|   │   │  |size│ │       │
//!            └───┴───┴───┴───┴───┘ └────────┴────────┴───┴──────┘ └───┴───┘
//!  start map   1   0   0   0   0      1        1      0     1       1   0
//! ```
//!
//! Free blocks sit on segregated lists, one per size class ([`class_of`]): exact classes
//! for 2 to 65 granules, then four classes per power of two. `allocate` takes the
//! smallest free block that fits (*best fit*), which is the
//! smallest fitting block of the first non-empty class at or above the request's.
//!
//! ## Placement ([`Placement`])
//!
//! [`LowEnd`] cuts every block from the low end of the free block it chose. [`SplitEnds`]
//! cuts requests above [`SPLIT_THRESHOLD`] bytes from the *high* end instead, so small
//! and large blocks grow from the two ends of the region. When a program interleaves
//! small and large blocks and frees the large ones (the malloc lab's *binary* pattern),
//! the holes they leave touch each other and merge, and a slightly larger request fits
//! in them; with one end, every hole sits between two small live blocks and is too small
//! for the next request. The cost: a large block lands at the top of the region, so the
//! high-water mark is the whole region, as for a buddy heap; the utilization to compare
//! is the one in the smallest region that completes a trace.
//!
//! A block that grows (`reallocate`) first grows in place into a free block after it,
//! then *slides* down into a free block before it (to the top of that room when it is
//! large under [`SplitEnds`]), and only then moves; a block that moves goes to the low
//! end of its new free block, with the rest of that block after it to grow into. A
//! buffer that grows again and again so keeps one place instead of leaving a trail of
//! holes (the malloc lab's *realloc* pattern).
//!
//! ## Invariants (checked by [`RawHeap::check`], one per field)
//!
//! 1. `map`: walking the arena from granule 0 by the rule above, every block has at
//!    least two granules; a free block's marks are exactly its first, second and last
//!    granules, its first and last words hold its size, and the next block starts where
//!    it ends; no two free blocks are neighbours.
//! 2. `heads[c]` is the first block of a doubly linked list of free blocks of class `c`,
//!    and every free block of the walk is on its class's list, once.
//! 3. Bit `c` of `nonempty` is set iff `heads[c]` holds a block.
//! 4. `usage` counts the used blocks of the walk.
//!
//! ## Cost of each operation
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | a bit scan for the first non-empty class, then one pass over that class's list (best fit), one unlink, at most two blocks marked and linked |
//! | `deallocate` | two bits read, at most two blocks unlinked, one marked and linked: no list is searched |
//! | `resize_in_place` | two bits; growing takes from the free block after, shrinking frees the tail |
//! | `reallocate` | `resize_in_place`; else, with the free blocks on both sides, one copy down (memmove); else `allocate`, copy, `deallocate` |
//! | `usable_size` | one bit |
//! | `stats`, `walk` | one pass over the blocks, a bit scan per used block |
//! | `check` | one pass over the blocks and one over the lists |
//!
//! The start map costs 1/65 of the region (1.5 %); a header costs 8 to 16 bytes of every
//! block, which is more as soon as blocks are smaller than 500 to 1000 bytes.
//!
//! ## Example
//!
//! ```
//! use core::alloc::Layout;
//! use rawheap::{Arena, RawHeap};
//! use headerless::Headerless;
//!
//! let mut heap = Arena::<Headerless>::new(4096);
//! let layout = Layout::from_size_align(24, 8).unwrap();
//! let a = heap.allocate(layout).unwrap();
//! let b = heap.allocate(layout).unwrap();
//! // No header between them: 24 bytes round to three granules.
//! assert_eq!(b.as_ptr().addr() - a.as_ptr().addr(), 24);
//! unsafe { heap.deallocate(a, layout) };
//! unsafe { heap.deallocate(b, layout) };
//! heap.check().unwrap();
//! ```
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

use rawheap::bits::{self, BITS};
use rawheap::{AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, Usage};

/// Bytes in a granule: block sizes and addresses are multiples of it.
pub const GRANULE: usize = 8;

/// The fewest granules a block has, used or free: two, so that bit `g + 1` tells a free
/// block (marked) from a used one (not marked).
pub const MIN_GRANULES: u32 = 2;

/// Requests above this many bytes are large for [`SplitEnds`].
pub const SPLIT_THRESHOLD: usize = 64;

/// "No block" in a list link or head.
const NIL: u32 = u32::MAX;

/// Exact classes: one per size from 2 to 65 granules.
const EXACT: u32 = 64;

/// Classes per power of two above the exact ones, as a power of two.
const SUB_BITS: u32 = 2;

/// Every class: the exact ones, then `1 << SUB_BITS` per power of two from 2^6 to 2^31.
pub const CLASSES: usize = EXACT as usize + ((32 - 6) << SUB_BITS);

/// Words of the non-empty bitmap.
const CLASS_WORDS: usize = CLASSES.div_ceil(BITS as usize);

/// The class of a free block of `granules >= 2`: `granules - 2` for the exact classes,
/// then the power of two and the next two bits.
pub const fn class_of(granules: u32) -> usize {
    if granules < MIN_GRANULES + EXACT {
        (granules - MIN_GRANULES) as usize
    } else {
        let power = granules.ilog2();
        let sub = (granules >> (power - SUB_BITS)) & ((1 << SUB_BITS) - 1);
        EXACT as usize + (((power - 6) << SUB_BITS) + sub) as usize
    }
}

/// Where a block is cut from the free block chosen for it.
pub trait Placement {
    /// Whether a request of `size` bytes is cut from the high end.
    fn from_high_end(size: usize) -> bool;
}

/// Every block from the low end of its free block: the heap grows from the bottom.
#[derive(Debug)]
pub enum LowEnd {}

impl Placement for LowEnd {
    #[inline]
    fn from_high_end(_size: usize) -> bool {
        false
    }
}

/// Small requests from the low end, requests above [`SPLIT_THRESHOLD`] bytes from the
/// high end: small and large blocks kept apart (see the crate documentation).
#[derive(Debug)]
pub enum SplitEnds {}

impl Placement for SplitEnds {
    #[inline]
    fn from_high_end(size: usize) -> bool {
        size > SPLIT_THRESHOLD
    }
}

/// The heap. See the crate documentation for the layout and the invariants.
pub struct Headerless<P = LowEnd> {
    /// The region, as handed to `new`.
    region: NonNull<[u8]>,
    /// The start map: bit `g` of word `g / BITS` marks granule `g` as in the crate
    /// documentation (a used block's first granule; a free block's first, second and
    /// last).
    map: NonNull<usize>,
    /// Granule 0 of the arena, just after the start map, aligned to [`GRANULE`].
    base: NonNull<u8>,
    /// Granules in the arena; below `u32::MAX`, so that [`NIL`] is never a granule.
    granules: u32,
    /// `heads[c]`: the first free block of class `c`, or [`NIL`]; each list is doubly
    /// linked through the blocks' `next` and `prev` words.
    heads: [u32; CLASSES],
    /// Bit `c` set iff `heads[c]` holds a block.
    nonempty: [usize; CLASS_WORDS],
    /// Live blocks, requested bytes and the high-water mark: what only the calls know.
    usage: Usage,
    _placement: PhantomData<P>,
}

// SAFETY: the heap is the only user of its region (the promise made to `new`), and all
// its pointers point into it: moving the heap to another thread moves everything.
unsafe impl<P> Send for Headerless<P> {}

/// Byte offsets of a free block's words: its size and list links in its first two
/// granules, its size again in the last four bytes of its last granule.
const SIZE_AT: usize = 0;
const NEXT_AT: usize = 4;
const PREV_AT: usize = 8;
const FOOTER_AT: usize = GRANULE - 4;

/// Granules for a request of `size` bytes (at least [`MIN_GRANULES`]), if that fits a
/// `u32`.
fn granules_for(size: usize) -> Option<u32> {
    let granules = size.checked_add(GRANULE - 1)? / GRANULE;
    u32::try_from(granules.max(MIN_GRANULES as usize)).ok()
}

impl<P: Placement> Headerless<P> {
    /// Granules of the arena for `room` granules of region: the arena and its start map
    /// (one 8-byte granule of map per 64 arena granules) must both fit, so the arena
    /// gets `room - ceil(room / 65)`; none when that is below a block.
    fn arena_granules(room: usize) -> u32 {
        let arena = room - room.div_ceil(65);
        let arena = u32::try_from(arena)
            .unwrap_or(u32::MAX - 1)
            .min(u32::MAX - 1);
        if arena < MIN_GRANULES { 0 } else { arena }
    }

    /// The address of granule `g` (which may be `self.granules`, one past the end).
    fn at(&self, g: u32) -> *mut u8 {
        // SAFETY: `g <= granules`, and the arena's `granules * GRANULE` bytes lie in the
        // region, so the offset stays inside it or one past its arena.
        unsafe { self.base.as_ptr().add(g as usize * GRANULE) }
    }

    /// The `u32` at byte `offset` of granule `g`.
    ///
    /// # Safety
    ///
    /// Granule `g` is the heap's (a free block's), `g < granules`, `offset <= 4`.
    unsafe fn word(&self, g: u32, offset: usize) -> u32 {
        // SAFETY: the caller's promise; the arena is aligned to 8, so the `u32` is aligned.
        unsafe { self.at(g).add(offset).cast::<u32>().read() }
    }

    /// Writes `value` at byte `offset` of granule `g`.
    ///
    /// # Safety
    ///
    /// As for [`word`](Self::word).
    unsafe fn set_word(&mut self, g: u32, offset: usize, value: u32) {
        // SAFETY: the caller's promise, as in `word`.
        unsafe { self.at(g).add(offset).cast::<u32>().write(value) }
    }

    /// Word `i` of the start map.
    fn map_word(&self, i: usize) -> usize {
        debug_assert!(i < (self.granules as usize).div_ceil(BITS as usize));
        // SAFETY: the map holds `granules.div_ceil(BITS)` words (see `new`).
        unsafe { self.map.as_ptr().add(i).read() }
    }

    /// Whether granule `g < granules` is marked.
    fn marked(&self, g: u32) -> bool {
        bits::is_set(self.map_word((g / BITS) as usize), g % BITS)
    }

    /// Marks or unmarks granule `g < granules`.
    fn mark(&mut self, g: u32, on: bool) {
        let i = (g / BITS) as usize;
        let word = bits::with_bit(self.map_word(i), g % BITS, on);
        // SAFETY: as in `map_word`.
        unsafe { self.map.as_ptr().add(i).write(word) }
    }

    /// The first marked granule at `from` or above, or `granules` if none.
    fn next_mark(&self, from: u32) -> u32 {
        let mut i = (from / BITS) as usize;
        let words = (self.granules as usize).div_ceil(BITS as usize);
        let mut bit = from % BITS;
        while i < words {
            if let Some(found) = bits::lowest_set_from(self.map_word(i), bit) {
                return (i as u32 * BITS + found).min(self.granules);
            }
            i += 1;
            bit = 0;
        }
        self.granules
    }

    // ANCHOR: neighbours
    /// Whether a block starting at granule `g` is free.
    fn is_free(&self, g: u32) -> bool {
        g + 1 < self.granules && self.marked(g + 1)
    }

    /// The size in granules of the free block at `g`.
    fn free_size(&self, g: u32) -> u32 {
        // SAFETY: `g` starts a free block, whose first word is the heap's.
        unsafe { self.word(g, SIZE_AT) }
    }

    /// Granules of the used block at `g` that was asked for `n` granules: `n`, or `n + 1`
    /// when a one-granule remainder was too small to be a free block of its own.
    fn used_extent(&self, g: u32, n: u32) -> u32 {
        let end = g + n;
        if end >= self.granules || self.marked(end) {
            n
        } else {
            n + 1
        }
    }
    // ANCHOR_END: neighbours

    /// Turns `[g, g + m)` into a free block: marks, size words, and onto its list.
    fn make_free(&mut self, g: u32, m: u32) {
        debug_assert!(m >= MIN_GRANULES && g + m <= self.granules);
        self.mark(g, true);
        self.mark(g + 1, true);
        self.mark(g + m - 1, true);
        // SAFETY: `[g, g + m)` is no live block's any more: the heap's to write.
        unsafe {
            self.set_word(g, SIZE_AT, m);
            self.set_word(g + m - 1, FOOTER_AT, m);
        }
        self.push(g, m);
    }

    /// Takes the free block at `g` of `m` granules off its list and clears its marks.
    fn unmake_free(&mut self, g: u32, m: u32) {
        self.unlink(g, m);
        self.mark(g + 1, false);
        self.mark(g + m - 1, false);
        self.mark(g, false);
    }

    /// Puts the free block at `g` at the head of its class's list.
    fn push(&mut self, g: u32, m: u32) {
        let class = class_of(m);
        let head = self.heads[class];
        // SAFETY: `g` starts a free block of `m >= 2` granules: its first two granules
        // are the heap's; so is `head`'s, a free block on the list.
        unsafe {
            self.set_word(g, NEXT_AT, head);
            self.set_word(g + 1, PREV_AT - GRANULE, NIL);
            if head != NIL {
                self.set_word(head + 1, PREV_AT - GRANULE, g);
            }
        }
        self.heads[class] = g;
        self.set_nonempty(class, true);
    }

    /// Takes the free block at `g` of `m` granules off its class's list.
    fn unlink(&mut self, g: u32, m: u32) {
        let class = class_of(m);
        // SAFETY: `g` and its list neighbours are free blocks on the list: the heap's.
        unsafe {
            let next = self.word(g, NEXT_AT);
            let prev = self.word(g + 1, PREV_AT - GRANULE);
            if prev == NIL {
                self.heads[class] = next;
            } else {
                self.set_word(prev, NEXT_AT, next);
            }
            if next != NIL {
                self.set_word(next + 1, PREV_AT - GRANULE, prev);
            }
        }
        if self.heads[class] == NIL {
            self.set_nonempty(class, false);
        }
    }

    fn set_nonempty(&mut self, class: usize, on: bool) {
        let word = &mut self.nonempty[class / BITS as usize];
        *word = bits::with_bit(*word, (class % BITS as usize) as u32, on);
    }

    /// The first non-empty class at `from` or above.
    fn nonempty_from(&self, from: usize) -> Option<usize> {
        let mut i = from / BITS as usize;
        let mut bit = (from % BITS as usize) as u32;
        while i < CLASS_WORDS {
            if let Some(found) = bits::lowest_set_from(self.nonempty[i], bit) {
                return Some(i * BITS as usize + found as usize);
            }
            i += 1;
            bit = 0;
        }
        None
    }

    /// The smallest free block of `class` with at least `need` granules: `(granule,
    /// size)`. In a logarithmic class the whole list is searched, lowest address first on
    /// ties; an exact class gives its most recently freed block.
    fn smallest_in(&self, class: usize, need: u32) -> Option<(u32, u32)> {
        let mut g = self.heads[class];
        if class < EXACT as usize {
            // An exact class: its blocks have one size, which fits; no search.
            return (g != NIL).then(|| (g, self.free_size(g)));
        }
        let mut best: Option<(u32, u32)> = None;
        while g != NIL {
            let m = self.free_size(g);
            if m >= need && best.is_none_or(|(bg, bm)| (m, g) < (bm, bg)) {
                best = Some((g, m));
            }
            // SAFETY: `g` is a free block on the list.
            g = unsafe { self.word(g, NEXT_AT) };
        }
        best
    }

    /// The smallest free block of at least `need` granules (best fit): in the request's
    /// class if one there fits, else in the first non-empty class above, where all fit.
    fn best_fit(&self, need: u32) -> Option<(u32, u32)> {
        if need > self.granules {
            return None;
        }
        let class = class_of(need);
        if let Some(found) = self.smallest_in(class, need) {
            return Some(found);
        }
        let above = self.nonempty_from(class + 1)?;
        self.smallest_in(above, need)
    }

    /// The offset from the region's start to the end of granule `end`.
    fn offset_of(&self, end: u32) -> usize {
        rawheap::offset_in(self.region, self.at(end).addr())
    }

    /// Granules to skip from granule `g` so that the block starts aligned to
    /// `align_granules` granules: never exactly one, which could not be a free block.
    fn pad(&self, g: u32, align_granules: u32) -> u32 {
        let misaligned = ((self.at(g).addr() / GRANULE) % align_granules as usize) as u32;
        match (align_granules - misaligned) % align_granules {
            1 => 1 + align_granules,
            pad => pad,
        }
    }

    /// Cuts a used block of `n` granules out of the free block `[g, g + m)`, from its
    /// high end when `high` (and no one-granule remainder would be left below), else
    /// from its low end aligned to `align_granules`. A remainder of one granule joins
    /// the block (its extent is then `n + 1`); larger ones become free blocks. Returns
    /// the block's first granule and its extent.
    fn carve(&mut self, g: u32, m: u32, n: u32, align_granules: u32, high: bool) -> (u32, u32) {
        self.unmake_free(g, m);
        let start = if high && m - n != 1 {
            g + m - n
        } else {
            g + self.pad(g, align_granules)
        };
        if start > g {
            self.make_free(g, start - g);
        }
        let mut end = start + n;
        match g + m - end {
            0 => {}
            1 => end += 1,
            rest => self.make_free(end, rest),
        }
        self.mark(start, true);
        (start, end - start)
    }

    // ANCHOR: release
    /// Frees `[g, g + extent)`, merged with a free block on either side.
    fn release(&mut self, g: u32, extent: u32) {
        let (mut from, mut to) = (g, g + extent);
        self.mark(g, false);
        if self.is_free(to) {
            let m = self.free_size(to);
            self.unmake_free(to, m);
            to += m;
        }
        if g > 0 && self.marked(g - 1) {
            // SAFETY: bit `g - 1` marks the last granule of a free block, whose last
            // word holds its size.
            let m = unsafe { self.word(g - 1, FOOTER_AT) };
            from = g - m;
            self.unmake_free(from, m);
        }
        self.make_free(from, to - from);
    }
    // ANCHOR_END: release

    // ANCHOR: slide
    /// Grows the live block at `ptr` into the free block before it (and the one after
    /// it, if any) when together they hold `new`: the contents move down, in place of
    /// a copy to fresh memory that would leave the old block's room behind. A block
    /// that grows again and again (a buffer) stays where it can keep growing, as
    /// [`SplitEnds`] needs for large blocks at the top of the region. `None`, with
    /// nothing changed, when the neighbours are too small.
    ///
    /// # Safety
    ///
    /// `ptr` is live in this heap with layout `old`; `new.align() <= GRANULE`.
    unsafe fn slide(&mut self, ptr: NonNull<u8>, old: Layout, new: Layout) -> Option<NonNull<u8>> {
        let g = self.granule_of(ptr);
        let extent = self.used_extent(g, granules_for(old.size()).unwrap_or(MIN_GRANULES));
        let n = granules_for(new.size())?;
        if g == 0 || !self.marked(g - 1) {
            return None;
        }
        // SAFETY: bit `g - 1` marks the last granule of a free block, which holds its size.
        let below = unsafe { self.word(g - 1, FOOTER_AT) };
        let end = g + extent;
        let above = if self.is_free(end) {
            self.free_size(end)
        } else {
            0
        };
        let (from, to) = (g - below, end + above);
        if to - from < n {
            return None;
        }
        self.unmake_free(from, below);
        if above > 0 {
            self.unmake_free(end, above);
        }
        self.mark(g, false);
        let mut start = if P::from_high_end(new.size()) {
            to - n
        } else {
            from
        };
        if start - from == 1 {
            start = from;
        }
        // SAFETY: `[from, to)` is this block and the free blocks around it, all the
        // heap's now; `start < g`, and `copy` (memmove) allows the overlap.
        unsafe {
            self.at(start)
                .copy_from(ptr.as_ptr(), old.size().min(new.size()))
        };
        if start > from {
            self.make_free(from, start - from);
        }
        let mut block_end = start + n;
        match to - block_end {
            0 => {}
            1 => block_end += 1,
            rest => self.make_free(block_end, rest),
        }
        self.mark(start, true);
        let reach = self.offset_of(block_end);
        self.usage.on_resize(old.size(), new.size(), reach);
        // SAFETY: `start < granules`: a pointer into the arena, never null.
        Some(unsafe { NonNull::new_unchecked(self.at(start)) })
    }
    // ANCHOR_END: slide

    /// A block for `layout`, cut from the high end of its free block when `high` (and
    /// the alignment is a granule's), else from the low end.
    fn place(&mut self, layout: Layout, high: bool) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        let too_big = AllocError::Unsupported;
        let n = granules_for(layout.size()).ok_or(too_big)?;
        let align_granules =
            u32::try_from((layout.align() / GRANULE).max(1)).map_err(|_| too_big)?;
        let need = if align_granules == 1 {
            n
        } else {
            // The worst padding `pad` can ask for.
            n.checked_add(align_granules + 1).ok_or(too_big)?
        };
        if n > self.granules || need > self.granules {
            return Err(if n > self.granules {
                too_big
            } else {
                AllocError::Exhausted
            });
        }
        let (g, m) = self.best_fit(need).ok_or(AllocError::Exhausted)?;
        let high = align_granules == 1 && high;
        let (start, extent) = self.carve(g, m, n, align_granules, high);
        let end = self.offset_of(start + extent);
        self.usage.on_allocate(layout.size(), end);
        // SAFETY: `start < granules`: a pointer into the arena, never null.
        Ok(unsafe { NonNull::new_unchecked(self.at(start)) })
    }

    /// The granule of a pointer this heap handed out.
    fn granule_of(&self, ptr: NonNull<u8>) -> u32 {
        ((ptr.as_ptr().addr() - self.base.as_ptr().addr()) / GRANULE) as u32
    }
}

// SAFETY: blocks come from free blocks inside the arena, never overlap (a block is cut
// out of a free block, which is taken off its list first), and the heap's own words
// live only in free blocks and the start map; `walk` and `stats` read the same map;
// every refusal leaves the heap unchanged (see `allocate`).
unsafe impl<P: Placement> RawHeap for Headerless<P> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let start = region.cast::<u8>();
        let pad = rawheap::align::padding_to(start.as_ptr().addr(), GRANULE).min(region.len());
        let room = (region.len() - pad) / GRANULE;
        let granules = Self::arena_granules(room);
        let map_granules = if granules == 0 {
            0
        } else {
            (granules as usize).div_ceil(64)
        };
        // SAFETY: `pad + (map_granules + granules) * GRANULE <= region.len()` (see
        // `arena_granules`): both offsets are inside the region or one past it.
        let (map, base) = unsafe {
            let map = start.add(pad);
            (map, map.add(map_granules * GRANULE))
        };
        let mut heap = Headerless {
            region,
            map: map.cast(),
            base,
            granules,
            heads: [NIL; CLASSES],
            nonempty: [0; CLASS_WORDS],
            usage: Usage::default(),
            _placement: PhantomData,
        };
        // SAFETY: the map's bytes are in the region, which is the heap's; a map granule
        // is 8 bytes, a whole number of aligned `usize` words.
        unsafe { map.as_ptr().write_bytes(0, map_granules * GRANULE) };
        if granules > 0 {
            heap.make_free(0, granules);
        }
        heap
    }

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.place(layout, P::from_high_end(layout.size()))
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let g = self.granule_of(ptr);
        // The caller's promise: `layout` is the block's, so `granules_for` fits.
        let n = granules_for(layout.size()).unwrap_or(MIN_GRANULES);
        let extent = self.used_extent(g, n);
        self.usage.on_deallocate(layout.size());
        self.release(g, extent);
    }

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        let g = self.granule_of(ptr);
        let extent = self.used_extent(g, granules_for(old.size()).unwrap_or(MIN_GRANULES));
        let n = granules_for(new.size()).ok_or(AllocError::Unsupported)?;
        let end = g + extent;
        if n > extent {
            if !self.is_free(end) || extent + self.free_size(end) < n {
                return Err(AllocError::Exhausted);
            }
            let m = self.free_size(end);
            self.unmake_free(end, m);
            match extent + m - n {
                0 | 1 => {}
                rest => self.make_free(g + n, rest),
            }
        } else if extent - n >= MIN_GRANULES {
            // The tail goes back, merged with a free block after it.
            self.mark(g + n, true);
            self.release(g + n, extent - n);
        }
        let reach = g + self.used_extent(g, n);
        let reach = self.offset_of(reach);
        self.usage.on_resize(old.size(), new.size(), reach);
        Ok(())
    }

    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        if new.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        if rawheap::align::ptr_is_aligned(ptr, new.align()) {
            // SAFETY: the caller's promise about `ptr` and `old`; alignment and size were
            // just checked.
            if unsafe { self.resize_in_place(ptr, old, new) }.is_ok() {
                return Ok(ptr);
            }
        }
        if new.align() <= GRANULE {
            // SAFETY: the caller's promise about `ptr` and `old`.
            if let Some(moved) = unsafe { self.slide(ptr, old, new) } {
                return Ok(moved);
            }
        }
        // A block that moves to grow is a buffer that may grow again: it goes to the low
        // end of its free block, with the rest of that block after it to grow into.
        let moved = self.place(new, false)?;
        // SAFETY: the caller's promise about `ptr`; `moved` was just placed for `new`.
        Ok(unsafe { rawheap::move_block(self, ptr, old, new, moved) })
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        let g = self.granule_of(ptr);
        let n = granules_for(layout.size()).unwrap_or(MIN_GRANULES);
        self.used_extent(g, n) as usize * GRANULE
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
        let arena = self.base.as_ptr().addr();
        let arena_end = self.at(self.granules).addr();
        if arena > start {
            visit(Block::overhead(start, arena - start));
        }
        let mut g = 0;
        while g < self.granules {
            let (size, free) = if self.is_free(g) {
                // A free block's size, clamped so that a broken heap still ends the walk.
                (self.free_size(g).clamp(1, self.granules - g), true)
            } else {
                (self.next_mark(g + 1) - g, false)
            };
            let addr = self.at(g).addr();
            let bytes = size as usize * GRANULE;
            visit(if free {
                Block::free(addr, bytes)
            } else {
                Block::used(addr, bytes)
            });
            g += size;
        }
        if end > arena_end {
            visit(Block::overhead(arena_end, end - arena_end));
        }
    }

    fn check(&self) -> Result<(), HeapError> {
        self.check_map()?;
        self.check_lists()?;
        rawheap::check_walk(self)
    }

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

impl<P: Placement> Headerless<P> {
    /// Invariants 1 and 4: the blocks the start map describes.
    fn check_map(&self) -> Result<(), HeapError> {
        let error = |what: &'static str, g: u32| HeapError::new(what).at(self.at(g).addr());
        let (mut g, mut used, mut previous_free) = (0, 0, false);
        while g < self.granules {
            if !self.marked(g) {
                return Err(error("every block's first granule is marked", g));
            }
            if self.is_free(g) {
                let m = self.free_size(g);
                if m < MIN_GRANULES || m > self.granules - g {
                    return Err(error("a free block's size fits the arena", g));
                }
                // SAFETY: `[g, g + m)` is a free block inside the arena: the heap's.
                if unsafe { self.word(g + m - 1, FOOTER_AT) } != m {
                    return Err(error("a free block's last word holds its size", g));
                }
                let inner = self.next_mark(g + 2);
                if m > 2 && inner != g + m - 1 {
                    return Err(error(
                        "a free block marks its first, second and last granules only",
                        g,
                    ));
                }
                if previous_free {
                    return Err(error("no two free blocks are neighbours", g));
                }
                previous_free = true;
                g += m;
            } else {
                let extent = self.next_mark(g + 1) - g;
                if extent < MIN_GRANULES {
                    return Err(error("a used block has at least two granules", g));
                }
                used += 1;
                previous_free = false;
                g += extent;
            }
        }
        if used != self.usage.live_blocks {
            return Err(HeapError::new("usage counts the used blocks of the walk"));
        }
        Ok(())
    }

    /// Invariants 2 and 3: the lists and their bitmap.
    fn check_lists(&self) -> Result<(), HeapError> {
        let mut on_lists = 0usize;
        for (class, &head) in self.heads.iter().enumerate() {
            let bit = bits::is_set(
                self.nonempty[class / BITS as usize],
                (class % BITS as usize) as u32,
            );
            if bit != (head != NIL) {
                return Err(HeapError::new(
                    "a class's non-empty bit is set iff its list holds a block",
                ));
            }
            let (mut g, mut prev) = (head, NIL);
            while g != NIL {
                let error = |what: &'static str| {
                    HeapError::new(what).at(self.at(g.min(self.granules)).addr())
                };
                if g >= self.granules || !self.marked(g) || !self.is_free(g) {
                    return Err(error("a list holds only free blocks"));
                }
                if class_of(self.free_size(g).max(MIN_GRANULES)) != class {
                    return Err(error("a free block is on the list of its class"));
                }
                // SAFETY: `g` starts a free block: its words are the heap's.
                let (back, next) =
                    unsafe { (self.word(g + 1, PREV_AT - GRANULE), self.word(g, NEXT_AT)) };
                if back != prev {
                    return Err(error("a list is linked both ways"));
                }
                on_lists += 1;
                if on_lists > self.granules as usize {
                    return Err(error("a list ends"));
                }
                (prev, g) = (g, next);
            }
        }
        let mut free_blocks = 0usize;
        self.walk(&mut |block| free_blocks += usize::from(block.kind == rawheap::BlockKind::Free));
        if free_blocks != on_lists {
            return Err(HeapError::new("every free block is on a list, once"));
        }
        Ok(())
    }
}
