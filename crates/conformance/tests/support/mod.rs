//! The teaching heap the tests run the suite on: [`conformance::teaching`], correct and
//! with one flaw at a time, and the region size the tests use.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code, unused_imports)]

pub use conformance::teaching::*;

/// The region size the tests use.
pub const REGION: usize = conformance::DEFAULT_REGION;
