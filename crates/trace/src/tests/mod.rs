//! Unit tests, one module per public module, and the test heap they share.

mod format;
// Safe code on thousands of ops: too slow to be worth running under Miri.
#[cfg(not(miri))]
mod generate;
mod peer;
mod pictures;
mod region;
mod replay;
mod test_heap;
