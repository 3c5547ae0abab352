//! `ListHeap`: a small teaching heap that is correct, and the same heap with one bug
//! switched on, for proving that the conformance suite catches each bug and for showing
//! students (and graders) what each bug looks like from outside.
//!
//! The heap keeps its bookkeeping beside the region, in a `Vec` of chunks that tile the
//! region in address order, so that a bug changes only the heap's answers and never
//! makes the heap itself read or write outside its region (except the one flaw,
//! [`RoundsUpTheEnd`], that is about exactly that):
//!
//! ```text
//!   region  ┌────────┬───────┬──────────────┬──────┬────────────────────────┐
//!   chunks  │ used   │ free  │ used         │ used │ free                   │
//!           └────────┴───────┴──────────────┴──────┴────────────────────────┘
//!            a used chunk is exactly its block: it starts at the pointer handed
//!            out and is `usable_size` long; alignment padding becomes a free chunk
//! ```
//!
//! Allocation is first fit: the first free chunk that can hold the block once its start
//! is aligned is cut into (padding, block, rest). Freeing merges a chunk with free
//! neighbours at once, so two free chunks never touch. `new` zeroes the region, so
//! `allocate_zeroed` zeroes only blocks that reach below the high-water mark.
//!
//! Each bug is a type implementing [`Variant`]; `ListHeap<IgnoresAlignment>` differs
//! from `ListHeap` (= `ListHeap<Correct>`) in exactly the lines that test its flaw.
//! [`Flaw::ALL`] lists them, so a grader can be run over every broken heap:
//!
//! ```
//! use conformance::Op;
//! use conformance::teaching::{Flaw, ListHeap, OffByOneSplit};
//!
//! assert_eq!(Flaw::ALL.len(), 16);
//! assert_eq!(Flaw::OffByOneSplit.name(), "OffByOneSplit");
//! let two_blocks = [Op::Alloc { size: 9, align_log2: 0 }; 2];
//! let broken = conformance::replay::<ListHeap<OffByOneSplit>>(4096, &two_blocks);
//! assert_eq!(broken.unwrap_err().rule, "blocks_never_overlap");
//! assert_eq!(conformance::replay::<ListHeap>(4096, &two_blocks), Ok(()));
//! ```

use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr::NonNull;

use rawheap::{AllocError, Block, Capabilities, HeapError, RawHeap, Reuse, Stats, Usage, align};

/// Block sizes are multiples of this.
const GRANULE: usize = 8;
/// The largest alignment the heap serves.
const MAX_ALIGN: usize = 1 << 16;

/// A version of the heap: correct, or with one flaw.
pub trait Variant {
    /// The flaw switched on.
    const FLAW: Flaw;
}

/// Defines [`Flaw`] and, for each flaw, a type that switches it on.
macro_rules! flaws {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Which bug, if any, a `ListHeap` has.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Flaw {
            /// None: the correct heap.
            None,
            $($(#[doc = $doc])* $name,)*
        }

        impl Flaw {
            /// Every flaw, in the order they are declared.
            pub const ALL: &[Flaw] = &[$(Flaw::$name,)*];

            /// The flaw's name, which is also the name of the type that switches it on.
            pub fn name(self) -> &'static str {
                match self {
                    Flaw::None => "Correct",
                    $(Flaw::$name => stringify!($name),)*
                }
            }
        }

        $(
            $(#[doc = $doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Variant for $name {
                const FLAW: Flaw = Flaw::$name;
            }
        )*
    };
}

flaws! {
    /// Hands out the start of the chunk whatever the alignment asked.
    IgnoresAlignment,
    /// Aligns offsets from the region's start instead of addresses.
    AssumesAlignedRegion,
    /// First fit forgets to check that a chunk is free: hands out a live block again.
    IgnoresUsedFlag,
    /// The rest of a split chunk starts one granule early, over the block's end.
    OffByOneSplit,
    /// Padding cut off in front of an aligned block is never given back.
    LeaksAlignmentPadding,
    /// Freed chunks are not merged with their free neighbours.
    ForgetsToCoalesce,
    /// `reallocate` moves the block without copying it.
    ReallocForgetsToCopy,
    /// `reallocate` frees the old block first; if the new one is refused, it is lost.
    ReallocFreesFirst,
    /// `allocate_zeroed` trusts that every block is fresh, zeroed memory.
    TrustsFreshMemory,
    /// Resizing in place forgets to update the requested bytes in the stats.
    StatsForgetResize,
    /// Panics instead of answering `Exhausted`.
    PanicsOnExhaustion,
    /// `walk` reports the first chunk as overhead, as if it held a heap header.
    WalkHidesFirstChunk,
    /// `usable_size` counts one granule more than the chunk has.
    UsableSizeLies,
    /// The high-water mark is the end of the highest live block, not the highest ever.
    HighWaterFalls,
    /// Forgets to refuse alignments beyond `MAX_ALIGN`: they are answered `Exhausted`.
    NoAlignLimit,
    /// Takes the region's end rounded up to 16 bytes for its end, and writes an 8-byte
    /// end marker just below it whenever it carves the last chunk: past the region
    /// when its length is 1 to 8 bytes more than a multiple of 16.
    RoundsUpTheEnd,
}

/// The correct heap.
#[derive(Debug)]
pub struct Correct;
impl Variant for Correct {
    const FLAW: Flaw = Flaw::None;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Free,
    /// Live, with the size the caller asked for.
    Used {
        requested: usize,
    },
    /// Given up for good (only with `LeaksAlignmentPadding`): overhead.
    Lost,
}

#[derive(Clone, Copy, Debug)]
struct Chunk {
    /// Offset from the region's start.
    start: usize,
    len: usize,
    state: State,
}

impl Chunk {
    fn end(&self) -> usize {
        self.start + self.len
    }

    fn is_free(&self) -> bool {
        self.state == State::Free
    }
}

/// First fit over a side table of chunks; see the module documentation.
#[derive(Debug)]
pub struct ListHeap<V: Variant = Correct> {
    region: NonNull<[u8]>,
    /// Tile the region in address order; no two free chunks are neighbours.
    chunks: Vec<Chunk>,
    /// Live blocks, requested bytes, high-water mark.
    usage: Usage,
    variant: PhantomData<V>,
}

impl<V: Variant> ListHeap<V> {
    fn has(flaw: Flaw) -> bool {
        V::FLAW == flaw
    }

    fn base(&self) -> usize {
        self.region.as_ptr().cast::<u8>().addr()
    }

    fn pointer(&self, offset: usize) -> NonNull<u8> {
        // SAFETY: callers pass offsets of chunks, which lie inside the region.
        unsafe { self.region.cast::<u8>().add(offset) }
    }

    fn index_of(&self, ptr: NonNull<u8>) -> usize {
        let offset = ptr.as_ptr().addr() - self.base();
        self.chunks
            .binary_search_by_key(&offset, |c| c.start)
            .expect("the caller passes a block this heap handed out")
    }

    /// Where a block aligned to `align` starts in `chunk`, as an offset.
    fn aligned_start(&self, chunk: &Chunk, align: usize) -> Option<usize> {
        if Self::has(Flaw::IgnoresAlignment) {
            return Some(chunk.start);
        }
        if Self::has(Flaw::AssumesAlignedRegion) {
            return align::align_up(chunk.start, align);
        }
        Some(align::align_up(self.base() + chunk.start, align)? - self.base())
    }

    /// The first chunk that can hold `size` bytes aligned to `align`, and where the
    /// block would start in it.
    fn first_fit(&self, size: usize, align: usize) -> Option<(usize, usize)> {
        self.chunks.iter().enumerate().find_map(|(i, chunk)| {
            let start = self.aligned_start(chunk, align)?;
            let fits = start.checked_add(size)? <= chunk.end();
            let usable = if Self::has(Flaw::IgnoresUsedFlag) {
                fits
            } else {
                chunk.is_free() && fits
            };
            usable.then_some((i, start))
        })
    }

    /// Cuts chunk `i` into padding, a used block of `size` bytes at `start`, and rest.
    fn carve(&mut self, i: usize, start: usize, size: usize, requested: usize) {
        let chunk = self.chunks[i];
        let mut pieces = Vec::with_capacity(3);
        if start > chunk.start {
            let state = if Self::has(Flaw::LeaksAlignmentPadding) {
                State::Lost
            } else {
                State::Free
            };
            pieces.push(Chunk {
                start: chunk.start,
                len: start - chunk.start,
                state,
            });
        }
        pieces.push(Chunk {
            start,
            len: size,
            state: State::Used { requested },
        });
        if chunk.end() > start + size {
            let rest = if Self::has(Flaw::OffByOneSplit) {
                start + size - GRANULE
            } else {
                start + size
            };
            pieces.push(Chunk {
                start: rest,
                len: chunk.end() - rest,
                state: State::Free,
            });
        }
        self.chunks.splice(i..=i, pieces);
        self.usage.on_allocate(requested, start + size);
        if Self::has(Flaw::RoundsUpTheEnd) && chunk.end() == self.region.len() {
            self.write_end_marker();
        }
    }

    /// The flaw `RoundsUpTheEnd`: an end marker (as a heap with boundary tags keeps)
    /// in the last 8 bytes below the region's end rounded up to 16.
    fn write_end_marker(&mut self) {
        let Some(rounded_end) = self.region.len().checked_next_multiple_of(16) else {
            return;
        };
        let Some(marker) = rounded_end.checked_sub(8) else {
            return;
        };
        // SAFETY: none when the region's length is not a multiple of 16: the marker
        // then reaches past the region, which is the flaw the suite must catch (its
        // guard zones lie there). The pointer stays inside the caller's allocation in
        // the suite, so the write is caught, not undefined behaviour under Miri.
        unsafe { self.region.cast::<u8>().add(marker).write_bytes(0, 8) };
    }

    /// Merges the free chunk `i` with free neighbours.
    fn coalesce(&mut self, i: usize) {
        if Self::has(Flaw::ForgetsToCoalesce) {
            return;
        }
        if self.chunks.get(i + 1).is_some_and(Chunk::is_free) {
            self.chunks[i].len += self.chunks.remove(i + 1).len;
        }
        if i > 0 && self.chunks[i - 1].is_free() {
            let merged = self.chunks.remove(i);
            self.chunks[i - 1].len += merged.len;
        }
    }

    fn block_size(size: usize) -> Result<usize, AllocError> {
        align::round_size(size, GRANULE).ok_or(AllocError::Unsupported)
    }
}

// SAFETY: chunks tile the region, so every block lies inside it; a used chunk is handed
// out whole and only once (first fit takes free chunks only); blocks start aligned
// (`aligned_start`); usable_size is the chunk's length. (The flawed variants break
// exactly these promises, which is what the tests show the suite catching.)
unsafe impl<V: Variant> RawHeap for ListHeap<V> {
    unsafe fn new(region: NonNull<[u8]>) -> Self {
        // SAFETY: the caller gives the region to this heap, valid for writes.
        unsafe { region.cast::<u8>().write_bytes(0, region.len()) };
        let chunks = if region.is_empty() {
            Vec::new()
        } else {
            vec![Chunk {
                start: 0,
                len: region.len(),
                state: State::Free,
            }]
        };
        ListHeap {
            region,
            chunks,
            usage: Usage::default(),
            variant: PhantomData,
        }
    }

    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        let too_aligned = layout.align() > MAX_ALIGN && !Self::has(Flaw::NoAlignLimit);
        if layout.size() > self.region.len() || too_aligned {
            return Err(AllocError::Unsupported);
        }
        let size = Self::block_size(layout.size())?;
        let Some((i, start)) = self.first_fit(size, layout.align()) else {
            if Self::has(Flaw::PanicsOnExhaustion) {
                panic!("out of memory");
            }
            return Err(AllocError::Exhausted);
        };
        self.carve(i, start, size, layout.size());
        Ok(self.pointer(start))
    }

    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let fresh_from = self.usage.high_water;
        let ptr = self.allocate(layout)?;
        let reused = ptr.as_ptr().addr() - self.base() < fresh_from;
        if reused && !Self::has(Flaw::TrustsFreshMemory) {
            // SAFETY: `allocate` just handed out `layout.size()` bytes at `ptr`.
            unsafe { ptr.as_ptr().write_bytes(0, layout.size()) };
        }
        Ok(ptr)
    }

    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        let i = self.index_of(ptr);
        self.chunks[i].state = State::Free;
        self.usage.on_deallocate(layout.size());
        self.coalesce(i);
    }

    unsafe fn resize_in_place(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<(), AllocError> {
        let i = self.index_of(ptr);
        let size = Self::block_size(new.size())?;
        let chunk = self.chunks[i];
        if size > chunk.len {
            // Grow into the free chunk after, if it is large enough.
            let next = self.chunks.get(i + 1).filter(|next| next.is_free());
            let Some(&next) = next.filter(|next| chunk.len + next.len >= size) else {
                return Err(AllocError::Exhausted);
            };
            let left = chunk.len + next.len - size;
            if left == 0 {
                self.chunks.remove(i + 1);
            } else {
                self.chunks[i + 1] = Chunk {
                    start: chunk.start + size,
                    len: left,
                    state: State::Free,
                };
            }
        } else if size < chunk.len {
            self.chunks.insert(
                i + 1,
                Chunk {
                    start: chunk.start + size,
                    len: chunk.len - size,
                    state: State::Free,
                },
            );
            self.coalesce(i + 1);
        }
        self.chunks[i].len = size;
        self.chunks[i].state = State::Used {
            requested: new.size(),
        };
        if !Self::has(Flaw::StatsForgetResize) {
            self.usage
                .on_resize(old.size(), new.size(), chunk.start + size);
        }
        Ok(())
    }

    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        if new.size() == 0 {
            return Err(AllocError::ZeroSize);
        }
        let kept = old.size().min(new.size());
        if Self::has(Flaw::ReallocFreesFirst) {
            // SAFETY: the caller's promise: `ptr` is live with `old`.
            unsafe { self.deallocate(ptr, old) };
            let moved = self.allocate(new)?;
            // SAFETY: the old bytes are still there (freeing writes nothing) and both
            // ranges lie in the region; they may overlap, which `copy` allows.
            unsafe { moved.as_ptr().copy_from(ptr.as_ptr(), kept) };
            return Ok(moved);
        }
        if align::ptr_is_aligned(ptr, new.align()) {
            // SAFETY: the caller's promise, the alignment just checked, size non-zero.
            if unsafe { self.resize_in_place(ptr, old, new) }.is_ok() {
                return Ok(ptr);
            }
        }
        let moved = self.allocate(new)?;
        if !Self::has(Flaw::ReallocForgetsToCopy) {
            // `copy`, not `copy_nonoverlapping`: blocks of the correct heap never
            // overlap, but a flawed variant may hand out one over the old block, and its
            // bug must show as a wrong answer, not as undefined behaviour in the test.
            // SAFETY: both blocks lie in the region, each at least `kept` bytes long.
            unsafe { moved.as_ptr().copy_from(ptr.as_ptr(), kept) };
        }
        // SAFETY: the caller's promise: `ptr` is live with `old`.
        unsafe { self.deallocate(ptr, old) };
        Ok(moved)
    }

    unsafe fn usable_size(&self, ptr: NonNull<u8>, _layout: Layout) -> usize {
        let len = self.chunks[self.index_of(ptr)].len;
        if Self::has(Flaw::UsableSizeLies) {
            len + GRANULE
        } else {
            len
        }
    }

    fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    fn stats(&self) -> Stats {
        let mut usage = self.usage;
        if Self::has(Flaw::HighWaterFalls) {
            usage.high_water = self
                .chunks
                .iter()
                .filter(|c| matches!(c.state, State::Used { .. }))
                .map(Chunk::end)
                .max()
                .unwrap_or(0);
        }
        Stats::from_walk(self.region.len(), &usage, |visit| self.walk(visit))
    }

    fn walk(&self, visit: &mut dyn FnMut(Block)) {
        let base = self.base();
        for (i, chunk) in self.chunks.iter().enumerate() {
            let addr = base + chunk.start;
            let block = match chunk.state {
                _ if i == 0 && Self::has(Flaw::WalkHidesFirstChunk) => {
                    Block::overhead(addr, chunk.len)
                }
                State::Free => Block::free(addr, chunk.len),
                State::Used { .. } => Block::used(addr, chunk.len),
                State::Lost => Block::overhead(addr, chunk.len),
            };
            visit(block);
        }
    }

    fn check(&self) -> Result<(), HeapError> {
        rawheap::check_walk(self)?;
        let base = self.base();
        let mut next = 0;
        for pair in self.chunks.windows(2) {
            if pair[0].is_free() && pair[1].is_free() {
                return Err(
                    HeapError::new("free chunks never touch: coalescing is complete")
                        .at(base + pair[1].start),
                );
            }
        }
        for chunk in &self.chunks {
            if chunk.start != next {
                return Err(HeapError::new("chunks tile the region").at(base + chunk.start));
            }
            if let State::Used { requested } = chunk.state
                && requested > chunk.len
            {
                return Err(HeapError::new("a used chunk holds its request").at(base + chunk.start));
            }
            next = chunk.end();
        }
        let used = self
            .chunks
            .iter()
            .filter(|c| matches!(c.state, State::Used { .. }))
            .count();
        if used != self.usage.live_blocks {
            return Err(HeapError::new("usage counts the used chunks"));
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            reuse: Reuse::Any,
            restores_when_empty: true,
            max_size: usize::MAX,
            max_align: MAX_ALIGN,
            resizes_in_place: true,
        }
    }
}
