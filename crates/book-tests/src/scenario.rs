//! The chapters' demo: one short script of requests run on a heap step by step, printing
//! after each step what the heap answered, a picture of the whole region
//! ([`trace::heapmap::ascii`]) and the heap's [`Stats`].
//!
//! Every allocator chapter runs the same [`SCRIPT`], so what differs between the
//! printouts is the algorithm: where a block lands, which freed bytes come back, whether
//! a block grows in place. `cargo xtask chapter NAME` prints it; `cargo xtask figures`
//! writes it into the book.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::fmt::Write;

use heaplab::registry::{self, Entry, HeapVisitor};
use heaplab::{AllocError, Arena, RawHeap, Stats, offset_in};
use trace::Op;
use trace::heapmap;

/// The region of the demo: small enough that one character of the map is a few bytes.
pub const REGION: usize = 1024;

/// Characters in a line of the map.
pub const WIDTH: usize = 64;

/// The alignment of every request, as in a trace replay.
pub const ALIGN: usize = trace::replay::DEFAULT_ALIGN;

/// The script. Blocks are named by letters in the printout (id 0 is `a`).
///
/// Five blocks, then two holes of different sizes (`d`'s small one is freed first, so
/// `b`'s large one is first on a LIFO free list); a request that fits both holes, one
/// that fits only the large hole whole, a block grown past its neighbour, and every
/// block freed in an order that leaves neighbours to merge.
pub const SCRIPT: &[Op] = &[
    Op::Alloc { id: 0, size: 64 },
    Op::Alloc { id: 1, size: 200 },
    Op::Alloc { id: 2, size: 32 },
    Op::Alloc { id: 3, size: 48 },
    Op::Alloc { id: 4, size: 32 },
    Op::Free { id: 3 },
    Op::Free { id: 1 },
    Op::Alloc { id: 5, size: 40 },
    Op::Alloc { id: 6, size: 180 },
    Op::Realloc { id: 2, size: 64 },
    Op::Free { id: 0 },
    Op::Free { id: 5 },
    Op::Free { id: 4 },
    Op::Free { id: 2 },
    Op::Free { id: 6 },
];

/// The letter a block is called by in the printout.
pub fn name(id: usize) -> char {
    char::from(b'a' + (id % 26) as u8)
}

/// A heap running a script, remembering its live blocks by id.
pub struct Demo<H: RawHeap> {
    heap: Arena<H>,
    /// The live blocks: pointer and layout, by id (`None`: not live).
    live: Vec<Option<(NonNull<u8>, Layout)>>,
}

impl<H: RawHeap> Default for Demo<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: RawHeap> Demo<H> {
    /// A fresh heap over [`REGION`] bytes.
    pub fn new() -> Self {
        Demo {
            heap: Arena::new(REGION),
            live: Vec::new(),
        }
    }

    /// The heap, for pictures and stats.
    pub fn heap(&self) -> &H {
        &self.heap
    }

    /// Runs one op and says what happened, in one line.
    pub fn step(&mut self, op: Op) -> String {
        let id = op.id();
        if self.live.len() <= id {
            self.live.resize(id + 1, None);
        }
        let name = name(id);
        match (op, self.live[id]) {
            (Op::Alloc { size, .. }, None) => {
                let layout = layout(size);
                match self.heap.allocate(layout) {
                    Ok(ptr) => {
                        self.live[id] = Some((ptr, layout));
                        format!(
                            "{name} = allocate({size}) -> {}",
                            self.describe(ptr, layout)
                        )
                    }
                    Err(error) => format!(
                        "{name} = allocate({size}) -> refused: {}",
                        self.refusal(error, layout)
                    ),
                }
            }
            (Op::Free { .. }, Some((ptr, layout))) => {
                // SAFETY: `ptr` is live in this heap with `layout`, and forgotten here.
                unsafe { self.heap.deallocate(ptr, layout) };
                self.live[id] = None;
                format!("free({name}) at {}", self.offset(ptr))
            }
            (Op::Realloc { size, .. }, Some((ptr, old))) => {
                let new = layout(size);
                // SAFETY: `ptr` is live in this heap with `old`.
                match unsafe { self.heap.reallocate(ptr, old, new) } {
                    Ok(moved) => {
                        self.live[id] = Some((moved, new));
                        let how = if moved == ptr {
                            "in place".to_string()
                        } else {
                            format!("moved from {}", self.offset(ptr))
                        };
                        format!(
                            "{name} = reallocate({name}, {size}) -> {}, {how}",
                            self.describe(moved, new)
                        )
                    }
                    Err(error) => format!(
                        "{name} = reallocate({name}, {size}) -> refused: {}",
                        self.refusal(error, new)
                    ),
                }
            }
            (op, _) => {
                format!("{op:?} skipped: block {name} is not in the state the script expects")
            }
        }
    }

    fn offset(&self, ptr: NonNull<u8>) -> String {
        format!("+{:#x}", offset_in(self.heap.region(), ptr.as_ptr().addr()))
    }

    fn describe(&self, ptr: NonNull<u8>, layout: Layout) -> String {
        // SAFETY: `ptr` is live in this heap with `layout`.
        let usable = unsafe { self.heap.usable_size(ptr, layout) };
        format!("{}, {usable} bytes usable", self.offset(ptr))
    }

    fn refusal(&self, error: AllocError, layout: Layout) -> String {
        match error.cause(layout, &self.heap.stats()) {
            Some(cause) => format!("{error} ({cause:?})"),
            None => error.to_string(),
        }
    }

    /// The heap's `walk` as a line of [`WIDTH`] characters, with its legend.
    pub fn map(&self) -> String {
        let mut blocks = Vec::new();
        self.heap.walk(&mut |block| blocks.push(block));
        heapmap::ascii(&blocks, WIDTH)
    }
}

/// A request of `size` bytes at [`ALIGN`].
fn layout(size: usize) -> Layout {
    Layout::from_size_align(trace::format::served_size(size), ALIGN)
        .expect("script sizes are small")
}

/// The stats in one line, and whether `check()` passes.
pub fn stats_line<H: RawHeap>(heap: &H) -> String {
    let Stats {
        live_blocks,
        requested,
        usable,
        free,
        largest_free,
        high_water,
        ..
    } = heap.stats();
    let overhead = heap.stats().overhead();
    let check = match heap.check() {
        Ok(()) => "ok".to_string(),
        Err(error) => error.to_string(),
    };
    format!(
        "live {live_blocks} | requested {requested} B | usable {usable} B | overhead {overhead} B | \
         free {free} B, largest {largest_free} B | high water {high_water} B | check {check}"
    )
}

/// The chapter an allocator belongs to: the name of the crate that defines it
/// (`free_list::FreeList<BestFit>` is in `free-list`).
pub fn chapter_of<H>() -> String {
    let path = core::any::type_name::<H>();
    path.split("::").next().unwrap_or(path).replace('_', "-")
}

/// The demo of every allocator of the registry that belongs to `chapter`, in registry
/// order: each allocator's name and its printout. Empty for a chapter with no allocator.
pub fn demos(chapter: &str) -> Vec<(&'static str, String)> {
    struct Demos<'c> {
        chapter: &'c str,
        found: Vec<(&'static str, String)>,
    }
    impl HeapVisitor for Demos<'_> {
        fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
            if chapter_of::<H>() == self.chapter {
                self.found.push((entry.name, run::<H>(entry.name)));
            }
        }
    }
    let mut demos = Demos {
        chapter,
        found: Vec::new(),
    };
    registry::for_each_heap(&mut demos);
    demos.found
}

/// The chapters that have a demo: those of the allocators in the registry, in order.
pub fn chapters() -> Vec<String> {
    struct Chapters(Vec<String>);
    impl HeapVisitor for Chapters {
        fn visit<H: RawHeap + Send + 'static>(&mut self, _: &Entry) {
            let chapter = chapter_of::<H>();
            if !self.0.contains(&chapter) {
                self.0.push(chapter);
            }
        }
    }
    let mut chapters = Chapters(Vec::new());
    registry::for_each_heap(&mut chapters);
    chapters.0
}

/// The whole demo on a fresh `H` called `allocator`: the script, one step at a time.
pub fn run<H: RawHeap>(allocator: &str) -> String {
    let mut demo = Demo::<H>::new();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{allocator}: a {REGION}-byte region; every request aligned to {ALIGN}; offsets from the region's start\n"
    );
    let _ = write!(
        out,
        "step 0: the new heap\n{}{}\n\n",
        demo.map(),
        stats_line(demo.heap())
    );
    for (index, op) in SCRIPT.iter().enumerate() {
        let said = demo.step(*op);
        let _ = write!(
            out,
            "step {}: {said}\n{}{}\n\n",
            index + 1,
            demo.map(),
            stats_line(demo.heap())
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplab::free_list::{BestFit, FirstFit, FreeList, NextFit};

    #[test]
    fn the_script_is_a_valid_balanced_trace() {
        let trace = trace::Trace::new(REGION, 7, 1, SCRIPT.to_vec()).expect("valid");
        assert_eq!(
            trace.profile().live_at_end,
            0,
            "every block is freed by the end"
        );
    }

    #[test]
    fn every_step_is_printed_with_a_map_and_stats_and_the_heap_ends_empty() {
        let out = run::<FreeList<FirstFit>>("free list, first fit");
        assert_eq!(out.matches("step ").count(), SCRIPT.len() + 1);
        assert_eq!(out.matches("check ok").count(), SCRIPT.len() + 1, "{out}");
        assert!(
            !out.contains("refused") && !out.contains("skipped"),
            "{out}"
        );
        let last = out.trim_end().lines().last().unwrap();
        assert!(
            last.starts_with("live 0 | requested 0 B | usable 0 B"),
            "{last}"
        );
    }

    /// The line of step `step` in a printout.
    fn line(out: &str, step: usize) -> &str {
        let prefix = format!("step {step}: ");
        out.lines()
            .find(|line| line.starts_with(&prefix))
            .expect("every step is printed")
    }

    /// The offset a step's block was placed at.
    fn placed_at(out: &str, step: usize) -> &str {
        let line = line(out, step);
        let at = line.find("-> ").expect("an answer") + 3;
        line[at..].split(',').next().expect("an offset")
    }

    #[test]
    fn the_policies_differ_where_the_free_list_chapter_says() {
        let first = run::<FreeList<FirstFit>>("first");
        let best = run::<FreeList<BestFit>>("best");
        let next = run::<FreeList<NextFit>>("next");
        // Step 2 allocates b, step 4 d; step 8 asks for 40 bytes, step 9 for 180.
        let (b, d) = (placed_at(&first, 2), placed_at(&first, 4));
        assert_eq!(
            placed_at(&first, 8),
            b,
            "first fit takes b's hole, first on the list"
        );
        assert_eq!(placed_at(&best, 8), d, "best fit takes d's smaller hole");
        assert_eq!(
            placed_at(&best, 9),
            b,
            "so b's hole is whole for the larger request"
        );
        assert!(
            ![b, d].contains(&placed_at(&first, 9)),
            "first fit serves it elsewhere"
        );
        assert!(
            line(&first, 10).ends_with("in place"),
            "c grows into d's hole"
        );
        assert!(line(&best, 10).contains("moved from"), "d's hole is taken");
        for step in [8, 9] {
            assert!(
                ![b, d].contains(&placed_at(&next, step)),
                "next fit uses neither hole"
            );
        }
    }

    #[test]
    fn every_registry_allocator_has_a_chapter_with_its_demo() {
        let chapters = chapters();
        assert_eq!(
            chapters,
            [
                "bump",
                "free-list",
                "segregated-fit",
                "tlsf",
                "headerless",
                "buddy",
                "slab"
            ]
        );
        let names: Vec<&str> = demos("free-list").iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            ["free-list-first", "free-list-next", "free-list-best"]
        );
        assert!(demos("no-such-chapter").is_empty());
    }

    #[test]
    fn a_refusal_names_its_cause() {
        let mut demo = Demo::<FreeList<FirstFit>>::new();
        let said = demo.step(Op::Alloc {
            id: 0,
            size: 4 * REGION,
        });
        assert!(said.starts_with("a = allocate(4096) -> refused:"), "{said}");
        let said = demo.step(Op::Free { id: 0 });
        assert!(said.contains("skipped"), "{said}");
    }
}
