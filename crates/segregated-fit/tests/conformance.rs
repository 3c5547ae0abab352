//! The conformance suite, on the default region and, natively, on one large enough for
//! the logarithmic bins of both bitmap words to fill up. (Under Miri the default 4 KiB
//! region already reaches the second word, whose first bins hold blocks from 1 KiB.)

use segregated_fit::SegregatedFit;

conformance::suite!(default_region, SegregatedFit);

#[cfg(not(miri))]
mod large {
    use segregated_fit::SegregatedFit;

    conformance::suite!(region_1mib, SegregatedFit, region = 1 << 20);
}
