//! `check()` on a TLSF heap whose free list is broken one way at a time by a stray
//! write: each broken invariant is named. (The bitmaps and a block on the wrong list are
//! broken through the fields themselves, in the crate's unit tests.)

use core::alloc::Layout;

use conformance::tamper::{TagListInvariants, TwoHoles, check_names_broken_tag_lists};
use rawheap::{Arena, RawHeap};
use tlsf::Tlsf;

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Two 48-byte holes `a` and `c`, each in front of a wall, freed in that order: their
/// list is `c`, `a`. The first wall is 96 bytes.
fn two_holes() -> TwoHoles<Arena<Tlsf>> {
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
    TwoHoles { heap, a, wall, c }
}

#[test]
fn check_names_each_way_a_list_breaks() {
    check_names_broken_tag_lists(
        two_holes,
        TagListInvariants {
            outside_span: "free[fl][sl] holds only blocks of the span",
            used: "free[fl][sl] holds only free blocks",
            back_link: "free[fl][sl] is linked both ways: a block links back to the one before it",
            uncounted: "the lists hold as many blocks as there are free blocks",
        },
    );
}
