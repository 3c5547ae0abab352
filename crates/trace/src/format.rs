//! The `.rep` format of the CS:APP malloc lab: [`Trace`], [`Op`], parsing and writing.
//!
//! ```text
//! 20000        suggested heap size (bytes)
//! 3            number of ids: every id is below this
//! 5            number of operations
//! 1            weight (0 leaves the trace out of the lab's score)
//! a 0 512      allocate 512 bytes as block 0
//! a 1 128
//! r 0 640      reallocate block 0 to 640 bytes
//! f 1          free block 1
//! f 0
//! ```
//!
//! Blank lines and whitespace around fields are tolerated. Everything else that is not
//! this shape is a [`ParseError`] that names the file, the line and the reason.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One operation of a trace. Ids name blocks; sizes are in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `a ID SIZE`: allocate `size` bytes and call the block `id`.
    Alloc {
        /// The block's name; not live before this op.
        id: usize,
        /// Bytes requested; 0 is legal in the format (see [`served_size`]).
        size: usize,
    },
    /// `f ID`: free block `id`.
    Free {
        /// A live block.
        id: usize,
    },
    /// `r ID SIZE`: resize block `id` to `size` bytes, keeping its contents.
    Realloc {
        /// A live block.
        id: usize,
        /// The new size in bytes.
        size: usize,
    },
}

impl Op {
    /// The block this op is about.
    pub const fn id(&self) -> usize {
        match *self {
            Op::Alloc { id, .. } | Op::Free { id } | Op::Realloc { id, .. } => id,
        }
    }
}

/// The bytes a replay asks the heap for when the trace says `size`. heaplab heaps refuse
/// size 0 ([`rawheap::AllocError::ZeroSize`]), so `a ID 0` and `r ID 0` are served as
/// 1-byte requests, and every measurement counts them as 1 requested byte.
pub const fn served_size(size: usize) -> usize {
    if size == 0 { 1 } else { size }
}

/// A whole trace: the four header values and the operations, which are always valid
/// (every id below `num_ids`, no double allocation, no free or realloc of a block that
/// is not live). Build one with [`Trace::new`], [`Trace::parse`] or [`Trace::read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The region size the trace's author suggests replaying it in.
    suggested_heap: usize,
    /// Every op's id is below this.
    num_ids: usize,
    /// The trace's weight in the lab's score; 0 leaves it out.
    weight: u32,
    /// Valid as a sequence: see [`Invalid`] for what is ruled out.
    ops: Vec<Op>,
}

impl Trace {
    /// A trace from its parts, after checking that `ops` is valid.
    pub fn new(
        suggested_heap: usize,
        num_ids: usize,
        weight: u32,
        ops: Vec<Op>,
    ) -> Result<Trace, InvalidTrace> {
        let mut liveness = Liveness::new(num_ids);
        for (op_index, op) in ops.iter().enumerate() {
            liveness
                .apply(op)
                .map_err(|reason| InvalidTrace { op_index, reason })?;
        }
        Ok(Trace {
            suggested_heap,
            num_ids,
            weight,
            ops,
        })
    }

    /// Parses the text of a `.rep` file. `source_name` (usually the file's path) is what
    /// errors call the file.
    pub fn parse(text: &str, source_name: &str) -> Result<Trace, ParseError> {
        Parser::new(text, source_name).parse()
    }

    /// Reads and parses a `.rep` file.
    pub fn read(path: impl AsRef<Path>) -> Result<Trace, ReadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| ReadError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Trace::parse(&text, &path.display().to_string())?)
    }

    /// Writes the trace in the `.rep` format; [`Trace::parse`] reads it back unchanged.
    pub fn write(&self, mut out: impl Write) -> io::Result<()> {
        write!(out, "{self}")
    }

    /// The same trace suggesting a region of `bytes`.
    pub fn with_suggested_heap(self, bytes: usize) -> Trace {
        Trace {
            suggested_heap: bytes,
            ..self
        }
    }

    /// The region size the trace's author suggests.
    pub const fn suggested_heap(&self) -> usize {
        self.suggested_heap
    }

    /// Every id is below this.
    pub const fn num_ids(&self) -> usize {
        self.num_ids
    }

    /// The trace's weight in the malloc lab's score (0 leaves it out).
    pub const fn weight(&self) -> u32 {
        self.weight
    }

    /// The operations, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Counts and peaks of the trace itself, independent of any heap.
    pub fn profile(&self) -> Profile {
        let mut profile = Profile::default();
        let mut live: HashMap<usize, usize> = HashMap::new();
        let mut live_bytes = 0usize;
        for op in &self.ops {
            match *op {
                Op::Alloc { id, size } => {
                    profile.allocs += 1;
                    live_bytes = live_bytes.saturating_add(served_size(size));
                    live.insert(id, served_size(size));
                }
                Op::Free { id } => {
                    profile.frees += 1;
                    live_bytes = live_bytes.saturating_sub(live.remove(&id).unwrap_or(0));
                }
                Op::Realloc { id, size } => {
                    profile.reallocs += 1;
                    let old = live.insert(id, served_size(size)).unwrap_or(0);
                    live_bytes = live_bytes
                        .saturating_sub(old)
                        .saturating_add(served_size(size));
                }
            }
            profile.max_size = profile.max_size.max(match *op {
                Op::Alloc { size, .. } | Op::Realloc { size, .. } => served_size(size),
                Op::Free { .. } => 0,
            });
            profile.peak_live_bytes = profile.peak_live_bytes.max(live_bytes);
        }
        profile.live_at_end = live.len();
        profile
    }
}

impl fmt::Display for Trace {
    /// The `.rep` text: four header lines, then one op per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.suggested_heap)?;
        writeln!(f, "{}", self.num_ids)?;
        writeln!(f, "{}", self.ops.len())?;
        writeln!(f, "{}", self.weight)?;
        for op in &self.ops {
            match *op {
                Op::Alloc { id, size } => writeln!(f, "a {id} {size}")?,
                Op::Free { id } => writeln!(f, "f {id}")?,
                Op::Realloc { id, size } => writeln!(f, "r {id} {size}")?,
            }
        }
        Ok(())
    }
}

/// What a trace does, counted without replaying it. Sizes are [`served_size`]s; byte
/// counts saturate at `usize::MAX` rather than overflow on absurd traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Profile {
    /// `a` ops.
    pub allocs: usize,
    /// `f` ops.
    pub frees: usize,
    /// `r` ops.
    pub reallocs: usize,
    /// The most bytes live at once: the numerator of utilization.
    pub peak_live_bytes: usize,
    /// The largest single request.
    pub max_size: usize,
    /// Blocks never freed (0 for a balanced trace).
    pub live_at_end: usize,
}

/// Why a sequence of ops is not a valid trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// An id at or above the header's number of ids.
    IdOutOfRange {
        /// The id.
        id: usize,
        /// The header's number of ids.
        num_ids: usize,
    },
    /// `a` of an id whose block is live.
    AllocOfLiveId {
        /// The id.
        id: usize,
    },
    /// `f` or `r` of an id that is not live.
    NotLive {
        /// The op, `'f'` or `'r'`.
        op: char,
        /// The id.
        id: usize,
        /// Whether the id was allocated before (and freed) or never.
        freed: bool,
    },
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Invalid::IdOutOfRange { id, num_ids } => write!(
                f,
                "id {id} is out of range: the header allows ids below {num_ids}"
            ),
            Invalid::AllocOfLiveId { id } => write!(f, "`a` of id {id}, which is already live"),
            Invalid::NotLive { op, id, freed } => {
                let state = if freed {
                    "already freed"
                } else {
                    "never allocated"
                };
                write!(f, "`{op}` of id {id}, which was {state}")
            }
        }
    }
}

/// An invalid op in a trace built by [`Trace::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTrace {
    /// 0-based index of the offending op.
    pub op_index: usize,
    /// What is wrong with it.
    pub reason: Invalid,
}

impl fmt::Display for InvalidTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op {}: {}", self.op_index, self.reason)
    }
}

impl std::error::Error for InvalidTrace {}

/// The four header lines, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderField {
    /// Line 1.
    SuggestedHeap,
    /// Line 2.
    NumIds,
    /// Line 3.
    NumOps,
    /// Line 4.
    Weight,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderField::SuggestedHeap => "suggested heap size",
            HeaderField::NumIds => "number of ids",
            HeaderField::NumOps => "number of operations",
            HeaderField::Weight => "weight",
        })
    }
}

/// Why a `.rep` file could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseReason {
    /// The file ended before this header line.
    MissingHeader(HeaderField),
    /// A header line that is not one non-negative integer.
    BadHeader {
        /// Which header line.
        field: HeaderField,
        /// The line as written.
        text: String,
    },
    /// An op that is not `a`, `f` or `r`.
    UnknownOp(String),
    /// An op line that ends before a field it needs.
    MissingField {
        /// The op letter.
        op: char,
        /// `"id"` or `"size"`.
        field: &'static str,
    },
    /// An op line with more fields than its op takes.
    ExtraField {
        /// The op letter.
        op: char,
        /// The first field too many.
        text: String,
    },
    /// An id or size that is not a non-negative integer.
    NotANumber {
        /// `"id"` or `"size"`.
        field: &'static str,
        /// The field as written.
        text: String,
    },
    /// A well-formed op that the trace so far makes invalid.
    Invalid(Invalid),
    /// More op lines than the header's number of operations.
    TooManyOps {
        /// The header's number of operations.
        declared: usize,
    },
    /// Fewer op lines than the header's number of operations.
    TooFewOps {
        /// The header's number of operations.
        declared: usize,
        /// The op lines in the file.
        found: usize,
    },
}

impl fmt::Display for ParseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseReason::MissingHeader(field) => {
                write!(f, "missing header field: {field} (the file ends before it)")
            }
            ParseReason::BadHeader { field, text } => write!(
                f,
                "bad header field: {field} must be a non-negative integer, found `{text}`"
            ),
            ParseReason::UnknownOp(op) => {
                write!(f, "unknown op `{op}` (expected `a`, `f` or `r`)")
            }
            ParseReason::MissingField { op, field } => {
                write!(f, "missing field: `{op}` needs {}", field_needs(*op, field))
            }
            ParseReason::ExtraField { op, text } => write!(
                f,
                "extra field `{text}`: `{op}` takes {}",
                field_needs(*op, "")
            ),
            ParseReason::NotANumber { field, text } => write!(
                f,
                "the {field} must be a non-negative integer, found `{text}`"
            ),
            ParseReason::Invalid(invalid) => write!(f, "{invalid}"),
            ParseReason::TooManyOps { declared } => write!(
                f,
                "too many operations: the header declares {declared}, this is one more"
            ),
            ParseReason::TooFewOps { declared, found } => write!(
                f,
                "too few operations: the header declares {declared}, the file has {found}"
            ),
        }
    }
}

/// The fields an op takes, for error messages; `missing` names the one that is absent.
fn field_needs(op: char, missing: &str) -> String {
    let fields = if op == 'f' {
        "an id"
    } else {
        "an id and a size"
    };
    if missing.is_empty() {
        fields.to_string()
    } else {
        format!("{fields}, the {missing} is missing")
    }
}

/// A `.rep` file that is not a valid trace: where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What the file is called (the `source_name` given to [`Trace::parse`]).
    pub source_name: String,
    /// 1-based line number. For an error found at the end of the file (a missing header
    /// line, too few operations) it is the line after the last one: where the missing
    /// text should have been.
    pub line: usize,
    /// What is wrong.
    pub reason: ParseReason,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source_name, self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Why [`Trace::read`] failed.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The file is not a valid trace.
    Parse(ParseError),
}

impl From<ParseError> for ReadError {
    fn from(error: ParseError) -> Self {
        ReadError::Parse(error)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            ReadError::Parse(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { error, .. } => Some(error),
            ReadError::Parse(error) => Some(error),
        }
    }
}

/// Which ids are live, to validate ops one at a time. Ids may be sparse and the header's
/// `num_ids` may be absurd, so the states live in a map sized by the ids really seen.
struct Liveness {
    /// Every id is below this.
    num_ids: usize,
    /// `true`: live; `false`: freed; absent: never allocated.
    state: HashMap<usize, bool>,
}

impl Liveness {
    fn new(num_ids: usize) -> Self {
        Liveness {
            num_ids,
            state: HashMap::new(),
        }
    }

    /// Checks `op` against the ops before it and records its effect.
    fn apply(&mut self, op: &Op) -> Result<(), Invalid> {
        let id = op.id();
        if id >= self.num_ids {
            return Err(Invalid::IdOutOfRange {
                id,
                num_ids: self.num_ids,
            });
        }
        let before = self.state.get(&id).copied();
        let (letter, live_after) = match op {
            Op::Alloc { .. } if before == Some(true) => return Err(Invalid::AllocOfLiveId { id }),
            Op::Alloc { .. } => ('a', true),
            Op::Free { .. } => ('f', false),
            Op::Realloc { .. } => ('r', true),
        };
        if letter != 'a' && before != Some(true) {
            return Err(Invalid::NotLive {
                op: letter,
                id,
                freed: before == Some(false),
            });
        }
        self.state.insert(id, live_after);
        Ok(())
    }
}

/// Reads a `.rep` text line by line, keeping the 1-based number of the current line.
struct Parser<'a> {
    source_name: &'a str,
    /// Non-blank lines, trimmed, with their 1-based numbers.
    lines: std::vec::IntoIter<(usize, &'a str)>,
    /// The line after the last one, for errors found at the end of the file.
    end_line: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, source_name: &'a str) -> Self {
        let lines: Vec<(usize, &str)> = text
            .lines()
            .enumerate()
            .map(|(index, line)| (index + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty())
            .collect();
        Parser {
            source_name,
            lines: lines.into_iter(),
            end_line: text.lines().count() + 1,
        }
    }

    fn error(&self, line: usize, reason: ParseReason) -> ParseError {
        ParseError {
            source_name: self.source_name.to_string(),
            line,
            reason,
        }
    }

    fn parse(mut self) -> Result<Trace, ParseError> {
        let suggested_heap = self.header_field(HeaderField::SuggestedHeap)?;
        let num_ids = self.header_field(HeaderField::NumIds)?;
        let num_ops: usize = self.header_field(HeaderField::NumOps)?;
        let weight = self.header_field(HeaderField::Weight)?;
        let mut liveness = Liveness::new(num_ids);
        let mut ops = Vec::with_capacity(num_ops.min(self.lines.len()));
        while let Some((line, text)) = self.lines.next() {
            if ops.len() == num_ops {
                return Err(self.error(line, ParseReason::TooManyOps { declared: num_ops }));
            }
            let op = parse_op(text).map_err(|reason| self.error(line, reason))?;
            liveness
                .apply(&op)
                .map_err(|invalid| self.error(line, ParseReason::Invalid(invalid)))?;
            ops.push(op);
        }
        if ops.len() < num_ops {
            return Err(self.error(
                self.end_line,
                ParseReason::TooFewOps {
                    declared: num_ops,
                    found: ops.len(),
                },
            ));
        }
        Ok(Trace {
            suggested_heap,
            num_ids,
            weight,
            ops,
        })
    }

    fn header_field<T: std::str::FromStr>(&mut self, field: HeaderField) -> Result<T, ParseError> {
        let Some((line, text)) = self.lines.next() else {
            return Err(self.error(self.end_line, ParseReason::MissingHeader(field)));
        };
        text.parse().map_err(|_| {
            self.error(
                line,
                ParseReason::BadHeader {
                    field,
                    text: text.to_string(),
                },
            )
        })
    }
}

/// One op line (already trimmed, not blank).
fn parse_op(text: &str) -> Result<Op, ParseReason> {
    let mut fields = text.split_whitespace();
    let letter = match fields.next() {
        Some("a") => 'a',
        Some("f") => 'f',
        Some("r") => 'r',
        other => return Err(ParseReason::UnknownOp(other.unwrap_or("").to_string())),
    };
    let mut number = |field: &'static str| -> Result<usize, ParseReason> {
        let text = fields
            .next()
            .ok_or(ParseReason::MissingField { op: letter, field })?;
        text.parse().map_err(|_| ParseReason::NotANumber {
            field,
            text: text.to_string(),
        })
    };
    let id = number("id")?;
    let op = match letter {
        'a' => Op::Alloc {
            id,
            size: number("size")?,
        },
        'r' => Op::Realloc {
            id,
            size: number("size")?,
        },
        _ => Op::Free { id },
    };
    match fields.next() {
        Some(extra) => Err(ParseReason::ExtraField {
            op: letter,
            text: extra.to_string(),
        }),
        None => Ok(op),
    }
}
