//! Size classes: which free list a block of a given size belongs on, and which list a
//! request must start its search from so that any block found there fits.

use rawheap::tags::GRANULE;

/// Rows of the index: one per bit of the first-level bitmap. Row `fl > 0` holds the
/// sizes in `[2^(fl + LINEAR_LOG2 - 1), 2^(fl + LINEAR_LOG2))`; row 0 the sizes below
/// `2^LINEAR_LOG2`, so every size a `usize` holds has a row.
pub const FL: usize = usize::BITS as usize;

/// `log2(GRANULE)`: block sizes are multiples of `GRANULE`.
const GRANULE_LOG2: u32 = GRANULE.trailing_zeros();

/// A free list's place in the index: row `fl` (the power of two below the size) and
/// column `sl` (which of the row's `SL` equal slices of that power of two).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Class {
    /// First level: the row, chosen by the size's highest set bit.
    pub fl: u32,
    /// Second level: the column, chosen by the next `log2(SL)` bits of the size.
    pub sl: u32,
}

/// The size arithmetic of an index with `SL` lists per row.
///
/// Below `LINEAR = SL * GRANULE` bytes, row 0 has one list per granule, so a small
/// request finds blocks of exactly its size. Above, row `fl` splits the power of two
/// `[2^k, 2^(k+1))` (with `k = fl + log2(LINEAR) - 1`) into `SL` slices of
/// `2^k / SL` bytes each: a class is never wider than `1/SL` of its smallest size.
///
/// ```
/// use tlsf::{Class, Classes};
///
/// type C = Classes<32>; // 32 lists per row: LINEAR = 512 bytes
/// assert_eq!(C::LINEAR, 512);
/// // Below 512 bytes, one list per 16-byte granule.
/// assert_eq!(C::class_of(208), Class { fl: 0, sl: 13 });
/// // 1200 is in [1024, 2048), row 2, whose 32 slices are 32 bytes wide: slice 5 holds
/// // [1184, 1216).
/// assert_eq!(C::class_of(1200), Class { fl: 2, sl: 5 });
/// assert_eq!(C::min_size(Class { fl: 2, sl: 5 }), 1184);
/// // A request for 1200 bytes starts at the next class, whose every block fits it.
/// assert_eq!(C::good_fit(1200), Some((Class { fl: 2, sl: 6 }, 1216)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Classes<const SL: usize>;

impl<const SL: usize> Classes<SL> {
    /// `log2(SL)`; refuses to compile unless `SL` is a power of two from 1 to the bits
    /// of a `usize` (a row's lists are the bits of one `usize` bitmap).
    pub const SL_LOG2: u32 = {
        assert!(
            SL.is_power_of_two() && SL <= usize::BITS as usize,
            "SL is a power of two that fits in a usize bitmap"
        );
        SL.trailing_zeros()
    };

    /// `log2(LINEAR)`.
    const LINEAR_LOG2: u32 = Self::SL_LOG2 + GRANULE_LOG2;

    /// Sizes below this are classed linearly, one list per granule (row 0).
    pub const LINEAR: usize = 1 << Self::LINEAR_LOG2;

    // ANCHOR: class_of
    /// The class of a free block of `size` bytes (a multiple of `GRANULE`, at least
    /// `GRANULE`): the list it is kept on. Rounds down: the block is at least
    /// [`min_size`](Self::min_size) of its class.
    #[inline]
    pub const fn class_of(size: usize) -> Class {
        if size < Self::LINEAR {
            return Class {
                fl: 0,
                sl: (size >> GRANULE_LOG2) as u32,
            };
        }
        let log = size.ilog2();
        Class {
            fl: log - Self::LINEAR_LOG2 + 1,
            // The `SL_LOG2` bits under the highest one, which is shifted out of range.
            sl: (size >> (log - Self::SL_LOG2)) as u32 & (SL as u32 - 1),
        }
    }
    // ANCHOR_END: class_of

    /// The smallest size of class `class`: every block on its list is at least this.
    #[inline]
    pub const fn min_size(class: Class) -> usize {
        if class.fl == 0 {
            return (class.sl as usize) << GRANULE_LOG2;
        }
        (SL + class.sl as usize) << (class.fl - 1 + GRANULE_LOG2)
    }

    // ANCHOR: good_fit
    /// Where a search for a block of `size` bytes starts: the first class whose every
    /// block is at least `size` bytes, and that class's smallest size (`size` rounded up
    /// to a class boundary). `None` when rounding overflows.
    ///
    /// A block of `size`'s own class may be smaller than `size`: starting one class up
    /// means taking the first block of the first non-empty list, with no search along
    /// a list. The price is good fit rather than best fit: a block of `size`'s own
    /// class that would fit is passed over.
    #[inline]
    pub const fn good_fit(size: usize) -> Option<(Class, usize)> {
        if size < Self::LINEAR {
            return Some((Self::class_of(size), size));
        }
        let log = size.ilog2();
        let shift = log - Self::SL_LOG2;
        // `size / 2^shift` rounded up: from `SL` to `2 * SL`, where `2 * SL` (a size
        // just under the next power of two) carries into the next row's column 0.
        let Some(bumped) = size.checked_add((1 << shift) - 1) else {
            return None;
        };
        let slices = bumped >> shift;
        let carry = (slices >> (Self::SL_LOG2 + 1)) as u32;
        let class = Class {
            fl: log - Self::LINEAR_LOG2 + 1 + carry,
            sl: slices as u32 & (SL as u32 - 1),
        };
        Some((class, slices << shift))
    }
    // ANCHOR_END: good_fit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_class_holds_its_sizes<const SL: usize>() {
        let mut size = GRANULE;
        let top = if cfg!(miri) { 1 << 12 } else { 1 << 20 };
        while size < top {
            let class = Classes::<SL>::class_of(size);
            assert!((class.fl as usize) < FL && (class.sl as usize) < SL);
            let low = Classes::<SL>::min_size(class);
            assert!(low <= size, "{size} is in {class:?} starting at {low}");
            let next = Classes::<SL>::class_of(size + GRANULE);
            assert!(next >= class, "classes grow with sizes");
            let (fit, rounded) = Classes::<SL>::good_fit(size).unwrap();
            assert!(rounded >= size && Classes::<SL>::min_size(fit) == rounded);
            assert!(
                fit == class && low == size || fit > class,
                "a search starts in the size's class only when its smallest size is the size"
            );
            assert!(
                rounded - size < size / SL + GRANULE,
                "good fit wastes less than a class width"
            );
            size += GRANULE;
        }
    }

    #[test]
    fn classes_partition_sizes_and_good_fit_rounds_up_within_a_class() {
        every_class_holds_its_sizes::<1>();
        every_class_holds_its_sizes::<4>();
        every_class_holds_its_sizes::<16>();
        every_class_holds_its_sizes::<32>();
        every_class_holds_its_sizes::<64>();
    }

    #[test]
    fn the_largest_sizes_have_a_row_and_rounding_them_overflows() {
        let top = Classes::<32>::class_of(usize::MAX & !(GRANULE - 1));
        assert_eq!(top.fl as usize, FL - 1 - (5 + GRANULE_LOG2 as usize) + 1);
        assert_eq!(top.sl, 31);
        assert_eq!(Classes::<32>::good_fit(usize::MAX & !(GRANULE - 1)), None);
        let one_row = Classes::<1>::class_of(usize::MAX & !(GRANULE - 1));
        assert!((one_row.fl as usize) < FL);
    }
}
