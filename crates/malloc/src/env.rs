//! Settings from the environment, read without allocating: the first `malloc` of the
//! process reads them, so `std::env` (which builds `String`s, i.e. calls `malloc`) would
//! recurse into the allocator it is setting up. `getenv` only walks `environ`.

use core::ffi::CStr;

/// The variable naming the allocator (a registry name such as `free-list-first`).
pub const ALLOCATOR: &CStr = c"HEAPLAB_ALLOCATOR";
/// The variable giving the region's size: bytes, or a number followed by K, M or G.
pub const REGION: &CStr = c"HEAPLAB_REGION";
/// The variable asking for the stats on exit when it is `1`.
pub const STATS: &CStr = c"HEAPLAB_STATS";
/// The variable naming the file to record the program's allocation trace into. When it
/// is set, the thread caches are off: every call reaches the locked heap, in the order
/// recorded.
pub const TRACE: &CStr = c"HEAPLAB_TRACE";

/// The allocator used when `HEAPLAB_ALLOCATOR` is not set.
pub const DEFAULT_ALLOCATOR: &str = "free-list-first";
/// The region used when `HEAPLAB_REGION` is not set: address space reserved with
/// `MAP_NORESERVE`, so pages cost memory only once the heap touches them.
pub const DEFAULT_REGION: usize = 256 << 20;

/// The value of `name` as bytes, borrowed from `environ`; `None` when unset.
pub fn get(name: &CStr) -> Option<&'static [u8]> {
    get_c(name).map(CStr::to_bytes)
}

/// The value of `name` as a C string (to pass on to the system), borrowed from
/// `environ`; `None` when unset.
pub fn get_c(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: `name` is NUL-terminated; getenv returns NULL or a NUL-terminated string
    // inside `environ`, which nothing in a malloc call changes.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: just checked non-null; NUL-terminated as above.
    Some(unsafe { CStr::from_ptr(value) })
}

/// `"64M"` as 64 MiB: digits with an optional K, M or G suffix (powers of 1024).
pub fn parse_size(text: &[u8]) -> Option<usize> {
    let (digits, shift) = match text.split_last()? {
        (b'K' | b'k', rest) => (rest, 10),
        (b'M' | b'm', rest) => (rest, 20),
        (b'G' | b'g', rest) => (rest, 30),
        _ => (text, 0),
    };
    if digits.is_empty() {
        return None;
    }
    let number = digits.iter().try_fold(0usize, |n, &d| {
        let digit = (d as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(digit as usize)
    })?;
    number.checked_mul(1 << shift)
}
