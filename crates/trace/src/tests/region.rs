//! The region a replay gets: trusted suggestions, the bound, a given size.

use super::test_heap::SlotHeap;
use crate::format::{Op, Trace};
use crate::region::{
    MIN_REGION, REGION_FACTOR, Region, RegionChoice, block_footprint, bound, choose, peak_footprint,
};
use crate::replay::{ReplayOptions, replay};

/// Eight live blocks of 24 bytes, then all freed: what the slot heap can serve.
fn eight_blocks(suggested: usize) -> Trace {
    let allocs = (0..8).map(|id| Op::Alloc { id, size: 24 });
    let frees = (0..8).map(|id| Op::Free { id });
    Trace::new(suggested, 8, 1, allocs.chain(frees).collect()).unwrap()
}

#[test]
fn a_block_counts_its_size_rounded_to_the_granule_plus_a_minimum_block() {
    assert_eq!(block_footprint(0, 8), 16 + 32, "size 0 is served as 1 byte");
    assert_eq!(block_footprint(16, 8), 16 + 32);
    assert_eq!(block_footprint(17, 8), 32 + 32);
    assert_eq!(
        block_footprint(17, 64),
        32 + 32 + 48,
        "padding to a larger alignment"
    );
    assert_eq!(block_footprint(usize::MAX, 8), usize::MAX);
}

#[test]
fn the_peak_footprint_follows_frees_and_reallocs() {
    let ops = vec![
        Op::Alloc { id: 0, size: 10 },    // 48
        Op::Alloc { id: 1, size: 40 },    // 48 + 80 = 128
        Op::Realloc { id: 0, size: 100 }, // 144 + 80 = 224
        Op::Free { id: 1 },               // 144
        Op::Alloc { id: 2, size: 1 },     // 192
        Op::Free { id: 0 },
        Op::Free { id: 2 },
    ];
    let trace = Trace::new(0, 3, 1, ops).unwrap();
    assert_eq!(peak_footprint(&trace, 8), 224);
    // A request no layout can describe is refused without touching the region.
    let absurd = Trace::new(
        0,
        1,
        1,
        vec![Op::Alloc {
            id: 0,
            size: usize::MAX,
        }],
    )
    .unwrap();
    assert_eq!(peak_footprint(&absurd, 8), 0);
    // A suggestion of 0 bytes is never trusted, even for a trace that needs none.
    assert_eq!(choose(&absurd, None, 8).bytes, MIN_REGION);
}

#[test]
fn a_suggestion_below_the_peak_footprint_is_replaced_by_the_bound() {
    let peak = 8 * block_footprint(24, 8);
    for suggested in [0, 1, peak - 1] {
        let trace = eight_blocks(suggested);
        let region = choose(&trace, None, 8);
        assert_eq!(
            region,
            Region {
                bytes: bound(peak),
                choice: RegionChoice::Bound,
                suggested,
                peak_footprint: peak,
            }
        );
        // The replay uses it: the heap serves every request, where the suggested
        // region would have refused them all.
        let report = replay::<SlotHeap>(&trace, &ReplayOptions::default()).unwrap();
        assert_eq!(report.region, region.bytes);
        assert_eq!(report.failed_requests, 0);
    }
    assert_eq!(
        choose(&eight_blocks(1), None, 8).to_string(),
        "region 64.0 KiB: the trace's suggestion (1 B) is below its peak footprint (512 B), \
         so 4 × the footprint"
    );
}

#[test]
fn a_suggestion_that_holds_the_peak_footprint_is_trusted() {
    let peak = 8 * block_footprint(24, 8);
    let region = choose(&eight_blocks(peak), None, 8);
    assert_eq!(
        (region.bytes, region.choice),
        (peak, RegionChoice::Suggested)
    );
    assert_eq!(
        region.to_string(),
        "region 512 B: the trace's suggestion, which holds its peak footprint (512 B)"
    );
}

#[test]
fn a_given_region_is_used_as_given_even_when_too_small() {
    let region = choose(&eight_blocks(1 << 20), Some(100), 8);
    assert_eq!((region.bytes, region.choice), (100, RegionChoice::Given));
    assert_eq!(region.to_string(), "region 100 B: as given");
}

#[test]
fn the_bound_is_a_multiple_of_the_footprint_rounded_to_a_page() {
    assert_eq!(bound(0), MIN_REGION);
    assert_eq!(bound(MIN_REGION / REGION_FACTOR), MIN_REGION);
    assert_eq!(
        bound(100_000),
        (REGION_FACTOR * 100_000).next_multiple_of(4096)
    );
    assert_eq!(bound(usize::MAX), usize::MAX);
}

#[test]
#[cfg(not(miri))]
fn every_generated_trace_suggests_a_region_that_is_trusted() {
    // The book's scale (1) and `cargo xtask replay`'s (4).
    for scale in [1, 4] {
        for workload in crate::Workload::ALL {
            let trace = crate::generate(workload, 1, scale);
            assert_eq!(
                choose(&trace, None, 8).choice,
                RegionChoice::Suggested,
                "{workload} at scale {scale}"
            );
        }
    }
}
