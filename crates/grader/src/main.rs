//! `heaplab-grade`: grades a student's heap (or a class of them) with heaplab's
//! conformance suite and traces. See the `grader` crate's documentation.

use clap::Parser;

/// Grade a student's RawHeap: the suite rule by rule, traces, a score.
#[derive(Parser)]
#[command(name = "heaplab-grade", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: grader::cli::Args,
}

fn main() -> anyhow::Result<()> {
    grader::cli::run(&Cli::parse().args)
}
