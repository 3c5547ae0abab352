//! The conformance suite, on the default region and on one large enough for the
//! logarithmic bins and the second bitmap word to fill up.

use segregated_fit::SegregatedFit;

conformance::suite!(default_region, SegregatedFit);
conformance::suite!(
    region_1mib,
    SegregatedFit,
    region = if cfg!(miri) { 16 * 1024 } else { 1 << 20 }
);
