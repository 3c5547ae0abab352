//! Boundary tags and intrusive free-list links: the block format of the heaps that cut
//! one region into variable-sized blocks and glue them back together (free-list,
//! segregated-fit, TLSF).
//!
//! ## The idea
//!
//! Each block starts with a one-word **header** holding its size and two bits: whether
//! the block is in use, and whether the block physically before it is. Sizes make the
//! blocks a chain you can walk forward. A free block also repeats its size in a
//! **footer**, its last word, so the block after it can find its start and merge with it
//! in O(1): that is Knuth's boundary tag. A used block needs no footer, because its
//! successor's `PREV_USED` bit already says "don't merge with me" (the CS:APP
//! optimisation), so a used block spends one word on bookkeeping.
//!
//! A free block's payload is not used by anyone, so it carries the **links** of the list
//! it is on: the list costs no memory of its own (an *intrusive* list).
//!
//! ```text
//!   used block                               free block
//!   ┌────────────────────────┐ <- BlockRef   ┌────────────────────────┐ <- BlockRef
//!   │ size | PREV_USED | USED│   (header)    │ size | PREV_USED       │   (header)
//!   ├────────────────────────┤ <- payload    ├────────────────────────┤
//!   │                        │   (aligned    │ next free (or none)    │   links of the
//!   │ payload: size - WORD   │   to GRANULE) │ prev free (or none)    │   BlockList
//!   │ bytes, all usable      │               │ ...                    │
//!   │                        │               ├────────────────────────┤
//!   │                        │               │ size                   │   (footer)
//!   └────────────────────────┘               └────────────────────────┘
//!   the next block's header has PREV_USED    the next block's header has PREV_USED
//!   set                                      clear, so it may read this footer
//! ```
//!
//! A region is formatted as a [`Span`]: blocks from [`Span::first`] up to an
//! **epilogue**, a zero-sized used header that stops every walk and every merge at the
//! end. The first block has `PREV_USED` set, so nothing merges past the start either.
//! The bytes before the first header and after the epilogue (at most `GRANULE + WORD`
//! each, to align the blocks in a region that starts anywhere) belong to no block.
//!
//! ## Invariants a heap built on this module keeps
//!
//! 1. Headers sit at addresses `≡ -WORD (mod GRANULE)`, so every payload is aligned to
//!    [`GRANULE`]; sizes are multiples of `GRANULE` and at least [`MIN_BLOCK`] (room for
//!    header, two links and footer); the blocks tile the span exactly.
//! 2. `PREV_USED` of every block tells the truth about the block before it; a free
//!    block's footer equals its size.
//! 3. With immediate coalescing (every heap here): no two free blocks are neighbours.
//!
//! ## How to use it
//!
//! The writes come in a fixed order, because a new header may land on an old link:
//! *plan* (read sizes: [`fit_gap`], [`Cut::plan`], [`Merge::plan`], [`Grow::plan`]),
//! *relink* the lists (the planned blocks tell which blocks leave and which arrive),
//! then *write the tags* (`write_tags`). Lists are the caller's business, so a heap with
//! one list (free-list) and a heap with a table of lists (segregated-fit, TLSF) use the
//! same plans. What does not depend on the lists is here once too: [`walk_span`]
//! reports a span's blocks, [`check_span`] checks invariants 1 to 3 and hands each free
//! block to the heap's own list check, and [`refusal`] tells `Exhausted` from
//! `Unsupported`.
//!
//! Everything here is `unsafe`: a [`BlockRef`] is a bare pointer, and each function
//! trusts that it points at a block header of a live, formatted span.

use core::alloc::Layout;
use core::mem::size_of;
use core::ptr::NonNull;

use crate::{AllocError, Block, HeapError, align};

/// Bytes in a machine word: a header, a footer or a link.
pub const WORD: usize = size_of::<usize>();

/// Bytes of bookkeeping in front of every payload.
pub const HEADER: usize = WORD;

/// Block sizes are multiples of this, and every payload is aligned to it (16 bytes on a
/// 64-bit target, like `malloc`).
pub const GRANULE: usize = 2 * WORD;

/// The smallest block: header, two links and footer, so that it can be freed.
pub const MIN_BLOCK: usize = 4 * WORD;

/// Header bit: this block is in use.
const USED: usize = 0b01;
/// Header bit: the block physically before this one is in use (or there is none).
const PREV_USED: usize = 0b10;
/// Every flag bit; sizes are multiples of `GRANULE`, so these bits are free.
const FLAGS: usize = USED | PREV_USED;

/// The largest request whose block size a `usize` holds: adding the header and rounding
/// up to a granule do not overflow.
const LARGEST_REQUEST: usize = usize::MAX - (HEADER + GRANULE - 1);

/// The block size that serves a request of `size` bytes: header plus payload, rounded up
/// to a granule, at least [`MIN_BLOCK`]. `None` for size 0, which no heap serves, and
/// when the size overflows.
#[inline]
pub const fn block_size(size: usize) -> Option<usize> {
    // One comparison, on every allocation, turns away both: 0 wraps to `usize::MAX`.
    if size.wrapping_sub(1) >= LARGEST_REQUEST {
        return None;
    }
    let rounded = (size + (HEADER + GRANULE - 1)) & !(GRANULE - 1);
    Some(if rounded < MIN_BLOCK {
        MIN_BLOCK
    } else {
        rounded
    })
}

/// A block, as a pointer to its header.
///
/// # Safety of the methods
///
/// Every `unsafe` method requires that `self` points at the header of a block inside a
/// live span formatted by [`Span::format`], valid for reads and writes, with the
/// invariants in the module documentation holding for the blocks it reads (a method that
/// reads a neighbour or a link says so).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockRef(NonNull<usize>);

// SAFETY: a `BlockRef` is an address and nothing more: every access through it is an
// `unsafe` method whose caller vouches for the memory, so sending one to another thread
// is as harmless as sending a `usize`. Heaps keep them in their own fields and lists.
unsafe impl Send for BlockRef {}

impl BlockRef {
    /// The block whose header is at `header`.
    ///
    /// # Safety
    ///
    /// `header` points at a block header of a live span (see [`BlockRef`]).
    #[inline]
    pub const unsafe fn at(header: NonNull<u8>) -> Self {
        BlockRef(header.cast())
    }

    /// The block whose payload starts at `payload`: the inverse of [`BlockRef::payload`].
    ///
    /// # Safety
    ///
    /// `payload` was returned by `payload()` of a block of a live span.
    #[inline]
    pub unsafe fn from_payload(payload: NonNull<u8>) -> Self {
        // SAFETY: the header is the word right before the payload, in the same region.
        BlockRef(unsafe { payload.byte_sub(HEADER) }.cast())
    }

    /// The address of the header.
    #[inline]
    pub fn addr(self) -> usize {
        self.0.as_ptr().addr()
    }

    /// One past the block's last byte: the next block's header.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`].
    #[inline]
    pub unsafe fn end(self) -> usize {
        // SAFETY: the caller's promise about `self`.
        self.addr() + unsafe { self.size() }
    }

    /// The first byte the block's user may use, aligned to [`GRANULE`].
    ///
    /// # Safety
    ///
    /// See [`BlockRef`].
    #[inline]
    pub unsafe fn payload(self) -> NonNull<u8> {
        // SAFETY: every block is at least `MIN_BLOCK > HEADER` bytes, so the payload is
        // inside the block.
        unsafe { self.0.cast::<u8>().byte_add(HEADER) }
    }

    #[inline]
    unsafe fn header(self) -> usize {
        // SAFETY: the caller's promise: `self` is an aligned, readable header.
        unsafe { self.0.read() }
    }

    #[inline]
    unsafe fn set_header(self, word: usize) {
        // SAFETY: the caller's promise: `self` is an aligned, writable header.
        unsafe { self.0.write(word) }
    }

    /// Bytes in the block, header (and footer) included.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`].
    #[inline]
    pub unsafe fn size(self) -> usize {
        // SAFETY: the caller's promise about `self`.
        unsafe { self.header() & !FLAGS }
    }

    /// Whether the block is in use.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`].
    #[inline]
    pub unsafe fn is_used(self) -> bool {
        // SAFETY: the caller's promise about `self`.
        unsafe { self.header() & USED != 0 }
    }

    /// Whether the block physically before this one is in use (or this is the first).
    ///
    /// # Safety
    ///
    /// See [`BlockRef`].
    #[inline]
    pub unsafe fn prev_used(self) -> bool {
        // SAFETY: the caller's promise about `self`.
        unsafe { self.header() & PREV_USED != 0 }
    }

    /// The size a free block's footer holds.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`]; the block is free.
    #[inline]
    pub unsafe fn footer(self) -> usize {
        // SAFETY: a free block is at least `MIN_BLOCK` bytes, so its last word is inside
        // it and aligned like its header.
        unsafe { self.footer_ptr().read() }
    }

    /// # Safety
    /// See [`BlockRef`].
    #[inline]
    unsafe fn footer_ptr(self) -> NonNull<usize> {
        // SAFETY: the caller's promise: the last word of the block is inside the block.
        unsafe { self.0.byte_add(self.size() - WORD) }
    }

    /// The block right after this one (the epilogue after the last block).
    ///
    /// # Safety
    ///
    /// See [`BlockRef`]; `self` is not the epilogue.
    #[inline]
    pub unsafe fn next_phys(self) -> BlockRef {
        // SAFETY: blocks tile the span up to the epilogue, so `self + size` is a header.
        BlockRef(unsafe { self.0.byte_add(self.size()) })
    }

    /// The block right before this one, found through its footer.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`]; `self.prev_used()` is false, so the block before is free and
    /// the word before `self` is its footer.
    #[inline]
    pub unsafe fn prev_phys(self) -> BlockRef {
        // SAFETY: the word before `self` is the footer of the free block before it,
        // which holds that block's size.
        unsafe {
            let prev_size = self.0.byte_sub(WORD).read();
            BlockRef(self.0.byte_sub(prev_size))
        }
    }

    /// Sets or clears `PREV_USED`, keeping the rest of the header.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`]; `self` may be the epilogue.
    #[inline]
    pub unsafe fn set_prev_used(self, prev_used: bool) {
        // SAFETY: the caller's promise about `self`.
        unsafe {
            let word = self.header() & !PREV_USED;
            self.set_header(word | if prev_used { PREV_USED } else { 0 });
        }
    }

    /// Writes the header of a used block of `size` bytes.
    ///
    /// # Safety
    ///
    /// `self` is `GRANULE`-placed inside a live span and `size` bytes from it belong to
    /// the caller's heap; `size` is a multiple of `GRANULE`.
    #[inline]
    pub unsafe fn write_used(self, size: usize, prev_used: bool) {
        // SAFETY: the caller's promise about `self`.
        unsafe { self.set_header(size | USED | if prev_used { PREV_USED } else { 0 }) }
    }

    /// Writes the header and footer of a free block of `size` bytes. Its links are not
    /// touched: they belong to whatever list the caller puts it on.
    ///
    /// # Safety
    ///
    /// As for [`write_used`](Self::write_used), and `size >= MIN_BLOCK`.
    #[inline]
    pub unsafe fn write_free(self, size: usize, prev_used: bool) {
        // SAFETY: the caller's promise: the block's last word, `size - WORD` bytes in,
        // is its footer. The footer's place comes from `size`, not from the header just
        // written, which would take the flags off again (two instructions on every free).
        unsafe {
            self.set_header(size | if prev_used { PREV_USED } else { 0 });
            self.0.byte_add(size - WORD).write(size);
        }
    }

    /// # Safety
    /// See [`BlockRef`]; the block is free and at least `MIN_BLOCK` long.
    #[inline]
    unsafe fn links(self) -> NonNull<Links> {
        // SAFETY: the two words after the header are inside a free block.
        unsafe { self.0.byte_add(HEADER).cast() }
    }

    /// The next block on this free block's list.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`]; the block is free and on a [`BlockList`].
    #[inline]
    pub unsafe fn next_free(self) -> Option<BlockRef> {
        // SAFETY: the caller's promise: the links were written by `BlockList`.
        unsafe { self.links().as_ref().next }
    }

    /// The previous block on this free block's list.
    ///
    /// # Safety
    ///
    /// See [`BlockRef`]; the block is free and on a [`BlockList`].
    #[inline]
    pub unsafe fn prev_free(self) -> Option<BlockRef> {
        // SAFETY: the caller's promise: the links were written by `BlockList`.
        unsafe { self.links().as_ref().prev }
    }

    #[inline]
    unsafe fn set_next_free(self, next: Option<BlockRef>) {
        // SAFETY: the caller's promise: a free block has room for its links.
        unsafe { (&raw mut (*self.links().as_ptr()).next).write(next) }
    }

    #[inline]
    unsafe fn set_prev_free(self, prev: Option<BlockRef>) {
        // SAFETY: the caller's promise: a free block has room for its links.
        unsafe { (&raw mut (*self.links().as_ptr()).prev).write(prev) }
    }
}

/// The two words after a free block's header. They hold pointers, not addresses, so the
/// pointers keep their provenance (the region's) as they sit in memory.
#[repr(C)]
struct Links {
    next: Option<BlockRef>,
    prev: Option<BlockRef>,
}

/// A doubly linked list of free blocks, threaded through the blocks themselves. The list
/// owns only its head; the links live in the blocks' payloads.
///
/// Every operation is O(1), except [`iter`](BlockList::iter)ating. The order is the
/// caller's: [`push_front`](BlockList::push_front) gives LIFO order, and
/// [`replace`](BlockList::replace) lets a block take another's place.
#[derive(Debug, Default)]
pub struct BlockList {
    /// The first block, or `None` when the list is empty. Its `prev_free` is `None`.
    head: Option<BlockRef>,
}

impl BlockList {
    /// An empty list.
    pub const fn new() -> Self {
        BlockList { head: None }
    }

    /// The first block, if any.
    #[inline]
    pub fn first(&self) -> Option<BlockRef> {
        self.head
    }

    /// Puts a free block at the front. Returns whether the list was empty: a heap that
    /// keeps a bitmap of its non-empty lists has a bit to set only then, and the test
    /// is the one the list makes anyway.
    ///
    /// # Safety
    ///
    /// `block` is a free block of a live span (see [`BlockRef`]), on no list; every
    /// block on this list is too.
    #[inline]
    pub unsafe fn push_front(&mut self, block: BlockRef) -> bool {
        let old = self.head;
        self.head = Some(block);
        // SAFETY: the caller's promise: `block` and the old head are free blocks with
        // room for links.
        unsafe {
            block.set_prev_free(None);
            block.set_next_free(old);
            match old {
                Some(old) => {
                    old.set_prev_free(Some(block));
                    false
                }
                None => true,
            }
        }
    }

    /// Takes `first`, the first block, off the list. Cheaper than
    /// [`unlink`](Self::unlink) for a caller who knows the block is first.
    ///
    /// # Safety
    ///
    /// `first` is the first block of this list, whose blocks are live free blocks.
    #[inline]
    pub unsafe fn unlink_first(&mut self, first: BlockRef) {
        // SAFETY: the caller's promise: `first` and the block after it are on the list.
        unsafe {
            self.head = first.next_free();
            if let Some(next) = self.head {
                next.set_prev_free(None);
            }
        }
    }

    /// Takes `block` off its list when a block is in front of it there, by linking its
    /// two neighbours to each other, and returns true; returns false, changing nothing,
    /// when `block` is the first, whose list's head must change too.
    ///
    /// A heap with many lists must work out which list a block is on (its size class)
    /// to reach the list's head; a block behind the head spares it that work.
    ///
    /// # Safety
    ///
    /// `block` is on a list whose blocks are live free blocks.
    #[inline]
    pub unsafe fn unlink_behind_head(block: BlockRef) -> bool {
        // SAFETY: the caller's promise: `block` and its list neighbours are on the list.
        unsafe {
            let Some(prev) = block.prev_free() else {
                return false;
            };
            let next = block.next_free();
            prev.set_next_free(next);
            if let Some(next) = next {
                next.set_prev_free(Some(prev));
            }
        }
        true
    }

    /// Takes a block off the list; returns the block that followed it.
    ///
    /// # Safety
    ///
    /// `block` is on this list, and the list's blocks are live free blocks.
    #[inline]
    pub unsafe fn unlink(&mut self, block: BlockRef) -> Option<BlockRef> {
        // SAFETY: the caller's promise: `block` and its list neighbours are on the list.
        unsafe {
            let (prev, next) = (block.prev_free(), block.next_free());
            match prev {
                Some(prev) => prev.set_next_free(next),
                None => self.head = next,
            }
            if let Some(next) = next {
                next.set_prev_free(prev);
            }
            next
        }
    }

    /// Puts `new` where `old` is on the list, taking `old` off. `new`'s link words may
    /// overlap `old`'s block: `old`'s links are read before any is written.
    ///
    /// # Safety
    ///
    /// `old` is on this list; `new` is a free block of the same span (or will be once
    /// the caller writes its tags), on no list, and does not overlap `old`'s links.
    #[inline]
    pub unsafe fn replace(&mut self, old: BlockRef, new: BlockRef) {
        // SAFETY: the caller's promise; `old`'s links are read before `new`'s are written.
        unsafe {
            let (prev, next) = (old.prev_free(), old.next_free());
            new.set_prev_free(prev);
            new.set_next_free(next);
            match prev {
                Some(prev) => prev.set_next_free(Some(new)),
                None => self.head = Some(new),
            }
            if let Some(next) = next {
                next.set_prev_free(Some(new));
            }
        }
    }

    /// The blocks on the list, front to back.
    ///
    /// # Safety
    ///
    /// The list's blocks stay live free blocks, and the list unchanged, while the
    /// iterator is used.
    #[inline]
    pub unsafe fn iter(&self) -> Iter {
        Iter { next: self.head }
    }

    /// The blocks on the list from `block` to the back.
    ///
    /// # Safety
    ///
    /// As for [`iter`](Self::iter), and `block` is on the list.
    #[inline]
    pub unsafe fn iter_from(&self, block: BlockRef) -> Iter {
        Iter { next: Some(block) }
    }
}

/// The blocks of a [`BlockList`], front to back; see [`BlockList::iter`].
#[derive(Clone, Debug)]
pub struct Iter {
    next: Option<BlockRef>,
}

impl Iterator for Iter {
    type Item = BlockRef;

    #[inline]
    fn next(&mut self) -> Option<BlockRef> {
        let block = self.next?;
        // SAFETY: `BlockList::iter`'s caller promised that the list's blocks stay live
        // free blocks while iterating.
        self.next = unsafe { block.next_free() };
        Some(block)
    }
}

/// Where a region's blocks go: block headers from `first` up to the epilogue header at
/// `epilogue`, both placed so that payloads are aligned to [`GRANULE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Address of the first block's header.
    pub first: usize,
    /// Address of the epilogue header; `first + MIN_BLOCK <= epilogue` and
    /// `epilogue + HEADER <=` the region's end.
    pub epilogue: usize,
}

impl Span {
    /// The span that fits in `region`: the first header at the lowest well-placed
    /// address, the epilogue at the highest one that leaves room for its header. `None`
    /// when not even one block of [`MIN_BLOCK`] bytes fits.
    pub fn of(region: NonNull<[u8]>) -> Option<Span> {
        let start = region.cast::<u8>().as_ptr().addr();
        let end = start.checked_add(region.len())?;
        let first = align::align_up(start.checked_add(HEADER)?, GRANULE)? - HEADER;
        let epilogue = align::align_down(end, GRANULE).checked_sub(HEADER)?;
        (first.checked_add(MIN_BLOCK)? <= epilogue).then_some(Span { first, epilogue })
    }

    /// Bytes between the first header and the epilogue: the size of the one free block a
    /// new heap has.
    pub fn len(&self) -> usize {
        self.epilogue - self.first
    }

    /// Always false: a span holds at least one block.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `addr` could be a block header of this span (not the epilogue).
    pub fn holds(&self, addr: usize) -> bool {
        self.first <= addr && addr < self.epilogue && align::is_aligned(addr + HEADER, GRANULE)
    }

    /// Formats the span as one free block followed by the epilogue, and returns the
    /// block. Its links are left to the caller's list.
    ///
    /// # Safety
    ///
    /// `self` is `Span::of(region)`, and `region` is valid for reads and writes and
    /// used by nothing else.
    pub unsafe fn format(self, region: NonNull<[u8]>) -> BlockRef {
        let start = region.cast::<u8>();
        // SAFETY: `Span::of` placed both headers inside the region, aligned to a word,
        // and they are derived from the region's pointer.
        unsafe {
            let block = BlockRef::at(start.byte_add(self.first - start.as_ptr().addr()));
            let epilogue = BlockRef::at(start.byte_add(self.epilogue - start.as_ptr().addr()));
            block.write_free(self.len(), true);
            epilogue.write_used(0, false);
            block
        }
    }

    /// The epilogue's header, as a block handle of the span `first` belongs to.
    ///
    /// # Safety
    ///
    /// `first` is the first block of a live span formatted from `self`.
    pub unsafe fn epilogue_of(self, first: BlockRef) -> BlockRef {
        // SAFETY: the epilogue is inside the same region, `len()` bytes past `first`.
        BlockRef(unsafe { first.0.byte_add(self.len()) })
    }

    /// The blocks of the span in address order, from `first` up to (not including) the
    /// epilogue. Stops early at a header whose size would leave the span, so a broken
    /// heap's walk still ends (a checker then sees it did not reach the epilogue).
    ///
    /// # Safety
    ///
    /// `first` is the first block of a live span formatted from `self`, and no header
    /// changes while the iterator is used.
    pub unsafe fn blocks(self, first: BlockRef) -> Blocks {
        Blocks {
            next: Some(first),
            epilogue: self.epilogue,
        }
    }
}

/// The blocks of a [`Span`] in address order; see [`Span::blocks`].
#[derive(Clone, Debug)]
pub struct Blocks {
    next: Option<BlockRef>,
    epilogue: usize,
}

impl Iterator for Blocks {
    type Item = BlockRef;

    fn next(&mut self) -> Option<BlockRef> {
        let block = self.next.filter(|block| block.addr() < self.epilogue)?;
        // SAFETY: `Span::blocks`' caller promised a live, unchanging span; `block` is
        // before the epilogue, so its header is one of the span's.
        let size = unsafe { block.size() };
        let sane = size >= MIN_BLOCK && size <= self.epilogue - block.addr();
        // SAFETY: the size keeps the next header inside the span.
        self.next = sane.then(|| unsafe { block.next_phys() });
        Some(block)
    }
}

/// Where a payload aligned to `align` with a block of `need` bytes fits in the free
/// block at `addr` of `size` bytes: `Some(gap)`, the bytes in front of the new block, or
/// `None`. A gap is 0 or at least [`MIN_BLOCK`], so it can stay behind as a free block:
/// when the first aligned spot leaves a smaller gap, the next aligned spot is used.
#[inline]
pub fn fit_gap(addr: usize, size: usize, need: usize, align: usize) -> Option<usize> {
    if align <= GRANULE {
        // Every payload is aligned to `GRANULE` already.
        return (need <= size).then_some(0);
    }
    let payload = align::align_up(addr + HEADER, align)?;
    let mut gap = payload - HEADER - addr;
    if gap != 0 && gap < MIN_BLOCK {
        // `align > GRANULE` is a power of two, so `align >= MIN_BLOCK`.
        gap = gap.checked_add(align)?;
    }
    (gap.checked_add(need)? <= size).then_some(gap)
}

/// How a free block is cut to serve a request: an optional free `gap` in front (the
/// original block, shrunk), the `used` block, and an optional free `rest` behind.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// The front of the old block when the payload had to move up for alignment: a
    /// free block at the old block's address, keeping its place on any list.
    pub gap: Option<BlockRef>,
    /// The block handed out.
    pub used: BlockRef,
    /// Its size: the request's, or the whole rest when what is left is too small to be
    /// a block.
    pub used_size: usize,
    /// What is left behind the used block, when it can be a free block.
    pub rest: Option<BlockRef>,
    rest_size: usize,
    gap_size: usize,
    prev_used: bool,
}

impl Cut {
    /// Plans cutting `free` (a free block) into `gap` bytes, a used block of `need` bytes
    /// and a rest. Reads `free`'s header only.
    ///
    /// # Safety
    ///
    /// `free` is a free block (see [`BlockRef`]) and `fit_gap` answered `Some(gap)` for it
    /// and `need`, with `need` a multiple of `GRANULE` and at least `MIN_BLOCK`.
    #[inline]
    pub unsafe fn plan(free: BlockRef, gap: usize, need: usize) -> Cut {
        // SAFETY: the caller's promise; `gap + need <= size`, so the used block starts
        // inside `free` and what follows the gap is `size - gap` bytes.
        unsafe {
            let size = free.size();
            let used = BlockRef(free.0.byte_add(gap));
            Cut {
                gap: (gap != 0).then_some(free),
                gap_size: gap,
                prev_used: free.prev_used(),
                ..Cut::plan_front(used, size - gap, need)
            }
        }
    }

    /// Plans cutting a used block of `need` bytes from the front of `free`, whose size
    /// the caller has read already: [`Cut::plan`] with no gap, reading nothing. With
    /// immediate coalescing (invariant 3) the block before a free one is used, so the
    /// used block's `PREV_USED` is known without its header.
    ///
    /// # Safety
    ///
    /// As for [`Cut::plan`] with a gap of 0; `size` is `free`'s size, and the block
    /// before `free` is used (or `free` is the first block).
    #[inline]
    pub unsafe fn plan_front(free: BlockRef, size: usize, need: usize) -> Cut {
        let left = size - need;
        let (used_size, rest, rest_size) = if left >= MIN_BLOCK {
            // SAFETY: the caller's promise: `need < size`, so the rest is inside `free`.
            (need, Some(BlockRef(unsafe { free.0.byte_add(need) })), left)
        } else {
            (size, None, 0)
        };
        Cut {
            gap: None,
            used: free,
            used_size,
            rest,
            rest_size,
            gap_size: 0,
            prev_used: true,
        }
    }

    /// One past the used block's last byte: how far the cut reaches into the region.
    #[inline]
    pub fn used_end(&self) -> usize {
        self.used.addr() + self.used_size
    }

    /// Writes the tags the plan describes; the caller has relinked its lists first.
    ///
    /// # Safety
    ///
    /// The plan came from [`Cut::plan`] and nothing was written to the block since,
    /// except the links of `rest` (and of `gap`, which are `free`'s own).
    #[inline]
    pub unsafe fn write_tags(&self) {
        // SAFETY: the plan's blocks tile the old free block, which the caller owns.
        unsafe {
            if let Some(gap) = self.gap {
                gap.write_free(self.gap_size, self.prev_used);
            }
            self.used
                .write_used(self.used_size, self.prev_used && self.gap.is_none());
            match self.rest {
                Some(rest) => rest.write_free(self.rest_size, true),
                None => self.used.next_phys().set_prev_used(true),
            }
        }
    }
}

/// How a block being freed merges with its free neighbours (immediate coalescing).
#[derive(Clone, Copy, Debug)]
pub struct Merge {
    /// The merged free block: the free block before, or the freed block itself.
    pub block: BlockRef,
    /// Its size.
    pub size: usize,
    /// The free block before the freed one, absorbed (its header becomes the merged
    /// block's, so it keeps its place on a list).
    pub prev: Option<BlockRef>,
    /// The free block after the freed one, absorbed.
    pub next: Option<BlockRef>,
    /// The block right after the freed one, and its header as `plan` read it.
    after: BlockRef,
    after_word: usize,
}

impl Merge {
    /// Plans freeing the used block `used`: which neighbours are free and what the
    /// merged block spans. Reads headers and one footer only.
    ///
    /// # Safety
    ///
    /// `used` is a used block of a live span whose invariants hold (see [`BlockRef`]).
    #[inline]
    pub unsafe fn plan(used: BlockRef) -> Merge {
        // SAFETY: the caller's promise; `PREV_USED` clear means a free block with a
        // footer is right before `used`, and the epilogue bounds the walk forward.
        // The merged size is summed from the sizes the tags hold, neighbour by
        // neighbour, and each merge is marked cold: the compiler then branches around
        // it rather than computing both outcomes and selecting one, so a block with no
        // free neighbour costs one test per side (6 instructions fewer per free, counted
        // with callgrind on the queue workload).
        unsafe {
            let word = used.header();
            let mut size = word & !FLAGS;
            let after = BlockRef(used.0.byte_add(size));
            let after_word = after.header();
            let mut next = None;
            if after_word & USED == 0 {
                core::hint::cold_path();
                next = Some(after);
                size += after_word & !FLAGS;
            }
            let (mut block, mut prev) = (used, None);
            if word & PREV_USED == 0 {
                core::hint::cold_path();
                let prev_size = used.0.byte_sub(WORD).read();
                block = BlockRef(used.0.byte_sub(prev_size));
                prev = Some(block);
                size += prev_size;
            }
            Merge {
                block,
                size,
                prev,
                next,
                after,
                after_word,
            }
        }
    }

    /// Where the freed block ended: the address of the block that was after it.
    #[inline]
    pub fn freed_end(&self) -> usize {
        self.after.addr()
    }

    /// Whether the freed block was the last of its span: the header after it, read by
    /// the plan, is the epilogue's, the only one of size 0.
    #[inline]
    pub fn before_epilogue(&self) -> bool {
        self.after_word & !FLAGS == 0
    }

    /// Writes the merged free block's tags and clears the `PREV_USED` bit after it.
    ///
    /// # Safety
    ///
    /// The plan came from [`Merge::plan`]; the caller relinked its lists first and wrote
    /// nothing else into the merged block.
    #[inline]
    pub unsafe fn write_tags(&self) {
        // SAFETY: the merged block spans the freed block and its free neighbours, so its
        // first word is a header and its last a footer position; the block after it is
        // used (or the epilogue).
        unsafe {
            // Immediate coalescing keeps a used block before every free one.
            self.block.write_free(self.size, true);
            // When the block after the freed one was free, the block after that already
            // has `PREV_USED` clear. Otherwise the block after is used, and its header,
            // read by `plan`, is written back whole with the bit clear: a plain store,
            // where clearing one bit would read the header again, perhaps from a line
            // that has left the cache, and keep the call waiting for it.
            if self.next.is_none() {
                self.after.set_header(self.after_word & !PREV_USED);
            }
        }
    }
}

/// How a used block grows in place into the free block after it.
#[derive(Clone, Copy, Debug)]
pub struct Grow {
    /// The free block after the used one, absorbed in full or in part.
    pub next: BlockRef,
    /// The part of `next` left over when it can be a free block.
    pub rest: Option<BlockRef>,
    used: BlockRef,
    used_size: usize,
    rest_size: usize,
}

impl Grow {
    /// Plans growing `used` to `need` bytes; `None` when the block after it is not free
    /// or too small.
    ///
    /// # Safety
    ///
    /// `used` is a used block of a live span whose invariants hold; `need` is a
    /// multiple of `GRANULE` larger than its size.
    #[inline]
    pub unsafe fn plan(used: BlockRef, need: usize) -> Option<Grow> {
        // SAFETY: the caller's promise; the block after `used` is a header (perhaps the
        // epilogue, which is used).
        unsafe {
            let next = used.next_phys();
            if next.is_used() {
                return None;
            }
            let total = used.size() + next.size();
            let left = total.checked_sub(need)?;
            let (used_size, rest, rest_size) = if left >= MIN_BLOCK {
                (need, Some(BlockRef(used.0.byte_add(need))), left)
            } else {
                (total, None, 0)
            };
            Some(Grow {
                next,
                rest,
                used,
                used_size,
                rest_size,
            })
        }
    }

    /// The size of [`Grow::rest`], 0 when there is none.
    #[inline]
    pub fn rest_size(&self) -> usize {
        self.rest_size
    }

    /// One past the grown block's last byte.
    #[inline]
    pub fn used_end(&self) -> usize {
        self.used.addr() + self.used_size
    }

    /// Writes the grown block's header and the rest's tags (or sets `PREV_USED` after
    /// the grown block).
    ///
    /// # Safety
    ///
    /// The plan came from [`Grow::plan`]; the caller took `next` off its list first.
    #[inline]
    pub unsafe fn write_tags(&self) {
        // SAFETY: `used` and `rest` tile the old used block and `next`.
        unsafe {
            let prev_used = self.used.prev_used();
            self.used.write_used(self.used_size, prev_used);
            match self.rest {
                Some(rest) => rest.write_free(self.rest_size, true),
                None => self.used.next_phys().set_prev_used(true),
            }
        }
    }
}

/// Cuts the tail off a used block so that it keeps `need` bytes, and returns the tail
/// as a used block of its own (for the caller to free, merging it with what follows),
/// or `None` when the tail would be smaller than [`MIN_BLOCK`].
///
/// # Safety
///
/// `used` is a used block of a live span whose invariants hold; `need` is a multiple of
/// `GRANULE`, at least `MIN_BLOCK`, and at most its size.
#[inline]
pub unsafe fn split_tail(used: BlockRef, need: usize) -> Option<BlockRef> {
    // SAFETY: the caller's promise; the tail lies inside `used`.
    unsafe {
        let size = used.size();
        let tail_size = size - need;
        if tail_size < MIN_BLOCK {
            return None;
        }
        let prev_used = used.prev_used();
        used.write_used(need, prev_used);
        let tail = used.next_phys();
        tail.write_used(tail_size, true);
        Some(tail)
    }
}

// ANCHOR: resize_in_place
/// What [`resize_in_place`] asks of a heap on this module: the list operations, which
/// differ from heap to heap, behind the one shape every such heap resizes with.
pub trait FreeLists {
    /// Frees `tail`, a used block just cut off the end of a live one: merges it with
    /// the block after it when that is free, and files the result.
    ///
    /// # Safety
    ///
    /// `tail` is a used block of this heap that nobody uses; the invariants hold.
    unsafe fn free_tail(&mut self, tail: BlockRef);

    /// Takes `grow.next` off its list and files `grow.rest` (of `grow.rest_size()`
    /// bytes), when there is one, in its place. The tags are not written yet: list
    /// operations touch links only.
    ///
    /// # Safety
    ///
    /// `grow` was planned by [`Grow::plan`] on a used block of this heap, just now.
    unsafe fn absorb(&mut self, grow: &Grow);

    /// Records that the live block `block` (now of its new size) was resized from `old`
    /// to `new` requested bytes.
    ///
    /// # Safety
    ///
    /// `block` is a used block of this heap, its tags written.
    unsafe fn resized(&mut self, block: BlockRef, old: usize, new: usize);
}

/// [`RawHeap::resize_in_place`](crate::RawHeap::resize_in_place) for a heap on this
/// module: a shrink cuts the tail off and frees it; a growth absorbs the free block
/// after it, whole or in part, or fails with `Exhausted`.
///
/// # Safety
///
/// `ptr` is the payload of a live block of `heap` with layout `old`; `new` has the same
/// alignment.
#[inline]
pub unsafe fn resize_in_place<H: FreeLists>(
    heap: &mut H,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Result<(), AllocError> {
    let need = block_size(new.size()).ok_or(AllocError::Unsupported)?;
    // SAFETY: the caller's promise: `ptr` is the payload of a live block of ours.
    let block = unsafe { BlockRef::from_payload(ptr) };
    // SAFETY: `block` is a used block of the heap; the lists are relinked (`absorb`)
    // before the tags are written, and a cut-off tail is a used block nobody uses.
    unsafe {
        if need <= block.size() {
            if let Some(tail) = split_tail(block, need) {
                heap.free_tail(tail);
            }
        } else {
            let grow = Grow::plan(block, need).ok_or(AllocError::Exhausted)?;
            heap.absorb(&grow);
            grow.write_tags();
        }
        heap.resized(block, old.size(), new.size());
    }
    Ok(())
}
// ANCHOR_END: resize_in_place

/// Reports the stretches of `region` for [`RawHeap::walk`](crate::RawHeap::walk): the
/// bytes before the span and after its epilogue as overhead, a used block as its header
/// (overhead) and payload (used), a free block whole as free. `blocks` is the span and
/// its first block, `None` for a region too small to hold one. Whatever its free lists,
/// a heap on this module walks this way.
///
/// # Safety
///
/// `blocks` describes a live span formatted in `region`, and no header changes while
/// this runs.
pub unsafe fn walk_span(
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

/// Checks invariants 1 to 3 of this module, walking the blocks in address order: they
/// tile the span on the granule grid, every `PREV_USED` bit and free footer tells the
/// truth, no two free blocks touch, and the epilogue closes the span. Hands each free
/// block and its size to `on_free`, which checks the heap's own lists. Returns the free
/// and used blocks counted.
///
/// # Safety
///
/// `first` is the first block of a live span formatted from `span`.
pub unsafe fn check_span(
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

/// Why a heap on `blocks` refuses `layout`: `ZeroSize` for size 0, `Exhausted` when the
/// request would fit in the one free block of the empty heap (not now, but some day),
/// `Unsupported` when it never can.
///
/// Cold and out of line, and `blocks` passed by reference: `allocate`'s hot path then
/// keeps no stack frame for a copy of the span.
#[cold]
#[inline(never)]
pub fn refusal(blocks: &Option<(Span, BlockRef)>, layout: Layout) -> AllocError {
    if layout.size() == 0 {
        return AllocError::ZeroSize;
    }
    let fits_when_empty =
        block_size(layout.size())
            .zip(*blocks)
            .is_some_and(|(need, (span, _))| {
                fit_gap(span.first, span.len(), need, layout.align()).is_some()
            });
    if fits_when_empty {
        AllocError::Exhausted
    } else {
        AllocError::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_adds_the_header_rounds_and_keeps_a_minimum() {
        assert_eq!(block_size(0), None);
        assert_eq!(block_size(1), Some(MIN_BLOCK));
        assert_eq!(block_size(MIN_BLOCK - HEADER), Some(MIN_BLOCK));
        assert_eq!(
            block_size(MIN_BLOCK - HEADER + 1),
            Some(MIN_BLOCK + GRANULE)
        );
        assert_eq!(block_size(usize::MAX - HEADER + 1), None);
        assert_eq!(block_size(usize::MAX - 2), None);
        assert_eq!(block_size(usize::MAX), None);
        // The largest size served is the one whose rounded block is the last multiple of
        // a granule; one byte more needs a block past `usize::MAX`.
        let largest = usize::MAX - (GRANULE - 1) - HEADER;
        assert_eq!(block_size(largest), Some(usize::MAX - (GRANULE - 1)));
        assert_eq!(block_size(largest + 1), None);
    }

    #[test]
    fn fit_gap_is_zero_or_a_whole_block() {
        let addr = 4096 - HEADER; // payload at 4096
        assert_eq!(fit_gap(addr, 256, 64, 8), Some(0));
        assert_eq!(fit_gap(addr, 256, 64, 4096), Some(0));
        let addr = 4096 + GRANULE - HEADER; // payload at 4096 + GRANULE
        // The next 64-aligned payload is 4160: a gap of 48 bytes, a block of its own.
        assert_eq!(fit_gap(addr, 256, 64, 64), Some(48));
        // The next 32-aligned payload leaves a 16-byte gap, too small: one more step.
        assert_eq!(fit_gap(addr, 256, 64, 32), Some(16 + 32));
        assert_eq!(fit_gap(addr, 100, 64, 64), None);
        assert_eq!(fit_gap(addr, 256, 64, 1 << (usize::BITS - 1)), None);
    }

    #[test]
    fn a_span_aligns_its_headers_inside_any_region() {
        let mut memory = [0usize; 32];
        for offset in 0..GRANULE {
            let len = 200;
            let start = NonNull::from(&mut memory).cast::<u8>();
            // SAFETY: `offset + len` is inside `memory`.
            let region = NonNull::slice_from_raw_parts(unsafe { start.add(offset) }, len);
            let begin = start.as_ptr().addr() + offset;
            let span = Span::of(region).expect("200 bytes hold a block");
            assert!(span.first >= begin && span.first < begin + GRANULE);
            assert!(span.epilogue + HEADER <= begin + len);
            assert!(span.epilogue + HEADER + GRANULE > begin + len);
            assert!(align::is_aligned(span.first + HEADER, GRANULE));
            assert!(align::is_aligned(span.len(), GRANULE));
        }
        let start = NonNull::from(&mut memory).cast::<u8>();
        let tiny = NonNull::slice_from_raw_parts(start, MIN_BLOCK);
        assert_eq!(Span::of(tiny), None);
    }

    #[test]
    fn cut_merge_and_list_round_trip() {
        let mut memory = [0usize; 64];
        let region =
            NonNull::slice_from_raw_parts(NonNull::from(&mut memory).cast::<u8>(), 64 * WORD);
        let span = Span::of(region).expect("fits");
        let mut list = BlockList::new();
        // SAFETY: `region` is `memory`, used by nothing else; every step keeps the
        // invariants the next one relies on.
        unsafe {
            let first = span.format(region);
            list.push_front(first);
            let cut = Cut::plan(first, 0, MIN_BLOCK);
            let rest = cut.rest.expect("the span is larger than one block");
            list.replace(first, rest);
            cut.write_tags();
            assert!(cut.used.is_used() && !rest.is_used() && rest.footer() == rest.size());
            assert_eq!(list.first(), Some(rest));
            assert!(
                rest.prev_used(),
                "the block before the rest is the used one"
            );

            let merge = Merge::plan(cut.used);
            assert_eq!((merge.prev, merge.next), (None, Some(rest)));
            list.replace(rest, merge.block);
            merge.write_tags();
            assert_eq!(merge.block, first);
            assert_eq!(first.size(), span.len());
            assert_eq!(list.iter().count(), 1);
            assert_eq!(span.blocks(first).count(), 1);
            assert!(span.epilogue_of(first).is_used() && !span.epilogue_of(first).prev_used());
        }
    }
}
