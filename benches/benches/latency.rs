//! Latency of single operations: how long one `allocate` or one `free` takes, not how
//! many a second an allocator does. A real-time system cares about the slowest call,
//! so this bench times every call of a trace on its own and reports the median, the
//! 99th percentile and the maximum, per operation, for TLSF, free-list first fit and
//! rlsf on two fragmenting traces. `cargo xtask bench` runs it after the criterion
//! benches; it writes `target/bench/latency.md`, which the book shows.
//!
//! How a call is timed: the processor's time-stamp counter (`rdtsc` between `lfence`s,
//! on x86-64; `Instant` elsewhere) read right before and right after it, converted to
//! nanoseconds with the counter's rate measured against `Instant`. The trace is
//! replayed [`PASSES`] times on the same heap (it is balanced, so the heap is empty
//! again after each pass and goes through the same states), and a call's time is the
//! mean of its timings but the slowest twentieth ([`undisturbed_mean`]): an interrupt
//! or another process taking the core makes a call look slower in a few passes, and the
//! mean of the rest sees through a clock that advances in steps (10 ns on the virtual
//! machines this was written on). The cost of the two clock reads themselves, measured
//! the same way on empty pairs, is stated in the table's note and taken off.

use core::alloc::Layout;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::time::Instant;

use heaplab::Arena;
use heaplab::free_list::{FirstFit, FreeList};
use heaplab::tlsf::Tlsf;
use heaplab_benches::peers::Rlsf;
use heaplab_benches::{Contender, SCALE, SEED, Step, Workload};
use trace::Workload as Generator;

/// Replays of each trace; each call keeps the mean of its timings but the slowest.
const PASSES: usize = 200;
/// The traces: both leave many free blocks of many sizes, the case where searching a
/// list costs most. Same seed and scale as the criterion benches.
const TRACES: [Generator; 2] = [Generator::FirstFitAdversary, Generator::RandomMixed];

/// The kinds of call timed, in table order.
const OPS: [&str; 3] = ["allocate", "free", "reallocate"];

/// The time-stamp counter, read between fences so that the call timed stays between
/// two reads: on x86-64 `rdtsc` counts at a constant rate (the `constant_tsc` feature of
/// every recent processor) with a resolution of one cycle, where `Instant` may step by
/// tens of nanoseconds.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: `lfence` (SSE2) and `rdtsc` exist on every x86-64 processor.
    unsafe {
        _mm_lfence();
        let now = _rdtsc();
        _mm_lfence();
        now
    }
}

/// Nanoseconds since the first call, where there is no time-stamp counter to read.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ticks() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let elapsed = START.get_or_init(Instant::now).elapsed().as_nanos();
    u64::try_from(elapsed).unwrap_or(u64::MAX)
}

/// Nanoseconds per tick of [`ticks`], measured against `Instant` over 100 ms.
fn ns_per_tick() -> f64 {
    let (start, first) = (Instant::now(), ticks());
    while start.elapsed().as_millis() < 100 {
        std::hint::spin_loop();
    }
    let (elapsed, last) = (start.elapsed(), ticks());
    elapsed.as_nanos() as f64 / (last - first) as f64
}

/// The mean of `samples` (which it sorts) without the slowest twentieth, the timings
/// an interrupt or another process may have stretched.
///
/// Not the median, nor the mean of the fastest half: the counter advances in steps (26
/// ticks, 10 ns, on the machines this was written on), so a call shorter than a step
/// reads as one step or as two, depending on where the steps fall, and only the mean of
/// all those readings tells how long it took. Keeping the fastest half kept the lower
/// step: calls of a few nanoseconds read as no time at all, and the cheapest allocator
/// got a median of 0 ns.
fn undisturbed_mean(samples: &mut [u64]) -> f64 {
    samples.sort_unstable();
    let kept = &samples[..samples.len() - samples.len() / 20];
    kept.iter().sum::<u64>() as f64 / kept.len() as f64
}

/// The ticks between two reads with nothing between them, as a call's time is taken:
/// the clock's own cost, taken off every call's time.
fn clock_cost() -> f64 {
    let mut samples: Vec<u64> = (0..PASSES * 100)
        .map(|_| {
            let start = ticks();
            let end = ticks();
            end.saturating_sub(start)
        })
        .collect();
    undisturbed_mean(&mut samples)
}

/// Replays `workload` once on `heap`, timing every call: `times[i]` is the ticks taken
/// by step `i` (`u64::MAX` for a step that does nothing, a free of an empty slot).
fn timed_pass<C: Contender>(
    heap: &mut C,
    workload: &Workload,
    slots: &mut [Option<(NonNull<u8>, Layout)>],
    times: &mut [u64],
) {
    for (step, time) in workload.steps.iter().zip(times.iter_mut()) {
        *time = match *step {
            Step::Alloc { slot, layout } => {
                let start = ticks();
                let ptr = heap.alloc(layout);
                let end = ticks();
                let ptr = black_box(ptr).expect("the bench region holds the trace");
                slots[slot as usize] = Some((ptr, layout));
                end.saturating_sub(start)
            }
            Step::Free { slot } => {
                let Some((ptr, layout)) = slots[slot as usize].take() else {
                    *time = u64::MAX;
                    continue;
                };
                let start = ticks();
                // SAFETY: the slot held a live block of this heap with this layout.
                unsafe { heap.free(black_box(ptr), layout) };
                let end = ticks();
                end.saturating_sub(start)
            }
            Step::Realloc { slot, layout } => {
                let (ptr, old) = slots[slot as usize].expect("trace reallocates live ids only");
                let start = ticks();
                // SAFETY: the slot holds a live block of this heap; same alignment.
                let moved = unsafe { heap.realloc(ptr, old, layout) };
                let end = ticks();
                let moved = black_box(moved).expect("the bench region holds the trace");
                slots[slot as usize] = Some((moved, layout));
                end.saturating_sub(start)
            }
        };
    }
    heap.trace_done();
}

/// Median, 99th percentile and maximum of `times`, or `None` when there are none.
fn percentiles(mut times: Vec<f64>) -> Option<(f64, f64, f64)> {
    times.sort_unstable_by(f64::total_cmp);
    let last = times.len().checked_sub(1)?;
    let p99 = (times.len() * 99).div_ceil(100) - 1;
    Some((times[last / 2], times[p99], times[last]))
}

/// Where the samples go, and how to read them.
struct Table {
    markdown: String,
    clock: f64,
    ns_per_tick: f64,
}

/// The table rows of one contender on one workload.
fn measure<C: Contender>(name: &str, workload: &Workload, table: &mut Table) {
    let mut heap = C::with_region(workload.region);
    let mut slots = vec![None; workload.slots];
    let steps = workload.steps.len();
    // Pass after pass, step after step: `samples[pass * steps + i]`.
    let mut samples = vec![0; PASSES * steps];
    for pass in samples.chunks_exact_mut(steps) {
        timed_pass(&mut heap, workload, &mut slots, pass);
    }
    let mut per_call = vec![0; PASSES];
    let mut calls: Vec<(&'static str, f64)> = Vec::with_capacity(steps);
    for (index, step) in workload.steps.iter().enumerate() {
        for (pass, sample) in per_call.iter_mut().enumerate() {
            *sample = samples[pass * steps + index];
        }
        if per_call[0] != u64::MAX {
            let ticks = (undisturbed_mean(&mut per_call) - table.clock).max(0.0);
            calls.push((kind(step), ticks * table.ns_per_tick));
        }
    }
    for op in OPS {
        let times: Vec<f64> = calls
            .iter()
            .filter(|(kind, _)| *kind == op)
            .map(|(_, ns)| *ns)
            .collect();
        let count = times.len();
        if let Some((median, p99, max)) = percentiles(times) {
            let _ = writeln!(
                table.markdown,
                "| {} | {name} | {op} | {count} | {median:.0} | {p99:.0} | {max:.0} |",
                workload.name
            );
        }
    }
}

fn kind(step: &Step) -> &'static str {
    match step {
        Step::Alloc { .. } => OPS[0],
        Step::Free { .. } => OPS[1],
        Step::Realloc { .. } => OPS[2],
    }
}

/// `target/bench/latency.md` of the workspace, where `cargo xtask bench` writes its
/// summary too.
fn out_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench/latency.md")
}

fn main() -> std::io::Result<()> {
    let mut table = Table {
        markdown: String::from(
            "| workload | allocator | operation | calls | median ns | p99 ns | max ns |\n\
             | --- | --- | --- | ---: | ---: | ---: | ---: |\n",
        ),
        clock: clock_cost(),
        ns_per_tick: ns_per_tick(),
    };
    for generator in TRACES {
        let trace = trace::generate(generator, SEED, SCALE);
        let workload = Workload::from_trace(generator.name(), &trace);
        measure::<Arena<Tlsf>>("tlsf", &workload, &mut table);
        measure::<Arena<FreeList<FirstFit>>>("free-list-first", &workload, &mut table);
        measure::<Rlsf>("rlsf", &workload, &mut table);
    }
    let clock_ns = table.clock * table.ns_per_tick;
    let _ = writeln!(
        table.markdown,
        "\nEach call timed alone by the time-stamp counter (two reads cost {clock_ns:.1} ns \
         here, taken off every sample; one tick is {:.2} ns); each call's time is the mean of \
         its timings but the slowest twentieth, in {PASSES} replays of the trace (seed {SEED}, scale {SCALE}) on the same heap, so \
         that interrupts and other processes do not count; the percentiles are over the calls \
         of one trace.",
        table.ns_per_tick
    );
    let table = table.markdown;
    let out = out_path();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &table)?;
    println!("{table}\nwritten to {}", out.display());
    Ok(())
}
