//! The buddy chapter's figure: a split cascade and a merge cascade on a small heap,
//! drawn after every step with each block's boundary, so that the halves show.

use std::alloc::Layout;
use std::fmt::Write as _;
use std::io;
use std::ptr::NonNull;

use heaplab::buddy::Buddy;
use heaplab::{Arena, Block, BlockKind, RawHeap};

use crate::figures::Output;

/// Bytes per character of the drawing: half the smallest block, so that every block
/// shows its boundary and at least one character of its kind.
const BYTES_PER_CHAR: usize = 8;

/// The bitmaps (16 bytes), a 16-byte root in what they leave before the next 512-byte
/// boundary, and a 512-byte root: the region starts 32 bytes before that boundary.
const REGION: usize = 32 + 512;

/// One step of the run: allocate `bytes` into a named slot, or free a named slot.
enum Step {
    Alloc(char, usize),
    Free(char),
}

const STEPS: [Step; 6] = [
    Step::Alloc('a', 48),
    Step::Alloc('b', 60),
    Step::Alloc('c', 100),
    Step::Free('a'),
    Step::Free('b'),
    Step::Free('c'),
];

/// Writes `buddy-cascade.txt`.
pub fn generate(out: &mut Output) -> io::Result<()> {
    out.write("buddy-cascade.txt", cascade())
}

/// The run, drawn step by step.
fn cascade() -> String {
    let mut heap = Arena::<Buddy>::with_placement(REGION, 512, 512 - 32).expect("a small region");
    let start = heap.region().cast::<u8>().as_ptr().addr();
    let mut live: Vec<(char, NonNull<u8>, Layout)> = Vec::new();
    let mut text = format!(
        "a {REGION}-byte region 32 bytes before a 512-byte boundary; 1 char = {BYTES_PER_CHAR} bytes, | starts a block\n\n"
    );
    text += &drawn(
        "the new heap: the bitmaps, then roots of 16 and 512 bytes",
        &heap,
        start,
        &live,
    );
    for step in STEPS {
        let caption = match step {
            Step::Alloc(name, bytes) => {
                let layout = Layout::from_size_align(bytes, 8).expect("a valid layout");
                let ptr = heap.allocate(layout).expect("the run fits its region");
                live.push((name, ptr, layout));
                format!(
                    "{name} = allocate({bytes}) -> +{:#x}",
                    ptr.as_ptr().addr() - start
                )
            }
            Step::Free(name) => {
                let index = live.iter().position(|(n, ..)| *n == name).expect("live");
                let (_, ptr, layout) = live.remove(index);
                // SAFETY: `ptr` is live in `heap` with `layout`, and freed once.
                unsafe { heap.deallocate(ptr, layout) };
                format!("free({name})")
            }
        };
        heap.check()
            .expect("the heap is consistent after every step");
        text += &drawn(&caption, &heap, start, &live);
    }
    text
}

/// A caption, the blocks of `heap` drawn with their boundaries and the live blocks'
/// names, and the free blocks listed by size.
fn drawn(
    caption: &str,
    heap: &Buddy,
    start: usize,
    live: &[(char, NonNull<u8>, Layout)],
) -> String {
    let mut blocks = Vec::new();
    heap.walk(&mut |block| blocks.push(block));
    let mut line = String::new();
    let mut free = Vec::new();
    for Block { addr, size, kind } in blocks {
        let cells = size.div_ceil(BYTES_PER_CHAR);
        let fill = match kind {
            BlockKind::Used => live
                .iter()
                .find(|(_, ptr, _)| ptr.as_ptr().addr() == addr)
                .map_or('#', |(name, ..)| *name),
            BlockKind::Free => {
                free.push(format!("{size} at +{:#x}", addr - start));
                '.'
            }
            BlockKind::Overhead => 'x',
        };
        let edge = if kind == BlockKind::Overhead {
            'x'
        } else {
            '|'
        };
        line.push(edge);
        line.extend(std::iter::repeat_n(fill, cells.saturating_sub(1)));
    }
    let mut text = String::new();
    let _ = writeln!(text, "{caption}");
    let _ = writeln!(text, "{line}");
    let _ = writeln!(text, "free: {}\n", free.join(", "));
    text
}
