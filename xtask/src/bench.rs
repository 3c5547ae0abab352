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
    /// e.g. `queue-64/(tlsf|rlsf)`); with `--instructions`, only workloads whose name
    /// contains it.
    filter: Option<String>,
    /// Where to write the Markdown table (default: target/bench/summary.md, or
    /// target/bench/summary-called.md with `--called`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only rebuild the table from the last runs' results; run nothing.
    #[arg(long)]
    table_only: bool,
    /// Criterion runs, one after the other: each ratio in the table is the median of the
    /// runs' ratios, shown with their spread (min–max). Within a run, each allocator is
    /// timed right before its peer.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Count instructions per operation instead of timing: each allocator and its peer
    /// replay the bench's workloads under `valgrind --tool=callgrind` (the `passes`
    /// example), counting only the timed steps, the same whatever else the machine is
    /// doing. Writes target/bench/instructions.md.
    #[arg(long, conflicts_with = "table_only")]
    instructions: bool,
    /// Time every contender behind a call that is never inlined, as a program calls
    /// `malloc` (see `heaplab_benches::Called`): the comparison on equal footing. Its
    /// groups are named `WORKLOAD (called)`. With `--instructions`, counts the
    /// contenders called that way, into target/bench/instructions-called.md.
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
    let runs_file = target_dir().join(if args.called {
        "bench/runs-called.json"
    } else {
        "bench/runs.json"
    });
    let runs = if args.table_only {
        let text = std::fs::read_to_string(&runs_file).with_context(|| {
            format!(
                "reading {}: run `cargo xtask bench` first",
                runs_file.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", runs_file.display()))?
    } else {
        let runs = criterion_runs(args)?;
        if let Some(dir) = runs_file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&runs_file, serde_json::to_string_pretty(&runs)?)
            .with_context(|| format!("writing {}", runs_file.display()))?;
        runs
    };
    let table = ratio_table(
        &runs,
        "ns/op",
        &format!(
            "median time to run the workload's timed steps divided by their operations \
             (criterion), median over {} runs{}",
            runs.len(),
            if args.called {
                "; every contender behind a call that is never inlined"
            } else {
                "; the compiler inlines whichever contenders it likes"
            }
        ),
    );
    let out = root().join(args.out.clone().unwrap_or_else(|| {
        PathBuf::from(if args.called {
            "target/bench/summary-called.md"
        } else {
            "target/bench/summary.md"
        })
    }));
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
    println!("\n{table}\nwritten to {}", out.display());
    Ok(())
}

/// Runs the criterion bench `args.runs` times and reads each run's results.
fn criterion_runs(args: &BenchArgs) -> anyhow::Result<Vec<Results>> {
    let mut runs = Vec::new();
    for round in 1..=args.runs {
        let started = std::time::SystemTime::now();
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
            &format!(
                "criterion benches, run {round} of {}: every allocator and its peers",
                args.runs
            ),
            &mut command,
        )?;
        let results = read_results(&target_dir().join("criterion"), started, args.called)?;
        if results.is_empty() {
            bail!("the criterion run wrote no results: does the filter match a benchmark?");
        }
        runs.push(results);
    }
    if !args.called && !args.table_only {
        run(
            "latency of single calls (writes target/bench/latency.md)",
            &mut cargo(&["bench", "-p", "heaplab-benches", "--bench", "latency"]),
        )?;
    }
    Ok(runs)
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` when set, as cargo itself does.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Passes replayed under callgrind, which counts only inside the `passes` example's
/// `timed_steps` (the steps the criterion bench times: no warm-up, no teardown); the
/// count of 2 passes is subtracted from the count of `2 + MEASURED_PASSES`, which leaves
/// the measured passes alone: no first pass over a fresh heap.
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
    let listed = crate::shell::output(std::process::Command::new(&passes).arg("--list"))
        .context("the replay program did not list its workloads")?;
    let mut counts = Results::new();
    for workload in listed.lines() {
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
        &[counts],
        "instructions/op",
        &format!(
            "instructions per timed operation (callgrind, the timed steps of the measured \
             passes only; deterministic, so one run){}",
            if called {
                "; every contender behind a call that is never inlined"
            } else {
                ""
            }
        ),
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
            .args([
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                "--toggle-collect=*timed_steps*",
            ])
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

/// Nanoseconds (or instructions) per operation, by workload then contender.
type Results = BTreeMap<String, BTreeMap<String, f64>>;

/// Reads criterion's `new/estimates.json` (median time per iteration) and
/// `new/benchmark.json` (operations per iteration) of every benchmark written since
/// `since` (older ones are left from other runs), of the groups of the `called` run or
/// of the default one.
fn read_results(dir: &Path, since: std::time::SystemTime, called: bool) -> anyhow::Result<Results> {
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
            let fresh = std::fs::metadata(bench.join("estimates.json"))
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified >= since);
            if !fresh {
                continue;
            }
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
            if workload.ends_with(CALLED_SUFFIX) != called {
                continue;
            }
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

/// The suffix of the called groups' names.
const CALLED_SUFFIX: &str = " (called)";

/// The Markdown table over `runs` (at least one): for each workload and heaplab
/// allocator, the median over the runs of its cost, of its peer's and of the system
/// allocator's, and the median of the per-run ratios with their spread (below 1.0:
/// heaplab is faster). A ratio is taken within one run, where the allocator and its
/// peer ran one right after the other.
fn ratio_table(runs: &[Results], unit: &str, measure: &str) -> String {
    let mut table = format!(
        "| workload | allocator | {unit} | peer | peer {unit} | ratio to peer | spread | \
         system {unit} | ratio to system |\n\
         | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let workloads: std::collections::BTreeSet<&String> =
        runs.iter().flat_map(|run| run.keys()).collect();
    let cell = |values: &[f64], digits: usize| {
        median(values).map_or("–".to_owned(), |v| format!("{v:.digits$}"))
    };
    for workload in workloads {
        let of = |contender: &str| -> Vec<f64> {
            runs.iter()
                .filter_map(|run| run.get(workload)?.get(contender).copied())
                .collect()
        };
        let ratios = |ours: &str, theirs: &str| -> Vec<f64> {
            runs.iter()
                .filter_map(|run| {
                    let times = run.get(workload)?;
                    Some(times.get(ours)? / times.get(theirs)?)
                })
                .collect()
        };
        for entry in heaplab::registry::entries() {
            let ours = of(entry.name);
            if ours.is_empty() {
                continue;
            }
            let peer = entry.peer.unwrap_or("–");
            let to_peer = ratios(entry.name, peer);
            let spread = match (min(&to_peer), max(&to_peer)) {
                (Some(lo), Some(hi)) if to_peer.len() > 1 => format!("{lo:.2}–{hi:.2}"),
                _ => "–".to_owned(),
            };
            let shortened = workload.strip_suffix(CALLED_SUFFIX).unwrap_or(workload);
            let _ = writeln!(
                table,
                "| {shortened} | {} | {} | {peer} | {} | {} | {spread} | {} | {} |",
                entry.name,
                cell(&ours, 1),
                cell(&of(peer), 1),
                cell(&to_peer, 2),
                cell(&of(SYSTEM), 1),
                cell(&ratios(entry.name, SYSTEM), 2),
            );
        }
    }
    let _ = writeln!(
        table,
        "\n{unit}: {measure}. Ratio = heaplab / other, the median of the runs' ratios; \
         spread = the smallest and largest of them. Below 1.0, heaplab does less."
    );
    table
}

/// The median of `values` (the mean of the middle two when their number is even).
fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

fn min(values: &[f64]) -> Option<f64> {
    values.iter().copied().min_by(f64::total_cmp)
}

fn max(values: &[f64]) -> Option<f64> {
    values.iter().copied().max_by(f64::total_cmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rows: &[(&str, &str, f64)]) -> Results {
        let mut results = Results::new();
        for &(workload, contender, value) in rows {
            results
                .entry(workload.to_owned())
                .or_default()
                .insert(contender.to_owned(), value);
        }
        results
    }

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn the_table_gives_the_median_of_the_ratios_taken_within_each_run() {
        // tlsf is 10 % slower than rlsf in every run, while the machine's speed varies:
        // the ratio of the medians would be 1.1 as well here, but a run where only the
        // peer was slowed must move the ratio, not the peer's median alone.
        let runs = [
            run(&[
                ("queue-64 (called)", "tlsf", 11.0),
                ("queue-64 (called)", "rlsf", 10.0),
            ]),
            run(&[
                ("queue-64 (called)", "tlsf", 22.0),
                ("queue-64 (called)", "rlsf", 20.0),
            ]),
            run(&[
                ("queue-64 (called)", "tlsf", 5.5),
                ("queue-64 (called)", "rlsf", 2.5),
            ]),
        ];
        let table = ratio_table(&runs, "ns/op", "test");
        let row = table
            .lines()
            .find(|line| line.starts_with("| queue-64 | tlsf |"))
            .expect("a row for tlsf, without the called suffix");
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[3], "11.0", "tlsf's median ns/op");
        assert_eq!(cells[4], "rlsf");
        assert_eq!(cells[5], "10.0", "rlsf's median ns/op");
        assert_eq!(cells[6], "1.10", "the median of 1.1, 1.1 and 2.2");
        assert_eq!(cells[7], "1.10–2.20", "the spread");
    }
}
