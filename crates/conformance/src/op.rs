//! [`Op`]: one call on a heap, the unit the model checks, the property tests generate
//! and shrink, and a regression test replays.

use core::alloc::Layout;
use core::fmt;

/// One call on a heap.
///
/// Blocks are named by their place among the live blocks, oldest first, and the index
/// is taken modulo the number of live blocks: any sequence of `Op`s is meaningful, so a
/// property-test framework can cut operations out of a failing sequence and the rest
/// still replays. `Free` and `Realloc` do nothing while no block is live, and an
/// operation whose size and alignment form no valid [`Layout`] is skipped.
///
/// [`Display`](fmt::Display) writes an `Op` as the Rust expression that builds it,
/// which is how failing sequences are printed as regression tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `allocate` a block.
    Alloc {
        /// Bytes asked for.
        size: usize,
        /// The alignment is `1 << align_log2`.
        align_log2: u8,
    },
    /// `allocate_zeroed` a block; its first `size` bytes must read as zero.
    AllocZeroed {
        /// Bytes asked for.
        size: usize,
        /// The alignment is `1 << align_log2`.
        align_log2: u8,
    },
    /// `deallocate` a live block.
    Free {
        /// Which live block, oldest first, modulo the number of live blocks.
        index: usize,
    },
    /// `reallocate` a live block to a new size and alignment.
    Realloc {
        /// Which live block, oldest first, modulo the number of live blocks.
        index: usize,
        /// The new size.
        size: usize,
        /// The new alignment is `1 << align_log2`.
        align_log2: u8,
    },
}

impl Op {
    /// The layout of `size` bytes aligned to `1 << align_log2`, if there is one.
    pub fn layout(size: usize, align_log2: u8) -> Option<Layout> {
        let align = 1usize.checked_shl(u32::from(align_log2))?;
        Layout::from_size_align(size, align).ok()
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The derived Debug form is the variant's struct-literal syntax; qualifying it
        // with the enum's name makes it an expression that compiles after `use conformance::Op`.
        write!(f, "Op::{self:?}")
    }
}

/// `ops` as the body of a slice literal, one operation a line, indented by `indent`.
pub(crate) fn slice_literal(ops: &[Op], indent: &str) -> String {
    ops.iter().map(|op| format!("{indent}{op},\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_op_prints_as_the_rust_expression_that_builds_it() {
        assert_eq!(
            Op::Alloc {
                size: 24,
                align_log2: 3
            }
            .to_string(),
            "Op::Alloc { size: 24, align_log2: 3 }"
        );
        assert_eq!(Op::Free { index: 0 }.to_string(), "Op::Free { index: 0 }");
        assert_eq!(
            Op::Realloc {
                index: 1,
                size: 7,
                align_log2: 0
            }
            .to_string(),
            "Op::Realloc { index: 1, size: 7, align_log2: 0 }"
        );
    }

    #[test]
    fn layouts_that_cannot_exist_are_none() {
        assert_eq!(Op::layout(24, 3), Layout::from_size_align(24, 8).ok());
        assert_eq!(Op::layout(0, 0), Layout::from_size_align(0, 1).ok());
        assert_eq!(Op::layout(1, 200), None, "1 << 200 does not fit in usize");
        assert_eq!(
            Op::layout(isize::MAX as usize, 3),
            None,
            "rounds past isize::MAX"
        );
    }
}
