//! The headerless chapter's figures: what a header costs per block size, and what
//! keeping small and large blocks apart does on the malloc lab's binary pattern.

use std::alloc::Layout;
use std::fmt::Write as _;
use std::io;

use heaplab::registry::{self, Entry, HeapVisitor};
use heaplab::{Arena, RawHeap};
use trace::replay::{DEFAULT_ALIGN, min_region_utilization};
use trace::{Trace, Workload};

use crate::figures::Output;

/// Block sizes of the header-cost table, bytes.
const SIZES: [usize; 10] = [8, 16, 24, 32, 48, 64, 128, 256, 1024, 4096];

/// The region each size fills.
const REGION: usize = 1 << 20;

/// Writes `headerless-overhead.md` and `headerless-binary.md`.
pub fn generate(out: &mut Output, seed: u64, scale: usize) -> io::Result<()> {
    let traces: Vec<(Workload, Trace)> = Workload::LAB_STYLE
        .iter()
        .map(|&w| (w, trace::generate(w, seed, scale)))
        .collect();
    let mut every = Every {
        overhead: header_row(&SIZES.map(|s| format!("{s} B"))),
        lab: header_row(
            &traces
                .iter()
                .map(|(w, _)| w.name().to_owned())
                .collect::<Vec<_>>(),
        ),
        traces: &traces,
    };
    registry::for_each_heap(&mut every);
    out.write("headerless-overhead.md", every.overhead)?;
    out.write("headerless-lab.md", every.lab)
}

/// A table's first two lines: the allocator column, then one per label.
fn header_row(labels: &[String]) -> String {
    let mut row = String::from("| allocator |");
    let mut rule = String::from("| --- |");
    for label in labels {
        let _ = write!(row, " {label} |");
        rule.push_str(" ---: |");
    }
    format!("{row}\n{rule}\n")
}

struct Every<'t> {
    overhead: String,
    lab: String,
    traces: &'t [(Workload, Trace)],
}

impl HeapVisitor for Every<'_> {
    fn visit<H: RawHeap + Send + 'static>(&mut self, entry: &Entry) {
        let _ = write!(self.overhead, "| {} |", entry.name);
        for size in SIZES {
            let _ = write!(self.overhead, " {} |", overhead_per_block::<H>(size));
        }
        self.overhead.push('\n');
        let _ = write!(self.lab, "| {} |", entry.name);
        for (_, trace) in self.traces {
            let cell = min_region_utilization::<H>(trace, DEFAULT_ALIGN)
                .map_or("-".to_owned(), |m| format!("{:.1}%", m.utilization * 100.0));
            let _ = write!(self.lab, " {cell} |");
        }
        self.lab.push('\n');
    }
}

/// Bytes of region each block of `size` bytes costs beyond its size, when blocks of
/// that size fill a fresh [`REGION`]-byte heap until it refuses one: `REGION / blocks -
/// size`, metadata and rounding included.
fn overhead_per_block<H: RawHeap>(size: usize) -> String {
    let mut heap = Arena::<H>::new(REGION);
    let layout = Layout::from_size_align(size, DEFAULT_ALIGN).expect("a valid layout");
    let mut blocks = 0usize;
    while heap.allocate(layout).is_ok() {
        blocks += 1;
    }
    // The blocks are left live: the arena's region is freed whole when it drops.
    if blocks == 0 {
        return "-".to_owned();
    }
    format!("{:.1} B", REGION as f64 / blocks as f64 - size as f64)
}

#[cfg(test)]
mod tests {
    use heaplab::headerless::Headerless;
    use heaplab::tlsf::Tlsf;

    use super::*;

    fn bytes(cell: &str) -> f64 {
        cell.trim_end_matches(" B").parse().unwrap()
    }

    #[test]
    fn a_header_costs_small_blocks_more_than_the_start_map() {
        for size in [16, 24, 48] {
            let with_header = bytes(&overhead_per_block::<Tlsf>(size));
            let without = bytes(&overhead_per_block::<Headerless>(size));
            assert!(
                without < with_header,
                "{size} B: {without} vs {with_header}"
            );
            // The start map: one bit per 8 bytes of region, and nothing else.
            let map = (size as f64) / 64.0;
            assert!(
                (without - map).abs() < 0.5,
                "{size} B: {without} B, map {map:.2} B"
            );
        }
    }

    #[test]
    fn tables_have_a_row_per_allocator_and_a_column_per_size_and_trace() {
        let dir = std::env::temp_dir().join(format!("book-headerless-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = Output::new(&dir);
        generate(&mut out, 1, 1).unwrap();
        let overhead = std::fs::read_to_string(dir.join("headerless-overhead.md")).unwrap();
        let lab = std::fs::read_to_string(dir.join("headerless-lab.md")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let rows = heaplab::registry::entries().len() + 2;
        assert_eq!(overhead.lines().count(), rows);
        assert_eq!(lab.lines().count(), rows);
        assert!(
            overhead
                .lines()
                .all(|l| l.matches('|').count() == SIZES.len() + 2)
        );
        assert!(lab.contains("| headerless-split |"));
    }
}
