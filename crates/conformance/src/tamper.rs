//! Breaking a heap on purpose, to see its `check()` name what broke.
//!
//! A test of `check()` must hand it a heap with one invariant broken, the way a stray
//! write would break it: a word of the region changed behind the heap's back. [`poke`]
//! is that write, with the region's provenance, so that a link put back (or pointed
//! elsewhere) is a pointer Miri accepts.

use core::ptr::NonNull;

use rawheap::RawHeap;

/// Replaces the `T` at address `addr`, inside `heap`'s region, with `value`; returns what
/// it held, to put back.
///
/// # Safety
///
/// `addr` is aligned for `T` and `addr..addr + size_of::<T>()` is inside `heap`'s
/// region. Until the old value is put back the heap is broken: the caller uses it only
/// for what reads a broken heap safely (`check`, which stops at the first broken
/// invariant before following what it cannot trust).
pub unsafe fn poke<H: RawHeap + ?Sized, T>(heap: &H, addr: usize, value: T) -> T {
    let region = heap.region();
    let start = region.cast::<u8>().as_ptr().addr();
    assert!(
        start <= addr && addr + size_of::<T>() <= start + region.len(),
        "poke at {addr:#x}: outside the region"
    );
    let ptr = region.cast::<u8>().as_ptr().with_addr(addr).cast::<T>();
    // SAFETY: the caller's promise: an aligned `T` inside the region, whose memory the
    // heap's owner lent it and which nothing borrows while the test holds the heap.
    unsafe { ptr.replace(value) }
}

/// A pointer to `addr` with the provenance of `heap`'s region (a link to write with
/// [`poke`]); null for `None`.
pub fn link<H: RawHeap + ?Sized>(heap: &H, addr: Option<usize>) -> *mut u8 {
    let region: NonNull<[u8]> = heap.region();
    addr.map_or(core::ptr::null_mut(), |addr| {
        region.cast::<u8>().as_ptr().with_addr(addr)
    })
}
