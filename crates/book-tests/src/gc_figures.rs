//! The gc chapter's figures: the chapter's program freeing by hand, leaking and
//! collected, drawn round by round; the collector's pauses against the size of the live
//! heap; and what the collector costs against freeing by hand.
//!
//! The pauses and the costs are measured here, in the optimised build that computes every
//! figure, rather than read from a bench run: the chapter then always has its numbers,
//! measured the same way as every other table of the book. The criterion bench
//! (`benches/benches/gc.rs`) measures the same things for closer study.

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use gc::Collector;
use gc::workload::{self, Freeing, Shape};
use heaplab::free_list::FreeList;
use heaplab::{Arena, RawHeap};
use trace::heapmap;

use crate::figures::Output;

/// The heap of the drawn runs: small, so that a text line can show it whole.
const DRAWN_REGION: usize = 4096;

/// Characters of a text heap map: 64 bytes each.
const MAP_WIDTH: usize = 64;

/// Pixels of an SVG heap map.
const SVG_WIDTH: usize = 720;

/// The drawn program: a few requests over a small kept list.
const DRAWN: Shape = Shape {
    rounds: 16,
    list_len: 6,
    kept: 8,
};

/// The collector's threshold in the drawn run.
const DRAWN_THRESHOLD: usize = 1024;

/// The live heaps of the pause measurements, in nodes.
pub const LIVE_SIZES: [usize; 4] = [1_000, 10_000, 100_000, 300_000];

/// The requests each pause run serves, and the threshold: the same garbage per
/// collection at every live size, so that only the live heap changes.
const PAUSE_SHAPE: Shape = Shape {
    rounds: 400,
    list_len: 100,
    kept: 0,
};
const PAUSE_THRESHOLD: usize = 256 * 1024;

/// The program of the throughput comparison, and how many times each version runs (the
/// fastest run counts).
const THROUGHPUT_SHAPE: Shape = Shape {
    rounds: 2_000,
    list_len: 100,
    kept: 10_000,
};
const THROUGHPUT_RUNS: usize = 5;

/// Writes every figure of the gc chapter.
pub fn generate(out: &mut Output) -> io::Result<()> {
    leak_and_collect(out)?;
    let (table, note) = pauses();
    out.write("gc-pauses.md", table)?;
    out.write("gc-pauses-note.md", note)?;
    out.write("gc-throughput.md", throughput())
}

/// The heap as one line of text.
fn map_line<H: RawHeap>(heap: &H) -> String {
    let mut blocks = Vec::new();
    heap.walk(&mut |block| blocks.push(block));
    let map = heapmap::ascii(&blocks, MAP_WIDTH);
    map.lines().next().unwrap_or_default().to_owned()
}

/// The heap as an SVG strip.
fn map_svg<H: RawHeap>(heap: &H) -> String {
    let mut blocks = Vec::new();
    heap.walk(&mut |block| blocks.push(block));
    let region = heap.region();
    heapmap::svg(
        &blocks,
        region.as_ptr().cast::<u8>().addr(),
        region.len(),
        SVG_WIDTH,
    )
}

/// A figure for the chapter: an SVG from the generated folder and its caption.
fn figure(file: &str, caption: &str) -> String {
    format!(
        "<img class=\"figure\" src=\"generated/{file}\" alt=\"Heap map: {caption}\">\n<p class=\"caption\">{caption}</p>\n\n"
    )
}

/// The heap after each request, in text, with the heap's live blocks and used bytes.
struct Film {
    text: String,
}

impl Film {
    fn new() -> Self {
        Film {
            text: format!(
                "round  {:<MAP_WIDTH$}  live  used B\n",
                "heap (# used, . free, x overhead)"
            ),
        }
    }

    fn frame<H: RawHeap>(&mut self, round: usize, heap: &H, note: &str) {
        let stats = heap.stats();
        let _ = writeln!(
            self.text,
            "{round:>5}  {}  {:>4}  {:>6}{note}",
            map_line(heap),
            stats.live_blocks,
            stats.usable
        );
    }

    fn finish(self) -> String {
        format!("```text\n{}```\n", self.text)
    }
}

/// The drawn program three ways: films, final maps, and where the leak runs out.
fn leak_and_collect(out: &mut Output) -> io::Result<()> {
    for (freeing, name) in [(Freeing::Manual, "manual"), (Freeing::Leaky, "leaky")] {
        let mut heap = Arena::<FreeList>::new(DRAWN_REGION);
        let mut film = Film::new();
        let result = workload::run_manual(&mut *heap, DRAWN, freeing, |round, heap| {
            film.frame(round, heap, "")
        });
        let mut text = film.finish();
        let _ = writeln!(
            text,
            "\nAt the end (the kept list freed too): {} live blocks, {} bytes used; the run {}.\n",
            heap.stats().live_blocks,
            heap.stats().usable,
            outcome(result),
        );
        out.write(&format!("gc-{name}.md"), text)?;
    }
    out.write("gc-leak-end.md", leak_end())?;

    let mut gc = Collector::<FreeList>::new(DRAWN_REGION);
    gc.set_threshold(DRAWN_THRESHOLD);
    let mut film = Film::new();
    let mut maps = String::new();
    let mut svgs = Vec::new();
    let mut seen = 0;
    let result = workload::run_collected(&mut gc, DRAWN, |round, gc| {
        let stats = gc.stats();
        let mut note = String::new();
        if stats.collections > seen {
            seen = stats.collections;
            if let Some(c) = gc.last_collection() {
                note = format!(
                    "  <- collection {}: {} kept, {} freed ({} B)",
                    c.number, c.marked, c.freed_objects, c.freed_bytes
                );
                let file = format!("gc-collected-{}.svg", c.number);
                maps.push_str(&figure(
                    &file,
                    &format!(
                        "The collected program's heap at the end of request {round}, after collection {}",
                        c.number
                    ),
                ));
                svgs.push((file, map_svg(gc.heap())));
            }
        }
        film.frame(round, gc.heap(), &note);
    });
    let mut text = film.finish();
    let stats = gc.stats();
    let _ = writeln!(
        text,
        "\nThreshold {DRAWN_THRESHOLD} B. {} collections (the last one the program's own, at the end) \
         reclaimed {} objects, {} bytes; at the end {} live blocks. The run {}.\n",
        stats.collections,
        stats.reclaimed_objects,
        stats.reclaimed_bytes,
        gc.heap().stats().live_blocks,
        outcome(result),
    );
    out.write("gc-collected.md", text)?;
    for (file, svg) in svgs {
        out.write(&file, svg)?;
    }
    out.write("gc-collected-maps.md", maps)
}

fn outcome(result: Result<u64, workload::Stopped>) -> String {
    match result {
        Ok(sum) if sum == workload::expected_checksum(DRAWN) => {
            "computed the right checksum".to_owned()
        }
        Ok(sum) => format!("computed a wrong checksum, {sum:#x}"),
        Err(stopped) => format!(
            "stopped in request {}: `Err({:?})`",
            stopped.round, stopped.error
        ),
    }
}

/// The leaky program left to run: the heap map when the heap says no.
fn leak_end() -> String {
    let long = Shape {
        rounds: 10_000,
        ..DRAWN
    };
    let mut heap = Arena::<FreeList>::new(DRAWN_REGION);
    let result = workload::run_manual(&mut *heap, long, Freeing::Leaky, |_, _| {});
    let stats = heap.stats();
    format!(
        "Left to run, the leaky program {}, with {} blocks live and {} of the heap's {} bytes \
         free:\n\n```text\n{}\n```\n\nThe same program on the collector, in the same heap, \
         serves all {} requests: {}.\n",
        outcome(result),
        stats.live_blocks,
        stats.free,
        DRAWN_REGION,
        map_line(&*heap),
        long.rounds,
        {
            let mut gc = Collector::<FreeList>::new(DRAWN_REGION);
            gc.set_threshold(DRAWN_THRESHOLD);
            match workload::run_collected(&mut gc, long, |_, _| {}) {
                Ok(sum) if sum == workload::expected_checksum(long) => format!(
                    "the right checksum after {} collections",
                    gc.stats().collections
                ),
                other => format!("{other:?}"),
            }
        }
    )
}

/// Microseconds, with one decimal.
fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

// ANCHOR: pauses
/// The collector's pauses on the same requests over live heaps of several sizes: a table,
/// and a sentence with the mean pauses.
fn pauses() -> (String, String) {
    let mut table = String::from(
        "| live nodes | live bytes | collections | freed per collection | mean pause | longest pause | mean pause per live node | |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    let mut rows = Vec::new();
    for live in LIVE_SIZES {
        let region = live * 128 + 4 * PAUSE_THRESHOLD;
        let mut gc = Collector::<FreeList>::new(region);
        gc.set_threshold(usize::MAX);
        let kept = workload::rooted_list(&mut gc, live).expect("the region holds the list");
        gc.set_threshold(PAUSE_THRESHOLD);
        let mut pauses = Vec::new();
        let mut freed = 0;
        let mut seen = gc.stats().collections;
        workload::run_collected(&mut gc, PAUSE_SHAPE, |_, gc| {
            if let Some(c) = gc.last_collection()
                && c.number > seen
            {
                seen = c.number;
                pauses.push(c.pause);
                freed += c.freed_objects;
            }
        })
        .expect("the region holds the requests");
        assert!(
            kept.is_some_and(|head| gc.is_live(head)),
            "the kept list survives"
        );
        let count = pauses.len();
        let mean = pauses.iter().sum::<Duration>() / count.max(1) as u32;
        let longest = pauses.iter().max().copied().unwrap_or_default();
        let bytes = live * size_of::<workload::Node>();
        rows.push((live, bytes, count, freed / count.max(1), mean, longest));
    }
    let slowest = rows.iter().map(|r| r.4).max().unwrap_or_default();
    let means: Vec<String> = rows
        .iter()
        .map(|(live, _, _, _, mean, _)| format!("{} with {live} live nodes", micros(*mean)))
        .collect();
    let note = format!(
        "Measured for this book, a collection of the chapter's program paused it for {} on \
         average (nodes of {} bytes, on a first-fit free-list heap).\n",
        means.join(", "),
        size_of::<workload::Node>()
    );
    for (live, bytes, collections, freed, mean, longest) in rows {
        let bar = "█".repeat(((mean.as_secs_f64() / slowest.as_secs_f64()) * 30.0).ceil() as usize);
        let _ = writeln!(
            table,
            "| {live} | {bytes} | {collections} | {freed} | {} | {} | {:.1} ns | {bar} |",
            micros(mean),
            micros(longest),
            mean.as_secs_f64() * 1e9 / live as f64,
        );
    }
    (table, note)
}
// ANCHOR_END: pauses

/// The fastest of [`THROUGHPUT_RUNS`] runs of `run`, which returns its time and
/// what else it measured.
fn fastest<T>(mut run: impl FnMut() -> (Duration, T)) -> (Duration, T) {
    let mut best = run();
    for _ in 1..THROUGHPUT_RUNS {
        let next = run();
        if next.0 < best.0 {
            best = next;
        }
    }
    best
}

/// The same program freeing by hand and collected, on the same heap.
fn throughput() -> String {
    let shape = THROUGHPUT_SHAPE;
    let region = (shape.kept + 4 * shape.list_len) * 128 + 4 * PAUSE_THRESHOLD;
    let nodes = (shape.kept + shape.rounds * shape.list_len) as f64;
    let expected = workload::expected_checksum(shape);
    let (manual, ()) = fastest(|| {
        let mut heap = Arena::<FreeList>::new(region);
        let started = Instant::now();
        let sum = workload::run_manual(&mut *heap, shape, Freeing::Manual, |_, _| {});
        let took = started.elapsed();
        assert_eq!(sum, Ok(expected), "the manual program's checksum");
        (took, ())
    });
    let (collected, stats) = fastest(|| {
        let mut gc = Collector::<FreeList>::new(region);
        gc.set_threshold(PAUSE_THRESHOLD);
        let started = Instant::now();
        let sum = workload::run_collected(&mut gc, shape, |_, _| {});
        let took = started.elapsed();
        assert_eq!(sum, Ok(expected), "the collected program's checksum");
        (took, gc.stats())
    });
    let pause_share = stats.total_pause.as_secs_f64() / collected.as_secs_f64();
    let collections = stats.collections;
    let per_node = |d: Duration| d.as_secs_f64() * 1e9 / nodes;
    format!(
        "The program with {} requests of {} nodes over a kept list of {} nodes ({} nodes in all), \
         in a first-fit free-list heap of {} bytes; the fastest of {THROUGHPUT_RUNS} runs of each.\n\n\
         | version | time | per node | |\n| --- | ---: | ---: | --- |\n\
         | freeing by hand | {:.2} ms | {:.1} ns | |\n\
         | collected (threshold {} KiB) | {:.2} ms | {:.1} ns | {:.2} × the manual time; {collections} collections, {:.0} % of the time in pauses |\n\n\
         The collections marked {} objects in all, {:.2} for every node allocated; the kept \
         list alone is {} nodes, marked again by every collection. Those marks are work the \
         manual program never does.\n",
        shape.rounds,
        shape.list_len,
        shape.kept,
        nodes as usize,
        region,
        manual.as_secs_f64() * 1e3,
        per_node(manual),
        PAUSE_THRESHOLD / 1024,
        collected.as_secs_f64() * 1e3,
        per_node(collected),
        collected.as_secs_f64() / manual.as_secs_f64(),
        pause_share * 100.0,
        stats.marked_objects,
        stats.marked_objects as f64 / nodes,
        shape.kept,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gc_figures_are_written_and_tell_the_story() {
        let dir = std::env::temp_dir().join(format!("book-gc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = Output::new(&dir);
        leak_and_collect(&mut out).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let (manual, leaky, collected, end) = (
            read("gc-manual.md"),
            read("gc-leaky.md"),
            read("gc-collected.md"),
            read("gc-leak-end.md"),
        );
        let maps = read("gc-collected-maps.md");
        let svgs = out.written().iter().filter(|f| f.ends_with(".svg")).count();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            manual.contains("0 live blocks") && manual.contains("right checksum"),
            "{manual}"
        );
        assert!(
            leaky.contains(&format!("{} live blocks", DRAWN.rounds)),
            "{leaky}"
        );
        assert!(collected.contains("<- collection 1:"), "{collected}");
        assert!(
            end.contains("stopped in request") && end.contains("Exhausted"),
            "{end}"
        );
        assert_eq!(maps.matches("<img").count(), svgs);
        assert!(svgs >= 2, "a map after each collection");
    }
}
