//! # gc: when nobody calls free
//!
//! A small, precise mark-sweep garbage collector whose objects live in any heaplab
//! [`RawHeap`]. The program allocates objects and never frees them; from time to time the
//! collector finds every object the program can still reach and gives all the others back
//! to the heap.
//!
//! - **Handles, not pointers.** [`Collector::alloc`] returns a [`Gc<T>`]: a slot number
//!   and a generation, eight bytes, `Copy`. The object is reached only through the
//!   collector ([`Collector::get`], [`Collector::get_mut`]), which checks that the slot
//!   still holds the object the handle was made for. A handle to a freed object answers
//!   `None`, never a dangling reference.
//! - **Roots.** The program tells the collector which handles it holds
//!   ([`Collector::add_root`]); nothing scans the native stack. A handle that is only in a
//!   local variable survives until the next collection and no longer: root it if it must
//!   live across an allocation. The value being allocated is a root during that
//!   allocation, so a list can be built by prepending without rooting anything.
//! - **Precise tracing.** Each object type says which handles it holds ([`Trace`]).
//!   `Trace` is a safe trait: an implementation that forgets a handle gets that object
//!   freed early, and the handle then answers `None`. It is a bug, not undefined
//!   behaviour.
//! - **Mark, then sweep.** [`Collector::collect`] marks from the roots with an explicit
//!   stack (no recursion, so a list of a million nodes is fine), then walks the slot
//!   table and frees every unmarked object: its destructor runs and its block goes back
//!   to the heap with [`RawHeap::deallocate`].
//! - **When.** A collection runs on request, before an allocation that would bring the
//!   bytes allocated since the last collection above the threshold
//!   ([`Collector::set_threshold`]), and when the heap refuses an allocation as
//!   exhausted (then the allocation is tried once more).
//!
//! ```text
//!   the program            the collector                          the RawHeap region
//!   ┌──────────┐           slots (Vec<Slot>)                      ┌──────────────────┐
//!   │ roots    │──handle──>┌─────┬────────────────────────────┐    │ ...              │
//!   │ [h0, h3] │           │ 0   │ gen 1 │ ptr ──────────────────────>│ T (a block)      │
//!   └──────────┘           │ 1   │ gen 4 │ free (in free_slots)│    │ ...              │
//!   a handle = (slot 3,    │ 2   │ gen 2 │ ptr, layout, trace, │    │ T (a block)      │
//!              gen 7)      │ 3   │ gen 7 │   drop, type, mark  │    │ ...              │
//!                          └─────┴────────────────────────────┘    └──────────────────┘
//!   handle valid  <=>  slot `index` holds an object and its generation equals the handle's
//! ```
//!
//! The object's block holds the `T` and nothing else: the mark, the type and the
//! functions that trace and drop it live in the slot table, beside the heap, so a block
//! is exactly the size the heap was asked for and the heap maps show the objects as they
//! are.
//!
//! ## Invariants
//!
//! - A slot holds an object, or it is free and its index is in `free_slots`, or it is
//!   retired (its generation is used up) and in neither.
//! - Every object is one live block of the heap, allocated with the slot's layout, holding
//!   an initialised value of the slot's type.
//! - A slot's generation changes whenever its object is freed, so no handle made before
//!   matches it again; a slot whose generation would wrap is retired instead of reused.
//! - Between collections no object is marked with a future epoch: an object is marked
//!   exactly when its `marked_in` equals the epoch of the collection running.
//!
//! ## Cost
//!
//! | operation | cost |
//! | --- | --- |
//! | `alloc` | one heap allocation, O(1) slot bookkeeping (plus a collection when one is due) |
//! | `get`, `get_mut` | O(1): an index, two comparisons |
//! | `add_root` | O(1); `remove_root` O(roots) |
//! | `collect` | mark O(live objects + their handles), sweep O(slots) plus one `deallocate` per dead object |
//!
//! The pause of a collection therefore grows with the live heap (marking) and with the
//! number of slots ever used (sweeping): the gc chapter of the book measures it.
//!
//! The crate uses `std` for its own tables (the slot table and the mark stack live in the
//! system heap, like a real collector's metadata) and for [`std::time::Instant`], which
//! times each pause: a collector that reports its pauses needs a clock, and the standard
//! one is what the book's measurements use.

mod trace;
pub mod workload;

pub use trace::{Trace, Tracer};

use std::any::TypeId;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use rawheap::{AllocError, Arena, RawHeap};

use core::alloc::Layout;

/// An object's identity: its slot and the generation the slot had when it was allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Handle {
    index: u32,
    generation: NonZeroU32,
}

/// A handle to an object of type `T` owned by a [`Collector`].
///
/// Eight bytes, `Copy`, and safe to keep after the object is freed: the collector then
/// answers `None` for it. A handle keeps its object alive only when it is a root or is
/// held by a live object (see [`Trace`]).
pub struct Gc<T> {
    handle: Handle,
    /// `fn() -> T`: the handle names a `T` but neither owns nor borrows one, so it is
    /// `Copy`, `Send` and `Sync` whatever `T` is.
    object: PhantomData<fn() -> T>,
}

impl<T> Clone for Gc<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Gc<T> {}

impl<T> PartialEq for Gc<T> {
    fn eq(&self, other: &Self) -> bool {
        self.handle == other.handle
    }
}

impl<T> Eq for Gc<T> {}

impl<T> Hash for Gc<T> {
    fn hash<S: Hasher>(&self, state: &mut S) {
        self.handle.hash(state);
    }
}

impl<T> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Gc(slot {}, generation {})",
            self.handle.index, self.handle.generation
        )
    }
}

/// A live object: its block in the heap and what the collector needs to know about it.
struct Object {
    /// The block, holding an initialised value of the type `type_id` names.
    ptr: NonNull<u8>,
    /// The layout the block was allocated with, which `deallocate` needs back.
    layout: Layout,
    /// The type of the value, checked on every typed access.
    type_id: TypeId,
    /// Pushes the handles the value holds; called only with `ptr`.
    trace: unsafe fn(NonNull<u8>, &mut Tracer<'_>),
    /// Drops the value in place; called only with `ptr`, once, just before it is freed.
    drop: unsafe fn(NonNull<u8>),
    /// The epoch of the last collection that found the object reachable.
    marked_in: u64,
}

/// One entry of the slot table.
struct Slot {
    /// The generation a handle must carry to name this slot's object; it advances each
    /// time the slot's object is freed.
    generation: NonZeroU32,
    /// The object, or `None` when the slot is free or retired.
    object: Option<Object>,
}

/// Why a collection ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The program called [`Collector::collect`].
    Requested,
    /// An allocation would have brought the bytes allocated since the last collection
    /// above the threshold.
    Threshold,
    /// The heap refused an allocation as exhausted.
    Exhausted,
}

/// What one collection did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collection {
    /// 1 for the first collection of a collector, and so on.
    pub number: u64,
    /// Why it ran.
    pub trigger: Trigger,
    /// Objects found reachable, which all survived.
    pub marked: usize,
    /// Bytes of the objects that survived (the sizes the heap was asked for).
    pub live_bytes: usize,
    /// Objects freed.
    pub freed_objects: usize,
    /// Bytes freed (the sizes the heap was asked for).
    pub freed_bytes: usize,
    /// How long the program was stopped: marking and sweeping together.
    pub pause: Duration,
}

/// Totals over a collector's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Collections run.
    pub collections: u64,
    /// Objects allocated.
    pub allocated_objects: u64,
    /// Bytes allocated (the sizes the heap was asked for).
    pub allocated_bytes: u64,
    /// Objects marked by collections, counted once per collection that marked them:
    /// the work of marking, which a long-lived object costs again at every collection.
    pub marked_objects: u64,
    /// Objects freed by collections.
    pub reclaimed_objects: u64,
    /// Bytes freed by collections.
    pub reclaimed_bytes: u64,
    /// Objects live now (allocated and not yet freed, reachable or not).
    pub live_objects: usize,
    /// Bytes of the objects live now.
    pub live_bytes: usize,
    /// Bytes allocated since the last collection: a collection is due when this would
    /// pass the threshold.
    pub since_collection: usize,
    /// All pauses added up.
    pub total_pause: Duration,
    /// The longest pause.
    pub longest_pause: Duration,
}

/// A garbage-collected heap of objects, each one a block of a heap `H`.
///
/// ```
/// use gc::{Collector, Gc, Trace, Tracer};
/// use free_list::FreeList;
///
/// struct Pair(u32, Option<Gc<Pair>>);
/// impl Trace for Pair {
///     fn trace(&self, tracer: &mut Tracer<'_>) {
///         self.1.trace(tracer);
///     }
/// }
///
/// let mut gc = Collector::<FreeList>::new(4096);
/// let a = gc.alloc(Pair(1, None)).unwrap();
/// let b = gc.alloc(Pair(2, Some(a))).unwrap();
/// gc.add_root(b);
/// let c = gc.alloc(Pair(3, None)).unwrap();
/// gc.collect();
/// assert_eq!(gc.get(a).map(|p| p.0), Some(1)); // reachable through the root b
/// assert!(gc.get(c).is_none()); // unreachable, freed
/// ```
pub struct Collector<H: RawHeap> {
    /// The objects' memory: every object is one live block of this heap, and every live
    /// block is an object.
    heap: Arena<H>,
    /// Indexed by `Handle::index`; a handle names the object of its slot when their
    /// generations agree.
    slots: Vec<Slot>,
    /// The free slots, reused last-in first-out; retired slots are never here.
    free_slots: Vec<u32>,
    /// The handles the program holds: marking starts here. A multiset: a handle added
    /// twice must be removed twice. Dead handles may stay; marking skips them.
    roots: Vec<Handle>,
    /// Bytes allocated since the last collection.
    since_collection: usize,
    /// A collection runs before an allocation that would bring `since_collection` above it.
    threshold: usize,
    /// The number of the collection running or last run: an object is marked when its
    /// `marked_in` equals it during a collection.
    epoch: u64,
    /// The mark stack, kept between collections to reuse its memory; empty between them.
    gray: Vec<Handle>,
    stats: GcStats,
    last: Option<Collection>,
}

/// The default threshold, as a fraction of the region: a collection after every quarter
/// of the region allocated.
const DEFAULT_THRESHOLD_DIVISOR: usize = 4;

/// The block of an object of type `T`: its own layout, at least one byte long, since
/// heaps hand out no empty blocks.
fn block_layout<T>() -> Result<Layout, AllocError> {
    let layout = Layout::new::<T>();
    Layout::from_size_align(layout.size().max(1), layout.align())
        .map_err(|_| AllocError::Unsupported)
}

/// Traces the `T` at `ptr`.
///
/// # Safety
///
/// `ptr` holds an initialised `T` with no live mutable reference to it.
unsafe fn trace_erased<T: Trace>(ptr: NonNull<u8>, tracer: &mut Tracer<'_>) {
    // SAFETY: the caller's promise: an initialised `T`, not mutably borrowed.
    let value = unsafe { ptr.cast::<T>().as_ref() };
    value.trace(tracer);
}

/// Drops the `T` at `ptr` in place.
///
/// # Safety
///
/// `ptr` holds an initialised `T` that is never used again.
unsafe fn drop_erased<T>(ptr: NonNull<u8>) {
    // SAFETY: the caller's promise: an initialised `T`, dropped once.
    unsafe { ptr.cast::<T>().drop_in_place() };
}

impl<H: RawHeap> Collector<H> {
    /// A collector whose objects live in a heap `H` over `region` fresh bytes, collecting
    /// after every quarter of the region allocated.
    ///
    /// # Panics
    ///
    /// If the system allocator cannot provide the region.
    pub fn new(region: usize) -> Self {
        Self::over(Arena::new(region))
    }

    /// A collector whose objects live in `heap`, which must hold no blocks yet: every
    /// block of the heap is taken to be an object.
    pub fn over(heap: Arena<H>) -> Self {
        let threshold = heap.region().len() / DEFAULT_THRESHOLD_DIVISOR;
        Collector {
            heap,
            slots: Vec::new(),
            free_slots: Vec::new(),
            roots: Vec::new(),
            since_collection: 0,
            threshold,
            epoch: 0,
            gray: Vec::new(),
            stats: GcStats::default(),
            last: None,
        }
    }

    /// Collect before an allocation that would bring the bytes allocated since the last
    /// collection above `bytes`. `usize::MAX` collects only on request or when the heap is
    /// exhausted; 0 collects before every allocation.
    pub fn set_threshold(&mut self, bytes: usize) {
        self.threshold = bytes;
    }

    /// The threshold set by [`set_threshold`](Collector::set_threshold).
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The heap the objects live in: for its `walk`, `stats` and `check`.
    pub fn heap(&self) -> &H {
        &self.heap
    }

    /// Totals so far.
    pub fn stats(&self) -> GcStats {
        self.stats
    }

    /// What the last collection did, if one ran.
    pub fn last_collection(&self) -> Option<Collection> {
        self.last
    }

    // ANCHOR: alloc
    /// Moves `value` into a new object and returns its handle. Runs a collection first
    /// when one is due, and another one if the heap is exhausted; during both, `value`
    /// is a root, so the handles it holds survive. `Err` (with `value` dropped) when the
    /// heap still cannot serve the block, or `T` has no layout a heap can serve.
    pub fn alloc<T: Trace + 'static>(&mut self, value: T) -> Result<Gc<T>, AllocError> {
        let layout = block_layout::<T>()?;
        let mut collected = false;
        if self.since_collection.saturating_add(layout.size()) > self.threshold {
            self.collect_with(Trigger::Threshold, &value);
            collected = true;
        }
        let ptr = match self.heap.allocate(layout) {
            Err(AllocError::Exhausted) if !collected => {
                self.collect_with(Trigger::Exhausted, &value);
                self.heap.allocate(layout)?
            }
            result => result?,
        };
        let Some(handle) = self.take_slot() else {
            // SAFETY: `ptr` was just allocated with `layout` and holds nothing yet.
            unsafe { self.heap.deallocate(ptr, layout) };
            return Err(AllocError::Exhausted);
        };
        // SAFETY: `ptr` is a fresh block of at least `size_of::<T>()` bytes aligned to
        // `align_of::<T>()`, since `layout` is `T`'s own with its size raised to 1.
        unsafe { ptr.cast::<T>().write(value) };
        self.slots[handle.index as usize].object = Some(Object {
            ptr,
            layout,
            type_id: TypeId::of::<T>(),
            trace: trace_erased::<T>,
            drop: drop_erased::<T>,
            marked_in: 0,
        });
        self.since_collection += layout.size();
        self.stats.allocated_objects += 1;
        self.stats.allocated_bytes += layout.size() as u64;
        self.stats.live_objects += 1;
        self.stats.live_bytes += layout.size();
        self.stats.since_collection = self.since_collection;
        Ok(Gc {
            handle,
            object: PhantomData,
        })
    }
    // ANCHOR_END: alloc

    /// A free slot for a new object, or a new slot; `None` when the table is full (more
    /// than `u32::MAX` slots).
    fn take_slot(&mut self) -> Option<Handle> {
        if let Some(index) = self.free_slots.pop() {
            let generation = self.slots[index as usize].generation;
            return Some(Handle { index, generation });
        }
        let index = u32::try_from(self.slots.len()).ok()?;
        let generation = NonZeroU32::MIN;
        self.slots.push(Slot {
            generation,
            object: None,
        });
        Some(Handle { index, generation })
    }

    /// The object `handle` names, if it is still live.
    fn object(&self, handle: Handle) -> Option<&Object> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.object.as_ref()
    }

    /// The object `handle` names if it is live and holds a `T`: handles are not tied to
    /// one collector, and one made by another collector must not be read as the wrong type.
    fn typed<T: 'static>(&self, gc: Gc<T>) -> Option<NonNull<T>> {
        let object = self.object(gc.handle)?;
        (object.type_id == TypeId::of::<T>()).then(|| object.ptr.cast::<T>())
    }

    /// Whether `gc` names a live object.
    pub fn is_live<T: 'static>(&self, gc: Gc<T>) -> bool {
        self.typed(gc).is_some()
    }

    /// The object, or `None` if it has been freed.
    pub fn get<T: 'static>(&self, gc: Gc<T>) -> Option<&T> {
        let ptr = self.typed(gc)?;
        // SAFETY: the block holds an initialised `T` (the slot's type was checked). The
        // borrow of `self` keeps it so: freeing takes `&mut self`, and so does `get_mut`.
        Some(unsafe { ptr.as_ref() })
    }

    /// The object, mutably, or `None` if it has been freed.
    pub fn get_mut<T: 'static>(&mut self, gc: Gc<T>) -> Option<&mut T> {
        let mut ptr = self.typed(gc)?;
        // SAFETY: as in `get`; the mutable borrow of `self` makes this the only reference
        // to the object for its lifetime.
        Some(unsafe { ptr.as_mut() })
    }

    /// Makes `gc` a root: it and everything reachable from it survive collections until
    /// it is removed as often as it was added.
    pub fn add_root<T>(&mut self, gc: Gc<T>) {
        self.roots.push(gc.handle);
    }

    /// Removes one occurrence of `gc` from the roots; `false` if it was not a root.
    pub fn remove_root<T>(&mut self, gc: Gc<T>) -> bool {
        match self.roots.iter().position(|&root| root == gc.handle) {
            Some(at) => {
                self.roots.swap_remove(at);
                true
            }
            None => false,
        }
    }

    /// How many roots there are, counting a handle added twice twice.
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// Frees every object not reachable from the roots, now.
    pub fn collect(&mut self) -> Collection {
        self.collect_with(Trigger::Requested, &())
    }

    // ANCHOR: collect
    /// A collection with `extra` as one more root (the value being allocated).
    fn collect_with(&mut self, trigger: Trigger, extra: &dyn Trace) -> Collection {
        let started = Instant::now();
        self.epoch += 1;
        let (marked, live_bytes) = self.mark(extra);
        let (freed_objects, freed_bytes) = self.sweep();
        let collection = Collection {
            number: self.epoch,
            trigger,
            marked,
            live_bytes,
            freed_objects,
            freed_bytes,
            pause: started.elapsed(),
        };
        self.record(collection);
        collection
    }
    // ANCHOR_END: collect

    // ANCHOR: mark
    /// Marks every object reachable from the roots and `extra` with the current epoch;
    /// returns how many objects and bytes it marked.
    fn mark(&mut self, extra: &dyn Trace) -> (usize, usize) {
        let epoch = self.epoch;
        let mut gray = std::mem::take(&mut self.gray);
        gray.extend_from_slice(&self.roots);
        extra.trace(&mut Tracer::new(&mut gray));
        let (mut marked, mut bytes) = (0, 0);
        while let Some(handle) = gray.pop() {
            let Some(object) = self.live_object_mut(handle) else {
                continue; // a handle to an object freed earlier
            };
            if object.marked_in == epoch {
                continue; // reached before, by another path
            }
            object.marked_in = epoch;
            marked += 1;
            bytes += object.layout.size();
            let (ptr, trace) = (object.ptr, object.trace);
            // SAFETY: `trace` is the tracing function of the type the block holds, and
            // nothing borrows the object mutably during a collection.
            unsafe { trace(ptr, &mut Tracer::new(&mut gray)) };
        }
        self.gray = gray;
        (marked, bytes)
    }
    // ANCHOR_END: mark

    /// The live object `handle` names, mutably.
    fn live_object_mut(&mut self, handle: Handle) -> Option<&mut Object> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.object.as_mut()
    }

    // ANCHOR: sweep
    /// Frees every object the current epoch did not mark; returns how many objects and
    /// bytes it freed.
    fn sweep(&mut self) -> (usize, usize) {
        let epoch = self.epoch;
        let (mut objects, mut bytes) = (0, 0);
        for (index, slot) in (0u32..).zip(self.slots.iter_mut()) {
            let Some(object) = slot.object.take_if(|object| object.marked_in != epoch) else {
                continue;
            };
            // The slot is free before the destructor runs: a panicking destructor leaves
            // a block lost in the heap, never a handle to a half-dropped value.
            // A slot whose generations are used up is retired: never reused.
            if let Some(next) = slot.generation.checked_add(1) {
                slot.generation = next;
                self.free_slots.push(index);
            }
            // SAFETY: the block holds an initialised value of the type `drop` was made
            // for, and no handle can reach it any more.
            unsafe { (object.drop)(object.ptr) };
            // SAFETY: the block is live in this heap, allocated with `object.layout`.
            unsafe { self.heap.deallocate(object.ptr, object.layout) };
            objects += 1;
            bytes += object.layout.size();
        }
        (objects, bytes)
    }
    // ANCHOR_END: sweep

    fn record(&mut self, collection: Collection) {
        let stats = &mut self.stats;
        stats.collections += 1;
        stats.marked_objects += collection.marked as u64;
        stats.reclaimed_objects += collection.freed_objects as u64;
        stats.reclaimed_bytes += collection.freed_bytes as u64;
        stats.live_objects -= collection.freed_objects;
        stats.live_bytes -= collection.freed_bytes;
        stats.total_pause += collection.pause;
        stats.longest_pause = stats.longest_pause.max(collection.pause);
        self.since_collection = 0;
        stats.since_collection = 0;
        self.last = Some(collection);
    }
}

impl<H: RawHeap> Drop for Collector<H> {
    /// Drops every object still live; the heap's memory goes with the arena.
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(object) = slot.object.take() {
                // SAFETY: the block holds an initialised value of the type `drop` was
                // made for; the collector, and every way to reach it, is going away.
                unsafe { (object.drop)(object.ptr) };
            }
        }
    }
}

impl<H: RawHeap> fmt::Debug for Collector<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collector")
            .field("slots", &self.slots.len())
            .field("roots", &self.roots.len())
            .field("threshold", &self.threshold)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
