//! The conformance suite: one test per rule of the `RawHeap` contract. `cargo test`
//! lists them (`conformance::blocks_never_overlap`, ...); a failing one prints the rule,
//! what went wrong, and the shortest sequence of calls that shows it, as a test to paste.

use assignment::Heap;

::conformance::suite!(conformance, Heap);
