//! `check()` on a segregated-fit heap whose bins are broken one way at a time by a
//! stray write: each broken invariant is named. (A lying bitmap, a block on the wrong
//! bin and a lost top are broken through the fields, in the crate's unit tests.)

use conformance::tamper::{TagListInvariants, check_names_broken_tag_lists};
use segregated_fit::SegregatedFit;

#[test]
fn check_names_each_way_a_bin_breaks() {
    check_names_broken_tag_lists::<SegregatedFit>(TagListInvariants {
        outside_span: "the bins hold only blocks of the span",
        used: "the bins hold only free blocks",
        back_link: "bin links agree: a listed block links back to the one before it",
        uncounted: "the bins hold as many blocks as there are free blocks but the top",
    });
}
