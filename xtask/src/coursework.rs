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
use crate::grade::{self, Options, Outcome, Report};
use crate::shell::root;

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

/// Where the graded submissions are written.
fn submissions_dir() -> PathBuf {
    grade::grade_dir().join("submissions")
}

/// The reference solution: the template with its answers filled in.
fn write_reference() -> anyhow::Result<PathBuf> {
    let lib = fs::read_to_string(root().join("coursework/reference/lib.rs"))?;
    assignment::write_crate(
        "reference-solution",
        &submissions_dir().join("reference-solution"),
        Some(&lib),
    )
}

/// The broken teaching heap with `flaw`, as a submission crate.
fn write_broken(flaw: &str) -> anyhow::Result<PathBuf> {
    let name = format!("broken-{}", kebab(flaw));
    let lib = format!(
        "//! The conformance crate's teaching heap with the flaw `{flaw}`, as a submission.\n\n\
         /// The heap the grader grades.\n\
         pub type Heap = conformance::teaching::ListHeap<conformance::teaching::{flaw}>;\n"
    );
    assignment::write_crate(&name, &submissions_dir().join(&name), Some(&lib))
}

/// The faulty submission `coursework/faulty/{fault}.rs`, as a submission crate.
fn write_faulty(fault: &str) -> anyhow::Result<PathBuf> {
    let name = format!("faulty-{}", kebab(fault));
    let lib = fs::read_to_string(root().join(format!("coursework/faulty/{fault}.rs")))?;
    assignment::write_crate(&name, &submissions_dir().join(&name), Some(&lib))
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

fn options(timeout: Duration, performance: bool) -> anyhow::Result<Options> {
    Ok(Options {
        timeout,
        performance,
        ..Options::standard()?
    })
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
    let report = grade::grade(&reference, &options(CHECK_TIMEOUT, true)?)?;
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
    for (flaw, expected) in EXPECTED_LOSSES {
        let report = grade::grade(&write_broken(flaw)?, &options(CHECK_TIMEOUT, false)?)?;
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
        let report = grade::grade(&write_faulty(fault)?, &options(timeout, false)?)?;
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
    println!("\n{}", grade::summary_table(&reports));
    println!(
        "    ok: coursework ({:.1} s)",
        started.elapsed().as_secs_f64()
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
        .env("CARGO_TARGET_DIR", grade::grade_dir())
        .env("PROPTEST_RNG_SEED", grade::SEED.to_string())
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
    let options = options(CHECK_TIMEOUT, true)?;
    let mut reports = Vec::new();
    for path in [reference, broken] {
        reports.push(grade::grade(&path, &options)?);
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
        reports.push(grade::grade(&write_faulty(fault)?, &options)?);
    }
    write("coursework-report-loops.md", &reports[3])?;
    fs::write(
        out.join("coursework-batch.md"),
        grade::summary_table(&reports),
    )?;
    let json = serde_json::to_string_pretty(&reports[1].json())?;
    fs::write(out.join("coursework-report-broken.json"), json)?;
    fs::write(
        out.join("coursework-formula.md"),
        format!(
            "`{}`\n\nwith `{}`\n",
            grade::GRADE_FORMULA,
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
