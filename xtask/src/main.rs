//! `cargo xtask`: every chore of the heaplab workspace, in plain Rust.
//!
//! Run `cargo xtask --help` for the list. Each subcommand prints the commands it runs,
//! stops at the first failure and exits non-zero.

mod checks;
mod shell;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Chores of the heaplab workspace", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything CI runs, in order: fmt, clippy, tests, rustdoc, Miri.
    Ci(checks::CiArgs),
    /// The whole test suite (unit, integration, doc tests) on stable.
    Test,
    /// The conformance suite of every allocator under Miri (nightly; installs miri and
    /// rust-src if missing).
    Miri(checks::MiriArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ci(args) => checks::ci(&args),
        Command::Test => checks::test(),
        Command::Miri(args) => checks::miri(&args),
    }
}
