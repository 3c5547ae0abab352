//! Arbitrary bytes fed to the `.rep` parser: it must answer every input with a trace or
//! an error naming a line, never panic, and a trace it accepts must survive writing and
//! parsing again unchanged.

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
    let written = trace.to_string();
    let again = Trace::parse(&written, "rewritten.rep")
        .unwrap_or_else(|error| panic!("a written trace does not parse: {error}\n{written}"));
    assert_eq!(trace, again, "writing and parsing again changed the trace");
});
