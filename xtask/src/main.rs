//! `cargo xtask`: every chore of the heaplab workspace, in plain Rust.
//!
//! Run `cargo xtask --help` for the list. Each subcommand prints the commands it runs,
//! stops at the first failure and exits non-zero.

mod assignment;
mod bench;
mod book;
mod cbench;
mod chapter;
mod checks;
mod coursework;
mod demo;
mod figures;
mod fuzz;
mod mutants;
mod playground;
mod preload;
mod record;
mod replay;
mod shell;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Chores of the heaplab workspace", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every allocator on one generated workload: heap maps and a table of their stats.
    Demo(demo::DemoArgs),
    /// Build the book (after regenerating its figures); --serve or --open to read it.
    Book(book::Args),
    /// Regenerate the book's figures and tables from real runs into book/src/generated.
    Figures(figures::Args),
    /// Run a chapter's demo: a short scenario, step by step, with heap maps and stats.
    Chapter(chapter::Args),
    /// Everything CI runs, in order: fmt, clippy, tests, rustdoc, benches built, book, Miri.
    Ci(checks::CiArgs),
    /// The everyday tier, the first steps of `ci`: fmt, clippy, and the whole test suite
    /// (unit, integration, doc tests) on stable.
    Test,
    /// Fuzz every allocator (through `conformance::Checked`) and the trace parser with
    /// cargo-fuzz on nightly (installs cargo-fuzz if missing).
    Fuzz(fuzz::FuzzArgs),
    /// The conformance suite of every allocator under Miri (nightly; installs miri and
    /// rust-src if missing).
    Miri(checks::MiriArgs),
    /// Write every generated workload as a .rep trace.
    Traces(replay::TracesArgs),
    /// Measure every allocator on a directory of .rep traces: utilization, fragmentation,
    /// throughput and the malloc lab's performance index.
    Replay(replay::ReplayArgs),
    /// Run the criterion benches (every allocator beside its peers) and write the ratio table.
    Bench(bench::BenchArgs),
    /// Drive the book's heap playground in headless Chromium, served and from file://:
    /// every allocator, allocate, free, reallocate, replay, and check the drawing against
    /// the heap's own reports (installs Chromium and chromedriver as root with apt-get).
    Playground(playground::Args),
    /// Create a student's assignment crate from the coursework template.
    NewAssignment(assignment::Args),
    /// Grade a student's heap (or a folder of them with --all): the suite rule by rule,
    /// traces, a score. The grader is `crates/grader`, installed alone as `heaplab-grade`.
    Grade(Box<grader::cli::Args>),
    /// The coursework kit's own check (a step of `ci`): a fresh assignment, the reference
    /// solution, and the broken and faulty submissions graded; with --class N, a class of
    /// N generated submissions graded in one batch instead.
    Coursework(coursework::Args),
    /// Real programs (python3, perl, gcc) on every allocator through LD_PRELOAD, compared
    /// with their output on the C library's malloc; and python3 recorded as a trace,
    /// replayed on every allocator.
    Preload(preload::Args),
    /// Record a program's allocation trace as a .rep file, through heaplab's malloc:
    /// `cargo xtask record [--out FILE] -- PROGRAM ARGS`.
    Record(record::Args),
    /// Mutation testing (not part of `ci`: too long): cargo-mutants over each allocator
    /// crate and rawheap's tags, bits and align, each judged by the tests that exercise
    /// it; writes the table of caught, missed, timed-out and unviable mutants to
    /// target/mutants/summary.md (installs cargo-mutants if missing).
    Mutants(mutants::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Demo(args) => demo::demo(&args),
        Command::Book(args) => book::run(&args),
        Command::Figures(args) => figures::run(&args),
        Command::Chapter(args) => chapter::run(&args),
        Command::Ci(args) => checks::ci(&args),
        Command::Test => checks::test(),
        Command::Miri(args) => checks::miri(&args),
        Command::Fuzz(args) => fuzz::run_args(&args),
        Command::Traces(args) => replay::traces(args),
        Command::Replay(args) => replay::replay(args),
        Command::Bench(args) => bench::bench(&args),
        Command::Playground(args) => playground::run_args(&args),
        Command::NewAssignment(args) => assignment::run(&args),
        Command::Grade(args) => grader::cli::run(&args),
        Command::Coursework(args) => coursework::run(&args),
        Command::Preload(args) => preload::run(&args),
        Command::Record(args) => record::run(&args),
        Command::Mutants(args) => mutants::run_args(&args),
    }
}
