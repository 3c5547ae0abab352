//! `check()` on a TLSF heap broken one way at a time by a stray write into a list: each
//! broken invariant is named. (The bitmaps and a block on the wrong list are broken
//! through the fields themselves, in the crate's unit tests.)

use core::alloc::Layout;
use core::ptr::NonNull;

use conformance::tamper::{link, poke};
use rawheap::tags::{BlockRef, HEADER};
use rawheap::{Arena, RawHeap};
use tlsf::Tlsf;

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn header(ptr: NonNull<u8>) -> usize {
    ptr.as_ptr().addr() - HEADER
}

/// Two 48-byte holes `a` and `c`, each in front of a wall, freed in that order: their
/// list is `c`, `a`. The first wall is 96 bytes, room for a forged block. Returns the
/// heap and the payloads `[a, wall, c]`.
fn two_holes() -> (Arena<Tlsf>, [NonNull<u8>; 3]) {
    let mut heap = Arena::<Tlsf>::new(4096);
    let a = heap.allocate(bytes(40)).unwrap();
    let wall = heap.allocate(bytes(88)).unwrap();
    let c = heap.allocate(bytes(40)).unwrap();
    heap.allocate(bytes(8)).unwrap();
    // SAFETY: `a` and `c` are live with this layout, freed once.
    unsafe {
        heap.deallocate(a, bytes(40));
        heap.deallocate(c, bytes(40));
    }
    heap.check().unwrap();
    (heap, [a, wall, c])
}

/// The invariant `check` names, and where.
fn named(heap: &Tlsf) -> (&'static str, Option<usize>) {
    let error = heap.check().unwrap_err();
    (error.invariant, error.addr)
}

#[test]
fn a_link_out_of_the_span_is_named() {
    let (heap, [_, _, c]) = two_holes();
    let start = heap.region().cast::<u8>().as_ptr().addr();
    // SAFETY: a word of the heap's region (so for every `poke` of these tests); the broken
    // heap is only checked.
    unsafe { poke(&*heap, header(c) + 8, link(&*heap, Some(start))) };
    assert_eq!(
        named(&heap),
        ("free[fl][sl] holds only blocks of the span", Some(start))
    );
}

#[test]
fn a_used_block_on_a_list_is_named() {
    let (heap, [_, wall, c]) = two_holes();
    // SAFETY: as above.
    unsafe { poke(&*heap, header(c) + 8, link(&*heap, Some(header(wall)))) };
    assert_eq!(
        named(&heap),
        ("free[fl][sl] holds only free blocks", Some(header(wall)))
    );
}

#[test]
fn a_link_that_does_not_lead_back_is_named() {
    let (heap, [a, ..]) = two_holes();
    // SAFETY: as above.
    unsafe { poke(&*heap, header(a) + 16, link(&*heap, None)) };
    assert_eq!(
        named(&heap),
        (
            "free[fl][sl] is linked both ways: a block links back to the one before it",
            Some(header(a))
        )
    );
}

#[test]
fn a_listed_block_the_walk_does_not_find_is_named() {
    let (heap, [a, wall, _]) = two_holes();
    // A free block of the holes' class forged inside the wall's payload (on the granule
    // grid) and linked behind `a`, the last of their list.
    let forged = header(wall) + 16;
    // SAFETY: as above; the forged block lies inside the wall's 96 bytes.
    unsafe {
        let block = BlockRef::at(NonNull::new(link(&*heap, Some(forged))).unwrap());
        block.write_free(48, true);
        poke(&*heap, forged + 8, link(&*heap, None));
        poke(&*heap, forged + 16, link(&*heap, Some(header(a))));
        poke(&*heap, header(a) + 8, link(&*heap, Some(forged)));
    }
    assert_eq!(
        named(&heap),
        (
            "the lists hold as many blocks as there are free blocks",
            None
        )
    );
}
