//! The conformance suite, over each backing heap.
//!
//! Slabs are pages aligned to pages, and the rules fill heaps with objects of several
//! classes at once, a slab each: natively the regions hold a few dozen slabs. A free
//! list pays for a page-aligned page with about two pages (its block header sits in
//! front of the page), so it gets the larger region. Under Miri, where the rules that
//! fill a heap with 1-byte blocks cost the square of the blocks held, the regions
//! hold one or two slabs (the suite's default of 4 KiB would hold none): slab code
//! and the fallback to the backing heap both run.

use buddy::Buddy;
use free_list::FreeList;
use slab::Slab;

const OVER_BUDDY: usize = if cfg!(miri) { 1 << 13 } else { 1 << 16 };
const OVER_FREE_LIST: usize = if cfg!(miri) { 3 << 12 } else { 1 << 20 };

conformance::suite!(over_buddy, Slab<Buddy>, region = OVER_BUDDY);
conformance::suite!(over_free_list, Slab<FreeList>, region = OVER_FREE_LIST);
