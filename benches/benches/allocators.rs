//! Every heaplab allocator beside its peer crates and the system allocator, on the same
//! workloads, in one run. `cargo xtask bench` runs this and writes the ratio table.
//!
//! Each benchmark replays one generated trace from start to end on a fresh heap (built
//! outside the timed part); criterion's throughput is in trace operations, so
//! `time / operations` is the cost of one `alloc`, `free` or `realloc`.

use std::ptr::NonNull;

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use heaplab::RawHeap;
use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab_benches::peers::{BuddySystem, Bumpalo, LinkedList, Rlsf, System, Talc};
use heaplab_benches::{Contender, Workload};
use trace::Workload as Generator;

/// Trace size for the benches: large enough that setup is noise, small enough that every
/// contender runs in a couple of seconds.
const SCALE: usize = 4;
const SEED: u64 = 2026;

fn time<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, workload: &Workload) {
    group.bench_function(name, |bencher| {
        bencher.iter_batched_ref(
            || {
                (
                    C::with_region(workload.region),
                    vec![None::<(NonNull<u8>, core::alloc::Layout)>; workload.slots],
                )
            },
            |(heap, slots)| workload.run(heap, slots),
            BatchSize::LargeInput,
        )
    });
}

struct HeaplabAllocators<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    workload: &'g Workload,
}

impl HeapVisitor for HeaplabAllocators<'_, '_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        time::<heaplab::Arena<H>>(self.group, entry.name, self.workload);
    }
}

fn allocators(c: &mut Criterion) {
    for generator in Generator::ALL {
        let trace = trace::generate(generator, SEED, SCALE);
        let workload = Workload::from_trace(generator.name(), &trace);
        let mut group = c.benchmark_group(generator.name());
        group.throughput(Throughput::Elements(workload.steps.len() as u64));
        for_each_heap(&mut HeaplabAllocators {
            group: &mut group,
            workload: &workload,
        });
        time::<Bumpalo>(&mut group, "bumpalo", &workload);
        time::<LinkedList>(&mut group, "linked_list_allocator", &workload);
        time::<BuddySystem>(&mut group, "buddy_system_allocator", &workload);
        time::<Talc>(&mut group, "talc", &workload);
        time::<Rlsf>(&mut group, "rlsf", &workload);
        time::<System>(&mut group, "system", &workload);
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_millis(1500))
        .sample_size(20)
        .configure_from_args()
}

criterion_group! { name = benches; config = config(); targets = allocators }
criterion_main!(benches);
