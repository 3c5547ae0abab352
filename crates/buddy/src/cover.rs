//! How a region of any size at any address is cut into the blocks a buddy system can
//! use, and where its bitmap go.

use core::mem::size_of;

use rawheap::align;
use rawheap::bits::BITS;

use crate::bitmap::slots;

/// Where everything lies in a region: the bitmap from `words`, blocks in `[lo, hi)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cover {
    /// Where the bitmap' words start: the region's first word boundary.
    pub(crate) words: usize,
    /// The first byte covered by blocks, aligned to `MIN_BLOCK`, past the bitmap.
    pub(crate) lo: usize,
    /// One past the last byte covered by blocks: the region's last `MIN_BLOCK`
    /// boundary.
    pub(crate) hi: usize,
    /// How many orders the cover uses: one more than the order of its largest block.
    pub(crate) orders: u32,
}

/// The order-0 shift and the order cap a [`Cover`] is computed for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// `log2(MIN_BLOCK)`.
    pub(crate) shift: u32,
    /// `ORDERS`: blocks have orders `0..ORDERS`.
    pub(crate) orders: u32,
}

impl Shape {
    /// The order of the largest block that can start at `at` and end by `hi`: as large
    /// as `at`'s alignment, the room left and the order cap allow. Blocks chosen this
    /// way from `lo` upwards are the *roots* of the cover.
    ///
    /// `at` is a multiple of `MIN_BLOCK` below `hi`, and `hi - at >= MIN_BLOCK`.
    #[inline]
    pub(crate) fn root_order(self, at: usize, hi: usize) -> u32 {
        let aligned_to = at.trailing_zeros();
        let fits = usize::BITS - 1 - (hi - at).leading_zeros();
        (aligned_to.min(fits) - self.shift).min(self.orders - 1)
    }

    /// The roots of `[lo, hi)` from the bottom up: each one's address and order.
    pub(crate) fn roots(self, lo: usize, hi: usize) -> impl Iterator<Item = (usize, u32)> {
        let mut at = lo;
        core::iter::from_fn(move || {
            (at < hi).then(|| {
                let k = self.root_order(at, hi);
                let root = (at, k);
                at += 1 << (self.shift + k);
                root
            })
        })
    }

    /// The largest order among the roots of `[lo, hi)`, plus one (0 for an empty area).
    fn orders_used(self, lo: usize, hi: usize) -> u32 {
        self.roots(lo, hi).map(|(_, k)| k + 1).max().unwrap_or(0)
    }

    /// Bits in the bitmap (orders `0..orders`) of `[lo, hi)`.
    fn bits(self, lo: usize, hi: usize, orders: u32) -> usize {
        (0..orders).map(|k| slots(lo, hi, self.shift, k).1).sum()
    }

    /// Bytes the bitmap of `[lo, hi)` takes, in whole words.
    fn metadata(self, lo: usize, hi: usize) -> usize {
        let bits = self.bits(lo, hi, self.orders_used(lo, hi));
        bits.div_ceil(BITS as usize) * size_of::<usize>()
    }

    /// The cover of `[start, end)`: the bitmap first, then blocks from the next
    /// `MIN_BLOCK` boundary to the region's last one. `None` when not even one block
    /// and its bits fit.
    ///
    /// The bitmap are sized for the widest area first and the area then shrunk to
    /// make room for them; a smaller area never needs more bits, so they fit.
    pub(crate) fn cover(self, start: usize, end: usize) -> Option<Cover> {
        let min_block = 1 << self.shift;
        let words = align::align_up(start, size_of::<usize>())?;
        let widest = align::align_up(start, min_block)?;
        let hi = align::align_down(end, min_block);
        if hi <= widest {
            return None;
        }
        let lo = align::align_up(words.checked_add(self.metadata(widest, hi))?, min_block)?;
        (lo < hi).then(|| Cover {
            words,
            lo,
            hi,
            orders: self.orders_used(lo, hi),
        })
    }

    /// Where each order's bits start: orders `0..orders` back to back, each at an even
    /// bit (every order has an even number of slots), and the number of bits. Orders
    /// the cover does not use get no bits (their starts are never read).
    pub(crate) fn bit_starts<const ORDERS: usize>(self, cover: Cover) -> ([usize; ORDERS], usize) {
        let mut starts = [0; ORDERS];
        let mut next = 0;
        for (k, start) in starts.iter_mut().enumerate().take(cover.orders as usize) {
            *start = next;
            next += slots(cover.lo, cover.hi, self.shift, k as u32).1;
        }
        (starts, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: Shape = Shape {
        shift: 4,
        orders: 32,
    };

    #[test]
    fn roots_are_the_largest_aligned_blocks_that_fit() {
        // [0x1000, 0x2800): 4 KiB at 0x1000 (aligned to 4 KiB only), 4 KiB at 0x2000
        // would end past 0x2800, so 2 KiB there.
        assert_eq!(SHAPE.root_order(0x1000, 0x2800), 12 - 4);
        assert_eq!(SHAPE.root_order(0x2000, 0x2800), 11 - 4);
        assert_eq!(SHAPE.root_order(0x10, 0x1000), 0);
        assert_eq!(SHAPE.orders_used(0x1000, 0x2800), 12 - 4 + 1);
        let capped = Shape {
            shift: 4,
            orders: 3,
        };
        assert_eq!(capped.orders_used(0x1000, 0x2800), 3);
    }

    #[test]
    fn the_bitmap_fit_before_the_blocks() {
        for (start, end) in [(0x1000, 0x11000), (0x1001, 0x1fff), (0x1010, 0x1090)] {
            let cover = SHAPE.cover(start, end).unwrap();
            assert!(cover.words >= start && cover.words.is_multiple_of(8));
            assert!(cover.lo.is_multiple_of(16) && cover.hi.is_multiple_of(16));
            let (_, bits) = SHAPE.bit_starts::<32>(cover);
            let words = bits.div_ceil(64);
            assert!(
                cover.words + words * 8 <= cover.lo,
                "{start:#x}..{end:#x}: {cover:?}"
            );
            assert!(cover.lo < cover.hi && cover.hi <= end);
        }
        // 64 KiB: 2 KiB of bitmap at most, so the largest block is 32 KiB, at the end.
        let cover = SHAPE.cover(0x10000, 0x20000).unwrap();
        assert_eq!(cover.orders, 15 - 4 + 1);
        assert!(cover.lo - 0x10000 <= 2048 && cover.hi == 0x20000);
        assert_eq!(SHAPE.cover(0x1001, 0x1010), None);
        assert_eq!(
            SHAPE.cover(0x1000, 0x1010),
            None,
            "a block but no room for its bit"
        );
    }
}
