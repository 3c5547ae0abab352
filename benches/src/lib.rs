//! The machinery of heaplab's benches: every contender behind one small interface, and
//! workloads turned from traces into flat step lists, so that a heaplab allocator and its
//! peer run exactly the same instructions around their own `alloc` and `free`.
//!
//! The criterion benches in `benches/allocators.rs` time [`Workload::run`] for every contender on
//! every generated workload; `cargo xtask bench` runs them and writes the ratio table.

use core::alloc::Layout;
use core::ptr::NonNull;

pub mod peers;

/// The seed of the generated traces every bench replays.
pub const SEED: u64 = 2026;

/// Trace size for the benches: a few thousand operations a pass, so that one pass is
/// long against the timer and short enough for every contender to run many.
pub const SCALE: usize = 4;

/// Something to do with each contender's type, heaplab allocators and peers alike.
pub trait ContenderVisitor {
    /// Called once per contender, with its name as tables show it.
    fn visit<C: Contender>(&mut self, name: &str);
}

/// Calls `visitor` with every contender: each heaplab allocator of the registry
/// through its [`Arena`](heaplab::Arena), each followed by its peer the first time that
/// peer comes up, then the peers no allocator names.
///
/// An allocator and its peer run one right after the other: a shared machine's speed
/// drifts over tens of seconds (other work on the same cores and caches), and two
/// contenders timed seconds apart see the same machine far more often than two timed
/// a minute apart.
pub fn for_each_contender(visitor: &mut impl ContenderVisitor) {
    struct Paired<'v, V> {
        visitor: &'v mut V,
        peers_done: Vec<&'static str>,
    }
    impl<V: ContenderVisitor> heaplab::registry::HeapVisitor for Paired<'_, V> {
        fn visit<H: heaplab::RawHeap + Send + 'static>(
            &mut self,
            entry: &heaplab::registry::Entry,
        ) {
            self.visitor.visit::<heaplab::Arena<H>>(entry.name);
            if let Some(peer) = entry.peer.filter(|peer| !self.peers_done.contains(peer)) {
                peers::visit_peer(peer, self.visitor);
                self.peers_done.push(peer);
            }
        }
    }
    let mut paired = Paired {
        visitor,
        peers_done: Vec::new(),
    };
    heaplab::registry::for_each_heap(&mut paired);
    for peer in peers::NAMES {
        if !paired.peers_done.contains(&peer) {
            peers::visit_peer(peer, paired.visitor);
        }
    }
}

/// An allocator as the benches see it: built over a region of a given size, then asked
/// to allocate, free and reallocate.
pub trait Contender {
    /// A fresh allocator managing `bytes` bytes.
    fn with_region(bytes: usize) -> Self
    where
        Self: Sized;

    /// A block for `layout`, or `None` when refused.
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>>;

    /// Gives back a block.
    ///
    /// # Safety
    /// `ptr` is live in this allocator with `layout`.
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout);

    /// Called after a whole balanced trace, when no block is live, before the next pass
    /// over the same heap. Only an allocator that cannot reclaim freed memory by itself
    /// (bumpalo) needs to do anything: it resets, as its users do between phases.
    fn trace_done(&mut self) {}

    /// Resizes a block, moving it if needed; `None` leaves it untouched. The default
    /// allocates, copies and frees, for allocators with no resizing of their own.
    ///
    /// # Safety
    /// `ptr` is live in this allocator with `old`; `new` has the same alignment.
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise.
        unsafe { move_block(self, ptr, old, new) }
    }
}

/// Reallocation by allocating a new block, copying, and freeing the old one: the
/// fallback of [`Contender::realloc`], also used by peers whose in-place resizing fails.
///
/// # Safety
/// `ptr` is live in `heap` with `old`.
pub unsafe fn move_block<C: Contender + ?Sized>(
    heap: &mut C,
    ptr: NonNull<u8>,
    old: Layout,
    new: Layout,
) -> Option<NonNull<u8>> {
    let moved = heap.alloc(new)?;
    // SAFETY: both blocks are live and distinct, each at least `min(old, new)` bytes.
    unsafe {
        moved
            .as_ptr()
            .copy_from_nonoverlapping(ptr.as_ptr(), old.size().min(new.size()))
    };
    // SAFETY: the caller's promise.
    unsafe { heap.free(ptr, old) };
    Some(moved)
}

/// Every heaplab allocator is a contender through its `Arena`.
impl<H: heaplab::RawHeap> Contender for heaplab::Arena<H> {
    fn with_region(bytes: usize) -> Self {
        heaplab::Arena::new(bytes)
    }

    #[inline]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.allocate(layout).ok()
    }

    #[inline]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise.
        unsafe { self.deallocate(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise.
        unsafe { self.reallocate(ptr, old, new) }.ok()
    }
}

/// A contender reached through a call the compiler may not inline, the way a program
/// reaches `malloc` and `free`: `cargo xtask bench --called` times every contender
/// behind one.
///
/// Left to itself, the compiler decides per contender whether `alloc` and `free` are
/// inlined into the bench's loop. In the default release build it inlines the heaplab
/// heaps, whose hot paths are marked `#[inline]`, and calls talc's and rlsf's, which are
/// not; with fat LTO and one codegen unit it did the reverse. Inlining saves the call
/// and lets the loop overlap one operation with the next, so the ratios of the default
/// run measure the inlining as well as the allocators. Behind `Called`, every contender
/// pays for one call per operation and nothing more.
pub struct Called<C>(pub C);

impl<C: Contender> Contender for Called<C> {
    fn with_region(bytes: usize) -> Self {
        Called(C::with_region(bytes))
    }

    #[inline(never)]
    fn alloc(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        self.0.alloc(layout)
    }

    #[inline(never)]
    unsafe fn free(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.0.free(ptr, layout) }
    }

    fn trace_done(&mut self) {
        self.0.trace_done();
    }

    #[inline(never)]
    unsafe fn realloc(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.0.realloc(ptr, old, new) }
    }
}

/// The environment variable that asks the benches and the `passes` example to reach
/// every contender through [`Called`]; `cargo xtask bench --called` sets it.
pub const CALLED_VAR: &str = "HEAPLAB_BENCH_CALLED";

/// A visitor that is given each contender wrapped in [`Called`] when `called` is true,
/// and as it is otherwise.
pub struct CalledIf<'v, V> {
    /// The visitor given the contenders.
    pub visitor: &'v mut V,
    /// Whether each comes wrapped in [`Called`].
    pub called: bool,
}

impl<'v, V: ContenderVisitor> CalledIf<'v, V> {
    /// Wraps the contenders when [`CALLED_VAR`] is set.
    pub fn from_env(visitor: &'v mut V) -> Self {
        CalledIf {
            visitor,
            called: std::env::var_os(CALLED_VAR).is_some(),
        }
    }
}

impl<V: ContenderVisitor> ContenderVisitor for CalledIf<'_, V> {
    fn visit<C: Contender>(&mut self, name: &str) {
        if self.called {
            self.visitor.visit::<Called<C>>(name);
        } else {
            self.visitor.visit::<C>(name);
        }
    }
}

/// The alignment every traced request gets: traces record no alignment, and 8 bytes is
/// what the malloc lab asks of its allocators.
pub const TRACE_ALIGN: usize = 8;

/// Writes the first byte of a block just handed out, as a program initialising it would.
/// Every contender's blocks get the same write, so none is timed as if its memory were
/// never used: an allocator that keeps no header next to the block (bumpalo) would
/// otherwise touch no memory at all and be measured against one that does.
#[inline(always)]
fn first_touch(block: NonNull<u8>) {
    // SAFETY: every block has at least one byte (sizes are served as at least 1).
    unsafe { block.as_ptr().write_volatile(0xA5) };
}

/// Bytes added per request when sizing a region for a heap that never reuses memory:
/// room for a two-word header and rounding to a word on a 64-bit machine.
const PER_REQUEST_ALLOWANCE: usize = 32;

/// One step of a workload. Slots name blocks the way trace ids do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Allocate `layout` into the empty `slot`.
    #[allow(missing_docs)]
    Alloc { slot: u32, layout: Layout },
    /// Free the block in `slot`.
    #[allow(missing_docs)]
    Free { slot: u32 },
    /// Resize the block in `slot` to `layout`.
    #[allow(missing_docs)]
    Realloc { slot: u32, layout: Layout },
}

/// What one benchmark replays: a trace flattened for timing, or a steady state.
///
/// A pass is [`Workload::warm_up`] (not timed), then [`Workload::steps`] (timed), then
/// freeing whatever is still live (not timed) and [`Contender::trace_done`]. A
/// generated trace grows its heap from empty and frees it all, so it has no warm-up;
/// a steady-state workload first fills the heap to its live count, and its timed steps
/// keep it there, which is where a queue, a stack of nodes or a request loop spends
/// its time.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The workload's name, as the tables show it.
    pub name: String,
    /// Untimed: brings the heap to the live count the timed steps keep.
    pub warm_up: Vec<Step>,
    /// What is timed, in order.
    pub steps: Vec<Step>,
    /// How many slots the steps use.
    pub slots: usize,
    /// A region large enough for every contender, including one that never reuses
    /// memory: the trace's suggested size or the sum of all requests, whichever is larger.
    pub region: usize,
}

/// The steady-state workloads, drawn from the benches' [`SEED`].
pub mod steady {
    use core::alloc::Layout;

    use trace::generate::Dice;

    use crate::{PER_REQUEST_ALLOWANCE, Step, Workload};

    /// Blocks live at once in the same-size queue and stack.
    pub const SAME_SIZE_LIVE: usize = 1000;

    /// The size of every block of the queue and the stack: a small node.
    pub const SAME_SIZE: usize = 64;

    /// Blocks live at once in `random-victims`.
    pub const RANDOM_LIVE: usize = 2000;

    /// Timed operations per live block: each workload's timed steps allocate this many
    /// times its live count (and free as many).
    pub const ROUNDS: usize = 2;

    /// The deepest burst of the stack: it pops 1 to this many blocks, then pushes as many.
    pub const STACK_BURST: usize = 32;

    /// The names of [`all`]'s workloads, in its order.
    pub const NAMES: [&str; 3] = ["queue-64", "stack-64", "random-victims"];

    /// Every steady-state workload.
    pub fn all(seed: u64) -> [Workload; 3] {
        [queue(), stack(seed), random_victims(seed)]
    }

    /// A queue: [`SAME_SIZE_LIVE`] blocks of [`SAME_SIZE`] bytes; each step frees the
    /// oldest and allocates one. Every freed block fits the next request exactly.
    pub fn queue() -> Workload {
        let layout = same_size();
        let steps = (0..SAME_SIZE_LIVE * ROUNDS)
            .flat_map(|k| {
                let slot = slot(k % SAME_SIZE_LIVE);
                [Step::Free { slot }, Step::Alloc { slot, layout }]
            })
            .collect();
        steady(NAMES[0], filled(SAME_SIZE_LIVE, |_| layout), steps)
    }

    /// A stack: [`SAME_SIZE_LIVE`] blocks of [`SAME_SIZE`] bytes; each burst frees the
    /// newest 1 to [`STACK_BURST`] blocks, newest first, then allocates as many.
    pub fn stack(seed: u64) -> Workload {
        let layout = same_size();
        let mut dice = Dice::new(seed, 0x57AC);
        let mut steps = Vec::new();
        while steps.len() < 2 * SAME_SIZE_LIVE * ROUNDS {
            let depth = dice.between(1, STACK_BURST);
            let top = SAME_SIZE_LIVE - depth..SAME_SIZE_LIVE;
            steps.extend(top.clone().rev().map(|i| Step::Free { slot: slot(i) }));
            steps.extend(top.map(|i| Step::Alloc {
                slot: slot(i),
                layout,
            }));
        }
        steady(NAMES[1], filled(SAME_SIZE_LIVE, |_| layout), steps)
    }

    /// Random victims: [`RANDOM_LIVE`] blocks of 8 B to 4 KiB (log-uniform), aligned to
    /// 8 or 16 bytes at random; each step frees a block chosen at random and allocates
    /// a new random one in its place.
    pub fn random_victims(seed: u64) -> Workload {
        let mut dice = Dice::new(seed, 0x5EED);
        let layout = |dice: &mut Dice| {
            let align = if dice.chance(50) { 8 } else { 16 };
            Layout::from_size_align(dice.log_uniform(8, 4096), align).expect("a small layout")
        };
        let warm_up = filled(RANDOM_LIVE, |_| layout(&mut dice));
        let steps = (0..RANDOM_LIVE * ROUNDS)
            .flat_map(|_| {
                let slot = slot(dice.below(RANDOM_LIVE));
                [
                    Step::Free { slot },
                    Step::Alloc {
                        slot,
                        layout: layout(&mut dice),
                    },
                ]
            })
            .collect();
        steady(NAMES[2], warm_up, steps)
    }

    fn same_size() -> Layout {
        Layout::from_size_align(SAME_SIZE, 8).expect("a small layout")
    }

    fn slot(index: usize) -> u32 {
        u32::try_from(index).expect("slots fit in u32")
    }

    /// Allocations of `live` blocks into slots `0..live`.
    fn filled(live: usize, mut layout: impl FnMut(usize) -> Layout) -> Vec<Step> {
        (0..live)
            .map(|i| Step::Alloc {
                slot: slot(i),
                layout: layout(i),
            })
            .collect()
    }

    /// The workload, with a region that holds every request of a pass even if nothing
    /// is reused (bump, bumpalo).
    fn steady(name: &str, warm_up: Vec<Step>, steps: Vec<Step>) -> Workload {
        let mut slots = 0;
        let mut bytes = 0;
        for step in warm_up.iter().chain(&steps) {
            if let Step::Alloc { slot, layout } = step {
                slots = slots.max(*slot as usize + 1);
                bytes += layout.size() + layout.align() + PER_REQUEST_ALLOWANCE;
            }
        }
        Workload {
            name: name.to_owned(),
            warm_up,
            steps,
            slots,
            region: bytes.max(1 << 16),
        }
    }
}

/// Every workload the allocator benches run: the generated traces, then the steady
/// states ([`steady::all`]), all from [`SEED`] at [`SCALE`].
pub fn all_workloads() -> Vec<Workload> {
    trace::Workload::ALL
        .into_iter()
        .map(|generator| {
            Workload::from_trace(generator.name(), &trace::generate(generator, SEED, SCALE))
        })
        .chain(steady::all(SEED))
        .collect()
}

/// The workload of [`all_workloads`] named `name`, generating only that one.
pub fn workload(name: &str) -> Option<Workload> {
    if let Some(generator) = trace::Workload::ALL.into_iter().find(|w| w.name() == name) {
        let trace = trace::generate(generator, SEED, SCALE);
        return Some(Workload::from_trace(name, &trace));
    }
    steady::all(SEED).into_iter().find(|w| w.name == name)
}

/// The names of [`all_workloads`], without generating them.
pub fn workload_names() -> impl Iterator<Item = &'static str> {
    trace::Workload::ALL
        .into_iter()
        .map(trace::Workload::name)
        .chain(steady::NAMES)
}

impl Workload {
    /// Flattens `trace`, serving sizes as replay does ([`trace::format::served_size`]).
    pub fn from_trace(name: &str, trace: &trace::Trace) -> Workload {
        let layout = |size: usize| {
            Layout::from_size_align(trace::format::served_size(size), TRACE_ALIGN)
                .expect("trace sizes fit in a Layout")
        };
        let slot = |id: usize| u32::try_from(id).expect("trace ids fit in u32");
        let mut total_requested = 0usize;
        let steps = trace
            .ops()
            .iter()
            .map(|op| match *op {
                trace::Op::Alloc { id, size } => {
                    total_requested += size + PER_REQUEST_ALLOWANCE;
                    Step::Alloc {
                        slot: slot(id),
                        layout: layout(size),
                    }
                }
                trace::Op::Free { id } => Step::Free { slot: slot(id) },
                trace::Op::Realloc { id, size } => {
                    total_requested += size + PER_REQUEST_ALLOWANCE;
                    Step::Realloc {
                        slot: slot(id),
                        layout: layout(size),
                    }
                }
            })
            .collect();
        Workload {
            name: name.to_owned(),
            warm_up: Vec::new(),
            steps,
            slots: trace.num_ids(),
            region: trace.suggested_heap().max(total_requested).max(1 << 16),
        }
    }

    /// One pass on `heap`, using `slots` (at least `self.slots` long, all `None`) for
    /// the live blocks: the warm-up, the timed steps, freeing what is left, and
    /// [`Contender::trace_done`]. `time` is called with the timed steps (it runs them
    /// with [`Workload::run`] and may time them), and its result is returned.
    ///
    /// # Panics
    ///
    /// If the contender refuses a request (see [`Workload::run`]).
    #[inline]
    pub fn pass<C: Contender, T>(
        &self,
        heap: &mut C,
        slots: &mut [Option<(NonNull<u8>, Layout)>],
        time: impl FnOnce(&mut C, &mut [Option<(NonNull<u8>, Layout)>]) -> T,
    ) -> T {
        self.run_steps(&self.warm_up, heap, slots);
        let timed = time(heap, slots);
        for (ptr, layout) in slots.iter_mut().filter_map(Option::take) {
            // SAFETY: the slot held a live block of this heap with this layout.
            unsafe { heap.free(ptr, layout) };
        }
        heap.trace_done();
        timed
    }

    /// Runs the timed steps on `heap` (which the warm-up has brought to its live
    /// count); a generated trace leaves every slot `None` again.
    ///
    /// # Panics
    ///
    /// If the contender refuses a request: a benchmark whose allocator failed would time
    /// less work than its peer, so it must not produce a number.
    #[inline]
    pub fn run<C: Contender>(&self, heap: &mut C, slots: &mut [Option<(NonNull<u8>, Layout)>]) {
        self.run_steps(&self.steps, heap, slots);
    }

    #[inline]
    fn run_steps<C: Contender>(
        &self,
        steps: &[Step],
        heap: &mut C,
        slots: &mut [Option<(NonNull<u8>, Layout)>],
    ) {
        for (index, step) in steps.iter().enumerate() {
            match *step {
                Step::Alloc { slot, layout } => {
                    let Some(ptr) = heap.alloc(layout) else {
                        panic!(
                            "{}: step {index}: allocation of {} bytes refused",
                            self.name,
                            layout.size()
                        )
                    };
                    first_touch(ptr);
                    slots[slot as usize] = Some((ptr, layout));
                }
                Step::Free { slot } => {
                    if let Some((ptr, layout)) = slots[slot as usize].take() {
                        // SAFETY: the slot held a live block of this heap with this layout.
                        unsafe { heap.free(ptr, layout) };
                    }
                }
                Step::Realloc { slot, layout } => {
                    let (ptr, old) = slots[slot as usize].expect("trace reallocates live ids only");
                    // SAFETY: the slot holds a live block of this heap; same alignment.
                    let Some(moved) = (unsafe { heap.realloc(ptr, old, layout) }) else {
                        panic!(
                            "{}: step {index}: reallocation to {} bytes refused",
                            self.name,
                            layout.size()
                        )
                    };
                    first_touch(moved);
                    slots[slot as usize] = Some((moved, layout));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heaplab::RawHeap as _;

    /// Runs `workload` twice on one `C`, as the bench does pass after pass, and checks
    /// that every block was freed: it must complete for every contender.
    fn completes<C: Contender>(workload: &Workload) {
        let mut heap = C::with_region(workload.region);
        let mut slots = vec![None; workload.slots];
        for _pass in 0..2 {
            let live_after_steps = workload.pass(&mut heap, &mut slots, |heap, slots| {
                workload.run(heap, slots);
                slots.iter().filter(|slot| slot.is_some()).count()
            });
            assert_eq!(
                live_after_steps,
                live_after(&workload.warm_up),
                "{}: the timed steps keep the live count the warm-up reached",
                workload.name
            );
            assert!(
                slots.iter().all(Option::is_none),
                "{}: the pass frees what is left",
                workload.name
            );
        }
    }

    /// Blocks live after `steps` from an empty heap.
    fn live_after(steps: &[Step]) -> usize {
        let mut live = std::collections::BTreeSet::new();
        for step in steps {
            match *step {
                Step::Alloc { slot, .. } => assert!(live.insert(slot), "slot {slot} was empty"),
                Step::Free { slot } => assert!(live.remove(&slot), "slot {slot} was live"),
                Step::Realloc { slot, .. } => assert!(live.contains(&slot)),
            }
        }
        live.len()
    }

    struct Completes<'w>(&'w Workload);

    impl ContenderVisitor for Completes<'_> {
        fn visit<C: Contender>(&mut self, _: &str) {
            completes::<C>(self.0);
        }
    }

    #[test]
    fn every_contender_completes_every_workload() {
        for generator in trace::Workload::ALL {
            let workload =
                Workload::from_trace(generator.name(), &trace::generate(generator, 7, 1));
            for_each_contender(&mut Completes(&workload));
        }
        for workload in steady::all(7) {
            for_each_contender(&mut Completes(&workload));
        }
    }

    #[test]
    fn the_workload_names_are_those_of_the_workloads_and_distinct() {
        let names: Vec<_> = workload_names().collect();
        let made: Vec<_> = all_workloads().into_iter().map(|w| w.name).collect();
        assert_eq!(names, made);
        for name in &names {
            assert_eq!(workload(name).map(|w| w.name).as_deref(), Some(*name));
        }
        assert!(workload("no-such-workload").is_none());
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len());
    }

    /// The live count at every point of the timed steps, from the warm-up's.
    fn live_counts(workload: &Workload) -> Vec<usize> {
        let mut live = live_after(&workload.warm_up);
        workload
            .steps
            .iter()
            .map(|step| {
                match step {
                    Step::Alloc { .. } => live += 1,
                    Step::Free { .. } => live -= 1,
                    Step::Realloc { .. } => {}
                }
                live
            })
            .collect()
    }

    #[test]
    fn the_queue_frees_its_oldest_block_and_refills_at_once() {
        let queue = steady::queue();
        assert_eq!(live_after(&queue.warm_up), steady::SAME_SIZE_LIVE);
        let counts = live_counts(&queue);
        assert!(
            counts
                .iter()
                .all(|&n| n == steady::SAME_SIZE_LIVE || n == steady::SAME_SIZE_LIVE - 1)
        );
        // Slot i holds the i-th block allocated, so the oldest live block is the one
        // with the smallest allocation time.
        let mut born: Vec<usize> = (0..steady::SAME_SIZE_LIVE).collect();
        for (time, step) in queue.steps.iter().enumerate() {
            match *step {
                Step::Free { slot } => {
                    let oldest = (0..born.len()).min_by_key(|&s| born[s]).unwrap();
                    assert_eq!(slot as usize, oldest, "step {time} frees the oldest");
                }
                Step::Alloc { slot, layout } => {
                    assert_eq!(layout.size(), steady::SAME_SIZE);
                    born[slot as usize] = steady::SAME_SIZE_LIVE + time;
                }
                Step::Realloc { .. } => panic!("no realloc in a queue"),
            }
        }
    }

    #[test]
    fn the_stack_frees_its_newest_block_and_returns_to_its_live_count() {
        let stack = steady::stack(7);
        let mut live: Vec<u32> = (0..steady::SAME_SIZE_LIVE as u32).collect();
        let mut lowest = usize::MAX;
        for step in &stack.steps {
            match *step {
                Step::Free { slot } => assert_eq!(live.pop(), Some(slot), "the newest"),
                Step::Alloc { slot, .. } => live.push(slot),
                Step::Realloc { .. } => panic!("no realloc in a stack"),
            }
            lowest = lowest.min(live.len());
        }
        assert_eq!(live.len(), steady::SAME_SIZE_LIVE);
        assert!(lowest >= steady::SAME_SIZE_LIVE - steady::STACK_BURST);
        assert!(
            lowest < steady::SAME_SIZE_LIVE - 1,
            "bursts deeper than one"
        );
    }

    #[test]
    fn random_victims_mix_sizes_and_alignments_at_a_fixed_live_count() {
        let random = steady::random_victims(7);
        let counts = live_counts(&random);
        assert!(counts.iter().all(|&n| n + 1 >= steady::RANDOM_LIVE));
        assert_eq!(counts.last(), Some(&steady::RANDOM_LIVE));
        let layouts: Vec<Layout> = random
            .warm_up
            .iter()
            .chain(&random.steps)
            .filter_map(|step| match *step {
                Step::Alloc { layout, .. } => Some(layout),
                _ => None,
            })
            .collect();
        for align in [8, 16] {
            assert!(layouts.iter().any(|l| l.align() == align), "align {align}");
        }
        assert!(layouts.iter().all(|l| (8..=4096).contains(&l.size())));
        assert!(layouts.iter().any(|l| l.size() < 16));
        assert!(layouts.iter().any(|l| l.size() > 2048));
        let victims: std::collections::BTreeSet<_> = random
            .steps
            .iter()
            .filter_map(|step| match *step {
                Step::Free { slot } => Some(slot),
                _ => None,
            })
            .collect();
        assert!(victims.len() > steady::RANDOM_LIVE / 2, "victims all over");
    }

    #[test]
    fn every_contender_comes_once_and_an_allocator_first_meets_its_peer_right_after_it() {
        struct Names(Vec<String>);
        impl ContenderVisitor for Names {
            fn visit<C: Contender>(&mut self, name: &str) {
                self.0.push(name.to_owned());
            }
        }
        let mut names = Names(Vec::new());
        for_each_contender(&mut names);
        let names = names.0;
        let entries = heaplab::registry::entries();
        assert_eq!(names.len(), entries.len() + peers::NAMES.len());
        for name in entries.iter().map(|e| e.name).chain(peers::NAMES) {
            assert_eq!(names.iter().filter(|n| *n == name).count(), 1, "{name}");
        }
        for entry in &entries {
            let peer = entry.peer.expect("every allocator has a peer");
            assert!(
                peers::NAMES.contains(&peer),
                "{peer} is a peer the benches know"
            );
            let at = names.iter().position(|n| n == entry.name).unwrap();
            let peer_at = names.iter().position(|n| n == peer).unwrap();
            let first_with_this_peer = entries.iter().find(|e| e.peer == Some(peer)).unwrap();
            if first_with_this_peer.name == entry.name {
                assert_eq!(peer_at, at + 1, "{peer} right after {}", entry.name);
            }
        }
    }

    #[test]
    fn a_called_contender_passes_every_call_on_to_its_heap() {
        let trace = trace::generate(trace::Workload::ReallocGrowth, 7, 1);
        let workload = Workload::from_trace("realloc-growth", &trace);
        let mut heap = Called::<heaplab::Arena<heaplab::tlsf::Tlsf>>::with_region(workload.region);
        let fresh = heap.0.stats();
        let mut slots = vec![None; workload.slots];
        workload.run(&mut heap, &mut slots);
        let after = heap.0.stats();
        assert!(after.high_water > 0, "the heap served the trace");
        assert_eq!(
            (after.live_blocks, after.requested, after.free),
            (0, 0, fresh.free),
            "every block the trace freed came back to the heap"
        );
    }

    #[test]
    fn a_refused_request_stops_the_run_with_its_step() {
        let trace = trace::generate(trace::Workload::SmallFixed, 7, 1);
        let mut workload = Workload::from_trace("tiny", &trace);
        workload.region = 256;
        let mut heap = heaplab::Arena::<heaplab::free_list::FreeList>::with_region(workload.region);
        let mut slots = vec![None; workload.slots];
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            workload.run(&mut heap, &mut slots)
        }));
        let message = outcome.expect_err("a 256-byte region cannot hold the trace");
        let message = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(message.starts_with("tiny: step "), "{message}");
        assert!(message.contains("refused"), "{message}");
    }
}
