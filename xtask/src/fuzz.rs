//! `fuzz`: the cargo-fuzz targets in `fuzz/` (nightly, libFuzzer), each for a while.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::shell::{cargo_on, output, root, run};

/// The targets in `fuzz/fuzz_targets`, in the order `fuzz` runs them.
pub const TARGETS: &[&str] = &["allocators", "trace_parser"];

/// The toolchain cargo-fuzz builds with: libFuzzer's instrumentation needs nightly flags.
const NIGHTLY: &str = "nightly";

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// One target (`allocators`: every allocator through `conformance::Checked`;
    /// `trace_parser`: arbitrary bytes to the `.rep` parser); all of them if omitted.
    target: Option<String>,
    /// Seconds to fuzz each target.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
}

pub fn run_args(args: &FuzzArgs) -> anyhow::Result<()> {
    let targets: Vec<&str> = match &args.target {
        Some(target) if TARGETS.contains(&target.as_str()) => vec![target.as_str()],
        Some(target) => bail!(
            "no fuzz target `{target}`; there are: {}",
            TARGETS.join(", ")
        ),
        None => TARGETS.to_vec(),
    };
    fuzz(&targets, args.seconds)
}

/// Fuzzes each of `targets` for `seconds`, starting from its corpus in `fuzz/corpus`
/// (kept between runs, not committed), its committed seeds ([`seeds`]) and the
/// committed crash regressions in `fuzz/regressions`, which every run replays first.
pub fn fuzz(targets: &[&str], seconds: u64) -> anyhow::Result<()> {
    install_cargo_fuzz()?;
    let fuzz_dir = root().join("fuzz");
    for target in targets {
        let corpus = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("could not create {}", corpus.display()))?;
        let mut command = cargo_on(NIGHTLY, &["fuzz", "run", "--release", target]);
        command.arg(&corpus);
        if let Some(seeds) = seeds(target) {
            command.arg(seeds);
        }
        let regressions = fuzz_dir.join("regressions").join(target);
        if has_files(&regressions) {
            command.arg(&regressions);
        }
        command.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
        run(&format!("fuzzing `{target}` for {seconds} s"), &mut command)?;
    }
    Ok(())
}

/// Committed inputs a target starts from besides its own corpus: for the trace parser,
/// a small file of each dialect of `.rep` (`free(NULL)`, `realloc(NULL, n)`, CRLF, a
/// wrong op count, a missing size), which the `trace` crate's tests check one by one.
/// libFuzzer reads them and writes what it finds only into the first corpus.
fn seeds(target: &str) -> Option<PathBuf> {
    (target == "trace_parser").then(|| root().join("crates/trace/tests/dialects"))
}

fn has_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// Installs cargo-fuzz when it is missing. Unoptimised (`--debug`): cargo-fuzz only
/// reads its arguments and runs cargo and the fuzzer, so its own speed does not show,
/// while optimising it and its dependencies made the install the slowest part of the
/// fuzz step on a bare machine. The fuzz targets themselves are still built `--release`.
fn install_cargo_fuzz() -> anyhow::Result<()> {
    if output(&mut cargo_on(NIGHTLY, &["fuzz", "--version"])).is_some() {
        return Ok(());
    }
    run(
        "installing cargo-fuzz",
        &mut cargo_on(NIGHTLY, &["install", "cargo-fuzz", "--locked", "--debug"]),
    )
}
