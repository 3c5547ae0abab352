//! Replay measurements checked against numbers worked out by hand on the slot heap
//! (32-byte slots, 8-byte header, 24 usable bytes; see `test_heap`).

use rawheap::{AllocError, Block, ExhaustionCause};

use super::test_heap::{
    CHECKS, FAILING_CHECK, HEADER, MANGLE_REALLOC, SCRIBBLE, SLOT, SlotHeap, USABLE,
};
use crate::format::{Op, Trace};
use crate::replay::{
    Failure, ReplayError, ReplayOptions, SCORE_FORMULA, min_region_utilization, performance_index,
    replay, time_replay, time_system_replay,
};

fn trace(ops: &[Op], region: usize) -> Trace {
    let ids = ops.iter().map(|op| op.id() + 1).max().unwrap_or(0);
    Trace::new(region, ids, 1, ops.to_vec()).unwrap()
}

/// Four slots and an 8-byte tail: 136 bytes.
const REGION: usize = 4 * SLOT + 8;

/// a0 10, a1 20, f0, a2 0, r1 5, f2, f1.
pub(super) fn walkthrough() -> Trace {
    trace(
        &[
            Op::Alloc { id: 0, size: 10 },
            Op::Alloc { id: 1, size: 20 },
            Op::Free { id: 0 },
            Op::Alloc { id: 2, size: 0 },
            Op::Realloc { id: 1, size: 5 },
            Op::Free { id: 2 },
            Op::Free { id: 1 },
        ],
        REGION,
    )
}

fn every_op() -> ReplayOptions {
    ReplayOptions {
        sample_every: Some(1),
        ..ReplayOptions::default()
    }
}

#[test]
fn measures_utilization_and_fragmentation_as_worked_out_by_hand() {
    let report = replay::<SlotHeap>(&walkthrough(), &every_op()).unwrap();
    // Slots after each op (U used, . free), live requested bytes, free bytes, largest
    // free stretch, reserved = 136 - free, internal = reserved - requested:
    //   0 ops  ....  live  0  free 128  largest 128  reserved  8  internal  8
    //   a0 10  U...  live 10  free  96  largest  96  reserved 40  internal 30
    //   a1 20  UU..  live 30  free  64  largest  64  reserved 72  internal 42
    //   f0     .U..  live 20  free  96  largest  64  reserved 40  internal 20
    //   a2 0   UU..  live 21  free  64  largest  64  reserved 72  internal 51  (0 → 1 byte)
    //   r1 5   U.U.  live  6  free  64  largest  32  reserved 72  internal 66
    //          (the slot heap always moves: slot 2 is taken before slot 1 is freed)
    //   f2     ..U.  live  5  free  96  largest  64  reserved 40  internal 35
    //   f1     ....  live  0  free 128  largest 128  reserved  8  internal  8
    assert_eq!(report.ops, 7);
    assert_eq!(report.region, REGION);
    assert_eq!(report.failed_requests, 0);
    assert_eq!(report.peak_live_bytes, 30);
    assert_eq!(report.high_water, 3 * SLOT);
    assert_eq!(report.utilization, 30.0 / 96.0);
    assert_eq!(report.peak_internal_fragmentation, 66);
    let internal = [8, 30, 42, 20, 51, 66, 35, 8];
    assert_eq!(
        report.mean_internal_fragmentation,
        internal.iter().sum::<usize>() as f64 / 8.0
    );
    let third = 1.0 - 64.0 / 96.0;
    assert_eq!(
        report.external_fragmentation,
        [
            (0, 0.0),
            (1, 0.0),
            (2, 0.0),
            (3, third),
            (4, 0.0),
            (5, 0.5),
            (6, third),
            (7, 0.0)
        ]
    );
    assert_eq!(report.peak_external_fragmentation, 0.5);
}

#[test]
fn samples_every_k_ops_plus_the_start_and_the_end() {
    let options = ReplayOptions {
        sample_every: Some(3),
        ..ReplayOptions::default()
    };
    let report = replay::<SlotHeap>(&walkthrough(), &options).unwrap();
    let third = 1.0 - 64.0 / 96.0;
    assert_eq!(
        report.external_fragmentation,
        [(0, 0.0), (3, third), (6, third), (7, 0.0)]
    );
    // Only the sampled moments count: internal fragmentation 8, 20, 35, 8.
    assert_eq!(report.peak_internal_fragmentation, 35);
    assert_eq!(report.mean_internal_fragmentation, 71.0 / 4.0);
    // The default is one sample per ops / 200 ops, at least every op.
    let report = replay::<SlotHeap>(&walkthrough(), &ReplayOptions::default()).unwrap();
    assert_eq!(report.external_fragmentation.len(), 8);
}

#[test]
fn refused_requests_are_counted_and_the_replay_goes_on() {
    // Two slots and a tail.
    let region = 2 * SLOT + 8;
    let ops = [
        Op::Alloc { id: 0, size: 24 },
        Op::Alloc { id: 1, size: 24 },
        Op::Alloc { id: 2, size: 8 },   // refused: no slot left
        Op::Realloc { id: 2, size: 4 }, // id 2 is not live: allocates, refused again
        Op::Free { id: 2 },             // skipped
        Op::Free { id: 0 },
        Op::Alloc {
            id: 3,
            size: USABLE + 1,
        }, // refused: larger than a slot
        Op::Realloc { id: 1, size: 100 }, // refused; block 1 stays live and intact
        Op::Alloc { id: 4, size: 3 },     // served from slot 0
        Op::Free { id: 1 },
        Op::Free { id: 4 },
    ];
    let options = ReplayOptions {
        region: Some(region),
        ..every_op()
    };
    let report = replay::<SlotHeap>(&trace(&ops, region), &options).unwrap();
    assert_eq!(report.failed_requests, 4);
    assert_eq!(report.skipped_frees, 1);
    assert_eq!(
        report.first_failure,
        Some(Failure {
            op_index: 2,
            error: AllocError::Exhausted,
            cause: Some(ExhaustionCause::OutOfMemory),
        })
    );
    assert_eq!(report.peak_live_bytes, 48);
    assert_eq!(report.high_water, 2 * SLOT);
    assert_eq!(report.utilization, 48.0 / 64.0);
}

#[test]
fn a_size_no_layout_can_have_is_a_refused_request() {
    let ops = [
        Op::Alloc {
            id: 0,
            size: usize::MAX,
        },
        Op::Free { id: 0 },
    ];
    let report = replay::<SlotHeap>(&trace(&ops, REGION), &every_op()).unwrap();
    assert_eq!(report.failed_requests, 1);
    assert_eq!(report.skipped_frees, 1);
    assert_eq!(report.first_failure.unwrap().error, AllocError::Unsupported);
    assert_eq!(report.utilization, 0.0);
}

#[test]
fn a_block_changed_while_live_is_reported_with_its_op() {
    // Allocating block 1 into slot 1 flips the last usable byte of block 0; the replay
    // finds it when block 0 is freed, at op 2.
    let ops = [
        Op::Alloc {
            id: 0,
            size: USABLE,
        },
        Op::Alloc { id: 1, size: 8 },
        Op::Free { id: 0 },
        Op::Free { id: 1 },
    ];
    let error = replay::<SlotHeap<SCRIBBLE>>(&trace(&ops, REGION), &every_op()).unwrap_err();
    assert_eq!(
        error,
        ReplayError::Corrupted {
            op_index: 2,
            id: 0,
            offset: USABLE - 1
        }
    );
    assert_eq!(
        error.to_string(),
        "op 2: block 0 is corrupted at byte 23 (its contents changed while it was live)"
    );
    // The same trace on the sound heap replays cleanly.
    assert!(replay::<SlotHeap>(&trace(&ops, REGION), &every_op()).is_ok());
}

#[test]
fn a_reallocation_that_loses_contents_is_reported() {
    let ops = [
        Op::Alloc { id: 5, size: 16 },
        Op::Realloc { id: 5, size: 20 },
        Op::Free { id: 5 },
    ];
    let error = replay::<SlotHeap<MANGLE_REALLOC>>(&trace(&ops, REGION), &every_op()).unwrap_err();
    assert_eq!(
        error,
        ReplayError::Corrupted {
            op_index: 1,
            id: 5,
            offset: 0
        }
    );
}

#[test]
fn check_runs_every_n_ops_and_at_the_end_and_its_failure_stops_the_replay() {
    let options = ReplayOptions {
        check_every: Some(3),
        ..ReplayOptions::default()
    };
    let before = CHECKS.with(|c| c.get());
    replay::<SlotHeap>(&walkthrough(), &options).unwrap();
    // After 3 and 6 ops, and at the end (7).
    assert_eq!(CHECKS.with(|c| c.get()) - before, 3);

    for (every, checks) in [(7, 1), (0, 1), (1, 7)] {
        let options = ReplayOptions {
            check_every: Some(every),
            ..ReplayOptions::default()
        };
        let before = CHECKS.with(|c| c.get());
        replay::<SlotHeap>(&walkthrough(), &options).unwrap();
        assert_eq!(CHECKS.with(|c| c.get()) - before, checks, "every {every}");
    }

    let before = CHECKS.with(|c| c.get());
    replay::<SlotHeap>(&walkthrough(), &ReplayOptions::default()).unwrap();
    assert_eq!(CHECKS.with(|c| c.get()), before, "no check unless asked");

    let options = ReplayOptions {
        check_every: Some(1),
        ..ReplayOptions::default()
    };
    let error = replay::<SlotHeap<FAILING_CHECK>>(&walkthrough(), &options).unwrap_err();
    // Two blocks are first live after op 2 (a1).
    assert!(
        matches!(error, ReplayError::Check { after_ops: 2, error } if error.invariant.contains("test flaw")),
        "{error:?}"
    );
}

#[test]
fn snapshots_capture_walk_after_the_asked_number_of_ops() {
    let options = ReplayOptions {
        snapshots: vec![100, 3, 0, 3],
        ..ReplayOptions::default()
    };
    let report = replay::<SlotHeap>(&walkthrough(), &options).unwrap();
    let after: Vec<usize> = report.snapshots.iter().map(|s| s.after_ops).collect();
    assert_eq!(after, [0, 3, 7]);
    let s = &report.snapshots[1];
    assert_eq!(s.region_len, REGION);
    let at = |offset| s.region_start + offset;
    // After a0, a1, f0: slot 0 free, slot 1 used, slots 2 and 3 free, the tail.
    assert_eq!(
        s.blocks,
        [
            Block::free(at(0), SLOT),
            Block::overhead(at(SLOT), HEADER),
            Block::used(at(SLOT + HEADER), USABLE),
            Block::free(at(2 * SLOT), 2 * SLOT),
            Block::overhead(at(4 * SLOT), 8),
        ]
    );
    assert_eq!(
        report.snapshots[0].blocks,
        [
            Block::free(at(0), 4 * SLOT),
            Block::overhead(at(4 * SLOT), 8)
        ]
    );
    assert_eq!(report.snapshots[2].blocks, report.snapshots[0].blocks);
}

#[test]
fn the_region_can_be_overridden_and_bad_options_are_errors() {
    let options = ReplayOptions {
        region: Some(2 * SLOT),
        ..ReplayOptions::default()
    };
    // Two slots: the move in r1 needs a third, so it is refused and block 1 stays.
    let report = replay::<SlotHeap>(&walkthrough(), &options).unwrap();
    assert_eq!(report.region, 2 * SLOT);
    assert_eq!(report.failed_requests, 1);
    assert_eq!(report.first_failure.unwrap().op_index, 4);

    let options = ReplayOptions {
        align: 12,
        ..ReplayOptions::default()
    };
    assert_eq!(
        replay::<SlotHeap>(&walkthrough(), &options),
        Err(ReplayError::BadAlign(12))
    );
    let options = ReplayOptions {
        region: Some(usize::MAX),
        ..ReplayOptions::default()
    };
    assert_eq!(
        replay::<SlotHeap>(&walkthrough(), &options),
        Err(ReplayError::Region { bytes: usize::MAX })
    );
}

#[test]
fn an_empty_trace_replays_to_zeros() {
    let report = replay::<SlotHeap>(&trace(&[], REGION), &every_op()).unwrap();
    assert_eq!(report.ops, 0);
    assert_eq!(report.utilization, 0.0);
    assert_eq!(report.external_fragmentation, [(0, 0.0)]);
    assert_eq!(report.mean_internal_fragmentation, 8.0);
}

#[test]
fn min_region_is_the_smallest_that_completes() {
    // The walkthrough needs three slots at once (the move in r1), so 96 bytes; 95 hold
    // only two. Peak live bytes are 30.
    let found = min_region_utilization::<SlotHeap>(&walkthrough(), 8).unwrap();
    assert_eq!(found.region, 3 * SLOT);
    assert_eq!(found.utilization, 30.0 / 96.0);
}

#[test]
fn min_region_is_within_one_percent_for_large_regions() {
    // 300 blocks live at once need 300 slots: 9600 bytes. The suggested 4096 bytes are
    // too few, so the search doubles first.
    let mut ops: Vec<Op> = (0..300).map(|id| Op::Alloc { id, size: 1 }).collect();
    ops.extend((0..300).map(|id| Op::Free { id }));
    let found = min_region_utilization::<SlotHeap>(&trace(&ops, 4096), 8).unwrap();
    assert!(
        (9600..=9600 + 96).contains(&found.region),
        "{}",
        found.region
    );
    assert_eq!(found.utilization, 300.0 / found.region as f64);
}

#[test]
fn min_region_is_none_when_no_region_works_or_nothing_is_allocated() {
    let too_big = [Op::Alloc {
        id: 0,
        size: USABLE + 1,
    }];
    assert_eq!(
        min_region_utilization::<SlotHeap>(&trace(&too_big, 64), 8),
        None
    );
    assert_eq!(min_region_utilization::<SlotHeap>(&trace(&[], 64), 8), None);
}

#[test]
fn timing_counts_every_op() {
    let trace = walkthrough();
    let heap = time_replay::<SlotHeap>(&trace, REGION, 8).unwrap();
    assert_eq!(heap.ops, 7);
    assert!(heap.seconds > 0.0);
    assert_eq!(heap.ops_per_sec, 7.0 / heap.seconds);
    let system = time_system_replay(&trace, 8).unwrap();
    assert_eq!(system.ops, 7);
    assert!(system.ops_per_sec > 0.0);
    assert_eq!(
        time_system_replay(&trace, 3).unwrap_err(),
        ReplayError::BadAlign(3)
    );
}

#[test]
fn the_system_allocator_frees_what_a_trace_leaves_live() {
    // Under Miri a leak fails the test, so this checks the clean-up.
    let ops = [
        Op::Alloc { id: 0, size: 100 },
        Op::Realloc { id: 0, size: 1000 },
    ];
    assert_eq!(time_system_replay(&trace(&ops, 0), 16).unwrap().ops, 2);
}

#[test]
fn performance_index_is_the_malloc_lab_formula() {
    assert_eq!(
        SCORE_FORMULA,
        "P = 100 * (0.6 * U + 0.4 * min(1, T / T_ref))"
    );
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // 100 * (0.6 * 0.5 + 0.4 * 300/600) = 30 + 20
    assert!(close(performance_index(0.5, 300.0, 600.0), 50.0));
    // Faster than the reference counts as the reference: 100 * (0.6 * 0.25 + 0.4)
    assert!(close(performance_index(0.25, 900.0, 600.0), 55.0));
    assert!(close(performance_index(0.0, 0.0, 600.0), 0.0));
    assert!(close(performance_index(1.0, 5.0, 0.0), 100.0));
}
