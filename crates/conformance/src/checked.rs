//! [`Checked<H>`]: any heap, with every call checked against a shadow of its live blocks.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::collections::{BTreeMap, BTreeSet};

use rawheap::{AllocError, Block, BlockKind, Capabilities, HeapError, RawHeap, Stats, align};

use crate::violation::at;

/// Bytes of guard after every block: a program that writes past its block's usable
/// size changes them, and so does a heap that writes into a live block.
const GUARD: usize = 8;
/// What the guard bytes hold.
const GUARD_BYTE: u8 = 0xFD;

/// A live block as `Checked` knows it.
#[derive(Clone, Copy, Debug)]
struct Entry {
    ptr: NonNull<u8>,
    /// The layout the caller used.
    layout: Layout,
    /// The layout the inner heap got: `GUARD` bytes more.
    inner: Layout,
    /// The inner heap's usable size; the caller gets `GUARD` less.
    inner_usable: usize,
}

impl Entry {
    fn start(&self) -> usize {
        self.ptr.as_ptr().addr()
    }

    fn end(&self) -> usize {
        self.start() + self.inner_usable
    }

    fn guard(&self) -> &[u8] {
        // SAFETY: the block is live and its last `GUARD` usable bytes (inside the inner
        // heap's usable size, which is at least the caller's size plus `GUARD`) were
        // written by `Checked` when it handed the block out; the caller never gets them.
        unsafe {
            core::slice::from_raw_parts(self.ptr.as_ptr().add(self.inner_usable - GUARD), GUARD)
        }
    }

    fn write_guard(&self) {
        // SAFETY: as in `guard`: the last `GUARD` of the inner heap's usable bytes.
        unsafe {
            self.ptr
                .as_ptr()
                .add(self.inner_usable - GUARD)
                .write_bytes(GUARD_BYTE, GUARD)
        };
    }
}

/// A heap `H` that checks every call made to it and every answer it gives, and panics
/// with a message in plain words on the first problem.
///
/// On the caller's side it catches, **before** the call reaches `H` (where it would be
/// undefined behaviour): a double free or use after free, a pointer from outside the
/// region (a foreign pointer), a pointer into the middle of a block (an interior
/// pointer), a pointer the heap never handed out, and a layout on `deallocate`,
/// `reallocate` or `usable_size` that differs from the one the block was allocated
/// with. Each block gets 8 guard bytes past its usable size, so writing past the end of
/// a block is caught when the block is freed or resized (a buffer overflow).
///
/// On the heap's side it catches blocks outside the region, misaligned, smaller than
/// asked, or overlapping a live block; guard bytes of the neighbouring blocks changed
/// by a call; and `check()` failing after any call that changes the heap.
///
/// [`leaks`](Checked::leaks) lists the blocks still live and
/// [`assert_no_leaks`](Checked::assert_no_leaks) panics if there are any. `Checked`
/// keeps its shadow in std collections, so it is for tests over an
/// [`Arena`](rawheap::Arena), not for a global allocator.
///
/// ```rust,ignore
/// let mut heap = rawheap::Arena::<Checked<MyHeap>>::new(4096);
/// let layout = core::alloc::Layout::new::<u64>();
/// let block = heap.allocate(layout).unwrap();
/// unsafe { heap.deallocate(block, layout) };
/// unsafe { heap.deallocate(block, layout) }; // panics: "double free: deallocate of the block at +0x0, ..."
/// ```
#[derive(Debug)]
pub struct Checked<H> {
    inner: H,
    /// The region's first address and length, as the inner heap was given them.
    base: usize,
    len: usize,
    /// The live blocks by address; their ranges (with guards) never overlap.
    live: BTreeMap<usize, Entry>,
    /// Addresses freed and not handed out since: passing one is a double free or a use
    /// after free.
    freed: BTreeSet<usize>,
}

/// The layout the inner heap gets for the caller's `layout`: `GUARD` bytes longer.
fn guarded(layout: Layout) -> Result<Layout, AllocError> {
    let size = layout
        .size()
        .checked_add(GUARD)
        .ok_or(AllocError::Unsupported)?;
    Layout::from_size_align(size, layout.align()).map_err(|_| AllocError::Unsupported)
}

impl<H: RawHeap> Checked<H> {
    /// The heap inside.
    pub fn inner(&self) -> &H {
        &self.inner
    }

    /// The blocks still live, by address, with the layouts they were allocated with.
    pub fn leaks(&self) -> Vec<(NonNull<u8>, Layout)> {
        self.live.values().map(|e| (e.ptr, e.layout)).collect()
    }

    /// Panics, listing them, if any block is still live: "2 blocks leaked: 24 bytes at
    /// +0x40, 100 bytes at +0x80".
    pub fn assert_no_leaks(&self) {
        if self.live.is_empty() {
            return;
        }
        let list: Vec<String> = self
            .live
            .values()
            .map(|e| format!("{} bytes at {}", e.layout.size(), self.at(e.start())))
            .collect();
        let blocks = if list.len() == 1 { "block" } else { "blocks" };
        panic!("{} {blocks} leaked: {}", list.len(), list.join(", "));
    }

    fn at(&self, addr: usize) -> String {
        at(addr, self.base)
    }

    /// The live block at `ptr` with `layout`, or a panic naming the misuse.
    fn expect_live(&self, call: &str, ptr: NonNull<u8>, layout: Layout) -> Entry {
        let addr = ptr.as_ptr().addr();
        if let Some(entry) = self.live.get(&addr) {
            if entry.layout != layout {
                panic!(
                    "wrong layout: {call} of the block at {} with size {} and align {}, but it was allocated (or last reallocated) with size {} and align {}",
                    self.at(addr),
                    layout.size(),
                    layout.align(),
                    entry.layout.size(),
                    entry.layout.align()
                );
            }
            return *entry;
        }
        if addr < self.base || addr - self.base >= self.len {
            panic!(
                "foreign pointer: {call} of {ptr:p}, which is not inside this heap's region ({:#x}, {} bytes): it came from another allocator, or is no block at all",
                self.base, self.len
            );
        }
        if self.freed.contains(&addr) {
            let misuse = if call == "deallocate" {
                "double free"
            } else {
                "use after free"
            };
            panic!(
                "{misuse}: {call} of the block at {}, which was already freed",
                self.at(addr)
            );
        }
        if let Some(block) = self.live.range(..addr).next_back().map(|(_, e)| e)
            && addr < block.start() + block.inner_usable - GUARD
        {
            panic!(
                "interior pointer: {call} of {}, which points {} bytes into the block at {}: pass the pointer allocate returned",
                self.at(addr),
                addr - block.start(),
                self.at(block.start())
            );
        }
        panic!(
            "not a block: {call} of {}, which this heap never handed out",
            self.at(addr)
        );
    }

    /// Panics if the guard after `entry` changed; `who` says who may have done it.
    fn expect_guard(&self, entry: &Entry, who: &str) {
        if let Some(i) = entry.guard().iter().position(|&b| b != GUARD_BYTE) {
            panic!(
                "{who}: the guard bytes after the {}-byte block at {} changed (byte {i} past its usable size reads {:#04x})",
                entry.layout.size(),
                self.at(entry.start()),
                entry.guard()[i]
            );
        }
    }

    /// The live blocks just before and after `start..end`.
    fn neighbours(&self, start: usize, end: usize) -> Vec<Entry> {
        let before = self.live.range(..start).next_back();
        let after = self.live.range(end..).next();
        before.into_iter().chain(after).map(|(_, e)| *e).collect()
    }

    fn expect_neighbours_intact(&self, call: &str, start: usize, end: usize) {
        for entry in self.neighbours(start, end) {
            self.expect_guard(
                &entry,
                &format!("memory clobbered during {call}: the program wrote past the end of a block, or the heap wrote into it"),
            );
        }
    }

    fn expect_heap_checks(&self, call: &str) {
        if let Err(e) = self.inner.check() {
            let place = e
                .addr
                .map(|a| format!(" at {}", self.at(a)))
                .unwrap_or_default();
            panic!(
                "heap bug: check() failed after {call}: {}{place}",
                e.invariant
            );
        }
    }

    /// Checks a block the inner heap just handed out for the caller's `layout`, then
    /// records it and writes its guard.
    fn admit(&mut self, call: &str, ptr: NonNull<u8>, layout: Layout, inner: Layout) {
        // SAFETY: the inner heap just returned `ptr` for `inner`, so it is live with it.
        let inner_usable = unsafe { self.inner.usable_size(ptr, inner) };
        let entry = Entry {
            ptr,
            layout,
            inner,
            inner_usable,
        };
        let start = entry.start();
        let inside = start
            .checked_sub(self.base)
            .is_some_and(|offset| offset <= self.len && inner_usable <= self.len - offset);
        if !inside {
            panic!(
                "heap bug: {call} returned {} with {inner_usable} usable bytes, outside the {}-byte region",
                self.at(start),
                self.len
            );
        }
        if !align::is_aligned(start, layout.align()) {
            panic!(
                "heap bug: {call} of {} bytes aligned to {} returned the misaligned {}",
                layout.size(),
                layout.align(),
                self.at(start)
            );
        }
        if inner_usable < inner.size() {
            panic!(
                "heap bug: usable_size says {inner_usable} bytes for a {}-byte block at {}",
                inner.size(),
                self.at(start)
            );
        }
        if let Some(other) = self
            .neighbours(start, start)
            .into_iter()
            .find(|other| other.start() < entry.end() && start < other.end())
        {
            panic!(
                "heap bug: {call} returned {}..{}, which overlaps the live block at {}..{}",
                self.at(start),
                self.at(entry.end()),
                self.at(other.start()),
                self.at(other.end())
            );
        }
        self.expect_neighbours_intact(call, start, entry.end());
        entry.write_guard();
        self.freed.remove(&start);
        self.live.insert(start, entry);
        self.expect_heap_checks(call);
    }

    fn allocate_with(
        &mut self,
        call: &str,
        layout: Layout,
        allocate: fn(&mut H, Layout) -> Result<NonNull<u8>, AllocError>,
    ) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        let inner = guarded(layout)?;
        let ptr = allocate(&mut self.inner, inner)?;
        self.admit(call, ptr, layout, inner);
        Ok(ptr)
    }
}

// SAFETY: every call reaches `H` only with a pointer `H` handed out and the layout it
// was handed out for (grown by `GUARD`), which `Checked` verifies first; every block `H`
// returns is checked to be inside the region, aligned, large enough and apart from the
// live blocks before it is passed on, and the caller gets `GUARD` bytes fewer than `H`
// reserved. `walk` and `stats` are `H`'s, with each live block's guard counted as
// overhead. So the guarantees are `H`'s, checked.
unsafe impl<H: RawHeap> RawHeap for Checked<H> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        Checked {
            // SAFETY: the caller's promise about `region`, passed on unchanged.
            inner: unsafe { H::new(region) },
            base: region.as_ptr().cast::<u8>().addr(),
            len: region.len(),
            live: BTreeMap::new(),
            freed: BTreeSet::new(),
        }
    }

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.allocate_with("allocate", layout, H::allocate)
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.allocate_with("allocate_zeroed", layout, H::allocate_zeroed)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let entry = self.expect_live("deallocate", ptr, layout);
        self.expect_guard(
            &entry,
            "buffer overflow: the program wrote past the end of its block",
        );
        self.expect_neighbours_intact("deallocate", entry.start(), entry.end());
        self.live.remove(&entry.start());
        self.freed.insert(entry.start());
        // SAFETY: `expect_live` found the block live with this layout, so `H` handed it
        // out with `entry.inner`, and `Checked` forgets it now.
        unsafe { self.inner.deallocate(ptr, entry.inner) };
        self.expect_neighbours_intact("deallocate", entry.start(), entry.end());
        self.expect_heap_checks("deallocate");
    }

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        let entry = self.expect_live("resize_in_place", ptr, old);
        self.expect_guard(
            &entry,
            "buffer overflow: the program wrote past the end of its block",
        );
        let inner_new = guarded(new)?;
        // SAFETY: the block is live with `entry.inner` in `H`; the caller promised the
        // alignment and a non-zero size for `new`.
        unsafe { self.inner.resize_in_place(ptr, entry.inner, inner_new) }?;
        self.live.remove(&entry.start());
        self.admit("resize_in_place", ptr, new, inner_new);
        Ok(())
    }

    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let entry = self.expect_live("reallocate", ptr, old);
        self.expect_guard(
            &entry,
            "buffer overflow: the program wrote past the end of its block",
        );
        if new.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        let inner_new = guarded(new)?;
        // SAFETY: the block is live with `entry.inner` in `H`.
        let moved = unsafe { self.inner.reallocate(ptr, entry.inner, inner_new) };
        let Ok(moved) = moved else {
            self.expect_guard(&entry, "heap bug: a refused reallocate changed the block");
            self.expect_heap_checks("a refused reallocate");
            return moved;
        };
        self.live.remove(&entry.start());
        if moved != ptr {
            self.freed.insert(entry.start());
        }
        self.admit("reallocate", moved, new, inner_new);
        Ok(moved)
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        self.expect_live("usable_size", ptr, layout).inner_usable - GUARD
    }

    fn region(&self) -> NonNull<[u8]> {
        self.inner.region()
    }

    fn stats(&self) -> Stats {
        let inner = self.inner.stats();
        let guards = GUARD * self.live.len();
        Stats {
            requested: inner.requested.saturating_sub(guards),
            usable: inner.usable.saturating_sub(guards),
            ..inner
        }
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        self.inner.walk(&mut |stretch| {
            if stretch.kind == BlockKind::Used
                && stretch.size > GUARD
                && self.live.contains_key(&stretch.addr)
            {
                let usable = stretch.size - GUARD;
                visit(Block::used(stretch.addr, usable));
                visit(Block::overhead(stretch.addr + usable, GUARD));
            } else {
                visit(stretch);
            }
        });
    }

    fn check(&self) -> Result<(), HeapError> {
        rawheap::check_walk(self)?;
        self.inner.check()
    }

    fn capabilities(&self) -> Capabilities {
        let inner = self.inner.capabilities();
        Capabilities {
            max_size: inner.max_size.saturating_sub(GUARD),
            ..inner
        }
    }
}
