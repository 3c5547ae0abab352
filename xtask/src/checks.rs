//! `ci`, `test` and `miri`: the checks a change must pass.

use std::time::Instant;

use anyhow::bail;

use crate::shell::{cargo, cargo_on, output, run};

/// Crates whose unsafe code runs under Miri: the contract, the suite, every allocator.
/// A new allocator joins by adding its package name here.
/// (`heaplab` holds the tests of rawheap's `Locked`, `StaticHeap` and `Arena`.)
const MIRI_PACKAGES: &[&str] = &["rawheap", "conformance", "bump", "free-list", "heaplab"];

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
    /// Also run under the Tree Borrows aliasing model and with strict provenance.
    #[arg(long)]
    all_models: bool,
    /// Packages to run (default: every crate with unsafe code).
    #[arg(long = "package", short = 'p')]
    packages: Vec<String>,
}

pub fn ci(args: &CiArgs) -> anyhow::Result<()> {
    let started = Instant::now();
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
    test()?;
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
    println!("\n==> the book: figures from real runs, includes and anchors, build");
    crate::book::check()?;
    if !args.no_miri {
        miri(&MiriArgs {
            cases: 8,
            all_models: false,
            packages: Vec::new(),
        })?;
    }
    println!(
        "\nci: all steps passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn test() -> anyhow::Result<()> {
    run("tests", &mut cargo(&["test", "--workspace", "--locked"]))
}

pub fn miri(args: &MiriArgs) -> anyhow::Result<()> {
    install_miri()?;
    let packages: Vec<&str> = if args.packages.is_empty() {
        MIRI_PACKAGES.to_vec()
    } else {
        args.packages.iter().map(String::as_str).collect()
    };
    let mut models = vec![("Miri (Stacked Borrows)", "")];
    if args.all_models {
        models.push(("Miri (Tree Borrows)", "-Zmiri-tree-borrows"));
        models.push(("Miri (strict provenance)", "-Zmiri-strict-provenance"));
    }
    for (step, flags) in models {
        let mut command = cargo_on(NIGHTLY, &["miri", "test", "--locked"]);
        for package in &packages {
            command.args(["-p", package]);
        }
        command
            .env("PROPTEST_CASES", args.cases.to_string())
            .env("QUICKCHECK_TESTS", args.cases.to_string());
        if !flags.is_empty() {
            command.env("MIRIFLAGS", flags);
        }
        run(step, &mut command)?;
    }
    Ok(())
}

/// Adds the nightly toolchain's `miri` and `rust-src` components when they are missing.
fn install_miri() -> anyhow::Result<()> {
    let installed = output(std::process::Command::new("rustup").args([
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
            std::process::Command::new("rustup").args([
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
            std::process::Command::new("rustup").args([
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
