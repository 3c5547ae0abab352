//! The rules, one function each: `rules::blocks_never_overlap::<MyHeap>(65536)`.
//!
//! Every function runs its rule's scenario on fresh heaps of the given region size
//! under the [`Model`](crate::Model), which checks every rule it knows after every
//! operation; the [`Violation`] names the rule actually broken (usually the one run).
//! A panic in the heap is a violation of `methods_never_panic`, and a write outside the
//! region one of `writes_stay_inside_the_region`, whichever rule was running.
//!
//! The names, explanations and functions all come from one table, [`RULES`], which
//! also feeds the crate documentation, failure messages and the [`suite!`](crate::suite)
//! macro.

use rawheap::RawHeap;

use crate::violation::Violation;

/// A rule of the suite: its name (also its test's and its function's) and what it
/// means, in one sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The rule's name.
    pub name: &'static str,
    /// What the rule asks of a heap.
    pub explanation: &'static str,
}

/// The rules table. Each entry is `name: "explanation";`; `$then` picks what to build
/// from it (see `__rules_apply`).
#[doc(hidden)]
#[macro_export]
macro_rules! __with_rules {
    ($($then:tt)*) => {
        $crate::__rules_apply! { [$($then)*]
            zero_size_is_refused:
                "A request for 0 bytes is refused with `AllocError::ZeroSize` by `allocate`, `allocate_zeroed` and `reallocate`, and no other size is refused with `ZeroSize`.";
            modest_requests_are_served:
                "A heap that has handed out less than a quarter of its region (each block counted with its alignment and 64 bytes of slack) serves any request it admits of at most an eighth of the region: 1 byte, odd sizes, a page.";
            oversized_requests_are_refused:
                "A request larger than the region or than `capabilities().max_size` is refused with `AllocError::Unsupported`, and a region-sized request gets an answer, not a panic.";
            absurd_layouts_are_refused:
                "Sizes near `isize::MAX` and alignments beyond `capabilities().max_align` (such as `1 << 30`) are refused with `AllocError::Unsupported`, without overflow or panic.";
            alignment_is_honoured:
                "Every block is aligned as asked, for every power of two up to `capabilities().max_align` (tried up to a page and a quarter of the region).";
            blocks_lie_inside_the_region:
                "Every block, all `usable_size` bytes of it, lies inside the heap's region.";
            writes_stay_inside_the_region:
                "The heap writes only inside its region: the guard bytes the suite keeps just before and after it still hold their pattern after every operation (even when the region's length is not a multiple of 8 or 16).";
            blocks_never_overlap:
                "The usable bytes of a live block belong to it alone: no other live block shares them, and `walk` reports none of them as free or as the heap's own.";
            usable_size_is_truthful:
                "`usable_size` is at least the size asked for and exactly the length of the block's `Used` stretch in `walk`.";
            contents_are_preserved:
                "Every byte written into a live block, over all of its `usable_size`, reads back unchanged until the block is freed, whatever else the heap does meanwhile.";
            allocate_zeroed_gives_zeros:
                "`allocate_zeroed` returns zeroed bytes, also from fresh memory that is not zero and from memory that held data before.";
            reallocate_keeps_contents:
                "A successful `reallocate` keeps the first `min(old, new)` bytes, whether it grows, shrinks, moves or changes the alignment.";
            failed_reallocate_keeps_the_block:
                "When `reallocate` is refused, the old block is still live, still shown as used by `walk`, and intact.";
            exhaustion_is_an_error_not_a_crash:
                "Filling the heap ends in `Err(Exhausted)`, not a panic nor `Unsupported` for a layout served before, and the heap stays usable: freeing the newest block lets the same request succeed again (when the heap reuses memory).";
            methods_never_panic:
                "No method of the heap panics, whatever it is asked and however full it is: what it cannot do is answered with `Err`. A panic is charged to this rule whichever rule's scenario meets it, with the operation and the place in the source.";
            freed_memory_is_reused:
                "A heap that claims `Reuse::Any` (or `MostRecent`) serves new requests from freed blocks (or the newest freed one): a loop of allocate and free never runs out, and blocks freed in a full heap are handed out again.";
            freeing_everything_restores_the_heap:
                "A heap that claims `restores_when_empty` is, once every block is freed (in any order, or newest first for `Reuse::MostRecent`), as free as when new: the same `free` and `largest_free`.";
            stats_match_the_model:
                "`stats()` counts what the caller sees (live blocks, bytes requested, usable bytes, the region) and agrees with `walk` on the free bytes and the largest free stretch.";
            walk_tiles_the_region:
                "`walk` reports non-empty stretches in address order that cover the region exactly, with no gap and no overlap.";
            walk_shows_exactly_the_live_blocks:
                "`walk`'s `Used` stretches are exactly the live blocks: one starting at each pointer handed out and not yet freed, and no other.";
            high_water_covers_every_block:
                "`stats().high_water` never falls, stays within the region, and reaches the end of every live block.";
            check_passes_after_every_operation:
                "The heap's own `check()` returns `Ok` after every operation.";
            unaligned_regions_are_handled:
                "Every rule also holds in a region that starts 1, 3 or 7 bytes past a page boundary, aligned to nothing.";
            random_operation_sequences_keep_every_rule:
                "Random sequences of `allocate`, `allocate_zeroed`, `deallocate` and `reallocate` keep every rule after every step (a failure is shrunk to the shortest sequence found).";
        }
    };
}

/// Builds, from the rules table, either this module's items (`[table]`), the crate
/// documentation's table (`[doc_table]`), or a test module (`[suite module, Heap, region]`).
#[doc(hidden)]
#[macro_export]
macro_rules! __rules_apply {
    ([table] $($name:ident: $explanation:literal;)*) => {
        #[doc = concat!(
            "Every rule with its explanation, in the order the suite runs them.\n\n",
            "| rule | what it asks of a heap |\n| --- | --- |\n",
            $("| [`", stringify!($name), "`] | ", $explanation, " |\n",)*
        )]
        pub const RULES: &[Rule] = &[
            $(Rule { name: stringify!($name), explanation: $explanation },)*
        ];

        $(
            #[doc = $explanation]
            ///
            /// Runs the rule's scenario on fresh `H` heaps of `region` bytes; see the
            /// [module documentation](self).
            pub fn $name<H: RawHeap>(region: usize) -> Result<(), Violation> {
                $crate::bench::run_rule::<H>(
                    stringify!($name),
                    region,
                    $crate::scenarios::$name::<H>,
                )
            }
        )*

        /// Runs every rule on `H` with `region` bytes: each rule's name with its result.
        pub fn run_all<H: RawHeap>(region: usize) -> Vec<(&'static str, Result<(), Violation>)> {
            vec![$((stringify!($name), $name::<H>(region)),)*]
        }

        /// The rule names as constants, so that a misspelt name does not compile. The
        /// rules a scenario checks by itself have no use for theirs.
        #[allow(non_upper_case_globals, dead_code)]
        pub(crate) mod id {
            $(pub(crate) const $name: &str = stringify!($name);)*
        }
    };
    ([doc_table] $($name:ident: $explanation:literal;)*) => {
        concat!(
            "| rule | what it asks of a heap |\n| --- | --- |\n",
            $("| [`", stringify!($name), "`](rules::", stringify!($name), ") | ", $explanation, " |\n",)*
        )
    };
    ([suite $module:ident, $heap:ty, $region:expr] $($name:ident: $explanation:literal;)*) => {
        /// The conformance suite: one test per rule.
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = $explanation]
                #[test]
                fn $name() {
                    $crate::__run_test(
                        stringify!($name),
                        $crate::rules::$name::<$heap>,
                        $crate::rules::modest_requests_are_served::<$heap>,
                        $region,
                    );
                }
            )*
        }
    };
}

crate::__with_rules!(table);

/// The rule every panic in a heap is charged to, whichever rule's scenario met it.
pub const PANIC_RULE: &str = id::methods_never_panic;

/// The rule whose keeping lets the rules a panic stopped count as kept (see
/// [`crate::__run_test`]): a heap that serves modest requests is one whose panic is a
/// flaw in one place, not a heap that does not work yet.
pub const SERVES_RULE: &str = id::modest_requests_are_served;

/// The explanation of the rule called `name`.
pub fn explain(name: &str) -> Option<&'static str> {
    RULES
        .iter()
        .find(|rule| rule.name == name)
        .map(|rule| rule.explanation)
}
