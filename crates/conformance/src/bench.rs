//! Where rules run: fresh heaps over dirtied memory between guard zones, the log of
//! operations that a violation carries, writes outside the region and panics turned
//! into violations, and the shrinking of a failing log to a short one.

use rawheap::{AllocError, Capabilities, RawHeap, Stats};

use crate::guard::{Breach, GUARD_BYTE, GuardedArena};
use crate::model::{Model, Outcome};
use crate::op::Op;
use crate::page;
use crate::panics;
use crate::rules::id;
use crate::violation::{Violation, at};

/// How much replaying shrinking may do before it settles for what it has, counted as
/// the square of each replayed sequence's length: the model checks every live block
/// after every step, so a replay costs about that much. Nothing under Miri, where a
/// replay costs seconds and shrinking finds no undefined behaviour the run did not.
const SHRINK_BUDGET: usize = if cfg!(miri) { 0 } else { 3_000_000 };

/// A heap over `region` fresh bytes `offset` bytes past a page boundary, between guard
/// zones (see [`crate::guard`]); `Err` if the memory cannot be had, or if `new` already
/// wrote outside the region.
pub(crate) fn guarded_arena<H: RawHeap>(
    running: &'static str,
    region: usize,
    offset: usize,
) -> Result<GuardedArena<H>, Violation> {
    let arena = GuardedArena::<H>::new(region, offset).map_err(|e| {
        Violation::new::<H>(
            running,
            region,
            format!("the system could not provide a {region}-byte region: {e}"),
        )
    })?;
    match arena.breach() {
        Some(breach) => Err(wrote_outside::<H>(&arena, breach, None).with_ops(Vec::new(), offset)),
        None => Ok(arena),
    }
}

/// Performs `op` under the model, then checks the guard zones: a write outside the
/// region is reported before anything else the step found, since it is what broke
/// first (and may be what confused the rest).
pub(crate) fn step<H: RawHeap>(
    arena: &mut GuardedArena<H>,
    model: &mut Model,
    op: Op,
) -> Result<Outcome, Violation> {
    let result = model.apply(&mut **arena, op);
    match arena.breach() {
        Some(breach) => Err(wrote_outside::<H>(arena, breach, Some(&op))),
        None => result,
    }
}

/// The violation of a write outside the region that `breach` found.
fn wrote_outside<H: RawHeap>(
    arena: &GuardedArena<H>,
    breach: Breach,
    op: Option<&Op>,
) -> Violation {
    let region = arena.given();
    let start = region.cast::<u8>().as_ptr().addr();
    let end = start + region.len();
    let side = if breach.first < start {
        format!("{} bytes before the region's start", start - breach.first)
    } else {
        format!(
            "{} bytes past the region's end {}",
            breach.end - end,
            at(end, start)
        )
    };
    Violation::new::<H>(
        id::writes_stay_inside_the_region,
        region.len(),
        format!(
            "the heap wrote outside its region{}: the guard bytes {}..{} ({side}) were changed; the first now reads {:#04x} where the guard pattern {GUARD_BYTE:#04x} was",
            during(op),
            at(breach.first, start),
            at(breach.end, start),
            breach.found,
        ),
    )
}

/// The state of one rule's run that must survive a panic: which rule, the region, and
/// the operations done on the current heap.
pub(crate) struct Bench {
    rule: &'static str,
    region: usize,
    /// The length of the current heap's region: `region`, or less (see
    /// [`Bench::fresh_sized`]).
    len: usize,
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
        self.fresh_sized(self.region, offset)
    }

    /// A fresh heap over `len` bytes (at most the rule's region size) `offset` bytes
    /// past a page, with an empty log.
    pub(crate) fn fresh_sized<H: RawHeap>(
        &mut self,
        len: usize,
        offset: usize,
    ) -> Result<Session<'_, H>, Violation> {
        self.len = len.min(self.region);
        self.offset = offset;
        self.log.clear();
        let arena = guarded_arena::<H>(self.rule, self.len, offset)?;
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
    arena: GuardedArena<H>,
    model: Model,
    bench: &'b mut Bench,
}

impl<H: RawHeap> Session<'_, H> {
    /// Performs `op` under the model; a violation carries the operations so far.
    pub(crate) fn run(&mut self, op: Op) -> Result<Outcome, Violation> {
        self.bench.log.push(op);
        step(&mut self.arena, &mut self.model, op)
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
        Violation::new::<H>(self.bench.rule, self.bench.len, message)
    }
}

/// The part of a message that says during which operation something happened.
fn during(op: Option<&Op>) -> String {
    match op {
        Some(op) => format!(" during `{op}`"),
        None => " before any operation (in `new`, `region` or `capabilities`)".to_owned(),
    }
}

/// A panic in the heap, charged to the one rule about panics whichever rule's scenario
/// met it: one bug, one rule. `done` are the operations up to the one that panicked.
fn panicked<H: RawHeap>(region: usize, offset: usize, done: &[Op], panic: &str) -> Violation {
    Violation::new::<H>(
        id::methods_never_panic,
        region,
        format!("the heap panicked{}: {panic}", during(done.last())),
    )
    .with_ops(done.to_vec(), offset)
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
        len: region,
        offset: 0,
        log: Vec::new(),
    };
    let violation = match panics::catch(|| scenario(&mut bench)) {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(violation)) => violation,
        Err(panic) => panicked::<H>(bench.len, bench.offset, &bench.log, &panic),
    };
    Err(page::with_page::<H>(shrink::<H>(rule, violation)))
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
        let mut arena = guarded_arena::<H>(running, region, offset)?;
        let mut model = Model::new(&*arena);
        for (i, &op) in ops.iter().enumerate() {
            done = i + 1;
            step(&mut arena, &mut model, op).map_err(|v| v.with_ops(ops[..=i].to_vec(), offset))?;
        }
        Ok(())
    });
    outcome.unwrap_or_else(|panic| Err(panicked::<H>(region, offset, &ops[..done], &panic)))
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
