//! # My heap
//!
//! Replace this paragraph with the idea of your heap in a few sentences: how the region
//! is cut into blocks, how a request finds a block, what happens when a block is freed.
//!
//! ## Block layout
//!
//! Draw your blocks here, header and footer included, for a used and a free block:
//!
//! ```text
//!  ┌──────────────┬──────────────────────────────┐
//!  │ header       │ payload                      │
//!  └──────────────┴──────────────────────────────┘
//! ```
//!
//! ## Invariants (checked by `check`)
//!
//! 1. Write each invariant of your heap as a sentence here, and as code in `check`.
//!
//! ## Cost of each operation
//!
//! | operation | cost |
//! | --- | --- |
//! | `allocate` | ? |
//! | `deallocate` | ? |
//!
//! ## How to work
//!
//! `cargo test` runs the conformance suite (tests/conformance.rs) and your own property
//! test (tests/properties.rs). At first every test stops with a message such as
//! `write this next: part 1 of 6, new`: each method below that you have not written
//! calls [`write_this_next`] with its part. Write that part, delete the call, run the
//! tests again; the next message says what comes next. README.md explains the rules and
//! how your heap is graded.
#![no_std]

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::{AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, Usage};

// ANCHOR: heap
/// Your heap. The grader looks for a type called `Heap` at the root of this crate: keep
/// the name (or write `pub type Heap = YourType;`).
pub struct Heap {
    /// The region as handed to `new`; every pointer the heap hands out is derived from
    /// it (`byte_add`, `map_addr`), never cast from an integer.
    region: NonNull<[u8]>,
    /// Live blocks, bytes requested and the high-water mark: call `on_allocate`,
    /// `on_deallocate` (and `on_resize`) as blocks come and go.
    usage: Usage,
    // Part 1: add the fields your design needs, each with its invariant as a comment.
}
// ANCHOR_END: heap

// ANCHOR: parts
/// The parts of the assignment, in the order the tests reach them.
#[derive(Clone, Copy, Debug)]
pub enum Part {
    /// `new`: lay out the region as one free block (and whatever your heap needs).
    New,
    /// `allocate`: find a free block that fits, split it, hand out its payload.
    Allocate,
    /// `usable_size`: how many bytes the block at `ptr` really has.
    UsableSize,
    /// `walk`: report every stretch of the region, in address order.
    Walk,
    /// `check`: verify your invariants after `check_walk`.
    Check,
    /// `deallocate`: give a block back and merge it with free neighbours.
    Deallocate,
}

impl Part {
    /// The parts, in order.
    pub const ALL: [Part; 6] = [
        Part::New,
        Part::Allocate,
        Part::UsableSize,
        Part::Walk,
        Part::Check,
        Part::Deallocate,
    ];

    /// What to write for this part.
    pub fn task(self) -> &'static str {
        match self {
            Part::New => {
                "new: format the region as one free block, set up your fields (src/lib.rs, `fn new`)"
            }
            Part::Allocate => {
                "allocate: refuse size 0 and impossible layouts, find a free block that fits the size and alignment, split it, record it with `usage.on_allocate` (src/lib.rs, `fn allocate`)"
            }
            Part::UsableSize => {
                "usable_size: the payload's length, read from the block's header (src/lib.rs, `fn usable_size`)"
            }
            Part::Walk => {
                "walk: visit every stretch of the region in address order: headers as overhead, payloads as used, free blocks as free (src/lib.rs, `fn walk`)"
            }
            Part::Check => {
                "check: after `check_walk`, verify each invariant of your heap and return `HeapError` naming the one broken (src/lib.rs, `fn check`)"
            }
            Part::Deallocate => {
                "deallocate: mark the block free, merge it with free neighbours, record it with `usage.on_deallocate` (src/lib.rs, `fn deallocate`)"
            }
        }
    }

    /// The part's number, from 1.
    pub fn number(self) -> usize {
        self as usize + 1
    }
}

/// Stops with a message that says which part to write next. Each method you have not
/// written yet calls it; delete the call when you write the method.
#[track_caller]
pub fn write_this_next(part: Part) -> ! {
    panic!(
        "write this next: part {} of {}, {}",
        part.number(),
        Part::ALL.len(),
        part.task()
    )
}
// ANCHOR_END: parts

// SAFETY: write here why your heap keeps every promise of the contract: blocks inside
// the region, aligned, never overlapping a live block, `usable_size` bytes each.
unsafe impl RawHeap for Heap {
    // ANCHOR: unwritten
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        let _ = region;
        write_this_next(Part::New)
    }
    // ANCHOR_END: unwritten

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let _ = layout;
        write_this_next(Part::Allocate)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let _ = (ptr, layout);
        write_this_next(Part::Deallocate)
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, layout: Layout) -> usize {
        let _ = (ptr, layout);
        write_this_next(Part::UsableSize)
    }

    fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    fn stats(&self) -> Stats {
        Stats::from_walk(self.region.len(), &self.usage, |visit| self.walk(visit))
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        let _ = visit;
        write_this_next(Part::Walk)
    }

    fn check(&self) -> Result<(), HeapError> {
        rawheap::check_walk(self)?;
        write_this_next(Part::Check)
    }

    fn capabilities(&self) -> Capabilities {
        // Promise only what your heap does: the suite holds you to it.
        Capabilities {
            reuse: Reuse::Any,
            restores_when_empty: true,
            max_size: usize::MAX,
            max_align: 4096,
            resizes_in_place: false,
        }
    }
}
