//! What is particular to this heap: no header between blocks, used blocks found from
//! the start map, coalescing on both sides, the one-granule remainder, resizing in
//! place, and the two placements on the binary pattern.

use core::alloc::Layout;
use core::ptr::NonNull;

use headerless::{GRANULE, Headerless, LowEnd, SplitEnds};
use rawheap::{Arena, Block, BlockKind, RawHeap};

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn blocks<H: RawHeap>(heap: &H) -> Vec<Block> {
    let mut out = Vec::new();
    heap.walk(&mut |block| {
        if block.kind != BlockKind::Overhead {
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
    // SAFETY: every caller passes a live block of this heap with its size.
    unsafe { heap.deallocate(ptr, bytes(size)) };
    heap.check().expect("heap consistent after deallocate");
}

#[test]
fn used_blocks_touch_and_walk_still_tells_them_apart() {
    let mut heap = Arena::<Headerless>::new(4096);
    let sizes = [24, 16, 40, 8, 17];
    let ptrs: Vec<_> = sizes.iter().map(|&size| alloc(&mut *heap, size)).collect();
    // Sizes round to granules, at least two: 24, 16, 40, 16, 24 bytes, back to back.
    let expected = [24, 16, 40, 16, 24];
    let walked = blocks(&*heap);
    for (i, block) in walked.iter().take(5).enumerate() {
        assert_eq!(block.kind, BlockKind::Used);
        assert_eq!(block.addr, ptrs[i].as_ptr().addr());
        assert_eq!(block.size, expected[i]);
    }
    assert_eq!(walked[5].kind, BlockKind::Free);
    assert_eq!(walked.len(), 6);
}

#[test]
fn freeing_merges_with_free_blocks_on_both_sides() {
    let mut heap = Arena::<Headerless>::new(4096);
    let a = alloc(&mut *heap, 64);
    let b = alloc(&mut *heap, 64);
    let c = alloc(&mut *heap, 64);
    let _guard = alloc(&mut *heap, 16);
    free(&mut *heap, a, 64);
    free(&mut *heap, c, 64);
    assert_eq!(
        blocks(&*heap)
            .iter()
            .filter(|b| b.kind == BlockKind::Free)
            .count(),
        3,
        "a, c and the rest: three holes"
    );
    free(&mut *heap, b, 64);
    let walked = blocks(&*heap);
    assert_eq!(
        walked[0],
        Block::free(a.as_ptr().addr(), 192),
        "a, b and c are one block"
    );
}

#[test]
fn a_one_granule_remainder_joins_the_block_and_comes_back_with_it() {
    let mut heap = Arena::<Headerless>::new(4096);
    let a = alloc(&mut *heap, 32);
    let _guard = alloc(&mut *heap, 16);
    free(&mut *heap, a, 32);
    // 24 bytes from a 32-byte hole: the last 8 cannot be a free block.
    let b = alloc(&mut *heap, 24);
    assert_eq!(b, a);
    // SAFETY: `b` is live with 24 bytes.
    assert_eq!(unsafe { heap.usable_size(b, bytes(24)) }, 32);
    free(&mut *heap, b, 24);
    assert_eq!(blocks(&*heap)[0], Block::free(a.as_ptr().addr(), 32));
}

#[test]
fn blocks_grow_into_the_free_block_after_them_and_shrink_in_place() {
    let mut heap = Arena::<Headerless>::new(4096);
    let a = alloc(&mut *heap, 64);
    // SAFETY: `a` is live with 64 bytes.
    let grown = unsafe { heap.reallocate(a, bytes(64), bytes(200)) }.unwrap();
    assert_eq!(grown, a, "the rest of the region is free after it");
    heap.check().unwrap();
    // SAFETY: `a` is live with 200 bytes.
    let shrunk = unsafe { heap.reallocate(a, bytes(200), bytes(40)) }.unwrap();
    assert_eq!(shrunk, a);
    heap.check().unwrap();
    assert_eq!(blocks(&*heap)[0], Block::used(a.as_ptr().addr(), 40));
    let b = alloc(&mut *heap, 16);
    assert_eq!(
        b.as_ptr().addr(),
        a.as_ptr().addr() + 40,
        "the tail came back"
    );
}

#[test]
fn split_ends_cuts_large_requests_from_the_top() {
    let mut heap = Arena::<Headerless<SplitEnds>>::new(8192);
    let region = heap.region();
    let end = region.cast::<u8>().as_ptr().addr() + region.len();
    let small = alloc(&mut *heap, 32);
    let large = alloc(&mut *heap, 512);
    assert!(small < large);
    let arena_end = blocks(&*heap).last().unwrap().end();
    assert_eq!(large.as_ptr().addr() + 512, arena_end);
    assert!(end - arena_end < GRANULE * 2);
}

/// Peak live bytes over the smallest region that completes the trace.
fn min_region<H: RawHeap>(trace: &trace::Trace) -> f64 {
    trace::replay::min_region_utilization::<H>(trace, 8)
        .expect("a region that completes the trace")
        .utilization
}

#[test]
#[cfg_attr(
    miri,
    ignore = "a search over regions replays thousands of ops many times; the other tests run the same code"
)]
fn keeping_small_and_large_apart_reuses_the_holes_of_the_binary_pattern() {
    for workload in [trace::Workload::Binary, trace::Workload::Binary2] {
        let trace = trace::generate(workload, 1, 1);
        let split = min_region::<Headerless<SplitEnds>>(&trace);
        let low = min_region::<Headerless<LowEnd>>(&trace);
        assert!(split > 0.9, "{workload}: split ends {split:.3}");
        assert!(low < 0.8, "{workload}: low end {low:.3}");
    }
}

#[test]
fn a_block_that_cannot_grow_in_place_slides_into_the_free_block_before_it() {
    let mut heap = Arena::<Headerless>::new(4096);
    let a = alloc(&mut *heap, 64);
    let b = alloc(&mut *heap, 32);
    let _guard = alloc(&mut *heap, 16);
    free(&mut *heap, a, 64);
    // SAFETY: `b` is live with 32 bytes, which are ours to write.
    unsafe { b.as_ptr().write_bytes(0xAB, 32) };
    // SAFETY: `b` is live with 32 bytes.
    let grown = unsafe { heap.reallocate(b, bytes(32), bytes(80)) }.unwrap();
    heap.check().unwrap();
    assert_eq!(grown, a, "low end: the block moved down to where `a` was");
    // SAFETY: `grown` is live with 80 bytes, the first 32 kept.
    let kept = unsafe { core::slice::from_raw_parts(grown.as_ptr(), 32) };
    assert!(kept.iter().all(|&byte| byte == 0xAB));
    let walked = blocks(&*heap);
    assert_eq!(walked[0], Block::used(a.as_ptr().addr(), 80));
    assert_eq!(walked[1], Block::free(a.as_ptr().addr() + 80, 16));
}

#[test]
fn a_large_block_slides_to_the_top_of_its_room_under_split_ends() {
    let mut heap = Arena::<Headerless<SplitEnds>>::new(8192);
    let low = alloc(&mut *heap, 16);
    let buffer = alloc(&mut *heap, 512);
    // SAFETY: `buffer` is live with 512 bytes.
    let grown = unsafe { heap.reallocate(buffer, bytes(512), bytes(600)) }.unwrap();
    heap.check().unwrap();
    assert_eq!(
        grown.as_ptr().addr() + 600,
        buffer.as_ptr().addr() + 512,
        "still at the top"
    );
    assert!(low < grown);
}
