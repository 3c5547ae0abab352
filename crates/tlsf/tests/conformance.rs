//! The conformance suite, with the default index and with the smallest and largest
//! number of lists per row. Miri runs the default only: the other two share every line
//! of unsafe code with it, and Miri's time is better spent on one.

use tlsf::Tlsf;

conformance::suite!(default_index, Tlsf);
#[cfg(not(miri))]
conformance::suite!(one_list_per_row, Tlsf<1>);
#[cfg(not(miri))]
conformance::suite!(sixty_four_lists_per_row, Tlsf<64>);
