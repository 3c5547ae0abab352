use crate::format::{
    HeaderField, Invalid, InvalidTrace, Op, ParseError, ParseReason, Profile, ReadError, Trace,
    WarningKind, served_size,
};

/// The header of a trace with 4 ids and `ops` operations.
fn header(ops: usize) -> String {
    format!("4096\n4\n{ops}\n1\n")
}

fn parse_error(text: &str) -> ParseError {
    match Trace::parse(text, "t.rep") {
        Ok(trace) => panic!("expected an error, parsed {trace:?}"),
        Err(error) => error,
    }
}

/// Asserts that `text` fails at `line` with exactly `message` after the location.
fn assert_error(text: &str, line: usize, message: &str) {
    let error = parse_error(text);
    assert_eq!(error.line, line, "{error}");
    assert_eq!(error.to_string(), format!("t.rep:{line}: {message}"));
}

#[test]
fn parses_header_and_every_op() {
    let text = "20000\n3\n5\n1\na 0 512\na 1 128\nr 0 640\nf 1\nf 0\n";
    let trace = Trace::parse(text, "t.rep").unwrap();
    assert_eq!(trace.suggested_heap(), 20000);
    assert_eq!(trace.num_ids(), 3);
    assert_eq!(trace.weight(), 1);
    assert_eq!(
        trace.ops(),
        [
            Op::Alloc { id: 0, size: 512 },
            Op::Alloc { id: 1, size: 128 },
            Op::Realloc { id: 0, size: 640 },
            Op::Free { id: 1 },
            Op::Free { id: 0 },
        ]
    );
    assert_eq!(trace.to_string(), text);
}

#[test]
fn tolerates_blank_lines_trailing_whitespace_and_crlf() {
    let text = "\n 100 \r\n2\t\n\n2\n0\r\n\n  a 1 0  \n\nf   1 \n\n";
    let trace = Trace::parse(text, "t.rep").unwrap();
    assert_eq!(trace.weight(), 0);
    assert_eq!(
        trace.ops(),
        [Op::Alloc { id: 1, size: 0 }, Op::Free { id: 1 }]
    );
}

#[test]
fn an_id_may_be_allocated_again_after_its_free() {
    let text = format!("{}a 0 8\nf 0\na 0 16\nf 0\n", header(4));
    assert_eq!(Trace::parse(&text, "t.rep").unwrap().ops().len(), 4);
}

#[test]
fn a_trace_may_leave_blocks_live() {
    let trace = Trace::parse(&format!("{}a 0 8\n", header(1)), "t.rep").unwrap();
    assert_eq!(trace.profile().live_at_end, 1);
}

#[test]
fn missing_header_fields_name_the_line_where_they_should_be() {
    assert_error(
        "",
        1,
        "missing header field: suggested heap size (the file ends before it)",
    );
    assert_error(
        "100\n5\n",
        3,
        "missing header field: number of operations (the file ends before it)",
    );
    assert_error(
        "100\n5\n0\n",
        4,
        "missing header field: weight (the file ends before it)",
    );
}

#[test]
fn bad_header_fields() {
    assert_error(
        "-1\n5\n0\n1\n",
        1,
        "bad header field: suggested heap size must be a non-negative integer, found `-1`",
    );
    assert_error(
        "100\nfive\n0\n1\n",
        2,
        "bad header field: number of ids must be a non-negative integer, found `five`",
    );
    assert_error(
        "100\n5\n0\n1 2\n",
        4,
        "bad header field: weight must be a non-negative integer, found `1 2`",
    );
    assert_eq!(
        parse_error("100\n5\n0.5\n1\n").reason,
        ParseReason::BadHeader {
            field: HeaderField::NumOps,
            text: "0.5".into()
        }
    );
}

#[test]
fn unknown_op() {
    assert_error(
        &format!("{}a 0 8\nx 0 8\n", header(2)),
        6,
        "unknown op `x` (expected `a`, `f` or `r`)",
    );
    assert_error(
        &format!("{}alloc 0 8\n", header(1)),
        5,
        "unknown op `alloc` (expected `a`, `f` or `r`)",
    );
}

#[test]
fn missing_fields() {
    assert_error(
        &format!("{}a 0\n", header(1)),
        5,
        "missing field: `a` needs an id and a size, the size is missing",
    );
    assert_error(
        &format!("{}a 0 8\nr 0\n", header(2)),
        6,
        "missing field: `r` needs an id and a size, the size is missing",
    );
    assert_error(
        &format!("{}f\n", header(1)),
        5,
        "missing field: `f` needs an id, the id is missing",
    );
}

#[test]
fn extra_fields() {
    assert_error(
        &format!("{}a 0 8\nf 0 8\n", header(2)),
        6,
        "extra field `8`: `f` takes an id",
    );
    assert_error(
        &format!("{}a 0 8 9\n", header(1)),
        5,
        "extra field `9`: `a` takes an id and a size",
    );
}

#[test]
fn non_numeric_fields() {
    assert_error(
        &format!("{}a 0 big\n", header(1)),
        5,
        "the size must be a non-negative integer, found `big`",
    );
    assert_error(
        &format!("{}a -1 8\n", header(1)),
        5,
        "the id must be a non-negative integer, found `-1`",
    );
    assert_error(
        &format!("{}a 0 8\nr 0 0x10\n", header(2)),
        6,
        "the size must be a non-negative integer, found `0x10`",
    );
}

#[test]
fn id_out_of_range() {
    assert_error(
        &format!("{}a 3 8\na 4 8\n", header(2)),
        6,
        "id 4 is out of range: the header allows ids below 4",
    );
}

#[test]
fn alloc_of_a_live_id() {
    assert_error(
        &format!("{}a 0 8\na 1 8\na 0 8\n", header(3)),
        7,
        "`a` of id 0, which is already live",
    );
}

#[test]
fn free_of_unknown_ids_and_free_or_realloc_of_freed_ids() {
    assert_error(
        &format!("{}a 0 8\nf 1\n", header(2)),
        6,
        "`f` of id 1, which was never allocated",
    );
    assert_error(
        &format!("{}a 0 8\nf 0\nf 0\n", header(3)),
        7,
        "`f` of id 0, which was already freed",
    );
    assert_error(
        &format!("{}a 2 8\n\nf 2\nr 2 16\n", header(3)),
        8,
        "`r` of id 2, which was already freed",
    );
}

/// The warnings of `text` as `t.rep` would print them.
fn warnings(text: &str) -> Vec<String> {
    let trace = Trace::parse(text, "t.rep").unwrap_or_else(|error| panic!("{error}"));
    trace.warnings().iter().map(ToString::to_string).collect()
}

#[test]
fn an_op_count_that_disagrees_with_the_ops_is_a_warning_on_the_header_line() {
    let one_more = format!("{}a 0 8\nf 0\n", header(1));
    assert_eq!(Trace::parse(&one_more, "t.rep").unwrap().ops().len(), 2);
    assert_eq!(
        warnings(&one_more),
        ["t.rep:3: warning: the header declares 1 operations but 2 lines follow: all are read"]
    );
    // The count's line moves with blank lines before it.
    let one_less = format!("\n{}a 0 8\nf 0\na 1 8\n", header(4));
    assert_eq!(Trace::parse(&one_less, "t.rep").unwrap().ops().len(), 3);
    assert_eq!(
        warnings(&one_less),
        ["t.rep:4: warning: the header declares 4 operations but 3 lines follow: all are read"]
    );
    assert_eq!(warnings(&format!("{}a 0 8\nf 0\n", header(2))), [""; 0]);
}

#[test]
fn free_of_a_negative_id_is_free_of_null_and_skipped() {
    let text = format!("{}f -1\na 0 8\nf -1\nf -7\nf 0\n", header(5));
    let trace = Trace::parse(&text, "t.rep").unwrap();
    assert_eq!(
        trace.ops(),
        [Op::Alloc { id: 0, size: 8 }, Op::Free { id: 0 }]
    );
    assert_eq!(
        warnings(&text),
        [
            "t.rep:5: warning: `f` of a negative id is free(NULL), which does nothing: skipped \
          (3 lines in the file, the first here)"
        ]
    );
    // The skipped lines still count as op lines of the header.
    assert!(
        trace
            .warnings()
            .iter()
            .all(|w| !matches!(w.kind, WarningKind::OpCount { .. }))
    );
    // Not a number, or minus zero, is still an error; so is a negative id to allocate.
    assert_error(
        &format!("{}f -x\n", header(1)),
        5,
        "the id must be a non-negative integer, found `-x`",
    );
    assert_error(
        &format!("{}f -0\n", header(1)),
        5,
        "the id must be a non-negative integer, found `-0`",
    );
    assert_error(
        &format!("{}f -1 8\n", header(1)),
        5,
        "extra field `8`: `f` takes an id",
    );
}

#[test]
fn realloc_of_an_id_never_allocated_is_an_allocation() {
    let text = format!("{}r 2 24\nr 2 48\nr 3 8\nf 2\nf 3\n", header(5));
    let trace = Trace::parse(&text, "t.rep").unwrap();
    assert_eq!(
        trace.ops(),
        [
            Op::Alloc { id: 2, size: 24 },
            Op::Realloc { id: 2, size: 48 },
            Op::Alloc { id: 3, size: 8 },
            Op::Free { id: 2 },
            Op::Free { id: 3 },
        ]
    );
    assert_eq!(
        warnings(&text),
        [
            "t.rep:5: warning: `r` of id 2, which was never allocated, is realloc(NULL, n): \
          read as `a` (2 lines in the file, the first here)"
        ]
    );
    // A written trace is plain: it parses back with no warning.
    let again = Trace::parse(&trace.to_string(), "w.rep").unwrap();
    assert!(again.warnings().is_empty());
    assert_eq!(again.ops(), trace.ops());
}

#[test]
fn every_dialect_at_once_warns_in_line_order() {
    let text = "100\r\n4\r\n3\r\n1\r\nr 0 8\r\nf -1\r\nf 0\r\na 1 16\r\n";
    let trace = Trace::parse(text, "c.rep").unwrap();
    assert_eq!(trace.ops().len(), 3);
    let lines: Vec<usize> = trace.warnings().iter().map(|w| w.line).collect();
    assert_eq!(lines, [3, 5, 6]);
    assert_eq!(
        trace.warnings()[0].kind,
        WarningKind::OpCount {
            declared: 3,
            found: 4
        }
    );
}

#[test]
fn errors_count_blank_lines() {
    assert_error(
        "\n\n100\n\n2\n1\n1\n\n\nf 0\n",
        10,
        "`f` of id 0, which was never allocated",
    );
}

#[test]
fn written_traces_parse_back_unchanged() {
    let trace = Trace::new(
        65536,
        7,
        3,
        vec![
            Op::Alloc { id: 6, size: 0 },
            Op::Alloc {
                id: 2,
                size: 100_000,
            },
            Op::Realloc { id: 6, size: 9 },
            Op::Free { id: 2 },
            Op::Free { id: 6 },
        ],
    )
    .unwrap();
    let mut bytes = Vec::new();
    trace.write(&mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text, trace.to_string());
    assert!(text.starts_with("65536\n7\n5\n3\na 6 0\n"));
    assert_eq!(Trace::parse(&text, "w.rep"), Ok(trace));
}

#[test]
#[cfg_attr(miri, ignore = "Miri isolates the file system")]
fn read_names_the_file_in_both_kinds_of_error() {
    let dir = std::env::temp_dir().join(format!("trace-read-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.rep");
    std::fs::write(&good, "100\n1\n2\n1\na 0 5\nf 0\n").unwrap();
    assert_eq!(Trace::read(&good).unwrap().ops().len(), 2);

    let bad = dir.join("bad.rep");
    std::fs::write(&bad, "100\n1\n1\n1\nf 0\n").unwrap();
    let error = Trace::read(&bad).unwrap_err();
    assert!(matches!(&error, ReadError::Parse(e) if e.line == 5));
    assert_eq!(
        error.to_string(),
        format!(
            "{}:5: `f` of id 0, which was never allocated",
            bad.display()
        )
    );

    let missing = dir.join("missing.rep");
    let error = Trace::read(&missing).unwrap_err();
    assert!(matches!(error, ReadError::Io { ref path, .. } if *path == missing));
    assert!(
        error
            .to_string()
            .starts_with(&missing.display().to_string())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn new_rejects_invalid_ops_with_their_index() {
    let ops = vec![
        Op::Alloc { id: 0, size: 1 },
        Op::Free { id: 0 },
        Op::Free { id: 0 },
    ];
    assert_eq!(
        Trace::new(0, 1, 1, ops),
        Err(InvalidTrace {
            op_index: 2,
            reason: Invalid::NotLive {
                op: 'f',
                id: 0,
                freed: true
            }
        })
    );
    assert_eq!(
        Trace::new(0, 1, 1, vec![Op::Alloc { id: 1, size: 1 }])
            .unwrap_err()
            .to_string(),
        "op 0: id 1 is out of range: the header allows ids below 1"
    );
}

#[test]
fn a_huge_declared_op_count_is_a_warning_not_an_allocation() {
    let trace = Trace::parse(
        &format!("100\n{}\n{}\n1\n", usize::MAX, usize::MAX),
        "t.rep",
    )
    .unwrap();
    assert!(trace.ops().is_empty());
    assert_eq!(
        trace.warnings()[0].kind,
        WarningKind::OpCount {
            declared: usize::MAX,
            found: 0
        }
    );
}

#[test]
fn profile_counts_ops_and_peak_live_bytes() {
    // live bytes after each op: 10, 30, 25 (0 is served as 1 byte), 26, 16, 6, 5, 0
    let ops = vec![
        Op::Alloc { id: 0, size: 10 },
        Op::Alloc { id: 1, size: 20 },
        Op::Realloc { id: 1, size: 15 },
        Op::Alloc { id: 2, size: 0 },
        Op::Free { id: 0 },
        Op::Realloc { id: 1, size: 5 },
        Op::Free { id: 1 },
        Op::Free { id: 2 },
    ];
    let trace = Trace::new(0, 3, 1, ops).unwrap();
    assert_eq!(
        trace.profile(),
        Profile {
            allocs: 3,
            frees: 3,
            reallocs: 2,
            peak_live_bytes: 30,
            max_size: 20,
            live_at_end: 0,
        }
    );
    assert_eq!(served_size(0), 1);
    assert_eq!(served_size(7), 7);
}
