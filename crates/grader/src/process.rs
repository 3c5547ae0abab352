//! Running the harness: each part of the grading (one rule, or every trace) in a child
//! process with a time limit, what a child that died says in plain words, and each
//! rule's outcome from the answers of every scenario.

use std::fs;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use conformance::rules::{PANIC_RULE, RULES, SERVES_RULE};
use serde_json::Value;

use crate::harness::Harness;
use crate::{Options, Outcome, Performance};

/// What one run of the harness gave.
pub enum Part {
    /// The JSON it printed.
    Answer(Value),
    /// It did not answer: why, in plain words.
    Failed(String),
}

/// Runs the harness with `args` in a child process, stopped after `timeout`.
fn run_part(
    harness: &Harness,
    args: &[String],
    options: &Options,
    timeout: Duration,
    tag: &str,
) -> Part {
    let logs = &harness.logs;
    // Files, not pipes: a child that prints a lot never blocks on a full pipe.
    let out_path = logs.join(format!("{tag}.out"));
    let err_path = logs.join(format!("{tag}.err"));
    let files = fs::File::create(&out_path).and_then(|out| Ok((out, fs::File::create(&err_path)?)));
    let (out, err) = match files {
        Ok(files) => files,
        Err(error) => return Part::Failed(format!("could not create log files: {error}")),
    };
    let mut command = Command::new(&harness.exe);
    command
        .args(args)
        .env("PROPTEST_RNG_SEED", options.seed.to_string())
        .env("RUST_BACKTRACE", "0")
        .env(conformance::FAILURE_DIR_VAR, &harness.pages);
    match options.cases {
        Some(cases) => command.env("PROPTEST_CASES", cases.to_string()),
        None => command.env_remove("PROPTEST_CASES"),
    };
    let child = command.stdin(Stdio::null()).stdout(out).stderr(err).spawn();
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
pub fn crash_in_words(status: std::process::ExitStatus, stderr: &str) -> String {
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
pub fn run_rules(harness: &Harness, options: &Options) -> Vec<(&'static str, Outcome)> {
    let answers: Vec<Mutex<Option<Part>>> = RULES.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    thread::scope(|scope| {
        for _ in 0..options.jobs.min(RULES.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(rule) = RULES.get(i) else { break };
                    let args = [
                        "rule".to_owned(),
                        rule.name.to_owned(),
                        options.region.to_string(),
                    ];
                    let part = run_part(harness, &args, options, options.timeout, rule.name);
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
pub fn judge(parts: &[Part]) -> Vec<(&'static str, Outcome)> {
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
pub fn run_traces(harness: &Harness, options: &Options) -> Performance {
    let mut args = vec!["traces".to_owned()];
    args.extend(options.traces.iter().map(|p| p.display().to_string()));
    let timeout = options.timeout * options.traces.len() as u32;
    let answer = match run_part(harness, &args, options, timeout, "traces") {
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

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use serde_json::json;

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
    fn a_panic_met_by_many_scenarios_loses_one_rule() {
        let panic = |rule: &str| broke(rule, PANIC_RULE, 40);
        let mut parts: Vec<Part> = RULES.iter().map(|r| kept(r.name)).collect();
        for (i, rule) in RULES.iter().enumerate().skip(8) {
            parts[i] = panic(rule.name);
        }
        let judged = judge(&parts);
        assert_eq!(lost(&judged), [PANIC_RULE]);
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
    fn a_bug_is_counted_once_against_the_rule_it_breaks() {
        let mut parts: Vec<Part> = RULES.iter().map(|r| kept(r.name)).collect();
        let overlap = RULES
            .iter()
            .position(|r| r.name == "blocks_never_overlap")
            .unwrap();
        parts[0] = broke(RULES[0].name, "blocks_never_overlap", 5);
        parts[overlap] = broke("blocks_never_overlap", "blocks_never_overlap", 2);
        let judged = judge(&parts);
        assert_eq!(lost(&judged), ["blocks_never_overlap"]);
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
}
