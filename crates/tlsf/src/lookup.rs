//! One search of the index, recorded and drawn: which bits are scanned, which list is
//! taken. [`Tlsf::lookup`](crate::Tlsf::lookup) records it from a real heap; the book
//! prints it.

use core::alloc::Layout;
use core::fmt;

use rawheap::bits;

use crate::Class;

/// What a search for one request does in a heap's index at one moment.
///
/// ```
/// use core::alloc::Layout;
/// use rawheap::{Arena, RawHeap};
/// use tlsf::{Class, Tlsf};
///
/// let mut heap = Arena::<Tlsf>::new(1 << 16);
/// let layout = Layout::from_size_align(1200, 8)?;
/// let lookup = heap.lookup(layout).expect("a size the heap can serve");
/// // 1200 bytes and a header make 1216, the start of class (2, 6).
/// assert_eq!((lookup.need, lookup.rounded, lookup.wanted), (1216, 1216, Class { fl: 2, sl: 6 }));
/// // The new heap's one free block is all the index holds, on a list of row 7.
/// let found = lookup.found.expect("the whole heap is free");
/// assert_eq!(found.class.fl, 7);
/// assert_eq!(lookup.taken.map(|(_, size)| size), Some(heap.stats().free));
/// assert!(lookup.to_string().contains("row 7"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lookup {
    /// The request.
    pub layout: Layout,
    /// The block size that serves it: header and payload, rounded to a granule.
    pub need: usize,
    /// The size searched for: `need`, plus room for an alignment beyond the granule.
    pub search: usize,
    /// `search` rounded up to the smallest size of the class the search starts at.
    pub rounded: usize,
    /// The class the search starts at.
    pub wanted: Class,
    /// `sl_bitmap[wanted.fl]`: the row scanned first.
    pub row: usize,
    /// `fl_bitmap`: the rows that hold a block.
    pub fl_bitmap: usize,
    /// The list the bit scans found, if any.
    pub found: Option<Found>,
    /// The block taken (its offset in the region and its size), if the request is
    /// served: the first block of the found list, or of the search size's own list.
    pub taken: Option<(usize, usize)>,
    /// Lists per row (`SL`).
    pub lists_per_row: u32,
    /// Rows a block of this heap can be in (the others are always empty).
    pub rows: u32,
}

/// The list a search found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its class.
    pub class: Class,
    /// The smallest size of that class.
    pub min_size: usize,
    /// `sl_bitmap[class.fl]`.
    pub row: usize,
}

/// The width of a bitmap's name in a drawing, and the space after it.
const LABEL: usize = 15;

/// Writes bits `0..count` of `bitmap` (`sl_bitmap[row]`, or `fl_bitmap` for no row),
/// lowest first, under a ruler, and under them `-` for the bits a scan looks at from
/// `from` and `^` at the bit it stops at.
fn draw_scan(
    f: &mut fmt::Formatter<'_>,
    row: Option<u32>,
    bitmap: usize,
    count: u32,
    from: u32,
    stop: Option<u32>,
) -> fmt::Result {
    write!(f, "{:LABEL$}", "")?;
    for at in (0..count).step_by(8) {
        write!(f, "{at:<8}")?;
    }
    match row {
        Some(fl) => write!(f, "\nsl_bitmap[{fl:>2}]  ")?,
        None => write!(f, "\nfl_bitmap      ")?,
    }
    for at in 0..count {
        f.write_str(if bits::is_set(bitmap, at) { "1" } else { "." })?;
    }
    write!(f, "\n{:LABEL$}", "")?;
    for at in 0..count {
        let mark = match stop {
            Some(stop) if stop == at => "^",
            _ if at >= from && stop.is_none_or(|stop| at < stop) => "-",
            _ => " ",
        };
        f.write_str(mark)?;
    }
    writeln!(f)
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Class { fl, sl } = self.wanted;
        write!(
            f,
            "allocate({} bytes, align {}): a block of {} bytes",
            self.layout.size(),
            self.layout.align(),
            self.need
        )?;
        if self.search != self.need {
            write!(f, ", {} with room to align it", self.search)?;
        }
        writeln!(
            f,
            "; good fit rounds it up to {}, the smallest size of class ({fl}, {sl}).\n",
            self.rounded
        )?;
        let in_row = bits::lowest_set_from(self.row, sl);
        write!(f, "1. scan row {fl} from column {sl}: ")?;
        match in_row {
            Some(at) => writeln!(f, "bit {at} is set, list ({fl}, {at})")?,
            None => writeln!(f, "no bit set")?,
        }
        draw_scan(f, Some(fl), self.row, self.lists_per_row, sl, in_row)?;
        if in_row.is_none() {
            let next_row = bits::lowest_set_from(self.fl_bitmap, fl + 1);
            write!(f, "2. scan the rows above {fl}: ")?;
            match next_row {
                Some(row) => writeln!(f, "bit {row} is set, row {row}")?,
                None => writeln!(f, "no bit set")?,
            }
            draw_scan(f, None, self.fl_bitmap, self.rows, fl + 1, next_row)?;
            if let Some(found) = self.found {
                let Class { fl, sl } = found.class;
                writeln!(f, "3. the lowest set bit of row {fl}: list ({fl}, {sl})")?;
                draw_scan(f, Some(fl), found.row, self.lists_per_row, 0, Some(sl))?;
            }
        }
        match (self.found, self.taken) {
            (Some(found), Some((offset, size))) => writeln!(
                f,
                "list ({}, {}) holds blocks of {} bytes or more: its first block, at +{offset:#x}, \
                 {size} bytes, is taken; what the request leaves of it, if that is a block, goes on \
                 the list of its own size.",
                found.class.fl, found.class.sl, found.min_size
            ),
            (None, Some((offset, size))) => writeln!(
                f,
                "no list of a class that large holds a block; the first block on the search \
                 size's own list, at +{offset:#x}, {size} bytes, is large enough and is taken."
            ),
            (_, None) => writeln!(f, "no block is found: the request is refused."),
        }
    }
}
