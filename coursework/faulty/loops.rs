//! A faulty submission for the grader's own test: a heap whose `allocate_zeroed` loops
//! forever, because the loop that zeroes the block never advances its index. The grader
//! stops each rule that calls it when its time is up, and reports it in plain words.

use core::alloc::Layout;
use core::ptr::NonNull;

use conformance::teaching::ListHeap;
use rawheap::{AllocError, Block, Capabilities, HeapError, RawHeap, Stats};

/// The teaching heap with one fault of its own; see the crate documentation.
pub struct Heap(ListHeap);

// SAFETY: every call goes to the correct teaching heap, except the faulty one, which
// breaks the contract on purpose: that is what the grader must survive.
unsafe impl RawHeap for Heap {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        // SAFETY: the caller's promise, passed on.
        Heap(unsafe { ListHeap::new(region) })
    }

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.0.allocate(layout)
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let ptr = self.0.allocate(layout)?;
        let i = 0;
        // The fault: `i` never moves, so the loop never ends.
        while i < layout.size() {
            // SAFETY: `i` is within the block `allocate` just handed out.
            unsafe { ptr.as_ptr().add(i).write(0) };
        }
        Ok(ptr)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.0.deallocate(ptr, layout) }
    }

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.0.resize_in_place(ptr, old, new) }
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.0.usable_size(ptr, layout) }
    }

    fn region(&self) -> NonNull<[u8]> {
        self.0.region()
    }

    fn stats(&self) -> Stats {
        self.0.stats()
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        self.0.walk(visit)
    }

    fn check(&self) -> Result<(), HeapError> {
        self.0.check()
    }

    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
}
