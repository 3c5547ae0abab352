//! The dialects of `.rep` files that C recorders write, one small file of our own making
//! each in `tests/dialects/` (the same files seed the parser's fuzz target): each parses
//! with exactly the warning it should give, and the broken one is an error naming its
//! file and line.

use std::path::{Path, PathBuf};

use trace::format::{ReadError, WarningKind};
use trace::replay::{ReplayOptions, replay};
use trace::{Op, Trace};

fn dialect(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/dialects")
        .join(name)
}

fn read(name: &str) -> Trace {
    Trace::read(dialect(name)).unwrap_or_else(|error| panic!("{error}"))
}

fn kinds(trace: &Trace) -> Vec<(usize, WarningKind)> {
    trace
        .warnings()
        .iter()
        .map(|w| (w.line, w.kind.clone()))
        .collect()
}

/// Replays on a bump heap, which reuses nothing but the last block: the region must be
/// the bound for the 0 and 1 suggestions of these files, or requests are refused.
fn replays_without_refusal(trace: &Trace) {
    let report = replay::<bump::Bump>(trace, &ReplayOptions::default()).unwrap();
    assert_eq!(report.failed_requests, 0, "{report:?}");
    assert!(report.region > trace.suggested_heap());
}

#[test]
fn free_of_null_is_skipped() {
    let trace = read("free-null.rep");
    assert_eq!(kinds(&trace), [(6, WarningKind::FreeOfNull { count: 3 })]);
    assert_eq!(trace.ops().len(), 7);
    assert!(trace.ops().iter().all(|op| op.id() < 3));
    replays_without_refusal(&trace);
}

#[test]
fn realloc_of_null_allocates() {
    let trace = read("realloc-null.rep");
    assert_eq!(
        kinds(&trace),
        [(5, WarningKind::ReallocAllocates { id: 0, count: 3 })]
    );
    assert_eq!(trace.ops()[0], Op::Alloc { id: 0, size: 24 });
    assert_eq!(trace.ops()[2], Op::Realloc { id: 0, size: 100 });
    replays_without_refusal(&trace);
}

#[test]
fn crlf_line_ends_are_plain_text() {
    let bytes = std::fs::read(dialect("crlf.rep")).unwrap();
    assert!(
        bytes.windows(2).any(|w| w == b"\r\n"),
        "crlf.rep lost its CRLF line ends (see .gitattributes)"
    );
    let trace = read("crlf.rep");
    assert!(trace.warnings().is_empty(), "{:?}", trace.warnings());
    assert_eq!(trace.ops().len(), 7);
    replays_without_refusal(&trace);
}

#[test]
fn an_op_count_one_less_than_the_ops_is_a_warning() {
    let trace = read("op-count-one-less.rep");
    assert_eq!(
        kinds(&trace),
        [(
            3,
            WarningKind::OpCount {
                declared: 7,
                found: 8
            }
        )]
    );
    assert_eq!(trace.ops().len(), 8);
    let path = dialect("op-count-one-less.rep");
    assert_eq!(
        trace.warnings()[0].to_string(),
        format!(
            "{}:3: warning: the header declares 7 operations but 8 lines follow: all are read",
            path.display()
        )
    );
    replays_without_refusal(&trace);
}

#[test]
fn a_missing_size_is_an_error_with_file_and_line() {
    let path = dialect("missing-size.rep");
    let error = Trace::read(&path).unwrap_err();
    assert!(matches!(&error, ReadError::Parse(e) if e.line == 7));
    assert_eq!(
        error.to_string(),
        format!(
            "{}:7: missing field: `a` needs an id and a size, the size is missing",
            path.display()
        )
    );
}

#[test]
fn every_file_of_the_folder_is_tested_here() {
    let mut names: Vec<String> = std::fs::read_dir(dialect(""))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "crlf.rep",
            "free-null.rep",
            "missing-size.rep",
            "op-count-one-less.rep",
            "realloc-null.rep"
        ]
    );
}
