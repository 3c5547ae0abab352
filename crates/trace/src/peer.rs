//! Measuring an allocator that is not a [`rawheap::RawHeap`] (a peer crate such as rlsf,
//! talc, linked_list_allocator or buddy_system_allocator) on the same traces as the
//! heaplab heaps, so that one table puts them side by side.
//!
//! A peer is seen only through its calls, a [`RegionTarget`]: it has no `stats` and no
//! `walk`. What can still be measured without trusting it:
//!
//! * the smallest region in which the trace completes ([`min_region_of`]), the fair
//!   utilization, exactly as for a heaplab heap;
//! * throughput ([`time_target`]), the same timing loop;
//! * refused requests at the trace's region;
//! * a high-water mark: the highest byte of any block the peer handed out. A peer's
//!   headers after its highest block are not seen, so this is a lower bound of its real
//!   high-water mark and the utilization it gives an upper bound, in the peer's favour.
//!
//! Fragmentation needs the heap's own stats, so a peer's [`Measurement`] leaves it out
//! ([`Measurement::peer`]).

use std::alloc::Layout;
use std::ptr::NonNull;

use crate::format::Trace;
use crate::region;
use crate::replay::{Plan, RegionTarget, Target, min_region_of, run_fast, time_target};
use crate::report::{MeasureOptions, Measurement};

/// A [`RegionTarget`] with the bytes it was asked for counted and the highest block end
/// recorded: what a peer's high-water utilization is computed from.
struct Watched<T> {
    inner: T,
    start: usize,
    live_bytes: usize,
    peak_live_bytes: usize,
    /// The highest `block end - region start` seen.
    high_water: usize,
}

impl<T: RegionTarget> Watched<T> {
    fn new(inner: T) -> Self {
        Watched {
            start: inner.region_start(),
            inner,
            live_bytes: 0,
            peak_live_bytes: 0,
            high_water: 0,
        }
    }

    fn served(&mut self, block: Option<NonNull<u8>>, layout: Layout) -> Option<NonNull<u8>> {
        let ptr = block?;
        self.live_bytes += layout.size();
        self.peak_live_bytes = self.peak_live_bytes.max(self.live_bytes);
        let end = ptr.as_ptr().addr() + layout.size();
        self.high_water = self.high_water.max(end.saturating_sub(self.start));
        Some(ptr)
    }
}

impl<T: RegionTarget> Target for Watched<T> {
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        let block = self.inner.allocate(layout);
        self.served(block, layout)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.inner.deallocate(ptr, layout) };
        self.live_bytes -= layout.size();
    }

    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise.
        let block = unsafe { self.inner.reallocate(ptr, old, new) }?;
        self.live_bytes -= old.size();
        self.served(Some(block), new)
    }
}

/// Measures the peer `T` on `trace` as [`crate::report::measure`] measures a heaplab
/// heap, with what its calls show (see the module documentation).
pub fn measure_peer<T: RegionTarget>(
    allocator: &str,
    trace: &Trace,
    options: &MeasureOptions,
) -> Measurement {
    // The same region a heaplab heap gets: the suggestion only when it holds the trace.
    let chosen = region::choose(trace, options.region, options.align);
    let region = chosen.bytes;
    let mut measurement = Measurement {
        peer: true,
        ..Measurement::new(allocator, chosen)
    };
    let plan = match Plan::new(trace, options.align) {
        Ok(plan) => plan,
        Err(error) => {
            measurement.error = Some(error.to_string());
            return measurement;
        }
    };
    let Some(heap) = T::over_region(region) else {
        measurement.error = Some(format!(
            "{allocator} could not be built over {region} bytes"
        ));
        return measurement;
    };
    let mut watched = Watched::new(heap);
    measurement.failed_requests = run_fast(&mut watched, &plan, false).failures;
    measurement.utilization = Some(if watched.high_water == 0 {
        0.0
    } else {
        watched.peak_live_bytes as f64 / watched.high_water as f64
    });
    measurement.throughput = time_target::<T>(trace, region, options.align).ok();
    measurement.min_region = min_region_of::<T>(trace, options.align);
    measurement
}
