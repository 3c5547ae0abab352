//! Stress tests of `Locked<H>` for every allocator in the registry: many threads
//! allocate, fill, pass blocks round a ring of threads, verify and free them.
//!
//! Each thread keeps a few blocks of its own for a while (so frees interleave with
//! other threads' allocations) and sends the rest to the next thread, which checks every
//! byte before freeing it: a block handed out twice, or a heap whose metadata races,
//! shows up as a wrong byte, a failed `check()` or live blocks left over.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use std::sync::mpsc;

use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::{Locked, Memory, RawHeap};

/// How hard each allocator is pushed; Miri runs a much smaller ring.
struct Load {
    threads: usize,
    rounds: usize,
    /// Blocks a thread holds on to before freeing the oldest.
    kept: usize,
}

const LOAD: Load = if cfg!(miri) {
    Load {
        threads: 2,
        rounds: 16,
        kept: 3,
    }
} else {
    Load {
        threads: 4,
        rounds: 3_000,
        kept: 16,
    }
};

/// The largest request: sizes cycle through `1..=MAX_SIZE`.
const MAX_SIZE: usize = if cfg!(miri) { 96 } else { 300 };

/// A block on its way to another thread, with what it should hold.
struct Parcel {
    ptr: NonNull<u8>,
    layout: Layout,
    seed: u8,
}

// SAFETY: a parcel is owned by exactly one thread at a time (it moves through a
// channel); the block it names is not touched by the sender after sending.
unsafe impl Send for Parcel {}

/// The `i`-th request of thread `t`: sizes and alignments vary so that blocks of
/// different shapes interleave in the heap.
fn layout_for(t: usize, i: usize) -> Layout {
    let size = 1 + (i * 37 + t * 101) % MAX_SIZE;
    let align = [1, 8, 16, 64][(i + t) % 4];
    Layout::from_size_align(size, align).expect("small power-of-two alignment")
}

fn fill(parcel: &Parcel) {
    // SAFETY: the block is live and at least `layout.size()` bytes long.
    let bytes =
        unsafe { core::slice::from_raw_parts_mut(parcel.ptr.as_ptr(), parcel.layout.size()) };
    for (k, byte) in bytes.iter_mut().enumerate() {
        *byte = parcel.seed.wrapping_add(k as u8);
    }
}

fn verify(parcel: &Parcel, who: &str) {
    // SAFETY: the block is live and at least `layout.size()` bytes long, and owned by
    // this thread now.
    let bytes = unsafe { core::slice::from_raw_parts(parcel.ptr.as_ptr(), parcel.layout.size()) };
    let wrong = bytes
        .iter()
        .enumerate()
        .position(|(k, &byte)| byte != parcel.seed.wrapping_add(k as u8));
    assert_eq!(
        wrong, None,
        "{who}: a block of {:?} changed while it was live",
        parcel.layout
    );
}

/// Frees a verified block.
fn release<H: RawHeap>(heap: &Locked<H>, parcel: Parcel, who: &str) {
    verify(&parcel, who);
    // SAFETY: the parcel's block came from `heap` with this layout and is freed once.
    unsafe { heap.dealloc(parcel.ptr.as_ptr(), parcel.layout) };
}

/// One thread of the ring: allocates `rounds` blocks, keeps some, sends the rest on,
/// and frees what the previous thread sends it.
fn worker<H: RawHeap>(
    heap: &Locked<H>,
    t: usize,
    to_next: mpsc::Sender<Parcel>,
    from_previous: mpsc::Receiver<Parcel>,
    name: &str,
) {
    let mut kept = std::collections::VecDeque::new();
    for i in 0..LOAD.rounds {
        let layout = layout_for(t, i);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { heap.alloc(layout) };
        let ptr = NonNull::new(ptr)
            .unwrap_or_else(|| panic!("{name}: thread {t} was refused {layout:?} at round {i}"));
        assert_eq!(
            ptr.as_ptr().addr() % layout.align(),
            0,
            "{name}: misaligned"
        );
        let parcel = Parcel {
            ptr,
            layout,
            seed: (t * 31 + i) as u8,
        };
        fill(&parcel);
        if i % 2 == 0 {
            to_next.send(parcel).expect("the next thread is listening");
        } else {
            kept.push_back(parcel);
            if kept.len() > LOAD.kept {
                let oldest = kept.pop_front().expect("just checked");
                release(heap, oldest, name);
            }
        }
        while let Ok(parcel) = from_previous.try_recv() {
            release(heap, parcel, name);
        }
    }
    drop(to_next);
    for parcel in kept {
        release(heap, parcel, name);
    }
    for parcel in from_previous {
        release(heap, parcel, name);
    }
}

/// Bytes that cover every request of the run with room for headers and alignment: a
/// slow thread may let half of its neighbour's blocks pile up in its channel, and bump
/// reclaims almost nothing, so the region is sized for all of them at once.
const REGION: usize = (MAX_SIZE + 128) * LOAD.threads * LOAD.rounds + SLACK;
/// Room for each allocator's own metadata and rounding (slab pages, buddy orders).
const SLACK: usize = if cfg!(miri) { 32 << 10 } else { 64 << 10 };

struct Stress;

impl HeapVisitor for Stress {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        let memory = Memory::new(REGION).expect("memory for the stress heap");
        // SAFETY: `memory` outlives `heap`: it is declared first and dropped last.
        let heap: Locked<H> = Locked::new(unsafe { H::new(memory.region()) });
        let (senders, receivers): (Vec<_>, Vec<_>) =
            (0..LOAD.threads).map(|_| mpsc::channel()).unzip();
        std::thread::scope(|scope| {
            let mut senders = senders;
            senders.rotate_left(1); // thread t sends to thread t + 1
            for (t, (to_next, from_previous)) in senders.into_iter().zip(receivers).enumerate() {
                let heap = &heap;
                scope.spawn(move || worker(heap, t, to_next, from_previous, entry.name));
            }
        });
        let stats = heap.stats().expect("the heap has a region");
        assert_eq!(
            (stats.live_blocks, stats.requested),
            (0, 0),
            "{}: every block was freed",
            entry.name
        );
        heap.with(|h| h.check())
            .expect("region")
            .unwrap_or_else(|e| panic!("{}: inconsistent after the threads: {e}", entry.name));
    }
}

#[test]
fn every_allocator_survives_threads_passing_blocks_around_a_ring() {
    for_each_heap(&mut Stress);
}
