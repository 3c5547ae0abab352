//! # trace: malloc-lab traces for heaplab
//!
//! A trace is a program's allocation calls written down, so that any allocator can be
//! run on exactly the same requests and compared. heaplab uses the `.rep` format of the
//! CS:APP malloc lab, so course staff can replay the traces they already have:
//!
//! ```text
//! 65536        suggested heap size, bytes
//! 2            number of ids
//! 4            number of operations
//! 1            weight
//! a 0 24       block 0 = malloc(24)
//! a 1 100      block 1 = malloc(100)
//! r 0 48       block 0 = realloc(block 0, 48)
//! f 1          free(block 1)            (block 0 is left live here)
//! ```
//!
//! * [`format`](mod@format): [`Trace`], [`Op`], parsing with errors that name file, line and reason,
//!   the dialects of C recorders (`free(NULL)`, `realloc(NULL, n)`, a wrong op count)
//!   accepted with [`Warning`]s, and writing.
//! * [`generate`](mod@generate): seeded, deterministic [`Workload`]s written by this crate, so that
//!   tests, benches and default runs need no trace from elsewhere.
//! * [`region`]: how large a region a replay gets, when a trace suggests too small a
//!   one (the malloc lab's own traces suggest `0` or `1`).
//! * [`replay`](mod@replay): run a trace on any [`rawheap::RawHeap`], verifying every block's
//!   contents; measure utilization two ways, internal and external fragmentation,
//!   refused requests, throughput against the system allocator, and the malloc lab's
//!   score [`replay::SCORE_FORMULA`].
//! * [`peer`]: measure an allocator crate that is not a `RawHeap` (rlsf, talc, …) on the
//!   same traces, through its calls alone.
//! * [`report`]: measure a set of allocators on a set of traces and print Markdown tables
//!   or JSON.
//! * [`heapmap`] and [`plot`]: SVG and text pictures of a heap's `walk`, and
//!   fragmentation over time.
//!
//! ```
//! use trace::{Trace, Workload, generate};
//!
//! let trace = generate(Workload::Lifo, 7, 1);
//! let text = trace.to_string();
//! assert_eq!(Trace::parse(&text, "lifo.rep"), Ok(trace));
//! ```

pub mod format;
pub mod generate;
pub mod heapmap;
pub mod peer;
pub mod plot;
pub mod region;
pub mod replay;
pub mod report;
mod svg;

pub use format::{Op, ParseError, Trace, Warning};
pub use generate::{Workload, generate};
pub use replay::{ReplayOptions, ReplayReport, replay};
pub use svg::escape as escape_xml;

#[cfg(test)]
mod tests;
