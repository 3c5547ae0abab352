//! The garbage collector's costs: `cargo bench -p heaplab-benches --bench gc`.
//!
//! - `gc-pause/LIVE`: one full collection of a heap holding a rooted list of `LIVE`
//!   nodes and no garbage: the pause of marking `LIVE` objects and sweeping their slots.
//! - `gc-throughput/{manual,collected}`: the gc chapter's program (requests that build a
//!   list, read it and drop it, over a kept list) freeing by hand and on the collector,
//!   over the same kind of heap. Throughput is in nodes allocated.
//!
//! Both run on a first-fit free-list heap. The book's gc chapter shows the same
//! measurements made by its figures program.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gc::Collector;
use gc::workload::{self, Freeing, Shape};
use heaplab::free_list::FreeList;
use heaplab::{Arena, RawHeap};

/// Live heaps of the pause bench, in nodes.
const LIVE: [usize; 3] = [1_000, 10_000, 100_000];

/// Bytes of region per node: a 64-byte node, its header and room to spare.
const REGION_PER_NODE: usize = 128;

/// The throughput program and the collector's threshold in it.
const SHAPE: Shape = Shape {
    rounds: 200,
    list_len: 100,
    kept: 10_000,
};
const THRESHOLD: usize = 256 * 1024;

fn pause(c: &mut Criterion) {
    let mut group = c.benchmark_group("gc-pause");
    for live in LIVE {
        let mut gc = Collector::<FreeList>::new(live * REGION_PER_NODE);
        gc.set_threshold(usize::MAX);
        workload::rooted_list(&mut gc, live).expect("the region holds the list");
        group.throughput(Throughput::Elements(live as u64));
        group.bench_function(BenchmarkId::from_parameter(live), |bencher| {
            bencher.iter(|| gc.collect())
        });
    }
    group.finish();
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("gc-throughput");
    let nodes = SHAPE.kept + SHAPE.rounds * SHAPE.list_len;
    let region = (SHAPE.kept + 4 * SHAPE.list_len) * REGION_PER_NODE + 4 * THRESHOLD;
    let expected = workload::expected_checksum(SHAPE);
    group.throughput(Throughput::Elements(nodes as u64));
    let mut heap = Arena::<FreeList>::new(region);
    group.bench_function("manual", |bencher| {
        bencher.iter(|| {
            let sum = workload::run_manual(&mut *heap, SHAPE, Freeing::Manual, |_, _| {});
            assert_eq!(sum, Ok(expected));
        })
    });
    assert_eq!(heap.stats().live_blocks, 0, "every node freed by hand");
    let mut gc = Collector::<FreeList>::new(region);
    gc.set_threshold(THRESHOLD);
    group.bench_function("collected", |bencher| {
        bencher.iter(|| {
            let sum = workload::run_collected(&mut gc, SHAPE, |_, _| {});
            assert_eq!(sum, Ok(expected));
        })
    });
    assert_eq!(gc.heap().stats().live_blocks, 0, "every node collected");
    group.finish();
}

criterion_group!(benches, pause, throughput);
criterion_main!(benches);
