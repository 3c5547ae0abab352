//! What is particular to the buddy system: the cover of odd regions, the split and
//! merge cascades, alignment that costs nothing, resizing by halves, the order cap, and
//! a `check` that finds unmerged buddies and broken links.

use core::alloc::Layout;
use core::ptr::NonNull;

use buddy::Buddy;
use conformance::tamper::poke;
use proptest::prelude::*;
use rawheap::{AllocError, Arena, Block, BlockKind, RawHeap};

fn bytes(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

fn blocks<H: RawHeap>(heap: &H) -> Vec<Block> {
    let mut out = Vec::new();
    heap.walk(&mut |block| out.push(block));
    out
}

fn kinds<H: RawHeap>(heap: &H, kind: BlockKind) -> Vec<Block> {
    blocks(heap)
        .into_iter()
        .filter(|block| block.kind == kind)
        .collect()
}

/// The region of most tests: 64 KiB, or 4 KiB under Miri, where `check` after every
/// step would take too long over the bitmap of a larger one.
const REGION: usize = if cfg!(miri) { 1 << 12 } else { 1 << 16 };

/// The region's start as an address, and a heap over `REGION` bytes placed `offset`
/// bytes past a multiple of `REGION`.
fn heap_at(offset: usize) -> (usize, Arena<Buddy>) {
    let heap = Arena::<Buddy>::with_placement(REGION, REGION, offset).unwrap();
    (heap.region().cast::<u8>().as_ptr().addr(), heap)
}

fn alloc<H: RawHeap>(heap: &mut H, layout: Layout) -> NonNull<u8> {
    let ptr = heap.allocate(layout).expect("room for the block");
    heap.check().expect("heap consistent after allocate");
    ptr
}

fn release<H: RawHeap>(heap: &mut H, ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: every test frees a block it allocated with this layout, once.
    unsafe { heap.deallocate(ptr, layout) };
    heap.check().expect("heap consistent after deallocate");
}

/// The free blocks' sizes, in address order.
fn free_sizes<H: RawHeap>(heap: &H) -> Vec<usize> {
    kinds(heap, BlockKind::Free)
        .iter()
        .map(|block| block.size)
        .collect()
}

#[test]
fn an_aligned_region_is_covered_by_doubling_roots() {
    let (start, heap) = heap_at(0);
    heap.check().unwrap();
    // The bitmap (about 1/64 of the region) comes first; then roots that double, each
    // aligned to its size, up to half the region, which ends it.
    let free = kinds(&*heap, BlockKind::Free);
    let sizes = free_sizes(&*heap);
    assert!(sizes.windows(2).all(|pair| pair[1] > pair[0]), "{sizes:?}");
    assert_eq!(
        sizes[sizes.len() - 3..],
        [REGION / 8, REGION / 4, REGION / 2]
    );
    assert!(free.iter().all(|block| block.addr % block.size == 0));
    assert_eq!(free.last().unwrap().end(), start + REGION);
    let stats = heap.stats();
    assert_eq!(stats.largest_free, REGION / 2);
    assert_eq!(heap.capabilities().max_size, REGION / 2);
    // Overhead is the bitmap and the crumb after it: 2 bits per 16 bytes, rounded up
    // to words and to the 16-byte block grid.
    let bitmaps = 2 * stats.free / 16 / 8;
    assert!(
        stats.overhead() >= bitmaps && stats.overhead() < bitmaps + 16 + 2 * 8 * 12,
        "overhead {} for a bitmap of {bitmaps} bytes",
        stats.overhead()
    );
    assert_eq!(kinds(&*heap, BlockKind::Overhead)[0].addr, start);
}

#[test]
fn an_unaligned_region_has_roots_that_grow_then_shrink() {
    // Starting a sixteenth past a multiple of its size, the region holds the upper
    // half of that multiple and a sixteenth of the next.
    let (start, heap) = heap_at(REGION / 16);
    heap.check().unwrap();
    let sizes = free_sizes(&*heap);
    let peak = sizes.iter().position(|&size| size == REGION / 2).unwrap();
    assert!(
        sizes[..=peak].windows(2).all(|pair| pair[1] > pair[0]),
        "{sizes:?}"
    );
    assert_eq!(sizes[peak + 1..], [REGION / 16], "{sizes:?}");
    // Nothing lost between the bitmap and the end: the blocks tile it.
    let overhead = kinds(&*heap, BlockKind::Overhead);
    assert_eq!(
        overhead.len(),
        1,
        "a region ending at a block boundary loses no crumb"
    );
    assert_eq!(overhead[0].end() + heap.stats().free, start + REGION);

    // A region at an odd address ends its overhead at a 16-byte boundary.
    let heap = Arena::<Buddy>::with_placement(1 << 12, 4096, 3).unwrap();
    heap.check().unwrap();
    let first = blocks(&*heap)[0];
    assert_eq!(first.kind, BlockKind::Overhead);
    assert!(first.end().is_multiple_of(16));
}

#[test]
fn allocating_splits_down_and_freeing_merges_all_the_way_up() {
    let (_, mut heap) = heap_at(0);
    let fresh = blocks(&*heap);
    // The smallest free block that holds `want` bytes is split, not a larger one.
    let want = REGION / 128;
    let smallest = *kinds(&*heap, BlockKind::Free)
        .iter()
        .filter(|block| block.size >= want)
        .min_by_key(|block| block.size)
        .unwrap();
    assert!(smallest.size > want, "a root of {want} bytes: {fresh:#?}");
    let page = Layout::from_size_align(want / 2 + 8, 8).unwrap();
    let a = alloc(&mut *heap, page);
    let start = a.as_ptr().addr();
    assert_eq!(start, smallest.addr);
    // An upper half of every order from `want` bytes up lies after `a`'s block.
    let free = kinds(&*heap, BlockKind::Free);
    let mut half = want;
    while half < smallest.size {
        assert!(free.contains(&Block::free(start + half, half)), "{half}");
        half *= 2;
    }
    // Its buddy, taken now, needs no split; freeing `a` then merges nothing.
    let b = alloc(&mut *heap, page);
    assert_eq!(b.as_ptr().addr(), start + want);
    release(&mut *heap, a, page);
    assert!(kinds(&*heap, BlockKind::Free).contains(&Block::free(start, want)));
    // Freeing `b` merges it with `a`, then with every upper half: as new again.
    release(&mut *heap, b, page);
    assert_eq!(blocks(&*heap), fresh);
}

#[test]
fn requests_round_up_to_a_power_of_two_and_alignment_comes_free() {
    let (_, mut heap) = heap_at(0);
    let overhead = heap.stats().overhead();
    let page = REGION / 16;
    for (size, align, usable) in [(1, 1, 16), (17, 8, 32), (100, 8, 128), (8, page, page)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        let ptr = alloc(&mut *heap, layout);
        // SAFETY: `ptr` is live with `layout`.
        assert_eq!(unsafe { heap.usable_size(ptr, layout) }, usable);
        assert_eq!(
            ptr.as_ptr().addr() % usable,
            0,
            "a block is aligned to its size"
        );
    }
    assert_eq!(heap.stats().overhead(), overhead, "no padding, no header");
}

#[test]
fn shrinking_frees_the_upper_halves_and_growing_takes_free_buddies() {
    let (_, mut heap) = heap_at(0);
    let fresh = blocks(&*heap);
    // Blocks of a 32nd, a 64th and a 256th of the region (2 KiB, 1 KiB and 256 bytes
    // of 64 KiB), asked for with sizes that round up to them.
    let (large, middle, small) = (REGION / 32, REGION / 64, REGION / 256);
    let (large_ask, middle_ask, small_ask) = (large - 48, middle * 5 / 8, small - 6);
    let big = alloc(&mut *heap, bytes(large_ask));
    let start = big.as_ptr().addr();
    // SAFETY: `big` is live with `large_ask` bytes; it shrinks in place.
    unsafe { heap.resize_in_place(big, bytes(large_ask), bytes(small_ask)) }.unwrap();
    heap.check().unwrap();
    let free = kinds(&*heap, BlockKind::Free);
    for half in [small, 2 * small, middle] {
        assert!(free.contains(&Block::free(start + half, half)), "{half}");
    }
    // Its buddies are free again: growing back takes them in place.
    // SAFETY: `big` is live with `small_ask` bytes.
    unsafe { heap.resize_in_place(big, bytes(small_ask), bytes(large_ask)) }.unwrap();
    heap.check().unwrap();
    assert_eq!(kinds(&*heap, BlockKind::Used), [Block::used(start, large)]);

    // With its buddy in use, the block cannot grow; reallocate moves it.
    // SAFETY: `big` is live with `large_ask` bytes.
    unsafe { heap.resize_in_place(big, bytes(large_ask), bytes(middle_ask)) }.unwrap();
    let wall = alloc(&mut *heap, bytes(middle_ask));
    assert_eq!(
        wall.as_ptr().addr(),
        start + middle,
        "the newest free block of its order"
    );
    let before = heap.stats();
    // SAFETY: `big` is live with `middle_ask` bytes.
    let refused = unsafe { heap.resize_in_place(big, bytes(middle_ask), bytes(large_ask)) };
    assert_eq!(refused, Err(AllocError::Exhausted));
    assert_eq!(heap.stats(), before);
    // SAFETY: as above; on success `big` is dead.
    let moved = unsafe { heap.reallocate(big, bytes(middle_ask), bytes(large_ask)) }.unwrap();
    assert_ne!(moved, big);
    heap.check().unwrap();

    // An upper half cannot grow in place: the larger block would start before it.
    // SAFETY: `wall` is live with `middle_ask` bytes; its block is the upper half of
    // `big`'s old block, whose lower half is free now.
    let refused = unsafe { heap.resize_in_place(wall, bytes(middle_ask), bytes(large * 3 / 4)) };
    assert_eq!(refused, Err(AllocError::Exhausted));
    release(&mut *heap, wall, bytes(middle_ask));
    release(&mut *heap, moved, bytes(large_ask));
    assert_eq!(blocks(&*heap), fresh);
}

#[test]
fn refusals_say_why() {
    let (_, mut heap) = heap_at(0);
    assert_eq!(heap.allocate(bytes(0)), Err(AllocError::ZeroSize));
    // Larger than the largest root, though smaller than the region.
    assert_eq!(
        heap.allocate(bytes(REGION * 5 / 8)),
        Err(AllocError::Unsupported)
    );
    let align = Layout::from_size_align(8, REGION).unwrap();
    assert_eq!(heap.allocate(align), Err(AllocError::Unsupported));
    let absurd = Layout::from_size_align(isize::MAX as usize, 1).unwrap();
    assert_eq!(heap.allocate(absurd), Err(AllocError::Unsupported));
    // With the largest root taken, no other block holds more than a quarter.
    let root = alloc(&mut *heap, bytes(REGION / 2));
    assert_eq!(
        heap.allocate(bytes(REGION * 5 / 16)),
        Err(AllocError::Exhausted)
    );
    release(&mut *heap, root, bytes(REGION / 2));
    assert_eq!(heap.allocate(bytes(1 << 20)), Err(AllocError::Unsupported));
}

#[test]
fn the_order_cap_bounds_the_largest_block() {
    let mut heap = Arena::<Buddy<16, 4>>::new(4096);
    heap.check().unwrap();
    assert_eq!(heap.capabilities().max_size, 128);
    // Every root is capped at order 3 (128 bytes), and capped buddies never merge.
    let free = kinds(&*heap, BlockKind::Free);
    assert!(free.iter().all(|block| block.size <= 128));
    assert_eq!(free.last().unwrap().size, 128);
    assert_eq!(heap.allocate(bytes(129)), Err(AllocError::Unsupported));
    let a = alloc(&mut *heap, bytes(128));
    let b = alloc(&mut *heap, bytes(128));
    release(&mut *heap, a, bytes(128));
    release(&mut *heap, b, bytes(128));
    assert_eq!(heap.stats().largest_free, 128);
}

#[test]
fn any_region_works_and_a_tiny_one_refuses_everything() {
    let (lens, offsets): (&[usize], &[usize]) = if cfg!(miri) {
        (&[0, 31, 47, 333], &[0, 7])
    } else {
        (
            &[0, 1, 15, 16, 31, 32, 47, 100, 333, 4095],
            &[0, 1, 7, 8, 15],
        )
    };
    for &len in lens {
        for &offset in offsets {
            let mut heap = Arena::<Buddy>::with_placement(len, 4096, offset).unwrap();
            heap.check().unwrap();
            let stats = heap.stats();
            assert_eq!(stats.region, len);
            match heap.allocate(bytes(1)) {
                Ok(ptr) => {
                    heap.check().unwrap();
                    release(&mut *heap, ptr, bytes(1));
                    let after = heap.stats();
                    assert_eq!(
                        (after.free, after.largest_free),
                        (stats.free, stats.largest_free)
                    );
                }
                Err(refusal) => {
                    assert_eq!(stats.free, 0, "len {len} offset {offset}");
                    assert_eq!(refusal, AllocError::Unsupported);
                }
            }
        }
    }
}

/// The word and the bit in it of the taken bit of the order-0 block at `addr`, in a heap
/// whose region starts at `start`, a word boundary, and whose blocks start at `lo`. The
/// bitmap starts the region and order 0's bits come first, one per 16 bytes from the
/// pair of buddies of the block at `lo` (the layout `OrderBits` documents).
fn order_0_bit(start: usize, lo: usize, addr: usize) -> (usize, u32) {
    let bit = addr / 16 - ((lo / 16) & !1);
    (start + bit / 64 * 8, (bit % 64) as u32)
}

/// Flips the taken bit of the order-0 block at `addr`, as `order_0_bit` places it, sees
/// `check` name `invariant`, then puts the bit back and sees the heap sound again.
fn check_names_flipped_bit(heap: &Buddy, start: usize, lo: usize, addr: usize, invariant: &str) {
    let (word, bit) = order_0_bit(start, lo, addr);
    // SAFETY: the word is one of the bitmap's, at the region's start, so inside it and
    // initialised by `new`; the broken heap is only checked until it is put back.
    let saved = unsafe { poke(heap, word, 0usize) };
    // SAFETY: as above.
    unsafe { poke(heap, word, saved ^ 1 << bit) };
    assert_eq!(heap.check().unwrap_err().invariant, invariant);
    // SAFETY: as above.
    unsafe { poke(heap, word, saved) };
    heap.check().unwrap();
}

/// Three 16-byte blocks of a fresh heap: `a` and `b` are buddies (`a` was cut from 32
/// bytes and `b` took the free half), and `c` comes after them.
fn buddies_and_a_third(heap: &mut Buddy) -> [NonNull<u8>; 3] {
    let a = alloc(heap, bytes(32));
    // SAFETY: `a` is live with 32 bytes.
    unsafe { heap.resize_in_place(a, bytes(32), bytes(16)) }.unwrap();
    let b = alloc(heap, bytes(16));
    assert_eq!(b.as_ptr().addr(), a.as_ptr().addr() + 16);
    [a, b, alloc(heap, bytes(16))]
}

#[test]
fn check_finds_unmerged_buddies_and_broken_links() {
    let (start, mut heap) = heap_at(0);
    let [a, b, c] = buddies_and_a_third(&mut heap);
    // A live block with more usable bytes than all requests, so that the walk still
    // adds up (requested <= usable) once `b` is shown free.
    let _page = alloc(&mut *heap, Layout::from_size_align(1, REGION / 16).unwrap());
    release(&mut *heap, a, bytes(16));
    release(&mut *heap, c, bytes(16));
    // The bitmap starts the region (at a 64 KiB boundary, so at a word); the taken
    // bits of order 0 come first, one per 16 bytes from the pair of buddies of the
    // first block. Clearing `b`'s makes it and `a` two free buddies side by side.
    let lo = blocks(&*heap)[0].end();
    let (word, bit) = order_0_bit(start, lo, b.as_ptr().addr());
    // SAFETY: a word of the heap's region (so for every `poke` here); then the broken
    // heap is only checked.
    let saved = unsafe { poke(&*heap, word, 0usize) };
    // SAFETY: as above.
    unsafe { poke(&*heap, word, saved & !(1 << bit)) };
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "no two free buddies are left unmerged"
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, word, saved) };
    heap.check().unwrap();
    // `a` is on list 0 (whatever `c` merged into); its link back to the block before
    // it is its second word. Pointing it at `a` itself breaks the list.
    let back_link = a.as_ptr().addr() + 8;
    // SAFETY: as above.
    let saved = unsafe { poke(&*heap, back_link, a.as_ptr().addr()) };
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "list links agree: a listed block links back to the one before it"
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, back_link, saved) };
    heap.check().unwrap();
    // `a`'s taken bit set: the list holds a block its bits call used.
    let (a_word, a_bit) = order_0_bit(start, lo, a.as_ptr().addr());
    // SAFETY: as above.
    let saved = unsafe { poke(&*heap, a_word, 0usize) };
    // SAFETY: as above.
    unsafe { poke(&*heap, a_word, saved | 1 << a_bit) };
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "a listed block has its taken bit clear"
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, a_word, saved) };
    heap.check().unwrap();
    // `a` is alone on list 0: a forward link into the middle of a block adds one that
    // is no block of order 0.
    let next_link = a.as_ptr().addr();
    // SAFETY: as above.
    let saved = unsafe { poke(&*heap, next_link, lo + 8) };
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "a listed block is a block of its list's order"
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, next_link, saved) };
    heap.check().unwrap();
}

/// A heap placed so that its first roots are a 16-byte and a 32-byte block: its blocks
/// start 16 bytes past a multiple of 64. Returns the region's start, where the blocks
/// start, and the heap.
fn heap_with_small_roots() -> (usize, usize, Arena<Buddy>) {
    (0..8)
        .map(|words| heap_at(16 * words))
        .map(|(start, heap)| (start, blocks(&*heap)[0].end(), heap))
        .find(|(_, lo, _)| lo % 64 == 16)
        .expect("an offset that starts the blocks 16 bytes past a multiple of 64")
}

#[test]
fn check_names_a_split_block_whose_bit_is_clear() {
    let (start, lo, heap) = heap_with_small_roots();
    // The 32-byte root: setting the bit of its lower half makes it read as split, while
    // its own bit stays clear, as a free block's is.
    let free = kinds(&*heap, BlockKind::Free)[1];
    assert_eq!(free.size, 32);
    check_names_flipped_bit(&heap, start, lo, free.addr, "a split block is taken");
}

#[test]
fn check_names_a_listed_block_whose_bit_is_set() {
    let (start, lo, heap) = heap_with_small_roots();
    // The 16-byte root at `lo` is free and listed; its bit is the second of its pair
    // (its buddy, the sentinel before `lo`, has the first), so this also sees that the
    // block's own bit, not its buddy's, is the one read.
    check_names_flipped_bit(
        &heap,
        start,
        lo,
        lo,
        "a listed block has its taken bit clear",
    );
}

#[test]
fn check_names_a_root_that_lost_its_sentinel() {
    let (start, lo, mut heap) = heap_with_small_roots();
    // The first root is a 16-byte block, whose buddy, before `lo`, is no block and
    // carries a sentinel.
    let first = alloc(&mut *heap, bytes(16));
    assert_eq!(first.as_ptr().addr(), lo, "the only free 16-byte block");
    check_names_flipped_bit(
        &heap,
        start,
        lo,
        lo - 16,
        "bits are set on taken blocks and on the sentinels of roots only",
    );
    release(&mut *heap, first, bytes(16));
}

#[test]
fn check_names_a_free_block_missing_from_its_list() {
    let (_, mut heap) = heap_at(0);
    // `c` is cut from the next 32 bytes, whose upper half goes on list 0. Freeing `a`
    // puts it in front of that half.
    let [a, b, c] = buddies_and_a_third(&mut heap);
    release(&mut *heap, a, bytes(16));
    let free_16: Vec<usize> = kinds(&*heap, BlockKind::Free)
        .iter()
        .filter(|block| block.size == 16)
        .map(|block| block.addr)
        .collect();
    assert_eq!(free_16, [a.as_ptr().addr(), c.as_ptr().addr() + 16]);
    // `a`'s forward link, its first word, cut: the list ends at `a`, and the half after
    // `c` is free but on no list. The link is taken out and put back as a pointer, with
    // its provenance.
    // SAFETY: a word of a free block in the region; put back before the heap is used.
    let saved = unsafe { poke(&*heap, a.as_ptr().addr(), None::<NonNull<u8>>) };
    assert_eq!(
        heap.check().unwrap_err().invariant,
        "each list holds as many blocks as walk shows free blocks of its order"
    );
    // SAFETY: as above.
    unsafe { poke(&*heap, a.as_ptr().addr(), saved) };
    heap.check().unwrap();
    release(&mut *heap, b, bytes(16));
    release(&mut *heap, c, bytes(16));
}

#[test]
fn check_names_a_listed_block_outside_the_area() {
    // 15 bytes past the last block boundary: a crumb after the area's end.
    let mut heap = Arena::<Buddy>::with_placement(REGION + 15, REGION, 0).unwrap();
    let lo = blocks(&*heap)[0].end();
    let hi = start_of_crumb(&*heap);
    let a = alloc(&mut *heap, bytes(16));
    // `a` came off list 0 and went back alone: its forward link is its first word.
    release(&mut *heap, a, bytes(16));
    // Aligned addresses just outside `[lo, hi)`, on either side, are no blocks.
    for outside in [lo - 16, hi] {
        // SAFETY: a word of a free block in the region; put back before the heap is used.
        let saved = unsafe { poke(&*heap, a.as_ptr().addr(), outside) };
        assert_eq!(
            heap.check().unwrap_err().invariant,
            "a listed block is a block of its list's order",
            "a link to {outside:#x}"
        );
        // SAFETY: as above.
        unsafe { poke(&*heap, a.as_ptr().addr(), saved) };
    }
    heap.check().unwrap();
}

/// Where the blocks end: the start of the overhead after them.
fn start_of_crumb<H: RawHeap>(heap: &H) -> usize {
    let crumb = *blocks(heap).last().unwrap();
    assert_eq!(crumb.kind, BlockKind::Overhead, "{crumb:?}");
    crumb.addr
}

/// An operation of the property test: allocate `size` bytes aligned to `1 << align_log2`,
/// or free the live block at `index` (modulo their number).
#[derive(Clone, Debug)]
enum Op {
    Alloc { size: usize, align_log2: u32 },
    Free { index: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..3000usize, 0..10u32).prop_map(|(size, align_log2)| Op::Alloc { size, align_log2 }),
        any::<usize>().prop_map(|index| Op::Free { index }),
    ]
}

proptest! {
    // No failure file: Miri isolates the test from the file system. Four cases under
    // Miri, where each is slow; the conformance suite adds its own random sequences.
    #![proptest_config(ProptestConfig {
        cases: if cfg!(miri) { 4 } else { ProptestConfig::default().cases },
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every block is a power of two at most twice what the layout asks (size,
    /// alignment and the 16-byte minimum), aligned to its own size; and once every
    /// block is freed, the heap is exactly as new: every buddy merged back.
    #[test]
    fn blocks_are_aligned_powers_of_two_and_freeing_all_restores_the_roots(
        ops in proptest::collection::vec(op(), 0..if cfg!(miri) { 8 } else { 200 }),
        offset in 0..64usize,
    ) {
        let mut heap = Arena::<Buddy>::with_placement(REGION / 2, 4096, offset).unwrap();
        let fresh = blocks(&*heap);
        let mut live: Vec<(NonNull<u8>, Layout)> = Vec::new();
        for op in ops {
            match op {
                Op::Alloc { size, align_log2 } => {
                    let layout = Layout::from_size_align(size, 1 << align_log2).unwrap();
                    if let Ok(ptr) = heap.allocate(layout) {
                        // SAFETY: `ptr` is live with `layout`.
                        let usable = unsafe { heap.usable_size(ptr, layout) };
                        let asked = size.max(layout.align()).max(16);
                        prop_assert!(usable.is_power_of_two() && usable >= asked && usable < 2 * asked);
                        prop_assert_eq!(ptr.as_ptr().addr() % usable, 0);
                        live.push((ptr, layout));
                    }
                }
                Op::Free { index } if !live.is_empty() => {
                    let (ptr, layout) = live.swap_remove(index % live.len());
                    // SAFETY: a live block with its layout, freed once.
                    unsafe { heap.deallocate(ptr, layout) };
                }
                Op::Free { .. } => {}
            }
            // Under Miri, whose every step is slow, only the final heap is checked.
            if !cfg!(miri) {
                prop_assert_eq!(heap.check(), Ok(()));
            }
        }
        for (ptr, layout) in live {
            // SAFETY: as above.
            unsafe { heap.deallocate(ptr, layout) };
        }
        prop_assert_eq!(heap.check(), Ok(()));
        prop_assert_eq!(blocks(&*heap), fresh);
    }
}

#[test]
fn debug_shows_the_region_the_nonempty_orders_and_the_usage() {
    let (_, mut heap) = heap_at(0);
    let before = format!("{:?}", *heap);
    alloc(&mut *heap, bytes(16));
    let after = format!("{:?}", *heap);
    assert!(
        after.starts_with(&format!("Buddy {{ region_len: {REGION}, cover: ")),
        "{after}"
    );
    // Splitting the root for 16 bytes left a free block on every order below it.
    assert!(after.contains("nonempty: 0b"), "{after}");
    assert_ne!(before, after);
    assert!(after.contains("bytes: 16"), "{after}");
    assert!(after.ends_with(", .. }"), "{after}");
}
