//! [`EventBatch`]: the unit a writer receives, and the packed form of its raw records.
//!
//! Records' verbatim JSON is stored compressed, a batch at a time: zstd frames of at most
//! [`FRAME_RECORDS`] records each, every record prefixed with its length (u32, little-endian).
//! A reader that wants one record decompresses its frame, not the batch (a search's page
//! of a rare value takes one row from each of fifty blocks); the frames are listed in
//! [`PackedRaw::frames`]. Frames are made with the current [`RawDictionary`] when there is
//! one, and name it in their header; reading them needs that dictionary. Packing is CPU work
//! that does not need the database, so the ingest pipeline does it on its parse threads
//! ([`EventBatch::pack`]) and the single writer thread only stores the bytes.

use std::cell::RefCell;
use std::sync::{Arc, LazyLock, RwLock};

use rustc_hash::FxHashMap;

use model::ParsedEvent;
use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective as EndDirective;
use zstd::zstd_safe::{CCtx, CDict, CParameter, DCtx, DDict, InBuffer, OutBuffer, ResetDirective};

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
    /// Per frame, in order: (its first record, its start in `bytes`). Empty when not known
    /// (bytes read back with [`PackedRaw::from_bytes`]).
    pub(crate) frames: Vec<(u32, u32)>,
}

/// Records per zstd frame: small enough that one record costs little to read, large enough
/// that compression barely suffers (each frame starts without history).
pub const FRAME_RECORDS: usize = 64;

/// A zstd dictionary for raw records, trained on a store's own records (the SQLite writer's
/// `train_dictionary`). Small frames (a file of seven records) start without history; with
/// a dictionary of the store's own field names and values they compress about twice as well.
pub(crate) struct RawDictionary {
    /// zstd's id of the dictionary, written in the header of every frame made with it.
    pub id: u32,
    pub bytes: Vec<u8>,
    cdict: CDict<'static>,
    ddict: DDict<'static>,
}

/// Dictionaries this process knows, by id: frames made here can be read here whatever store
/// they end up in (the scale-out writer unpacks batches the pipeline packed).
static DICTIONARIES: LazyLock<RwLock<FxHashMap<u32, Arc<RawDictionary>>>> = LazyLock::new(Default::default);
/// The dictionary new frames are made with (set by the SQLite writer of the store).
static CURRENT: RwLock<Option<Arc<RawDictionary>>> = RwLock::new(None);

/// Makes `bytes` (a zstd dictionary) known to this process; `None` if they are not one.
pub(crate) fn register_dictionary(bytes: Vec<u8>) -> Option<Arc<RawDictionary>> {
    let id = zstd::zstd_safe::get_dict_id_from_dict(&bytes)?.get();
    let mut known = DICTIONARIES.write().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = known.get(&id) {
        return Some(d.clone());
    }
    let cdict = CDict::try_create(&bytes, LEVEL)?;
    let ddict = DDict::try_create(&bytes)?;
    let d = Arc::new(RawDictionary { id, bytes, cdict, ddict });
    known.insert(id, d.clone());
    Some(d)
}

pub(crate) fn known_dictionary(id: u32) -> Option<Arc<RawDictionary>> {
    DICTIONARIES.read().unwrap_or_else(|e| e.into_inner()).get(&id).cloned()
}

/// New frames are made with `d` from now on (`None`: without a dictionary).
pub(crate) fn use_dictionary(d: Option<Arc<RawDictionary>>) {
    *CURRENT.write().unwrap_or_else(|e| e.into_inner()) = d;
}

pub(crate) fn current_dictionary() -> Option<Arc<RawDictionary>> {
    CURRENT.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Forgets every dictionary (tests: a reader must then find them in its store).
pub fn forget_raw_dictionaries() {
    use_dictionary(None);
    DICTIONARIES.write().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The id of the dictionary `frame` (a zstd frame, or frames) was made with, if any.
pub(crate) fn frame_dictionary(frame: &[u8]) -> Option<u32> {
    zstd::zstd_safe::get_dict_id_from_frame(frame).map(|id| id.get())
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("raw block does not decompress: {0}")]
    Zstd(std::io::Error),
    #[error("raw block is truncated at byte {0}")]
    Truncated(usize),
    #[error("raw record {0} is not UTF-8")]
    Utf8(usize),
    #[error("raw records were compressed with dictionary {0}, which is not in this store")]
    UnknownDictionary(u32),
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
    pub fn take_packed(&mut self) -> PackedRaw {
        self.pack();
        self.packed.take().unwrap_or(PackedRaw { bytes: Vec::new(), frames: Vec::new() })
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
/// separate strings; [`finish`](Self::finish) compresses them.
#[derive(Debug, Default)]
pub struct RawFramer {
    framed: Vec<u8>,
    /// Where each frame-to-be begins in `framed` (every [`FRAME_RECORDS`] records).
    cuts: Vec<usize>,
    records: usize,
}

impl RawFramer {
    pub fn push(&mut self, raw: &str) {
        if self.records % FRAME_RECORDS == 0 {
            self.cuts.push(self.framed.len());
        }
        self.records += 1;
        self.framed.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        self.framed.extend_from_slice(raw.as_bytes());
    }

    /// Bytes of raw records so far.
    pub fn bytes(&self) -> usize {
        self.framed.len()
    }

    /// Compresses what was pushed, a frame per [`FRAME_RECORDS`] records; the framer is
    /// empty again afterwards.
    pub fn finish(&mut self) -> PackedRaw {
        let mut bytes = Vec::with_capacity(zstd::zstd_safe::compress_bound(self.framed.len()));
        let mut frames = Vec::with_capacity(self.cuts.len());
        let dictionary = current_dictionary();
        CCTX.with(|cctx| {
            let mut cctx = cctx.borrow_mut();
            for (i, &start) in self.cuts.iter().enumerate() {
                let end = self.cuts.get(i + 1).copied().unwrap_or(self.framed.len());
                frames.push(((i * FRAME_RECORDS) as u32, bytes.len() as u32));
                if let Some(d) = &dictionary {
                    let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(end - start));
                    expect_ok(cctx.compress_using_cdict(&mut frame, &self.framed[start..end], &d.cdict));
                    bytes.extend_from_slice(&frame);
                    continue;
                }
                expect_ok(cctx.reset(ResetDirective::SessionOnly));
                expect_ok(cctx.set_parameter(CParameter::CompressionLevel(LEVEL)));
                let mut input = InBuffer::around(&self.framed[start..end]);
                // With room for the bound, one call compresses and ends the frame; the loop
                // only guards that promise.
                loop {
                    bytes.reserve(zstd::zstd_safe::compress_bound(end - start));
                    let at = bytes.len();
                    let mut out = OutBuffer::around_pos(&mut bytes, at);
                    if expect_ok(cctx.compress_stream2(&mut out, &mut input, EndDirective::ZSTD_e_end)) == 0 {
                        break;
                    }
                }
            }
        });
        self.framed.clear();
        self.cuts.clear();
        self.records = 0;
        PackedRaw { bytes, frames }
    }
}

thread_local! {
    /// One compression context per thread, reused: creating one costs more than a batch.
    static CCTX: RefCell<CCtx<'static>> = RefCell::new(CCtx::create());
}

impl PackedRaw {
    pub fn pack(events: &[ParsedEvent]) -> PackedRaw {
        let mut framer = RawFramer::default();
        framer.framed.reserve(events.iter().map(|e| e.raw.len() + 4).sum());
        for e in events {
            framer.push(&e.raw);
        }
        framer.finish()
    }

    pub fn from_bytes(bytes: Vec<u8>) -> PackedRaw {
        PackedRaw { bytes, frames: Vec::new() }
    }

    /// Per frame: (its first record, its start in the bytes); empty when not known.
    pub fn frames(&self) -> &[(u32, u32)] {
        &self.frames
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw records, in batch order.
    pub fn unpack(&self) -> Result<Vec<String>, UnpackError> {
        unpack(&self.bytes)
    }
}

/// Decompresses zstd frames one after another, each with the dictionary its header names
/// (looked up with `dictionary`).
pub(crate) fn decompress_frames(
    bytes: &[u8],
    dictionary: &mut dyn FnMut(u32) -> Result<Arc<RawDictionary>, UnpackError>,
) -> Result<Vec<u8>, UnpackError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let size = zstd::zstd_safe::find_frame_compressed_size(rest).map_err(|_| UnpackError::Truncated(at))?;
        let frame = &rest[..size];
        match frame_dictionary(frame) {
            None => {
                let plain = zstd::stream::decode_all(frame).map_err(UnpackError::Zstd)?;
                out.extend_from_slice(&plain);
            }
            Some(id) => {
                let d = dictionary(id)?;
                let n =
                    zstd::zstd_safe::get_frame_content_size(frame).ok().flatten().ok_or(UnpackError::Truncated(at))?
                        as usize;
                let mut plain = Vec::with_capacity(n);
                DCTX.with(|dctx| dctx.borrow_mut().decompress_using_ddict(&mut plain, frame, &d.ddict))
                    .map_err(|code| UnpackError::Zstd(std::io::Error::other(zstd::zstd_safe::get_error_name(code))))?;
                out.extend_from_slice(&plain);
            }
        }
        at += size;
    }
    Ok(out)
}

thread_local! {
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

/// The records of zstd frames whose dictionaries this process knows.
pub(crate) fn unpack(bytes: &[u8]) -> Result<Vec<String>, UnpackError> {
    unpack_with(bytes, &mut |id| known_dictionary(id).ok_or(UnpackError::UnknownDictionary(id)))
}

/// `blocks.frames`: per frame, its first slot and its start in the raw bytes (u32 pairs,
/// little-endian).
pub(crate) fn encode_frame_index(frames: &[(u32, u32)]) -> Vec<u8> {
    frames.iter().flat_map(|&(slot, at)| [slot.to_le_bytes(), at.to_le_bytes()]).flatten().collect()
}

pub(crate) fn decode_frame_index(bytes: &[u8]) -> Vec<(u32, u32)> {
    let word = |c: &[u8]| u32::from_le_bytes(c.try_into().expect("4 bytes"));
    bytes.chunks_exact(8).map(|c| (word(&c[..4]), word(&c[4..]))).collect()
}

/// The index of `packed`'s frames when its first record is slot `first_slot` and its bytes
/// start at `start` (`None` when they are not known).
pub(crate) fn frame_index(packed: &PackedRaw, first_slot: u32, start: u32) -> Option<Vec<(u32, u32)>> {
    if packed.frames.is_empty() {
        return None;
    }
    Some(packed.frames.iter().map(|&(record, at)| (first_slot + record, start + at)).collect())
}

/// The records of zstd frames of length-prefixed records (a whole block's, or one frame's).
pub(crate) fn unpack_with(
    bytes: &[u8],
    dictionary: &mut dyn FnMut(u32) -> Result<Arc<RawDictionary>, UnpackError>,
) -> Result<Vec<String>, UnpackError> {
    let framed = decompress_frames(bytes, dictionary)?;
    let mut out = Vec::new();
    let mut at = 0;
    while at < framed.len() {
        let len_bytes: [u8; 4] = framed.get(at..at + 4).ok_or(UnpackError::Truncated(at))?.try_into().expect("4 bytes");
        let len = u32::from_le_bytes(len_bytes) as usize;
        let body = framed.get(at + 4..at + 4 + len).ok_or(UnpackError::Truncated(at))?;
        out.push(String::from_utf8(body.to_vec()).map_err(|_| UnpackError::Utf8(out.len()))?);
        at += 4 + len;
    }
    Ok(out)
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
        let packed = batch.take_packed();
        let raws = packed.unpack().unwrap();
        assert_eq!(raws, events.iter().map(|e| e.raw.clone()).collect::<Vec<_>>());
        // Frames of FRAME_RECORDS records, each readable alone.
        assert_eq!(packed.frames().len(), 3000usize.div_ceil(FRAME_RECORDS));
        let index = frame_index(&packed, 10, 0).unwrap();
        for (k, &(first, start)) in index.iter().enumerate() {
            let end = index.get(k + 1).map_or(packed.as_bytes().len(), |n| n.1 as usize);
            let frame = unpack(&packed.as_bytes()[start as usize..end]).unwrap();
            let first = first as usize - 10;
            assert_eq!(frame, raws[first..(first + FRAME_RECORDS).min(raws.len())]);
        }
        assert_eq!(decode_frame_index(&encode_frame_index(&index)), index);
        assert!(packed.as_bytes().len() * 4 < raws.iter().map(String::len).sum::<usize>());
        assert!(PackedRaw::from_bytes(vec![1, 2, 3]).unpack().is_err());
    }
}
