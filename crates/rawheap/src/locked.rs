//! Sharing a heap: [`Locked`] puts one lock around any [`RawHeap`], and [`StaticHeap`]
//! is the form that can be a `#[global_allocator] static`.
//!
//! The allocators themselves are single-threaded (`&mut self`); one wrapper makes any of
//! them safe to share. The lock comes from `lock_api`, so the kind of lock is a type
//! parameter: a spinlock from `spinning_top` by default, which needs no operating system
//! and can be built in a `const` context; a std user may pass `parking_lot::RawMutex`.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, Ordering};

use lock_api::{Mutex, RawMutex};

use crate::{AllocError, RawHeap, Stats};

/// The lock [`Locked`] uses unless told otherwise.
pub type DefaultLock = spinning_top::RawSpinlock;

/// A heap behind a lock, usable from many threads at once.
///
/// It may start empty ([`Locked::empty`], a `const fn`) and be given its region later
/// ([`Locked::claim`]); an empty heap refuses every request.
///
/// ```
/// # use rawheap::{Locked, RawHeap};
/// # fn demo<H: RawHeap>(heap: H) {
/// let shared = Locked::<H>::new(heap);
/// let mut v = allocator_api2::vec::Vec::new_in(&shared);
/// v.push(42u32);
/// # }
/// ```
pub struct Locked<H, R: RawMutex = DefaultLock> {
    heap: Mutex<R, Option<H>>,
}

impl<H: RawHeap, R: RawMutex> Locked<H, R> {
    /// A locked heap.
    pub const fn new(heap: H) -> Self {
        Locked {
            heap: Mutex::new(Some(heap)),
        }
    }

    /// A locked heap with no region yet: every request is refused until [`claim`](Self::claim).
    pub const fn empty() -> Self {
        Locked {
            heap: Mutex::new(None),
        }
    }

    /// Gives an empty `Locked` its region. Returns `false`, and leaves everything as it
    /// was, if it already had one.
    ///
    /// # Safety
    ///
    /// As for [`RawHeap::new`]: `region` is valid, unused by anything else, and outlives
    /// the heap and every block it hands out.
    pub unsafe fn claim(&self, region: NonNull<[u8]>) -> bool {
        let mut slot = self.heap.lock();
        if slot.is_some() {
            return false;
        }
        // SAFETY: the caller's promise about `region`.
        *slot = Some(unsafe { H::new(region) });
        true
    }

    /// Runs `f` on the heap while holding the lock; `None` if the heap has no region yet.
    pub fn with<T>(&self, f: impl FnOnce(&mut H) -> T) -> Option<T> {
        self.heap.lock().as_mut().map(f)
    }

    /// The heap's stats; `None` if it has no region yet.
    pub fn stats(&self) -> Option<Stats> {
        self.with(|heap| heap.stats())
    }

    /// The heap back, when nobody else can hold the lock any more.
    pub fn into_inner(self) -> Option<H> {
        self.heap.into_inner()
    }

    fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.with(|heap| heap.allocate(layout))
            .unwrap_or(Err(AllocError::Exhausted))
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        self.with(|heap| heap.allocate_zeroed(layout))
            .unwrap_or(Err(AllocError::Exhausted))
    }

    /// # Safety
    /// `ptr` is live in this heap with `layout`.
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded caller promise. A live block implies the heap exists.
        self.with(|heap| unsafe { heap.deallocate(ptr, layout) });
    }

    /// # Safety
    /// `ptr` is live in this heap with `old`.
    unsafe fn reallocate(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: forwarded caller promise.
        self.with(|heap| unsafe { heap.reallocate(ptr, old, new) })
            .unwrap_or(Err(AllocError::Exhausted))
    }
}

impl<H: RawHeap, R: RawMutex> Default for Locked<H, R> {
    fn default() -> Self {
        Self::empty()
    }
}

fn null_on_err(result: Result<NonNull<u8>, AllocError>) -> *mut u8 {
    result.map_or(ptr::null_mut(), NonNull::as_ptr)
}

// SAFETY: every call goes to a heap that keeps the RawHeap guarantees, under one lock,
// so no two calls interleave; failures become null as `GlobalAlloc` requires, and
// `GlobalAlloc`'s callers never pass size 0.
unsafe impl<H: RawHeap, R: RawMutex> GlobalAlloc for Locked<H, R> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        null_on_err(self.allocate(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        null_on_err(self.allocate_zeroed(layout))
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's caller promises `ptr` is live here with `layout`.
            unsafe { self.deallocate(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some(ptr), Ok(new)) = (
            NonNull::new(ptr),
            Layout::from_size_align(new_size, layout.align()),
        ) else {
            return ptr::null_mut();
        };
        // SAFETY: GlobalAlloc's caller promises `ptr` is live here with `layout`.
        null_on_err(unsafe { self.reallocate(ptr, layout, new) })
    }
}

/// A dangling pointer aligned to `layout`: the answer to a zero-sized request.
fn dangling(layout: Layout) -> NonNull<[u8]> {
    let addr = core::num::NonZeroUsize::new(layout.align()).unwrap_or(core::num::NonZeroUsize::MIN);
    NonNull::slice_from_raw_parts(NonNull::without_provenance(addr), 0)
}

fn as_slice(ptr: NonNull<u8>, layout: Layout) -> NonNull<[u8]> {
    NonNull::slice_from_raw_parts(ptr, layout.size())
}

// SAFETY: blocks come from a heap that keeps the RawHeap guarantees, under one lock;
// zero-sized requests get a dangling aligned pointer and are never passed to the heap;
// `Locked` cannot be moved while borrowed, so blocks stay valid as long as `&Locked` is.
unsafe impl<H: RawHeap, R: RawMutex> allocator_api2::alloc::Allocator for &Locked<H, R> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        Locked::allocate(self, layout)
            .map(|ptr| as_slice(ptr, layout))
            .map_err(|_| allocator_api2::alloc::AllocError)
    }

    fn allocate_zeroed(
        &self,
        layout: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        Locked::allocate_zeroed(self, layout)
            .map(|ptr| as_slice(ptr, layout))
            .map_err(|_| allocator_api2::alloc::AllocError)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: the Allocator caller promises `ptr` is live here with `layout`.
            unsafe { Locked::deallocate(self, ptr, layout) }
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: the Allocator caller promises `ptr` is live here with `old`.
        unsafe { self.resize(ptr, old, new) }
    }

    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: the Allocator caller promises `ptr` is live here with `old`.
        let block = unsafe { self.resize(ptr, old, new) }?;
        // SAFETY: the block has `new.size() >= old.size()` bytes; zero those past the old ones.
        unsafe {
            block
                .cast::<u8>()
                .add(old.size())
                .write_bytes(0, new.size() - old.size())
        };
        Ok(block)
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        // SAFETY: the Allocator caller promises `ptr` is live here with `old`.
        unsafe { self.resize(ptr, old, new) }
    }
}

impl<H: RawHeap, R: RawMutex> Locked<H, R> {
    /// `grow` and `shrink` of the `Allocator` API, with its zero-sized edge cases.
    ///
    /// # Safety
    /// `ptr` is live here with `old` (or dangling when `old.size() == 0`).
    unsafe fn resize(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        if old.size() == 0 {
            return allocator_api2::alloc::Allocator::allocate(&self, new);
        }
        if new.size() == 0 {
            // SAFETY: forwarded caller promise.
            unsafe { Locked::deallocate(self, ptr, old) };
            return Ok(dangling(new));
        }
        // SAFETY: forwarded caller promise.
        unsafe { Locked::reallocate(self, ptr, old, new) }
            .map(|ptr| as_slice(ptr, new))
            .map_err(|_| allocator_api2::alloc::AllocError)
    }
}

/// A region inside a static, aligned to a page.
#[repr(C, align(4096))]
struct StaticRegion<const N: usize>(UnsafeCell<[u8; N]>);

/// A heap over a static region of `N` bytes, usable as `#[global_allocator]`:
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: rawheap::StaticHeap<free_list::FreeList, { 64 << 20 }> = rawheap::StaticHeap::new();
/// ```
///
/// The heap is built on the first request, since `RawHeap::new` is not `const`.
pub struct StaticHeap<H, const N: usize, R: RawMutex = DefaultLock> {
    region: StaticRegion<N>,
    heap: Locked<H, R>,
    /// Set once the heap has been built over `region`, so later requests take the lock once.
    claimed: AtomicBool,
}

// SAFETY: the region is only reached through the heap, and the heap only under its lock.
unsafe impl<H: Send, const N: usize, R: RawMutex + Sync> Sync for StaticHeap<H, N, R> {}

impl<H: RawHeap, const N: usize, R: RawMutex> StaticHeap<H, N, R> {
    /// A heap whose region is the `N` bytes inside this value.
    pub const fn new() -> Self {
        StaticHeap {
            region: StaticRegion(UnsafeCell::new([0; N])),
            heap: Locked::empty(),
            claimed: AtomicBool::new(false),
        }
    }

    /// The heap behind the lock, built over the region on first use.
    pub fn locked(&self) -> &Locked<H, R> {
        if self.claimed.load(Ordering::Acquire) {
            return &self.heap;
        }
        let region = NonNull::slice_from_raw_parts(
            // SAFETY: `UnsafeCell::get` never returns null.
            unsafe { NonNull::new_unchecked(self.region.0.get().cast::<u8>()) },
            N,
        );
        // SAFETY: the region lives inside `self` and is touched by nothing but this heap;
        // a `StaticHeap` serving as global allocator is a `static`, so the region outlives
        // every block. If the heap already exists, `claim` changes nothing.
        unsafe { self.heap.claim(region) };
        self.claimed.store(true, Ordering::Release);
        &self.heap
    }

    /// The heap's stats (building the heap if no request came yet).
    pub fn stats(&self) -> Stats {
        self.locked().stats().unwrap_or_default()
    }
}

impl<H: RawHeap, const N: usize, R: RawMutex> Default for StaticHeap<H, N, R> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: forwards to `Locked`, whose impl is sound, over a region that lives as long as
// `self`.
unsafe impl<H: RawHeap, const N: usize, R: RawMutex> GlobalAlloc for StaticHeap<H, N, R> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { self.locked().alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { self.locked().alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { self.locked().dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { self.locked().realloc(ptr, layout, new_size) }
    }
}
