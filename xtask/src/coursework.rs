//! The coursework kit's own check (a step of `cargo xtask ci`) and the book's sample
//! reports (written by `cargo xtask figures`).
//!
//! The check makes a fresh assignment in a temporary folder and shows that it compiles
//! and that its tests fail with "write this next"; fills the template with the
//! reference solution and shows that its tests pass and that the grader gives it every
//! rule; grades each broken teaching heap of the conformance crate as a submission and
//! shows that it loses exactly the rules [`EXPECTED_LOSSES`] names for its flaw; and
//! grades three faulty submissions (one panics, one loops forever, one writes outside
//! its memory) and shows that the grader survives each and says what happened.
//!
//! The graded submissions are written to `target/grade/submissions`, the same folder on
//! every run, so that a harness whose submission did not change is not rebuilt.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::assignment;
use crate::shell::root;
use grader::{Options, Outcome, Report};

/// The rules each broken teaching heap loses when graded: the rule named for its bug in
/// the conformance crate's `tests/broken_heaps.rs`, and the other rules the same bug
/// breaks in the grader's count (a rule is lost when any scenario finds it broken; a
/// panic counts against `methods_never_panic` alone).
pub const EXPECTED_LOSSES: &[(&str, &[&str])] = &[
    ("IgnoresAlignment", &["alignment_is_honoured"]),
    // Aligned regions hide it; the rule that runs every rule in an unaligned region
    // finds it, and it is alignment that breaks.
    ("AssumesAlignedRegion", &["alignment_is_honoured"]),
    ("IgnoresUsedFlag", &["blocks_never_overlap"]),
    // The free rest starts inside the block: a later block overlaps it, and walk shows
    // the block shorter than `usable_size` says.
    (
        "OffByOneSplit",
        &["usable_size_is_truthful", "blocks_never_overlap"],
    ),
    (
        "LeaksAlignmentPadding",
        &["freeing_everything_restores_the_heap"],
    ),
    ("ForgetsToCoalesce", &["check_passes_after_every_operation"]),
    ("ReallocForgetsToCopy", &["reallocate_keeps_contents"]),
    ("ReallocFreesFirst", &["failed_reallocate_keeps_the_block"]),
    ("TrustsFreshMemory", &["allocate_zeroed_gives_zeros"]),
    ("StatsForgetResize", &["stats_match_the_model"]),
    // A panic is charged to one rule, whichever scenario meets it; the rules whose
    // scenarios it stopped count as kept, since the heap serves modest requests.
    ("PanicsOnExhaustion", &["methods_never_panic"]),
    (
        "WalkHidesFirstChunk",
        &["walk_shows_exactly_the_live_blocks"],
    ),
    // One granule too many: a block at the region's end claims bytes past it.
    (
        "UsableSizeLies",
        &["blocks_lie_inside_the_region", "usable_size_is_truthful"],
    ),
    ("HighWaterFalls", &["high_water_covers_every_block"]),
    ("NoAlignLimit", &["absurd_layouts_are_refused"]),
    // Caught by the guard bytes after a region whose length is 8 past a multiple of 16.
    ("RoundsUpTheEnd", &["writes_stay_inside_the_region"]),
];

/// The faulty submissions in `coursework/faulty`, the words the grader must use for
/// what each does, and the time limit of a part: short for the one that loops, which
/// loses that much time on each rule it is stuck in.
const FAULTY: &[(&str, &str, Duration)] = &[
    ("panics", "the heap panicked", CHECK_TIMEOUT),
    ("loops", "it ran out of time", Duration::from_secs(3)),
    ("out_of_bounds", "segmentation fault", CHECK_TIMEOUT),
];

/// The time limit of a part in the check: ample for any rule of a correct heap on a
/// busy machine; only the submission that loops ever waits for it (with a shorter one).
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the grader builds and keeps its files: one target directory for every harness.
fn grade_dir() -> PathBuf {
    root().join("target/grade")
}

/// Where the graded submissions are written.
fn submissions_dir() -> PathBuf {
    grade_dir().join("submissions")
}

/// The reference solution: the template with its answers filled in.
fn write_reference() -> anyhow::Result<PathBuf> {
    let lib = fs::read_to_string(root().join("coursework/reference/lib.rs"))?;
    assignment::write_crate(
        "reference-solution",
        &submissions_dir().join("reference-solution"),
        Some(&lib),
        &[],
    )
}

/// The `src/lib.rs` of the broken teaching heap with `flaw`.
fn broken_lib(flaw: &str) -> String {
    format!(
        "//! The conformance crate's teaching heap with the flaw `{flaw}`, as a submission.\n\n\
         /// The heap the grader grades.\n\
         pub type Heap = conformance::teaching::ListHeap<conformance::teaching::{flaw}>;\n"
    )
}

/// The broken teaching heap with `flaw`, as a submission crate.
fn write_broken(flaw: &str) -> anyhow::Result<PathBuf> {
    let name = format!("broken-{}", kebab(flaw));
    let lib = broken_lib(flaw);
    assignment::write_crate(
        &name,
        &submissions_dir().join(&name),
        Some(&lib),
        &["conformance"],
    )
}

/// The faulty submission `coursework/faulty/{fault}.rs`, as a submission crate.
fn write_faulty(fault: &str) -> anyhow::Result<PathBuf> {
    let name = format!("faulty-{}", kebab(fault));
    let lib = fs::read_to_string(root().join(format!("coursework/faulty/{fault}.rs")))?;
    assignment::write_crate(
        &name,
        &submissions_dir().join(&name),
        Some(&lib),
        &["conformance"],
    )
}

/// `OffByOneSplit` as `off-by-one-split`; `out_of_bounds` as `out-of-bounds`.
fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(if c == '_' {
            '-'
        } else {
            c.to_ascii_lowercase()
        });
    }
    out
}

/// The grader's options for the check; `allow` names the crates allowed besides
/// `rawheap` (the teaching heaps live in `conformance`).
fn options(timeout: Duration, performance: bool, allow: &[&str]) -> anyhow::Result<Options> {
    let mut options = Options {
        timeout,
        performance,
        ..Options::standard(&root())?
    };
    options.policy.allow = allow.iter().map(|a| a.to_string()).collect();
    Ok(options)
}

/// The `src/lib.rs` of a submission that hands in heaplab's own TLSF heap.
const REEXPORT_LIB: &str = "//! Hands in heaplab's TLSF heap instead of a heap of its own.\n\n\
                            /// The heap the grader grades.\n\
                            pub type Heap = tlsf::Tlsf;\n";

/// A submission that hands in heaplab's own TLSF heap as its `Heap`.
fn write_reexport() -> anyhow::Result<PathBuf> {
    let name = "reexported-tlsf";
    assignment::write_crate(
        name,
        &submissions_dir().join(name),
        Some(REEXPORT_LIB),
        &["tlsf"],
    )
}

/// The coursework kit's check, or a class graded in one batch.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Instead of the check: write N generated submissions (a mix of the reference
    /// solution, the broken teaching heaps, the faulty submissions and a re-exported
    /// heaplab allocator) to target/grade/class and grade them with --all, writing the
    /// reports, the summary and the leaderboard to target/grade/class-reports.
    #[arg(long, value_name = "N")]
    pub class: Option<usize>,
    /// With --class: seconds each rule may run (the submission that loops waits this
    /// long on each rule it is stuck in).
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
    /// With --class: parts run at once [default: the number of cores].
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// `cargo xtask coursework`.
pub fn run(args: &Args) -> anyhow::Result<()> {
    match args.class {
        Some(count) => class(count, args),
        None => check(),
    }
}

/// What one generated student handed in.
#[derive(Clone, Copy, Debug)]
enum Handed {
    /// The reference solution.
    Correct,
    /// A broken teaching heap.
    Broken(&'static str),
    /// A faulty submission of `coursework/faulty`.
    Faulty(&'static str),
    /// heaplab's TLSF, re-exported.
    Reexport,
}

/// The mix of a generated class, in the order the students are numbered: every kind
/// once, then again.
fn class_mix() -> Vec<Handed> {
    let mut mix = vec![Handed::Correct];
    for (i, (flaw, _)) in EXPECTED_LOSSES.iter().enumerate() {
        mix.push(Handed::Broken(flaw));
        // A correct heap every fifth submission, and the faulty ones spread out.
        if i % 5 == 4 {
            mix.push(Handed::Correct);
        }
        if let Some((fault, _, _)) = FAULTY.get(i / 5).filter(|_| i % 5 == 2) {
            mix.push(Handed::Faulty(fault));
        }
    }
    mix.push(Handed::Reexport);
    mix
}

/// Writes `count` submissions to `dir` as `student-NN`, each a crate with the
/// template's package name (as students' crates are).
fn write_class(count: usize, dir: &Path) -> anyhow::Result<()> {
    let mix = class_mix();
    let reference = fs::read_to_string(root().join("coursework/reference/lib.rs"))?;
    for i in 0..count {
        let folder = dir.join(format!("student-{:02}", i + 1));
        let (lib, uses): (String, &[&str]) = match mix[i % mix.len()] {
            Handed::Correct => (reference.clone(), &[]),
            Handed::Broken(flaw) => (broken_lib(flaw), &["conformance"]),
            Handed::Faulty(fault) => (
                fs::read_to_string(root().join(format!("coursework/faulty/{fault}.rs")))?,
                &["conformance"],
            ),
            Handed::Reexport => (REEXPORT_LIB.to_owned(), &["tlsf"]),
        };
        assignment::write_crate("assignment", &folder, Some(&lib), uses)?;
    }
    Ok(())
}

/// `--class N`: a generated class graded as staff would, `--all` with the teaching
/// heaps' crate allowed (they live in `conformance`).
fn class(count: usize, args: &Args) -> anyhow::Result<()> {
    let dir = grade_dir().join("class");
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    write_class(count, &dir)?;
    let mut options = options(Duration::from_secs(args.timeout), true, &["conformance"])?;
    if let Some(jobs) = args.jobs {
        options.jobs = jobs.max(1);
    }
    let out = grade_dir().join("class-reports");
    let batch = grader::batch::grade_folder(
        &dir,
        &options,
        Some(&out),
        grader::formats::Format::Markdown,
    )?;
    print!("{}", grader::batch::summary_table(&batch.reports));
    println!(
        "\n{}\nreports, summary.md and leaderboard.html in {}",
        batch.timing(),
        out.display()
    );
    ensure!(
        batch.errors.is_empty(),
        "some submissions could not be graded: {:?}",
        batch.errors
    );
    Ok(())
}

/// The CI step; see the module documentation.
pub fn check() -> anyhow::Result<()> {
    let started = Instant::now();
    println!(
        "\n==> coursework: a fresh assignment, the reference solution, broken and faulty submissions graded"
    );
    check_fresh_assignment()?;
    let reference = write_reference()?;
    cargo_test(&reference, true)?;
    let report = grader::grade(&reference, &options(CHECK_TIMEOUT, true, &[])?)?;
    ensure!(
        report.lost().is_empty(),
        "the reference solution lost rules:\n{}",
        report.text()
    );
    ensure!(
        report.performance_index() > 0.0,
        "the reference solution has no performance index:\n{}",
        report.text()
    );
    println!(
        "    reference solution: {} of {} rules, P = {:.1}, grade {:.1}",
        report.kept(),
        report.rules.len(),
        report.performance_index(),
        report.grade()
    );
    let mut reports = vec![report];
    check_policy(&reference)?;
    for (flaw, expected) in EXPECTED_LOSSES {
        let options = options(CHECK_TIMEOUT, false, &["conformance"])?;
        let report = grader::grade(&write_broken(flaw)?, &options)?;
        let mut lost = report.lost();
        let mut expected = expected.to_vec();
        lost.sort_unstable();
        expected.sort_unstable();
        ensure!(
            lost == expected,
            "ListHeap<{flaw}> lost {lost:?}, not {expected:?}:\n{}",
            report.text()
        );
        println!("    ListHeap<{flaw}>: lost exactly {}", lost.join(", "));
        reports.push(report);
    }
    for &(fault, words, timeout) in FAULTY {
        let options = options(timeout, false, &["conformance"])?;
        let report = grader::grade(&write_faulty(fault)?, &options)?;
        let said = report
            .rules
            .iter()
            .find_map(|(rule, outcome)| match outcome {
                Outcome::Broken { report, .. } if report.contains(words) => Some(*rule),
                Outcome::Failed(why) if why.contains(words) => Some(*rule),
                _ => None,
            });
        let Some(rule) = said else {
            bail!(
                "the grader did not say \"{words}\" for the faulty submission {fault}:\n{}",
                report.text()
            );
        };
        println!(
            "    faulty {fault}: graded ({} of {} rules), \"{words}\" said for `{rule}`",
            report.kept(),
            report.rules.len()
        );
        reports.push(report);
    }
    println!("\n{}", grader::batch::summary_table(&reports));
    println!(
        "    ok: coursework ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The course's policy holds: a re-exported heaplab allocator is refused and its grade
/// withheld, and the reference solution (which builds on `rawheap::tags`) graded with
/// tags switched off does not build, and the report names the rule.
fn check_policy(reference: &Path) -> anyhow::Result<()> {
    let report = grader::grade(&write_reexport()?, &options(CHECK_TIMEOUT, false, &[])?)?;
    let refused: Vec<&str> = report
        .refused
        .iter()
        .map(|r| r.dependency.as_str())
        .collect();
    ensure!(
        report.withheld() && refused == ["tlsf"],
        "a re-exported tlsf should be refused:\n{}",
        report.text()
    );
    println!(
        "    re-exported tlsf: grade withheld ({})",
        report.refused[0]
    );
    let mut no_tags = options(CHECK_TIMEOUT, false, &[])?;
    no_tags.policy.tags = false;
    let report = grader::grade(reference, &no_tags)?;
    let rule = report
        .build_failure
        .as_ref()
        .and_then(|f| f.rule.as_deref());
    ensure!(
        rule == Some(grader::harness::TAGS_RULE),
        "the reference solution graded with --no-tags should fail on rawheap::tags:\n{}",
        report.text()
    );
    println!(
        "    reference solution with --no-tags: does not build, and the report says {}",
        grader::harness::TAGS_RULE
    );
    Ok(())
}

/// A fresh assignment in a temporary folder compiles, and every test fails with the
/// message that says which part to write first.
fn check_fresh_assignment() -> anyhow::Result<()> {
    let temp = std::env::temp_dir().join(format!("heaplab-assignment-{}", std::process::id()));
    if temp.exists() {
        fs::remove_dir_all(&temp)?;
    }
    let dir = assignment::create("fresh-assignment", &temp.join("fresh-assignment"))?;
    let result = cargo_test(&dir, false);
    fs::remove_dir_all(&temp)?;
    let output = result?;
    let failed: usize = output
        .lines()
        .filter_map(|line| line.strip_prefix("test result: FAILED. 0 passed; "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
        .sum();
    let told = output.matches("write this next: part 1 of 6, new:").count();
    ensure!(
        failed == conformance::rules::RULES.len() + 1 && told >= failed,
        "a fresh assignment's tests should all fail with \"write this next\" ({failed} failed, {told} messages):\n{output}"
    );
    println!(
        "    fresh assignment: compiles; all {failed} tests fail with \"write this next: part 1 of 6, new: ...\""
    );
    Ok(())
}

/// `cargo test` in the crate `dir`; `pass` says whether it must pass or fail (having
/// compiled). Returns what it printed.
fn cargo_test(dir: &Path, pass: bool) -> anyhow::Result<String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--no-fail-fast"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", grade_dir())
        .env("PROPTEST_RNG_SEED", grader::SEED.to_string())
        .output()
        .with_context(|| format!("running cargo test in {}", dir.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        !text.contains("error[E") && !text.contains("could not compile"),
        "{} does not compile:\n{text}",
        dir.display()
    );
    ensure!(
        output.status.success() == pass,
        "cargo test in {} should {}:\n{text}",
        dir.display(),
        if pass { "pass" } else { "fail" }
    );
    Ok(text)
}

/// The book's sample reports, from real runs of the grader: the reference solution's
/// full report, a broken heap's, and the summary table of a batch run over a folder
/// holding the reference and a few broken and faulty submissions.
pub fn figures(out: &Path) -> anyhow::Result<()> {
    let reference = write_reference()?;
    let broken = write_broken("OffByOneSplit")?;
    let options = options(CHECK_TIMEOUT, true, &["conformance"])?;
    let mut reports = Vec::new();
    for path in [reference, broken] {
        reports.push(grader::grade(&path, &options)?);
    }
    let write = |file: &str, report: &Report| {
        fs::write(out.join(file), demote(&report.text())).with_context(|| format!("writing {file}"))
    };
    write("coursework-report-reference.md", &reports[0])?;
    write("coursework-report-broken.md", &reports[1])?;
    for &(fault, _, timeout) in FAULTY {
        let options = Options {
            timeout,
            ..options.clone()
        };
        reports.push(grader::grade(&write_faulty(fault)?, &options)?);
    }
    write("coursework-report-loops.md", &reports[3])?;
    fs::write(
        out.join("coursework-batch.md"),
        grader::batch::summary_table(&reports),
    )?;
    // What grading costs per submission, from this run: each report's own time, its
    // harness's build included when it was not already built.
    let seconds: Vec<f64> = reports.iter().map(|r| r.seconds).collect();
    let total: f64 = seconds.iter().sum();
    let slowest = seconds.iter().copied().fold(0.0, f64::max);
    fs::write(
        out.join("coursework-batch-time.md"),
        format!(
            "{} submissions graded one after another, {} parts at once on {} cores: {total:.0} s in all, **{:.1} s per submission** (the slowest, {slowest:.0} s); {} of the {} had their harness compiled in this run, the others found it up to date from an earlier one.\n",
            reports.len(),
            options.jobs,
            std::thread::available_parallelism().map_or(1, usize::from),
            total / reports.len() as f64,
            reports.iter().filter(|r| r.compiled).count(),
            reports.len(),
        ),
    )?;
    let json = serde_json::to_string_pretty(&reports[1].json())?;
    fs::write(out.join("coursework-report-broken.json"), json)?;
    fs::write(
        out.join("coursework-formula.md"),
        format!(
            "`{}`\n\nwith `{}`\n",
            grader::GRADE_FORMULA,
            trace::replay::SCORE_FORMULA
        ),
    )?;
    Ok(())
}

/// A report's headings two levels down, to sit under a chapter's own headings; lines
/// inside code blocks (`#[test]`) are left alone.
fn demote(text: &str) -> String {
    let mut in_code = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if line.starts_with('#') && !in_code {
            out.push_str("##");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use conformance::teaching::Flaw;

    use super::*;

    #[test]
    fn a_generated_class_holds_every_kind_of_submission() {
        let mix = class_mix();
        let count = |f: fn(&Handed) -> bool| mix.iter().filter(|h| f(h)).count();
        assert_eq!(
            count(|h| matches!(h, Handed::Broken(_))),
            EXPECTED_LOSSES.len()
        );
        assert_eq!(count(|h| matches!(h, Handed::Faulty(_))), FAULTY.len());
        assert!(count(|h| matches!(h, Handed::Correct)) >= 3);
        assert_eq!(count(|h| matches!(h, Handed::Reexport)), 1);
    }

    #[test]
    fn type_and_file_names_become_crate_names() {
        assert_eq!(kebab("OffByOneSplit"), "off-by-one-split");
        assert_eq!(kebab("out_of_bounds"), "out-of-bounds");
        assert_eq!(kebab("loops"), "loops");
    }

    #[test]
    fn headings_move_down_but_code_stays_as_it_is() {
        let report = "# Grade\n\n```text\n#[test]\nfn regression() {}\n```\n## Part\n";
        assert_eq!(
            demote(report),
            "### Grade\n\n```text\n#[test]\nfn regression() {}\n```\n#### Part\n"
        );
    }

    #[test]
    fn every_flaw_has_its_expected_losses_and_they_are_rules() {
        let mut names: Vec<&str> = EXPECTED_LOSSES.iter().map(|(flaw, _)| *flaw).collect();
        let mut all: Vec<&str> = Flaw::ALL.iter().map(|flaw| flaw.name()).collect();
        names.sort_unstable();
        all.sort_unstable();
        assert_eq!(names, all);
        for (flaw, rules) in EXPECTED_LOSSES {
            for rule in *rules {
                assert!(
                    conformance::rules::explain(rule).is_some(),
                    "{flaw}: {rule}"
                );
            }
        }
    }
}
