//! Replaying a [`Trace`] against any [`RawHeap`], and what it measures.
//!
//! * [`replay`] runs every op in an [`Arena`], writes into each block a byte pattern unique
//!   to its id and checks it before the block is freed or reallocated (and after a
//!   reallocation, for the bytes it must keep), counts refused requests and goes on,
//!   samples [`Stats`] every few ops, and can call `check()` and capture `walk` snapshots.
//! * [`time_replay`] and [`time_system_replay`] time the same ops with nothing else going
//!   on, like the malloc lab's timing pass; the system allocator's throughput is the
//!   reference `T_ref` of the score.
//! * [`min_region_utilization`] finds the smallest region in which a trace completes.
//! * [`performance_index`] is the malloc lab's score, [`SCORE_FORMULA`].
//!
//! Requests of size 0 (`a ID 0`, `r ID 0`) are served as 1-byte requests
//! ([`served_size`]), because heaplab heaps refuse size 0. Every block is requested with
//! the same alignment, [`ReplayOptions::align`] (8 by default, as in the malloc lab: the
//! `.rep` format has no field for it).

use std::alloc::Layout;
use std::collections::HashMap;
use std::fmt;
use std::ptr::NonNull;
use std::time::Instant;

use rawheap::{AllocError, Arena, Block, ExhaustionCause, HeapError, RawHeap, Stats};

use crate::format::{Op, Trace, served_size};
use crate::region;

/// The alignment of every request unless told otherwise: 8 bytes, the malloc lab's.
pub const DEFAULT_ALIGN: usize = 8;

/// How many stats samples [`replay`] takes over a trace when not told how often: one
/// every `ops / DEFAULT_SAMPLES` ops.
pub const DEFAULT_SAMPLES: usize = 200;

/// How many times the timing functions run a trace; they keep the fastest run.
pub const TIMING_RUNS: usize = 3;

/// How [`replay`] runs a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayOptions {
    /// The region size; `None` for the one [`region::choose`] picks: the trace's
    /// suggested heap size when it holds the trace's peak footprint, else a bound
    /// computed from the trace.
    pub region: Option<usize>,
    /// The alignment of every request; a power of two.
    pub align: usize,
    /// Call the heap's `check()` after every this many ops and after the last (0: after
    /// the last only); `None` never.
    pub check_every: Option<usize>,
    /// Sample [`Stats`] after every this many ops; `None` for `ops / DEFAULT_SAMPLES`
    /// (at least 1). Stats may cost a walk of the heap, so sampling every op can be slow.
    pub sample_every: Option<usize>,
    /// Capture `walk` after this many ops, for each number here (0: the new heap;
    /// the trace's length or more: the end).
    pub snapshots: Vec<usize>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            region: None,
            align: DEFAULT_ALIGN,
            check_every: None,
            sample_every: None,
            snapshots: Vec::new(),
        }
    }
}

/// A request the heap refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// 0-based index of the op.
    pub op_index: usize,
    /// The heap's answer.
    pub error: AllocError,
    /// Exhaustion or fragmentation, judged from the heap's stats at that moment.
    pub cause: Option<ExhaustionCause>,
}

/// The heap's `walk` at one moment of a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// How many ops had run.
    pub after_ops: usize,
    /// Address of the region's first byte (for [`crate::heapmap::svg`]).
    pub region_start: usize,
    /// The region's length.
    pub region_len: usize,
    /// What `walk` reported, in address order.
    pub blocks: Vec<Block>,
}

/// What [`replay`] measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayReport {
    /// Ops in the trace.
    pub ops: usize,
    /// The region the heap managed.
    pub region: usize,
    /// Requests (`a` or `r`) the heap refused.
    pub failed_requests: usize,
    /// The first of them.
    pub first_failure: Option<Failure>,
    /// `f` ops skipped because the block's allocation had been refused.
    pub skipped_frees: usize,
    /// The most requested bytes live at once (sizes as served, refused requests not
    /// counted).
    pub peak_live_bytes: usize,
    /// The heap's high-water mark at the end, which is its highest ever.
    pub high_water: usize,
    /// `peak_live_bytes / high_water`: the malloc lab's utilization U (0 when nothing was
    /// allocated).
    pub utilization: f64,
    /// The largest `reserved - requested` ([`Stats::internal_fragmentation`]) seen in a
    /// sample.
    pub peak_internal_fragmentation: usize,
    /// The mean of `reserved - requested` over the samples.
    pub mean_internal_fragmentation: f64,
    /// `(ops run, 1 - largest_free / free)` at every sample, the first at 0 ops and the
    /// last at the end.
    pub external_fragmentation: Vec<(usize, f64)>,
    /// The largest external fragmentation in the samples.
    pub peak_external_fragmentation: f64,
    /// The snapshots asked for in [`ReplayOptions::snapshots`], in order.
    pub snapshots: Vec<Snapshot>,
}

/// Why [`replay`] stopped: the heap broke, so its numbers would mean nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// [`ReplayOptions::align`] is not a power of two.
    BadAlign(usize),
    /// The system allocator could not provide the region.
    Region {
        /// Its size.
        bytes: usize,
    },
    /// A block's contents changed while it was live, or a reallocation lost them.
    Corrupted {
        /// The op before (`f`, `r`) or in (`r`) which it was found.
        op_index: usize,
        /// The block's id.
        id: usize,
        /// The first wrong byte, from the block's start.
        offset: usize,
    },
    /// The heap's `check()` failed.
    Check {
        /// How many ops had run.
        after_ops: usize,
        /// What `check()` said.
        error: HeapError,
    },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::BadAlign(align) => write!(f, "alignment {align} is not a power of two"),
            ReplayError::Region { bytes } => {
                write!(f, "the system could not provide a {bytes}-byte region")
            }
            ReplayError::Corrupted {
                op_index,
                id,
                offset,
            } => write!(
                f,
                "op {op_index}: block {id} is corrupted at byte {offset} (its contents changed while it was live)"
            ),
            ReplayError::Check { after_ops, error } => write!(f, "after {after_ops} ops: {error}"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// Runs `trace` against a fresh `H` with verification and measurement; see the module
/// documentation.
pub fn replay<H: RawHeap>(
    trace: &Trace,
    options: &ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    let plan = Plan::new(trace, options.align)?;
    let region = region::choose(trace, options.region, options.align).bytes;
    let mut heap =
        Arena::<H>::try_new(region).map_err(|_| ReplayError::Region { bytes: region })?;
    let ops = trace.ops().len();
    let sample_every = options.sample_every.unwrap_or(ops / DEFAULT_SAMPLES).max(1);
    let mut snapshots_at = options.snapshots.clone();
    snapshots_at.sort_unstable();
    snapshots_at.dedup();
    let mut snapshots_at = snapshots_at.into_iter().peekable();

    let mut run = Verified {
        live: vec![None; plan.slots],
        live_bytes: 0,
        report: ReplayReport {
            ops,
            region,
            failed_requests: 0,
            first_failure: None,
            skipped_frees: 0,
            peak_live_bytes: 0,
            high_water: 0,
            utilization: 0.0,
            peak_internal_fragmentation: 0,
            mean_internal_fragmentation: 0.0,
            external_fragmentation: Vec::new(),
            peak_external_fragmentation: 0.0,
            snapshots: Vec::new(),
        },
        internal_sum: 0.0,
    };
    run.sample(&*heap, 0);
    for (op_index, (op, step)) in trace.ops().iter().zip(&plan.steps).enumerate() {
        while snapshots_at.next_if(|&at| at <= op_index).is_some() {
            run.report.snapshots.push(snapshot(&*heap, op_index));
        }
        run.step(&mut *heap, op_index, op.id(), step)?;
        let done = op_index + 1;
        if options.check_every.is_some_and(|n| done.is_multiple_of(n)) {
            heap.check().map_err(|error| ReplayError::Check {
                after_ops: done,
                error,
            })?;
        }
        if done.is_multiple_of(sample_every) && done != ops {
            run.sample(&*heap, done);
        }
    }
    if snapshots_at.next().is_some() {
        run.report.snapshots.push(snapshot(&*heap, ops));
    }
    // After the last op, unless the loop just checked.
    if options.check_every.is_some_and(|n| !ops.is_multiple_of(n)) {
        heap.check().map_err(|error| ReplayError::Check {
            after_ops: ops,
            error,
        })?;
    }
    if ops > 0 {
        run.sample(&*heap, ops);
    }
    Ok(run.finish(&*heap))
}

fn snapshot<H: RawHeap>(heap: &H, after_ops: usize) -> Snapshot {
    let region = heap.region();
    let mut blocks = Vec::new();
    heap.walk(&mut |block| blocks.push(block));
    Snapshot {
        after_ops,
        region_start: region.as_ptr().cast::<u8>().addr(),
        region_len: region.len(),
        blocks,
    }
}

/// A live block of a replay.
#[derive(Clone, Copy)]
struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
}

/// The state of a verified replay.
struct Verified {
    /// By slot (see [`Plan`]): the block, if its id is live and its request was served.
    live: Vec<Option<Live>>,
    /// Sum of the live blocks' sizes.
    live_bytes: usize,
    report: ReplayReport,
    /// Sum of the sampled internal fragmentation, for the mean.
    internal_sum: f64,
}

impl Verified {
    fn step<H: RawHeap>(
        &mut self,
        heap: &mut H,
        op_index: usize,
        id: usize,
        step: &Step,
    ) -> Result<(), ReplayError> {
        let corrupted = |offset| ReplayError::Corrupted {
            op_index,
            id,
            offset,
        };
        match *step {
            Step::Free { slot } => {
                let Some(block) = self.live[slot].take() else {
                    self.report.skipped_frees += 1;
                    return Ok(());
                };
                // SAFETY: `block` is live: allocated by this heap with this layout.
                unsafe { check_pattern(block, id, block.layout.size()) }.map_err(corrupted)?;
                // SAFETY: as above; it is removed from `live`, so it is freed once.
                unsafe { heap.deallocate(block.ptr, block.layout) };
                self.live_bytes -= block.layout.size();
            }
            Step::Alloc { slot, layout } => self.allocate(heap, op_index, id, slot, layout),
            Step::Realloc { slot, layout } => {
                let Some(old) = self.live[slot] else {
                    // The first allocation was refused: like C's realloc(NULL, n), this
                    // one allocates.
                    self.allocate(heap, op_index, id, slot, layout);
                    return Ok(());
                };
                // SAFETY: `old` is live with this layout.
                unsafe { check_pattern(old, id, old.layout.size()) }.map_err(corrupted)?;
                let Ok(new_layout) = layout else {
                    self.refused(heap, op_index, AllocError::Unsupported, None);
                    return Ok(());
                };
                // SAFETY: `old` is live with `old.layout`; on Ok it is replaced in `live`.
                match unsafe { heap.reallocate(old.ptr, old.layout, new_layout) } {
                    Ok(ptr) => {
                        let new = Live {
                            ptr,
                            layout: new_layout,
                        };
                        let kept = old.layout.size().min(new_layout.size());
                        // SAFETY: `new` is live with `new_layout`, and `kept <= size`.
                        unsafe { check_pattern(new, id, kept) }.map_err(corrupted)?;
                        // SAFETY: `new` is live, its bytes are ours to write.
                        unsafe { fill_pattern(new, id, kept) };
                        self.live[slot] = Some(new);
                        self.live_bytes = self.live_bytes - old.layout.size() + new_layout.size();
                        self.note_peak();
                    }
                    Err(error) => self.refused(heap, op_index, error, Some(new_layout)),
                }
            }
        }
        Ok(())
    }

    fn allocate<H: RawHeap>(
        &mut self,
        heap: &mut H,
        op_index: usize,
        id: usize,
        slot: usize,
        layout: Result<Layout, ()>,
    ) {
        let Ok(layout) = layout else {
            self.refused(heap, op_index, AllocError::Unsupported, None);
            return;
        };
        match heap.allocate(layout) {
            Ok(ptr) => {
                let block = Live { ptr, layout };
                // SAFETY: `block` was just handed out with `layout`.
                unsafe { fill_pattern(block, id, 0) };
                self.live[slot] = Some(block);
                self.live_bytes += layout.size();
                self.note_peak();
            }
            Err(error) => self.refused(heap, op_index, error, Some(layout)),
        }
    }

    fn refused<H: RawHeap>(
        &mut self,
        heap: &H,
        op_index: usize,
        error: AllocError,
        layout: Option<Layout>,
    ) {
        self.report.failed_requests += 1;
        if self.report.first_failure.is_none() {
            self.report.first_failure = Some(Failure {
                op_index,
                error,
                cause: layout.and_then(|layout| error.cause(layout, &heap.stats())),
            });
        }
    }

    fn note_peak(&mut self) {
        self.report.peak_live_bytes = self.report.peak_live_bytes.max(self.live_bytes);
    }

    fn sample<H: RawHeap>(&mut self, heap: &H, after_ops: usize) {
        let stats: Stats = heap.stats();
        let internal = stats.internal_fragmentation();
        let external = stats.external_fragmentation();
        let report = &mut self.report;
        report.peak_internal_fragmentation = report.peak_internal_fragmentation.max(internal);
        self.internal_sum += internal as f64;
        report.external_fragmentation.push((after_ops, external));
        report.peak_external_fragmentation = report.peak_external_fragmentation.max(external);
    }

    fn finish<H: RawHeap>(mut self, heap: &H) -> ReplayReport {
        let report = &mut self.report;
        report.high_water = heap.stats().high_water;
        report.utilization = ratio(report.peak_live_bytes, report.high_water);
        report.mean_internal_fragmentation =
            self.internal_sum / report.external_fragmentation.len() as f64;
        self.report
    }
}

/// `part / whole`, 0 when `whole` is 0.
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The 8 bytes that repeat through block `id`: distinct for distinct ids, because
/// multiplying by an odd constant is a bijection on `u64`.
fn pattern(id: usize) -> [u8; 8] {
    ((id as u64) ^ 0x5A5A_5A5A_5A5A_5A5A)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .to_le_bytes()
}

/// Writes block `id`'s pattern into bytes `from..size` of `block`.
///
/// # Safety
///
/// `block` is live: its `layout.size()` bytes are the caller's to write.
unsafe fn fill_pattern(block: Live, id: usize, from: usize) {
    let pattern = pattern(id);
    // SAFETY: the caller's promise; no other reference to the block exists.
    let bytes = unsafe { std::slice::from_raw_parts_mut(block.ptr.as_ptr(), block.layout.size()) };
    for (offset, byte) in bytes.iter_mut().enumerate().skip(from) {
        *byte = pattern[offset % 8];
    }
}

/// Checks bytes `0..len` of `block` against block `id`'s pattern; `Err` holds the first
/// wrong offset.
///
/// # Safety
///
/// `block` is live and its first `len` bytes were written by [`fill_pattern`] (or copied
/// from such bytes by the heap), so they are initialized.
unsafe fn check_pattern(block: Live, id: usize, len: usize) -> Result<(), usize> {
    let pattern = pattern(id);
    // SAFETY: the caller's promise: `len` initialized bytes of a live block.
    let bytes = unsafe { std::slice::from_raw_parts(block.ptr.as_ptr(), len) };
    match bytes
        .iter()
        .enumerate()
        .position(|(offset, &byte)| byte != pattern[offset % 8])
    {
        Some(offset) => Err(offset),
        None => Ok(()),
    }
}

/// A trace turned into what a replay loop needs: ids mapped to dense slots `0..slots`
/// (ids may be sparse and the header's id count huge) and sizes to layouts, computed
/// once, outside any timed loop.
pub(crate) struct Plan {
    steps: Vec<Step>,
    slots: usize,
}

/// One op of a [`Plan`]. `Err(())` is a size no layout can have: a refused request.
#[derive(Clone, Copy)]
enum Step {
    Alloc {
        slot: usize,
        layout: Result<Layout, ()>,
    },
    Free {
        slot: usize,
    },
    Realloc {
        slot: usize,
        layout: Result<Layout, ()>,
    },
}

impl Plan {
    pub(crate) fn new(trace: &Trace, align: usize) -> Result<Plan, ReplayError> {
        if !align.is_power_of_two() {
            return Err(ReplayError::BadAlign(align));
        }
        let mut slot_of: HashMap<usize, usize> = HashMap::new();
        let layout =
            |size: usize| Layout::from_size_align(served_size(size), align).map_err(|_| ());
        let steps = trace
            .ops()
            .iter()
            .map(|op| {
                let next = slot_of.len();
                let slot = *slot_of.entry(op.id()).or_insert(next);
                match *op {
                    Op::Alloc { size, .. } => Step::Alloc {
                        slot,
                        layout: layout(size),
                    },
                    Op::Free { .. } => Step::Free { slot },
                    Op::Realloc { size, .. } => Step::Realloc {
                        slot,
                        layout: layout(size),
                    },
                }
            })
            .collect();
        Ok(Plan {
            steps,
            slots: slot_of.len(),
        })
    }
}

/// What the unverified loop runs against: a heaplab heap, the system allocator, or a
/// peer crate behind an adapter (see [`crate::peer`]).
pub trait Target {
    /// A block for `layout`, or `None` when refused.
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>>;

    /// Gives a block back.
    ///
    /// # Safety
    ///
    /// `ptr` came from this target with `layout` and is live.
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout);

    /// Resizes a block, moving it if needed; `None` leaves it untouched.
    ///
    /// # Safety
    ///
    /// `ptr` came from this target with `old` and is live; `new.align() == old.align()`.
    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>>;
}

impl<H: RawHeap> Target for Arena<H> {
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        H::allocate(self, layout).ok()
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { H::deallocate(self, ptr, layout) }
    }

    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise.
        unsafe { H::reallocate(self, ptr, old, new) }.ok()
    }
}

/// A [`Target`] that manages one region of a given size, as every contender of the
/// utilization search does: a heaplab heap in its [`Arena`], or a peer crate.
pub trait RegionTarget: Target + Sized {
    /// A fresh allocator over `bytes` bytes; `None` when the memory or the allocator
    /// cannot be had.
    fn over_region(bytes: usize) -> Option<Self>;

    /// The address of the region's first byte.
    fn region_start(&self) -> usize;
}

impl<H: RawHeap> RegionTarget for Arena<H> {
    fn over_region(bytes: usize) -> Option<Self> {
        Arena::try_new(bytes).ok()
    }

    fn region_start(&self) -> usize {
        self.region().as_ptr().cast::<u8>().addr()
    }
}

/// The system allocator (`std::alloc`), the reference for throughput.
struct System;

impl Target for System {
    fn allocate(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: plans hold no zero-sized layouts (`served_size` >= 1).
        NonNull::new(unsafe { std::alloc::alloc(layout) })
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise: allocated here with `layout`, live.
        unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
    }

    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise: allocated here with `old`, live; the new size is
        // not zero and, with `old.align()`, forms the valid layout `new`.
        NonNull::new(unsafe { std::alloc::realloc(ptr.as_ptr(), old, new.size()) })
    }
}

/// The outcome of an unverified run.
pub(crate) struct FastRun {
    /// Requests refused.
    pub(crate) failures: usize,
    /// Blocks live at the end, for targets that must free them.
    live: Vec<Option<Live>>,
}

/// Runs `plan` against `target` with nothing else: no patterns, no stats. With
/// `stop_at_failure` it returns at the first refused request.
pub(crate) fn run_fast<T: Target>(target: &mut T, plan: &Plan, stop_at_failure: bool) -> FastRun {
    let mut live: Vec<Option<Live>> = vec![None; plan.slots];
    let mut failures = 0;
    for step in &plan.steps {
        let served = match *step {
            Step::Free { slot } => {
                if let Some(block) = live[slot].take() {
                    // SAFETY: `block` is live in `target` with its layout, and was just
                    // removed from `live`.
                    unsafe { target.deallocate(block.ptr, block.layout) };
                }
                true
            }
            Step::Alloc { slot, layout } | Step::Realloc { slot, layout } => {
                let served = match (layout, live[slot]) {
                    (Err(()), _) => None,
                    (Ok(layout), None) => target.allocate(layout).map(|ptr| Live { ptr, layout }),
                    (Ok(layout), Some(old)) => {
                        // SAFETY: `old` is live with its layout, and every layout of a
                        // plan has the same alignment.
                        unsafe { target.reallocate(old.ptr, old.layout, layout) }
                            .map(|ptr| Live { ptr, layout })
                    }
                };
                if served.is_some() {
                    live[slot] = served;
                }
                served.is_some()
            }
        };
        if !served {
            failures += 1;
            if stop_at_failure {
                break;
            }
        }
    }
    FastRun { failures, live }
}

/// Operations per second of one timed pass.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Throughput {
    /// Ops in the trace.
    pub ops: usize,
    /// Seconds of the fastest of [`TIMING_RUNS`] runs.
    pub seconds: f64,
    /// `ops / seconds` (0 for an empty trace).
    pub ops_per_sec: f64,
}

impl Throughput {
    fn new(ops: usize, seconds: f64) -> Self {
        Throughput {
            ops,
            seconds,
            ops_per_sec: if seconds > 0.0 {
                ops as f64 / seconds
            } else {
                0.0
            },
        }
    }
}

/// Times `trace` against a fresh `H` over `region` bytes, [`TIMING_RUNS`] times, keeping
/// the fastest (as the malloc lab's timer keeps the best of several). Only the ops are
/// timed: not building the heap, nor mapping ids. Nothing is verified or sampled;
/// refused requests are skipped like in [`replay`].
pub fn time_replay<H: RawHeap>(
    trace: &Trace,
    region: usize,
    align: usize,
) -> Result<Throughput, ReplayError> {
    time_target::<Arena<H>>(trace, region, align)
}

/// [`time_replay`] for any [`RegionTarget`], such as a peer crate's adapter.
pub fn time_target<T: RegionTarget>(
    trace: &Trace,
    region: usize,
    align: usize,
) -> Result<Throughput, ReplayError> {
    let plan = Plan::new(trace, align)?;
    let mut best = f64::INFINITY;
    for _ in 0..TIMING_RUNS {
        let mut heap = T::over_region(region).ok_or(ReplayError::Region { bytes: region })?;
        let start = Instant::now();
        run_fast(&mut heap, &plan, false);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok(Throughput::new(trace.ops().len(), best))
}

/// Times `trace` against the system allocator (`std::alloc`) the same way as
/// [`time_replay`]: the reference throughput `T_ref` of [`performance_index`]. Blocks a
/// trace leaves live are freed after the clock stops.
pub fn time_system_replay(trace: &Trace, align: usize) -> Result<Throughput, ReplayError> {
    let plan = Plan::new(trace, align)?;
    let mut best = f64::INFINITY;
    for _ in 0..TIMING_RUNS {
        let start = Instant::now();
        let run = run_fast(&mut System, &plan, false);
        best = best.min(start.elapsed().as_secs_f64());
        for block in run.live.into_iter().flatten() {
            // SAFETY: every block left in `live` is live in the system allocator.
            unsafe { System.deallocate(block.ptr, block.layout) };
        }
    }
    Ok(Throughput::new(trace.ops().len(), best))
}

/// The smallest region a trace completes in, and the utilization that gives.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct MinRegion {
    /// Bytes: within 1 % (or 1 byte) of the smallest region in which no request is
    /// refused.
    pub region: usize,
    /// The trace's peak live bytes / `region`: utilization that is fair to heaps that do
    /// not fill the region from the bottom (a buddy heap).
    pub utilization: f64,
}

/// The largest region [`min_region_utilization`] tries, as a multiple of the region
/// [`region::choose`] picks for the trace (or of 4 × its peak live bytes, if that is
/// larger).
pub const MIN_REGION_SEARCH_LIMIT: usize = 16;

/// Searches for the smallest region in which `trace` runs on `H` with no refused
/// request: doubling from the region [`region::choose`] picks until one works, then bisecting until a
/// region that works is within 1 % (or 1 byte) of one that does not. `None` when the trace allocates nothing, or no region up to
/// [`MIN_REGION_SEARCH_LIMIT`] × that size works (a bump heap, which never
/// reuses memory, on a long trace). Assumes that a region that works keeps working when
/// made larger, which holds for every heap that does not round its region down to a
/// power of two; for those the answer is one region that works, within 1 % of one that
/// does not.
pub fn min_region_utilization<H: RawHeap>(trace: &Trace, align: usize) -> Option<MinRegion> {
    min_region_of::<Arena<H>>(trace, align)
}

/// [`min_region_utilization`] for any [`RegionTarget`], such as a peer crate's adapter.
pub fn min_region_of<T: RegionTarget>(trace: &Trace, align: usize) -> Option<MinRegion> {
    let plan = Plan::new(trace, align).ok()?;
    let peak = trace.profile().peak_live_bytes;
    if peak == 0 {
        return None;
    }
    let completes = |region: usize| match T::over_region(region) {
        Some(mut heap) => run_fast(&mut heap, &plan, true).failures == 0,
        None => false,
    };
    let start = region::choose(trace, None, align)
        .bytes
        .max(peak.saturating_mul(4));
    let limit = start.saturating_mul(MIN_REGION_SEARCH_LIMIT);
    // Below `peak` nothing can work: the live blocks alone do not fit.
    let mut fails = peak - 1;
    let mut works = start;
    while !completes(works) {
        if works >= limit {
            return None;
        }
        fails = works;
        works = works.saturating_mul(2).min(limit);
    }
    while works - fails > (works / 100).max(1) {
        let mid = fails + (works - fails) / 2;
        if completes(mid) {
            works = mid;
        } else {
            fails = mid;
        }
    }
    Some(MinRegion {
        region: works,
        utilization: ratio(peak, works),
    })
}

/// The malloc lab's performance index, as [`performance_index`] computes it.
pub const SCORE_FORMULA: &str = "P = 100 * (0.6 * U + 0.4 * min(1, T / T_ref))";

/// The malloc lab's performance index ([`SCORE_FORMULA`]): `utilization` U in 0..=1,
/// `throughput` T and the reference `reference` T_ref in ops per second. With no
/// reference (0), the throughput term counts in full.
pub fn performance_index(utilization: f64, throughput: f64, reference: f64) -> f64 {
    let speed = if reference > 0.0 {
        (throughput / reference).min(1.0)
    } else {
        1.0
    };
    100.0 * (0.6 * utilization + 0.4 * speed)
}
