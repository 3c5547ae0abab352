//! `cargo xtask preload`: real programs on heaplab's malloc (`LD_PRELOAD`).
//!
//! For every allocator that can free, python3 runs a workload of dicts, strings and
//! sorting, perl a one-liner, and gcc compiles a C file of the allocation API's edge
//! cases, which then runs too; each under the preload library and without it, and the
//! outputs must match. Bump, which reclaims almost nothing, runs the python and perl
//! programs in a large region. The python runs' exit reports (`HEAPLAB_STATS=1`) are
//! written to `target/preload/exit-stats.md` for the book. `churn.c` (the C bench of
//! `cargo xtask bench --c`, shortened) runs its threaded workloads under each freeing
//! allocator too: the blocks must keep what was written (its checksums), and every
//! exit report must account for each live block of the heap. `fork.c` forks while
//! another thread holds cached blocks: the child's report must count them stranded.
//! Last, python3 is recorded as a trace (`HEAPLAB_TRACE`) and the trace replayed on
//! every allocator (`crate::record::check_python_recording`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Context, bail};
use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::{Arena, RawHeap, Reuse};

use crate::shell::{cargo, root};

/// Region for allocators that reuse memory (the library's default, spelled out).
const REGION: &str = "256M";
/// Region for allocators that do not: every byte a program ever asks for stays taken.
/// `MAP_NORESERVE` makes it address space, not memory, until touched.
const LARGE_REGION: &str = "8G";

#[derive(clap::Args, Default)]
pub struct Args {
    /// Only allocators whose name contains this.
    filter: Option<String>,
}

/// The exit reports, for the malloc chapter.
pub fn stats_file() -> PathBuf {
    root().join("target/preload/exit-stats.md")
}

/// Builds the library, then runs every program under every allocator it suits.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let library = build_library()?;
    let work = root().join("target/preload");
    std::fs::create_dir_all(&work)?;
    let programs = Programs::new(&work)?;
    let mut failures = Vec::new();
    let mut stats = String::from(
        "Exit reports (`HEAPLAB_STATS=1`) of the python workload under each allocator, as \
         `cargo xtask preload` last printed them:\n\n",
    );
    for allocator in allocators() {
        if args
            .filter
            .as_ref()
            .is_some_and(|f| !allocator.name.contains(f.as_str()))
        {
            continue;
        }
        let region = if allocator.frees {
            REGION
        } else {
            LARGE_REGION
        };
        println!(
            "preload: {} (region {region}{})",
            allocator.name,
            if allocator.frees {
                ""
            } else {
                ", reclaims almost nothing"
            }
        );
        let preload = Preload {
            library: &library,
            allocator: allocator.name,
            region,
        };
        let report = programs.check_python(&preload, &mut failures)?;
        let _ = writeln!(stats, "**{}**\n\n```text\n{report}```\n", allocator.name);
        programs.check_perl(&preload, &mut failures)?;
        if allocator.frees {
            programs.check_gcc(&preload, &work, &mut failures)?;
            programs.check_churn(&preload, &mut failures)?;
            programs.check_fork(&preload, &mut failures)?;
        }
    }
    std::fs::write(stats_file(), &stats)?;
    println!("preload: recording python3 (HEAPLAB_TRACE), replaying it on every allocator");
    crate::record::check_python_recording(&library, &work, &mut failures)?;
    println!(
        "preload: {} in {:.1} s; exit reports in {}",
        if failures.is_empty() {
            "all programs matched"
        } else {
            "FAILED"
        },
        started.elapsed().as_secs_f64(),
        stats_file().display()
    );
    if !failures.is_empty() {
        bail!(
            "real programs under heaplab's malloc:\n  {}",
            failures.join("\n  ")
        );
    }
    Ok(())
}

/// The release build of the cdylib, found from cargo's own report of what it built.
pub(crate) fn build_library() -> anyhow::Result<PathBuf> {
    let out = cargo(&[
        "build",
        "--release",
        "--locked",
        "-p",
        "heaplab-malloc",
        "--message-format=json",
    ])
    .stderr(std::process::Stdio::inherit())
    .output()
    .context("running cargo build")?;
    if !out.status.success() {
        bail!("building heaplab-malloc failed");
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| {
            message["reason"] == "compiler-artifact"
                && message["target"]["name"] == "heaplab_malloc"
        })
        .flat_map(|message| message["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .find(|file| file.extension().is_some_and(|e| e == "so"))
        .context("cargo built no libheaplab_malloc.so")
}

/// An allocator of the registry, and whether it reuses freed memory.
pub(crate) struct Allocator {
    pub name: &'static str,
    pub frees: bool,
}

pub(crate) fn allocators() -> Vec<Allocator> {
    struct Probe(Vec<Allocator>);
    impl HeapVisitor for Probe {
        fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
            let reuse = Arena::<H>::new(64 << 10).capabilities().reuse;
            self.0.push(Allocator {
                name: entry.name,
                frees: reuse == Reuse::Any,
            });
        }
    }
    let mut probe = Probe(Vec::new());
    for_each_heap(&mut probe);
    probe.0
}

/// What makes a command run on heaplab's malloc.
struct Preload<'a> {
    library: &'a Path,
    allocator: &'static str,
    region: &'static str,
}

impl Preload<'_> {
    fn apply(&self, command: &mut Command) {
        command
            .env("LD_PRELOAD", self.library)
            .env("HEAPLAB_ALLOCATOR", self.allocator)
            .env("HEAPLAB_REGION", self.region);
    }
}

/// The programs, and what each printed without the library.
struct Programs {
    python: PathBuf,
    python_expected: Output,
    perl_expected: Output,
    edge_source: PathBuf,
    gcc_expected: Output,
    edge_binary: Vec<u8>,
    edge_expected: Output,
    churn: PathBuf,
    /// What `churn` printed for each of [`CHURN_RUNS`] without the library, timings cut.
    churn_expected: Vec<String>,
    fork: PathBuf,
}

/// The workloads of `churn.c` run here: threads that free their own blocks, and blocks
/// freed by another thread than the one that allocated them.
const CHURN_RUNS: [&[&str]; 2] = [&["churn", "2"], &["handoff"]];

/// `churn` prints `MS ms checksum N`: the checksum, without the time.
fn checksum(out: &Output) -> String {
    let printed = String::from_utf8_lossy(&out.stdout);
    printed
        .split_once(" ms ")
        .map_or(printed.to_string(), |(_, sum)| sum.trim().to_owned())
}

/// The perl one-liner: a hash of strings built by appending, sorted two ways.
const PERL: &str = r#"my %h; $h{$_ % 997} .= chr(65 + $_ % 26) for 1 .. 60000;
my @k = sort { length($h{$b}) <=> length($h{$a}) || $a <=> $b } keys %h;
print scalar(@k), " ", join(",", @k[0 .. 9]), "\n";
my $s = join "", map { scalar reverse "$_" } 1 .. 30000;
print length($s), " ", ($s =~ tr/7//), " ", substr(join("", sort split //, $s), 0, 20), "\n";"#;

impl Programs {
    /// Runs every program once without the library, for the expected outputs.
    fn new(work: &Path) -> anyhow::Result<Self> {
        // The `python3` on the PATH may be a shell shim (pyenv): the interpreter itself
        // is asked for, so that it is the program measured.
        let found =
            plain(Command::new("python3").args(["-c", "import sys; print(sys.executable)"]))?;
        let python = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
        let programs = root().join("crates/malloc/programs");
        let edge_source = programs.join("edge.c");
        let edge_path = work.join("edge-expected");
        let gcc_expected = plain(&mut gcc(&edge_source, &edge_path))?;
        let edge_expected = plain(&mut Command::new(&edge_path))?;
        let churn = work.join("churn-short");
        plain(gcc(&programs.join("churn.c"), &churn).arg(format!("-DSTEPS={}", 1 << 16)))?;
        let fork = work.join("fork");
        plain(&mut gcc(&programs.join("fork.c"), &fork))?;
        let churn_expected = CHURN_RUNS
            .iter()
            .map(|args| plain(Command::new(&churn).args(*args)).map(|out| checksum(&out)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Programs {
            python_expected: plain(Command::new(&python).arg(programs.join("workload.py")))?,
            python,
            perl_expected: plain(Command::new("perl").args(["-e", PERL]))?,
            edge_binary: std::fs::read(&edge_path)?,
            edge_source,
            gcc_expected,
            edge_expected,
            churn,
            churn_expected,
            fork,
        })
    }

    /// The python workload, with the exit report asked for; returns the report.
    fn check_python(
        &self,
        preload: &Preload<'_>,
        failures: &mut Vec<String>,
    ) -> anyhow::Result<String> {
        let mut command = Command::new(&self.python);
        command
            .arg(root().join("crates/malloc/programs/workload.py"))
            .env("HEAPLAB_STATS", "1");
        preload.apply(&mut command);
        let got = timed(&mut command, "python3")?;
        compare(
            "python3 workload.py",
            preload,
            &self.python_expected,
            &got,
            failures,
        );
        let stderr = String::from_utf8_lossy(&got.stderr);
        let report = exit_report(&stderr);
        check_accounts("python3 workload.py", preload, &report, failures);
        Ok(report)
    }

    fn check_perl(&self, preload: &Preload<'_>, failures: &mut Vec<String>) -> anyhow::Result<()> {
        let mut command = Command::new("perl");
        command.args(["-e", PERL]);
        preload.apply(&mut command);
        let got = timed(&mut command, "perl")?;
        compare("perl -e", preload, &self.perl_expected, &got, failures);
        Ok(())
    }

    /// gcc (driver, cc1, as, ld: all on the library) compiles the edge-case program,
    /// which must come out byte for byte the same, then runs on the library too.
    /// `churn` on threads: the same checksums as without the library, and exit reports
    /// that account for every block (the thread caches and their depot at work).
    fn check_churn(&self, preload: &Preload<'_>, failures: &mut Vec<String>) -> anyhow::Result<()> {
        for (args, expected) in CHURN_RUNS.iter().zip(&self.churn_expected) {
            let mut command = Command::new(&self.churn);
            command.args(*args).env("HEAPLAB_STATS", "1");
            preload.apply(&mut command);
            let got = timed(&mut command, "churn")?;
            let name = format!("churn {}", args.join(" "));
            let sum = checksum(&got);
            if !got.status.success() || sum != *expected {
                failures.push(format!(
                    "{name} under {}: {} and checksum {sum:?}, expected success and {expected:?}",
                    preload.allocator, got.status
                ));
            }
            let report = exit_report(&String::from_utf8_lossy(&got.stderr));
            check_accounts(&name, preload, &report, failures);
        }
        Ok(())
    }

    /// `fork.c`: a fork while another thread holds cached blocks. Two exit reports,
    /// the child's and the parent's, must each account for every block, and the
    /// child's must count the other thread's cached blocks as stranded.
    fn check_fork(&self, preload: &Preload<'_>, failures: &mut Vec<String>) -> anyhow::Result<()> {
        let mut command = Command::new(&self.fork);
        command.env("HEAPLAB_STATS", "1");
        preload.apply(&mut command);
        let got = timed(&mut command, "fork")?;
        if !got.status.success() {
            failures.push(format!(
                "fork.c under {}: {}",
                preload.allocator, got.status
            ));
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&got.stderr);
        let reports: Vec<String> = stderr
            .split("heaplab malloc:")
            .skip(1)
            .map(|report| format!("heaplab malloc:{report}"))
            .collect();
        let stranded: Vec<usize> = reports
            .iter()
            .filter_map(|report| check_accounts("fork.c", preload, report, failures))
            .collect();
        if reports.len() != 2 || !stranded.iter().any(|&blocks| blocks > 0) {
            failures.push(format!(
                "fork.c under {}: expected two exit reports, the child's with the other \
                 thread's cached blocks stranded; got:\n{stderr}",
                preload.allocator
            ));
        }
        Ok(())
    }

    fn check_gcc(
        &self,
        preload: &Preload<'_>,
        work: &Path,
        failures: &mut Vec<String>,
    ) -> anyhow::Result<()> {
        let binary = work.join(format!("edge-{}", preload.allocator));
        let mut compile = gcc(&self.edge_source, &binary);
        preload.apply(&mut compile);
        let got = timed(&mut compile, "gcc")?;
        compare("gcc edge.c", preload, &self.gcc_expected, &got, failures);
        if !got.status.success() {
            return Ok(());
        }
        if std::fs::read(&binary)? != self.edge_binary {
            failures.push(format!(
                "gcc edge.c under {}: the compiled program differs from the one gcc built \
                 without the library",
                preload.allocator
            ));
        }
        let mut run = Command::new(&binary);
        run.env("HEAPLAB_STATS", "1");
        preload.apply(&mut run);
        let got = timed(&mut run, "edge")?;
        compare(
            "edge (the compiled program)",
            preload,
            &self.edge_expected,
            &got,
            failures,
        );
        let report = exit_report(&String::from_utf8_lossy(&got.stderr));
        check_accounts("edge (threads, fork)", preload, &report, failures);
        Ok(())
    }
}

/// The exit report's lines in a program's stderr.
fn exit_report(stderr: &str) -> String {
    stderr
        .lines()
        .skip_while(|line| !line.starts_with("heaplab malloc:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Records a failure unless the exit report accounts for every live block of the heap:
/// the program's, those idle in thread caches and those stranded by `fork` add up to
/// the heap's own count. Returns the blocks stranded by `fork`, if the accounts hold.
fn check_accounts(
    program: &str,
    preload: &Preload<'_>,
    report: &str,
    failures: &mut Vec<String>,
) -> Option<usize> {
    match accounts(report) {
        Ok(stranded) => Some(stranded),
        Err(why) => {
            failures.push(format!(
                "{program} under {}: the exit report {why}:\n{report}",
                preload.allocator
            ));
            None
        }
    }
}

/// Checks the report's block accounts and returns the blocks stranded by `fork`; says
/// what is wrong otherwise.
fn accounts(report: &str) -> Result<usize, String> {
    let numbers = |prefix: &str| -> Option<Vec<usize>> {
        let line = report
            .lines()
            .find(|line| line.trim_start().starts_with(prefix))?;
        Some(
            line.split(|c: char| !c.is_ascii_digit())
                .filter_map(|word| word.parse().ok())
                .collect(),
        )
    };
    // "program     peak P B requested, B B in N blocks at exit"
    let program = numbers("program").and_then(|n| n.get(2).copied());
    // "caches      C free blocks idle in thread caches and their depot, S stranded by
    // fork; live blocks in the heap: L (...)"
    let caches = numbers("caches");
    let (Some(program), Some(&[cached, stranded, heap, ..])) = (program, caches.as_deref()) else {
        return Err("has no program or caches line".to_owned());
    };
    if program + cached + stranded == heap {
        Ok(stranded)
    } else {
        Err(format!(
            "counts {program} program blocks + {cached} cached + {stranded} stranded, but \
             the heap holds {heap} live blocks"
        ))
    }
}

fn gcc(source: &Path, out: &Path) -> Command {
    let mut command = Command::new("gcc");
    command.args(["-O2", "-pthread", "-o"]).arg(out).arg(source);
    command
}

/// Runs `command` without the library; it must succeed, or there is nothing to compare with.
fn plain(command: &mut Command) -> anyhow::Result<Output> {
    let out = command
        .output()
        .with_context(|| format!("could not start {:?}", command.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} fails even without the library: {}\n{}",
            command.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn timed(command: &mut Command, what: &str) -> anyhow::Result<Output> {
    let started = Instant::now();
    let out = command
        .output()
        .with_context(|| format!("could not start {what}"))?;
    println!(
        "    {what:<8} {:>6.2} s  {}",
        started.elapsed().as_secs_f64(),
        out.status
    );
    Ok(out)
}

/// Records a failure naming the program, the allocator and why, unless `got` matches.
fn compare(
    program: &str,
    preload: &Preload<'_>,
    expected: &Output,
    got: &Output,
    failures: &mut Vec<String>,
) {
    let why = if got.status.code() != expected.status.code() {
        let stderr = String::from_utf8_lossy(&got.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        Some(format!(
            "exited with {} (expected {}); stderr ends: {}",
            got.status,
            expected.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        ))
    } else if got.stdout != expected.stdout {
        let got_text = String::from_utf8_lossy(&got.stdout);
        let expected_text = String::from_utf8_lossy(&expected.stdout);
        let line = got_text
            .lines()
            .zip(expected_text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| got_text.lines().count().min(expected_text.lines().count()));
        Some(format!(
            "output differs from line {}: got {:?}, expected {:?}",
            line + 1,
            got_text.lines().nth(line).unwrap_or("<end>"),
            expected_text.lines().nth(line).unwrap_or("<end>")
        ))
    } else {
        None
    };
    if let Some(why) = why {
        failures.push(format!(
            "{program} under {} (region {}): {why}",
            preload.allocator, preload.region
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::accounts;

    #[test]
    fn the_accounts_must_add_up_to_the_heaps_live_blocks() {
        let report = |program: usize, heap: usize| {
            format!(
                "heaplab malloc: tlsf over 1000 bytes\n\
                 \x20 program     peak 900 B requested, 400 B in {program} blocks at exit\n\
                 \x20 caches      7 free blocks idle in thread caches and their depot, 2 stranded by fork; \
                 live blocks in the heap: {heap} (the program's + cached + stranded)\n"
            )
        };
        assert_eq!(accounts(&report(11, 20)), Ok(2));
        assert!(
            accounts(&report(11, 21)).is_err(),
            "one block unaccounted for"
        );
        assert!(
            accounts("heaplab malloc: tlsf\n").is_err(),
            "no lines to check"
        );
    }
}
