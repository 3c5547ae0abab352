//! Turning a heap's panic into an answer: [`catch`] runs code, and when it panics returns
//! the panic's message and place instead of unwinding further.
//!
//! The panic hook would print every caught panic to stderr, which for a broken heap
//! under a shrinking property test means hundreds of identical reports. A hook installed
//! once stays silent on a thread while it runs inside [`catch`] (it records the place
//! instead) and hands every other panic to the hook that was there before.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`catch`] calls this thread is inside.
    static CATCHING: Cell<usize> = const { Cell::new(0) };
    /// Where the last panic caught on this thread happened.
    static PLACE: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn install_quiet_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.get() > 0 {
                PLACE.set(info.location().map(ToString::to_string));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; if it panics, `Err` with the panic's message and, when known, its place.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_quiet_hook();
    CATCHING.set(CATCHING.get() + 1);
    // The caller's state may be half-updated after a panic; callers only report it and
    // throw it away, which is what AssertUnwindSafe promises.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.set(CATCHING.get() - 1);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        match PLACE.take() {
            Some(place) => format!("{message} (at {place})"),
            None => message,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_place() {
        let caught = catch(|| -> u8 { panic!("out of {}", "memory") }).unwrap_err();
        assert!(caught.starts_with("out of memory (at "), "{caught}");
        assert!(caught.contains("panics.rs"), "{caught}");
    }

    #[test]
    fn no_panic_passes_the_value_through() {
        assert_eq!(catch(|| 7), Ok(7));
    }
}
