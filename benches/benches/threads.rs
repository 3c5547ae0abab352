//! Throughput against thread count: every allocator that reuses memory behind one lock
//! (`Locked<H>`), the same heap behind per-thread magazines (`ThreadCache<H>`), and the
//! system allocator, with 1, 2 and 4 threads.
//!
//! Two workloads. In *private churn* each thread churns its own working set: a ring of
//! `LIVE` blocks, in which every step frees the oldest block and allocates a new one of
//! a size between 16 and 256 bytes, writing its first byte. Threads share nothing but
//! the allocator, so any slowdown with more threads is the allocator's: waiting for the
//! lock and moving its cache lines between cores. In *producer–consumer* threads work in
//! pairs: one allocates blocks and passes them through slots to the other, which frees
//! them, so blocks pile up in the consumer's magazines and drain from the producer's,
//! and the caching layer must move them through the lock in batches. The tables
//! (million operations per second, all threads together, best of `TRIES` runs) go to
//! `target/bench/threads.md`, for the book.
//!
//! `cargo bench -p heaplab-benches --bench threads`

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::ptr::NonNull;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::{Locked, Memory, RawHeap, Reuse};
use thread_cache::ThreadCache;

/// Thread counts measured. The machine that runs the book's benches has 2 cores, so
/// 4 threads also measure what happens when lock holders are preempted.
const THREADS: [usize; 3] = [1, 2, 4];
/// Allocations per thread per run (each is also a free).
const STEPS: usize = 200_000;
/// Blocks each thread keeps live.
const LIVE: usize = 64;
/// Runs per measurement; the best is kept, the others absorb noise from other work.
const TRIES: usize = 3;
/// Region of each heap: every thread's working set many times over.
const REGION: usize = 32 << 20;

/// The `step`-th request of a thread.
fn layout(step: usize, thread: usize) -> Layout {
    let size = 16 + (step * 37 + thread * 11) % 241;
    Layout::from_size_align(size, 8).expect("small layout")
}

/// Something every thread can allocate from, through a per-thread front end.
trait Shared: Sync {
    /// One thread's handle (its magazines, or just a reference).
    type Front<'a>: Front
    where
        Self: 'a;
    fn front(&self) -> Self::Front<'_>;
}

trait Front {
    fn alloc(&mut self, layout: Layout) -> NonNull<u8>;
    /// # Safety
    /// `ptr` came from this allocator with `layout`.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);
}

/// One thread's churn through `front`.
fn churn(mut front: impl Front, thread: usize) {
    let mut ring: [Option<(NonNull<u8>, Layout)>; LIVE] = [None; LIVE];
    for step in 0..STEPS {
        let slot = &mut ring[step % LIVE];
        if let Some((ptr, layout)) = slot.take() {
            // SAFETY: allocated below with this layout, freed once.
            unsafe { front.free(ptr, layout) };
        }
        let layout = layout(step, thread);
        let ptr = front.alloc(layout);
        // SAFETY: a fresh block of at least one byte.
        unsafe { ptr.as_ptr().write(step as u8) };
        *slot = Some((ptr, layout));
    }
    for (ptr, layout) in ring.into_iter().flatten() {
        // SAFETY: as above.
        unsafe { front.free(ptr, layout) };
    }
}

/// Slots through which threads hand blocks to each other: `LIVE` per pair of threads.
struct Slots(Vec<AtomicPtr<u8>>);

impl Slots {
    fn new(threads: usize) -> Self {
        Slots(
            (0..threads.div_ceil(2) * LIVE)
                .map(|_| AtomicPtr::default())
                .collect(),
        )
    }

    /// The size a handed-off block was allocated with, written in its first word.
    fn layout_of(ptr: NonNull<u8>) -> Layout {
        // SAFETY: every handed-off block is at least 16 bytes, aligned to 8, and starts
        // with its size, written before it was published with release ordering.
        let size = unsafe { ptr.cast::<usize>().read() };
        Layout::from_size_align(size, 8).expect("a size this bench wrote")
    }

    /// Frees whatever is left in the slots once the threads are done.
    fn drain(&mut self, front: &mut impl Front) {
        for slot in &mut self.0 {
            if let Some(ptr) = NonNull::new(*slot.get_mut()) {
                // SAFETY: the block was allocated with the size it holds, and the slot
                // owned it.
                unsafe { front.free(ptr, Self::layout_of(ptr)) };
            }
        }
    }
}

/// Set by each producer when it is done, so that its consumer knows when to stop.
struct Done(Vec<AtomicBool>);

/// Spins a producer waits for its consumer to empty a slot before taking it back.
const PATIENCE: usize = 32;

/// One thread of a producer–consumer pair: the producer (even thread) allocates
/// `STEPS` blocks, publishing each in the next of the pair's slots (and freeing the
/// block it displaces when the consumer has not taken it within [`PATIENCE`] spins);
/// the consumer (odd thread) sweeps the slots, freeing what it finds, until the producer
/// is done. A lone thread produces and consumes in turn.
fn pass_on(mut front: impl Front, thread: usize, threads: usize, slots: &Slots, done: &Done) {
    let pair = &slots.0[thread / 2 * LIVE..][..LIVE];
    let finished = &done.0[thread / 2];
    let alone = threads == 1;
    if alone || thread.is_multiple_of(2) {
        for step in 0..STEPS {
            let layout = layout(step, thread);
            let ptr = front.alloc(layout);
            // SAFETY: a fresh block of at least 16 bytes, aligned to 8.
            unsafe { ptr.cast::<usize>().write(layout.size()) };
            let slot = &pair[step % LIVE];
            // Give a running consumer a moment to empty the slot; a descheduled one is
            // not waited for (4 threads share 2 cores).
            for _ in 0..PATIENCE {
                if slot.load(Ordering::Relaxed).is_null() {
                    break;
                }
                std::hint::spin_loop();
            }
            let displaced = slot.swap(ptr.as_ptr(), Ordering::AcqRel);
            if let Some(old) = NonNull::new(displaced) {
                // SAFETY: the swap gave this thread sole ownership of the old block.
                unsafe { front.free(old, Slots::layout_of(old)) };
            }
            if alone {
                take(&mut front, slot);
            }
        }
        finished.store(true, Ordering::Release);
    } else {
        while !finished.load(Ordering::Acquire) {
            for slot in pair {
                take(&mut front, slot);
            }
        }
    }
}

/// Empties `slot`, freeing the block it held if any.
fn take(front: &mut impl Front, slot: &AtomicPtr<u8>) {
    if let Some(block) = NonNull::new(slot.swap(std::ptr::null_mut(), Ordering::AcqRel)) {
        // SAFETY: the swap gave this thread sole ownership of the block, allocated with
        // the size it holds.
        unsafe { front.free(block, Slots::layout_of(block)) };
    }
}

/// The two workloads.
#[derive(Clone, Copy)]
enum Pattern {
    Private,
    ProducerConsumer,
}

/// Million operations (allocations and frees) per second over `threads` threads, best of
/// [`TRIES`].
fn throughput(shared: &impl Shared, threads: usize, pattern: Pattern) -> f64 {
    let best = (0..TRIES)
        .map(|_| {
            let mut slots = Slots::new(threads);
            let done = Done(
                (0..threads.div_ceil(2))
                    .map(|_| AtomicBool::new(false))
                    .collect(),
            );
            // Every thread starts work at once, so that a fast thread does not finish
            // before the others are even scheduled.
            let start = Barrier::new(threads);
            let started = Instant::now();
            std::thread::scope(|scope| {
                for thread in 0..threads {
                    let (slots, done, start) = (&slots, &done, &start);
                    scope.spawn(move || {
                        start.wait();
                        match pattern {
                            Pattern::Private => churn(shared.front(), thread),
                            Pattern::ProducerConsumer => {
                                pass_on(shared.front(), thread, threads, slots, done)
                            }
                        }
                    });
                }
            });
            let took = started.elapsed();
            slots.drain(&mut shared.front());
            took
        })
        .min()
        .unwrap_or(Duration::MAX);
    (2 * STEPS * allocating(threads, pattern)) as f64 / best.as_secs_f64() / 1e6
}

/// Threads that allocate: all of them, or the producers.
fn allocating(threads: usize, pattern: Pattern) -> usize {
    match pattern {
        Pattern::Private => threads,
        Pattern::ProducerConsumer => threads.div_ceil(2),
    }
}

struct Plain<'a, H: RawHeap>(&'a Locked<H>);

impl<H: RawHeap + Send> Shared for Locked<H> {
    type Front<'a>
        = Plain<'a, H>
    where
        H: 'a;
    fn front(&self) -> Plain<'_, H> {
        Plain(self)
    }
}

impl<H: RawHeap> Front for Plain<'_, H> {
    fn alloc(&mut self, layout: Layout) -> NonNull<u8> {
        // SAFETY: non-zero size.
        NonNull::new(unsafe { self.0.alloc(layout) }).expect("the bench region suffices")
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.0.dealloc(ptr.as_ptr(), layout) }
    }
}

impl<H: RawHeap + Send> Shared for ThreadCache<H> {
    type Front<'a>
        = thread_cache::Magazines<'a, H>
    where
        H: 'a;
    fn front(&self) -> thread_cache::Magazines<'_, H> {
        self.magazines()
    }
}

impl<H: RawHeap> Front for thread_cache::Magazines<'_, H> {
    fn alloc(&mut self, layout: Layout) -> NonNull<u8> {
        self.allocate(layout).expect("the bench region suffices")
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.deallocate(ptr, layout) }
    }
}

struct SystemFront;

impl Shared for System {
    type Front<'a> = SystemFront;
    fn front(&self) -> SystemFront {
        SystemFront
    }
}

impl Front for SystemFront {
    fn alloc(&mut self, layout: Layout) -> NonNull<u8> {
        // SAFETY: non-zero size.
        NonNull::new(unsafe { System.alloc(layout) }).expect("the system allocator serves")
    }
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { System.dealloc(ptr.as_ptr(), layout) }
    }
}

/// One table row: a name and its throughput per thread count.
struct Row {
    name: String,
    mops: Vec<f64>,
    /// Lock round-trips per operation, for the caching layer.
    trips_per_op: Option<f64>,
}

fn measure(
    name: String,
    shared: &impl Shared,
    pattern: Pattern,
    trips: impl Fn() -> Option<usize>,
) -> Row {
    let before = trips();
    let mops = THREADS
        .iter()
        .map(|&t| throughput(shared, t, pattern))
        .collect();
    let ops: usize = THREADS
        .iter()
        .map(|&t| 2 * STEPS * allocating(t, pattern) * TRIES)
        .sum();
    let trips_per_op = before
        .zip(trips())
        .map(|(before, after)| (after - before) as f64 / ops as f64);
    println!("{name:<32} {mops:.2?} Mops/s");
    Row {
        name,
        mops,
        trips_per_op,
    }
}

struct Heaps(Vec<Row>, Pattern);

impl HeapVisitor for Heaps {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        let memory = Memory::new(REGION).expect("bench region");
        // SAFETY: `memory` outlives `locked`, which is declared after it and dropped
        // first; the cache below gets memory of its own.
        let locked: Locked<H> = Locked::new(unsafe { H::new(memory.region()) });
        let reuse = locked.with(|heap| heap.capabilities().reuse);
        if reuse != Some(Reuse::Any) {
            return; // a heap that cannot reuse blocks cannot churn
        }
        self.0.push(measure(
            format!("Locked<{}>", entry.name),
            &locked,
            self.1,
            || None,
        ));
        drop(locked);
        let memory = Memory::new(REGION).expect("bench region");
        // SAFETY: `memory` outlives the cache, which is declared after it.
        let cache: ThreadCache<H> = ThreadCache::new(unsafe { H::new(memory.region()) });
        self.0.push(measure(
            format!("ThreadCache<{}>", entry.name),
            &cache,
            self.1,
            || Some(cache.trips()),
        ));
    }
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from("| allocator |");
    for t in THREADS {
        let _ = write!(out, " {t} thread{} |", if t == 1 { "" } else { "s" });
    }
    out.push_str(" 4 threads ÷ 1 | lock trips per 1000 ops |\n|---|");
    out.push_str(&"---:|".repeat(THREADS.len() + 2));
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| {} |", row.name);
        for mops in &row.mops {
            let _ = write!(out, " {mops:.1} |");
        }
        let scaling = row.mops[THREADS.len() - 1] / row.mops[0];
        let trips = match (row.name.as_str(), row.trips_per_op) {
            ("system", _) => "—".to_owned(),
            (_, None) => "1000".to_owned(),
            (_, Some(per_op)) => format!("{:.1}", per_op * 1000.0),
        };
        let _ = writeln!(out, " {scaling:.2} | {trips} |");
    }
    out
}

fn rows(pattern: Pattern) -> Vec<Row> {
    let mut heaps = Heaps(Vec::new(), pattern);
    for_each_heap(&mut heaps);
    let mut rows = heaps.0;
    rows.push(measure("system".to_owned(), &System, pattern, || None));
    rows
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and expects
    // a quick run: measure only then.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = String::new();
    for (pattern, title) in [
        (
            Pattern::Private,
            "Private churn: each thread frees its own blocks",
        ),
        (
            Pattern::ProducerConsumer,
            "Producer–consumer: even threads allocate, odd threads free what they receive",
        ),
    ] {
        println!("\n{title}");
        let _ = writeln!(out, "**{title}**\n\n{}", table(&rows(pattern)));
    }
    let _ = writeln!(
        out,
        "Million operations (allocations and frees) per second, all threads together, best of \
         {TRIES} runs of {STEPS} allocations per thread, with {LIVE} live blocks of 16 to 256 \
         bytes per thread; measured on a machine with {cores} cores shared with other work, so \
         4 threads oversubscribe it and the numbers are noisy. `Locked` takes its spinlock on \
         every operation; `ThreadCache` only to move a batch of {} blocks.",
        thread_cache::BATCH
    );
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/threads.md");
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).expect("target/bench can be created");
    }
    std::fs::write(&file, &out).expect("target/bench/threads.md can be written");
    println!("\n{out}\nwritten to {}", file.display());
}
