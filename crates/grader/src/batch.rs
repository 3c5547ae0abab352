//! Grading a class: every submission in a folder, a summary table for the staff, and
//! an anonymised leaderboard page for the students, from the same run.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use conformance::rules::RULES;

use crate::formats::{self, Format, xml};
use crate::{Options, Report, grade};

/// A graded class.
pub struct Batch {
    /// One report per submission, in the folder's order.
    pub reports: Vec<Report>,
    /// Folders that could not be graded at all, and why.
    pub errors: Vec<(PathBuf, String)>,
    /// How long the whole run took, in seconds.
    pub seconds: f64,
    /// The parts run at once.
    pub jobs: usize,
}

impl Batch {
    /// The run's timing in one sentence.
    pub fn timing(&self) -> String {
        let count = self.reports.len().max(1);
        format!(
            "{} submissions graded in {:.0} s with {} parts at once: {:.1} s per submission ({} harnesses compiled in this run).",
            self.reports.len(),
            self.seconds,
            self.jobs,
            self.seconds / count as f64,
            self.reports.iter().filter(|r| r.compiled).count()
        )
    }
}

/// The crates directly inside `folder`, sorted.
pub fn submissions(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
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
    Ok(crates)
}

/// Grades every crate directly inside `folder`, one after another (each runs its rules
/// on `options.jobs` cores). With `out`, writes there each report in `format` and as
/// HTML (`FOLDER.md`, `FOLDER.html`, ...), the summary (`summary.md`), the leaderboard
/// (`leaderboard.html`) and which pseudonym is whose (`pseudonyms.csv`, for the staff).
pub fn grade_folder(
    folder: &Path,
    options: &Options,
    out: Option<&Path>,
    format: Format,
) -> anyhow::Result<Batch> {
    let started = Instant::now();
    let crates = submissions(folder)?;
    if let Some(out) = out {
        fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let mut batch = Batch {
        reports: Vec::new(),
        errors: Vec::new(),
        seconds: 0.0,
        jobs: options.jobs,
    };
    for path in &crates {
        let report = match grade(path, options) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("could not grade {}: {error:#}", path.display());
                batch.errors.push((path.clone(), format!("{error:#}")));
                continue;
            }
        };
        if let Some(out) = out {
            let file = out.join(format!("{}.{}", report.folder, format.extension()));
            fs::write(&file, format.render(&report))
                .with_context(|| format!("writing {}", file.display()))?;
            let page = out.join(format!("{}.html", report.folder));
            fs::write(&page, formats::html(&report))
                .with_context(|| format!("writing {}", page.display()))?;
        }
        batch.reports.push(report);
    }
    batch.seconds = started.elapsed().as_secs_f64();
    if let Some(out) = out {
        let salt = crate::fresh_seed();
        let summary = format!("{}\n{}\n", summary_table(&batch.reports), batch.timing());
        fs::write(out.join("summary.md"), summary)?;
        fs::write(
            out.join("leaderboard.html"),
            leaderboard(&batch.reports, salt),
        )?;
        let mut csv = String::from("folder,pseudonym\n");
        for report in &batch.reports {
            let _ = writeln!(csv, "{},{}", report.folder, pseudonym(&report.folder, salt));
        }
        fs::write(out.join("pseudonyms.csv"), csv)?;
    }
    Ok(batch)
}

/// Rules kept as a table shows them: none were run when the grade is withheld.
fn shown_kept(report: &Report) -> String {
    if report.withheld() {
        "not run".to_owned()
    } else {
        format!("{}/{}", report.kept(), RULES.len())
    }
}

/// The grade as a table shows it: withheld, or out of 100.
fn shown_grade(report: &Report) -> String {
    if report.withheld() {
        "withheld".to_owned()
    } else {
        format!("{:.1}", report.grade())
    }
}

/// One row per submission: rules kept, P, grade, and what was lost.
pub fn summary_table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| submission | rules kept | P | grade | lost |\n| --- | ---: | ---: | ---: | --- |\n",
    );
    for report in reports {
        let lost = if report.withheld() {
            let refused: BTreeSet<&str> = report
                .refused
                .iter()
                .map(|r| r.dependency.as_str())
                .collect();
            let refused: Vec<String> = refused.iter().map(|d| format!("`{d}`")).collect();
            format!("grade withheld: depends on {}", refused.join(", "))
        } else if let Some(failure) = &report.build_failure {
            match &failure.rule {
                Some(_) => "does not build: uses `rawheap::tags`, switched off".to_owned(),
                None => "does not build".to_owned(),
            }
        } else {
            let lost: BTreeSet<&str> = report.lost().into_iter().collect();
            lost.into_iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {} | {} |",
            report.label(),
            shown_kept(report),
            report.performance_index(),
            shown_grade(report),
            lost
        );
    }
    out
}

/// A stable name for `folder` within one run (`salt`), that does not tell who it is.
pub fn pseudonym(folder: &str, salt: u64) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};

    let mut hasher = DefaultHasher::new();
    salt.hash(&mut hasher);
    folder.hash(&mut hasher);
    format!("heap-{:06x}", hasher.finish() & 0xff_ffff)
}

/// The anonymised leaderboard: every graded submission by its pseudonym, best grade
/// first (withheld ones last), with its rules kept, P and grade.
pub fn leaderboard(reports: &[Report], salt: u64) -> String {
    let mut ranked: Vec<&Report> = reports.iter().collect();
    ranked.sort_by(|a, b| {
        a.withheld()
            .cmp(&b.withheld())
            .then(b.grade().total_cmp(&a.grade()))
            .then(b.performance_index().total_cmp(&a.performance_index()))
    });
    let mut body = format!(
        "<h1>Leaderboard</h1>\n<p>{} submissions, each under a pseudonym (your staff tell you yours). {}</p>\n<table>\n<tr><th>rank</th><th>submission</th><th>rules kept</th><th>P</th><th>grade</th></tr>\n",
        reports.len(),
        xml(crate::GRADE_FORMULA)
    );
    for (rank, report) in ranked.iter().enumerate() {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td></tr>",
            rank + 1,
            pseudonym(&report.folder, salt),
            shown_kept(report),
            report.performance_index(),
            shown_grade(report)
        );
    }
    body.push_str("</table>\n");
    formats::page("Leaderboard", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Refusal;
    use crate::report::Outcome;
    use crate::report::tests::graded;

    fn class() -> Vec<Report> {
        let mut best = graded();
        best.folder = "alice-smith".into();
        let mut lost = graded();
        lost.folder = "bob-jones".into();
        lost.rules[0].1 = Outcome::Failed("crashed".into());
        let mut refused = graded();
        refused.folder = "carol-white".into();
        refused.refused = vec![Refusal {
            dependency: "tlsf".into(),
            why: "not allowed".into(),
        }];
        vec![refused, lost, best]
    }

    #[test]
    fn the_leaderboard_ranks_by_grade_and_names_no_one() {
        let page = leaderboard(&class(), 99);
        for name in ["alice", "bob", "carol", "smith"] {
            assert!(!page.contains(name), "{name} in the leaderboard");
        }
        let rows: Vec<&str> = page.lines().filter(|l| l.starts_with("<tr><td>")).collect();
        assert_eq!(rows.len(), 3);
        assert!(
            rows[0].contains(&pseudonym("alice-smith", 99)),
            "{}",
            rows[0]
        );
        assert!(rows[1].contains(&pseudonym("bob-jones", 99)), "{}", rows[1]);
        assert!(rows[2].contains("withheld"), "{}", rows[2]);
        assert_ne!(pseudonym("alice-smith", 99), pseudonym("alice-smith", 100));
    }

    #[test]
    fn the_summary_names_what_each_lost_and_what_was_refused() {
        let table = summary_table(&class());
        assert!(
            table.contains("| withheld | grade withheld: depends on `tlsf` |"),
            "{table}"
        );
        assert!(
            table.contains(&format!("| `{}` |", RULES[0].name)),
            "{table}"
        );
    }
}
