//! Alignment arithmetic shared by every allocator.
//!
//! All helpers work on plain addresses (`usize`) and never overflow silently: the
//! rounding-up helpers return `None` when the result would not fit in a `usize`, which
//! is how huge requests become `Err(AllocError)` instead of a wrapped-around pointer.
//! `align` must be a power of two everywhere (as `Layout::align()` always is).

use core::ptr::NonNull;

/// The smallest multiple of `align` that is `>= addr`, or `None` on overflow.
#[inline]
pub const fn align_up(addr: usize, align: usize) -> Option<usize> {
    debug_assert!(align.is_power_of_two());
    match addr.checked_add(align - 1) {
        Some(bumped) => Some(bumped & !(align - 1)),
        None => None,
    }
}

/// The largest multiple of `align` that is `<= addr`.
#[inline]
pub const fn align_down(addr: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    addr & !(align - 1)
}

/// Whether `addr` is a multiple of `align`.
#[inline]
pub const fn is_aligned(addr: usize, align: usize) -> bool {
    debug_assert!(align.is_power_of_two());
    addr & (align - 1) == 0
}

/// Bytes to add to `addr` to reach the next multiple of `align` (0 when aligned).
#[inline]
pub const fn padding_to(addr: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    addr.wrapping_neg() & (align - 1)
}

/// Rounds a size up to a multiple of `align`, or `None` on overflow.
#[inline]
pub const fn round_size(size: usize, align: usize) -> Option<usize> {
    align_up(size, align)
}

/// Whether `ptr` is aligned to `align`.
#[inline]
pub fn ptr_is_aligned<T>(ptr: NonNull<T>, align: usize) -> bool {
    is_aligned(ptr.as_ptr().addr(), align)
}

/// `ptr` moved up to the next multiple of `align`, keeping its provenance, or `None`
/// on overflow. The caller must make sure the result stays inside `ptr`'s allocation
/// before using it.
#[inline]
pub fn align_ptr_up(ptr: NonNull<u8>, align: usize) -> Option<NonNull<u8>> {
    let addr = ptr.as_ptr().addr();
    let aligned = align_up(addr, align)?;
    // `map_addr` keeps the provenance (strict provenance) and the address is non-zero
    // because it is >= the non-zero `addr`.
    NonNull::new(ptr.as_ptr().map_addr(|_| aligned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_up_and_down() {
        assert_eq!(align_up(0, 8), Some(0));
        assert_eq!(align_up(1, 8), Some(8));
        assert_eq!(align_up(8, 8), Some(8));
        assert_eq!(align_up(9, 16), Some(16));
        assert_eq!(align_down(15, 8), 8);
        assert_eq!(align_down(16, 8), 16);
        assert_eq!(padding_to(13, 4), 3);
        assert_eq!(padding_to(12, 4), 0);
        assert!(is_aligned(64, 32) && !is_aligned(65, 32));
    }

    #[test]
    fn rounding_up_reports_overflow() {
        assert_eq!(align_up(usize::MAX, 2), None);
        assert_eq!(align_up(usize::MAX - 6, 8), None);
        assert_eq!(align_up(usize::MAX - 7, 8), Some(usize::MAX - 7));
        assert_eq!(round_size(usize::MAX, 4096), None);
    }

    #[test]
    fn sizes_round_up_to_the_alignment() {
        assert_eq!(round_size(0, 16), Some(0));
        assert_eq!(round_size(17, 16), Some(32));
        assert_eq!(round_size(4096, 4096), Some(4096));
    }

    #[test]
    fn a_pointer_moves_up_to_the_alignment_inside_its_allocation() {
        let mut bytes = [0u64; 8];
        let base = NonNull::from(&mut bytes).cast::<u8>();
        let aligned = align_ptr_up(base, 64).unwrap();
        assert!(ptr_is_aligned(aligned, 64));
        assert!(aligned.as_ptr().addr() - base.as_ptr().addr() < 64);
        // SAFETY: one byte past an 8-aligned start is inside the 64-byte array.
        let odd = unsafe { base.add(1) };
        assert!(!ptr_is_aligned(odd, 8));
        assert_eq!(
            align_ptr_up(odd, 8),
            NonNull::new(base.as_ptr().wrapping_add(8))
        );
        assert_eq!(align_ptr_up(base, 8), Some(base), "aligned already");
    }
}
