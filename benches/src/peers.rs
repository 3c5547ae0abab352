//! The peer crates and the system allocator as [`Contender`]s.
//!
//! Each peer gets its memory the way a heaplab [`Arena`](heaplab::Arena) does: one
//! page-aligned block from the system allocator, handed over whole at construction.
//! `bumpalo` is the exception: it asks the system for chunks itself, so it is given its
//! whole capacity up front.

use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use heaplab::Memory;

use crate::{Contender, ContenderVisitor};

/// The peer crates and the system allocator, by the names the bench tables and the
/// registry's `peer` fields use.
pub const NAMES: [&str; 6] = [
    "bumpalo",
    "linked_list_allocator",
    "buddy_system_allocator",
    "talc",
    "rlsf",
    "system",
];

/// Calls `visitor` with the peer named `name` (one of [`NAMES`]); returns false for
/// any other name.
pub fn visit_peer(name: &str, visitor: &mut impl ContenderVisitor) -> bool {
    match name {
        "bumpalo" => visitor.visit::<Bumpalo>(name),
        "linked_list_allocator" => visitor.visit::<LinkedList>(name),
        "buddy_system_allocator" => visitor.visit::<BuddySystem>(name),
        "talc" => visitor.visit::<Talc>(name),
        "rlsf" => visitor.visit::<Rlsf>(name),
        "system" => visitor.visit::<System>(name),
        _ => return false,
    }
    true
}

/// A peer crate that manages one page-aligned region it is handed whole, the same kind
/// an [`Arena`](heaplab::Arena) gets: the peers `cargo xtask replay` measures beside the
/// heaplab heaps ([`REPLAY_NAMES`], [`measure_on_trace`]).
pub trait RegionPeer: Contender + Sized {
    /// The peer over a fresh region of `bytes` bytes; `None` when the memory cannot be
    /// had or the peer refuses a region that small.
    fn try_with_region(bytes: usize) -> Option<Self>;

    /// The address of the region's first byte.
    fn region_start(&self) -> usize;
}

/// A bench heap: the peer over `bytes` bytes, which a bench always has.
fn built<P: RegionPeer>(bytes: usize) -> P {
    P::try_with_region(bytes).expect("memory for the benchmark heap")
}

/// The peers that `cargo xtask replay` measures: those managing one region
/// ([`RegionPeer`]). bumpalo never reuses memory, and the system allocator is the
/// reference for throughput, not a contender for utilization.
pub const REPLAY_NAMES: [&str; 4] = [
    "rlsf",
    "talc",
    "linked_list_allocator",
    "buddy_system_allocator",
];

/// Measures the peer named `name` (one of [`REPLAY_NAMES`]) on `trace` with
/// [`trace::peer::measure_peer`]; `None` for any other name.
pub fn measure_on_trace(
    name: &str,
    trace: &trace::Trace,
    options: &trace::report::MeasureOptions,
) -> Option<trace::report::Measurement> {
    use trace::peer::measure_peer;
    Some(match name {
        "rlsf" => measure_peer::<Replayed<Rlsf>>(name, trace, options),
        "talc" => measure_peer::<Replayed<Talc>>(name, trace, options),
        "linked_list_allocator" => measure_peer::<Replayed<LinkedList>>(name, trace, options),
        "buddy_system_allocator" => measure_peer::<Replayed<BuddySystem>>(name, trace, options),
        _ => return None,
    })
}

/// A [`RegionPeer`] as the trace replayer's [`RegionTarget`](trace::replay::RegionTarget).
pub struct Replayed<P>(P);

impl<P: RegionPeer> trace::replay::Target for Replayed<P> {
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.0.free(ptr, layout) }
    }

    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise.
        unsafe { self.0.realloc(ptr, old, new) }
    }
}

impl<P: RegionPeer> trace::replay::RegionTarget for Replayed<P> {
    fn over_region(bytes: usize) -> Option<Self> {
        P::try_with_region(bytes).map(Replayed)
    }

    fn region_start(&self) -> usize {
        self.0.region_start()
    }
}

/// `bumpalo::Bump` with its whole capacity reserved up front.
pub struct Bumpalo(bumpalo::Bump);

impl Contender for Bumpalo {
    fn with_region(bytes: usize) -> Self {
        Bumpalo(bumpalo::Bump::with_capacity(bytes))
    }

    fn trace_done(&mut self) {
        self.0.reset();
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.try_alloc_layout(layout).ok()
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise; bumpalo reclaims the block if it is the last one.
        unsafe { bumpalo_api::alloc::Allocator::deallocate(&&self.0, ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        use bumpalo_api::alloc::Allocator;
        let bump = &self.0;
        let block = if new.size() >= old.size() {
            // SAFETY: the caller's promise: `ptr` is live here with `old`.
            unsafe { bump.grow(ptr, old, new) }
        } else {
            // SAFETY: the caller's promise: `ptr` is live here with `old`.
            unsafe { bump.shrink(ptr, old, new) }
        };
        block.ok().map(NonNull::cast)
    }
}

/// `linked_list_allocator::Heap`: an address-ordered singly linked list, first fit.
pub struct LinkedList {
    heap: linked_list_allocator::Heap,
    _region: Memory,
}

impl RegionPeer for LinkedList {
    fn try_with_region(bytes: usize) -> Option<Self> {
        let region = Memory::new(bytes).ok()?;
        // SAFETY: the region is fresh, owned by this value and outlives the heap.
        let heap =
            unsafe { linked_list_allocator::Heap::new(region.region().cast().as_ptr(), bytes) };
        Some(LinkedList {
            heap,
            _region: region,
        })
    }

    fn region_start(&self) -> usize {
        self._region.region().cast::<u8>().as_ptr().addr()
    }
}

impl Contender for LinkedList {
    fn with_region(bytes: usize) -> Self {
        built(bytes)
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.heap.allocate_first_fit(layout).ok()
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.heap.deallocate(ptr, layout) }
    }
}

/// `buddy_system_allocator::Heap` with 32 orders.
pub struct BuddySystem {
    heap: buddy_system_allocator::Heap<32>,
    _region: Memory,
}

impl RegionPeer for BuddySystem {
    fn try_with_region(bytes: usize) -> Option<Self> {
        let region = Memory::new(bytes).ok()?;
        let mut heap = buddy_system_allocator::Heap::<32>::new();
        let start = region.region().cast::<u8>().as_ptr().addr();
        // SAFETY: the region is fresh, owned by this value and outlives the heap.
        unsafe { heap.add_to_heap(start, start + bytes) };
        Some(BuddySystem {
            heap,
            _region: region,
        })
    }

    fn region_start(&self) -> usize {
        self._region.region().cast::<u8>().as_ptr().addr()
    }
}

impl Contender for BuddySystem {
    fn with_region(bytes: usize) -> Self {
        built(bytes)
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.heap.alloc(layout).ok()
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

/// `talc::Talc` over one claimed region.
pub struct Talc {
    heap: talc::base::Talc<talc::source::Manual, talc::DefaultBinning>,
    _region: Memory,
}

impl RegionPeer for Talc {
    fn try_with_region(bytes: usize) -> Option<Self> {
        let region = Memory::new(bytes).ok()?;
        let mut heap = talc::base::Talc::new(talc::source::Manual);
        // SAFETY: the region is fresh, owned by this value and outlives the heap.
        unsafe { heap.claim(region.region().cast().as_ptr(), bytes) }?;
        Some(Talc {
            heap,
            _region: region,
        })
    }

    fn region_start(&self) -> usize {
        self._region.region().cast::<u8>().as_ptr().addr()
    }
}

impl Contender for Talc {
    fn with_region(bytes: usize) -> Self {
        built(bytes)
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: workloads never ask for size 0.
        unsafe { self.heap.allocate(layout) }
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.heap.deallocate(ptr.as_ptr(), layout) }
    }

    #[inline]
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        if new.size() <= old.size() {
            // SAFETY: the caller's promise; shrinking never moves.
            unsafe { self.heap.shrink(ptr.as_ptr(), old, new.size()) };
            return Some(ptr);
        }
        // SAFETY: the caller's promise.
        if unsafe { self.heap.try_grow_in_place(ptr.as_ptr(), old, new.size()) } {
            return Some(ptr);
        }
        // SAFETY: the caller's promise.
        unsafe { crate::move_block(self, ptr, old, new) }
    }
}

/// `rlsf::Tlsf` with rlsf's usual parameters for a heap of up to 4 GiB blocks.
pub struct Rlsf {
    heap: rlsf::Tlsf<'static, u32, u32, 28, 32>,
    _region: Memory,
}

impl RegionPeer for Rlsf {
    fn try_with_region(bytes: usize) -> Option<Self> {
        let region = Memory::new(bytes).ok()?;
        let mut heap = rlsf::Tlsf::new();
        let block = NonNull::slice_from_raw_parts(
            region.region().cast::<MaybeUninit<u8>>().cast::<u8>(),
            bytes,
        );
        // SAFETY: the region is fresh, owned by this value and outlives the heap.
        unsafe { heap.insert_free_block_ptr(block) }?;
        Some(Rlsf {
            heap,
            _region: region,
        })
    }

    fn region_start(&self) -> usize {
        self._region.region().cast::<u8>().as_ptr().addr()
    }
}

impl Contender for Rlsf {
    fn with_region(bytes: usize) -> Self {
        built(bytes)
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.heap.allocate(layout)
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.heap.deallocate(ptr, layout.align()) }
    }

    #[inline]
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        _old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise; the alignment is unchanged.
        unsafe { self.heap.reallocate(ptr, new) }
    }
}

/// The system allocator (`std::alloc::System`): the yardstick for everyone.
pub struct System;

impl Contender for System {
    fn with_region(_bytes: usize) -> Self {
        System
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: workloads never ask for size 0.
        NonNull::new(unsafe { std::alloc::GlobalAlloc::alloc(&std::alloc::System, layout) })
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { std::alloc::GlobalAlloc::dealloc(&std::alloc::System, ptr.as_ptr(), layout) }
    }

    #[inline]
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise.
        NonNull::new(unsafe {
            std::alloc::GlobalAlloc::realloc(&std::alloc::System, ptr.as_ptr(), old, new.size())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_replay_peer_runs_a_trace_and_has_a_smallest_region() {
        let trace = trace::generate(trace::Workload::RandomMixed, 3, 1);
        let options = trace::report::MeasureOptions::default();
        for name in REPLAY_NAMES {
            let m = measure_on_trace(name, &trace, &options).expect("a replay peer");
            assert_eq!(m.error, None, "{name}");
            assert_eq!(m.failed_requests, 0, "{name}");
            let min = m.min_region.expect("a region that completes the trace");
            assert!(min.region >= trace.profile().peak_live_bytes, "{name}");
            assert!(m.utilization.is_some_and(|u| u > 0.0 && u <= 1.0), "{name}");
        }
        assert!(measure_on_trace("bumpalo", &trace, &options).is_none());
    }
}
