//! # heaplab-malloc: the C allocation API over any heaplab allocator
//!
//! Built as `libheaplab_malloc.so`, it replaces the C library's allocator in any
//! dynamically linked program:
//!
//! ```text
//! LD_PRELOAD=target/release/libheaplab_malloc.so HEAPLAB_ALLOCATOR=free-list-best \
//!     HEAPLAB_REGION=512M HEAPLAB_STATS=1 python3 -c 'print(sorted(range(10)))'
//! ```
//!
//! `HEAPLAB_ALLOCATOR` names an allocator of the registry (default `free-list-first`),
//! `HEAPLAB_REGION` the size of the one region it manages (default 256M, reserved with
//! `MAP_NORESERVE`), and `HEAPLAB_STATS=1` prints its stats at exit. An unknown name or
//! size ends the process with a message, before `main`'s first allocation succeeds.
//! `HEAPLAB_TRACE=FILE` records the program's allocations as a `.rep` trace (see
//! [`record`]); recording turns the thread caches off, so every call reaches the
//! locked heap in the order the trace keeps.
//!
//! ## The idea
//!
//! The process gets one heap, built on the first call: a mapping, the heap object
//! (a [`Locked`](heaplab::Locked) heap) at its start, the heap's region after it.
//! Every block carries a 16-byte header right before the program's pointer holding
//! the request's size and alignment, since `free(ptr)` and `realloc(ptr, n)` pass no
//! layout and a `RawHeap` needs it back exactly (see [`block`]). That header is what
//! lets a heap that keeps no size of its own (`headerless`, which relies on the caller
//! to give the layout back) serve C: the caller it relies on is this library. Small
//! blocks (up to 512 bytes with the header) pass through a cache private to each
//! thread, so that the common `malloc`/`free` pair takes no lock (see `cache`).
//!
//! ```text
//!   mmap(HEAPLAB_REGION)
//!   ┌──────────────────┬─────────────────────────────────────────────────────────┐
//!   │ Locked<H> object │ the heap's region: blocks [hdr|data], free space, ...   │
//!   └──────────────────┴─────────────────────────────────────────────────────────┘
//! ```
//!
//! ## Invariants and choices
//!
//! - One process-wide lock guards the heap ([`heap::ProcessLock`], a futex word);
//!   `fork` handlers take it before `fork` and release it in parent and child, so a
//!   child never starts with a heap locked by a thread it does not have.
//! - A block of a cache's size class is always asked of the heap with its class's
//!   layout, so that whichever path frees it (a cache, or the heap directly) hands
//!   back the layout the heap gave.
//! - Nothing on the allocation path allocates: settings come from `getenv`, messages
//!   are formatted on the stack, and `pthread_atfork`/`atexit` (which may call
//!   `malloc`) are registered after the heap is ready and the lock released.
//! - Pointers outside the region are not ours (from the dynamic loader's own early
//!   allocator, say): `free` ignores them and counts them, `malloc_usable_size`
//!   answers 0, `realloc` refuses them with NULL and `ENOMEM`, since their size is
//!   unknown and copying would read past them.
//! - `malloc(0)` returns a unique block of size 0; `realloc(ptr, 0)` frees `ptr` and
//!   returns NULL, as glibc does; `realloc(NULL, n)` is `malloc(n)`; a failed
//!   `realloc` leaves the block as it was.
//! - Failure is NULL with `errno = ENOMEM` (`EINVAL` for a bad alignment);
//!   `posix_memalign` returns the code instead.
//!
//! ## Cost
//!
//! A small `malloc` or `free` costs a thread-local access and a push or pop on the
//! thread's cache; one in many takes the lock to move a batch of blocks. Other calls
//! are one lock round-trip plus the chosen allocator's own cost. A block costs its
//! header, the alignment padding above 16 and, when small, the rounding to a multiple
//! of 16; each thread keeps up to 128 idle blocks per class. The exit report walks the
//! heap.

pub mod block;
mod cache;
mod env;
pub mod heap;
pub mod record;
mod report;
mod say;

use core::ffi::{c_int, c_void};
use core::ptr::{self, NonNull};

use block::{MIN_ALIGN, Request};
use report::COUNTS;

/// Sets `errno` and returns NULL: how the C API says no.
fn refuse(code: c_int) -> *mut c_void {
    COUNTS
        .refused
        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    // SAFETY: `__errno_location` returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = code };
    ptr::null_mut()
}

// ANCHOR: allocate
/// A block of `size` bytes aligned to `align` (a power of two), zeroed when asked.
/// Inlined into each entry point, where `align` is usually a constant that folds
/// most of the request's checks away.
#[inline(always)]
fn allocate(size: usize, align: usize, zeroed: bool) -> Result<NonNull<u8>, c_int> {
    // The heap first: building it settles whether requests are rounded to classes.
    let process = heap::get().ok_or(libc::ENOMEM)?;
    let request = Request::new(size, align).ok_or(libc::ENOMEM)?;
    let cached = request
        .class
        .and_then(|class| cache::allocate(process.heap, class));
    let base = match cached {
        Some(base) => {
            if zeroed {
                // SAFETY: a cached block is a live block of `heap_layout`, now ours.
                unsafe { base.write_bytes(0, request.heap_layout.size()) };
            }
            base
        }
        None => process
            .heap
            .allocate(request.heap_layout, zeroed)
            .ok_or(libc::ENOMEM)?,
    };
    COUNTS.gained(size);
    // SAFETY: `base` is a fresh block of `request`'s heap layout.
    Ok(unsafe { request.hand_out(base) })
}
// ANCHOR_END: allocate

fn to_c(result: Result<NonNull<u8>, c_int>) -> *mut c_void {
    match result {
        Ok(ptr) => ptr.as_ptr().cast(),
        Err(code) => refuse(code),
    }
}

/// A block of this heap behind `ptr`, with its request: `None` for a pointer from
/// elsewhere (or one whose header this library did not write).
#[inline(always)]
fn ours(ptr: NonNull<c_void>) -> Option<(heap::Process, Request, NonNull<u8>)> {
    let process = heap::built()?;
    let ptr = ptr.cast::<u8>();
    let room = process.room_before(ptr)?;
    // SAFETY: `room_before` checked that `ptr` lies in the region, `room >= 16` bytes in.
    let (request, base) = unsafe { Request::of(ptr, room) }?;
    Some((process, request, base))
}

/// `malloc(size)`: `size` bytes aligned to 16; size 0 gives a unique block.
#[unsafe(no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    to_c(allocate(size, MIN_ALIGN, false))
}

/// `calloc(count, size)`: `count * size` zeroed bytes; NULL and `ENOMEM` when the
/// product overflows.
#[unsafe(no_mangle)]
pub extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => to_c(allocate(total, MIN_ALIGN, true)),
        None => refuse(libc::ENOMEM),
    }
}

/// `free(ptr)`: gives the block back; NULL and pointers this heap never handed out are
/// ignored (the latter counted in the exit report).
///
/// # Safety
///
/// `ptr` is NULL, a live block of this library, or a pointer from some other allocator.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    let Some(ptr) = NonNull::new(ptr) else { return };
    let Some((process, request, base)) = ours(ptr) else {
        COUNTS
            .foreign_frees
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        return;
    };
    COUNTS.lost(request.size);
    if let Some(class) = request.class {
        // SAFETY: the caller's promise: a pointer of ours is live, and its heap layout
        // is its class's (see `block`).
        if unsafe { cache::deallocate(process.heap, class, base) } {
            return;
        }
    }
    // SAFETY: the caller's promise: a pointer of ours is live, with the layout its
    // header records.
    unsafe { process.heap.deallocate(base, request.heap_layout) };
}

// ANCHOR: realloc
/// `realloc(ptr, size)`: NULL grows from nothing (`malloc`), size 0 frees and returns
/// NULL, otherwise the block is resized (in place when the heap can) keeping its first
/// `min(old, new)` bytes; on failure NULL with `ENOMEM` and the old block untouched.
///
/// # Safety
///
/// As for [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let Some(old_ptr) = NonNull::new(ptr) else {
        return malloc(size);
    };
    if size == 0 {
        // SAFETY: forwarded caller promise.
        unsafe { free(ptr) };
        return ptr::null_mut();
    }
    let Some((process, old, base)) = ours(old_ptr) else {
        return refuse(libc::ENOMEM);
    };
    let Some(new) = Request::new(size, old.align) else {
        return refuse(libc::ENOMEM);
    };
    if new.class.is_some() && new.class == old.class {
        COUNTS.resized(old.size, size);
        // SAFETY: the block's heap layout is the class's, the same for both sizes: it
        // stays where it is and only its header changes.
        return unsafe { new.hand_out(base) }.as_ptr().cast();
    }
    // SAFETY: the caller's promise: `base` is live with the layout its header records.
    let resized = unsafe {
        process
            .heap
            .reallocate(base, old.heap_layout, new.heap_layout)
    };
    let Some(moved) = resized else {
        return refuse(libc::ENOMEM);
    };
    COUNTS.resized(old.size, size);
    // SAFETY: `moved` is live with `new`'s heap layout; the header is rewritten with
    // the new size (the alignment, hence the offset, is the same).
    unsafe { new.hand_out(moved) }.as_ptr().cast()
}
// ANCHOR_END: realloc

/// `posix_memalign(out, align, size)`: `EINVAL` unless `align` is a power of two and a
/// multiple of `sizeof(void *)`, `ENOMEM` when the heap refuses; `*out` is written only
/// on success.
///
/// # Safety
///
/// `out` is valid for a pointer-sized write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    match allocate(size, align, false) {
        Ok(block) => {
            // SAFETY: the caller's promise about `out`.
            unsafe { out.write(block.as_ptr().cast()) };
            0
        }
        Err(code) => code,
    }
}

/// `aligned_alloc(align, size)` (C11): NULL with `EINVAL` unless `align` is a power of
/// two. C17 dropped the rule that `size` be a multiple of `align`; so does this.
#[unsafe(no_mangle)]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        return refuse(libc::EINVAL);
    }
    to_c(allocate(size, align, false))
}

/// `memalign(align, size)` (obsolete): like glibc, an alignment that is not a power of
/// two is rounded up to one.
#[unsafe(no_mangle)]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    match align.checked_next_power_of_two() {
        Some(align) => to_c(allocate(size, align, false)),
        None => refuse(libc::EINVAL),
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).unwrap_or(4096)
}

/// `valloc(size)` (obsolete): `size` bytes aligned to a page.
#[unsafe(no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    to_c(allocate(size, page_size(), false))
}

/// `pvalloc(size)` (obsolete): `size` rounded up to whole pages, aligned to a page.
#[unsafe(no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_next_multiple_of(page) {
        Some(rounded) => to_c(allocate(rounded, page, false)),
        None => refuse(libc::ENOMEM),
    }
}

/// `malloc_usable_size(ptr)`: the bytes the program may use at `ptr` (the heap's
/// usable size minus the header's offset); 0 for NULL and for pointers not ours.
///
/// # Safety
///
/// As for [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    let Some((process, request, base)) = NonNull::new(ptr).and_then(ours) else {
        return 0;
    };
    // SAFETY: the caller's promise: a pointer of ours is live with this layout.
    let usable = unsafe { process.heap.usable_size(base, request.heap_layout) };
    usable.saturating_sub(request.align)
}
