//! One slab: a page carved into equal objects, its free objects threaded through
//! themselves, and its header in its last bytes; and the lists a cache keeps them on.

use core::ptr::NonNull;

use rawheap::HeapError;
use rawheap::bits::{self, BITS};

use crate::class::{CLASSES, SLAB_BYTES, objects_per_slab};

// ANCHOR: header
/// The bookkeeping of one slab, kept in its last `HEADER` bytes (Bonwick keeps it at
/// the end of the page for small objects too), so that the objects start at the slab's
/// aligned first byte. Offsets are bytes from the slab's start.
#[repr(C)]
struct Header {
    /// The first free object that was handed out before, or `None`. Each such object's
    /// first word holds the next one; they all lie in this slab, below `fresh`, on
    /// object boundaries.
    free: Option<NonNull<u8>>,
    /// The slab before this one on its cache's list.
    prev: Option<SlabRef>,
    /// The slab after this one on its cache's list.
    next: Option<SlabRef>,
    /// The offset of the first object never handed out: the objects from here to
    /// `limit` are free and untouched, carved one at a time as they are needed.
    fresh: u16,
    /// The offset past the last object: `objects_per_slab(class) * size`.
    limit: u16,
    /// The object size, `CLASSES[class]`, kept here for the allocation path.
    size: u16,
    /// Objects handed out and not freed: with the objects on `free` they make all the
    /// objects below `fresh`.
    live: u16,
    /// The size class of the cache the slab belongs to.
    class: u16,
}
// ANCHOR_END: header

/// Bytes of a slab taken by its header.
pub const HEADER: usize = size_of::<Header>();

/// A slab of this heap, named by its header. Copying it copies the name, not the slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlabRef(NonNull<Header>);

impl SlabRef {
    // ANCHOR: owner
    /// The slab holding the object at `object`: the header at the end of the
    /// `SLAB_BYTES`-aligned page around it. No search, one mask.
    ///
    /// # Safety
    ///
    /// `object` lies in a slab of this heap.
    #[inline]
    pub unsafe fn of_object(object: NonNull<u8>) -> SlabRef {
        let into_slab = object.as_ptr().addr() & (SLAB_BYTES - 1);
        // SAFETY: the caller's promise: the whole slab around `object` is ours, and its
        // header is in it.
        SlabRef(unsafe { object.byte_add(SLAB_BYTES - HEADER - into_slab) }.cast())
    }
    // ANCHOR_END: owner

    /// The slab's first byte, where its first object is.
    #[inline]
    pub fn start(self) -> NonNull<u8> {
        // SAFETY: a `SlabRef` names a header `SLAB_BYTES - HEADER` bytes into its slab.
        unsafe { self.0.byte_sub(SLAB_BYTES - HEADER) }.cast()
    }

    /// The address of the slab's first byte. Plain arithmetic on the address, not on
    /// the pointer, so that `check` may ask it of a link it does not trust yet.
    #[inline]
    pub fn addr(self) -> usize {
        self.0.as_ptr().addr().wrapping_sub(SLAB_BYTES - HEADER)
    }

    // ANCHOR: format
    /// Makes the `SLAB_BYTES` at `start` a slab of `class` with every object free and
    /// untouched: only the header is written, the objects are carved as they go out.
    ///
    /// # Safety
    ///
    /// `start` is aligned to `SLAB_BYTES`, and the `SLAB_BYTES` there are ours, unused.
    pub unsafe fn format(start: NonNull<u8>, class: usize) -> SlabRef {
        let size = CLASSES[class];
        // SAFETY: the caller's promise: the page is ours, and the header lies in it,
        // aligned to a word.
        unsafe {
            let slab = SlabRef(start.byte_add(SLAB_BYTES - HEADER).cast());
            slab.0.write(Header {
                free: None,
                prev: None,
                next: None,
                fresh: 0,
                limit: (objects_per_slab(class) * size) as u16,
                size: size as u16,
                live: 0,
                class: class as u16,
            });
            slab
        }
    }
    // ANCHOR_END: format

    // ANCHOR: pop_push
    /// Takes a free object: a pop off the slab's free list, or, when that is empty,
    /// the next object never handed out.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    #[inline]
    pub unsafe fn pop(self) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise; a free object's first word is its link, and a
        // fresh object lies below `limit`, inside the slab.
        unsafe {
            let header = self.0.as_ptr();
            let object = match (*header).free {
                Some(object) => {
                    (*header).free = link(object);
                    object
                }
                None if (*header).fresh < (*header).limit => {
                    let offset = (*header).fresh;
                    (*header).fresh += (*header).size;
                    self.start().byte_add(usize::from(offset))
                }
                None => return None,
            };
            (*header).live += 1;
            Some(object)
        }
    }

    /// Puts `object` back on the slab's free list: a push.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap and `object` a live object of it, which
    /// nobody uses any more.
    #[inline]
    pub unsafe fn push(self, object: NonNull<u8>) {
        // SAFETY: the caller's promise; the object is at least a word long.
        unsafe {
            let header = self.0.as_ptr();
            set_link(object, (*header).free);
            (*header).free = Some(object);
            (*header).live -= 1;
        }
    }
    // ANCHOR_END: pop_push

    /// Objects handed out and not freed.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    #[inline]
    pub unsafe fn live(self) -> usize {
        // SAFETY: the caller's promise.
        unsafe { usize::from((*self.0.as_ptr()).live) }
    }

    /// Whether no object is free.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    #[inline]
    pub unsafe fn is_full(self) -> bool {
        // SAFETY: the caller's promise.
        unsafe {
            let header = self.0.as_ptr();
            (*header).free.is_none() && (*header).fresh == (*header).limit
        }
    }

    /// The size class of the slab's objects.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    #[inline]
    pub unsafe fn class(self) -> usize {
        // SAFETY: the caller's promise.
        unsafe { usize::from((*self.0.as_ptr()).class) }
    }

    /// The slabs before and after this one on its list.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    pub unsafe fn neighbours(self) -> (Option<SlabRef>, Option<SlabRef>) {
        // SAFETY: the caller's promise.
        unsafe { ((*self.0.as_ptr()).prev, (*self.0.as_ptr()).next) }
    }

    fn set_next(self, next: Option<SlabRef>) {
        // SAFETY: only slabs put on or on a list are changed, and those are live.
        unsafe { (*self.0.as_ptr()).next = next }
    }

    fn set_prev(self, prev: Option<SlabRef>) {
        // SAFETY: as in `set_next`.
        unsafe { (*self.0.as_ptr()).prev = prev }
    }
}

/// The free object after `object`, as written in its first word.
///
/// # Safety
///
/// `object` is a free object of a live slab.
#[inline]
unsafe fn link(object: NonNull<u8>) -> Option<NonNull<u8>> {
    // SAFETY: the caller's promise; objects are aligned to 8 at least.
    unsafe { object.cast::<Option<NonNull<u8>>>().read() }
}

/// Writes `next` into the first word of the free object `object`.
///
/// # Safety
///
/// `object` is an object of a live slab that nobody uses.
#[inline]
unsafe fn set_link(object: NonNull<u8>, next: Option<NonNull<u8>>) {
    // SAFETY: the caller's promise; objects are aligned to 8 at least.
    unsafe { object.cast::<Option<NonNull<u8>>>().write(next) }
}

/// A doubly linked list of slabs through their headers, with its length: one of a
/// cache's full, partial and empty lists.
#[derive(Debug, Default)]
pub(crate) struct SlabList {
    /// The first slab; each slab's `prev` and `next` link its neighbours.
    head: Option<SlabRef>,
    /// How many slabs are on the list.
    len: usize,
}

impl SlabList {
    /// The first slab.
    #[inline]
    pub fn first(&self) -> Option<SlabRef> {
        self.head
    }

    /// How many slabs are on the list.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Puts `slab`, on no list, first.
    ///
    /// # Safety
    ///
    /// `slab` is a live slab of this heap and on no list.
    #[inline]
    pub unsafe fn push_front(&mut self, slab: SlabRef) {
        slab.set_prev(None);
        slab.set_next(self.head);
        if let Some(head) = self.head {
            head.set_prev(Some(slab));
        }
        self.head = Some(slab);
        self.len += 1;
    }

    /// Takes `slab` off the list.
    ///
    /// # Safety
    ///
    /// `slab` is on this list.
    #[inline]
    pub unsafe fn unlink(&mut self, slab: SlabRef) {
        // SAFETY: the caller's promise: the slab is on a list, hence live.
        let (prev, next) = unsafe { slab.neighbours() };
        match prev {
            Some(prev) => prev.set_next(next),
            None => self.head = next,
        }
        if let Some(next) = next {
            next.set_prev(prev);
        }
        self.len -= 1;
    }

    /// Takes the first slab off the list.
    pub fn pop_front(&mut self) -> Option<SlabRef> {
        let slab = self.head?;
        // SAFETY: the head is on this list.
        unsafe { self.unlink(slab) };
        Some(slab)
    }

    /// The slabs on the list, first to last, with the slab each one says is before it.
    /// Stops after `limit` slabs, so a list broken into a cycle still ends.
    ///
    /// # Safety
    ///
    /// Every slab the list links to is a live slab of this heap.
    pub unsafe fn iter(&self, limit: usize) -> impl Iterator<Item = (SlabRef, Option<SlabRef>)> {
        let mut cursor = self.head;
        core::iter::from_fn(move || {
            let slab = cursor?;
            // SAFETY: the caller's promise.
            let (prev, next) = unsafe { slab.neighbours() };
            cursor = next;
            Some((slab, prev))
        })
        .take(limit)
    }
}

/// Which objects of a slab are free: those on its free list, as a bitmap by object
/// index read off the list once, and the fresh ones past `carved`. `walk` and `check`
/// then look each object up in O(1) and find the live ones a word at a time.
#[derive(Debug)]
pub(crate) struct FreeObjects {
    /// Bit `i % BITS` of word `i / BITS` is set iff object `i` is on the free list.
    listed: [usize; WORDS],
    /// Objects handed out at least once: indices below this are live or listed.
    carved: usize,
    /// Objects in the slab.
    objects: usize,
}

/// The most objects a slab holds: those of the smallest class.
const MOST_OBJECTS: usize = objects_per_slab(0);

/// Words in a bitmap of `MOST_OBJECTS` bits.
const WORDS: usize = MOST_OBJECTS.div_ceil(BITS as usize);

impl FreeObjects {
    // ANCHOR: free_objects
    /// Reads the free list of `slab`, checking that it holds distinct objects of the
    /// slab below the fresh ones, on object boundaries, and that with the live ones
    /// they make every object handed out.
    ///
    /// # Safety
    ///
    /// `slab` is a live slab of this heap, and nothing changes meanwhile.
    pub unsafe fn of(slab: SlabRef) -> Result<FreeObjects, HeapError> {
        let at = |invariant| Err(HeapError::new(invariant).at(slab.addr()));
        // SAFETY: the caller's promise.
        let Header {
            free,
            fresh,
            limit,
            size,
            live,
            class,
            ..
        } = unsafe { slab.0.read() };
        let class = usize::from(class);
        let (size, fresh) = (usize::from(size), usize::from(fresh));
        let objects = match CLASSES.get(class) {
            Some(&class_size) if class_size == size => objects_per_slab(class),
            _ => return at("a slab's object size is that of its class"),
        };
        if usize::from(limit) != objects * size || fresh > objects * size || fresh % size != 0 {
            return at("a slab's fresh objects start on an object boundary, below its limit");
        }
        let mut listed = FreeObjects {
            listed: [0; WORDS],
            carved: fresh / size,
            objects,
        };
        let mut count = 0;
        let mut cursor = free;
        while let Some(object) = cursor {
            let offset = object.as_ptr().addr().wrapping_sub(slab.addr());
            let index = offset / size;
            if offset % size != 0 || offset >= fresh {
                return at(
                    "a slab's free list holds carved objects of the slab, on object boundaries",
                );
            }
            if listed.holds(index) {
                return at("a slab's free list holds each object once");
            }
            listed.listed[index / BITS as usize] |= 1 << (index % BITS as usize);
            count += 1;
            // SAFETY: `object` is a free object of this live slab, just checked.
            cursor = unsafe { link(object) };
        }
        if count + usize::from(live) != listed.carved {
            return at("a slab's live and listed objects are all the objects it carved");
        }
        Ok(listed)
    }
    // ANCHOR_END: free_objects

    /// Whether object `index` is on the free list.
    fn holds(&self, index: usize) -> bool {
        bits::is_set(
            self.listed[index / BITS as usize],
            (index % BITS as usize) as u32,
        )
    }

    /// How many objects are free, listed or fresh.
    pub fn count(&self) -> usize {
        let listed: u32 = self.listed.iter().map(|word| word.count_ones()).sum();
        listed as usize + self.objects - self.carved
    }

    /// Objects in the slab.
    pub fn objects(&self) -> usize {
        self.objects
    }

    /// The indices of the live objects, in order: carved and not on the free list.
    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        let bits = BITS as usize;
        (0..self.carved.div_ceil(bits)).flat_map(move |word| {
            let below_fresh = match self.carved - word * bits {
                rest if rest >= bits => usize::MAX,
                rest => (1 << rest) - 1,
            };
            let mut live = !self.listed[word] & below_fresh;
            core::iter::from_fn(move || {
                let bit = live.trailing_zeros() as usize;
                (live != 0).then(|| {
                    live &= live - 1;
                    word * bits + bit
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    //! `check()` on a slab heap broken one way at a time, through its fields and its
    //! slabs' headers: each broken invariant is named.

    extern crate std;

    use core::alloc::Layout;

    use free_list::FreeList;
    use rawheap::{Arena, RawHeap};

    use super::*;
    use crate::{RESERVE, Slab};

    /// Class 3: 32-byte objects.
    const CLASS: usize = 3;

    fn object() -> Layout {
        Layout::from_size_align(CLASSES[CLASS], 8).unwrap()
    }

    /// A heap with one partial slab of 32-byte objects: `a` and `c` free (the free list
    /// is `c`, `a`), `b` and `d` live. Returns the heap and its slab.
    fn heap_with_a_partial_slab() -> (Arena<Slab<FreeList>>, SlabRef) {
        let mut heap = Arena::<Slab<FreeList>>::new(1 << 16);
        let [a, _b, c, _d] = [0; 4].map(|_| heap.allocate(object()).unwrap());
        // SAFETY: `a` and `c` are live with this layout, freed once.
        unsafe {
            heap.deallocate(a, object());
            heap.deallocate(c, object());
        }
        heap.check().expect("sound before it is broken");
        let slab = heap.caches[CLASS].partial.first().unwrap();
        (heap, slab)
    }

    /// The invariant `check` names for the heap of `heap_with_a_partial_slab` once
    /// `break_it` has changed it.
    fn broken(break_it: impl FnOnce(&mut Slab<FreeList>, SlabRef)) -> &'static str {
        let (mut heap, slab) = heap_with_a_partial_slab();
        break_it(&mut heap, slab);
        heap.check().expect_err("check notices").invariant
    }

    /// The slab's header, to break.
    ///
    /// # Safety
    ///
    /// `slab` is a live slab, and nothing else uses its header meanwhile.
    unsafe fn header<'a>(slab: SlabRef) -> &'a mut Header {
        // SAFETY: the caller's promise.
        unsafe { &mut *slab.0.as_ptr() }
    }

    #[test]
    fn check_names_a_broken_slab_header() {
        type Case = (fn(&mut Header), &'static str);
        let cases: [Case; 6] = [
            (|h| h.size = 48, "a slab's object size is that of its class"),
            (
                |h| h.fresh += 1,
                "a slab's fresh objects start on an object boundary, below its limit",
            ),
            (
                |h| h.fresh = h.limit + h.size,
                "a slab's fresh objects start on an object boundary, below its limit",
            ),
            (
                |h| h.limit -= h.size,
                "a slab's fresh objects start on an object boundary, below its limit",
            ),
            (
                |h| h.live += 1,
                "a slab's live and listed objects are all the objects it carved",
            ),
            (
                |h| h.live -= 1,
                "a slab's live and listed objects are all the objects it carved",
            ),
        ];
        for (break_header, invariant) in cases {
            // SAFETY: the slab is live, and the test holds the heap.
            let named = broken(|_, slab| break_header(unsafe { header(slab) }));
            assert_eq!(named, invariant);
        }
    }

    #[test]
    fn check_names_a_free_list_that_loops() {
        let named = broken(|_, slab| {
            // SAFETY: the free list is `c`, `a`; `a`'s link (its first word) now leads
            // back to `c`. The slab is live and the test holds the heap.
            unsafe {
                let c = header(slab).free.unwrap();
                let a = link(c).unwrap();
                set_link(a, Some(c));
            }
        });
        assert_eq!(named, "a slab's free list holds each object once");
    }

    #[test]
    fn check_names_a_slab_on_the_wrong_list() {
        let move_to = |to: fn(&mut crate::Cache) -> &mut SlabList| {
            move |heap: &mut Slab<FreeList>, slab| {
                // SAFETY: the slab is on the partial list; it moves to another list.
                unsafe {
                    heap.caches[CLASS].partial.unlink(slab);
                    to(&mut heap.caches[CLASS]).push_front(slab);
                }
            }
        };
        assert_eq!(
            broken(move_to(|cache| &mut cache.full)),
            "a slab is on the list its free and live objects say"
        );
        assert_eq!(
            broken(move_to(|cache| &mut cache.empty)),
            "a slab is on the list its free and live objects say"
        );
        assert_eq!(
            broken(|heap, slab| {
                // SAFETY: as above, to the partial list of another class.
                unsafe {
                    heap.caches[CLASS].partial.unlink(slab);
                    heap.caches[CLASS + 1].partial.push_front(slab);
                }
            }),
            "a slab on a cache's list belongs to its class"
        );
    }

    #[test]
    fn check_names_broken_slab_lists() {
        assert_eq!(
            broken(|heap, _| heap.caches[CLASS].partial.len += 1),
            "a slab list's length is its number of slabs"
        );
        assert_eq!(
            broken(|heap, slab| {
                // SAFETY: the slab's frame is marked; now it is not.
                unsafe { heap.frames.mark(slab.addr(), false) }
            }),
            "a slab on a cache's list lies in a marked frame of the region"
        );
        assert_eq!(
            broken(|heap, slab| {
                // A second partial slab, in front of the first, whose back link
                // leads to itself.
                let second = heap.grow_cache(CLASS).unwrap();
                let object = heap.allocate(object()).unwrap();
                // SAFETY: `object` lies in a slab of this heap.
                assert_eq!(unsafe { SlabRef::of_object(object) }, second);
                assert_eq!(heap.caches[CLASS].partial.first(), Some(second));
                assert_eq!(heap.check(), Ok(()));
                slab.set_prev(Some(slab));
            }),
            "slab list links agree: a slab links back to the one before it"
        );
        assert_eq!(
            broken(|heap, slab| {
                // A new slab taken off its list: its frame is marked for no listed slab.
                let second = heap.grow_cache(CLASS).unwrap();
                // SAFETY: `second` is first on the partial list.
                unsafe { heap.caches[CLASS].partial.unlink(second) };
                let _ = slab;
            }),
            "the frame map marks exactly the frames of the caches' slabs"
        );
        assert_eq!(
            broken(|heap, _| {
                // New, empty slabs, all kept: one more than the reserve.
                let spares = [0; RESERVE + 1].map(|_| heap.grow_cache(CLASS + 1).unwrap());
                for spare in spares {
                    // SAFETY: `spare` is on the partial list, with nothing live.
                    unsafe {
                        heap.caches[CLASS + 1].partial.unlink(spare);
                        heap.caches[CLASS + 1].empty.push_front(spare);
                    }
                }
            }),
            "a cache keeps at most RESERVE empty slabs"
        );
        assert_eq!(
            broken(|heap, _| heap.usage.live_blocks += 1),
            "the live objects and large blocks are exactly the blocks handed out"
        );
    }
}
