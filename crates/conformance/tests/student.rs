//! A student's crate in miniature: a heap type (the teaching heap of `support`, written
//! in this crate's tests) and the whole suite in one line, as the crate documentation
//! shows. Each rule is its own test: `cargo test -p conformance --test student` lists
//! `conformance::blocks_never_overlap` and the rest. It is also the proof that the
//! correct heap passes every rule.

mod support;

use support::ListHeap;

// The leading `::` names the crate: the module the macro writes is also called
// `conformance`, and from then on a bare `conformance::` in this file is ambiguous.
::conformance::suite!(conformance, ListHeap);

// The region can be chosen too; a small one fills up after a few blocks. (Under Miri
// the default region is this small already.)
#[cfg(not(miri))]
::conformance::suite!(small_region, ListHeap, region = 4096);
