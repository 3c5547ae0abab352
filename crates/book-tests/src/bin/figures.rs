//! Writes every generated file of the heaplab book into one folder.
//!
//! `cargo xtask figures` runs it in an optimised build, with the book's
//! `src/generated/` folder; see `book_tests::figures`.

use std::path::PathBuf;

use book_tests::figures::{self, DEFAULT_SCALE, DEFAULT_SEED, Options, Output};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Computes the heaplab book's figures and tables from real runs")]
struct Args {
    /// The folder to write into (created if missing).
    out: PathBuf,
    /// The Markdown table of `cargo xtask bench`, shown in the book if it exists.
    #[arg(long)]
    bench_summary: Option<PathBuf>,
    /// Seed of the generated traces.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Scale of the generated traces.
    #[arg(long, default_value_t = DEFAULT_SCALE)]
    scale: usize,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let mut out = Output::new(&args.out);
    let options = Options {
        seed: args.seed,
        scale: args.scale,
        bench_summary: args.bench_summary,
    };
    figures::generate(&mut out, &options)?;
    println!(
        "{} files written to {}",
        out.written().len(),
        args.out.display()
    );
    Ok(())
}
