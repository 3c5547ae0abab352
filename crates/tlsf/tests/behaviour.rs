//! What is particular to TLSF: good fit from the index, splitting onto the lists of the
//! pieces' classes, coalescing, aligned blocks, resizing in place, and the guarantee
//! that a request is refused only when no free block reaches its good-fit size.

use core::alloc::Layout;
use core::ptr::NonNull;

use proptest::prelude::*;
use rawheap::{AllocError, Arena, Block, BlockKind, RawHeap};
use tlsf::{Class, Classes, MIN_BLOCK, Tlsf};

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn free_blocks<H: RawHeap>(heap: &H) -> Vec<Block> {
    let mut out = Vec::new();
    heap.walk(&mut |block| {
        if block.kind == BlockKind::Free {
            out.push(block);
        }
    });
    out
}

fn alloc<H: RawHeap>(heap: &mut H, size: usize) -> NonNull<u8> {
    let ptr = heap.allocate(bytes(size)).expect("room for the block");
    heap.check().expect("heap consistent after allocate");
    ptr
}

fn free<H: RawHeap>(heap: &mut H, ptr: NonNull<u8>, size: usize) {
    // SAFETY: every test frees a block it allocated with this size, once.
    unsafe { heap.deallocate(ptr, bytes(size)) };
    heap.check().expect("heap consistent after deallocate");
}

/// The block size a request of `size` bytes gets: header added, rounded to a granule.
fn block_of(size: usize) -> usize {
    rawheap::tags::block_size(size).unwrap()
}

#[test]
fn a_new_heap_is_one_free_block_found_through_both_bitmaps() {
    let heap = Arena::<Tlsf>::new(1 << 16);
    heap.check().unwrap();
    let whole = free_blocks(&*heap);
    assert_eq!(whole.len(), 1);
    let lookup = heap.lookup(bytes(100)).unwrap();
    let found = lookup.found.expect("the whole region is free");
    assert_eq!(found.class, Classes::<32>::class_of(whole[0].size));
    assert_eq!(lookup.fl_bitmap, 1 << found.class.fl);
    assert_eq!(found.row, 1 << found.class.sl);
    let drawn = lookup.to_string();
    assert!(
        drawn.contains("1. scan row 0 from column 7: no bit set"),
        "{drawn}"
    );
    assert!(drawn.contains("2. scan the rows above 0"), "{drawn}");
}

#[test]
fn splitting_puts_the_rest_on_the_list_of_its_class() {
    let mut heap = Arena::<Tlsf>::new(1 << 16);
    let whole = heap.stats().free;
    let a = alloc(&mut *heap, 100);
    let rest = whole - block_of(100);
    assert_eq!(free_blocks(&*heap).len(), 1);
    let found = heap.lookup(bytes(8)).unwrap().found.unwrap();
    assert_eq!(found.class, Classes::<32>::class_of(rest));
    free(&mut *heap, a, 100);
    assert_eq!(
        heap.stats().free,
        whole,
        "the freed block merged with the rest"
    );
}

#[test]
fn a_small_request_takes_a_freed_block_of_exactly_its_class() {
    let mut heap = Arena::<Tlsf>::new(1 << 16);
    let blocks: Vec<_> = (0..6).map(|_| alloc(&mut *heap, 40)).collect();
    free(&mut *heap, blocks[1], 40);
    free(&mut *heap, blocks[3], 40);
    // Both holes are 48-byte blocks of one class; the latest freed is first on its list.
    assert_eq!(alloc(&mut *heap, 40), blocks[3]);
    assert_eq!(
        alloc(&mut *heap, 33),
        blocks[1],
        "33 bytes need a 48-byte block too"
    );
}

#[test]
fn good_fit_passes_over_a_block_of_the_requests_own_class() {
    // Row 2 holds [1024, 2048) in 32-byte slices: a 1216-byte block is in the class of
    // the 1232-byte block 1210 bytes need, [1216, 1248), but too small for it.
    type C = Classes<32>;
    let request = 1210;
    assert_eq!(block_of(request), 1232);
    assert_eq!(C::class_of(1216), C::class_of(1232));
    let mut heap = Arena::<Tlsf>::new(1 << 16);
    let hole = alloc(&mut *heap, 1208);
    let _wall = alloc(&mut *heap, 8);
    let big_hole = alloc(&mut *heap, 1400);
    let _wall2 = alloc(&mut *heap, 8);
    free(&mut *heap, hole, 1208);
    free(&mut *heap, big_hole, 1400);
    let lookup = heap.lookup(bytes(request)).unwrap();
    assert_eq!(
        (lookup.wanted, lookup.rounded),
        (Class { fl: 2, sl: 7 }, 1248)
    );
    assert_eq!(
        alloc(&mut *heap, request),
        big_hole,
        "the larger class is served"
    );
}

#[test]
fn the_requests_own_list_is_tried_before_refusing() {
    // One free block of 1232 bytes, in class (2, 6) with the 1232-byte block that 1210
    // bytes need; no class from (2, 7) up holds a block, so the bit scans find nothing,
    // and the first block of the request's own list is looked at.
    let mut heap = Arena::<Tlsf>::new(4096);
    let total = heap.stats().free;
    let hole = alloc(&mut *heap, 1224);
    let _wall = alloc(&mut *heap, total - 1232 - 8);
    assert!(free_blocks(&*heap).is_empty());
    free(&mut *heap, hole, 1224);
    let lookup = heap.lookup(bytes(1210)).unwrap();
    assert_eq!(lookup.found, None);
    assert_eq!(lookup.taken.map(|(_, size)| size), Some(1232));
    assert!(lookup.to_string().contains("own list"));
    assert_eq!(alloc(&mut *heap, 1210), hole);
    // A request too large for the hole is refused, as not now.
    free(&mut *heap, hole, 1210);
    assert_eq!(heap.allocate(bytes(1240)), Err(AllocError::Exhausted));
    heap.check().unwrap();
}

#[test]
fn freeing_merges_with_both_neighbours() {
    let mut heap = Arena::<Tlsf>::new(1 << 16);
    let whole = heap.stats().free;
    let a = alloc(&mut *heap, 64);
    let b = alloc(&mut *heap, 200);
    let c = alloc(&mut *heap, 64);
    free(&mut *heap, a, 64);
    free(&mut *heap, c, 64);
    assert_eq!(free_blocks(&*heap).len(), 2);
    free(&mut *heap, b, 200);
    assert_eq!(free_blocks(&*heap).len(), 1);
    assert_eq!(heap.stats().free, whole);
}

#[test]
fn aligned_blocks_leave_their_gap_on_a_list() {
    let mut heap = Arena::<Tlsf>::new(1 << 16);
    let _first = alloc(&mut *heap, 8);
    let layout = Layout::from_size_align(100, 256).unwrap();
    let ptr = heap.allocate(layout).unwrap();
    heap.check().unwrap();
    assert_eq!(ptr.as_ptr().addr() % 256, 0);
    let free = free_blocks(&*heap);
    assert_eq!(free.len(), 2, "the gap in front and the rest behind");
    assert!(free[0].size >= MIN_BLOCK);
    // SAFETY: `ptr` is live with `layout`.
    unsafe { heap.deallocate(ptr, layout) };
    heap.check().unwrap();
    assert_eq!(free_blocks(&*heap).len(), 1);
}

#[test]
fn resizing_grows_into_the_next_free_block_and_shrinks_in_place() {
    let mut heap = Arena::<Tlsf>::new(1 << 16);
    let a = alloc(&mut *heap, 64);
    let b = alloc(&mut *heap, 500);
    let _c = alloc(&mut *heap, 64);
    free(&mut *heap, b, 500);
    // SAFETY: `a` is live with 64 bytes; the layouts have the same alignment.
    let grown = unsafe { heap.reallocate(a, bytes(64), bytes(400)) }.unwrap();
    assert_eq!(grown, a, "grown in place into b's hole");
    heap.check().unwrap();
    // SAFETY: `a` is live with 400 bytes; usable size as reported.
    assert!(unsafe { heap.usable_size(a, bytes(400)) } >= 400);
    let free_before = heap.stats().free;
    // SAFETY: as above.
    let shrunk = unsafe { heap.reallocate(a, bytes(400), bytes(40)) }.unwrap();
    assert_eq!(shrunk, a);
    heap.check().unwrap();
    assert_eq!(
        heap.stats().free,
        free_before + block_of(400) - block_of(40)
    );
}

#[test]
fn a_region_too_small_for_a_block_refuses_everything() {
    let mut heap = Arena::<Tlsf>::new(MIN_BLOCK);
    heap.check().unwrap();
    assert_eq!(heap.allocate(bytes(1)), Err(AllocError::Unsupported));
    assert_eq!(heap.lookup(bytes(1)).unwrap().taken, None);
}

/// A step of the property test: allocate a size, or free the live block at an index.
#[derive(Clone, Debug)]
enum Step {
    Alloc(usize, u32),
    Free(usize),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (1usize..3000, 0u32..8).prop_map(|(size, align)| Step::Alloc(size, align)),
        2 => any::<usize>().prop_map(Step::Free),
    ];
    let most = if cfg!(miri) { 40 } else { 300 };
    prop::collection::vec(step, 1..most)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 64 },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The TLSF guarantee: a request is refused only when no free block reaches the
    /// size its search is rounded up to; and every step keeps the invariants.
    #[test]
    fn a_request_is_refused_only_when_no_free_block_reaches_its_good_fit(steps in steps()) {
        let mut heap = Arena::<Tlsf<8>>::new(if cfg!(miri) { 8192 } else { 1 << 15 });
        let mut live: Vec<(NonNull<u8>, Layout)> = Vec::new();
        for step in steps {
            match step {
                Step::Alloc(size, align_log2) => {
                    let layout = Layout::from_size_align(size, 1 << align_log2).unwrap();
                    let rounded = heap.lookup(layout).unwrap().rounded;
                    match heap.allocate(layout) {
                        Ok(ptr) => live.push((ptr, layout)),
                        Err(error) => {
                            prop_assert_eq!(error, AllocError::Exhausted);
                            prop_assert!(heap.stats().largest_free < rounded);
                        }
                    }
                }
                Step::Free(index) if !live.is_empty() => {
                    let (ptr, layout) = live.swap_remove(index % live.len());
                    // SAFETY: `ptr` is live with `layout` and freed once.
                    unsafe { heap.deallocate(ptr, layout) };
                }
                Step::Free(_) => {}
            }
            prop_assert_eq!(heap.check(), Ok(()));
        }
    }
}

#[test]
fn debug_shows_the_region_the_rows_and_the_requested_bytes() {
    let mut heap = Arena::<Tlsf>::new(1 << 16);
    alloc(&mut *heap, 100);
    let shown = format!("{:?}", *heap);
    // The one free block (the rest of 64 KiB) is in row 7.
    assert!(
        shown.starts_with("Tlsf { region_len: 65536, fl_bitmap: 0b10000000, requested: "),
        "{shown}"
    );
    assert!(shown.ends_with(", .. }"), "{shown}");
}
