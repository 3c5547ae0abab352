//! Every heaplab allocator beside its peer crates and the system allocator, on the same
//! workloads, in one run. `cargo xtask bench` runs this and writes the ratio table.
//!
//! Each benchmark replays one workload (`heaplab_benches::all_workloads`), pass after
//! pass, on one heap per contender, the way a long-running program reuses its heap. A
//! generated trace is balanced and timed from start to end, so the heap is empty between
//! passes, and its memory is warm after criterion's warm-up. A steady-state workload
//! (a queue, a stack, random victims) is first filled to its live count and emptied
//! after its timed steps, both outside the timer. Criterion's throughput is in timed
//! operations, so `time / operations` is the cost of one `alloc`, `free` or `realloc`.
//! The first byte
//! of every block handed out is written, for every contender alike (see
//! `heaplab_benches::Workload::run`).
//!
//! With `HEAPLAB_BENCH_CALLED` (`heaplab_benches::CALLED_VAR`) set (`cargo xtask bench --called`), every contender is
//! reached through a call that is never inlined (`heaplab_benches::Called`), and the
//! groups are named `WORKLOAD (called)`.

use std::ptr::NonNull;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use heaplab_benches::{
    CALLED_VAR, CalledIf, Contender, ContenderVisitor, Workload, all_workloads, for_each_contender,
};

fn time<C: Contender>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, workload: &Workload) {
    let mut heap = C::with_region(workload.region);
    let mut slots = vec![None::<(NonNull<u8>, core::alloc::Layout)>; workload.slots];
    group.bench_function(name, |bencher| {
        bencher.iter_custom(|passes| {
            let mut timed = Duration::ZERO;
            for _ in 0..passes {
                timed += workload.pass(&mut heap, &mut slots, |heap, slots| {
                    let start = Instant::now();
                    workload.run(heap, slots);
                    start.elapsed()
                });
            }
            timed
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
    for workload in all_workloads() {
        let mut group = c.benchmark_group(if called {
            format!("{} (called)", workload.name)
        } else {
            workload.name.clone()
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
        // `cargo xtask bench` runs this several times and takes the median ratio, so
        // each run is short.
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1000))
        .sample_size(20)
        .configure_from_args()
}

criterion_group! { name = benches; config = config(); targets = allocators }
criterion_main!(benches);
