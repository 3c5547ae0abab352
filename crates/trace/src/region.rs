//! How large a region a replay gets: [`choose`].
//!
//! A `.rep` header's first line suggests a region, and traces from elsewhere often
//! suggest nonsense: the malloc lab's own traces say `0` or `1`, because its driver
//! ignores the number and lets the heap grow up to a fixed 20 MiB (`MAX_HEAP` in
//! `memlib.c`). Replaying in a region that small refuses every request, and a score of
//! "0 correct traces" would blame the allocators for the file.
//!
//! So a suggestion is trusted only when it holds what the trace needs at least: its
//! **peak footprint**, the most bytes its live blocks take at once when each is counted
//! as a boundary-tag heap lays it out ([`block_footprint`]: the size rounded up to the
//! granule, plus a minimum block of header, footer and padding). A suggestion below
//! that was not made for this trace (the lab's `0` and `1`) or leaves a heap with
//! boundary tags no room to spare, whatever its algorithm. A smaller suggestion is
//! replaced by the **bound** [`REGION_FACTOR`] × the peak footprint (rounded up to a
//! page, at least [`MIN_REGION`]): the room the generated traces suggest for
//! themselves, enough for a heap that rounds every block up to a power of two and still
//! loses some to fragmentation. A region given on the command line is used as given:
//! that is an experiment, not a suggestion. [`Region`] records which of the three a
//! replay used, and the reports print it.
//!
//! Unlike the malloc lab's fixed 20 MiB, the bound grows with the trace, so a long
//! trace recorded from a real program is not refused for its size, and a small one does
//! not hand a heap that spreads blocks over its region (buddy) an unfair expanse.

use std::alloc::Layout;
use std::fmt;

use serde::Serialize;

use crate::format::{Op, Trace, served_size};

/// The footprint model's granule and smallest block: a boundary-tag heap's on this
/// target (`rawheap::tags::GRANULE` and `MIN_BLOCK`, which a test holds them to). Written
/// here rather than imported, since importing them would switch on rawheap's `tags`
/// feature in every build that links this crate, the grader's harness among them, where
/// staff may switch it off (`--no-tags`).
const GRANULE: usize = 2 * size_of::<usize>();
/// See [`GRANULE`]: a header, two links and a footer.
const MIN_BLOCK: usize = 4 * size_of::<usize>();

/// The bound is this many times the trace's peak footprint.
pub const REGION_FACTOR: usize = 4;

/// The smallest bound: 64 KiB.
pub const MIN_REGION: usize = 64 * 1024;

/// The bytes a live block of `size` (as served, [`served_size`]) counts for in a
/// trace's footprint at alignment `align`: rounded up to the boundary-tag granule, plus
/// a minimum block for the header, the footer and padding, plus the padding that a
/// larger alignment can cost. Saturates rather than overflow.
pub const fn block_footprint(size: usize, align: usize) -> usize {
    let rounded = match served_size(size).checked_next_multiple_of(GRANULE) {
        Some(rounded) => rounded,
        None => usize::MAX,
    };
    rounded
        .saturating_add(MIN_BLOCK)
        .saturating_add(align.saturating_sub(GRANULE))
}

/// The bound for a trace whose peak footprint is `peak_footprint` bytes:
/// [`REGION_FACTOR`] times it, rounded up to a 4 KiB page, at least [`MIN_REGION`].
pub const fn bound(peak_footprint: usize) -> usize {
    let scaled = peak_footprint.saturating_mul(REGION_FACTOR);
    let paged = match scaled.checked_next_multiple_of(4096) {
        Some(paged) => paged,
        None => scaled,
    };
    if paged < MIN_REGION {
        MIN_REGION
    } else {
        paged
    }
}

/// The most bytes `trace`'s live blocks take at once, each counted as
/// [`block_footprint`] at `align`. A request no `Layout` can describe (larger than
/// `isize::MAX`) is refused by every replay without touching the region, so it does not
/// count.
pub fn peak_footprint(trace: &Trace, align: usize) -> usize {
    let mut live: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut now = 0usize;
    let mut peak = 0usize;
    for op in trace.ops() {
        match *op {
            Op::Alloc { id, size } | Op::Realloc { id, size }
                if Layout::from_size_align(served_size(size), align).is_ok() =>
            {
                let footprint = block_footprint(size, align);
                let old = live.insert(id, footprint).unwrap_or(0);
                now = now.saturating_sub(old).saturating_add(footprint);
                peak = peak.max(now);
            }
            Op::Alloc { .. } | Op::Realloc { .. } => {}
            Op::Free { id } => now = now.saturating_sub(live.remove(&id).unwrap_or(0)),
        }
    }
    peak
}

/// Where a replay's region size came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegionChoice {
    /// Given by the caller (`--region`).
    Given,
    /// The trace's suggested heap size, which holds its peak footprint.
    Suggested,
    /// [`bound`], because the suggestion is smaller than the peak footprint.
    Bound,
}

/// The region of a replay, and why it is that size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Its size in bytes.
    pub bytes: usize,
    /// Where that size came from.
    pub choice: RegionChoice,
    /// The trace's suggested heap size.
    pub suggested: usize,
    /// The trace's peak footprint ([`peak_footprint`]).
    pub peak_footprint: usize,
}

/// The region to replay `trace` in at `align`: `given` if any, else its suggestion if
/// that holds its peak footprint, else [`bound`] of that footprint.
pub fn choose(trace: &Trace, given: Option<usize>, align: usize) -> Region {
    let suggested = trace.suggested_heap();
    let peak_footprint = peak_footprint(trace, align);
    let (bytes, choice) = match given {
        Some(bytes) => (bytes, RegionChoice::Given),
        // A trace that allocates nothing still gets a region that is not empty.
        None if suggested >= peak_footprint.max(1) => (suggested, RegionChoice::Suggested),
        None => (bound(peak_footprint), RegionChoice::Bound),
    };
    Region {
        bytes,
        choice,
        suggested,
        peak_footprint,
    }
}

impl fmt::Display for Region {
    /// `region 1.0 MiB: the trace's suggestion (1 B) is below its peak footprint
    /// (12.3 KiB), so 4 × the footprint`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = crate::report::bytes;
        write!(f, "region {}: ", bytes(self.bytes))?;
        match self.choice {
            RegionChoice::Given => write!(f, "as given"),
            RegionChoice::Suggested => write!(
                f,
                "the trace's suggestion, which holds its peak footprint ({})",
                bytes(self.peak_footprint)
            ),
            RegionChoice::Bound => write!(
                f,
                "the trace's suggestion ({}) is below its peak footprint ({}), so {REGION_FACTOR} × the footprint",
                bytes(self.suggested),
                bytes(self.peak_footprint)
            ),
        }
    }
}

#[cfg(test)]
mod model_constants {
    #[test]
    fn the_footprint_model_uses_the_boundary_tags_granule_and_smallest_block() {
        assert_eq!(super::GRANULE, rawheap::tags::GRANULE);
        assert_eq!(super::MIN_BLOCK, rawheap::tags::MIN_BLOCK);
    }
}
