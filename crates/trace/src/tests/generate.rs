use std::collections::HashMap;

use crate::format::{Op, Trace};
use crate::generate::{MIN_SUGGESTED_HEAP, SUGGESTED_HEAP_FACTOR, Workload, generate};

/// heaplab's workloads and those of the malloc lab's kinds.
fn every() -> impl Iterator<Item = Workload> {
    Workload::ALL.into_iter().chain(Workload::LAB_STYLE)
}

#[test]
fn names_round_trip_and_unknown_names_list_the_known_ones() {
    for workload in every() {
        assert_eq!(workload.name().parse::<Workload>(), Ok(workload));
        assert_eq!(workload.to_string(), workload.name());
    }
    let error = "best-fit".parse::<Workload>().unwrap_err().to_string();
    assert!(error.starts_with("unknown workload `best-fit`; known: small-fixed, "));
    assert!(error.contains("first-fit-adversary, binary, "));
    assert!(error.ends_with("phases"));
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    for workload in every() {
        let trace = generate(workload, 42, 1);
        assert_eq!(trace, generate(workload, 42, 1), "{workload}");
        assert_ne!(trace, generate(workload, 43, 1), "{workload}");
    }
}

#[test]
fn workloads_given_the_same_seed_differ() {
    let mut texts: Vec<String> = every().map(|w| generate(w, 5, 1).to_string()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), every().count());
}

#[test]
fn generated_traces_are_valid_balanced_and_sized_sensibly() {
    for workload in every() {
        let trace = generate(workload, 9, 1);
        let text = trace.to_string();
        assert_eq!(
            Trace::parse(&text, workload.name()).as_ref(),
            Ok(&trace),
            "{workload}"
        );
        let profile = trace.profile();
        assert_eq!(profile.live_at_end, 0, "{workload} frees every block");
        assert!(
            (1000..20_000).contains(&trace.ops().len()),
            "{workload}: {} ops",
            trace.ops().len()
        );
        assert!(trace.suggested_heap() >= MIN_SUGGESTED_HEAP);
        assert!(trace.suggested_heap() >= SUGGESTED_HEAP_FACTOR * profile.peak_live_bytes);
        assert!(
            trace.suggested_heap() < SUGGESTED_HEAP_FACTOR * profile.peak_live_bytes + 4096
                || trace.suggested_heap() == MIN_SUGGESTED_HEAP
        );
        assert_eq!(trace.weight(), 1);
        assert!(
            trace
                .ops()
                .iter()
                .all(|op| !matches!(op, Op::Alloc { size: 0, .. }))
        );
    }
}

#[test]
fn length_grows_with_scale_and_scale_zero_is_empty() {
    for workload in every() {
        let one = generate(workload, 3, 1).ops().len();
        let three = generate(workload, 3, 3).ops().len();
        assert!(
            three > 2 * one,
            "{workload}: {one} ops at scale 1, {three} at 3"
        );
        let empty = generate(workload, 3, 0);
        assert!(empty.ops().is_empty(), "{workload}");
        assert_eq!(empty.suggested_heap(), MIN_SUGGESTED_HEAP);
    }
}

/// Sizes of the `a` and `r` ops.
fn sizes(trace: &Trace) -> Vec<usize> {
    trace
        .ops()
        .iter()
        .filter_map(|op| match *op {
            Op::Alloc { size, .. } | Op::Realloc { size, .. } => Some(size),
            Op::Free { .. } => None,
        })
        .collect()
}

#[test]
fn small_fixed_uses_one_small_size() {
    for seed in 0..5 {
        let sizes = sizes(&generate(Workload::SmallFixed, seed, 1));
        assert!((16..=64).contains(&sizes[0]));
        assert!(sizes.iter().all(|&s| s == sizes[0]));
    }
}

#[test]
fn power_of_two_sizes_are_powers_of_two() {
    let sizes = sizes(&generate(Workload::PowerOfTwo, 1, 1));
    assert!(
        sizes
            .iter()
            .all(|s| s.is_power_of_two() && (8..=4096).contains(s))
    );
    assert!(sizes.contains(&8) && sizes.contains(&4096));
}

#[test]
fn random_mixed_spreads_sizes_over_orders_of_magnitude() {
    let sizes = sizes(&generate(Workload::RandomMixed, 1, 1));
    assert!(sizes.iter().all(|s| (1..=4096).contains(s)));
    assert!(sizes.iter().any(|&s| s < 16));
    assert!(sizes.iter().any(|&s| s >= 2048));
}

#[test]
fn lifo_always_frees_the_newest_live_block() {
    let trace = generate(Workload::Lifo, 2, 1);
    let mut stack = Vec::new();
    for op in trace.ops() {
        match *op {
            Op::Alloc { id, .. } => stack.push(id),
            Op::Free { id } => assert_eq!(stack.pop(), Some(id)),
            Op::Realloc { .. } => panic!("lifo has no realloc"),
        }
    }
}

#[test]
fn fifo_always_frees_the_oldest_live_block() {
    let trace = generate(Workload::Fifo, 2, 1);
    let mut queue = std::collections::VecDeque::new();
    for op in trace.ops() {
        match *op {
            Op::Alloc { id, .. } => queue.push_back(id),
            Op::Free { id } => assert_eq!(queue.pop_front(), Some(id)),
            Op::Realloc { .. } => panic!("fifo has no realloc"),
        }
    }
}

#[test]
fn realloc_growth_grows_blocks_by_doubling() {
    let trace = generate(Workload::ReallocGrowth, 4, 1);
    let mut size = HashMap::new();
    let mut reallocs = 0;
    for op in trace.ops() {
        match *op {
            Op::Alloc { id, size: s } => {
                size.insert(id, s);
            }
            Op::Realloc { id, size: s } => {
                assert_eq!(s, 2 * size[&id]);
                size.insert(id, s);
                reallocs += 1;
            }
            Op::Free { .. } => {}
        }
    }
    assert!(reallocs * 2 > trace.ops().len(), "{reallocs} reallocs");
}

#[test]
fn short_long_blocks_are_mostly_short_lived() {
    let trace = generate(Workload::ShortLong, 4, 1);
    let mut born = HashMap::new();
    let mut lifetimes = Vec::new();
    for (index, op) in trace.ops().iter().enumerate() {
        match *op {
            Op::Alloc { id, .. } => {
                born.insert(id, index);
            }
            Op::Free { id } => lifetimes.push(index - born[&id]),
            Op::Realloc { .. } => {}
        }
    }
    let short = lifetimes.iter().filter(|&&l| l < 50).count();
    let long = lifetimes
        .iter()
        .filter(|&&l| l > trace.ops().len() / 2)
        .count();
    assert!(
        short * 10 > lifetimes.len() * 8,
        "{short} of {}",
        lifetimes.len()
    );
    assert!(long >= 20, "{long} long-lived blocks");
}

/// How the simulated free list is searched.
#[derive(Clone, Copy, Debug)]
enum Policy {
    /// The first hole that fits, holes in address order.
    FirstFitByAddress,
    /// The first hole that fits, most recently freed first (a LIFO free list).
    FirstFitLifo,
    /// The smallest hole that fits.
    BestFit,
}

/// Where a placement policy puts blocks, simulated on offsets alone: 8-byte headers,
/// sizes rounded to 8, free neighbours merged, the top of the heap grows on demand.
/// Returns the high-water mark.
fn simulated_high_water(trace: &Trace, policy: Policy) -> usize {
    // (start, len), in the order the policy searches them.
    let mut holes: Vec<(usize, usize)> = Vec::new();
    let mut top = 0;
    let mut high = 0;
    let mut placed: HashMap<usize, (usize, usize)> = HashMap::new();
    for op in trace.ops() {
        match *op {
            Op::Alloc { id, size } => {
                let need = 8 + size.next_multiple_of(8);
                let mut fits = holes.iter().enumerate().filter(|(_, h)| h.1 >= need);
                let chosen = match policy {
                    Policy::BestFit => fits.min_by_key(|(_, h)| h.1).map(|(i, _)| i),
                    Policy::FirstFitByAddress | Policy::FirstFitLifo => fits.next().map(|(i, _)| i),
                };
                let start = match chosen {
                    Some(i) => {
                        let (start, len) = holes[i];
                        if len == need {
                            holes.remove(i);
                        } else {
                            holes[i] = (start + need, len - need);
                        }
                        start
                    }
                    None => {
                        top += need;
                        top - need
                    }
                };
                high = high.max(start + need);
                placed.insert(id, (start, need));
            }
            Op::Free { id } => {
                let (mut start, mut len) = placed.remove(&id).unwrap();
                if let Some(i) = holes.iter().position(|h| h.0 == start + len) {
                    len += holes.remove(i).1;
                }
                if let Some(i) = holes.iter().position(|h| h.0 + h.1 == start) {
                    let (before, before_len) = holes.remove(i);
                    start = before;
                    len += before_len;
                }
                let at = match policy {
                    Policy::FirstFitLifo => 0,
                    Policy::FirstFitByAddress | Policy::BestFit => {
                        holes.partition_point(|h| h.0 < start)
                    }
                };
                holes.insert(at, (start, len));
            }
            Op::Realloc { .. } => panic!("the adversary has no realloc"),
        }
    }
    high
}

#[test]
fn first_fit_adversary_costs_first_fit_far_more_memory_than_best_fit() {
    for seed in 0..3 {
        let trace = generate(Workload::FirstFitAdversary, seed, 1);
        let best = simulated_high_water(&trace, Policy::BestFit);
        for first_fit in [Policy::FirstFitByAddress, Policy::FirstFitLifo] {
            let first = simulated_high_water(&trace, first_fit);
            assert!(
                first * 10 > best * 13,
                "seed {seed}: {first_fit:?} reaches {first} bytes, best fit {best}"
            );
        }
    }
}

#[test]
fn binary_asks_for_blocks_larger_than_the_freed_holes_and_no_larger_than_hole_and_neighbour() {
    for workload in [Workload::Binary, Workload::Binary2] {
        for seed in 0..5 {
            let sizes = sizes(&generate(workload, seed, 1));
            let n = sizes.len() / 3;
            let (small, large, larger) = (sizes[0], sizes[1], sizes[2 * n]);
            assert!(sizes[..2 * n].chunks(2).all(|pair| pair == [small, large]));
            assert!(sizes[2 * n..].iter().all(|&size| size == larger));
            assert!(
                small < large && large < larger && larger <= large + small,
                "{workload}"
            );
        }
    }
}

#[test]
fn coalescing_asks_for_two_freed_neighbours_joined() {
    let trace = generate(Workload::Coalescing, 1, 1);
    for round in trace.ops().chunks(6) {
        let [
            Op::Alloc { size, .. },
            Op::Alloc { size: second, .. },
            _,
            _,
            Op::Alloc { size: joined, .. },
            _,
        ] = *round
        else {
            panic!("a round is a, a, f, f, a, f: {round:?}");
        };
        assert_eq!((second, joined), (size, 2 * size));
    }
}
