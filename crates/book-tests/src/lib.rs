//! The heaplab book's tests.
//!
//! Every ```` ```rust ```` block of a chapter is a doctest of this crate: each chapter is
//! pulled in as the documentation of an item that exists only under `cfg(doctest)`, so
//! `cargo test -p book-tests` compiles and runs the book's examples against the real
//! workspace crates. Listings of allocator code are not pasted into the book but included
//! from the crates by anchor; they are fenced as ```` ```rust,ignore ```` here because they
//! are fragments, and they are tested as the crate code they are. [`links`] checks that
//! every include, anchor, figure and local link of the book resolves.

pub mod links;
