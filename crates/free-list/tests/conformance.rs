//! The conformance suite, once per placement policy.

use free_list::{BestFit, FirstFit, FreeList, NextFit};

conformance::suite!(first_fit, FreeList<FirstFit>);
conformance::suite!(next_fit, FreeList<NextFit>);
conformance::suite!(best_fit, FreeList<BestFit>);
