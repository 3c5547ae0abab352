//! Arbitrary bytes fed to the `.rep` parser: it must answer every input with a trace or
//! an error naming a line, never panic; a trace it accepts must survive writing and
//! parsing again unchanged, and what it writes is the plain format, which parses back
//! without a warning whatever dialect the input was in. `cargo xtask fuzz` seeds it with
//! a small file of each dialect (`crates/trace/tests/dialects`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use trace::Trace;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = core::str::from_utf8(bytes) else {
        return;
    };
    let Ok(trace) = Trace::parse(text, "fuzz.rep") else {
        return;
    };
    for warning in trace.warnings() {
        assert!(
            warning.to_string().starts_with("fuzz.rep:"),
            "a warning that names no file: {warning}"
        );
    }
    let written = trace.to_string();
    let again = Trace::parse(&written, "rewritten.rep")
        .unwrap_or_else(|error| panic!("a written trace does not parse: {error}\n{written}"));
    assert!(
        again.warnings().is_empty(),
        "a written trace parses with warnings: {:?}\n{written}",
        again.warnings()
    );
    assert_eq!(
        (trace.suggested_heap(), trace.num_ids(), trace.weight(), trace.ops()),
        (again.suggested_heap(), again.num_ids(), again.weight(), again.ops()),
        "writing and parsing again changed the trace"
    );
});
