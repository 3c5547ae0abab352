//! One slab: a page carved into equal objects, its free objects threaded through
//! themselves, and its header in its last bytes; and the lists a cache keeps them on.

use core::ptr::NonNull;

use rawheap::HeapError;
use rawheap::bits::{self, BITS};

use crate::class::{CLASSES, SLAB_BYTES, objects_per_slab};

// ANCHOR: header
/// The bookkeeping of one slab, kept in its last `HEADER` bytes (Bonwick keeps it at
/// the end of the page for small objects too), so that the objects start at the slab's
/// aligned first byte.
#[repr(C)]
struct Header {
    /// The first free object, or `None` when the slab is full. Each free object's first
    /// word holds the next one; they all lie in this slab, on object boundaries.
    free: Option<NonNull<u8>>,
    /// The slab before this one on its cache's list.
    prev: Option<SlabRef>,
    /// The slab after this one on its cache's list.
    next: Option<SlabRef>,
    /// Objects handed out and not freed: `live` plus the free objects make
    /// `objects_per_slab(class)`.
    live: u32,
    /// The size class of the cache the slab belongs to; its objects are
    /// `CLASSES[class]` bytes.
    class: u32,
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

    /// The address of the slab's first byte.
    #[inline]
    pub fn addr(self) -> usize {
        self.start().as_ptr().addr()
    }

    // ANCHOR: format
    /// Makes the `SLAB_BYTES` at `start` a slab of `class` with every object free, the
    /// free list running from the first object to the last.
    ///
    /// # Safety
    ///
    /// `start` is aligned to `SLAB_BYTES`, and the `SLAB_BYTES` there are ours, unused.
    pub unsafe fn format(start: NonNull<u8>, class: usize) -> SlabRef {
        let size = CLASSES[class];
        let count = objects_per_slab(class);
        // SAFETY: the caller's promise: the page is ours; every object and the header
        // lie in it, aligned (objects to 8 at least, the header to a word).
        unsafe {
            for index in 0..count {
                let object = start.byte_add(index * size);
                let next = (index + 1 < count).then(|| object.byte_add(size));
                set_link(object, next);
            }
            let slab = SlabRef(start.byte_add(SLAB_BYTES - HEADER).cast());
            slab.0.write(Header {
                free: Some(start),
                prev: None,
                next: None,
                live: 0,
                class: class as u32,
            });
            slab
        }
    }
    // ANCHOR_END: format

    // ANCHOR: pop_push
    /// Takes a free object off the slab's free list: a pop.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    #[inline]
    pub unsafe fn pop(self) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise; a free object's first word is its link.
        unsafe {
            let header = self.0.as_ptr();
            let object = (*header).free?;
            (*header).free = link(object);
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
        unsafe { (*self.0.as_ptr()).live as usize }
    }

    /// Whether no object is free.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    #[inline]
    pub unsafe fn is_full(self) -> bool {
        // SAFETY: the caller's promise.
        unsafe { (*self.0.as_ptr()).free.is_none() }
    }

    /// The size class of the slab's objects.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    #[inline]
    pub unsafe fn class(self) -> usize {
        // SAFETY: the caller's promise.
        unsafe { (*self.0.as_ptr()).class as usize }
    }

    /// The first free object, if any.
    ///
    /// # Safety
    ///
    /// The slab is a live slab of this heap.
    pub unsafe fn first_free(self) -> Option<NonNull<u8>> {
        // SAFETY: the caller's promise.
        unsafe { (*self.0.as_ptr()).free }
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
pub unsafe fn link(object: NonNull<u8>) -> Option<NonNull<u8>> {
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

/// Which objects of a slab are on its free list: a bitmap by object index, read off the
/// list once so that `walk` and `check` look each object up in O(1).
#[derive(Debug)]
pub(crate) struct FreeObjects {
    /// Bit `i % BITS` of word `i / BITS` is set iff object `i` is on the free list.
    bits: [usize; MOST_OBJECTS.div_ceil(BITS as usize)],
    /// How many objects are on the free list.
    count: usize,
}

/// The most objects a slab holds: those of the smallest class.
const MOST_OBJECTS: usize = objects_per_slab(0);

impl FreeObjects {
    // ANCHOR: free_objects
    /// Reads the free list of `slab`, checking that it holds distinct objects of the
    /// slab on object boundaries and, with the live ones, all of its objects.
    ///
    /// # Safety
    ///
    /// `slab` is a live slab of this heap, and nothing changes meanwhile.
    pub unsafe fn of(slab: SlabRef) -> Result<FreeObjects, HeapError> {
        // SAFETY: the caller's promise.
        let (class, live, mut cursor) = unsafe { (slab.class(), slab.live(), slab.first_free()) };
        let at = |invariant| Err(HeapError::new(invariant).at(slab.addr()));
        if class >= CLASSES.len() {
            return at("a slab's class is one of the classes");
        }
        let (size, objects) = (CLASSES[class], objects_per_slab(class));
        let mut free = FreeObjects {
            bits: [0; MOST_OBJECTS.div_ceil(BITS as usize)],
            count: 0,
        };
        while let Some(object) = cursor {
            let offset = object.as_ptr().addr().wrapping_sub(slab.addr());
            let index = offset / size;
            if offset % size != 0 || index >= objects {
                return at("a slab's free list holds objects of the slab, on object boundaries");
            }
            if free.holds(index) {
                return at("a slab's free list holds each object once");
            }
            free.bits[index / BITS as usize] |= 1 << (index % BITS as usize);
            free.count += 1;
            // SAFETY: `object` is a free object of this live slab, just checked.
            cursor = unsafe { link(object) };
        }
        if free.count + live != objects {
            return at("a slab's live and free objects are all of its objects");
        }
        Ok(free)
    }
    // ANCHOR_END: free_objects

    /// Whether object `index` is free.
    pub fn holds(&self, index: usize) -> bool {
        bits::is_set(
            self.bits[index / BITS as usize],
            (index % BITS as usize) as u32,
        )
    }

    /// How many objects are free.
    pub fn count(&self) -> usize {
        self.count
    }
}
