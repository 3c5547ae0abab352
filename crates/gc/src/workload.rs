//! The gc chapter's program, written three ways: freeing by hand ([`Freeing::Manual`]),
//! freeing by hand with one free forgotten ([`Freeing::Leaky`]), and on the collector
//! ([`run_collected`]).
//!
//! The program serves requests. It first builds a long-lived list of `kept` nodes (the
//! data a server keeps, such as a cache); then each request builds a list of `list_len`
//! nodes, reads it through to a checksum, and is done with it. Every version computes the
//! same checksum, which the tests check, so they do the same work; they differ only in
//! how the request lists are given back. The benches and the book's figures run them
//! over the same heaps to compare the costs.

use core::ptr::NonNull;

use rawheap::{AllocError, RawHeap};

use crate::{Collector, Gc, Trace, Tracer};

/// Words of payload in a node, so that a node is the size of a small record (64 bytes
/// with its value and link).
pub const PAYLOAD_WORDS: usize = 6;

/// The size of the program: how many requests, how long their lists, how much is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Requests served.
    pub rounds: usize,
    /// Nodes in each request's list.
    pub list_len: usize,
    /// Nodes of the long-lived list, built first and kept to the end.
    pub kept: usize,
}

/// The program stopped because the heap refused a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The request being served (0 is building the kept list; requests count from 1).
    pub round: usize,
    /// The heap's answer.
    pub error: AllocError,
}

/// How the manual program gives its request lists back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freeing {
    /// Every node.
    Manual,
    /// Every node but the head: the loop that frees starts one node too late.
    Leaky,
}

/// The value of the `i`th node of request `round`, and the payload it carries.
fn node_value(round: usize, i: usize) -> u64 {
    (round as u64) << 32 | i as u64
}

fn payload(value: u64) -> [u64; PAYLOAD_WORDS] {
    core::array::from_fn(|word| value.rotate_left(word as u32 * 8))
}

/// What reading one node adds to the checksum: its value and its last payload word, so
/// that the whole node must be intact.
fn node_sum(value: u64, payload: &[u64; PAYLOAD_WORDS]) -> u64 {
    value.wrapping_add(payload[PAYLOAD_WORDS - 1])
}

/// A node of the manual program, a plain block of the heap.
struct RawNode {
    value: u64,
    payload: [u64; PAYLOAD_WORDS],
    next: Option<NonNull<RawNode>>,
}

/// A node of the collected program: the same fields, with a handle for a link.
pub struct Node {
    value: u64,
    payload: [u64; PAYLOAD_WORDS],
    next: Option<Gc<Node>>,
}

// ANCHOR: node_trace
impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.next.trace(tracer);
    }
}
// ANCHOR_END: node_trace

/// The layout of a manual node.
const RAW_NODE: core::alloc::Layout = core::alloc::Layout::new::<RawNode>();

/// Builds a list of `len` manual nodes for `round`, by prepending.
fn raw_list<H: RawHeap>(
    heap: &mut H,
    round: usize,
    len: usize,
) -> Result<Option<NonNull<RawNode>>, Stopped> {
    let mut head = None;
    for i in 0..len {
        let value = node_value(round, i);
        let node = heap
            .allocate(RAW_NODE)
            .map_err(|error| Stopped { round, error })?
            .cast::<RawNode>();
        let fields = RawNode {
            value,
            payload: payload(value),
            next: head,
        };
        // SAFETY: a fresh block of `RAW_NODE`'s size and alignment.
        unsafe { node.write(fields) };
        head = Some(node);
    }
    Ok(head)
}

/// The checksum of a manual list.
fn raw_sum(mut node: Option<NonNull<RawNode>>) -> u64 {
    let mut sum = 0u64;
    while let Some(ptr) = node {
        // SAFETY: every node of a list built by `raw_list` is live and initialised until
        // `raw_free` frees it.
        let node_ref = unsafe { ptr.as_ref() };
        sum = sum.wrapping_add(node_sum(node_ref.value, &node_ref.payload));
        node = node_ref.next;
    }
    sum
}

/// Frees every node from `node` on.
fn raw_free<H: RawHeap>(heap: &mut H, mut node: Option<NonNull<RawNode>>) {
    while let Some(ptr) = node {
        // SAFETY: a live node of a list built by `raw_list`, read before it is freed.
        node = unsafe { ptr.as_ref() }.next;
        // SAFETY: allocated from `heap` with `RAW_NODE`, and freed once: the list is
        // walked once, and each node is freed after its link was read.
        unsafe { heap.deallocate(ptr.cast(), RAW_NODE) };
    }
}

// ANCHOR: manual
/// The program freeing by hand, over `heap`; `after_round(round, heap)` looks at the heap
/// after each request. Returns the checksum, or where the heap said no. The kept list is
/// freed at the end; blocks of a request that stopped are left in the heap.
pub fn run_manual<H: RawHeap>(
    heap: &mut H,
    shape: Shape,
    freeing: Freeing,
    mut after_round: impl FnMut(usize, &H),
) -> Result<u64, Stopped> {
    let kept = raw_list(heap, 0, shape.kept)?;
    let mut checksum = 0u64;
    for round in 1..=shape.rounds {
        let list = raw_list(heap, round, shape.list_len)?;
        checksum = checksum.wrapping_add(raw_sum(list));
        match freeing {
            Freeing::Manual => raw_free(heap, list),
            // The bug: the loop starts at the second node, and the head is lost.
            // SAFETY: `list`'s head is live; only its link is read.
            Freeing::Leaky => raw_free(heap, list.and_then(|head| unsafe { head.as_ref() }.next)),
        }
        after_round(round, heap);
    }
    checksum = checksum.wrapping_add(raw_sum(kept));
    raw_free(heap, kept);
    Ok(checksum)
}
// ANCHOR_END: manual

/// Builds a list of `len` collected nodes for `round`, by prepending: each new node holds
/// the list so far, and the value being allocated is a root, so nothing else needs to be.
fn gc_list<H: RawHeap>(
    gc: &mut Collector<H>,
    round: usize,
    len: usize,
) -> Result<Option<Gc<Node>>, Stopped> {
    let mut head = None;
    for i in 0..len {
        let value = node_value(round, i);
        let node = Node {
            value,
            payload: payload(value),
            next: head,
        };
        head = Some(gc.alloc(node).map_err(|error| Stopped { round, error })?);
    }
    Ok(head)
}

/// The checksum of a collected list; a node already freed ends it.
fn gc_sum<H: RawHeap>(gc: &Collector<H>, mut node: Option<Gc<Node>>) -> u64 {
    let mut sum = 0u64;
    while let Some(node_ref) = node.and_then(|handle| gc.get(handle)) {
        sum = sum.wrapping_add(node_sum(node_ref.value, &node_ref.payload));
        node = node_ref.next;
    }
    sum
}

// ANCHOR: collected
/// The program on the collector: nothing is freed by hand. The kept list is a root until
/// the end, then a last collection frees it.
pub fn run_collected<H: RawHeap>(
    gc: &mut Collector<H>,
    shape: Shape,
    mut after_round: impl FnMut(usize, &Collector<H>),
) -> Result<u64, Stopped> {
    let kept = gc_list(gc, 0, shape.kept)?;
    if let Some(head) = kept {
        gc.add_root(head);
    }
    let mut checksum = 0u64;
    for round in 1..=shape.rounds {
        let list = gc_list(gc, round, shape.list_len)?;
        checksum = checksum.wrapping_add(gc_sum(gc, list));
        after_round(round, gc);
    }
    checksum = checksum.wrapping_add(gc_sum(gc, kept));
    if let Some(head) = kept {
        gc.remove_root(head);
    }
    gc.collect();
    Ok(checksum)
}
// ANCHOR_END: collected

/// The checksum every version computes for `shape`, worked out without a heap.
pub fn expected_checksum(shape: Shape) -> u64 {
    let list = |round: usize, len: usize| {
        (0..len).fold(0u64, |sum, i| {
            let value = node_value(round, i);
            sum.wrapping_add(node_sum(value, &payload(value)))
        })
    };
    (1..=shape.rounds)
        .map(|round| list(round, shape.list_len))
        .fold(list(0, shape.kept), u64::wrapping_add)
}

/// Builds a rooted list of `len` nodes in `gc` and returns its head: the live heap of the
/// pause measurements.
pub fn rooted_list<H: RawHeap>(
    gc: &mut Collector<H>,
    len: usize,
) -> Result<Option<Gc<Node>>, Stopped> {
    let head = gc_list(gc, 0, len)?;
    if let Some(head) = head {
        gc.add_root(head);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use free_list::{BestFit, FreeList};
    use rawheap::Arena;

    const SHAPE: Shape = Shape {
        rounds: 12,
        list_len: 5,
        kept: 7,
    };

    #[test]
    fn a_node_value_names_its_request_and_place() {
        assert_eq!(node_value(3, 5), 0x0000_0003_0000_0005);
        assert_eq!(node_value(0, 7), 7);
        assert_ne!(node_value(1, 0), node_value(0, 1));
    }

    #[test]
    fn a_payload_is_its_value_turned_a_byte_further_each_word() {
        let value = 0x0102_0304_0506_0708;
        let words = payload(value);
        assert_eq!(words[0], value);
        assert_eq!(words[1], 0x0203_0405_0607_0801);
        assert_eq!(words[PAYLOAD_WORDS - 1], value.rotate_left(40));
    }

    #[test]
    fn reading_a_node_adds_its_value_and_last_word() {
        assert_eq!(node_sum(5, &[1, 2, 3, 4, 6, 7]), 12);
        assert_eq!(node_sum(u64::MAX, &[0, 0, 0, 0, 0, 2]), 1, "wrapping");
    }

    #[test]
    fn a_node_is_a_small_record() {
        assert_eq!(RAW_NODE.size(), 64);
        assert_eq!(core::mem::size_of::<Node>(), 64);
    }

    #[test]
    fn manual_freeing_computes_the_checksum_and_leaves_the_heap_empty() {
        let mut heap = Arena::<FreeList>::new(8192);
        let mut live = Vec::new();
        let sum = run_manual(&mut *heap, SHAPE, Freeing::Manual, |_, h| {
            live.push(h.stats().live_blocks)
        });
        assert_eq!(sum, Ok(expected_checksum(SHAPE)));
        assert_eq!(live, vec![SHAPE.kept; SHAPE.rounds]);
        assert_eq!(heap.stats().live_blocks, 0);
        heap.check().unwrap();
    }

    #[test]
    fn the_leak_grows_by_one_node_a_request() {
        let mut heap = Arena::<FreeList<BestFit>>::new(8192);
        let mut live = Vec::new();
        let sum = run_manual(&mut *heap, SHAPE, Freeing::Leaky, |_, h| {
            live.push(h.stats().live_blocks)
        });
        assert_eq!(sum, Ok(expected_checksum(SHAPE)));
        let growing: Vec<usize> = (1..=SHAPE.rounds).map(|r| SHAPE.kept + r).collect();
        assert_eq!(live, growing);
        assert_eq!(heap.stats().live_blocks, SHAPE.rounds);
    }

    #[test]
    fn the_leak_ends_in_a_refusal() {
        let mut heap = Arena::<FreeList>::new(2048);
        let long = Shape {
            rounds: 1000,
            ..SHAPE
        };
        let stopped = run_manual(&mut *heap, long, Freeing::Leaky, |_, _| {}).unwrap_err();
        assert_eq!(stopped.error, AllocError::Exhausted);
        assert!(stopped.round > 1 && stopped.round < 1000, "{stopped:?}");
    }

    #[test]
    fn the_collector_computes_the_checksum_and_frees_everything_in_the_end() {
        let mut gc = Collector::<FreeList>::new(8192);
        gc.set_threshold(1024);
        let mut collections = Vec::new();
        let sum = run_collected(&mut gc, SHAPE, |_, gc| {
            collections.push(gc.stats().collections)
        });
        assert_eq!(sum, Ok(expected_checksum(SHAPE)));
        assert!(collections.last() > Some(&0), "{collections:?}");
        assert_eq!(gc.stats().live_objects, 0);
        assert_eq!(gc.heap().stats().live_blocks, 0);
        let nodes = SHAPE.kept + SHAPE.rounds * SHAPE.list_len;
        assert_eq!(gc.stats().reclaimed_objects, nodes as u64);
    }

    #[test]
    fn the_collector_runs_where_the_leak_ran_out() {
        let long = Shape {
            rounds: if cfg!(miri) { 40 } else { 200 },
            ..SHAPE
        };
        let mut gc = Collector::<FreeList>::new(2048);
        gc.set_threshold(usize::MAX);
        assert_eq!(
            run_collected(&mut gc, long, |_, _| {}),
            Ok(expected_checksum(long))
        );
        assert!(gc.stats().collections > 1);
        assert!(
            gc.last_collection()
                .is_some_and(|c| c.trigger == crate::Trigger::Requested),
            "the last collection is the program's own"
        );
    }

    #[test]
    fn a_rooted_list_survives_collections() {
        let mut gc = Collector::<FreeList>::new(8192);
        let head = rooted_list(&mut gc, 20).unwrap();
        let collection = gc.collect();
        assert_eq!(collection.marked, 20);
        assert_eq!(collection.freed_objects, 0);
        assert_eq!(
            gc_sum(&gc, head),
            expected_checksum(Shape {
                rounds: 0,
                list_len: 0,
                kept: 20
            })
        );
    }
}
