//! Pictures of a heap from the blocks its `walk` reports: an SVG strip ([`svg`]) and a
//! line of text for terminals ([`ascii`]).
//!
//! Both draw the region to scale, from its first byte on the left to its last on the
//! right, in three colours or characters: used (handed to the program), free (available
//! to a future request) and overhead (headers, padding, metadata, memory lost).

use std::fmt::Write;

use rawheap::{Block, BlockKind};

use crate::svg::Svg;

/// Fill colour of used bytes.
pub const USED_COLOUR: &str = "#3b6fb6";
/// Fill colour of free bytes.
pub const FREE_COLOUR: &str = "#dcdcdc";
/// Fill colour of overhead bytes.
pub const OVERHEAD_COLOUR: &str = "#e0703a";

/// Height of the strip in an SVG heap map, in pixels.
const STRIP_HEIGHT: f64 = 40.0;

/// The name of a kind, as in `data-kind` attributes and legends.
pub const fn kind_name(kind: BlockKind) -> &'static str {
    match kind {
        BlockKind::Used => "used",
        BlockKind::Free => "free",
        BlockKind::Overhead => "overhead",
    }
}

const fn colour(kind: BlockKind) -> &'static str {
    match kind {
        BlockKind::Used => USED_COLOUR,
        BlockKind::Free => FREE_COLOUR,
        BlockKind::Overhead => OVERHEAD_COLOUR,
    }
}

/// The kinds in legend order; [`kind_index`] is the inverse.
const KINDS: [BlockKind; 3] = [BlockKind::Used, BlockKind::Free, BlockKind::Overhead];

const fn kind_index(kind: BlockKind) -> usize {
    match kind {
        BlockKind::Used => 0,
        BlockKind::Free => 1,
        BlockKind::Overhead => 2,
    }
}

/// An SVG picture, `width` pixels wide, of the region of `region_len` bytes starting at
/// address `region_start`, with one `<rect>` per block, to scale, and a legend with the
/// bytes of each kind.
///
/// Each block's rect carries `data-kind` (`used`, `free` or `overhead`), `data-offset`
/// (from the region's start) and `data-size` (bytes), and a `<title>` tooltip. Blocks
/// are clipped to the region; a block wholly outside it is left out. Blocks narrower
/// than a pixel keep their exact fractional width.
pub fn svg(blocks: &[Block], region_start: usize, region_len: usize, width: usize) -> String {
    let width = width.max(1) as f64;
    let legend_top = STRIP_HEIGHT + 12.0;
    let mut out = Svg::new(width, legend_top + 40.0);
    let _ = writeln!(
        out.body,
        "<title>heap map: {} blocks over {region_len} bytes</title>",
        blocks.len()
    );
    let _ = writeln!(
        out.body,
        r#"<g class="heap-map" data-region-start="{region_start}" data-region-len="{region_len}">"#
    );
    let scale = if region_len == 0 {
        0.0
    } else {
        width / region_len as f64
    };
    let mut totals = [0usize; 3];
    for block in blocks {
        let start = block.addr.max(region_start);
        let end = block.end().min(region_start.saturating_add(region_len));
        if start >= end {
            continue;
        }
        let (offset, size) = (start - region_start, end - start);
        totals[kind_index(block.kind)] += size;
        let kind = kind_name(block.kind);
        let _ = writeln!(
            out.body,
            r#"<rect x="{:.3}" y="0" width="{:.3}" height="{STRIP_HEIGHT}" fill="{}" data-kind="{kind}" data-offset="{offset}" data-size="{size}"><title>{kind}: {size} bytes at offset {offset}</title></rect>"#,
            offset as f64 * scale,
            size as f64 * scale,
            colour(block.kind),
        );
    }
    out.body.push_str("</g>\n");
    let _ = writeln!(
        out.body,
        r##"<rect x="0" y="0" width="{width}" height="{STRIP_HEIGHT}" fill="none" stroke="#333"/>"##
    );
    out.body.push_str("<g class=\"legend\">\n");
    let mut x = 0.0;
    for (kind, total) in KINDS.iter().zip(totals) {
        let name = kind_name(*kind);
        let _ = writeln!(
            out.body,
            r##"<rect x="{x}" y="{legend_top}" width="12" height="12" fill="{}" stroke="#333" data-legend="{name}"/><text x="{}" y="{}">{name}: {total} B</text>"##,
            colour(*kind),
            x + 16.0,
            legend_top + 11.0,
        );
        x += 150.0;
    }
    let _ = writeln!(
        out.body,
        r#"<text x="0" y="{}">region: {} bytes, 1 px = {:.1} bytes</text>"#,
        legend_top + 32.0,
        region_len,
        if scale > 0.0 { 1.0 / scale } else { 0.0 },
    );
    out.body.push_str("</g>\n");
    out.finish()
}

/// The character of each kind in [`ascii`].
pub const fn kind_char(kind: BlockKind) -> char {
    match kind {
        BlockKind::Used => '#',
        BlockKind::Free => '.',
        BlockKind::Overhead => 'x',
    }
}

/// A one-line picture of the blocks, at most `width` characters, then a legend line.
/// The region is from the lowest block address to the highest block end; each
/// character stands for the same number of bytes and shows the kind that covers most
/// of them (ties go to used, then overhead, then free, so a lone header stays visible).
pub fn ascii(blocks: &[Block], width: usize) -> String {
    let legend = "# used  . free  x overhead";
    let (Some(start), Some(end)) = (
        blocks.iter().map(|b| b.addr).min(),
        blocks.iter().map(Block::end).max(),
    ) else {
        return format!("(no blocks)\n{legend}\n");
    };
    let len = end - start;
    let per_char = len.div_ceil(width.max(1)).max(1);
    let cells = len.div_ceil(per_char);
    // Bytes of each kind in each cell, indexed like `KINDS`.
    let mut counts = vec![[0usize; 3]; cells];
    for block in blocks {
        let kind = kind_index(block.kind);
        let mut at = block.addr - start;
        let stop = block.end() - start;
        while at < stop {
            let cell = at / per_char;
            let cell_end = ((cell + 1) * per_char).min(stop);
            counts[cell][kind] += cell_end - at;
            at = cell_end;
        }
    }
    let mut line: String = counts
        .iter()
        .map(|count| {
            let mut winner = kind_index(BlockKind::Used);
            for rival in [BlockKind::Overhead, BlockKind::Free].map(kind_index) {
                if count[rival] > count[winner] {
                    winner = rival;
                }
            }
            kind_char(KINDS[winner])
        })
        .collect();
    let _ = write!(
        line,
        "\n{legend}  (1 char = {per_char} bytes, {len} bytes from {start:#x})\n"
    );
    line
}
