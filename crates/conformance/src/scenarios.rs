//! One scenario per rule: the operations that put a heap where the rule bites.
//!
//! Every operation runs under the model, so every scenario checks every rule the model
//! knows after every step; the scenario picks the situations (sizes, orders, a full
//! heap, a dirty block) and adds the few checks only it can make, such as "after
//! freeing everything the heap is as free as when new". A scenario's name is the rule
//! it was written for; a violation names the rule actually broken, which is usually
//! the same one.

use rawheap::{Capabilities, RawHeap, Reuse};

use crate::bench::{Bench, Session};
use crate::model::Outcome;
use crate::property;
use crate::violation::Violation;

type Verdict = Result<(), Violation>;

/// Under Miri a step costs thousands of times more, and what Miri adds (undefined
/// behaviour in a heap's unsafe code) shows in a few operations; so there the
/// scenarios take every third of their sizes and alignments, fill heaps with fewer
/// blocks and generate shorter workloads.
const MIRI: bool = cfg!(miri);

/// Operations in each generated workload.
const WORKLOAD: usize = if MIRI { 12 } else { 400 };

/// How many times the region's size a loop of allocate and free moves through.
const REUSE_LAPS: usize = if MIRI { 1 } else { 4 };

/// The items of a scenario's list to try: all of them, or every third under Miri.
fn sample<T>(items: impl IntoIterator<Item = T>) -> impl Iterator<Item = T> {
    items.into_iter().step_by(if MIRI { 3 } else { 1 })
}

/// The size of the blocks that fill a heap: small, yet few enough (about 500 in any
/// region, 16 under Miri) that checking every block after every step stays quick.
fn unit(region: usize) -> usize {
    (region / if MIRI { 16 } else { 512 }).max(24)
}

/// A small layout every heap can hold many of: a [`unit`] aligned to 8, or as close as
/// the capabilities allow.
fn small(caps: &Capabilities, region: usize) -> (usize, u8) {
    let size = unit(region).min(caps.max_size).max(1);
    let align = 8.min(caps.max_align).max(1);
    (size, log2(align))
}

/// `log2` of the largest power of two `<= n` (`n >= 1`).
fn log2(n: usize) -> u8 {
    (usize::BITS - 1 - n.leading_zeros()) as u8
}

/// The largest alignment the alignment rules try: up to `max_align`, one page, and a
/// quarter of the region.
fn top_align_log2(caps: &Capabilities, region: usize) -> u8 {
    log2(caps.max_align.min(4096).min(region / 4).max(1))
}

fn free_every_other<H: RawHeap>(s: &mut Session<'_, H>) -> Verdict {
    // From the back, so that freeing does not move the blocks still to be freed.
    for index in (0..s.live()).rev().step_by(2) {
        s.free(index)?;
    }
    Ok(())
}

fn workload<H: RawHeap>(b: &mut Bench, offset: usize, seed: u64) -> Verdict {
    let ops = property::generated(b.region(), seed, WORKLOAD);
    b.fresh::<H>(offset)?.run_all(&ops)
}

pub(crate) fn zero_size_is_refused<H: RawHeap>(b: &mut Bench) -> Verdict {
    let mut s = b.fresh::<H>(0)?;
    for align_log2 in 0..=4 {
        s.alloc(0, align_log2)?;
        s.alloc_zeroed(0, align_log2)?;
    }
    s.alloc(16, 3)?;
    s.realloc(0, 0, 3)?;
    s.realloc(0, 0, 0)?;
    s.free(0)?;
    s.alloc(0, 3)?;
    Ok(())
}

pub(crate) fn modest_requests_are_served<H: RawHeap>(b: &mut Bench) -> Verdict {
    const SIZES: [usize; 18] = [
        1, 2, 3, 5, 7, 8, 13, 16, 24, 31, 33, 64, 100, 255, 256, 1000, 4095, 4096,
    ];
    let largest = b.region() / 8;
    for &size in sample(SIZES.iter().filter(|&&size| size <= largest)) {
        for align_log2 in [0, 3] {
            let mut s = b.fresh::<H>(0)?;
            s.alloc(size, align_log2)?;
            s.alloc_zeroed(size, align_log2)?;
            s.realloc(0, size * 2, align_log2)?;
        }
    }
    let mut s = b.fresh::<H>(0)?;
    for &size in sample(SIZES.iter().cycle().take(3 * SIZES.len())) {
        s.alloc(size.min(largest).max(1), 3)?;
    }
    Ok(())
}

pub(crate) fn oversized_requests_are_refused<H: RawHeap>(b: &mut Bench) -> Verdict {
    let region = b.region();
    let mut s = b.fresh::<H>(0)?;
    let caps = s.capabilities();
    let sizes = [
        region + 1,
        region.saturating_mul(2),
        region.saturating_mul(16) + 3,
        caps.max_size.saturating_add(1),
    ];
    for size in sizes {
        s.alloc(size, 0)?;
        s.alloc_zeroed(size, 3)?;
    }
    // Region-sized: any answer but a panic; if served, the model checks the block.
    s.alloc(region, 0)?;
    s.free_last()?;
    s.alloc(24, 3)?;
    for size in sizes {
        s.realloc(0, size, 3)?;
    }
    s.alloc(region, 3)?;
    Ok(())
}

pub(crate) fn absurd_layouts_are_refused<H: RawHeap>(b: &mut Bench) -> Verdict {
    let huge = isize::MAX as usize;
    let layouts = [
        (huge, 0),
        (huge - 7, 3),
        (huge - 4095, 12),
        (huge / 2 + 1, 0),
        (usize::MAX / 4, 6),
        (1, 30),
        (16, 40),
        (1 << 40, 3),
        (8, 62),
    ];
    let mut s = b.fresh::<H>(0)?;
    for (size, align_log2) in layouts {
        s.alloc(size, align_log2)?;
        s.alloc_zeroed(size, align_log2)?;
    }
    s.alloc(24, 3)?;
    for (size, align_log2) in layouts {
        s.realloc(0, size, align_log2)?;
    }
    Ok(())
}

pub(crate) fn alignment_is_honoured<H: RawHeap>(b: &mut Bench) -> Verdict {
    let top = top_align_log2(&b.fresh::<H>(0)?.capabilities(), b.region());
    for align_log2 in sample(0..=top) {
        let align = 1usize << align_log2;
        let mut s = b.fresh::<H>(0)?;
        for size in [1, 3, align, align + 1, 24] {
            s.alloc(size, align_log2)?;
        }
        s.free(1)?;
        s.alloc(5, align_log2)?;
        s.realloc(0, align * 2 + 8, align_log2)?;
        s.alloc(7, 0)?;
        let last = s.live().saturating_sub(1);
        s.realloc(last, 7, align_log2)?;
    }
    Ok(())
}

pub(crate) fn blocks_lie_inside_the_region<H: RawHeap>(b: &mut Bench) -> Verdict {
    let mut s = b.fresh::<H>(0)?;
    s.fill(1000, 3)?;
    s.fill(100, 0)?;
    s.fill(8, 3)?;
    s.fill(1, 0)?;
    Ok(())
}

pub(crate) fn writes_stay_inside_the_region<H: RawHeap>(b: &mut Bench) -> Verdict {
    // Every scenario's heap is watched for writes outside its region; this one adds
    // region lengths that are a multiple of 8 but not of 16, and of nothing, where a
    // heap that rounds its end up writes past it, one at an odd address, and fills
    // them to their last bytes.
    let region = b.region();
    for (trim, offset) in sample([(8, 0), (1, 0), (13, 3)]) {
        let mut s = b.fresh_sized::<H>(region - trim, offset)?;
        let unit = unit(region) + trim;
        s.alloc(1, 0)?;
        s.fill(unit, 3)?;
        s.fill(unit / 4 + 1, 0)?;
        free_every_other(&mut s)?;
        for index in (0..s.live()).rev().step_by(3) {
            s.realloc(index, unit * 2 + 5, 0)?;
        }
        while s.live() > 0 {
            s.free_last()?;
        }
        s.fill(unit * 3 + 1, 4)?;
    }
    // Regions smaller than a word, too small for a heap's own bookkeeping (an end
    // marker, a word of marks): making a heap there, and whatever it then serves (no
    // request is modest beside them, so refusing all is fine), stays inside them too.
    for (len, offset) in sample([(0, 5), (1, 0), (5, 3), (7, 1)]) {
        let mut s = b.fresh_sized::<H>(len, offset)?;
        s.fill(1, 0)?;
        while s.live() > 0 {
            s.free_last()?;
        }
    }
    Ok(())
}

pub(crate) fn blocks_never_overlap<H: RawHeap>(b: &mut Bench) -> Verdict {
    workload::<H>(b, 0, 1)?;
    let unit = unit(b.region());
    let mut s = b.fresh::<H>(0)?;
    s.fill(unit, 3)?;
    free_every_other(&mut s)?;
    // Blocks that fit the holes, then ones that fit what the holes leave.
    s.fill(unit / 2, 3)?;
    s.fill(unit / 4, 0)?;
    Ok(())
}

pub(crate) fn usable_size_is_truthful<H: RawHeap>(b: &mut Bench) -> Verdict {
    let mut s = b.fresh::<H>(0)?;
    for size in sample(1..=64) {
        s.alloc(size, 0)?;
    }
    free_every_other(&mut s)?;
    for size in sample((1..=64).step_by(3)) {
        s.alloc(size, 3)?;
    }
    for index in 0..s.live().min(16) {
        s.realloc(index, (index * 7 + 1) % 100 + 1, 2)?;
    }
    Ok(())
}

pub(crate) fn contents_are_preserved<H: RawHeap>(b: &mut Bench) -> Verdict {
    workload::<H>(b, 0, 2)?;
    let unit = unit(b.region());
    let mut s = b.fresh::<H>(0)?;
    for &size in sample([24, 200, 8, 1000, 64, 3, 500].iter().cycle().take(28)) {
        s.alloc(size, 3)?;
    }
    free_every_other(&mut s)?;
    for index in 0..s.live() {
        s.realloc(index, 77 + index * 13, 3)?;
    }
    s.fill(unit, 3)?;
    Ok(())
}

pub(crate) fn allocate_zeroed_gives_zeros<H: RawHeap>(b: &mut Bench) -> Verdict {
    let (largest, unit) = (b.region() / 8, unit(b.region()));
    let mut s = b.fresh::<H>(0)?;
    for size in sample([1, 7, 24, 100, 1000, 4096]) {
        if size > largest {
            break;
        }
        // Fresh memory (which is not zero), then a block that held data.
        s.alloc_zeroed(size, 3)?;
        s.alloc(size, 3)?;
        s.free_last()?;
        s.alloc_zeroed(size, 3)?;
        // A small zeroed block inside a larger dirty hole.
        s.alloc(size * 2, 3)?;
        s.free_last()?;
        s.alloc_zeroed(size, 3)?;
    }
    free_every_other(&mut s)?;
    s.fill(unit, 3)?;
    free_every_other(&mut s)?;
    for _ in 0..8 {
        s.alloc_zeroed(unit, 3)?;
    }
    Ok(())
}

pub(crate) fn reallocate_keeps_contents<H: RawHeap>(b: &mut Bench) -> Verdict {
    let mut s = b.fresh::<H>(0)?;
    s.alloc(24, 3)?;
    for (size, align_log2) in [
        (100, 3),
        (1000, 3),
        (10, 3),
        (1, 0),
        (300, 4),
        (300, 6),
        (2000, 3),
        (40, 3),
    ] {
        s.realloc(0, size, align_log2)?;
    }
    for size in [64, 64, 64, 64] {
        s.alloc(size, 3)?;
    }
    // Growing a block with live neighbours, then into the hole a freed one left.
    s.realloc(1, 700, 3)?;
    s.free(2)?;
    s.realloc(1, 90, 3)?;
    s.realloc(1, 130, 3)?;
    for round in 0..3 {
        for index in 0..s.live() {
            s.realloc(index, 50 + 37 * (index + round) % 400, 3)?;
        }
    }
    Ok(())
}

pub(crate) fn failed_reallocate_keeps_the_block<H: RawHeap>(b: &mut Bench) -> Verdict {
    let region = b.region();
    let mut s = b.fresh::<H>(0)?;
    s.alloc(24, 3)?;
    s.alloc(100, 3)?;
    for (size, align_log2) in [
        (region + 1, 3),
        (isize::MAX as usize - 4095, 12),
        (16, 40),
        (0, 3),
    ] {
        s.realloc(0, size, align_log2)?;
        s.realloc(1, size, align_log2)?;
    }
    // A full heap cannot grow a block by half the region.
    s.fill(unit(region), 3)?;
    for index in [0, 1, s.live() / 2] {
        s.realloc(index, region / 2, 3)?;
    }
    Ok(())
}

pub(crate) fn exhaustion_is_an_error_not_a_crash<H: RawHeap>(b: &mut Bench) -> Verdict {
    let region = b.region();
    let mut s = b.fresh::<H>(0)?;
    let caps = s.capabilities();
    let (size, align_log2) = small(&caps, region);
    // The model rejects a refusal that is not Exhausted for a layout served before.
    let refusal = s.fill(size, align_log2)?;
    let filled = s.live();
    if caps.reuse != Reuse::Never && filled > 0 {
        s.free_last()?;
        if let Outcome::Refused(again) = s.alloc(size, align_log2)? {
            return Err(s.fail(format!(
                "the heap held {filled} blocks of {size} bytes and refused the next ({refusal:?}); after the most recent block was freed, the same request was refused again ({again:?}): the heap did not stay usable although capabilities().reuse is {:?}",
                caps.reuse
            )));
        }
    }
    // Smaller requests may still fit in what is left; any answer but a panic will do.
    s.fill((size / 4).max(1), 0)?;
    Ok(())
}

pub(crate) fn methods_never_panic<H: RawHeap>(b: &mut Bench) -> Verdict {
    let region = b.region();
    let mut s = b.fresh::<H>(0)?;
    // Every kind of request on a fresh heap: small, a page, large, the whole region,
    // more than it, absurd; each also zeroed and as a resize.
    for size in [
        1,
        24,
        4096,
        region / 4,
        region / 2,
        region,
        region + 1,
        usize::MAX / 4,
    ] {
        for align_log2 in [0, 3, 12] {
            s.alloc(size, align_log2)?;
            s.alloc_zeroed(size, align_log2)?;
            s.realloc(0, size, align_log2)?;
        }
        while s.live() > 0 {
            s.free_last()?;
        }
    }
    // A full heap: every request refused, every block grown, freed in the middle.
    let unit = unit(region);
    s.fill(unit, 3)?;
    s.fill(1, 0)?;
    for index in sample(0..s.live().min(8)) {
        s.realloc(index, unit * 4, 3)?;
        s.alloc_zeroed(unit * 2, 3)?;
    }
    free_every_other(&mut s)?;
    s.fill(unit * 3, 3)?;
    drop(s);
    workload::<H>(b, 0, 30)
}

pub(crate) fn freed_memory_is_reused<H: RawHeap>(b: &mut Bench) -> Verdict {
    let region = b.region();
    let mut s = b.fresh::<H>(0)?;
    let caps = s.capabilities();
    if caps.reuse == Reuse::Never {
        return Ok(());
    }
    let (size, align_log2) = small(&caps, region);
    for round in 0..=REUSE_LAPS * region / size {
        if let Outcome::Refused(refusal) = s.alloc(size, align_log2)? {
            return Err(s.fail(format!(
                "allocating and freeing one {size}-byte block in a loop was refused ({refusal:?}) at round {round}, after {} bytes had been handed out and given back: freed memory is not reused although capabilities().reuse is {:?}",
                round * size,
                caps.reuse
            )));
        }
        s.free_last()?;
    }
    let mut s = b.fresh::<H>(0)?;
    s.fill(size, align_log2)?;
    let filled = s.live();
    // Any: blocks from all over the heap; MostRecent: the last ones, newest first.
    let freed: Vec<usize> = match caps.reuse {
        Reuse::Any => (0..filled).rev().step_by(4).collect(),
        _ => (filled.saturating_sub(3)..filled).rev().collect(),
    };
    for &index in &freed {
        s.free(index)?;
    }
    for served in 0..freed.len() {
        if let Outcome::Refused(refusal) = s.alloc(size, align_log2)? {
            return Err(s.fail(format!(
                "in a heap full of {filled} blocks of {size} bytes, {} of them were freed, but only {served} of as many new requests for {size} bytes were served before one was refused ({refusal:?}); capabilities().reuse is {:?}",
                freed.len(),
                caps.reuse
            )));
        }
    }
    Ok(())
}

pub(crate) fn freeing_everything_restores_the_heap<H: RawHeap>(b: &mut Bench) -> Verdict {
    let region = b.region();
    let mut s = b.fresh::<H>(0)?;
    let caps = s.capabilities();
    if !caps.restores_when_empty {
        return Ok(());
    }
    let new = s.stats();
    // The second round shows that a restored heap restores again.
    for round in 0..if MIRI { 1 } else { 2 } {
        if caps.reuse == Reuse::MostRecent {
            for (i, size) in [24, 100, 8, 1000, 3, 64].into_iter().enumerate() {
                s.alloc(size, (i % 4) as u8)?;
            }
            s.realloc(s.live().saturating_sub(1), 500, 3)?;
            while s.live() > 0 {
                s.free_last()?;
            }
        } else {
            s.run_all(&property::generated(region, 10 + round, WORKLOAD))?;
            s.fill(unit(region), 3)?;
            free_every_other(&mut s)?;
            while s.live() > 0 {
                s.free(0)?;
            }
        }
        let now = s.stats();
        if (now.free, now.largest_free) != (new.free, new.largest_free) {
            return Err(s.fail(format!(
                "after every block was freed (round {}), free is {} and largest_free {}, but the new heap had free {} and largest_free {}: freed memory was not merged back or not given back",
                round + 1,
                now.free,
                now.largest_free,
                new.free,
                new.largest_free
            )));
        }
    }
    Ok(())
}

pub(crate) fn stats_match_the_model<H: RawHeap>(b: &mut Bench) -> Verdict {
    workload::<H>(b, 0, 3)?;
    let mut s = b.fresh::<H>(0)?;
    for size in [10, 20, 30, 40] {
        s.alloc_zeroed(size, 3)?;
        s.realloc(0, size * 3, 3)?;
        s.realloc(0, size, 3)?;
    }
    free_every_other(&mut s)?;
    Ok(())
}

pub(crate) fn walk_tiles_the_region<H: RawHeap>(b: &mut Bench) -> Verdict {
    workload::<H>(b, 0, 4)?;
    let top = top_align_log2(&b.fresh::<H>(0)?.capabilities(), b.region());
    let unit = unit(b.region());
    let mut s = b.fresh::<H>(0)?;
    for align_log2 in sample((0..=top).cycle().take(3 * usize::from(top + 1))) {
        s.alloc(3 + usize::from(align_log2), align_log2)?;
    }
    free_every_other(&mut s)?;
    s.fill(unit + 3, 0)?;
    Ok(())
}

pub(crate) fn walk_shows_exactly_the_live_blocks<H: RawHeap>(b: &mut Bench) -> Verdict {
    workload::<H>(b, 0, 5)?;
    let unit = unit(b.region());
    let mut s = b.fresh::<H>(0)?;
    s.fill(unit, 3)?;
    free_every_other(&mut s)?;
    s.fill(unit * 3, 3)?;
    Ok(())
}

pub(crate) fn high_water_covers_every_block<H: RawHeap>(b: &mut Bench) -> Verdict {
    let mut s = b.fresh::<H>(0)?;
    for round in 0..2 {
        for size in [8, 64, 512, 24, 1000] {
            s.alloc(size + round, 3)?;
        }
        while s.live() > 0 {
            s.free_last()?;
        }
    }
    drop(s);
    workload::<H>(b, 0, 6)
}

pub(crate) fn check_passes_after_every_operation<H: RawHeap>(b: &mut Bench) -> Verdict {
    workload::<H>(b, 0, 7)?;
    workload::<H>(b, 0, 8)
}

pub(crate) fn unaligned_regions_are_handled<H: RawHeap>(b: &mut Bench) -> Verdict {
    let top = top_align_log2(&b.fresh::<H>(0)?.capabilities(), b.region());
    for offset in sample([1, 3, 7]) {
        let mut s = b.fresh::<H>(offset)?;
        for align_log2 in sample(0..=top) {
            s.alloc(1, align_log2)?;
            s.alloc(24 + usize::from(align_log2), align_log2)?;
        }
        free_every_other(&mut s)?;
        drop(s);
        workload::<H>(b, offset, 20 + offset as u64)?;
    }
    Ok(())
}

pub(crate) fn random_operation_sequences_keep_every_rule<H: RawHeap>(b: &mut Bench) -> Verdict {
    property::check::<H>(b.region())
}
