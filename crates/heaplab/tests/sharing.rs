//! The wrappers of `rawheap` on real allocators: `Locked` as `GlobalAlloc` and as an
//! `allocator_api2::Allocator`, `StaticHeap`, and `Arena`'s ownership of its region.

use core::alloc::{GlobalAlloc, Layout};

use allocator_api2::vec::Vec as ApiVec;
use heaplab::free_list::FreeList;
use heaplab::{Arena, Locked, Memory, RawHeap, StaticHeap};

/// A free list behind a lock, after the memory it lives in: bindings drop in reverse
/// order, so `let (_memory, heap)` drops the heap first.
fn locked_free_list(bytes: usize) -> (Memory, Locked<FreeList>) {
    let memory = Memory::new(bytes).expect("memory for the test heap");
    // SAFETY: the region belongs to `memory`, which is returned beside the heap and
    // outlives it in every test below.
    let heap = unsafe { FreeList::new(memory.region()) };
    (memory, Locked::new(heap))
}

#[test]
fn a_locked_heap_backs_an_allocator_api_vec() {
    let (_memory, heap) = locked_free_list(64 * 1024);
    let mut numbers = ApiVec::new_in(&heap);
    for i in 0..1_000u32 {
        numbers.push(i); // grows through `grow`, i.e. the heap's reallocate
    }
    assert_eq!(numbers.iter().copied().sum::<u32>(), 999 * 1000 / 2);
    let stats = heap.stats().expect("the heap has a region");
    assert_eq!(stats.live_blocks, 1);
    assert_eq!(stats.requested, numbers.capacity() * 4);
    drop(numbers);
    assert_eq!(heap.stats().expect("region").requested, 0);
}

#[test]
fn zero_sized_allocator_requests_never_reach_the_heap() {
    let (_memory, heap) = locked_free_list(4096);
    let mut nothing: ApiVec<(), _> = ApiVec::new_in(&heap);
    nothing.push(());
    let empty: ApiVec<u64, _> = ApiVec::with_capacity_in(0, &heap);
    assert_eq!(empty.capacity(), 0);
    assert_eq!(heap.stats().expect("region").live_blocks, 0);
}

#[test]
fn global_alloc_answers_failure_with_null_and_keeps_going() {
    let (_memory, heap) = locked_free_list(4096);
    let big = Layout::from_size_align(1 << 20, 8).unwrap();
    // SAFETY: the layout has a non-zero size.
    let refused = unsafe { heap.alloc(big) };
    assert!(
        refused.is_null(),
        "a request larger than the region is refused with null"
    );
    let small = Layout::from_size_align(64, 8).unwrap();
    // SAFETY: non-zero size; the block is freed below with the same layout.
    let block = unsafe { heap.alloc_zeroed(small) };
    assert!(!block.is_null());
    // SAFETY: 64 bytes were just handed out, zeroed.
    let contents = unsafe { core::slice::from_raw_parts(block, 64) };
    assert!(contents.iter().all(|&b| b == 0));
    // SAFETY: `block` is live with `small`; realloc keeps the first 64 bytes.
    let grown = unsafe { heap.realloc(block, small, 512) };
    assert!(!grown.is_null());
    // SAFETY: `grown` is live with 512 bytes at align 8.
    unsafe { heap.dealloc(grown, Layout::from_size_align(512, 8).unwrap()) };
    assert_eq!(heap.stats().expect("region").live_blocks, 0);
}

#[test]
fn an_empty_locked_heap_refuses_until_it_claims_a_region() {
    // Declared before the heap, so dropped after it.
    let memory = Memory::new(4096).expect("memory for the test heap");
    let heap: Locked<FreeList> = Locked::empty();
    let layout = Layout::new::<u64>();
    // SAFETY: non-zero size.
    let refused = unsafe { heap.alloc(layout) };
    assert!(refused.is_null());
    assert_eq!(heap.stats(), None);
    // SAFETY: `memory` outlives `heap` and nothing else uses it.
    let claimed = unsafe { heap.claim(memory.region()) };
    assert!(claimed);
    // SAFETY: as above.
    let claimed_again = unsafe { heap.claim(memory.region()) };
    assert!(!claimed_again, "a second claim is refused");
    // SAFETY: non-zero size.
    let block = unsafe { heap.alloc(layout) };
    assert!(!block.is_null());
    // SAFETY: `block` is live with `layout`.
    unsafe { heap.dealloc(block, layout) };
}

#[test]
fn threads_share_a_locked_heap() {
    let (_memory, heap) = locked_free_list(256 * 1024);
    let threads = if cfg!(miri) { 2 } else { 4 };
    let rounds = if cfg!(miri) { 20 } else { 2_000 };
    std::thread::scope(|scope| {
        for t in 0..threads {
            let heap = &heap;
            scope.spawn(move || {
                for i in 0..rounds {
                    let mut v = ApiVec::with_capacity_in(8, heap);
                    v.extend((0..8u64).map(|k| k * t + i));
                    assert!(v.iter().enumerate().all(|(k, &x)| x == k as u64 * t + i));
                }
            });
        }
    });
    let stats = heap.stats().expect("region");
    assert_eq!((stats.live_blocks, stats.requested), (0, 0));
    heap.with(|h| h.check())
        .expect("region")
        .expect("the heap is consistent after the threads");
}

static STATIC_HEAP: StaticHeap<FreeList, { 64 * 1024 }> = StaticHeap::new();

#[test]
fn a_static_heap_builds_itself_on_first_use() {
    let layout = Layout::from_size_align(100, 32).unwrap();
    // SAFETY: non-zero size.
    let block = unsafe { STATIC_HEAP.alloc(layout) };
    assert!(!block.is_null() && block.addr() % 32 == 0);
    let stats = STATIC_HEAP.stats();
    assert_eq!(stats.region, 64 * 1024);
    assert!(stats.requested >= 100);
    // SAFETY: `block` is live with `layout`.
    unsafe { STATIC_HEAP.dealloc(block, layout) };
}

#[test]
fn an_arena_drops_its_heap_then_its_memory() {
    // Miri reports a leak or a use after free here if the order were wrong.
    let mut arena = Arena::<FreeList>::new(8192);
    let layout = Layout::new::<[u8; 100]>();
    let block = arena.allocate(layout).expect("room for 100 bytes");
    // SAFETY: 100 writable bytes.
    unsafe { block.as_ptr().write_bytes(7, 100) };
    drop(arena); // live block and all: the region goes with the arena
}

#[test]
fn arenas_accept_odd_placements_and_refuse_absurd_sizes() {
    let arena = Arena::<FreeList>::with_placement(1000, 64, 3).expect("a small odd arena");
    assert_eq!(arena.region().cast::<u8>().as_ptr().addr() % 64, 3);
    assert!(Arena::<FreeList>::try_new(usize::MAX).is_err());
}
