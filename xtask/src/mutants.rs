//! `mutants`: cargo-mutants over every allocator crate and `rawheap`'s shared code, each
//! with the tests that exercise it, and a table of what the tests caught.
//!
//! A mutant is our own code with one operator changed (`<` to `<=`, `+` to `-`, a
//! function body replaced by a default value). A mutant that compiles and passes every
//! test is a *survivor*: a change of behaviour no test notices. The table counts, per
//! crate, the mutants the tests caught, missed, that ran past the time limit (a mutant
//! that hangs a test: counted as caught, since a hung test fails any run) and that did
//! not compile (unviable: the compiler caught them, so they say nothing about tests).
//!
//! Each crate keeps a *standing* (`target/mutants/CRATE/standing.tsv`): the latest
//! verdict on every mutant of its current code. After a run narrowed to some mutants
//! (`-- --iterate`, which tries again only those not caught or unviable before, or
//! `-- --re`), the crate's row still counts all of them, and a note says how many
//! verdicts are from earlier runs.
//!
//! Too long for `ci` (every mutant is a build and a test run): run it by hand, a crate
//! at a time, or `--changed` for the mutants of the lines a branch touches.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::shell::{cargo, describe, output, root, run};

/// One crate's mutants and the tests that judge them.
struct Target {
    /// The name on the command line and in the table (the package, but for `rawheap`'s
    /// shared code).
    name: &'static str,
    /// The package whose code is mutated.
    package: &'static str,
    /// The files mutated, relative to the workspace root; empty for the whole package.
    files: &'static [&'static str],
    /// The packages whose tests run against each mutant.
    tests: &'static [&'static str],
}

/// Every target, fewest mutants first (62 to 254 when this was written), the order
/// `mutants` runs them in without arguments.
/// `rawheap`'s trait, reports and wrappers are exercised by every crate and by the
/// conformance suite; its shared algorithms (boundary tags, bit scans, alignment) are
/// judged by its own tests and those of the heaps built on them.
const TARGETS: &[Target] = &[
    Target {
        name: "free-list",
        package: "free-list",
        files: &[],
        tests: &["free-list"],
    },
    Target {
        name: "thread-cache",
        package: "thread-cache",
        files: &[],
        tests: &["thread-cache"],
    },
    Target {
        name: "gc",
        package: "gc",
        files: &[],
        tests: &["gc"],
    },
    Target {
        name: "rawheap",
        package: "rawheap",
        files: &[
            "crates/rawheap/src/tags.rs",
            "crates/rawheap/src/bits.rs",
            "crates/rawheap/src/align.rs",
        ],
        // free-list, segregated-fit and TLSF are built on the tags; the last two on
        // the bit scans; all three on the alignment helpers.
        tests: &["rawheap", "free-list", "segregated-fit", "tlsf"],
    },
    Target {
        name: "tlsf",
        package: "tlsf",
        files: &[],
        tests: &["tlsf"],
    },
    Target {
        name: "segregated-fit",
        package: "segregated-fit",
        files: &[],
        tests: &["segregated-fit"],
    },
    Target {
        name: "buddy",
        package: "buddy",
        files: &[],
        tests: &["buddy"],
    },
    Target {
        name: "bump",
        package: "bump",
        files: &[],
        tests: &["bump"],
    },
    Target {
        name: "slab",
        package: "slab",
        files: &[],
        tests: &["slab"],
    },
];

#[derive(clap::Args)]
pub struct Args {
    /// Crates to mutate (default: all of them, fewest mutants first): free-list,
    /// thread-cache, gc, rawheap (its tags, bits and align modules), tlsf,
    /// segregated-fit, buddy, bump, slab.
    crates: Vec<String>,
    /// Mutate only the lines changed since `--base` (committed or not), and only the
    /// crates those changes touch. Results go to target/mutants/changed.
    #[arg(long)]
    changed: bool,
    /// The revision `--changed` compares with (through its merge base with HEAD).
    #[arg(long, default_value = "main", requires = "changed")]
    base: String,
    /// Mutants built and tested at once (each takes a copy of the tree and a core).
    #[arg(long, short = 'j', default_value_t = 1)]
    jobs: u32,
    /// Seconds a mutant's tests may run before it counts as a timeout (default:
    /// cargo-mutants' own, from the unmutated tests' time).
    #[arg(long)]
    timeout: Option<u64>,
    /// Fail when a crate catches less than this percentage of its viable mutants.
    #[arg(long, value_name = "PERCENT")]
    fail_under: Option<f64>,
    /// Further arguments for cargo-mutants after `--`, e.g. `-- --file
    /// crates/tlsf/src/class.rs --re good_fit` to try again on the survivors of one file,
    /// or `-- --iterate` to skip the mutants caught or unviable before. The table still
    /// gives each crate's whole standing, earlier verdicts included.
    #[arg(last = true)]
    extra: Vec<String>,
}

pub fn run_args(args: &Args) -> anyhow::Result<()> {
    let mut targets = chosen(&args.crates)?;
    let out = root().join("target").join("mutants");
    let (out, diff) = if args.changed {
        let out = out.join("changed");
        std::fs::create_dir_all(&out)?;
        let (diff, touched) = diff_since(&args.base, &out)?;
        targets.retain(|target| touches(target, &touched));
        if targets.is_empty() {
            println!("mutants: no mutated file changed since {}", args.base);
        }
        (out, Some(diff))
    } else {
        (out, None)
    };
    install_cargo_mutants()?;
    // .cargo/mutants.toml runs each mutant's tests with nextest.
    crate::checks::install_nextest()?;
    for target in &targets {
        mutate(target, args, &out, diff.as_deref())?;
        // `--changed` runs see only the lines a branch touched: no standing of a crate.
        if diff.is_none() {
            update_standing(target, &out.join(target.name))?;
        }
    }
    let rows = summarise(&out)?;
    if let Some(floor) = args.fail_under {
        let low: Vec<String> = rows
            .iter()
            .filter(|row| row.counts.caught_percent().is_some_and(|p| p < floor))
            .map(|row| row.name.to_owned())
            .collect();
        if !low.is_empty() {
            bail!(
                "below {floor} % of viable mutants caught: {}",
                low.join(", ")
            );
        }
    }
    Ok(())
}

/// The targets named on the command line, in table order; all of them when none is.
fn chosen(names: &[String]) -> anyhow::Result<Vec<&'static Target>> {
    if let Some(unknown) = names
        .iter()
        .find(|name| !TARGETS.iter().any(|t| t.name == name.as_str()))
    {
        let known: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        bail!(
            "no mutants target `{unknown}`; there are: {}",
            known.join(", ")
        );
    }
    Ok(TARGETS
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|name| name == t.name))
        .collect())
}

/// Writes the diff since the merge base of `base` and HEAD (the working tree included)
/// into `out`; returns its path and the files it touches.
fn diff_since(base: &str, out: &Path) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let git = |args: &[&str]| {
        let mut command = std::process::Command::new("git");
        command.args(args).current_dir(root());
        output(&mut command).with_context(|| format!("`git {}` failed", args.join(" ")))
    };
    let merge_base = git(&["merge-base", base, "HEAD"])?;
    let merge_base = merge_base.trim();
    let diff = out.join("changed.diff");
    std::fs::write(&diff, git(&["diff", merge_base, "--", "crates"])?)
        .with_context(|| format!("could not write {}", diff.display()))?;
    let touched = git(&["diff", "--name-only", merge_base, "--", "crates"])?;
    Ok((diff, touched.lines().map(str::to_owned).collect()))
}

/// Whether a change to one of `touched` can make or judge a mutant of `target`.
fn touches(target: &Target, touched: &[String]) -> bool {
    // The diff filter keeps only mutants on changed lines, so a changed test alone
    // makes none: only changed code is worth a run.
    touched.iter().any(|file| {
        if target.files.is_empty() {
            file.starts_with(&format!("crates/{}/src/", target.package))
        } else {
            target.files.contains(&file.as_str())
        }
    })
}

fn install_cargo_mutants() -> anyhow::Result<()> {
    if output(&mut cargo(&["mutants", "--version"])).is_some() {
        return Ok(());
    }
    run(
        "installing cargo-mutants",
        &mut cargo(&["install", "cargo-mutants", "--locked"]),
    )
}

/// Runs cargo-mutants on `target`, its results in `out/NAME/mutants.out`.
fn mutate(target: &Target, args: &Args, out: &Path, diff: Option<&Path>) -> anyhow::Result<()> {
    let dir = out.join(target.name);
    std::fs::create_dir_all(&dir).with_context(|| format!("could not create {}", dir.display()))?;
    let mut command = cargo(&["mutants", "--package", target.package, "--no-shuffle"]);
    // A caught mutant's failing property test would go on to shrink its case, which
    // only makes the failure smaller, not a different verdict: skip it.
    command.env("PROPTEST_MAX_SHRINK_ITERS", "0");
    command
        .arg("--test-package")
        .arg(target.tests.join(","))
        .arg("--jobs")
        .arg(args.jobs.to_string())
        .arg("--output")
        .arg(&dir);
    for file in target.files {
        command.args(["--file", file]);
    }
    if let Some(seconds) = args.timeout {
        command.arg("--timeout").arg(seconds.to_string());
    }
    if let Some(diff) = diff {
        command.arg("--in-diff").arg(diff);
    }
    command.args(&args.extra);
    let step = format!("mutants of {}", target.name);
    println!("\n==> {step}\n    $ {}", describe(&command));
    let status = command
        .status()
        .with_context(|| format!("could not start cargo-mutants for {}", target.name))?;
    // cargo-mutants exits with 2 when a mutant was missed and 3 when one timed out:
    // findings for the table, not failures of the run. 1 is bad usage, 4 failing tests
    // on the unmutated tree.
    match status.code() {
        Some(0 | 2 | 3) => Ok(()),
        _ => bail!("{step} failed ({status})"),
    }
}

/// What became of one mutant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Caught,
    Missed,
    /// Ran past the time limit: counted as caught, since a hung test fails any run.
    Timeout,
    /// Did not compile: the compiler caught it, which says nothing about the tests.
    Unviable,
    /// Caught or unviable in a run before the crate's standing was kept: cargo-mutants'
    /// `previously_caught.txt` does not tell the two apart. Counted as caught.
    CaughtOrUnviable,
    /// A mutant of the current code that no run has tried yet (a run narrowed with
    /// `-- --re` or `-- --file`, say).
    Untried,
}

impl Verdict {
    /// All verdicts, with the word `standing.tsv` writes for each.
    const WORDS: [(Verdict, &'static str); 6] = [
        (Verdict::Caught, "caught"),
        (Verdict::Missed, "missed"),
        (Verdict::Timeout, "timeout"),
        (Verdict::Unviable, "unviable"),
        (Verdict::CaughtOrUnviable, "caught-or-unviable"),
        (Verdict::Untried, "untried"),
    ];

    fn word(self) -> &'static str {
        Self::WORDS
            .iter()
            .find(|(verdict, _)| *verdict == self)
            .map_or("?", |(_, word)| word)
    }

    fn from_word(word: &str) -> Option<Verdict> {
        Self::WORDS
            .iter()
            .find(|(_, w)| *w == word)
            .map(|(verdict, _)| *verdict)
    }

    /// The verdict of an outcome's `summary` in `outcomes.json`; `None` for the
    /// baseline (the unmutated tree) and failures to run at all.
    fn from_summary(summary: &str) -> Option<Verdict> {
        match summary {
            "CaughtMutant" => Some(Verdict::Caught),
            "MissedMutant" => Some(Verdict::Missed),
            "Timeout" => Some(Verdict::Timeout),
            "Unviable" => Some(Verdict::Unviable),
            _ => None,
        }
    }
}

/// What the tests made of one crate's mutants.
#[derive(Default)]
struct Counts {
    /// Caught, `unsplit` included.
    caught: usize,
    missed: usize,
    timeout: usize,
    unviable: usize,
    /// Caught or unviable in a run before the standing was kept, counted as caught.
    unsplit: usize,
    /// Mutants of the current code no run has tried: in no other column.
    untried: usize,
}

impl Counts {
    /// Caught (timeouts included) of the mutants that compiled, in percent.
    fn caught_percent(&self) -> Option<f64> {
        let viable = self.caught + self.missed + self.timeout;
        (viable > 0).then(|| 100.0 * (self.caught + self.timeout) as f64 / viable as f64)
    }
}

/// One line of the table: a crate, its counts and its survivors.
struct Row {
    name: &'static str,
    counts: Counts,
    /// The missed and timed-out mutants, as cargo-mutants names them.
    survivors: Vec<String>,
    /// Mutants the row counts from earlier runs: not run again this time (`-- --iterate`,
    /// or a narrowed run).
    earlier: usize,
    /// When the crate has no standing (a `--changed` run, or results older than
    /// standings): mutants caught or unviable in an earlier run, which the row, this
    /// run's alone, leaves out.
    left_out: usize,
}

/// The verdicts of one run, from cargo-mutants' `outcomes.json`, by mutant name.
fn run_verdicts(outcomes: &serde_json::Value) -> anyhow::Result<Vec<(String, Verdict)>> {
    let list = outcomes["outcomes"]
        .as_array()
        .context("outcomes.json has no `outcomes` list")?;
    Ok(list
        .iter()
        .filter_map(|outcome| {
            let verdict = Verdict::from_summary(outcome["summary"].as_str()?)?;
            Some((mutant_name(&outcome["scenario"]), verdict))
        })
        .collect())
}

/// The counts of `verdicts` and the survivors among them (timeouts marked).
fn tally<'a>(verdicts: impl IntoIterator<Item = (&'a str, Verdict)>) -> (Counts, Vec<String>) {
    let mut counts = Counts::default();
    let mut survivors = Vec::new();
    for (name, verdict) in verdicts {
        match verdict {
            Verdict::Caught => counts.caught += 1,
            Verdict::CaughtOrUnviable => {
                counts.caught += 1;
                counts.unsplit += 1;
            }
            Verdict::Missed => {
                counts.missed += 1;
                survivors.push(name.to_owned());
            }
            Verdict::Timeout => {
                counts.timeout += 1;
                survivors.push(format!("{name} (timeout)"));
            }
            Verdict::Unviable => counts.unviable += 1,
            Verdict::Untried => counts.untried += 1,
        }
    }
    (counts, survivors)
}

/// `file:line:column: description`, the way cargo-mutants names a mutant in its lists.
fn mutant_name(scenario: &serde_json::Value) -> String {
    let mutant = &scenario["Mutant"];
    match mutant["name"].as_str() {
        Some(name) => name.to_owned(),
        None => format!(
            "{}:{}: replaced by {}",
            mutant["file"].as_str().unwrap_or("?"),
            mutant["span"]["start"]["line"],
            mutant["replacement"]
        ),
    }
}

/// A crate's standing: the latest verdict on every mutant of its current code, one
/// `VERDICT<TAB>NAME` line each, kept beside `mutants.out`. cargo-mutants' `--iterate`
/// skips the mutants caught or unviable before, and its `outcomes.json` counts only
/// the ones it ran; the standing adds those earlier verdicts back, so that the table
/// gives the whole crate. Mutants are matched by name (file, line, column and
/// description), as `--iterate` matches them.
const STANDING: &str = "standing.tsv";

/// Brings `dir`'s standing up to date with the run just made: its verdicts, over the
/// earlier ones still naming a mutant of the current code.
fn update_standing(target: &Target, dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("mutants.out/outcomes.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("no {}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("could not parse {}", path.display()))?;
    let run = run_verdicts(&json).with_context(|| format!("in {}", path.display()))?;
    let current = current_mutants(target)?;
    let standing = merge_standing(earlier_verdicts(dir), run, &current);
    let mut text = String::new();
    for (name, verdict) in &standing {
        let _ = writeln!(text, "{}\t{name}", verdict.word());
    }
    let path = dir.join(STANDING);
    std::fs::write(&path, text).with_context(|| format!("could not write {}", path.display()))
}

/// The standing after a run: its verdicts, then the earlier ones on mutants it did not
/// run, then `Untried` for the rest of `current`; only mutants of `current` count.
fn merge_standing(
    earlier: BTreeMap<String, Verdict>,
    run: Vec<(String, Verdict)>,
    current: &BTreeSet<String>,
) -> BTreeMap<String, Verdict> {
    let mut standing: BTreeMap<String, Verdict> = current
        .iter()
        .map(|name| (name.clone(), Verdict::Untried))
        .collect();
    for (name, verdict) in earlier.into_iter().chain(run) {
        if let Some(slot) = standing.get_mut(&name) {
            *slot = verdict;
        }
    }
    standing
}

/// The verdicts before the run just made: the standing, or, for results older than
/// standings, what the previous run left in `mutants.out.old`.
fn earlier_verdicts(dir: &Path) -> BTreeMap<String, Verdict> {
    if let Ok(text) = std::fs::read_to_string(dir.join(STANDING)) {
        return text
            .lines()
            .filter_map(|line| {
                let (word, name) = line.split_once('\t')?;
                Some((name.to_owned(), Verdict::from_word(word)?))
            })
            .collect();
    }
    let old = dir.join("mutants.out.old");
    let mut verdicts = BTreeMap::new();
    // The lists of a run before it, caught or unviable, first: the run's own lists
    // say more and come after.
    let lists = [
        ("previously_caught.txt", Verdict::CaughtOrUnviable),
        ("caught.txt", Verdict::Caught),
        ("unviable.txt", Verdict::Unviable),
        ("missed.txt", Verdict::Missed),
        ("timeout.txt", Verdict::Timeout),
    ];
    for (file, verdict) in lists {
        let text = std::fs::read_to_string(old.join(file)).unwrap_or_default();
        verdicts.extend(text.lines().map(|name| (name.to_owned(), verdict)));
    }
    verdicts
}

/// The names of `target`'s mutants in the current code (what `--list` shows, with
/// `.cargo/mutants.toml`'s exclusions applied).
fn current_mutants(target: &Target) -> anyhow::Result<BTreeSet<String>> {
    let mut command = cargo(&["mutants", "--list", "--package", target.package]);
    for file in target.files {
        command.args(["--file", file]);
    }
    let listed =
        output(&mut command).with_context(|| format!("`{}` failed", describe(&command)))?;
    Ok(listed.lines().map(str::to_owned).collect())
}

/// Reads every target's results found under `out` and writes `out/summary.md`: the
/// table, then each crate's survivors. A crate's row is its standing when it has one,
/// else the latest run's outcomes.
fn summarise(out: &Path) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for target in TARGETS {
        let dir = out.join(target.name);
        let path = dir.join("mutants.out/outcomes.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("could not parse {}", path.display()))?;
        let run = run_verdicts(&json).with_context(|| format!("in {}", path.display()))?;
        let standing = std::fs::read_to_string(dir.join(STANDING)).ok();
        let row = match standing {
            Some(_) => {
                let standing = earlier_verdicts(&dir);
                let ran: BTreeSet<&str> = run.iter().map(|(name, _)| name.as_str()).collect();
                let earlier = standing
                    .iter()
                    .filter(|(name, verdict)| {
                        **verdict != Verdict::Untried && !ran.contains(name.as_str())
                    })
                    .count();
                let (counts, survivors) = tally(
                    standing
                        .iter()
                        .map(|(name, verdict)| (name.as_str(), *verdict)),
                );
                Row {
                    name: target.name,
                    counts,
                    survivors,
                    earlier,
                    left_out: 0,
                }
            }
            None => {
                let (counts, survivors) =
                    tally(run.iter().map(|(name, verdict)| (name.as_str(), *verdict)));
                let previously = path.with_file_name("previously_caught.txt");
                let left_out =
                    std::fs::read_to_string(previously).map_or(0, |text| text.lines().count());
                Row {
                    name: target.name,
                    counts,
                    survivors,
                    earlier: 0,
                    left_out,
                }
            }
        };
        rows.push(row);
    }
    let table = render(&rows);
    let summary = out.join("summary.md");
    std::fs::write(&summary, &table)
        .with_context(|| format!("could not write {}", summary.display()))?;
    println!("\n{table}\n(written to {})", summary.display());
    Ok(rows)
}

fn render(rows: &[Row]) -> String {
    let mut text = String::from(
        "| crate | caught | missed | timeout | unviable | caught of viable |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for row in rows {
        let c = &row.counts;
        let percent = c
            .caught_percent()
            .map_or("–".to_owned(), |p| format!("{p:.1} %"));
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {percent} |",
            row.name, c.caught, c.missed, c.timeout, c.unviable
        );
    }
    for row in rows {
        let name = row.name;
        if row.earlier > 0 {
            let _ = writeln!(
                text,
                "\n{name}: {} of these mutants were tried in an earlier run and not again \
                 (--iterate); the row is the crate's standing, this run's verdicts and those.",
                row.earlier
            );
        }
        if row.counts.unsplit > 0 {
            let _ = writeln!(
                text,
                "\n{name}: {} of the caught were caught or unviable in a run before the \
                 standing was kept (cargo-mutants' previously_caught.txt does not tell the \
                 two apart).",
                row.counts.unsplit
            );
        }
        if row.counts.untried > 0 {
            let _ = writeln!(
                text,
                "\n{name}: {} mutants of the current code have not been tried yet; they are \
                 in no column.",
                row.counts.untried
            );
        }
        if row.left_out > 0 {
            let _ = writeln!(
                text,
                "\n{name}: {} more mutants were caught or unviable in an earlier run and not \
                 run again (--iterate); the row counts this run only.",
                row.left_out
            );
        }
    }
    for row in rows.iter().filter(|row| !row.survivors.is_empty()) {
        let _ = writeln!(text, "\n{} survivors:\n", row.name);
        for survivor in &row.survivors {
            let _ = writeln!(text, "- {survivor}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_and_survivors_named() {
        let json = serde_json::json!({
            "outcomes": [
                { "scenario": "Baseline", "summary": "Success" },
                { "scenario": { "Mutant": {
                    "name": "crates/bump/src/lib.rs:7:9: replace < with <= in Bump::fits",
                    "file": "crates/bump/src/lib.rs", "span": { "start": { "line": 7, "column": 9 } },
                    "replacement": "<="
                } }, "summary": "MissedMutant" },
                { "scenario": { "Mutant": {
                    "file": "crates/bump/src/lib.rs", "span": { "start": { "line": 9, "column": 5 } },
                    "replacement": "()"
                } }, "summary": "Timeout" },
                { "scenario": { "Mutant": { "name": "a" } }, "summary": "CaughtMutant" },
                { "scenario": { "Mutant": { "name": "b" } }, "summary": "CaughtMutant" },
                { "scenario": { "Mutant": { "name": "c" } }, "summary": "Unviable" },
            ]
        });
        let run = run_verdicts(&json).unwrap();
        let (counts, survivors) = tally(run.iter().map(|(name, v)| (name.as_str(), *v)));
        assert_eq!(
            (
                counts.caught,
                counts.missed,
                counts.timeout,
                counts.unviable
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(counts.caught_percent(), Some(75.0));
        assert_eq!(
            survivors,
            [
                "crates/bump/src/lib.rs:7:9: replace < with <= in Bump::fits",
                "crates/bump/src/lib.rs:9: replaced by \"()\" (timeout)",
            ]
        );
        let table = render(&[Row {
            name: "bump",
            counts,
            survivors,
            earlier: 0,
            left_out: 3,
        }]);
        assert!(
            table.contains("| bump | 2 | 1 | 1 | 1 | 75.0 % |"),
            "{table}"
        );
        assert!(table.contains("- crates/bump/src/lib.rs:7:9: replace < with <= in Bump::fits"));
        assert!(table.contains("bump: 3 more mutants"), "{table}");
    }

    #[test]
    fn the_standing_keeps_earlier_verdicts_on_current_mutants_only() {
        let names = |names: &[&str]| -> BTreeSet<String> {
            names.iter().map(|name| (*name).to_owned()).collect()
        };
        let earlier: BTreeMap<String, Verdict> = [
            ("caught before", Verdict::Caught),
            ("unviable before", Verdict::Unviable),
            ("missed before, caught now", Verdict::Missed),
            ("gone from the code", Verdict::Caught),
            ("from a run before standings", Verdict::CaughtOrUnviable),
        ]
        .into_iter()
        .map(|(name, verdict)| (name.to_owned(), verdict))
        .collect();
        let run = vec![
            ("missed before, caught now".to_owned(), Verdict::Caught),
            ("new, missed".to_owned(), Verdict::Missed),
        ];
        let current = names(&[
            "caught before",
            "unviable before",
            "missed before, caught now",
            "from a run before standings",
            "new, missed",
            "never run",
        ]);
        let standing = merge_standing(earlier, run, &current);
        assert_eq!(standing.keys().cloned().collect::<BTreeSet<_>>(), current);
        assert_eq!(standing["missed before, caught now"], Verdict::Caught);
        assert_eq!(standing["never run"], Verdict::Untried);
        let (counts, survivors) = tally(
            standing
                .iter()
                .map(|(name, verdict)| (name.as_str(), *verdict)),
        );
        assert_eq!(
            (
                counts.caught,
                counts.missed,
                counts.unviable,
                counts.unsplit,
                counts.untried
            ),
            (3, 1, 1, 1, 1)
        );
        assert_eq!(survivors, ["new, missed"]);
        for (verdict, word) in Verdict::WORDS {
            assert_eq!(verdict.word(), word);
            assert_eq!(Verdict::from_word(word), Some(verdict));
        }
        let table = render(&[Row {
            name: "tlsf",
            counts,
            survivors,
            earlier: 3,
            left_out: 0,
        }]);
        assert!(
            table.contains("| tlsf | 3 | 1 | 0 | 1 | 75.0 % |"),
            "{table}"
        );
        assert!(table.contains("tlsf: 3 of these mutants were tried in an earlier run"));
        assert!(table.contains("tlsf: 1 of the caught were caught or unviable"));
        assert!(table.contains("tlsf: 1 mutants of the current code have not been tried"));
    }

    #[test]
    fn a_change_to_a_crates_code_selects_it_and_only_it() {
        let target = |name| TARGETS.iter().find(|t| t.name == name).unwrap();
        let touched = ["crates/rawheap/src/tags.rs".to_owned()];
        assert!(touches(target("rawheap"), &touched));
        assert!(!touches(target("free-list"), &touched));
        let touched = ["crates/rawheap/src/locked.rs".to_owned()];
        assert!(!touches(target("rawheap"), &touched));
        let touched = ["crates/tlsf/src/class.rs".to_owned()];
        assert!(touches(target("tlsf"), &touched));
        let touched = ["crates/tlsf/tests/behaviour.rs".to_owned()];
        assert!(!touches(target("tlsf"), &touched));
        assert!(chosen(&["nope".to_owned()]).is_err());
        assert_eq!(chosen(&[]).unwrap().len(), TARGETS.len());
    }
}
