//! Where a program's data lives: a static, locals on the stack, and a `Box` on the heap.
//!
//! `cargo run -p book-tests --example where_things_live`
//!
//! Addresses change from run to run (the system places each part of the program at a
//! random address, ASLR); where they lie relative to each other does not.

/// Static memory: laid out before the program runs, alive until it ends.
static GREETING: [u8; 5] = *b"hello";

fn address<T: ?Sized>(value: &T) -> usize {
    (value as *const T).cast::<u8>().addr()
}

/// A local in a second stack frame, one call deeper than `main`'s.
#[inline(never)]
fn callee_local_address() -> usize {
    let local = 0u64;
    address(std::hint::black_box(&local))
}

fn row(kind: &str, what: &str, addr: usize, note: &str) {
    let line = format!("{kind:<7} {what:<22} {addr:#014x}  {note}");
    println!("{}", line.trim_end());
}

fn main() {
    let local = 42u64;
    let boxed = Box::new(7u64);
    let (in_static, on_stack, on_heap) = (address(&GREETING), address(&local), address(&*boxed));
    let deeper = callee_local_address();

    row("static", "GREETING", in_static, "");
    row("stack", "main's `local`", on_stack, "");
    let direction = if deeper < on_stack {
        "below main's: this stack grows down"
    } else {
        "above main's: this stack grows up"
    };
    row("stack", "the callee's local", deeper, direction);
    row(
        "stack",
        "the Box itself",
        address(&boxed),
        "a pointer, in main's frame",
    );
    row("heap", "the u64 it owns", on_heap, "");

    let moved = boxed;
    assert_eq!(
        address(&*moved),
        on_heap,
        "moving a Box moves the pointer, not the value"
    );
    row(
        "heap",
        "the u64 after a move",
        address(&*moved),
        "`let moved = boxed;` moved the pointer only",
    );
}
