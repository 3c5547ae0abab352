//! The conformance suite, with the default parameters and with a small block and few
//! orders (so that the order cap, not the region, bounds the largest block).

use buddy::Buddy;

conformance::suite!(default_parameters, Buddy);
conformance::suite!(capped_orders, Buddy<32, 8>);
