//! Thread caches: each thread keeps a [`Rack`] of magazines (`crates/thread-cache`) of
//! free blocks per size class in front of the shared heap, so that the common
//! `malloc`/`free` pair of a small block takes no lock.
//!
//! ```text
//!   thread A: LOCAL (thread-local storage)         thread B: LOCAL
//!   state ACTIVE, rack [class 1: p p p . .]         state FRESH (has not cached yet)
//!                      [class 2: p . . . .]
//!         │ refill / flush: a batch under one lock         │
//!         ▼                                                ▼
//!   ┌──────────────────── the process heap, behind its lock ───────────────────┐
//! ```
//!
//! ## Invariants and choices
//!
//! - The rack lives in thread-local storage declared with `thread_local!`, a `const`
//!   initialiser and a type without drop glue: Rust then emits a plain TLS variable
//!   with nothing registered at first use, so touching it never allocates. A library
//!   loaded at start-up (`LD_PRELOAD`) has its TLS in the static TLS block that glibc
//!   sets up with every thread, so `__tls_get_addr` does not allocate either.
//! - A thread's first cached call registers it under one pthread key, whose destructor
//!   flushes the rack when the thread ends. `pthread_key_create` and, for the first 32
//!   keys, `pthread_setspecific` do not allocate in glibc; in case they do, the thread
//!   is in state [`BYPASS`] while registering, and a `malloc` from inside goes to the
//!   heap.
//! - Once its rack is flushed at thread exit, a thread stays in [`BYPASS`]: later
//!   frees (by other destructors) go straight to the heap.
//! - A block freed by another thread than its allocator's lands in the freeing
//!   thread's rack; a full magazine leaves a batch in the depot (or, when the depot
//!   has `DEPOT_BATCHES` of the class, returns it to the heap), where an empty
//!   magazine of any thread takes it whole. A producer/consumer pair costs a lock
//!   round-trip per `BATCH` blocks on each side and no heap call, and memory does not
//!   drift: a rack holds at most `ROUNDS` blocks per class, the depot a few batches.
//! - `fork` copies the calling thread only: its rack stays valid in the child (its
//!   blocks are live in the child's copy of the heap); the racks of the other threads
//!   are unreachable there, and their blocks are counted as stranded.
//! - With `HEAPLAB_TRACE` set, or without a pthread key, caching is never enabled and
//!   every call reaches the locked heap, in the order the lock sees them.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicU32};

use thread_cache::Rack;

use crate::heap::{self, Heap};
use crate::report::COUNTS;

/// A thread that has not used its rack yet (registers on first use).
const FRESH: u8 = 0;
/// A registered thread serving small blocks from its rack.
const ACTIVE: u8 = 1;
/// A thread whose calls go straight to the heap: registering, or ended.
const BYPASS: u8 = 2;

/// One thread's cache.
struct Local {
    /// Blocks of the process heap only, each free and used by nobody but the rack.
    rack: Rack,
    /// [`FRESH`], [`ACTIVE`] or [`BYPASS`]; the rack is used only when ACTIVE.
    state: u8,
}

thread_local! {
    static LOCAL: UnsafeCell<Local> = const {
        UnsafeCell::new(Local { rack: Rack::EMPTY, state: FRESH })
    };
}

/// Whether threads cache: set once the pthread key exists, unless tracing.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The pthread key whose destructor flushes a thread's rack; written before
/// [`ENABLED`] is set, read only after.
static KEY: AtomicU32 = AtomicU32::new(0);

/// Creates the key and turns the caches on; without a key they stay off, since racks
/// would never be flushed. Called once, after the heap is built.
pub fn enable() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid place for the new key; the destructor is a plain
    // function that lives as long as the process.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_ends)) } == 0 {
        KEY.store(key, Relaxed);
        // Release: a thread that sees ENABLED (acquire) sees KEY.
        ENABLED.store(true, Release);
    }
}

/// This thread's rack, if caching is on and the thread uses its rack (registering it
/// on its first call). A raw pointer: the caller makes a `&mut` of it only for the
/// duration of a rack operation, during which nothing re-enters `malloc`.
#[inline]
fn rack() -> Option<*mut Rack> {
    let local = LOCAL.with(UnsafeCell::get);
    // SAFETY: `local` is this thread's own variable, which only this thread touches,
    // and no reference to it is alive (see above).
    match unsafe { (*local).state } {
        ACTIVE => {}
        FRESH if register(local) => {}
        _ => return None,
    }
    // SAFETY: a field of the live variable; no reference is made here.
    Some(unsafe { &raw mut (*local).rack })
}

/// Registers this thread for its exit flush; `false` while caching is off, or for good
/// (the thread stays in BYPASS) if the key would not take it.
#[cold]
fn register(local: *mut Local) -> bool {
    if !ENABLED.load(Acquire) {
        return false;
    }
    // SAFETY: this thread's own variable (see `rack`); a `malloc` made by
    // `pthread_setspecific` sees BYPASS and does not touch the rack.
    unsafe { (*local).state = BYPASS };
    // Any non-null value: the destructor runs only for threads that set one.
    let marker = NonNull::<c_void>::dangling().as_ptr();
    // SAFETY: the key was created before ENABLED was set.
    let set = unsafe { libc::pthread_setspecific(KEY.load(Relaxed), marker) } == 0;
    if set {
        // SAFETY: as above.
        unsafe { (*local).state = ACTIVE };
    }
    set
}

// ANCHOR: cache
/// A block of class `class` from this thread's rack, refilled with a batch under one
/// lock when empty; `None` when the thread does not cache or the heap has no block.
#[inline]
pub fn allocate(heap: &dyn Heap, class: usize) -> Option<NonNull<u8>> {
    // SAFETY: this thread's rack, borrowed for this call only (see `rack`).
    let rack = unsafe { &mut *rack()? };
    let block = match rack.take(class) {
        Some(block) => block,
        None => refill(heap, rack, class)?,
    };
    COUNTS.cached_fewer(1);
    Some(block)
}

#[cold]
fn refill(heap: &dyn Heap, rack: &mut Rack, class: usize) -> Option<NonNull<u8>> {
    COUNTS.cached_more(heap.refill(rack, class));
    rack.take(class)
}

/// Keeps a freed block of class `class` in this thread's rack, first returning a batch
/// to the heap under one lock when the magazine is full; `false` when the thread does
/// not cache (then the caller frees it to the heap).
///
/// # Safety
///
/// `block` is a live block of `heap` (the process heap) with layout
/// `class_layout(class)`, and the program no longer uses it.
#[inline]
pub unsafe fn deallocate(heap: &dyn Heap, class: usize, block: NonNull<u8>) -> bool {
    let Some(rack) = rack() else { return false };
    // SAFETY: this thread's rack, borrowed for this call only (see `rack`).
    let rack = unsafe { &mut *rack };
    // SAFETY: the caller's promise.
    if let Err(block) = unsafe { rack.give(class, block) } {
        // SAFETY: the caller's promise.
        unsafe { flush_and_give(heap, rack, class, block) };
    }
    COUNTS.cached_more(1);
    true
}

/// # Safety
/// As for [`deallocate`].
#[cold]
unsafe fn flush_and_give(heap: &dyn Heap, rack: &mut Rack, class: usize, block: NonNull<u8>) {
    // SAFETY: every rack holds blocks of the one process heap.
    COUNTS.cached_fewer(unsafe { heap.flush(rack, class) });
    // SAFETY: the caller's promise; the flush made room.
    let given = unsafe { rack.give(class, block) };
    debug_assert!(given.is_ok(), "a flushed magazine has room");
}
// ANCHOR_END: cache

/// The pthread key's destructor: the thread is ending; its rack goes back to the heap
/// and its later calls (from other destructors) bypass the rack.
extern "C" fn thread_ends(_marker: *mut c_void) {
    LOCAL.with(|cell| {
        let local = cell.get();
        // SAFETY: this thread's own variable, no reference to it alive (see
        // `rack`); a destructor does not run inside a malloc call.
        unsafe { (*local).state = BYPASS };
        if let Some(process) = heap::built() {
            // SAFETY: as above; the rack holds blocks of the process heap only.
            let returned = unsafe { process.heap.flush_all(&mut (*local).rack) };
            COUNTS.cached_fewer(returned);
        }
    });
}

/// In the child of `fork`, with the heap's lock held: only this thread's rack and the
/// depot (`depot` blocks) are reachable; the other threads' cached blocks are counted
/// as stranded.
pub fn after_fork_in_child(depot: usize) {
    let mine = LOCAL.with(|cell| {
        // SAFETY: this thread's own variable; a fork handler does not run inside a
        // malloc call, so no reference to it is alive.
        let local = unsafe { &*cell.get() };
        if local.state == ACTIVE {
            local.rack.cached()
        } else {
            0
        }
    });
    COUNTS.strand_all_but(mine + depot);
}
