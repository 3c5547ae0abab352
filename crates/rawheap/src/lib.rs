//! # rawheap: the contract every heaplab allocator keeps
//!
//! An allocator is handed one contiguous region of memory and answers four questions
//! about it, again and again: *give me `n` bytes aligned to `a`* ([`RawHeap::allocate`]),
//! *take these back* ([`RawHeap::deallocate`]), *make this block bigger or smaller*
//! ([`RawHeap::reallocate`]), and *what does your memory look like now*
//! ([`RawHeap::stats`], [`RawHeap::walk`], [`RawHeap::check`]). C spells the first three
//! `malloc`, `free` and `realloc`, and answers failure with `NULL`; here failure is an
//! [`AllocError`], which says why.
//!
//! ```text
//!   region (handed to RawHeap::new, owned by the heap until it is dropped)
//!   ┌────────┬──────────────┬──────┬───────────┬──────────┬──────────────────────┐
//!   │overhead│ used (live)  │ free │ overhead  │  used    │        free          │
//!   └────────┴──────────────┴──────┴───────────┴──────────┴──────────────────────┘
//!   walk() reports these stretches in address order; they tile the region exactly.
//!   A used stretch starts at the pointer allocate() returned and is usable_size() long.
//! ```
//!
//! ## What an implementor guarantees (why the trait is `unsafe` to implement)
//!
//! 1. **Blocks are real.** A block returned by `allocate` lies inside the region, is
//!    aligned to `layout.align()`, and its first `usable_size(ptr, layout) >=
//!    layout.size()` bytes overlap no other live block and none of the heap's own
//!    metadata. The caller may read and write all of them until the block is freed.
//! 2. **Refusal is an answer.** Size 0 is refused with [`AllocError::ZeroSize`]; a layout
//!    the heap can never serve (beyond [`Capabilities`], larger than the region, or
//!    overflowing when headers and rounding are added) with [`AllocError::Unsupported`];
//!    a request that cannot be served now with [`AllocError::Exhausted`]. No method
//!    panics or aborts on any input a caller may legally pass, and a refusal changes
//!    nothing: the heap stays usable.
//! 3. **Resizing keeps contents.** `reallocate` keeps the first `min(old, new)` bytes; on
//!    `Err` the old block is untouched and still live. `resize_in_place` never moves.
//! 4. **The reports tell the truth.** `walk` tiles the region in address order and its
//!    `Used` stretches are exactly the live blocks; `stats` agrees with `walk`;
//!    `check` returns `Err` whenever the heap's own invariants do not hold.
//! 5. **`capabilities` are honest**: a heap that claims to reuse memory reuses it.
//!
//! ## What a caller owes
//!
//! 1. The region given to [`RawHeap::new`] is valid for reads and writes, used by nothing
//!    else, and outlives the heap and every block it hands out. [`Arena`] does this for you.
//! 2. Every `ptr` passed back came from this heap, is live, and comes with the layout it
//!    was allocated (or last reallocated) with: the same size and alignment.
//! 3. A block is freed once; after `deallocate` or a successful move by `reallocate`, the
//!    old pointer is dead.
//!
//! Misuse of the second kind is undefined behaviour in a real allocator. The
//! conformance crate's `Checked<H>` wrapper catches it and names it.
//!
//! ## Size 0, alignment and the edge cases every heap would repeat
//!
//! Size 0 is refused by the heap and answered by the wrappers: the `Allocator` impl of
//! [`Locked`] returns a dangling, well-aligned pointer, as the `Allocator` API requires.
//! Any power-of-two alignment up to [`Capabilities::max_align`] must work, including
//! alignments larger than a heap's block header. `reallocate`'s provided body asks
//! [`RawHeap::resize_in_place`] first and falls back to allocate, copy, free, so a heap
//! writes only its algorithm; it also handles a new alignment the old block lacks.
//!
//! ## Sharing
//!
//! Methods take `&mut self`: the algorithms are single-threaded and plain. [`Locked`]
//! puts one lock around any heap and implements `GlobalAlloc` and `allocator_api2`'s
//! `Allocator`; [`StaticHeap`] is the `#[global_allocator]` form over a static region.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "std")]
extern crate std;

pub mod align;
#[cfg(feature = "std")]
mod arena;
pub mod bits;
mod locked;
mod report;
// The boundary-tag block format, behind the feature `tags` (on by default, and asked
// for by the heaps that use it), so a course can grade an assignment without it.
#[cfg(feature = "tags")]
pub mod tags;

use core::alloc::Layout;
use core::ptr::NonNull;

#[cfg(feature = "std")]
pub use arena::{Arena, Memory};
pub use locked::{Locked, StaticHeap};
pub use report::{
    AllocError, Block, BlockKind, Capabilities, ExhaustionCause, HeapError, Requested, Reuse,
    Stats, Usage,
};

// ANCHOR: raw_heap
/// An allocator that manages one contiguous region handed to it at construction.
///
/// # Safety
///
/// Implementors guarantee everything listed in the crate documentation under "What an
/// implementor guarantees": callers rely on it for memory safety.
pub unsafe trait RawHeap {
    /// A heap managing `region`. Never fails: a region too small for any block gives a
    /// heap that refuses every request.
    ///
    /// # Safety
    ///
    /// `region` is valid for reads and writes, used by nothing else, and outlives the heap
    /// and every block it hands out.
    unsafe fn new(region: NonNull<[u8]>) -> Self
    where
        Self: Sized;

    /// A block of at least `layout.size()` bytes aligned to `layout.align()`, inside the
    /// region and overlapping no live block. Err when it cannot be served (see
    /// [`AllocError`]); never panics.
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError>;

    /// Like [`allocate`](RawHeap::allocate), with the first `layout.size()` bytes zeroed,
    /// even when the block reuses memory that held data before (`calloc`).
    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = self.allocate(layout)?;
        // SAFETY: `allocate` guarantees `layout.size()` writable bytes at `ptr`.
        unsafe { ptr.as_ptr().write_bytes(0, layout.size()) };
        Ok(ptr)
    }

    /// Gives a block back.
    ///
    /// # Safety
    ///
    /// `ptr` came from this heap with this `layout` (size and alignment) and is live.
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout);

    /// Changes a live block's size to `new.size()` without moving it, when the heap can.
    /// On `Ok` the block is live with layout `new` (the caller checked that `ptr` meets
    /// `new.align()`); on `Err` nothing changed. The default never succeeds.
    ///
    /// # Safety
    ///
    /// `ptr` came from this heap with layout `old` and is live; `ptr` is aligned to
    /// `new.align()`; `new.size() > 0`.
    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        let _ = (ptr, old, new);
        Err(AllocError::Unsupported)
    }

    /// A block of `new.size()` bytes aligned to `new.align()` holding the first
    /// `min(old.size(), new.size())` bytes of the old one (`realloc`). On `Err` the old
    /// block is untouched and still live. Size 0 is refused like in `allocate`: free the
    /// block instead.
    ///
    /// The provided body tries [`resize_in_place`](RawHeap::resize_in_place) when `ptr`
    /// already meets the new alignment, and otherwise allocates, copies and frees.
    ///
    /// # Safety
    ///
    /// `ptr` came from this heap with layout `old` and is live. On `Ok` it is dead unless
    /// it is the pointer returned.
    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        if new.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        if align::ptr_is_aligned(ptr, new.align()) {
            // SAFETY: the caller's promise about `ptr` and `old`; alignment and size were
            // just checked.
            if unsafe { self.resize_in_place(ptr, old, new) }.is_ok() {
                return Ok(ptr);
            }
        }
        let moved = self.allocate(new)?;
        // SAFETY: the caller's promise about `ptr`; `moved` was just allocated with `new`.
        Ok(unsafe { move_block(self, ptr, old, new, moved) })
    }

    /// The bytes really reserved for the caller at `ptr`: at least `layout.size()`, and
    /// all of them may be used. The gap is internal fragmentation made visible.
    ///
    /// # Safety
    ///
    /// `ptr` came from this heap with this `layout` and is live.
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize;

    /// The region this heap manages, as handed to [`new`](RawHeap::new).
    fn region(&self) -> NonNull<[u8]>;

    /// Byte counts and high-water mark; see [`Stats`]. Must agree with `walk`.
    fn stats(&self) -> Stats;

    /// Calls `visit` for every stretch of the region, in address order, tiling it exactly.
    fn walk(&self, visit: &mut dyn FnMut(Block));

    /// Verifies the heap's own invariants, like the malloc lab's `mm_check`. Implementors
    /// usually start with [`check_walk`] and then check their own data structures.
    fn check(&self) -> Result<(), HeapError>;

    /// What this heap can and cannot do.
    fn capabilities(&self) -> Capabilities;
}
// ANCHOR_END: raw_heap

// ANCHOR: check_walk
/// Checks what every heap owes whatever its algorithm: `walk` tiles the region in
/// address order with non-empty stretches, and `stats` agrees with it.
pub fn check_walk<H: RawHeap + ?Sized>(heap: &H) -> Result<(), HeapError> {
    let region = heap.region();
    let start = region.as_ptr().cast::<u8>().addr();
    let end = start + region.len();
    let mut next = start;
    let mut result = Ok(());
    heap.walk(&mut |block| {
        if result.is_err() {
            return;
        }
        if block.size == 0 {
            result = Err(HeapError::new("walk reports no empty stretch").at(block.addr));
        } else if block.addr != next {
            result = Err(HeapError::new(
                "walk's stretches follow each other with no gap or overlap",
            )
            .at(next));
        } else if block.end() > end {
            result = Err(HeapError::new("walk stays inside the region").at(block.addr));
        }
        next = block.end();
    });
    result?;
    if next != end {
        return Err(HeapError::new("walk covers the whole region").at(next));
    }
    let stats = heap.stats();
    let totals = Stats::from_walk(region.len(), &Usage::default(), |visit| heap.walk(visit));
    if stats.region != totals.region
        || stats.usable != totals.usable
        || stats.free != totals.free
        || stats.largest_free != totals.largest_free
    {
        return Err(HeapError::new(
            "stats agree with walk (region, usable, free, largest free)",
        ));
    }
    if stats.requested > stats.usable || stats.high_water > stats.region {
        return Err(HeapError::new(
            "requested <= usable and high_water <= region",
        ));
    }
    Ok(())
}
// ANCHOR_END: check_walk

/// The offset of `addr` from the start of `region`.
pub fn offset_in(region: NonNull<[u8]>, addr: usize) -> usize {
    addr - region.as_ptr().cast::<u8>().addr()
}

/// The end of a reallocation that cannot stay in place: the first `min(old, new)` bytes
/// of `ptr` copied into `moved`, then `ptr` given back to `heap`; returns `moved`.
/// [`RawHeap::reallocate`]'s provided body ends so, and so does a heap's own
/// `reallocate` once it has chosen where the block goes.
///
/// # Safety
///
/// `ptr` is live in `heap` with layout `old`; `moved` is a live block of `heap` of at
/// least `new.size()` bytes.
pub unsafe fn move_block<H: RawHeap + ?Sized>(
    heap: &mut H,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
    moved: NonNull<u8>,
) -> NonNull<u8> {
    // SAFETY: both blocks are live, each at least `min(old, new)` bytes long. They never
    // overlap in a correct heap; `copy` (memmove) rather than the non-overlapping copy
    // keeps a broken heap that hands out a live block again a bug the conformance suite
    // reports, instead of a failed precondition that aborts.
    unsafe {
        moved
            .as_ptr()
            .copy_from(ptr.as_ptr(), old.size().min(new.size()))
    };
    // SAFETY: the caller's promise: `ptr` is live with layout `old`.
    unsafe { heap.deallocate(ptr, old) };
    moved
}
