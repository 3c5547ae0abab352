//! The same random sequences with quickcheck: [`Ops`] is `Arbitrary` (with shrinking),
//! and [`quickcheck`] runs it against a heap in one call.
//!
//! quickcheck's properties are plain `fn` pointers, which cannot carry the region size,
//! and `Arbitrary` has no way to be told it; so the region a run uses is kept per
//! thread while [`quickcheck`] runs, and [`Ops::arbitrary`](quickcheck::Arbitrary)
//! draws sizes relative to it (64 KiB outside a run).

use std::cell::{Cell, RefCell};

use ::quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use rawheap::RawHeap;

use crate::bench::{replay_as, shrink};
use crate::op::Op;
use crate::rules::id;
use crate::violation::Violation;

thread_local! {
    /// The region size of the run in progress on this thread.
    static REGION: Cell<usize> = const { Cell::new(64 * 1024) };
    /// The violation of the last failing sequence: quickcheck accepts each failing
    /// shrink in turn, so after a run this is the smallest one.
    static LAST_FAILURE: RefCell<Option<Violation>> = const { RefCell::new(None) };
}

/// Tests run when `QUICKCHECK_TESTS` is not set.
const DEFAULT_TESTS: u64 = if cfg!(miri) { 4 } else { 100 };

/// Under Miri, the longest sequence when `QUICKCHECK_GENERATOR_SIZE` is not set
/// (quickcheck's own default is 100).
const MIRI_GENERATOR_SIZE: usize = 12;

/// A sequence of operations, as quickcheck generates and shrinks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ops(pub Vec<Op>);

impl Arbitrary for Ops {
    fn arbitrary(g: &mut Gen) -> Ops {
        let len = usize::arbitrary(g) % (g.size() + 1);
        Ops((0..len).map(|_| Op::arbitrary(g)).collect())
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Ops>> {
        Box::new(self.0.shrink().map(Ops))
    }
}

/// A number in `low..=high` (`low <= high`).
fn between(g: &mut Gen, low: usize, high: usize) -> usize {
    low + usize::arbitrary(g) % (high - low).saturating_add(1).max(1)
}

fn size(g: &mut Gen) -> usize {
    let region = REGION.get();
    // Weights as in the proptest strategy: mostly small, some large, a few near the
    // region's size, and the occasional zero.
    match g.choose(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 4]) {
        Some(0) => between(g, 1, 64),
        Some(1) => between(g, 65, 1024),
        Some(2) => between(g, 1025, (region / 4).max(1025)),
        Some(3) => between(g, region.saturating_sub(64), region.saturating_add(64)),
        _ => 0,
    }
}

fn align_log2(g: &mut Gen) -> u8 {
    match g.choose(&[0, 0, 0, 0, 0, 0, 1, 1, 1, 2]) {
        Some(0) => between(g, 0, 3) as u8,
        Some(1) => between(g, 4, 7) as u8,
        _ => between(g, 8, 12) as u8,
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        match g.choose(&[0, 0, 0, 0, 1, 2, 2, 2, 3, 3]) {
            Some(0) => Op::Alloc {
                size: size(g),
                align_log2: align_log2(g),
            },
            Some(1) => Op::AllocZeroed {
                size: size(g),
                align_log2: align_log2(g),
            },
            Some(2) => Op::Free {
                index: between(g, 0, 63),
            },
            _ => Op::Realloc {
                index: between(g, 0, 63),
                size: size(g),
                align_log2: align_log2(g),
            },
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Op>> {
        match *self {
            Op::Alloc { size, align_log2 } => Box::new(
                (size, align_log2)
                    .shrink()
                    .map(|(size, align_log2)| Op::Alloc { size, align_log2 }),
            ),
            Op::AllocZeroed { size, align_log2 } => Box::new(
                (size, align_log2)
                    .shrink()
                    .map(|(size, align_log2)| Op::AllocZeroed { size, align_log2 }),
            ),
            Op::Free { index } => Box::new(index.shrink().map(|index| Op::Free { index })),
            Op::Realloc {
                index,
                size,
                align_log2,
            } => Box::new(
                (index, size, align_log2)
                    .shrink()
                    .map(|(index, size, align_log2)| Op::Realloc {
                        index,
                        size,
                        align_log2,
                    }),
            ),
        }
    }
}

fn property<H: RawHeap>(ops: Ops) -> TestResult {
    let rule = id::random_operation_sequences_keep_every_rule;
    match replay_as::<H>(rule, REGION.get(), 0, &ops.0) {
        Ok(()) => TestResult::passed(),
        Err(violation) => {
            LAST_FAILURE.set(Some(violation));
            TestResult::failed()
        }
    }
}

/// Runs quickcheck's random operation sequences on fresh `H` heaps of `region` bytes:
/// 100 tests unless `QUICKCHECK_TESTS` says otherwise (4 of at most 12 operations under
/// Miri). On failure, the
/// violation of the smallest failing sequence, which prints as a regression test.
pub fn quickcheck<H: RawHeap>(region: usize) -> Result<(), Violation> {
    REGION.set(region);
    LAST_FAILURE.set(None);
    let mut runner = QuickCheck::new();
    if std::env::var_os("QUICKCHECK_TESTS").is_none() {
        runner = runner.tests(DEFAULT_TESTS);
    }
    if cfg!(miri) && std::env::var_os("QUICKCHECK_GENERATOR_SIZE").is_none() {
        runner = runner.rng(Gen::new(MIRI_GENERATOR_SIZE));
    }
    match runner.quicktest(property::<H> as fn(Ops) -> TestResult) {
        Ok(_) => Ok(()),
        Err(_) => Err(match LAST_FAILURE.take() {
            Some(violation) => {
                shrink::<H>(id::random_operation_sequences_keep_every_rule, violation)
            }
            None => Violation::new::<H>(
                id::random_operation_sequences_keep_every_rule,
                region,
                "quickcheck reported a failure that the model did not see",
            ),
        }),
    }
}
