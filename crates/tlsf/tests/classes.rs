//! TLSF's class arithmetic pinned at the edges of its classes (32 lists a row, so the
//! linear row 0 ends at 512 bytes), and the size a search starts from.

use core::alloc::Layout;

use rawheap::{Arena, RawHeap};
use tlsf::{Class, Classes, Tlsf};

type C = Classes<32>;

const fn class(fl: u32, sl: u32) -> Class {
    Class { fl, sl }
}

#[test]
fn class_of_steps_at_each_class_edge() {
    let edges = [
        (16, class(0, 1)),
        (496, class(0, 31)),
        // Row 1 is [512, 1024) in slices of 16 bytes.
        (512, class(1, 0)),
        (528, class(1, 1)),
        (1008, class(1, 31)),
        // Row 2 is [1024, 2048) in slices of 32 bytes.
        (1024, class(2, 0)),
        (1040, class(2, 0)),
        (1056, class(2, 1)),
        (2032, class(2, 31)),
        (2048, class(3, 0)),
        (2048 + 5 * 64, class(3, 5)),
        (2048 + 5 * 64 + 48, class(3, 5)),
    ];
    for (size, expected) in edges {
        assert_eq!(C::class_of(size), expected, "class of {size}");
    }
}

#[test]
fn min_size_is_the_first_size_of_each_class() {
    let firsts = [
        (class(0, 1), 16),
        (class(0, 31), 496),
        (class(1, 0), 512),
        (class(1, 31), 1008),
        (class(2, 0), 1024),
        (class(2, 1), 1056),
        (class(3, 5), 2048 + 5 * 64),
    ];
    for (class, size) in firsts {
        assert_eq!(C::min_size(class), size, "smallest size of {class:?}");
        assert_eq!(C::class_of(size), class);
        assert_ne!(C::class_of(size - 16), class, "{class:?} starts at {size}");
    }
}

#[test]
fn good_fit_rounds_up_to_the_next_class_edge_and_carries_into_the_next_row() {
    let fits = [
        (496, (class(0, 31), 496)),
        (512, (class(1, 0), 512)),
        (513, (class(1, 1), 528)),
        (1008, (class(1, 31), 1008)),
        // Just above row 1's last class: the rounding carries into row 2.
        (1009, (class(2, 0), 1024)),
        (1024, (class(2, 0), 1024)),
        (1025, (class(2, 1), 1056)),
        (2047, (class(3, 0), 2048)),
        (2048, (class(3, 0), 2048)),
        (2049, (class(3, 1), 2112)),
    ];
    for (size, expected) in fits {
        assert_eq!(C::good_fit(size), Some(expected), "good fit of {size}");
    }
}

#[test]
fn an_aligned_search_makes_room_for_the_largest_gap() {
    let heap = Arena::<Tlsf>::new(1 << 16);
    let search = |size, align| {
        let lookup = heap
            .lookup(Layout::from_size_align(size, align).unwrap())
            .unwrap();
        (lookup.need, lookup.search)
    };
    // Up to a granule's alignment every payload is aligned: the search is the block.
    assert_eq!(search(100, 8), (112, 112));
    assert_eq!(search(100, 16), (112, 112));
    // Beyond, the gap in front may be up to `align - GRANULE`, or that plus `align`
    // when it would be smaller than a block: room for `align + MIN_BLOCK - GRANULE`.
    assert_eq!(search(100, 32), (112, 112 + 32 + 32 - 16));
    assert_eq!(search(100, 64), (112, 112 + 64 + 32 - 16));
    assert_eq!(search(100, 4096), (112, 112 + 4096 + 32 - 16));
}

#[test]
fn a_lookup_counts_the_rows_a_block_can_be_in() {
    // A 64 KiB span's one block is in row 7 ([32 KiB, 64 KiB)): rows 0 to 7.
    let heap = Arena::<Tlsf>::new(1 << 16);
    let lookup = heap.lookup(Layout::from_size_align(8, 8).unwrap()).unwrap();
    assert_eq!(lookup.rows, 8);
    assert_eq!(lookup.lists_per_row, 32);
    // A region too small for a block: one row, and nothing found.
    let tiny = Arena::<Tlsf>::new(16);
    let lookup = tiny.lookup(Layout::from_size_align(8, 8).unwrap()).unwrap();
    assert_eq!((lookup.rows, lookup.found, lookup.taken), (1, None, None));
    assert_eq!(tiny.stats().free, 0);
}
