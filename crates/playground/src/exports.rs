//! The C ABI the page calls: integers in, JSON out.
//!
//! Each `pg_*` function does one thing to the module's one [`Playground`] and writes its
//! answer, as JSON, into an output buffer; it returns the answer's length in bytes, and
//! [`pg_output`] gives where it starts in the module's memory. The page reads it there
//! before its next call (the next answer replaces it):
//!
//! ```js
//! const len = exports.pg_allocate(100, 8);
//! const json = new TextDecoder().decode(new Uint8Array(exports.memory.buffer, exports.pg_output(), len));
//! ```
//!
//! The answer is the heap's [`State`](crate::State) (with `last`, the operation's
//! [`Event`](crate::Event)), or `{"error": "..."}` when there is no heap to act on or the
//! arguments make no sense. Each page widget instantiates the module on its own, so
//! widgets never share a heap.

use std::cell::RefCell;

use heaplab::trace::Workload;
use serde::Serialize;

use crate::{MAX_REGION, MAX_SCALE, Playground, kinds};

thread_local! {
    /// The heap the page drives; `None` until `pg_open`.
    static PLAYGROUND: RefCell<Option<Playground>> = const { RefCell::new(None) };
    /// The last answer, valid until the next call.
    static OUTPUT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Where the last answer starts in the module's memory.
#[unsafe(no_mangle)]
pub extern "C" fn pg_output() -> *const u8 {
    OUTPUT.with_borrow(|output| output.as_ptr())
}

/// The allocators and workloads the page can offer:
/// `{"heaps": [{"name", "summary"}], "workloads": [...], "max_region", "max_scale"}`.
#[unsafe(no_mangle)]
pub extern "C" fn pg_catalog() -> usize {
    #[derive(Serialize)]
    struct Heap {
        name: &'static str,
        summary: &'static str,
    }
    #[derive(Serialize)]
    struct Catalog {
        heaps: Vec<Heap>,
        workloads: Vec<&'static str>,
        max_region: usize,
        max_scale: usize,
    }
    answer(&Catalog {
        heaps: kinds()
            .iter()
            .map(|kind| Heap {
                name: kind.entry.name,
                summary: kind.entry.summary,
            })
            .collect(),
        workloads: Workload::ALL.iter().map(|w| w.name()).collect(),
        max_region: MAX_REGION,
        max_scale: MAX_SCALE,
    })
}

/// Replaces the heap with a fresh one of allocator number `heap` over `region` bytes.
#[unsafe(no_mangle)]
pub extern "C" fn pg_open(heap: usize, region: usize) -> usize {
    match Playground::open(heap, region) {
        Ok(playground) => {
            PLAYGROUND.set(Some(playground));
            pg_state()
        }
        Err(error) => refuse(&error),
    }
}

/// The heap's state, changing nothing.
#[unsafe(no_mangle)]
pub extern "C" fn pg_state() -> usize {
    with_playground(|_| Ok(()))
}

/// `allocate(size, align)`.
#[unsafe(no_mangle)]
pub extern "C" fn pg_allocate(size: usize, align: usize) -> usize {
    with_playground(|playground| {
        playground.allocate(size, align);
        Ok(())
    })
}

/// Frees the live block at `offset` from the region's start.
#[unsafe(no_mangle)]
pub extern "C" fn pg_free(offset: usize) -> usize {
    with_playground(|playground| {
        playground.free(offset);
        Ok(())
    })
}

/// Resizes the live block at `offset` to `size` bytes.
#[unsafe(no_mangle)]
pub extern "C" fn pg_reallocate(offset: usize, size: usize) -> usize {
    with_playground(|playground| {
        playground.reallocate(offset, size);
        Ok(())
    })
}

/// Starts replaying workload number `workload` for `seed` at `scale` on a fresh heap of
/// the same allocator.
#[unsafe(no_mangle)]
pub extern "C" fn pg_load_trace(workload: usize, seed: usize, scale: usize) -> usize {
    with_playground(|playground| playground.load_trace(workload, seed as u64, scale))
}

/// Runs up to `count` operations of the trace, stopping after a refused one.
#[unsafe(no_mangle)]
pub extern "C" fn pg_step(count: usize) -> usize {
    with_playground(|playground| {
        playground.step(count);
        Ok(())
    })
}

/// Runs `act` on the playground and answers with its state, or with the error.
fn with_playground(act: impl FnOnce(&mut Playground) -> Result<(), String>) -> usize {
    let state = PLAYGROUND.with_borrow_mut(|playground| {
        let playground = playground
            .as_mut()
            .ok_or("no heap is open yet: call pg_open first")?;
        act(playground)?;
        serde_json::to_string(&playground.state()).map_err(|error| error.to_string())
    });
    match state {
        Ok(json) => write(json),
        Err(error) => refuse(&error),
    }
}

fn refuse(error: &str) -> usize {
    #[derive(Serialize)]
    struct Refusal<'a> {
        error: &'a str,
    }
    answer(&Refusal { error })
}

fn answer(value: &impl Serialize) -> usize {
    match serde_json::to_string(value) {
        Ok(json) => write(json),
        Err(error) => write(format!("{{\"error\":{:?}}}", error.to_string())),
    }
}

fn write(json: String) -> usize {
    OUTPUT.with_borrow_mut(|output| {
        *output = json;
        output.len()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The last answer, checked to be where `pg_output` says and `len` bytes long.
    fn read(len: usize) -> serde_json::Value {
        OUTPUT.with_borrow(|output| {
            assert_eq!(output.as_ptr(), pg_output());
            assert_eq!(output.len(), len);
            serde_json::from_str(output).expect("answers are JSON")
        })
    }

    #[test]
    fn calls_before_open_and_bad_arguments_answer_with_an_error() {
        let answer = read(pg_state());
        assert!(answer["error"].as_str().unwrap().contains("pg_open"));
        let answer = read(pg_open(usize::MAX, 4096));
        assert!(answer["error"].as_str().unwrap().contains("no allocator"));
        assert!(read(pg_allocate(8, 8))["error"].is_string());
    }

    #[test]
    fn the_catalog_lists_the_registry_and_the_workloads() {
        let catalog = read(pg_catalog());
        let heaps = catalog["heaps"].as_array().unwrap();
        assert_eq!(heaps.len(), heaplab::registry::entries().len());
        assert_eq!(heaps[0]["name"], heaplab::registry::entries()[0].name);
        assert_eq!(
            catalog["workloads"].as_array().unwrap().len(),
            Workload::ALL.len()
        );
    }

    #[test]
    fn each_call_answers_with_the_state_after_it() {
        let opened = read(pg_open(1, 8192));
        assert_eq!(opened["heap"], heaplab::registry::entries()[1].name);
        assert_eq!(opened["region"], 8192);
        assert!(opened["last"].is_null());
        let allocated = read(pg_allocate(100, 16));
        assert_eq!(allocated["last"]["ok"], true);
        let offset = allocated["last"]["offset"].as_u64().unwrap() as usize;
        assert_eq!(allocated["live"][0], serde_json::json!([offset, 100, 16]));
        let grown = read(pg_reallocate(offset, 300));
        assert_eq!(grown["live"][0][1], 300);
        let moved = grown["last"]["offset"].as_u64().unwrap() as usize;
        let freed = read(pg_free(moved));
        assert_eq!(freed["live"], serde_json::json!([]));
        assert_eq!(freed["stats"]["live_blocks"], 0);
        let loaded = read(pg_load_trace(0, 9, 1));
        assert_eq!(loaded["trace"]["next"], 0);
        assert_eq!(loaded["trace"]["workload"], Workload::ALL[0].name());
        let stepped = read(pg_step(10));
        assert_eq!(stepped["trace"]["next"], 10);
        assert!(read(pg_load_trace(99, 9, 1))["error"].is_string());
    }
}
