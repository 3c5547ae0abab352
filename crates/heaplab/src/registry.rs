//! Every heaplab allocator in one list, so tools treat them alike.
//!
//! Tools implement [`HeapVisitor`] once and receive each allocator's type in turn from
//! [`for_each_heap`]: replay, benches, the book's figures and the demo all iterate over
//! this list, and an allocator joins all of them by adding one line to it.

use rawheap::RawHeap;

/// What tools show about an allocator beside its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Short name used on command lines and in tables (`free-list-best`).
    pub name: &'static str,
    /// The crate it is benchmarked against, if any.
    pub peer: Option<&'static str>,
    /// One line on what it is.
    pub summary: &'static str,
}

/// Something to do with each allocator type.
pub trait HeapVisitor {
    /// Called once per allocator, with its type as `H`.
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry);
}

/// Calls `visitor` with every heaplab allocator, in the order tables list them.
pub fn for_each_heap(visitor: &mut impl HeapVisitor) {
    use crate::free_list::{BestFit, FirstFit, FreeList, NextFit};
    visitor.visit::<crate::bump::Bump>(&Entry {
        name: "bump",
        peer: Some("bumpalo"),
        summary: "bump pointer; frees only the most recent block",
    });
    visitor.visit::<FreeList<FirstFit>>(&Entry {
        name: "free-list-first",
        peer: Some("linked_list_allocator"),
        summary: "explicit free list, boundary tags, first fit",
    });
    visitor.visit::<FreeList<NextFit>>(&Entry {
        name: "free-list-next",
        peer: Some("linked_list_allocator"),
        summary: "explicit free list, boundary tags, next fit",
    });
    visitor.visit::<FreeList<BestFit>>(&Entry {
        name: "free-list-best",
        peer: Some("linked_list_allocator"),
        summary: "explicit free list, boundary tags, best fit",
    });
    visitor.visit::<crate::segregated_fit::SegregatedFit>(&Entry {
        name: "segregated-fit",
        peer: Some("talc"),
        summary: "segregated free lists: exact and logarithmic bins, bitmap, best fit in a bin",
    });
    visitor.visit::<crate::tlsf::Tlsf>(&Entry {
        name: "tlsf",
        peer: Some("rlsf"),
        summary: "two-level segregated fit: bitmap-indexed size classes, good fit in constant time",
    });
    visitor.visit::<crate::headerless::Headerless>(&Entry {
        name: "headerless",
        peer: Some("linked_list_allocator"),
        summary: "no header on used blocks: the caller gives the size back, a start bitmap tells the neighbours; best fit",
    });
    visitor.visit::<crate::headerless::Headerless<crate::headerless::SplitEnds>>(&Entry {
        name: "headerless-split",
        peer: Some("rlsf"),
        summary: "headerless, small requests from the low end and large ones from the high end",
    });
    visitor.visit::<crate::buddy::Buddy>(&Entry {
        name: "buddy",
        peer: Some("buddy_system_allocator"),
        summary: "binary buddy system: power-of-two blocks, split on allocate, merged with buddies on free",
    });
    visitor.visit::<crate::slab::Slab<crate::buddy::Buddy>>(&Entry {
        name: "slab",
        peer: Some("system"),
        summary: "slab allocator: object caches of size classes, slabs and large blocks from buddy",
    });
    visitor.visit::<crate::slab::Slab<FreeList<FirstFit>>>(&Entry {
        name: "slab-free-list",
        peer: Some("system"),
        summary: "slab allocator over the first-fit free list",
    });
}

/// Every allocator's entry, in order.
pub fn entries() -> Vec<Entry> {
    struct Collect(Vec<Entry>);
    impl HeapVisitor for Collect {
        fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
            self.0.push(*entry);
        }
    }
    let mut collect = Collect(Vec::new());
    for_each_heap(&mut collect);
    collect.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_lowercase() {
        let entries = entries();
        let mut names: Vec<_> = entries.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            entries.len(),
            "duplicate allocator name in the registry"
        );
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        );
    }
}
