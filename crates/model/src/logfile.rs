//! Streaming reader for CloudTrail log files (`{"Records":[{...},{...}]}`, gzip'd or not).
//!
//! [`LogFileReader`] inflates its input in blocks and cuts the `Records` array into the
//! original text of each record, one at a time, so memory holds one input block plus the
//! record being returned — never the whole decompressed file, never a parsed copy of it.
//! [`EventReader`] sits on top and turns each record text into a [`ParsedEvent`].
//!
//! The framing is a small hand-written scanner: it only needs to find where each record
//! starts and ends (brace depth, outside strings, with escapes). Each record's text is then
//! parsed by serde_json, which validates it completely; other top-level members are
//! validated the same way. So a document is accepted exactly when it is valid JSON of the
//! shape `{ …, "Records": [ <object>, … ], … }` followed by nothing but whitespace.
//!
//! Every way a file can be bad has its own [`LogFileError`] variant with a stable
//! [`reason_code`](LogFileError::reason_code) (for quarantine rows and metric labels) and a
//! message that says where (compressed or decompressed byte offset, record index).
//! Because records are returned before the end of the file is seen, a caller must treat an
//! error at any point as "this whole file is bad" — the ingest pipeline does so by undoing
//! the object in the store (`EventWriter::quarantine_object`).

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::GzDecoder;
use memchr::{memchr2, memchr3};
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

use crate::event::{EventError, ParsedEvent};

/// What reading one object may cost. Every byte of an object is attacker-chosen (anyone who
/// can write to the bucket, or forge a notification): 10 MB of gzip'd whitespace inflates to
/// 10 GB, and one 60 MB record is 60 MB in memory for every page that shows it. CloudTrail's
/// own files are gzip'd JSON at 5–30× with records of a few KiB, so the defaults leave real
/// files far inside the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The largest record (or other value of the document), decompressed.
    pub max_record_bytes: usize,
    /// The most decompressed bytes one object may hold.
    pub max_inflated_bytes: u64,
    /// The most decompressed bytes per compressed byte, checked once an object has
    /// inflated past [`RATIO_CHECK_AFTER`] (small files may compress better).
    pub max_ratio: u64,
}

/// Inflated bytes before [`ReadLimits::max_ratio`] applies.
pub const RATIO_CHECK_AFTER: u64 = 16 << 20;

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits { max_record_bytes: 4 << 20, max_inflated_bytes: 2 << 30, max_ratio: 200 }
    }
}

const READ_BLOCK: usize = 256 << 10;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

#[derive(Debug, thiserror::Error)]
pub enum LogFileError {
    /// Reading the underlying object failed (not the content's fault; retry later).
    #[error("read error: {0}")]
    Io(io::Error),
    #[error("empty object (0 bytes)")]
    Empty,
    #[error("gzip stream truncated: unexpected end of input after {compressed_bytes} compressed bytes")]
    GzipTruncated { compressed_bytes: u64 },
    #[error("gzip stream corrupt after {compressed_bytes} compressed bytes: {detail}")]
    GzipCorrupt { compressed_bytes: u64, detail: String },
    #[error("{trailing_bytes} bytes of trailing data after the end of the gzip stream{}",
        if *.looks_like_gzip { " (another gzip member; CloudTrail writes one)" } else { "" })]
    GzipTrailingData { trailing_bytes: u64, looks_like_gzip: bool },
    #[error("invalid UTF-8 at decompressed byte {offset}")]
    Utf8 { offset: u64 },
    #[error("not JSON: {detail} at decompressed byte {offset}")]
    JsonSyntax { offset: u64, detail: String },
    #[error("JSON truncated: input ends inside the document at decompressed byte {offset}")]
    JsonTruncated { offset: u64 },
    #[error("the JSON document is not an object (starts with {found:?} at decompressed byte {offset})")]
    NotAnObject { offset: u64, found: char },
    #[error("the JSON document has no \"Records\" member")]
    RecordsMissing,
    #[error("\"Records\" is not an array (found {found:?} at decompressed byte {offset})")]
    RecordsNotArray { offset: u64, found: char },
    #[error("\"Records\" appears twice (second at decompressed byte {offset})")]
    DuplicateRecords { offset: u64 },
    #[error("record {index} is not a JSON object (starts with {found:?} at decompressed byte {offset})")]
    RecordNotObject { index: u64, offset: u64, found: char },
    #[error("record {index} at decompressed byte {offset} is larger than {limit} bytes (ingest.max_record_bytes)")]
    ValueTooLarge { index: u64, offset: u64, limit: usize },
    #[error("inflates to more than {limit} bytes (ingest.max_inflated_bytes)")]
    InflatedTooLarge { limit: u64 },
    #[error("{compressed_bytes} compressed bytes inflated to {inflated_bytes}: more than {limit}× (ingest.max_inflate_ratio)")]
    InflateRatio { compressed_bytes: u64, inflated_bytes: u64, limit: u64 },
    #[error("record {index} at decompressed byte {offset}: {error}")]
    Record { index: u64, offset: u64, error: EventError },
    #[error("trailing data after the JSON document at decompressed byte {offset}")]
    TrailingData { offset: u64 },
}

impl LogFileError {
    /// Stable, low-cardinality name of the failure (quarantine reason, metric label).
    pub fn reason_code(&self) -> &'static str {
        match self {
            LogFileError::Io(_) => "io_error",
            LogFileError::Empty => "empty_object",
            LogFileError::GzipTruncated { .. } => "gzip_truncated",
            LogFileError::GzipCorrupt { .. } => "gzip_corrupt",
            LogFileError::GzipTrailingData { .. } => "gzip_trailing_data",
            LogFileError::Utf8 { .. } => "invalid_utf8",
            LogFileError::JsonSyntax { .. } => "json_syntax",
            LogFileError::JsonTruncated { .. } => "json_truncated",
            LogFileError::NotAnObject { .. } => "json_not_object",
            LogFileError::RecordsMissing => "records_missing",
            LogFileError::RecordsNotArray { .. } => "records_not_array",
            LogFileError::DuplicateRecords { .. } => "records_duplicated",
            LogFileError::RecordNotObject { .. } => "record_not_object",
            LogFileError::ValueTooLarge { .. } => "record_too_large",
            LogFileError::InflatedTooLarge { .. } => "inflated_too_large",
            LogFileError::InflateRatio { .. } => "inflate_ratio",
            LogFileError::Record { error, .. } => error.reason_code(),
            LogFileError::TrailingData { .. } => "json_trailing_data",
        }
    }

    /// `true` when the object itself is bad (quarantine it); `false` for I/O failures that
    /// say nothing about the content (leave it for a retry).
    pub fn is_content_error(&self) -> bool {
        !matches!(self, LogFileError::Io(_))
    }
}

/// What was read, once a file has been read to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    pub records: u64,
    pub gzip: bool,
    /// Bytes of the object as stored (compressed) and their SHA-256, hex.
    pub object_bytes: u64,
    pub object_sha256: String,
    /// Bytes after inflating and their SHA-256, hex: the `hashValue` a digest file lists.
    pub content_bytes: u64,
    pub content_sha256: String,
}

/// Cuts a log file into the text of its records. See the module documentation.
pub struct LogFileReader<R: Read> {
    src: Source<R>,
    block: usize,
    limits: ReadLimits,
    /// Decompressed bytes in `buf[..end]`; the rest is room kept initialised, so reading a
    /// block never zero-fills it again.
    buf: Vec<u8>,
    end: usize,
    /// `buf[..pos]` is consumed.
    pos: usize,
    /// Decompressed offset of `buf[0]`.
    base: u64,
    eof: bool,
    state: State,
    scan: Scan,
    records: u64,
    saw_records: bool,
    content_hash: Sha256,
    content_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,` between members: a key.
    Key,
    Colon {
        records: bool,
    },
    RecordsOpen,
    /// After `[` (first) or `,` (not first): a record, or `]` when first.
    RecordOrEnd {
        first: bool,
    },
    Record,
    AfterRecord,
    OtherValue,
    AfterMember,
    AfterDoc,
    Done,
}

/// Progress scanning one JSON value that starts at `buf[pos]`; offsets are relative to it.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    offset: usize,
    depth: u32,
    in_string: bool,
    escape: bool,
}

enum Step {
    Continue,
    NeedMore,
    Record { start: usize, end: usize },
    Finished,
}

impl<R: Read> LogFileReader<R> {
    /// Starts reading; gzip is detected by its magic bytes, anything else is read as JSON.
    pub fn new(reader: R) -> Result<Self, LogFileError> {
        Self::with_block_size(reader, READ_BLOCK)
    }

    /// Like [`new`](Self::new) with another read-block size (tests use tiny blocks to put
    /// block boundaries everywhere).
    pub fn with_block_size(reader: R, block: usize) -> Result<Self, LogFileError> {
        Self::with_limits_and_block(reader, ReadLimits::default(), block)
    }

    /// Like [`new`](Self::new) with other [`ReadLimits`].
    pub fn with_limits(reader: R, limits: ReadLimits) -> Result<Self, LogFileError> {
        Self::with_limits_and_block(reader, limits, READ_BLOCK)
    }

    fn with_limits_and_block(reader: R, limits: ReadLimits, block: usize) -> Result<Self, LogFileError> {
        let block = block.max(1);
        let mut input = BufReader::with_capacity(block, Counted::new(reader));
        let head = input.fill_buf().map_err(LogFileError::Io)?;
        if head.is_empty() {
            return Err(LogFileError::Empty);
        }
        let src = if head.starts_with(&GZIP_MAGIC) || (head.len() == 1 && head[0] == GZIP_MAGIC[0]) {
            Source::Gzip(GzDecoder::new(input))
        } else {
            Source::Plain(input)
        };
        Ok(LogFileReader {
            src,
            block,
            limits,
            buf: Vec::new(),
            end: 0,
            pos: 0,
            base: 0,
            eof: false,
            state: State::Start,
            scan: Scan::default(),
            records: 0,
            saw_records: false,
            content_hash: Sha256::new(),
            content_bytes: 0,
        })
    }

    /// The text of the next record, or `None` after the document ended cleanly (the
    /// whole input, including any gzip trailer, has then been read and checked).
    pub fn next_record(&mut self) -> Result<Option<&str>, LogFileError> {
        let (start, end) = loop {
            match self.step()? {
                Step::Continue => {}
                Step::NeedMore => {
                    if self.eof {
                        return Err(LogFileError::JsonTruncated { offset: self.base + self.end as u64 });
                    }
                    self.fill()?;
                }
                Step::Record { start, end } => break (start, end),
                Step::Finished => return Ok(None),
            }
        };
        let bytes = &self.buf[start..end];
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some(text)),
            Err(e) => Err(LogFileError::Utf8 { offset: self.base + (start + e.valid_up_to()) as u64 }),
        }
    }

    /// Index the next record will have (= records returned so far).
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Decompressed offset of the most recently returned record.
    fn last_record_offset(&self) -> u64 {
        self.base + self.pos as u64 - self.scan.offset as u64
    }

    /// Hashes and sizes; only meaningful after `next_record` returned `Ok(None)`.
    pub fn summary(&self) -> FileSummary {
        let counted = match &self.src {
            Source::Gzip(d) => d.get_ref().get_ref(),
            Source::Plain(r) => r.get_ref(),
        };
        FileSummary {
            records: self.records,
            gzip: matches!(self.src, Source::Gzip(_)),
            object_bytes: counted.bytes,
            object_sha256: hex::encode(counted.hash.clone().finalize()),
            content_bytes: self.content_bytes,
            content_sha256: hex::encode(self.content_hash.clone().finalize()),
        }
    }

    fn step(&mut self) -> Result<Step, LogFileError> {
        match self.state {
            State::Done => Ok(Step::Finished),
            State::Start => match self.skip_ws() {
                None => Ok(Step::NeedMore),
                Some(b'{') => self.advance(1, State::KeyOrEnd),
                Some(c) => Err(LogFileError::NotAnObject { offset: self.offset(), found: c as char }),
            },
            State::KeyOrEnd | State::Key => match self.skip_ws() {
                None => Ok(Step::NeedMore),
                Some(b'}') if self.state == State::KeyOrEnd => self.advance(1, State::AfterDoc),
                Some(b'"') => {
                    let avail = &self.buf[self.pos..self.end];
                    let Some(len) = scan_string(avail) else {
                        return self.need_more_for_value(avail.len());
                    };
                    let key: std::borrow::Cow<'_, str> =
                        serde_json::from_slice(&avail[..len]).map_err(|e| self.syntax(e))?;
                    let records = key == "Records";
                    drop(key);
                    if records && self.saw_records {
                        return Err(LogFileError::DuplicateRecords { offset: self.offset() });
                    }
                    self.advance(len, State::Colon { records })
                }
                Some(_) => Err(self.unexpected("a member name in quotes")),
            },
            State::Colon { records } => match self.skip_ws() {
                None => Ok(Step::NeedMore),
                Some(b':') => self.advance(1, if records { State::RecordsOpen } else { State::OtherValue }),
                Some(_) => Err(self.unexpected("':'")),
            },
            State::RecordsOpen => match self.skip_ws() {
                None => Ok(Step::NeedMore),
                Some(b'[') => {
                    self.saw_records = true;
                    self.advance(1, State::RecordOrEnd { first: true })
                }
                Some(c) => Err(LogFileError::RecordsNotArray { offset: self.offset(), found: c as char }),
            },
            State::RecordOrEnd { first } => match self.skip_ws() {
                None => Ok(Step::NeedMore),
                Some(b']') if first => self.advance(1, State::AfterMember),
                Some(b'{') => {
                    self.scan = Scan::default();
                    self.state = State::Record;
                    Ok(Step::Continue)
                }
                Some(b']') => Err(self.unexpected("a record after ','")),
                Some(c) => {
                    Err(LogFileError::RecordNotObject { index: self.records, offset: self.offset(), found: c as char })
                }
            },
            State::Record => match self.scan.object_end(&self.buf[self.pos..self.end], b'{', b'}') {
                Some(len) => {
                    let start = self.pos;
                    self.pos += len;
                    self.scan.offset = len;
                    self.state = State::AfterRecord;
                    self.records += 1;
                    Ok(Step::Record { start, end: start + len })
                }
                None if self.end - self.pos > self.limits.max_record_bytes => Err(LogFileError::ValueTooLarge {
                    index: self.records,
                    offset: self.offset(),
                    limit: self.limits.max_record_bytes,
                }),
                None => Ok(Step::NeedMore),
            },
            State::AfterRecord => match self.skip_ws() {
                None => Ok(Step::NeedMore),
                Some(b',') => self.advance(1, State::RecordOrEnd { first: false }),
                Some(b']') => self.advance(1, State::AfterMember),
                Some(_) => Err(self.unexpected("',' or ']' after a record")),
            },
            State::OtherValue => {
                if self.skip_ws().is_none() {
                    return Ok(Step::NeedMore);
                }
                let avail = &self.buf[self.pos..self.end];
                let len = match avail.first() {
                    None => return Ok(Step::NeedMore),
                    Some(b'{') => self.scan.object_end(avail, b'{', b'}'),
                    Some(b'[') => self.scan.object_end(avail, b'[', b']'),
                    Some(b'"') => scan_string(avail),
                    Some(_) => scan_scalar(avail, self.eof),
                };
                let Some(len) = len else {
                    return self.need_more_for_value(avail.len());
                };
                let value = &avail[..len];
                if let Err(e) = std::str::from_utf8(value) {
                    return Err(LogFileError::Utf8 { offset: self.offset() + e.valid_up_to() as u64 });
                }
                serde_json::from_slice::<IgnoredAny>(value).map_err(|e| self.syntax(e))?;
                self.advance(len, State::AfterMember)
            }
            State::AfterMember => match self.skip_ws() {
                None => Ok(Step::NeedMore),
                Some(b',') => self.advance(1, State::Key),
                Some(b'}') => self.advance(1, State::AfterDoc),
                Some(_) => Err(self.unexpected("',' or '}' after a member")),
            },
            State::AfterDoc => match self.skip_ws() {
                Some(_) => Err(LogFileError::TrailingData { offset: self.offset() }),
                None if !self.eof => Ok(Step::NeedMore),
                None => {
                    if !self.saw_records {
                        return Err(LogFileError::RecordsMissing);
                    }
                    self.finish_source()?;
                    self.state = State::Done;
                    Ok(Step::Finished)
                }
            },
        }
    }

    fn advance(&mut self, n: usize, next: State) -> Result<Step, LogFileError> {
        self.pos += n;
        self.state = next;
        self.scan = Scan::default();
        Ok(Step::Continue)
    }

    /// Skips whitespace; returns the next byte without consuming it.
    fn skip_ws(&mut self) -> Option<u8> {
        while let Some(&c) = self.buf[..self.end].get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                return Some(c);
            }
        }
        None
    }

    fn need_more_for_value(&self, have: usize) -> Result<Step, LogFileError> {
        if have > self.limits.max_record_bytes {
            Err(LogFileError::ValueTooLarge {
                index: self.records,
                offset: self.offset(),
                limit: self.limits.max_record_bytes,
            })
        } else {
            Ok(Step::NeedMore)
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn unexpected(&self, wanted: &str) -> LogFileError {
        let found = self.buf[..self.end].get(self.pos).map(|&c| c as char).unwrap_or(' ');
        LogFileError::JsonSyntax { offset: self.offset(), detail: format!("expected {wanted}, found {found:?}") }
    }

    fn syntax(&self, e: serde_json::Error) -> LogFileError {
        LogFileError::JsonSyntax { offset: self.offset(), detail: e.to_string() }
    }

    /// Reads the next block of decompressed bytes into `buf`, dropping the consumed prefix.
    fn fill(&mut self) -> Result<(), LogFileError> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let old = self.end;
        if self.buf.len() < old + self.block {
            self.buf.resize(old + self.block, 0);
        }
        let n = loop {
            match self.src.read(&mut self.buf[old..old + self.block]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.src.classify(e)),
            }
        };
        self.end = old + n;
        if n == 0 {
            self.eof = true;
        } else {
            self.content_hash.update(&self.buf[old..self.end]);
            self.content_bytes += n as u64;
            self.check_inflation()?;
        }
        Ok(())
    }

    /// Stops an object that inflates past the limits, as soon as it does (before the rest is
    /// inflated: the cost of a decompression bomb is bounded by the limits, not its size).
    fn check_inflation(&self) -> Result<(), LogFileError> {
        let inflated = self.content_bytes;
        if inflated > self.limits.max_inflated_bytes {
            return Err(LogFileError::InflatedTooLarge { limit: self.limits.max_inflated_bytes });
        }
        if let Source::Gzip(d) = &self.src {
            let compressed = d.get_ref().get_ref().bytes.max(1);
            if inflated > RATIO_CHECK_AFTER && inflated > compressed.saturating_mul(self.limits.max_ratio) {
                return Err(LogFileError::InflateRatio {
                    compressed_bytes: compressed,
                    inflated_bytes: inflated,
                    limit: self.limits.max_ratio,
                });
            }
        }
        Ok(())
    }

    /// After the decompressed stream ended: nothing may follow the gzip member, and the
    /// whole object is read so that its hash covers every byte.
    fn finish_source(&mut self) -> Result<(), LogFileError> {
        if let Source::Gzip(decoder) = &mut self.src {
            let input = decoder.get_mut();
            let mut trailing = 0u64;
            let mut looks_like_gzip = false;
            loop {
                let chunk = input.fill_buf().map_err(LogFileError::Io)?;
                if chunk.is_empty() {
                    break;
                }
                if trailing == 0 {
                    looks_like_gzip = chunk.starts_with(&GZIP_MAGIC);
                }
                let n = chunk.len();
                trailing += n as u64;
                input.consume(n);
            }
            if trailing > 0 {
                return Err(LogFileError::GzipTrailingData { trailing_bytes: trailing, looks_like_gzip });
            }
        }
        Ok(())
    }
}

impl Scan {
    /// Finds the end of an object/array that starts at `bytes[0]` (`open`), resuming where
    /// the previous call stopped. Returns its length once the matching `close` is seen.
    ///
    /// Only `open`/`close` are counted: in valid JSON the other bracket kind is balanced
    /// inside, and invalid nesting is caught when serde_json parses the value afterwards.
    fn object_end(&mut self, bytes: &[u8], open: u8, close: u8) -> Option<usize> {
        let mut i = self.offset;
        let len = bytes.len();
        while i < len {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    i += 1;
                    continue;
                }
                match memchr2(b'"', b'\\', &bytes[i..]) {
                    None => i = len,
                    Some(p) => {
                        i += p;
                        if bytes[i] == b'\\' {
                            self.escape = true;
                        } else {
                            self.in_string = false;
                        }
                        i += 1;
                    }
                }
            } else {
                match memchr3(b'"', open, close, &bytes[i..]) {
                    None => i = len,
                    Some(p) => {
                        i += p;
                        let c = bytes[i];
                        i += 1;
                        if c == b'"' {
                            self.in_string = true;
                        } else if c == open {
                            self.depth += 1;
                        } else {
                            self.depth -= 1;
                            if self.depth == 0 {
                                self.offset = i;
                                return Some(i);
                            }
                        }
                    }
                }
            }
        }
        self.offset = i;
        None
    }
}

/// Length of the JSON string starting at `bytes[0]` (a `"`), quotes included.
fn scan_string(bytes: &[u8]) -> Option<usize> {
    let mut i = 1;
    loop {
        let p = memchr2(b'"', b'\\', bytes.get(i..)?)?;
        i += p;
        if bytes[i] == b'\\' {
            i += 2;
        } else {
            return Some(i + 1);
        }
    }
}

/// Length of a number / `true` / `false` / `null` token; it ends at a delimiter or at EOF.
fn scan_scalar(bytes: &[u8], eof: bool) -> Option<usize> {
    match bytes.iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t')) {
        Some(n) => Some(n.max(1)),
        None if eof => Some(bytes.len()),
        None => None,
    }
}

// One per file, never moved in a hot loop: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Source<R: Read> {
    Gzip(GzDecoder<BufReader<Counted<R>>>),
    Plain(BufReader<Counted<R>>),
}

impl<R: Read> Source<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Gzip(d) => d.read(out),
            Source::Plain(r) => r.read(out),
        }
    }

    /// Tells an error of the underlying reader from a problem with the gzip data.
    fn classify(&self, e: io::Error) -> LogFileError {
        let counted = match self {
            Source::Gzip(d) => d.get_ref().get_ref(),
            Source::Plain(r) => r.get_ref(),
        };
        if counted.failed {
            return LogFileError::Io(e);
        }
        let compressed_bytes = counted.bytes;
        if e.kind() == io::ErrorKind::UnexpectedEof {
            LogFileError::GzipTruncated { compressed_bytes }
        } else {
            LogFileError::GzipCorrupt { compressed_bytes, detail: e.to_string() }
        }
    }
}

/// Counts and hashes the bytes of the object as they are read, and remembers whether the
/// underlying reader failed (so decode errors and I/O errors are told apart).
struct Counted<R> {
    inner: R,
    bytes: u64,
    hash: Sha256,
    failed: bool,
}

impl<R> Counted<R> {
    fn new(inner: R) -> Self {
        Counted { inner, bytes: 0, hash: Sha256::new(), failed: false }
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(out) {
            Ok(n) => {
                self.bytes += n as u64;
                self.hash.update(&out[..n]);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }
}

/// [`LogFileReader`] + [`ParsedEvent::from_json`]: the events of a log file, one at a time.
pub struct EventReader<R: Read> {
    inner: LogFileReader<R>,
}

impl<R: Read> EventReader<R> {
    pub fn new(reader: R) -> Result<Self, LogFileError> {
        Ok(EventReader { inner: LogFileReader::new(reader)? })
    }

    pub fn with_limits(reader: R, limits: ReadLimits) -> Result<Self, LogFileError> {
        Ok(EventReader { inner: LogFileReader::with_limits(reader, limits)? })
    }

    pub fn from_reader(inner: LogFileReader<R>) -> Self {
        EventReader { inner }
    }

    pub fn next_event(&mut self) -> Result<Option<ParsedEvent>, LogFileError> {
        let index = self.inner.records_read();
        let Some(text) = self.inner.next_record()? else {
            return Ok(None);
        };
        match ParsedEvent::from_json(text) {
            Ok(event) => Ok(Some(event)),
            Err(error) => Err(LogFileError::Record { index, offset: self.inner.last_record_offset(), error }),
        }
    }

    /// Like [`next_event`](Self::next_event), but the record's text goes to `keep` (while it
    /// is still in the reader's buffer, with the parsed columns) instead of into `ParsedEvent::raw`, which stays empty.
    pub fn next_event_with(
        &mut self,
        keep: impl FnOnce(&str, &ParsedEvent),
    ) -> Result<Option<ParsedEvent>, LogFileError> {
        let index = self.inner.records_read();
        let Some(text) = self.inner.next_record()? else {
            return Ok(None);
        };
        match ParsedEvent::columns_from_json(text) {
            Ok(event) => {
                keep(text, &event);
                Ok(Some(event))
            }
            Err(error) => Err(LogFileError::Record { index, offset: self.inner.last_record_offset(), error }),
        }
    }

    pub fn summary(&self) -> FileSummary {
        self.inner.summary()
    }
}

/// Reads a whole log file into memory (tests, small files, tools). Prefer [`EventReader`].
pub fn read_all_events(reader: impl Read) -> Result<(Vec<ParsedEvent>, FileSummary), LogFileError> {
    let mut events = Vec::new();
    let mut reader = EventReader::new(reader)?;
    while let Some(e) = reader.next_event()? {
        events.push(e);
    }
    Ok((events, reader.summary()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::gzip as gz;

    fn texts(input: &[u8]) -> Result<Vec<String>, LogFileError> {
        let mut r = LogFileReader::new(input)?;
        let mut out = Vec::new();
        while let Some(t) = r.next_record()? {
            out.push(t.to_string());
        }
        Ok(out)
    }

    fn code(input: &[u8]) -> &'static str {
        texts(input).unwrap_err().reason_code()
    }

    /// gzip of `head`, then `n` bytes of `fill`, then `tail`, streamed through the encoder.
    fn gzip_padded(head: &[u8], fill: u8, n: usize, tail: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(head).unwrap();
        let chunk = vec![fill; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len());
            e.write_all(&chunk[..k]).unwrap();
            left -= k;
        }
        e.write_all(tail).unwrap();
        e.finish().unwrap()
    }

    fn read_with(input: &[u8], limits: ReadLimits) -> Result<u64, LogFileError> {
        let mut r = LogFileReader::with_limits(input, limits)?;
        while r.next_record()?.is_some() {}
        Ok(r.summary().content_bytes)
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_ratio_long_before_its_size() {
        // 1 GiB of whitespace between two records: ~1 MB compressed (1000:1).
        let bomb = gzip_padded(br#"{"Records":[{"eventID":"a"},"#, b' ', 1 << 30, br#"{"eventID":"b"}]}"#);
        assert!(bomb.len() < 4 << 20, "{}", bomb.len());
        let started = std::time::Instant::now();
        let err = read_with(&bomb, ReadLimits::default()).unwrap_err();
        assert_eq!(err.reason_code(), "inflate_ratio", "{err}");
        let LogFileError::InflateRatio { inflated_bytes, .. } = err else { unreachable!() };
        assert!(inflated_bytes < 64 << 20, "stopped early: {inflated_bytes} bytes inflated");
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        // With the ratio allowed, the absolute bound stops it.
        let generous = ReadLimits { max_ratio: u64::MAX, max_inflated_bytes: 100 << 20, ..ReadLimits::default() };
        assert_eq!(read_with(&bomb, generous).unwrap_err().reason_code(), "inflated_too_large");
        // A real-looking file well inside both is read.
        let records: Vec<String> = (0..2000)
            .map(|i| format!(r#"{{"eventID":"e{i}","eventName":"GetObject","requestParameters":{{"bucketName":"b{}","key":"k/{i}"}}}}"#, i % 7))
            .collect();
        let normal = gz(format!(r#"{{"Records":[{}]}}"#, records.join(",")).as_bytes());
        assert!(read_with(&normal, ReadLimits::default()).is_ok());
    }

    #[test]
    fn records_larger_than_the_limit_are_refused() {
        let big = format!(r#"{{"Records":[{{"eventID":"a","userAgent":"{}"}}]}}"#, "u".repeat(5 << 20));
        let err = read_with(big.as_bytes(), ReadLimits::default()).unwrap_err();
        assert_eq!(err.reason_code(), "record_too_large");
        assert!(err.to_string().contains("4194304"), "{err}");
        let roomy = ReadLimits { max_record_bytes: 8 << 20, ..ReadLimits::default() };
        assert!(read_with(big.as_bytes(), roomy).is_ok());
    }

    #[test]
    fn cuts_records_verbatim() {
        let doc = br#" { "Records" : [ {"a":"}{\"","b":[1,{"c":2}]} ,{ "eventID" : "x" } ] } "#;
        let got = texts(doc).unwrap();
        assert_eq!(got, vec![r#"{"a":"}{\"","b":[1,{"c":2}]}"#, r#"{ "eventID" : "x" }"#]);
        assert_eq!(texts(&gz(doc)).unwrap(), got);
    }

    #[test]
    fn other_members_are_validated_and_skipped() {
        let doc = br#"{"x":[1,"]",{"y":null}],"Records":[],"z":-1.5e3,"w":"\u0041","t":true}"#;
        assert!(texts(doc).unwrap().is_empty());
        assert_eq!(code(br#"{"x":[1,,2],"Records":[]}"#), "json_syntax");
        assert_eq!(code(br#"{"x":tru,"Records":[]}"#), "json_syntax");
    }

    #[test]
    fn escaped_records_key_is_recognised() {
        assert_eq!(texts(br#"{"\u0052ecords":[{}]}"#).unwrap(), vec!["{}"]);
    }

    #[test]
    fn failure_modes_have_precise_reasons() {
        assert_eq!(code(b""), "empty_object");
        assert_eq!(code(b"hello"), "json_not_object");
        assert_eq!(code(&gz(b"hello world")), "json_not_object");
        assert_eq!(code(b"[]"), "json_not_object");
        assert_eq!(code(b"{}"), "records_missing");
        assert_eq!(code(br#"{"records":[]}"#), "records_missing");
        assert_eq!(code(br#"{"Records":{}}"#), "records_not_array");
        assert_eq!(code(br#"{"Records":[],"Records":[]}"#), "records_duplicated");
        assert_eq!(code(br#"{"Records":[1]}"#), "record_not_object");
        assert_eq!(code(br#"{"Records":[{},]}"#), "json_syntax");
        assert_eq!(code(br#"{"Records":[{}] "#), "json_truncated");
        assert_eq!(code(br#"{"Records":[{"a":"#), "json_truncated");
        assert_eq!(code(br#"{"Records":[]} x"#), "json_trailing_data");
        assert_eq!(code(br#"{"Records":[]}{"Records":[]}"#), "json_trailing_data");
        assert_eq!(code(b"{\"Records\":[{\"a\":\"\xff\"}]}"), "invalid_utf8");

        let good = gz(br#"{"Records":[]}"#);
        assert_eq!(code(&good[..good.len() - 4]), "gzip_truncated");
        assert_eq!(code(&good[..12]), "gzip_truncated");
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage");
        assert_eq!(code(&trailing), "gzip_trailing_data");
        let mut two = good.clone();
        two.extend_from_slice(&good);
        let err = texts(&two).unwrap_err();
        assert!(err.to_string().contains("another gzip member"), "{err}");
        let mut corrupt = good.clone();
        let n = corrupt.len();
        corrupt[n - 6] ^= 0xff; // inside the CRC32
        assert_eq!(code(&corrupt), "gzip_corrupt");
    }

    #[test]
    fn records_spanning_read_blocks_are_reassembled() {
        let big = "x".repeat(READ_BLOCK + 17);
        let doc = format!(r#"{{"Records":[{{"a":"{big}"}},{{"b":"\"{big}"}}]}}"#);
        let got = texts(gz(doc.as_bytes()).as_slice()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), big.len() + 8);
        assert!(got[1].starts_with(r#"{"b":"\""#));
    }

    #[test]
    fn summary_hashes_both_forms() {
        let doc = br#"{"Records":[{"eventID":"1"}]}"#;
        let packed = gz(doc);
        let mut r = LogFileReader::new(packed.as_slice()).unwrap();
        while r.next_record().unwrap().is_some() {}
        let s = r.summary();
        assert_eq!(s.records, 1);
        assert!(s.gzip);
        assert_eq!(s.object_bytes, packed.len() as u64);
        assert_eq!(s.object_sha256, hex::encode(Sha256::digest(&packed)));
        assert_eq!(s.content_bytes, doc.len() as u64);
        assert_eq!(s.content_sha256, hex::encode(Sha256::digest(doc)));
    }

    #[test]
    fn read_errors_are_not_content_errors() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk on fire"))
            }
        }
        let err = LogFileReader::new(Failing).err().unwrap();
        assert_eq!(err.reason_code(), "io_error");
        assert!(!err.is_content_error());
    }
}
