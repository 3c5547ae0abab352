//! How an object tells the collector which handles it holds: [`Trace`] and [`Tracer`].

use crate::{Gc, Handle};

// ANCHOR: trace
/// A type whose values may hold handles: `trace` hands each one to the tracer.
///
/// The collector calls it while marking, once per reachable object. An implementation
/// calls [`Trace::trace`] on every field that may hold a handle; types that hold none
/// trace nothing.
///
/// The trait is safe to implement: a handle left out makes its object look unreachable,
/// so the object is freed while the program may still use the handle, and the handle
/// then answers `None`. The program is wrong, but memory stays safe.
pub trait Trace {
    /// Hands every handle `self` holds to `tracer`.
    fn trace(&self, tracer: &mut Tracer<'_>);
}

/// Collects the handles objects hand over while the collector marks.
pub struct Tracer<'a> {
    /// The mark stack: handles reached but not yet looked at.
    gray: &'a mut Vec<Handle>,
}

impl<'a> Tracer<'a> {
    pub(crate) fn new(gray: &'a mut Vec<Handle>) -> Self {
        Tracer { gray }
    }

    /// `gc` is reachable from the object being traced.
    pub fn edge<T>(&mut self, gc: Gc<T>) {
        self.gray.push(gc.handle);
    }
}
// ANCHOR_END: trace

impl<T> Trace for Gc<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.edge(*self);
    }
}

impl<T: Trace> Trace for Option<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Some(value) = self {
            value.trace(tracer);
        }
    }
}

impl<T: Trace> Trace for [T] {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        for value in self {
            value.trace(tracer);
        }
    }
}

impl<T: Trace, const N: usize> Trace for [T; N] {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.as_slice().trace(tracer);
    }
}

impl<T: Trace> Trace for Vec<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.as_slice().trace(tracer);
    }
}

impl<T: Trace + ?Sized> Trace for Box<T> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        (**self).trace(tracer);
    }
}

impl<A: Trace, B: Trace> Trace for (A, B) {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.0.trace(tracer);
        self.1.trace(tracer);
    }
}

/// Types that hold no handles.
macro_rules! trace_nothing {
    ($($ty:ty),* $(,)?) => {
        $(impl Trace for $ty {
            fn trace(&self, _: &mut Tracer<'_>) {}
        })*
    };
}

trace_nothing!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    str,
    String,
);
