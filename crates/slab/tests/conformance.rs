//! The conformance suite, over each backing heap.
//!
//! Slabs are pages aligned to pages, and the rules fill heaps with objects of several
//! classes at once, a slab each: the regions hold a few dozen slabs (a dozen under
//! Miri, where the suite's default of 4 KiB would hold none). A free list pays for a
//! page-aligned page with about two pages (its block header sits in front of the
//! page), so it gets the larger region.

use buddy::Buddy;
use free_list::FreeList;
use slab::Slab;

const OVER_BUDDY: usize = if cfg!(miri) { 1 << 15 } else { 1 << 16 };
const OVER_FREE_LIST: usize = if cfg!(miri) { 1 << 16 } else { 1 << 20 };

conformance::suite!(over_buddy, Slab<Buddy>, region = OVER_BUDDY);
conformance::suite!(over_free_list, Slab<FreeList>, region = OVER_FREE_LIST);
