//! The bins: which free list a block of a given size is filed on, and the table of
//! lists with its bitmap of non-empty ones.
//!
//! ## The layout
//!
//! Block sizes are multiples of [`GRANULE`]. Below [`EXACT_LIMIT`] every size has a bin
//! of its own (an *exact* bin), so every block on it fits a request of that size. From
//! `EXACT_LIMIT` up, each power of two is split into [`SUB_BINS`] bins of equal width
//! (*logarithmic* bins), so the blocks on one bin differ by less than a quarter of their
//! size. Everything from the last bin's floor up shares the last bin.
//!
//! ```text
//!   bin   0  1 │ 2    3    4   …  63    │ 64     65     66     67    │ 68     …   │ 127
//!   size  –  – │ 32   48   64  …  1008  │ 1024   1280   1536   1792  │ 2048   …   │ 56 MiB…
//!         (too │ exact bins: one size   │ 4 bins per power of two:   │            │ the rest
//!         small)  each, step GRANULE    │ [1024, 2048) in steps of 256             │
//! ```
//! (sizes for a 64-bit target, where `GRANULE` is 16 bytes.)
//!
//! Bins 0 and 1 stay empty (no block is smaller than `MIN_BLOCK`, 32 bytes): keeping
//! them makes the exact bin of a size just `size / GRANULE`.

use rawheap::bits;
use rawheap::tags::{BlockList, BlockRef, GRANULE};

/// How many bins there are.
pub const BINS: usize = 128;

/// How many exact bins there are (some of the smallest stay empty).
pub(crate) const EXACT_BINS: usize = 64;

/// Blocks smaller than this have an exact bin: 1024 bytes on a 64-bit target.
pub const EXACT_LIMIT: usize = EXACT_BINS * GRANULE;

/// Logarithmic bins per power of two, as a power of two.
const SUB_BITS: u32 = 2;

/// Logarithmic bins per power of two.
pub const SUB_BINS: usize = 1 << SUB_BITS;

/// `log2(EXACT_LIMIT)`: the power of two the first logarithmic bin starts at.
const FIRST_POWER: u32 = EXACT_LIMIT.trailing_zeros();

/// What `bin_of` adds so that `EXACT_LIMIT` lands on the first logarithmic bin: there
/// `shift << SUB_BITS` is `(FIRST_POWER - SUB_BITS) << SUB_BITS` and `size >> shift`
/// is `SUB_BINS`.
const LOG_BIN_OFFSET: usize =
    EXACT_BINS - (((FIRST_POWER - SUB_BITS) as usize) << SUB_BITS) - SUB_BINS;

/// Bits in a bitmap word, as an index.
const WORD_BITS: usize = bits::BITS as usize;

/// Words in the bitmap of non-empty bins.
const WORDS: usize = BINS / WORD_BITS;

// ANCHOR: bin_of
/// The bin a free block of `size` bytes is filed on (and the first bin a request for a
/// block of `size` bytes looks at).
#[inline]
pub const fn bin_of(size: usize) -> usize {
    if size < EXACT_LIMIT {
        return size / GRANULE;
    }
    // `size >> shift` keeps the leading one and the SUB_BITS bits below it: a number
    // in [SUB_BINS, 2 * SUB_BINS), the part of the power plus SUB_BINS.
    let shift = usize::BITS - 1 - SUB_BITS - size.leading_zeros();
    let bin = ((shift as usize) << SUB_BITS) + (size >> shift) + LOG_BIN_OFFSET;
    if bin < BINS { bin } else { BINS - 1 }
}
// ANCHOR_END: bin_of

/// The smallest block size filed on `bin`: `bin_of(smallest_in(bin)) == bin`, and
/// every block on the bin is at least this large.
#[inline]
pub const fn smallest_in(bin: usize) -> usize {
    if bin < EXACT_BINS {
        return bin * GRANULE;
    }
    let power = FIRST_POWER + ((bin - EXACT_BINS) >> SUB_BITS) as u32;
    let sub = (bin - EXACT_BINS) & (SUB_BINS - 1);
    (SUB_BINS + sub) << (power - SUB_BITS)
}

/// The table of free lists, one per bin, and the bitmap that says which are non-empty.
///
/// The bitmap comes first (`repr(C)`): every request scans it, next to the heap's other
/// hot fields, while only a few of the list heads are touched.
#[repr(C)]
pub(crate) struct Bins {
    /// Bit `b % BITS` of word `b / BITS` is set iff `lists[b]` is non-empty.
    nonempty: [usize; WORDS],
    /// `lists[b]` holds exactly the free blocks whose size `s` has `bin_of(s) == b`,
    /// most recently filed first.
    lists: [BlockList; BINS],
}

impl Bins {
    /// Every bin empty.
    pub(crate) const fn new() -> Self {
        Bins {
            nonempty: [0; WORDS],
            lists: [const { BlockList::new() }; BINS],
        }
    }

    /// The list of `bin`.
    #[inline]
    pub(crate) fn list(&self, bin: usize) -> &BlockList {
        // Every bin the heap computes is below `BINS` (`bin_of` clamps, the bitmap has
        // `BINS` bits), but the compiler cannot always see it: masking with the power of
        // two `BINS` costs one instruction where a bounds check costs a branch.
        &self.lists[bin % BINS]
    }

    /// The list of `bin`, to change (see [`list`](Self::list) for the mask).
    #[inline]
    fn list_mut(&mut self, bin: usize) -> &mut BlockList {
        &mut self.lists[bin % BINS]
    }

    /// Whether bit `bin` of the bitmap is set.
    #[inline]
    pub(crate) fn marked(&self, bin: usize) -> bool {
        bits::is_set(self.nonempty[bin / WORD_BITS], (bin % WORD_BITS) as u32)
    }

    #[inline]
    fn mark(&mut self, bin: usize, nonempty: bool) {
        // The mask as in `list`: the bitmap has a bit for every bin below `BINS`.
        let word = &mut self.nonempty[(bin % BINS) / WORD_BITS];
        *word = bits::with_bit(*word, (bin % WORD_BITS) as u32, nonempty);
    }

    /// Sets bit `bin` whatever the list holds, for tests of `check`.
    #[cfg(test)]
    pub(crate) fn mark_for_test(&mut self, bin: usize) {
        self.mark(bin, true);
    }

    // ANCHOR: first_nonempty
    /// The first non-empty bin at `bin` or above: a bit scan per bitmap word, from the
    /// word of `bin` with the bits below `bin` cleared.
    #[inline]
    pub(crate) fn first_nonempty_from(&self, bin: usize) -> Option<usize> {
        let mut word = bin / WORD_BITS;
        let mut bits = *self.nonempty.get(word)? & (usize::MAX << (bin % WORD_BITS));
        while bits == 0 {
            word += 1;
            bits = *self.nonempty.get(word)?;
        }
        Some(word * WORD_BITS + bits.trailing_zeros() as usize)
    }
    // ANCHOR_END: first_nonempty

    /// Files a free block on the front of `bin`, the bin of its size.
    ///
    /// # Safety
    ///
    /// `block` is a free block of the heap's span (or will be once its tags are written)
    /// whose size maps to `bin`, on no list; the bins hold live free blocks.
    #[inline]
    pub(crate) unsafe fn push(&mut self, block: BlockRef, bin: usize) {
        // SAFETY: the caller's promise.
        let was_empty = unsafe { self.list_mut(bin).push_front(block) };
        // A bin that held a block has its bit set already.
        if was_empty {
            self.mark(bin, true);
        }
    }

    /// Takes a free block off its bin, `bin`.
    ///
    /// # Safety
    ///
    /// `block` is on the list of `bin`.
    #[inline]
    pub(crate) unsafe fn unlink(&mut self, block: BlockRef, bin: usize) {
        // SAFETY: the caller's promise. The bin empties when the block was first and
        // last, which its links say: no need to read the head back after the stores.
        let emptied = unsafe {
            let first = block.prev_free().is_none();
            self.list_mut(bin).unlink(block).is_none() && first
        };
        if emptied {
            self.mark(bin, false);
        }
    }

    /// Takes the first block off `bin`, if any.
    ///
    /// # Safety
    ///
    /// The bins hold live free blocks.
    #[inline]
    pub(crate) unsafe fn pop_front(&mut self, bin: usize) -> Option<BlockRef> {
        let list = self.list_mut(bin);
        let block = list.first()?;
        // SAFETY: the caller's promise; `block` is the list's first.
        unsafe { list.unlink_first(block) };
        if list.first().is_none() {
            self.mark(bin, false);
        }
        Some(block)
    }

    /// Takes a free block off whichever bin it is on. A block behind its list's head
    /// leaves by linking its two neighbours to each other, and only the head, whose
    /// list's head changes, needs its bin worked out from its size.
    ///
    /// # Safety
    ///
    /// `block` is on a bin, the bin of its size; the bins hold live free blocks.
    #[inline]
    pub(crate) unsafe fn take_off(&mut self, block: BlockRef) {
        // SAFETY: the caller's promise; a block that is no list's head is behind one.
        unsafe {
            if !BlockList::unlink_behind_head(block) {
                self.pop_front(bin_of(block.size()));
            }
        }
    }

    /// Files `new`, a free block whose size maps to `new_bin`, in place of `old`, which
    /// is on `bin`: in `old`'s place on its list when the bins are the same (no bitmap
    /// change, and nothing at all when `new` is `old` resized), else by unlinking and
    /// pushing.
    ///
    /// # Safety
    ///
    /// `old` is on the list of `bin`; `new` is `old` or a block as for
    /// [`BlockList::replace`], whose size maps to `new_bin` once its tags are written.
    #[inline(always)]
    pub(crate) unsafe fn refile(
        &mut self,
        old: BlockRef,
        bin: usize,
        new: BlockRef,
        new_bin: usize,
    ) {
        // SAFETY: the caller's promise.
        unsafe {
            if bin != new_bin {
                self.unlink(old, bin);
                self.push(new, new_bin);
            } else if old != new {
                self.list_mut(bin).replace(old, new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rawheap::tags::MIN_BLOCK;

    #[test]
    fn exact_bins_hold_one_size_each() {
        assert_eq!(bin_of(MIN_BLOCK), MIN_BLOCK / GRANULE);
        assert_eq!(bin_of(EXACT_LIMIT - GRANULE), EXACT_BINS - 1);
        for size in (MIN_BLOCK..EXACT_LIMIT).step_by(GRANULE) {
            assert_eq!(smallest_in(bin_of(size)), size);
        }
    }

    #[test]
    fn logarithmic_bins_split_each_power_in_equal_parts() {
        assert_eq!(bin_of(EXACT_LIMIT), EXACT_BINS);
        assert_eq!(bin_of(EXACT_LIMIT + EXACT_LIMIT / 4 - GRANULE), EXACT_BINS);
        assert_eq!(bin_of(EXACT_LIMIT + EXACT_LIMIT / 4), EXACT_BINS + 1);
        assert_eq!(bin_of(2 * EXACT_LIMIT - GRANULE), EXACT_BINS + 3);
        assert_eq!(bin_of(2 * EXACT_LIMIT), EXACT_BINS + 4);
        assert_eq!(bin_of(usize::MAX & !(GRANULE - 1)), BINS - 1);
    }

    #[test]
    fn every_size_from_the_last_bins_floor_up_shares_the_last_bin() {
        let last = smallest_in(BINS - 1);
        assert_eq!(bin_of(last - GRANULE), BINS - 2);
        // Each power of two from there up, and the sizes a quarter of one apart, which
        // would each have had a bin of their own.
        let mut power = last.next_power_of_two();
        while power != 0 {
            for quarter in 0..SUB_BINS {
                let size = power + quarter * (power / SUB_BINS);
                assert_eq!(bin_of(size), BINS - 1, "the bin of {size:#x}");
            }
            power <<= 1;
        }
        assert_eq!(bin_of(last), BINS - 1);
    }

    #[test]
    fn a_bin_starts_at_its_smallest_size_and_ends_below_the_next() {
        for bin in MIN_BLOCK / GRANULE..BINS {
            let floor = smallest_in(bin);
            assert_eq!(bin_of(floor), bin, "bin {bin} starts at {floor}");
            assert_eq!(
                bin_of(floor - GRANULE),
                bin - 1,
                "bin {bin} starts at {floor}"
            );
            assert!(floor.is_multiple_of(GRANULE));
        }
    }

    #[test]
    fn the_scan_finds_the_first_nonempty_bin_in_any_word() {
        let mut bins = Bins::new();
        assert_eq!(bins.first_nonempty_from(0), None);
        bins.mark(3, true);
        bins.mark(WORD_BITS + 5, true);
        assert_eq!(bins.first_nonempty_from(0), Some(3));
        assert_eq!(bins.first_nonempty_from(3), Some(3));
        assert_eq!(bins.first_nonempty_from(4), Some(WORD_BITS + 5));
        assert_eq!(bins.first_nonempty_from(WORD_BITS + 6), None);
        assert_eq!(bins.first_nonempty_from(BINS), None);
        bins.mark(3, false);
        assert!(!bins.marked(3) && bins.marked(WORD_BITS + 5));
    }
}
