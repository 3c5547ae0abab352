use super::*;

/// Checks what the page relies on when it draws a state: the stretches tile the region
/// in address order, the used ones are exactly the live table, each live block is aligned
/// and at least as large as requested, stats agree with the stretches, and `check()`
/// found nothing.
fn assert_drawable(playground: &Playground) {
    let state = playground.state();
    let name = state.heap;
    let mut next = 0;
    for &(offset, size, _) in &state.blocks {
        assert_eq!(offset, next, "{name}: stretches follow each other");
        assert!(size > 0, "{name}: no empty stretch");
        next = offset + size;
    }
    assert_eq!(next, state.region, "{name}: stretches cover the region");
    let used: Vec<(usize, usize)> = state
        .blocks
        .iter()
        .filter(|block| block.2 == "used")
        .map(|&(offset, size, _)| (offset, size))
        .collect();
    assert_eq!(
        used.iter().map(|u| u.0).collect::<Vec<_>>(),
        state.live.iter().map(|l| l.0).collect::<Vec<_>>(),
        "{name}: the used stretches are the live blocks"
    );
    for (&(offset, usable), &(_, size, align)) in used.iter().zip(&state.live) {
        assert!(
            usable >= size,
            "{name}: block at {offset} holds its request"
        );
        assert_eq!(offset % align, 0, "{name}: block at {offset} is aligned");
    }
    let sum = |kind: &str| -> usize {
        state
            .blocks
            .iter()
            .filter(|block| block.2 == kind)
            .map(|block| block.1)
            .sum()
    };
    assert_eq!(state.stats.usable, sum("used"), "{name}: usable bytes");
    assert_eq!(state.stats.free, sum("free"), "{name}: free bytes");
    assert_eq!(
        state.stats.live_blocks,
        state.live.len(),
        "{name}: live blocks"
    );
    assert_eq!(state.check, None, "{name}: the heap's own check");
}

fn last(playground: &Playground) -> Event {
    playground.state().last.cloned().expect("an operation ran")
}

#[test]
fn every_registry_allocator_is_offered() {
    let names: Vec<&str> = kinds().iter().map(|kind| kind.entry.name).collect();
    let registry: Vec<&str> = heaplab::registry::entries()
        .iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, registry);
}

#[test]
fn allocate_free_and_reallocate_keep_the_map_true_for_every_allocator() {
    for index in 0..kinds().len() {
        let mut playground = Playground::open(index, 16 * 1024).unwrap();
        let name = playground.entry().name;
        assert_drawable(&playground);
        let mut offsets = Vec::new();
        for (size, align) in [(100, 8), (24, 16), (300, 64), (8, 1), (1000, 256)] {
            assert!(playground.allocate(size, align), "{name}: {size}/{align}");
            let event = last(&playground);
            assert_eq!(event.op, "allocate");
            offsets.push(event.offset.unwrap());
            assert_drawable(&playground);
        }
        // The most recent block: every allocator reclaims it, bump included.
        let newest = *offsets.last().unwrap();
        assert!(playground.free(newest), "{name}");
        assert_eq!(last(&playground).offset, Some(newest));
        assert!(playground.state().live.iter().all(|l| l.0 != newest));
        assert_drawable(&playground);
        assert!(playground.free(offsets[1]), "{name}");
        assert_drawable(&playground);
        assert!(!playground.free(offsets[1]), "{name}: freed twice");
        assert_eq!(last(&playground).cause, Some("no-such-block"));
        assert!(playground.reallocate(offsets[0], 180), "{name}");
        let moved = last(&playground).offset.unwrap();
        let state = playground.state();
        assert!(state.live.contains(&(moved, 180, 8)), "{name}");
        drop(state);
        assert_drawable(&playground);
    }
}

#[test]
fn refusals_say_why() {
    for index in 0..kinds().len() {
        let mut playground = Playground::open(index, 4096).unwrap();
        let name = playground.entry().name;
        assert!(!playground.allocate(0, 8));
        assert_eq!(last(&playground).cause, Some("zero-size"), "{name}");
        assert!(!playground.allocate(16, 3));
        assert_eq!(last(&playground).cause, Some("bad-layout"), "{name}");
        assert!(!playground.allocate(8192, 8));
        assert_eq!(last(&playground).cause, Some("unsupported"), "{name}");
        // Fill the heap: the refusal that ends it is out of memory when fewer bytes are
        // free than asked, and fragmentation when enough are free but not in one piece.
        let mut served = 0;
        while playground.allocate(700, 8) {
            served += 1;
        }
        assert!(served > 0, "{name}: a 4 KiB heap serves 700 bytes");
        let event = last(&playground);
        let free = playground.state().stats.free;
        let (cause, words) = if free >= 700 {
            ("fragmentation", "fragmentation")
        } else {
            ("out-of-memory", "out of memory")
        };
        assert_eq!(event.cause, Some(cause), "{name}: {event:?}");
        assert!(event.message.contains(words), "{}", event.message);
        assert_drawable(&playground);
    }
}

#[test]
fn a_free_list_refused_among_scattered_holes_blames_fragmentation() {
    for index in 0..kinds().len() {
        let mut playground = Playground::open(index, 4096).unwrap();
        if !playground.entry().name.starts_with("free-list") {
            continue;
        }
        let mut offsets = Vec::new();
        while playground.allocate(400, 8) {
            offsets.push(last(&playground).offset.unwrap());
        }
        for &offset in offsets.iter().step_by(2) {
            assert!(playground.free(offset));
        }
        let free = playground.state().stats.free;
        assert!(free >= 800, "{free} bytes free");
        assert!(!playground.allocate(800, 8));
        let event = last(&playground);
        assert_eq!(event.cause, Some("fragmentation"), "{event:?}");
        assert!(event.message.contains(&format!("{free} bytes are free")));
        assert_drawable(&playground);
    }
}

#[test]
fn a_replay_runs_every_operation_and_keeps_the_map_true() {
    for index in 0..kinds().len() {
        let mut playground = Playground::open(index, 4096).unwrap();
        let name = playground.entry().name;
        let workload = Workload::ALL
            .iter()
            .position(|w| *w == Workload::RandomMixed)
            .unwrap();
        playground.load_trace(workload, 3, 1).unwrap();
        let len = playground.state().trace.as_ref().unwrap().len;
        assert!(len > 100, "{name}: {len} ops");
        assert_eq!(playground.entry().name, name, "same allocator");
        let mut ran = 0;
        while ran < len {
            let step = playground.step(97);
            assert!(step > 0, "{name}: stuck at {ran}");
            ran += step;
            assert_eq!(playground.state().trace.as_ref().unwrap().next, ran);
            assert_drawable(&playground);
        }
        assert_eq!(playground.step(10), 0, "{name}: nothing after the end");
        // The trace is balanced: whatever the heap served, it got back.
        assert!(playground.state().live.is_empty(), "{name}");
    }
}

#[test]
fn a_replay_stops_at_a_refusal_and_skips_the_refused_blocks_later() {
    let bump = kinds()
        .iter()
        .position(|kind| kind.entry.name == "bump")
        .unwrap();
    let mut playground = Playground::open(bump, 4096).unwrap();
    // A bump heap cannot reuse the short-lived blocks freed under long-lived ones, so
    // this trace runs it out of memory.
    let short_long = Workload::ALL
        .iter()
        .position(|w| *w == Workload::ShortLong)
        .unwrap();
    playground.load_trace(short_long, 1, 1).unwrap();
    let len = playground.state().trace.as_ref().unwrap().len;
    let ran = playground.step(len);
    assert!(ran < len, "a refusal stops the run");
    let event = last(&playground);
    assert_eq!(event.trace_op, Some(ran - 1));
    assert!(!event.ok);
    assert_eq!(event.cause, Some("out-of-memory"), "{event:?}");
    let mut skipped = false;
    while playground.state().trace.as_ref().unwrap().next < len {
        playground.step(1);
        skipped |= last(&playground).cause == Some("skipped");
    }
    assert!(skipped, "the refused blocks' frees are skipped");
    assert_drawable(&playground);
}

#[test]
fn hand_freeing_a_trace_block_makes_the_trace_skip_it() {
    let mut playground = Playground::open(1, 4096).unwrap();
    playground.load_trace(0, 5, 1).unwrap();
    playground.step(1);
    let offset = last(&playground).offset.unwrap();
    assert!(playground.free(offset));
    let len = playground.state().trace.as_ref().unwrap().len;
    let mut skipped = 0;
    while playground.step(1) == 1 {
        skipped += usize::from(last(&playground).cause == Some("skipped"));
    }
    assert_eq!(playground.state().trace.as_ref().unwrap().next, len);
    assert_eq!(skipped, 1, "only the free of the hand-freed block");
    assert_drawable(&playground);
}

#[test]
fn bad_arguments_get_answers() {
    assert!(Playground::open(kinds().len(), 4096).is_err());
    assert!(Playground::open(0, 0).is_err());
    assert!(Playground::open(0, MAX_REGION + 1).is_err());
    let mut playground = Playground::open(0, 4096).unwrap();
    assert!(playground.load_trace(Workload::ALL.len(), 1, 1).is_err());
    assert!(playground.load_trace(0, 1, 0).is_err());
    assert!(playground.load_trace(0, 1, MAX_SCALE + 1).is_err());
    assert_eq!(playground.step(5), 0, "no trace loaded");
    assert!(!playground.reallocate(12, 40));
    assert_eq!(last(&playground).cause, Some("no-such-block"));
}
