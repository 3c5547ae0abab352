//! The TLSF chapter's generated files: the index searched for real requests in a heap
//! that has run a trace (`tlsf-index.txt`), and the latency table of
//! `cargo xtask bench` (`latency.md`), or how to make it.

use std::io;
use std::path::Path;

use core::alloc::Layout;
use core::ptr::NonNull;

use heaplab::tlsf::Tlsf;
use heaplab::{Arena, RawHeap};
use trace::{Op, Trace, Workload};

use crate::figures::{DEFAULT_SCALE, DEFAULT_SEED, Output, peak_moment};

/// The trace whose peak the index drawing shows, and the requests looked up there.
const INDEX_TRACE: Workload = Workload::RandomMixed;
const INDEX_REQUESTS: [usize; 2] = [40, 1000];

/// Writes `tlsf-index.txt` and `latency.md`; the latency table is read from beside
/// `bench_summary`, where the latency bench writes it.
pub fn generate(out: &mut Output, bench_summary: Option<&Path>) -> io::Result<()> {
    let trace = trace::generate(INDEX_TRACE, DEFAULT_SEED, DEFAULT_SCALE);
    out.write("tlsf-index.txt", index_lookups(&trace))?;
    let latency = bench_summary.map(|summary| summary.with_file_name("latency.md"));
    out.write("latency.md", latency_table(latency.as_deref()))
}

/// A TLSF heap replayed up to the peak of `trace`, and what the index does for each of
/// [`INDEX_REQUESTS`] there.
fn index_lookups(trace: &Trace) -> String {
    let peak = peak_moment(trace);
    let mut heap = Arena::<Tlsf>::new(trace.suggested_heap());
    let mut live: Vec<Option<(NonNull<u8>, Layout)>> = vec![None; trace.num_ids()];
    let layout = |size| Layout::from_size_align(trace::format::served_size(size), 8);
    for op in &trace.ops()[..peak] {
        match *op {
            Op::Alloc { id, size } => {
                let layout = layout(size).expect("trace sizes fit a Layout");
                live[id] = heap.allocate(layout).ok().map(|ptr| (ptr, layout));
            }
            Op::Free { id } => {
                if let Some((ptr, layout)) = live[id].take() {
                    // SAFETY: `ptr` is live in this heap with `layout`, freed once.
                    unsafe { heap.deallocate(ptr, layout) };
                }
            }
            Op::Realloc { id, size } => {
                let new = layout(size).expect("trace sizes fit a Layout");
                if let Some((ptr, old)) = live[id] {
                    // SAFETY: `ptr` is live in this heap with `old`; on Err it stays live.
                    if let Ok(moved) = unsafe { heap.reallocate(ptr, old, new) } {
                        live[id] = Some((moved, new));
                    }
                }
            }
        }
    }
    let mut free_blocks = 0;
    heap.walk(&mut |block| free_blocks += usize::from(block.kind == heaplab::BlockKind::Free));
    let stats = heap.stats();
    let mut text = format!(
        "tlsf (32 lists per row) after {peak} operations of the {INDEX_TRACE} trace (seed {DEFAULT_SEED}, \
         scale {DEFAULT_SCALE}), its peak: {} live blocks, {free_blocks} free blocks, {} bytes free.\n",
        stats.live_blocks, stats.free
    );
    for size in INDEX_REQUESTS {
        let request = Layout::from_size_align(size, 8).expect("a small layout");
        match heap.lookup(request) {
            Some(lookup) => text.push_str(&format!("\n{lookup}")),
            None => text.push_str(&format!("\nallocate({size}): refused outright\n")),
        }
    }
    text
}

/// The latency table, or how to make it.
fn latency_table(table: Option<&Path>) -> String {
    match table.map(std::fs::read_to_string) {
        Some(Ok(table)) => table,
        _ => "No latency measurements were found when this book was built. Run `cargo xtask \
              bench` (its last step, the `latency` bench, takes under a minute), then `cargo \
              xtask book`: the median, 99th percentile and maximum time of each call, per \
              operation, of TLSF, free-list first fit and rlsf appear here.\n"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_drawing_shows_every_request_at_the_traces_peak() {
        let trace = trace::generate(INDEX_TRACE, DEFAULT_SEED, DEFAULT_SCALE);
        let text = index_lookups(&trace);
        assert!(text.contains(&format!("after {} operations", peak_moment(&trace))));
        for size in INDEX_REQUESTS {
            assert!(text.contains(&format!("allocate({size} bytes")), "{text}");
        }
        assert!(text.contains("1. scan row"), "{text}");
    }

    #[test]
    fn without_a_bench_run_the_table_says_how_to_make_it() {
        let missing = Path::new("/nonexistent/latency.md");
        assert!(latency_table(Some(missing)).contains("cargo xtask bench"));
        assert!(latency_table(None).contains("cargo xtask bench"));
    }
}
