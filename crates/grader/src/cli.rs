//! The command line of `heaplab-grade` (and of `cargo xtask grade`, which calls [`run`]),
//! and the course's configuration file.
//!
//! A course makes its choices without editing heaplab: on the command line, or in a
//! `grader.toml` given with `--config` (the command line wins where both say):
//!
//! ```toml
//! region = 65536        # bytes of the region every rule runs with
//! seed = "fresh"        # or a number: the proptest seed ("fresh": a new one per run)
//! cases = 256           # proptest cases of the random-sequence rule
//! traces = "traces/"    # the course's .rep traces (relative to this file)
//! target = 75.0         # a performance target
//! timeout = 30          # seconds per rule
//! allow = ["libm"]      # crates allowed besides rawheap
//! tags = false          # switch rawheap::tags off
//! format = "gradescope" # how the report is written
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::formats::{self, Format};
use crate::{Options, Report, batch, grade, rep_files};

/// Grades a submission, or a folder of them.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The submission: a crate directory whose root exports `Heap`. With --all, a folder
    /// whose subfolders are submissions.
    pub path: PathBuf,
    /// Grade every crate in the folder PATH, one report each, a summary table and an
    /// anonymised leaderboard.
    #[arg(long)]
    pub all: bool,
    /// With --all: write each report (in --format, and as HTML), summary.md,
    /// leaderboard.html and pseudonyms.csv to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// How the report is printed [default: markdown].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Also write the report as an HTML page to FILE; each lost rule links to the
    /// failure page the suite wrote for it.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// The course's configuration file (grader.toml); the options below override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of .rep traces for the performance part [default: the generated ones].
    #[arg(long, value_name = "DIR")]
    pub traces: Option<PathBuf>,
    /// Seconds each part (one rule; the traces get it once per trace) may run before it
    /// is stopped [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Parts run at once [default: the number of cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// A performance target: the performance part earns min(1, P / TARGET) of its 40
    /// points instead of P / 100.
    #[arg(long, value_name = "P")]
    pub target: Option<f64>,
    /// The region size in bytes every rule runs with [default: the suite's].
    #[arg(long, value_name = "BYTES")]
    pub region: Option<usize>,
    /// The proptest seed, or `fresh` for a new one on every run (the report prints it,
    /// so a student can replay the run) [default: 1].
    #[arg(long)]
    pub seed: Option<Seed>,
    /// Proptest cases of the random-sequence rule [default: the suite's].
    #[arg(long)]
    pub cases: Option<u32>,
    /// Allow a dependency besides rawheap (repeatable).
    #[arg(long, value_name = "CRATE")]
    pub allow: Vec<String>,
    /// Switch rawheap::tags off: a submission that uses it does not build, and the
    /// report says it broke this rule.
    #[arg(long)]
    pub no_tags: bool,
    /// Exit with status 1 (after printing the report) when the grade is below GRADE or
    /// withheld: a pass/fail check for CI and GitHub Classroom (60: every rule kept).
    #[arg(long, value_name = "GRADE")]
    pub fail_under: Option<f64>,
    /// The heaplab source tree whose suite grades [default: $HEAPLAB_ROOT, else the
    /// tree the grader was built from].
    #[arg(long, value_name = "DIR")]
    pub heaplab: Option<PathBuf>,
}

/// A proptest seed: a number, or a fresh one per run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seed {
    /// This seed.
    Fixed(u64),
    /// A new seed on every run.
    Fresh,
}

impl std::str::FromStr for Seed {
    type Err = String;

    fn from_str(text: &str) -> Result<Seed, String> {
        if text == "fresh" {
            return Ok(Seed::Fresh);
        }
        text.parse()
            .map(Seed::Fixed)
            .map_err(|_| format!("`{text}` is neither a number nor `fresh`"))
    }
}

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Seed, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(seed) => Ok(Seed::Fixed(seed)),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A course's `grader.toml`: every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseConfig {
    /// Region size in bytes.
    pub region: Option<usize>,
    /// Proptest seed, a number or "fresh".
    pub seed: Option<Seed>,
    /// Proptest cases.
    pub cases: Option<u32>,
    /// Directory of .rep traces, relative to the file.
    pub traces: Option<PathBuf>,
    /// Performance target.
    pub target: Option<f64>,
    /// Seconds per part.
    pub timeout: Option<u64>,
    /// Parts run at once.
    pub jobs: Option<usize>,
    /// Crates allowed besides rawheap.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Whether rawheap::tags may be used.
    pub tags: Option<bool>,
    /// How the report is printed.
    pub format: Option<Format>,
}

impl CourseConfig {
    /// Reads `path`; relative paths in it are taken from its folder.
    pub fn read(path: &Path) -> anyhow::Result<CourseConfig> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: CourseConfig =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        if let (Some(traces), Some(folder)) = (&config.traces, path.parent()) {
            config.traces = Some(folder.join(traces));
        }
        Ok(config)
    }
}

/// The options of a grading run: the defaults, then the course's file, then the flags.
pub fn options(args: &Args) -> anyhow::Result<(Options, Format)> {
    let config = match &args.config {
        Some(path) => CourseConfig::read(path)?,
        None => CourseConfig::default(),
    };
    let heaplab = args.heaplab.clone().unwrap_or_else(crate::default_heaplab);
    if !heaplab.join("crates/conformance/Cargo.toml").is_file() {
        bail!(
            "{} is not a heaplab tree (no crates/conformance): give it with --heaplab or HEAPLAB_ROOT",
            heaplab.display()
        );
    }
    // Absolute: the harness, elsewhere, names its crates by this path.
    let heaplab = heaplab.canonicalize()?;
    let mut options = Options::standard(&heaplab)?;
    if let Some(dir) = args.traces.as_ref().or(config.traces.as_ref()) {
        options.traces = rep_files(dir)?;
    }
    if let Some(timeout) = args.timeout.or(config.timeout) {
        options.timeout = Duration::from_secs(timeout.max(1));
    }
    if let Some(jobs) = args.jobs.or(config.jobs) {
        options.jobs = jobs.max(1);
    }
    options.target = args.target.or(config.target).filter(|t| *t > 0.0);
    if let Some(region) = args.region.or(config.region) {
        options.region = region;
    }
    options.seed = match args.seed.or(config.seed) {
        Some(Seed::Fixed(seed)) => seed,
        Some(Seed::Fresh) => crate::fresh_seed(),
        None => crate::SEED,
    };
    options.cases = args.cases.or(config.cases);
    options.policy.allow = config.allow.clone();
    options.policy.allow.extend(args.allow.iter().cloned());
    options.policy.tags = !args.no_tags && config.tags.unwrap_or(true);
    let format = args.format.or(config.format).unwrap_or(Format::Markdown);
    Ok((options, format))
}

/// Grades as `args` say and prints the report (or, with --all, the summary).
pub fn run(args: &Args) -> anyhow::Result<()> {
    let (options, format) = options(args)?;
    if args.all {
        if matches!(format, Format::Gradescope | Format::Junit) && args.out.is_none() {
            bail!("--all --format {format:?} writes one file per submission: give --out DIR");
        }
        let batch = batch::grade_folder(&args.path, &options, args.out.as_deref(), format)?;
        if format == Format::Json {
            let all: Vec<serde_json::Value> = batch.reports.iter().map(Report::json).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        } else {
            print!("{}", batch::summary_table(&batch.reports));
            println!("\n{}", batch.timing());
        }
        return Ok(());
    }
    let report = grade(&args.path, &options)?;
    if let Some(file) = &args.html {
        fs::write(file, formats::html(&report))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    print!("{}", format.render(&report));
    if let Some(threshold) = args.fail_under
        && (report.withheld() || report.grade() < threshold)
    {
        eprintln!(
            "grade {:.1} is below {threshold}{}",
            report.grade(),
            if report.withheld() { " (withheld)" } else { "" }
        );
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn options_of(argv: &[&str]) -> (Options, Format) {
        let mut full = vec!["heaplab-grade", "submission"];
        full.extend_from_slice(argv);
        options(&Cli::try_parse_from(full).unwrap().args).unwrap()
    }

    #[test]
    fn a_course_file_sets_every_choice_and_flags_override_it() {
        let dir = std::env::temp_dir().join(format!("grader-config-{}", std::process::id()));
        let traces = dir.join("traces");
        fs::create_dir_all(&traces).unwrap();
        fs::write(traces.join("one.rep"), "").unwrap();
        let config = dir.join("grader.toml");
        fs::write(
            &config,
            "region = 8192\nseed = 42\ncases = 9\ntraces = \"traces\"\ntarget = 75.0\ntimeout = 7\njobs = 1\nallow = [\"libm\"]\ntags = false\nformat = \"gradescope\"\n",
        )
        .unwrap();
        let path = config.to_str().unwrap();
        let (options, format) = options_of(&["--config", path]);
        assert_eq!(options.region, 8192);
        assert_eq!(options.seed, 42);
        assert_eq!(options.cases, Some(9));
        assert_eq!(options.traces, [traces.join("one.rep")]);
        assert_eq!(options.target, Some(75.0));
        assert_eq!(options.timeout, Duration::from_secs(7));
        assert_eq!(options.jobs, 1);
        assert_eq!(options.policy.allow, ["libm"]);
        assert!(!options.policy.tags);
        assert_eq!(format, Format::Gradescope);
        let (options, format) = options_of(&[
            "--config", path, "--region", "4096", "--seed", "3", "--allow", "talc", "--format",
            "junit",
        ]);
        assert_eq!((options.region, options.seed), (4096, 3));
        assert_eq!(options.policy.allow, ["libm", "talc"]);
        assert_eq!(format, Format::Junit);
        fs::write(&config, "regoin = 1\n").unwrap();
        let typo = Cli::try_parse_from(["g", "s", "--config", path]).unwrap();
        assert!(
            super::options(&typo.args).is_err(),
            "an unknown key is an error"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fresh_seed_is_drawn_on_every_run_and_the_default_is_fixed() {
        let (first, _) = options_of(&["--seed", "fresh"]);
        let (second, _) = options_of(&["--seed", "fresh"]);
        assert_ne!(first.seed, second.seed);
        assert_eq!(options_of(&[]).0.seed, crate::SEED);
        assert!("twelve".parse::<Seed>().is_err());
    }
}
