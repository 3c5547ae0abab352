//! Replays one generated workload on one contender, pass after pass, with no timer: the
//! loop the criterion bench times, for tools that count or sample instead
//! (`valgrind --tool=callgrind`, `perf`). `cargo xtask bench --instructions` runs it.
//!
//! ```text
//! passes CONTENDER WORKLOAD PASSES
//! ```
//!
//! With `HEAPLAB_BENCH_CALLED` set, the contender is reached through
//! `heaplab_benches::Called`, as in `cargo xtask bench --called`.

use std::process::ExitCode;

use heaplab_benches::{
    CalledIf, Contender, ContenderVisitor, SCALE, SEED, Workload, for_each_contender,
};

fn replay<C: Contender>(workload: &Workload, passes: usize) {
    let mut heap = C::with_region(workload.region);
    let mut slots = vec![None; workload.slots];
    for _ in 0..passes {
        workload.run(&mut heap, &mut slots);
        heap.trace_done();
    }
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
    let [name, workload, passes] = args.as_slice() else {
        eprintln!("usage: passes CONTENDER WORKLOAD PASSES");
        return ExitCode::from(2);
    };
    let Some(generator) = trace::Workload::ALL
        .into_iter()
        .find(|w| w.name() == workload)
    else {
        eprintln!("no workload named {workload}");
        return ExitCode::from(2);
    };
    let Ok(passes) = passes.parse() else {
        eprintln!("PASSES is a number, not {passes}");
        return ExitCode::from(2);
    };
    let trace = trace::generate(generator, SEED, SCALE);
    let workload = Workload::from_trace(generator.name(), &trace);
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
