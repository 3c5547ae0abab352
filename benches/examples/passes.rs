//! Replays one generated workload on one contender, pass after pass, with no timer: the
//! loop the criterion bench times, for tools that count or sample instead
//! (`valgrind --tool=callgrind`, `perf`). `cargo xtask bench --instructions` runs it.
//!
//! ```text
//! passes CONTENDER WORKLOAD PASSES
//! passes --list
//! ```
//!
//! Each pass runs the workload's warm-up, its timed steps and its teardown, as the
//! criterion bench does; the timed steps run inside [`timed_steps`], which is never
//! inlined, so that a counting tool can count them alone (callgrind's
//! `--toggle-collect=*timed_steps*`). `--list` prints the workloads' names.
//!
//! With `HEAPLAB_BENCH_CALLED` set, the contender is reached through
//! `heaplab_benches::Called`, as in `cargo xtask bench --called`.

use std::process::ExitCode;

use heaplab_benches::{
    CalledIf, Contender, ContenderVisitor, Workload, for_each_contender, workload_names,
};

fn replay<C: Contender>(workload: &Workload, passes: usize) {
    let mut heap = C::with_region(workload.region);
    let mut slots = vec![None; workload.slots];
    for _ in 0..passes {
        workload.pass(&mut heap, &mut slots, |heap, slots| {
            timed_steps(workload, heap, slots)
        });
    }
}

/// The steps the criterion bench times, in a function of their own.
#[inline(never)]
fn timed_steps<C: Contender>(
    workload: &Workload,
    heap: &mut C,
    slots: &mut [Option<(std::ptr::NonNull<u8>, std::alloc::Layout)>],
) {
    workload.run(heap, slots);
}

struct Named<'a> {
    name: &'a str,
    workload: &'a Workload,
    passes: usize,
    found: bool,
}

impl ContenderVisitor for Named<'_> {
    fn visit<C: Contender>(&mut self, name: &str) {
        if name == self.name {
            replay::<C>(self.workload, self.passes);
            self.found = true;
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args == ["--list"] {
        for name in workload_names() {
            println!("{name}");
        }
        return ExitCode::SUCCESS;
    }
    let [name, workload, passes] = args.as_slice() else {
        eprintln!("usage: passes CONTENDER WORKLOAD PASSES | passes --list");
        return ExitCode::from(2);
    };
    let Some(workload) = heaplab_benches::workload(workload) else {
        eprintln!("no workload named {workload}");
        return ExitCode::from(2);
    };
    let Ok(passes) = passes.parse() else {
        eprintln!("PASSES is a number, not {passes}");
        return ExitCode::from(2);
    };
    let mut named = Named {
        name,
        workload: &workload,
        passes,
        found: false,
    };
    for_each_contender(&mut CalledIf::from_env(&mut named));
    if !named.found {
        eprintln!("no contender named {name}");
        return ExitCode::from(2);
    }
    println!("{} steps per pass", workload.steps.len());
    ExitCode::SUCCESS
}
