//! A failure prints a regression test that compiles: the test `regression` below is
//! the printout for a heap that hands out a live block again, pasted unchanged, and
//! `the_printout_is_the_test_in_this_file` checks that the suite prints exactly it.

mod support;

use conformance::{Op, property};
use support::*;

// Pasted from the printout (the attributes above `#[test]` are not part of it).
#[rustfmt::skip]
#[should_panic(expected = "ListHeap<IgnoresUsedFlag> broke the rule `blocks_never_overlap`")]
#[test]
fn regression() {
    use ::conformance::Op;
    ::conformance::replay::<ListHeap<IgnoresUsedFlag>>(65536, &[
        Op::Alloc { size: 1, align_log2: 0 },
        Op::Alloc { size: 1, align_log2: 0 },
    ])
    .unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "shrinking to the simplest sequence takes many replays")]
fn the_printout_is_the_test_in_this_file() {
    let violation = property::check::<ListHeap<IgnoresUsedFlag>>(65536)
        .expect_err("the flawed heap hands out a live block again");
    // Shrinking ends at the simplest sequence: two allocations of one byte.
    assert_eq!(
        violation.ops.as_deref(),
        Some(
            &[Op::Alloc {
                size: 1,
                align_log2: 0
            }; 2][..]
        ),
        "{violation}"
    );
    let printed = violation.regression_test().expect("a sequence to print");
    assert!(violation.to_string().ends_with(&printed));
    assert!(
        include_str!("printed_regression.rs").contains(&printed),
        "the printout is not the test in this file:\n{printed}"
    );
}
