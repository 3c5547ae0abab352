//! # heaplab
//!
//! Allocator algorithms written to be read, run and tested, in one crate: the
//! [`RawHeap`] contract, every allocator, the trace tools, and the
//! [`registry`] that tools (replay, benches, the book, the grader) iterate over.
//!
//! ```
//! use heaplab::{Arena, RawHeap, free_list::FreeList};
//! use core::alloc::Layout;
//!
//! let mut heap = Arena::<FreeList>::new(64 * 1024);
//! let block = heap.allocate(Layout::from_size_align(100, 16).unwrap()).unwrap();
//! let stats = heap.stats();
//! assert_eq!(stats.requested, 100);
//! assert!(stats.usable >= 100);
//! # unsafe { heap.deallocate(block, Layout::from_size_align(100, 16).unwrap()) };
//! ```
//!
//! A heap cannot outlive its region: an [`Arena`] owns both, and a borrow of the heap
//! ends with it, so using a heap after its region is gone does not compile:
//!
//! ```compile_fail,E0597
//! use heaplab::{Arena, RawHeap, free_list::FreeList};
//! use core::alloc::Layout;
//!
//! let heap = {
//!     let arena = Arena::<FreeList>::new(4096);
//!     &*arena // error: `arena` does not live long enough
//! };
//! heap.stats();
//! ```

pub use buddy;
pub use bump;
pub use free_list;
pub use headerless;
pub use rawheap::{self, *};
pub use segregated_fit;
pub use slab;
pub use tlsf;
pub use trace;

pub mod registry;
