//! Every heaplab allocator beside its peer crates and the system allocator, on the same
//! workloads, in one run. `cargo xtask bench` runs this and writes the ratio table.
//!
//! Each benchmark replays one generated trace from start to end, again and again, on
//! one heap per contender, the way a long-running program reuses its heap: the trace is
//! balanced, so the heap is empty between passes, and its memory is warm after
//! criterion's warm-up. Criterion's throughput is in trace operations, so
//! `time / operations` is the cost of one `alloc`, `free` or `realloc`. The first byte
//! of every block handed out is written, for every contender alike (see
//! `heaplab_benches::Workload::run`).
//!
//! With `HEAPLAB_BENCH_CALLED` (`heaplab_benches::CALLED_VAR`) set (`cargo xtask bench --called`), every contender is
//! reached through a call that is never inlined (`heaplab_benches::Called`), and the
//! groups are named `WORKLOAD (called)`.

use std::ptr::NonNull;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use heaplab_benches::{
    CALLED_VAR, CalledIf, Contender, ContenderVisitor, SCALE, SEED, Workload, for_each_contender,
};
use trace::Workload as Generator;

fn time<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, workload: &Workload) {
    let mut heap = C::with_region(workload.region);
    let mut slots = vec![None::<(NonNull<u8>, core::alloc::Layout)>; workload.slots];
    group.bench_function(name, |bencher| {
        bencher.iter(|| {
            workload.run(&mut heap, &mut slots);
            heap.trace_done();
        })
    });
}

struct Timed<'g, 'c> {
    group: &'g mut BenchmarkGroup<'c, WallTime>,
    workload: &'g Workload,
}

impl ContenderVisitor for Timed<'_, '_> {
    fn visit<C: Contender>(&mut self, name: &str) {
        time::<C>(self.group, name, self.workload);
    }
}

fn allocators(c: &mut Criterion) {
    let called = std::env::var_os(CALLED_VAR).is_some();
    for generator in Generator::ALL {
        let trace = trace::generate(generator, SEED, SCALE);
        let workload = Workload::from_trace(generator.name(), &trace);
        let mut group = c.benchmark_group(if called {
            format!("{} (called)", generator.name())
        } else {
            generator.name().to_owned()
        });
        group.throughput(Throughput::Elements(workload.steps.len() as u64));
        for_each_contender(&mut CalledIf {
            visitor: &mut Timed {
                group: &mut group,
                workload: &workload,
            },
            called,
        });
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_millis(3000))
        .sample_size(40)
        .configure_from_args()
}

criterion_group! { name = benches; config = config(); targets = allocators }
criterion_main!(benches);
