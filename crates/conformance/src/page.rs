//! Failure pages: a violation as an HTML page that shows its operation sequence step by
//! step, so that a student sees what the heap did instead of reading offsets.
//!
//! The page replays the violation's operations on a fresh heap under the model and
//! draws, after each one, the heap map (the trace crate's SVG of `walk`, to scale),
//! the stats, and, at the step that breaks the rule, the offending bytes marked in red
//! under the map: the guard bytes the heap overwrote, or the places the message names
//! (`+0x40..+0x58`), also when they lie outside the region.
//!
//! Pages go to `heaplab/failures/HEAP-RULE.html` in the target directory of the test
//! (or grader) binary that found the violation: the ancestor of the running program
//! that holds cargo's `CACHEDIR.TAG`, which is the workspace's `target/` for heaplab
//! and a student's crate's own `target/` for a student; `HEAPLAB_FAILURE_DIR` sets
//! another folder. The failure message names the page on a line of its own,
//! `failure page: /absolute/path.html`. Under Miri no page is written (Miri keeps
//! programs away from the file system).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use rawheap::{Block, RawHeap, Stats};
use trace::escape_xml as escape;
use trace::heapmap;

use crate::bench::step;
use crate::guard::GuardedArena;
use crate::model::{Model, Outcome};
use crate::op::Op;
use crate::panics;
use crate::rules;
use crate::violation::{Violation, at};

/// Environment variable naming the folder failure pages are written to.
pub const FAILURE_DIR_VAR: &str = "HEAPLAB_FAILURE_DIR";

/// Width of a heap map, pixels.
const MAP_WIDTH: usize = 760;

/// Room on each side of the marks strip for bytes outside the region, pixels.
const MARGIN: f64 = 60.0;

/// Bytes shown at least on each side of the offending ones in a zoomed map.
const ZOOM_ROOM: usize = 128;

/// Steps drawn at most (a sequence that was not shrunk can be long).
const MAX_STEPS: usize = 200;

/// One state of the heap in the replay.
pub(crate) struct Step {
    /// The operation that led here; `None` for the fresh heap.
    pub(crate) op: Option<Op>,
    /// What the operation did, in words.
    pub(crate) what: String,
    /// `walk` (with addresses as offsets from the region's start) and `stats` after
    /// it, unless asking panicked or the heap panicked.
    pub(crate) picture: Option<(Vec<Block>, Stats)>,
    /// When this step broke a rule: the message, and the offending byte ranges as
    /// offsets from the region's start (negative before it).
    pub(crate) broke: Option<(String, Vec<(i128, i128)>)>,
}

/// Writes `violation`'s page and returns the violation with the page's path in it.
/// Leaves the violation as it is under Miri or if the page cannot be written.
pub(crate) fn with_page<H: RawHeap>(violation: Violation) -> Violation {
    if cfg!(miri) {
        return violation;
    }
    let dir = failure_dir();
    let path = dir.join(file_name(&violation.heap, violation.rule));
    let steps = record::<H>(&violation);
    let html = html(&violation, &steps);
    match write_atomically(&dir, &path, &html) {
        Ok(()) => Violation {
            page: Some(path.into_boxed_path()),
            ..violation
        },
        Err(_) => violation,
    }
}

/// Where failure pages go: `$HEAPLAB_FAILURE_DIR`, or `heaplab/failures` in the
/// running program's target directory, or in the system's temporary folder.
pub fn failure_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(FAILURE_DIR_VAR).filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return std::path::absolute(&dir).unwrap_or(dir);
    }
    let exe = std::env::current_exe().ok();
    let target = exe
        .as_deref()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        })
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    target.join("heaplab").join("failures")
}

/// `HEAP-RULE.html`, with the heap's type name made safe for a file name
/// (`ListHeap<RoundsUpTheEnd>` becomes `ListHeap_RoundsUpTheEnd`).
fn file_name(heap: &str, rule: &str) -> String {
    let mut name = String::with_capacity(heap.len());
    for c in heap.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    format!("{}-{rule}.html", name.trim_matches('_'))
}

/// Writes to a temporary file and renames it, so that two tests that find the same
/// violation at once never leave a page half written.
fn write_atomically(dir: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    use std::hash::{DefaultHasher, Hash, Hasher};

    std::fs::create_dir_all(dir)?;
    let mut hasher = DefaultHasher::new();
    std::thread::current().id().hash(&mut hasher);
    let temp = path.with_extension(format!("{}-{:x}.tmp", std::process::id(), hasher.finish()));
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path)
}

/// Replays the violation's operations on a fresh heap and records every state.
pub(crate) fn record<H: RawHeap>(violation: &Violation) -> Vec<Step> {
    let ops = violation.ops.as_deref().unwrap_or_default();
    let fresh = panics::catch(|| {
        let arena = GuardedArena::<H>::new(violation.region, violation.offset).ok()?;
        let model = Model::new(&*arena);
        Some((arena, model))
    });
    let Ok(Some((mut arena, mut model))) = fresh else {
        return vec![Step {
            op: None,
            what: "making the heap failed (the heap panicked in `new`, `region` or `capabilities`, or the system had no memory)".into(),
            picture: None,
            broke: Some((violation.message.clone(), Vec::new())),
        }];
    };
    let base = arena.given().cast::<u8>().as_ptr().addr();
    let mut steps = Vec::new();
    let breach = arena.breach();
    steps.push(Step {
        op: None,
        what: "a fresh heap".into(),
        picture: picture(&arena, base),
        broke: breach.map(|b| {
            (
                violation.message.clone(),
                vec![(offset(b.first, base), offset(b.end, base))],
            )
        }),
    });
    if breach.is_some() {
        return steps;
    }
    for &op in ops.iter().take(MAX_STEPS) {
        match panics::catch(|| step(&mut arena, &mut model, op)) {
            Ok(Ok(outcome)) => steps.push(Step {
                op: Some(op),
                what: outcome_in_words(&model, outcome, base),
                picture: picture(&arena, base),
                broke: None,
            }),
            Ok(Err(broken)) => {
                let marks = match arena.breach() {
                    Some(b) => vec![(offset(b.first, base), offset(b.end, base))],
                    None => narrowed(places(&broken.message)),
                };
                steps.push(Step {
                    op: Some(op),
                    what: format!("broke the rule `{}`", broken.rule),
                    picture: picture(&arena, base),
                    broke: Some((broken.message, marks)),
                });
                break;
            }
            Err(panic) => {
                steps.push(Step {
                    op: Some(op),
                    what: "the heap panicked".into(),
                    picture: None,
                    broke: Some((format!("the heap panicked: {panic}"), Vec::new())),
                });
                break;
            }
        }
    }
    steps
}

fn offset(addr: usize, base: usize) -> i128 {
    addr as i128 - base as i128
}

/// `walk`, its addresses made offsets from `base`, and `stats`, unless the heap panics
/// when asked. (A stretch a broken heap reports before the region wraps around to a
/// huge offset, which the map leaves out.)
fn picture<H: RawHeap>(arena: &GuardedArena<H>, base: usize) -> Option<(Vec<Block>, Stats)> {
    panics::catch(|| {
        let mut blocks = Vec::new();
        arena.walk(&mut |block| {
            blocks.push(Block {
                addr: block.addr.wrapping_sub(base),
                ..block
            })
        });
        (blocks, arena.stats())
    })
    .ok()
}

fn outcome_in_words(model: &Model, outcome: Outcome, base: usize) -> String {
    let block = |index: usize| {
        model.live().get(index).map_or_else(String::new, |b| {
            let start = b.ptr.as_ptr().addr();
            format!(
                " #{index} at {}..{} ({} bytes asked, {} usable)",
                at(start, base),
                at(start + b.usable, base),
                b.layout.size(),
                b.usable
            )
        })
    };
    match outcome {
        Outcome::Allocated(index) => format!("allocated block{}", block(index)),
        Outcome::Reallocated(index) => format!("resized block{}", block(index)),
        Outcome::Refused(refusal) => format!("refused: Err({refusal:?})"),
        Outcome::Freed => "freed the block".into(),
        Outcome::Skipped => "nothing to do (no live block, or no valid layout)".into(),
    }
}

/// The places a message names, as offset ranges: `+0x20..+0x38` and lone `+0x40`
/// (one byte); offsets before the region are written `-0x8`.
pub(crate) fn places(message: &str) -> Vec<(i128, i128)> {
    fn number(text: &str) -> Option<(i128, usize)> {
        let sign = match text.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let digits = text.get(1..)?.strip_prefix("0x")?;
        let len = digits
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(digits.len());
        let value = i128::from_str_radix(&digits[..len], 16).ok()?;
        Some((sign * value, 3 + len))
    }
    let mut places = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find(['+', '-']) {
        rest = &rest[at..];
        let Some((from, used)) = number(rest) else {
            rest = &rest[1..];
            continue;
        };
        rest = &rest[used..];
        match rest.strip_prefix("..").and_then(number) {
            Some((to, used)) => {
                places.push((from, to.max(from + 1)));
                rest = &rest[2 + used..];
            }
            None => places.push((from, from + 1)),
        }
    }
    places
}

/// The bytes to mark among the places a message names: where two of them overlap (a
/// block and the stretch it overlaps), only the shared bytes; otherwise all of them.
pub(crate) fn narrowed(places: Vec<(i128, i128)>) -> Vec<(i128, i128)> {
    let mut shared = Vec::new();
    for (i, a) in places.iter().enumerate() {
        for b in &places[i + 1..] {
            let (from, to) = (a.0.max(b.0), a.1.min(b.1));
            if from < to {
                shared.push((from, to));
            }
        }
    }
    if shared.is_empty() { places } else { shared }
}

/// The page.
pub(crate) fn html(violation: &Violation, steps: &[Step]) -> String {
    let mut out = String::new();
    let title = format!("{} broke the rule `{}`", violation.heap, violation.rule);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(
        out,
        "<h1>{} broke the rule <code>{}</code></h1>",
        escape(&violation.heap),
        escape(violation.rule)
    );
    if let Some(explanation) = rules::explain(violation.rule) {
        let _ = writeln!(
            out,
            "<p class=\"rule\"><b>The rule:</b> {}</p>",
            escape(explanation)
        );
    }
    let _ = writeln!(
        out,
        "<p class=\"what\"><b>What happened:</b> {}</p>",
        escape(&violation.message)
    );
    let _ = writeln!(
        out,
        "<p>The heap's region: {} bytes, starting {} bytes past a page boundary. Places are offsets from the region's start; red marks under a map are the offending bytes, beyond the map's ends when they lie outside the region.</p>",
        violation.region, violation.offset
    );
    if violation.ops.is_none() {
        out.push_str("<p>This failure is a scenario's own finding, which operations replayed alone do not show: the page has no steps to draw.</p>\n");
    } else {
        out.push_str("<ol class=\"steps\">\n");
        let focus = focus(steps, violation.region);
        for (number, step) in steps.iter().enumerate() {
            write_step(&mut out, number, step, violation.region, focus);
        }
        out.push_str("</ol>\n");
        let shown = steps.len().saturating_sub(1);
        let total = violation.ops.as_ref().map_or(0, Vec::len);
        if shown < total && steps.last().is_some_and(|s| s.broke.is_none()) {
            let _ = writeln!(
                out,
                "<p>Only the first {shown} of {total} operations are drawn.</p>"
            );
        }
    }
    if let Some(test) = violation.regression_test() {
        let _ = writeln!(
            out,
            "<h2>The same steps as a test to paste</h2>\n<pre class=\"test\">{}</pre>",
            escape(&test)
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The stretch of the region a zoomed map shows: the offending bytes of the step that
/// broke the rule, with some room around them; `None` when they are spread over so much
/// of the region that the whole map shows them as well.
fn focus(steps: &[Step], region: usize) -> Option<(usize, usize)> {
    let marks = &steps.last()?.broke.as_ref()?.1;
    let low = marks.iter().map(|m| m.0).min()?;
    let high = marks.iter().map(|m| m.1).max()?;
    let clamp = |offset: i128| offset.clamp(0, region as i128) as usize;
    let span = (high - low).max(0) as usize;
    let room = (span / 2).max(ZOOM_ROOM);
    let (from, to) = (clamp(low - room as i128), clamp(high + room as i128));
    (to > from && (to - from) * 4 <= region).then_some((from, to - from))
}

fn write_step(
    out: &mut String,
    number: usize,
    step: &Step,
    region: usize,
    focus: Option<(usize, usize)>,
) {
    let class = if step.broke.is_some() {
        "step broke"
    } else {
        "step"
    };
    let op = step.op.map_or_else(
        || "the heap, new".to_owned(),
        |op| format!("<code>{}</code>", escape(&op.to_string())),
    );
    let _ = writeln!(
        out,
        "<li class=\"{class}\" id=\"step-{number}\" data-step=\"{number}\">\n<h2>Step {number}: {op}</h2>\n<p class=\"did\">{}</p>",
        escape(&step.what)
    );
    let marks = step.broke.as_ref().map(|b| b.1.as_slice());
    match &step.picture {
        Some((blocks, stats)) => {
            map(out, blocks, region, (0, region), marks, "the whole region");
            if let Some((from, len)) = focus {
                let caption = format!(
                    "zoomed in on {}..{}, where the rule breaks",
                    signed(from as i128),
                    signed((from + len) as i128)
                );
                map(out, blocks, region, (from, len), marks, &caption);
            }
            write_stats(out, stats);
        }
        None => out.push_str(
            "<p class=\"nomap\">No map: the heap cannot be asked after it panicked.</p>\n",
        ),
    }
    if let Some((message, _)) = &step.broke {
        let _ = writeln!(out, "<p class=\"message\">{}</p>", escape(message));
    }
    out.push_str("</li>\n");
}

/// The heap map of the `window` (offset, length) of the region, and under it the
/// offending bytes, if any.
fn map(
    out: &mut String,
    blocks: &[Block],
    region: usize,
    window: (usize, usize),
    marks: Option<&[(i128, i128)]>,
    caption: &str,
) {
    let svg = heapmap::svg(blocks, window.0, window.1, MAP_WIDTH);
    let _ = writeln!(
        out,
        "<figure class=\"map\" data-from=\"{}\" data-len=\"{}\"><figcaption>{}</figcaption>{}",
        window.0,
        window.1,
        escape(caption),
        strip_xml_declaration(&svg)
    );
    if let Some(marks) = marks {
        out.push_str(&marks_svg(marks, window, region));
    }
    out.push_str("</figure>\n");
}

fn strip_xml_declaration(svg: &str) -> &str {
    svg.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .unwrap_or(svg)
}

/// A strip as wide as a heap map of the `window` (plus [`MARGIN`] on each side for
/// bytes outside it) with each offending range in red, at least 3 pixels wide.
fn marks_svg(marks: &[(i128, i128)], (from_offset, len): (usize, usize), region: usize) -> String {
    let width = MAP_WIDTH as f64;
    let scale = if len == 0 { 0.0 } else { width / len as f64 };
    let (low, high) = (from_offset as i128, (from_offset + len) as i128);
    let mut svg = format!(
        "<svg class=\"marks\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"34\" viewBox=\"0 0 {w} 34\" font-family=\"sans-serif\" font-size=\"11\">\n<rect x=\"{MARGIN}\" y=\"4\" width=\"{width}\" height=\"4\" fill=\"#999\"/>\n",
        w = width + 2.0 * MARGIN
    );
    for &(from, to) in marks {
        let place = |offset: i128| -> f64 {
            if offset < low {
                MARGIN / 2.0
            } else if offset > high {
                MARGIN * 1.5 + width
            } else {
                MARGIN + (offset - low) as f64 * scale
            }
        };
        let (x0, x1) = (place(from), place(to));
        let w = (x1 - x0).max(3.0);
        let x = x0.min(x1 - w).max(0.0);
        let label = if to <= 0 {
            format!("{} bytes before the region", to.abs_diff(from))
        } else if from >= region as i128 {
            format!("{} bytes past the end", to.abs_diff(from))
        } else {
            format!("{}..{}", signed(from), signed(to))
        };
        // Labels near an edge grow inwards, so that they are never cut off.
        let total = width + 2.0 * MARGIN;
        let (anchor, label_x) = match x + w / 2.0 {
            middle if middle < 80.0 => ("start", x),
            middle if middle > total - 80.0 => ("end", x + w),
            middle => ("middle", middle),
        };
        let _ = writeln!(
            svg,
            "<rect class=\"offending\" data-from=\"{from}\" data-to=\"{to}\" x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"12\" fill=\"#d0021b\"><title>{label}</title></rect><text x=\"{label_x:.1}\" y=\"28\" fill=\"#d0021b\" text-anchor=\"{anchor}\">{}</text>",
            escape(&label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn signed(offset: i128) -> String {
    if offset < 0 {
        format!("-{:#x}", offset.unsigned_abs())
    } else {
        format!("+{offset:#x}")
    }
}

fn write_stats(out: &mut String, stats: &Stats) {
    let _ = writeln!(
        out,
        "<table class=\"stats\"><tr><th>live blocks</th><th>requested</th><th>usable</th><th>free</th><th>largest free</th><th>high water</th></tr>\n<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:#x}</td></tr></table>",
        stats.live_blocks,
        stats.requested,
        stats.usable,
        stats.free,
        stats.largest_free,
        stats.high_water
    );
}

const STYLE: &str = "body{font-family:sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 1rem;color:#222}\
h1{font-size:1.4rem}h2{font-size:1.05rem;margin:.2rem 0}\
ol.steps{list-style:none;padding:0}\
li.step{border:1px solid #ccc;border-radius:6px;padding:.6rem .8rem;margin:.8rem 0}\
li.broke{border:2px solid #d0021b;background:#fff6f6}\
figure.map{margin:.4rem 0 .4rem 0}figure.map>svg:not(.marks){margin-left:60px;display:block}figcaption{font-size:.8rem;color:#555;margin-left:60px}\
table.stats{border-collapse:collapse;font-size:.85rem;margin-top:.3rem}\
table.stats td,table.stats th{border:1px solid #ccc;padding:.15rem .5rem;text-align:right}\
p.message{color:#a00010;font-weight:bold}\
pre.test{background:#f4f4f4;padding:.6rem;overflow-x:auto}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_read_from_a_message() {
        assert_eq!(
            places("allocate returned +0x20..+0x38, which overlaps +0x0..+0x28"),
            [(0x20, 0x38), (0x0, 0x28)]
        );
        assert_eq!(
            places("the byte at -0x8 and +0x40"),
            [(-8, -7), (0x40, 0x41)]
        );
        assert_eq!(places("no places - at all + here"), []);
    }

    #[test]
    fn overlapping_places_narrow_to_the_bytes_they_share() {
        assert_eq!(narrowed(vec![(0, 0x10), (0x8, 0x10000)]), [(0x8, 0x10)]);
        assert_eq!(narrowed(vec![(0, 8), (16, 24)]), [(0, 8), (16, 24)]);
    }

    #[test]
    fn file_names_keep_the_type_readable() {
        assert_eq!(
            file_name("ListHeap<RoundsUpTheEnd>", "writes_stay_inside_the_region"),
            "ListHeap_RoundsUpTheEnd-writes_stay_inside_the_region.html"
        );
        assert_eq!(
            file_name("Checked<FreeList<FirstFit>>", "blocks_never_overlap"),
            "Checked_FreeList_FirstFit-blocks_never_overlap.html"
        );
    }
}
