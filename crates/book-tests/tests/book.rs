//! The book as a whole: every reference resolves, and the generated folder holds exactly
//! the files the chapters use, all of them made by the figures code from real runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use book_tests::figures::{self, EXAMPLES, GRADER_REPORTS, Options, Output};
use book_tests::links::{self, Generated, Problem};

fn book_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/src")
}

fn listed(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

#[test]
fn every_include_anchor_and_link_of_the_book_resolves() {
    let problems =
        links::check(&book_src(), Generated::Skipped).expect("the book's sources are readable");
    assert!(
        problems.is_empty(),
        "broken references:{}",
        listed(&problems)
    );
}

#[test]
fn the_generated_files_are_exactly_what_the_chapters_use() {
    let dir = std::env::temp_dir().join(format!("heaplab-book-figures-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    figures::generate(&mut Output::new(&dir), &Options::default())
        .expect("the figures are computed");
    for example in EXAMPLES {
        let run = Command::new(env!("CARGO"))
            .args(["run", "--quiet", "-p", "book-tests", "--example", example])
            .output()
            .expect("cargo runs the example");
        assert!(
            run.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        std::fs::write(dir.join(format!("{example}.txt")), run.stdout).unwrap();
    }
    // The grader's reports come from `cargo xtask figures`; here it is enough that the
    // chapters use exactly those names.
    for report in GRADER_REPORTS {
        std::fs::write(dir.join(report), "").unwrap();
    }
    let problems = links::check(&book_src(), Generated::In(&dir)).expect("readable");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        problems.is_empty(),
        "generated files and chapters disagree:{}",
        listed(&problems)
    );
}
