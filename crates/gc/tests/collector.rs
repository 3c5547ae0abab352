//! What the collector promises, one behaviour at a time.

use std::cell::Cell;
use std::rc::Rc;

use free_list::{BestFit, FreeList};
use gc::{Collector, Gc, Trace, Tracer, Trigger};
use rawheap::{AllocError, RawHeap};

/// A node with any number of links.
struct Node {
    value: u32,
    links: Vec<Gc<Node>>,
}

impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.links.trace(tracer);
    }
}

fn node(value: u32, links: Vec<Gc<Node>>) -> Node {
    Node { value, links }
}

/// Counts its own drops.
struct Counted(Rc<Cell<usize>>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

impl Trace for Counted {
    fn trace(&self, _: &mut Tracer<'_>) {}
}

#[test]
fn a_freed_object_answers_none_through_every_handle() {
    let mut gc = Collector::<FreeList>::new(4096);
    let lost = gc.alloc(node(1, Vec::new())).unwrap();
    let copy = lost;
    assert_eq!(gc.get(lost).map(|n| n.value), Some(1));
    let collection = gc.collect();
    assert_eq!((collection.marked, collection.freed_objects), (0, 1));
    assert!(gc.get(copy).is_none());
    assert!(gc.get_mut(lost).is_none());
    assert!(!gc.is_live(lost));
    // The slot is reused with a new generation: the old handle stays dead.
    let new = gc.alloc(node(2, Vec::new())).unwrap();
    assert_ne!(new, lost);
    assert!(gc.get(lost).is_none());
    assert_eq!(gc.get(new).map(|n| n.value), Some(2));
}

#[test]
fn a_handle_of_another_collector_and_type_is_not_read_as_this_type() {
    let mut numbers = Collector::<FreeList>::new(4096);
    let mut words = Collector::<FreeList>::new(4096);
    let number = numbers.alloc(7u64).unwrap();
    let word = words.alloc(String::from("seven")).unwrap();
    // Same slot, same generation, different types.
    assert_eq!(format!("{number:?}"), format!("{word:?}"));
    assert!(words.get(number).is_none());
    assert!(numbers.get(word).is_none());
    assert_eq!(words.get(word).map(String::as_str), Some("seven"));
}

// ANCHOR: cycle
#[test]
fn a_cycle_lives_while_rooted_and_is_freed_when_not() {
    let mut gc = Collector::<FreeList<BestFit>>::new(4096);
    let a = gc.alloc(node(1, Vec::new())).unwrap();
    let b = gc.alloc(node(2, vec![a])).unwrap();
    gc.get_mut(a).unwrap().links.push(b);
    gc.add_root(a);
    assert_eq!(gc.collect().freed_objects, 0);
    assert_eq!(gc.get(b).map(|n| n.links.clone()), Some(vec![a]));
    assert!(gc.remove_root(a));
    let collection = gc.collect();
    assert_eq!((collection.marked, collection.freed_objects), (0, 2));
    assert_eq!(gc.heap().stats().live_blocks, 0);
    gc.heap().check().unwrap();
}
// ANCHOR_END: cycle

#[test]
fn roots_are_a_multiset() {
    let mut gc = Collector::<FreeList>::new(4096);
    let a = gc.alloc(node(1, Vec::new())).unwrap();
    gc.add_root(a);
    gc.add_root(a);
    assert_eq!(gc.root_count(), 2);
    assert!(gc.remove_root(a));
    gc.collect();
    assert!(gc.is_live(a), "still rooted once");
    assert!(gc.remove_root(a));
    assert!(!gc.remove_root(a), "no longer a root");
    gc.collect();
    assert!(!gc.is_live(a));
}

#[test]
fn destructors_run_once_at_collection_or_when_the_collector_goes() {
    let drops = Rc::new(Cell::new(0));
    let mut gc = Collector::<FreeList>::new(4096);
    let kept = gc.alloc(Counted(drops.clone())).unwrap();
    gc.add_root(kept);
    for _ in 0..3 {
        gc.alloc(Counted(drops.clone())).unwrap();
    }
    gc.collect();
    assert_eq!(drops.get(), 3);
    gc.collect();
    assert_eq!(drops.get(), 3, "a freed object is not dropped again");
    drop(gc);
    assert_eq!(drops.get(), 4);
}

#[test]
fn the_threshold_triggers_a_collection_and_the_new_value_keeps_its_links() {
    let mut gc = Collector::<FreeList>::new(4096);
    let size = core::mem::size_of::<Node>();
    gc.set_threshold(2 * size);
    assert_eq!(gc.threshold(), 2 * size);
    let first = gc.alloc(node(1, Vec::new())).unwrap();
    let second = gc.alloc(node(2, vec![first])).unwrap();
    assert_eq!(gc.stats().collections, 0);
    assert_eq!(gc.stats().since_collection, 2 * size);
    let third = gc.alloc(node(3, vec![second])).unwrap();
    let collection = gc.last_collection().unwrap();
    assert_eq!(collection.trigger, Trigger::Threshold);
    assert_eq!((collection.marked, collection.freed_objects), (2, 0));
    let unrelated = gc.alloc(node(4, Vec::new())).unwrap();
    let fourth = gc.alloc(node(5, vec![third])).unwrap();
    let collection = gc.last_collection().unwrap();
    assert_eq!(
        (
            collection.number,
            collection.marked,
            collection.freed_objects
        ),
        (2, 3, 1)
    );
    assert!(
        !gc.is_live(unrelated),
        "allocated unrooted before the collection"
    );
    assert!(
        [first, second, third, fourth]
            .iter()
            .all(|&n| gc.is_live(n))
    );
    assert_eq!(gc.stats().since_collection, size);
}

#[test]
fn an_exhausted_heap_collects_and_tries_again() {
    let mut gc = Collector::<FreeList>::new(1024);
    gc.set_threshold(usize::MAX);
    let mut last = None;
    for value in 0..100 {
        last = Some(gc.alloc(node(value, Vec::new())).unwrap());
    }
    let collection = gc.last_collection().unwrap();
    assert_eq!(collection.trigger, Trigger::Exhausted);
    assert!(collection.freed_objects > 0);
    assert_eq!(gc.get(last.unwrap()).map(|n| n.value), Some(99));
}

#[test]
fn a_full_heap_of_live_objects_refuses() {
    let mut gc = Collector::<FreeList>::new(1024);
    let error = loop {
        match gc.alloc(node(0, Vec::new())) {
            Ok(handle) => gc.add_root(handle),
            Err(error) => break error,
        }
    };
    assert_eq!(error, AllocError::Exhausted);
    assert_eq!(gc.stats().live_objects, gc.root_count());
    assert_eq!(gc.last_collection().map(|c| c.freed_objects), Some(0));
}

#[test]
fn an_object_larger_than_the_heap_is_refused_without_a_panic() {
    let mut gc = Collector::<FreeList>::new(1024);
    assert!(gc.alloc([0u64; 512]).is_err());
    assert_eq!(gc.stats().live_objects, 0);
}

#[test]
fn zero_sized_objects_take_a_byte() {
    let mut gc = Collector::<FreeList>::new(1024);
    let unit = gc.alloc(()).unwrap();
    assert_eq!(gc.get(unit), Some(&()));
    assert_eq!(gc.stats().live_bytes, 1);
    assert_eq!(gc.collect().freed_bytes, 1);
}

#[test]
fn a_long_list_is_marked_without_recursion() {
    let len = if cfg!(miri) { 300 } else { 100_000 };
    let mut gc = Collector::<FreeList>::new(len * 96);
    let mut head = gc.alloc(node(0, Vec::new())).unwrap();
    gc.add_root(head);
    for value in 1..len as u32 {
        let next = gc.alloc(node(value, vec![head])).unwrap();
        gc.remove_root(head);
        gc.add_root(next);
        head = next;
    }
    assert_eq!(gc.collect().marked, len);
}

#[test]
fn stats_add_up_over_collections() {
    let mut gc = Collector::<FreeList>::new(4096);
    let kept = gc.alloc(1u32).unwrap();
    gc.add_root(kept);
    gc.alloc(2u64).unwrap();
    gc.collect();
    gc.alloc(3u64).unwrap();
    gc.collect();
    let stats = gc.stats();
    assert_eq!(stats.collections, 2);
    assert_eq!(stats.marked_objects, 2, "the root, once per collection");
    assert_eq!((stats.allocated_objects, stats.allocated_bytes), (3, 20));
    assert_eq!((stats.reclaimed_objects, stats.reclaimed_bytes), (2, 16));
    assert_eq!((stats.live_objects, stats.live_bytes), (1, 4));
    assert!(stats.longest_pause <= stats.total_pause);
    assert_eq!(gc.last_collection().map(|c| c.number), Some(2));
}

#[test]
fn debug_shows_slots_roots_threshold_and_stats() {
    let mut gc = Collector::<FreeList<BestFit>>::new(1 << 14);
    gc.set_threshold(1000);
    let leaf = gc.alloc(node(1, vec![])).unwrap();
    gc.add_root(leaf);
    let shown = format!("{gc:?}");
    assert!(
        shown.starts_with("Collector { slots: 1, roots: 1, threshold: 1000, stats: GcStats {"),
        "{shown}"
    );
    assert!(shown.ends_with(", .. }"), "{shown}");
    assert_eq!(format!("{leaf:?}"), "Gc(slot 0, generation 1)");
}

#[test]
fn a_new_collector_collects_after_a_quarter_of_its_region() {
    let gc = Collector::<FreeList>::new(4096);
    assert_eq!(gc.threshold(), 1024);
}

#[test]
fn a_collection_reports_the_bytes_it_kept() {
    let mut gc = Collector::<FreeList>::new(4096);
    let small = gc.alloc(3u32).unwrap();
    let large = gc.alloc([0u64; 5]).unwrap();
    gc.alloc(7u16).unwrap();
    gc.add_root(small);
    gc.add_root(large);
    let collection = gc.collect();
    assert_eq!((collection.marked, collection.live_bytes), (2, 4 + 40));
    assert_eq!((collection.freed_objects, collection.freed_bytes), (1, 2));
}

#[test]
fn a_refusal_after_a_due_collection_does_not_collect_again() {
    let mut gc = Collector::<FreeList>::new(1024);
    // Every allocation is due a collection, so the one that fails has just run one.
    gc.set_threshold(0);
    let error = loop {
        let before = gc.stats().collections;
        match gc.alloc(node(0, Vec::new())) {
            Ok(handle) => gc.add_root(handle),
            Err(error) => break (error, gc.stats().collections - before),
        }
    };
    assert_eq!(error, (AllocError::Exhausted, 1));
    assert_eq!(
        gc.last_collection().map(|c| c.trigger),
        Some(Trigger::Threshold)
    );
}

#[test]
fn handles_to_different_objects_hash_apart() {
    use std::hash::{BuildHasher, BuildHasherDefault};
    // A hasher with fixed keys, so the test sees the same hashes on every run.
    let hasher = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
    let mut gc = Collector::<FreeList>::new(4096);
    let handles: Vec<Gc<u32>> = (0..8).map(|n| gc.alloc(n).unwrap()).collect();
    let mut hashes: Vec<u64> = handles.iter().map(|h| hasher.hash_one(h)).collect();
    assert_eq!(hasher.hash_one(handles[3]), hasher.hash_one(handles[3]));
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(
        hashes.len(),
        handles.len(),
        "a handle's hash says which object"
    );
}

/// Collects with only `holder` rooted and says whether `held` survived.
fn keeps_alive<T: Trace + 'static>(make: impl FnOnce(Gc<Node>) -> T) -> bool {
    let mut gc = Collector::<FreeList>::new(4096);
    let held = gc.alloc(node(9, Vec::new())).unwrap();
    let holder = gc.alloc(make(held)).unwrap();
    gc.add_root(holder);
    gc.collect();
    gc.is_live(held)
}

#[test]
fn handles_inside_arrays_boxes_and_pairs_are_traced() {
    assert!(keeps_alive(|held| [held, held]), "array");
    assert!(keeps_alive(Box::new), "box");
    assert!(keeps_alive(|held| (1u8, held)), "second of a pair");
    assert!(keeps_alive(|held| (held, 1u8)), "first of a pair");
    assert!(keeps_alive(|held| vec![held]), "vector");
    assert!(keeps_alive(Some), "option");
    assert!(
        !keeps_alive(|_| 1u8),
        "a holder without the handle keeps nothing"
    );
}
