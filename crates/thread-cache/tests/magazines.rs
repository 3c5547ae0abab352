//! The magazines' behaviour (reuse without the lock, batches, flushes) on one heap,
//! and threads passing blocks around a ring on every registered allocator.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::sync::mpsc;

use heaplab::free_list::FreeList;
use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::{Memory, RawHeap};
use thread_cache::{
    BATCH, DEPOT_BATCHES, Depot, MAX_CACHED, ROUNDS, Rack, ThreadCache, class_layout, class_of,
};

/// A cache over a free list in fresh memory; the memory is returned first so that it
/// is dropped last.
fn cache(bytes: usize) -> (Memory, ThreadCache<FreeList>) {
    let memory = Memory::new(bytes).expect("memory for the test heap");
    // SAFETY: the region belongs to `memory`, which outlives the cache in every test.
    let heap = unsafe { FreeList::new(memory.region()) };
    (memory, ThreadCache::new(heap))
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("valid test layout")
}

#[test]
fn sizes_round_up_to_classes_and_odd_requests_bypass() {
    assert_eq!(class_of(layout(1, 1)), Some(0));
    assert_eq!(class_of(layout(16, 8)), Some(0));
    assert_eq!(class_of(layout(17, 16)), Some(1));
    assert_eq!(class_of(layout(MAX_CACHED, 4)), Some(MAX_CACHED / 16 - 1));
    assert_eq!(class_of(layout(MAX_CACHED + 1, 4)), None);
    assert_eq!(
        class_of(layout(32, 64)),
        None,
        "alignment above 16 bypasses"
    );
    assert_eq!(class_of(layout(0, 1)), None);
    assert_eq!(class_layout(1), layout(32, 16));
}

#[test]
fn a_freed_block_comes_back_from_the_magazine_without_the_lock() {
    let (_memory, cache) = cache(64 << 10);
    let mut mags = cache.magazines();
    let small = layout(40, 8);
    let first = mags.allocate(small).expect("room");
    assert_eq!(
        cache.trips(),
        1,
        "the first allocation refills the magazine"
    );
    // SAFETY: `first` is live with `small`.
    unsafe { mags.deallocate(first, small) };
    let again = mags.allocate(small).expect("room");
    assert_eq!(
        again, first,
        "the magazine is a stack: last freed, first reused"
    );
    assert_eq!(cache.trips(), 1, "no lock taken for a cached block");
    // SAFETY: `again` is live with `small`.
    unsafe { mags.deallocate(again, small) };
}

#[test]
fn refills_and_flushes_move_batches() {
    let (_memory, cache) = cache(256 << 10);
    let mut mags = cache.magazines();
    let small = layout(24, 8);
    let blocks: Vec<_> = (0..3 * BATCH)
        .map(|_| mags.allocate(small).expect("room"))
        .collect();
    assert_eq!(cache.trips(), 3, "one lock per batch of {BATCH}");
    let live = cache.shared().stats().expect("region").live_blocks;
    assert_eq!(live, 3 * BATCH, "the heap sees the batches as live blocks");
    for &block in &blocks {
        // SAFETY: each block is live with `small`, freed once.
        unsafe { mags.deallocate(block, small) };
    }
    assert_eq!(
        cache.trips(),
        4,
        "freeing {} blocks overflows the magazine of {ROUNDS} once",
        3 * BATCH
    );
    assert_eq!(mags.cached(), 3 * BATCH - BATCH);
    drop(mags);
    let stats = cache.shared().stats().expect("region");
    assert_eq!(
        (stats.live_blocks, stats.requested),
        (0, 0),
        "dropping the magazines gives every block back"
    );
}

#[test]
fn a_rack_counts_what_it_moves_and_gives_it_all_back() {
    let memory = Memory::new(64 << 10).expect("memory for the test heap");
    // SAFETY: the region belongs to `memory`, which outlives the heap.
    let mut heap: FreeList = unsafe { FreeList::new(memory.region()) };
    let mut rack = Rack::EMPTY;
    let class = class_of(layout(40, 8)).expect("a cached size");
    assert_eq!(rack.take(class), None, "a new rack is empty");
    assert_eq!(rack.refill(&mut heap, class), Ok(BATCH));
    assert_eq!(rack.refill(&mut heap, class), Ok(0), "already at a batch");
    assert_eq!((rack.cached(), rack.cached_in(class)), (BATCH, BATCH));
    let mut held: Vec<_> = (0..BATCH)
        .map(|_| rack.take(class).expect("a refilled magazine serves"))
        .collect();
    assert_eq!(rack.cached(), 0);
    while held.len() <= ROUNDS {
        held.push(heap.allocate(class_layout(class)).expect("room"));
    }
    assert_eq!(
        heap.stats().live_blocks,
        ROUNDS + 1,
        "taken or cached, all live"
    );
    let mut refused = Vec::new();
    for block in held {
        // SAFETY: a live block of `heap` with the class's layout, given once.
        if let Err(block) = unsafe { rack.give(class, block) } {
            refused.push(block);
        }
    }
    assert_eq!(refused.len(), 1, "a magazine holds {ROUNDS} blocks");
    // SAFETY: `heap` is where the rack's blocks come from.
    let flushed = unsafe { rack.flush(&mut heap, class, ROUNDS - BATCH) };
    assert_eq!(flushed, BATCH);
    // SAFETY: as above.
    assert_eq!(unsafe { rack.flush_all(&mut heap) }, ROUNDS - BATCH);
    // SAFETY: the refused block is live with the class's layout, freed once.
    unsafe { heap.deallocate(refused[0], class_layout(class)) };
    assert_eq!((rack.cached(), heap.stats().live_blocks), (0, 0));
}

#[test]
fn a_depot_passes_whole_batches_from_the_rack_that_frees_to_the_rack_that_allocates() {
    let memory = Memory::new(1 << 20).expect("memory for the test heap");
    // SAFETY: the region belongs to `memory`, which outlives the heap.
    let mut heap: FreeList = unsafe { FreeList::new(memory.region()) };
    let mut depot = Depot::EMPTY;
    let (mut consumer, mut producer) = (Rack::EMPTY, Rack::EMPTY);
    let class = class_of(layout(100, 8)).expect("a cached size");
    let batches = DEPOT_BATCHES + 1;
    let blocks: Vec<_> = (0..batches * BATCH)
        .map(|_| heap.allocate(class_layout(class)).expect("room"))
        .collect();
    let mut left = blocks.iter().copied();
    let mut queued = 0;
    for _ in 0..batches {
        for block in left.by_ref().take(BATCH) {
            // SAFETY: a live block of `heap` with the class's layout, given once.
            assert!(unsafe { consumer.give(class, block) }.is_ok());
        }
        // SAFETY: one thread, one heap: nothing else touches the depot.
        if unsafe { consumer.flush_to_depot(&mut depot, class) } {
            queued += 1;
        }
    }
    assert_eq!(
        queued, DEPOT_BATCHES,
        "the depot keeps {DEPOT_BATCHES} batches"
    );
    assert_eq!(depot.blocks(), DEPOT_BATCHES * BATCH);
    assert_eq!(
        consumer.cached(),
        BATCH,
        "the batch the depot refused stays"
    );
    let mut taken = Vec::new();
    for _ in 0..DEPOT_BATCHES {
        // SAFETY: one thread, one heap: nothing else touches the depot.
        let moved = unsafe { producer.refill_from_depot(&mut depot, class) };
        assert_eq!(moved, BATCH);
        while let Some(block) = producer.take(class) {
            taken.push(block);
        }
    }
    // SAFETY: as above.
    assert_eq!(unsafe { producer.refill_from_depot(&mut depot, class) }, 0);
    taken.sort();
    let mut queued_blocks = blocks[..DEPOT_BATCHES * BATCH].to_vec();
    queued_blocks.sort();
    assert_eq!(
        taken, queued_blocks,
        "every block came out once, none other"
    );
    for block in taken {
        // SAFETY: each block is live with the class's layout, freed once.
        unsafe { heap.deallocate(block, class_layout(class)) };
    }
    // SAFETY: the rack's blocks come from `heap`.
    unsafe { consumer.flush_all(&mut heap) };
    assert_eq!(heap.stats().live_blocks, 0);
}

#[test]
fn large_and_overaligned_requests_go_to_the_heap_each_time() {
    let (_memory, cache) = cache(64 << 10);
    let mut mags = cache.magazines();
    for request in [layout(MAX_CACHED + 1, 8), layout(64, 64)] {
        let before = cache.trips();
        let block = mags.allocate(request).expect("room");
        assert_eq!(block.as_ptr().addr() % request.align(), 0);
        // SAFETY: `block` is live with `request`.
        unsafe { mags.deallocate(block, request) };
        assert_eq!(cache.trips(), before + 2);
        assert_eq!(mags.cached(), 0);
    }
    assert_eq!(
        mags.allocate(layout(0, 1)),
        Err(heaplab::AllocError::ZeroSize)
    );
}

#[test]
fn an_exhausted_heap_refuses_and_stays_usable() {
    let (_memory, cache) = cache(4096);
    let mut mags = cache.magazines();
    let big = layout(MAX_CACHED, 16);
    let mut held = Vec::new();
    while let Ok(block) = mags.allocate(big) {
        held.push(block);
    }
    assert!(!held.is_empty(), "a 4 KiB heap serves some 512-byte blocks");
    for block in held {
        // SAFETY: each block is live with `big`.
        unsafe { mags.deallocate(block, big) };
    }
    assert!(mags.allocate(big).is_ok(), "freed blocks serve again");
}

#[test]
fn a_refill_cut_short_by_exhaustion_still_serves_every_block_the_heap_has() {
    // How many blocks of the largest class the heap alone holds.
    let (_memory, alone) = cache(4096);
    let class = class_of(layout(MAX_CACHED, 16)).unwrap();
    let whole = alone
        .shared()
        .with(|heap| {
            let mut count = 0;
            while heap.allocate(class_layout(class)).is_ok() {
                count += 1;
            }
            count
        })
        .unwrap();
    assert!(0 < whole && whole < BATCH, "a refill runs out of heap");
    // The magazines take them all in one refill, and hand every one out.
    let (_memory, cache) = cache(4096);
    let mut mags = cache.magazines();
    let mut served = 0;
    while mags.allocate(layout(MAX_CACHED, 16)).is_ok() {
        served += 1;
    }
    assert_eq!(served, whole);
    assert_eq!(cache.trips(), 2, "one refill, then one that finds nothing");
}

#[test]
fn a_class_the_heap_can_never_serve_is_refused_with_the_heaps_own_answer() {
    // 128 bytes hold a block of 96 at most: 512-byte blocks are unsupported, not
    // merely exhausted, and the magazines say so as the heap does.
    let (_memory, cache) = cache(128);
    let class = class_of(layout(MAX_CACHED, 16)).unwrap();
    let direct = cache
        .shared()
        .with(|heap| heap.allocate(class_layout(class)));
    assert_eq!(direct, Some(Err(heaplab::AllocError::Unsupported)));
    let mut mags = cache.magazines();
    assert_eq!(
        mags.allocate(layout(MAX_CACHED, 16)),
        Err(heaplab::AllocError::Unsupported)
    );
}

#[test]
fn dropping_the_magazines_flushes_each_non_empty_class_under_one_lock() {
    let (_memory, cache) = cache(64 << 10);
    let mut mags = cache.magazines();
    for size in [24, 200] {
        let block = mags.allocate(layout(size, 8)).expect("room");
        // SAFETY: `block` is live with this layout, freed once.
        unsafe { mags.deallocate(block, layout(size, 8)) };
    }
    assert_eq!((cache.trips(), mags.cached()), (2, 2 * BATCH));
    drop(mags);
    assert_eq!(cache.trips(), 4, "two classes held blocks: two trips");
    assert_eq!(cache.shared().stats().expect("region").live_blocks, 0);
}

/// Blocks each thread allocates in the ring test.
const ROUNDS_PER_THREAD: usize = if cfg!(miri) { 30 } else { 4_000 };
const THREADS: usize = if cfg!(miri) { 3 } else { 4 };
/// Sizes in the ring test are `1..=SPREAD` bytes: past `MAX_CACHED`, so that some bypass
/// the magazines; under Miri a few classes only, since each refill takes a batch.
const SPREAD: usize = if cfg!(miri) { 64 } else { 600 };

struct Parcel(NonNull<u8>, Layout, u8);

// SAFETY: a parcel moves through a channel; only its receiver touches the block.
unsafe impl Send for Parcel {}

fn check(parcel: &Parcel, name: &str) {
    // SAFETY: the block is live, `parcel.1.size()` bytes, owned by this thread now.
    let bytes = unsafe { core::slice::from_raw_parts(parcel.0.as_ptr(), parcel.1.size()) };
    assert!(
        bytes.iter().all(|&b| b == parcel.2),
        "{name}: a block changed while it travelled"
    );
}

struct Ring;

impl HeapVisitor for Ring {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        // Room for every block at once: bump reclaims almost nothing.
        let memory = Memory::new(THREADS * ROUNDS_PER_THREAD * (SPREAD + 100) + (64 << 10))
            .expect("memory for the ring");
        // SAFETY: `memory` outlives the cache (declared first, dropped last).
        let cache: ThreadCache<H> = ThreadCache::new(unsafe { H::new(memory.region()) });
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..THREADS).map(|_| mpsc::channel::<Parcel>()).unzip();
        let mut senders = senders;
        senders.rotate_left(1);
        std::thread::scope(|scope| {
            for (t, (to_next, from_previous)) in senders.into_iter().zip(receivers).enumerate() {
                let cache = &cache;
                scope.spawn(move || {
                    let mut mags = cache.magazines();
                    for i in 0..ROUNDS_PER_THREAD {
                        let request = layout(1 + (i * 53 + t * 7) % SPREAD, [1, 8, 16, 32][i % 4]);
                        let block = mags.allocate(request).unwrap_or_else(|e| {
                            panic!("{}: thread {t} refused {request:?}: {e:?}", entry.name)
                        });
                        let seed = (i + t) as u8;
                        // SAFETY: `request.size()` writable bytes.
                        unsafe { block.as_ptr().write_bytes(seed, request.size()) };
                        to_next
                            .send(Parcel(block, request, seed))
                            .expect("the next thread listens");
                        while let Ok(parcel) = from_previous.try_recv() {
                            check(&parcel, entry.name);
                            // SAFETY: the block came from a magazine of this cache with
                            // this layout and is freed once.
                            unsafe { mags.deallocate(parcel.0, parcel.1) };
                        }
                    }
                    drop(to_next);
                    for parcel in from_previous {
                        check(&parcel, entry.name);
                        // SAFETY: as above.
                        unsafe { mags.deallocate(parcel.0, parcel.1) };
                    }
                });
            }
        });
        let stats = cache.shared().stats().expect("region");
        assert_eq!(
            (stats.live_blocks, stats.requested),
            (0, 0),
            "{}: every block is back in the heap once the threads' magazines are dropped",
            entry.name
        );
        cache
            .shared()
            .with(|heap| heap.check())
            .expect("region")
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
    }
}

#[test]
fn threads_free_each_others_blocks_through_their_own_magazines() {
    for_each_heap(&mut Ring);
}
