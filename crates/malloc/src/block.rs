//! Where a block remembers its layout: C's `free(ptr)` passes no size, and a
//! [`RawHeap`](heaplab::RawHeap) needs the exact layout back.
//!
//! ```text
//!   base (from the heap)          ptr (handed to C), aligned to `align`
//!   │                             │
//!   ▼                             ▼
//!   ┌──────────────┬──────────────┬────────────────────────────────┐
//!   │ padding      │ size │ align │ the program's `size` bytes     │
//!   └──────────────┴──────────────┴────────────────────────────────┘
//!   ◄──────── align bytes ───────►
//!   heap layout: (align + size, align), align >= 16 so the header always fits;
//!   a layout small enough for the thread caches is rounded up to its size class
//! ```
//!
//! Every block whose layout falls in a size class of the thread caches is asked of
//! the heap with the class's layout ([`thread_cache::class_layout`]), whether it comes
//! through a cache or not: a cached block may be freed by a thread that bypasses its
//! cache (one that is ending, say), and the heap must get back the layout it gave.
//! While a trace is recorded (`HEAPLAB_TRACE`), the caches are off and no layout is
//! rounded: the heap, and so the trace, sees each request's own size.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// What glibc's malloc guarantees on 64-bit targets: room for any fundamental type.
/// It is also the header's size, so the header fits in the offset of every block.
pub const MIN_ALIGN: usize = 16;

/// The two words right before every pointer handed to C.
#[repr(C)]
struct Header {
    /// The program's request in bytes.
    size: usize,
    /// The block's alignment: a power of two, at least [`MIN_ALIGN`], and the distance
    /// from the heap's block to the program's pointer.
    align: usize,
}

const _: () = assert!(size_of::<Header>() == MIN_ALIGN);

/// Whether small layouts are rounded to the thread caches' classes: set once, under the
/// process lock, while the heap is built and before any block is handed out (so every
/// block is freed with the rule it was allocated under); off while a trace is recorded.
static CLASSES: AtomicBool = AtomicBool::new(true);

/// Sets [`CLASSES`]; called by the heap's builder only.
pub(crate) fn round_to_classes(on: bool) {
    CLASSES.store(on, Relaxed);
}

/// A C request, carried in a heap block together with its header.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// The program's request in bytes (may be 0: `malloc(0)` gets a unique block).
    pub size: usize,
    /// A power of two, at least [`MIN_ALIGN`].
    pub align: usize,
    /// What the heap is asked for: `align + size` bytes at `align`, the header's offset
    /// plus the program's bytes, rounded up to its size class when it has one.
    pub heap_layout: Layout,
    /// The thread caches' size class of the block, if it has one.
    pub class: Option<usize>,
}

impl Request {
    /// `size` bytes at `align` (raised to [`MIN_ALIGN`]); `None` when `align` is not a
    /// power of two or the block with its header would overflow.
    #[inline]
    pub fn new(size: usize, align: usize) -> Option<Self> {
        if !align.is_power_of_two() {
            return None;
        }
        let align = align.max(MIN_ALIGN);
        // Most requests: a small block at the least alignment, which has a class (and
        // whose size cannot overflow a layout): the class's layout, without the checks
        // of the general case below.
        let classes = CLASSES.load(Relaxed);
        if classes
            && align == MIN_ALIGN
            && let Some(class) = size
                .checked_add(MIN_ALIGN)
                .and_then(thread_cache::class_of_size)
        {
            return Some(Request {
                size,
                align,
                heap_layout: thread_cache::class_layout(class),
                class: Some(class),
            });
        }
        let exact = Layout::from_size_align(size.checked_add(align)?, align).ok()?;
        let class = thread_cache::class_of(exact).filter(|_| classes);
        Some(Request {
            size,
            align,
            heap_layout: class.map_or(exact, thread_cache::class_layout),
            class,
        })
    }

    /// The program's request in bytes behind a [`heap_layout`](Self::heap_layout): the
    /// inverse of [`Request::new`], for code that sees only the heap's side.
    pub const fn program_size(heap_layout: Layout) -> usize {
        heap_layout.size() - heap_layout.align()
    }

    /// Writes the header into a heap block of [`heap_layout`](Self::heap_layout) and
    /// returns the pointer for the program.
    ///
    /// # Safety
    ///
    /// `base` is a live heap block with this request's heap layout.
    pub unsafe fn hand_out(self, base: NonNull<u8>) -> NonNull<u8> {
        // SAFETY: the block is at least `align + size` bytes long, so `base + align` is
        // inside it or one past its end.
        let user = unsafe { base.add(self.align) };
        // SAFETY: `align >= 16`, so the header's 16 bytes lie inside the block, right
        // before `user`, and are aligned to 16.
        unsafe {
            user.sub(MIN_ALIGN).cast::<Header>().write(Header {
                size: self.size,
                align: self.align,
            })
        };
        user
    }

    /// The request and heap block behind a pointer [`hand_out`](Self::hand_out)
    /// returned; `None` when its header is not one this library wrote (a stray or
    /// corrupted pointer), so that it is refused rather than passed to the heap.
    ///
    /// # Safety
    ///
    /// `user` lies inside the heap's region, `room` bytes past its start, `room >=`
    /// [`MIN_ALIGN`].
    #[inline]
    pub unsafe fn of(user: NonNull<u8>, room: usize) -> Option<(Self, NonNull<u8>)> {
        // SAFETY: the caller's promise: the 16 bytes before `user` are in the region.
        let header = unsafe { user.sub(MIN_ALIGN).cast::<Header>().read_unaligned() };
        let request = Request::new(header.size, header.align)?;
        let misplaced = request.align != header.align
            || request.align > room
            || !user.as_ptr().addr().is_multiple_of(request.align);
        if misplaced {
            return None;
        }
        // SAFETY: `align <= room`, so `user - align` is still inside the region; for a
        // pointer `hand_out` returned it is the heap block's start.
        Some((request, unsafe { user.sub(request.align) }))
    }
}
