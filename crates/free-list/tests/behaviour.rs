//! What is particular to the free list: splitting, coalescing with both neighbours, the
//! three placement policies, aligned blocks in odd regions, and resizing in place.

use core::alloc::Layout;
use core::ptr::NonNull;

use conformance::tamper::{TagListInvariants, check_names_broken_tag_lists, forge, link, poke};
use free_list::{BestFit, FirstFit, FreeList, GRANULE, MIN_BLOCK, NextFit, Placement};
use rawheap::{AllocError, Arena, Block, BlockKind, RawHeap};

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn blocks<H: RawHeap>(heap: &H) -> Vec<Block> {
    let mut out = Vec::new();
    heap.walk(&mut |block| out.push(block));
    out
}

fn free_blocks<H: RawHeap>(heap: &H) -> Vec<Block> {
    blocks(heap)
        .into_iter()
        .filter(|block| block.kind == BlockKind::Free)
        .collect()
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

/// The address of the header of the block whose payload is `ptr`.
fn header(ptr: NonNull<u8>) -> usize {
    ptr.as_ptr().addr() - 8
}

#[test]
fn a_new_heap_is_one_free_block() {
    let heap = Arena::<FreeList>::new(4096);
    heap.check().unwrap();
    let free = free_blocks(&*heap);
    assert_eq!(free.len(), 1);
    // A page-aligned region: the first header sits one word before the first granule.
    let start = heap.region().cast::<u8>().as_ptr().addr();
    assert_eq!(free[0].addr, start + GRANULE - 8);
    let stats = heap.stats();
    assert_eq!(stats.free, free[0].size);
    assert_eq!(stats.largest_free, stats.free);
    assert_eq!(stats.overhead(), 4096 - stats.free);
}

#[test]
fn splitting_leaves_the_rest_free_unless_it_is_too_small() {
    let mut heap = Arena::<FreeList>::new(4096);
    let whole = heap.stats().free;
    let a = alloc(&mut *heap, 24);
    // 24 bytes + header round to one MIN_BLOCK; the rest stays one free block.
    // SAFETY: `a` is live with this layout.
    assert_eq!(unsafe { heap.usable_size(a, bytes(24)) }, MIN_BLOCK - 8);
    assert_eq!(
        free_blocks(&*heap),
        [Block::free(header(a) + MIN_BLOCK, whole - MIN_BLOCK)]
    );

    // Ask for all but a sliver of the rest: the sliver cannot be a block, so the
    // request gets it too and nothing is left free.
    let rest = whole - MIN_BLOCK;
    let greedy = rest - 8 - GRANULE;
    let b = alloc(&mut *heap, greedy);
    // SAFETY: `b` is live with this layout.
    assert_eq!(unsafe { heap.usable_size(b, bytes(greedy)) }, rest - 8);
    assert!(free_blocks(&*heap).is_empty());
    assert_eq!(heap.allocate(bytes(1)), Err(AllocError::Exhausted));
}

#[test]
fn freeing_merges_with_both_neighbours() {
    let mut heap = Arena::<FreeList>::new(4096);
    let [a, b, c, d] = [0; 4].map(|_| alloc(&mut *heap, 40));
    free(&mut *heap, a, 40);
    free(&mut *heap, c, 40);
    // Two holes and the tail: nothing to merge yet.
    assert_eq!(free_blocks(&*heap).len(), 3);
    free(&mut *heap, b, 40);
    // a, b and c are one block now, ending where d starts.
    let free = free_blocks(&*heap);
    assert_eq!(free.len(), 2);
    assert_eq!(free[0], Block::free(header(a), header(d) - header(a)));
    free_blocks_restore(&mut *heap, d, 40);
}

/// Freeing the last block merges it with the hole before and the tail after: the heap
/// is one free block again.
fn free_blocks_restore<H: RawHeap>(heap: &mut H, last: NonNull<u8>, size: usize) {
    free(heap, last, size);
    assert_eq!(free_blocks(heap).len(), 1);
    assert_eq!(heap.stats().live_blocks, 0);
}

#[test]
fn freeing_merges_with_one_neighbour() {
    let mut heap = Arena::<FreeList>::new(4096);
    let [a, b, c] = [0; 3].map(|_| alloc(&mut *heap, 40));
    // Only the previous block is free.
    free(&mut *heap, a, 40);
    free(&mut *heap, b, 40);
    assert_eq!(
        free_blocks(&*heap)[0],
        Block::free(header(a), header(c) - header(a))
    );
    // Fill the merged hole exactly; then only the block after `c` (the tail) is free.
    let d = alloc(&mut *heap, 80);
    assert_eq!(d, a, "the merged hole fits 80 bytes exactly");
    free(&mut *heap, c, 40);
    let free = free_blocks(&*heap);
    assert_eq!(free.last().unwrap().addr, header(c));
}

/// Three holes of `hole` bytes each, separated by used blocks, freed in the order given;
/// returns their payloads in address order.
fn holes<P: Placement>(heap: &mut FreeList<P>, sizes: [usize; 3]) -> [NonNull<u8>; 3] {
    let mut holes = [NonNull::dangling(); 3];
    for (slot, size) in holes.iter_mut().zip(sizes) {
        *slot = alloc(heap, size);
        alloc(heap, 8); // a wall, so the holes never merge
    }
    for (ptr, size) in holes.iter().zip(sizes) {
        free(heap, *ptr, size);
    }
    holes
}

#[test]
fn first_fit_takes_the_most_recently_freed_hole_that_fits() {
    let mut heap = Arena::<FreeList<FirstFit>>::new(4096);
    let [small, large, larger] = holes(&mut heap, [40, 120, 200]);
    // The list is LIFO: larger, large, small. 100 bytes fit the first one on it.
    assert_eq!(alloc(&mut *heap, 100), larger);
    // What is left of `larger` (96 bytes) took its place at the front, too small for
    // 110 bytes; `large` comes next.
    assert_eq!(alloc(&mut *heap, 110), large);
    let _ = small;
}

#[test]
fn best_fit_takes_the_tightest_hole() {
    let mut heap = Arena::<FreeList<BestFit>>::new(4096);
    let [tight, loose, looser] = holes(&mut heap, [104, 200, 152]);
    // The list is LIFO (looser, loose, tight), but the tightest fit is `tight`.
    assert_eq!(alloc(&mut *heap, 100), tight);
    // Next tightest for 120 bytes: `looser` (152) beats `loose` (200) and the tail.
    assert_eq!(alloc(&mut *heap, 120), looser);
    let _ = loose;
}

#[test]
fn next_fit_resumes_where_the_last_search_stopped() {
    let mut next = Arena::<FreeList<NextFit>>::new(900);
    let mut first = Arena::<FreeList<FirstFit>>::new(900);
    let [_, b, c] = holes(&mut next, [200; 3]);
    let [_, _, c_first] = holes(&mut first, [200; 3]);
    // The list is c, b, a, tail. First fit starts at its front...
    assert_eq!(alloc(&mut *first, 40), c_first);
    // ...next fit where the last search stopped: the tail, which served the last wall.
    let from_tail = alloc(&mut *next, 40);
    assert!(from_tail > c);
    // Too big for what is left of the tail: the search wraps round to the front.
    assert!(free_blocks(&*next).last().unwrap().size < 200);
    assert_eq!(alloc(&mut *next, 200), c);
    // `c` fit exactly and left the list; the rover moved on to `b`. Freed again, `c`
    // is at the front, where first fit would find it, but next fit goes on from `b`.
    free(&mut *next, c, 200);
    assert_eq!(alloc(&mut *next, 200), b);
}

#[test]
fn aligned_blocks_leave_their_gap_free() {
    for offset in [0, 1, 3, 8, 13] {
        let mut heap = Arena::<FreeList>::with_placement(1 << 16, 4096, offset).unwrap();
        heap.check().unwrap();
        let mut live = Vec::new();
        for shift in 0..=12 {
            let layout = Layout::from_size_align(24, 1 << shift).unwrap();
            let ptr = heap.allocate(layout).unwrap();
            assert!(ptr.as_ptr().addr().is_multiple_of(layout.align()));
            heap.check().unwrap();
            live.push((ptr, layout));
        }
        // Alignment cost free blocks (gaps), not padding: the overhead is one header a
        // block plus the region's two ends.
        let stats = heap.stats();
        // The edges: up to the first header on the granule grid, and from the epilogue
        // header (the last such spot with room for it) to the end.
        let start = heap.region().cast::<u8>().as_ptr().addr();
        let end = start + heap.region().len();
        let first = (start + 8).next_multiple_of(GRANULE) - 8;
        let epilogue = end / GRANULE * GRANULE - 8;
        let edges = (first - start) + (end - epilogue);
        assert_eq!(
            stats.overhead(),
            live.len() * 8 + edges,
            "{:#?}",
            blocks(&*heap)
        );
        for (ptr, layout) in live {
            // SAFETY: each block is live with its layout.
            unsafe { heap.deallocate(ptr, layout) };
            heap.check().unwrap();
        }
        assert_eq!(free_blocks(&*heap).len(), 1);
    }
}

#[test]
fn any_region_works_and_a_tiny_one_refuses_everything() {
    for len in [0, 1, 31, 47, 48, 63, 64, 100, 333] {
        for offset in 0..16 {
            let mut heap = Arena::<FreeList>::with_placement(len, 4096, offset).unwrap();
            heap.check().unwrap();
            let stats = heap.stats();
            assert_eq!(stats.region, len);
            let one = heap.allocate(bytes(1));
            if stats.free == 0 {
                assert_eq!(
                    one,
                    Err(AllocError::Unsupported),
                    "len {len} offset {offset}"
                );
            } else {
                let ptr = one.unwrap();
                heap.check().unwrap();
                free(&mut *heap, ptr, 1);
                let after = heap.stats();
                assert_eq!(
                    (after.free, after.largest_free),
                    (stats.free, stats.largest_free)
                );
            }
        }
    }
}

#[test]
fn refusals_say_why() {
    let mut heap = Arena::<FreeList>::new(1024);
    assert_eq!(heap.allocate(bytes(0)), Err(AllocError::ZeroSize));
    assert_eq!(heap.allocate(bytes(1024)), Err(AllocError::Unsupported));
    // A page-aligned region's first 4096-aligned payload would lie past its end.
    let page = Layout::from_size_align(8, 4096).unwrap();
    assert_eq!(heap.allocate(page), Err(AllocError::Unsupported));
    assert_eq!(
        heap.allocate(Layout::from_size_align(isize::MAX as usize - 8, 8).unwrap()),
        Err(AllocError::Unsupported)
    );
    let big = alloc(&mut *heap, 900);
    assert_eq!(heap.allocate(bytes(200)), Err(AllocError::Exhausted));
    free(&mut *heap, big, 900);
    heap.check().unwrap();
}

fn fill(ptr: NonNull<u8>, len: usize, seed: u8) {
    // SAFETY: callers pass a live block of at least `len` bytes.
    unsafe { core::slice::from_raw_parts_mut(ptr.as_ptr(), len) }
        .iter_mut()
        .enumerate()
        .for_each(|(i, byte)| *byte = seed.wrapping_add(i as u8));
}

fn holds(ptr: NonNull<u8>, len: usize, seed: u8) -> bool {
    // SAFETY: callers pass a live block of at least `len` bytes.
    unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) }
        .iter()
        .enumerate()
        .all(|(i, byte)| *byte == seed.wrapping_add(i as u8))
}

#[test]
fn reallocate_grows_into_the_free_block_after_and_shrinks_in_place() {
    let mut heap = Arena::<FreeList>::new(4096);
    let a = alloc(&mut *heap, 40);
    fill(a, 40, 7);
    // The tail after `a` is free: growing stays in place.
    // SAFETY: `a` is live with this layout; on success it stays the block's pointer.
    let grown = unsafe { heap.reallocate(a, bytes(40), bytes(1000)) }.unwrap();
    assert_eq!(grown, a);
    assert!(holds(a, 40, 7));
    heap.check().unwrap();
    // Shrinking frees the tail, which merges with the free rest.
    // SAFETY: `a` is live with 1000 bytes.
    let shrunk = unsafe { heap.reallocate(a, bytes(1000), bytes(40)) }.unwrap();
    assert_eq!(shrunk, a);
    heap.check().unwrap();
    assert_eq!(
        free_blocks(&*heap),
        [Block::free(header(a) + 48, heap.stats().free)]
    );

    // With a used block right after it, growing moves and keeps the contents.
    let wall = alloc(&mut *heap, 8);
    // SAFETY: `a` is live with 40 bytes.
    let moved = unsafe { heap.reallocate(a, bytes(40), bytes(100)) }.unwrap();
    assert_ne!(moved, a);
    assert!(holds(moved, 40, 7));
    heap.check().unwrap();
    free(&mut *heap, moved, 100);
    free(&mut *heap, wall, 8);
    assert_eq!(free_blocks(&*heap).len(), 1);
}

#[test]
fn growing_in_place_takes_a_whole_neighbour_when_the_rest_would_be_too_small() {
    let mut heap = Arena::<FreeList>::new(4096);
    let a = alloc(&mut *heap, 40);
    let b = alloc(&mut *heap, 40);
    let _wall = alloc(&mut *heap, 8);
    free(&mut *heap, b, 40);
    // `b`'s 48 bytes follow `a`'s 48: asking for 80 leaves 16, too small for a block.
    // SAFETY: `a` is live with 40 bytes.
    unsafe { heap.resize_in_place(a, bytes(40), bytes(80)) }.unwrap();
    heap.check().unwrap();
    // SAFETY: `a` is live with 80 bytes now.
    assert_eq!(unsafe { heap.usable_size(a, bytes(80)) }, 96 - 8);
    // Nothing free after `a` any more: growing further must fail and change nothing.
    let before = heap.stats();
    // SAFETY: as above.
    let refused = unsafe { heap.resize_in_place(a, bytes(80), bytes(200)) };
    assert_eq!(refused, Err(AllocError::Exhausted));
    assert_eq!(heap.stats(), before);
    heap.check().unwrap();
}

#[test]
fn check_finds_broken_tags_and_links() {
    let mut heap = Arena::<FreeList>::new(4096);
    let [a, _wall, c, _wall2] = [0; 4].map(|_| alloc(&mut *heap, 40));
    free(&mut *heap, a, 40);
    free(&mut *heap, c, 40);
    // `a`'s block: 48 bytes, header one word before `a`, footer in its last word.
    let footer = header(a) + 48 - 8;
    // SAFETY: a word of the heap's region (so for every `poke` of these tests); then
    // the broken heap is only checked.
    let saved = unsafe { poke(&*heap, footer, 64usize) };
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "a free block's footer equals its size"
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, footer, saved) };
    heap.check().unwrap();
    // The list is c, a, tail: cut it after `c`, so `a` and the tail drop off it.
    let next_link = header(c) + 8;
    // SAFETY: as above.
    let saved = unsafe { poke(&*heap, next_link, link(&*heap, None)) };
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "every free block is on the free list"
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, next_link, saved) };
    heap.check().unwrap();
}

/// A header word: `size` with the `USED` (1) and `PREV_USED` (2) bits.
fn tag(size: usize, used: bool, prev_used: bool) -> usize {
    size | usize::from(used) | usize::from(prev_used) << 1
}

#[test]
fn check_names_each_way_the_list_breaks() {
    check_names_broken_tag_lists::<FreeList>(TagListInvariants {
        outside_span: "the free list holds only blocks of the span",
        used: "the free list holds only free blocks",
        back_link: "free-list links agree: a listed block links back to the one before it",
        uncounted: "the free list holds as many blocks as there are free blocks",
    });
}

#[test]
fn check_names_a_free_list_longer_than_the_span_can_hold() {
    // Free blocks are MIN_BLOCK long at least, so the list holds at most
    // `span / MIN_BLOCK` of them. Blocks forged a GRANULE apart inside a used block pass
    // every other test of a listed block (each one's header is the back link of the
    // block before the one before it, an address or none, with the USED bit clear):
    // only that bound names such a list.
    let mut heap = Arena::<FreeList>::new(4096);
    let span: usize = blocks(&*heap)
        .iter()
        .filter(|block| block.kind != BlockKind::Overhead)
        .map(|block| block.size)
        .sum();
    let most = span / MIN_BLOCK;
    let room = span - 2 * MIN_BLOCK;
    let big = alloc(&mut *heap, room);
    let [tail] = free_blocks(&*heap)[..] else {
        panic!("one free block after the used one")
    };
    let dense: Vec<usize> = (1..room / GRANULE - 1)
        .map(|granules| header(big) + granules * GRANULE)
        .collect();
    assert!(1 + dense.len() > most, "more blocks than the span can hold");
    // SAFETY: the dense blocks' links lie in `big`'s payload, which the test owns, and
    // the tail's next link is a word of the heap; the broken heap is only checked
    // until the link is put back.
    let saved = unsafe {
        for (k, &block) in dense.iter().enumerate() {
            let next = dense.get(k + 1).copied();
            let prev = k.checked_sub(1).map_or(tail.addr, |k| dense[k]);
            forge(&*heap, block + 8, link(&*heap, next));
            forge(&*heap, block + 16, link(&*heap, Some(prev)));
        }
        poke(&*heap, tail.addr + 8, link(&*heap, Some(dense[0])))
    };
    let error = heap.check().unwrap_err();
    assert_eq!(
        (error.invariant, error.addr),
        ("the free list ends", Some(dense[most - 1]))
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, tail.addr + 8, saved) };
    heap.check().unwrap();
    free(&mut *heap, big, room);
}

#[test]
fn check_names_a_used_block_nobody_allocated() {
    let mut heap = Arena::<FreeList>::new(4096);
    let big = alloc(&mut *heap, 88);
    let _wall = alloc(&mut *heap, 8);
    // Cut the 96-byte block in two used halves: the tags are sound, but the heap now
    // holds one used block more than it handed out.
    // SAFETY: as in `check_finds_broken_tags_and_links`.
    unsafe {
        poke(&*heap, header(big), tag(48, true, true));
        forge(&*heap, header(big) + 48, tag(48, true, true));
    }
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "every used block is a live one"
    );
}

#[test]
fn check_names_a_rover_off_the_list() {
    let mut heap = Arena::<FreeList<NextFit>>::new(4096);
    let a = alloc(&mut *heap, 40);
    let b = alloc(&mut *heap, 40);
    free(&mut *heap, a, 40);
    // The last search cut `b` from the tail, and the rover moved on to the tail's rest.
    let tail = free_blocks(&*heap).last().copied().unwrap();
    assert_eq!(tail.addr, header(b) + 48);
    // `b` (behind the free `a`) swallows the tail: the tail leaves the list (`a`, the
    // tail) and the blocks, but the rover still names it.
    // SAFETY: as in `check_finds_broken_tags_and_links`.
    unsafe {
        poke(&*heap, header(b), tag(48 + tail.size, true, false));
        poke(&*heap, tail.addr + tail.size, tag(0, true, true));
        poke(&*heap, header(a) + 8, link(&*heap, None));
    }
    let error = heap.check().unwrap_err();
    assert_eq!(error.invariant, "the rover is a block on the free list");
    assert_eq!(error.addr, Some(tail.addr));
}

#[test]
fn best_fit_counts_an_aligned_requests_gap_against_the_hole() {
    let mut heap = Arena::<FreeList<BestFit>>::new(4096);
    let start = heap.region().cast::<u8>().as_ptr().addr();
    // Two holes between walls: `x` (144 bytes, header at +8) and `y` (112 bytes, header
    // at +184, so its payload at +192 is 64-aligned).
    let [x, y, _] = holes(&mut heap, [136, 104, 8]);
    assert_eq!((header(x), header(y)), (start + 8, start + 184));
    // 24 bytes aligned to 64 need a 32-byte block. In `x` the payload moves up to +64,
    // behind a 48-byte gap: 144 - 48 - 32 = 64 bytes spare. `y` fits with no gap and
    // 112 - 32 = 80 spare. Best fit takes `x`, though `y` is the smaller hole and the
    // one at the front of the list.
    let wide = Layout::from_size_align(24, 64).unwrap();
    let ptr = heap.allocate(wide).unwrap();
    assert_eq!(ptr.as_ptr().addr(), start + 64);
    heap.check().unwrap();
    // The gap stayed behind as a free block, and so did the 64 spare bytes.
    let free: Vec<(usize, usize)> = free_blocks(&*heap)
        .iter()
        .map(|block| (block.addr - start, block.size))
        .collect();
    assert_eq!(free[..3], [(8, 48), (88, 64), (184, 112)]);
    // An exact fit ends the search: 104 bytes aligned to 64 fill `y` to the byte.
    let exact = Layout::from_size_align(104, 64).unwrap();
    assert_eq!(heap.allocate(exact).unwrap(), y);
}

#[test]
fn next_fit_moves_the_rover_to_what_takes_a_cut_blocks_place() {
    let mut heap = Arena::<FreeList<NextFit>>::new(4096);
    let [a, b, c] = holes(&mut heap, [104, 104, 104]);
    // The list is c, b, a, tail; the rover is at the tail, which served the last wall.
    let tail = free_blocks(&*heap).last().copied().unwrap();
    let from_tail = alloc(&mut *heap, 40);
    assert_eq!(header(from_tail), tail.addr);
    // The tail's rest took its place and the rover's: the next request is cut from it
    // too, not from `c` at the front.
    let again = alloc(&mut *heap, 40);
    assert_eq!(header(again), tail.addr + 48);
    // `c`, `b` and `a` fit 104 bytes exactly, and first fit would take `c`; next fit
    // stays with the tail's rest while it fits.
    let third = alloc(&mut *heap, 104);
    assert_eq!(header(third), tail.addr + 96);
    let _ = (a, b, c);
}

#[test]
fn debug_shows_the_region_and_the_usage() {
    let mut heap = Arena::<FreeList>::new(4096);
    alloc(&mut *heap, 100);
    let shown = format!("{:?}", *heap);
    assert!(
        shown.starts_with("FreeList { region_len: 4096, usage: Usage {"),
        "{shown}"
    );
    assert!(shown.contains("live_blocks: 1"), "{shown}");
    assert!(shown.ends_with(", .. }"), "{shown}");
}
