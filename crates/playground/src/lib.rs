//! # The heap playground: real heaplab allocators, driven from a web page
//!
//! The book's playground lets a reader pick an allocator, allocate and free blocks by
//! hand or replay a generated trace, and watch the heap. Everything the page shows is
//! computed here, by the allocator crates themselves compiled to
//! `wasm32-unknown-unknown`; the page's JavaScript only draws and forwards clicks.
//!
//! ```text
//!   page (JS)                         this crate (wasm)
//!   ─────────                         ─────────────────
//!   click "allocate 100, align 8" ──> pg_allocate(100, 8)
//!                                       Playground::allocate
//!                                         RawHeap::allocate on the real heap
//!                                       state as JSON in the output buffer
//!   draw the heap map, stats     <──── length of the answer; pg_output() is where
//! ```
//!
//! [`Playground`] is the safe Rust side: one heap of a registry allocator over a region
//! it owns, the table of blocks it has handed out, an optional trace being replayed,
//! and the last thing that happened. [`exports`] is the C ABI over it: a handful of
//! functions taking and returning integers, each answering with the heap's [`State`]
//! as JSON. The allocators come from [`heaplab::registry::for_each_heap`], so an
//! allocator added to the registry is in the playground with no change here.
//!
//! Invariants:
//! - every entry of the live table is a block the heap handed out and has not taken
//!   back, with the layout it was last given, keyed by its offset from the region start;
//!   so the table's offsets are exactly the `Used` stretches of the heap's `walk`;
//! - while a trace is replayed, a trace id maps to an offset exactly when that id's
//!   block is in the live table.
//!
//! Cost: every operation is the heap's own cost plus a `check()` and, for the answer, a
//! `walk()`: linear in the number of blocks, which a page that draws them all pays anyway.

use std::collections::BTreeMap;

use core::alloc::Layout;
use core::ptr::NonNull;

use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::trace::format::served_size;
use heaplab::trace::replay::DEFAULT_ALIGN;
use heaplab::trace::{Op, Trace, Workload, generate};
use heaplab::{AllocError, Arena, BlockKind, ExhaustionCause, RawHeap, Stats, offset_in};
use serde::Serialize;

pub mod exports;

/// The largest region a playground heap gets: the page draws every byte of it to scale.
pub const MAX_REGION: usize = 1 << 20;

/// The largest trace scale the page may ask for (scale 1 is a few thousand operations).
pub const MAX_SCALE: usize = 4;

/// A registry allocator, ready to be opened over a fresh region.
#[derive(Clone, Copy)]
pub struct Kind {
    /// Its registry entry.
    pub entry: Entry,
    /// Makes a heap of this allocator over `region` fresh bytes.
    make: fn(usize) -> Result<Box<dyn Heap>, AllocError>,
}

impl Kind {
    /// A heap of this allocator over `region` fresh bytes.
    fn fresh_heap(&self, region: usize) -> Result<Box<dyn Heap>, String> {
        (self.make)(region)
            .map_err(|error| format!("no memory for a {region}-byte region: {error}"))
    }
}

/// Every allocator of the registry, in the registry's order.
pub fn kinds() -> Vec<Kind> {
    struct Collect(Vec<Kind>);
    impl HeapVisitor for Collect {
        fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
            self.0.push(Kind {
                entry: *entry,
                make: make::<H>,
            });
        }
    }
    let mut collect = Collect(Vec::new());
    for_each_heap(&mut collect);
    collect.0
}

fn make<H: RawHeap + 'static>(region: usize) -> Result<Box<dyn Heap>, AllocError> {
    Ok(Box::new(Arena::<H>::try_new(region)?))
}

/// A heap over memory it owns, its type erased so that the page can switch allocators.
trait Heap {
    fn heap(&self) -> &dyn RawHeap;
    fn heap_mut(&mut self) -> &mut dyn RawHeap;
}

impl<H: RawHeap + 'static> Heap for Arena<H> {
    fn heap(&self) -> &dyn RawHeap {
        &**self
    }

    fn heap_mut(&mut self) -> &mut dyn RawHeap {
        &mut **self
    }
}

/// A block the heap handed out and has not taken back.
#[derive(Clone, Copy)]
struct Live {
    /// The pointer `allocate` or `reallocate` returned.
    ptr: NonNull<u8>,
    /// The layout the block was last given: what `deallocate` must be passed.
    layout: Layout,
    /// The trace id naming the block, when the replayed trace allocated it.
    id: Option<usize>,
}

/// A generated trace being replayed one operation at a time.
struct Replay {
    workload: Workload,
    seed: u64,
    trace: Trace,
    /// The index of the next operation to run; `trace.ops().len()` when done.
    next: usize,
    /// By trace id: the offset of that id's live block, `None` when it has none (not yet
    /// allocated, freed, refused, or freed by hand).
    offsets: Vec<Option<usize>>,
}

/// What one operation did, in numbers for the page and in words for the reader.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// `allocate`, `free` or `reallocate`.
    pub op: &'static str,
    /// The trace operation's index when a replay ran it.
    pub trace_op: Option<usize>,
    /// Whether the heap did what was asked.
    pub ok: bool,
    /// The block's offset afterwards (the new block for allocate and reallocate, the
    /// freed one for free).
    pub offset: Option<usize>,
    /// Why a request was refused: `out-of-memory`, `fragmentation`, `unsupported`,
    /// `zero-size`, `bad-layout`, `no-such-block`; `skipped` for a trace operation on a
    /// block that is not live.
    pub cause: Option<&'static str>,
    /// The whole story in one sentence.
    pub message: String,
}

/// Everything the page draws: the heap's own reports, serialised as JSON by [`exports`].
#[derive(Debug, Serialize)]
pub struct State<'a> {
    /// The allocator's registry name.
    pub heap: &'static str,
    /// Bytes in the region.
    pub region: usize,
    /// `walk`'s stretches as `(offset, size, kind)`, kind `used`, `free` or `overhead`.
    pub blocks: Vec<(usize, usize, &'static str)>,
    /// The live blocks as `(offset, requested size, alignment)`, by offset.
    pub live: Vec<(usize, usize, usize)>,
    /// The heap's `stats()` and the figures derived from them.
    pub stats: StatsView,
    /// The broken invariant `check()` reports, if any.
    pub check: Option<String>,
    /// The trace being replayed.
    pub trace: Option<TraceView>,
    /// The last operation.
    pub last: Option<&'a Event>,
}

/// [`Stats`] with the derived figures spelled out.
#[derive(Debug, Serialize)]
pub struct StatsView {
    /// See [`Stats::region`].
    pub region: usize,
    /// See [`Stats::live_blocks`].
    pub live_blocks: usize,
    /// See [`Stats::requested`].
    pub requested: usize,
    /// See [`Stats::usable`].
    pub usable: usize,
    /// See [`Stats::free`].
    pub free: usize,
    /// See [`Stats::largest_free`].
    pub largest_free: usize,
    /// See [`Stats::high_water`].
    pub high_water: usize,
    /// See [`Stats::overhead`].
    pub overhead: usize,
    /// See [`Stats::internal_fragmentation`].
    pub internal_fragmentation: usize,
    /// See [`Stats::external_fragmentation`].
    pub external_fragmentation: f64,
}

impl From<Stats> for StatsView {
    fn from(stats: Stats) -> Self {
        StatsView {
            region: stats.region,
            live_blocks: stats.live_blocks,
            requested: stats.requested,
            usable: stats.usable,
            free: stats.free,
            largest_free: stats.largest_free,
            high_water: stats.high_water,
            overhead: stats.overhead(),
            internal_fragmentation: stats.internal_fragmentation(),
            external_fragmentation: stats.external_fragmentation(),
        }
    }
}

/// Where a replay stands.
#[derive(Debug, Serialize)]
pub struct TraceView {
    /// The workload's name.
    pub workload: &'static str,
    /// The seed it was generated with.
    pub seed: u64,
    /// Operations run so far.
    pub next: usize,
    /// Operations in the trace.
    pub len: usize,
}

/// One heap of a registry allocator, the blocks it handed out, and a replay.
pub struct Playground {
    /// The allocator, kept to open a fresh heap for a replay.
    kind: Kind,
    /// The heap over its own region.
    heap: Box<dyn Heap>,
    /// Live blocks by offset from the region start: exactly the heap's `Used` stretches.
    live: BTreeMap<usize, Live>,
    /// The trace being replayed; its live ids are the `id`s in `live`.
    replay: Option<Replay>,
    /// What the last operation did.
    last: Option<Event>,
}

impl Playground {
    /// A fresh heap of allocator number `kind` (in [`kinds`] order) over `region` bytes.
    pub fn open(kind: usize, region: usize) -> Result<Playground, String> {
        let kinds = kinds();
        let kind = *kinds.get(kind).ok_or_else(|| {
            format!(
                "no allocator number {kind}: there are {} (0 to {})",
                kinds.len(),
                kinds.len().saturating_sub(1)
            )
        })?;
        if !(1..=MAX_REGION).contains(&region) {
            return Err(format!(
                "a region of {region} bytes: the playground takes 1 to {MAX_REGION}"
            ));
        }
        let heap = kind.fresh_heap(region)?;
        Ok(Playground {
            kind,
            heap,
            live: BTreeMap::new(),
            replay: None,
            last: None,
        })
    }

    /// The allocator's registry entry.
    pub fn entry(&self) -> Entry {
        self.kind.entry
    }

    /// Asks the heap for `size` bytes aligned to `align`; true when it served them.
    pub fn allocate(&mut self, size: usize, align: usize) -> bool {
        let event = match Layout::from_size_align(size, align) {
            Ok(layout) => self.allocate_as(layout, None),
            Err(_) => refused(
                "allocate",
                "bad-layout",
                format!(
                    "allocate({size}, align {align}) is not a layout: the alignment must be a \
                     power of two and the size, rounded up to it, at most isize::MAX"
                ),
            ),
        };
        self.finish(event)
    }

    /// Frees the live block at `offset`; true when there was one.
    pub fn free(&mut self, offset: usize) -> bool {
        let event = self.free_at(offset);
        self.finish(event)
    }

    /// Resizes the live block at `offset` to `size` bytes, keeping its alignment; true
    /// when the heap did (in place or by moving it).
    pub fn reallocate(&mut self, offset: usize, size: usize) -> bool {
        let event = self.reallocate_at(offset, size);
        self.finish(event)
    }

    /// Starts replaying the generated trace of workload number `workload` (in
    /// [`Workload::ALL`] order) on a fresh heap of the same allocator, over the trace's
    /// suggested region (at most [`MAX_REGION`]).
    pub fn load_trace(&mut self, workload: usize, seed: u64, scale: usize) -> Result<(), String> {
        let workload = *Workload::ALL.get(workload).ok_or_else(|| {
            format!(
                "no workload number {workload}: there are {}",
                Workload::ALL.len()
            )
        })?;
        if !(1..=MAX_SCALE).contains(&scale) {
            return Err(format!(
                "a trace of scale {scale}: the playground takes 1 to {MAX_SCALE}"
            ));
        }
        let trace = generate(workload, seed, scale);
        let region = trace.suggested_heap().min(MAX_REGION);
        let heap = self.kind.fresh_heap(region)?;
        // The old blocks go with the old heap: forget them before it is dropped.
        self.live.clear();
        self.heap = heap;
        self.last = None;
        self.replay = Some(Replay {
            workload,
            seed,
            offsets: vec![None; trace.num_ids()],
            trace,
            next: 0,
        });
        Ok(())
    }

    /// Runs up to `count` operations of the trace being replayed, stopping after one the
    /// heap refuses, so that the page can show the refusal. Returns how many ran.
    pub fn step(&mut self, count: usize) -> usize {
        let mut ran = 0;
        while ran < count {
            let Some(replay) = &mut self.replay else {
                break;
            };
            let Some(&op) = replay.trace.ops().get(replay.next) else {
                break;
            };
            let index = replay.next;
            replay.next += 1;
            let live = replay.offsets.get(op.id()).copied().flatten();
            let mut event = match (op, live) {
                (Op::Alloc { id, size }, _) => {
                    match Layout::from_size_align(served_size(size), DEFAULT_ALIGN) {
                        Ok(layout) => self.allocate_as(layout, Some(id)),
                        Err(_) => refused("allocate", "bad-layout", format!("{size} bytes")),
                    }
                }
                (Op::Free { .. }, Some(offset)) => self.free_at(offset),
                (Op::Realloc { size, .. }, Some(offset)) => {
                    self.reallocate_at(offset, served_size(size))
                }
                (Op::Free { id } | Op::Realloc { id, .. }, None) => refused(
                    if matches!(op, Op::Free { .. }) {
                        "free"
                    } else {
                        "reallocate"
                    },
                    "skipped",
                    format!("block {id} is not live (refused earlier, or freed by hand)"),
                ),
            };
            event.trace_op = Some(index);
            ran += 1;
            let stop = !event.ok && event.cause != Some("skipped");
            self.finish(event);
            if stop {
                break;
            }
        }
        ran
    }

    /// The heap's state, for the page to draw.
    pub fn state(&self) -> State<'_> {
        let heap = self.heap.heap();
        let region = heap.region();
        let mut blocks = Vec::new();
        heap.walk(&mut |block| {
            let kind = match block.kind {
                BlockKind::Used => "used",
                BlockKind::Free => "free",
                BlockKind::Overhead => "overhead",
            };
            blocks.push((offset_in(region, block.addr), block.size, kind));
        });
        State {
            heap: self.kind.entry.name,
            region: region.len(),
            blocks,
            live: self
                .live
                .iter()
                .map(|(&offset, block)| (offset, block.layout.size(), block.layout.align()))
                .collect(),
            stats: heap.stats().into(),
            check: heap.check().err().map(|error| error.to_string()),
            trace: self.replay.as_ref().map(|replay| TraceView {
                workload: replay.workload.name(),
                seed: replay.seed,
                next: replay.next,
                len: replay.trace.ops().len(),
            }),
            last: self.last.as_ref(),
        }
    }

    fn finish(&mut self, event: Event) -> bool {
        let ok = event.ok;
        self.last = Some(event);
        ok
    }

    fn offset_of(&self, ptr: NonNull<u8>) -> usize {
        offset_in(self.heap.heap().region(), ptr.addr().get())
    }

    fn allocate_as(&mut self, layout: Layout, id: Option<usize>) -> Event {
        let (size, align) = (layout.size(), layout.align());
        match self.heap.heap_mut().allocate(layout) {
            Ok(ptr) => {
                let offset = self.offset_of(ptr);
                self.remember(offset, Live { ptr, layout, id });
                done(
                    "allocate",
                    offset,
                    format!("allocate({size}, align {align}) gave the block at offset {offset}"),
                )
            }
            Err(error) => self.refusal("allocate", layout, error),
        }
    }

    fn free_at(&mut self, offset: usize) -> Event {
        let Some(block) = self.live.remove(&offset) else {
            return refused(
                "free",
                "no-such-block",
                format!("no live block starts at offset {offset}"),
            );
        };
        self.forget_id(block.id);
        // SAFETY: the live table holds only blocks this heap handed out and has not taken
        // back, each with the layout it was last given; the block just left the table, so
        // it is freed once.
        unsafe { self.heap.heap_mut().deallocate(block.ptr, block.layout) };
        done(
            "free",
            offset,
            format!(
                "freed the {}-byte block at offset {offset}",
                block.layout.size()
            ),
        )
    }

    fn reallocate_at(&mut self, offset: usize, size: usize) -> Event {
        let Some(block) = self.live.get(&offset).copied() else {
            return refused(
                "reallocate",
                "no-such-block",
                format!("no live block starts at offset {offset}"),
            );
        };
        let Ok(new) = Layout::from_size_align(size, block.layout.align()) else {
            return refused(
                "reallocate",
                "bad-layout",
                format!("{size} bytes is too large for any layout"),
            );
        };
        // SAFETY: the block is in the live table: handed out by this heap, not taken back,
        // with layout `block.layout`. On success it is replaced in the table below.
        match unsafe {
            self.heap
                .heap_mut()
                .reallocate(block.ptr, block.layout, new)
        } {
            Ok(ptr) => {
                self.live.remove(&offset);
                self.forget_id(block.id);
                let moved_to = self.offset_of(ptr);
                self.remember(
                    moved_to,
                    Live {
                        ptr,
                        layout: new,
                        id: block.id,
                    },
                );
                let how = if moved_to == offset {
                    "in place".to_string()
                } else {
                    format!("by moving it to offset {moved_to}")
                };
                done(
                    "reallocate",
                    moved_to,
                    format!(
                        "resized the block at offset {offset} from {} to {size} bytes {how}",
                        block.layout.size()
                    ),
                )
            }
            Err(error) => self.refusal("reallocate", new, error),
        }
    }

    fn remember(&mut self, offset: usize, block: Live) {
        if let (Some(id), Some(replay)) = (block.id, &mut self.replay)
            && let Some(slot) = replay.offsets.get_mut(id)
        {
            *slot = Some(offset);
        }
        self.live.insert(offset, block);
    }

    fn forget_id(&mut self, id: Option<usize>) {
        if let (Some(id), Some(replay)) = (id, &mut self.replay)
            && let Some(slot) = replay.offsets.get_mut(id)
        {
            *slot = None;
        }
    }

    /// The refusal of `layout`, explained from the heap's stats at that moment.
    fn refusal(&self, op: &'static str, layout: Layout, error: AllocError) -> Event {
        let stats = self.heap.heap().stats();
        let size = layout.size();
        let (cause, why) = match (error, error.cause(layout, &stats)) {
            (_, Some(ExhaustionCause::OutOfMemory)) => (
                "out-of-memory",
                format!(
                    "out of memory: only {} bytes are free in the whole heap",
                    stats.free
                ),
            ),
            (_, Some(ExhaustionCause::Fragmentation)) => (
                "fragmentation",
                format!(
                    "fragmentation: {} bytes are free, but the largest free stretch is {} \
                     bytes and no free block can hold the request",
                    stats.free, stats.largest_free
                ),
            ),
            (AllocError::ZeroSize, None) => (
                "zero-size",
                "heaplab heaps hand out no zero-sized blocks".to_string(),
            ),
            _ => (
                "unsupported",
                format!(
                    "this heap can never serve that layout: {error} (larger than the \
                     region, or beyond what the allocator supports)"
                ),
            ),
        };
        refused(
            op,
            cause,
            format!("{op}({size}, align {}) refused: {why}", layout.align()),
        )
    }
}

fn done(op: &'static str, offset: usize, message: String) -> Event {
    Event {
        op,
        trace_op: None,
        ok: true,
        offset: Some(offset),
        cause: None,
        message,
    }
}

fn refused(op: &'static str, cause: &'static str, message: String) -> Event {
    Event {
        op,
        trace_op: None,
        ok: false,
        offset: None,
        cause: Some(cause),
        message,
    }
}

#[cfg(test)]
mod tests;
