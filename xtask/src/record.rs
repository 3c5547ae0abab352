//! `cargo xtask record -- PROGRAM ARGS`: a real program's allocation trace, recorded by
//! heaplab's malloc library (`HEAPLAB_TRACE`, see `heaplab_malloc::record`) and checked
//! by parsing it back; `cargo xtask preload` records python3 the same way and replays
//! the trace on every allocator ([`check_python_recording`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::{Arena, RawHeap, Reuse};
use trace::Trace;
use trace::region::{self, RegionChoice};
use trace::replay::{DEFAULT_ALIGN, ReplayOptions, replay};

use crate::preload::build_library;
use crate::shell::root;

/// Records a program's allocation trace as a `.rep` file (`cargo xtask record`).
#[derive(clap::Args)]
pub struct Args {
    /// The trace file; programs the recorded one starts get FILE.PID beside it
    /// [default: traces/recorded/PROGRAM.rep in the workspace]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The allocator that serves the program while it is recorded [default: the
    /// library's, free-list-first]
    #[arg(long, value_name = "NAME")]
    allocator: Option<String>,
    /// The program and its arguments
    #[arg(last = true, required = true, value_name = "PROGRAM ARGS")]
    command: Vec<String>,
}

/// `cargo xtask record`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let library = build_library()?;
    let program = &args.command[0];
    let out = args.out.clone().unwrap_or_else(|| {
        let name = Path::new(program)
            .file_name()
            .map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned());
        root().join("traces/recorded").join(format!("{name}.rep"))
    });
    let mut command = Command::new(program);
    command.args(&args.command[1..]);
    if let Some(allocator) = &args.allocator {
        command.env("HEAPLAB_ALLOCATOR", allocator);
    }
    let recording = record(&library, &out, &mut command)?;
    let trace = &recording.trace;
    let profile = trace.profile();
    println!(
        "record: {} ops ({} a, {} r, {} f), {} ids, peak live {} B, {} blocks live at exit, \
         suggested heap {} B\n  in {}",
        trace.ops().len(),
        profile.allocs,
        profile.reallocs,
        profile.frees,
        trace.num_ids(),
        profile.peak_live_bytes,
        profile.live_at_end,
        trace.suggested_heap(),
        out.display()
    );
    for (path, trace) in &recording.others {
        println!(
            "  and {} ops of a program it started, in {}",
            trace.ops().len(),
            path.display()
        );
    }
    if !recording.status.success() {
        bail!(
            "{program} exited with {} (its trace is kept)",
            recording.status
        );
    }
    Ok(())
}

/// What a recording left.
pub struct Recording {
    /// How the program ended.
    pub status: std::process::ExitStatus,
    /// What it printed, if its stdout was piped (else empty).
    pub stdout: String,
    /// What it printed on stderr, if piped (else empty).
    pub stderr: String,
    /// Its trace.
    pub trace: Trace,
    /// The traces of the programs it started (`FILE.PID`), by file.
    pub others: Vec<(PathBuf, Trace)>,
}

/// Runs `command` on `library` with `HEAPLAB_TRACE=out` and reads back every trace it
/// wrote. `out` and its `out.PID` files of an earlier recording are removed first: the
/// library never overwrites a trace, it would write beside it.
pub fn record(library: &Path, out: &Path, command: &mut Command) -> anyhow::Result<Recording> {
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if out.exists() {
        std::fs::remove_file(out).with_context(|| format!("removing {}", out.display()))?;
    }
    for stale in per_process_files(out)? {
        std::fs::remove_file(&stale).with_context(|| format!("removing {}", stale.display()))?;
    }
    let out = std::path::absolute(out)?;
    command
        .env("LD_PRELOAD", library)
        .env("HEAPLAB_TRACE", &out);
    println!("record: {:?} into {}", command.get_program(), out.display());
    let output = command
        .spawn()
        .and_then(std::process::Child::wait_with_output)
        .with_context(|| format!("could not run {:?}", command.get_program()))?;
    let status = output.status;
    let trace = Trace::read(&out).with_context(|| {
        format!(
            "the recorded trace (a program killed before its exit handlers leaves the \
             header `recording`; {status})"
        )
    })?;
    let others = per_process_files(&out)?
        .into_iter()
        .map(|path| {
            let trace = Trace::read(&path)?;
            Ok((path, trace))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Recording {
        status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        trace,
        others,
    })
}

/// The `out.PID` files beside `out`, sorted.
fn per_process_files(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let Some(name) = out.file_name().map(|n| format!("{}.", n.to_string_lossy())) else {
        bail!("{} is not a file name", out.display());
    };
    let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        let is_pid = file
            .as_deref()
            .and_then(|f| f.strip_prefix(&name))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if is_pid {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The recorded python program: threads building JSON (their calls interleave under
/// the heap's lock), a forked child that allocates and leaves with `os._exit` (no trace
/// of its own), and a python started with `subprocess` (its own `FILE.PID`). It prints
/// the forked child's pid, so that the check can see it wrote nothing.
const PYTHON: &str = r#"
import json, os, subprocess, sys, threading
def work(n):
    rows = [{"id": i, "name": str(i) * 3, "tags": list(range(i % 7))} for i in range(n)]
    text = json.dumps(rows)
    return len(text), sorted(json.loads(text), key=lambda r: r["name"])[0]["id"]
threads = [threading.Thread(target=work, args=(300,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
pid = os.fork()
if pid == 0:
    work(200)
    os._exit(0)
os.waitpid(pid, 0)
print("forked", pid)
subprocess.run([sys.executable, "-c", "print(len(str(list(range(1000)))))"], check=True)
print(work(300))
"#;

/// Records [`PYTHON`] through `library` into `work` and replays its trace on every
/// allocator of the registry: each must keep every block intact, and each that reuses
/// memory must serve every request in the region replay chooses. A step of
/// `cargo xtask preload`; failures are pushed to `failures`.
pub fn check_python_recording(
    library: &Path,
    work: &Path,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    let out = work.join("python.rep");
    let mut command = Command::new("python3");
    // Every object through malloc, not only those above pymalloc's 512 bytes: a
    // longer, more varied trace.
    command
        .args(["-c", PYTHON])
        .env("PYTHONMALLOC", "malloc")
        .env("HEAPLAB_STATS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let recording = record(library, &out, &mut command)?;
    let mut problems = Vec::new();
    if !recording.status.success() {
        problems.push(format!(
            "python3 exited with {}: {}",
            recording.status, recording.stderr
        ));
    }
    // The library says so on stderr when the trace misses ops or its header.
    if let Some(line) = recording
        .stderr
        .lines()
        .find(|line| line.contains("HEAPLAB_TRACE"))
    {
        problems.push(format!("the library reported: {line}"));
    }
    let trace = &recording.trace;
    if !trace.warnings().is_empty() {
        problems.push(format!(
            "the trace parses with warnings: {:?}",
            trace.warnings()
        ));
    }
    if trace.ops().len() < 10_000 {
        problems.push(format!("only {} ops recorded", trace.ops().len()));
    }
    if region::choose(trace, None, DEFAULT_ALIGN).choice != RegionChoice::Suggested {
        problems.push("replay does not trust the suggested heap size it wrote".into());
    }
    if recording.others.is_empty() {
        problems.push("the python started by subprocess left no trace of its own".into());
    }
    let forked = recording
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("forked "));
    match forked {
        None => problems.push(format!("no `forked PID` line in {:?}", recording.stdout)),
        Some(pid) => {
            let child_trace = PathBuf::from(format!("{}.{pid}", out.display()));
            if child_trace.exists() {
                problems.push(format!(
                    "the forked child wrote {}, though a child that does not exec records nothing",
                    child_trace.display()
                ));
            }
        }
    }
    // The library's own count of the calls, in its exit report (the last one on
    // stderr is the recorded process's: it ends after every process it started): the
    // trace must have an op for each, or the id table lost a block.
    let profile = trace.profile();
    let recorded = [profile.allocs, profile.reallocs, profile.frees];
    match recording.stderr.lines().rev().find_map(exit_report_calls) {
        None => problems.push(format!("no exit report on stderr: {}", recording.stderr)),
        Some(counted) if counted != recorded => problems.push(format!(
            "the trace has {recorded:?} allocations, reallocs and frees; the library counted {counted:?}"
        )),
        Some(_) => {}
    }
    let mut replays = ReplayEvery {
        trace,
        rows: Vec::new(),
        problems: &mut problems,
    };
    for_each_heap(&mut replays);
    let rows = replays.rows;
    for row in &rows {
        println!("    replayed on {row}");
    }
    println!(
        "    recorded python3: {} ops, {} other traces",
        trace.ops().len(),
        recording.others.len()
    );
    std::fs::write(
        recording_file(),
        recording_report(trace, recording.others.len(), &rows),
    )?;
    check_exec_takeover(library, work, &mut problems)?;
    failures.extend(
        problems
            .into_iter()
            .map(|p| format!("recording python3 ({}): {p}", out.display())),
    );
    Ok(())
}

/// A launcher that replaces itself with the program (`sh -c 'exec python3 ...'`): the
/// shell starts the file, and python, the same process after `exec`, must take it over.
fn check_exec_takeover(
    library: &Path,
    work: &Path,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let out = work.join("exec.rep");
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "exec python3 -c 'print(sorted(str(i) for i in range(999))[-1])'",
        ])
        .env("PYTHONMALLOC", "malloc")
        .stdout(std::process::Stdio::piped());
    let recording = record(library, &out, &mut command)?;
    if recording.stdout.trim() != "998" || !recording.status.success() {
        problems.push(format!(
            "sh -c 'exec python3 ...' printed {:?}, {}",
            recording.stdout, recording.status
        ));
    }
    // python alone allocates thousands of blocks at startup; a shell a handful.
    if recording.trace.ops().len() < 1000 {
        problems.push(format!(
            "after exec, {} holds {} ops: not python's trace",
            out.display(),
            recording.trace.ops().len()
        ));
    }
    Ok(())
}

/// `[allocations, reallocs, frees]` from the exit report's line
/// `calls  N allocations, M reallocs, K frees, ...`.
fn exit_report_calls(line: &str) -> Option<[usize; 3]> {
    let calls = line.trim().strip_prefix("calls")?;
    let mut numbers = calls
        .split(',')
        .map(|part| part.split_whitespace().next()?.parse::<usize>().ok());
    Some([numbers.next()??, numbers.next()??, numbers.next()??])
}

/// The recording's summary and replays, for the malloc chapter.
pub fn recording_file() -> PathBuf {
    root().join("target/preload/recording.md")
}

fn recording_report(trace: &Trace, others: usize, rows: &[ReplayRow]) -> String {
    let p = trace.profile();
    let mut out = format!(
        "`cargo xtask preload` recorded its python program (four threads, a forked child, a \
         python started with `subprocess`, `PYTHONMALLOC=malloc`) with `HEAPLAB_TRACE`: \
         {} ops ({} a, {} r, {} f), {} ids, peak live {} B, {} blocks still live at exit; \
         the programs it started left {others} traces of their own. Replayed on every \
         allocator, {}:\n\n\
         | allocator | utilization (high water) | refused requests |\n| --- | ---: | ---: |\n",
        trace.ops().len(),
        p.allocs,
        p.reallocs,
        p.frees,
        trace.num_ids(),
        p.peak_live_bytes,
        p.live_at_end,
        region::choose(trace, None, DEFAULT_ALIGN)
    );
    for row in rows {
        out.push_str(&format!(
            "| {} | {:.1}% | {} |\n",
            row.allocator,
            100.0 * row.utilization,
            row.refused
        ));
    }
    out
}

/// One allocator's replay of the recorded trace.
struct ReplayRow {
    allocator: &'static str,
    utilization: f64,
    refused: usize,
}

impl std::fmt::Display for ReplayRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<16} U {:5.1}%, {} refused",
            self.allocator,
            100.0 * self.utilization,
            self.refused
        )
    }
}

/// Replays one trace on every allocator, noting what went wrong.
struct ReplayEvery<'a> {
    trace: &'a Trace,
    rows: Vec<ReplayRow>,
    problems: &'a mut Vec<String>,
}

impl HeapVisitor for ReplayEvery<'_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        let reuses = Arena::<H>::new(64 << 10).capabilities().reuse == Reuse::Any;
        match replay::<H>(self.trace, &ReplayOptions::default()) {
            Err(error) => self.problems.push(format!("{}: {error}", entry.name)),
            Ok(report) => {
                self.rows.push(ReplayRow {
                    allocator: entry.name,
                    utilization: report.utilization,
                    refused: report.failed_requests,
                });
                if reuses && report.failed_requests > 0 {
                    self.problems.push(format!(
                        "{}: {} requests refused in a {}-byte region",
                        entry.name, report.failed_requests, report.region
                    ));
                }
            }
        }
    }
}
