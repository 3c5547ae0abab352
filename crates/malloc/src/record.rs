//! Recording the program's allocations as a malloc-lab `.rep` trace, so that any
//! allocator can be replayed on exactly what a real program asked for
//! (`cargo xtask replay`):
//!
//! ```text
//! LD_PRELOAD=target/release/libheaplab_malloc.so HEAPLAB_TRACE=python.rep python3 -c '...'
//! ```
//!
//! `cargo xtask record -- PROGRAM ARGS` does the same and checks the result.
//!
//! ## What is recorded, and how
//!
//! - **Under the heap's lock.** The hooks [`allocated`], [`freed`] and [`resized`] are
//!   called by [`crate::heap`] inside the locked section of each heap call, so the ops
//!   of all threads are written in the order the lock saw them: one trace per process,
//!   and a block is never freed in the trace before it is allocated.
//! - **Ids without allocating.** Each allocation gets the next id (ids are never
//!   reused, as in the generated traces). A side table maps a live block's address to
//!   its id; it lives in its own anonymous mapping (open addressing, linear probing,
//!   doubled by a fresh mapping at half full), so recording never calls `malloc`.
//!   `realloc` keeps the id when the block moves.
//! - **Ops into a fixed buffer.** Each op is formatted into a static 64 KiB buffer,
//!   written out with `write(2)` when it fills: nothing is allocated.
//! - **The header at exit.** The header's four numbers (suggested heap size, ids, ops,
//!   weight) are known only at the end, so the file starts with room for them: four
//!   lines of [`HEADER_LINE`] bytes holding `recording`, the pid and two zeros
//!   (`placeholder`), which no parser takes for a finished trace. At exit ([`finish`],
//!   an `atexit` handler) the buffer is flushed and the four numbers, padded on the left
//!   with spaces that every `.rep` reader skips, are written over the room with `pwrite`:
//!   no second pass over the ops, no temporary file. The suggested heap size is the
//!   bound `cargo xtask replay` would compute ([`region::bound`] of the peak footprint),
//!   so it is trusted.
//! - **What is left out.** `free(NULL)` (it does nothing) and refused requests (no
//!   block). A `calloc` or an aligned allocation is an `a`: the format has no field for
//!   zeroing or alignment. Blocks still live at exit stay live in the trace.
//!
//! ## Processes
//!
//! - The first process to create the file records into it (`O_EXCL`). A process that
//!   finds it already there, such as a program started by the recorded one (`exec`
//!   keeps `HEAPLAB_TRACE` in the environment), records into `FILE.PID` instead: one
//!   trace per program, none overwritten.
//! - A process that replaces itself with `exec` runs no exit handler. When the new
//!   program finds the file still holding its own pid's `placeholder`, it records
//!   into it from the start: a launcher script (a pyenv shim, `sh -c 'exec prog'`)
//!   leaves the trace of the program it launched, not an empty file.
//! - A child of `fork` that does not `exec` records nothing: its heap starts with the
//!   parent's live blocks, whose history its trace could only repeat. The fork handler
//!   drops the copy of the recorder it inherited, so it never writes into the parent's
//!   file; if it `exec`s, the new program records into `FILE.PID` as above.
//! - A process that ends without running `atexit` handlers (`_exit`, a signal) leaves
//!   its ops up to the last full buffer under the placeholder, which a parser refuses:
//!   an unfinished trace is not mistaken for a whole one.

use core::alloc::Layout;
use core::cell::UnsafeCell;
use core::ffi::{CStr, c_int};
use core::ptr::NonNull;

use heaplab::trace::region;
use heaplab::trace::replay::DEFAULT_ALIGN;

use crate::block::Request;
use crate::env;
use crate::heap;

/// The width of each of the header's four lines, newline included: 20 characters hold
/// any `u64`.
pub const HEADER_LINE: usize = 21;
/// The room reserved for the header at the file's start.
const HEADER: usize = 4 * HEADER_LINE;
/// Bytes of ops buffered before a `write(2)`.
const BUFFER: usize = 64 << 10;
/// The longest op line: a letter, two 20-digit numbers, two spaces and a newline.
const LONGEST_OP: usize = 1 + 2 * 21 + 1;

/// The recorder's state. Every field is read and written only with the process lock
/// held (by the hooks, which run inside the heap's locked section, and by [`start`],
/// [`finish`] and `in_forked_child`, which take it).
struct Recorder {
    /// The trace file, or -1 when not recording.
    fd: c_int,
    /// The id the next allocation gets; also the trace's number of ids.
    next_id: usize,
    /// Ops recorded.
    ops: usize,
    /// Frees and reallocs of blocks the id table did not know: none, unless it could not
    /// grow (no address space); reported at exit, since the trace then misses ops.
    unknown: usize,
    /// Sum of the live blocks' [`region::block_footprint`]s, and its peak.
    footprint: usize,
    peak_footprint: usize,
    /// Live block address → id.
    ids: IdTable,
    /// Formatted ops not yet written; `len` bytes of it are.
    buffer: [u8; BUFFER],
    len: usize,
}

struct Shared(UnsafeCell<Recorder>);

// SAFETY: the recorder is only touched with the process lock held (see `Recorder`).
unsafe impl Sync for Shared {}

static RECORDER: Shared = Shared(UnsafeCell::new(Recorder {
    fd: -1,
    next_id: 0,
    ops: 0,
    unknown: 0,
    footprint: 0,
    peak_footprint: 0,
    ids: IdTable::EMPTY,
    buffer: [0; BUFFER],
    len: 0,
}));

/// The recorder.
///
/// # Safety
///
/// The caller holds the process lock, and drops the reference before releasing it.
unsafe fn recorder() -> &'static mut Recorder {
    // SAFETY: the lock excludes every other reference (the caller's promise).
    unsafe { &mut *RECORDER.0.get() }
}

/// Opens the trace file when `HEAPLAB_TRACE` names one. Called once, while the heap is
/// built, with the process lock held, so that no op of any thread is missed.
///
/// # Safety
///
/// The caller holds the process lock.
pub unsafe fn start() {
    let Some(path) = env::get_c(env::TRACE) else {
        return;
    };
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() }.unsigned_abs() as usize;
    let Some(fd) = create(path, pid) else {
        crate::say::say!(
            "heaplab malloc: HEAPLAB_TRACE={}: cannot create it (nor a FILE.PID beside it); not recording\n",
            heap::Lossy(path.to_bytes())
        );
        return;
    };
    if !write_all(fd, &placeholder(pid)) {
        // SAFETY: `fd` was just opened here.
        unsafe { libc::close(fd) };
        return;
    }
    // SAFETY: the caller holds the lock.
    unsafe { recorder() }.fd = fd;
}

/// The header of a trace being recorded by process `pid`: `recording` where the
/// suggested heap size goes (so that no parser takes the file for a finished trace),
/// then the pid, then two zeros.
fn placeholder(pid: usize) -> [u8; HEADER] {
    let pid = Digits::new(pid);
    header_lines([b"recording", pid.as_bytes(), b"0", b"0"])
}

/// The header with the four values, each right-aligned on its [`HEADER_LINE`].
fn header(values: [usize; 4]) -> [u8; HEADER] {
    let digits = values.map(Digits::new);
    header_lines([0, 1, 2, 3].map(|i| digits[i].as_bytes()))
}

fn header_lines(fields: [&[u8]; 4]) -> [u8; HEADER] {
    let mut header = [b' '; HEADER];
    for (line, field) in header.chunks_exact_mut(HEADER_LINE).zip(fields) {
        line[HEADER_LINE - 1 - field.len()..HEADER_LINE - 1].copy_from_slice(field);
        line[HEADER_LINE - 1] = b'\n';
    }
    header
}

/// Registers [`finish`] at exit and `in_forked_child` for `fork`, when recording.
/// Called once after the heap is built, without the lock: both registrations may call
/// `malloc`.
pub fn register() {
    // SAFETY: read under the lock.
    let recording = heap::with_process_lock(|| unsafe { recorder() }.fd >= 0);
    if recording {
        // SAFETY: plain functions that live as long as the process.
        unsafe {
            libc::atexit(finish);
            libc::pthread_atfork(None, None, Some(in_forked_child));
        }
    }
}

/// The file to record into, opened for writing at its start: `path` if this process
/// creates it, or if an earlier image of this process (before an `exec`) did and left it
/// unfinished; else `path.PID`. `None` when none of them can be opened.
fn create(path: &CStr, pid: usize) -> Option<c_int> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_EXCL, 0o644) };
    if fd >= 0 {
        return Some(fd);
    }
    if let Some(fd) = take_over(path, pid) {
        return Some(fd);
    }
    let mut name = [0u8; 4096];
    let bytes = path.to_bytes();
    let digits = Digits::new(pid);
    let suffix = digits.as_bytes();
    // The name, a dot, the pid, a NUL.
    if bytes.len() + 1 + suffix.len() + 1 > name.len() {
        return None;
    }
    name[..bytes.len()].copy_from_slice(bytes);
    name[bytes.len()] = b'.';
    name[bytes.len() + 1..][..suffix.len()].copy_from_slice(suffix);
    // SAFETY: `name` is NUL-terminated: its bytes past the suffix are still 0.
    let fd = unsafe { libc::open(name.as_ptr().cast(), flags | libc::O_TRUNC, 0o644) };
    (fd >= 0).then_some(fd)
}

/// `path`, emptied, when its header is this process's `placeholder`: an earlier
/// image of the process started recording into it, then replaced itself with `exec`
/// (a launcher script running the real program), which runs no exit handler. The
/// program that runs now is the one to record.
fn take_over(path: &CStr, pid: usize) -> Option<c_int> {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut found = [0u8; HEADER];
    // SAFETY: `found` is writable for its length; `fd` is open.
    let read = unsafe { libc::pread(fd, found.as_mut_ptr().cast(), HEADER, 0) };
    if read == HEADER as isize && found == placeholder(pid) {
        // SAFETY: truncating a file opened for writing.
        if unsafe { libc::ftruncate(fd, 0) } == 0 {
            return Some(fd);
        }
    }
    // SAFETY: opened above, not kept.
    unsafe { libc::close(fd) };
    None
}

/// A block of `heap_layout` was allocated at `base`: `a ID SIZE`.
///
/// # Safety
///
/// The caller holds the process lock.
pub unsafe fn allocated(base: NonNull<u8>, heap_layout: Layout) {
    // SAFETY: the caller holds the lock.
    let r = unsafe { recorder() };
    if r.fd < 0 {
        return;
    }
    let id = r.new_block(base, heap_layout);
    r.op(b'a', id, Some(Request::program_size(heap_layout)));
}

/// The block at `base`, of `heap_layout`, was freed: `f ID`. A block the recorder does
/// not know (none, since recording starts with the heap, unless the id table could not
/// grow) is left out and counted in `Recorder::unknown`.
///
/// # Safety
///
/// The caller holds the process lock.
pub unsafe fn freed(base: NonNull<u8>, heap_layout: Layout) {
    // SAFETY: the caller holds the lock.
    let r = unsafe { recorder() };
    if r.fd < 0 {
        return;
    }
    match r.ids.remove(base.as_ptr().addr()) {
        Some(id) => {
            r.footprint -= footprint(heap_layout);
            r.op(b'f', id, None);
        }
        None => r.unknown += 1,
    }
}

/// The block at `old` (of `old_layout`) is now at `new` with `new_layout`: `r ID SIZE`,
/// with the same id wherever the block went.
///
/// # Safety
///
/// The caller holds the process lock.
pub unsafe fn resized(old: NonNull<u8>, old_layout: Layout, new: NonNull<u8>, new_layout: Layout) {
    // SAFETY: the caller holds the lock.
    let r = unsafe { recorder() };
    if r.fd < 0 {
        return;
    }
    let size = Request::program_size(new_layout);
    let Some(id) = r.ids.remove(old.as_ptr().addr()) else {
        // Unknown (see `freed`): a new block, as realloc(NULL, n) would be.
        r.unknown += 1;
        let id = r.new_block(new, new_layout);
        r.op(b'a', id, Some(size));
        return;
    };
    r.ids.insert(new.as_ptr().addr(), id);
    r.footprint -= footprint(old_layout);
    r.grew(new_layout);
    r.op(b'r', id, Some(size));
}

/// What a block of `heap_layout` counts for in the suggested heap size: the program's
/// request counted as `cargo xtask replay` counts it.
fn footprint(heap_layout: Layout) -> usize {
    region::block_footprint(Request::program_size(heap_layout), DEFAULT_ALIGN)
}

impl Recorder {
    fn new_block(&mut self, base: NonNull<u8>, heap_layout: Layout) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(base.as_ptr().addr(), id);
        self.grew(heap_layout);
        id
    }

    fn grew(&mut self, heap_layout: Layout) {
        self.footprint += footprint(heap_layout);
        self.peak_footprint = self.peak_footprint.max(self.footprint);
    }

    /// Appends `LETTER ID [SIZE]\n`, writing the buffer out first if it may not fit.
    fn op(&mut self, letter: u8, id: usize, size: Option<usize>) {
        if self.len + LONGEST_OP > BUFFER {
            self.flush();
        }
        self.push(&[letter, b' ']);
        self.push(Digits::new(id).as_bytes());
        if let Some(size) = size {
            self.push(b" ");
            self.push(Digits::new(size).as_bytes());
        }
        self.push(b"\n");
        self.ops += 1;
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buffer[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn flush(&mut self) {
        write_all(self.fd, &self.buffer[..self.len]);
        self.len = 0;
    }

    /// Stops recording and closes the file, without writing anything more.
    fn stop(&mut self) {
        // SAFETY: `fd` is this recorder's open file.
        unsafe { libc::close(self.fd) };
        self.fd = -1;
        self.len = 0;
    }
}

/// At exit: writes the buffered ops and the header, and stops recording; a later call
/// (or a free by a later `atexit` handler) records nothing more, so the header's op
/// count is the file's.
pub extern "C" fn finish() {
    heap::with_process_lock(|| {
        // SAFETY: the lock is held.
        let r = unsafe { recorder() };
        if r.fd < 0 {
            return;
        }
        r.flush();
        let header = header([
            region::bound(r.peak_footprint),
            r.next_id,
            r.ops,
            1, // weight
        ]);
        // SAFETY: `header` is readable for its length; `fd` is open for writing.
        let written = unsafe { libc::pwrite(r.fd, header.as_ptr().cast(), HEADER, 0) };
        if written != HEADER as isize {
            crate::say::say!("heaplab malloc: HEAPLAB_TRACE: the header could not be written\n");
        }
        if r.unknown > 0 {
            crate::say::say!(
                "heaplab malloc: HEAPLAB_TRACE: {} frees or reallocs of blocks without an id \
                 (the id table could not grow) are missing from the trace\n",
                r.unknown
            );
        }
        r.stop();
    });
}

/// `fork`'s child handler: the child records nothing (see the module documentation).
extern "C" fn in_forked_child() {
    heap::with_process_lock(|| {
        // SAFETY: the lock is held.
        let r = unsafe { recorder() };
        if r.fd >= 0 {
            r.stop();
        }
        // The copied table maps the parent's blocks; the child's ops are not recorded.
        r.ids.release();
    });
}

/// `write(2)` until every byte is out; `false` on an error other than `EINTR`.
fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is readable for its length.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(written) {
            Ok(n) => bytes = &bytes[n..],
            // SAFETY: reads this thread's errno.
            Err(_) if unsafe { *libc::__errno_location() } == libc::EINTR => {}
            Err(_) => return false,
        }
    }
    true
}

/// A number's decimal digits, formatted on the stack.
struct Digits {
    bytes: [u8; 20],
    start: usize,
}

impl Digits {
    fn new(mut n: usize) -> Self {
        let mut digits = Digits {
            bytes: [0; 20],
            start: 20,
        };
        loop {
            digits.start -= 1;
            digits.bytes[digits.start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return digits;
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

/// Live block address → id, in an anonymous mapping of its own: open addressing with
/// linear probing, at most half full, deletion by shifting back (no tombstones).
struct IdTable {
    /// `capacity` slots of `(address, id)`; address 0 is an empty slot. Dangling (and
    /// `capacity` 0) until the first insert.
    slots: NonNull<(usize, usize)>,
    /// A power of two, or 0.
    capacity: usize,
    /// Occupied slots: at most `capacity / 2`.
    len: usize,
}

impl IdTable {
    const EMPTY: IdTable = IdTable {
        slots: NonNull::dangling(),
        capacity: 0,
        len: 0,
    };
    /// Slots of the first mapping (64 KiB): small, so that a recorded program of any
    /// size makes the table grow, and the growing is tested by every recording.
    const FIRST_CAPACITY: usize = 1 << 12;

    fn home(&self, address: usize) -> usize {
        // Fibonacci hashing of the address without its always-zero low bits.
        (address >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15) & (self.capacity - 1)
    }

    fn slot(&mut self, index: usize) -> &mut (usize, usize) {
        // SAFETY: `index < capacity`, and the mapping holds `capacity` slots.
        unsafe { &mut *self.slots.as_ptr().add(index) }
    }

    fn insert(&mut self, address: usize, id: usize) {
        if (self.len + 1) * 2 > self.capacity && !self.grow() {
            // No memory for a larger table: the block's ops will not be recorded.
            return;
        }
        let mut index = self.home(address);
        while self.slot(index).0 != 0 {
            index = (index + 1) & (self.capacity - 1);
        }
        *self.slot(index) = (address, id);
        self.len += 1;
    }

    fn remove(&mut self, address: usize) -> Option<usize> {
        if self.capacity == 0 {
            return None;
        }
        let mask = self.capacity - 1;
        let mut index = self.home(address);
        loop {
            match *self.slot(index) {
                (0, _) => return None,
                (a, id) if a == address => {
                    self.shift_back(index);
                    self.len -= 1;
                    return Some(id);
                }
                _ => index = (index + 1) & mask,
            }
        }
    }

    /// Empties slot `hole`, moving back every later entry of its run that may be found
    /// from a home at or before the hole, so that probes never stop early.
    fn shift_back(&mut self, mut hole: usize) {
        let mask = self.capacity - 1;
        let mut next = (hole + 1) & mask;
        loop {
            let (address, id) = *self.slot(next);
            if address == 0 {
                break;
            }
            let home = self.home(address);
            // Distance from home to `next` and from home to the hole, along the probe.
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                *self.slot(hole) = (address, id);
                hole = next;
            }
            next = (next + 1) & mask;
        }
        *self.slot(hole) = (0, 0);
    }

    /// Doubles the table into a fresh mapping; `false` when none can be had.
    fn grow(&mut self) -> bool {
        let capacity = if self.capacity == 0 {
            Self::FIRST_CAPACITY
        } else {
            self.capacity * 2
        };
        let Some(slots) = map_slots(capacity) else {
            return false;
        };
        let old = core::mem::replace(
            self,
            IdTable {
                slots,
                capacity,
                len: 0,
            },
        );
        for index in 0..old.capacity {
            // SAFETY: `index < old.capacity`, within the old mapping.
            let (address, id) = unsafe { *old.slots.as_ptr().add(index) };
            if address != 0 {
                self.insert(address, id);
            }
        }
        let mut old = old;
        old.release();
        true
    }

    /// Unmaps the table, leaving it empty.
    fn release(&mut self) {
        if self.capacity != 0 {
            // SAFETY: `slots` is the start of a mapping of `capacity` slots made by
            // `map_slots`, used by nothing else once replaced or released.
            unsafe {
                libc::munmap(
                    self.slots.as_ptr().cast(),
                    self.capacity * size_of::<(usize, usize)>(),
                )
            };
        }
        *self = IdTable::EMPTY;
    }
}

/// Zeroed anonymous memory for `capacity` slots (zero is the empty slot), mapped as the
/// heap's region is.
fn map_slots(capacity: usize) -> Option<NonNull<(usize, usize)>> {
    let bytes = capacity.checked_mul(size_of::<(usize, usize)>())?;
    heap::map(bytes).map(NonNull::cast)
}
