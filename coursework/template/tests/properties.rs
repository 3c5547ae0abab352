//! A property of your own, in proptest: whatever blocks are asked for, each one handed
//! out can be filled and read back, and freeing them all leaves the heap as free as it
//! was new. Add properties of your design here (your invariants, your placement policy).

use core::alloc::Layout;

use assignment::Heap;
use proptest::prelude::*;
use rawheap::{Arena, RawHeap};

const REGION: usize = 16 * 1024;

proptest! {
    #[test]
    fn blocks_hold_their_bytes_and_freeing_all_restores_the_heap(
        sizes in prop::collection::vec(1usize..=512, 1..32),
    ) {
        let mut heap = Arena::<Heap>::new(REGION);
        let new = heap.stats();
        let mut blocks = Vec::new();
        for (i, &size) in sizes.iter().enumerate() {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let Ok(ptr) = heap.allocate(layout) else { break };
            // SAFETY: `allocate` handed out `size` writable bytes at `ptr`.
            unsafe { ptr.as_ptr().write_bytes(i as u8, size) };
            blocks.push((ptr, layout, i as u8));
        }
        for &(ptr, layout, byte) in &blocks {
            // SAFETY: the block is live and `layout.size()` bytes were written to it.
            let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), layout.size()) };
            prop_assert!(bytes.iter().all(|&b| b == byte), "a block lost its bytes");
        }
        for (ptr, layout, _) in blocks {
            // SAFETY: each block came from this heap with `layout` and is freed once.
            unsafe { heap.deallocate(ptr, layout) };
        }
        let emptied = heap.stats();
        prop_assert_eq!(emptied.free, new.free);
        prop_assert_eq!(emptied.largest_free, new.largest_free);
        prop_assert_eq!(heap.check(), Ok(()));
    }
}
