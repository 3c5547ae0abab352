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
//! Blank lines, whitespace around fields and CRLF line ends are tolerated. So are the
//! dialects that traces recorded from C programs use, each read as the C call means and
//! reported once per file as a [`Warning`] (file, line and what was done), not refused:
//!
//! * `f -1` (any negative id) is `free(NULL)`, which does nothing: the line is skipped;
//! * `r ID SIZE` of an id never allocated is `realloc(NULL, SIZE)`, an allocation: it is
//!   read as `a ID SIZE`;
//! * a header whose number of operations is not the number of op lines that follow: every
//!   op line is kept.
//!
//! Everything else that is not this shape is a [`ParseError`] that names the file, the
//! line and the reason: an op line that ends before its size, a `f` or `r` of an id that
//! was already freed, an id at or above the header's number of ids.

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
///
/// The header's number of operations is not kept: it is always `ops.len()`, which is
/// what [`Trace::write`] writes.
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
    /// What [`Trace::parse`] accepted from a C dialect or forgave, at most one per
    /// [`WarningKind`], in line order; empty for a trace built any other way.
    warnings: Vec<Warning>,
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
            warnings: Vec::new(),
        })
    }

    /// Parses the text of a `.rep` file. `source_name` (usually the file's path) is what
    /// errors and [`warnings`](Trace::warnings) call the file.
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

    /// What [`Trace::parse`] read from a C dialect or forgave (see the [module
    /// documentation](self)): at most one warning of each kind, naming the first line
    /// concerned. Empty for a trace in the plain format and for one built by
    /// [`Trace::new`]; a written trace parses back without any.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
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
    /// 1-based line number. For a missing header line it is the line after the last
    /// one: where the missing text should have been.
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

/// Something [`Trace::parse`] accepted although the plain format does not have it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    /// `f` of a negative id: `free(NULL)`, which does nothing; the lines are skipped.
    FreeOfNull {
        /// How many such lines the file has.
        count: usize,
    },
    /// `r` of an id never allocated: `realloc(NULL, size)`, read as `a`.
    ReallocAllocates {
        /// The id of the first one.
        id: usize,
        /// How many such ops the file has.
        count: usize,
    },
    /// The header's number of operations is not the number of op lines; every op line
    /// is kept.
    OpCount {
        /// What the header says.
        declared: usize,
        /// The op lines in the file (`free(NULL)` lines included).
        found: usize,
    },
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WarningKind::FreeOfNull { count } => write!(
                f,
                "`f` of a negative id is free(NULL), which does nothing: skipped \
                 ({} in the file, the first here)",
                lines(count)
            ),
            WarningKind::ReallocAllocates { id, count } => write!(
                f,
                "`r` of id {id}, which was never allocated, is realloc(NULL, n): read as `a` \
                 ({} in the file, the first here)",
                lines(count)
            ),
            WarningKind::OpCount { declared, found } => write!(
                f,
                "the header declares {declared} operations but {} follow: all are read",
                lines(found)
            ),
        }
    }
}

/// `1 line`, `3 lines`.
fn lines(count: usize) -> String {
    format!("{count} line{}", if count == 1 { "" } else { "s" })
}

/// A line of a `.rep` file that [`Trace::parse`] read in a dialect or forgave: where and
/// what. [`Trace::warnings`] holds them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// What the file is called (the `source_name` given to [`Trace::parse`]).
    pub source_name: String,
    /// 1-based number of the first line concerned (for [`WarningKind::OpCount`], the
    /// header's line).
    pub line: usize,
    /// What was accepted, and how it was read.
    pub kind: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning: {}",
            self.source_name, self.line, self.kind
        )
    }
}

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

    /// Whether `id` has never been allocated so far.
    fn never_allocated(&self, id: usize) -> bool {
        !self.state.contains_key(&id)
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
        let (_, suggested_heap) = self.header_field(HeaderField::SuggestedHeap)?;
        let (_, num_ids) = self.header_field(HeaderField::NumIds)?;
        let (num_ops_line, num_ops): (usize, usize) = self.header_field(HeaderField::NumOps)?;
        let (_, weight) = self.header_field(HeaderField::Weight)?;
        let mut liveness = Liveness::new(num_ids);
        let mut ops = Vec::with_capacity(num_ops.min(self.lines.len()));
        let mut op_lines = 0;
        let mut free_of_null = Dialect::default();
        let mut realloc_allocates = Dialect::default();
        while let Some((line, text)) = self.lines.next() {
            op_lines += 1;
            let Some(mut op) = parse_op(text).map_err(|reason| self.error(line, reason))? else {
                free_of_null.seen(line, 0);
                continue;
            };
            if let Op::Realloc { id, size } = op
                && liveness.never_allocated(id)
            {
                realloc_allocates.seen(line, id);
                op = Op::Alloc { id, size };
            }
            liveness
                .apply(&op)
                .map_err(|invalid| self.error(line, ParseReason::Invalid(invalid)))?;
            ops.push(op);
        }
        let mut warnings = Vec::new();
        if op_lines != num_ops {
            warnings.push(self.warning(
                num_ops_line,
                WarningKind::OpCount {
                    declared: num_ops,
                    found: op_lines,
                },
            ));
        }
        if let Some((line, _)) = free_of_null.first {
            let count = free_of_null.count;
            warnings.push(self.warning(line, WarningKind::FreeOfNull { count }));
        }
        if let Some((line, id)) = realloc_allocates.first {
            let count = realloc_allocates.count;
            warnings.push(self.warning(line, WarningKind::ReallocAllocates { id, count }));
        }
        warnings.sort_by_key(|warning| warning.line);
        Ok(Trace {
            suggested_heap,
            num_ids,
            weight,
            ops,
            warnings,
        })
    }

    fn warning(&self, line: usize, kind: WarningKind) -> Warning {
        Warning {
            source_name: self.source_name.to_string(),
            line,
            kind,
        }
    }

    /// The next header line's value, with its line number.
    fn header_field<T: std::str::FromStr>(
        &mut self,
        field: HeaderField,
    ) -> Result<(usize, T), ParseError> {
        let Some((line, text)) = self.lines.next() else {
            return Err(self.error(self.end_line, ParseReason::MissingHeader(field)));
        };
        let value = text.parse().map_err(|_| {
            self.error(
                line,
                ParseReason::BadHeader {
                    field,
                    text: text.to_string(),
                },
            )
        })?;
        Ok((line, value))
    }
}

/// The lines of one dialect in a file: how many, and the first with its id.
#[derive(Default)]
struct Dialect {
    count: usize,
    /// `(line, id)` of the first.
    first: Option<(usize, usize)>,
}

impl Dialect {
    fn seen(&mut self, line: usize, id: usize) {
        self.count += 1;
        self.first.get_or_insert((line, id));
    }
}

/// One op line (already trimmed, not blank); `None` for `free(NULL)`, an `f` of a
/// negative id.
fn parse_op(text: &str) -> Result<Option<Op>, ParseReason> {
    let mut fields = text.split_whitespace();
    let letter = match fields.next() {
        Some("a") => 'a',
        Some("f") => 'f',
        Some("r") => 'r',
        other => return Err(ParseReason::UnknownOp(other.unwrap_or("").to_string())),
    };
    let mut field = |name: &'static str| {
        fields.next().ok_or(ParseReason::MissingField {
            op: letter,
            field: name,
        })
    };
    let id_text = field("id")?;
    let op = match letter {
        'f' if is_negative(id_text) => None,
        'f' => Some(Op::Free {
            id: number("id", id_text)?,
        }),
        _ => {
            let id = number("id", id_text)?;
            let size = number("size", field("size")?)?;
            Some(if letter == 'a' {
                Op::Alloc { id, size }
            } else {
                Op::Realloc { id, size }
            })
        }
    };
    match fields.next() {
        Some(extra) => Err(ParseReason::ExtraField {
            op: letter,
            text: extra.to_string(),
        }),
        None => Ok(op),
    }
}

/// An id or size: a non-negative integer.
fn number(field: &'static str, text: &str) -> Result<usize, ParseReason> {
    text.parse().map_err(|_| ParseReason::NotANumber {
        field,
        text: text.to_string(),
    })
}

/// `-1`, `-42`: a minus sign, then digits that are not all zeros. C recorders write
/// `free(NULL)` as `f -1`.
fn is_negative(text: &str) -> bool {
    text.strip_prefix('-').is_some_and(|digits| {
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.bytes().any(|b| b != b'0')
    })
}
