//! Bit scans over the bitmaps of non-empty free lists.
//!
//! Heaps that keep one free list per size class (segregated-fit, TLSF) keep beside them
//! a word whose bit `i` is set iff list `i` is non-empty. Finding the first list at or
//! above a class that can serve a request is then one mask and one
//! `trailing_zeros` instruction, whatever the number of lists or free blocks.

/// Bits in a bitmap word.
pub const BITS: u32 = usize::BITS;

/// The lowest set bit of `bitmap` at index `from` or above, if any.
///
/// `from` may be `BITS` or more (there is then no such bit).
#[inline]
pub fn lowest_set_from(bitmap: usize, from: u32) -> Option<u32> {
    let above = bitmap
        .checked_shr(from)
        .unwrap_or(0)
        .checked_shl(from)
        .unwrap_or(0);
    (above != 0).then(|| above.trailing_zeros())
}

/// `bitmap` with bit `index` set or cleared.
#[inline]
pub fn with_bit(bitmap: usize, index: u32, set: bool) -> usize {
    let bit = 1usize << index;
    if set { bitmap | bit } else { bitmap & !bit }
}

/// Whether bit `index` of `bitmap` is set.
#[inline]
pub fn is_set(bitmap: usize, index: u32) -> bool {
    bitmap >> index & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_set_from_skips_bits_below_the_start() {
        let bitmap = 0b1010_0100;
        assert_eq!(lowest_set_from(bitmap, 0), Some(2));
        assert_eq!(lowest_set_from(bitmap, 2), Some(2));
        assert_eq!(lowest_set_from(bitmap, 3), Some(5));
        assert_eq!(lowest_set_from(bitmap, 6), Some(7));
        assert_eq!(lowest_set_from(bitmap, 8), None);
        assert_eq!(lowest_set_from(bitmap, BITS), None);
        assert_eq!(lowest_set_from(usize::MAX, BITS - 1), Some(BITS - 1));
        assert_eq!(lowest_set_from(0, 0), None);
    }

    #[test]
    fn bits_are_set_cleared_and_read() {
        let bitmap = with_bit(0, 3, true);
        assert!(is_set(bitmap, 3));
        assert!(!is_set(bitmap, 2));
        assert_eq!(with_bit(bitmap, 3, false), 0);
        assert_eq!(with_bit(bitmap, BITS - 1, true).leading_zeros(), 0);
    }
}
