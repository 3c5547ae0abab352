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

pub use bump;
pub use free_list;
pub use rawheap::{self, *};
pub use trace;

pub mod registry;
