//! The heaplab book's tests.
//!
//! Every ```` ```rust ```` block of a chapter is a doctest of this crate: each chapter is
//! pulled in as the documentation of an item that exists only under `cfg(doctest)`, so
//! `cargo test -p book-tests` compiles and runs the book's examples against the real
//! workspace crates. Listings of allocator code are not pasted into the book but included
//! from the crates by anchor; they are fenced as ```` ```rust,ignore ```` here because they
//! are fragments, and they are tested as the crate code they are. [`links`] checks that
//! every include, anchor, figure and local link of the book resolves, [`figures`]
//! computes everything the book shows from real runs, and [`scenario`] is the chapters'
//! step-by-step demo.

pub mod buddy_figures;
pub mod figures;
pub mod gc_figures;
pub mod headerless_figures;
pub mod latency_figures;
pub mod links;
pub mod scenario;
pub mod slab_figures;

/// Each chapter's examples, as doctests (`cargo test -p book-tests --doc`).
#[cfg(doctest)]
mod chapters {
    #[doc = include_str!("../../../book/src/introduction.md")]
    struct Introduction;

    #[doc = include_str!("../../../book/src/contract.md")]
    struct Contract;

    #[doc = include_str!("../../../book/src/measuring.md")]
    struct Measuring;

    #[doc = include_str!("../../../book/src/bump.md")]
    struct Bump;

    #[doc = include_str!("../../../book/src/free-list.md")]
    struct FreeList;

    #[doc = include_str!("../../../book/src/testing.md")]
    struct Testing;

    #[doc = include_str!("../../../book/src/comparison.md")]
    struct Comparison;

    #[doc = include_str!("../../../book/src/tlsf.md")]
    struct Tlsf;

    #[doc = include_str!("../../../book/src/headerless.md")]
    struct Headerless;

    #[doc = include_str!("../../../book/src/gc.md")]
    struct Gc;
}
