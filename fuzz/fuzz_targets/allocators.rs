//! Every allocator of the registry driven by arbitrary operation sequences through
//! `conformance::Checked`, which panics (a crash, to the fuzzer) when a block lies
//! outside the region, is misaligned or overlaps another, when a guard byte past a block
//! changes, or when `check()` fails; the target also fills every block and checks its
//! contents on every free and resize.
//!
//! The first input byte picks the allocator (its index in the registry, modulo their
//! number), the second the region size; the rest is read as operations.

#![no_main]

use core::alloc::Layout;
use core::ptr::NonNull;

use conformance::Checked;
use heaplab::registry::{Entry, HeapVisitor, entries, for_each_heap};
use heaplab::{Arena, RawHeap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let [which, region, ops @ ..] = bytes else {
        return;
    };
    let count = entries().len();
    for_each_heap(&mut Chosen {
        index: usize::from(*which) % count,
        region: 256 << (region % 8),
        ops,
        seen: 0,
    });
});

/// Runs the operations on the allocator at `index` of the registry.
struct Chosen<'a> {
    index: usize,
    region: usize,
    ops: &'a [u8],
    seen: usize,
}

impl HeapVisitor for Chosen<'_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, _: &Entry) {
        if self.seen == self.index {
            run(&mut Arena::<Checked<H>>::new(self.region), self.ops);
        }
        self.seen += 1;
    }
}

/// A live block: where, with which layout, and the byte it is filled with.
struct Live {
    ptr: NonNull<u8>,
    layout: Layout,
    fill: u8,
}

fn run<H: RawHeap>(heap: &mut Arena<Checked<H>>, ops: &[u8]) {
    let mut live: Vec<Live> = Vec::new();
    let mut next_fill = 1u8;
    for op in ops.chunks_exact(4) {
        let [kind, a, b, c] = [op[0], op[1], op[2], op[3]];
        // Sizes mostly small, sometimes up to 64 KiB; alignments up to 4 KiB.
        let size = if a & 0x80 == 0 {
            usize::from(b)
        } else {
            usize::from(u16::from_le_bytes([b, c]))
        };
        let align = 1usize << (a % 13);
        match kind % 4 {
            0 | 1 => {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                let zeroed = kind % 4 == 1;
                let answer = if zeroed {
                    heap.allocate_zeroed(layout)
                } else {
                    heap.allocate(layout)
                };
                if let Ok(ptr) = answer {
                    if zeroed {
                        expect(ptr, size, 0);
                    }
                    fill(ptr, size, next_fill);
                    live.push(Live {
                        ptr,
                        layout,
                        fill: next_fill,
                    });
                    next_fill = next_fill.wrapping_add(2);
                }
            }
            2 if !live.is_empty() => {
                let block = live.swap_remove(usize::from(a) % live.len());
                expect(block.ptr, block.layout.size(), block.fill);
                // SAFETY: the block is live with its layout and forgotten here.
                unsafe { heap.deallocate(block.ptr, block.layout) };
            }
            3 if !live.is_empty() => {
                let index = usize::from(c) % live.len();
                let block = &mut live[index];
                let Ok(new) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: the block is live with its layout; on `Ok` the new pointer
                // replaces it, on `Err` it stays live.
                if let Ok(ptr) = unsafe { heap.reallocate(block.ptr, block.layout, new) } {
                    let kept = block.layout.size().min(size);
                    expect(ptr, kept, block.fill);
                    fill(ptr, size, block.fill);
                    block.ptr = ptr;
                    block.layout = new;
                }
            }
            _ => {}
        }
    }
    for block in live {
        expect(block.ptr, block.layout.size(), block.fill);
        // SAFETY: live with its layout, freed once.
        unsafe { heap.deallocate(block.ptr, block.layout) };
    }
    heap.assert_no_leaks();
}

fn fill(ptr: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: the block was just handed out (or resized) with at least `len` bytes.
    unsafe { ptr.as_ptr().write_bytes(byte, len) };
}

fn expect(ptr: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: the block is live with at least `len` bytes, all written by `fill`.
    let bytes = unsafe { core::slice::from_raw_parts(ptr.as_ptr(), len) };
    if let Some(i) = bytes.iter().position(|&b| b != byte) {
        panic!(
            "byte {i} of a live {len}-byte block changed: {:#04x}, not {byte:#04x}",
            bytes[i]
        );
    }
}
