//! The catalogue of bad input: one test per case, each run on every allocator of the
//! registry, each asserting the documented answer. The book's testing chapter
//! (book/src/testing.md, "Bad input, catalogued") lists the cases and their answers.
//!
//! A heap used after its region is gone cannot be written in safe code: `Arena` owns the
//! region and the heap together (the `compile_fail` example in `heaplab`'s crate docs
//! shows the borrow checker refusing it), and `RawHeap::new` is `unsafe` with that promise.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::panic::{AssertUnwindSafe, catch_unwind};

use conformance::Checked;
use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::{AllocError, Arena, RawHeap, Reuse};

/// The region of every case: small, so that exhaustion comes quickly (also under Miri).
const REGION: usize = if cfg!(miri) { 4096 } else { 64 * 1024 };

/// Runs `case` on a fresh `Arena<H>` for every allocator, naming the allocator on failure.
fn for_every_heap(case: fn(&str, &mut dyn Probe)) {
    struct Each(fn(&str, &mut dyn Probe));
    impl HeapVisitor for Each {
        fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
            let mut arena = Arena::<H>::new(REGION);
            (self.0)(entry.name, &mut arena);
            if let Err(error) = arena.check() {
                panic!("{}: check() failed after the case: {error:?}", entry.name);
            }
        }
    }
    for_each_heap(&mut Each(case));
}

/// The heap operations a case needs, object-safe so one case body serves every type.
trait Probe {
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError>;
    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError>;
    /// # Safety
    /// `ptr` is live in this heap with `layout`.
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout);
    /// # Safety
    /// `ptr` is live in this heap with `old`.
    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError>;
    fn reuse(&self) -> Reuse;
    fn region(&self) -> (usize, usize);
}

impl<H: RawHeap> Probe for Arena<H> {
    fn allocate(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        (**self).allocate(layout)
    }
    fn allocate_zeroed(&mut self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        (**self).allocate_zeroed(layout)
    }
    unsafe fn deallocate(&mut self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller passes a live block of this heap with its layout.
        unsafe { (**self).deallocate(ptr, layout) }
    }
    unsafe fn reallocate(
        &mut self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: the caller passes a live block of this heap with its layout.
        unsafe { (**self).reallocate(ptr, old, new) }
    }
    fn reuse(&self) -> Reuse {
        self.capabilities().reuse
    }
    fn region(&self) -> (usize, usize) {
        let region = (**self).region();
        (region.as_ptr().cast::<u8>().addr(), region.len())
    }
}

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).expect("a valid layout")
}

/// A block of `size` bytes filled with `byte`, which the case later checks.
fn filled(heap: &mut dyn Probe, name: &str, size: usize, byte: u8) -> NonNull<u8> {
    let ptr = heap
        .allocate(layout(size, 8))
        .unwrap_or_else(|e| panic!("{name}: a {size}-byte request on a new heap: {e:?}"));
    // SAFETY: the block was just handed out with at least `size` bytes.
    unsafe { ptr.as_ptr().write_bytes(byte, size) };
    ptr
}

fn assert_filled(name: &str, ptr: NonNull<u8>, size: usize, byte: u8) {
    // SAFETY: the case keeps the block live with at least `size` bytes.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), size) };
    assert!(
        bytes.iter().all(|&b| b == byte),
        "{name}: the block's contents changed"
    );
}

#[test]
fn size_zero_is_refused_and_reallocating_to_zero_keeps_the_block() {
    for_every_heap(|name, heap| {
        for align in [1, 8, 64] {
            assert_eq!(
                heap.allocate(layout(0, align)),
                Err(AllocError::ZeroSize),
                "{name}"
            );
            assert_eq!(
                heap.allocate_zeroed(layout(0, align)),
                Err(AllocError::ZeroSize),
                "{name}"
            );
        }
        let ptr = filled(heap, name, 40, 0xA5);
        // SAFETY: `ptr` is live with this layout; on `Err` it stays live.
        let answer = unsafe { heap.reallocate(ptr, layout(40, 8), layout(0, 8)) };
        assert_eq!(answer, Err(AllocError::ZeroSize), "{name}");
        assert_filled(name, ptr, 40, 0xA5);
        // SAFETY: still live with its layout.
        unsafe { heap.deallocate(ptr, layout(40, 8)) };
    });
}

#[test]
fn sizes_near_isize_max_are_refused_and_the_heap_still_serves() {
    for_every_heap(|name, heap| {
        let max = isize::MAX as usize;
        for align in [1, 8, 4096] {
            // The largest size a `Layout` of this alignment admits, and a few below it.
            for size in [max - (align - 1), max - (align - 1) - 7, max / 2 + 1] {
                assert_eq!(
                    heap.allocate(layout(size, align)),
                    Err(AllocError::Unsupported),
                    "{name}: size {size}, align {align}"
                );
            }
        }
        let ptr = filled(heap, name, 100, 1);
        // SAFETY: live with this layout.
        unsafe { heap.deallocate(ptr, layout(100, 8)) };
    });
}

#[test]
fn an_alignment_larger_than_the_region_is_refused_or_served_inside_it() {
    for_every_heap(|name, heap| {
        let (base, len) = heap.region();
        let align = (len + 1).next_power_of_two() * 2;
        match heap.allocate(layout(8, align)) {
            Ok(ptr) => {
                let addr = ptr.as_ptr().addr();
                assert!(addr % align == 0, "{name}: misaligned");
                assert!(addr >= base && addr + 8 <= base + len, "{name}: outside");
                // SAFETY: just handed out with this layout.
                unsafe { heap.deallocate(ptr, layout(8, align)) };
            }
            Err(error) => assert!(
                matches!(error, AllocError::Unsupported | AllocError::Exhausted),
                "{name}: {error:?}"
            ),
        }
        let ptr = filled(heap, name, 24, 2);
        // SAFETY: live with this layout.
        unsafe { heap.deallocate(ptr, layout(24, 8)) };
    });
}

#[test]
fn reallocating_to_a_huge_size_is_refused_and_keeps_the_block() {
    for_every_heap(|name, heap| {
        let (_, len) = heap.region();
        let ptr = filled(heap, name, 64, 0x3C);
        for size in [
            len + 1,
            isize::MAX as usize - 7,
            isize::MAX as usize / 2 + 1,
        ] {
            // SAFETY: `ptr` is live with this layout; on `Err` it stays live.
            let answer = unsafe { heap.reallocate(ptr, layout(64, 8), layout(size, 8)) };
            assert_eq!(answer, Err(AllocError::Unsupported), "{name}: to {size}");
            assert_filled(name, ptr, 64, 0x3C);
        }
        // SAFETY: still live with its layout.
        unsafe { heap.deallocate(ptr, layout(64, 8)) };
    });
}

#[test]
fn exhaustion_is_an_error_and_freeing_recovers() {
    for_every_heap(|name, heap| {
        let block = layout(256, 8);
        let mut live = Vec::new();
        let refusal = loop {
            match heap.allocate(block) {
                Ok(ptr) => live.push(ptr),
                Err(error) => break error,
            }
            assert!(live.len() <= REGION / 256, "{name}: more blocks than fit");
        };
        assert_eq!(refusal, AllocError::Exhausted, "{name}");
        assert!(!live.is_empty(), "{name}: served nothing");
        if heap.reuse() == Reuse::Never {
            return;
        }
        // Newest first, which every reusing heap takes back (bump takes only that).
        for ptr in live.into_iter().rev() {
            // SAFETY: each is live with `block`.
            unsafe { heap.deallocate(ptr, block) };
        }
        let again = heap
            .allocate(block)
            .unwrap_or_else(|e| panic!("{name}: not served after freeing everything: {e:?}"));
        // SAFETY: just handed out with `block`.
        unsafe { heap.deallocate(again, block) };
    });
}

/// Runs `misuse` on a `Checked` arena of every allocator and asserts that it panics
/// with a message starting with `named`.
fn checked_names(named: &str, misuse: fn(&mut dyn Probe)) {
    struct Each<'n> {
        named: &'n str,
        misuse: fn(&mut dyn Probe),
    }
    impl HeapVisitor for Each<'_> {
        fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
            let mut arena = Arena::<Checked<H>>::new(REGION);
            let misuse = self.misuse;
            let panic = catch_unwind(AssertUnwindSafe(|| misuse(&mut arena)))
                .expect_err("the misuse went unnoticed");
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("");
            assert!(
                message.starts_with(self.named),
                "{}: expected `{}`, got: {message}",
                entry.name,
                self.named
            );
        }
    }
    for_each_heap(&mut Each { named, misuse });
}

#[test]
fn a_double_free_is_named() {
    checked_names("double free", |heap| {
        let ptr = heap.allocate(layout(32, 8)).unwrap();
        // SAFETY: live with this layout.
        unsafe { heap.deallocate(ptr, layout(32, 8)) };
        // SAFETY: `Checked` looks the pointer up in its shadow before anything reads through
        // it, and panics on this double free; the inner heap never sees it.
        unsafe { heap.deallocate(ptr, layout(32, 8)) };
    });
}

#[test]
fn a_foreign_pointer_is_named() {
    checked_names("foreign pointer", |heap| {
        let mut elsewhere = [0u64; 4];
        let foreign = NonNull::from(&mut elsewhere).cast::<u8>();
        // SAFETY: `Checked` finds the pointer outside its region and panics before
        // anything reads through it.
        unsafe { heap.deallocate(foreign, layout(32, 8)) };
    });
}

#[test]
fn an_interior_pointer_is_named() {
    checked_names("interior pointer", |heap| {
        let ptr = heap.allocate(layout(64, 8)).unwrap();
        // SAFETY: 16 bytes into a 64-byte block: in bounds.
        let inside = unsafe { ptr.add(16) };
        // SAFETY: `Checked` finds no block starting at the pointer and panics before the
        // inner heap sees it.
        unsafe { heap.deallocate(inside, layout(48, 8)) };
    });
}

#[test]
fn the_wrong_layout_is_named() {
    checked_names("wrong layout", |heap| {
        let ptr = heap.allocate(layout(64, 8)).unwrap();
        // SAFETY: `Checked` compares the layout with the one it recorded and panics
        // before the inner heap sees it.
        unsafe { heap.deallocate(ptr, layout(32, 8)) };
    });
}
