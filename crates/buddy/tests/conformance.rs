//! The conformance suite, with the default parameters and with a small block and few
//! orders (so that the order cap, not the region, bounds the largest block). Under
//! Miri only the default runs: the capped heap runs the same code.

use buddy::Buddy;

conformance::suite!(default_parameters, Buddy);
#[cfg(not(miri))]
conformance::suite!(capped_orders, Buddy<32, 8>);
