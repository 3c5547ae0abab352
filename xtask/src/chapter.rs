//! `cargo xtask chapter NAME`: a chapter's demo in the terminal. The book's demo script
//! runs on every allocator of the chapter (`free-list` has one per placement policy),
//! printing after each step what the heap answered, a map of the region
//! (`trace::heapmap::ascii`) and its stats. The book shows the same printout.

use anyhow::bail;
use book_tests::scenario;

#[derive(clap::Args)]
pub struct Args {
    /// The chapter: the name of an allocator crate (`bump`, `free-list`).
    name: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let demos = scenario::demos(&args.name);
    if demos.is_empty() {
        bail!(
            "no chapter `{}` has a demo; these do: {}",
            args.name,
            scenario::chapters().join(", ")
        );
    }
    for (_, printout) in demos {
        println!("{printout}");
    }
    Ok(())
}
