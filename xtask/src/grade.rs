//! `cargo xtask grade PATH`: grades a student's heap the way the malloc lab's driver
//! does, with the conformance suite for correctness.
//!
//! The grader never links the submission into itself. It writes a small *harness* crate
//! (under `target/grade/harness`) that depends on the submission by path, on the
//! conformance suite and on the trace crate, and whose program runs one part of the
//! grading named on its command line (one rule, or the traces) and prints the result as
//! JSON. Each part runs in its own process with a time limit, so a submission that
//! panics, loops forever or writes outside its memory costs the part it broke and
//! nothing else: the grader reports each in plain words and goes on. Every harness is
//! built into one target directory (`target/grade`), so the suite and its dependencies
//! are compiled once for all submissions.
//!
//! A submission is a crate whose root exports a type called `Heap` that implements
//! `rawheap::RawHeap` (`pub struct Heap` or `pub type Heap = ...;`), as the template of
//! `cargo xtask new-assignment` does.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use conformance::rules::{PANIC_RULE, RULES, SERVES_RULE};
use serde_json::{Value, json};

use crate::shell::root;

/// The region every rule runs with: the suite's default.
pub const REGION: usize = conformance::DEFAULT_REGION;

/// The proptest seed of the random-sequence rule, so a grade is the same on every run.
pub const SEED: u64 = 1;

/// The grade and how it is made of the two parts, as printed in every report.
pub const GRADE_FORMULA: &str = "grade = 60 * kept / rules + 40 * P / 100, where P (the malloc lab's performance index) counts only when every rule is kept";

/// Grades a submission (`cargo xtask grade`).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The submission: a crate directory whose root exports `Heap`. With --all, a folder
    /// whose subfolders are submissions.
    pub path: PathBuf,
    /// Grade every crate in the folder PATH, one report each, and a summary table.
    #[arg(long)]
    pub all: bool,
    /// With --all: write each report to DIR/NAME.md (or .json) besides the summary.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Directory of .rep traces for the performance part [default: the generated ones].
    #[arg(long, value_name = "DIR")]
    pub traces: Option<PathBuf>,
    /// Print the report as JSON, for course tooling.
    #[arg(long)]
    pub json: bool,
    /// Seconds each part (one rule, or all the traces) may run before it is stopped.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Parts run at once [default: the number of cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// A performance target: the performance part earns min(1, P / TARGET) of its 40
    /// points instead of P / 100 (for an assignment with a target to reach).
    #[arg(long, value_name = "P")]
    pub target: Option<f64>,
}

/// `cargo xtask grade`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let options = Options::from_args(args)?;
    if args.all {
        return grade_folder(&args.path, args.out.as_deref(), args.json, &options);
    }
    let report = grade(&args.path, &options)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// How a submission is graded.
#[derive(Clone, Debug)]
pub struct Options {
    /// The .rep files of the performance part.
    pub traces: Vec<PathBuf>,
    /// The time limit of one part.
    pub timeout: Duration,
    /// Parts run at once.
    pub jobs: usize,
    /// Run the performance part when every rule is kept (CI skips it for submissions
    /// that are meant to fail).
    pub performance: bool,
    /// The performance target, if the assignment has one (see [`Args::target`]).
    pub target: Option<f64>,
}

impl Options {
    fn from_args(args: &Args) -> anyhow::Result<Options> {
        let dir = match &args.traces {
            Some(dir) => dir.clone(),
            None => generated_traces()?,
        };
        Ok(Options {
            traces: rep_files(&dir)?,
            timeout: Duration::from_secs(args.timeout.max(1)),
            jobs: args.jobs.unwrap_or_else(cores).max(1),
            performance: true,
            target: args.target.filter(|t| *t > 0.0),
        })
    }

    /// The defaults: generated traces, a minute per part, every core.
    pub fn standard() -> anyhow::Result<Options> {
        Ok(Options {
            traces: rep_files(&generated_traces()?)?,
            timeout: Duration::from_secs(60),
            jobs: cores(),
            performance: true,
            target: None,
        })
    }
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// Where the grader builds and keeps its files: one target directory for every harness.
pub fn grade_dir() -> PathBuf {
    root().join("target/grade")
}

/// The generated traces of the performance part, written on first use: every workload
/// of the trace crate at scale 1 (a few thousand operations each).
fn generated_traces() -> anyhow::Result<PathBuf> {
    let dir = grade_dir().join("traces");
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
fn rep_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
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

/// What happened to one rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Its scenario ran to the end and found nothing.
    Kept,
    /// Its scenario stopped at a break of another rule, which is counted there.
    StoppedBy(String),
    /// Broken: the report of the shortest violation found, and the rules whose
    /// scenarios found it.
    Broken {
        report: String,
        found_by: Vec<String>,
    },
    /// Its scenario did not finish: in plain words, why (a crash, a time-out).
    Failed(String),
}

impl Outcome {
    /// Whether the rule counts as kept in the grade.
    pub fn kept(&self) -> bool {
        matches!(self, Outcome::Kept | Outcome::StoppedBy(_))
    }

    fn status(&self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::StoppedBy(_) => "kept, not fully checked",
            Outcome::Broken { .. } => "broken",
            Outcome::Failed(_) => "lost: did not finish",
        }
    }
}

/// A graded submission.
#[derive(Clone, Debug)]
pub struct Report {
    /// The crate's package name.
    pub name: String,
    /// The name of the folder it was given as (a student's, in a folder of submissions,
    /// where every crate may have the template's package name).
    pub folder: String,
    /// Where it is.
    pub path: PathBuf,
    /// Why it could not be graded at all (it does not build), or `None`.
    pub build_error: Option<String>,
    /// Every rule of the suite, in order, with what happened to it.
    pub rules: Vec<(&'static str, Outcome)>,
    /// The performance part: the trace tables and summary, or why there is none.
    pub performance: Performance,
    /// The performance target it was graded against, if any.
    pub target: Option<f64>,
    /// How long grading took.
    pub seconds: f64,
}

/// The performance part of a report.
#[derive(Clone, Debug)]
pub enum Performance {
    /// Not run, and why.
    Skipped(String),
    /// The replay did not finish: why, in plain words.
    Failed(String),
    /// The trace tables (Markdown) and the numbers of the summary.
    Measured {
        markdown: String,
        utilization: f64,
        throughput: f64,
        reference: f64,
        score: f64,
        correct: u64,
        traces: u64,
    },
}

impl Report {
    /// The submission as a summary row names it: its folder, and its package name when
    /// that differs.
    pub fn label(&self) -> String {
        if self.folder == self.name || self.folder.is_empty() {
            self.name.clone()
        } else {
            format!("{} ({})", self.folder, self.name)
        }
    }

    /// Rules kept.
    pub fn kept(&self) -> usize {
        self.rules.iter().filter(|(_, o)| o.kept()).count()
    }

    /// The rules lost, in the suite's order.
    pub fn lost(&self) -> Vec<&'static str> {
        self.rules
            .iter()
            .filter(|(_, o)| !o.kept())
            .map(|(rule, _)| *rule)
            .collect()
    }

    /// The malloc lab's performance index P, or 0 when it does not count.
    pub fn performance_index(&self) -> f64 {
        match self.performance {
            Performance::Measured { score, .. } if self.lost().is_empty() => score,
            _ => 0.0,
        }
    }

    /// The share of the performance part earned: P / 100, or min(1, P / target).
    pub fn performance_share(&self) -> f64 {
        let index = self.performance_index();
        match self.target {
            Some(target) => (index / target).min(1.0),
            None => index / 100.0,
        }
    }

    /// The grade out of 100, [`GRADE_FORMULA`] (with `min(1, P / target)` for `P / 100`
    /// when there is a target).
    pub fn grade(&self) -> f64 {
        if self.build_error.is_some() || self.rules.is_empty() {
            return 0.0;
        }
        60.0 * self.kept() as f64 / self.rules.len() as f64 + 40.0 * self.performance_share()
    }

    /// The report as text (Markdown).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Grade report: {}\n", self.name);
        let _ = writeln!(
            out,
            "Submission `{}`, heap type `{}::Heap`. Rules run on a {REGION}-byte region with proptest seed {SEED}, each in its own process.\n",
            shown_path(&self.path).display(),
            self.name.replace('-', "_"),
        );
        if let Some(error) = &self.build_error {
            let _ = writeln!(
                out,
                "## It does not build\n\nNothing could be graded: the harness that runs the suite on `Heap` did not compile. The compiler said:\n\n```text\n{}\n```\n\nGrade: 0 / 100.",
                error.trim_end()
            );
            return out;
        }
        self.correctness_text(&mut out);
        self.performance_text(&mut out);
        let target = match self.target {
            Some(target) => format!(
                "\n\nThis assignment has a performance target of P = {target}: the performance part is `40 * min(1, P / {target})`."
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "## Grade\n\n`{GRADE_FORMULA}`{target}\n\nrules kept {} of {}, P = {:.1}{}: **grade {:.1} / 100**",
            self.kept(),
            self.rules.len(),
            self.performance_index(),
            if self.lost().is_empty() {
                ""
            } else {
                " (does not count: a rule is lost)"
            },
            self.grade()
        );
        out
    }

    fn correctness_text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Correctness: {} of {} rules kept\n\n| rule | result |\n| --- | --- |",
            self.kept(),
            self.rules.len()
        );
        for (rule, outcome) in &self.rules {
            let detail = match outcome {
                Outcome::StoppedBy(other) => {
                    format!("kept (its scenario stopped when `{other}` broke, counted there)")
                }
                Outcome::Broken { found_by, .. } => {
                    format!("**broken** (found by {})", names(found_by))
                }
                Outcome::Failed(why) => format!("**lost**: {why}"),
                Outcome::Kept => "kept".to_owned(),
            };
            let _ = writeln!(out, "| `{rule}` | {detail} |");
        }
        out.push('\n');
        for (rule, outcome) in &self.rules {
            match outcome {
                Outcome::Broken { report, .. } => {
                    let _ = writeln!(
                        out,
                        "### `{rule}` is broken\n\nThe shortest failure found:\n\n```text\n{}\n```\n",
                        report.trim_end()
                    );
                }
                Outcome::Failed(why) => {
                    let explanation = conformance::rules::explain(rule).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "### `{rule}` did not finish\n\nThe rule: {explanation}\n\nWhat happened: {why}\n"
                    );
                }
                Outcome::Kept | Outcome::StoppedBy(_) => {}
            }
        }
    }

    fn performance_text(&self, out: &mut String) {
        out.push_str("## Performance\n\n");
        match &self.performance {
            Performance::Skipped(why) => {
                let _ = writeln!(out, "Not measured: {why}\n");
            }
            Performance::Failed(why) => {
                let _ = writeln!(out, "The replay of the traces did not finish: {why}\n");
            }
            Performance::Measured { markdown, .. } => {
                out.push_str(markdown);
                out.push('\n');
            }
        }
    }

    /// The report as JSON.
    pub fn json(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|(rule, outcome)| {
                let mut entry = json!({
                    "rule": rule,
                    "explanation": conformance::rules::explain(rule),
                    "kept": outcome.kept(),
                    "status": outcome.status(),
                });
                match outcome {
                    Outcome::StoppedBy(other) => entry["stopped_by"] = json!(other),
                    Outcome::Broken { report, found_by } => {
                        entry["violation"] = json!(report);
                        entry["found_by"] = json!(found_by);
                    }
                    Outcome::Failed(why) => entry["failure"] = json!(why),
                    Outcome::Kept => {}
                }
                entry
            })
            .collect();
        let performance = match &self.performance {
            Performance::Skipped(why) => json!({ "skipped": why }),
            Performance::Failed(why) => json!({ "failed": why }),
            Performance::Measured {
                utilization,
                throughput,
                reference,
                score,
                correct,
                traces,
                ..
            } => json!({
                "utilization": utilization,
                "throughput_ops_per_sec": throughput,
                "reference_ops_per_sec": reference,
                "performance_index": score,
                "correct_traces": correct,
                "traces": traces,
                "formula": trace::replay::SCORE_FORMULA,
            }),
        };
        json!({
            "submission": self.name,
            "folder": self.folder,
            "path": self.path,
            "build_error": self.build_error,
            "rules": rules,
            "kept": self.kept(),
            "lost": self.lost(),
            "performance": performance,
            "grade": self.grade(),
            "formula": GRADE_FORMULA,
            "target": self.target,
            "seconds": self.seconds,
        })
    }
}

/// `path` relative to the workspace root when it is inside it (as the book shows it),
/// else as it is.
fn shown_path(path: &Path) -> &Path {
    root()
        .canonicalize()
        .ok()
        .and_then(|repo| path.strip_prefix(repo).ok())
        .unwrap_or(path)
}

fn names(rules: &[String]) -> String {
    rules
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ")
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
    let name = package_name(&path)?;
    let mut report = Report {
        name,
        folder,
        path,
        build_error: None,
        rules: Vec::new(),
        performance: Performance::Skipped("the submission does not build".into()),
        target: options.target,
        seconds: 0.0,
    };
    eprintln!("grading {} ({})", report.name, report.path.display());
    let harness = match build_harness(&report.name, &report.path)? {
        Ok(harness) => harness,
        Err(errors) => {
            report.build_error = Some(errors);
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
    };
    report.rules = run_rules(&harness, options);
    report.performance = if !report.lost().is_empty() {
        Performance::Skipped(
            "performance is graded only once every rule is kept (as in the malloc lab, a heap that is not correct scores nothing for speed)".into(),
        )
    } else if !options.performance {
        Performance::Skipped("not asked for".into())
    } else {
        run_traces(&harness, options)
    };
    // The parts' output was read; what a part printed is in the report.
    let _ = fs::remove_dir_all(&harness.logs);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The package name in `dir/Cargo.toml`.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .with_context(|| format!("{} is not a crate: no Cargo.toml", dir.display()))?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value.trim_start().trim_start_matches('=').trim();
            return Ok(value.trim_matches('"').to_owned());
        }
    }
    bail!("{} names no package", manifest.display())
}

/// The harness program's source: `rule NAME REGION` runs one rule, `traces FILE...`
/// replays traces; each prints one JSON object.
fn harness_source() -> String {
    let arms: String = RULES
        .iter()
        .map(|rule| {
            format!(
                "        \"{0}\" => conformance::rules::{0}::<Heap>(region),\n",
                rule.name
            )
        })
        .collect();
    HARNESS_MAIN.replace("        // RULES\n", &arms)
}

const HARNESS_MAIN: &str = r#"//! Written by `cargo xtask grade`: runs one part of the grading on the submission's
//! `Heap` and prints the result as one JSON object.

use serde_json::{Value, json};
use trace::report::{MeasureOptions, Run, TraceReport, measure};

type Heap = student::Heap;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("rule") if args.len() == 3 => match args[2].parse() {
            Ok(region) => rule(&args[1], region),
            Err(_) => json!({ "error": "the region is not a number" }),
        },
        Some("traces") => traces(&args[1..]),
        _ => json!({ "error": "usage: grade-harness rule NAME REGION | traces FILE..." }),
    };
    println!("{result}");
}

fn rule(name: &str, region: usize) -> Value {
    let result = match name {
        // RULES
        _ => return json!({ "error": format!("no rule called `{name}`") }),
    };
    match result {
        Ok(()) => json!({ "rule": name, "kept": true }),
        Err(violation) => json!({
            "rule": name,
            "kept": false,
            "broken": violation.rule,
            "ops": violation.ops.as_ref().map_or(usize::MAX, Vec::len),
            "report": violation.to_string(),
        }),
    }
}

fn traces(files: &[String]) -> Value {
    let options = MeasureOptions::default();
    let mut reports = Vec::new();
    for file in files {
        eprintln!("replaying {file}");
        let trace = match trace::Trace::read(file) {
            Ok(trace) => trace,
            Err(error) => return json!({ "error": format!("{file}: {error}") }),
        };
        let name = std::path::Path::new(file)
            .file_stem()
            .map_or(file.clone(), |stem| stem.to_string_lossy().into_owned());
        let system = match trace::replay::time_system_replay(&trace, options.align) {
            Ok(system) => system,
            Err(error) => return json!({ "error": format!("{file}: {error}") }),
        };
        let mut report = TraceReport::new(&name, &trace, system);
        report.measurements.push(measure::<Heap>("submission", &trace, &options));
        reports.push(report);
    }
    let run = Run::new(reports);
    json!({ "markdown": run.markdown(), "run": run })
}
"#;

/// A built harness: the program to run, and the folder its parts write their output
/// to (this grader's own, so that two graders running at once never mix their files).
struct Harness {
    exe: PathBuf,
    logs: PathBuf,
    /// Where the suite writes the submission's failure pages (every submission's heap
    /// is called `Heap`, so each gets a folder of its own).
    pages: PathBuf,
}

/// The harness's package name for the submission `name` at `path`: one per submission
/// folder, so grading it again rebuilds nothing when nothing changed, and two
/// submissions never share a compiled harness.
fn harness_name(name: &str, path: &Path) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};

    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    format!("grade-{name}-{:08x}", hasher.finish() as u32)
}

/// Writes the harness for the crate `name` at `path` and builds it. `Ok(Err(errors))`
/// when the submission does not compile (or has no `Heap` that is a `RawHeap`).
fn build_harness(name: &str, path: &Path) -> anyhow::Result<Result<Harness, String>> {
    let harness = harness_name(name, path);
    let dir = grade_dir().join("harness").join(&harness);
    fs::create_dir_all(dir.join("src"))?;
    let crates = root().join("crates");
    let manifest = format!(
        r#"[package]
name = "{harness}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
student = {{ package = "{name}", path = {student:?} }}
conformance = {{ path = {conformance:?} }}
trace = {{ path = {trace:?} }}
serde_json = "1"

# Optimised, for the throughput the performance part measures; arithmetic overflow in
# the submission panics (and is reported) instead of wrapping silently.
[profile.release]
overflow-checks = true
incremental = true
codegen-units = 16

[workspace]
"#,
        student = path.display().to_string(),
        conformance = crates.join("conformance").display().to_string(),
        trace = crates.join("trace").display().to_string(),
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    write_if_changed(&dir.join("src/main.rs"), &harness_source())?;
    // The workspace's versions of the shared dependencies: nothing to resolve, and the
    // compiled suite is reused from one submission to the next.
    if !dir.join("Cargo.lock").exists() {
        fs::copy(root().join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", grade_dir())
        .stderr(Stdio::piped())
        .output()
        .context("running cargo build for the harness")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.trim_start().starts_with("Compiling"))
            .collect();
        return Ok(Err(errors.join("\n")));
    }
    let exe = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["target"]["name"] == harness.as_str())
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .context("cargo built the harness but named no executable")?;
    let logs = grade_dir()
        .join("runs")
        .join(format!("{harness}-{}", std::process::id()));
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let pages = grade_dir().join("failures").join(&harness);
    Ok(Ok(Harness { exe, logs, pages }))
}

/// Writes `text` to `path` unless it already holds it, so cargo rebuilds only what changed.
pub fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<()> {
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// What one run of the harness gave.
enum Part {
    /// The JSON it printed.
    Answer(Value),
    /// It did not answer: why, in plain words.
    Failed(String),
}

/// Runs the harness with `args` in a child process, stopped after `timeout`.
fn run_part(harness: &Harness, args: &[String], timeout: Duration, tag: &str) -> Part {
    let logs = &harness.logs;
    // Files, not pipes: a child that prints a lot never blocks on a full pipe.
    let out_path = logs.join(format!("{tag}.out"));
    let err_path = logs.join(format!("{tag}.err"));
    let files = fs::File::create(&out_path).and_then(|out| Ok((out, fs::File::create(&err_path)?)));
    let (out, err) = match files {
        Ok(files) => files,
        Err(error) => return Part::Failed(format!("could not create log files: {error}")),
    };
    let child = Command::new(&harness.exe)
        .args(args)
        .env("PROPTEST_RNG_SEED", SEED.to_string())
        .env("RUST_BACKTRACE", "0")
        .env(conformance::FAILURE_DIR_VAR, &harness.pages)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => return Part::Failed(format!("could not start the harness: {error}")),
    };
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Part::Failed(format!(
                    "it ran out of time: still running after {} s, so it was stopped. The heap probably loops forever (a search that never ends, a list that links back to itself).",
                    timeout.as_secs()
                ));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(error) => return Part::Failed(format!("could not wait for the harness: {error}")),
        }
    };
    let stdout = fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = fs::read_to_string(&err_path).unwrap_or_default();
    if status.success()
        && let Some(answer) = stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str::<Value>(line).ok())
    {
        return match answer["error"].as_str() {
            Some(error) => Part::Failed(format!("the harness refused: {error}")),
            None => Part::Answer(answer),
        };
    }
    Part::Failed(crash_in_words(status, &stderr))
}

// ANCHOR: crash_in_words
/// A child that died, in plain words.
fn crash_in_words(status: std::process::ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt;

    let last_lines = |n: usize| {
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join(" / ")
    };
    if stderr.contains("has overflowed its stack") {
        return "it overflowed its stack (a recursion that does not end, or a huge local array), and the process was aborted.".into();
    }
    match status.signal() {
        Some(11) => "it crashed with a segmentation fault (SIGSEGV): the heap read or wrote memory it does not own, outside its region or through a pointer that is not one of its blocks.".into(),
        Some(7) => "it crashed with a bus error (SIGBUS): the heap touched memory at an address that cannot be accessed, often a pointer computed from a wrong offset.".into(),
        Some(6) => format!(
            "it was aborted (SIGABRT): usually the system allocator found its own bookkeeping overwritten, which means the heap wrote outside its region. Last words: {}",
            last_lines(2)
        ),
        Some(4) => "it hit an illegal instruction (SIGILL): undefined behaviour reached an `unreachable` the compiler inserted.".into(),
        Some(signal) => format!("it was killed by signal {signal}. Last words: {}", last_lines(2)),
        None if status.code() == Some(101) => format!(
            "it panicked outside the suite's reach (the suite catches panics in heap calls): {}",
            last_lines(2)
        ),
        None => format!(
            "it exited with {status} without an answer. Last words: {}",
            last_lines(2)
        ),
    }
}
// ANCHOR_END: crash_in_words

/// Runs every rule in its own process, `options.jobs` at a time, and sorts out what
/// each rule's fate is.
fn run_rules(harness: &Harness, options: &Options) -> Vec<(&'static str, Outcome)> {
    let answers: Vec<Mutex<Option<Part>>> = RULES.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..options.jobs.min(RULES.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(rule) = RULES.get(i) else { break };
                    let args = ["rule".to_owned(), rule.name.to_owned(), REGION.to_string()];
                    let part = run_part(harness, &args, options.timeout, rule.name);
                    if let Ok(mut slot) = answers[i].lock() {
                        *slot = Some(part);
                    }
                }
            });
        }
    });
    let parts: Vec<Part> = answers
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .ok()
                .flatten()
                .unwrap_or_else(|| Part::Failed("the grader lost this part's answer".into()))
        })
        .collect();
    judge(&parts)
}

// ANCHOR: judge
/// Each rule's outcome from every scenario's answer: a rule is broken when any scenario
/// found it broken (the shortest failure is shown), lost when its own scenario did not
/// finish (or a panic stopped it in a heap that does not serve modest requests), kept
/// otherwise.
fn judge(parts: &[Part]) -> Vec<(&'static str, Outcome)> {
    // A panic counts against one rule; the rules whose scenarios it stopped count as
    // kept only for a heap that serves modest requests (one that does not, a template
    // full of `todo!()`, must not score them), as `cargo test` judges them too.
    let serves = RULES.iter().zip(parts).any(|(rule, part)| {
        rule.name == SERVES_RULE && matches!(part, Part::Answer(answer) if answer["kept"] == true)
    });
    RULES
        .iter()
        .zip(parts)
        .map(|(rule, own)| {
            let mut found: Vec<(u64, String, String)> = Vec::new();
            for (scenario, part) in RULES.iter().zip(parts) {
                if let Part::Answer(answer) = part
                    && answer["broken"] == rule.name
                {
                    found.push((
                        answer["ops"].as_u64().unwrap_or(u64::MAX),
                        scenario.name.to_owned(),
                        answer["report"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
            let outcome = if let Some((_, _, report)) = found.iter().min_by_key(|f| f.0) {
                Outcome::Broken {
                    report: report.clone(),
                    found_by: found.iter().map(|f| f.1.clone()).collect(),
                }
            } else {
                match own {
                    Part::Failed(why) => Outcome::Failed(why.clone()),
                    Part::Answer(answer) => match answer["broken"].as_str() {
                        Some(PANIC_RULE) if !serves => Outcome::Failed(format!(
                            "not judged: its scenario was stopped by a panic (counted against `{PANIC_RULE}`), and the heap does not keep `{SERVES_RULE}` either, so nothing vouches for this rule."
                        )),
                        Some(other) => Outcome::StoppedBy(other.to_owned()),
                        None => Outcome::Kept,
                    },
                }
            };
            (rule.name, outcome)
        })
        .collect()
}
// ANCHOR_END: judge

/// The performance part: every trace in one process, with the time limit of a part per
/// trace.
fn run_traces(harness: &Harness, options: &Options) -> Performance {
    let mut args = vec!["traces".to_owned()];
    args.extend(options.traces.iter().map(|p| p.display().to_string()));
    let timeout = options.timeout * options.traces.len() as u32;
    let answer = match run_part(harness, &args, timeout, "traces") {
        Part::Answer(answer) => answer,
        Part::Failed(why) => return Performance::Failed(why),
    };
    let summary = &answer["run"]["summary"][0];
    let number = |value: &Value| value.as_f64().unwrap_or(0.0);
    Performance::Measured {
        markdown: answer["markdown"].as_str().unwrap_or_default().to_owned(),
        utilization: number(&summary["utilization"]),
        throughput: number(&summary["throughput"]),
        reference: number(&answer["run"]["reference_ops_per_sec"]),
        score: number(&summary["score"]),
        correct: summary["correct"].as_u64().unwrap_or(0),
        traces: summary["traces"].as_u64().unwrap_or(0),
    }
}

/// `--all`: grades every crate directly inside `folder`, prints a summary table, and
/// writes each report to `out` when asked.
fn grade_folder(
    folder: &Path,
    out: Option<&Path>,
    json: bool,
    options: &Options,
) -> anyhow::Result<()> {
    let mut crates: Vec<PathBuf> = fs::read_dir(folder)
        .with_context(|| format!("reading {}", folder.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.join("Cargo.toml").is_file())
        .collect();
    crates.sort();
    if crates.is_empty() {
        bail!(
            "no crates (folders with a Cargo.toml) in {}",
            folder.display()
        );
    }
    if let Some(out) = out {
        fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let mut reports = Vec::new();
    for path in &crates {
        let report = match grade(path, options) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("could not grade {}: {error:#}", path.display());
                continue;
            }
        };
        if let Some(out) = out {
            let (file, text) = if json {
                (
                    format!("{}.json", report.folder),
                    serde_json::to_string_pretty(&report.json())?,
                )
            } else {
                (format!("{}.md", report.folder), report.text())
            };
            fs::write(out.join(file), text)?;
        }
        reports.push(report);
    }
    if json {
        let all: Vec<Value> = reports.iter().map(Report::json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print!("{}", summary_table(&reports));
    }
    Ok(())
}

/// One row per submission: rules kept, P, grade, and what was lost.
pub fn summary_table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| submission | rules kept | P | grade | lost |\n| --- | ---: | ---: | ---: | --- |\n",
    );
    for report in reports {
        let lost = if report.build_error.is_some() {
            "does not build".to_owned()
        } else {
            let lost: BTreeSet<&str> = report.lost().into_iter().collect();
            lost.into_iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {}/{} | {:.1} | {:.1} | {} |",
            report.label(),
            report.kept(),
            RULES.len(),
            report.performance_index(),
            report.grade(),
            lost
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    fn kept(rule: &str) -> Part {
        Part::Answer(json!({ "rule": rule, "kept": true }))
    }

    fn broke(rule: &str, broken: &str, ops: u64) -> Part {
        Part::Answer(json!({
            "rule": rule,
            "kept": false,
            "broken": broken,
            "ops": ops,
            "report": format!("{broken} found by {rule}"),
        }))
    }

    /// The rules judged lost, in the suite's order.
    fn lost(judged: &[(&'static str, Outcome)]) -> Vec<&'static str> {
        judged
            .iter()
            .filter(|(_, o)| !o.kept())
            .map(|(r, _)| *r)
            .collect()
    }

    #[test]
    fn a_bug_is_counted_once_against_the_rule_it_breaks() {
        let mut parts: Vec<Part> = RULES.iter().map(|r| kept(r.name)).collect();
        let overlap = RULES
            .iter()
            .position(|r| r.name == "blocks_never_overlap")
            .unwrap();
        parts[0] = broke(RULES[0].name, "blocks_never_overlap", 5);
        parts[overlap] = broke("blocks_never_overlap", "blocks_never_overlap", 2);
        let judged = judge(&parts);
        let lost = lost(&judged);
        assert_eq!(lost, ["blocks_never_overlap"]);
        assert_eq!(
            judged[0].1,
            Outcome::StoppedBy("blocks_never_overlap".into())
        );
        match &judged[overlap].1 {
            Outcome::Broken { report, found_by } => {
                assert_eq!(report, "blocks_never_overlap found by blocks_never_overlap");
                assert_eq!(found_by.len(), 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_panic_met_by_many_scenarios_loses_one_rule() {
        let panic = |rule: &str| broke(rule, PANIC_RULE, 40);
        let mut parts: Vec<Part> = RULES.iter().map(|r| kept(r.name)).collect();
        for (i, rule) in RULES.iter().enumerate().skip(8) {
            parts[i] = panic(rule.name);
        }
        let judged = judge(&parts);
        let lost = lost(&judged);
        assert_eq!(lost, [PANIC_RULE]);
        assert_eq!(judged[9].1, Outcome::StoppedBy(PANIC_RULE.into()));
    }

    #[test]
    fn a_heap_that_panics_on_modest_requests_keeps_nothing_a_panic_stopped() {
        let parts: Vec<Part> = RULES.iter().map(|r| broke(r.name, PANIC_RULE, 1)).collect();
        let judged = judge(&parts);
        assert!(judged.iter().all(|(_, o)| !o.kept()), "{judged:?}");
        let serves = RULES.iter().position(|r| r.name == SERVES_RULE).unwrap();
        assert!(
            matches!(&judged[serves].1, Outcome::Failed(why) if why.starts_with("not judged")),
            "{:?}",
            judged[serves].1
        );
    }

    #[test]
    fn a_scenario_that_does_not_finish_loses_its_own_rule() {
        let mut parts: Vec<Part> = RULES.iter().map(|r| kept(r.name)).collect();
        parts[3] = Part::Failed("it ran out of time".into());
        let judged = judge(&parts);
        assert_eq!(judged[3].1, Outcome::Failed("it ran out of time".into()));
        assert_eq!(judged.iter().filter(|(_, o)| !o.kept()).count(), 1);
    }

    #[test]
    fn crashes_are_told_in_plain_words() {
        let signalled = |signal| ExitStatus::from_raw(signal);
        assert!(crash_in_words(signalled(11), "").contains("segmentation fault (SIGSEGV)"));
        assert!(
            crash_in_words(signalled(6), "free(): invalid size").contains("free(): invalid size")
        );
        let overflow =
            "thread 'main' has overflowed its stack\nfatal runtime error: stack overflow";
        assert!(crash_in_words(signalled(6), overflow).contains("overflowed its stack"));
        let panicked = "thread 'main' panicked at src/lib.rs:3:5:\nout of memory";
        let words = crash_in_words(ExitStatus::from_raw(101 << 8), panicked);
        assert!(
            words.contains("panicked") && words.contains("out of memory"),
            "{words}"
        );
    }

    #[test]
    fn the_harness_runs_every_rule_by_name() {
        let source = harness_source();
        for rule in RULES {
            let arm = format!(
                "\"{0}\" => conformance::rules::{0}::<Heap>(region)",
                rule.name
            );
            assert!(source.contains(&arm), "{}", rule.name);
        }
        assert!(!source.contains("// RULES"));
    }

    #[test]
    fn the_grade_gates_performance_on_correctness() {
        let measured = Performance::Measured {
            markdown: String::new(),
            utilization: 0.8,
            throughput: 1.0,
            reference: 1.0,
            score: 50.0,
            correct: 1,
            traces: 1,
        };
        let mut report = Report {
            name: "h".into(),
            folder: "h".into(),
            path: PathBuf::from("h"),
            build_error: None,
            rules: RULES.iter().map(|r| (r.name, Outcome::Kept)).collect(),
            performance: measured,
            target: None,
            seconds: 0.0,
        };
        assert_eq!(report.grade(), 60.0 + 0.4 * 50.0);
        report.target = Some(40.0);
        assert_eq!(
            report.grade(),
            100.0,
            "a target reached earns the whole part"
        );
        report.target = Some(100.0);
        assert_eq!(report.grade(), 60.0 + 0.4 * 50.0);
        report.rules[0].1 = Outcome::Failed("crashed".into());
        let share = 60.0 * (RULES.len() - 1) as f64 / RULES.len() as f64;
        assert_eq!(report.performance_index(), 0.0);
        assert_eq!(report.grade(), share);
        report.build_error = Some("error[E0412]".into());
        assert_eq!(report.grade(), 0.0);
    }

    #[test]
    fn the_package_name_is_read_from_the_package_table() {
        let dir = std::env::temp_dir().join(format!("grade-name-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let manifest = "[workspace]\n\n[package]\nversion = \"0.1.0\"\nname = \"my-heap\"\n\n[dependencies]\nname = \"x\"\n";
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        let name = package_name(&dir);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(name.unwrap(), "my-heap");
        assert!(package_name(Path::new("/nonexistent")).is_err());
    }
}
