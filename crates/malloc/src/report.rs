//! What the program asked for, counted as it runs, and the report printed at exit when
//! `HEAPLAB_STATS=1`.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use crate::heap;
use crate::say::say;

/// Calls and bytes, counted outside the heap's lock with relaxed atomics: each counter
/// is exact, though a report taken while threads run may mix moments.
///
/// The per-call counters are kept only when `HEAPLAB_STATS=1` asks for the report:
/// they are atomic operations on cache lines every thread writes, which would cost a
/// threaded program more than its thread cache saves. Failures are always counted.
pub struct Counts {
    /// Whether the per-call counters are kept (`HEAPLAB_STATS=1`), set before the
    /// first call is counted.
    on: AtomicBool,
    /// Successful `malloc`, `calloc` and aligned allocations (`realloc(NULL, n)` too).
    pub allocations: AtomicUsize,
    /// Calls of `free` (and `realloc(ptr, 0)`) on blocks of the heap.
    pub frees: AtomicUsize,
    /// `realloc` calls that had a block to resize.
    pub reallocs: AtomicUsize,
    /// `free` of pointers this heap never handed out, ignored.
    pub foreign_frees: AtomicUsize,
    /// Requests answered with NULL.
    pub refused: AtomicUsize,
    /// Bytes the program holds now (the sizes it asked for).
    pub live_bytes: AtomicUsize,
    /// The largest `live_bytes` ever reached.
    pub peak_bytes: AtomicUsize,
    /// Free blocks idle in the threads' caches and their depot: live blocks to the
    /// heap, not the program's (see [`crate::cache`]).
    pub cached: AtomicUsize,
    /// Blocks that were in the caches of threads a `fork` did not copy: live to the
    /// child's heap, and nobody's.
    pub stranded: AtomicUsize,
}

/// The process's counters.
pub static COUNTS: Counts = Counts {
    on: AtomicBool::new(false),
    allocations: AtomicUsize::new(0),
    frees: AtomicUsize::new(0),
    reallocs: AtomicUsize::new(0),
    foreign_frees: AtomicUsize::new(0),
    refused: AtomicUsize::new(0),
    live_bytes: AtomicUsize::new(0),
    peak_bytes: AtomicUsize::new(0),
    cached: AtomicUsize::new(0),
    stranded: AtomicUsize::new(0),
};

impl Counts {
    /// Keeps the per-call counters from now on when `on`.
    pub fn switch_on(&self, on: bool) {
        self.on.store(on, Relaxed);
    }

    /// Whether the per-call counters are kept.
    pub fn on(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// A block of `size` bytes was handed out.
    pub fn gained(&self, size: usize) {
        if self.on() {
            self.allocations.fetch_add(1, Relaxed);
            self.grew(size);
        }
    }

    /// A block of `size` bytes came back.
    pub fn lost(&self, size: usize) {
        if self.on() {
            self.frees.fetch_add(1, Relaxed);
            self.live_bytes.fetch_sub(size, Relaxed);
        }
    }

    /// A live block changed from `old` to `new` bytes.
    pub fn resized(&self, old: usize, new: usize) {
        if self.on() {
            self.reallocs.fetch_add(1, Relaxed);
            self.live_bytes.fetch_sub(old, Relaxed);
            self.grew(new);
        }
    }

    /// `count` blocks went into the thread caches (freed, or taken from the heap).
    pub fn cached_more(&self, count: usize) {
        if self.on() {
            self.cached.fetch_add(count, Relaxed);
        }
    }

    /// `count` blocks left the thread caches (handed out, or returned to the heap).
    pub fn cached_fewer(&self, count: usize) {
        if self.on() {
            self.cached.fetch_sub(count, Relaxed);
        }
    }

    /// After `fork`, in the child: of the cached blocks only `kept` belong to a thread
    /// that exists there; the rest are stranded.
    pub fn strand_all_but(&self, kept: usize) {
        if self.on() {
            let all = self.cached.swap(kept, Relaxed);
            self.stranded.fetch_add(all.saturating_sub(kept), Relaxed);
        }
    }

    fn grew(&self, size: usize) {
        let now = self.live_bytes.fetch_add(size, Relaxed) + size;
        self.peak_bytes.fetch_max(now, Relaxed);
    }
}

// ANCHOR: report
/// Prints the exit report to stderr (registered with `atexit` when `HEAPLAB_STATS=1`).
pub extern "C" fn at_exit() {
    let Some(process) = heap::built() else { return };
    let stats = process.heap.stats();
    let c = &COUNTS;
    let get = |counter: &AtomicUsize| counter.load(Relaxed);
    say!(
        "heaplab malloc: {} over {} bytes\n\
         \x20 calls       {} allocations, {} reallocs, {} frees, {} foreign frees ignored, {} refused\n\
         \x20 program     peak {} B requested, {} B in {} blocks at exit\n\
         \x20 caches      {} free blocks idle in thread caches and their depot, {} stranded by fork; live blocks in the heap: {} (the program's + cached + stranded)\n\
         \x20 heap        high-water {} B ({:.1}% of peak requested), reserved {} B, usable {} B\n\
         \x20 at exit     overhead {} B, free {} B, largest free {} B, external fragmentation {:.3}\n",
        process.name,
        stats.region,
        get(&c.allocations),
        get(&c.reallocs),
        get(&c.frees),
        get(&c.foreign_frees),
        get(&c.refused),
        get(&c.peak_bytes),
        get(&c.live_bytes),
        get(&c.allocations).wrapping_sub(get(&c.frees)),
        get(&c.cached),
        get(&c.stranded),
        stats.live_blocks,
        stats.high_water,
        percent(stats.high_water, get(&c.peak_bytes)),
        stats.reserved(),
        stats.usable,
        stats.overhead(),
        stats.free,
        stats.largest_free,
        stats.external_fragmentation(),
    );
}
// ANCHOR_END: report

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}
