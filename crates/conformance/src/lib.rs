//! # conformance: the rules every `RawHeap` keeps, as tests
//!
//! One line in a heap crate's tests runs the whole suite:
//!
//! ```rust,ignore
//! // tests/conformance.rs
//! use my_heap::MyHeap;
//!
//! ::conformance::suite!(conformance, MyHeap);
//! // or with another region size (64 KiB by default, 4 KiB under Miri):
//! // ::conformance::suite!(conformance, MyHeap, region = 1 << 20);
//! ```
//!
//! `cargo test` then lists one test per rule, named for the rule
//! (`conformance::blocks_never_overlap`, ...). The leading `::` is needed because the
//! macro writes a module called `conformance`, after which a bare `conformance::` in
//! that file is ambiguous (rustc says so, and suggests the `::`); with another module
//! name, `conformance::suite!(rules, MyHeap)` works as well.
//!
//! Each rule is also a function,
//! [`rules::blocks_never_overlap::<MyHeap>(65536)`](rules::blocks_never_overlap),
//! and [`run_all`] runs them all and returns every result, for a grader.
//!
//! ## How it checks
//!
//! A [`Model`] shadows the heap: it remembers each live block (pointer, layout,
//! `usable_size`) and fills all its usable bytes with a pattern of its own. After
//! **every** operation it checks every rule it can: the new block is inside the region,
//! aligned, as large as asked and apart from every live block; `walk` shows exactly the
//! live blocks and tiles the region; every live block still holds its pattern; `stats`
//! agrees with the model and with `walk`; the high-water mark covers the blocks; and
//! the heap's own `check()` passes. Each rule's scenario then drives the heap where that
//! rule bites (a full heap, a dirty freed block, odd alignments, a region at an odd
//! address) and adds what only it can check. Regions are filled with `0xA5` before the
//! heap gets them, so fresh memory is not zero and never uninitialised, and they lie
//! between guard zones that are checked after every operation: a write outside the
//! region breaks `writes_stay_inside_the_region` and the test binary goes on (further
//! out, pages with no access make a wild write fault on the spot; see the `guard`
//! module). A panic in the heap breaks `methods_never_panic`, whichever rule met it.
//!
//! [`Capabilities`](rawheap::Capabilities) keep honest limits from failing: a bump
//! heap that claims `Reuse::MostRecent` is not asked to reuse a middle block, a slab
//! with a `max_size` is not asked for more; a heap that claims more is held to it.
//!
//! ## The rules
//!
#![doc = crate::__with_rules!(doc_table)]
//!
//! ## Reading a failure
//!
//! A failing test prints a [`Violation`]: the heap's type and the rule it broke, the
//! rule in one sentence, what happened (places are offsets from the region's start,
//! `+0x40`), and, when the failure can be replayed, the shortest sequence of operations
//! found that shows it, as a test to paste into the heap's crate:
//!
//! ```text
//! MyHeap broke the rule `blocks_never_overlap`
//!   the rule: The usable bytes of a live block belong to it alone: ...
//!   what happened: allocate of 24 bytes returned +0x20..+0x38, which overlaps live block #0 at +0x0..+0x28
//!   the shortest operation sequence found that shows it, as a test to paste:
//!
//! #[test]
//! fn regression() {
//!     use ::conformance::Op;
//!     ::conformance::replay::<MyHeap>(65536, &[
//!         Op::Alloc { size: 40, align_log2: 3 },
//!         Op::Alloc { size: 24, align_log2: 3 },
//!     ])
//!     .unwrap();
//! }
//! ```
//!
//! The message ends with `failure page: /abs/path/target/heaplab/failures/HEAP-RULE.html`:
//! a page that replays the sequence and draws the heap map after every step, with the
//! stats and the offending bytes marked ([`failure_dir`] says where pages go).
//!
//! [`replay`] runs such a sequence under the model and returns the same `Violation`
//! until the heap is fixed. An [`Op`] names a block by its place among the live blocks,
//! oldest first, modulo their number, so any sequence replays and shrinking never
//! makes one invalid. A test that fails while testing one rule may name another: the
//! model checks every rule at every step and reports the first one broken, so fix that
//! one first.
//!
//! ## Under Miri
//!
//! `cargo +nightly miri test` runs the same rules with less repetition: a 4 KiB
//! region, every third size and alignment of a scenario, heaps filled with about 16
//! blocks, short random sequences (drawn with proptest's XorShift generator, which
//! Miri runs far faster than ChaCha), the whole heap verified after every third
//! operation rather than every one, and failures printed as found rather than shrunk.
//! What Miri adds, undefined behaviour in the heap's unsafe code, shows up in a few
//! operations.
//!
//! ## Random sequences: proptest and quickcheck
//!
//! The rule `random_operation_sequences_keep_every_rule` runs proptest over
//! [`property::ops_strategy`] (sizes mostly small, some large, some near the region's
//! size; `PROPTEST_CASES` sets the number of cases, 128 by default, 4 under Miri) and
//! prints the shrunk failure as above. A course that prefers quickcheck gets the same
//! with [`Ops`] (an `Arbitrary` operation sequence that shrinks) and one call:
//!
//! ```rust,ignore
//! #[test]
//! fn quickcheck_sequences() {
//!     conformance::quickcheck::<MyHeap>(65536).unwrap();
//! }
//! ```
//!
//! ## `Checked<H>`: a heap that names misuse
//!
//! [`Checked`] wraps any heap and checks every call against a shadow of the live
//! blocks *before* passing it on, so misuse panics with its name instead of corrupting
//! the heap: double free, a pointer from elsewhere, a pointer into the middle of a
//! block, the wrong layout on `deallocate`/`reallocate`/`usable_size`, and writing past
//! the end of a block (guard bytes). It also checks the heap's answers (overlap,
//! alignment, region, `usable_size`, `check()` after every change), and
//! [`Checked::assert_no_leaks`] lists the blocks never freed:
//!
//! ```rust,ignore
//! let mut heap = rawheap::Arena::<conformance::Checked<MyHeap>>::new(4096);
//! // ... use it ...
//! heap.assert_no_leaks(); // "2 blocks leaked: 24 bytes at +0x40, 100 bytes at +0x80"
//! ```
//!
//! ## A heap with bugs to find
//!
//! [`teaching::ListHeap`] is a small correct heap, and the same heap with one of sixteen
//! deliberate flaws switched on (`ListHeap<IgnoresAlignment>`, ...): the suite's own
//! tests show each flaw caught by the rule named for it, and a course's grader can be
//! tried on them as if they were submissions.

mod bench;
mod checked;
mod guard;
mod model;
mod op;
mod page;
mod panics;
pub mod property;
mod qc;
pub mod rules;
mod scenarios;
pub mod tamper;
pub mod teaching;
mod violation;

pub use checked::Checked;
pub use model::{LiveBlock, Model, Outcome};
pub use op::Op;
pub use page::{FAILURE_DIR_VAR, failure_dir};
pub use qc::{Ops, quickcheck};
pub use rules::run_all;
pub use violation::Violation;

use rawheap::RawHeap;

/// The region size [`suite!`] uses unless told otherwise: 64 KiB, or 4 KiB under Miri.
pub const DEFAULT_REGION: usize = if cfg!(miri) { 4 * 1024 } else { 64 * 1024 };

/// Replays `ops` on a fresh `H` heap of `region` bytes (aligned to a page) under the
/// [`Model`]: `Err` names the first rule broken, with the operations up to that point.
/// This is what a printed regression test calls.
pub fn replay<H: RawHeap>(region: usize, ops: &[Op]) -> Result<(), Violation> {
    replay_at::<H>(region, 0, ops)
}

/// [`replay`] on a region that starts `offset` bytes past a page boundary.
pub fn replay_at<H: RawHeap>(region: usize, offset: usize, ops: &[Op]) -> Result<(), Violation> {
    bench::replay_as::<H>(
        rules::id::random_operation_sequences_keep_every_rule,
        region,
        offset,
        ops,
    )
    .map_err(page::with_page::<H>)
}

/// Writes the whole suite for one heap type as a test module with one `#[test]` per
/// rule, named for the rule.
///
/// ```rust,ignore
/// ::conformance::suite!(conformance, MyHeap);
/// ::conformance::suite!(conformance_1mib, MyHeap, region = 1 << 20);
/// ```
///
/// The module imports everything from the module the macro is called in, so the heap
/// type is named as it is there. A failing test panics with the [`Violation`]. Write
/// `::conformance::` (with the leading `::`) in a file where a module called
/// `conformance` exists, such as the one this macro writes.
#[macro_export]
macro_rules! suite {
    ($module:ident, $heap:ty $(,)?) => {
        $crate::suite!($module, $heap, region = $crate::DEFAULT_REGION);
    };
    ($module:ident, $heap:ty, region = $region:expr $(,)?) => {
        $crate::__with_rules!(suite $module, $heap, $region);
    };
}

/// Runs one rule for a test written by [`suite!`] and panics with its violation.
///
/// A panic in the heap is charged to `methods_never_panic` alone, as the grader counts
/// it: another rule's test that the panic stopped passes, with a note on stderr,
/// provided the heap serves modest requests (`serves(region)` is `Ok`), so that what
/// the rule's scenario did before the panic stands for something. A heap that panics
/// on ordinary requests (one still being written, `todo!()` and all) fails every test
/// it stops: nothing vouches for those rules.
#[doc(hidden)]
pub fn __run_test(
    rule: &'static str,
    check: fn(usize) -> Result<(), Violation>,
    serves: fn(usize) -> Result<(), Violation>,
    region: usize,
) {
    let Err(violation) = check(region) else {
        return;
    };
    if violation.rule == rule {
        panic!("\n{violation}");
    }
    if violation.rule == rules::PANIC_RULE {
        if rule != rules::SERVES_RULE && serves(region).is_ok() {
            eprintln!(
                "`{rule}` not judged to the end: its scenario was stopped by a panic, which counts against `{}` only:\n{violation}",
                rules::PANIC_RULE
            );
            return;
        }
        panic!(
            "\n`{rule}` not judged: its scenario was stopped by a panic, and the heap panics on modest requests too, so nothing vouches for this rule. {violation}"
        );
    }
    panic!("\nwhile testing `{rule}`, {violation}");
}
