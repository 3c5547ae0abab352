//! The size classes: which cache serves a layout, and how a slab of each class is cut.

use core::alloc::Layout;

use crate::slabs::HEADER;

/// Bytes in a slab: one page. Slabs are allocated aligned to their size, so the slab
/// holding an object is its address with the low `SLAB_SHIFT` bits cleared.
pub const SLAB_BYTES: usize = 1 << SLAB_SHIFT;

/// `log2(SLAB_BYTES)`.
pub const SLAB_SHIFT: u32 = 12;

// ANCHOR: classes
/// The object size of each cache, smallest first. Steps of 8 bytes at first, then about
/// half a power of two, so that rounding a request up wastes at most a third of the
/// object above 32 bytes. The largest class is an eighth of a slab (Bonwick's bound for
/// "small" objects): a larger object would leave a tail of up to an eighth unused.
pub const CLASSES: [usize; CLASS_COUNT] = [8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512];
// ANCHOR_END: classes

/// How many size classes, hence caches, there are.
pub const CLASS_COUNT: usize = 12;

/// The largest request a cache serves; larger ones go straight to the backing heap.
pub const LARGEST_CLASS: usize = CLASSES[CLASS_COUNT - 1];

/// Requests are looked up by their size rounded up to this many bytes.
const LOOKUP_STEP: usize = 8;

/// `CLASS_OF[(size - 1) / LOOKUP_STEP]` is the smallest class holding `size` bytes.
static CLASS_OF: [u8; LARGEST_CLASS / LOOKUP_STEP] = {
    let mut table = [0u8; LARGEST_CLASS / LOOKUP_STEP];
    let (mut slot, mut class) = (0, 0);
    while slot < table.len() {
        while (slot + 1) * LOOKUP_STEP > CLASSES[class] {
            class += 1;
        }
        table[slot] = class as u8;
        slot += 1;
    }
    table
};

// ANCHOR: class_of
/// The cache for `layout`: the smallest class at least `layout.size()` bytes long whose
/// objects are aligned to `layout.align()`. `None` for size 0 and for layouts no class
/// holds (those go to the backing heap, which refuses what it must).
#[inline]
pub fn class_of(layout: Layout) -> Option<usize> {
    // Size 0 wraps around to `usize::MAX` and fails the test like a large size.
    let slot = layout.size().wrapping_sub(1) / LOOKUP_STEP;
    let class = usize::from(*CLASS_OF.get(slot)?);
    if layout.align() <= LOOKUP_STEP {
        // Every class is a multiple of 8 and its objects are aligned to 8 at least.
        return Some(class);
    }
    (class..CLASS_COUNT).find(|&class| object_align(class) >= layout.align())
}
// ANCHOR_END: class_of

/// The alignment every object of `class` has: slabs are aligned to `SLAB_BYTES` and
/// objects lie back to back from the slab's start, so object `i` is at `i * size` from
/// an aligned address, aligned to the largest power of two dividing the size.
pub const fn object_align(class: usize) -> usize {
    let size = CLASSES[class];
    size & size.wrapping_neg()
}

/// How many objects of `class` a slab holds: as many as fit before its header.
pub const fn objects_per_slab(class: usize) -> usize {
    (SLAB_BYTES - HEADER) / CLASSES[class]
}

/// Bytes of a slab of `class` that hold neither an object nor the header: the wasted
/// tail between the last object and the header.
pub const fn tail_bytes(class: usize) -> usize {
    SLAB_BYTES - HEADER - objects_per_slab(class) * CLASSES[class]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn every_small_size_gets_the_smallest_class_that_holds_it() {
        for size in 1..=LARGEST_CLASS {
            let class = class_of(layout(size, 1)).unwrap();
            assert!(CLASSES[class] >= size, "size {size} in class {class}");
            assert!(class == 0 || CLASSES[class - 1] < size, "size {size}");
        }
    }

    #[test]
    fn size_zero_and_large_sizes_have_no_class() {
        assert_eq!(class_of(layout(0, 1)), None);
        assert_eq!(class_of(layout(LARGEST_CLASS + 1, 8)), None);
        assert_eq!(class_of(layout(isize::MAX as usize - 7, 8)), None);
    }

    #[test]
    fn alignment_moves_a_request_up_to_a_class_aligned_enough() {
        assert_eq!(class_of(layout(24, 8)), Some(2));
        assert_eq!(CLASSES[class_of(layout(24, 16)).unwrap()], 32);
        assert_eq!(CLASSES[class_of(layout(40, 32)).unwrap()], 64);
        assert_eq!(CLASSES[class_of(layout(1, 512)).unwrap()], 512);
        assert_eq!(class_of(layout(1, 1024)), None);
        for (class, size) in CLASSES.into_iter().enumerate() {
            assert!(object_align(class) >= 8 && size.is_multiple_of(object_align(class)));
        }
    }

    #[test]
    fn a_slab_is_objects_then_tail_then_header() {
        for (class, size) in CLASSES.into_iter().enumerate() {
            let objects = objects_per_slab(class) * size;
            assert_eq!(objects + tail_bytes(class) + HEADER, SLAB_BYTES);
            assert!(tail_bytes(class) < size);
            assert!(objects_per_slab(class) >= 7, "class {class}");
        }
    }
}
