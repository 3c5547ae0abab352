//! The frame map: one bit per slab-sized, slab-aligned frame of the region, set when a
//! slab occupies the frame. It is Linux's `PageSlab` flag: `kfree` asks the page of a
//! pointer whether it belongs to a slab or is a large block of the page allocator.

use core::alloc::Layout;
use core::ptr::NonNull;

use rawheap::RawHeap;
use rawheap::align::align_down;
use rawheap::bits::{self, BITS};

use crate::class::{SLAB_BYTES, SLAB_SHIFT};

/// One bit per frame of the region, in words got from the backing heap.
#[derive(Debug)]
pub(crate) struct FrameMap {
    /// The address of frame 0: the region's start rounded down to `SLAB_BYTES`.
    base: usize,
    /// `words` words from the backing heap; bit `i % BITS` of word `i / BITS` is set
    /// iff a slab starts at `base + i * SLAB_BYTES`. Dangling when `words` is 0.
    bits: NonNull<usize>,
    /// Words in `bits`: enough for every frame of the region, or 0 when the backing heap
    /// could not hold them (then there are no slabs).
    words: usize,
}

// ANCHOR: frame_map
impl FrameMap {
    /// A map of `region`'s frames, all clear, in memory got from `backing`; a map of
    /// no frames when `backing` cannot hold one.
    pub fn new<B: RawHeap>(backing: &mut B, region: NonNull<[u8]>) -> FrameMap {
        let start = region.cast::<u8>().as_ptr().addr();
        let base = align_down(start, SLAB_BYTES);
        let frames = (start + region.len() - base).div_ceil(SLAB_BYTES);
        let words = frames.div_ceil(BITS as usize);
        let bits = Layout::array::<usize>(words)
            .ok()
            .and_then(|layout| backing.allocate_zeroed(layout).ok());
        match bits {
            Some(bits) if words > 0 => FrameMap {
                base,
                bits: bits.cast(),
                words,
            },
            _ => FrameMap {
                base,
                bits: NonNull::dangling(),
                words: 0,
            },
        }
    }

    /// Whether a slab starts in the frame holding `addr`.
    #[inline]
    pub fn is_slab(&self, addr: usize) -> bool {
        let frame = (addr - self.base) >> SLAB_SHIFT;
        let word = frame / BITS as usize;
        // SAFETY: `word < words`, so the word is inside the map's block.
        word < self.words
            && bits::is_set(unsafe { self.bits.add(word).read() }, frame as u32 % BITS)
    }
    // ANCHOR_END: frame_map

    /// Marks the frame starting at `slab` as holding a slab, or not.
    ///
    /// # Safety
    ///
    /// The map has words (`has_room`), and `slab` is a frame of the region.
    pub unsafe fn mark(&mut self, slab: usize, is_slab: bool) {
        let frame = (slab - self.base) >> SLAB_SHIFT;
        // SAFETY: the caller's promise: the frame is in the region, which the map covers.
        unsafe {
            let word = self.bits.add(frame / BITS as usize);
            word.write(bits::with_bit(word.read(), frame as u32 % BITS, is_slab));
        }
    }

    /// Whether the map got its words, so that slabs can be made.
    #[inline]
    pub fn has_room(&self) -> bool {
        self.words > 0
    }

    /// The address of the map's block in the backing heap, when it has one.
    pub fn block(&self) -> Option<usize> {
        self.has_room().then(|| self.bits.as_ptr().addr())
    }

    /// How many frames are marked.
    pub fn marked(&self) -> usize {
        (0..self.words)
            // SAFETY: every word below `words` is in the map's block.
            .map(|word| unsafe { self.bits.add(word).read() }.count_ones() as usize)
            .sum()
    }
}
