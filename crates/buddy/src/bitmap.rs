//! One bit per block slot of every order, in words inside the region.

use core::ptr::NonNull;

use rawheap::bits::BITS;

/// A bitmap with one bit for every place a block of each order could start in the
/// covered area `[lo, hi)`, and for the buddy of each: slots come in pairs of buddies,
/// the two bits of a pair side by side in one word. The bit of the order-`k` block at
/// `addr` is number `(addr >> (log2(MIN_BLOCK) + k)) + bias[k]` (with wrapping
/// arithmetic) from `words`: one shift, one add, no subtraction of `lo`, because the
/// bias already holds it; its buddy's bit is the other bit of the pair (number `^ 1`).
///
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderBits<const MIN_BLOCK: usize, const ORDERS: usize> {
    /// The first word of the array, inside the region before `lo`, with its provenance.
    words: NonNull<usize>,
    /// Added to an order's slot number to give its bit; even, so that a pair of buddies
    /// (slots `2i` and `2i + 1`) has bits `2j` and `2j + 1`, in one word. Orders with no
    /// slots (larger than any block of the cover) are never asked about.
    bias: [usize; ORDERS],
}

/// The slots of order `k` in `[lo, hi)` with blocks of `1 << (shift + k)` bytes: the
/// first slot number and how many there are (0 when no block of the order fits). Both
/// are even: the slots are every pair of buddies one of which could lie in the area, so
/// that a block of the area finds its buddy's bit without first asking whether the
/// buddy lies in the area too.
pub(crate) fn slots(lo: usize, hi: usize, shift: u32, k: u32) -> (usize, usize) {
    let sh = shift + k;
    let first = lo >> sh & !1;
    if hi <= lo || (hi - lo) >> sh == 0 {
        return (first, 0);
    }
    (first, ((hi - 1) >> sh | 1) - first + 1)
}

/// The word that holds the bits of a pair of buddies, read once: one block's bit and its
/// buddy's are then tested and written with no second look-up.
pub(crate) struct Pair {
    /// The word, in the array.
    word: *mut usize,
    /// What the word held when the pair was read.
    value: usize,
    /// The block's bit in the word; its buddy's is `own ^ 1`.
    own: u32,
}

impl Pair {
    /// Whether the buddy's bit is set.
    #[inline(always)]
    pub(crate) fn buddy(&self) -> bool {
        self.value >> (self.own ^ 1) & 1 != 0
    }

    /// Whether the block's bit is set.
    #[inline(always)]
    pub(crate) fn own(&self) -> bool {
        self.value >> self.own & 1 != 0
    }

    /// Whether either bit of the pair is set.
    #[inline(always)]
    pub(crate) fn any(&self) -> bool {
        self.value >> (self.own & !1) & 0b11 != 0
    }

    /// Clears the block's bit.
    ///
    /// # Safety
    ///
    /// The word has not been written since the pair was read.
    #[inline(always)]
    pub(crate) unsafe fn clear_own(&self) {
        // SAFETY: `pair` read the word from the array; the caller's promise keeps the
        // other bits as they are.
        unsafe { self.word.write(self.value & !(1 << self.own)) }
    }
}

impl<const MIN_BLOCK: usize, const ORDERS: usize> OrderBits<MIN_BLOCK, ORDERS> {
    /// `log2(MIN_BLOCK)`: the shift that turns an address into an order-0 slot.
    const SHIFT: u32 = MIN_BLOCK.trailing_zeros();

    /// A bitmap whose order `k` starts at bit `start[k]` (even) of `words`, covering
    /// `[lo, ..)`. Touches no memory.
    pub(crate) fn new(words: NonNull<usize>, lo: usize, start: [usize; ORDERS]) -> Self {
        let mut bias = [0; ORDERS];
        for (k, (bias, start)) in bias.iter_mut().zip(start).enumerate() {
            // The first slot does not depend on where the area ends.
            let (first, _) = slots(lo, lo, Self::SHIFT, k as u32);
            *bias = start.wrapping_sub(first);
        }
        OrderBits { words, bias }
    }

    /// The word holding the bit of the order-`k` block at `addr`, and the bit's number
    /// in the word.
    ///
    /// # Safety
    ///
    /// `k < ORDERS`.
    #[inline(always)]
    unsafe fn place(&self, k: u32, addr: usize) -> (*mut usize, u32) {
        // SAFETY: the caller's promise.
        let bias = unsafe { *self.bias.get_unchecked(k as usize) };
        let bit = (addr >> (Self::SHIFT + k)).wrapping_add(bias);
        // Not dereferenced here: the callers' safety contracts keep `bit` in the array.
        let word = self.words.as_ptr().wrapping_add(bit / BITS as usize);
        (word, (bit % BITS as usize) as u32)
    }

    /// The word of the order-`k` block at `addr` and of its buddy, read.
    ///
    /// # Safety
    ///
    /// As for [`get`](Self::get).
    #[inline(always)]
    pub(crate) unsafe fn pair(&self, k: u32, addr: usize) -> Pair {
        // SAFETY: the caller's promise puts the bit inside the array `new` was given.
        let (word, own) = unsafe { self.place(k, addr) };
        // SAFETY: as above.
        let value = unsafe { word.read() };
        Pair { word, value, own }
    }

    /// Whether the bit of the order-`k` block at `addr` is set.
    ///
    /// # Safety
    ///
    /// `k < ORDERS`, and `addr` lies in one of the order-`k` slots that [`slots`] counts
    /// for the covered area this bitmap was laid out for.
    #[inline(always)]
    pub(crate) unsafe fn get(&self, k: u32, addr: usize) -> bool {
        // SAFETY: the caller's promise puts the bit inside the array `new` was given.
        unsafe {
            let (word, bit) = self.place(k, addr);
            word.read() >> bit & 1 != 0
        }
    }

    /// Sets the bit of the order-`k` block at `addr`.
    ///
    /// # Safety
    ///
    /// As for [`get`](Self::get); nobody else uses the array.
    #[inline(always)]
    pub(crate) unsafe fn set(&mut self, k: u32, addr: usize) {
        // SAFETY: as in `get`.
        unsafe {
            let (word, bit) = self.place(k, addr);
            word.write(word.read() | 1 << bit);
        }
    }

    /// Clears the bit of the order-`k` block at `addr`.
    ///
    /// # Safety
    ///
    /// As for [`set`](Self::set).
    #[inline(always)]
    pub(crate) unsafe fn clear(&mut self, k: u32, addr: usize) {
        // SAFETY: as in `get`.
        unsafe {
            let (word, bit) = self.place(k, addr);
            word.write(word.read() & !(1 << bit));
        }
    }

    /// How many bits of order `k` are set, over its slots in `[lo, hi)`. O(slots).
    ///
    /// # Safety
    ///
    /// `lo` and `hi` are the covered area this bitmap was laid out for.
    pub(crate) unsafe fn count(&self, k: u32, lo: usize, hi: usize) -> usize {
        let (first, n) = slots(lo, hi, Self::SHIFT, k);
        let sh = Self::SHIFT + k;
        (first..first + n)
            // SAFETY: every slot of order `k` in `[lo, hi)` has its bit in the array.
            .filter(|slot| unsafe { self.get(k, slot << sh) })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_come_in_pairs_of_buddies_around_the_area() {
        // Order 0 of [0x1010, 0x1050) with 16-byte blocks: slots 0x101..=0x104, widened
        // to the pairs 0x100..=0x105 (the buddies of the first and the last lie outside).
        assert_eq!(slots(0x1010, 0x1050, 4, 0), (0x100, 6));
        // Order 2 (64 bytes): only slot 0x40 overlaps; its pair is 0x40 and 0x41.
        assert_eq!(slots(0x1010, 0x1050, 4, 2), (0x40, 2));
        assert_eq!(slots(0x1010, 0x1050, 4, 3).1, 0, "no 128-byte block fits");
    }

    #[test]
    fn a_pair_of_buddies_shares_a_word() {
        let mut words = [0usize; 4];
        let (lo, hi) = (0x1030, 0x1400);
        let mut start = [0; 3];
        let mut next = 0;
        for (k, start) in start.iter_mut().enumerate() {
            *start = next;
            next += slots(lo, hi, 4, k as u32).1;
        }
        assert!(next <= 4 * BITS as usize);
        let bits = OrderBits::<16, 3>::new(NonNull::from(&mut words).cast(), lo, start);
        for k in 0..3 {
            let size = 16 << k;
            let mut addr = lo.next_multiple_of(size);
            while addr + size <= hi {
                // SAFETY: `k < 3`; the bits are only located, not read.
                let (mine, theirs) = unsafe { (bits.place(k, addr), bits.place(k, addr ^ size)) };
                assert_eq!(mine.0, theirs.0, "order {k}, block {addr:#x}");
                assert_eq!(mine.1 ^ 1, theirs.1, "order {k}, block {addr:#x}");
                addr += size;
            }
        }
    }
}
