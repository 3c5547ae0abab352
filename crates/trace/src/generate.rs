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
        let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        f.write_str(&names.join(", "))
    }
}

impl std::error::Error for UnknownWorkload {}

impl FromStr for Workload {
    type Err = UnknownWorkload;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Workload::ALL
            .into_iter()
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
