//! The harness: the small crate the grader writes for each submission, and its build.
//!
//! The harness depends on the submission by path (as `student`), on the conformance
//! suite and on the trace crate of the heaplab tree, and its program runs one part of
//! the grading named on its command line and prints the result as one JSON object. It
//! is built in the release profile with overflow checks on, so arithmetic overflow in a
//! submission is a panic the report shows, not a silent wrap.
//!
//! With `rawheap::tags` switched off (`--no-tags`), the harness does not depend on the
//! submission's own manifest, which may ask for the `tags` feature, but on a *staged*
//! copy of it: the same package and sources, every path made absolute, with `tags`
//! taken out of `rawheap`'s features. A submission that uses `rawheap::tags` then does
//! not build, and [`build`] says so in the words of the rule, besides the compiler's.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use conformance::rules::RULES;
use serde_json::Value;

use crate::policy::{RAWHEAP, Submission, TAGS_FEATURE};
use crate::{Options, write_if_changed};

/// The harness program's source: `rule NAME REGION` runs one rule, `traces FILE...`
/// replays traces; each prints one JSON object.
pub fn source() -> String {
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

const HARNESS_MAIN: &str = r#"//! Written by heaplab's grader: runs one part of the grading on the submission's
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
pub struct Harness {
    /// The harness program.
    pub exe: PathBuf,
    /// Where each part's output goes.
    pub logs: PathBuf,
    /// Whether this build compiled it (else it was up to date from an earlier grading).
    pub compiled: bool,
    /// Where the suite writes the submission's failure pages (every submission's heap
    /// is called `Heap`, so each gets a folder of its own).
    pub pages: PathBuf,
}

/// Why a submission could not be graded at all: it does not build.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildFailure {
    /// What cargo and the compiler said.
    pub compiler: String,
    /// The course's rule it broke, when the failure is one (it uses `rawheap::tags`
    /// with tags switched off), in words.
    pub rule: Option<String>,
}

/// What the report says when a submission uses `rawheap::tags` under `--no-tags`.
pub const TAGS_RULE: &str = "it uses `rawheap::tags`, which the staff switched off for this assignment (graded with --no-tags): the block format is part of the work to do";

impl BuildFailure {
    /// The compiler's output, and whether it shows `rawheap::tags` in use while the
    /// staff had switched it off.
    pub fn new(compiler: String, tags_off: bool) -> BuildFailure {
        let uses_tags = compiler.contains("rawheap::tags")
            || compiler.contains("`tags` in `rawheap`")
            || compiler.contains("`rawheap::tags`");
        BuildFailure {
            rule: (tags_off && uses_tags).then(|| TAGS_RULE.to_owned()),
            compiler,
        }
    }
}

/// The harness's package name for the submission `name` at `path`: one per submission
/// folder (and tags setting), so grading it again rebuilds nothing when nothing changed,
/// and two submissions never share a compiled harness.
fn harness_name(name: &str, path: &Path, tags: bool) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};

    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    let suffix = if tags { "" } else { "-no-tags" };
    format!("grade-{name}-{:08x}{suffix}", hasher.finish() as u32)
}

/// Writes the harness for `submission` and builds it. `Ok(Err(failure))` when the
/// submission does not compile (or has no `Heap` that is a `RawHeap`).
pub fn build(
    submission: &Submission,
    options: &Options,
) -> anyhow::Result<Result<Harness, BuildFailure>> {
    let tags = options.policy.tags;
    let harness = harness_name(&submission.name, &submission.dir, tags);
    let dir = options.work_dir.join("harness").join(&harness);
    fs::create_dir_all(dir.join("src"))?;
    let student = if tags {
        submission.dir.clone()
    } else {
        // Beside the harness, not inside it: both are workspaces of their own.
        let staged = options.work_dir.join("staged").join(&harness);
        fs::create_dir_all(&staged)?;
        write_if_changed(&staged.join("Cargo.toml"), &staged_manifest(submission)?)?;
        staged
    };
    let crates = options.heaplab.join("crates");
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
        name = submission.name,
        student = student.display().to_string(),
        conformance = crates.join("conformance").display().to_string(),
        trace = crates.join("trace").display().to_string(),
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest)?;
    write_if_changed(&dir.join("src/main.rs"), &source())?;
    // The heaplab tree's versions of the shared dependencies: nothing to resolve, and
    // the compiled suite is reused from one submission to the next.
    if !dir.join("Cargo.lock").exists() {
        fs::copy(options.heaplab.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &options.work_dir)
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
        return Ok(Err(BuildFailure::new(errors.join("\n"), !tags)));
    }
    let artifact = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|message| {
            message["target"]["name"] == harness.as_str() && message["executable"].is_string()
        })
        .context("cargo built the harness but named no executable")?;
    let exe = PathBuf::from(artifact["executable"].as_str().unwrap_or_default());
    // Cargo calls an artifact it did not have to compile again "fresh".
    let compiled = artifact["fresh"] != true;
    let logs = options
        .work_dir
        .join("runs")
        .join(format!("{harness}-{}", std::process::id()));
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let pages = options.work_dir.join("failures").join(&harness);
    Ok(Ok(Harness {
        exe,
        logs,
        compiled,
        pages,
    }))
}

/// The submission's manifest as the harness builds it with tags switched off: its
/// library and build script by absolute path, every path dependency absolute, without
/// its tests, examples, binaries and dev-dependencies (which the harness never builds),
/// and without `tags` among `rawheap`'s features.
fn staged_manifest(submission: &Submission) -> anyhow::Result<String> {
    let original = submission.dir.join("Cargo.toml");
    let text =
        fs::read_to_string(&original).with_context(|| format!("reading {}", original.display()))?;
    let mut manifest: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", original.display()))?;
    for key in ["dev-dependencies", "bin", "test", "bench", "example"] {
        manifest.remove(key);
    }
    let absolute = |path: &Path| toml::Value::String(path.display().to_string());
    let mut lib = match manifest.remove("lib") {
        Some(toml::Value::Table(lib)) => lib,
        _ => toml::Table::new(),
    };
    lib.insert("path".into(), absolute(&submission.lib));
    manifest.insert("lib".into(), toml::Value::Table(lib));
    if let Some(toml::Value::Table(package)) = manifest.get_mut("package") {
        let build = match &submission.build_script {
            Some(script) => absolute(script),
            None => toml::Value::Boolean(false),
        };
        package.insert("build".into(), build);
        for key in ["autobins", "autoexamples", "autotests", "autobenches"] {
            package.insert(key.into(), toml::Value::Boolean(false));
        }
    }
    for key in ["dependencies", "build-dependencies"] {
        if let Some(toml::Value::Table(table)) = manifest.get_mut(key) {
            stage_dependencies(table, &submission.dir);
        }
    }
    if let Some(toml::Value::Table(platforms)) = manifest.get_mut("target") {
        for (_, platform) in platforms.iter_mut() {
            if let toml::Value::Table(platform) = platform {
                platform.remove("dev-dependencies");
                for key in ["dependencies", "build-dependencies"] {
                    if let Some(toml::Value::Table(table)) = platform.get_mut(key) {
                        stage_dependencies(table, &submission.dir);
                    }
                }
            }
        }
    }
    Ok(toml::to_string(&manifest)?)
}

/// A dependency table of the staged manifest: path dependencies taken from `dir`, and
/// `rawheap` without its `tags` feature.
fn stage_dependencies(table: &mut toml::Table, dir: &Path) {
    for (name, dependency) in table.iter_mut() {
        let toml::Value::Table(dependency) = dependency else {
            continue;
        };
        if let Some(toml::Value::String(path)) = dependency.get("path") {
            let path = dir.join(path).display().to_string();
            dependency.insert("path".into(), toml::Value::String(path));
        }
        let package = dependency
            .get("package")
            .and_then(toml::Value::as_str)
            .unwrap_or(name);
        if package == RAWHEAP
            && let Some(toml::Value::Array(features)) = dependency.get_mut("features")
        {
            features.retain(|f| f.as_str() != Some(TAGS_FEATURE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_runs_every_rule_by_name() {
        let source = source();
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
    fn tags_switched_off_loses_the_tags_feature_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("grade-staged-{}", std::process::id()));
        fs::create_dir_all(dir.join("src")).unwrap();
        let manifest = "[package]\nname = \"h\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\nrawheap = { path = \"../rawheap\", default-features = false, features = [\"tags\"] }\n\n[dev-dependencies]\nproptest = \"1\"\n\n[workspace]\n";
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        let submission = Submission {
            name: "h".into(),
            dir: dir.clone(),
            lib: dir.join("src/lib.rs"),
            build_script: None,
            dependencies: Vec::new(),
        };
        let staged: toml::Table = staged_manifest(&submission).unwrap().parse().unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let rawheap = &staged["dependencies"]["rawheap"];
        assert_eq!(rawheap["features"].as_array().unwrap().len(), 0);
        assert_eq!(rawheap["default-features"].as_bool(), Some(false));
        assert_eq!(
            rawheap["path"].as_str(),
            Some(dir.join("../rawheap").display().to_string().as_str())
        );
        assert_eq!(
            staged["lib"]["path"].as_str(),
            Some(dir.join("src/lib.rs").display().to_string().as_str())
        );
        assert!(!staged.contains_key("dev-dependencies"));
        assert!(staged.contains_key("workspace"));
    }

    #[test]
    fn a_build_that_fails_on_tags_is_told_as_the_rule_only_when_tags_are_off() {
        let compiler =
            "error[E0432]: unresolved import `rawheap::tags`\n  could not find `tags` in `rawheap`";
        assert_eq!(
            BuildFailure::new(compiler.into(), true).rule.as_deref(),
            Some(TAGS_RULE)
        );
        assert_eq!(BuildFailure::new(compiler.into(), false).rule, None);
        assert_eq!(
            BuildFailure::new("error[E0412]: cannot find type `Heap`".into(), true).rule,
            None
        );
    }
}
