//! Messages to stderr without allocating: formatted into a buffer on the stack and
//! written with one `write(2)`, since `eprintln!` may allocate and would re-enter
//! `malloc` from inside it.

use core::fmt;

/// A line of text being formatted; longer messages are cut, never grown.
pub struct Message {
    bytes: [u8; 1024],
    len: usize,
}

impl Message {
    /// An empty message.
    pub const fn new() -> Self {
        Message {
            bytes: [0; 1024],
            len: 0,
        }
    }

    /// Writes the message to stderr.
    pub fn emit(&self) {
        // SAFETY: the first `len` bytes of `bytes` are initialised and readable.
        let _ = unsafe { libc::write(2, self.bytes.as_ptr().cast(), self.len) };
    }
}

impl fmt::Write for Message {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        let take = text.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&text.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Formats and emits one message: `say!("heaplab: {x}")`.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut message = $crate::say::Message::new();
        let _ = core::fmt::Write::write_fmt(&mut message, format_args!($($arg)*));
        message.emit();
    }};
}
pub(crate) use say;

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = &self.bytes[..self.len];
        // A cut may split a character: show the valid part.
        let valid = match core::str::from_utf8(text) {
            Ok(all) => all,
            Err(error) => core::str::from_utf8(&text[..error.valid_up_to()]).unwrap_or_default(),
        };
        f.write_str(valid)
    }
}
