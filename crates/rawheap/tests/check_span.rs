//! `tags::check_span` on a span of blocks written by hand: sound, it counts them; with
//! one invariant broken at a time, it names that invariant at the block that breaks it.

use core::ptr::NonNull;

use rawheap::HeapError;
use rawheap::tags::{BlockRef, GRANULE, HEADER, Span, check_span};

/// The block sizes of the sound span, in address order, and whether each is used. The
/// last block takes the rest of the span (496 bytes in a 512-byte region).
const LAYOUT: [(usize, bool); 5] = [
    (48, true),
    (64, false),
    (32, true),
    (64, false),
    (288, true),
];

/// 512 bytes, aligned to a granule: the span runs from 8 to 504, its epilogue at 504.
#[repr(C, align(16))]
struct Memory([u8; 512]);

struct Heap {
    memory: Box<Memory>,
}

impl Heap {
    /// The span of `LAYOUT`, its tags written as a heap would.
    fn sound() -> Heap {
        let mut heap = Heap {
            memory: Box::new(Memory([0; 512])),
        };
        let span = heap.span();
        assert_eq!(
            (span.first, span.epilogue),
            (heap.start() + 8, heap.start() + 504)
        );
        let mut offset = 8;
        let mut prev_used = true;
        for (size, used) in LAYOUT {
            heap.write(offset, size, used, prev_used);
            offset += size;
            prev_used = used;
        }
        assert_eq!(offset, 504);
        heap.write(offset, 0, true, prev_used);
        heap
    }

    fn region(&mut self) -> NonNull<[u8]> {
        NonNull::from(&mut self.memory.0[..])
    }

    fn start(&self) -> usize {
        self.memory.0.as_ptr().addr()
    }

    fn span(&mut self) -> Span {
        Span::of(self.region()).expect("512 bytes hold a span")
    }

    /// The header `offset` bytes into the region.
    fn block(&mut self, offset: usize) -> BlockRef {
        let region = self.region().cast::<u8>();
        // SAFETY: every offset the tests use is a word inside the region.
        unsafe { BlockRef::at(region.byte_add(offset)) }
    }

    /// Writes the tags of a block at `offset`: its header, and its footer when free.
    fn write(&mut self, offset: usize, size: usize, used: bool, prev_used: bool) {
        let block = self.block(offset);
        // SAFETY: the block, and its footer when free, lie inside the region, which this
        // test owns; nothing else reads it meanwhile.
        unsafe {
            if used {
                block.write_used(size, prev_used);
            } else {
                block.write_free(size, prev_used);
            }
        }
    }

    /// Writes the word at `offset`.
    fn poke(&mut self, offset: usize, word: usize) {
        let region = self.region().cast::<u8>();
        // SAFETY: `offset` is a word-aligned word inside the region.
        unsafe { region.byte_add(offset).cast::<usize>().write(word) }
    }

    /// `check_span` from the block at `first`, every free block accepted by the heap's
    /// own lists; returns the invariant broken, and the offset of where.
    fn check_from(&mut self, first: usize) -> Result<(usize, usize), (&'static str, usize)> {
        let span = self.span();
        let start = self.start();
        let first = self.block(first);
        // SAFETY: `first` is a header of the span this test formatted; nothing changes
        // while the check runs.
        unsafe { check_span(span, first, |_, _| Ok(())) }.map_err(|error| {
            (
                error.invariant,
                error.addr.map_or(usize::MAX, |a| a - start),
            )
        })
    }

    fn check(&mut self) -> Result<(usize, usize), (&'static str, usize)> {
        self.check_from(8)
    }
}

#[test]
fn a_sound_span_counts_its_free_and_used_blocks() {
    assert_eq!(Heap::sound().check(), Ok((2, 3)));
}

#[test]
fn free_blocks_go_to_the_heaps_own_check_with_their_sizes() {
    let mut heap = Heap::sound();
    let span = heap.span();
    let start = heap.start();
    let first = heap.block(8);
    let mut seen = Vec::new();
    // SAFETY: as in `check_from`.
    let result = unsafe {
        check_span(span, first, |block, size| {
            seen.push((block.addr() - start, size));
            match seen.len() {
                1 => Ok(()),
                _ => Err(HeapError::new("the heap's own list").at(block.addr())),
            }
        })
    };
    assert_eq!(seen, [(56, 64), (152, 64)]);
    assert_eq!(result.unwrap_err().invariant, "the heap's own list");
}

#[test]
fn a_walk_that_starts_at_the_wrong_block_does_not_tile() {
    let mut heap = Heap::sound();
    assert_eq!(heap.check_from(56), Err(("the blocks tile the span", 56)));
}

#[test]
fn a_block_smaller_than_min_block_or_off_the_granule_grid_is_named() {
    let mut heap = Heap::sound();
    // The third block (used, 32 bytes) shrinks to one granule: the next header is
    // inside it, its payload.
    heap.write(120, GRANULE, true, false);
    assert_eq!(
        heap.check(),
        Err((
            "a block is at least MIN_BLOCK bytes, a multiple of GRANULE",
            120
        ))
    );
    let mut heap = Heap::sound();
    // The first block (used, 48 bytes) grows by a word: a multiple of no granule.
    heap.write(8, 48 + HEADER, true, true);
    assert_eq!(
        heap.check(),
        Err((
            "a block is at least MIN_BLOCK bytes, a multiple of GRANULE",
            8
        ))
    );
}

#[test]
fn a_prev_used_bit_that_lies_is_named() {
    let mut heap = Heap::sound();
    // The third block follows a free one; say it follows a used one.
    heap.write(120, 32, true, true);
    assert_eq!(
        heap.check(),
        Err(("PREV_USED tells whether the block before is used", 120))
    );
    let mut heap = Heap::sound();
    // The second block follows a used one; say it follows a free one.
    heap.write(56, 64, false, false);
    assert_eq!(
        heap.check(),
        Err(("PREV_USED tells whether the block before is used", 56))
    );
}

#[test]
fn two_free_neighbours_are_named() {
    let mut heap = Heap::sound();
    // Free the third block without merging it with the second, its bits otherwise true.
    heap.write(120, 32, false, false);
    heap.write(152, 64, false, false);
    assert_eq!(
        heap.check(),
        Err(("no two free blocks are neighbours", 120))
    );
}

#[test]
fn a_footer_that_lies_is_named() {
    let mut heap = Heap::sound();
    // The second block's footer: its last word.
    heap.poke(56 + 64 - HEADER, 48);
    assert_eq!(
        heap.check(),
        Err(("a free block's footer equals its size", 56))
    );
}

#[test]
fn a_block_that_runs_past_the_epilogue_is_named() {
    let mut heap = Heap::sound();
    // The last block claims a granule more than the span has: the walk stops there.
    heap.write(216, 288 + GRANULE, true, false);
    assert_eq!(
        heap.check(),
        Err(("the blocks reach the epilogue exactly", 216 + 288 + GRANULE))
    );
}

#[test]
fn an_epilogue_that_is_not_a_used_empty_header_knowing_the_last_block_is_named() {
    let named = |heap: &mut Heap| {
        assert_eq!(
            heap.check(),
            Err((
                "the epilogue is a used, zero-sized header that knows the last block",
                504
            ))
        );
    };
    let mut heap = Heap::sound();
    heap.write(504, GRANULE, true, true);
    named(&mut heap);
    let mut heap = Heap::sound();
    heap.poke(504, 1 << 1); // PREV_USED set, USED clear, size 0
    named(&mut heap);
    let mut heap = Heap::sound();
    heap.write(504, 0, true, false);
    named(&mut heap);
}

#[test]
fn a_span_holds_exactly_the_well_placed_headers_before_its_epilogue() {
    let mut heap = Heap::sound();
    let span = heap.span();
    let start = heap.start();
    assert!(!span.is_empty());
    assert_eq!(span.len(), 496);
    assert!(span.holds(start + 8), "the first header");
    assert!(span.holds(start + 56) && span.holds(start + 488));
    assert!(!span.holds(start + 8 - GRANULE), "before the first header");
    assert!(!span.holds(start + 504), "the epilogue");
    assert!(!span.holds(start + 16), "a header off the granule grid");
}

/// The blocks the span's walk yields from the first, as offsets into the region.
fn walked(heap: &mut Heap) -> Vec<usize> {
    let span = heap.span();
    let start = heap.start();
    let first = heap.block(8);
    // SAFETY: `first` is the span's first header; nothing changes during the walk.
    unsafe { span.blocks(first) }
        .map(|block| block.addr() - start)
        .collect()
}

#[test]
fn the_walk_visits_every_block_and_stops_at_a_size_that_cannot_be() {
    let mut heap = Heap::sound();
    assert_eq!(walked(&mut heap), [8, 56, 120, 152, 216]);
    // A size below the smallest block would walk into a payload: the walk stops there.
    heap.write(56, GRANULE, false, true);
    assert_eq!(walked(&mut heap), [8, 56]);
    // So does a size that runs past the epilogue.
    let mut heap = Heap::sound();
    heap.write(152, 512, true, true);
    assert_eq!(walked(&mut heap), [8, 56, 120, 152]);
}
