//! `check()` on a TLSF heap whose free list is broken one way at a time by a stray
//! write: each broken invariant is named. (The bitmaps and a block on the wrong list are
//! broken through the fields themselves, in the crate's unit tests.)

use conformance::tamper::{TagListInvariants, check_names_broken_tag_lists};
use tlsf::Tlsf;

#[test]
fn check_names_each_way_a_list_breaks() {
    check_names_broken_tag_lists::<Tlsf>(TagListInvariants {
        outside_span: "free[fl][sl] holds only blocks of the span",
        used: "free[fl][sl] holds only free blocks",
        back_link: "free[fl][sl] is linked both ways: a block links back to the one before it",
        uncounted: "the lists hold as many blocks as there are free blocks",
    });
}
