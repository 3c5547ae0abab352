//! # buddy: a binary buddy system
//!
//! Every block is a power of two times [`MIN_BLOCK`](Buddy) bytes long and starts at a
//! multiple of its own size. A block of order `k` (`MIN_BLOCK << k` bytes) splits into
//! two halves of order `k - 1`, each the other's *buddy*; the buddy of the block at
//! address `a` is at `a ^ size`, one bit flipped, so it is found without a search
//! (Knowlton 1965, Knuth's *TAOCP* 2.5).
//!
//! - **allocate** rounds the request up to an order, finds the smallest non-empty free
//!   list at or above it with one bit scan, takes a block and splits it down, putting
//!   the upper half of each split on the list of its order.
//! - **deallocate** merges the block with its buddy while the buddy is free and whole,
//!   order after order, all the way up, and lists what it ends with.
//! - **resize_in_place** shrinks always (the upper halves go free) and grows when the
//!   buddies above the block are free, up to the order the new size needs.
//!
//! ## Layout
//!
//! No block has a header. What the heap knows about blocks is kept beside them, in a
//! bitmap with one *taken* bit per place a block of each order could start: set when
//! the block is used or split, clear when it is free (whole and on its order's list).
//! The places come in pairs of buddies, whose two bits share a word. That one word says
//! all a buddy system asks: a block is split when a bit of its halves is set (the
//! halves of a block that is not split are no blocks, and their bits are clear), so no
//! second bitmap of split bits is needed; and a freed block merges when its buddy's bit
//! is clear too, found by the same read that clears its own. For this to hold at the
//! top of each tree, the buddy of every root that is not a block itself carries a set
//! bit, a *sentinel*, so that a root never merges. A used block's order comes with its
//! layout (the caller passes it back on free), and [`RawHeap::walk`] finds it by going
//! down the trees.
//!
//! ```text
//!  a region of 64 KiB at a 64 KiB boundary, MIN_BLOCK = 16
//!  ┌──────┬──┬──┬───┬─────┬─────────┬──────────────────────────────────┐
//!  │bitmap│1K│2K│4K │ 8K  │   16K   │           32K (order 11)         │
//!  │ 1/64 │  │  │   │     │         │                                  │
//!  └──────┴──┴──┴───┴─────┴─────────┴──────────────────────────────────┘
//!   roots: from the first block up, the largest aligned power-of-two block that fits
//!
//!  the same region 4 KiB past a 64 KiB boundary: roots grow, then shrink
//!  ┌──────┬──┬──┬─────┬─────────┬──────────────────────────────────┬───┐
//!  │bitmap│1K│2K│ 8K  │   16K   │               32K                │4K │
//!  └──────┴──┴──┴─────┴─────────┴──────────────────────────────────┴───┘
//!
//!  one root as a tree; split blocks are drawn with their halves below them
//!  ┌─────────────────────────────── 256 split ───────────────────────────────┐
//!  ├──────────────── 128 split ─────────────┬────────── 128 free ────────────┤
//!  ├──── 64 used ───────┬──── 64 split ─────┤ on list 3 (128 B)              │
//!  │                    ├─ 32 used ┬ 32 free┤                                │
//!  └────────────────────┴──────────┴────────┴────────────────────────────────┘
//!   free block: its first two words link it into its order's list (next, prev)
//! ```
//!
//! The region may start and end anywhere. The bitmap comes first; blocks cover
//! `[lo, hi)`, from the first `MIN_BLOCK` boundary after the bitmap to the region's
//! last one, with *roots*: from `lo` up, the largest block that is aligned to its size
//! (as an address) and fits. Roots grow while the alignment of the address limits them
//! and shrink once the room left does, so no byte between `lo` and `hi` is lost and
//! the largest root is more than a quarter of the area. What is lost: the bitmap (2
//! bits per `MIN_BLOCK` bytes, about 1.6 % with 16-byte blocks) with the crumb up to
//! `lo`, up to `MIN_BLOCK - 1` bytes after `hi`, and size, since roots never merge: a
//! request larger than the largest root is refused although the region is larger (a
//! 64 KiB region at a 64 KiB boundary serves at most 32 KiB, since the bitmap takes a
//! little of it). The bitmap goes first so that the small roots it leaves lie low:
//! small requests are served there, and the heap fills from the bottom up.
//!
//! Because a block starts at a multiple of its size and carries no header, **every
//! block is aligned to its own size**: a request aligned to `a` is served by a block of
//! at least `a` bytes and needs no padding. A header in front of the payload would
//! move it off that alignment (and make a page-aligned page cost two pages).
//!
//! ## Invariants (checked by [`RawHeap::check`])
//!
//! 1. The bits describe a forest: each root is a *node*; a node is split when a bit of
//!    its halves is set, and the halves of a split node are nodes. A split or used
//!    node has its bit set, a free one has it clear; the only other bits set are the
//!    roots' sentinels. Leaves that are not free are the live blocks.
//! 2. List `k` holds exactly the free nodes of order `k`, each once, with links that
//!    agree; bit `k` of `nonempty` tells whether list `k` has a block.
//! 3. No two free buddies are left unmerged: the halves of a split node are never both
//!    free. (The bits cannot say otherwise: two clear halves read as a parent that is
//!    not split; the lists would then hold two blocks that are no nodes, which 2 finds.)
//!
//! ## Cost of each operation (`K` = `ORDERS`)
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | O(1) search (one bit scan); O(splits) ≤ O(K) |
//! | `deallocate` | O(merges) ≤ O(K), each merge O(1) (one bit word read and written, an unlink) |
//! | `resize_in_place` | O(orders changed) ≤ O(K) |
//! | `usable_size` | O(1): the layout's order |
//! | `walk`, `stats` | O(blocks + K·roots) |
//! | `check` | O(blocks + bitmap bits) |
//!
//! ## Example
//!
//! ```
//! use core::alloc::Layout;
//! use buddy::Buddy;
//! use rawheap::{Arena, RawHeap};
//!
//! let mut heap = Arena::<Buddy>::new(1 << 16);
//! let page = Layout::from_size_align(4096, 4096)?;
//! let a = heap.allocate(page)?;
//! assert_eq!(a.as_ptr().addr() % 4096, 0, "a block is aligned to its size");
//! let small = Layout::from_size_align(24, 8)?;
//! let b = heap.allocate(small)?;
//! // SAFETY: `b` is live with this layout.
//! assert_eq!(unsafe { heap.usable_size(b, small) }, 32, "24 bytes round up to 32");
//! // SAFETY: both came from this heap with these layouts and are freed once.
//! unsafe {
//!     heap.deallocate(b, small);
//!     heap.deallocate(a, page);
//! }
//! heap.check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]

mod bitmap;
mod check;
mod cover;
mod list;
mod tree;

use core::alloc::Layout;
use core::num::NonZero;
use core::ptr::NonNull;

use rawheap::{AllocError, Block, Capabilities, HeapError, RawHeap, Requested, Reuse, Stats, bits};

use crate::bitmap::OrderBits;
use crate::cover::{Cover, Shape};
use crate::list::{FreeList, Links};
use crate::tree::{Kind, Nodes};

/// A binary buddy heap with blocks of `MIN_BLOCK << k` bytes for `k` in `0..ORDERS`.
/// See the [crate documentation](crate).
///
/// `MIN_BLOCK` is a power of two of at least two words (a free block holds two links);
/// `ORDERS` is at least 1 and small enough for the largest block to fit in a `usize`.
/// Other values fail to compile. The defaults, 16-byte blocks and 28 orders (blocks of
/// up to 2 GiB), hold on 32-bit targets too; a larger region gets roots of 2 GiB.
pub struct Buddy<const MIN_BLOCK: usize = 16, const ORDERS: usize = 28> {
    /// The region as handed to `new`; every pointer the heap makes is derived from it.
    region: NonNull<[u8]>,
    /// Blocks cover `[cover.lo, cover.hi)` and have orders `0..cover.orders`; the
    /// bitmap lies before them, from `cover.words`. `cover.orders == 0` when the region
    /// holds no block.
    cover: Cover,
    /// `lists[k]` holds exactly the free blocks of order `k`, each once, newest first.
    lists: [FreeList; ORDERS],
    /// Bit `k` is set iff `lists[k]` is not empty.
    nonempty: usize,
    /// The taken bit of a node is set iff it is split or used (clear iff it is on its
    /// order's list); a node is split iff a bit of its halves is set. The only other
    /// bits set are the sentinels: the bit of each root's buddy that is not a node.
    taken: OrderBits<MIN_BLOCK, ORDERS>,
    /// Requested bytes of the live blocks, and the furthest end of a block that has left
    /// (freed, or the part a shrink gave up): all that `stats` cannot read off the
    /// trees, whose used leaves are the live blocks (see [`Requested`]).
    requested: Requested,
}

// SAFETY: the heap is the only user of its region (the promise made to `new`), and all
// its pointers point into it: moving the heap to another thread moves everything.
unsafe impl<const MIN_BLOCK: usize, const ORDERS: usize> Send for Buddy<MIN_BLOCK, ORDERS> {}

impl<const MIN_BLOCK: usize, const ORDERS: usize> core::fmt::Debug for Buddy<MIN_BLOCK, ORDERS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Buddy")
            .field("region_len", &self.region.len())
            .field("cover", &self.cover)
            .field("nonempty", &format_args!("{:#b}", self.nonempty))
            .field("requested", &self.requested)
            .finish_non_exhaustive()
    }
}

impl<const MIN_BLOCK: usize, const ORDERS: usize> Buddy<MIN_BLOCK, ORDERS> {
    /// `log2(MIN_BLOCK)`.
    const SHIFT: u32 = MIN_BLOCK.trailing_zeros();

    /// The parameters, as the cover computations take them.
    const SHAPE: Shape = Shape {
        shift: Self::SHIFT,
        orders: ORDERS as u32,
    };

    /// Evaluated by `new`, so that a heap type with impossible parameters fails to build.
    const PARAMETERS_HOLD: () = assert!(
        MIN_BLOCK.is_power_of_two()
            && MIN_BLOCK >= size_of::<Links>()
            && ORDERS >= 1
            && ORDERS <= (usize::BITS - MIN_BLOCK.trailing_zeros()) as usize,
        "MIN_BLOCK is a power of two of at least two words; 1 <= ORDERS <= bits left above it"
    );

    /// Bytes in a block of order `k`.
    #[inline(always)]
    const fn size_of(k: u32) -> usize {
        MIN_BLOCK << k
    }

    // ANCHOR: order_of
    /// The order of the block that serves `layout`: the smallest power of two at least
    /// `MIN_BLOCK`, the size and the alignment (a block is aligned to its size). It may
    /// be `ORDERS` or more for a huge layout, which no list then serves, and for size 0,
    /// which gives the largest order there is.
    #[inline(always)]
    fn order_of(layout: Layout) -> u32 {
        // The bit length of `n - 1` is ceil(log2 n), and the bit length of an `|` is the
        // largest of its operands': one bit scan over the three, with no comparison.
        // `MIN_BLOCK - 1` is not 0, and size 0 wraps to all ones.
        let bits = layout.size().wrapping_sub(1) | (layout.align() - 1) | (MIN_BLOCK - 1);
        usize::BITS - bits.leading_zeros() - Self::SHIFT
    }
    // ANCHOR_END: order_of

    /// A pointer to `addr`, with the region's provenance.
    ///
    /// # Safety
    ///
    /// `addr` lies inside the region.
    #[inline(always)]
    unsafe fn at(&self, addr: usize) -> NonNull<Links> {
        // SAFETY: the caller's promise: an address inside the region is not 0.
        let addr = unsafe { NonZero::new_unchecked(addr) };
        self.region.cast().with_addr(addr)
    }

    /// Whether the order-`k` block at `addr` lies inside the covered area.
    #[inline(always)]
    fn covers(&self, addr: usize, k: u32) -> bool {
        let Cover { lo, hi, .. } = self.cover;
        addr.wrapping_sub(lo) <= (hi - lo).wrapping_sub(Self::size_of(k))
    }

    /// Whether the buddy of the order-`k` root at `addr` carries a sentinel: whether it
    /// is no node, as every root's buddy is but that of a root of the largest order
    /// whose buddy lies in the area (a root too).
    fn has_sentinel(&self, addr: usize, k: u32) -> bool {
        k + 1 < ORDERS as u32 || !self.covers(addr ^ Self::size_of(k), k)
    }

    /// List `k`.
    ///
    /// # Safety
    ///
    /// `k < ORDERS`.
    #[inline(always)]
    unsafe fn list(&mut self, k: u32) -> &mut FreeList {
        // SAFETY: the caller's promise.
        unsafe { self.lists.get_unchecked_mut(k as usize) }
    }

    /// Puts the order-`k` block at `addr` on its list, free.
    ///
    /// # Safety
    ///
    /// The block is a node of order `k` that nobody uses, on no list, whose taken bit is
    /// clear.
    #[inline(always)]
    unsafe fn give(&mut self, addr: usize, k: u32) {
        // SAFETY: the caller's promise; a node has room for its links.
        unsafe {
            let block = self.at(addr);
            self.list(k).push(block);
        }
        self.nonempty |= 1 << k;
    }

    /// Takes the newest free block of order `k` off its list, marks it taken and returns
    /// its address.
    ///
    /// # Safety
    ///
    /// List `k` is not empty.
    #[inline(always)]
    unsafe fn take(&mut self, k: u32) -> usize {
        // SAFETY: the caller's promise: a list that is not empty is one of `lists`.
        let list = unsafe { self.list(k) };
        // SAFETY: the caller's promise; listed blocks are free nodes (invariant 2).
        let block = unsafe { list.pop().unwrap_unchecked() }.addr().get();
        if list.is_empty() {
            self.nonempty &= !(1 << k);
        }
        // SAFETY: `block` is a node of order `k`.
        unsafe { self.taken.set(k, block) };
        block
    }

    /// Takes the free order-`k` block at `addr` off its list, wherever it is on it; its
    /// taken bit stays clear.
    ///
    /// # Safety
    ///
    /// The block is on list `k`.
    #[inline(always)]
    unsafe fn unlist(&mut self, addr: usize, k: u32) {
        // SAFETY: the caller's promise: a listed block is a node, in the region, and
        // `k < ORDERS`.
        let (block, list) = unsafe { (self.at(addr), self.list(k)) };
        // SAFETY: as above.
        if unsafe { list.unlink(block) } {
            self.nonempty &= !(1 << k);
        }
    }

    // ANCHOR: split_down
    /// Splits the order-`from` block at `addr` until its front is of order `to`: the
    /// upper half of each split goes on the list of its order.
    ///
    /// # Safety
    ///
    /// The block is a node of order `from`, on no list, taken by the caller (its bit
    /// set); `to <= from`. When `empty`, the lists of orders `to..from` are empty.
    #[inline(always)]
    unsafe fn split_down(&mut self, addr: usize, from: u32, to: u32, empty: bool) {
        for k in (to..from).rev() {
            // SAFETY: the caller's promise; the halves of a node are nodes, the lower
            // one taken (split further, or the caller's) and the upper one nobody's,
            // with its bit clear, since its parent was not split.
            unsafe {
                self.taken.set(k, addr);
                let upper = self.at(addr + Self::size_of(k));
                if empty {
                    self.list(k).start(upper);
                } else {
                    self.list(k).push(upper);
                }
            }
            self.nonempty |= 1 << k;
        }
    }
    // ANCHOR_END: split_down

    /// Takes the newest free block of order `from` and splits it down to order `to`;
    /// returns its address. Out of line, so that an exact fit in `allocate` pays for
    /// none of it.
    ///
    /// # Safety
    ///
    /// List `from` is the first list at or above `to` that is not empty; `to < from`.
    #[inline(never)]
    unsafe fn take_split(&mut self, from: u32, to: u32) -> usize {
        // SAFETY: the caller's promise; the block taken is a node on no list, and the
        // lists below `from` down to `to` are empty.
        unsafe {
            let block = self.take(from);
            self.split_down(block, from, to, true);
            block
        }
    }

    // ANCHOR: merge_up
    /// Frees the order-`k` block at `addr`: merges it with its buddy while the buddy is
    /// free and whole, all the way up, and lists the block it ends with.
    ///
    /// # Safety
    ///
    /// The block is a used node of order `k` that nobody uses any more.
    #[inline(always)]
    unsafe fn merge_up(&mut self, addr: usize, k: u32) {
        // Most frees in a steady state find their buddy in use (a queue or a pool of
        // one size): that case is decided here and lists the block at once, before any
        // of the loop's set-up.
        // SAFETY: the caller's promise: a used node is taken; it is free from now on,
        // or merged away, and either way its bit is clear.
        if unsafe { self.release(addr, k) } {
            // SAFETY: the caller's promise.
            unsafe { self.merge_all(addr, k) };
        } else {
            // SAFETY: the caller's promise: a node nobody uses, with no free buddy.
            unsafe { self.give(addr, k) };
        }
    }

    /// Clears the taken bit of the order-`k` node at `addr` and tells whether it merges
    /// with its buddy: whether the buddy's bit, read from the same word, is clear too,
    /// below the largest order. A clear bit beside a clear bit is a free buddy: a node
    /// that is not free has its bit set, and a buddy that is no node has its bit clear
    /// only when the block has a parent, which makes the buddy a node (a root's buddy
    /// that is no node carries a sentinel). Two roots can be buddies only at the
    /// largest order, where the cover puts them side by side: they never merge.
    ///
    /// # Safety
    ///
    /// The block is a node of order `k` whose bit is set.
    #[inline(always)]
    unsafe fn release(&mut self, addr: usize, k: u32) -> bool {
        // SAFETY: the caller's promise: a node has its bit, and so does its buddy.
        let pair = unsafe { self.taken.pair(k, addr) };
        // SAFETY: the word was just read.
        unsafe { pair.clear_own() };
        !pair.buddy() && k + 1 < ORDERS as u32
    }

    /// [`merge_up`](Self::merge_up) once the block is known to merge: merges, then
    /// looks at the next buddy up.
    ///
    /// # Safety
    ///
    /// As for `merge_up`, with the block's bit cleared by `release`, which said it
    /// merges.
    #[inline(never)]
    unsafe fn merge_all(&mut self, mut addr: usize, mut k: u32) {
        loop {
            // SAFETY: the buddy is free, so listed (invariant 2); their parent, split
            // until now, is a node with its bit set, now whole.
            unsafe { self.unlist(addr ^ Self::size_of(k), k) };
            addr &= !Self::size_of(k);
            k += 1;
            // SAFETY: as above.
            if !unsafe { self.release(addr, k) } {
                break;
            }
        }
        // SAFETY: the merged block is a node nobody uses, its bit clear.
        unsafe { self.give(addr, k) };
    }
    // ANCHOR_END: merge_up

    // ANCHOR: grow
    /// Grows the used order-`from` block at `addr` to order `to` when the block of order
    /// `to` starting at `addr` lies in the area and the buddies above the block, one per
    /// order from `from` to `to - 1`, are all free and whole. `Err` changes nothing.
    ///
    /// # Safety
    ///
    /// The block is a used node of order `from < to`.
    unsafe fn grow(&mut self, addr: usize, from: u32, to: u32) -> Result<(), AllocError> {
        if to >= self.cover.orders
            || !rawheap::align::is_aligned(addr, Self::size_of(to))
            || !self.covers(addr, to)
        {
            return Err(AllocError::Exhausted);
        }
        let upper = |k| addr + Self::size_of(k);
        // SAFETY: each upper half is a node, the buddy of the block's ancestor at `k`
        // (the order-`to` block at `addr` lies in the area, so inside a root).
        if (from..to).any(|k| unsafe { self.taken.get(k, upper(k)) }) {
            return Err(AllocError::Exhausted);
        }
        for k in from..to {
            // SAFETY: just found free; they and the block's ancestors below `to` are
            // nodes no more, so their bits are cleared (the upper halves' already are).
            unsafe {
                self.unlist(upper(k), k);
                self.taken.clear(k, addr);
            }
        }
        Ok(())
    }
    // ANCHOR_END: grow

    /// Why `layout`, of order `order`, cannot be served: size 0, larger than the largest
    /// block (or beyond `ORDERS`), or not now.
    #[cold]
    fn refusal(&self, layout: Layout, order: u32) -> AllocError {
        if layout.size() == 0 {
            AllocError::ZeroSize
        } else if order < self.cover.orders {
            AllocError::Exhausted
        } else {
            AllocError::Unsupported
        }
    }

    /// The size of the largest block the cover has, 0 when it has none.
    fn largest(&self) -> usize {
        match self.cover.orders {
            0 => 0,
            orders => Self::size_of(orders - 1),
        }
    }

    /// Every node of the forest, in pre-order.
    fn nodes(&self) -> Nodes<'_, MIN_BLOCK, ORDERS> {
        Nodes::of(self)
    }
}

// SAFETY: blocks are leaves of the trees over `[lo, hi)`, which do not overlap one
// another nor the bitmap before `lo`; a used block is on no list and nothing is written
// into it (links are written only into free blocks); refusals change nothing;
// `resize_in_place` never moves; walk and stats report the trees as they are.
unsafe impl<const MIN_BLOCK: usize, const ORDERS: usize> RawHeap for Buddy<MIN_BLOCK, ORDERS> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let () = Self::PARAMETERS_HOLD;
        let start = region.cast::<u8>().as_ptr().addr();
        let words = region.cast::<usize>();
        let mut heap = match Self::SHAPE.cover(start, start + region.len()) {
            Some(cover) => {
                let (starts, bits) = Self::SHAPE.bit_starts::<ORDERS>(cover);
                let words = words.map_addr(|s| s.saturating_add(cover.words - s.get()));
                // SAFETY: the caller's promise: the region is ours; `cover` left room
                // for `bits` bits in words from `cover.words`, before the blocks.
                unsafe { words.write_bytes(0, bits.div_ceil(bits::BITS as usize)) };
                Buddy {
                    region,
                    cover,
                    lists: [const { FreeList::new() }; ORDERS],
                    nonempty: 0,
                    taken: OrderBits::new(words, cover.lo, starts),
                    requested: Requested::default(),
                }
            }
            None => Buddy {
                region,
                cover: Cover {
                    words: start,
                    lo: start,
                    hi: start,
                    orders: 0,
                },
                lists: [const { FreeList::new() }; ORDERS],
                nonempty: 0,
                taken: OrderBits::new(words, start, [0; ORDERS]),
                requested: Requested::default(),
            },
        };
        for (at, k) in Self::SHAPE.roots(heap.cover.lo, heap.cover.hi) {
            // SAFETY: a root is a node, free and nobody's, its bit clear; its buddy has
            // a bit (slots come in pairs).
            unsafe {
                heap.give(at, k);
                if heap.has_sentinel(at, k) {
                    heap.taken.set(k, at ^ Self::size_of(k));
                }
            }
        }
        heap
    }

    // ANCHOR: allocate
    #[inline]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let order = Self::order_of(layout);
        // Size 0 asks for the largest order there is, past every list: refused below.
        match bits::lowest_set_from(self.nonempty, order) {
            Some(found) => {
                self.requested.on_allocate(layout.size());
                // An exact fit, what a steady state of one size mostly finds, needs no
                // split: tested here, it pays for none of the splitting's set-up, and
                // nothing is left to do after the call that splits.
                let block = if found == order {
                    // SAFETY: bit `found` says list `found` has a block.
                    unsafe { self.take(found) }
                } else {
                    // SAFETY: as above, `order < found`, and `found` is the first
                    // list at or above `order` with a block.
                    unsafe { self.take_split(found, order) }
                };
                // SAFETY: a node lies in the region.
                Ok(unsafe { self.at(block) }.cast())
            }
            _ => Err(self.refusal(layout, order)),
        }
    }
    // ANCHOR_END: allocate

    // ANCHOR: deallocate
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let (addr, order) = (ptr.as_ptr().addr(), Self::order_of(layout));
        self.requested.on_deallocate(layout.size());
        self.requested.reach(addr + Self::size_of(order));
        // SAFETY: the caller's promise: `ptr` is a live block served for `layout`, so a
        // used node of the order `layout` asks for.
        unsafe { self.merge_up(addr, order) };
    }
    // ANCHOR_END: deallocate

    // ANCHOR: resize_in_place
    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        let addr = ptr.as_ptr().addr();
        let (from, to) = (Self::order_of(old), Self::order_of(new));
        if to < from {
            // SAFETY: the caller's promise: a used node of order `from`; its front stays
            // the caller's.
            unsafe { self.split_down(addr, from, to, false) };
            // The upper halves have left the live block, which reached their end.
            self.requested.reach(addr + Self::size_of(from));
        } else if to > from {
            // SAFETY: as above.
            unsafe { self.grow(addr, from, to) }?;
        }
        self.requested.on_resize(old.size(), new.size());
        Ok(())
    }
    // ANCHOR_END: resize_in_place

    #[inline]
    unsafe fn usable_size(&self, _ptr: NonNull<u8>, layout: Layout) -> usize {
        Self::size_of(Self::order_of(layout))
    }

    fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    fn stats(&self) -> Stats {
        Stats::from_live_walk(self.region, &self.requested, |visit| self.walk(visit))
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        let start = self.region.cast::<u8>().as_ptr().addr();
        let end = start + self.region.len();
        if self.cover.orders == 0 {
            if end > start {
                visit(Block::overhead(start, end - start));
            }
            return;
        }
        // The bitmap takes at least one word, so there is always something before `lo`.
        visit(Block::overhead(start, self.cover.lo - start));
        for node in self.nodes() {
            let size = Self::size_of(node.order);
            match node.kind {
                Kind::Split => {}
                Kind::Free => visit(Block::free(node.addr, size)),
                Kind::Used => visit(Block::used(node.addr, size)),
            }
        }
        if end > self.cover.hi {
            visit(Block::overhead(self.cover.hi, end - self.cover.hi));
        }
    }

    // ANCHOR: check
    fn check(&self) -> Result<(), HeapError> {
        rawheap::check_walk(self)?;
        let tree = self.check_tree()?;
        for k in 0..ORDERS as u32 {
            self.check_order(k, &tree)?;
        }
        Ok(())
    }
    // ANCHOR_END: check

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reuse: Reuse::Any,
            restores_when_empty: true,
            max_size: self.largest(),
            max_align: self.largest().max(1),
            resizes_in_place: true,
        }
    }
}
