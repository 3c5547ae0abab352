//! The conformance suite, with both placements. Miri runs the split one only: it runs
//! every line of unsafe code the other does, and the high-end carving besides.

use headerless::{Headerless, LowEnd, SplitEnds};

conformance::suite!(split_ends, Headerless<SplitEnds>);
#[cfg(not(miri))]
conformance::suite!(low_end, Headerless<LowEnd>);
