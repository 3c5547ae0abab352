//! A heap for this crate's tests whose every byte is known, so that tests can compute
//! the expected measurements by hand.
//!
//! ```text
//!   slot 0                    slot 1                    ...   tail (< 32 bytes)
//!   ┌────────┬───────────────┬──────────────────────────┬───┬──────────┐
//!   │ header │ used, 24 B    │ free slot, 32 B          │   │ overhead │
//!   └────────┴───────────────┴──────────────────────────┴───┴──────────┘
//! ```
//!
//! The region is cut into 32-byte slots; a block takes the lowest free slot, whatever
//! its size (at most 24 bytes), behind an 8-byte header. `walk` reports a used slot as
//! 8 overhead bytes then 24 used bytes, each run of free slots as one free stretch, and
//! the tail as overhead. It never resizes in place, so `reallocate` always moves.
//!
//! `FLAW` gives it a bug for the replay to catch: see [`SCRIBBLE`], [`MANGLE_REALLOC`]
//! and [`FAILING_CHECK`].

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::NonNull;

use rawheap::{
    AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, Usage, check_walk,
};

pub(crate) const SLOT: usize = 32;
pub(crate) const HEADER: usize = 8;
pub(crate) const USABLE: usize = SLOT - HEADER;

/// No bug.
pub(crate) const SOUND: u8 = 0;
/// Allocating into slot 1 or above flips the last usable byte of a live slot 0.
pub(crate) const SCRIBBLE: u8 = 1;
/// Resizes in place (the sound heap never does), flipping the block's first byte.
pub(crate) const MANGLE_REALLOC: u8 = 2;
/// `check` fails while two or more blocks are live.
pub(crate) const FAILING_CHECK: u8 = 3;

thread_local! {
    /// How many times `check` ran on this thread.
    pub(crate) static CHECKS: Cell<usize> = const { Cell::new(0) };
}

pub(crate) struct SlotHeap<const FLAW: u8 = SOUND> {
    region: NonNull<[u8]>,
    /// Per slot: the requested size of the block in it, `None` when free.
    slots: Vec<Option<usize>>,
    usage: Usage,
}

impl<const FLAW: u8> SlotHeap<FLAW> {
    fn slot_ptr(&self, slot: usize) -> NonNull<u8> {
        // SAFETY: `slot < slots.len()`, so the offset is inside the region.
        unsafe { self.region.cast::<u8>().add(slot * SLOT) }
    }

    fn slot_of(&self, ptr: NonNull<u8>) -> usize {
        (ptr.as_ptr().addr() - self.region.as_ptr().cast::<u8>().addr() - HEADER) / SLOT
    }
}

// SAFETY: slots are disjoint, inside the region, and handed out only while free; the
// usable bytes of a slot come after its header and overlap nothing else. `walk` tiles
// the region (checked by `check_walk` in the tests that call `check`).
unsafe impl<const FLAW: u8> RawHeap for SlotHeap<FLAW> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        SlotHeap {
            region,
            slots: vec![None; region.len() / SLOT],
            usage: Usage::default(),
        }
    }

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        if !self.capabilities().admits(layout) {
            return Err(AllocError::Unsupported);
        }
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(AllocError::Exhausted)?;
        // SAFETY: the header is inside the slot.
        let ptr = unsafe { self.slot_ptr(slot).add(HEADER) };
        if !rawheap::align::ptr_is_aligned(ptr, layout.align()) {
            return Err(AllocError::Unsupported);
        }
        if FLAW == SCRIBBLE && slot > 0 && self.slots[0].is_some() {
            // SAFETY: the last usable byte of slot 0 is inside the region and was written
            // by the block's owner, so it is initialized.
            unsafe {
                let victim = self.slot_ptr(0).add(SLOT - 1).as_ptr();
                *victim = !*victim;
            }
        }
        self.slots[slot] = Some(layout.size());
        self.usage.on_allocate(layout.size(), (slot + 1) * SLOT);
        Ok(ptr)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let slot = self.slot_of(ptr);
        self.slots[slot] = None;
        self.usage.on_deallocate(layout.size());
    }

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        if FLAW != MANGLE_REALLOC || new.size() > USABLE {
            return Err(AllocError::Unsupported);
        }
        // SAFETY: the caller's promise: `ptr` is live, and its owner wrote its first byte.
        unsafe { *ptr.as_ptr() = !*ptr.as_ptr() };
        self.usage
            .on_resize(old.size(), new.size(), (self.slot_of(ptr) + 1) * SLOT);
        Ok(())
    }

    unsafe fn usable_size(&self, _ptr: NonNull<u8>, _layout: Layout) -> usize {
        USABLE
    }

    fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    fn stats(&self) -> Stats {
        Stats::from_walk(self.region.len(), &self.usage, |visit| self.walk(visit))
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        let start = self.region.as_ptr().cast::<u8>().addr();
        let mut free_from = None;
        for (slot, state) in self.slots.iter().enumerate() {
            let at = start + slot * SLOT;
            match (state, free_from) {
                (None, None) => free_from = Some(at),
                (None, Some(_)) => {}
                (Some(_), _) => {
                    if let Some(from) = free_from.take() {
                        visit(Block::free(from, at - from));
                    }
                    visit(Block::overhead(at, HEADER));
                    visit(Block::used(at + HEADER, USABLE));
                }
            }
        }
        let tail = start + self.slots.len() * SLOT;
        if let Some(from) = free_from {
            visit(Block::free(from, tail - from));
        }
        if self.region.len() > tail - start {
            visit(Block::overhead(tail, self.region.len() - (tail - start)));
        }
    }

    fn check(&self) -> Result<(), HeapError> {
        CHECKS.with(|count| count.set(count.get() + 1));
        check_walk(self)?;
        if FLAW == FAILING_CHECK && self.usage.live_blocks >= 2 {
            return Err(HeapError::new("test flaw: at most one block is live"));
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reuse: Reuse::Any,
            restores_when_empty: true,
            max_size: USABLE,
            max_align: HEADER,
            resizes_in_place: FLAW == MANGLE_REALLOC,
        }
    }
}
