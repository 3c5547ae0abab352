//! What the program asked for, counted as it runs, and the report printed at exit when
//! `HEAPLAB_STATS=1`.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::heap;
use crate::say::say;

/// Calls and bytes, counted outside the heap's lock with relaxed atomics: each counter
/// is exact, though a report taken while threads run may mix moments.
pub struct Counts {
    /// Successful `malloc`, `calloc`, `realloc` and aligned allocations.
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
}

/// The process's counters.
pub static COUNTS: Counts = Counts {
    allocations: AtomicUsize::new(0),
    frees: AtomicUsize::new(0),
    reallocs: AtomicUsize::new(0),
    foreign_frees: AtomicUsize::new(0),
    refused: AtomicUsize::new(0),
    live_bytes: AtomicUsize::new(0),
    peak_bytes: AtomicUsize::new(0),
};

impl Counts {
    /// A block of `size` bytes was handed out.
    pub fn gained(&self, size: usize) {
        self.allocations.fetch_add(1, Relaxed);
        self.grew(size);
    }

    /// A block of `size` bytes came back.
    pub fn lost(&self, size: usize) {
        self.frees.fetch_add(1, Relaxed);
        self.live_bytes.fetch_sub(size, Relaxed);
    }

    /// A live block changed from `old` to `new` bytes.
    pub fn resized(&self, old: usize, new: usize) {
        self.reallocs.fetch_add(1, Relaxed);
        self.live_bytes.fetch_sub(old, Relaxed);
        self.grew(new);
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
