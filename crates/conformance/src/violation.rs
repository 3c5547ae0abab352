//! [`Violation`]: a broken rule, told in words, with the operations that break it.

use core::fmt;

use crate::op::{Op, slice_literal};
use crate::rules;

/// A rule of the suite that a heap broke.
///
/// Its [`Display`](fmt::Display) (also used by `Debug`, so `unwrap()` prints it) says
/// which rule, what the rule means, what happened, and, when the failure can be
/// replayed, the shortest sequence of operations found as a regression test to paste.
#[derive(Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken: a name from [`rules::RULES`].
    pub rule: &'static str,
    /// What happened, in plain words, with offsets from the region's start.
    pub message: String,
    /// Operations that break the rule when replayed on a fresh heap
    /// ([`replay_at`](crate::replay_at)); `None` when the failure is a scenario's own
    /// finding that replaying operations alone does not check.
    pub ops: Option<Vec<Op>>,
    /// The heap's type, without module paths (`FreeList<FirstFit>`).
    pub heap: String,
    /// The region size the failure happened with.
    pub region: usize,
    /// How many bytes past a page boundary the region started.
    pub offset: usize,
    /// The failure page written for it (see [`failure_dir`](crate::failure_dir)), if any.
    /// (Boxed, to keep `Result<_, Violation>` small.)
    pub page: Option<Box<std::path::Path>>,
}

impl Violation {
    /// A violation of `rule` by the heap type `H` in a `region`-byte region.
    pub fn new<H: ?Sized>(rule: &'static str, region: usize, message: impl Into<String>) -> Self {
        Violation {
            rule,
            message: message.into(),
            ops: None,
            heap: short_type_name(core::any::type_name::<H>()),
            region,
            offset: 0,
            page: None,
        }
    }

    /// The same violation, reproduced by `ops` on a region `offset` bytes past a page.
    pub fn with_ops(self, ops: Vec<Op>, offset: usize) -> Self {
        Violation {
            ops: Some(ops),
            offset,
            ..self
        }
    }

    /// The regression test that replays [`ops`](Violation::ops), as Rust source.
    pub fn regression_test(&self) -> Option<String> {
        let ops = self.ops.as_ref()?;
        let call = if self.offset == 0 {
            format!(
                "::conformance::replay::<{}>({}, &[\n",
                self.heap, self.region
            )
        } else {
            format!(
                "::conformance::replay_at::<{}>({}, {}, &[\n",
                self.heap, self.region, self.offset
            )
        };
        Some(format!(
            "#[test]\nfn regression() {{\n    use ::conformance::Op;\n    {call}{}    ])\n    .unwrap();\n}}\n",
            slice_literal(ops, "        ")
        ))
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} broke the rule `{}`", self.heap, self.rule)?;
        if let Some(explanation) = rules::explain(self.rule) {
            writeln!(f, "  the rule: {explanation}")?;
        }
        writeln!(f, "  what happened: {}", self.message)?;
        if let Some(test) = self.regression_test() {
            writeln!(
                f,
                "  the shortest operation sequence found that shows it, as a test to paste:\n"
            )?;
            f.write_str(&test)?;
        }
        if let Some(page) = &self.page {
            // On a line of its own, in exactly this form: graders link to it.
            writeln!(f, "\nfailure page: {}", page.display())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Violation {}

/// `type_name` output with every path shortened to its last segment, so that
/// `my_crate::heap::ListHeap<my_crate::Flaw>` prints as `ListHeap<Flaw>`: the names a
/// test module that imports the heap uses.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut short = String::with_capacity(full.len());
    let mut segment_start = 0;
    for (i, c) in full.char_indices() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            continue;
        }
        short.push_str(last_segment(&full[segment_start..i]));
        short.push(c);
        segment_start = i + c.len_utf8();
    }
    short.push_str(last_segment(&full[segment_start..]));
    short
}

fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// `addr` as an offset from `base`, the way messages name places in a region.
pub(crate) fn at(addr: usize, base: usize) -> String {
    match addr.checked_sub(base) {
        Some(offset) => format!("+{offset:#x}"),
        None => format!("-{:#x}", base - addr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(short_type_name("a::b::ListHeap<c::Flaw>"), "ListHeap<Flaw>");
        assert_eq!(
            short_type_name("x::Checked<y::FreeList<z::BestFit>>"),
            "Checked<FreeList<BestFit>>"
        );
        assert_eq!(short_type_name("Plain"), "Plain");
        assert_eq!(short_type_name("a::Pair<b::X, c::Y>"), "Pair<X, Y>");
    }

    #[test]
    fn offsets_are_written_from_the_region_start() {
        assert_eq!(at(0x1040, 0x1000), "+0x40");
        assert_eq!(at(0x1000, 0x1000), "+0x0");
        assert_eq!(at(0xff0, 0x1000), "-0x10");
    }

    #[test]
    fn a_violation_with_ops_prints_a_regression_test() {
        let v = Violation::new::<u8>("blocks_never_overlap", 4096, "two blocks share +0x10")
            .with_ops(
                vec![Op::Alloc {
                    size: 24,
                    align_log2: 3,
                }],
                0,
            );
        let text = v.to_string();
        assert!(
            text.contains("u8 broke the rule `blocks_never_overlap`"),
            "{text}"
        );
        assert!(
            text.contains("what happened: two blocks share +0x10"),
            "{text}"
        );
        assert!(
            text.contains(
                "::conformance::replay::<u8>(4096, &[\n        Op::Alloc { size: 24, align_log2: 3 },\n    ])"
            ),
            "{text}"
        );
        let placed = Violation { offset: 3, ..v };
        assert!(
            placed
                .to_string()
                .contains("::conformance::replay_at::<u8>(4096, 3, &["),
            "{placed}"
        );
    }

    #[test]
    fn a_violation_without_ops_prints_no_test() {
        let v = Violation::new::<u8>("freed_memory_is_reused", 4096, "the loop ran out");
        assert_eq!(v.regression_test(), None);
        assert!(!v.to_string().contains("#[test]"));
    }
}
