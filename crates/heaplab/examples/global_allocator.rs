//! A real std program whose every allocation is served by a heaplab allocator.
//!
//! `cargo run -p heaplab --example global_allocator`
//!
//! The `#[global_allocator]` is a `StaticHeap`: a free list over a 32 MiB static region,
//! behind a spinlock, built on the first request. The program builds collections and
//! strings the ordinary way, then prints what the heap saw.

use std::collections::{BTreeMap, HashMap};

use heaplab::StaticHeap;
use heaplab::free_list::FreeList;

#[global_allocator]
static HEAP: StaticHeap<FreeList, { 32 << 20 }> = StaticHeap::new();

fn main() {
    let text = (0..20_000)
        .map(|i| format!("word{} ", i % 1_500))
        .collect::<String>();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for word in text.split_whitespace() {
        *counts.entry(word).or_default() += 1;
    }
    let mut by_count: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (word, count) in &counts {
        by_count
            .entry(*count)
            .or_default()
            .push(word.to_uppercase());
    }
    let live_before_drop = HEAP.stats();
    let distinct = counts.len();
    drop(by_count);
    drop(counts);
    drop(text);
    let after = HEAP.stats();

    println!("{distinct} distinct words counted with every allocation in a heaplab free list\n");
    println!("{:<28} {:>14} {:>14}", "", "while working", "after drops");
    for (label, a, b) in [
        (
            "live blocks",
            live_before_drop.live_blocks,
            after.live_blocks,
        ),
        (
            "requested bytes",
            live_before_drop.requested,
            after.requested,
        ),
        ("usable bytes", live_before_drop.usable, after.usable),
        (
            "overhead bytes",
            live_before_drop.overhead(),
            after.overhead(),
        ),
        ("free bytes", live_before_drop.free, after.free),
        (
            "largest free block",
            live_before_drop.largest_free,
            after.largest_free,
        ),
        (
            "high-water mark",
            live_before_drop.high_water,
            after.high_water,
        ),
    ] {
        println!("{label:<28} {a:>14} {b:>14}");
    }
    assert!(
        after.requested < live_before_drop.requested,
        "dropping the collections freed memory"
    );
}
