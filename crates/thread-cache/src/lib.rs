//! # thread-cache: magazines of free blocks in front of one locked heap
//!
//! A [`Locked`] heap takes its lock on every call: with many threads they queue for it,
//! and the cache line holding the lock and the heap's metadata moves from core to core
//! at each call. Bonwick's *magazines* (Bonwick & Adams, USENIX 2001) put a small stack
//! of free blocks per size class in front of the shared heap, private to each thread:
//! most allocations pop a block from the thread's own stack and most frees push one,
//! with no lock at all. Only when a stack runs empty (refill) or full (flush) does the
//! thread take the lock, and then it moves a whole batch of blocks at once.
//!
//! ```text
//!   thread 1: Magazines                thread 2: Magazines
//!   class  16 B [p p p . . . . .]      class  16 B [p . . . . . . .]
//!   class  32 B [p p . . . . . .]      class  32 B [p p p p p p . .]
//!   ...            │ refill/flush          ...          │
//!   class 512 B [. . . . . . . .]      class 512 B [p . . . . . . .]
//!                  │ BATCH blocks, one lock round-trip   │
//!                  ▼                                     ▼
//!   ┌────────────────────── ThreadCache: Locked<H> ──────────────────────────────┐
//!   │ any RawHeap; blocks of class c are allocated as ((c+1)·16 bytes, align 16) │
//!   └────────────────────────────────────────────────────────────────────────────┘
//!   requests above 512 bytes or aligned above 16 go straight to the locked heap.
//! ```
//!
//! A block may be freed by another thread than the one that allocated it: it lands in
//! the freeing thread's magazine and returns to the heap with that thread's next flush.
//! Each thread holds a [`Magazines`] handle (from [`ThreadCache::magazines`]); dropping
//! it, typically when the thread ends, flushes every block it holds back to the heap.
//! A [`Rack`] is the same magazines without the borrow of their [`ThreadCache`]: the
//! caller takes the heap's lock itself and lends the heap to a refill or a flush. The
//! C library (`heaplab-malloc`) keeps one rack per thread in thread-local storage, and
//! a [`Depot`] (Bonwick's third layer) of full batches under the heap's lock, through
//! which a thread that frees passes whole batches to a thread that allocates.
//!
//! ## Invariants
//!
//! - Every block in a magazine of class `c` is a live block of the shared heap with
//!   layout [`class_layout`]`(c)`, and is held by no program: the magazine owns it.
//! - A magazine's stack holds at most [`ROUNDS`] blocks; a refill brings it to
//!   [`BATCH`], a flush brings it down to `ROUNDS - BATCH`, so that a thread that
//!   alternates allocating and freeing at a boundary does not take the lock each time.
//! - Blocks of cached classes reach the heap only with their class layout, whichever
//!   layout the program used: [`class_of`] maps both to the same class.
//!
//! ## Cost
//!
//! | operation | magazine has room/blocks | otherwise |
//! |---|---|---|
//! | `allocate` | O(1), no lock | one lock, [`BATCH`] heap allocations |
//! | `deallocate` | O(1), no lock | one lock, [`BATCH`] heap frees |
//! | drop of a handle | one lock, a heap free per cached block | |
//!
//! The price is memory: up to `ROUNDS` idle blocks per class per thread, and internal
//! fragmentation from rounding sizes up to a multiple of 16.
#![no_std]

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use lock_api::RawMutex;
use rawheap::{AllocError, Locked, RawHeap};

/// Sizes are rounded up to a multiple of this: the classes are 16, 32, ... bytes.
pub const GRANULE: usize = 16;
/// The largest size kept in magazines; larger requests go straight to the heap.
pub const MAX_CACHED: usize = 512;
/// Number of size classes.
pub const CLASSES: usize = MAX_CACHED / GRANULE;
/// Blocks a magazine holds at most (Bonwick calls them rounds). A program that frees
/// and allocates random classes walks each magazine up and down at random: starting
/// from `BATCH`, it takes about `BATCH²` calls on a class to reach empty or full, and
/// then the lock is taken once for `BATCH` blocks, so the heap does about one call for
/// `BATCH` of the program's. (Under callgrind, `churn.c` of `heaplab-malloc` with one
/// thread made 64 lock round-trips in 400,000 calls.) With 128 rounds, C programs on
/// heaplab's malloc (`cargo xtask bench --c`, medians of 3 interleaved runs on a busy
/// machine) ran 1.2 to 2.5 times faster than with 32, at the price of up to 128 idle
/// blocks per class per thread (jemalloc's thread caches keep up to 200 small ones).
pub const ROUNDS: usize = 128;
/// Blocks moved between a magazine and the heap per lock round-trip.
pub const BATCH: usize = ROUNDS / 2;

// ANCHOR: classes
/// The size class serving `layout`, or `None` when the request bypasses the
/// magazines (size 0, above [`MAX_CACHED`], or aligned above [`GRANULE`]).
#[inline]
pub const fn class_of(layout: Layout) -> Option<usize> {
    if layout.align() > GRANULE {
        return None;
    }
    class_of_size(layout.size())
}

/// The size class serving `size` bytes at an alignment of at most [`GRANULE`], or
/// `None` when the request bypasses the magazines (size 0 or above [`MAX_CACHED`]).
#[inline]
pub const fn class_of_size(size: usize) -> Option<usize> {
    if size == 0 || size > MAX_CACHED {
        return None;
    }
    Some(size.div_ceil(GRANULE) - 1)
}

/// The layout every block of class `class` has in the shared heap.
#[inline]
pub const fn class_layout(class: usize) -> Layout {
    match Layout::from_size_align((class + 1) * GRANULE, GRANULE) {
        Ok(layout) => layout,
        Err(_) => panic!("class sizes are small multiples of 16"),
    }
}
// ANCHOR_END: classes

/// A heap shared by threads, each of which allocates through its own [`Magazines`].
pub struct ThreadCache<H, R: RawMutex = spinning_top::RawSpinlock> {
    /// The heap; it owns every block, cached or handed out.
    shared: Locked<H, R>,
    /// Lock round-trips taken by magazines: refills, flushes and bypassing requests.
    trips: AtomicUsize,
}

impl<H: RawHeap, R: RawMutex> ThreadCache<H, R> {
    /// A cache in front of `heap`.
    pub const fn new(heap: H) -> Self {
        ThreadCache {
            shared: Locked::new(heap),
            trips: AtomicUsize::new(0),
        }
    }

    /// A thread's own magazines, all empty. Drop them to give their blocks back.
    pub fn magazines(&self) -> Magazines<'_, H, R> {
        Magazines {
            cache: self,
            rack: Rack::EMPTY,
        }
    }

    /// The locked heap behind the magazines (for its stats, or to check it).
    pub fn shared(&self) -> &Locked<H, R> {
        &self.shared
    }

    /// How many times magazines have taken the heap's lock so far.
    pub fn trips(&self) -> usize {
        self.trips.load(Ordering::Relaxed)
    }

    /// Runs `f` on the heap under its lock, counting the trip.
    fn trip<T>(&self, f: impl FnOnce(&mut H) -> Result<T, AllocError>) -> Result<T, AllocError> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        self.shared.with(f).unwrap_or(Err(AllocError::Exhausted))
    }
}

/// One magazine: a stack of free blocks of one class.
struct Stack {
    /// `rounds[..len]` are blocks of this stack's class, owned by the magazine.
    rounds: [Option<NonNull<u8>>; ROUNDS],
    /// Number of blocks held, `<= ROUNDS`.
    len: usize,
}

impl Stack {
    const EMPTY: Stack = Stack {
        rounds: [None; ROUNDS],
        len: 0,
    };

    #[inline]
    fn pop(&mut self) -> Option<NonNull<u8>> {
        let top = self.len.checked_sub(1)?;
        self.len = top;
        self.rounds[top].take()
    }

    /// Pushes when there is room; hands the block back otherwise.
    #[inline]
    fn push(&mut self, block: NonNull<u8>) -> Result<(), NonNull<u8>> {
        let slot = self.rounds.get_mut(self.len).ok_or(block)?;
        *slot = Some(block);
        self.len += 1;
        Ok(())
    }
}

/// A thread's magazines, one per size class, without the heap they belong to: the
/// caller takes the heap's lock and lends the heap to [`refill`](Self::refill) and
/// [`flush`](Self::flush). [`Magazines`] is a rack tied to its [`ThreadCache`]; a
/// library that keeps racks where a borrow cannot live (in thread-local storage, say)
/// uses a `Rack` itself.
pub struct Rack {
    /// `stacks[c]` holds blocks of class `c` only, each a live block of the heap the
    /// rack's blocks came from, with layout [`class_layout`]`(c)`, used by nobody.
    stacks: [Stack; CLASSES],
}

impl Rack {
    /// A rack of empty magazines.
    pub const EMPTY: Rack = Rack {
        stacks: [const { Stack::EMPTY }; CLASSES],
    };

    /// A cached block of class `class`, if its magazine has one.
    #[inline]
    pub fn take(&mut self, class: usize) -> Option<NonNull<u8>> {
        self.stacks[class].pop()
    }

    /// Puts a block into its class's magazine; hands it back when the magazine is full
    /// (then [`flush`](Self::flush) makes room).
    ///
    /// # Safety
    ///
    /// `block` is a live block of the heap this rack's blocks come from, with layout
    /// [`class_layout`]`(class)`, and nobody uses it after this call but the rack.
    #[inline]
    pub unsafe fn give(&mut self, class: usize, block: NonNull<u8>) -> Result<(), NonNull<u8>> {
        self.stacks[class].push(block)
    }

    /// Fills class `class`'s magazine up to [`BATCH`] blocks from `heap` (whose lock
    /// the caller holds). Succeeds if at least one block came.
    pub fn refill<H: RawHeap>(&mut self, heap: &mut H, class: usize) -> Result<usize, AllocError> {
        let layout = class_layout(class);
        let stack = &mut self.stacks[class];
        let before = stack.len;
        while stack.len < BATCH {
            match heap.allocate(layout) {
                Ok(block) => {
                    let _ = stack.push(block);
                }
                Err(error) if stack.len == 0 => return Err(error),
                Err(_) => break,
            }
        }
        Ok(stack.len - before)
    }

    /// Returns blocks of class `class` to `heap` until `keep` remain; returns how many
    /// went back.
    ///
    /// # Safety
    ///
    /// `heap` is the heap every block of this rack came from.
    pub unsafe fn flush<H: RawHeap>(&mut self, heap: &mut H, class: usize, keep: usize) -> usize {
        let layout = class_layout(class);
        let stack = &mut self.stacks[class];
        let mut returned = 0;
        while stack.len > keep {
            let Some(block) = stack.pop() else { break };
            // SAFETY: a magazine of class `class` holds live blocks of `heap` (the
            // caller's promise) with `class_layout(class)` that nobody else uses.
            unsafe { heap.deallocate(block, layout) };
            returned += 1;
        }
        returned
    }

    /// Returns every cached block to `heap`; returns how many went back.
    ///
    /// # Safety
    ///
    /// As for [`flush`](Self::flush).
    pub unsafe fn flush_all<H: RawHeap>(&mut self, heap: &mut H) -> usize {
        // SAFETY: forwarded caller promise.
        (0..CLASSES)
            .map(|class| unsafe { self.flush(heap, class, 0) })
            .sum()
    }

    /// Blocks the rack holds, idle.
    pub fn cached(&self) -> usize {
        self.stacks.iter().map(|stack| stack.len).sum()
    }

    /// Blocks the magazine of class `class` holds.
    #[inline]
    pub fn cached_in(&self, class: usize) -> usize {
        self.stacks[class].len
    }
}

/// Full batches of free blocks of each class, kept between the threads' racks and the
/// heap (Bonwick's *depot*), under the heap's lock. When one thread frees what another
/// allocates (a producer and a consumer), the consumer's full magazine leaves a batch
/// here and the producer's empty one takes it whole: two pointer moves per batch
/// instead of [`BATCH`] heap frees and [`BATCH`] heap allocations.
///
/// ```text
///   heads[c] ─► first block of the newest batch ──next──► ... ──► last block (next: null)
///                 │ older (second word)
///                 ▼
///               first block of the previous batch ─► ...
/// ```
///
/// The batches are linked through the free blocks themselves: each block's first word
/// points to the next block of its batch, and a batch's first block's second word to
/// the previous batch (every block is at least [`GRANULE`] = two words).
pub struct Depot {
    /// `heads[c]`: the first block of class `c`'s newest batch, if any. Every batch
    /// holds exactly [`BATCH`] live heap blocks of layout [`class_layout`]`(c)`,
    /// used by nobody.
    heads: [Option<NonNull<u8>>; CLASSES],
    /// `batches[c]`: how many batches `heads[c]` leads, at most [`DEPOT_BATCHES`].
    batches: [usize; CLASSES],
}

/// Batches a depot keeps per class; beyond, a full magazine returns blocks to the heap,
/// so that a thread that frees much and allocates little does not keep them from the
/// heap (where they can coalesce, or serve other sizes).
pub const DEPOT_BATCHES: usize = 8;

/// The two words a block of a depot batch holds.
#[repr(C)]
struct Links {
    /// The next block of the same batch.
    next: Option<NonNull<u8>>,
    /// In a batch's first block: the first block of the previous batch.
    older: Option<NonNull<u8>>,
}

const _: () = assert!(size_of::<Links>() <= GRANULE && align_of::<Links>() <= GRANULE);

impl Depot {
    /// A depot without batches.
    pub const EMPTY: Depot = Depot {
        heads: [None; CLASSES],
        batches: [0; CLASSES],
    };

    /// Blocks the depot holds, all classes.
    pub fn blocks(&self) -> usize {
        self.batches.iter().sum::<usize>() * BATCH
    }
}

impl Rack {
    /// Moves [`BATCH`] blocks of class `class` from this rack's magazine into a new
    /// batch of `depot`; `false` (and nothing moved) when the magazine holds fewer or
    /// the depot has [`DEPOT_BATCHES`] of the class already.
    ///
    /// # Safety
    ///
    /// The caller holds the lock guarding `depot`, and the depot's blocks and this
    /// rack's come from the same heap.
    pub unsafe fn flush_to_depot(&mut self, depot: &mut Depot, class: usize) -> bool {
        let stack = &mut self.stacks[class];
        if stack.len < BATCH || depot.batches[class] == DEPOT_BATCHES {
            return false;
        }
        let mut next = None;
        for _ in 0..BATCH {
            let Some(block) = stack.pop() else { break };
            // SAFETY: a free block of the class, at least two words long and aligned
            // to 16, owned by the rack (now by the depot): nobody else reads it.
            unsafe { block.cast::<Links>().write(Links { next, older: None }) };
            next = Some(block);
        }
        let Some(first) = next else { return false };
        // SAFETY: `first` was just written as a batch block above.
        unsafe { (*first.cast::<Links>().as_ptr()).older = depot.heads[class] };
        depot.heads[class] = Some(first);
        depot.batches[class] += 1;
        true
    }

    /// Moves the newest batch of class `class` from `depot` into this rack's magazine;
    /// returns how many blocks came: [`BATCH`], or 0 when the depot has no batch of
    /// the class or the magazine has no room for one.
    ///
    /// # Safety
    ///
    /// As for [`flush_to_depot`](Self::flush_to_depot).
    pub unsafe fn refill_from_depot(&mut self, depot: &mut Depot, class: usize) -> usize {
        let stack = &mut self.stacks[class];
        let Some(first) = depot.heads[class] else {
            return 0;
        };
        if stack.len + BATCH > ROUNDS {
            return 0;
        }
        // SAFETY: `first` heads a batch the depot owns (written by `flush_to_depot`).
        depot.heads[class] = unsafe { first.cast::<Links>().read() }.older;
        depot.batches[class] -= 1;
        let mut block = Some(first);
        let mut moved = 0;
        while let Some(current) = block {
            // SAFETY: every block of the batch holds its links, written when the batch
            // was made; read before the block goes to the magazine.
            block = unsafe { current.cast::<Links>().read() }.next;
            let _ = stack.push(current);
            moved += 1;
        }
        moved
    }
}

/// A thread's magazines: one stack of free blocks per size class, in front of a
/// [`ThreadCache`]. Dropping it flushes every block back to the shared heap.
pub struct Magazines<'c, H: RawHeap, R: RawMutex = spinning_top::RawSpinlock> {
    cache: &'c ThreadCache<H, R>,
    /// Blocks of `cache`'s heap only.
    rack: Rack,
}

// SAFETY: the blocks a handle holds belong to the shared heap, which is `Sync` when
// `H: Send` and the lock is `Sync`; moving the handle to another thread moves their
// ownership with it, and only `&mut` methods touch them.
unsafe impl<H: RawHeap + Send, R: RawMutex + Sync> Send for Magazines<'_, H, R> {}

impl<H: RawHeap, R: RawMutex> Magazines<'_, H, R> {
    // ANCHOR: allocate
    /// A block of at least `layout.size()` bytes aligned to `layout.align()`: from the
    /// thread's magazine when it has one, else from a batch taken under one lock.
    pub fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let Some(class) = class_of(layout) else {
            return self.cache.trip(|heap| heap.allocate(layout));
        };
        if let Some(block) = self.rack.take(class) {
            return Ok(block);
        }
        let rack = &mut self.rack;
        self.cache.trip(|heap| rack.refill(heap, class))?;
        self.rack.take(class).ok_or(AllocError::Exhausted)
    }

    /// Gives a block back to the thread's magazine; a full magazine first returns a
    /// batch to the heap under one lock.
    ///
    /// # Safety
    ///
    /// `ptr` came from a [`Magazines`] of the same [`ThreadCache`] (any thread's) with
    /// this `layout`, is live, and is not used after this call.
    pub unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let Some(class) = class_of(layout) else {
            let _ = self.cache.trip(|heap| {
                // SAFETY: the caller's promise; blocks that bypass the magazines were
                // allocated from the heap with `layout` itself.
                unsafe { heap.deallocate(ptr, layout) };
                Ok(())
            });
            return;
        };
        // SAFETY: the caller's promise: a live block of this cache's heap, allocated
        // with a layout of class `class`, hence with `class_layout(class)`.
        if let Err(block) = unsafe { self.rack.give(class, ptr) } {
            self.flush_class(class, ROUNDS - BATCH);
            // SAFETY: as above.
            let pushed = unsafe { self.rack.give(class, block) };
            debug_assert!(pushed.is_ok(), "a flushed magazine has room");
        }
    }
    // ANCHOR_END: allocate

    /// Returns blocks of class `class` to the heap, under one lock, until `keep` remain.
    fn flush_class(&mut self, class: usize, keep: usize) {
        let rack = &mut self.rack;
        let _ = self.cache.trip(|heap| {
            // SAFETY: every block of the rack came from this cache's heap.
            Ok(unsafe { rack.flush(heap, class, keep) })
        });
    }

    /// Returns every cached block to the heap (one lock round-trip per non-empty class).
    pub fn flush(&mut self) {
        for class in 0..CLASSES {
            if self.rack.cached_in(class) > 0 {
                self.flush_class(class, 0);
            }
        }
    }

    /// Blocks this thread holds in its magazines, idle.
    pub fn cached(&self) -> usize {
        self.rack.cached()
    }
}

impl<H: RawHeap, R: RawMutex> Drop for Magazines<'_, H, R> {
    /// A thread that ends gives its idle blocks back, so that other threads can use them.
    fn drop(&mut self) {
        self.flush();
    }
}
