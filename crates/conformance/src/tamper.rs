//! Breaking a heap on purpose, to see its `check()` name what broke.
//!
//! A test of `check()` must hand it a heap with one invariant broken, the way a stray
//! write would break it: a word of the region changed behind the heap's back. [`poke`]
//! is that write, with the region's provenance, so that a link put back (or pointed
//! elsewhere) is a pointer Miri accepts.

#[cfg(feature = "tags")]
use core::alloc::Layout;
use core::ptr::NonNull;

#[cfg(feature = "tags")]
use rawheap::Arena;
use rawheap::RawHeap;

/// Replaces the `T` at address `addr`, inside `heap`'s region, with `value`; returns what
/// it held, to put back.
///
/// # Safety
///
/// `addr` is aligned for `T` and `addr..addr + size_of::<T>()` is inside `heap`'s
/// region and holds an initialised `T`. Until the old value is put back the heap is
/// broken: the caller uses it only for what reads a broken heap safely (`check`, which
/// stops at the first broken invariant before following what it cannot trust).
pub unsafe fn poke<H: RawHeap + ?Sized, T>(heap: &H, addr: usize, value: T) -> T {
    // SAFETY: the caller's promise: an aligned, initialised `T` inside the region, whose
    // memory the heap's owner lent it and which nothing borrows while the test holds
    // the heap.
    unsafe { word::<H, T>(heap, addr).replace(value) }
}

/// Writes `value` at address `addr` inside `heap`'s region, where nothing was written
/// before (inside a used block's payload, say), without reading it.
///
/// # Safety
///
/// As for [`poke`], but the memory need not be initialised.
pub unsafe fn forge<H: RawHeap + ?Sized, T>(heap: &H, addr: usize, value: T) {
    // SAFETY: the caller's promise, as for `poke`.
    unsafe { word::<H, T>(heap, addr).write(value) }
}

/// A pointer to the `T` at `addr`, with the region's provenance; panics unless it lies
/// inside `heap`'s region.
fn word<H: RawHeap + ?Sized, T>(heap: &H, addr: usize) -> *mut T {
    let region = heap.region();
    let start = region.cast::<u8>().as_ptr().addr();
    assert!(
        start <= addr && addr + size_of::<T>() <= start + region.len(),
        "a word at {addr:#x}: outside the region"
    );
    region.cast::<u8>().as_ptr().with_addr(addr).cast::<T>()
}

/// A pointer to `addr` with the provenance of `heap`'s region (a link to write with
/// [`poke`]); null for `None`.
pub fn link<H: RawHeap + ?Sized>(heap: &H, addr: Option<usize>) -> *mut u8 {
    let region: NonNull<[u8]> = heap.region();
    addr.map_or(core::ptr::null_mut(), |addr| {
        region.cast::<u8>().as_ptr().with_addr(addr)
    })
}

/// A heap of 4 KiB with two free 48-byte blocks on one free list, `c` first and `a`
/// right after it (freed in that order, each in front of a used block: every heap on
/// [`rawheap::tags`] here puts a freed block first on its list), and a used 96-byte
/// `wall`. Returns the heap and the payloads `[a, wall, c]`.
#[cfg(feature = "tags")]
fn two_holes<H: RawHeap>() -> (Arena<H>, [NonNull<u8>; 3]) {
    let bytes = |size| Layout::from_size_align(size, 8).expect("a valid layout");
    let mut heap = Arena::<H>::new(4096);
    let mut take = |size| heap.allocate(bytes(size)).expect("room in a new heap");
    let [a, wall, c, _] = [40, 88, 40, 8].map(&mut take);
    // A live block holds its program's data: write the wall's, so that a check that
    // reads a listed block's links before seeing that it is used reads bytes, not
    // uninitialised memory.
    // SAFETY: `wall` is live with 88 bytes, ours to write.
    unsafe { wall.write_bytes(0xa5, 88) };
    // SAFETY: `a` and `c` are live with this layout, freed once.
    unsafe {
        heap.deallocate(a, bytes(40));
        heap.deallocate(c, bytes(40));
    }
    (heap, [a, wall, c])
}

/// What a heap built on [`rawheap::tags`] calls each way a free list of its breaks.
#[cfg(feature = "tags")]
#[derive(Clone, Copy, Debug)]
pub struct TagListInvariants {
    /// A listed block outside the span, or too close to its end for its links.
    pub outside_span: &'static str,
    /// A used block on a list.
    pub used: &'static str,
    /// A block that does not link back to the one before it.
    pub back_link: &'static str,
    /// More listed blocks than free blocks (a block forged inside a used one, listed).
    pub uncounted: &'static str,
}

/// Breaks a free list of a heap `H` built on [`rawheap::tags`], one way at a time, with
/// stray writes, and asserts that `check()` names each broken invariant (and where, when it
/// says). Free-list, segregated-fit and TLSF keep their free lists alike, so one
/// catalogue of breakages serves them all.
#[cfg(feature = "tags")]
pub fn check_names_broken_tag_lists<H: RawHeap>(names: TagListInvariants) {
    use rawheap::tags::HEADER;
    let header = |payload: NonNull<u8>| payload.as_ptr().addr() - HEADER;
    let named = |heap: &H| {
        let error = heap.check().expect_err("check notices a broken list");
        (error.invariant, error.addr)
    };
    // The region's first byte, and the last spot of the header grid, too close to the
    // epilogue for a block's links: both outside the span. (The walk ends with the
    // stretch from the epilogue header to the region's end.)
    let outside = |heap: &H| {
        let start = heap.region().cast::<u8>().as_ptr().addr();
        let mut epilogue = start;
        heap.walk(&mut |block| epilogue = block.addr);
        [start, epilogue - rawheap::tags::GRANULE]
    };
    for which in 0..2 {
        let (heap, [_, _, c]) = two_holes::<H>();
        heap.check().expect("the heap is sound before it is broken");
        let outside = outside(&heap)[which];
        // SAFETY: `c`'s next link is a word of the region; the broken heap is only
        // checked.
        unsafe { poke(&*heap, header(c) + HEADER, link(&*heap, Some(outside))) };
        assert_eq!(named(&heap), (names.outside_span, Some(outside)));
    }
    let (heap, [_, wall, c]) = two_holes::<H>();
    // SAFETY: as above.
    unsafe { poke(&*heap, header(c) + HEADER, link(&*heap, Some(header(wall)))) };
    assert_eq!(named(&heap), (names.used, Some(header(wall))));

    let (heap, [a, ..]) = two_holes::<H>();
    // SAFETY: `a`'s back link is the word after its next link.
    unsafe { poke(&*heap, header(a) + 2 * HEADER, link(&*heap, None)) };
    assert_eq!(named(&heap), (names.back_link, Some(header(a))));

    let (heap, [a, wall, _]) = two_holes::<H>();
    // A free 48-byte block forged on the granule grid inside the wall (16 bytes in, so
    // it ends inside the wall's 80 bytes), linked in after `a`.
    let forged = header(wall) + rawheap::tags::GRANULE;
    let forged_ref = NonNull::new(link(&*heap, Some(forged))).expect("inside the region");
    // SAFETY: the forged block's words lie inside the wall's payload, and the links
    // written are words of listed free blocks; the broken heap is only checked.
    unsafe {
        rawheap::tags::BlockRef::at(forged_ref).write_free(48, true);
        let next = poke(&*heap, header(a) + HEADER, link(&*heap, Some(forged)));
        forge(&*heap, forged + HEADER, next);
        forge(&*heap, forged + 2 * HEADER, link(&*heap, Some(header(a))));
        if !next.is_null() {
            poke(&*heap, next.addr() + 2 * HEADER, link(&*heap, Some(forged)));
        }
    }
    assert_eq!(named(&heap), (names.uncounted, None));
}
