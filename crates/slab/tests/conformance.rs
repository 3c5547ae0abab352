//! The conformance suite, over each backing heap.

use free_list::FreeList;
use slab::Slab;

/// Slabs are pages aligned to pages: the region holds a few dozen of them, and under
/// Miri enough for the rules that fill a heap with objects of several classes.
const REGION: usize = if cfg!(miri) { 1 << 15 } else { 1 << 20 };

conformance::suite!(over_free_list, Slab<FreeList>, region = REGION);
