//! Everything the book shows from real runs: heap maps, fragmentation plots, result
//! tables, the chapter demos and the numbers the prose quotes, computed here and written
//! into one folder (`book/src/generated/`) by the `figures` program.
//!
//! Nothing in the book is typed in by hand: a chapter that needs a number includes a
//! small generated Markdown file that states it. The allocators come from
//! [`heaplab::registry`], so a new allocator appears in every table and figure without
//! a change here.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use heaplab::free_list::FreeList;
use heaplab::registry::{self, Entry, HeapVisitor};
use heaplab::{Arena, BlockKind, Capabilities, RawHeap, Reuse};
use trace::replay::{self, ReplayOptions};
use trace::report::{self, MeasureOptions, Measurement, Run, TraceReport};
use trace::{Trace, Workload, heapmap, plot};

use crate::scenario;

/// The seed of every generated trace unless told otherwise.
pub const DEFAULT_SEED: u64 = 1;

/// The scale of every generated trace unless told otherwise (a few thousand ops each).
pub const DEFAULT_SCALE: usize = 1;

/// Width of the SVG heap maps, in pixels.
const MAP_WIDTH: usize = 720;

/// Programs of `crates/book-tests/examples/` whose output a chapter shows: each one's
/// standard output is `generated/NAME.txt`. They run as their own processes (the output
/// is about the process's memory), so the caller of [`generate`] runs them.
pub const EXAMPLES: &[&str] = &["where_things_live"];

/// Files of the coursework chapters that `cargo xtask figures` writes after
/// [`generate`], with the grader's reports: grading builds each submission as its own
/// crate, which is the grader's business (`xtask/src/coursework.rs`), not this crate's.
pub const GRADER_REPORTS: &[&str] = &[
    "coursework-report-reference.md",
    "coursework-report-broken.md",
    "coursework-report-broken.json",
    "coursework-report-loops.md",
    "coursework-batch.md",
    "coursework-batch-time.md",
    "coursework-formula.md",
];

/// Workloads drawn as heap maps and fragmentation plots, one of each per allocator.
pub const PICTURED: [Workload; 2] = [Workload::RandomMixed, Workload::FirstFitAdversary];

/// How the figures are made.
#[derive(Clone, Debug)]
pub struct Options {
    /// Seed of the generated traces.
    pub seed: u64,
    /// Scale of the generated traces.
    pub scale: usize,
    /// The Markdown table `cargo xtask bench` writes, if it exists.
    pub bench_summary: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: DEFAULT_SEED,
            scale: DEFAULT_SCALE,
            bench_summary: None,
        }
    }
}

/// The folder being written, and the names written so far.
pub struct Output {
    dir: PathBuf,
    written: Vec<String>,
}

impl Output {
    /// Writes into `dir`, which must exist.
    pub fn new(dir: &Path) -> Self {
        Output {
            dir: dir.to_path_buf(),
            written: Vec::new(),
        }
    }

    /// Writes `contents` as `dir/name`.
    pub fn write(&mut self, name: &str, contents: impl AsRef<[u8]>) -> io::Result<()> {
        std::fs::write(self.dir.join(name), contents)?;
        self.written.push(name.to_owned());
        Ok(())
    }

    /// The file names written, in order.
    pub fn written(&self) -> &[String] {
        &self.written
    }
}

/// Computes and writes every generated file of the book into `out`.
pub fn generate(out: &mut Output, options: &Options) -> io::Result<()> {
    let started = Instant::now();
    let traces: Vec<(Workload, Trace)> = Workload::ALL
        .iter()
        .map(|&w| (w, trace::generate(w, options.seed, options.scale)))
        .collect();
    let mut every = EveryHeap::new(&traces);
    registry::for_each_heap(&mut every);

    out.write("capabilities.md", every.capabilities)?;
    out.write("reserved.md", every.reserved)?;
    out.write("workloads.md", workloads_table(&traces, options))?;
    for (name, text) in every.files.iter().chain(&every.maps) {
        out.write(name, text)?;
    }
    out.write("conformance.md", conformance_table(&every.conformance))?;
    out.write("conformance-rules.md", rules_table())?;
    conformance_failure(out)?;
    let run = Run::new(every.reports);
    // Each trace's table under its own heading; the summary goes where a chapter puts
    // it, under the chapter's heading rather than its own.
    let per_trace: Vec<String> = run.traces.iter().map(TraceReport::markdown).collect();
    out.write("results.md", per_trace.join("\n"))?;
    out.write("summary.md", without_heading(&run.summary_markdown()))?;
    for (chapter, members) in &every.chapters {
        out.write(
            &format!("{chapter}-results.md"),
            family_table(&run, members),
        )?;
    }
    out.write("utilization-matrix.md", utilization_matrix(&run))?;
    out.write(
        "internal-fragmentation-matrix.md",
        internal_fragmentation_matrix(&run),
    )?;
    for workload in PICTURED {
        let series: Vec<(String, Vec<(usize, f64)>)> = run
            .traces
            .iter()
            .filter(|t| t.trace == workload.name())
            .flat_map(|t| &t.measurements)
            .map(|m| (m.allocator.clone(), m.external_fragmentation.clone()))
            .collect();
        out.write(
            &format!("fragmentation-{workload}.svg"),
            plot::fragmentation_svg(&series),
        )?;
    }
    contract_walk(out)?;
    trace_dialects(out)?;
    fragmentation_failure(out)?;
    leak_report(out)?;
    crate::gc_figures::generate(out)?;
    crate::slab_figures::generate(out, &traces)?;
    crate::buddy_figures::generate(out)?;
    crate::headerless_figures::generate(out, options.seed, options.scale)?;
    out.write("bench.md", bench_table(options.bench_summary.as_deref()))?;
    for (name, file, command) in MEASURED_ELSEWHERE {
        out.write(name, measured_elsewhere(file, command))?;
    }
    out.write("bump-walk-cost.md", bump_walk_cost())?;
    crate::latency_figures::generate(out, options.bench_summary.as_deref())?;
    out.write(
        "score-formula.md",
        format!("> `{}`\n", replay::SCORE_FORMULA),
    )?;
    out.write(
        "run-parameters.md",
        format!(
            "The traces were generated with seed {} at scale {}, each replayed in a region of its \
             suggested heap size, by an optimised build, on the machine that built this book; \
             computing every figure took {:.1} s.\n",
            options.seed,
            options.scale,
            started.elapsed().as_secs_f64()
        ),
    )?;
    Ok(())
}

/// What is collected from every allocator of the registry.
struct EveryHeap<'t> {
    traces: &'t [(Workload, Trace)],
    /// One report per trace, gaining a row per allocator.
    reports: Vec<TraceReport>,
    capabilities: String,
    reserved: String,
    /// Heap maps and demos, by file name.
    files: Vec<(String, String)>,
    /// The Markdown files that show the heap maps, by file name.
    maps: Vec<(String, String)>,
    /// Each allocator's result on each conformance rule (in `rules::RULES` order).
    conformance: Vec<(&'static str, Vec<bool>)>,
    /// Each chapter's allocators, in registry order: a chapter's results table lists them.
    chapters: Vec<(String, Vec<&'static str>)>,
}

/// The requests of the "reserved vs requested" table: (size, alignment).
const REQUESTS: [(usize, usize); 5] = [(1, 8), (24, 8), (100, 8), (1000, 8), (24, 64)];

/// The region of the single-request measurements.
const PROBE_REGION: usize = 64 * 1024;

impl<'t> EveryHeap<'t> {
    fn new(traces: &'t [(Workload, Trace)]) -> Self {
        let reports = traces
            .iter()
            .map(|(workload, trace)| {
                let system = replay::time_system_replay(trace, replay::DEFAULT_ALIGN)
                    .expect("generated traces replay with the default alignment");
                TraceReport::new(workload.name(), trace, system)
            })
            .collect();
        EveryHeap {
            traces,
            reports,
            capabilities: String::from(
                "| allocator | reuses freed memory | empty again when all is freed | largest size | largest alignment | resizes in place |\n\
                 | --- | --- | --- | ---: | ---: | --- |\n",
            ),
            reserved: String::from(
                "| allocator | request (size, align) | usable | taken from free | internal fragmentation |\n\
                 | --- | --- | ---: | ---: | ---: |\n",
            ),
            files: Vec::new(),
            maps: Vec::new(),
            conformance: Vec::new(),
            chapters: Vec::new(),
        }
    }
}

impl HeapVisitor for EveryHeap<'_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        let name = entry.name;
        let chapter = scenario::chapter_of::<H>();
        match self.chapters.iter_mut().find(|(c, _)| *c == chapter) {
            Some((_, members)) => members.push(name),
            None => self.chapters.push((chapter.clone(), vec![name])),
        }
        capabilities_row(
            &mut self.capabilities,
            name,
            Arena::<H>::new(PROBE_REGION).capabilities(),
        );
        for (size, align) in REQUESTS {
            reserved_row::<H>(&mut self.reserved, name, size, align);
        }
        for ((workload, trace), report) in self.traces.iter().zip(&mut self.reports) {
            report.measurements.push(report::measure::<H>(
                name,
                trace,
                &MeasureOptions::default(),
            ));
            if PICTURED.contains(workload) {
                let peak = peak_moment(trace);
                let caption =
                    format!("{name} at the peak of the {workload} trace, after {peak} operations");
                let shown = match heap_map_after::<H>(trace, peak) {
                    Ok(svg) => {
                        let file = format!("heapmap-{workload}-{name}.svg");
                        self.files.push((file.clone(), svg));
                        figure_html(&file, &caption)
                    }
                    Err(error) => format!("{caption}: no map, the replay failed: {error}\n\n"),
                };
                push_to(&mut self.maps, &format!("maps-{workload}.md"), &shown);
                push_to(&mut self.maps, &format!("maps-{chapter}.md"), &shown);
            }
        }
        self.files
            .push((format!("demo-{name}.txt"), scenario::run::<H>(name)));
        let results = conformance::run_all::<H>(conformance::DEFAULT_REGION);
        self.conformance.push((
            name,
            results
                .into_iter()
                .map(|(_, result)| result.is_ok())
                .collect(),
        ));
    }
}

/// Markdown without its first line if that line is a heading.
fn without_heading(markdown: &str) -> String {
    match markdown.split_once('\n') {
        Some((first, rest)) if first.starts_with('#') => rest.trim_start().to_owned(),
        _ => markdown.to_owned(),
    }
}

/// Appends `text` to the file called `name` in `files`, creating it if needed.
fn push_to(files: &mut Vec<(String, String)>, name: &str, text: &str) {
    match files.iter_mut().find(|(file, _)| file == name) {
        Some((_, contents)) => contents.push_str(text),
        None => files.push((name.to_owned(), text.to_owned())),
    }
}

/// An SVG from the generated folder as a figure with a caption, for a chapter to include.
fn figure_html(file: &str, caption: &str) -> String {
    format!(
        "<img class=\"figure\" src=\"generated/{file}\" alt=\"Heap map: {caption}\">\n<p class=\"caption\">{caption}</p>\n\n"
    )
}

fn capabilities_row(table: &mut String, name: &str, c: Capabilities) {
    let reuse = match c.reuse {
        Reuse::Never => "never",
        Reuse::MostRecent => "the most recent block",
        Reuse::Any => "any block",
    };
    let yes = |b: bool| if b { "yes" } else { "no" };
    let _ = writeln!(
        table,
        "| {name} | {reuse} | {} | {} | {} | {} |",
        yes(c.restores_when_empty),
        limit(c.max_size, " B"),
        limit(c.max_align, ""),
        yes(c.resizes_in_place),
    );
}

/// A size or alignment limit in words: powers of two (and one less) as powers.
fn limit(n: usize, unit: &str) -> String {
    match n {
        usize::MAX => "only the region".to_owned(),
        n if n.is_power_of_two() => format!("2^{}{unit}", n.ilog2()),
        n if (n + 1).is_power_of_two() => format!("2^{} − 1{unit}", (n + 1).ilog2()),
        n => format!("{n}{unit}"),
    }
}

/// One request on a fresh heap: what the caller may use, and what it cost the heap's
/// free memory (payload, header, rounding and padding together).
fn reserved_row<H: RawHeap>(table: &mut String, name: &str, size: usize, align: usize) {
    let layout =
        core::alloc::Layout::from_size_align(size, align).expect("the table's layouts are valid");
    let mut heap = Arena::<H>::new(PROBE_REGION);
    let before = heap.stats();
    let cells = match heap.allocate(layout) {
        Ok(ptr) => {
            // SAFETY: `ptr` was just allocated with `layout` and is live.
            let usable = unsafe { heap.usable_size(ptr, layout) };
            let taken = before.free - heap.stats().free;
            format!("{usable} B | {taken} B | {} B", taken - size)
        }
        Err(error) => format!("refused: {error} | | "),
    };
    let _ = writeln!(table, "| {name} | {size} B, {align} | {cells} |");
}

/// How many operations of `trace` run before its live bytes first reach their peak:
/// the moment a heap map shows the most. The peak of a prefix only grows with its
/// length, so a bisection over prefixes finds it.
pub fn peak_moment(trace: &Trace) -> usize {
    let peak = trace.profile().peak_live_bytes;
    let prefix_peak = |len: usize| {
        Trace::new(
            trace.suggested_heap(),
            trace.num_ids(),
            trace.weight(),
            trace.ops()[..len].to_vec(),
        )
        .map_or(0, |prefix| prefix.profile().peak_live_bytes)
    };
    let (mut short, mut long) = (0, trace.ops().len());
    while short < long {
        let mid = short + (long - short) / 2;
        if prefix_peak(mid) >= peak {
            long = mid;
        } else {
            short = mid + 1;
        }
    }
    long
}

/// The heap's map after `ops` operations of `trace`, as an SVG.
fn heap_map_after<H: RawHeap>(trace: &Trace, ops: usize) -> Result<String, replay::ReplayError> {
    let options = ReplayOptions {
        snapshots: vec![ops],
        ..ReplayOptions::default()
    };
    let report = replay::replay::<H>(trace, &options)?;
    Ok(match report.snapshots.first() {
        Some(snap) => heapmap::svg(&snap.blocks, snap.region_start, snap.region_len, MAP_WIDTH),
        None => heapmap::svg(&[], 0, 0, MAP_WIDTH),
    })
}

/// The traces: what each workload does, in numbers.
fn workloads_table(traces: &[(Workload, Trace)], options: &Options) -> String {
    let mut table = format!(
        "Seed {}, scale {}.\n\n| workload | ops | allocate | free | reallocate | peak live bytes | largest request | suggested region |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        options.seed, options.scale
    );
    for (workload, trace) in traces {
        let p = trace.profile();
        let _ = writeln!(
            table,
            "| {workload} | {} | {} | {} | {} | {} | {} | {} |",
            trace.ops().len(),
            p.allocs,
            p.frees,
            p.reallocs,
            p.peak_live_bytes,
            p.max_size,
            trace.suggested_heap()
        );
    }
    table
}

/// The allocators whose names start with `family`, side by side on every workload:
/// utilization both ways, throughput and refused requests.
fn family_table(run: &Run, members: &[&str]) -> String {
    let mut table = String::from(
        "| workload | allocator | util (high water) | util (min region) | Kops/s | refused |\n| --- | --- | ---: | ---: | ---: | ---: |\n",
    );
    for trace in &run.traces {
        for m in trace
            .measurements
            .iter()
            .filter(|m| members.contains(&m.allocator.as_str()))
        {
            let percent =
                |f: Option<f64>| f.map_or("-".to_owned(), |f| format!("{:.1}%", f * 100.0));
            let _ = writeln!(
                table,
                "| {} | {} | {} | {} | {} | {} |",
                trace.trace,
                m.allocator,
                percent(m.utilization),
                percent(m.min_region.map(|r| r.utilization)),
                m.throughput
                    .map_or("-".to_owned(), |t| format!("{:.0}", t.ops_per_sec / 1000.0)),
                m.failed_requests
            );
        }
    }
    table
}

/// A table with a row per workload and a column per allocator, each cell `cell` of that
/// allocator's measurement on that workload.
fn matrix(run: &Run, cell: impl Fn(&TraceReport, &Measurement) -> String) -> String {
    let names: Vec<&str> = run.summary.iter().map(|s| s.allocator.as_str()).collect();
    let mut table = format!("| workload | {} |\n| --- |", names.join(" | "));
    table.push_str(&" ---: |".repeat(names.len()));
    table.push('\n');
    for trace in &run.traces {
        let cells: Vec<String> = names
            .iter()
            .map(|name| {
                trace
                    .measurements
                    .iter()
                    .find(|m| m.allocator == *name)
                    .map_or("-".to_owned(), |m| cell(trace, m))
            })
            .collect();
        let _ = writeln!(table, "| {} | {} |", trace.trace, cells.join(" | "));
    }
    table
}

/// Utilization by high-water mark of every allocator on every workload; a trace with a
/// refused request or a failed replay shows why instead.
fn utilization_matrix(run: &Run) -> String {
    matrix(run, |_, m| match (m.utilization, m.failed_requests) {
        (Some(u), 0) if m.error.is_none() => format!("{:.1}%", u * 100.0),
        (_, refused) if m.error.is_none() => format!("{refused} refused"),
        _ => "failed".to_owned(),
    })
}

/// The largest internal fragmentation (reserved − requested bytes) seen during each
/// replay, as a share of the trace's peak live bytes.
fn internal_fragmentation_matrix(run: &Run) -> String {
    matrix(run, |trace, m| {
        let peak = trace.profile.peak_live_bytes.max(1) as f64;
        format!(
            "{:.1}%",
            m.peak_internal_fragmentation as f64 / peak * 100.0
        )
    })
}

/// The contract chapter's picture: a free-list heap partway through the demo script.
fn contract_walk(out: &mut Output) -> io::Result<()> {
    const STEPS: usize = 10;
    let mut demo = scenario::Demo::<FreeList>::new();
    let mut caption = String::from("The operations, in order:\n\n");
    for op in &scenario::SCRIPT[..STEPS] {
        let _ = writeln!(caption, "1. `{}`", demo.step(*op));
    }
    let mut blocks = Vec::new();
    demo.heap().walk(&mut |block| blocks.push(block));
    let region = demo.heap().region();
    let _ = write!(
        caption,
        "\nThe stretches `walk` reported, in address order: {}.\n\n`stats()`: `{}`\n",
        blocks
            .iter()
            .map(|b| format!("{} {} B", heapmap::kind_name(b.kind), b.size))
            .collect::<Vec<_>>()
            .join(", "),
        scenario::stats_line(demo.heap())
    );
    out.write(
        "contract-walk.svg",
        heapmap::svg(
            &blocks,
            region.as_ptr().cast::<u8>().addr(),
            region.len(),
            MAP_WIDTH,
        ),
    )?;
    out.write("contract-walk.md", caption)
}

// ANCHOR: fragmentation_failure
/// The measuring chapter's failure: a request refused although enough bytes are free.
/// Fill a first-fit heap with small blocks, free every other one, and ask for a block
/// a few times larger than the holes.
fn fragmentation_failure(out: &mut Output) -> io::Result<()> {
    const REGION: usize = 4096;
    const SMALL: usize = 48;
    const LARGE: usize = 4 * SMALL;
    let small = core::alloc::Layout::from_size_align(SMALL, 8).expect("valid");
    let large = core::alloc::Layout::from_size_align(LARGE, 8).expect("valid");
    let mut heap = Arena::<FreeList>::new(REGION);
    let mut blocks = Vec::new();
    while let Ok(block) = heap.allocate(small) {
        blocks.push(block);
    }
    for block in blocks.iter().step_by(2) {
        // SAFETY: every block came from this heap with `small`, and each is freed once.
        unsafe { heap.deallocate(*block, small) };
    }
    let stats = heap.stats();
    let refusal = heap.allocate(large).expect_err("no hole is large enough");
    let cause = refusal.cause(large, &stats);
    let mut walked = Vec::new();
    heap.walk(&mut |block| walked.push(block));
    let holes = walked.iter().filter(|b| b.kind == BlockKind::Free).count();
    let region = heap.region();
    out.write(
        "fragmentation-failure.svg",
        heapmap::svg(
            &walked,
            region.as_ptr().cast::<u8>().addr(),
            region.len(),
            MAP_WIDTH,
        ),
    )?;
    out.write(
        "fragmentation-failure.md",
        format!(
            "A first-fit free-list heap of {REGION} bytes was filled with {} blocks of {SMALL} bytes, \
             and every other block was freed. Then:\n\n\
             | | |\n| --- | --- |\n\
             | request | {LARGE} bytes |\n\
             | free bytes | {} |\n\
             | free stretches | {holes} |\n\
             | largest free stretch | {} bytes |\n\
             | external fragmentation, 1 − largest / free | {:.3} |\n\
             | answer | `Err({refusal:?})` |\n\
             | `AllocError::cause` | `{cause:?}` |\n",
            blocks.len(),
            stats.free,
            stats.largest_free,
            stats.external_fragmentation(),
        ),
    )
}
// ANCHOR_END: fragmentation_failure

/// Every rule of the suite with what it asks, in the words of the suite itself.
fn rules_table() -> String {
    let mut table = String::from("| rule | what it asks of a heap |\n| --- | --- |\n");
    for rule in conformance::rules::RULES {
        let _ = writeln!(table, "| `{}` | {} |", rule.name, rule.explanation);
    }
    table
}

/// Every rule of the suite, and whether each allocator keeps it.
fn conformance_table(results: &[(&str, Vec<bool>)]) -> String {
    let mut table = String::from("| rule |");
    for (name, _) in results {
        let _ = write!(table, " {name} |");
    }
    table.push_str("\n| --- |");
    table.push_str(&" :---: |".repeat(results.len()));
    table.push('\n');
    for (index, rule) in conformance::rules::RULES.iter().enumerate() {
        let _ = write!(table, "| `{}` |", rule.name);
        for (_, passed) in results {
            let _ = write!(
                table,
                " {} |",
                if passed.get(index) == Some(&true) {
                    "pass"
                } else {
                    "**fail**"
                }
            );
        }
        table.push('\n');
    }
    table
}

/// The heaps of the conformance crate's own tests: a small correct heap, and the same
/// heap with one bug switched on per type, which the suite is proven to catch.
#[path = "../../conformance/tests/support/mod.rs"]
mod broken;

/// The testing chapter's failure: the whole suite on a heap whose split puts the rest
/// of a block one granule too early, over the end of the block just handed out.
fn conformance_failure(out: &mut Output) -> io::Result<()> {
    type Heap = broken::ListHeap<broken::OffByOneSplit>;
    let results = conformance::run_all::<Heap>(broken::REGION);
    let mut summary = String::from("| rule | result |\n| --- | --- |\n");
    for (rule, result) in &results {
        let verdict = match result {
            Ok(()) => "pass".to_owned(),
            Err(violation) if violation.rule == *rule => "**fail**".to_owned(),
            Err(violation) => format!("**fail**, as `{}`", violation.rule),
        };
        let _ = writeln!(summary, "| `{rule}` | {verdict} |");
    }
    let first = results.iter().find_map(|(_, result)| result.as_ref().err());
    out.write("conformance-failure.md", summary)?;
    // The failure page the suite wrote for it, for the chapter to show; the message names
    // it by its absolute path, here from a placeholder for where the workspace lies.
    let mut text = first.map_or_else(|| "every rule passed".to_owned(), ToString::to_string);
    if let Some(page) = first.and_then(|violation| violation.page.as_ref()) {
        out.write("failure-page.html", std::fs::read(page)?)?;
        let shown = page.to_string_lossy();
        if let Some(at) = shown.find("/target/") {
            text = text.replace(&*shown, &format!("/path/to/heaplab{}", &shown[at..]));
        }
    }
    out.write("conformance-failure.txt", text)
}

/// The leak report of `Checked`: two blocks allocated and never freed.
fn leak_report(out: &mut Output) -> io::Result<()> {
    let mut heap = Arena::<conformance::Checked<FreeList>>::new(4096);
    let kept = core::alloc::Layout::from_size_align(24, 8).expect("valid");
    let freed = core::alloc::Layout::from_size_align(64, 8).expect("valid");
    let lost = core::alloc::Layout::from_size_align(100, 8).expect("valid");
    let (first, second, third) = (
        heap.allocate(kept),
        heap.allocate(freed),
        heap.allocate(lost),
    );
    if let (Ok(_), Ok(second), Ok(_)) = (first, second, third) {
        // SAFETY: `second` came from this heap with `freed` and is freed once.
        unsafe { heap.deallocate(second, freed) };
    }
    let report = panic_message(|| heap.assert_no_leaks());
    out.write(
        "leak-report.txt",
        report.unwrap_or_else(|| "no leak reported".to_owned()),
    )
}

/// The message `f` panics with, if it panics; the panic is not printed.
pub fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> Option<String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(hook);
    let payload = result.err()?;
    Some(match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast::<&str>().map_or_else(
            |_| "a panic without a message".to_owned(),
            |m| m.to_string(),
        ),
    })
}

/// What the parser and the region rule make of the dialect files of the `trace` crate's
/// tests (`crates/trace/tests/dialects`, small files of our own, one per dialect):
/// `trace-dialects.md`; and the region rule with its constants: `trace-region.md`.
fn trace_dialects(out: &mut Output) -> io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../trace/tests/dialects");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    files.sort();
    let mut table = String::from(
        "| file | what the parser says | region of the replay |\n| --- | --- | --- |\n",
    );
    for path in files {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let text = std::fs::read_to_string(&path)?;
        let (said, region) = match Trace::parse(&text, &name) {
            Err(error) => (format!("error: {error}"), "not replayed".to_string()),
            Ok(trace) => {
                let warnings: Vec<String> =
                    trace.warnings().iter().map(ToString::to_string).collect();
                let said = if warnings.is_empty() {
                    format!("{} ops, no warning", trace.ops().len())
                } else {
                    format!("{} ops; {}", trace.ops().len(), warnings.join("; "))
                };
                let region = trace::region::choose(&trace, None, replay::DEFAULT_ALIGN);
                (said, region.to_string())
            }
        };
        let cell = |text: &str| text.replace('|', "\\|");
        let _ = writeln!(table, "| `{name}` | {} | {} |", cell(&said), cell(&region));
    }
    out.write("trace-dialects.md", table)?;
    out.write(
        "trace-region.md",
        format!(
            "A block of `size` bytes counts as `size` rounded up to {} bytes plus {} bytes \
             (`trace::region::block_footprint`); the bound is {} × the peak footprint, rounded \
             up to a 4 KiB page, and never less than {} KiB.\n",
            rawheap::tags::GRANULE,
            rawheap::tags::MIN_BLOCK,
            trace::region::REGION_FACTOR,
            trace::region::MIN_REGION / 1024
        ),
    )
}

/// Tables that commands other than the figures write under the workspace's `target/`:
/// the name in the book, the file, and the command that writes it.
const MEASURED_ELSEWHERE: [(&str, &str, &str); 7] = [
    (
        "bench-called.md",
        "target/bench/summary-called.md",
        "`cargo xtask bench --called` (criterion, five runs of every workload; about half an hour)",
    ),
    (
        "instructions-called.md",
        "target/bench/instructions-called.md",
        "`cargo xtask bench --instructions --called` (callgrind; about twenty minutes)",
    ),
    (
        "threads-bench.md",
        "target/bench/threads.md",
        "`cargo bench -p heaplab-benches --bench threads` (a minute or two)",
    ),
    (
        "malloc-exit-stats.md",
        "target/preload/exit-stats.md",
        "`cargo xtask preload` (a CI step, about 20 s)",
    ),
    (
        "malloc-recording.md",
        "target/preload/recording.md",
        "`cargo xtask preload` (a CI step)",
    ),
    (
        "mutants.md",
        "target/mutants/summary.md",
        "`cargo xtask mutants` (cargo-mutants over every allocator crate; one to two hours)",
    ),
    (
        "malloc-c-bench.md",
        "target/bench/c-bench.md",
        "`cargo xtask bench --c` (a C program under each malloc, a few minutes)",
    ),
];

/// The file a command wrote, or a note naming the command when it never ran.
fn measured_elsewhere(file: &str, command: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(file);
    std::fs::read_to_string(path).unwrap_or_else(|_| {
        format!(
            "No results were found when this book was built. Run {command}, then \
             `cargo xtask book`: they appear here.\n"
        )
    })
}

/// What keeping `walk` exact costs bump: its rows of the equal-footing tables
/// (instructions and time per operation beside bumpalo, which records no free), or how
/// to make them.
fn bump_walk_cost() -> String {
    let mut text = String::new();
    for (name, file, command) in &MEASURED_ELSEWHERE[..2] {
        let table = measured_elsewhere(file, command);
        let rows = rows_of(&table, "bump").unwrap_or(table);
        text.push_str(&format!("From `{file}` ({name}):\n\n{rows}\n"));
    }
    text
}

/// The header and the rows of `allocator` of a table `cargo xtask bench` wrote, with
/// the note under it; `None` when `table` is not such a table or has no such row.
fn rows_of(table: &str, allocator: &str) -> Option<String> {
    let mut lines = table.lines();
    let header = lines
        .next()
        .filter(|line| line.starts_with("| workload |"))?;
    let rule = lines.next()?;
    let mut rows = String::new();
    let mut note = String::new();
    for line in lines {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.get(2) == Some(&allocator) {
            rows.push_str(line);
            rows.push('\n');
        } else if !line.starts_with('|') && !line.trim().is_empty() {
            note.push_str(line);
            note.push('\n');
        }
    }
    (!rows.is_empty()).then(|| format!("{header}\n{rule}\n{rows}\n{note}"))
}

/// The bench ratio table, or how to make it.
fn bench_table(summary: Option<&Path>) -> String {
    match summary.map(std::fs::read_to_string) {
        Some(Ok(table)) => table,
        _ => "No benchmark results were found when this book was built. Run `cargo xtask bench` \
              (criterion, a few minutes), then `cargo xtask book`: the table of nanoseconds per \
              operation, beside each allocator's peer crate and the system allocator, appears here.\n"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_moment_is_the_first_op_that_reaches_the_peak() {
        use trace::Op;
        let ops = vec![
            Op::Alloc { id: 0, size: 10 },
            Op::Alloc { id: 1, size: 30 },
            Op::Free { id: 0 },
            Op::Alloc { id: 2, size: 10 },
            Op::Free { id: 1 },
            Op::Free { id: 2 },
        ];
        let trace = Trace::new(4096, 3, 1, ops).unwrap();
        assert_eq!(
            peak_moment(&trace),
            2,
            "10 + 30 live after two ops; 40 again later"
        );
        assert_eq!(peak_moment(&Trace::new(4096, 0, 1, Vec::new()).unwrap()), 0);
    }

    #[test]
    fn the_rows_of_one_allocator_keep_the_header_and_the_note() {
        let table = "| workload | allocator | ns/op |\n| --- | --- | ---: |\n\
                     | queue-64 | bump | 4.0 |\n| queue-64 | tlsf | 6.0 |\n\
                     | stack-64 | bump | 3.0 |\n\nns/op: a note.\n";
        let rows = rows_of(table, "bump").unwrap();
        assert!(rows.starts_with("| workload | allocator | ns/op |\n| --- |"));
        assert!(rows.contains("| queue-64 | bump | 4.0 |"));
        assert!(rows.contains("| stack-64 | bump | 3.0 |"));
        assert!(!rows.contains("tlsf"));
        assert!(rows.contains("ns/op: a note."));
        assert_eq!(rows_of(table, "slab"), None);
        assert_eq!(rows_of("No results were found.", "bump"), None);
    }

    #[test]
    fn only_a_leading_heading_is_dropped() {
        assert_eq!(without_heading("### Summary\n\ntext\n"), "text\n");
        assert_eq!(
            without_heading("text\n### not first\n"),
            "text\n### not first\n"
        );
    }

    #[test]
    fn panic_messages_are_caught_and_returned() {
        assert_eq!(
            panic_message(|| panic!("boom {}", 1)),
            Some("boom 1".to_owned())
        );
        assert_eq!(
            panic_message(|| panic!("static")),
            Some("static".to_owned())
        );
        assert_eq!(panic_message(|| ()), None);
    }

    #[test]
    fn the_fragmentation_scenario_is_refused_for_fragmentation() {
        let dir = std::env::temp_dir().join(format!("book-frag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = Output::new(&dir);
        fragmentation_failure(&mut out).unwrap();
        let text = std::fs::read_to_string(dir.join("fragmentation-failure.md")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(text.contains("`Some(Fragmentation)`"), "{text}");
        assert!(text.contains("`Err(Exhausted)`"), "{text}");
    }
}
