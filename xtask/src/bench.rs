//! `cargo xtask bench`: runs the criterion benches and writes the ratio table.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::shell::{cargo, root, run};

/// The environment variable that makes the benches reach every contender through
/// `heaplab_benches::Called` (`heaplab_benches::CALLED_VAR`; xtask does not build the
/// benches' crate, only runs it).
const CALLED_VAR: &str = "HEAPLAB_BENCH_CALLED";

/// The yardstick every allocator is also compared with.
const SYSTEM: &str = "system";

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Only benchmarks whose id matches this (criterion's filter, a regular expression,
    /// e.g. `small-fixed/tlsf`); with `--instructions`, only workloads whose name
    /// contains it.
    filter: Option<String>,
    /// Where to write the Markdown summary.
    #[arg(long, default_value = "target/bench/summary.md")]
    out: PathBuf,
    /// Only rebuild the table from the last run's results; run nothing.
    #[arg(long)]
    table_only: bool,
    /// Count instructions per operation instead of timing: each allocator and its peer
    /// replay the bench's workloads under `valgrind --tool=callgrind` (the `passes`
    /// example), which counts the same whatever else the machine is doing. Writes
    /// target/bench/instructions.md.
    #[arg(long, conflicts_with = "table_only")]
    instructions: bool,
    /// Time every contender behind a call that is never inlined, as a program calls
    /// `malloc` (see `heaplab_benches::Called`), instead of letting the compiler inline
    /// whichever it likes into the bench's loop. Its rows join the table as
    /// `WORKLOAD (called)`, beside those of the last default run. With
    /// `--instructions`, counts the contenders called that way, into
    /// target/bench/instructions-called.md.
    #[arg(long, conflicts_with = "table_only")]
    called: bool,
    /// Time a C program instead (crates/malloc/programs/churn.c: small-object churn
    /// at 1, 2 and 4 threads, and a handoff between threads) under the C library's
    /// malloc, jemalloc and mimalloc where installed, and heaplab's malloc with every
    /// allocator that frees; the filter picks heaplab's allocators. Writes
    /// target/bench/c-bench.md, which the malloc chapter includes.
    #[arg(long, conflicts_with_all = ["table_only", "instructions", "called"])]
    c: bool,
    /// Interleaved rounds of `--c` (each runs every contender on every workload once).
    #[arg(long, default_value_t = 5, requires = "c")]
    rounds: usize,
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    if args.c {
        return crate::cbench::run(args.filter.as_deref(), args.rounds);
    }
    if args.instructions {
        return count_instructions(args.filter.as_deref(), args.called);
    }
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
        if args.called {
            command.env(CALLED_VAR, "1");
        }
        run(
            "criterion benches (every allocator and its peers)",
            &mut command,
        )?;
        if !args.called {
            run(
                "latency of single calls (writes target/bench/latency.md)",
                &mut cargo(&["bench", "-p", "heaplab-benches", "--bench", "latency"]),
            )?;
        }
    }
    let results = read_results(&target_dir().join("criterion"))?;
    let table = ratio_table(
        &results,
        "ns/op",
        "median time to replay the workload's trace divided by its operations \
         (criterion, same run for every contender)",
    );
    let out = root().join(&args.out);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
    println!("\n{table}\nwritten to {}", out.display());
    Ok(())
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` when set, as cargo itself does.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Passes replayed under callgrind; the count of 2 passes is subtracted from the count
/// of `2 + MEASURED_PASSES`, which leaves the measured passes alone: no start-up, no
/// trace generation, no first pass over cold memory.
const MEASURED_PASSES: usize = 10;

/// `cargo xtask bench --instructions`: instructions per operation of every heaplab
/// allocator and its peer on each workload, and their ratio.
fn count_instructions(filter: Option<&str>, called: bool) -> anyhow::Result<()> {
    run(
        "the replay program counted under callgrind",
        &mut cargo(&[
            "build",
            "--release",
            "-p",
            "heaplab-benches",
            "--example",
            "passes",
        ]),
    )?;
    let passes = target_dir().join("release/examples/passes");
    let mut counts = Results::new();
    for workload in trace::Workload::ALL {
        let workload = workload.name();
        if filter.is_some_and(|filter| !workload.contains(filter)) {
            continue;
        }
        let mut contenders: Vec<&str> = Vec::new();
        for entry in heaplab::registry::entries() {
            for name in [Some(entry.name), entry.peer].into_iter().flatten() {
                if !contenders.contains(&name) {
                    contenders.push(name);
                }
            }
        }
        let row = if called {
            format!("{workload} (called)")
        } else {
            workload.to_owned()
        };
        for contender in contenders {
            let per_op = instructions_per_op(&passes, contender, workload, called)?;
            println!("{row:>20} {contender:<24} {per_op:8.1} instructions/op");
            counts
                .entry(row.clone())
                .or_default()
                .insert(contender.to_owned(), per_op);
        }
    }
    let table = ratio_table(
        &counts,
        "instructions/op",
        "instructions per operation (callgrind, the measured passes only, deterministic)",
    );
    let out = target_dir().join(if called {
        "bench/instructions-called.md"
    } else {
        "bench/instructions.md"
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
    println!("\n{table}\nwritten to {}", out.display());
    Ok(())
}

/// Instructions per operation of `contender` on `workload` (reached through
/// `heaplab_benches::Called` when `called`), from two callgrind runs.
fn instructions_per_op(
    passes: &Path,
    contender: &str,
    workload: &str,
    called: bool,
) -> anyhow::Result<f64> {
    let count = |runs: usize| -> anyhow::Result<(f64, f64)> {
        let mut valgrind = std::process::Command::new("valgrind");
        valgrind
            .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
            .arg(passes)
            .args([contender, workload, &runs.to_string()]);
        if called {
            valgrind.env(CALLED_VAR, "1");
        }
        let out = valgrind
            .output()
            .context("could not run valgrind (Debian's package `valgrind`)")?;
        if !out.status.success() {
            bail!(
                "{contender} on {workload} under callgrind: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let first_number = |text: &str| {
            text.split_whitespace()
                .next()?
                .replace(',', "")
                .parse()
                .ok()
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let instructions = stderr
            .lines()
            .find_map(|line| first_number(line.split_once("Collected :")?.1))
            .context("callgrind printed no count")?;
        let steps = first_number(&String::from_utf8_lossy(&out.stdout))
            .context("the replay printed no step count")?;
        Ok((instructions, steps))
    };
    let (base, _) = count(2)?;
    let (total, steps) = count(2 + MEASURED_PASSES)?;
    Ok((total - base) / (MEASURED_PASSES as f64 * steps))
}

/// Nanoseconds per operation, by workload then contender.
type Results = BTreeMap<String, BTreeMap<String, f64>>;

/// Reads criterion's `new/estimates.json` (median time per iteration) and
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
            // The median, not the mean: on a shared machine a few samples of every
            // benchmark are slowed by other work, and one such burst moves the mean of
            // twenty samples far more than their median.
            let median_ns = estimates["median"]["point_estimate"]
                .as_f64()
                .context("estimates.json without a median")?;
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
                .insert(contender, median_ns / ops);
        }
    }
    Ok(results)
}

/// The Markdown table: ns per operation of each heaplab allocator, of its peer, and of
/// the system allocator, with the ratios (below 1.0: heaplab is faster).
fn ratio_table(results: &Results, unit: &str, measure: &str) -> String {
    let mut table = format!(
        "| workload | allocator | {unit} | peer | peer {unit} | ratio to peer | system {unit} | ratio to system |\n\
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
    let _ = writeln!(
        table,
        "\n{unit}: {measure}. Ratio = heaplab / other: below 1.0, heaplab does less."
    );
    table
}
