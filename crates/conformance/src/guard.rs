//! Guard zones: the suite's regions sit between bytes that hold a pattern and are
//! checked after every operation, and, where the platform allows, pages that fault.
//!
//! ```text
//!   page     page + offset                                      page boundary
//!   ┌────────┬──────────────┬────────────────────────────────┬─────────────┬────────┐
//!   │ fault  │ pattern zone │ region (what the heap is given) │ pattern zone│ fault  │
//!   │ page   │ one page     │                                 │ 256 B to    │ page   │
//!   │        │ + offset     │                                 │ 4351 B      │        │
//!   └────────┴──────────────┴────────────────────────────────┴─────────────┴────────┘
//! ```
//!
//! A heap that writes a few bytes before or past its region (a footer at an end
//! rounded up, a header one block too early) writes into a pattern zone: the suite
//! finds the pattern changed after the operation, and reports it as a broken rule with
//! the address, the operation and the shortest sequence that does it, and the test
//! binary goes on. Before, such a write landed in the system allocator's bookkeeping
//! and killed the whole test binary later ("double free or corruption", SIGABRT) with
//! no rule named.
//!
//! A wild write further out lands in a page with no access (`mprotect`, on Unix) and
//! faults at once, where it happens: a segmentation fault is the honest end for a
//! write that could have hit anything, and the grader, which runs each rule in its own
//! process, reports it as such. Continuing after a fault (from a signal handler) would
//! run the rest of the suite on a process whose memory the heap may have corrupted.
//!
//! Under Miri there are no fault pages (Miri has no `mprotect`, and it reports an
//! access outside any allocation itself), and the pattern zones work as natively: the
//! whole layout is one allocation, so a write into a zone is no undefined behaviour
//! but a changed pattern.
//!
//! Cost: the zones are compared with the pattern after every operation, at most
//! 4096 + 7 + 4351 bytes with `memcmp`, less than the model's own check of the live
//! blocks' contents in any heap holding more than a few blocks.

use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

use rawheap::{AllocError, RawHeap};

/// What the pattern zones hold: a byte a heap is unlikely to write (the value MSVC's
/// debug heap uses for its "no man's land" too).
pub(crate) const GUARD_BYTE: u8 = 0xFD;

/// What fresh region memory holds before a heap gets it: not zero, so that
/// `allocate_zeroed` must really zero, and written, so that reading a block the heap
/// never initialised reads bytes that exist.
pub(crate) const FRESH_BYTE: u8 = 0xA5;

/// Regions start this many bytes past a page boundary (plus an offset); the unit of
/// the fault pages (a larger system page is used where there is one).
const PAGE: usize = 4096;

/// The least pattern zone after a region.
const MIN_TAIL: usize = 256;

/// Bytes of [`GUARD_BYTE`] to compare zones against a slice at a time.
static PATTERN: [u8; PAGE] = [GUARD_BYTE; PAGE];

/// A write outside the region found in a pattern zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Breach {
    /// The first changed byte's address.
    pub(crate) first: usize,
    /// One past the last changed byte's address (in the same zone).
    pub(crate) end: usize,
    /// What the first changed byte holds now.
    pub(crate) found: u8,
}

/// A region of `len` bytes `offset` bytes past a page, between pattern zones and (on
/// Unix, natively) fault pages.
pub(crate) struct GuardedRegion {
    /// The memory, owned here and unmapped when the region is dropped.
    _pages: Pages,
    region: NonNull<[u8]>,
    /// The pattern zone before the region: from the end of the first page.
    before: NonNull<[u8]>,
    /// The pattern zone after the region: up to the last page.
    after: NonNull<[u8]>,
}

impl GuardedRegion {
    /// Fresh memory: the region filled with [`FRESH_BYTE`], the zones with
    /// [`GUARD_BYTE`], the end pages made inaccessible where possible.
    pub(crate) fn new(len: usize, offset: usize) -> Result<Self, AllocError> {
        let page = page_size();
        let start = 2 * page + offset;
        let end = start.checked_add(len).ok_or(AllocError::Unsupported)?;
        let last_page = end
            .checked_add(MIN_TAIL)
            .and_then(|e| e.checked_next_multiple_of(page))
            .ok_or(AllocError::Unsupported)?;
        let pages = Pages::new(last_page + page, page)?;
        let at = |from: usize, to: usize| {
            // SAFETY: `from <= to <= last_page + page`, the mapping's length.
            NonNull::slice_from_raw_parts(unsafe { pages.base.add(from) }, to - from)
        };
        let (before, region, after) = (at(page, start), at(start, end), at(end, last_page));
        // SAFETY: all three lie in the mapping, which is readable and writable there
        // and not yet shared with anyone.
        unsafe {
            before.cast::<u8>().write_bytes(GUARD_BYTE, before.len());
            region.cast::<u8>().write_bytes(FRESH_BYTE, region.len());
            after.cast::<u8>().write_bytes(GUARD_BYTE, after.len());
        }
        pages.protect_ends();
        Ok(GuardedRegion {
            _pages: pages,
            region,
            before,
            after,
        })
    }

    /// The region: valid for reads and writes while `self` lives.
    pub(crate) fn region(&self) -> NonNull<[u8]> {
        self.region
    }

    /// The first stretch of changed bytes in the zones, the zone before the region
    /// first; `None` while both hold their pattern.
    pub(crate) fn breach(&self) -> Option<Breach> {
        [self.before, self.after].into_iter().find_map(changed)
    }
}

/// The first run of bytes in `zone` that differ from [`GUARD_BYTE`].
fn changed(zone: NonNull<[u8]>) -> Option<Breach> {
    // SAFETY: the zones lie in the guarded mapping, readable and initialised; nothing
    // writes them while this slice lives (the heap is not called meanwhile).
    let bytes = unsafe { zone.as_ref() };
    let base = zone.cast::<u8>().as_ptr().addr();
    let chunk_at = bytes
        .chunks(PAGE)
        .position(|chunk| chunk != &PATTERN[..chunk.len()])?;
    let from = chunk_at * PAGE;
    let first = from + bytes[from..].iter().position(|&b| b != GUARD_BYTE)?;
    let last = bytes.iter().rposition(|&b| b != GUARD_BYTE)?;
    Some(Breach {
        first: base + first,
        end: base + last + 1,
        found: bytes[first],
    })
}

/// The system's page size, at least [`PAGE`] (fault pages are whole system pages).
fn page_size() -> usize {
    #[cfg(all(unix, not(miri)))]
    {
        // SAFETY: `sysconf` only reads a configuration value.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size).unwrap_or(PAGE).max(PAGE)
    }
    #[cfg(not(all(unix, not(miri))))]
    {
        PAGE
    }
}

/// Page-aligned memory for a guarded region: a private anonymous mapping on Unix (so
/// that its end pages can be made inaccessible), an allocation elsewhere and under Miri.
struct Pages {
    base: NonNull<u8>,
    len: usize,
    page: usize,
}

impl Pages {
    #[cfg(all(unix, not(miri)))]
    fn new(len: usize, page: usize) -> Result<Pages, AllocError> {
        // SAFETY: a fresh anonymous mapping: no address hint, no file.
        let base = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(AllocError::Exhausted);
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or(AllocError::Exhausted)?;
        Ok(Pages { base, len, page })
    }

    #[cfg(not(all(unix, not(miri))))]
    fn new(len: usize, page: usize) -> Result<Pages, AllocError> {
        let layout =
            core::alloc::Layout::from_size_align(len, page).map_err(|_| AllocError::Unsupported)?;
        // SAFETY: `layout` is at least three pages long.
        let base =
            NonNull::new(unsafe { std::alloc::alloc(layout) }).ok_or(AllocError::Exhausted)?;
        Ok(Pages { base, len, page })
    }

    /// Makes the first and the last page fault on any access, where the platform can.
    fn protect_ends(&self) {
        #[cfg(all(unix, not(miri)))]
        for at in [0, self.len - self.page] {
            // SAFETY: a whole page of this mapping, which nothing references. Should it
            // fail, the zone is only unprotected: the pattern zones still work.
            unsafe {
                libc::mprotect(
                    self.base.add(at).as_ptr().cast(),
                    self.page,
                    libc::PROT_NONE,
                )
            };
        }
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        #[cfg(all(unix, not(miri)))]
        // SAFETY: the mapping made in `new`, unmapped once, here; its pages, protected
        // or not, are no longer referenced (the heap over them was dropped first).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
        #[cfg(not(all(unix, not(miri))))]
        // SAFETY: allocated in `new` with this layout, freed once, here.
        unsafe {
            std::alloc::dealloc(
                self.base.as_ptr(),
                core::alloc::Layout::from_size_align_unchecked(self.len, self.page),
            );
        }
    }
}

/// A heap over a [`GuardedRegion`] it owns; dereferences to the heap. The heap is
/// declared first, so that it is dropped before its memory.
pub(crate) struct GuardedArena<H: RawHeap> {
    heap: H,
    memory: GuardedRegion,
}

impl<H: RawHeap> GuardedArena<H> {
    /// A fresh `H` over a guarded region of `len` bytes `offset` bytes past a page.
    pub(crate) fn new(len: usize, offset: usize) -> Result<Self, AllocError> {
        let memory = GuardedRegion::new(len, offset)?;
        // SAFETY: the region is valid for reads and writes for as long as `memory`,
        // which this arena owns and drops after the heap; no one else uses it.
        let heap = unsafe { H::new(memory.region()) };
        Ok(GuardedArena { heap, memory })
    }

    /// The region the heap was given (whatever the heap's own `region()` says).
    pub(crate) fn given(&self) -> NonNull<[u8]> {
        self.memory.region()
    }

    /// The first write outside the region found in the guard zones, if any.
    pub(crate) fn breach(&self) -> Option<Breach> {
        self.memory.breach()
    }
}

impl<H: RawHeap> Deref for GuardedArena<H> {
    type Target = H;
    fn deref(&self) -> &H {
        &self.heap
    }
}

impl<H: RawHeap> DerefMut for GuardedArena<H> {
    fn deref_mut(&mut self) -> &mut H {
        &mut self.heap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_zones_hold_their_pattern_until_written() {
        for offset in [0, 3] {
            let guarded = GuardedRegion::new(1000, offset).unwrap();
            let region = guarded.region();
            assert_eq!(region.len(), 1000);
            assert_eq!(region.cast::<u8>().as_ptr().addr() % PAGE, offset);
            assert_eq!(guarded.breach(), None);
            let end = region.cast::<u8>().as_ptr().addr() + 1000;
            // SAFETY: 8 bytes past the region's end lie in the zone after it.
            unsafe { region.cast::<u8>().add(1004).write_bytes(0, 3) };
            assert_eq!(
                guarded.breach(),
                Some(Breach {
                    first: end + 4,
                    end: end + 7,
                    found: 0
                })
            );
        }
    }

    /// Runs in a child process of the test binary: writes into the fault page after
    /// the region, which must kill the child with SIGSEGV.
    #[test]
    #[cfg(all(unix, not(miri)))]
    fn a_write_beyond_the_zones_faults() {
        use std::os::unix::process::ExitStatusExt;

        const CHILD: &str = "HEAPLAB_GUARD_FAULT_CHILD";
        if std::env::var_os(CHILD).is_some() {
            let guarded = GuardedRegion::new(64, 0).unwrap();
            let past_zone = guarded.after.len();
            // SAFETY: none: the fault page right after the zone, which must fault.
            unsafe {
                guarded
                    .region()
                    .cast::<u8>()
                    .add(64 + past_zone)
                    .write_volatile(1)
            };
            std::process::exit(0);
        }
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["guard::tests::a_write_beyond_the_zones_faults", "--exact"])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status}");
    }

    #[test]
    fn a_write_just_before_the_region_is_found_too() {
        let guarded = GuardedRegion::new(64, 0).unwrap();
        let start = guarded.region().cast::<u8>();
        // SAFETY: the byte before the region lies in the zone before it.
        unsafe { start.sub(1).write(7) };
        let breach = guarded.breach().unwrap();
        assert_eq!(breach.first, start.as_ptr().addr() - 1);
        assert_eq!(breach.found, 7);
    }
}
