//! The conformance suite.

use bump::Bump;

conformance::suite!(suite, Bump);
