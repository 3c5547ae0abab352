use rawheap::Arena;

use super::replay::walkthrough;
use super::test_heap::{HEADER, SLOT, SlotHeap};
use crate::peer::measure_peer;
use crate::replay::min_region_utilization;
use crate::report::{MeasureOptions, TraceReport};

#[test]
fn a_peer_is_measured_through_its_calls_alone() {
    let trace = walkthrough();
    let m = measure_peer::<Arena<SlotHeap>>("slots", &trace, &MeasureOptions::default());
    assert!(m.peer);
    assert_eq!(m.error, None);
    assert_eq!(m.failed_requests, 0);
    // The same search as for a RawHeap: 96 bytes, peak live 30.
    assert_eq!(m.min_region, min_region_utilization::<SlotHeap>(&trace, 8));
    // The highest block end: r1's 5 bytes moved to slot 2, behind its header.
    let high = 2 * SLOT + HEADER + 5;
    assert_eq!(m.utilization, Some(30.0 / high as f64));
    assert_eq!(m.throughput.map(|t| t.ops), Some(7));
}

#[test]
fn a_peer_row_leaves_fragmentation_unmeasured() {
    let trace = walkthrough();
    let system = crate::replay::time_system_replay(&trace, 8).unwrap();
    let mut report = TraceReport::new("walkthrough", &trace, system);
    let m = measure_peer::<Arena<SlotHeap>>("slots", &trace, &MeasureOptions::default());
    report.measurements.push(m);
    let row = report
        .markdown()
        .lines()
        .find(|line| line.starts_with("| slots |"))
        .map(str::to_owned)
        .unwrap();
    assert!(row.ends_with("| 0 | - | - |"), "{row}");
}
