//! [`EventBatch`]: the unit a writer receives, and the packed form of its raw records.
//!
//! Records' verbatim JSON is stored compressed, a batch at a time: one zstd frame holding every
//! record of the batch, each prefixed with its length (u32, little-endian). Packing is CPU work
//! that does not need the database, so the ingest pipeline does it on its parse threads
//! ([`EventBatch::pack`]) and the single writer thread only stores the bytes.

use std::cell::RefCell;

use model::ParsedEvent;
use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective as EndDirective;
use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer, ResetDirective};

/// zstd level: level 1 is ~800 MB/s on CloudTrail JSON with 8–9× compression in 64 KiB+ frames.
const LEVEL: i32 = 1;

/// Events of one object, in file order, with their raw records optionally packed.
#[derive(Debug, Clone, Default)]
pub struct EventBatch {
    pub events: Vec<ParsedEvent>,
    pub(crate) packed: Option<PackedRaw>,
    /// Set by the writer's `insert`: positions of the events that were already stored.
    pub(crate) duplicates: Vec<u32>,
}

/// The raw records of a batch, compressed (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRaw {
    pub(crate) bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("raw block does not decompress: {0}")]
    Zstd(std::io::Error),
    #[error("raw block is truncated at byte {0}")]
    Truncated(usize),
    #[error("raw record {0} is not UTF-8")]
    Utf8(usize),
}

impl EventBatch {
    pub fn new(events: Vec<ParsedEvent>) -> EventBatch {
        EventBatch { events, packed: None, duplicates: Vec::new() }
    }

    /// A batch whose raw records were framed as they were read ([`RawFramer`]); the events'
    /// `raw` fields are empty.
    pub fn with_packed(events: Vec<ParsedEvent>, packed: PackedRaw) -> EventBatch {
        EventBatch { events, packed: Some(packed), duplicates: Vec::new() }
    }

    /// Compresses the raw records now (idempotent).
    pub fn pack(&mut self) {
        if self.packed.is_none() {
            self.packed = Some(PackedRaw::pack(&self.events));
        }
    }

    /// The packed raw records' bytes, packing them here if nobody did before; leaves the
    /// batch unpacked.
    pub fn take_packed(&mut self) -> Vec<u8> {
        self.pack();
        self.packed.take().map(|p| p.bytes).unwrap_or_default()
    }

    /// After `insert`: positions (ascending) of the events that were stored before, so
    /// nothing downstream (detection) acts on them twice.
    pub fn duplicate_rows(&self) -> &[u32] {
        &self.duplicates
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl From<Vec<ParsedEvent>> for EventBatch {
    fn from(events: Vec<ParsedEvent>) -> Self {
        EventBatch::new(events)
    }
}

/// Collects raw records in the packed framing as they are read, so they never exist as
/// separate strings; [`finish`](Self::finish) compresses them in one call.
#[derive(Debug, Default)]
pub struct RawFramer {
    framed: Vec<u8>,
}

impl RawFramer {
    pub fn push(&mut self, raw: &str) {
        self.framed.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        self.framed.extend_from_slice(raw.as_bytes());
    }

    /// Bytes of raw records so far.
    pub fn bytes(&self) -> usize {
        self.framed.len()
    }

    /// Compresses what was pushed; the framer is empty again afterwards.
    pub fn finish(&mut self) -> PackedRaw {
        let mut bytes = Vec::with_capacity(zstd::zstd_safe::compress_bound(self.framed.len()));
        CCTX.with(|cctx| {
            let mut cctx = cctx.borrow_mut();
            expect_ok(cctx.reset(ResetDirective::SessionOnly));
            expect_ok(cctx.set_parameter(CParameter::CompressionLevel(LEVEL)));
            expect_ok(cctx.compress2(&mut bytes, &self.framed));
        });
        self.framed.clear();
        PackedRaw { bytes }
    }
}

thread_local! {
    /// One compression context per thread, reused: creating one costs more than a batch.
    static CCTX: RefCell<CCtx<'static>> = RefCell::new(CCtx::create());
}

impl PackedRaw {
    pub fn pack(events: &[ParsedEvent]) -> PackedRaw {
        let total: usize = events.iter().map(|e| e.raw.len() + 4).sum();
        // Room for the worst case, so the stream never has to grow the buffer mid-call.
        let mut bytes = Vec::with_capacity(zstd::zstd_safe::compress_bound(total));
        CCTX.with(|cctx| {
            let mut cctx = cctx.borrow_mut();
            let setup = cctx
                .reset(ResetDirective::SessionOnly)
                .and_then(|_| cctx.set_parameter(CParameter::CompressionLevel(LEVEL)))
                .and_then(|_| cctx.set_pledged_src_size(Some(total as u64)));
            expect_ok(setup);
            for e in events {
                let len = (e.raw.len() as u32).to_le_bytes();
                for piece in [&len[..], e.raw.as_bytes()] {
                    let mut input = InBuffer::around(piece);
                    while input.pos() < piece.len() {
                        // Continue after what is already written (`around` would start at 0).
                        let at = bytes.len();
                        let mut out = OutBuffer::around_pos(&mut bytes, at);
                        expect_ok(cctx.compress_stream2(&mut out, &mut input, EndDirective::ZSTD_e_continue));
                    }
                }
            }
            loop {
                // Continue after what is already written (`around` would start at 0).
                let at = bytes.len();
                let mut out = OutBuffer::around_pos(&mut bytes, at);
                let mut empty = InBuffer::around(&[][..]);
                if expect_ok(cctx.compress_stream2(&mut out, &mut empty, EndDirective::ZSTD_e_end)) == 0 {
                    break;
                }
            }
        });
        PackedRaw { bytes }
    }

    pub fn from_bytes(bytes: Vec<u8>) -> PackedRaw {
        PackedRaw { bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw records, in batch order.
    pub fn unpack(&self) -> Result<Vec<String>, UnpackError> {
        let framed = zstd::stream::decode_all(self.bytes.as_slice()).map_err(UnpackError::Zstd)?;
        let mut out = Vec::new();
        let mut at = 0;
        while at < framed.len() {
            let len_bytes: [u8; 4] =
                framed.get(at..at + 4).ok_or(UnpackError::Truncated(at))?.try_into().expect("4 bytes");
            let len = u32::from_le_bytes(len_bytes) as usize;
            let body = framed.get(at + 4..at + 4 + len).ok_or(UnpackError::Truncated(at))?;
            out.push(String::from_utf8(body.to_vec()).map_err(|_| UnpackError::Utf8(out.len()))?);
            at += 4 + len;
        }
        Ok(out)
    }
}

/// zstd reports errors only for invalid parameters or a too-small output buffer, both ruled
/// out above; a failure here is a bug, not bad input.
fn expect_ok<T>(r: Result<T, usize>) -> T {
    match r {
        Ok(v) => v,
        Err(code) => panic!("zstd: {}", zstd::zstd_safe::get_error_name(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_in_order() {
        // 3000 records of up to ~3 KB: several MB, so zstd emits output many times mid-stream.
        let events: Vec<ParsedEvent> = (0..3000)
            .map(|i| {
                ParsedEvent::from_json(&format!(
                    r#"{{"eventID":"e{i}","eventTime":"2024-01-01T00:00:00Z","note":"ünï\n{}"}}"#,
                    "x".repeat(i % 3000)
                ))
                .unwrap()
            })
            .collect();
        let mut batch = EventBatch::new(events.clone());
        let packed = PackedRaw::from_bytes(batch.take_packed());
        let raws = packed.unpack().unwrap();
        assert_eq!(raws, events.iter().map(|e| e.raw.clone()).collect::<Vec<_>>());
        assert!(packed.as_bytes().len() * 4 < raws.iter().map(String::len).sum::<usize>());
        assert!(PackedRaw::from_bytes(vec![1, 2, 3]).unpack().is_err());
    }
}
