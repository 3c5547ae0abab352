use rawheap::{Block, BlockKind};

use super::test_heap::{HEADER, SLOT, SlotHeap, USABLE};
use crate::format::{Op, Trace};
use crate::heapmap::{self, FREE_COLOUR, OVERHEAD_COLOUR, USED_COLOUR};
use crate::plot::{self, PALETTE};
use crate::replay::{ReplayOptions, replay};

/// A rect of a heap map, read back from its attributes.
#[derive(Debug, PartialEq)]
struct Rect {
    kind: String,
    offset: usize,
    size: usize,
    x: f64,
    width: f64,
    fill: String,
}

/// Parses `svg` as XML (so it must be well formed) and returns the block rects.
fn block_rects(svg: &str) -> Vec<Rect> {
    let document = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    root.descendants()
        .filter(|n| n.has_tag_name("rect") && n.has_attribute("data-kind"))
        .map(|n| Rect {
            kind: n.attribute("data-kind").unwrap().to_string(),
            offset: n.attribute("data-offset").unwrap().parse().unwrap(),
            size: n.attribute("data-size").unwrap().parse().unwrap(),
            x: n.attribute("x").unwrap().parse().unwrap(),
            width: n.attribute("width").unwrap().parse().unwrap(),
            fill: n.attribute("fill").unwrap().to_string(),
        })
        .collect()
}

fn kind_of(name: &str) -> BlockKind {
    match name {
        "used" => BlockKind::Used,
        "free" => BlockKind::Free,
        "overhead" => BlockKind::Overhead,
        other => panic!("unknown data-kind {other}"),
    }
}

#[test]
fn svg_of_a_real_heap_shows_what_walk_reports_to_scale() {
    // Slots: used (a0), free (a1 freed), used (a2), free; then an 8-byte tail.
    let ops = vec![
        Op::Alloc { id: 0, size: 5 },
        Op::Alloc { id: 1, size: 6 },
        Op::Alloc { id: 2, size: 7 },
        Op::Free { id: 1 },
    ];
    let region = 4 * SLOT + 8;
    let trace = Trace::new(region, 3, 1, ops).unwrap();
    let options = ReplayOptions {
        region: Some(region),
        snapshots: vec![4],
        ..ReplayOptions::default()
    };
    let report = replay::<SlotHeap>(&trace, &options).unwrap();
    let snapshot = &report.snapshots[0];
    let width = 680;
    let svg = heapmap::svg(
        &snapshot.blocks,
        snapshot.region_start,
        snapshot.region_len,
        width,
    );
    let rects = block_rects(&svg);
    let from_svg: Vec<Block> = rects
        .iter()
        .map(|r| Block {
            addr: snapshot.region_start + r.offset,
            size: r.size,
            kind: kind_of(&r.kind),
        })
        .collect();
    assert_eq!(from_svg, snapshot.blocks);
    // And that is the layout worked out by hand.
    let kinds: Vec<(&str, usize, usize)> = rects
        .iter()
        .map(|r| (r.kind.as_str(), r.offset, r.size))
        .collect();
    assert_eq!(
        kinds,
        [
            ("overhead", 0, HEADER),
            ("used", HEADER, USABLE),
            ("free", SLOT, SLOT),
            ("overhead", 2 * SLOT, HEADER),
            ("used", 2 * SLOT + HEADER, USABLE),
            ("free", 3 * SLOT, SLOT),
            ("overhead", 4 * SLOT, 8),
        ]
    );
    // 680 px for 136 bytes: 5 px a byte.
    for r in &rects {
        assert!((r.x - 5.0 * r.offset as f64).abs() < 1e-3, "{r:?}");
        assert!((r.width - 5.0 * r.size as f64).abs() < 1e-3, "{r:?}");
        let colour = match kind_of(&r.kind) {
            BlockKind::Used => USED_COLOUR,
            BlockKind::Free => FREE_COLOUR,
            BlockKind::Overhead => OVERHEAD_COLOUR,
        };
        assert_eq!(r.fill, colour);
    }
    // The legend names each kind with its total.
    assert!(svg.contains(">used: 48 B<"), "{svg}");
    assert!(svg.contains(">free: 64 B<"));
    assert!(svg.contains(">overhead: 24 B<"));
}

#[test]
fn svg_clips_blocks_to_the_region_and_survives_an_empty_region() {
    let blocks = [
        Block::used(900, 100),
        Block::free(1000, 50),
        Block::overhead(1050, 100),
        Block::used(2000, 10),
    ];
    let rects = block_rects(&heapmap::svg(&blocks, 1000, 100, 100));
    let kept: Vec<(&str, usize, usize)> = rects
        .iter()
        .map(|r| (r.kind.as_str(), r.offset, r.size))
        .collect();
    assert_eq!(kept, [("free", 0, 50), ("overhead", 50, 50)]);
    assert!(block_rects(&heapmap::svg(&blocks, 0, 0, 100)).is_empty());
}

#[test]
fn ascii_draws_one_char_per_slice_with_a_legend() {
    let blocks = [
        Block::overhead(0x100, 8),
        Block::used(0x108, 24),
        Block::free(0x120, 64),
    ];
    // 96 bytes in 12 characters: 8 bytes a character.
    assert_eq!(
        heapmap::ascii(&blocks, 12),
        "x###........\n# used  . free  x overhead  (1 char = 8 bytes, 96 bytes from 0x100)\n"
    );
    // 16 bytes a character: the first holds 8 overhead and 8 used bytes, a tie that
    // goes to used; 96 / 16 = 6 characters.
    let line = heapmap::ascii(&blocks, 6);
    assert_eq!(line.lines().next(), Some("##...."));
    // Wider than the region: one byte a character.
    assert_eq!(
        heapmap::ascii(&blocks, 1000).lines().next().unwrap().len(),
        96
    );
    assert_eq!(
        heapmap::ascii(&[], 10),
        "(no blocks)\n# used  . free  x overhead\n"
    );
}

#[test]
fn ascii_shows_the_majority_kind_of_a_slice() {
    let blocks = [
        Block::used(0, 3),
        Block::overhead(3, 4),
        Block::free(7, 9),
        Block::overhead(16, 2),
    ];
    // Slices of 9 bytes: [3 used, 4 overhead, 2 free] and [7 free, 2 overhead].
    assert_eq!(heapmap::ascii(&blocks, 2).lines().next(), Some("x."));
}

#[test]
fn fragmentation_plot_has_a_line_per_series_and_labelled_ticks() {
    let series = vec![
        ("first <fit>", vec![(0, 0.0), (75, 0.5), (150, 0.25)]),
        ("buddy & co", vec![(0, 0.0), (150, f64::NAN), (100, 1.0)]),
    ];
    let svg = plot::fragmentation_svg(&series);
    let document = roxmltree::Document::parse(&svg).expect("well-formed XML");
    let lines: Vec<_> = document
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].attribute("data-label"), Some("first <fit>"));
    assert_eq!(lines[1].attribute("data-label"), Some("buddy & co"));
    assert_eq!(lines[0].attribute("stroke"), Some(PALETTE[0]));
    assert_eq!(lines[1].attribute("stroke"), Some(PALETTE[1]));
    let points = |n: &roxmltree::Node<'_, '_>| {
        n.attribute("points")
            .unwrap()
            .split(' ')
            .map(|p| {
                let (x, y) = p.split_once(',').unwrap();
                (x.parse::<f64>().unwrap(), y.parse::<f64>().unwrap())
            })
            .collect::<Vec<_>>()
    };
    // The NaN sample is left out.
    assert_eq!(points(&lines[1]).len(), 2);
    // x from 0 to 150 over the plot's width, y from 0 (bottom) to 1 (top).
    let first = points(&lines[0]);
    assert!(first[0].0 < first[1].0 && first[1].0 < first[2].0);
    assert!(first[1].1 < first[2].1 && first[2].1 < first[0].1);
    let (x0, x150) = (first[0].0, first[2].0);
    assert!((first[1].0 - (x0 + x150) / 2.0).abs() < 0.01);
    let ticks = |class: &str| -> Vec<String> {
        document
            .descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .flat_map(|g| g.descendants())
            .filter_map(|n| n.attribute("data-tick").map(str::to_string))
            .collect()
    };
    assert_eq!(ticks("x-ticks"), ["0", "50", "100", "150"]);
    assert_eq!(ticks("y-ticks"), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    let texts: Vec<&str> = document.descendants().filter_map(|n| n.text()).collect();
    assert!(texts.contains(&"operations"));
    assert!(texts.contains(&"first <fit>"));
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("external fragmentation"))
    );
}

#[test]
fn fragmentation_plot_of_nothing_is_still_a_valid_svg() {
    let empty: Vec<(&str, Vec<(usize, f64)>)> = Vec::new();
    let svg = plot::fragmentation_svg(&empty);
    assert!(roxmltree::Document::parse(&svg).is_ok());
}
