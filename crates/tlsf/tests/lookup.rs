//! The drawing of a search (`Lookup`'s `Display`), which the book prints: each of its
//! three steps and three endings, character for character, on searches built for them.

use core::alloc::Layout;

use tlsf::{Class, Found, Lookup};

/// A search for 1200 bytes (a block of 1216) starting at class (2, 6), in an index of
/// 8 rows of 16 lists; the test sets the bitmaps and what was found.
fn search(row: usize, fl_bitmap: usize) -> Lookup {
    Lookup {
        layout: Layout::from_size_align(1200, 8).unwrap(),
        need: 1216,
        search: 1216,
        rounded: 1216,
        wanted: Class { fl: 2, sl: 6 },
        row,
        fl_bitmap,
        found: None,
        taken: None,
        lists_per_row: 16,
        rows: 8,
    }
}

/// The ruler over a row of 16 lists and over the 8 rows.
const RULER_16: &str = "               0       8       \n";
const RULER_8: &str = "               0       \n";

#[test]
fn a_bit_in_the_requests_own_row_ends_the_search_at_once() {
    let mut lookup = search(0b1000_0010, 0b100);
    lookup.found = Some(Found {
        class: Class { fl: 2, sl: 7 },
        min_size: 1248,
        row: 0b1000_0010,
    });
    lookup.taken = Some((0x40, 1300));
    let expected = [
        "allocate(1200 bytes, align 8): a block of 1216 bytes; good fit rounds it up to 1216, \
         the smallest size of class (2, 6).\n",
        "\n",
        "1. scan row 2 from column 6: bit 7 is set, list (2, 7)\n",
        RULER_16,
        "sl_bitmap[ 2]  .1.....1........\n",
        // The scan starts at column 6 (bit 1 is below it) and stops at bit 7.
        "                     -^        \n",
        "list (2, 7) holds blocks of 1248 bytes or more: its first block, at +0x40, 1300 bytes, \
         is taken; what the request leaves of it, if that is a block, goes on the list of its \
         own size.\n",
    ]
    .concat();
    assert_eq!(lookup.to_string(), expected);
}

#[test]
fn an_empty_row_sends_the_search_to_the_next_row_up_and_its_lowest_list() {
    let mut lookup = search(0b10, 0b1010_0100);
    lookup.layout = Layout::from_size_align(1200, 64).unwrap();
    lookup.search = 1264;
    lookup.rounded = 1280;
    lookup.wanted = Class { fl: 2, sl: 8 };
    lookup.found = Some(Found {
        class: Class { fl: 5, sl: 3 },
        min_size: 9728,
        row: 0b1_1000,
    });
    lookup.taken = Some((0x100, 9800));
    let expected = [
        "allocate(1200 bytes, align 64): a block of 1216 bytes, 1264 with room to align it; \
         good fit rounds it up to 1280, the smallest size of class (2, 8).\n",
        "\n",
        "1. scan row 2 from column 8: no bit set\n",
        RULER_16,
        "sl_bitmap[ 2]  .1..............\n",
        "                       --------\n",
        // Row 2 itself is set (it has a smaller block): the scan starts above it.
        "2. scan the rows above 2: bit 5 is set, row 5\n",
        RULER_8,
        "fl_bitmap      ..1..1.1\n",
        "                  --^  \n",
        "3. the lowest set bit of row 5: list (5, 3)\n",
        RULER_16,
        "sl_bitmap[ 5]  ...11...........\n",
        "               ---^            \n",
        "list (5, 3) holds blocks of 9728 bytes or more: its first block, at +0x100, 9800 \
         bytes, is taken; what the request leaves of it, if that is a block, goes on the list \
         of its own size.\n",
    ]
    .concat();
    assert_eq!(lookup.to_string(), expected);
}

#[test]
fn no_row_above_ends_in_the_search_sizes_own_list_or_a_refusal() {
    let mut lookup = search(0b10_0000, 0b100);
    let steps = [
        "allocate(1200 bytes, align 8): a block of 1216 bytes; good fit rounds it up to 1216, \
         the smallest size of class (2, 6).\n",
        "\n",
        "1. scan row 2 from column 6: no bit set\n",
        RULER_16,
        "sl_bitmap[ 2]  .....1..........\n",
        "                     ----------\n",
        "2. scan the rows above 2: no bit set\n",
        RULER_8,
        "fl_bitmap      ..1.....\n",
        "                  -----\n",
    ]
    .concat();
    assert_eq!(
        lookup.to_string(),
        steps.clone() + "no block is found: the request is refused.\n"
    );
    // A block of class (2, 5) may still hold 1216 bytes: taken when it does.
    lookup.taken = Some((0x20, 1232));
    assert_eq!(
        lookup.to_string(),
        steps
            + "no list of a class that large holds a block; the first block on the search \
               size's own list, at +0x20, 1232 bytes, is large enough and is taken.\n"
    );
}

#[test]
fn rows_from_ten_up_keep_the_drawing_aligned() {
    let mut lookup = search(0, 1 << 12);
    lookup.wanted = Class { fl: 11, sl: 15 };
    lookup.rows = 16;
    let drawing = lookup.to_string();
    assert!(
        drawing.contains("\nsl_bitmap[11]  ................\n"),
        "{drawing}"
    );
    assert!(drawing.contains("2. scan the rows above 11: bit 12 is set, row 12\n"));
    assert!(drawing.contains("\nfl_bitmap      ............1...\n            "));
    assert!(drawing.contains("\n                           ^   \n"));
}
