//! `cargo xtask figures`: writes everything the book shows from real runs into
//! `book/src/generated/`: heap maps, fragmentation plots, result tables, the output of
//! the chapter demos and of the book's example programs.
//!
//! The files are not committed: `cargo xtask book` regenerates them before every build,
//! so a fresh clone builds the whole book with that one command. The measuring is done by
//! an optimised build (the tables report throughput, which a debug build would distort),
//! by the `figures` program of `crates/book-tests`.

use std::path::PathBuf;

use anyhow::Context;

use crate::shell::{cargo, root};

#[derive(clap::Args, Default)]
pub struct Args {
    /// Seed of the generated traces (default: the book's, so the book's numbers are
    /// reproducible).
    #[arg(long)]
    seed: Option<u64>,
    /// Scale of the generated traces: longer traces, slower figures (default: the book's).
    #[arg(long)]
    scale: Option<usize>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    generate(args)
}

/// The folder the book includes generated files from.
pub fn out_dir() -> PathBuf {
    root().join("book/src/generated")
}

/// Regenerates every generated file of the book, from scratch.
pub fn generate(args: &Args) -> anyhow::Result<()> {
    let out = out_dir();
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let bench_summary = root().join("target/bench/summary.md");
    let mut figures = cargo(&[
        "run",
        "--release",
        "--quiet",
        "-p",
        "book-tests",
        "--bin",
        "figures",
        "--",
    ]);
    figures.arg(&out).arg("--bench-summary").arg(&bench_summary);
    if let Some(seed) = args.seed {
        figures.args(["--seed", &seed.to_string()]);
    }
    if let Some(scale) = args.scale {
        figures.args(["--scale", &scale.to_string()]);
    }
    crate::shell::run(
        "figures and tables from real runs (optimised build)",
        &mut figures,
    )?;
    for example in book_tests::figures::EXAMPLES {
        let mut command = cargo(&[
            "run",
            "--release",
            "--quiet",
            "-p",
            "book-tests",
            "--example",
            example,
        ]);
        // Compiler errors and panics go to the terminal; only the program's output is kept.
        let printed = crate::shell::output(command.stderr(std::process::Stdio::inherit()))
            .with_context(|| format!("running the example {example}"))?;
        let file = out.join(format!("{example}.txt"));
        std::fs::write(&file, printed).with_context(|| format!("writing {}", file.display()))?;
    }
    crate::coursework::figures(&out)?;
    println!("figures: written to {}", out.display());
    Ok(())
}
