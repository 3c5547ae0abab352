//! Unit tests, one module per public module, and the test heap they share.

mod format;
mod generate;
mod pictures;
mod replay;
mod test_heap;
