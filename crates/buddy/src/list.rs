//! The free list of one order: a doubly linked list threaded through the free blocks.

use core::ptr::NonNull;

/// The first two words of a free block: the blocks before and after it on its list.
/// They hold pointers (derived from the region), so that links keep their provenance
/// while they sit in memory.
#[repr(C)]
pub(crate) struct Links {
    next: Option<NonNull<Links>>,
    prev: Option<NonNull<Links>>,
}

/// Free blocks of one order, newest first. Only the head lives here; the links live in
/// the blocks, which nobody else uses while they are free. Every operation is O(1),
/// taking a block out of the middle included: that is what merging needs, since the
/// buddy to merge with can sit anywhere on its list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FreeList {
    /// The newest block on the list, `None` when it is empty; its `prev` is `None`.
    head: Option<NonNull<Links>>,
}

impl FreeList {
    /// An empty list.
    pub(crate) const fn new() -> Self {
        FreeList { head: None }
    }

    /// The newest block, if any.
    #[inline]
    pub(crate) fn first(&self) -> Option<NonNull<Links>> {
        self.head
    }

    /// Whether the list holds no block.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Puts `block` at the front.
    ///
    /// # Safety
    ///
    /// `block` is a free block of at least two words, writable, on no list, and every
    /// block on this list is live and free.
    #[inline]
    pub(crate) unsafe fn push(&mut self, block: NonNull<Links>) {
        // SAFETY: the caller's promise: `block` and the old head have room for links.
        unsafe {
            block.write(Links {
                next: self.head,
                prev: None,
            });
            if let Some(old) = self.head {
                (&raw mut (*old.as_ptr()).prev).write(Some(block));
            }
        }
        self.head = Some(block);
    }

    /// Makes `block` the only block of the list.
    ///
    /// # Safety
    ///
    /// The list is empty; `block` is a free block of at least two words, writable, on
    /// no list.
    #[inline]
    pub(crate) unsafe fn start(&mut self, block: NonNull<Links>) {
        // SAFETY: the caller's promise: `block` has room for its links.
        unsafe {
            block.write(Links {
                next: None,
                prev: None,
            });
        }
        self.head = Some(block);
    }

    /// Takes the newest block off the list.
    ///
    /// # Safety
    ///
    /// Every block on this list is live and free (their links were written by `push`).
    #[inline]
    pub(crate) unsafe fn pop(&mut self) -> Option<NonNull<Links>> {
        let block = self.head?;
        // SAFETY: the caller's promise: `block` heads the list, so its links are ours
        // and its `prev` is `None` (not read); so are the links of the block after it.
        unsafe {
            let next = (&raw const (*block.as_ptr()).next).read();
            self.head = next;
            if let Some(next) = next {
                (&raw mut (*next.as_ptr()).prev).write(None);
            }
        }
        Some(block)
    }

    /// Takes `block` off the list, wherever it is on it; tells whether the list is
    /// empty now (the block had no neighbour), with no second look at the head.
    ///
    /// # Safety
    ///
    /// `block` is on this list, and every block on it is live and free.
    #[inline]
    pub(crate) unsafe fn unlink(&mut self, block: NonNull<Links>) -> bool {
        // SAFETY: the caller's promise: `block` and its neighbours on the list are free
        // blocks whose links `push` wrote.
        unsafe {
            let Links { next, prev } = block.read();
            match prev {
                Some(prev) => (&raw mut (*prev.as_ptr()).next).write(next),
                None => self.head = next,
            }
            if let Some(next) = next {
                (&raw mut (*next.as_ptr()).prev).write(prev);
            }
            prev.is_none() && next.is_none()
        }
    }
}

/// The links of a listed block: the blocks after and before it.
///
/// # Safety
///
/// `block` is on a list and its first two words are readable.
#[inline]
pub(crate) unsafe fn links_of(
    block: NonNull<Links>,
) -> (Option<NonNull<Links>>, Option<NonNull<Links>>) {
    // SAFETY: the caller's promise.
    let Links { next, prev } = unsafe { block.read() };
    (next, prev)
}
