//! A graded submission: what happened to each rule, the performance part, the grade,
//! and the report as Markdown and as the grader's own JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::Options;
use crate::harness::BuildFailure;
use crate::policy::Refusal;

/// The grade and how it is made of the two parts, as printed in every report.
pub const GRADE_FORMULA: &str = "grade = 60 * kept / rules + 40 * P / 100, where P (the malloc lab's performance index) counts only when every rule is kept";

/// How a rule's failure message names the HTML page the conformance suite wrote for it.
pub const FAILURE_PAGE: &str = "failure page: ";

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
        /// The violation, as the suite prints it.
        report: String,
        /// The rules whose scenarios found it.
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

    /// The HTML page the conformance suite wrote for this rule's failure, when its
    /// message names one on a line `failure page: <absolute path>`.
    pub fn failure_page(&self) -> Option<PathBuf> {
        let text = match self {
            Outcome::Broken { report, .. } => report,
            Outcome::Failed(why) => why,
            Outcome::Kept | Outcome::StoppedBy(_) => return None,
        };
        text.lines()
            .find_map(|line| line.trim().strip_prefix(FAILURE_PAGE))
            .map(|path| PathBuf::from(path.trim()))
            .filter(|path| path.is_absolute())
    }

    /// The outcome as the rule table of a report says it (Markdown).
    pub fn summary(&self) -> String {
        match self {
            Outcome::StoppedBy(other) => {
                format!("kept (its scenario stopped when `{other}` broke, counted there)")
            }
            Outcome::Broken { found_by, .. } => {
                format!("**broken** (found by {})", names(found_by))
            }
            Outcome::Failed(why) => format!("**lost**: {why}"),
            Outcome::Kept => "kept".to_owned(),
        }
    }

    /// The heading of a lost rule's section.
    pub fn heading(&self, rule: &str) -> String {
        match self {
            Outcome::Failed(_) => format!("`{rule}` did not finish"),
            _ => format!("`{rule}` is broken"),
        }
    }

    /// What the report says about a lost rule (Markdown): the shortest failure found,
    /// or the rule and what happened to its scenario. `None` for a kept rule.
    pub fn details(&self, rule: &str) -> Option<String> {
        match self {
            Outcome::Broken { report, .. } => Some(format!(
                "The shortest failure found:\n\n```text\n{}\n```\n",
                report.trim_end()
            )),
            Outcome::Failed(why) => {
                let explanation = conformance::rules::explain(rule).unwrap_or_default();
                Some(format!("The rule: {explanation}\n\nWhat happened: {why}\n"))
            }
            Outcome::Kept | Outcome::StoppedBy(_) => None,
        }
    }

    /// The outcome in a few words.
    pub fn status(&self) -> &'static str {
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
    /// Where it is, as the report shows it (inside the heaplab tree: relative to it).
    pub shown_path: PathBuf,
    /// The dependencies the course's policy refuses: when there is one, the grade is
    /// withheld and nothing else is graded.
    pub refused: Vec<Refusal>,
    /// Why it could not be graded at all (it does not build), or `None`.
    pub build_failure: Option<BuildFailure>,
    /// The region size every rule ran with.
    pub region: usize,
    /// The proptest seed the rules ran with.
    pub seed: u64,
    /// The proptest cases of the random-sequence rule, when the course set them.
    pub cases: Option<u32>,
    /// Whether `rawheap::tags` was allowed.
    pub tags: bool,
    /// Every rule of the suite, in order, with what happened to it.
    pub rules: Vec<(&'static str, Outcome)>,
    /// The performance part: the trace tables and summary, or why there is none.
    pub performance: Performance,
    /// The performance target it was graded against, if any.
    pub target: Option<f64>,
    /// How long grading took.
    pub seconds: f64,
    /// Whether grading compiled the harness (the most of a first grading's time), or
    /// found it up to date.
    pub compiled: bool,
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
        /// The trace tables, as the replayer writes them.
        markdown: String,
        /// Mean peak utilization over the traces.
        utilization: f64,
        /// Throughput over all traces, operations per second.
        throughput: f64,
        /// The reference throughput (the system allocator's) of the index.
        reference: f64,
        /// The performance index P.
        score: f64,
        /// Traces replayed without an error.
        correct: u64,
        /// Traces replayed.
        traces: u64,
    },
}

impl Report {
    /// The report of a submission not graded yet, with the settings of `options`.
    pub fn new(name: String, folder: String, path: PathBuf, options: &Options) -> Report {
        let shown_path = options
            .heaplab
            .canonicalize()
            .ok()
            .and_then(|root| path.strip_prefix(root).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.clone());
        Report {
            name,
            folder,
            path,
            shown_path,
            refused: Vec::new(),
            build_failure: None,
            region: options.region,
            seed: options.seed,
            cases: options.cases,
            tags: options.policy.tags,
            rules: Vec::new(),
            performance: Performance::Skipped("the submission does not build".into()),
            target: options.target,
            seconds: 0.0,
            compiled: false,
        }
    }

    /// Whether the grade is withheld (the policy refused a dependency).
    pub fn withheld(&self) -> bool {
        !self.refused.is_empty()
    }

    /// How the rules were run, in one sentence (with what a student needs to replay it).
    pub fn settings(&self) -> String {
        let cases = match self.cases {
            Some(cases) => format!("{cases} proptest cases"),
            None => "the suite's proptest cases".to_owned(),
        };
        let tags = if self.tags {
            ""
        } else {
            " `rawheap::tags` switched off."
        };
        format!(
            "Rules run on a {}-byte region with proptest seed {} and {cases}, each in its own process (replay: `PROPTEST_RNG_SEED={} cargo test`).{tags}",
            self.region, self.seed, self.seed
        )
    }
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
        if self.withheld() || self.build_failure.is_some() || self.rules.is_empty() {
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
            "Submission `{}`, heap type `{}::Heap`. {}\n",
            self.shown_path.display(),
            self.name.replace('-', "_"),
            self.settings(),
        );
        if self.withheld() {
            let _ = writeln!(
                out,
                "## Grade withheld: dependencies the course does not allow\n"
            );
            for refusal in &self.refused {
                let _ = writeln!(out, "- {refusal}");
            }
            let _ = writeln!(
                out,
                "\nNothing was graded. The staff can allow a crate with `--allow CRATE`.\n\nGrade: withheld."
            );
            return out;
        }
        if let Some(failure) = &self.build_failure {
            let rule = match &failure.rule {
                Some(rule) => format!("It breaks a rule of the course: {rule}.\n\n"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "## It does not build\n\n{rule}Nothing could be graded: the harness that runs the suite on `Heap` did not compile. The compiler said:\n\n```text\n{}\n```\n\nGrade: 0 / 100.",
                failure.compiler.trim_end()
            );
            return out;
        }
        self.correctness_text(&mut out);
        self.performance_text(&mut out);
        out.push_str(&self.grade_text());
        out
    }

    /// The grade section: the formula, the target, the figures.
    pub fn grade_text(&self) -> String {
        let target = match self.target {
            Some(target) => format!(
                "\n\nThis assignment has a performance target of P = {target}: the performance part is `40 * min(1, P / {target})`."
            ),
            None => String::new(),
        };
        format!(
            "## Grade\n\n`{GRADE_FORMULA}`{target}\n\nrules kept {} of {}, P = {:.1}{}: **grade {:.1} / 100**\n",
            self.kept(),
            self.rules.len(),
            self.performance_index(),
            if self.lost().is_empty() {
                ""
            } else {
                " (does not count: a rule is lost)"
            },
            self.grade()
        )
    }

    fn correctness_text(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "## Correctness: {} of {} rules kept\n\n| rule | result |\n| --- | --- |",
            self.kept(),
            self.rules.len()
        );
        for (rule, outcome) in &self.rules {
            let _ = writeln!(out, "| `{rule}` | {} |", outcome.summary());
        }
        out.push('\n');
        for (rule, outcome) in &self.rules {
            if let Some(details) = outcome.details(rule) {
                let _ = writeln!(out, "### {}\n\n{details}", outcome.heading(rule));
            }
        }
    }

    /// The performance section (Markdown).
    pub fn performance_text(&self, out: &mut String) {
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
            "build_error": self.build_failure.as_ref().map(|f| &f.compiler),
            "build_rule": self.build_failure.as_ref().and_then(|f| f.rule.as_ref()),
            "refused": self.refused.iter().map(|r| json!({ "dependency": r.dependency, "why": r.why })).collect::<Vec<_>>(),
            "withheld": self.withheld(),
            "region": self.region,
            "seed": self.seed,
            "cases": self.cases,
            "tags": self.tags,
            "rules": rules,
            "kept": self.kept(),
            "lost": self.lost(),
            "performance": performance,
            "grade": if self.withheld() { Value::Null } else { json!(self.grade()) },
            "formula": GRADE_FORMULA,
            "target": self.target,
            "seconds": self.seconds,
        })
    }
}

fn names(rules: &[String]) -> String {
    rules
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use conformance::rules::RULES;

    use super::*;
    use crate::Policy;

    /// Options that need nothing on disk, for reports made by hand.
    pub(crate) fn options() -> Options {
        Options {
            heaplab: crate::default_heaplab(),
            work_dir: PathBuf::from("/nonexistent"),
            traces: Vec::new(),
            timeout: Duration::from_secs(1),
            jobs: 1,
            performance: true,
            target: None,
            region: 4096,
            seed: 7,
            cases: Some(16),
            policy: Policy::default(),
        }
    }

    /// A report that keeps every rule with P = 50.
    pub(crate) fn graded() -> Report {
        let mut report = Report::new("h".into(), "h".into(), PathBuf::from("h"), &options());
        report.rules = RULES.iter().map(|r| (r.name, Outcome::Kept)).collect();
        report.performance = Performance::Measured {
            markdown: "| trace | U |\n".into(),
            utilization: 0.8,
            throughput: 1.0,
            reference: 1.0,
            score: 50.0,
            correct: 1,
            traces: 1,
        };
        report
    }

    #[test]
    fn the_grade_gates_performance_on_correctness() {
        let mut report = graded();
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
        report.build_failure = Some(BuildFailure::new("error[E0412]".into(), false));
        assert_eq!(report.grade(), 0.0);
    }

    #[test]
    fn a_refused_dependency_withholds_the_grade_and_is_its_own_line() {
        let mut report = graded();
        report.refused = vec![
            Refusal {
                dependency: "tlsf".into(),
                why: "not allowed".into(),
            },
            Refusal {
                dependency: "talc".into(),
                why: "not allowed".into(),
            },
        ];
        assert!(report.withheld());
        assert_eq!(report.grade(), 0.0);
        let text = report.text();
        assert!(
            text.contains("\n- `tlsf`: not allowed\n- `talc`: not allowed\n"),
            "{text}"
        );
        assert!(text.contains("Grade: withheld."), "{text}");
        assert_eq!(report.json()["grade"], Value::Null);
    }

    #[test]
    fn the_report_prints_the_seed_a_student_replays_with() {
        let text = graded().text();
        assert!(
            text.contains("proptest seed 7 and 16 proptest cases")
                && text.contains("PROPTEST_RNG_SEED=7 cargo test"),
            "{text}"
        );
        assert!(text.contains("4096-byte region"), "{text}");
    }

    #[test]
    fn a_failure_page_is_found_only_when_the_message_names_one() {
        let with_page = Outcome::Broken {
            report: "Heap broke the rule `x`\n  failure page: /tmp/heaplab/x.html\n  the rule: ..."
                .into(),
            found_by: vec!["x".into()],
        };
        assert_eq!(
            with_page.failure_page(),
            Some(PathBuf::from("/tmp/heaplab/x.html"))
        );
        let without = Outcome::Broken {
            report: "Heap broke the rule `x`".into(),
            found_by: vec!["x".into()],
        };
        assert_eq!(without.failure_page(), None);
        assert_eq!(Outcome::Kept.failure_page(), None);
    }
}
