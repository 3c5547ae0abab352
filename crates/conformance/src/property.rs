//! Random operation sequences with proptest: the strategy, the runner, and the shrunk
//! failure printed as a regression test.
//!
//! Sizes lean small (most programs allocate small objects) with a tail of large ones,
//! a few near the region's size (where the edge cases live) and a few zeros;
//! alignments lean to the common 1 to 8 with a tail up to a page. Every sequence is
//! replayed on a fresh heap under the [`Model`](crate::Model), so a failure is any rule
//! broken at any step; proptest then shrinks the sequence (fewer operations, smaller
//! sizes) and the suite prints the smallest one it reached.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use rawheap::RawHeap;

use crate::bench::{replay_as, shrink};
use crate::op::Op;
use crate::rules::id;
use crate::violation::Violation;

/// The longest sequence generated.
const MAX_LEN: usize = if cfg!(miri) { 12 } else { 48 };

/// Cases run when `PROPTEST_CASES` is not set.
const DEFAULT_CASES: u32 = if cfg!(miri) { 4 } else { 128 };

/// Under Miri, how many shrinking steps proptest may take when
/// `PROPTEST_MAX_SHRINK_ITERS` is not set: each step replays a sequence.
const MIRI_SHRINK_ITERS: u32 = 24;

/// The generator random sequences and workloads are drawn with: proptest's default,
/// ChaCha, natively; XorShift under Miri. There one ChaCha refill (its rounds,
/// interpreted) costs about half a second and every case starts a fresh generator, so
/// drawing a 12-operation sequence took seconds, longer than running and checking it.
/// Nothing the heaps see changes in kind: the same strategy, the property's sequences
/// still seeded afresh on every run, the workloads still from their fixed seeds.
/// `PROPTEST_RNG_ALGORITHM` still picks either for the property.
const RNG: RngAlgorithm = if cfg!(miri) {
    RngAlgorithm::XorShift
} else {
    RngAlgorithm::ChaCha
};

/// A size for a heap of `region` bytes.
pub fn size_strategy(region: usize) -> impl Strategy<Value = usize> + Clone {
    prop_oneof![
        8 => 1..=64usize,
        4 => 65..=1024usize,
        2 => 1025..=(region / 4).max(1025),
        1 => region.saturating_sub(64)..=region.saturating_add(64),
        1 => Just(0usize),
    ]
}

/// An alignment, as its base-2 logarithm.
pub fn align_log2_strategy() -> impl Strategy<Value = u8> + Clone {
    prop_oneof![6 => 0..=3u8, 3 => 4..=7u8, 1 => 8..=12u8]
}

/// One operation on a heap of `region` bytes.
pub fn op_strategy(region: usize) -> impl Strategy<Value = Op> {
    let layout = (size_strategy(region), align_log2_strategy());
    prop_oneof![
        4 => layout.clone().prop_map(|(size, align_log2)| Op::Alloc { size, align_log2 }),
        1 => layout.clone().prop_map(|(size, align_log2)| Op::AllocZeroed { size, align_log2 }),
        3 => (0..64usize).prop_map(|index| Op::Free { index }),
        2 => (0..64usize, layout).prop_map(|(index, (size, align_log2))| Op::Realloc {
            index,
            size,
            align_log2
        }),
    ]
}

/// A sequence of up to 48 operations (12 under Miri) on a heap of `region` bytes.
pub fn ops_strategy(region: usize) -> impl Strategy<Value = Vec<Op>> {
    vec(op_strategy(region), 1..=MAX_LEN)
}

/// The runner's configuration: proptest's defaults and environment (`PROPTEST_CASES`
/// and friends), 128 cases unless told otherwise (4, with at most 24 shrinking steps
/// and the XorShift generator, under Miri), and no failure files.
pub fn config() -> Config {
    let mut config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    if cfg!(miri) && std::env::var_os("PROPTEST_MAX_SHRINK_ITERS").is_none() {
        config.max_shrink_iters = MIRI_SHRINK_ITERS;
    }
    if std::env::var_os("PROPTEST_RNG_ALGORITHM").is_none() {
        config.rng_algorithm = RNG;
    }
    config
}

/// `len` operations drawn from [`op_strategy`] with a fixed `seed`: the same workload
/// on every run, for the rules' scenarios.
pub(crate) fn generated(region: usize, seed: u64, len: usize) -> Vec<Op> {
    // ChaCha takes a 32-byte seed, XorShift a 16-byte one.
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let seed_len = if RNG == RngAlgorithm::XorShift {
        16
    } else {
        32
    };
    let rng = TestRng::from_seed(RNG, &seed_bytes[..seed_len]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    vec(op_strategy(region), len)
        .new_tree(&mut runner)
        .map(|tree| tree.current())
        // Only filters can make a strategy give up, and these strategies have none.
        .unwrap_or_default()
}

/// Runs random operation sequences on fresh `H` heaps of `region` bytes; on failure,
/// the violation of the smallest failing sequence found, with its operations: proptest
/// shrinks first, then operations that became unnecessary are cut out.
pub fn check<H: RawHeap>(region: usize) -> Result<(), Violation> {
    let rule = id::random_operation_sequences_keep_every_rule;
    let mut runner = TestRunner::new(config());
    let result = runner.run(&ops_strategy(region), |ops| {
        replay_as::<H>(rule, region, 0, &ops).map_err(|v| TestCaseError::fail(v.message))
    });
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(_, ops)) => match replay_as::<H>(rule, region, 0, &ops) {
            Err(violation) => Err(shrink::<H>(rule, violation)),
            Ok(()) => Err(Violation::new::<H>(
                rule,
                region,
                "a sequence failed once but passed when replayed: does the heap depend on more than its calls?",
            )
            .with_ops(ops, 0)),
        },
        Err(TestError::Abort(reason)) => Err(Violation::new::<H>(
            rule,
            region,
            format!("proptest gave up: {reason}"),
        )),
    }
}
