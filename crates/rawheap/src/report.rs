//! What a heap tells about itself: [`Stats`], [`Block`]s for `walk`, [`Capabilities`],
//! and the two error types.

use core::alloc::Layout;
use core::fmt;
use core::ptr::NonNull;

/// Why an allocation was refused. Every refusal is an answer, never a panic or abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AllocError {
    /// `layout.size()` was 0. heaplab heaps hand out no zero-sized blocks; wrappers that
    /// must answer size 0 (the `Allocator` API) do it without asking the heap.
    ZeroSize,
    /// This heap can never serve the layout: the size or alignment is beyond its
    /// [`Capabilities`], larger than its region, or overflows once headers and
    /// rounding are added.
    Unsupported,
    /// Not enough memory in a suitable place right now; freeing blocks may help. Whether
    /// the cause is exhaustion or fragmentation is told by [`AllocError::cause`].
    Exhausted,
}

/// Why an [`AllocError::Exhausted`] happened, judged from the heap's [`Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExhaustionCause {
    /// Fewer free bytes than were asked for: the heap is simply full.
    OutOfMemory,
    /// Enough free bytes in total, but no single free block can hold the request:
    /// external fragmentation.
    Fragmentation,
}

// ANCHOR: cause
impl AllocError {
    /// Tells exhaustion from fragmentation for a refused `layout`, given the heap's
    /// stats at the moment of the refusal. `None` for the other refusals.
    pub fn cause(self, layout: Layout, stats: &Stats) -> Option<ExhaustionCause> {
        match self {
            AllocError::Exhausted if stats.free >= layout.size() => {
                Some(ExhaustionCause::Fragmentation)
            }
            AllocError::Exhausted => Some(ExhaustionCause::OutOfMemory),
            AllocError::ZeroSize | AllocError::Unsupported => None,
        }
    }
}
// ANCHOR_END: cause

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocError::ZeroSize => "zero-sized allocation refused",
            AllocError::Unsupported => "layout beyond what this heap can ever serve",
            AllocError::Exhausted => "no free block large enough",
        })
    }
}

impl core::error::Error for AllocError {}

/// A broken heap invariant, as found by [`RawHeap::check`](crate::RawHeap::check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapError {
    /// The invariant that does not hold, in words ("free blocks are never adjacent").
    pub invariant: &'static str,
    /// The address where it was found broken, when there is one.
    pub addr: Option<usize>,
}

impl HeapError {
    /// An invariant broken somewhere in the heap.
    pub const fn new(invariant: &'static str) -> Self {
        HeapError {
            invariant,
            addr: None,
        }
    }

    /// The same error, pinned to an address.
    pub const fn at(self, addr: usize) -> Self {
        HeapError {
            addr: Some(addr),
            ..self
        }
    }
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "heap invariant broken: {}", self.invariant)?;
        if let Some(addr) = self.addr {
            write!(f, " (at {addr:#x})")?;
        }
        Ok(())
    }
}

impl core::error::Error for HeapError {}

/// What a stretch of the region is, as reported by [`RawHeap::walk`](crate::RawHeap::walk).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// The usable bytes of a live block: starts at the pointer `allocate` returned and
    /// is exactly `usable_size` bytes long.
    Used,
    /// Bytes a future request can be served from.
    Free,
    /// Bytes that are neither: headers, footers, alignment padding, the heap's own
    /// metadata, and memory that cannot be reused (a bump heap's freed middle blocks).
    Overhead,
}

/// One stretch of the region. `walk` reports stretches in address order and they tile
/// the region exactly: no gap, no overlap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Block {
    /// Address of the first byte.
    pub addr: usize,
    /// Length in bytes; never 0.
    pub size: usize,
    /// What the bytes are.
    pub kind: BlockKind,
}

impl Block {
    /// A used block.
    pub const fn used(addr: usize, size: usize) -> Self {
        Block {
            addr,
            size,
            kind: BlockKind::Used,
        }
    }

    /// A free block.
    pub const fn free(addr: usize, size: usize) -> Self {
        Block {
            addr,
            size,
            kind: BlockKind::Free,
        }
    }

    /// An overhead block.
    pub const fn overhead(addr: usize, size: usize) -> Self {
        Block {
            addr,
            size,
            kind: BlockKind::Overhead,
        }
    }

    /// One past the last byte.
    pub const fn end(&self) -> usize {
        self.addr + self.size
    }
}

// ANCHOR: stats
/// The heap's account of its memory. Every byte of the region is in exactly one of
/// `usable`, `free` and [`overhead`](Stats::overhead), and `walk` reports the same
/// split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Bytes in the region the heap manages.
    pub region: usize,
    /// Blocks allocated and not yet freed.
    pub live_blocks: usize,
    /// Sum of `layout.size()` over live blocks: what the program asked for.
    pub requested: usize,
    /// Sum of `usable_size` over live blocks: what the program was given
    /// (the `Used` bytes of `walk`).
    pub usable: usize,
    /// Bytes a future request can be served from (the `Free` bytes of `walk`).
    pub free: usize,
    /// The largest `Free` block of `walk`.
    pub largest_free: usize,
    /// The highest offset from the region's start that any block not free has ever
    /// reached: the malloc lab's "heap size", the denominator of its utilization.
    pub high_water: usize,
}

impl Stats {
    /// Bytes neither given to the program nor free: headers, padding, metadata, lost.
    pub const fn overhead(&self) -> usize {
        self.region - self.usable - self.free
    }

    /// Bytes the heap holds that a new request cannot get: `region - free`.
    pub const fn reserved(&self) -> usize {
        self.region - self.free
    }

    /// Bytes reserved beyond what was asked for: `reserved - requested`.
    pub const fn internal_fragmentation(&self) -> usize {
        self.reserved() - self.requested
    }

    /// `1 - largest_free / free`: 0 when all free memory is one block, near 1 when it is
    /// cut into crumbs. 0 for a full heap.
    pub fn external_fragmentation(&self) -> f64 {
        if self.free == 0 {
            0.0
        } else {
            1.0 - self.largest_free as f64 / self.free as f64
        }
    }

    /// Builds the byte counts from `walk`'s blocks and the per-block counts an
    /// allocator keeps in a [`Usage`]. For heaps that do not keep the totals themselves.
    pub fn from_walk(
        region: usize,
        usage: &Usage,
        walk: impl FnOnce(&mut dyn FnMut(Block)),
    ) -> Stats {
        let mut stats = Stats {
            region,
            live_blocks: usage.live_blocks,
            requested: usage.requested,
            high_water: usage.high_water,
            ..Stats::default()
        };
        walk(&mut |block| match block.kind {
            BlockKind::Used => stats.usable += block.size,
            BlockKind::Free => {
                stats.free += block.size;
                stats.largest_free = stats.largest_free.max(block.size);
            }
            BlockKind::Overhead => {}
        });
        stats
    }

    /// Builds the stats of a heap that keeps a [`Requested`] (see there): its live
    /// blocks are the `Used` stretches of `walk`, counted here, and its high-water mark
    /// is the higher of what it recorded and where its highest live block ends.
    pub fn from_live_walk(
        region: NonNull<[u8]>,
        requested: &Requested,
        walk: impl FnOnce(&mut dyn FnMut(Block)),
    ) -> Stats {
        let start = region.cast::<u8>().as_ptr().addr();
        let (mut live_blocks, mut live_reach) = (0, 0);
        let usage = Usage {
            requested: requested.bytes,
            ..Usage::default()
        };
        let mut stats = Stats::from_walk(region.len(), &usage, |visit| {
            walk(&mut |block| {
                if block.kind == BlockKind::Used {
                    live_blocks += 1;
                    // `walk` goes in address order: the last live block is the highest.
                    live_reach = block.end() - start;
                }
                visit(block);
            })
        });
        stats.live_blocks = live_blocks;
        stats.high_water = requested.reached.saturating_sub(start).max(live_reach);
        stats
    }
}
// ANCHOR_END: stats

/// The counts only the allocator's callers know: how many blocks are live, how many
/// bytes they asked for, and how high the heap has reached. Allocators keep one and
/// update it in `allocate`, `deallocate` and `resize_in_place`.
///
/// The two counters are kept apart (`repr(C)`, the high-water mark between them): side
/// by side, the compiler turns their two additions into one vector addition, which costs
/// three times the instructions on every `allocate` and `deallocate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Usage {
    /// Blocks allocated and not yet freed.
    pub live_blocks: usize,
    /// See [`Stats::high_water`].
    pub high_water: usize,
    /// Sum of `layout.size()` over live blocks.
    pub requested: usize,
}

impl Usage {
    /// A block of `size` requested bytes was handed out; the heap now reaches
    /// `end_offset` bytes into the region.
    #[inline]
    pub fn on_allocate(&mut self, size: usize, end_offset: usize) {
        self.on_reuse(size);
        self.reach(end_offset);
    }

    /// A block of `size` requested bytes was handed out that ends below the high-water
    /// mark (memory the heap had reached before, such as a free block with a used one
    /// after it): `on_allocate` without the mark to update.
    #[inline]
    pub fn on_reuse(&mut self, size: usize) {
        self.live_blocks += 1;
        self.requested += size;
    }

    /// A block of `size` requested bytes came back.
    #[inline]
    pub fn on_deallocate(&mut self, size: usize) {
        self.live_blocks -= 1;
        self.requested -= size;
    }

    /// A live block changed from `old_size` to `new_size` requested bytes in place.
    #[inline]
    pub fn on_resize(&mut self, old_size: usize, new_size: usize, end_offset: usize) {
        self.requested = self.requested - old_size + new_size;
        self.reach(end_offset);
    }

    /// The heap now reaches `end_offset` bytes into the region.
    #[inline]
    pub fn reach(&mut self, end_offset: usize) {
        if end_offset > self.high_water {
            self.high_water = end_offset;
        }
    }
}

/// The one count a heap on boundary tags keeps on its hot path, and the furthest end of
/// a block that may no longer be live; its `walk` tells the rest (see
/// [`Stats::from_live_walk`]).
///
/// A [`Usage`] counts live blocks and raises the high-water mark on every `allocate`.
/// A heap whose used blocks are exactly its live ones, each `Used` stretch of `walk`
/// ending where its block ends, can leave both to `stats`: the live blocks are the
/// `Used` stretches, and a live block still reaches as far as it did when it was handed
/// out. Only a block that may leave before `stats` is asked needs its end recorded with
/// [`reach`](Self::reach): every block as it is freed (TLSF), or only the blocks that
/// can raise the mark at all (segregated-fit's cuts from its top). `allocate` is left
/// with one addition.
///
/// Measured with TLSF on the small-fixed bench workload: the live-block count and the
/// mark kept on `allocate`'s path cost about a tenth of its time per operation; the
/// same mark kept on `deallocate`'s path costs nothing measurable there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requested {
    /// Sum of `layout.size()` over live blocks.
    pub bytes: usize,
    /// The highest address one past a block's end passed to [`reach`](Self::reach), 0
    /// before the first. An address rather than an offset into the region: one
    /// comparison, with no subtraction on the hot path.
    pub reached: usize,
}

impl Requested {
    /// A block of `size` requested bytes was handed out.
    #[inline]
    pub fn on_allocate(&mut self, size: usize) {
        self.bytes += size;
    }

    /// A block of `size` requested bytes came back.
    #[inline]
    pub fn on_deallocate(&mut self, size: usize) {
        self.bytes -= size;
    }

    /// A live block changed from `old_size` to `new_size` requested bytes in place.
    #[inline]
    pub fn on_resize(&mut self, old_size: usize, new_size: usize) {
        self.bytes = self.bytes - old_size + new_size;
    }

    /// A block ending just before address `end` was handed out or is leaving: the
    /// high-water mark reaches at least there from now on.
    #[inline]
    pub fn reach(&mut self, end: usize) {
        if end > self.reached {
            self.reached = end;
        }
    }
}

/// Which freed memory a heap can hand out again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reuse {
    /// Freed memory is never reused (until an explicit reset).
    Never,
    /// Only the most recently allocated live block is reclaimed when freed: the stack
    /// discipline. Freeing in reverse order of allocation reclaims everything.
    MostRecent,
    /// Any freed block can serve a later request.
    Any,
}

/// The honest limits of a heap. The conformance suite reads them so that a heap that
/// claims less is not failed for it, while a heap that claims more is held to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Which freed memory comes back.
    pub reuse: Reuse,
    /// Whether freeing every live block (in an order `reuse` allows) brings `free` and
    /// `largest_free` back to their values when the heap was new.
    pub restores_when_empty: bool,
    /// The largest `layout.size()` the heap can ever serve; `usize::MAX` when only the
    /// region bounds it.
    pub max_size: usize,
    /// The largest `layout.align()` the heap can serve.
    pub max_align: usize,
    /// Whether `resize_in_place` can ever succeed.
    pub resizes_in_place: bool,
}

impl Capabilities {
    /// Whether `layout` is within `max_size` and `max_align`.
    pub const fn admits(&self, layout: Layout) -> bool {
        layout.size() <= self.max_size && layout.align() <= self.max_align
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_walk_counts_used_stretches_and_reaches_the_higher_of_freed_and_live_ends() {
        let mut memory = [0u8; 256];
        let region = NonNull::from(&mut memory[..]);
        let start = region.cast::<u8>().as_ptr().addr();
        let walk = |visit: &mut dyn FnMut(Block)| {
            visit(Block::overhead(start, 8));
            visit(Block::used(start + 8, 24));
            visit(Block::free(start + 32, 32));
            visit(Block::overhead(start + 64, 8));
            visit(Block::used(start + 72, 56));
            visit(Block::free(start + 128, 128));
        };
        let mut requested = Requested::default();
        requested.on_allocate(20);
        requested.on_allocate(50);
        requested.on_allocate(100);
        requested.reach(start + 64);
        requested.on_deallocate(100);
        let stats = Stats::from_live_walk(region, &requested, walk);
        assert_eq!(stats.live_blocks, 2);
        assert_eq!(stats.requested, 70);
        assert_eq!(
            (stats.usable, stats.free, stats.largest_free),
            (80, 160, 128)
        );
        assert_eq!(stats.high_water, 128, "the live block ending at 128");
        requested.reach(start + 200);
        requested.reach(start + 150);
        let stats = Stats::from_live_walk(region, &requested, walk);
        assert_eq!(
            stats.high_water, 200,
            "a block recorded as reaching further"
        );
    }
}
