//! What is particular to the bump heap: the pointer only moves up, only the most recent
//! block is reclaimed (and everything once the heap is empty), reset, and resizing the
//! most recent block in place.

use core::alloc::Layout;
use core::ptr::NonNull;

use bump::Bump;
use conformance::tamper::poke;
use rawheap::{AllocError, Arena, Block, BlockKind, RawHeap};

/// Bytes of header in front of each block: one word.
const HEADER: usize = size_of::<usize>();

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn blocks(heap: &Bump) -> Vec<Block> {
    let mut out = Vec::new();
    heap.walk(&mut |block| out.push(block));
    out
}

fn alloc(heap: &mut Bump, size: usize) -> NonNull<u8> {
    let ptr = heap.allocate(bytes(size)).expect("room for the block");
    heap.check().expect("heap consistent after allocate");
    ptr
}

fn free(heap: &mut Bump, ptr: NonNull<u8>, size: usize) {
    // SAFETY: every test frees a block it allocated with this size, once.
    unsafe { heap.deallocate(ptr, bytes(size)) };
    heap.check().expect("heap consistent after deallocate");
}

fn top(heap: &Bump) -> usize {
    let free = blocks(heap)
        .into_iter()
        .find(|block| block.kind == BlockKind::Free);
    free.expect("a free tail").addr
}

#[test]
fn blocks_follow_each_other_with_a_header_in_between() {
    let mut heap = Arena::<Bump>::new(4096);
    let start = heap.region().cast::<u8>().as_ptr().addr();
    let marks = heap.stats().overhead();
    let a = alloc(&mut heap, 24);
    let b = alloc(&mut heap, 5);
    let c = alloc(&mut heap, 8);
    assert_eq!(a.as_ptr().addr(), start + HEADER);
    assert_eq!(b.as_ptr().addr(), a.as_ptr().addr() + 24 + HEADER);
    // 5 bytes round up to a word: the rounding is the block's, usable by its owner.
    assert_eq!(c.as_ptr().addr(), b.as_ptr().addr() + 8 + HEADER);
    // SAFETY: `b` is live with 5 bytes.
    assert_eq!(unsafe { heap.usable_size(b, bytes(5)) }, 8);
    assert_eq!(
        blocks(&heap),
        [
            Block::overhead(start, HEADER),
            Block::used(start + HEADER, 24),
            Block::overhead(start + HEADER + 24, HEADER),
            Block::used(b.as_ptr().addr(), 8),
            Block::overhead(b.as_ptr().addr() + 8, HEADER),
            Block::used(c.as_ptr().addr(), 8),
            Block::free(
                c.as_ptr().addr() + 8,
                4096 - marks - (c.as_ptr().addr() + 8 - start)
            ),
            // The marks of freed blocks: one bit per word, in whole words.
            Block::overhead(start + 4096 - marks, marks),
        ]
    );
    let stats = heap.stats();
    assert_eq!(
        (stats.live_blocks, stats.requested, stats.usable),
        (3, 37, 40)
    );
    assert_eq!(stats.high_water, 3 * HEADER + 40);
    assert_eq!(marks, ((4096_usize / 8).div_ceil(129) + 1) * 8);
}

#[test]
fn only_the_most_recent_block_is_reclaimed() {
    let mut heap = Arena::<Bump>::new(4096);
    let a = alloc(&mut heap, 32);
    let b = alloc(&mut heap, 32);
    let free_before = heap.stats().free;
    // `a` is buried under `b`: freeing it reclaims nothing, it becomes overhead.
    free(&mut heap, a, 32);
    assert_eq!(heap.stats().free, free_before);
    let dead = blocks(&heap)
        .into_iter()
        .find(|block| block.addr == a.as_ptr().addr() - HEADER)
        .unwrap();
    assert_eq!(dead, Block::overhead(dead.addr, HEADER + 32));
    // `b` is the most recent: freeing it moves the top back down over it.
    let c = alloc(&mut heap, 16);
    free(&mut heap, c, 16);
    assert_eq!(heap.stats().free, free_before);
    assert_eq!(
        alloc(&mut heap, 16),
        c,
        "the freed top block is handed out again"
    );
    let _ = b;
}

#[test]
fn a_buried_freed_block_waits_for_the_heap_to_empty() {
    let mut heap = Arena::<Bump>::new(4096);
    let a = alloc(&mut heap, 40);
    let b = alloc(&mut heap, 40);
    let c = alloc(&mut heap, 40);
    free(&mut heap, b, 40);
    // `c` is the most recent: the top comes back to where it started, and `b` stays
    // buried overhead below it.
    free(&mut heap, c, 40);
    assert_eq!(top(&heap), b.as_ptr().addr() + 40);
    assert_eq!(heap.stats().live_blocks, 1);
    assert_eq!(alloc(&mut heap, 40), c);
    free(&mut heap, c, 40);
    // Freeing the last live block empties the heap: everything is free again.
    free(&mut heap, a, 40);
    assert_eq!(alloc(&mut heap, 40), a);
}

#[test]
fn freeing_everything_in_any_order_restores_the_new_heap() {
    let orders: [[usize; 4]; 4] = [[3, 2, 1, 0], [0, 1, 2, 3], [1, 3, 0, 2], [2, 0, 3, 1]];
    for order in orders {
        let mut heap = Arena::<Bump>::with_placement(1000, 64, 3).unwrap();
        let new = heap.stats();
        let live = [10, 20, 30, 40].map(|size| (alloc(&mut heap, size), size));
        for index in order {
            let (ptr, size) = live[index];
            free(&mut heap, ptr, size);
        }
        let empty = heap.stats();
        assert_eq!(
            (empty.free, empty.largest_free),
            (new.free, new.largest_free)
        );
        assert_eq!(empty.live_blocks, 0);
        assert!(empty.high_water > 100);
    }
}

#[test]
fn reset_frees_everything_and_keeps_the_high_water_mark() {
    let mut heap = Arena::<Bump>::new(4096);
    let new = heap.stats();
    let first = alloc(&mut heap, 100);
    for _ in 0..10 {
        alloc(&mut heap, 100);
    }
    let high = heap.stats().high_water;
    // SAFETY: no block allocated so far is used again.
    unsafe { heap.reset() };
    heap.check().unwrap();
    let after = heap.stats();
    assert_eq!(
        (after.free, after.live_blocks, after.usable),
        (new.free, 0, 0)
    );
    assert_eq!(after.high_water, high);
    assert_eq!(alloc(&mut heap, 100), first);
}

#[test]
fn the_most_recent_block_grows_and_shrinks_in_place() {
    let mut heap = Arena::<Bump>::new(4096);
    let a = alloc(&mut heap, 16);
    let b = alloc(&mut heap, 16);
    // SAFETY: `b` is live with 16 bytes; the contents are kept in place.
    unsafe { b.as_ptr().write_bytes(0xAB, 16) };
    // SAFETY: as above.
    let grown = unsafe { heap.reallocate(b, bytes(16), bytes(2000)) }.unwrap();
    assert_eq!(grown, b);
    heap.check().unwrap();
    assert_eq!(top(&heap), b.as_ptr().addr() + 2000);
    // SAFETY: `b` has 2000 bytes now.
    let kept = unsafe { core::slice::from_raw_parts(b.as_ptr(), 16) };
    assert!(kept.iter().all(|&x| x == 0xAB));
    // SAFETY: as above.
    unsafe { heap.resize_in_place(b, bytes(2000), bytes(8)) }.unwrap();
    heap.check().unwrap();
    assert_eq!(top(&heap), b.as_ptr().addr() + 8);
    // Past the region's end it cannot grow, and nothing changes.
    // SAFETY: `b` has 8 bytes now.
    let refused = unsafe { heap.resize_in_place(b, bytes(8), bytes(5000)) };
    assert_eq!(refused, Err(AllocError::Exhausted));
    assert_eq!(top(&heap), b.as_ptr().addr() + 8);

    // `a` is buried: it may change only within its word rounding...
    // SAFETY: `a` is live with 16 bytes.
    unsafe { heap.resize_in_place(a, bytes(16), bytes(13)) }.unwrap();
    // SAFETY: `a` is live with 13 bytes.
    let refused = unsafe { heap.resize_in_place(a, bytes(13), bytes(17)) };
    assert_eq!(refused, Err(AllocError::Exhausted));
    heap.check().unwrap();
    assert_eq!(heap.stats().requested, 13 + 8);
    // ...so reallocating it moves it to the top and leaves its old place buried.
    // SAFETY: `a` is live with 13 bytes.
    let moved = unsafe { heap.reallocate(a, bytes(13), bytes(64)) }.unwrap();
    assert!(moved > b);
    heap.check().unwrap();
}

#[test]
fn aligned_blocks_skip_a_gap_that_the_walk_reports() {
    for offset in [0, 1, 8, 13, 24] {
        let mut heap = Arena::<Bump>::with_placement(1 << 16, 4096, offset).unwrap();
        let mut live = Vec::new();
        for shift in [0, 3, 4, 5, 6, 9, 12, 2, 7] {
            let layout = Layout::from_size_align(24, 1 << shift).unwrap();
            let ptr = heap.allocate(layout).unwrap();
            assert!(ptr.as_ptr().addr().is_multiple_of(layout.align()));
            heap.check().unwrap();
            live.push((ptr, layout));
        }
        let new_free = {
            let fresh = Arena::<Bump>::with_placement(1 << 16, 4096, offset).unwrap();
            fresh.stats().free
        };
        // Every byte below the top that is not used is a header, a gap or rounding.
        let stats = heap.stats();
        assert_eq!(stats.usable, live.len() * 24);
        assert!(stats.overhead() >= live.len() * HEADER);
        for (ptr, layout) in live.into_iter().rev() {
            // SAFETY: each block is live with its layout, freed once, top first.
            unsafe { heap.deallocate(ptr, layout) };
            heap.check().unwrap();
        }
        assert_eq!(heap.stats().free, new_free);
    }
}

#[test]
fn any_region_works_and_a_tiny_one_refuses_everything() {
    for len in [0, 1, 7, 16, 17, 23, 24, 25, 40, 100] {
        for offset in 0..8 {
            let mut heap = Arena::<Bump>::with_placement(len, 64, offset).unwrap();
            heap.check().unwrap();
            let new = heap.stats();
            assert_eq!(new.region, len);
            match heap.allocate(bytes(1)) {
                Ok(ptr) => {
                    heap.check().unwrap();
                    free(&mut heap, ptr, 1);
                    assert_eq!(heap.stats().free, new.free);
                }
                Err(error) => {
                    assert_eq!(error, AllocError::Unsupported, "len {len} offset {offset}");
                    assert!(new.free < HEADER + 1);
                }
            }
        }
    }
}

#[test]
fn refusals_say_why() {
    let mut heap = Arena::<Bump>::new(1024);
    let room = heap.stats().free;
    assert_eq!(heap.allocate(bytes(0)), Err(AllocError::ZeroSize));
    assert_eq!(
        heap.allocate(bytes(room - HEADER + 1)),
        Err(AllocError::Unsupported)
    );
    let huge = Layout::from_size_align(isize::MAX as usize - 8, 8).unwrap();
    assert_eq!(heap.allocate(huge), Err(AllocError::Unsupported));
    // A page-aligned region's first 4096-aligned payload would lie past its end.
    let page = Layout::from_size_align(8, 4096).unwrap();
    assert_eq!(heap.allocate(page), Err(AllocError::Unsupported));
    let all = alloc(&mut heap, room - HEADER);
    let before = heap.stats();
    assert_eq!(heap.allocate(bytes(1)), Err(AllocError::Exhausted));
    assert_eq!(heap.stats(), before, "a refusal changes nothing");
    free(&mut heap, all, room - HEADER);
}

/// The first word of marks of a heap in a page-aligned region: the overhead stretch at
/// the region's end, one bit per 16 bytes from the region's start on.
fn marks(heap: &Bump) -> *mut usize {
    let last = *blocks(heap).last().unwrap();
    assert_eq!(last.kind, BlockKind::Overhead);
    heap.region()
        .cast::<u8>()
        .as_ptr()
        .with_addr(last.addr)
        .cast()
}

#[test]
fn check_finds_a_mark_that_lies() {
    let mut heap = Arena::<Bump>::new(4096);
    let a = alloc(&mut heap, 16);
    let b = alloc(&mut heap, 16);
    let first = marks(&heap);
    // Bit 0 marks the 16 bytes where `a`, the first block, starts; bit 1 the next 16,
    // where no block starts (`b` starts in the 16 after them). Set each behind the
    // heap's back, as a stray write would.
    for (bit, broken) in [
        (0, "live counts the blocks not marked"),
        (1, "marks are set only at blocks below top"),
    ] {
        // SAFETY: the word is inside the region that the arena owns; the heap is not
        // in use while it is changed.
        unsafe { *first |= 1 << bit };
        assert_eq!(heap.check().unwrap_err().invariant, broken);
        // SAFETY: as above.
        unsafe { *first &= !(1 << bit) };
        heap.check().unwrap();
    }
    // Freeing the buried `a` sets its mark, and emptying the heap clears it again.
    free(&mut heap, a, 16);
    // SAFETY: as above.
    assert_eq!(unsafe { first.read() }, 1);
    free(&mut heap, b, 16);
    // SAFETY: as above.
    assert_eq!(unsafe { first.read() }, 0);
}

#[test]
fn a_block_with_a_gap_keeps_its_large_alignment_when_resized_in_place() {
    let mut heap = Arena::<Bump>::new(4096);
    let _a = alloc(&mut heap, 8);
    let wide = Layout::from_size_align(32, 64).unwrap();
    let b = heap.allocate(wide).unwrap();
    // The gap in front of `b` is overhead; `b` itself can grow in place at the top...
    let grown = Layout::from_size_align(200, 64).unwrap();
    // SAFETY: `b` is live with `wide`.
    unsafe { heap.resize_in_place(b, wide, grown) }.unwrap();
    heap.check().unwrap();
    // ...but not give up its alignment, which freeing relies on to find the gap.
    // SAFETY: `b` is live with `grown`.
    let narrow = unsafe { heap.resize_in_place(b, grown, bytes(200)) };
    assert_eq!(narrow, Err(AllocError::Unsupported));
    // SAFETY: `b` is live with `grown`.
    unsafe { heap.deallocate(b, grown) };
    heap.check().unwrap();
}

/// `HAS_GAP`, the header flag (and gap-word flag) of a block after an alignment gap.
const HAS_GAP: usize = 1 << (usize::BITS - 1);

#[test]
fn check_names_a_gap_marked_at_one_end_only() {
    let mut heap = Arena::<Bump>::new(4096);
    let _a = alloc(&mut heap, 8);
    let wide = Layout::from_size_align(8, 64).unwrap();
    let b = heap.allocate(wide).unwrap();
    let header = b.as_ptr().addr() - HEADER;
    // The gap runs from the end of `a` (its header, 8 bytes, rounding: 16 bytes in) to
    // `b`'s header; its last word holds its length.
    let start = heap.region().cast::<u8>().as_ptr().addr();
    let gap = header - (start + 16);
    // SAFETY: the word before `b`'s header is the gap's last word, inside the region;
    // the broken heap is only checked.
    let saved = unsafe { poke(&*heap, header - HEADER, HAS_GAP | gap) };
    heap.check().unwrap();
    // SAFETY: as above.
    unsafe { poke(&*heap, header - HEADER, HAS_GAP | (gap + HEADER)) };
    let error = heap.check().unwrap_err();
    assert_eq!(
        error.invariant,
        "HAS_GAP is set exactly when a gap, marked at both ends, comes first"
    );
    assert_eq!(error.addr, Some(header));
    // SAFETY: as above.
    unsafe { poke(&*heap, header - HEADER, saved) };
    heap.check().unwrap();
}

#[test]
fn debug_shows_live_used_and_free_bytes() {
    let mut heap = Arena::<Bump>::new(4096);
    let fresh = heap.stats().free;
    alloc(&mut heap, 8);
    alloc(&mut heap, 20);
    // Two headers, 8 bytes and 20 rounded to 24: 48 bytes below `top`.
    assert_eq!(
        format!("{:?}", *heap),
        format!(
            "Bump {{ region_len: 4096, live: 2, used: 48, free: {}, .. }}",
            fresh - 48
        )
    );
}

/// The used blocks the walk shows (their payloads, as offsets from the region's
/// start) with the header word of the block at `ptr` set to `word` behind the heap's
/// back, and whether `check` then finds the heap broken.
fn walk_with_header(heap: &Bump, ptr: NonNull<u8>, word: usize) -> (Vec<usize>, bool) {
    let header = ptr.as_ptr().addr() - HEADER;
    // SAFETY: a live block's header is an initialised word inside the region; the
    // heap is only walked and checked until the word is put back.
    let old = unsafe { poke(heap, header, word) };
    let start = heap.region().cast::<u8>().as_ptr().addr();
    let used = blocks(heap)
        .into_iter()
        .filter(|block| block.kind == BlockKind::Used)
        .map(|block| block.addr - start)
        .collect();
    let broken = heap.check().is_err();
    // SAFETY: as above.
    unsafe { poke(heap, header, old) };
    heap.check().unwrap();
    (used, broken)
}

#[test]
fn the_walk_stops_at_a_header_that_cannot_be() {
    let mut heap = Arena::<Bump>::new(4096);
    let a = alloc(&mut heap, 16);
    let b = alloc(&mut heap, 16);
    let c = alloc(&mut heap, 16);
    let start = heap.region().cast::<u8>().as_ptr().addr();
    let offset = |ptr: NonNull<u8>| ptr.as_ptr().addr() - start;
    let before_b = vec![offset(a)];
    let before_c = vec![offset(a), offset(b)];
    // A size of 0, a size past `top`, a gap that puts the header past `top`: the walk
    // stops at that block, and `check` calls the heap broken.
    assert_eq!(walk_with_header(&heap, b, 0), (before_b.clone(), true));
    assert_eq!(walk_with_header(&heap, b, 4096), (before_b, true));
    let gap_past_top = (1 << (usize::BITS - 1)) | 64;
    assert_eq!(walk_with_header(&heap, c, gap_past_top), (before_c, true));
}
#[test]
fn a_new_heap_has_reached_nothing_wherever_its_region_starts() {
    for offset in 0..8 {
        let heap = Arena::<Bump>::with_placement(1024, 64, offset).unwrap();
        assert_eq!(heap.stats().high_water, 0, "offset {offset}");
    }
}

#[test]
fn the_marks_stay_inside_any_region() {
    // Words past the region's end hold a canary: making a heap, filling it and
    // emptying it (which clears the marks) must leave them alone, wherever the
    // region starts and ends relative to a word of marks (every 1 KiB of address).
    const CANARY: u64 = 0x5a5a_5a5a_5a5a_5a5a;
    // Every offset and length a word apart natively; a sample of them under Miri.
    let step = if cfg!(miri) { 136 } else { 8 };
    let mut memory = vec![CANARY; 2048 / 8 + 4];
    for offset in (0..1024).step_by(step) {
        for len in (0..1024).step_by(step) {
            memory.fill(CANARY);
            let base = memory.as_mut_ptr().cast::<u8>();
            // SAFETY: `offset + len <= 2048`, inside `memory`, whose words past the
            // region only this test reads.
            let region = NonNull::slice_from_raw_parts(
                unsafe { NonNull::new_unchecked(base.add(offset)) },
                len,
            );
            // SAFETY: the region is valid for reads and writes and used by nothing
            // else while the heap lives.
            let mut heap = unsafe { Bump::new(region) };
            let layout = Layout::from_size_align(8, 8).unwrap();
            let mut blocks = Vec::new();
            while let Ok(ptr) = heap.allocate(layout) {
                blocks.push(ptr);
            }
            for ptr in blocks {
                // SAFETY: allocated above with `layout`, freed once.
                unsafe { heap.deallocate(ptr, layout) };
            }
            heap.check().unwrap();
            let past = (offset + len).div_ceil(8);
            assert!(
                memory[past..].iter().all(|&word| word == CANARY),
                "offset {offset}, len {len}: a word past the region changed"
            );
        }
    }
}
