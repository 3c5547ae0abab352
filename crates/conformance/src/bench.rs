//! Where rules run: fresh heaps over dirtied memory, the log of operations that a
//! violation carries, panics turned into violations, and the shrinking of a failing
//! log to a short one.

use rawheap::{AllocError, Arena, Capabilities, Memory, RawHeap, Stats};

use crate::model::{Model, Outcome};
use crate::op::Op;
use crate::panics;
use crate::violation::Violation;

/// Regions start this many bytes past a multiple of this alignment (plus an offset).
const PAGE: usize = 4096;

/// What fresh memory holds before a heap gets it: not zero, so that `allocate_zeroed`
/// must really zero, and written, so that reading a block the heap never initialised
/// reads bytes that exist.
const FRESH_BYTE: u8 = 0xA5;

/// How much replaying shrinking may do before it settles for what it has, counted as
/// the square of each replayed sequence's length: the model checks every live block
/// after every step, so a replay costs about that much. Nothing under Miri, where a
/// replay costs seconds and shrinking finds no undefined behaviour the run did not.
const SHRINK_BUDGET: usize = if cfg!(miri) { 0 } else { 3_000_000 };

/// A heap over `region` fresh bytes, `offset` bytes past a page boundary, every byte
/// of them set to [`FRESH_BYTE`] before the heap sees them.
pub(crate) fn dirty_arena<H: RawHeap>(
    region: usize,
    offset: usize,
) -> Result<Arena<H>, AllocError> {
    let memory = Memory::with_placement(region, PAGE, offset)?;
    // SAFETY: the memory is fresh, `region` bytes long and not yet given to any heap.
    unsafe { memory.region().cast::<u8>().write_bytes(FRESH_BYTE, region) };
    Ok(Arena::over(memory))
}

/// The state of one rule's run that must survive a panic: which rule, the region, and
/// the operations done on the current heap.
pub(crate) struct Bench {
    rule: &'static str,
    region: usize,
    offset: usize,
    log: Vec<Op>,
}

impl Bench {
    /// The region size this rule runs with.
    pub(crate) fn region(&self) -> usize {
        self.region
    }

    /// A fresh heap `offset` bytes past a page, with an empty log.
    pub(crate) fn fresh<H: RawHeap>(&mut self, offset: usize) -> Result<Session<'_, H>, Violation> {
        self.offset = offset;
        self.log.clear();
        let arena = dirty_arena::<H>(self.region, offset).map_err(|e| {
            Violation::new::<H>(
                self.rule,
                self.region,
                format!(
                    "the system allocator could not provide a {}-byte region: {e}",
                    self.region
                ),
            )
        })?;
        let model = Model::new(&*arena);
        Ok(Session {
            arena,
            model,
            bench: self,
        })
    }
}

/// One heap under the model, as a rule's scenario drives it.
pub(crate) struct Session<'b, H: RawHeap> {
    arena: Arena<H>,
    model: Model,
    bench: &'b mut Bench,
}

impl<H: RawHeap> Session<'_, H> {
    /// Performs `op` under the model; a violation carries the operations so far.
    pub(crate) fn run(&mut self, op: Op) -> Result<Outcome, Violation> {
        self.bench.log.push(op);
        self.model
            .apply(&mut *self.arena, op)
            .map_err(|v| v.with_ops(self.bench.log.clone(), self.bench.offset))
    }

    pub(crate) fn run_all(&mut self, ops: &[Op]) -> Result<(), Violation> {
        ops.iter().try_for_each(|&op| self.run(op).map(drop))
    }

    pub(crate) fn alloc(&mut self, size: usize, align_log2: u8) -> Result<Outcome, Violation> {
        self.run(Op::Alloc { size, align_log2 })
    }

    pub(crate) fn alloc_zeroed(
        &mut self,
        size: usize,
        align_log2: u8,
    ) -> Result<Outcome, Violation> {
        self.run(Op::AllocZeroed { size, align_log2 })
    }

    pub(crate) fn free(&mut self, index: usize) -> Result<Outcome, Violation> {
        self.run(Op::Free { index })
    }

    /// Frees the most recently allocated live block.
    pub(crate) fn free_last(&mut self) -> Result<Outcome, Violation> {
        self.free(self.live().saturating_sub(1))
    }

    pub(crate) fn realloc(
        &mut self,
        index: usize,
        size: usize,
        align_log2: u8,
    ) -> Result<Outcome, Violation> {
        self.run(Op::Realloc {
            index,
            size,
            align_log2,
        })
    }

    /// Allocates `size`-byte blocks until the heap refuses; returns the refusal.
    pub(crate) fn fill(&mut self, size: usize, align_log2: u8) -> Result<AllocError, Violation> {
        // Ends: the model stops any heap that hands out blocks that overlap or leave
        // the region, so at most `region / size` allocations succeed.
        loop {
            if let Outcome::Refused(refusal) = self.alloc(size, align_log2)? {
                return Ok(refusal);
            }
        }
    }

    /// How many blocks are live.
    pub(crate) fn live(&self) -> usize {
        self.model.live().len()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.arena.stats()
    }

    pub(crate) fn capabilities(&self) -> Capabilities {
        self.arena.capabilities()
    }

    /// A violation of the running rule that replaying operations alone would not show.
    pub(crate) fn fail(&self, message: String) -> Violation {
        Violation::new::<H>(self.bench.rule, self.bench.region, message)
    }
}

/// The part of a panic message that says where it happened.
fn during(op: Option<&Op>) -> String {
    match op {
        Some(op) => format!(" during `{op}`"),
        None => " before any operation (in `new`, `region` or `capabilities`)".to_owned(),
    }
}

/// Runs `scenario` for `rule`; a panic becomes a violation of `rule`, and a failure
/// that comes with operations is shrunk to a short sequence.
pub(crate) fn run_rule<H: RawHeap>(
    rule: &'static str,
    region: usize,
    scenario: fn(&mut Bench) -> Result<(), Violation>,
) -> Result<(), Violation> {
    let mut bench = Bench {
        rule,
        region,
        offset: 0,
        log: Vec::new(),
    };
    let violation = match panics::catch(|| scenario(&mut bench)) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(violation)) => violation,
        Err(panic) => Violation::new::<H>(
            rule,
            region,
            format!("the heap panicked{}: {panic}", during(bench.log.last())),
        )
        .with_ops(bench.log, bench.offset),
    };
    Err(shrink::<H>(rule, violation))
}

/// Replays `ops` on a fresh heap under the model; a panic is a violation of `running`.
pub(crate) fn replay_as<H: RawHeap>(
    running: &'static str,
    region: usize,
    offset: usize,
    ops: &[Op],
) -> Result<(), Violation> {
    let mut done = 0;
    let outcome = panics::catch(|| {
        let mut arena = dirty_arena::<H>(region, offset).map_err(|e| {
            Violation::new::<H>(
                running,
                region,
                format!("the system allocator could not provide a {region}-byte region: {e}"),
            )
        })?;
        let mut model = Model::new(&*arena);
        for (i, &op) in ops.iter().enumerate() {
            done = i + 1;
            model
                .apply(&mut *arena, op)
                .map_err(|v| v.with_ops(ops[..=i].to_vec(), offset))?;
        }
        Ok(())
    });
    outcome.unwrap_or_else(|panic| {
        Err(Violation::new::<H>(
            running,
            region,
            format!("the heap panicked{}: {panic}", during(ops[..done].last())),
        )
        .with_ops(ops[..done].to_vec(), offset))
    })
}

/// Shrinks `violation`'s sequence while the same rule still breaks: cuts operations
/// out (halves, quarters, ... single ones), then makes the rest simpler (smaller sizes
/// and alignments, lower indices, `Alloc` for `AllocZeroed`), and again while either
/// helps, within [`SHRINK_BUDGET`]. Returns the violation of the shortest sequence.
pub(crate) fn shrink<H: RawHeap>(running: &'static str, violation: Violation) -> Violation {
    let Some(ops) = violation.ops.clone() else {
        return violation;
    };
    if ops.len() * ops.len() > SHRINK_BUDGET {
        // Too long to replay even once within the budget: the sequence stands as found.
        return violation;
    }
    let (region, offset, rule) = (violation.region, violation.offset, violation.rule);
    let reproduce = |ops: &[Op]| {
        replay_as::<H>(running, region, offset, ops)
            .err()
            .filter(|v| v.rule == rule)
    };
    let Some(best) = reproduce(&ops) else {
        return Violation {
            ops: None,
            message: format!(
                "{} (replaying the operations on a fresh heap did not break the rule again, so none are shown: does the heap depend on more than its calls?)",
                violation.message
            ),
            ..violation
        };
    };
    let mut shrinking = Shrinking {
        reproduce,
        budget: SHRINK_BUDGET.saturating_sub(ops.len() * ops.len()),
        best,
    };
    loop {
        let before = shrinking.ops().to_vec();
        shrinking.cut_out_operations();
        shrinking.simplify_operations();
        if shrinking.ops() == before || shrinking.budget == 0 {
            return shrinking.best;
        }
    }
}

struct Shrinking<F> {
    reproduce: F,
    /// What replaying may still cost (see [`SHRINK_BUDGET`]).
    budget: usize,
    /// The violation of the shortest failing sequence so far; it always has ops.
    best: Violation,
}

impl<F: Fn(&[Op]) -> Option<Violation>> Shrinking<F> {
    fn ops(&self) -> &[Op] {
        self.best.ops.as_deref().unwrap_or_default()
    }

    /// Replays `candidate`; keeps it if the rule still breaks.
    fn attempt(&mut self, candidate: &[Op]) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget = self
            .budget
            .saturating_sub(candidate.len() * candidate.len());
        match (self.reproduce)(candidate) {
            Some(shorter) => {
                self.best = shorter;
                true
            }
            None => false,
        }
    }

    fn cut_out_operations(&mut self) {
        let mut cut = (self.ops().len() / 2).max(1);
        loop {
            let mut start = 0;
            while start < self.ops().len() && self.budget > 0 {
                let ops = self.ops();
                let candidate: Vec<Op> = ops[..start]
                    .iter()
                    .chain(ops.iter().skip(start + cut))
                    .copied()
                    .collect();
                if !self.attempt(&candidate) {
                    start += cut;
                }
            }
            if cut == 1 {
                return;
            }
            cut /= 2;
        }
    }

    fn simplify_operations(&mut self) {
        let mut at = 0;
        while at < self.ops().len() && self.budget > 0 {
            for simpler in simpler(self.ops()[at]) {
                let mut candidate = self.ops().to_vec();
                candidate[at] = simpler;
                if self.attempt(&candidate) {
                    break;
                }
            }
            at += 1;
        }
    }
}

/// Operations like `op` but simpler, simplest first.
fn simpler(op: Op) -> Vec<Op> {
    fn smaller(n: usize, least: usize) -> Vec<usize> {
        let mut options = vec![least, n / 2, n.saturating_sub(1)];
        options.retain(|&m| m >= least && m < n);
        options.dedup();
        options
    }
    let align = |a: u8| smaller(usize::from(a), 0).into_iter().map(|a| a as u8);
    match op {
        Op::Alloc { size, align_log2 } => smaller(size, 1)
            .into_iter()
            .map(|size| Op::Alloc { size, align_log2 })
            .chain(align(align_log2).map(|align_log2| Op::Alloc { size, align_log2 }))
            .collect(),
        Op::AllocZeroed { size, align_log2 } => [Op::Alloc { size, align_log2 }]
            .into_iter()
            .chain(
                smaller(size, 1)
                    .into_iter()
                    .map(|size| Op::AllocZeroed { size, align_log2 }),
            )
            .chain(align(align_log2).map(|align_log2| Op::AllocZeroed { size, align_log2 }))
            .collect(),
        Op::Free { index } => smaller(index, 0)
            .into_iter()
            .map(|index| Op::Free { index })
            .collect(),
        Op::Realloc {
            index,
            size,
            align_log2,
        } => smaller(index, 0)
            .into_iter()
            .map(|index| Op::Realloc {
                index,
                size,
                align_log2,
            })
            .chain(smaller(size, 1).into_iter().map(|size| Op::Realloc {
                index,
                size,
                align_log2,
            }))
            .chain(align(align_log2).map(|align_log2| Op::Realloc {
                index,
                size,
                align_log2,
            }))
            .collect(),
    }
}
