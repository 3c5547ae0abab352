//! `ci`, `test` and `miri`: the checks a change must pass.

use std::process::Command;
use std::time::Instant;

use anyhow::bail;

use crate::shell::{cargo, cargo_on, output, run};

/// Crates whose unsafe code runs under Miri: the contract, the suite, every allocator.
/// A new allocator joins by adding its package name here.
/// (`heaplab` holds the tests of rawheap's `Locked`, `StaticHeap` and `Arena`.)
const MIRI_PACKAGES: &[&str] = &[
    "rawheap",
    "conformance",
    "bump",
    "free-list",
    "buddy",
    "slab",
    "segregated-fit",
    "tlsf",
    "headerless",
    "heaplab",
    "gc",
    "thread-cache",
];

/// Seconds CI fuzzes each target: enough to replay the regressions and try fresh
/// inputs; long runs are `cargo xtask fuzz`.
const CI_FUZZ_SECONDS: u64 = 20;

/// The nightly toolchain Miri runs on.
const NIGHTLY: &str = "nightly";

#[derive(clap::Args)]
pub struct CiArgs {
    /// Skip the Miri step (for a quick local run; CI never skips it).
    #[arg(long)]
    no_miri: bool,
}

#[derive(clap::Args)]
pub struct MiriArgs {
    /// Property-test cases per sequence property; CI uses a small number to fit its budget.
    #[arg(long, default_value_t = 8)]
    cases: u32,
    /// The aliasing model to run under (both by default, as CI does: Stacked Borrows over
    /// every test, Tree Borrows over seven rules of each conformance suite, the stress
    /// test and the bad-input catalogue). Each run also checks strict provenance: a
    /// pointer made from an integer is an error.
    #[arg(long, value_enum)]
    model: Option<Model>,
    /// Packages to run (default: every crate with unsafe code, and the book's code
    /// blocks, which are `book-tests`'s doctests).
    #[arg(long = "package", short = 'p')]
    packages: Vec<String>,
}

pub fn ci(args: &CiArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    crate::playground::install_prerequisites()?;
    test()?;
    // The workspace's tests build with every crate's features together; a reader (and
    // `cargo xtask mutants`) runs one crate's tests alone, where only its own are on. These
    // three ask nothing of rawheap's `tags`, so a test of theirs that needs it (through
    // the conformance suite, say) builds here only if it says so.
    run(
        "tests of the crates without boundary tags, built on their own",
        &mut cargo(&[
            "check",
            "--tests",
            "--locked",
            "-p",
            "bump",
            "-p",
            "buddy",
            "-p",
            "headerless",
        ]),
    )?;
    run(
        "rustdoc, warnings denied",
        cargo(&["doc", "--workspace", "--no-deps", "--locked"]).env("RUSTDOCFLAGS", "-D warnings"),
    )?;
    run(
        "benches compile (they run with `cargo xtask bench`)",
        &mut cargo(&[
            "bench",
            "-p",
            "heaplab-benches",
            "--benches",
            "--no-run",
            "--locked",
        ]),
    )?;
    println!("\n==> real programs on heaplab's malloc (LD_PRELOAD)");
    crate::preload::run(&crate::preload::Args::default())?;
    crate::coursework::check()?;
    crate::fuzz::fuzz(crate::fuzz::TARGETS, CI_FUZZ_SECONDS)?;
    println!("\n==> the book: figures from real runs, includes and anchors, build");
    crate::book::check()?;
    crate::playground::test()?;
    if !args.no_miri {
        miri(&MiriArgs {
            cases: 8,
            model: None,
            packages: Vec::new(),
        })?;
    }
    println!(
        "\nci: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The everyday tier, the first steps of `ci`: formatting, clippy, then every test of
/// the workspace. cargo-nextest runs each test in its own process, all of the
/// workspace's tests side by side on every core (`cargo test` runs one test binary after
/// another, so the longest binary sets the pace); doctests, which nextest does not run,
/// follow.
pub fn test() -> anyhow::Result<()> {
    run("formatting", &mut cargo(&["fmt", "--all", "--", "--check"]))?;
    run(
        "clippy, warnings denied",
        &mut cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    install_nextest()?;
    run(
        "tests",
        &mut cargo(&[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]),
    )?;
    run(
        "doctests",
        &mut cargo(&["test", "--workspace", "--locked", "--doc"]),
    )
}

/// Installs cargo-nextest when it is missing (this machine's image has it; a bare one
/// builds it from crates.io).
pub fn install_nextest() -> anyhow::Result<()> {
    if output(&mut cargo(&["nextest", "--version"])).is_some() {
        return Ok(());
    }
    run(
        "installing cargo-nextest",
        &mut cargo(&["install", "cargo-nextest", "--locked"]),
    )
}

/// The tests the second aliasing model runs by default: in every allocator's conformance
/// suite (and the teaching heap's) seven of the rules, the threads stress test and the
/// bad-input catalogue, besides the book's code blocks. Stacked Borrows runs every test.
///
/// Between them the seven rules make every call of the trait on every heap, in each
/// kind of state the suite puts a heap in: random sequences of all four operations
/// (sizes up to the region's, alignments up to a page), regions at odd addresses, every
/// alignment, zeroing fresh and dirty memory, growing, shrinking and moving blocks
/// beside live neighbours, filling a heap until it refuses, and freeing every block of
/// a full heap. The other seventeen drive the same code on other data to
/// check other answers, and each costs Miri about as much as one of these: running them
/// (or the other tests) under a second model as well would double Miri's share of CI
/// for little the first model does not already cover.
const TREE_BORROWS_RULES: [&str; 7] = [
    "random_operation_sequences_keep_every_rule",
    "unaligned_regions_are_handled",
    "alignment_is_honoured",
    "allocate_zeroed_gives_zeros",
    "reallocate_keeps_contents",
    "exhaustion_is_an_error_not_a_crash",
    "freeing_everything_restores_the_heap",
];

/// The nextest filter for the Tree Borrows run: [`TREE_BORROWS_RULES`] of every suite,
/// the threads stress test and the bad-input catalogue.
fn tree_borrows_tests() -> String {
    format!(
        "((binary(conformance) | binary(student)) & test(/::({})$/)) \
         | binary(threads) | binary(bad_input)",
        TREE_BORROWS_RULES.join("|")
    )
}

/// Miri's aliasing models: the rules a program's references and raw pointers must keep.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// Stacked Borrows, Miri's default.
    Stacked,
    /// Tree Borrows (`-Zmiri-tree-borrows`), which accepts some patterns Stacked
    /// Borrows rejects and rejects others.
    Tree,
}

impl Model {
    fn step(self) -> &'static str {
        match self {
            Model::Stacked => "Miri (Stacked Borrows, strict provenance)",
            Model::Tree => "Miri (Tree Borrows, strict provenance)",
        }
    }

    fn flags(self) -> &'static str {
        match self {
            Model::Stacked => "-Zmiri-strict-provenance",
            Model::Tree => "-Zmiri-tree-borrows -Zmiri-strict-provenance",
        }
    }
}

pub fn miri(args: &MiriArgs) -> anyhow::Result<()> {
    install_miri()?;
    install_nextest()?;
    let (packages, doc_packages): (Vec<&str>, Vec<&str>) = if args.packages.is_empty() {
        let mut doc_packages = MIRI_PACKAGES.to_vec();
        doc_packages.push("book-tests");
        (MIRI_PACKAGES.to_vec(), doc_packages)
    } else {
        let packages: Vec<&str> = args.packages.iter().map(String::as_str).collect();
        (packages.clone(), packages)
    };
    let models = match args.model {
        Some(model) => vec![model],
        None => vec![Model::Stacked, Model::Tree],
    };
    for model in models {
        // One interpreter per test, as many at once as there are cores: Miri itself
        // runs on one thread, so `cargo miri test` would leave all but one core idle.
        let mut tests = vec!["miri", "nextest", "run", "--locked", "--no-fail-fast"];
        let tree_filter = tree_borrows_tests();
        if model == Model::Tree && args.packages.is_empty() {
            tests.extend(["-E", &tree_filter]);
        }
        run(
            model.step(),
            &mut miri_command(&tests, &packages, args.cases, model.flags()),
        )?;
        let doctests = ["miri", "test", "--locked", "--doc"];
        run(
            &format!("{}, doctests", model.step()),
            &mut miri_command(&doctests, &doc_packages, args.cases, model.flags()),
        )?;
    }
    Ok(())
}

/// `cargo +nightly ARGS -p PACKAGE...` with the property-test sizes and Miri flags set.
///
/// Property tests draw their cases with proptest's XorShift generator (`xs`) rather
/// than its default, ChaCha: interpreted, one ChaCha refill costs Miri about half a
/// second, as much as running a short case, and a property test draws a fresh
/// generator for every case. The cases are as random (seeded afresh each run) and
/// follow the same strategies. (The conformance suite makes the same choice under Miri
/// by itself.)
fn miri_command(args: &[&str], packages: &[&str], cases: u32, flags: &str) -> Command {
    let mut command = cargo_on(NIGHTLY, args);
    for package in packages {
        command.args(["-p", package]);
    }
    command
        .env("PROPTEST_CASES", cases.to_string())
        .env("PROPTEST_RNG_ALGORITHM", "xs")
        .env("QUICKCHECK_TESTS", cases.to_string())
        .env("MIRIFLAGS", flags);
    command
}

/// Adds the nightly toolchain's `miri` and `rust-src` components when they are missing.
fn install_miri() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        NIGHTLY,
    ]))
    .unwrap_or_default();
    let has = |component: &str| installed.lines().any(|line| line.starts_with(component));
    if installed.is_empty() {
        run(
            "installing nightly with miri and rust-src",
            Command::new("rustup").args([
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "miri,rust-src",
            ]),
        )?;
    } else if !(has("miri") && has("rust-src")) {
        run(
            "adding miri and rust-src to nightly",
            Command::new("rustup").args([
                "component",
                "add",
                "--toolchain",
                NIGHTLY,
                "miri",
                "rust-src",
            ]),
        )?;
    }
    if output(&mut cargo_on(NIGHTLY, &["miri", "--version"])).is_none() {
        bail!("cargo +{NIGHTLY} miri is not usable even after installing it");
    }
    run("miri setup", &mut cargo_on(NIGHTLY, &["miri", "setup"]))
}

#[cfg(test)]
mod tests {
    /// A renamed rule would drop out of the Tree Borrows run without a word: the filter
    /// would match no test.
    #[test]
    fn tree_borrows_runs_rules_the_suite_has() {
        for rule in super::TREE_BORROWS_RULES {
            assert!(
                conformance::rules::RULES
                    .iter()
                    .any(|known| known.name == rule),
                "{rule} is a rule of the conformance suite"
            );
        }
    }
}
