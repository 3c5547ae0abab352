//! The suite has teeth: each deliberately broken version of the teaching heap is
//! rejected, and by the rule named for its bug, while the correct version passes (see
//! `student.rs`, which runs the whole suite on it).

mod support;

use conformance::{Violation, property, rules};
use support::*;

/// The violation must name `rule`. Under Miri the model verifies the heap after every
/// third operation only, so a later step may show the bug first through another rule;
/// there the test asks only that the broken heap is rejected.
fn rejected(result: Result<(), Violation>, rule: &str) -> Violation {
    match result {
        Ok(()) => panic!("the broken heap passed `{rule}`"),
        Err(violation) => {
            if !cfg!(miri) {
                assert_eq!(
                    violation.rule, rule,
                    "the wrong rule caught it:\n{violation}"
                );
            }
            violation
        }
    }
}

/// The violation must name `rule` and come with a short sequence. Each bug here shows
/// in two or three operations; shrinking stops where no single cut or simplification
/// keeps the failure, which can be an operation or two more (a block that must move
/// may need a neighbour to push it), but never the dozens it started from.
fn rejected_with_a_short_sequence(result: Result<(), Violation>, rule: &str) {
    let violation = rejected(result, rule);
    let ops = violation.ops.as_ref().expect("a sequence");
    assert!(ops.len() <= 5, "not shrunk: {violation}");
}

macro_rules! rejected_by {
    ($($test:ident: $flaw:ident by $rule:ident;)*) => {$(
        #[test]
        fn $test() {
            rejected(rules::$rule::<ListHeap<$flaw>>(REGION), stringify!($rule));
        }
    )*};
}

rejected_by! {
    ignoring_alignment: IgnoresAlignment by alignment_is_honoured;
    handing_out_a_live_block_again: IgnoresUsedFlag by blocks_never_overlap;
    an_off_by_one_split: OffByOneSplit by blocks_never_overlap;
    leaking_alignment_padding: LeaksAlignmentPadding by freeing_everything_restores_the_heap;
    forgetting_to_coalesce: ForgetsToCoalesce by check_passes_after_every_operation;
    realloc_that_does_not_copy: ReallocForgetsToCopy by reallocate_keeps_contents;
    realloc_that_frees_first: ReallocFreesFirst by failed_reallocate_keeps_the_block;
    zeroed_that_trusts_fresh_memory: TrustsFreshMemory by allocate_zeroed_gives_zeros;
    stats_that_drift_on_resize: StatsForgetResize by stats_match_the_model;
    panicking_on_exhaustion: PanicsOnExhaustion by methods_never_panic;
    writing_past_an_end_rounded_up: RoundsUpTheEnd by writes_stay_inside_the_region;
    walk_that_hides_a_block: WalkHidesFirstChunk by walk_shows_exactly_the_live_blocks;
    usable_size_that_lies: UsableSizeLies by usable_size_is_truthful;
    high_water_that_falls: HighWaterFalls by high_water_covers_every_block;
    no_limit_on_alignment: NoAlignLimit by absurd_layouts_are_refused;
}

#[test]
fn assuming_an_aligned_region_passes_in_one_and_fails_in_an_unaligned_one() {
    assert_eq!(
        rules::alignment_is_honoured::<ListHeap<AssumesAlignedRegion>>(REGION),
        Ok(())
    );
    let violation = rejected(
        rules::unaligned_regions_are_handled::<ListHeap<AssumesAlignedRegion>>(REGION),
        "alignment_is_honoured",
    );
    assert_ne!(violation.offset, 0, "{violation}");
    let text = violation.to_string();
    assert!(
        text.contains("conformance::replay_at::<ListHeap<AssumesAlignedRegion>>("),
        "{text}"
    );
}

#[test]
fn a_panic_is_charged_to_one_rule_whichever_scenario_meets_it_and_says_where() {
    for result in [
        rules::exhaustion_is_an_error_not_a_crash::<ListHeap<PanicsOnExhaustion>>(REGION),
        rules::methods_never_panic::<ListHeap<PanicsOnExhaustion>>(REGION),
    ] {
        let violation = rejected(result, "methods_never_panic");
        assert!(
            violation
                .message
                .contains("the heap panicked during `Op::Alloc"),
            "{violation}"
        );
        assert!(
            violation.message.contains("out of memory (at "),
            "{violation}"
        );
        assert!(violation.message.contains("teaching.rs:"), "{violation}");
        let ops = violation.ops.expect("a panic replays");
        assert_eq!(
            conformance::replay::<ListHeap<PanicsOnExhaustion>>(violation.region, &ops)
                .expect_err("the ops panic again")
                .message,
            violation.message
        );
    }
}

#[test]
fn a_write_past_the_region_names_the_bytes_and_the_operation_and_replays() {
    let violation = rejected(
        rules::writes_stay_inside_the_region::<ListHeap<RoundsUpTheEnd>>(REGION),
        "writes_stay_inside_the_region",
    );
    // The first region whose length is 8 past a multiple of 16: the marker lands in
    // the 8 bytes after its end.
    assert_eq!(violation.region, REGION - 8, "{violation}");
    let end = format!("{:#x}", REGION - 8);
    assert!(
        violation
            .message
            .contains("the heap wrote outside its region during `Op::Alloc")
            && violation.message.contains(&format!(
                "+{end}..+{:#x} (8 bytes past the region's end +{end})",
                REGION
            )),
        "{violation}"
    );
    let ops = violation.ops.clone().expect("a sequence");
    assert_eq!(ops.len(), 1, "not shrunk: {violation}");
    assert_eq!(
        conformance::replay::<ListHeap<RoundsUpTheEnd>>(REGION - 8, &ops),
        Err(violation.clone())
    );
    // The same heap keeps to a region whose length is a multiple of 16.
    assert_eq!(
        conformance::replay::<ListHeap<RoundsUpTheEnd>>(REGION, &ops),
        Ok(())
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "shrinking quality, with no unsafe code of its own; replays are slow under Miri"
)]
fn random_sequences_find_bugs_and_shrink_them_to_a_few_operations() {
    for (result, rule) in [
        (
            property::check::<ListHeap<IgnoresUsedFlag>>(REGION),
            "blocks_never_overlap",
        ),
        (
            property::check::<ListHeap<StatsForgetResize>>(REGION),
            "stats_match_the_model",
        ),
        (
            property::check::<ListHeap<ReallocForgetsToCopy>>(REGION),
            "reallocate_keeps_contents",
        ),
    ] {
        rejected_with_a_short_sequence(result, rule);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "shrinking quality, with no unsafe code of its own; replays are slow under Miri"
)]
fn quickcheck_finds_a_bug_and_shrinks_it() {
    rejected_with_a_short_sequence(
        conformance::quickcheck::<ListHeap<IgnoresUsedFlag>>(REGION),
        "blocks_never_overlap",
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "shrinking quality, with no unsafe code of its own; replays are slow under Miri"
)]
fn scenario_failures_are_shrunk_too() {
    rejected_with_a_short_sequence(
        rules::contents_are_preserved::<ListHeap<IgnoresUsedFlag>>(REGION),
        "blocks_never_overlap",
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "Miri keeps programs away from the file system: no pages"
)]
fn a_violation_writes_a_page_that_draws_every_step_and_marks_the_bytes() {
    let violation = rejected(
        rules::writes_stay_inside_the_region::<ListHeap<RoundsUpTheEnd>>(REGION),
        "writes_stay_inside_the_region",
    );
    let page = violation.page.clone().expect("a failure page");
    assert!(page.is_absolute(), "{}", page.display());
    assert!(
        page.ends_with(
            "heaplab/failures/ListHeap_RoundsUpTheEnd-writes_stay_inside_the_region.html"
        ),
        "{}",
        page.display()
    );
    let text = violation.to_string();
    assert!(
        text.lines()
            .any(|line| line == format!("failure page: {}", page.display())),
        "{text}"
    );
    let html = std::fs::read_to_string(&page).expect("the page was written");
    let steps = violation.ops.as_ref().expect("a sequence").len() + 1;
    assert!(
        html.contains("<h1>ListHeap&lt;RoundsUpTheEnd&gt; broke the rule <code>writes_stay_inside_the_region</code></h1>"),
        "{html}"
    );
    // The fresh heap and each operation, each with its heap map and stats; the last
    // step is the one that broke the rule.
    assert_eq!(html.matches("<li class=\"step").count(), steps, "{html}");
    // Each state drawn twice: the whole region, and zoomed in on its last 128 bytes,
    // beside which the heap wrote.
    assert_eq!(
        html.matches("class=\"heap-map\"").count(),
        2 * steps,
        "{html}"
    );
    assert_eq!(
        html.matches(&format!(
            "<figure class=\"map\" data-from=\"{}\" data-len=\"128\">",
            REGION - 8 - 128
        ))
        .count(),
        steps,
        "{html}"
    );
    assert_eq!(
        html.matches("<table class=\"stats\">").count(),
        steps,
        "{html}"
    );
    assert_eq!(
        html.matches("<li class=\"step broke\"").count(),
        1,
        "{html}"
    );
    assert!(
        html.contains("<code>Op::Alloc { size: 1, align_log2: 0 }</code>"),
        "{html}"
    );
    // The heap's one block after the allocation, to scale, and the 8 bytes it wrote
    // past the region's end marked.
    assert!(
        html.contains("data-kind=\"used\" data-offset=\"0\" data-size=\"8\""),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "class=\"offending\" data-from=\"{}\" data-to=\"{}\"",
            REGION - 8,
            REGION
        )),
        "{html}"
    );
    assert!(html.contains("8 bytes past the end"), "{html}");
    assert!(
        html.contains("::conformance::replay::&lt;ListHeap&lt;RoundsUpTheEnd&gt;&gt;"),
        "{html}"
    );
}

/// What `cargo test` shows for a heap that panics when full (the tests `suite!` writes
/// call `__run_test`): the panic's own rule fails, and a rule whose scenario the panic
/// stopped passes, as the grader counts it, since the heap serves modest requests.
#[test]
#[cfg_attr(
    miri,
    ignore = "how tests are judged, with no unsafe code of its own; three whole rules are slow under Miri"
)]
fn in_cargo_test_a_panic_fails_one_test() {
    type Heap = ListHeap<PanicsOnExhaustion>;
    let serves = rules::modest_requests_are_served::<Heap>;
    conformance::__run_test(
        "blocks_lie_inside_the_region",
        rules::blocks_lie_inside_the_region::<Heap>,
        serves,
        REGION,
    );
    let own = std::panic::catch_unwind(|| {
        conformance::__run_test(
            "methods_never_panic",
            rules::methods_never_panic::<Heap>,
            serves,
            REGION,
        )
    })
    .expect_err("the panic's own rule fails");
    let message = own.downcast_ref::<String>().expect("a message");
    assert!(
        message.contains("broke the rule `methods_never_panic`")
            && message.contains("out of memory (at "),
        "{message}"
    );
}
