//! [`Arena`]: memory from the system allocator and a heap over it, in one safe value.

use core::alloc::Layout;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use crate::{AllocError, RawHeap};

/// Owns a region obtained from the system allocator and a heap `H` managing it.
///
/// This is how tests, examples and students make a heap in one line:
///
/// ```
/// # use rawheap::{Arena, RawHeap};
/// # fn demo<H: RawHeap>() {
/// let mut heap = Arena::<H>::new(64 * 1024);
/// let block = heap.allocate(core::alloc::Layout::new::<u64>());
/// # let _ = block; }
/// ```
///
/// The arena dereferences to the heap. When it is dropped the heap goes first and the
/// memory after it, so the heap never outlives its region. Blocks still live at that
/// point are simply gone with the region: no destructor runs for them.
pub struct Arena<H: RawHeap> {
    heap: ManuallyDrop<H>,
    memory: NonNull<u8>,
    layout: Layout,
    region: NonNull<[u8]>,
}

/// The alignment of an arena's region unless asked otherwise: one page.
pub const DEFAULT_ALIGN: usize = 4096;

impl<H: RawHeap> Arena<H> {
    /// A heap over `size` fresh bytes aligned to a page.
    ///
    /// # Panics
    ///
    /// If the system allocator cannot provide the memory; see [`Arena::try_new`].
    pub fn new(size: usize) -> Self {
        match Self::try_new(size) {
            Ok(arena) => arena,
            Err(_) => panic!("the system allocator could not provide a {size}-byte arena"),
        }
    }

    /// A heap over `size` fresh bytes aligned to a page, or `Err` if the system allocator
    /// cannot provide them.
    pub fn try_new(size: usize) -> Result<Self, AllocError> {
        Self::with_placement(size, DEFAULT_ALIGN, 0)
    }

    /// A heap over `size` bytes whose first byte sits `offset` bytes past a multiple of
    /// `align`. Tests use odd offsets to check that a heap copes with a region that is
    /// not aligned to anything.
    pub fn with_placement(size: usize, align: usize, offset: usize) -> Result<Self, AllocError> {
        let total = size.checked_add(offset).ok_or(AllocError::Unsupported)?;
        // The system allocator cannot be asked for 0 bytes; one spare byte is harmless.
        let layout =
            Layout::from_size_align(total.max(1), align).map_err(|_| AllocError::Unsupported)?;
        // SAFETY: `layout` has a non-zero size.
        let memory =
            NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or(AllocError::Exhausted)?;
        // SAFETY: `offset <= total`, so the result stays inside (or one past) the allocation.
        let start = unsafe { memory.add(offset) };
        let region = NonNull::slice_from_raw_parts(start, size);
        // SAFETY: the region is fresh memory that only this arena knows about, and the
        // arena frees it only after dropping the heap (see `Drop`).
        let heap = unsafe { H::new(region) };
        Ok(Arena {
            heap: ManuallyDrop::new(heap),
            memory,
            layout,
            region,
        })
    }

    /// The region the heap manages.
    pub fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    /// The heap.
    pub fn heap(&self) -> &H {
        &self.heap
    }

    /// The heap, mutably.
    pub fn heap_mut(&mut self) -> &mut H {
        &mut self.heap
    }
}

impl<H: RawHeap> Deref for Arena<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.heap
    }
}

impl<H: RawHeap> DerefMut for Arena<H> {
    fn deref_mut(&mut self) -> &mut H {
        &mut self.heap
    }
}

impl<H: RawHeap> Drop for Arena<H> {
    fn drop(&mut self) {
        // SAFETY: the heap is dropped exactly once, here, and never touched again.
        unsafe { ManuallyDrop::drop(&mut self.heap) };
        // SAFETY: `memory` came from `alloc` with `layout`, and the heap that used it is gone.
        unsafe { std::alloc::dealloc(self.memory.as_ptr(), self.layout) };
    }
}

// SAFETY: the arena owns its memory exclusively, so moving it to another thread moves
// everything the heap points into; `H: Send` covers the heap's own state.
unsafe impl<H: RawHeap + Send> Send for Arena<H> {}

impl<H: RawHeap + core::fmt::Debug> core::fmt::Debug for Arena<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena")
            .field("region_len", &self.region.len())
            .field("heap", &*self.heap)
            .finish()
    }
}
