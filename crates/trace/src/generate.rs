//! Seeded, deterministic trace generators: [`generate`] and the named [`Workload`]s.
//!
//! The same workload, seed and scale give the same trace on every machine and with every
//! version of this crate's dependencies: randomness comes from ChaCha8, whose output
//! stream is fixed by its specification, seeded by our own SplitMix64 expansion of the
//! `u64` seed, and turned into numbers by the few lines of `Dice` below, not by a
//! library's distributions (which only promise stable values within a minor version).
//!
//! Every generated trace is balanced (each block is freed by the end), never reuses an
//! id, has weight 1, and suggests a region of four times its peak live bytes rounded up
//! to a page, and never less than [`MIN_SUGGESTED_HEAP`].

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use crate::format::{Op, Trace};

/// The smallest suggested heap size of a generated trace: 64 KiB.
pub const MIN_SUGGESTED_HEAP: usize = 64 * 1024;

/// The suggested heap is this many times the trace's peak live bytes.
pub const SUGGESTED_HEAP_FACTOR: usize = 4;

/// A named allocation pattern. Each stresses a different part of an allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Workload {
    /// Many objects of one small size (chosen per seed, 16 to 64 bytes), half freed at
    /// random and allocated again: what a size class or a slab does best.
    SmallFixed,
    /// Sizes spread over 1 B to 4 KiB (log-uniform), frees of random live blocks; a
    /// growth phase then a shrink phase.
    RandomMixed,
    /// Stack discipline: every free is of the most recently allocated live block.
    Lifo,
    /// Queue discipline: every free is of the oldest live block.
    Fifo,
    /// Like `random-mixed` with every size a power of two from 8 B to 4 KiB: exact
    /// fits for a buddy allocator, until headers push a block over the power.
    PowerOfTwo,
    /// Vectors growing by doubling `realloc`, among small objects that get in the way of
    /// growing in place; a vector that reaches its limit is freed and started again.
    ReallocGrowth,
    /// Many blocks that live a few operations, among few that live the whole trace and
    /// end up pinning memory all over the region.
    ShortLong,
    /// Large holes at low addresses and small holes above them (kept apart by small
    /// live blocks), then small requests followed by large ones. First fit cuts the small requests out of the large holes, leaving remainders
    /// just too small for the large requests, which go to fresh memory; best fit puts
    /// each request in the hole that fits it.
    FirstFitAdversary,
    /// The malloc lab's *binary* kind: small and large blocks alternate, every large one
    /// is freed, then slightly larger blocks are asked for (each about the size of a
    /// large hole and the small block beside it). A heap that keeps small and large
    /// blocks apart reuses the large holes; one that interleaves them cannot.
    Binary,
    /// *binary* with smaller blocks (8 to 24 bytes beside 80 to 128), where a header or
    /// rounding is a large part of every block.
    Binary2,
    /// The lab's *coalescing* kind: two neighbours of a few KiB are freed and a block of
    /// their joined size is asked for, again and again: only coalescing serves it in
    /// place.
    Coalescing,
    /// The lab's *random* kind: sizes uniform up to 16 KiB, allocations and frees of
    /// random live blocks interleaved at random.
    Random,
    /// *random* with sizes up to 2 KiB.
    Random2,
    /// The lab's *realloc* kind: one buffer grows by a fixed step, a small block is
    /// allocated after it at every step and the previous one freed, so that the buffer
    /// can grow in place only into what the small blocks leave.
    Realloc,
    /// *realloc* with a larger buffer and smaller steps and small blocks.
    Realloc2,
    /// The kind of the lab's traces recorded from programs (a compiler, a preprocessor,
    /// an expression evaluator): phases that build structures from a few popular small
    /// sizes and some larger buffers, free most of them at the phase's end, and keep a
    /// fraction alive for later phases.
    Phases,
}

impl Workload {
    /// Every workload, in a fixed order.
    pub const ALL: [Workload; 8] = [
        Workload::SmallFixed,
        Workload::RandomMixed,
        Workload::Lifo,
        Workload::Fifo,
        Workload::PowerOfTwo,
        Workload::ReallocGrowth,
        Workload::ShortLong,
        Workload::FirstFitAdversary,
    ];

    /// Generators of the kinds of the CS:APP malloc lab's traces (written here from the
    /// kind of pattern each stresses, not from the course's files).
    pub const LAB_STYLE: [Workload; 8] = [
        Workload::Binary,
        Workload::Binary2,
        Workload::Coalescing,
        Workload::Random,
        Workload::Random2,
        Workload::Realloc,
        Workload::Realloc2,
        Workload::Phases,
    ];

    /// The workload's name, as in trace file names and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Workload::SmallFixed => "small-fixed",
            Workload::RandomMixed => "random-mixed",
            Workload::Lifo => "lifo",
            Workload::Fifo => "fifo",
            Workload::PowerOfTwo => "power-of-two",
            Workload::ReallocGrowth => "realloc-growth",
            Workload::ShortLong => "short-long",
            Workload::FirstFitAdversary => "first-fit-adversary",
            Workload::Binary => "binary",
            Workload::Binary2 => "binary2",
            Workload::Coalescing => "coalescing",
            Workload::Random => "random",
            Workload::Random2 => "random2",
            Workload::Realloc => "realloc",
            Workload::Realloc2 => "realloc2",
            Workload::Phases => "phases",
        }
    }

    /// Mixed into the seed so that workloads given the same seed draw unrelated numbers.
    const fn stream(self) -> u64 {
        self as u64 + 1
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`Workload`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownWorkload(pub String);

impl fmt::Display for UnknownWorkload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown workload `{}`; known: ", self.0)?;
        let names: Vec<&str> = Workload::ALL
            .iter()
            .chain(&Workload::LAB_STYLE)
            .map(|w| w.name())
            .collect();
        f.write_str(&names.join(", "))
    }
}

impl std::error::Error for UnknownWorkload {}

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
            .chain(Workload::LAB_STYLE)
            .find(|workload| workload.name() == name)
            .ok_or_else(|| UnknownWorkload(name.to_string()))
    }
}

/// The trace of `workload` for `seed`. Its length grows linearly with `scale`: scale 1
/// gives a few thousand operations, scale 0 an empty trace.
pub fn generate(workload: Workload, seed: u64, scale: usize) -> Trace {
    let mut dice = Dice::new(seed, workload.stream());
    let mut b = Builder::default();
    if scale == 0 {
        return b.finish();
    }
    match workload {
        Workload::SmallFixed => small_fixed(&mut b, &mut dice, scale),
        Workload::RandomMixed => mixed(&mut b, &mut dice, scale, |d| d.log_uniform(1, 4096)),
        Workload::Lifo => lifo(&mut b, &mut dice, scale),
        Workload::Fifo => fifo(&mut b, &mut dice, scale),
        Workload::PowerOfTwo => mixed(&mut b, &mut dice, scale, |d| 1 << d.between(3, 12)),
        Workload::ReallocGrowth => realloc_growth(&mut b, &mut dice, scale),
        Workload::ShortLong => short_long(&mut b, &mut dice, scale),
        Workload::FirstFitAdversary => first_fit_adversary(&mut b, &mut dice, scale),
        Workload::Binary => binary(&mut b, &mut dice, scale, (4, 12), (40, 64)),
        Workload::Binary2 => binary(&mut b, &mut dice, scale, (1, 3), (10, 16)),
        Workload::Coalescing => coalescing(&mut b, &mut dice, scale),
        Workload::Random => mixed_at(&mut b, &mut dice, scale, 50, |d| d.between(1, 16384)),
        Workload::Random2 => mixed_at(&mut b, &mut dice, scale, 50, |d| d.between(1, 2048)),
        Workload::Realloc => realloc_steps(&mut b, &mut dice, scale, 512, 128, 128),
        Workload::Realloc2 => realloc_steps(&mut b, &mut dice, scale, 4096, 16, 16),
        Workload::Phases => phases(&mut b, &mut dice, scale),
    }
    b.finish()
}

fn small_fixed(b: &mut Builder, d: &mut Dice, scale: usize) {
    let size = 8 * d.between(2, 8);
    let n = 1000 * scale;
    let mut live: Vec<usize> = (0..n).map(|_| b.alloc(size)).collect();
    d.shuffle(&mut live);
    for id in live.drain(..n / 2) {
        b.free(id);
    }
    live.extend((0..n / 2).map(|_| b.alloc(size)));
    b.free_all_shuffled(live, d);
}

/// Random sizes from `size`, frees of random live blocks: a growth phase (70 % of steps
/// allocate) then a shrink phase (30 %).
fn mixed(b: &mut Builder, d: &mut Dice, scale: usize, size: impl Fn(&mut Dice) -> usize) {
    let steps = 1000 * scale;
    let mut live = Vec::new();
    for alloc_percent in [70, 30] {
        for _ in 0..steps {
            if live.is_empty() || d.chance(alloc_percent) {
                let bytes = size(d);
                live.push(b.alloc(bytes));
            } else {
                let victim = live.swap_remove(d.below(live.len()));
                b.free(victim);
            }
        }
    }
    b.free_all_shuffled(live, d);
}

fn lifo(b: &mut Builder, d: &mut Dice, scale: usize) {
    let mut stack = Vec::new();
    for _ in 0..2000 * scale {
        if stack.is_empty() || d.chance(55) {
            stack.push(b.alloc(d.between(8, 512)));
        } else if let Some(top) = stack.pop() {
            b.free(top);
        }
    }
    while let Some(top) = stack.pop() {
        b.free(top);
    }
}

fn fifo(b: &mut Builder, d: &mut Dice, scale: usize) {
    let mut queue = std::collections::VecDeque::new();
    for _ in 0..256 {
        queue.push_back(b.alloc(d.between(16, 1024)));
    }
    for _ in 0..2000 * scale {
        if queue.is_empty() || d.chance(50) {
            queue.push_back(b.alloc(d.between(16, 1024)));
        } else if let Some(oldest) = queue.pop_front() {
            b.free(oldest);
        }
    }
    for oldest in queue {
        b.free(oldest);
    }
}

fn realloc_growth(b: &mut Builder, d: &mut Dice, scale: usize) {
    const START: usize = 16;
    // (id, current size, size at which it is dropped and started again)
    let mut vectors: Vec<(usize, usize, usize)> = (0..8)
        .map(|_| (b.alloc(START), START, START << d.between(8, 12)))
        .collect();
    let mut objects = Vec::new();
    for _ in 0..1000 * scale {
        let roll = d.below(100);
        if roll < 15 {
            objects.push(b.alloc(d.between(32, 128)));
        } else if roll < 25 && !objects.is_empty() {
            let victim = objects.swap_remove(d.below(objects.len()));
            b.free(victim);
        } else {
            let i = d.below(vectors.len());
            let (id, size, limit) = vectors[i];
            vectors[i] = if size >= limit {
                b.free(id);
                (b.alloc(START), START, START << d.between(8, 12))
            } else {
                b.realloc(id, size * 2);
                (id, size * 2, limit)
            };
        }
    }
    b.free_all_shuffled(objects, d);
    for (id, _, _) in vectors {
        b.free(id);
    }
}

fn short_long(b: &mut Builder, d: &mut Dice, scale: usize) {
    const SHORT_POOL: usize = 8;
    let long_wanted = 50 * scale;
    let mut long = Vec::new();
    let mut short = Vec::new();
    for _ in 0..3000 * scale {
        if long.len() < long_wanted && d.chance(3) {
            long.push(b.alloc(d.between(64, 2048)));
        } else if short.len() < SHORT_POOL {
            short.push(b.alloc(d.between(8, 256)));
        } else {
            let victim = short.swap_remove(d.below(short.len()));
            b.free(victim);
        }
    }
    b.free_all_shuffled(short, d);
    b.free_all_shuffled(long, d);
}

fn first_fit_adversary(b: &mut Builder, d: &mut Dice, scale: usize) {
    let n = 256 * scale;
    let large = 8 * d.between(24, 48);
    // A small request is more than half a large one: one fits in a large hole, and
    // what it leaves is too small for another small or a large request.
    let small = large / 2 + 8 * d.between(1, 4);
    let mut kept = Vec::new();
    let mut holes = Vec::new();
    for size in [large, small] {
        for _ in 0..n {
            holes.push(b.alloc(size));
            // Live to the end: keeps the holes apart.
            kept.push(b.alloc(d.between(8, 32)));
        }
    }
    // Small holes first, so that the large ones are found first both by a list in
    // address order and by a LIFO list (most recently freed first).
    for id in holes.into_iter().rev() {
        b.free(id);
    }
    for size in [small, large] {
        for _ in 0..n {
            kept.push(b.alloc(size));
        }
    }
    b.free_all_shuffled(kept, d);
}

/// Small and large blocks alternate (sizes in granules of 8 bytes, drawn once from the
/// two ranges), the large ones are freed, then blocks a little larger than a large one
/// (by at most a small block) are asked for.
fn binary(
    b: &mut Builder,
    d: &mut Dice,
    scale: usize,
    small: (usize, usize),
    large: (usize, usize),
) {
    let n = 600 * scale;
    let small = 8 * d.between(small.0, small.1);
    let large = 8 * d.between(large.0, large.1);
    let larger = large + 8 * d.between(1, small / 8);
    let mut kept = Vec::new();
    let mut freed = Vec::new();
    for _ in 0..n {
        kept.push(b.alloc(small));
        freed.push(b.alloc(large));
    }
    for id in freed {
        b.free(id);
    }
    for _ in 0..n {
        kept.push(b.alloc(larger));
    }
    b.free_all_shuffled(kept, d);
}

/// Two neighbours of one size freed, then one block of their joined size, repeated.
fn coalescing(b: &mut Builder, d: &mut Dice, scale: usize) {
    let size = d.between(2000, 4100);
    for _ in 0..600 * scale {
        let first = b.alloc(size);
        let second = b.alloc(size);
        b.free(first);
        b.free(second);
        let joined = b.alloc(2 * size);
        b.free(joined);
    }
}

/// Random sizes from `size`, `alloc_percent` of steps allocate (while any are left to
/// allocate), the others free a random live block; everything is freed by the end.
fn mixed_at(
    b: &mut Builder,
    d: &mut Dice,
    scale: usize,
    alloc_percent: usize,
    size: impl Fn(&mut Dice) -> usize,
) {
    let mut live = Vec::new();
    let mut to_allocate = 1200 * scale;
    while to_allocate > 0 || !live.is_empty() {
        if to_allocate > 0 && (live.is_empty() || d.chance(alloc_percent)) {
            let bytes = size(d);
            live.push(b.alloc(bytes));
            to_allocate -= 1;
        } else {
            let victim = live.swap_remove(d.below(live.len()));
            b.free(victim);
        }
    }
}

/// One buffer of `start` bytes grows by `step` at a time; after each growth a block of
/// `small` bytes is allocated and the previous one freed.
fn realloc_steps(
    b: &mut Builder,
    d: &mut Dice,
    scale: usize,
    start: usize,
    step: usize,
    small: usize,
) {
    let mut size = start;
    let buffer = b.alloc(size);
    let mut previous = b.alloc(small);
    for _ in 0..1000 * scale {
        size += step * d.between(1, 2);
        b.realloc(buffer, size);
        let next = b.alloc(small);
        b.free(previous);
        previous = next;
    }
    b.free(previous);
    b.free(buffer);
}

/// Phases of a program: each allocates a few hundred blocks, mostly of a handful of
/// popular small sizes (drawn once per trace) and sometimes a buffer of up to 4 KiB,
/// frees some of them at once (temporaries), and at its end frees most of the rest;
/// about one block in eight lives on, and a later phase frees it.
fn phases(b: &mut Builder, d: &mut Dice, scale: usize) {
    let popular: Vec<usize> = (0..8).map(|_| 8 * d.between(1, 24)).collect();
    let mut survivors: Vec<usize> = Vec::new();
    for _ in 0..10 * scale {
        let mut phase = Vec::new();
        for _ in 0..d.between(200, 400) {
            let size = if d.chance(5) {
                d.between(512, 4096)
            } else {
                // Earlier popular sizes are the most popular.
                let rank = d.below(popular.len()) + 1;
                popular[d.below(rank)] - d.below(8)
            };
            let id = b.alloc(size);
            if d.chance(30) {
                b.free(id);
            } else {
                phase.push(id);
            }
        }
        d.shuffle(&mut phase);
        let keep = phase.len() / 8;
        for id in phase.drain(keep..) {
            b.free(id);
        }
        survivors.extend(phase);
        if survivors.len() > 600 {
            d.shuffle(&mut survivors);
            for id in survivors.drain(..300) {
                b.free(id);
            }
        }
    }
    b.free_all_shuffled(survivors, d);
}

/// Records ops, handing out a fresh id for every allocation.
#[derive(Default)]
struct Builder {
    ops: Vec<Op>,
    /// Ids are `0..next_id`; none is ever reused.
    next_id: usize,
}

impl Builder {
    fn alloc(&mut self, size: usize) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.ops.push(Op::Alloc { id, size });
        id
    }

    fn free(&mut self, id: usize) {
        self.ops.push(Op::Free { id });
    }

    fn realloc(&mut self, id: usize, size: usize) {
        self.ops.push(Op::Realloc { id, size });
    }

    fn free_all_shuffled(&mut self, mut ids: Vec<usize>, d: &mut Dice) {
        d.shuffle(&mut ids);
        for id in ids {
            self.free(id);
        }
    }

    fn finish(self) -> Trace {
        let unsized_trace = Trace::new(0, self.next_id, 1, self.ops)
            .expect("the generators free only live blocks and never reuse an id");
        let peak = unsized_trace.profile().peak_live_bytes;
        let suggested = (peak * SUGGESTED_HEAP_FACTOR)
            .next_multiple_of(4096)
            .max(MIN_SUGGESTED_HEAP);
        unsized_trace.with_suggested_heap(suggested)
    }
}

/// Uniform choices from a ChaCha8 stream, computed here so that they never change.
/// Public for the benches' steady-state workloads, which are drawn the same way.
pub struct Dice(ChaCha8Rng);

impl Dice {
    /// The dice for `seed`; each `stream` gives an independent sequence.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut state = seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F);
        let mut key = [0u8; 32];
        for chunk in key.chunks_exact_mut(8) {
            chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        Dice(ChaCha8Rng::from_seed(key))
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift: the high half of a
    /// 64 × 64-bit product. The bias is below `n / 2^64`.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.0.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent / 100`.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// A size in `lo..=hi` whose power of two is uniform: as many blocks of 8 to 15
    /// bytes as of 2048 to 4095.
    pub fn log_uniform(&mut self, lo: usize, hi: usize) -> usize {
        let exponent = self.between(lo.ilog2() as usize, hi.ilog2() as usize);
        let from = (1usize << exponent).max(lo);
        let to = ((1usize << exponent) * 2 - 1).min(hi);
        self.between(from, to)
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// The SplitMix64 step (Steele, Lea and Flood), used to spread a `u64` seed into a key.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
