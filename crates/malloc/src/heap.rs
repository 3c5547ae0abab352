//! The one heap of the process: chosen by name from the registry on the first call,
//! built at the start of an `mmap`ed region, and guarded by one process-wide lock that
//! the fork handlers can hold.

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::fmt::Write;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

use heaplab::registry::{Entry, HeapVisitor, for_each_heap};
use heaplab::{Locked, RawHeap, Stats};
use thread_cache::{BATCH, Depot, ROUNDS, Rack};

use crate::env;
use crate::record;
use crate::say::{Message, say};

// ANCHOR: lock
/// The lock every heap call takes, as one word (Drepper, "Futexes Are Tricky", 2011,
/// mutex 2): [`FREE`], [`HELD`], or [`CONTENDED`] (held, and a thread may sleep on it).
///
/// Taking a free lock is one compare-and-swap inlined into the caller, releasing it one
/// swap; the kernel is entered only when a thread has to wait (`futex` wait) or one
/// waits (`futex` wake). A pthread mutex does the same work behind a call into libc
/// and its checks of the mutex's kind. A thread that finds the lock held spins a
/// little first, since heap calls are short, then sleeps: on a 2-core machine shared
/// with other work, spinning on would burn the time slice the holder needs. Nothing
/// here allocates (`parking_lot` would: its table of parked threads grows with them).
static LOCK: AtomicU32 = AtomicU32::new(FREE);

const FREE: u32 = 0;
const HELD: u32 = 1;
const CONTENDED: u32 = 2;

/// Attempts to take a held lock before sleeping on it.
const SPINS: u32 = 100;

#[inline]
fn lock_process() {
    if LOCK
        .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        lock_contended();
    }
}

#[cold]
fn lock_contended() {
    for _ in 0..SPINS {
        core::hint::spin_loop();
        if LOCK.load(Ordering::Relaxed) == FREE
            && LOCK
                .compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return;
        }
    }
    // From here on the lock is marked CONTENDED whenever this thread takes it, since
    // it cannot know whether others still sleep: at worst one needless wake.
    while LOCK.swap(CONTENDED, Ordering::Acquire) != FREE {
        atomic_wait::wait(&LOCK, CONTENDED);
    }
}

/// # Safety
/// The calling thread holds the process lock.
unsafe fn unlock_process() {
    if LOCK.swap(FREE, Ordering::Release) == CONTENDED {
        atomic_wait::wake_one(&LOCK);
    }
}

/// `rawheap::Locked`'s lock type for this process: every `Locked` using it shares
/// the one static lock word. Only one exists, the heap.
pub struct ProcessLock;

// SAFETY: `lock` returns only once this thread changed the word from FREE (acquire),
// `unlock` sets it FREE (release): one holder at a time, and each holder sees the
// previous one's writes. A guard is never sent to another thread (`GuardNoSend`).
unsafe impl lock_api::RawMutex for ProcessLock {
    const INIT: Self = ProcessLock;
    type Guard = lock_api::GuardNoSend;

    fn lock(&self) -> Self::Guard {
        lock_process();
        lock_api::GuardNoSend::new()
    }

    fn try_lock(&self) -> Option<Self::Guard> {
        LOCK.compare_exchange(FREE, HELD, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| lock_api::GuardNoSend::new())
    }

    unsafe fn unlock(&self, _guard: Self::Guard) {
        // SAFETY: the guard proves this thread locked it.
        unsafe { unlock_process() }
    }

    fn is_locked(&self) -> bool {
        LOCK.load(Ordering::Relaxed) != FREE
    }
}

/// `fork` copies one thread: the lock is taken before it, so the child never inherits
/// a heap half-way through a call by a thread that does not exist there.
extern "C" fn before_fork() {
    lock_process();
}

extern "C" fn after_fork_in_parent() {
    // SAFETY: `before_fork` took the lock in this thread.
    unsafe { unlock_process() };
}

/// The child has one thread, this one, which holds the lock: nobody sleeps on it, so
/// it is simply freed. The caches of the threads the child lacks are written off.
extern "C" fn after_fork_in_child() {
    // SAFETY: the lock is held by this thread (`before_fork`).
    let depot = unsafe { depot() }.blocks();
    crate::cache::after_fork_in_child(depot);
    LOCK.store(FREE, Ordering::Release);
}

/// Runs `f` with the process lock held, for state that the heap's calls touch under it
/// (the trace recorder's). Not to be called from inside a heap call: the lock is not
/// recursive.
pub fn with_process_lock<R>(f: impl FnOnce() -> R) -> R {
    lock_process();
    let result = f();
    // SAFETY: locked above by this thread.
    unsafe { unlock_process() };
    result
}
// ANCHOR_END: lock

/// Full batches of free blocks between the threads' caches and the heap (see
/// [`thread_cache::Depot`]), guarded by the process lock like the heap.
struct DepotCell(UnsafeCell<Depot>);

// SAFETY: the depot is reached only through `depot()`, whose callers hold the one
// process lock, which orders their accesses.
unsafe impl Sync for DepotCell {}

static DEPOT: DepotCell = DepotCell(UnsafeCell::new(Depot::EMPTY));

/// The depot.
///
/// # Safety
/// The caller holds the process lock for as long as it uses the reference (there is
/// one lock and one heap per process, so that excludes every other use).
unsafe fn depot() -> &'static mut Depot {
    // SAFETY: the caller's promise.
    unsafe { &mut *DEPOT.0.get() }
}

/// What the C functions ask of the heap, whatever its type.
pub trait Heap: Sync {
    /// A block, zeroed when asked; `None` when the heap refuses.
    fn allocate(&self, layout: Layout, zeroed: bool) -> Option<NonNull<u8>>;
    /// # Safety
    /// `base` is live in this heap with `layout`.
    unsafe fn deallocate(&self, base: NonNull<u8>, layout: Layout);
    /// # Safety
    /// `base` is live in this heap with `old`.
    unsafe fn reallocate(&self, base: NonNull<u8>, old: Layout, new: Layout)
    -> Option<NonNull<u8>>;
    /// # Safety
    /// `base` is live in this heap with `layout`.
    unsafe fn usable_size(&self, base: NonNull<u8>, layout: Layout) -> usize;
    /// The heap's stats, walked under the lock.
    fn stats(&self) -> Stats;
    /// Fills `rack`'s magazine of `class` with a batch of blocks under one lock, from
    /// the depot if it has one, else from the heap; returns how many came from the
    /// heap (the depot's were counted as cached already).
    fn refill(&self, rack: &mut Rack, class: usize) -> usize;
    /// Makes room in `rack`'s full magazine of `class` under one lock: a batch goes to
    /// the depot, or, when the depot has enough, back to the heap; returns how many
    /// went back to the heap.
    ///
    /// # Safety
    /// Every block in `rack` is a block of this heap.
    unsafe fn flush(&self, rack: &mut Rack, class: usize) -> usize;
    /// Returns every block of `rack` under one lock; returns how many went back.
    ///
    /// # Safety
    /// As for [`flush`](Self::flush).
    unsafe fn flush_all(&self, rack: &mut Rack) -> usize;
}

// The `record` hooks run inside `with`, where the process lock is held: the trace
// sees the calls of every thread in the order the lock did.
impl<H: RawHeap + Send> Heap for Locked<H, ProcessLock> {
    fn allocate(&self, layout: Layout, zeroed: bool) -> Option<NonNull<u8>> {
        let block = self.with(|heap| {
            let block = if zeroed {
                heap.allocate_zeroed(layout)
            } else {
                heap.allocate(layout)
            };
            if let Ok(base) = block {
                // SAFETY: inside `with`: the process lock is held.
                unsafe { record::allocated(base, layout) };
            }
            block
        });
        block?.ok()
    }

    unsafe fn deallocate(&self, base: NonNull<u8>, layout: Layout) {
        self.with(|heap| {
            // SAFETY: forwarded caller promise; then, inside `with`, the lock is held.
            unsafe {
                heap.deallocate(base, layout);
                record::freed(base, layout);
            }
        });
    }

    unsafe fn reallocate(
        &self,
        base: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        self.with(|heap| {
            // SAFETY: forwarded caller promise.
            let moved = unsafe { heap.reallocate(base, old, new) };
            if let Ok(moved) = moved {
                // SAFETY: inside `with`: the process lock is held.
                unsafe { record::resized(base, old, moved, new) };
            }
            moved
        })?
        .ok()
    }

    unsafe fn usable_size(&self, base: NonNull<u8>, layout: Layout) -> usize {
        // SAFETY: forwarded caller promise.
        self.with(|heap| unsafe { heap.usable_size(base, layout) })
            .unwrap_or(0)
    }

    fn stats(&self) -> Stats {
        Locked::stats(self).unwrap_or_default()
    }

    fn refill(&self, rack: &mut Rack, class: usize) -> usize {
        self.with(|heap| {
            // SAFETY: the lock is held (inside `with`); one process heap.
            let depot = unsafe { depot() };
            // SAFETY: the lock guards the depot; its blocks and the rack's are the heap's.
            match unsafe { rack.refill_from_depot(depot, class) } {
                0 => rack.refill(heap, class).unwrap_or(0),
                _ => 0,
            }
        })
        .unwrap_or(0)
    }

    unsafe fn flush(&self, rack: &mut Rack, class: usize) -> usize {
        self.with(|heap| {
            // SAFETY: the lock is held (inside `with`); one process heap.
            let depot = unsafe { depot() };
            // SAFETY: as in `refill`.
            if unsafe { rack.flush_to_depot(depot, class) } {
                0
            } else {
                // SAFETY: forwarded caller promise.
                unsafe { rack.flush(heap, class, ROUNDS - BATCH) }
            }
        })
        .unwrap_or(0)
    }

    unsafe fn flush_all(&self, rack: &mut Rack) -> usize {
        // SAFETY: forwarded caller promise.
        self.with(|heap| unsafe { rack.flush_all(heap) })
            .unwrap_or(0)
    }
}

/// The heap once built, with what the exit report names.
#[derive(Clone, Copy)]
pub struct Process {
    /// The heap, living at the start of its own mapping.
    pub heap: &'static dyn Heap,
    /// Its registry name.
    pub name: &'static str,
    /// Address range of the heap's region: pointers outside it are not ours.
    pub start: usize,
    /// One past the region's last byte.
    pub end: usize,
}

impl Process {
    /// Bytes from the region's start to `ptr` when `ptr` lies in the region past the
    /// smallest header; `None` for a pointer this heap never handed out.
    pub fn room_before(&self, ptr: NonNull<u8>) -> Option<usize> {
        let addr = ptr.as_ptr().addr();
        (addr >= self.start + crate::block::MIN_ALIGN && addr < self.end).then(|| addr - self.start)
    }
}

const UNBUILT: u8 = 0;
const READY: u8 = 1;

/// [`UNBUILT`] until [`PROCESS`] is written, then [`READY`] (release/acquire).
static STATE: AtomicU8 = AtomicU8::new(UNBUILT);

struct Slot(UnsafeCell<Option<Process>>);

// SAFETY: written once, under the lock, before `STATE` is set to READY with release
// ordering; read only after an acquire load sees READY.
unsafe impl Sync for Slot {}

static PROCESS: Slot = Slot(UnsafeCell::new(None));

/// Address space of the mapping, kept for the exit report.
pub static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// The process's heap, built on the first call.
#[inline]
pub fn get() -> Option<Process> {
    if STATE.load(Ordering::Acquire) != READY {
        build_once();
    }
    // SAFETY: READY was seen (here or inside `build_once`), so the slot is written and
    // never written again.
    unsafe { *PROCESS.0.get() }
}

/// The heap if it has been built; `None` before the first allocation.
#[inline]
pub fn built() -> Option<Process> {
    if STATE.load(Ordering::Acquire) == READY {
        // SAFETY: as in `get`.
        unsafe { *PROCESS.0.get() }
    } else {
        None
    }
}

// ANCHOR: build
/// Builds the heap under the lock (one thread wins), then registers the fork handlers
/// and the exit report outside it: `pthread_atfork` and `atexit` may call `malloc`.
#[cold]
#[inline(never)]
fn build_once() {
    lock_process();
    let first = STATE.load(Ordering::Relaxed) == UNBUILT;
    if first {
        crate::report::COUNTS.switch_on(env::get(env::STATS) == Some(b"1"));
        crate::block::round_to_classes(env::get(env::TRACE).is_none());
        let process = build();
        // SAFETY: the lock is held and STATE is UNBUILT: no reader touches the slot.
        unsafe { *PROCESS.0.get() = Some(process) };
        // SAFETY: the lock is held; recording starts before any block is handed out.
        unsafe { record::start() };
        STATE.store(READY, Ordering::Release);
    }
    // SAFETY: locked above by this thread.
    unsafe { unlock_process() };
    if first {
        // SAFETY: the handlers are plain functions that live as long as the process.
        unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
        if env::get(env::TRACE).is_none() {
            crate::cache::enable();
        }
        if crate::report::COUNTS.on() {
            // SAFETY: as above.
            unsafe { libc::atexit(crate::report::at_exit) };
        }
        record::register();
    }
}

/// Reads the settings, maps the region and places the chosen heap at its start. Bad
/// settings end the process with a message naming them: running a program on another
/// allocator than the one asked for would make every measurement a lie.
fn build() -> Process {
    let name = env::get(env::ALLOCATOR).unwrap_or(env::DEFAULT_ALLOCATOR.as_bytes());
    let size = match env::get(env::REGION) {
        None => env::DEFAULT_REGION,
        Some(text) => env::parse_size(text).unwrap_or_else(|| {
            refuse(format_args!(
                "HEAPLAB_REGION={} is not a size (bytes, or a number with K, M or G)",
                Lossy(text)
            ))
        }),
    };
    let mapping = map(size)
        .unwrap_or_else(|| refuse(format_args!("mmap of HEAPLAB_REGION={size} bytes failed")));
    MAPPED.store(size, Ordering::Relaxed);
    let mut place = Place {
        name,
        mapping,
        built: None,
    };
    for_each_heap(&mut place);
    place.built.unwrap_or_else(|| {
        let mut known = Message::new();
        for_each_heap(&mut Names(&mut known));
        refuse(format_args!(
            "HEAPLAB_ALLOCATOR={} is not an allocator; known:{}",
            Lossy(name),
            known
        ))
    })
}
// ANCHOR_END: build

/// Anonymous memory of `size` bytes, zeroed, reserved but not committed.
pub(crate) fn map(size: usize) -> Option<NonNull<[u8]>> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing
    // touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(ptr.cast::<u8>()).map(|ptr| NonNull::slice_from_raw_parts(ptr, size))
}

/// Puts the heap named `name` at the start of `mapping`, over the rest of it.
struct Place {
    name: &'static [u8],
    mapping: NonNull<[u8]>,
    built: Option<Process>,
}

impl HeapVisitor for Place {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        if entry.name.as_bytes() != self.name {
            return;
        }
        type Shared<H> = Locked<H, ProcessLock>;
        // The heap object first, then its region from the next 64-byte boundary.
        let object = size_of::<Shared<H>>().next_multiple_of(64);
        let Some(region_len) = self.mapping.len().checked_sub(object) else {
            refuse(format_args!(
                "HEAPLAB_REGION is too small for {}",
                entry.name
            ))
        };
        let start = self.mapping.cast::<u8>();
        // SAFETY: `object <= mapping.len()`, so the region starts inside the mapping.
        let region_start = unsafe { start.add(object) };
        let region = NonNull::slice_from_raw_parts(region_start, region_len);
        let slot = start.cast::<Shared<H>>();
        // SAFETY: the mapping is page-aligned (enough for any heap object), fresh and
        // never unmapped; the object and the region do not overlap, and the region is
        // used by nothing but this heap for the rest of the process.
        let heap: &'static Shared<H> = unsafe {
            slot.write(Locked::new(H::new(region)));
            slot.as_ref()
        };
        let start = region_start.as_ptr().addr();
        self.built = Some(Process {
            heap,
            name: entry.name,
            start,
            end: start + region_len,
        });
    }
}

/// Collects the registry's names into a message.
struct Names<'m>(&'m mut Message);

impl HeapVisitor for Names<'_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        let _ = write!(self.0, " {}", entry.name);
    }
}

/// Bytes shown as text, any invalid UTF-8 as `?`.
pub(crate) struct Lossy<'a>(pub(crate) &'a [u8]);

impl core::fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0
            .iter()
            .try_for_each(|&b| f.write_char(if b.is_ascii() { b as char } else { '?' }))
    }
}

/// Ends the process with a message: the library cannot run it as asked.
fn refuse(why: core::fmt::Arguments<'_>) -> ! {
    say!("heaplab malloc: {why}\n");
    // SAFETY: `_exit` ends the process without running handlers that could allocate.
    unsafe { libc::_exit(127) }
}
