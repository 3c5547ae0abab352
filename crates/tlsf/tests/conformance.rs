//! The conformance suite, with the default index and with the smallest and largest
//! number of lists per row.

use tlsf::Tlsf;

conformance::suite!(default_index, Tlsf);
conformance::suite!(one_list_per_row, Tlsf<1>);
conformance::suite!(sixty_four_lists_per_row, Tlsf<64>);
