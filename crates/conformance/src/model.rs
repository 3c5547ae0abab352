//! The reference model: a shadow map of the live blocks, and every check the suite makes
//! after every operation.
//!
//! The model knows what a caller knows and nothing about the algorithm: which blocks are
//! live, with which layout, how many bytes `usable_size` promised, and what was written
//! into them (a ramp of bytes starting at the block's own fill byte, over all usable
//! bytes). After each [`Op`] it asks the heap what it thinks (`walk`, `stats`, `check`)
//! and compares. The checks run in an order that makes the first failure the most
//! telling one, and that keeps the suite from writing where it must not: a block is
//! written only after it was found inside the region, apart from every live block, and
//! shown by `walk` as exactly that block.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::collections::HashSet;

use rawheap::{AllocError, Block, BlockKind, Capabilities, RawHeap, Stats, align};

use crate::op::Op;
use crate::rules::id;
use crate::violation::{Violation, at, short_type_name};

/// A block the model holds live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveBlock {
    /// What `allocate` (or the last `reallocate`) returned.
    pub ptr: NonNull<u8>,
    /// The layout it was asked for with.
    pub layout: Layout,
    /// What `usable_size` said; all of it holds the block's pattern.
    pub usable: usize,
    /// Byte `i` of the block holds `fill.wrapping_add(i as u8)`.
    pub fill: u8,
}

impl LiveBlock {
    fn start(&self) -> usize {
        self.ptr.as_ptr().addr()
    }

    fn end(&self) -> usize {
        self.start().saturating_add(self.usable)
    }
}

/// What an [`Op`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A new block, now live at this index.
    Allocated(usize),
    /// The heap refused, with this answer (which the model found right).
    Refused(AllocError),
    /// A block was freed.
    Freed,
    /// The block at this index was resized, in place or moved.
    Reallocated(usize),
    /// Nothing to do: no live block to free or resize, or no valid layout.
    Skipped,
}

/// Each block counts this many bytes besides its size toward the quarter of the region
/// below which a modest request must be served: room for any header and rounding.
const SLACK_PER_BLOCK: usize = 64;

/// A shadow of a heap's live blocks, checking the heap after every operation.
///
/// ```
/// # use conformance::{Model, Op, Outcome};
/// # fn demo<H: rawheap::RawHeap>() -> Result<(), conformance::Violation> {
/// let mut heap = rawheap::Arena::<H>::new(4096);
/// let mut model = Model::new(&*heap);
/// model.apply(&mut *heap, Op::Alloc { size: 24, align_log2: 3 })?;
/// model.apply(&mut *heap, Op::Free { index: 0 })?;
/// # Ok(()) }
/// ```
///
/// The model writes into the blocks it holds and reads them back, so hand it a heap
/// whose blocks nobody else touches.
#[derive(Debug)]
pub struct Model {
    /// Address of the region's first byte.
    base: usize,
    /// Length of the region.
    len: usize,
    /// What the heap claimed when the model was made.
    caps: Capabilities,
    /// The live blocks, oldest first: `Op` indices count in this order.
    live: Vec<LiveBlock>,
    /// The fill byte of the next new block; steps by an odd number so that 256
    /// consecutive blocks all differ.
    next_fill: u8,
    /// The highest `stats().high_water` seen so far.
    high_water: usize,
    /// Bytes handed out so far, each block counted with its alignment and
    /// `SLACK_PER_BLOCK`: while under a quarter of the region, modest requests must succeed.
    spent: usize,
    /// Layouts the heap has served: refusing one of them as `Unsupported` is a lie.
    served: HashSet<Layout>,
    /// The heap's short type name, for violations.
    heap: String,
    /// Operations since `walk`, `stats` and `check` were last verified (see
    /// [`VERIFY_EVERY`]).
    unverified: usize,
}

/// After how many operations the model verifies the whole heap: after every one
/// natively; under Miri, where verifying (three walks and a check of every live block)
/// costs nearly all of a scenario's time, after every third. Every heap operation still
/// runs under Miri, and the reports and `check` still run on a third of the states, so
/// undefined behaviour in any of them shows; the native run verifies every state.
const VERIFY_EVERY: usize = if cfg!(miri) { 3 } else { 1 };

impl Model {
    /// A model of `heap`, which must be fresh: no block live.
    pub fn new<H: RawHeap>(heap: &H) -> Model {
        let region = heap.region();
        Model {
            base: region.as_ptr().cast::<u8>().addr(),
            len: region.len(),
            caps: heap.capabilities(),
            live: Vec::new(),
            next_fill: 0x11,
            high_water: 0,
            spent: 0,
            served: HashSet::new(),
            heap: short_type_name(core::any::type_name::<H>()),
            unverified: 0,
        }
    }

    /// The live blocks, oldest first.
    pub fn live(&self) -> &[LiveBlock] {
        &self.live
    }

    /// Performs `op` on `heap` and checks every rule the model knows; `Err` names the
    /// first rule broken. A violation from here carries no operations: whoever keeps
    /// the sequence attaches it.
    pub fn apply<H: RawHeap>(&mut self, heap: &mut H, op: Op) -> Result<Outcome, Violation> {
        match op {
            Op::Alloc { size, align_log2 } => self.allocate(heap, size, align_log2, false),
            Op::AllocZeroed { size, align_log2 } => self.allocate(heap, size, align_log2, true),
            Op::Free { index } => self.free(heap, index),
            Op::Realloc {
                index,
                size,
                align_log2,
            } => self.reallocate(heap, index, size, align_log2),
        }
    }

    /// Checks everything that must hold between operations: `walk` against the live
    /// blocks, their contents, `stats`, the high-water mark and `check()`.
    pub fn verify<H: RawHeap>(&mut self, heap: &H) -> Result<(), Violation> {
        self.verify_then_fill(heap, None)
    }

    fn allocate<H: RawHeap>(
        &mut self,
        heap: &mut H,
        size: usize,
        align_log2: u8,
        zeroed: bool,
    ) -> Result<Outcome, Violation> {
        let Some(layout) = Op::layout(size, align_log2) else {
            return Ok(Outcome::Skipped);
        };
        let call = if zeroed {
            "allocate_zeroed"
        } else {
            "allocate"
        };
        let answer = if zeroed {
            heap.allocate_zeroed(layout)
        } else {
            heap.allocate(layout)
        };
        let ptr = match answer {
            Ok(ptr) => ptr,
            Err(refusal) => {
                self.judge_refusal(call, layout, refusal)?;
                self.verify(heap)?;
                return Ok(Outcome::Refused(refusal));
            }
        };
        self.judge_success(call, layout, ptr)?;
        // SAFETY: `allocate` just returned `ptr` for `layout`, so it is live with it.
        let usable = unsafe { heap.usable_size(ptr, layout) };
        let block = LiveBlock {
            ptr,
            layout,
            usable,
            fill: self.take_fill(),
        };
        self.judge_block(call, &block, None)?;
        if zeroed {
            self.expect_zeros(&block)?;
        }
        self.note_served(layout);
        self.live.push(block);
        let index = self.live.len() - 1;
        self.verify_then_fill(heap, Some(index))?;
        Ok(Outcome::Allocated(index))
    }

    fn free<H: RawHeap>(&mut self, heap: &mut H, index: usize) -> Result<Outcome, Violation> {
        if self.live.is_empty() {
            return Ok(Outcome::Skipped);
        }
        let block = self.live.remove(index % self.live.len());
        // SAFETY: the model holds exactly the live blocks, each with the layout it was
        // allocated or last reallocated with, and forgets this one now.
        unsafe { heap.deallocate(block.ptr, block.layout) };
        self.verify(heap)?;
        Ok(Outcome::Freed)
    }

    fn reallocate<H: RawHeap>(
        &mut self,
        heap: &mut H,
        index: usize,
        size: usize,
        align_log2: u8,
    ) -> Result<Outcome, Violation> {
        let (Some(new), false) = (Op::layout(size, align_log2), self.live.is_empty()) else {
            return Ok(Outcome::Skipped);
        };
        let index = index % self.live.len();
        let old = self.live[index];
        // SAFETY: `old` is live with `old.layout`; on `Ok` the model replaces it with
        // the block returned, on `Err` it stays live as the contract says.
        let answer = unsafe { heap.reallocate(old.ptr, old.layout, new) };
        let ptr = match answer {
            Ok(ptr) => ptr,
            Err(refusal) => {
                self.judge_refusal("reallocate", new, refusal)?;
                self.expect_kept(heap, &old)?;
                self.verify(heap)?;
                return Ok(Outcome::Refused(refusal));
            }
        };
        self.judge_success("reallocate", new, ptr)?;
        // SAFETY: `reallocate` just returned `ptr` for `new`, so it is live with it.
        let usable = unsafe { heap.usable_size(ptr, new) };
        let block = LiveBlock {
            ptr,
            layout: new,
            usable,
            fill: old.fill,
        };
        self.judge_block("reallocate", &block, Some(index))?;
        self.expect_prefix(&old, &block)?;
        self.note_served(new);
        self.live[index] = block;
        self.verify_then_fill(heap, Some(index))?;
        Ok(Outcome::Reallocated(index))
    }

    fn broken(&self, rule: &'static str, message: String) -> Violation {
        Violation {
            rule,
            message,
            ops: None,
            heap: self.heap.clone(),
            region: self.len,
            offset: 0,
            page: None,
        }
    }

    fn at(&self, addr: usize) -> String {
        at(addr, self.base)
    }

    fn take_fill(&mut self) -> u8 {
        let fill = self.next_fill;
        self.next_fill = fill.wrapping_add(89);
        fill
    }

    fn note_served(&mut self, layout: Layout) {
        self.spent = self.spent.saturating_add(cost(layout));
        self.served.insert(layout);
    }

    /// The answer every heap owes `layout` whatever its state, and the rule that says so.
    fn owed_refusal(&self, layout: Layout) -> Option<(AllocError, &'static str)> {
        if layout.size() == 0 {
            Some((AllocError::ZeroSize, id::zero_size_is_refused))
        } else if layout.size() > isize::MAX as usize / 2 || layout.align() > self.caps.max_align {
            Some((AllocError::Unsupported, id::absurd_layouts_are_refused))
        } else if layout.size() > self.len || layout.size() > self.caps.max_size {
            Some((AllocError::Unsupported, id::oversized_requests_are_refused))
        } else {
            None
        }
    }

    /// Whether `layout` is one the heap admits and that is small beside the region.
    fn is_modest(&self, layout: Layout) -> bool {
        layout.size() <= self.len / 8 && layout.align() <= self.len / 8 && self.caps.admits(layout)
    }

    fn judge_refusal(
        &self,
        call: &str,
        layout: Layout,
        refusal: AllocError,
    ) -> Result<(), Violation> {
        let (size, align) = (layout.size(), layout.align());
        if let Some((owed, rule)) = self.owed_refusal(layout) {
            if refusal == owed {
                return Ok(());
            }
            return Err(self.broken(
                rule,
                format!("{call} of {size} bytes aligned to {align} must be refused with {owed:?}, but the answer was {refusal:?}"),
            ));
        }
        match refusal {
            AllocError::ZeroSize => Err(self.broken(
                id::zero_size_is_refused,
                format!("{call} of {size} bytes was refused with ZeroSize, which is only for size 0"),
            )),
            AllocError::Unsupported if self.served.contains(&layout) => Err(self.broken(
                id::exhaustion_is_an_error_not_a_crash,
                format!("{call} of {size} bytes aligned to {align} was refused as Unsupported (never servable), but the heap served that layout before: when full, the answer is Exhausted"),
            )),
            AllocError::Unsupported if self.is_modest(layout) => Err(self.broken(
                id::modest_requests_are_served,
                format!("{call} of {size} bytes aligned to {align} was refused as Unsupported, although the capabilities admit it and it is small beside the {}-byte region", self.len),
            )),
            AllocError::Exhausted
                if self.is_modest(layout)
                    && self.spent.saturating_add(cost(layout)) <= self.len / 4 =>
            {
                Err(self.broken(
                    id::modest_requests_are_served,
                    format!("{call} of {size} bytes aligned to {align} was refused as Exhausted, although the heap has handed out only {} of its {} bytes so far (each block counted with its alignment and {SLACK_PER_BLOCK} bytes of slack)", self.spent, self.len),
                ))
            }
            _ => Ok(()),
        }
    }

    fn judge_success(&self, call: &str, layout: Layout, ptr: NonNull<u8>) -> Result<(), Violation> {
        match self.owed_refusal(layout) {
            Some((owed, rule)) => Err(self.broken(
                rule,
                format!(
                    "{call} of {} bytes aligned to {} must be refused with {owed:?}, but it returned a block at {}",
                    layout.size(),
                    layout.align(),
                    self.at(ptr.as_ptr().addr())
                ),
            )),
            None => Ok(()),
        }
    }

    /// The checks on a block just returned, before anything is written into it.
    fn judge_block(
        &self,
        call: &str,
        block: &LiveBlock,
        replacing: Option<usize>,
    ) -> Result<(), Violation> {
        let (start, size, align) = (block.start(), block.layout.size(), block.layout.align());
        let inside = start
            .checked_sub(self.base)
            .is_some_and(|offset| offset <= self.len && block.usable <= self.len - offset);
        if !inside {
            return Err(self.broken(
                id::blocks_lie_inside_the_region,
                format!(
                    "{call} of {size} bytes returned {} with {} usable bytes, but the region is +0x0..{}",
                    self.at(start),
                    block.usable,
                    self.at(self.base + self.len)
                ),
            ));
        }
        if !align::is_aligned(start, align) {
            return Err(self.broken(
                id::alignment_is_honoured,
                format!(
                    "{call} of {size} bytes aligned to {align} returned {}, whose address is {} past a multiple of {align}",
                    self.at(start),
                    start % align
                ),
            ));
        }
        if block.usable < size {
            return Err(self.broken(
                id::usable_size_is_truthful,
                format!(
                    "usable_size says {} bytes for the {size}-byte block at {}",
                    block.usable,
                    self.at(start)
                ),
            ));
        }
        let clash = self.live.iter().enumerate().find(|&(i, other)| {
            Some(i) != replacing && start < other.end() && other.start() < block.end()
        });
        match clash {
            Some((i, other)) => Err(self.broken(
                id::blocks_never_overlap,
                format!(
                    "{call} of {size} bytes returned {}..{}, which overlaps live block #{i} at {}..{}",
                    self.at(start),
                    self.at(block.end()),
                    self.at(other.start()),
                    self.at(other.end())
                ),
            )),
            None => Ok(()),
        }
    }

    fn expect_zeros(&self, block: &LiveBlock) -> Result<(), Violation> {
        let bytes = read(block.ptr, block.layout.size());
        match bytes.iter().position(|&b| b != 0) {
            Some(i) => Err(self.broken(
                id::allocate_zeroed_gives_zeros,
                format!(
                    "allocate_zeroed of {} bytes returned {} whose byte {i} is {:#04x}, not 0",
                    block.layout.size(),
                    self.at(block.start()),
                    bytes[i]
                ),
            )),
            None => Ok(()),
        }
    }

    fn expect_prefix(&self, old: &LiveBlock, new: &LiveBlock) -> Result<(), Violation> {
        let kept = old.layout.size().min(new.layout.size());
        match mismatch(new.ptr, kept, old.fill) {
            Some((i, found, wanted)) => Err(self.broken(
                id::reallocate_keeps_contents,
                format!(
                    "reallocate from {} to {} bytes ({} to {}) lost byte {i}: it reads {found:#04x} where {wanted:#04x} was written",
                    old.layout.size(),
                    new.layout.size(),
                    self.at(old.start()),
                    self.at(new.start())
                ),
            )),
            None => Ok(()),
        }
    }

    /// After a refused `reallocate`: the old block is still used and still intact.
    fn expect_kept<H: RawHeap>(&self, heap: &H, old: &LiveBlock) -> Result<(), Violation> {
        let mut still_used = false;
        heap.walk(&mut |stretch| {
            still_used |= stretch.kind == BlockKind::Used
                && stretch.addr == old.start()
                && stretch.size == old.usable;
        });
        if !still_used {
            return Err(self.broken(
                id::failed_reallocate_keeps_the_block,
                format!(
                    "after a refused reallocate, walk no longer shows the {}-byte block at {} as used: the heap let go of a block the caller still owns",
                    old.usable,
                    self.at(old.start())
                ),
            ));
        }
        match mismatch(old.ptr, old.usable, old.fill) {
            Some((i, found, wanted)) => Err(self.broken(
                id::failed_reallocate_keeps_the_block,
                format!(
                    "after a refused reallocate, byte {i} of the block at {} reads {found:#04x} where {wanted:#04x} was written",
                    self.at(old.start())
                ),
            )),
            None => Ok(()),
        }
    }

    fn verify_then_fill<H: RawHeap>(
        &mut self,
        heap: &H,
        fill: Option<usize>,
    ) -> Result<(), Violation> {
        self.unverified += 1;
        if self.unverified < VERIFY_EVERY {
            if let Some(index) = fill {
                let block = self.live[index];
                write_pattern(block.ptr, block.usable, block.fill);
            }
            return Ok(());
        }
        self.unverified = 0;
        let mut stretches = Vec::new();
        heap.walk(&mut |stretch| stretches.push(stretch));
        let live = self.by_address();
        self.check_used_stretches(&stretches, &live)?;
        self.check_nothing_else_covers_a_block(&stretches, &live)?;
        self.check_tiling(&stretches)?;
        if let Some(index) = fill {
            let block = self.live[index];
            write_pattern(block.ptr, block.usable, block.fill);
        }
        self.check_contents()?;
        let stats = heap.stats();
        self.check_stats(&stats, &stretches)?;
        self.check_high_water(&stats)?;
        heap.check().map_err(|e| {
            let place = e
                .addr
                .map(|a| format!(" (at {})", self.at(a)))
                .unwrap_or_default();
            self.broken(
                id::check_passes_after_every_operation,
                format!("check() failed: {}{place}", e.invariant),
            )
        })
    }

    fn by_address(&self) -> Vec<LiveBlock> {
        let mut blocks = self.live.clone();
        blocks.sort_by_key(LiveBlock::start);
        blocks
    }

    /// `walk`'s `Used` stretches against the live blocks (sorted by address): one
    /// each, of the right length.
    fn check_used_stretches(
        &self,
        stretches: &[Block],
        live: &[LiveBlock],
    ) -> Result<(), Violation> {
        let mut used: Vec<Block> = stretches
            .iter()
            .filter(|s| s.kind == BlockKind::Used)
            .copied()
            .collect();
        used.sort_by_key(|s| s.addr);
        if let Some(pair) = used.windows(2).find(|pair| pair[0].addr == pair[1].addr) {
            return Err(self.broken(
                id::walk_shows_exactly_the_live_blocks,
                format!(
                    "walk reports two Used stretches starting at {}",
                    self.at(pair[0].addr)
                ),
            ));
        }
        for block in live {
            let Ok(found) = used.binary_search_by_key(&block.start(), |s| s.addr) else {
                return Err(self.broken(
                    id::walk_shows_exactly_the_live_blocks,
                    format!(
                        "the {}-byte block at {} is live, but walk shows no Used stretch starting there",
                        block.layout.size(),
                        self.at(block.start())
                    ),
                ));
            };
            if used[found].size != block.usable {
                return Err(self.broken(
                    id::usable_size_is_truthful,
                    format!(
                        "usable_size says {} bytes for the block at {}, but walk's Used stretch there is {} bytes",
                        block.usable,
                        self.at(block.start()),
                        used[found].size
                    ),
                ));
            }
        }
        match used.iter().find(|s| {
            live.binary_search_by_key(&s.addr, LiveBlock::start)
                .is_err()
        }) {
            Some(stray) => Err(self.broken(
                id::walk_shows_exactly_the_live_blocks,
                format!(
                    "walk reports a Used stretch {}..{} where no live block starts",
                    self.at(stray.addr),
                    self.at(stray.addr.saturating_add(stray.size))
                ),
            )),
            None => Ok(()),
        }
    }

    /// No stretch the heap calls free or its own covers a byte of a live block (the
    /// live blocks sorted by address).
    fn check_nothing_else_covers_a_block(
        &self,
        stretches: &[Block],
        live: &[LiveBlock],
    ) -> Result<(), Violation> {
        for stretch in stretches.iter().filter(|s| s.kind != BlockKind::Used) {
            let end = stretch.addr.saturating_add(stretch.size);
            // The live blocks are disjoint and sorted, so if any overlaps the stretch,
            // the last one starting before its end does.
            let before_end = live.partition_point(|b| b.start() < end);
            let Some(block) = before_end.checked_sub(1).map(|i| live[i]) else {
                continue;
            };
            if block.end() > stretch.addr {
                let what = match stretch.kind {
                    BlockKind::Free => "free: memory the heap may hand out again",
                    _ => "overhead: the heap's own bytes",
                };
                return Err(self.broken(
                    id::blocks_never_overlap,
                    format!(
                        "the live block {}..{} overlaps {}..{}, which walk reports as {what}",
                        self.at(block.start()),
                        self.at(block.end()),
                        self.at(stretch.addr),
                        self.at(end)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_tiling(&self, stretches: &[Block]) -> Result<(), Violation> {
        let end = self.base + self.len;
        let mut next = self.base;
        for stretch in stretches {
            let problem = if stretch.size == 0 {
                Some(format!(
                    "walk reports an empty stretch at {}",
                    self.at(stretch.addr)
                ))
            } else if stretch.addr != next {
                Some(format!(
                    "walk's stretch after {} starts at {}: stretches must follow each other with no gap or overlap",
                    self.at(next),
                    self.at(stretch.addr)
                ))
            } else if stretch.size > end - stretch.addr {
                Some(format!(
                    "walk's stretch at {} is {} bytes long and runs past the region's end {}",
                    self.at(stretch.addr),
                    stretch.size,
                    self.at(end)
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(self.broken(id::walk_tiles_the_region, problem));
            }
            next = stretch.addr + stretch.size;
        }
        if next != end {
            return Err(self.broken(
                id::walk_tiles_the_region,
                format!(
                    "walk stops at {}, short of the region's end {}",
                    self.at(next),
                    self.at(end)
                ),
            ));
        }
        Ok(())
    }

    fn check_contents(&self) -> Result<(), Violation> {
        for (index, block) in self.live.iter().enumerate() {
            if let Some((i, found, wanted)) = mismatch(block.ptr, block.usable, block.fill) {
                return Err(self.broken(
                    id::contents_are_preserved,
                    format!(
                        "byte {i} of live block #{index} ({} bytes asked, {} usable, at {}) reads {found:#04x} where {wanted:#04x} was written",
                        block.layout.size(),
                        block.usable,
                        self.at(block.start())
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_stats(&self, stats: &Stats, stretches: &[Block]) -> Result<(), Violation> {
        let free: Vec<usize> = stretches
            .iter()
            .filter(|s| s.kind == BlockKind::Free)
            .map(|s| s.size)
            .collect();
        let expected = [
            ("region", stats.region, self.len, "the region's length"),
            (
                "live_blocks",
                stats.live_blocks,
                self.live.len(),
                "the live blocks",
            ),
            (
                "requested",
                stats.requested,
                self.live.iter().map(|b| b.layout.size()).sum(),
                "the sizes the live blocks asked for",
            ),
            (
                "usable",
                stats.usable,
                self.live.iter().map(|b| b.usable).sum(),
                "usable_size over the live blocks",
            ),
            (
                "free",
                stats.free,
                free.iter().sum(),
                "walk's Free stretches",
            ),
            (
                "largest_free",
                stats.largest_free,
                free.iter().copied().max().unwrap_or(0),
                "walk's largest Free stretch",
            ),
        ];
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(_, said, counted, _)| said != counted)
            .map(|(field, said, counted, source)| {
                format!("{field} is {said} where {source} make {counted}")
            })
            .collect();
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(self.broken(
                id::stats_match_the_model,
                format!("stats() disagrees: {}", wrong.join("; ")),
            ))
        }
    }

    fn check_high_water(&mut self, stats: &Stats) -> Result<(), Violation> {
        let mark = stats.high_water;
        let problem = if mark < self.high_water {
            Some(format!(
                "high_water fell from {:#x} to {mark:#x}",
                self.high_water
            ))
        } else if mark > self.len {
            Some(format!(
                "high_water {mark:#x} is past the region's end {:#x}",
                self.len
            ))
        } else {
            self.live
                .iter()
                .find(|b| b.end() - self.base > mark)
                .map(|b| {
                    format!(
                        "the live block {}..{} reaches past high_water {mark:#x}",
                        self.at(b.start()),
                        self.at(b.end())
                    )
                })
        };
        self.high_water = mark;
        match problem {
            Some(problem) => Err(self.broken(id::high_water_covers_every_block, problem)),
            None => Ok(()),
        }
    }
}

/// What a block spends of the budget below which modest requests must succeed.
fn cost(layout: Layout) -> usize {
    layout
        .size()
        .saturating_add(layout.align())
        .saturating_add(SLACK_PER_BLOCK)
}

/// Two periods of the byte ramp 0, 1, ..., 255: any 256-byte window of a block's
/// pattern is a slice of it, so patterns are written and compared a slice at a time.
static RAMP: [u8; 512] = {
    let mut ramp = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        ramp[i] = i as u8;
        i += 1;
    }
    ramp
};

/// The pattern of a block with `fill` for its bytes `from..from + len` (`from` a
/// multiple of 256, `len <= 256`).
fn pattern(fill: u8, len: usize) -> &'static [u8] {
    &RAMP[usize::from(fill)..usize::from(fill) + len]
}

fn read<'a>(ptr: NonNull<u8>, len: usize) -> &'a [u8] {
    // SAFETY: callers pass live blocks the model holds (or just received) and a length
    // within their usable size; every byte of the region was written before the heap
    // got it, so the bytes are initialised, and nothing writes them while the slice
    // lives (it is dropped before the next call on the heap).
    unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) }
}

fn write_pattern(ptr: NonNull<u8>, len: usize, fill: u8) {
    for start in (0..len).step_by(256) {
        let chunk = pattern(fill, (len - start).min(256));
        // SAFETY: the block is live, `len` is its usable size (checked to lie inside the
        // region and to overlap no other block), and `chunk` is static memory.
        unsafe {
            ptr.add(start)
                .as_ptr()
                .copy_from_nonoverlapping(chunk.as_ptr(), chunk.len())
        };
    }
}

/// The first byte of `ptr..ptr + len` that differs from the pattern of `fill`:
/// `(index, found, wanted)`.
fn mismatch(ptr: NonNull<u8>, len: usize, fill: u8) -> Option<(usize, u8, u8)> {
    let bytes = read(ptr, len);
    bytes.chunks(256).enumerate().find_map(|(n, chunk)| {
        let wanted = pattern(fill, chunk.len());
        if chunk == wanted {
            return None;
        }
        let i = chunk.iter().zip(wanted).position(|(a, b)| a != b)?;
        Some((n * 256 + i, chunk[i], wanted[i]))
    })
}
