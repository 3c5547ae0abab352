//! # tlsf: Two-Level Segregated Fit
//!
//! TLSF (Masmano, Ripoll, Crespo and Real, ECRTS 2004) keeps one free list per size
//! class and finds a list that can serve a request with at most three bit scans, so
//! every operation takes the same bounded time however many blocks are free: the
//! allocator of real-time systems, where the worst case is what counts.
//!
//! - **Classes.** A free block's size picks a *row* by its highest set bit (first
//!   level, powers of two) and a *column* by the next `log2(SL)` bits (second level,
//!   `SL` equal slices of the power of two); see [`Classes`]. Row `fl` has `SL` lists,
//!   and two levels of bitmaps say which lists hold a block: bit `fl` of `fl_bitmap`
//!   when row `fl` has any, bit `sl` of `sl_bitmap[fl]` when list `(fl, sl)` does.
//! - **allocate** rounds the request up to the next class boundary (*good fit*), so
//!   that every block of that class and above fits it; one scan of the row's bitmap
//!   from that column finds a non-empty list in the row, or one scan of `fl_bitmap`
//!   finds the next non-empty row, whose lowest set bit is its first list. The first
//!   block of that list is cut (*splitting*): the rest goes on the list of its class.
//! - **deallocate** merges the block at once with free physical neighbours, found
//!   through boundary tags (*immediate coalescing*), takes them off their lists and
//!   puts the merged block on the list of its class.
//! - **reallocate** grows a block in place into a free block after it, shrinks it in
//!   place by freeing its tail, and moves it only when growing in place fails.
//!
//! ## Block layout and index
//!
//! The blocks are those of [`rawheap::tags`], shared with free-list: a one-word header
//! (size, `PREV_USED`, `USED`), a footer and two list links in free blocks only, sizes
//! multiples of [`GRANULE`] and at least [`MIN_BLOCK`].
//!
//! ```text
//!  used block                       free block
//!  ┌──────────────────────────┐     ┌──────────────────────────┐
//!  │ size │ PREV_USED │ USED=1│     │ size │ PREV_USED=1│USED=0│  header
//!  ├──────────────────────────┤ <── ├──────────────────────────┤
//!  │ payload (size - 8 bytes) │ ptr │ next free, prev free ───────> blocks of the
//!  │                          │     │ ...                      │    same class
//!  │                          │     ├──────────────────────────┤
//!  │                          │     │ size                     │  footer
//!  └──────────────────────────┘     └──────────────────────────┘
//!
//!  the index (SL = 4 drawn; 32 by default):
//!
//!  fl_bitmap   bit:  0 1 2 3 4 ...          free[fl][sl], heads of the lists
//!                    1 0 1 1 0
//!                    │   │ └─ sl_bitmap[3] = 0b0100 ─> [3][2]: block ─> block
//!                    │   └─── sl_bitmap[2] = 0b1001 ─> [2][0]: block
//!                    │                                 [2][3]: block ─> block
//!                    └─────── sl_bitmap[0] = 0b0010 ─> [0][1]: block
//! ```
//!
//! ## Invariants (checked by [`RawHeap::check`], one per field)
//!
//! 1. The blocks tile the span from the first header to the epilogue; `PREV_USED` and
//!    every free block's footer tell the truth; no two free blocks are neighbours.
//! 2. Bit `fl` of `fl_bitmap` is set iff `sl_bitmap[fl]` is not zero.
//! 3. Bit `sl` of `sl_bitmap[fl]` is set iff `free[fl][sl]` holds a block.
//! 4. `free[fl][sl]` holds only free blocks of class `(fl, sl)`, linked both ways, and
//!    every free block is on the list of its class.
//!
//! ## Cost of each operation
//!
//! None loops over free blocks, nor over lists: each is a fixed sequence of steps.
//!
//! | operation | cost, at most |
//! | --- | --- |
//! | `allocate` | class arithmetic (one `ilog2`), at most three bit scans (`trailing_zeros`: the row from the start column, the rows above, the row found), one more list head looked at when they find nothing, one block unlinked, one cut (three headers and two footers written), two blocks linked |
//! | `deallocate` | two tags read, two blocks unlinked, one merge (a header, a footer and a bit written), one block linked |
//! | `resize_in_place` | growing: one block unlinked, one cut, one linked; shrinking: one cut and a `deallocate` |
//! | `usable_size` | the header |
//! | `stats`, `walk` | one pass over the blocks |
//! | `check` | one pass over the lists and one over the blocks, looking each free block up on its list |
//!
//! Linking and unlinking are O(1) on doubly linked lists; each of the at most two bit
//! updates per list that empties or fills is one word written.
//!
//! ## Example
//!
//! ```
//! use core::alloc::Layout;
//! use rawheap::{Arena, RawHeap};
//! use tlsf::Tlsf;
//!
//! let mut heap = Arena::<Tlsf>::new(1 << 16);
//! let small = Layout::new::<[u64; 4]>();
//! let a = heap.allocate(small)?;
//! let b = heap.allocate(small)?;
//! // SAFETY: `a` came from this heap with `small` and is freed once.
//! unsafe { heap.deallocate(a, small) };
//! // `a`'s block is alone on the list of its class, which the search starts from.
//! assert_eq!(heap.allocate(small)?, a);
//! # let _ = b;
//! heap.check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]

mod class;
mod lookup;

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::tags::{self, BlockList, BlockRef, Cut, FreeLists, Grow, HEADER, Merge, Span};
use rawheap::{
    AllocError, Block, Capabilities, HeapError, RawHeap, Requested, Reuse, Stats, bits, check_walk,
    offset_in,
};

pub use class::{Class, Classes, FL};
pub use lookup::{Found, Lookup};
pub use rawheap::tags::{GRANULE, MIN_BLOCK};

/// A TLSF heap with `SL` free lists per power of two (a power of two up to
/// `usize::BITS`). See the [crate documentation](crate).
///
/// The fields are laid out in this order (`repr(C)`): what every operation reads or
/// writes (the first-level bitmap, the requested bytes) shares the first cache line.
#[repr(C)]
pub struct Tlsf<const SL: usize = 32> {
    /// Bit `fl` is set iff `sl_bitmap[fl]` is not zero: some list of row `fl` holds a
    /// block.
    fl_bitmap: usize,
    /// Requested bytes of the live blocks, and the furthest end of a freed block: all
    /// that `stats` cannot read off the blocks (see [`Requested`]).
    requested: Requested,
    /// The region as handed to `new`; every block pointer is derived from it.
    region: NonNull<[u8]>,
    /// The span of blocks inside the region and its first block, or `None` when the
    /// region is too small for one block (then every list is empty and every request
    /// refused).
    blocks: Option<(Span, BlockRef)>,
    /// Bit `sl` of `sl_bitmap[fl]` is set iff `free[fl][sl]` holds a block.
    sl_bitmap: [usize; FL],
    /// `free[fl][sl]` holds only free blocks of class `(fl, sl)` (see [`Classes`]),
    /// each once and linked both ways, the latest first; every free block is on the
    /// list of its class.
    free: [[BlockList; SL]; FL],
}

// SAFETY: the heap is the only user of its region (the promise made to `new`), and all
// its pointers point into it: moving the heap to another thread moves everything.
unsafe impl<const SL: usize> Send for Tlsf<SL> {}

impl<const SL: usize> core::fmt::Debug for Tlsf<SL> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tlsf")
            .field("region_len", &self.region.len())
            .field("fl_bitmap", &format_args!("{:#b}", self.fl_bitmap))
            .field("requested", &self.requested)
            .finish_non_exhaustive()
    }
}

/// A free block chosen to serve a request, and where in it the request goes.
#[derive(Clone, Copy, Debug)]
struct Fit {
    block: BlockRef,
    size: usize,
    class: Class,
    gap: usize,
}

impl<const SL: usize> Tlsf<SL> {
    /// Where `class` is in the tables: its row and column. The class arithmetic keeps
    /// `fl < FL` and `sl < SL`; taking them modulo the table sizes, which are powers of
    /// two, costs one mask each and tells the compiler so, which then checks no bounds.
    #[inline]
    fn place(class: Class) -> (usize, usize) {
        (class.fl as usize % FL, class.sl as usize % SL)
    }

    /// The list of `class`.
    #[inline]
    fn list(&mut self, class: Class) -> &mut BlockList {
        let (fl, sl) = Self::place(class);
        &mut self.free[fl][sl]
    }

    // ANCHOR: insert
    /// Puts the free block `block` of `size` bytes at the front of its class's list,
    /// and marks the list and its row non-empty.
    ///
    /// # Safety
    ///
    /// `block` is a free block of this heap of `size` bytes, on no list.
    #[inline]
    unsafe fn insert(&mut self, block: BlockRef, size: usize) {
        // SAFETY: the caller's promise.
        unsafe { self.insert_in(block, Classes::<SL>::class_of(size)) }
    }

    /// [`insert`](Self::insert) with the block's class already worked out.
    ///
    /// # Safety
    ///
    /// `block` is a free block of this heap of class `class`, on no list.
    #[inline]
    unsafe fn insert_in(&mut self, block: BlockRef, class: Class) {
        // SAFETY: the caller's promise; the list holds free blocks only.
        let was_empty = unsafe { self.list(class).push_front(block) };
        // A list that held a block has its bits set already (invariants 2 and 3).
        if was_empty {
            let row = &mut self.sl_bitmap[Self::place(class).0];
            *row = bits::with_bit(*row, class.sl, true);
            self.fl_bitmap = bits::with_bit(self.fl_bitmap, class.fl, true);
        }
    }

    /// Clears the bit of the list of `class`, now empty, and its row's bit when the
    /// row has no other block.
    #[inline]
    fn mark_empty(&mut self, class: Class) {
        let row = &mut self.sl_bitmap[Self::place(class).0];
        *row = bits::with_bit(*row, class.sl, false);
        if *row == 0 {
            self.fl_bitmap = bits::with_bit(self.fl_bitmap, class.fl, false);
        }
    }

    /// Takes the free block `block` of `size` bytes off its list. Only the first block
    /// of a list needs its class worked out, to reach the list's head and bitmap bits; a
    /// block behind it comes off by linking its neighbours to each other.
    ///
    /// # Safety
    ///
    /// `block` is a free block of this heap of `size` bytes (so on the list of its
    /// class).
    #[inline]
    unsafe fn take_off(&mut self, block: BlockRef, size: usize) {
        // SAFETY: the caller's promise and invariant 4: a block with none in front of
        // it is the first of the list of its class.
        unsafe {
            if BlockList::unlink_behind_head(block) {
                return;
            }
            self.take_first(block, Classes::<SL>::class_of(size));
        }
    }

    /// Takes `block`, the first block of the list of `class`, off it.
    ///
    /// # Safety
    ///
    /// `block` is the first block of the list of `class`.
    #[inline]
    unsafe fn take_first(&mut self, block: BlockRef, class: Class) {
        let list = self.list(class);
        // SAFETY: the caller's promise; the lists hold live free blocks (invariant 4).
        unsafe { list.unlink_first(block) };
        if list.first().is_none() {
            self.mark_empty(class);
        }
    }
    // ANCHOR_END: insert

    // ANCHOR: find
    /// The first non-empty list of class `wanted` or above: one scan of row `wanted.fl`
    /// from column `wanted.sl`, else one scan of `fl_bitmap` above that row and one of
    /// the row found, whose every list is of a larger class.
    #[inline]
    fn find(&self, wanted: Class) -> Option<Class> {
        let row = self.sl_bitmap[Self::place(wanted).0];
        if let Some(sl) = bits::lowest_set_from(row, wanted.sl) {
            return Some(Class { fl: wanted.fl, sl });
        }
        let fl = bits::lowest_set_from(self.fl_bitmap, wanted.fl + 1)?;
        let sl = self.sl_bitmap[fl as usize % FL].trailing_zeros();
        Some(Class { fl, sl })
    }
    // ANCHOR_END: find

    /// The block size searched for to serve a block of `need` bytes aligned to `align`:
    /// with an alignment beyond the granule, room for the largest gap
    /// [`tags::fit_gap`] may leave in front, so that any block of that size fits.
    #[inline]
    fn search_size(need: usize, align: usize) -> Option<usize> {
        if align <= GRANULE {
            Some(need)
        } else {
            need.checked_add(align + MIN_BLOCK - GRANULE)
        }
    }

    // ANCHOR: find_fit
    /// A free block that holds a block of `need` bytes aligned to `align`: the first
    /// block of the first non-empty list whose class starts at or above the search
    /// size. When there is none, the first block of the search size's own list, which
    /// may be large enough though its class is not: a request is refused only when
    /// neither of these two places serves it.
    #[inline]
    fn find_fit(&self, need: usize, align: usize) -> Option<Fit> {
        let search = Self::search_size(need, align)?;
        let (wanted, _) = Classes::<SL>::good_fit(search)?;
        let class = self
            .find(wanted)
            .unwrap_or_else(|| Classes::<SL>::class_of(search));
        let (fl, sl) = Self::place(class);
        let block = self.free[fl][sl].first()?;
        // SAFETY: the lists hold live free blocks (invariant 4).
        let size = unsafe { block.size() };
        let gap = tags::fit_gap(block.addr(), size, need, align)?;
        Some(Fit {
            block,
            size,
            class,
            gap,
        })
    }
    // ANCHOR_END: find_fit

    /// A block of `need` bytes aligned to `align`, for a request of `requested` bytes:
    /// found, then cut.
    #[inline(always)]
    fn serve(&mut self, need: usize, align: usize, requested: usize) -> Option<NonNull<u8>> {
        let fit = self.find_fit(need, align)?;
        // SAFETY: `find_fit` just found this fit.
        Some(unsafe { self.split(fit, need, requested) })
    }

    /// [`serve`](Self::serve) for an alignment beyond `GRANULE`, kept out of line so
    /// that the common path is compiled for a gap of 0.
    #[cold]
    #[inline(never)]
    fn serve_aligned(
        &mut self,
        need: usize,
        align: usize,
        requested: usize,
    ) -> Option<NonNull<u8>> {
        self.serve(need, align, requested)
    }

    // ANCHOR: split
    /// Cuts a block of `need` bytes out of `fit` and hands it out for a request of
    /// `requested` bytes. The gap in front (for an alignment) and the rest behind, when
    /// they are blocks, go on the lists of their classes; a rest alone takes the
    /// block's place when it stays in its class.
    ///
    /// # Safety
    ///
    /// `fit` came from `find_fit(need, _)` and nothing changed since: its block is the
    /// first of the list of its class.
    #[inline]
    unsafe fn split(&mut self, fit: Fit, need: usize, requested: usize) -> NonNull<u8> {
        // SAFETY: the caller's promise; the lists are relinked before the tags are
        // written, as `Cut` requires, and the rest's links lie behind the block's.
        unsafe {
            // With no gap (always, but for an alignment beyond the granule), the plan
            // needs nothing more from the header: the size is read, and the block
            // before a free one is used (invariant 1).
            let cut = if fit.gap == 0 {
                Cut::plan_front(fit.block, fit.size, need)
            } else {
                Cut::plan(fit.block, fit.gap, need)
            };
            // No high-water mark to raise: `stats` finds the highest live block.
            self.requested.on_allocate(requested);
            let rest_size = fit.size - fit.gap - cut.used_size;
            let rest_class = cut.rest.map(|_| Classes::<SL>::class_of(rest_size));
            match (cut.gap, cut.rest, rest_class) {
                // A large block cut a little at a time mostly stays in its class: then
                // the rest takes its place on the list, and no bitmap changes.
                (None, Some(rest), Some(class)) if class == fit.class => {
                    self.list(class).replace(fit.block, rest);
                }
                (None, rest, rest_class) => {
                    // The rest goes on another list than the block's, so it is filed
                    // first: the processor then reads that list's head before the
                    // stores that take the block off its own.
                    if let (Some(rest), Some(class)) = (rest, rest_class) {
                        self.insert_in(rest, class);
                    }
                    self.take_first(fit.block, fit.class);
                }
                (Some(gap), rest, _) => {
                    self.take_first(fit.block, fit.class);
                    self.insert(gap, fit.gap);
                    if let Some(rest) = rest {
                        self.insert(rest, rest_size);
                    }
                }
            }
            cut.write_tags();
            cut.used.payload()
        }
    }
    // ANCHOR_END: split

    // ANCHOR: coalesce
    /// Frees the used `block`, merging it with a free neighbour on either side; the
    /// neighbours leave their lists and the merged block joins the list of its class.
    ///
    /// # Safety
    ///
    /// `block` is a used block of this heap, and nobody uses its payload any more.
    #[inline]
    unsafe fn coalesce(&mut self, block: BlockRef) {
        // SAFETY: the caller's promise; the invariants hold, so `Merge::plan` finds the
        // neighbours, which leave their lists before the tags are written.
        unsafe {
            let merge = Merge::plan(block);
            // A neighbour's size is the distance between addresses the plan holds: no
            // header to read again.
            if let Some(prev) = merge.prev {
                self.take_off(prev, block.addr() - prev.addr());
            }
            if let Some(next) = merge.next {
                self.take_off(next, merge.block.addr() + merge.size - next.addr());
            }
            merge.write_tags();
            self.insert(merge.block, merge.size);
            // The block may have been the highest: `stats` would not find it now.
            self.requested.reach(merge.freed_end());
        }
    }
    // ANCHOR_END: coalesce

    /// What a search for `layout` does in the index now, for showing it (see
    /// [`Lookup`]); `None` for a size the heap refuses outright.
    pub fn lookup(&self, layout: Layout) -> Option<Lookup> {
        let need = tags::block_size(layout.size())?;
        let search = Self::search_size(need, layout.align())?;
        let (wanted, rounded) = Classes::<SL>::good_fit(search)?;
        let rows = self
            .blocks
            .map_or(1, |(span, _)| Classes::<SL>::class_of(span.len()).fl + 1);
        Some(Lookup {
            layout,
            need,
            search,
            rounded,
            wanted,
            row: self.sl_bitmap[wanted.fl as usize],
            fl_bitmap: self.fl_bitmap,
            found: self.find(wanted).map(|class| Found {
                class,
                min_size: Classes::<SL>::min_size(class),
                row: self.sl_bitmap[class.fl as usize],
            }),
            taken: self
                .find_fit(need, layout.align())
                .map(|fit| (offset_in(self.region, fit.block.addr()), fit.size)),
            lists_per_row: SL as u32,
            rows,
        })
    }

    /// Checks invariants 2 to 4 as far as the lists go: each list's blocks are free
    /// blocks of its class inside the span, linked both ways, and the bits of both
    /// bitmaps say which lists and rows hold blocks. Returns how many blocks are listed.
    fn check_index(&self, span: Option<Span>) -> Result<usize, HeapError> {
        let most_blocks = span.map_or(0, |span| span.len() / MIN_BLOCK);
        // No block is larger than the span: the rows above its class hold none, and only
        // their bitmap bits are read (a block listed there would also be missing from
        // the list of its own class, which `check` finds walking the blocks). Reading
        // every list head of 64 rows on every check made this the slowest heap to
        // check under Miri.
        let rows = span.map_or(0, |span| Classes::<SL>::class_of(span.len()).fl + 1);
        let mut listed = 0;
        for (fl, row) in (0..).zip(&self.free) {
            let bitmap = self.sl_bitmap[fl as usize];
            let holding = if fl < rows {
                (0..).zip(row).fold(0, |holding, (sl, list)| {
                    bits::with_bit(holding, sl, list.first().is_some())
                })
            } else {
                0
            };
            if holding != bitmap {
                return Err(HeapError::new(
                    "bit sl of sl_bitmap[fl] is set iff free[fl][sl] holds a block",
                ));
            }
            if (bitmap != 0) != bits::is_set(self.fl_bitmap, fl) {
                return Err(HeapError::new(
                    "bit fl of fl_bitmap is set iff sl_bitmap[fl] is not zero",
                ));
            }
            let mut unchecked = bitmap;
            while let Some(sl) = bits::lowest_set_from(unchecked, 0) {
                let list = &row[sl as usize];
                listed += Self::check_list(list, Class { fl, sl }, span, most_blocks - listed)?;
                unchecked = bits::with_bit(unchecked, sl, false);
            }
        }
        Ok(listed)
    }

    /// Walks one list checking its blocks (at most `room` of them); returns how many.
    fn check_list(
        list: &BlockList,
        class: Class,
        span: Option<Span>,
        room: usize,
    ) -> Result<usize, HeapError> {
        let mut count = 0;
        let mut before = None;
        let mut cursor = list.first();
        while let Some(block) = cursor {
            let at = |invariant| HeapError::new(invariant).at(block.addr());
            let inside = span
                .is_some_and(|s| s.holds(block.addr()) && block.addr() + MIN_BLOCK <= s.epilogue);
            if !inside {
                return Err(at("free[fl][sl] holds only blocks of the span"));
            }
            // SAFETY: `block` is a well-placed header inside the span, with room for
            // its links.
            let (used, size, prev, next) = unsafe {
                (
                    block.is_used(),
                    block.size(),
                    block.prev_free(),
                    block.next_free(),
                )
            };
            if used {
                return Err(at("free[fl][sl] holds only free blocks"));
            }
            if size < MIN_BLOCK || Classes::<SL>::class_of(size) != class {
                return Err(at("free[fl][sl] holds only blocks of class (fl, sl)"));
            }
            if prev != before {
                return Err(at(
                    "free[fl][sl] is linked both ways: a block links back to the one before it",
                ));
            }
            count += 1;
            if count > room {
                return Err(at("the lists end, with no more blocks than the span holds"));
            }
            before = Some(block);
            cursor = next;
        }
        Ok(count)
    }

    /// Whether the free `block` of `size` bytes is on the list of its class.
    ///
    /// # Safety
    ///
    /// `check_index` found the lists sound.
    unsafe fn listed(&self, block: BlockRef, size: usize) -> bool {
        let class = Classes::<SL>::class_of(size);
        let list = &self.free[class.fl as usize][class.sl as usize];
        // SAFETY: the caller's promise.
        unsafe { list.iter() }.any(|listed| listed == block)
    }
}

// ANCHOR: resize_in_place
/// TLSF's lists behind the shared in-place resize ([`tags::resize_in_place`]).
impl<const SL: usize> FreeLists for Tlsf<SL> {
    unsafe fn free_tail(&mut self, tail: BlockRef) {
        // SAFETY: the caller's promise: a used block nobody uses, freed like any other.
        unsafe { self.coalesce(tail) }
    }

    unsafe fn absorb(&mut self, grow: &Grow) {
        // SAFETY: the caller's promise: `grow.next` is a free block of ours, on its
        // list; the rest lies inside it, and only its links are written here.
        unsafe {
            self.take_off(grow.next, grow.next.size());
            if let Some(rest) = grow.rest {
                self.insert(rest, grow.rest_size());
            }
        }
    }

    unsafe fn resized(&mut self, _block: BlockRef, old: usize, new: usize) {
        // No high-water mark to raise: `stats` finds the highest live block.
        self.requested.on_resize(old, new);
    }
}
// ANCHOR_END: resize_in_place

// SAFETY: blocks are cut from free blocks of the region, which tile it without overlap
// (invariant 1); a used block is on no list and its payload is `size - HEADER` bytes
// that no tag or link touches; refusals change nothing; `reallocate`'s default keeps the
// contents and `resize_in_place` never moves; walk and stats report the blocks as they are.
unsafe impl<const SL: usize> RawHeap for Tlsf<SL> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let mut heap = Tlsf {
            region,
            blocks: None,
            fl_bitmap: 0,
            sl_bitmap: [0; FL],
            free: [const { [const { BlockList::new() }; SL] }; FL],
            requested: Requested::default(),
        };
        if let Some(span) = Span::of(region) {
            // SAFETY: the caller's promise: `region` is ours alone and valid; the span
            // was computed from it.
            let first = unsafe { span.format(region) };
            // SAFETY: `first` is a fresh free block of `span.len()` bytes on no list.
            unsafe { heap.insert(first, span.len()) };
            heap.blocks = Some((span, first));
        }
        heap
    }

    // ANCHOR: allocate
    #[inline]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let Some(need) = tags::block_size(layout.size()) else {
            return Err(tags::refusal(&self.blocks, layout));
        };
        // Every payload is aligned to `GRANULE`: for the common request the compiler
        // drops all the work of a gap in front, which only the aligned path does.
        let served = if layout.align() <= GRANULE {
            self.serve(need, GRANULE, layout.size())
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
        // SAFETY: `blocks` is the span formatted in our region, unchanged while we walk.
        unsafe { tags::walk_span(self.region, self.blocks, visit) }
    }

    // ANCHOR: check
    fn check(&self) -> Result<(), HeapError> {
        check_walk(self)?;
        let listed = self.check_index(self.blocks.map(|(span, _)| span))?;
        let Some((span, first)) = self.blocks else {
            return Ok(());
        };
        // SAFETY: `first` is the span's first block; `check_index` found the lists sound.
        let (free, _) = unsafe {
            tags::check_span(span, first, |block, size| {
                if self.listed(block, size) {
                    Ok(())
                } else {
                    Err(
                        HeapError::new("every free block is on the list of its class")
                            .at(block.addr()),
                    )
                }
            })
        }?;
        if listed != free {
            return Err(HeapError::new(
                "the lists hold as many blocks as there are free blocks",
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
    use super::*;
    use rawheap::Arena;

    /// The invariant `check` reports for `heap` once `break_it` has changed it.
    fn broken(break_it: impl FnOnce(&mut Tlsf)) -> &'static str {
        let mut heap = Arena::<Tlsf>::new(4096);
        let layout = Layout::from_size_align(100, 8).unwrap();
        let block = heap.allocate(layout).unwrap();
        let _wall = heap.allocate(layout).unwrap();
        // SAFETY: `block` is live with `layout`, freed once. It leaves a hole of class
        // (0, 7) in front of the wall, so that two lists hold a block.
        unsafe { heap.deallocate(block, layout) };
        heap.check().expect("the heap is sound before it is broken");
        break_it(&mut heap);
        heap.check().expect_err("check notices").invariant
    }

    #[test]
    fn lists_holding_as_many_blocks_as_the_span_can_are_not_called_endless() {
        // The span cut into as many free blocks as fit, each filed on the list of its
        // class: the walk of the lists reaches its bound exactly, not past it, and what
        // is wrong is named by the walk of the blocks.
        let mut heap = Arena::<Tlsf>::new(4096);
        let (span, first) = heap.blocks.unwrap();
        let count = span.len() / MIN_BLOCK;
        let start = heap.region.cast::<u8>();
        // SAFETY: `first` is the heap's one free block, the whole span, on its list. It
        // leaves the list and is cut into `count` free blocks, the first taking what is
        // left over, that tile the span; each is filed once.
        unsafe {
            heap.take_off(first, span.len());
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
                heap.insert(block, size);
            }
        }
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
    fn check_reads_as_the_invariants_of_the_fields() {
        assert_eq!(
            broken(|heap| heap.sl_bitmap[0] ^= 1),
            "bit sl of sl_bitmap[fl] is set iff free[fl][sl] holds a block"
        );
        assert_eq!(
            broken(|heap| heap.fl_bitmap ^= 1 << 9),
            "bit fl of fl_bitmap is set iff sl_bitmap[fl] is not zero"
        );
        assert_eq!(
            broken(|heap| {
                let hole = heap.free[0][7].first().unwrap();
                heap.free[0][7] = BlockList::new();
                // SAFETY: `hole` is a free block, now on no list.
                unsafe { heap.free[0][8].push_front(hole) };
                heap.sl_bitmap[0] ^= 1 << 7 | 1 << 8;
            }),
            "free[fl][sl] holds only blocks of class (fl, sl)"
        );
        assert_eq!(
            broken(|heap| {
                heap.free[0][7] = BlockList::new();
                heap.sl_bitmap[0] ^= 1 << 7;
                heap.fl_bitmap ^= usize::from(heap.sl_bitmap[0] == 0);
            }),
            "every free block is on the list of its class"
        );
        // Rows no block of this heap can reach, the first of them (just above the
        // span's own class) and one far above: the check reads only their bits, and a
        // block moved to one is missing from the list of its class.
        let first_unreachable: fn(&Tlsf) -> usize = |heap| {
            let (span, _) = heap.blocks.unwrap();
            Classes::<32>::class_of(span.len()).fl as usize + 1
        };
        for row in [first_unreachable, |_| 40] {
            assert_eq!(
                broken(|heap| {
                    let row = row(heap);
                    let hole = heap.free[0][7].first().unwrap();
                    heap.free[0][7] = BlockList::new();
                    // SAFETY: `hole` is a free block, now on no list.
                    unsafe { heap.free[row][0].push_front(hole) };
                    heap.sl_bitmap[0] ^= 1 << 7;
                    heap.fl_bitmap ^= usize::from(heap.sl_bitmap[0] == 0);
                }),
                "every free block is on the list of its class"
            );
        }
        assert_eq!(
            broken(|heap| {
                heap.sl_bitmap[40] |= 1;
                heap.fl_bitmap |= 1 << 40;
            }),
            "bit sl of sl_bitmap[fl] is set iff free[fl][sl] holds a block"
        );
    }
}
