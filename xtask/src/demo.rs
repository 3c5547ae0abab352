//! `cargo xtask demo`: every allocator on the same workload, side by side.
//!
//! Each heap replays one generated trace (verified, like `cargo xtask replay`); the demo
//! shows its heap map halfway through and a table of what each heap held at that moment
//! and over the whole run.

use std::fmt::Write as _;

use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use rawheap::{Block, RawHeap, Stats, Usage};
use trace::generate::{Workload, generate};
use trace::heapmap;
use trace::replay::{ReplayOptions, replay};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// The workload to run (see `cargo xtask traces`).
    #[arg(long, default_value = "random-mixed")]
    workload: Workload,
    /// Region size in bytes (default: the trace's suggested size).
    #[arg(long)]
    region: Option<usize>,
}

pub fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let trace = generate(args.workload, 1, 1);
    let halfway = trace.ops().len() / 2;
    println!(
        "workload `{}`: {} operations; heap maps after {halfway} of them\n\
",
        args.workload,
        trace.ops().len()
    );
    let mut table = Table {
        rows: String::new(),
        trace: &trace,
        halfway,
        region: args.region,
        failed: None,
    };
    for_each_heap(&mut table);
    println!(
        "{:<16} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>6} {:>8}",
        "allocator",
        "region",
        "usable",
        "overhead",
        "free",
        "largest",
        "ext frag",
        "util",
        "fails",
        "hi-water"
    );
    print!("{}", table.rows);
    println!(
        "\nusable/overhead/free/largest/ext frag: the heap halfway through; ext frag = 1 - largest free / free.\n\
         util = peak live bytes / high-water mark over the whole run (the malloc lab's U); fails = refused requests."
    );
    match table.failed {
        Some(message) => anyhow::bail!(message),
        None => Ok(()),
    }
}

struct Table<'t> {
    rows: String,
    trace: &'t trace::Trace,
    halfway: usize,
    region: Option<usize>,
    failed: Option<String>,
}

impl HeapVisitor for Table<'_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        let options = ReplayOptions {
            region: self.region,
            snapshots: vec![self.halfway],
            ..ReplayOptions::default()
        };
        let report = match replay::<H>(self.trace, &options) {
            Ok(report) => report,
            Err(error) => {
                self.failed = Some(format!("{}: {error}", entry.name));
                return;
            }
        };
        let snapshot = &report.snapshots[0];
        let stats = stats_of(&snapshot.blocks, snapshot.region_len);
        println!(
            "{} ({})\n{}",
            entry.name,
            entry.summary,
            heapmap::ascii(&snapshot.blocks, 72)
        );
        let _ = writeln!(
            self.rows,
            "{:<16} {:>8} {:>9} {:>9} {:>9} {:>9} {:>8.1}% {:>7.1}% {:>6} {:>8}",
            entry.name,
            report.region,
            stats.usable,
            stats.overhead(),
            stats.free,
            stats.largest_free,
            100.0 * stats.external_fragmentation(),
            100.0 * report.utilization,
            report.failed_requests,
            report.high_water,
        );
    }
}

/// The byte counts of a snapshot, as `stats` would have given them then.
fn stats_of(blocks: &[Block], region: usize) -> Stats {
    Stats::from_walk(region, &Usage::default(), |visit| {
        blocks.iter().for_each(|block| visit(*block))
    })
}
