//! `cargo xtask traces` writes the generated workloads as `.rep` files;
//! `cargo xtask replay` measures every allocator on a directory of them.
//!
//! The measuring and the tables live in the `trace` crate (`trace::report`), so the book
//! can show the same numbers; this module only turns arguments into calls.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab_benches::peers;
use indicatif::{ProgressBar, ProgressStyle};
use rawheap::RawHeap;
use trace::Trace;
use trace::generate::{Workload, generate};
use trace::replay::{DEFAULT_ALIGN, time_system_replay};
use trace::report::{MeasureOptions, NotReplayed, Run, TraceReport, measure};

/// The seed of the generated traces unless told otherwise.
const DEFAULT_SEED: u64 = 1;
/// The scale of the generated traces unless told otherwise: 10 to 25 thousand ops each.
const DEFAULT_SCALE: usize = 4;

/// A set of generators: heaplab's own workloads, or those of the malloc lab's kinds.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Family {
    /// heaplab's workloads (`trace::Workload::ALL`), in traces/generated
    #[default]
    Heaplab,
    /// The kinds of the CS:APP malloc lab's traces (`trace::Workload::LAB_STYLE`:
    /// binary, coalescing, random, realloc, program phases), in traces/malloc-lab
    MallocLab,
}

impl Family {
    fn workloads(self) -> &'static [Workload] {
        match self {
            Family::Heaplab => &Workload::ALL,
            Family::MallocLab => &Workload::LAB_STYLE,
        }
    }

    /// Where its traces go unless told otherwise (git-ignored).
    fn dir(self) -> PathBuf {
        let traces = crate::shell::root().join("traces");
        match self {
            Family::Heaplab => traces.join("generated"),
            Family::MallocLab => traces.join("malloc-lab"),
        }
    }
}

/// Writes every generated workload as DIR/NAME.rep (`cargo xtask traces`).
#[derive(Args, Debug)]
pub struct TracesArgs {
    /// Directory to write NAME.rep into [default: traces/generated, or traces/malloc-lab
    /// for --family malloc-lab, in the workspace]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Which generators to write
    #[arg(long, value_enum, default_value_t)]
    pub family: Family,
    /// Seed of the generators: the same seed writes the same traces
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Length of the traces: operations grow linearly with it
    #[arg(long, default_value_t = DEFAULT_SCALE)]
    pub scale: usize,
}

/// Measures every allocator on every .rep trace of a directory (`cargo xtask replay`):
/// utilization, fragmentation, throughput and the malloc lab's score, with the peer
/// crates (rlsf, talc, linked_list_allocator, buddy_system_allocator) on the same traces.
/// A file that cannot be read as a trace is listed with its error and left out; the
/// command fails only when no file could be replayed, or with `--strict`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Directory of .rep traces [default: the family's generated traces, written first if
    /// there are none]
    #[arg(long, value_name = "DIR")]
    pub traces: Option<PathBuf>,
    /// Which generated traces to measure when --traces is not given
    #[arg(long, value_enum, default_value_t)]
    pub family: Family,
    /// Measure only this allocator or peer crate (repeat for several) [default: all]
    #[arg(long = "heap", value_name = "NAME")]
    pub heaps: Vec<String>,
    /// Print the results as JSON instead of Markdown tables
    #[arg(long)]
    pub json: bool,
    /// Region size in bytes for every trace [default: each trace's suggested heap size
    /// when it holds the trace's peak footprint, else 4 × that footprint]
    #[arg(long, value_name = "BYTES")]
    pub region: Option<usize>,
    /// Fail when any file cannot be replayed [default: fail only when none can]
    #[arg(long)]
    pub strict: bool,
}

/// `cargo xtask traces`.
pub fn traces(args: TracesArgs) -> anyhow::Result<()> {
    let out = args.out.unwrap_or_else(|| args.family.dir());
    write_traces(&out, args.family, args.seed, args.scale)
}

fn write_traces(out: &Path, family: Family, seed: u64, scale: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for &workload in family.workloads() {
        let trace = generate(workload, seed, scale);
        let path = out.join(format!("{}.rep", workload.name()));
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        trace
            .write(std::io::BufWriter::new(file))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {} ({} ops)", path.display(), trace.ops().len());
    }
    Ok(())
}

/// The `.rep` files of `dir`, sorted by name.
fn rep_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "rep") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// `cargo xtask replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let dir = match args.traces {
        Some(dir) => dir,
        None => {
            let dir = args.family.dir();
            if !dir.is_dir() || rep_files(&dir)?.is_empty() {
                eprintln!("no generated traces yet: writing them (cargo xtask traces)");
                write_traces(&dir, args.family, DEFAULT_SEED, DEFAULT_SCALE)?;
            }
            dir
        }
    };
    let files = rep_files(&dir)?;
    if files.is_empty() {
        bail!("no .rep files in {}", dir.display());
    }
    let heaps = selected_heaps(&args.heaps)?;
    let options = MeasureOptions {
        region: args.region,
        align: DEFAULT_ALIGN,
        check_every: None,
    };

    let (traces, not_replayed) = read_traces(&files);
    for warning in traces.iter().flat_map(|(_, trace)| trace.warnings()) {
        eprintln!("{warning}");
    }
    let progress = ProgressBar::new((traces.len() * heaps.len()) as u64);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    let mut reports = Vec::new();
    for (path, trace) in &traces {
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let system = time_system_replay(trace, options.align)
            .with_context(|| format!("timing the system allocator on {name}"))?;
        let mut visitor = Measure {
            name: &name,
            trace,
            options: &options,
            heaps: &heaps,
            report: TraceReport::new(&name, trace, system),
            progress: &progress,
        };
        for_each_heap(&mut visitor);
        for peer in peers::REPLAY_NAMES
            .into_iter()
            .filter(|p| heaps.contains(p))
        {
            progress.set_message(format!("{peer} on {name}"));
            visitor
                .report
                .measurements
                .extend(peers::measure_on_trace(peer, trace, &options));
            progress.inc(1);
        }
        reports.push(visitor.report);
    }
    progress.finish_and_clear();

    let replayed = reports.len();
    let run = Run::new(reports).with_not_replayed(not_replayed);
    if replayed > 0 {
        if args.json {
            println!("{}", serde_json::to_string_pretty(&run)?);
        } else {
            print!("{}", run.markdown());
        }
    }
    verdict(&dir, files.len(), &run.not_replayed, args.strict)
}

/// Every file that parses as a trace, and the others with their errors.
fn read_traces(files: &[PathBuf]) -> (Vec<(PathBuf, Trace)>, Vec<NotReplayed>) {
    let mut traces = Vec::new();
    let mut not_replayed = Vec::new();
    for path in files {
        match Trace::read(path) {
            Ok(trace) => traces.push((path.clone(), trace)),
            Err(error) => not_replayed.push(NotReplayed {
                file: path.display().to_string(),
                error: error.to_string(),
            }),
        }
    }
    (traces, not_replayed)
}

/// The command's outcome: it fails when no file of `dir` could be replayed, or, when
/// `strict`, when any could not.
fn verdict(
    dir: &Path,
    files: usize,
    not_replayed: &[NotReplayed],
    strict: bool,
) -> anyhow::Result<()> {
    let replayed = files - not_replayed.len();
    if !not_replayed.is_empty() {
        eprintln!("replayed {replayed} of {files} trace files; not replayed:");
        for file in not_replayed {
            eprintln!("  {}", file.error);
        }
    }
    if replayed == 0 {
        bail!(
            "none of the {files} .rep files in {} could be replayed",
            dir.display()
        );
    }
    if strict && !not_replayed.is_empty() {
        bail!(
            "--strict: {} of {files} trace files could not be replayed",
            not_replayed.len()
        );
    }
    Ok(())
}

/// The names to measure: `asked`, checked against the registry and the peers
/// ([`peers::REPLAY_NAMES`]), or every name in them.
fn selected_heaps(asked: &[String]) -> anyhow::Result<Vec<&'static str>> {
    struct Names(Vec<&'static str>);
    impl HeapVisitor for Names {
        fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
            self.0.push(entry.name);
        }
    }
    let mut known = Names(Vec::new());
    for_each_heap(&mut known);
    let mut known = known.0;
    known.extend(peers::REPLAY_NAMES);
    if asked.is_empty() {
        return Ok(known);
    }
    asked
        .iter()
        .map(|name| match known.iter().find(|k| *k == name) {
            Some(k) => Ok(*k),
            None => bail!("unknown heap `{name}`; known: {}", known.join(", ")),
        })
        .collect()
}

/// Measures each selected heap on one trace.
struct Measure<'a> {
    name: &'a str,
    trace: &'a Trace,
    options: &'a MeasureOptions,
    heaps: &'a [&'static str],
    report: TraceReport,
    progress: &'a ProgressBar,
}

impl HeapVisitor for Measure<'_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        if !self.heaps.contains(&entry.name) {
            return;
        }
        self.progress
            .set_message(format!("{} on {}", entry.name, self.name));
        self.report
            .measurements
            .push(measure::<H>(entry.name, self.trace, self.options));
        self.progress.inc(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `trace` crate's dialect files: four that parse, one with a missing size.
    fn dialects() -> Vec<PathBuf> {
        rep_files(&crate::shell::root().join("crates/trace/tests/dialects")).unwrap()
    }

    #[test]
    fn every_readable_file_is_replayed_and_the_others_are_listed_with_their_line() {
        let files = dialects();
        let (traces, not_replayed) = read_traces(&files);
        assert_eq!(traces.len(), 4);
        assert_eq!(not_replayed.len(), 1);
        assert!(not_replayed[0].file.ends_with("missing-size.rep"));
        assert!(
            not_replayed[0].error.ends_with(
                "missing-size.rep:7: missing field: `a` needs an id and a size, the size is missing"
            ),
            "{}",
            not_replayed[0].error
        );
        let dir = Path::new("dialects");
        assert!(verdict(dir, files.len(), &not_replayed, false).is_ok());
        let strict = verdict(dir, files.len(), &not_replayed, true).unwrap_err();
        assert!(
            strict.to_string().starts_with("--strict: 1 of 5"),
            "{strict}"
        );
    }

    #[test]
    fn the_command_fails_only_when_nothing_could_be_replayed() {
        let broken: Vec<PathBuf> = dialects()
            .into_iter()
            .filter(|f| f.ends_with("missing-size.rep"))
            .collect();
        let (traces, not_replayed) = read_traces(&broken);
        assert!(traces.is_empty());
        let error = verdict(Path::new("d"), broken.len(), &not_replayed, false).unwrap_err();
        assert_eq!(
            error.to_string(),
            "none of the 1 .rep files in d could be replayed"
        );
    }
}
