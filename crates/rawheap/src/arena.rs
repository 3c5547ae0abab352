//! Owned region memory ([`Memory`]) and a heap over it ([`Arena`]), in safe values.

use core::alloc::Layout;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use crate::{AllocError, RawHeap};

/// The alignment of a region unless asked otherwise: one page.
pub const DEFAULT_ALIGN: usize = 4096;

/// A region of fresh memory from the system allocator, freed when dropped.
///
/// Use it when a heap must live somewhere an [`Arena`] cannot reach, such as inside a
/// [`Locked`](crate::Locked): keep the `Memory` alive for as long as the heap.
pub struct Memory {
    allocation: NonNull<u8>,
    layout: Layout,
    region: NonNull<[u8]>,
}

impl Memory {
    /// `size` bytes aligned to a page, or `Err` if the system allocator cannot provide them.
    pub fn new(size: usize) -> Result<Self, AllocError> {
        Self::with_placement(size, DEFAULT_ALIGN, 0)
    }

    /// `size` bytes whose first byte sits `offset` bytes past a multiple of `align`.
    /// Tests use odd offsets to check that a heap copes with a region aligned to nothing.
    pub fn with_placement(size: usize, align: usize, offset: usize) -> Result<Self, AllocError> {
        let total = size.checked_add(offset).ok_or(AllocError::Unsupported)?;
        // The system allocator cannot be asked for 0 bytes; one spare byte is harmless.
        let layout =
            Layout::from_size_align(total.max(1), align).map_err(|_| AllocError::Unsupported)?;
        // SAFETY: `layout` has a non-zero size.
        let allocation =
            NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or(AllocError::Exhausted)?;
        // SAFETY: `offset <= total`, so the result stays inside (or one past) the allocation.
        let start = unsafe { allocation.add(offset) };
        Ok(Memory {
            allocation,
            layout,
            region: NonNull::slice_from_raw_parts(start, size),
        })
    }

    /// The region: valid for reads and writes until `self` is dropped.
    pub fn region(&self) -> NonNull<[u8]> {
        self.region
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: `allocation` came from `alloc` with `layout` and is freed only here.
        unsafe { std::alloc::dealloc(self.allocation.as_ptr(), self.layout) };
    }
}

// SAFETY: `Memory` owns its allocation exclusively; nothing in it is tied to a thread.
unsafe impl Send for Memory {}

/// A heap `H` over [`Memory`] it owns: how tests, examples and students make a heap in
/// one line.
///
/// ```
/// # use rawheap::{Arena, RawHeap};
/// # fn demo<H: RawHeap>() {
/// let mut heap = Arena::<H>::new(64 * 1024);
/// let block = heap.allocate(core::alloc::Layout::new::<u64>());
/// # let _ = block; }
/// ```
///
/// The arena dereferences to the heap. Dropping it drops the heap first and the memory
/// after it (fields drop in declaration order), so the heap never outlives its region.
/// Blocks still live then are gone with the region; no destructor runs for them.
pub struct Arena<H: RawHeap> {
    /// Declared first so that it is dropped first.
    heap: H,
    memory: Memory,
}

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
        Memory::new(size).map(Self::over)
    }

    /// A heap over `size` bytes starting `offset` bytes past a multiple of `align`.
    pub fn with_placement(size: usize, align: usize, offset: usize) -> Result<Self, AllocError> {
        Memory::with_placement(size, align, offset).map(Self::over)
    }

    /// A heap over `memory`, which the arena keeps.
    pub fn over(memory: Memory) -> Self {
        // SAFETY: the region belongs to `memory`, which nothing else uses and which the
        // arena drops only after the heap.
        let heap = unsafe { H::new(memory.region()) };
        Arena { heap, memory }
    }

    /// The region the heap manages.
    pub fn region(&self) -> NonNull<[u8]> {
        self.memory.region()
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

impl<H: RawHeap + core::fmt::Debug> core::fmt::Debug for Arena<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Arena")
            .field("region_len", &self.region().len())
            .field("heap", &self.heap)
            .finish()
    }
}
