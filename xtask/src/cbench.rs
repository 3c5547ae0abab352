//! `cargo xtask bench --c`: a C program's view of the allocators. `churn.c` (in
//! `crates/malloc/programs`) runs under the C library's malloc, under jemalloc and
//! mimalloc where Debian's packages are installed, and under heaplab's malloc with
//! every allocator that frees (`LD_PRELOAD`); the table goes to
//! `target/bench/c-bench.md`, which the malloc chapter includes.
//!
//! Runs are interleaved (each round runs every contender once on every workload) and
//! the median of the rounds is reported with its spread, since the machine may be
//! busy with other work; the load average is written beside the table. Every run must
//! print the same checksum as the C library's: a malloc that handed out memory which
//! does not keep what was written fails the bench.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::preload;
use crate::shell::root;

/// The workloads: the arguments of `churn`, and how the table names them.
const WORKLOADS: [(&[&str], &str); 4] = [
    (&["churn", "1"], "churn, 1 thread"),
    (&["churn", "2"], "churn, 2 threads"),
    (&["churn", "4"], "churn, 4 threads"),
    (&["handoff"], "handoff, 2 threads"),
];

/// The yardstick of the goal, and the fastest peer the table measures against.
const GLIBC: &str = "glibc";
const MIMALLOC: &str = "mimalloc";

/// Allocators from Debian packages: the name in the table, and the shared object's
/// name as `ldconfig -p` lists it.
const PACKAGED: [(&str, &str); 2] = [
    ("jemalloc", "libjemalloc.so.2"),
    (MIMALLOC, "libmimalloc.so.2"),
];

/// How a contender is put under the program.
enum Malloc {
    /// The C library's own.
    Glibc,
    /// A shared object preloaded as it is.
    Packaged(PathBuf),
    /// heaplab's malloc with this allocator.
    Heaplab(&'static str),
}

struct Contender {
    name: String,
    malloc: Malloc,
}

/// Milliseconds of every run, by workload then contender.
type Times = BTreeMap<&'static str, BTreeMap<String, Vec<f64>>>;

pub fn run(filter: Option<&str>, rounds: usize) -> anyhow::Result<()> {
    let library = preload::build_library()?;
    let program = compile()?;
    let contenders = contenders(filter);
    let load_before = load_average();
    let mut times = Times::new();
    let mut checksums: BTreeMap<&str, String> = BTreeMap::new();
    for round in 1..=rounds {
        println!("c bench: round {round} of {rounds}");
        for &(args, workload) in &WORKLOADS {
            for contender in &contenders {
                let (ms, checksum) = run_once(&program, args, contender, &library)?;
                println!("    {workload:<20} {:<16} {ms:8.1} ms", contender.name);
                let expected = checksums
                    .entry(workload)
                    .or_insert_with(|| checksum.clone());
                if *expected != checksum {
                    bail!(
                        "{} on {workload} printed checksum {checksum}, {} printed {expected}: \
                         a block did not keep what was written to it",
                        contender.name,
                        contenders[0].name
                    );
                }
                times
                    .entry(workload)
                    .or_default()
                    .entry(contender.name.clone())
                    .or_default()
                    .push(ms);
            }
        }
    }
    let table = table(&times, &contenders, rounds, load_before, load_average());
    let out = file();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, &table).with_context(|| format!("writing {}", out.display()))?;
    println!("\n{table}\nwritten to {}", out.display());
    Ok(())
}

/// Where the table is written (and where the book's figures look for it).
fn file() -> PathBuf {
    root().join("target/bench/c-bench.md")
}

/// `churn.c` compiled with the system's C compiler, as a C programmer would.
fn compile() -> anyhow::Result<PathBuf> {
    let source = root().join("crates/malloc/programs/churn.c");
    let binary = root().join("target/bench/churn");
    std::fs::create_dir_all(binary.parent().context("target/bench")?)?;
    let status = Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .context("could not run cc (Debian's package gcc)")?;
    if !status.success() {
        bail!("cc failed on {}", source.display());
    }
    Ok(binary)
}

/// The C library first (every checksum is compared with its), the packaged
/// allocators that are installed, then heaplab's freeing allocators whose name
/// contains `filter`.
fn contenders(filter: Option<&str>) -> Vec<Contender> {
    let mut all = vec![Contender {
        name: GLIBC.to_owned(),
        malloc: Malloc::Glibc,
    }];
    let listed = crate::shell::output(Command::new("ldconfig").arg("-p")).unwrap_or_default();
    for (name, object) in PACKAGED {
        match installed(&listed, object) {
            Some(path) => all.push(Contender {
                name: name.to_owned(),
                malloc: Malloc::Packaged(path),
            }),
            None => println!("c bench: {object} is not installed; {name} is left out"),
        }
    }
    for allocator in preload::allocators() {
        if allocator.frees && filter.is_none_or(|f| allocator.name.contains(f)) {
            all.push(Contender {
                name: allocator.name.to_owned(),
                malloc: Malloc::Heaplab(allocator.name),
            });
        }
    }
    all
}

/// The path `ldconfig -p` gives for `object`, e.g.
/// `\tlibjemalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libjemalloc.so.2`.
fn installed(listed: &str, object: &str) -> Option<PathBuf> {
    listed.lines().find_map(|line| {
        let (name, path) = line.trim().split_once(" => ")?;
        (name.split_whitespace().next()? == object).then(|| PathBuf::from(path.trim()))
    })
}

/// One run: the milliseconds and the checksum the program printed.
fn run_once(
    program: &Path,
    args: &[&str],
    contender: &Contender,
    library: &Path,
) -> anyhow::Result<(f64, String)> {
    let mut command = Command::new(program);
    command.args(args);
    match &contender.malloc {
        Malloc::Glibc => {}
        Malloc::Packaged(object) => {
            command.env("LD_PRELOAD", object);
        }
        Malloc::Heaplab(name) => {
            command
                .env("LD_PRELOAD", library)
                .env("HEAPLAB_ALLOCATOR", name);
        }
    }
    let out = command
        .output()
        .with_context(|| format!("running {}", program.display()))?;
    let printed = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "churn {} under {}: {}\n{}",
            args.join(" "),
            contender.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "123.456 ms checksum 789"
    let words: Vec<&str> = printed.split_whitespace().collect();
    match words.as_slice() {
        [ms, "ms", "checksum", sum] => Ok((
            ms.parse()
                .with_context(|| format!("churn printed {printed:?}"))?,
            (*sum).to_owned(),
        )),
        _ => bail!("churn printed {printed:?}, not `MS ms checksum N`"),
    }
}

/// The 1-minute load average, from `/proc/loadavg`.
fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The median of `ours[i] / base[i]`: runs of the same round side by side.
fn median_ratio(ours: &[f64], base: &[f64]) -> f64 {
    let ratios: Vec<f64> = ours.iter().zip(base).map(|(o, b)| o / b).collect();
    median(&ratios)
}

/// Two tables: the median milliseconds with their spread, and the median ratios of
/// each round's runs to the C library's and to mimalloc's.
fn table(
    times: &Times,
    contenders: &[Contender],
    rounds: usize,
    load_before: Option<f64>,
    load_after: Option<f64>,
) -> String {
    let workloads: Vec<&str> = WORKLOADS.iter().map(|&(_, name)| name).collect();
    let runs = |workload: &str, name: &str| -> Option<&Vec<f64>> { times.get(workload)?.get(name) };
    let mut text = format!(
        "Median milliseconds of {rounds} interleaved runs of `churn.c` (each thread keeps \
         1024 live blocks of 16 to 255 bytes and 2 million times frees a random one and \
         allocates another; in the handoff, one thread allocates 2 million blocks and \
         another frees them), with the fastest and slowest run:\n\n| allocator |"
    );
    let header_rule = |text: &mut String| {
        for workload in &workloads {
            let _ = write!(text, " {workload} |");
        }
        text.push_str("\n| --- |");
        for _ in &workloads {
            text.push_str(" ---: |");
        }
        text.push('\n');
    };
    header_rule(&mut text);
    for contender in contenders {
        let _ = write!(text, "| {} |", contender.name);
        for workload in &workloads {
            match times.get(workload).and_then(|t| t.get(&contender.name)) {
                Some(runs) => {
                    let (low, high) = runs
                        .iter()
                        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
                    let _ = write!(text, " {:.0} ms ({low:.0}–{high:.0}) |", median(runs));
                }
                None => text.push_str(" – |"),
            }
        }
        text.push('\n');
    }
    text.push_str(
        "\nEach run divided by the C library's (`× glibc`, below 1.0 is faster) and by \
         mimalloc's (`× mimalloc`, how far from the fastest peer) of the same round, run \
         moments apart, and the median of those ratios: a burst of other work slows a \
         round's runs together, so the ratios vary less than the times.\n\n| allocator |",
    );
    header_rule(&mut text);
    for contender in contenders {
        let _ = write!(text, "| {} |", contender.name);
        for workload in &workloads {
            let ours = runs(workload, &contender.name);
            let ratio = |base: &str| {
                ours.zip(runs(workload, base))
                    .map_or("–".to_owned(), |(ours, base)| {
                        format!("{:.2}", median_ratio(ours, base))
                    })
            };
            let _ = write!(
                text,
                " {} × glibc, {} × mimalloc |",
                ratio(GLIBC),
                ratio(MIMALLOC)
            );
        }
        text.push('\n');
    }
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = |value: Option<f64>| value.map_or("unknown".to_owned(), |v| format!("{v:.1}"));
    let _ = writeln!(
        text,
        "\nMeasured by `cargo xtask bench --c` on {cpus} CPUs; the load average was {} \
         before the runs and {} after them (above {cpus}, other work shared the machine \
         and the times are longer and noisier than on an idle one).",
        load(load_before),
        load(load_after)
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 10.0]), 3.5);
    }

    #[test]
    fn ratios_pair_the_runs_of_each_round() {
        // Round 2 was slowed for both; per-round ratios stay at 0.5.
        assert_eq!(median_ratio(&[5.0, 50.0, 5.0], &[10.0, 100.0, 10.0]), 0.5);
    }

    #[test]
    fn ldconfig_lines_give_the_path_of_the_exact_object() {
        let listed = "1234 libs found in cache `/etc/ld.so.cache'\n\
            \tlibmimalloc.so.2.0 (libc6,x86-64) => /lib/x86_64-linux-gnu/libmimalloc.so.2.0\n\
            \tlibmimalloc.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/libmimalloc.so.2\n";
        assert_eq!(
            installed(listed, "libmimalloc.so.2"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libmimalloc.so.2"))
        );
        assert_eq!(installed(listed, "libjemalloc.so.2"), None);
    }
}
