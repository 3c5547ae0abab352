//! `cargo xtask bench`: runs the criterion benches and writes the ratio table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::shell::{cargo, root, run};

/// The yardstick every allocator is also compared with.
const SYSTEM: &str = "system";

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Only benchmarks whose id contains this (criterion's filter, e.g. `small-fixed`).
    filter: Option<String>,
    /// Where to write the Markdown summary.
    #[arg(long, default_value = "target/bench/summary.md")]
    out: PathBuf,
    /// Only rebuild the table from the last run's results; run nothing.
    #[arg(long)]
    table_only: bool,
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if !args.table_only {
        let mut command = cargo(&[
            "bench",
            "-p",
            "heaplab-benches",
            "--bench",
            "allocators",
            "--",
        ]);
        if let Some(filter) = &args.filter {
            command.arg(filter);
        }
        run(
            "criterion benches (every allocator and its peers)",
            &mut command,
        )?;
        run(
            "latency of single calls (writes target/bench/latency.md)",
            &mut cargo(&["bench", "-p", "heaplab-benches", "--bench", "latency"]),
        )?;
    }
    let results = read_results(&root().join("target/criterion"))?;
    let table = ratio_table(&results);
    let out = root().join(&args.out);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
    println!("\n{table}\nwritten to {}", out.display());
    Ok(())
}

/// Nanoseconds per operation, by workload then contender.
type Results = BTreeMap<String, BTreeMap<String, f64>>;

/// Reads criterion's `new/estimates.json` (mean time per iteration) and
/// `new/benchmark.json` (operations per iteration) for every benchmark.
fn read_results(dir: &Path) -> anyhow::Result<Results> {
    let mut results = Results::new();
    if !dir.is_dir() {
        bail!(
            "no criterion results in {}: run `cargo xtask bench` first",
            dir.display()
        );
    }
    for group in std::fs::read_dir(dir)? {
        let group = group?.path();
        for bench in std::fs::read_dir(&group).into_iter().flatten() {
            let bench = bench?.path().join("new");
            let (Ok(estimates), Ok(meta)) = (
                std::fs::read_to_string(bench.join("estimates.json")),
                std::fs::read_to_string(bench.join("benchmark.json")),
            ) else {
                continue;
            };
            let estimates: serde_json::Value = serde_json::from_str(&estimates)?;
            let meta: serde_json::Value = serde_json::from_str(&meta)?;
            let mean_ns = estimates["mean"]["point_estimate"]
                .as_f64()
                .context("estimates.json without a mean")?;
            let ops = meta["throughput"]["Elements"]
                .as_f64()
                .context("benchmark.json without a throughput")?;
            let workload = meta["group_id"]
                .as_str()
                .context("benchmark.json without a group")?
                .to_owned();
            let contender = meta["function_id"]
                .as_str()
                .context("benchmark.json without a function")?
                .to_owned();
            results
                .entry(workload)
                .or_default()
                .insert(contender, mean_ns / ops);
        }
    }
    Ok(results)
}

/// The Markdown table: ns per operation of each heaplab allocator, of its peer, and of
/// the system allocator, with the ratios (below 1.0: heaplab is faster).
fn ratio_table(results: &Results) -> String {
    let mut table = String::from(
        "| workload | allocator | ns/op | peer | peer ns/op | ratio to peer | system ns/op | ratio to system |\n\
         | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |\n",
    );
    for (workload, times) in results {
        let system = times.get(SYSTEM).copied();
        for entry in heaplab::registry::entries() {
            let Some(&ours) = times.get(entry.name) else {
                continue;
            };
            let (allocator, peer) = (entry.name, entry.peer.unwrap_or("–"));
            let theirs = times.get(peer).copied();
            let cell = |value: Option<f64>, digits: usize| {
                value.map_or("–".to_owned(), |v| format!("{v:.digits$}"))
            };
            let _ = writeln!(
                table,
                "| {workload} | {allocator} | {ours:.1} | {peer} | {} | {} | {} | {} |",
                cell(theirs, 1),
                cell(theirs.map(|t| ours / t), 2),
                cell(system, 1),
                cell(system.map(|s| ours / s), 2),
            );
        }
    }
    table.push_str(
        "\nns/op: mean time to replay the workload's trace divided by its operations \
         (criterion, same run for every contender). Ratio = heaplab / other: below 1.0, heaplab is faster.\n",
    );
    table
}
