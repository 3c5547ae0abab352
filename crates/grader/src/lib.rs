//! heaplab's grader: grades a student's heap the way the malloc lab's driver does, with
//! the conformance suite for correctness, and writes the grade in the formats courses
//! already collect (Markdown, JSON, Gradescope's `results.json`, JUnit XML, HTML).
//!
//! A submission is a crate whose root exports a type called `Heap` that implements
//! `rawheap::RawHeap` (`pub struct Heap` or `pub type Heap = ...;`), as the template of
//! `cargo xtask new-assignment` does. Grading goes in four steps, one module each:
//!
//! 1. [`policy`]: the submission's dependencies, read with `cargo metadata`, are held
//!    against the course's policy (by default: `rawheap` alone, without its default
//!    features). A dependency the staff did not allow withholds the grade, so a heaplab
//!    allocator (or a crate from crates.io) handed in as `pub type Heap = ...` earns
//!    nothing.
//! 2. [`harness`]: the grader never links the submission into itself. It writes a small
//!    *harness* crate that depends on the submission by path, on the conformance suite
//!    and on the trace crate, and builds it. Every harness is built into one target
//!    directory, so the suite and its dependencies are compiled once for all submissions.
//! 3. [`process`]: each part of the grading (one rule, or the traces) runs in its own
//!    process with a time limit, so a submission that panics, loops forever or writes
//!    outside its memory costs the part it broke and nothing else; the grader says what
//!    happened in plain words and goes on.
//! 4. [`report`] and [`formats`]: the outcome of every rule, the performance index and
//!    the grade, rendered for people and for course tools; [`batch`] does a whole class.
//!
//! The binary `heaplab-grade` ([`cli`]) is what a course's autograder image installs
//! (`cargo install --path crates/grader`); `cargo xtask grade` calls the same [`cli`].

pub mod batch;
pub mod cli;
pub mod formats;
pub mod harness;
pub mod policy;
pub mod process;
pub mod report;

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub use policy::Policy;
pub use report::{GRADE_FORMULA, Outcome, Performance, Report};

/// The region every rule runs with unless the course says otherwise: the suite's default.
pub const REGION: usize = conformance::DEFAULT_REGION;

/// The proptest seed unless the course says otherwise, so a grade is the same on every
/// run; also the seed of the generated traces.
pub const SEED: u64 = 1;

/// How a submission is graded: everything a course may choose, and where the grader
/// finds heaplab and keeps its files.
#[derive(Clone, Debug)]
pub struct Options {
    /// The heaplab source tree whose `conformance` and `trace` crates grade.
    pub heaplab: PathBuf,
    /// Where harnesses are written and built (one target directory for all).
    pub work_dir: PathBuf,
    /// The .rep files of the performance part.
    pub traces: Vec<PathBuf>,
    /// The time limit of one part (one rule; the traces get it once per trace).
    pub timeout: Duration,
    /// Parts run at once.
    pub jobs: usize,
    /// Run the performance part when every rule is kept (CI skips it for submissions
    /// that are meant to fail).
    pub performance: bool,
    /// A performance target: the performance part earns `min(1, P / target)` of its 40
    /// points instead of `P / 100`.
    pub target: Option<f64>,
    /// The region size, in bytes, every rule runs with.
    pub region: usize,
    /// The proptest seed (`PROPTEST_RNG_SEED`) of the rules' random sequences.
    pub seed: u64,
    /// Proptest cases of the random-sequence rule (`PROPTEST_CASES`), or the suite's
    /// default.
    pub cases: Option<u32>,
    /// Which dependencies a submission may have.
    pub policy: Policy,
}

impl Options {
    /// The defaults for the heaplab tree at `heaplab`: its generated traces, a minute
    /// per part, every core, the suite's region, seed 1, only `rawheap` allowed.
    pub fn standard(heaplab: &Path) -> anyhow::Result<Options> {
        let work_dir = heaplab.join("target/grade");
        Ok(Options {
            traces: rep_files(&generated_traces(&work_dir)?)?,
            heaplab: heaplab.to_path_buf(),
            work_dir,
            timeout: Duration::from_secs(60),
            jobs: cores(),
            performance: true,
            target: None,
            region: REGION,
            seed: SEED,
            cases: None,
            policy: Policy::default(),
        })
    }
}

/// The heaplab tree this grader was built from: `HEAPLAB_ROOT` when set, else the
/// workspace the crate was compiled in (which `cargo install --path` leaves in place).
pub fn default_heaplab() -> PathBuf {
    if let Some(root) = std::env::var_os("HEAPLAB_ROOT") {
        return PathBuf::from(root);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// A fresh proptest seed, for a course that wants a new one on every grading run (the
/// report prints it, so a student can replay the run).
pub fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};

    RandomState::new().hash_one(Instant::now())
}

/// The generated traces of the performance part, written on first use: every workload
/// of the trace crate at scale 1 (a few thousand operations each).
fn generated_traces(work_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = work_dir.join("traces");
    if dir.is_dir() && !rep_files(&dir)?.is_empty() {
        return Ok(dir);
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for workload in trace::Workload::ALL {
        let path = dir.join(format!("{}.rep", workload.name()));
        let mut text = Vec::new();
        trace::generate(workload, SEED, 1).write(&mut text)?;
        fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// The `.rep` files of `dir`, sorted.
pub fn rep_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "rep") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no .rep traces in {}", dir.display());
    }
    Ok(files)
}

/// Writes `text` to `path` unless it already holds it, so cargo rebuilds only what changed.
pub fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Grades the crate at `path`.
pub fn grade(path: &Path, options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let folder = path
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let path = path
        .canonicalize()
        .with_context(|| format!("no submission at {}", path.display()))?;
    let submission = policy::read(&path)?;
    let mut report = Report::new(submission.name.clone(), folder, path, options);
    eprintln!("grading {} ({})", report.name, report.path.display());
    report.refused = options.policy.check(&submission, &options.heaplab);
    if !report.refused.is_empty() {
        report.performance = Performance::Skipped("the grade is withheld".into());
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let harness = match harness::build(&submission, options)? {
        Ok(harness) => harness,
        Err(failure) => {
            report.build_failure = Some(failure);
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
    };
    report.compiled = harness.compiled;
    report.rules = process::run_rules(&harness, options);
    report.performance = if !report.lost().is_empty() {
        Performance::Skipped(
            "performance is graded only once every rule is kept (as in the malloc lab, a heap that is not correct scores nothing for speed)".into(),
        )
    } else if !options.performance {
        Performance::Skipped("not asked for".into())
    } else {
        process::run_traces(&harness, options)
    };
    // The parts' output was read; what a part printed is in the report.
    let _ = fs::remove_dir_all(&harness.logs);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
