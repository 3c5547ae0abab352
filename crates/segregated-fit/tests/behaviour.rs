//! What is particular to segregated fits: exact bins, best fit across and within bins,
//! rests filed by size, coalescing across bins, resizing in place.

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::{AllocError, Arena, Block, BlockKind, RawHeap};
use segregated_fit::{EXACT_LIMIT, GRANULE, MIN_BLOCK, SegregatedFit, bin_of, smallest_in};

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn free_blocks(heap: &SegregatedFit) -> Vec<Block> {
    let mut out = Vec::new();
    heap.walk(&mut |block| {
        if block.kind == BlockKind::Free {
            out.push(block)
        }
    });
    out
}

fn alloc(heap: &mut SegregatedFit, size: usize) -> NonNull<u8> {
    let ptr = heap.allocate(bytes(size)).expect("room for the block");
    heap.check().expect("heap consistent after allocate");
    ptr
}

fn free(heap: &mut SegregatedFit, ptr: NonNull<u8>, size: usize) {
    // SAFETY: every test frees a block it allocated with this size, once.
    unsafe { heap.deallocate(ptr, bytes(size)) };
    heap.check().expect("heap consistent after deallocate");
}

/// The payload size whose block is exactly `block` bytes.
fn payload_for(block: usize) -> usize {
    block - 8
}

/// Allocates blocks of the given sizes back to back, each followed by a small block
/// that stays live so that freeing them leaves holes of exactly those sizes.
fn holes(heap: &mut SegregatedFit, sizes: &[usize]) -> Vec<NonNull<u8>> {
    let mut out = Vec::new();
    for &size in sizes {
        out.push(alloc(heap, payload_for(size)));
        alloc(heap, 8);
    }
    for (&ptr, &size) in out.iter().zip(sizes) {
        free(heap, ptr, payload_for(size));
    }
    out
}

#[test]
fn an_exact_bin_serves_its_size_at_once() {
    let mut heap = Arena::<SegregatedFit>::new(8192);
    let [big, small] = holes(&mut heap, &[160, 96])[..] else {
        unreachable!()
    };
    // 96-byte blocks have a bin of their own: the hole there is taken, not the
    // larger one filed before it.
    assert_eq!(alloc(&mut heap, payload_for(96)), small);
    assert_eq!(alloc(&mut heap, payload_for(160)), big);
}

#[test]
fn a_request_with_an_empty_bin_takes_the_smallest_block_above() {
    let mut heap = Arena::<SegregatedFit>::new(1 << 16);
    // Holes of 3000, 2200 and 2100 bytes: 2200 and 2100 share a logarithmic bin above
    // the request's exact bin, and 2100 is the best fit.
    let ptrs = holes(&mut heap, &[3008, 2208, 2112]);
    assert_eq!(bin_of(2208), bin_of(2112));
    let got = alloc(&mut heap, payload_for(512));
    assert_eq!(got, ptrs[2]);
    // The rest, 1600 bytes, went to the bin of its own size, where a request for a
    // block of exactly that size finds it.
    let rest = free_blocks(&heap)
        .into_iter()
        .find(|block| block.addr == got.as_ptr().addr() - 8 + 512)
        .expect("the rest of the cut block is free");
    assert_eq!(rest.size, 2112 - 512);
    assert_eq!(
        alloc(&mut heap, payload_for(1600)).as_ptr().addr(),
        rest.addr + 8
    );
}

#[test]
fn a_bin_of_blocks_too_small_sends_the_request_to_the_bins_above() {
    let mut heap = Arena::<SegregatedFit>::new(1 << 16);
    // The bin of [1024, 1280) holds only a 1040-byte hole, too small for a 1200-byte
    // block of the same bin; the next bin with a block holds a 2112-byte hole.
    let ptrs = holes(&mut heap, &[1040, 2112]);
    assert_eq!(bin_of(1040), bin_of(1200));
    assert!(bin_of(2112) > bin_of(1200));
    let got = alloc(&mut heap, payload_for(1200));
    assert_eq!(
        got, ptrs[1],
        "the search goes on above the request's own bin"
    );
    // The small hole is still free, for a request it fits.
    assert_eq!(alloc(&mut heap, payload_for(1040)), ptrs[0]);
}

#[test]
fn best_fit_within_a_logarithmic_bin() {
    let mut heap = Arena::<SegregatedFit>::new(1 << 16);
    // Three holes in the bin of [2048, 2560): a request for a 2096-byte block fits the
    // 2112- and 2400-byte holes, and the 2112-byte one leaves the least behind; the
    // 2064-byte hole is in the bin but too small.
    let ptrs = holes(&mut heap, &[2400, 2064, 2112]);
    assert_eq!(bin_of(2400), bin_of(2064));
    assert_eq!(bin_of(2112), bin_of(2064));
    let got = alloc(&mut heap, payload_for(2096));
    assert_eq!(got, ptrs[2]);
}

#[test]
fn the_top_serves_only_when_no_bin_can() {
    let mut heap = Arena::<SegregatedFit>::new(8192);
    let hole = alloc(&mut heap, payload_for(4096));
    let _fence = alloc(&mut heap, 8);
    let top = free_blocks(&heap)[0];
    assert!(top.size < 4096, "the top is now smaller than the hole");
    free(&mut heap, hole, payload_for(4096));
    // A plain best fit would cut the request out of the smaller top; the top is kept
    // whole while a bin has a block that fits.
    assert_eq!(alloc(&mut heap, payload_for(1024)), hole);
    // Larger than what is left of the hole: only now does the top serve.
    let from_top = alloc(&mut heap, payload_for(top.size - 64));
    assert_eq!(from_top.as_ptr().addr(), top.addr + 8);
}

#[test]
fn freeing_merges_neighbours_into_the_bin_of_the_sum() {
    let mut heap = Arena::<SegregatedFit>::new(8192);
    let a = alloc(&mut heap, payload_for(64));
    let b = alloc(&mut heap, payload_for(96));
    let c = alloc(&mut heap, payload_for(128));
    let _fence = alloc(&mut heap, 8);
    free(&mut heap, a, payload_for(64));
    free(&mut heap, c, payload_for(128));
    free(&mut heap, b, payload_for(96));
    let merged = free_blocks(&heap)[0];
    assert_eq!(merged, Block::free(a.as_ptr().addr() - 8, 64 + 96 + 128));
    // The merged block is found by a request of its exact size.
    assert_eq!(alloc(&mut heap, payload_for(288)), a);
}

#[test]
fn the_heap_ends_as_one_free_block_and_serves_the_whole_span_again() {
    let mut heap = Arena::<SegregatedFit>::new(1 << 16);
    let whole = free_blocks(&heap)[0];
    let sizes = [24, 1000, 5000, 40, 300, 2048, 17, 9000];
    let ptrs: Vec<_> = sizes.iter().map(|&s| alloc(&mut heap, s)).collect();
    for (i, (&ptr, &size)) in ptrs.iter().zip(&sizes).enumerate().rev() {
        if i % 2 == 0 {
            free(&mut heap, ptr, size);
        }
    }
    for (i, (&ptr, &size)) in ptrs.iter().zip(&sizes).enumerate() {
        if i % 2 == 1 {
            free(&mut heap, ptr, size);
        }
    }
    assert_eq!(free_blocks(&heap), [whole]);
    let all = alloc(&mut heap, whole.size - 8);
    assert_eq!(all.as_ptr().addr(), whole.addr + 8);
}

#[test]
fn growing_in_place_takes_from_the_free_block_after_and_refiles_its_rest() {
    let mut heap = Arena::<SegregatedFit>::new(8192);
    let a = alloc(&mut heap, 40);
    let b = alloc(&mut heap, payload_for(512));
    let _fence = alloc(&mut heap, 8);
    free(&mut heap, b, payload_for(512));
    // SAFETY: `a` is live with `bytes(40)`.
    let grown = unsafe { heap.reallocate(a, bytes(40), bytes(200)) }.unwrap();
    heap.check().unwrap();
    assert_eq!(grown, a, "grown in place into the free block after it");
    // The rest of `b`'s hole is free and on the bin of its new size.
    let rest = free_blocks(&heap)[0];
    assert_eq!(rest.addr, a.as_ptr().addr() - 8 + 208);
    assert_eq!(rest.size, 48 + 512 - 208);
    // A block at the heap's end grows into the free rest of the region.
    // (400 bytes do not fit the 352-byte rest, so they come from the top.)
    let last = alloc(&mut heap, 400);
    let top = *free_blocks(&heap).last().unwrap();
    assert_eq!(top.addr, last.as_ptr().addr() - 8 + 416);
    // SAFETY: `last` is live with `bytes(400)`.
    let grown = unsafe { heap.reallocate(last, bytes(400), bytes(3000)) }.unwrap();
    assert_eq!(grown, last);
    assert_eq!(
        free_blocks(&heap).last().unwrap().size,
        top.size + 416 - 3008
    );
    heap.check().unwrap();
}

#[test]
fn shrinking_in_place_frees_the_tail_into_the_right_bin() {
    let mut heap = Arena::<SegregatedFit>::new(8192);
    let a = alloc(&mut heap, payload_for(1024));
    let _fence = alloc(&mut heap, 8);
    // SAFETY: `a` is live with this layout.
    let shrunk = unsafe { heap.reallocate(a, bytes(payload_for(1024)), bytes(24)) }.unwrap();
    heap.check().unwrap();
    assert_eq!(shrunk, a);
    let tail = free_blocks(&heap)[0];
    assert_eq!(
        tail,
        Block::free(a.as_ptr().addr() - 8 + MIN_BLOCK, 1024 - MIN_BLOCK)
    );
}

#[test]
fn aligned_requests_leave_their_gap_free_on_its_bin() {
    let mut heap = Arena::<SegregatedFit>::new(1 << 14);
    let _small = alloc(&mut heap, 8);
    for align in [32, 64, 256, 4096] {
        let layout = Layout::from_size_align(100, align).unwrap();
        let ptr = heap.allocate(layout).unwrap();
        assert!(ptr.as_ptr().addr().is_multiple_of(align));
        heap.check().unwrap();
        // SAFETY: `ptr` is live with `layout`.
        unsafe { heap.deallocate(ptr, layout) };
        heap.check().unwrap();
    }
    let huge = Layout::from_size_align(64, 1 << 20).unwrap();
    assert_eq!(heap.allocate(huge), Err(AllocError::Unsupported));
}

#[test]
fn an_aligned_request_takes_the_block_of_its_bin_that_spares_least() {
    // An aligned block may start past a gap in front, which is not spare: best fit
    // weighs each block by its size less the gap. Two holes of the bin of [2048, 2560),
    // the larger freed last and so first on the list, at addresses shifted a granule at
    // a time, so that the gaps, and which hole spares less, change.
    let (align, need) = (256, 2096);
    let layout = Layout::from_size_align(payload_for(need), align).unwrap();
    let sizes = [2400, 2496];
    assert_eq!(bin_of(sizes[0]), bin_of(need));
    assert_eq!(bin_of(sizes[1]), bin_of(need));
    let mut winners = [0; 2];
    for shift in 0..align / GRANULE {
        let mut heap = Arena::<SegregatedFit>::new(1 << 16);
        alloc(&mut heap, payload_for(MIN_BLOCK + shift * GRANULE));
        let starts: Vec<usize> = holes(&mut heap, &sizes)
            .iter()
            .map(|ptr| ptr.as_ptr().addr() - 8)
            .collect();
        let spare = |hole: usize| {
            let gap = rawheap::tags::fit_gap(starts[hole], sizes[hole], need, align);
            sizes[hole] - gap.expect("both holes fit the request") - need
        };
        let got = heap.allocate(layout).unwrap().as_ptr().addr();
        heap.check().unwrap();
        assert!(got.is_multiple_of(align));
        let taken = (0..2)
            .find(|&hole| (starts[hole]..starts[hole] + sizes[hole]).contains(&got))
            .expect("the block is cut from a hole");
        assert_eq!(
            spare(taken),
            spare(0).min(spare(1)),
            "shifted {shift} granules: {got:#x} from the hole at {:#x}",
            starts[taken]
        );
        winners[taken] += 1;
    }
    // The shifts are not all won by one hole, or nothing was weighed.
    assert!(winners.iter().all(|&won| won > 0), "{winners:?}");
}

#[test]
fn an_aligned_request_takes_the_latest_freed_of_equal_fits() {
    // Two holes of one size, 2432 bytes apart (a hole and its fence), a multiple of 64:
    // their gaps to a 64-byte aligned payload are equal, and so is what they spare. The
    // tie goes to the first on the list, the hole freed last, as in every bin.
    let mut heap = Arena::<SegregatedFit>::new(1 << 16);
    let ptrs = holes(&mut heap, &[2400, 2400]);
    assert_eq!(ptrs[1].as_ptr().addr() - ptrs[0].as_ptr().addr(), 2432);
    let layout = Layout::from_size_align(payload_for(2096), 64).unwrap();
    let got = heap.allocate(layout).unwrap().as_ptr().addr();
    heap.check().unwrap();
    let latest = ptrs[1].as_ptr().addr();
    assert!(
        (latest..latest + 2400).contains(&got),
        "{got:#x} is cut from the hole freed last, at {latest:#x}"
    );
}

#[test]
fn a_full_heap_answers_exhausted_and_stays_usable() {
    let mut heap = Arena::<SegregatedFit>::new(4096);
    let mut live = Vec::new();
    while let Ok(ptr) = heap.allocate(bytes(200)) {
        live.push(ptr);
    }
    assert_eq!(heap.allocate(bytes(200)), Err(AllocError::Exhausted));
    heap.check().unwrap();
    free(&mut heap, live.pop().unwrap(), 200);
    alloc(&mut heap, 200);
}

#[test]
fn bins_grow_exactly_then_by_quarters() {
    assert_eq!(
        smallest_in(bin_of(EXACT_LIMIT - GRANULE)),
        EXACT_LIMIT - GRANULE
    );
    let above: Vec<_> = (0..5)
        .map(|i| smallest_in(bin_of(EXACT_LIMIT) + i))
        .collect();
    let quarter = EXACT_LIMIT / 4;
    assert_eq!(
        above,
        [0, 1, 2, 3, 4].map(|i| EXACT_LIMIT + i * quarter).to_vec()
    );
}

#[test]
fn debug_shows_the_region_and_the_requested_bytes() {
    let mut heap = Arena::<SegregatedFit>::new(4096);
    alloc(&mut heap, 100);
    let shown = format!("{:?}", *heap);
    assert!(
        shown.starts_with("SegregatedFit { region_len: 4096, requested: "),
        "{shown}"
    );
    assert!(shown.contains("100"), "{shown}");
    assert!(shown.ends_with(", .. }"), "{shown}");
}

#[test]
fn a_region_too_small_for_a_block_is_sound_and_refuses_everything() {
    let mut heap = Arena::<SegregatedFit>::new(MIN_BLOCK);
    heap.check().unwrap();
    assert_eq!(heap.stats().free, 0);
    assert_eq!(heap.allocate(bytes(1)), Err(AllocError::Unsupported));
    heap.check().unwrap();
}
