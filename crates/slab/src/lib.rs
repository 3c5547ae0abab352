//! # slab: object caches over slabs, after Bonwick (USENIX 1994)
//!
//! A program that allocates many objects of a few sizes is served best by keeping, for
//! each size, a *cache* of ready objects. Bonwick's slab allocator builds such caches
//! from *slabs*: a slab is one page cut into equal objects, with its free objects
//! threaded on a list through their own first words. Allocating is then popping that
//! list and freeing is pushing onto it; no search, no splitting, no merging.
//!
//! - **Caches** serve the [size classes](CLASSES), 8 to 512 bytes; a request goes to
//!   the smallest class that holds its size with objects aligned enough
//!   ([`class_of`]). Each cache keeps its slabs on three lists: *full* (no free
//!   object), *partial* (some live, some free) and *empty* (nothing live).
//! - **allocate** pops an object off the first partial slab. When the cache has no
//!   partial slab it takes an empty one, or a new page from the backing heap, whose
//!   objects are carved one at a time as they go out (only the header is written when
//!   the slab is made).
//! - **deallocate** finds the slab from the object's address (below), pushes the object
//!   onto it, and moves the slab to the partial list (it was full) or to the empty list
//!   (nothing live). Past a reserve of [`RESERVE`] empty slabs per cache, an empty slab
//!   goes back to the backing heap.
//! - **Large requests** (above 512 bytes, or aligned beyond what any class gives) go
//!   straight to the backing heap `B`, which also supplies the slabs: `Slab<Buddy>`
//!   stacks two allocators, as the Linux kernel stacks SLUB on its buddy page allocator.
//!   When the backing heap is full, the reserve of empty slabs is given back to it and
//!   the request tried again; when no slab can be had at all, a small request is served
//!   by the backing heap like a large one.
//!
//! ## Finding the slab of a pointer
//!
//! Slabs are allocated from the backing heap with a layout whose size and alignment are
//! both [`SLAB_BYTES`], so the slab around an object is its address with the low bits
//! cleared and its header sits at a fixed place in it: one mask, no search, no header
//! in front of each object. Bonwick's alternative, a hash table from object to slab for
//! caches whose slab data is kept apart, costs a lookup per free; a page map (as
//! tcmalloc keeps) costs a table indexed by page. Aligning slabs costs the backing heap
//! nothing when it is a buddy allocator, whose blocks are aligned to their size anyway.
//!
//! Whether a pointer is in a slab at all, or is a large block, is told by the *frame
//! map*: one bit per page-sized frame of the region, set while a slab occupies it, in
//! a block got from the backing heap when the heap is made. Linux asks the same of the
//! page (`PageSlab`) in `kfree`.
//!
//! ## Slab layout
//!
//! ```text
//!  one slab: SLAB_BYTES (4096) aligned to SLAB_BYTES, from the backing heap
//!  ┌────────┬────────┬────────┬────────┬─────┬────────┬──────┬────────────────────┐
//!  │ obj 0  │ obj 1  │ obj 2  │ obj 3  │ ... │ obj n-1│ tail │ header             │
//!  │ live   │ freed ─┼> freed │ live   │     │ fresh  │unused│ free ─> obj 1      │
//!  │        │        │ ─> none│        │     │        │      │ fresh ─> obj n-1   │
//!  └────────┴────────┴────────┴────────┴─────┴────────┴──────┴────────────────────┘
//!   freed objects link through their first word;   live, size, class, prev/next
//!   fresh ones (never handed out) are carved from `fresh` up when the list is empty
//!
//!  slab & !(SLAB_BYTES - 1) ── the same for every object in it ──> header at the end
//!
//!  the region, as the backing heap lays it out:
//!  ┌──────────┬──────────┬──────────┬─────────┬──────────┬────────────────────┐
//!  │frame map │ slab (32)│ slab (64)│ large   │ slab (32)│       free         │
//!  └──────────┴──────────┴──────────┴─────────┴──────────┴────────────────────┘
//! ```
//!
//! `walk` takes the backing heap's walk and splits each slab into its live objects
//! (`Used`, one stretch each), the runs of free objects between them (`Free`: bytes a
//! future request can be served from, though only requests of the slab's class, one
//! object each) and its tail and header (`Overhead`). So a slab heap's `largest_free`
//! is the longest run of free objects, more than one request can take. An empty slab
//! is one `Free` stretch: the backing heap gets it back before it refuses any request.
//! The frame map and the backing heap's own headers are `Overhead`; large blocks are
//! `Used`.
//!
//! ## Invariants (checked by [`RawHeap::check`])
//!
//! 1. Every slab on a cache's lists belongs to that cache's class, starts at a frame
//!    and that frame is marked in the frame map; the map marks no other frame.
//! 2. A slab's free list holds distinct objects of that slab below its fresh (never
//!    handed out) ones, on object boundaries, and `live` plus their number is the
//!    number of objects carved so far.
//! 3. A slab is on the full list iff none of its objects is free, on the empty list iff
//!    none is live, and on the partial list otherwise; list links agree both ways.
//! 4. A cache keeps at most [`RESERVE`] empty slabs.
//! 5. The live objects and large blocks are exactly the blocks handed out.
//!
//! ## Cost of each operation
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` (small) | O(1): a table lookup and a pop; a new slab costs one header and a block of the backing heap |
//! | `deallocate` (small) | O(1): a bit of the frame map, a mask and a push |
//! | large requests | the backing heap's |
//! | `resize_in_place` | O(1) within an object; the backing heap's for large blocks |
//! | `usable_size` | O(1): the object size from the slab's header |
//! | `stats`, `walk` | the backing heap's walk plus O(objects) per slab |
//! | `check` | `walk` plus O(objects) per slab |
//!
//! ## Example
//!
//! ```
//! use core::alloc::Layout;
//! use free_list::FreeList;
//! use rawheap::{Arena, RawHeap};
//! use slab::Slab;
//!
//! let mut heap = Arena::<Slab<FreeList>>::new(1 << 16);
//! let node = Layout::new::<[u64; 3]>();
//! let a = heap.allocate(node)?;
//! // SAFETY: `a` came from this heap with `node` and is freed once.
//! unsafe { heap.deallocate(a, node) };
//! assert_eq!(heap.allocate(node)?, a, "a free is a push, the next allocate its pop");
//! heap.check()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]

mod class;
mod frames;
mod slabs;

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::{
    AllocError, Block, BlockKind, Capabilities, HeapError, RawHeap, Stats, Usage, check_walk,
    offset_in,
};

pub use class::{
    CLASS_COUNT, CLASSES, LARGEST_CLASS, SLAB_BYTES, class_of, object_align, objects_per_slab,
    tail_bytes,
};
pub use slabs::HEADER;

use frames::FrameMap;
use slabs::{FreeObjects, SlabList, SlabRef};

/// Empty slabs a cache keeps for its next requests before giving them back to the
/// backing heap: one spares a program that allocates and frees around a slab boundary
/// a page round trip each time.
pub const RESERVE: usize = 1;

/// The layout slabs are allocated with: size and alignment `SLAB_BYTES`.
const SLAB_LAYOUT: Layout = match Layout::from_size_align(SLAB_BYTES, SLAB_BYTES) {
    Ok(layout) => layout,
    Err(_) => panic!("SLAB_BYTES is a power of two"),
};

/// The slabs of one size class.
#[derive(Debug, Default)]
struct Cache {
    /// Slabs with live and free objects; allocation pops from the first.
    partial: SlabList,
    /// Slabs with no free object.
    full: SlabList,
    /// Slabs with no live object, at most `RESERVE` of them.
    empty: SlabList,
}

/// A slab allocator whose slabs and large blocks come from the backing heap `B`.
/// See the [crate documentation](crate).
pub struct Slab<B: RawHeap> {
    /// The heap that owns the region and hands out slabs and large blocks.
    backing: B,
    /// One cache per size class, `caches[c]` serving objects of `CLASSES[c]` bytes.
    caches: [Cache; CLASS_COUNT],
    /// Marks exactly the frames where a slab of some cache starts.
    frames: FrameMap,
    /// Live blocks (objects and large blocks), requested bytes, high-water mark.
    usage: Usage,
}

// SAFETY: the heap is the only user of its region (the promise made to `new`), and all
// its pointers point into it: moving the heap to another thread moves everything.
unsafe impl<B: RawHeap + Send> Send for Slab<B> {}

impl<B: RawHeap> core::fmt::Debug for Slab<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Slab")
            .field("caches", &self.caches)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

/// Which list of its cache a slab is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No free object.
    Full,
    /// Live and free objects.
    Partial,
    /// No live object.
    Empty,
}

/// What one cache holds, as [`Slab::caches`] reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// The cache's size class: an index into [`CLASSES`].
    pub class: usize,
    /// The size of the cache's objects, `CLASSES[class]`.
    pub object_size: usize,
    /// Slabs with no free object.
    pub full: usize,
    /// Slabs with live and free objects.
    pub partial: usize,
    /// Slabs with nothing live, kept in reserve.
    pub empty: usize,
    /// Objects handed out and not freed.
    pub live: usize,
}

impl CacheStats {
    /// Slabs in the cache.
    pub const fn slabs(&self) -> usize {
        self.full + self.partial + self.empty
    }

    /// Objects the cache's slabs hold, live or free.
    pub fn objects(&self) -> usize {
        self.slabs() * self.objects_per_slab()
    }

    /// Objects in one slab of this cache.
    pub fn objects_per_slab(&self) -> usize {
        objects_per_slab(self.class)
    }

    /// Bytes lost at the tail of each of the cache's slabs: past the last object,
    /// before the header, too short for one more object.
    pub fn tail_per_slab(&self) -> usize {
        tail_bytes(self.class)
    }

    /// Bytes lost to the tails of all the cache's slabs.
    pub fn tail_bytes(&self) -> usize {
        self.slabs() * self.tail_per_slab()
    }
}

impl<B: RawHeap> Slab<B> {
    /// The backing heap, which holds the slabs, the large blocks and the frame map.
    pub fn backing(&self) -> &B {
        &self.backing
    }

    /// What each cache holds, smallest class first.
    pub fn caches(&self) -> impl Iterator<Item = CacheStats> + '_ {
        self.caches.iter().enumerate().map(|(class, cache)| {
            let mut stats = CacheStats {
                class,
                object_size: CLASSES[class],
                full: cache.full.len(),
                partial: cache.partial.len(),
                empty: cache.empty.len(),
                live: 0,
            };
            let lists = [&cache.full, &cache.partial];
            // SAFETY: the lists hold live slabs of this heap (invariant 3).
            stats.live = lists
                .into_iter()
                .flat_map(|list| unsafe { list.iter(list.len()) })
                .map(|(slab, _)| unsafe { slab.live() })
                .sum();
            stats
        })
    }

    /// Gives every empty slab back to the backing heap, like Solaris's
    /// `kmem_cache_reap` or Linux's `kmem_cache_shrink`; returns how many there were.
    /// Freeing every block and then shrinking restores the heap as it was new.
    pub fn shrink(&mut self) -> usize {
        let mut released = 0;
        for class in 0..CLASS_COUNT {
            while let Some(slab) = self.caches[class].empty.pop_front() {
                // SAFETY: an empty slab of this heap, now on no list.
                unsafe { self.release(slab) };
                released += 1;
            }
        }
        released
    }

    /// Gives the slab, on no list and with nothing live, back to the backing heap.
    ///
    /// # Safety
    ///
    /// `slab` is a slab of this heap, on no list, with no live object.
    unsafe fn release(&mut self, slab: SlabRef) {
        // SAFETY: the frame map has words, since a slab was made.
        unsafe { self.frames.mark(slab.addr(), false) };
        // SAFETY: the slab came from the backing heap with `SLAB_LAYOUT`, and nothing
        // in it is used any more.
        unsafe { self.backing.deallocate(slab.start(), SLAB_LAYOUT) };
    }

    /// Asks the backing heap for `layout`; when it is full, gives it the empty slabs
    /// and asks again.
    fn ask_backing(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        match self.backing.allocate(layout) {
            Err(AllocError::Exhausted) if self.shrink() > 0 => self.backing.allocate(layout),
            answer => answer,
        }
    }

    /// Checks the slabs on `list`, which should be `class`'s slabs in `state`: each at
    /// the start of a marked frame, its free list sound, on the list its state says,
    /// linked both ways (invariants 1 to 3). Reads a slab's header only after finding
    /// that it starts a marked frame. Returns how many slabs the list holds.
    fn check_list(&self, list: &SlabList, class: usize, state: State) -> Result<usize, HeapError> {
        let region = self.region();
        let start = region.cast::<u8>().as_ptr().addr();
        let most = region.len() / SLAB_BYTES + 1;
        let (mut count, mut before, mut cursor) = (0, None, list.first());
        while let Some(slab) = cursor {
            let at = |invariant| Err(HeapError::new(invariant).at(slab.addr()));
            let inside = slab.addr() >= start && slab.addr() + SLAB_BYTES <= start + region.len();
            if !inside || !self.frames.is_slab(slab.addr()) {
                return at("a slab on a cache's list lies in a marked frame of the region");
            }
            if slab.addr() % SLAB_BYTES != 0 {
                return at("a slab on a cache's list starts at its frame");
            }
            // SAFETY: the slab starts a marked frame, so its header is a slab's.
            let (class_of_slab, live, free, (prev, next)) = unsafe {
                (
                    slab.class(),
                    slab.live(),
                    FreeObjects::of(slab)?,
                    slab.neighbours(),
                )
            };
            if class_of_slab != class {
                return at("a slab on a cache's list belongs to its class");
            }
            let is = match (free.count(), live) {
                (0, _) => State::Full,
                (_, 0) => State::Empty,
                _ => State::Partial,
            };
            if is != state {
                return at("a slab is on the list its free and live objects say");
            }
            if prev != before {
                return at("slab list links agree: a slab links back to the one before it");
            }
            count += 1;
            if count > most {
                return at("a slab list ends");
            }
            (before, cursor) = (Some(slab), next);
        }
        if count != list.len() {
            return Err(HeapError::new(
                "a slab list's length is its number of slabs",
            ));
        }
        Ok(count)
    }

    /// A pointer to `addr`, with the region's provenance.
    ///
    /// # Safety
    ///
    /// `addr` is inside the region.
    unsafe fn pointer_to(&self, addr: usize) -> NonNull<u8> {
        let start = self.region().cast::<u8>();
        // SAFETY: the caller's promise.
        unsafe { start.byte_add(addr - start.as_ptr().addr()) }
    }

    /// The offset from the region's start of one past the `len` bytes at `ptr`.
    fn end_offset(&self, ptr: NonNull<u8>, len: usize) -> usize {
        offset_in(self.backing.region(), ptr.as_ptr().addr() + len)
    }

    // ANCHOR: grow_cache
    /// Gives the cache of `class` a slab with a free object: its reserved empty slab, or
    /// a new one carved from a page of the backing heap.
    #[cold]
    fn grow_cache(&mut self, class: usize) -> Result<SlabRef, AllocError> {
        let slab = match self.caches[class].empty.pop_front() {
            Some(slab) => slab,
            None if self.frames.has_room() => {
                let page = self.ask_backing(SLAB_LAYOUT)?;
                self.usage.reach(self.end_offset(page, SLAB_BYTES));
                // SAFETY: the backing heap handed out these SLAB_BYTES, aligned to
                // SLAB_BYTES; the frame is in the region the map covers.
                unsafe {
                    self.frames.mark(page.as_ptr().addr(), true);
                    SlabRef::format(page, class)
                }
            }
            None => return Err(AllocError::Unsupported),
        };
        // SAFETY: the slab is live and on no list.
        unsafe { self.caches[class].partial.push_front(slab) };
        Ok(slab)
    }
    // ANCHOR_END: grow_cache

    /// Serves a small `layout` of `class` from a new or reserved slab, or, when no slab
    /// can be had, from the backing heap like a large request.
    #[cold]
    fn allocate_slow(&mut self, class: usize, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if self.grow_cache(class).is_err() {
            return self.allocate_large(layout);
        }
        // SAFETY: the invariants hold; `grow_cache` put a slab with a free object first
        // on the partial list, so the answer is always an object.
        unsafe { self.take_object(class, layout.size()) }.ok_or(AllocError::Exhausted)
    }

    /// Serves `layout` from the backing heap.
    fn allocate_large(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let block = self.ask_backing(layout)?;
        // SAFETY: the block is live in the backing heap with `layout`.
        let usable = unsafe { self.backing.usable_size(block, layout) };
        self.usage
            .on_allocate(layout.size(), self.end_offset(block, usable));
        Ok(block)
    }

    // ANCHOR: take_object
    /// Pops an object off the first partial slab of `class`'s cache, moving the slab
    /// to the full list when it was its last free object.
    ///
    /// # Safety
    ///
    /// The invariants hold.
    #[inline]
    unsafe fn take_object(&mut self, class: usize, size: usize) -> Option<NonNull<u8>> {
        let cache = &mut self.caches[class];
        let slab = cache.partial.first()?;
        // SAFETY: a slab on the partial list is live and has a free object.
        unsafe {
            let object = slab.pop()?;
            if slab.is_full() {
                cache.partial.unlink(slab);
                cache.full.push_front(slab);
            }
            let end = self.end_offset(slab.start(), SLAB_BYTES);
            self.usage.on_allocate(size, end);
            Some(object)
        }
    }
    // ANCHOR_END: take_object

    // ANCHOR: give_back
    /// Pushes `object` back onto its slab, moving the slab from full to partial, or to
    /// the empty list (or back to the backing heap) when nothing in it is live.
    ///
    /// # Safety
    ///
    /// `object` is a live object of a slab of this heap, which nobody uses any more.
    #[inline]
    unsafe fn give_back(&mut self, object: NonNull<u8>) {
        // SAFETY: the caller's promise; the slab's lists are its cache's (invariant 3).
        unsafe {
            let slab = SlabRef::of_object(object);
            let class = slab.class();
            let cache = &mut self.caches[class];
            if slab.is_full() {
                cache.full.unlink(slab);
                cache.partial.push_front(slab);
            }
            slab.push(object);
            if slab.live() == 0 {
                cache.partial.unlink(slab);
                if cache.empty.len() < RESERVE {
                    cache.empty.push_front(slab);
                } else {
                    self.release(slab);
                }
            }
        }
    }
    // ANCHOR_END: give_back
}

// SAFETY: objects are cut from slabs, which are disjoint blocks of the backing heap, and
// a live object is on no free list, so no two live blocks share a byte, and only a free
// object's first word is ever written by the heap; the header lies past the objects.
// Large blocks are the backing heap's, which keeps its promises; refusals change
// nothing; `resize_in_place` never moves; walk and stats report the slabs as they are.
unsafe impl<B: RawHeap> RawHeap for Slab<B> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        // SAFETY: the caller's promise, passed on.
        let mut backing = unsafe { B::new(region) };
        let frames = FrameMap::new(&mut backing, region);
        let mut usage = Usage::default();
        if let Some(map) = frames.block() {
            usage.reach(backing.region().len().min(offset_in(region, map) + 1));
        }
        Slab {
            backing,
            caches: Default::default(),
            frames,
            usage,
        }
    }

    // ANCHOR: allocate
    #[inline]
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let Some(class) = class_of(layout) else {
            return self.allocate_large(layout);
        };
        // SAFETY: the invariants hold.
        match unsafe { self.take_object(class, layout.size()) } {
            Some(object) => Ok(object),
            None => self.allocate_slow(class, layout),
        }
    }
    // ANCHOR_END: allocate

    // ANCHOR: deallocate
    #[inline]
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        self.usage.on_deallocate(layout.size());
        if self.frames.is_slab(ptr.as_ptr().addr()) {
            // SAFETY: the caller's promise: `ptr` is live, and it lies in a slab.
            unsafe { self.give_back(ptr) }
        } else {
            // SAFETY: the caller's promise: not in a slab, so a block of the backing heap.
            unsafe { self.backing.deallocate(ptr, layout) }
        }
    }
    // ANCHOR_END: deallocate

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        let end = if self.frames.is_slab(ptr.as_ptr().addr()) {
            // SAFETY: the caller's promise: `ptr` is a live object of a slab.
            let slab = unsafe { SlabRef::of_object(ptr) };
            // SAFETY: as above.
            if new.size() > CLASSES[unsafe { slab.class() }] {
                return Err(AllocError::Exhausted);
            }
            self.end_offset(slab.start(), SLAB_BYTES)
        } else {
            // SAFETY: the caller's promise: a live block of the backing heap.
            unsafe { self.backing.resize_in_place(ptr, old, new)? };
            // SAFETY: the block is now live in the backing heap with `new`.
            let usable = unsafe { self.backing.usable_size(ptr, new) };
            self.end_offset(ptr, usable)
        };
        self.usage.on_resize(old.size(), new.size(), end);
        Ok(())
    }

    #[inline]
    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        if self.frames.is_slab(ptr.as_ptr().addr()) {
            // SAFETY: the caller's promise: `ptr` is a live object of a slab.
            CLASSES[unsafe { SlabRef::of_object(ptr).class() }]
        } else {
            // SAFETY: the caller's promise: a live block of the backing heap.
            unsafe { self.backing.usable_size(ptr, layout) }
        }
    }

    fn region(&self) -> NonNull<[u8]> {
        self.backing.region()
    }

    fn stats(&self) -> Stats {
        Stats::from_walk(self.region().len(), &self.usage, |visit| self.walk(visit))
    }

    // ANCHOR: walk
    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        let map = self.frames.block();
        self.backing.walk(&mut |block| match block.kind {
            BlockKind::Used if Some(block.addr) == map => {
                visit(Block::overhead(block.addr, block.size));
            }
            BlockKind::Used if self.frames.is_slab(block.addr) => {
                // SAFETY: a marked frame holds a live slab, whose block this is; the
                // block's address is inside the region.
                unsafe {
                    walk_slab(
                        SlabRef::of_object(self.pointer_to(block.addr)),
                        block,
                        visit,
                    )
                }
            }
            _ => visit(block),
        });
    }
    // ANCHOR_END: walk

    // ANCHOR: check
    fn check(&self) -> Result<(), HeapError> {
        // The walk reads the slabs' free lists: they are checked first, so that a
        // broken one is named rather than seen as a walk gone wrong.
        let mut slabs = 0;
        for (class, cache) in self.caches.iter().enumerate() {
            slabs += self.check_list(&cache.full, class, State::Full)?;
            slabs += self.check_list(&cache.partial, class, State::Partial)?;
            slabs += self.check_list(&cache.empty, class, State::Empty)?;
            if cache.empty.len() > RESERVE {
                return Err(HeapError::new("a cache keeps at most RESERVE empty slabs"));
            }
        }
        if slabs != self.frames.marked() {
            return Err(HeapError::new(
                "the frame map marks exactly the frames of the caches' slabs",
            ));
        }
        check_walk(self)?;
        let mut used = 0;
        self.walk(&mut |block| used += usize::from(block.kind == BlockKind::Used));
        if used != self.usage.live_blocks {
            return Err(HeapError::new(
                "the live objects and large blocks are exactly the blocks handed out",
            ));
        }
        self.backing.check()
    }
    // ANCHOR_END: check

    fn capabilities(&self) -> Capabilities {
        let backing = self.backing.capabilities();
        Capabilities {
            // The reserve of empty slabs stays out of the backing heap until it is
            // needed or `shrink` gives it back.
            restores_when_empty: false,
            resizes_in_place: true,
            ..backing
        }
    }
}

// ANCHOR: walk_slab
/// Reports the slab in the backing heap's `block`, which starts at `slab`'s first
/// byte: each live object as a used stretch, each run of free objects between them as
/// one free stretch, and the tail, header and whatever the backing heap gave beyond
/// `SLAB_BYTES` as overhead; an empty slab as one free stretch. A slab whose free list
/// is broken shows its objects as overhead (`check` says why).
///
/// # Safety
///
/// `slab` is a live slab of this heap, and nothing changes meanwhile.
unsafe fn walk_slab(slab: SlabRef, block: Block, visit: &mut dyn FnMut(Block)) {
    // SAFETY: the caller's promise.
    let (class, live, free) = unsafe { (slab.class(), slab.live(), FreeObjects::of(slab)) };
    let objects_end = match free {
        _ if live == 0 => {
            visit(Block::free(block.addr, SLAB_BYTES));
            block.addr + SLAB_BYTES
        }
        Ok(free) => {
            let size = CLASSES[class];
            let mut run = block.addr;
            for index in free.live() {
                let object = block.addr + index * size;
                if object > run {
                    visit(Block::free(run, object - run));
                }
                visit(Block::used(object, size));
                run = object + size;
            }
            let end = block.addr + free.objects() * size;
            if end > run {
                visit(Block::free(run, end - run));
            }
            end
        }
        Err(_) => block.addr,
    };
    if block.end() > objects_end {
        visit(Block::overhead(objects_end, block.end() - objects_end));
    }
}
// ANCHOR_END: walk_slab

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_counts_its_slabs_objects_and_tails() {
        let class = 4;
        let cache = CacheStats {
            class,
            object_size: CLASSES[class],
            full: 2,
            partial: 1,
            empty: 3,
            live: 70,
        };
        assert_eq!(cache.slabs(), 6);
        assert_eq!(cache.objects(), 6 * cache.objects_per_slab());
        assert_eq!(cache.tail_bytes(), 6 * cache.tail_per_slab());
        // A slab is its objects, its tail and its header.
        assert_eq!(
            cache.objects_per_slab() * cache.object_size + cache.tail_per_slab() + HEADER,
            SLAB_BYTES
        );
    }
}
