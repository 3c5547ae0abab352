//! `Checked<H>` names the caller's misuse before it reaches the heap, and the heap's
//! bugs as they happen; and it is itself a correct heap when `H` is.

mod support;

use core::alloc::Layout;
use core::ptr::NonNull;

use conformance::Checked;
use rawheap::{Arena, RawHeap};
use support::*;

fn checked() -> Arena<Checked<ListHeap>> {
    Arena::new(4096)
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

#[test]
#[should_panic(expected = "double free: deallocate of the block at +0x0, which was already freed")]
fn a_double_free_is_named() {
    let mut heap = checked();
    let block = heap.allocate(layout(24)).unwrap();
    // SAFETY: live with this layout.
    unsafe { heap.deallocate(block, layout(24)) };
    // SAFETY: none: this is the misuse under test, which Checked stops before the heap.
    unsafe { heap.deallocate(block, layout(24)) };
}

#[test]
#[should_panic(expected = "use after free: reallocate of the block at +0x0")]
fn resizing_a_freed_block_is_named() {
    let mut heap = checked();
    let block = heap.allocate(layout(24)).unwrap();
    // SAFETY: live with this layout.
    unsafe { heap.deallocate(block, layout(24)) };
    // SAFETY: none: the misuse under test.
    let _ = unsafe { heap.reallocate(block, layout(24), layout(48)) };
}

#[test]
#[should_panic(expected = "foreign pointer: deallocate of")]
fn a_pointer_from_another_allocator_is_named() {
    let mut heap = checked();
    let mut elsewhere = Box::new(0u64);
    let foreign = NonNull::from(&mut *elsewhere).cast::<u8>();
    // SAFETY: none: the misuse under test.
    unsafe { heap.deallocate(foreign, layout(8)) };
}

#[test]
#[should_panic(
    expected = "interior pointer: deallocate of +0x8, which points 8 bytes into the block at +0x0"
)]
fn a_pointer_into_a_block_is_named() {
    let mut heap = checked();
    let block = heap.allocate(layout(24)).unwrap();
    // SAFETY: 8 bytes into a 24-byte block.
    let inside = unsafe { block.add(8) };
    // SAFETY: none: the misuse under test.
    unsafe { heap.deallocate(inside, layout(16)) };
}

#[test]
#[should_panic(expected = "not a block: deallocate of +0x200, which this heap never handed out")]
fn a_pointer_to_free_memory_is_named() {
    let mut heap = checked();
    // SAFETY: 512 bytes into the 4096-byte region.
    let free = unsafe { heap.region().cast::<u8>().add(512) };
    // SAFETY: none: the misuse under test.
    unsafe { heap.deallocate(free, layout(8)) };
}

#[test]
#[should_panic(
    expected = "wrong layout: deallocate of the block at +0x0 with size 32 and align 8, but it was allocated (or last reallocated) with size 24 and align 8"
)]
fn freeing_with_the_wrong_size_is_named() {
    let mut heap = checked();
    let block = heap.allocate(layout(24)).unwrap();
    // SAFETY: none: the misuse under test.
    unsafe { heap.deallocate(block, layout(32)) };
}

#[test]
#[should_panic(
    expected = "wrong layout: reallocate of the block at +0x0 with size 24 and align 16"
)]
fn resizing_with_the_wrong_alignment_is_named() {
    let mut heap = checked();
    let block = heap.allocate(layout(24)).unwrap();
    let wrong = Layout::from_size_align(24, 16).unwrap();
    // SAFETY: none: the misuse under test.
    let _ = unsafe { heap.reallocate(block, wrong, layout(48)) };
}

#[test]
#[should_panic(expected = "wrong layout: usable_size of the block at +0x0 with size 25")]
fn asking_usable_size_with_the_wrong_layout_is_named() {
    let heap = {
        let mut heap = checked();
        heap.allocate(layout(24)).unwrap();
        heap
    };
    let block = heap.leaks()[0].0;
    // SAFETY: none: the misuse under test.
    unsafe { heap.usable_size(block, layout(25)) };
}

#[test]
#[should_panic(
    expected = "buffer overflow: the program wrote past the end of its block: the guard bytes after the 24-byte block at +0x0 changed"
)]
fn writing_past_a_block_is_named_when_it_is_freed() {
    let mut heap = checked();
    let block = heap.allocate(layout(24)).unwrap();
    // SAFETY: the caller may use every byte usable_size reports.
    let usable = unsafe { heap.usable_size(block, layout(24)) };
    // SAFETY: the write is the bug under test; it stays inside the region, in the guard.
    unsafe { block.add(usable).write(0) };
    // SAFETY: live with this layout.
    unsafe { heap.deallocate(block, layout(24)) };
}

#[test]
#[should_panic(expected = "memory clobbered during deallocate")]
fn writing_past_a_block_is_noticed_when_its_neighbour_is_freed() {
    let mut heap = checked();
    let first = heap.allocate(layout(24)).unwrap();
    let second = heap.allocate(layout(24)).unwrap();
    // SAFETY: the caller may use every byte usable_size reports.
    let usable = unsafe { heap.usable_size(first, layout(24)) };
    // SAFETY: the overflow under test, inside the region, in the first block's guard.
    unsafe { first.add(usable + 1).write(7) };
    // SAFETY: live with this layout.
    unsafe { heap.deallocate(second, layout(24)) };
}

#[test]
#[should_panic(
    expected = "heap bug: allocate of 24 bytes aligned to 64 returned the misaligned +0x20"
)]
fn a_misaligned_block_is_named() {
    let mut heap = Arena::<Checked<ListHeap<IgnoresAlignment>>>::new(4096);
    heap.allocate(layout(24)).unwrap();
    heap.allocate(Layout::from_size_align(24, 64).unwrap())
        .unwrap();
}

#[test]
#[should_panic(
    expected = "heap bug: allocate returned +0x0..+0x20, which overlaps the live block at +0x0..+0x20"
)]
fn a_block_handed_out_twice_is_named() {
    let mut heap = Arena::<Checked<ListHeap<IgnoresUsedFlag>>>::new(4096);
    heap.allocate(layout(24)).unwrap();
    heap.allocate(layout(24)).unwrap();
}

#[test]
#[should_panic(
    expected = "heap bug: allocate returned +0x20..+0x48, which overlaps the live block at +0x0..+0x28"
)]
fn a_usable_size_that_reaches_the_next_block_is_named() {
    let mut heap = Arena::<Checked<ListHeap<UsableSizeLies>>>::new(4096);
    heap.allocate(layout(24)).unwrap();
    heap.allocate(layout(24)).unwrap();
}

#[test]
#[should_panic(expected = "heap bug: check() failed after deallocate: free chunks never touch")]
fn a_heap_whose_own_check_fails_is_named() {
    let mut heap = Arena::<Checked<ListHeap<ForgetsToCoalesce>>>::new(4096);
    let block = heap.allocate(layout(24)).unwrap();
    // SAFETY: live with this layout.
    unsafe { heap.deallocate(block, layout(24)) };
}

#[test]
fn leaks_are_listed_by_address() {
    let mut heap = checked();
    let first = heap.allocate(layout(24)).unwrap();
    let second = heap.allocate(layout(100)).unwrap();
    assert_eq!(
        heap.leaks(),
        vec![(first, layout(24)), (second, layout(100))]
    );
    let message = std::panic::catch_unwind(|| heap.assert_no_leaks())
        .expect_err("two blocks are live")
        .downcast::<String>()
        .expect("a formatted message");
    assert_eq!(
        *message,
        "2 blocks leaked: 24 bytes at +0x0, 100 bytes at +0x20"
    );
}

#[test]
fn no_leak_after_everything_is_freed() {
    let mut heap = checked();
    let block = heap.allocate(layout(24)).unwrap();
    // SAFETY: live with this layout.
    let grown = unsafe { heap.reallocate(block, layout(24), layout(300)) }.unwrap();
    // SAFETY: live with the layout it was reallocated to.
    unsafe { heap.deallocate(grown, layout(300)) };
    assert!(heap.leaks().is_empty());
    heap.assert_no_leaks();
}

#[test]
#[cfg_attr(miri, ignore = "the whole suite again; student.rs runs it under Miri")]
fn checked_over_a_correct_heap_keeps_every_rule() {
    for (rule, result) in conformance::run_all::<Checked<ListHeap>>(REGION) {
        if let Err(violation) = result {
            panic!("`{rule}` failed:\n{violation}");
        }
    }
}
