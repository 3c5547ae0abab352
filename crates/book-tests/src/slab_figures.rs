//! The slab chapter's figures: where a slab heap's bytes go at the peak of each trace
//! (the size classes' rounding, the tails and headers of slabs, the free objects), and
//! the state of every cache at the peak of one trace.
//!
//! The heap is driven through the trace here rather than through `replay`, because the
//! figures read the slab heap's own account of its caches ([`slab::Slab::caches`]),
//! which only the heap itself can give.

use std::alloc::Layout;
use std::fmt::Write as _;
use std::io;
use std::ptr::NonNull;

use heaplab::buddy::Buddy;
use heaplab::slab::{self, Slab};
use heaplab::{Arena, RawHeap, Stats};
use trace::format::served_size;
use trace::{Op, Trace, Workload};

use crate::figures::{Output, peak_moment};

/// The trace whose caches the chapter draws.
const DRAWN: Workload = Workload::RandomMixed;

/// The alignment of every traced request, as replay and the benches use.
const ALIGN: usize = 8;

/// Writes `slab-waste.md` and `slab-states.md`.
pub fn generate(out: &mut Output, traces: &[(Workload, Trace)]) -> io::Result<()> {
    let mut waste = String::from(
        "| workload | requested | size-class rounding | slab tails | slab headers | free objects | empty slabs |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut states = String::new();
    for (workload, trace) in traces {
        let heap = at_peak(trace);
        let peak = Peak::of(&heap);
        let _ = writeln!(
            waste,
            "| {} | {} | {} | {} | {} | {} | {} |",
            workload.name(),
            peak.stats.requested,
            cell(
                peak.stats.usable - peak.stats.requested,
                peak.stats.requested
            ),
            cell(peak.tails, peak.stats.requested),
            cell(peak.headers, peak.stats.requested),
            cell(peak.free_objects, peak.stats.requested),
            peak.empty_slabs,
        );
        if *workload == DRAWN {
            states = states_table(&heap, workload.name());
        }
    }
    out.write("slab-waste.md", waste)?;
    out.write("slab-states.md", states)
}

/// `bytes`, and their share of `requested`.
fn cell(bytes: usize, requested: usize) -> String {
    format!(
        "{bytes} ({:.1}%)",
        bytes as f64 * 100.0 / requested.max(1) as f64
    )
}

/// A `Slab<Buddy>` heap of the trace's suggested size, after the trace's operations
/// up to the moment its live bytes peak.
fn at_peak(trace: &Trace) -> Arena<Slab<Buddy>> {
    let mut heap = Arena::<Slab<Buddy>>::new(trace.suggested_heap());
    let mut live: Vec<Option<(NonNull<u8>, Layout)>> = vec![None; trace.num_ids()];
    let layout = |size| Layout::from_size_align(served_size(size), ALIGN).expect("a trace size");
    for op in &trace.ops()[..peak_moment(trace)] {
        match *op {
            Op::Alloc { id, size } => {
                live[id] = heap
                    .allocate(layout(size))
                    .ok()
                    .map(|ptr| (ptr, layout(size)));
            }
            Op::Free { id } => {
                if let Some((ptr, old)) = live[id].take() {
                    // SAFETY: the block is live in this heap with `old`.
                    unsafe { heap.deallocate(ptr, old) };
                }
            }
            Op::Realloc { id, size } => {
                if let Some((ptr, old)) = live[id] {
                    // SAFETY: the block is live in this heap with `old`; on failure it
                    // stays live and is kept.
                    if let Ok(moved) = unsafe { heap.reallocate(ptr, old, layout(size)) } {
                        live[id] = Some((moved, layout(size)));
                    }
                }
            }
        }
    }
    heap
}

/// Where the bytes of a slab heap are, beside its stats.
struct Peak {
    stats: Stats,
    /// Bytes past the last object of every slab, before its header.
    tails: usize,
    /// Bytes of the slabs' headers.
    headers: usize,
    /// Bytes of free objects in slabs with something live.
    free_objects: usize,
    /// Empty slabs held in reserve.
    empty_slabs: usize,
}

impl Peak {
    fn of(heap: &Slab<Buddy>) -> Peak {
        let caches: Vec<_> = heap.caches().collect();
        let in_use = |c: &slab::CacheStats| c.full + c.partial;
        Peak {
            stats: heap.stats(),
            tails: caches.iter().map(slab::CacheStats::tail_bytes).sum(),
            headers: caches.iter().map(|c| c.slabs() * slab::HEADER).sum(),
            free_objects: caches
                .iter()
                .map(|c| (in_use(c) * c.objects_per_slab() - c.live) * c.object_size)
                .sum(),
            empty_slabs: caches.iter().map(|c| c.empty).sum(),
        }
    }
}

/// Every cache of `heap`: its slabs by state, its objects and its tail.
fn states_table(heap: &Slab<Buddy>, workload: &str) -> String {
    let mut table = format!(
        "The caches of `Slab<Buddy>` at the peak of the {workload} trace:\n\n\
         | object size | objects per slab | full | partial | empty | live objects | free objects | tail per slab |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    );
    for cache in heap.caches().filter(|cache| cache.slabs() > 0) {
        let _ = writeln!(
            table,
            "| {} | {} | {} | {} | {} | {} | {} | {} B |",
            cache.object_size,
            cache.objects_per_slab(),
            cache.full,
            cache.partial,
            cache.empty,
            cache.live,
            cache.objects() - cache.live,
            cache.tail_per_slab(),
        );
    }
    table
}
