//! The replay, the measurements and the heap map on a real heaplab heap: `bump::Bump`.

use rawheap::{Block, BlockKind};
use trace::heapmap;
use trace::replay::{ReplayOptions, replay};
use trace::{Op, Trace, Workload, generate};

/// A trace of `ops`, with ids below `ids`, in a region of 1 KiB.
fn small_trace(ids: usize, ops: Vec<Op>) -> Trace {
    Trace::new(1024, ids, 1, ops).expect("a valid trace")
}

/// Reads the block rects of a heap map back: (kind, offset, size).
fn rects(svg: &str) -> Vec<(BlockKind, usize, usize)> {
    let document = roxmltree::Document::parse(svg).expect("well-formed XML");
    document
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.has_attribute("data-kind"))
        .map(|n| {
            let kind = match n.attribute("data-kind").unwrap() {
                "used" => BlockKind::Used,
                "free" => BlockKind::Free,
                "overhead" => BlockKind::Overhead,
                other => panic!("unknown kind {other}"),
            };
            let number = |name| n.attribute(name).unwrap().parse::<usize>().unwrap();
            (kind, number("data-offset"), number("data-size"))
        })
        .collect()
}

#[test]
fn heap_map_of_bump_matches_its_walk() {
    // FIFO frees bury blocks under later ones: the bump heap shows all three kinds.
    let trace = if cfg!(miri) {
        // Every op costs Miri thousands of times more: eight blocks, the oldest freed
        // first.
        let mut ops: Vec<Op> = (0..8)
            .map(|id| Op::Alloc {
                id,
                size: 8 * id + 3,
            })
            .collect();
        ops.extend((0..8).map(|id| Op::Free { id }));
        small_trace(8, ops)
    } else {
        generate(Workload::Fifo, 11, 1)
    };
    let middle = trace.ops().len() / 2;
    let options = ReplayOptions {
        check_every: Some(7),
        snapshots: vec![middle],
        ..ReplayOptions::default()
    };
    let report = replay::<bump::Bump>(&trace, &options).unwrap();
    let snapshot = &report.snapshots[0];
    assert_eq!(snapshot.after_ops, middle);
    let expected: Vec<(BlockKind, usize, usize)> = snapshot
        .blocks
        .iter()
        .map(|b: &Block| (b.kind, b.addr - snapshot.region_start, b.size))
        .collect();
    for kind in [BlockKind::Used, BlockKind::Free, BlockKind::Overhead] {
        assert!(expected.iter().any(|b| b.0 == kind), "no {kind:?} block");
    }
    let svg = heapmap::svg(
        &snapshot.blocks,
        snapshot.region_start,
        snapshot.region_len,
        800,
    );
    assert_eq!(rects(&svg), expected);
    let ascii = heapmap::ascii(&snapshot.blocks, 100);
    let line = ascii.lines().next().unwrap();
    assert!(line.len() <= 100 && line.contains('#') && line.contains('.'));
}

#[test]
fn bump_reclaims_everything_on_a_stack_discipline_trace() {
    let trace = if cfg!(miri) {
        // A short stack discipline trace: push 20, pop them all.
        let mut ops: Vec<Op> = (0..20).map(|id| Op::Alloc { id, size: 8 + id }).collect();
        ops.extend((0..20).rev().map(|id| Op::Free { id }));
        small_trace(20, ops)
    } else {
        generate(Workload::Lifo, 3, 1)
    };
    let options = ReplayOptions {
        check_every: Some(50),
        snapshots: vec![0, trace.ops().len()],
        ..ReplayOptions::default()
    };
    let report = replay::<bump::Bump>(&trace, &options).unwrap();
    assert_eq!(report.failed_requests, 0);
    assert!(report.utilization > 0.5, "{}", report.utilization);
    let [start, end] = &report.snapshots[..] else {
        panic!("two snapshots")
    };
    assert_eq!(end.blocks, start.blocks, "every block was popped");
    assert!(end.blocks.iter().all(|b| b.kind != BlockKind::Used));
}
