//! One bit per block slot of every order, in words inside the region.

use core::ptr::NonNull;

use rawheap::bits::BITS;

/// A bitmap with one bit for every place a block of each order could start in the
/// covered area `[lo, hi)`. The bit of the order-`k` block at `addr` is number
/// `(addr >> (shift + k)) + bias[k]` (with wrapping arithmetic) from `words`: one shift,
/// one add, no subtraction of `lo`, because the bias already holds it.
///
/// Two of these share one array of words, the free bits first and the split bits after
/// them; each has its own biases.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderBits<const ORDERS: usize> {
    /// The first word of the array, inside the region before `lo`, with its provenance.
    words: NonNull<usize>,
    /// `log2(MIN_BLOCK)`: the shift that turns an address into an order-0 slot.
    shift: u32,
    /// Added to an order's slot number to give its bit. Orders with no slots (larger
    /// than any block of the cover) are never asked about.
    bias: [usize; ORDERS],
}

/// The slots of order `k` in `[lo, hi)` with blocks of `1 << (shift + k)` bytes: the
/// first slot number and how many there are (0 when no block of the order fits).
pub(crate) fn slots(lo: usize, hi: usize, shift: u32, k: u32) -> (usize, usize) {
    let sh = shift + k;
    if hi <= lo || (hi - lo) >> sh == 0 {
        return (lo >> sh, 0);
    }
    let (first, last) = (lo >> sh, (hi - 1) >> sh);
    (first, last - first + 1)
}

impl<const ORDERS: usize> OrderBits<ORDERS> {
    /// A bitmap whose order `k` starts at bit `start[k]` of `words`, covering
    /// `[lo, ..)`. Touches no memory.
    pub(crate) fn new(
        words: NonNull<usize>,
        shift: u32,
        lo: usize,
        start: [usize; ORDERS],
    ) -> Self {
        let mut bias = [0; ORDERS];
        for (k, (bias, start)) in bias.iter_mut().zip(start).enumerate() {
            *bias = start.wrapping_sub(lo >> (shift + k as u32));
        }
        OrderBits { words, shift, bias }
    }

    /// The word holding the bit of the order-`k` block at `addr`, and the bit's mask.
    #[inline(always)]
    fn place(&self, k: u32, addr: usize) -> (*mut usize, usize) {
        let bit = (addr >> (self.shift + k)).wrapping_add(self.bias[k as usize]);
        // Not dereferenced here: the callers' safety contracts keep `bit` in the array.
        let word = self.words.as_ptr().wrapping_add(bit / BITS as usize);
        (word, 1 << (bit % BITS as usize))
    }

    /// Whether the bit of the order-`k` block at `addr` is set.
    ///
    /// # Safety
    ///
    /// `addr` lies in one of the order-`k` slots that [`slots`] counts for the covered
    /// area this bitmap was laid out for.
    #[inline(always)]
    pub(crate) unsafe fn get(&self, k: u32, addr: usize) -> bool {
        let (word, mask) = self.place(k, addr);
        // SAFETY: the caller's promise puts the bit inside the array `new` was given.
        unsafe { word.read() & mask != 0 }
    }

    /// Sets the bit of the order-`k` block at `addr`.
    ///
    /// # Safety
    ///
    /// As for [`get`](Self::get); nobody else uses the array.
    #[inline(always)]
    pub(crate) unsafe fn set(&mut self, k: u32, addr: usize) {
        let (word, mask) = self.place(k, addr);
        // SAFETY: as in `get`.
        unsafe { word.write(word.read() | mask) }
    }

    /// Clears the bit of the order-`k` block at `addr`.
    ///
    /// # Safety
    ///
    /// As for [`set`](Self::set).
    #[inline(always)]
    pub(crate) unsafe fn clear(&mut self, k: u32, addr: usize) {
        let (word, mask) = self.place(k, addr);
        // SAFETY: as in `get`.
        unsafe { word.write(word.read() & !mask) }
    }

    /// How many bits of order `k` are set, over its slots in `[lo, hi)`. O(slots).
    ///
    /// # Safety
    ///
    /// `lo` and `hi` are the covered area this bitmap was laid out for.
    pub(crate) unsafe fn count(&self, k: u32, lo: usize, hi: usize) -> usize {
        let (first, n) = slots(lo, hi, self.shift, k);
        let sh = self.shift + k;
        (first..first + n)
            // SAFETY: every slot of order `k` in `[lo, hi)` has its bit in the array.
            .filter(|slot| unsafe { self.get(k, slot << sh) })
            .count()
    }
}
