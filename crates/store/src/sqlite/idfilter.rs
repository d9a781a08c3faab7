//! The writer's in-memory Bloom filter of every stored `eventID`.
//!
//! `event_ids` is keyed by (hour of eventTime, eventID) so that inserts stay in the current
//! hours' part of the index (see [`super::event_hour`]). Dedupe is still by eventID alone
//! (records that reuse an id with another time are one event), and an id can only be looked
//! up alone by asking every hour. The filter says when that is needed: an id it has never
//! seen is new (no lookup at all); one it may have seen is looked up in its own hour first
//! (a re-delivered record has the same time) and only then in every hour. About 16 bits per
//! id, 10 probes within one 512-bit block (one cache line: a lookup costs one memory access,
//! not ten): under one false positive in 1,000 ids.
//!
//! The filter is saved beside the store (`<store>-idfilter`) when a writer closes and read
//! back by the next one when it is current: `event_id_generation` counts the transactions
//! that added ids, and holds a random nonce of the store; a file of another generation or
//! store (a crash, another writer's turn, a restored backup) is ignored and the filter is
//! built by reading `event_ids` once. It grows by layers (a scalable Bloom filter: never
//! rebuilt for size), and is rebuilt when another connection has added ids since. Bits of ids that were undone or deleted stay: a
//! false positive only costs a lookup.

use super::columns::{fnv1a, mix64, FNV_OFFSET};
use super::EventIdKey;

/// Bits per id of the first layer; each later layer takes two more, so that its false
/// positives are about half as frequent and the sum over layers stays under twice the first's.
const BITS_PER_ID: usize = 16;
const PROBES: u64 = 10;
/// Bits per block: a 64-byte cache line.
const BLOCK_BITS: u64 = 512;

/// One Bloom filter of the stack: a power-of-two number of 512-bit blocks.
struct Layer {
    bits: Vec<u64>,
    /// Block index mask.
    mask: u64,
    /// Ids inserted, and how many fit before the false-positive rate degrades.
    len: usize,
    capacity: usize,
}

impl Layer {
    fn new(capacity: usize, bits_per_id: usize) -> Layer {
        let bits = (capacity * bits_per_id).next_power_of_two().max(BLOCK_BITS as usize);
        let blocks = (bits as u64 / BLOCK_BITS) as usize;
        Layer { bits: vec![0; bits / 64], mask: blocks as u64 - 1, len: 0, capacity }
    }

    /// The key's block (its first word) and the hashes of its probes within the block.
    fn locate(&self, (h1, h2): (u64, u64)) -> (usize, u64, u64) {
        let block = (h1 & self.mask) as usize * (BLOCK_BITS / 64) as usize;
        (block, h1 >> 32, h2)
    }

    fn insert(&mut self, h: (u64, u64)) {
        let (block, a, b) = self.locate(h);
        for i in 0..PROBES {
            let bit = a.wrapping_add(i.wrapping_mul(b)) % BLOCK_BITS;
            self.bits[block + (bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.len += 1;
    }

    fn may_contain(&self, h: (u64, u64)) -> bool {
        let (block, a, b) = self.locate(h);
        (0..PROBES).all(|i| {
            let bit = a.wrapping_add(i.wrapping_mul(b)) % BLOCK_BITS;
            self.bits[block + (bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
    }
}

/// A stack of Bloom filters (a scalable Bloom filter): ids go into the newest layer, and a
/// full layer gets a successor twice its size instead of a rebuild. Rebuilding read every
/// stored id again each time the store doubled (7 M ids: a day's ingest 10% slower).
pub(crate) struct IdFilter {
    layers: Vec<Layer>,
    /// `event_id_generation` this filter is current with.
    pub generation: i64,
}

const MAGIC: &[u8; 8] = b"TWIDF\x02\0\0";

impl IdFilter {
    /// An empty filter whose first layer holds `capacity` ids.
    pub fn with_capacity(capacity: usize, generation: i64) -> IdFilter {
        IdFilter { layers: vec![Layer::new(capacity.max(1 << 16), BITS_PER_ID)], generation }
    }

    /// Writes the filter to `path` (through a temporary file and a rename, owner-only).
    pub fn save(&self, path: &std::path::Path, nonce: i64) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("idfilter-tmp");
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?,
        );
        f.write_all(MAGIC)?;
        for v in [nonce as u64, self.generation as u64, self.layers.len() as u64] {
            f.write_all(&v.to_le_bytes())?;
        }
        for layer in &self.layers {
            for v in [layer.len as u64, layer.capacity as u64, layer.mask] {
                f.write_all(&v.to_le_bytes())?;
            }
            for w in &layer.bits {
                f.write_all(&w.to_le_bytes())?;
            }
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// The filter saved at `path` if it is this store's (`nonce`) at `generation`.
    pub fn load(path: &std::path::Path, nonce: i64, generation: i64) -> Option<IdFilter> {
        let bytes = std::fs::read(path).ok()?;
        let word = |at: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?)) };
        if bytes.get(..8)? != MAGIC || word(8)? as i64 != nonce || word(16)? as i64 != generation {
            return None;
        }
        let mut layers = Vec::new();
        let mut at = 32;
        for _ in 0..word(24)? {
            let (len, capacity, mask) = (word(at)? as usize, word(at + 8)? as usize, word(at + 16)?);
            let words = (mask as usize).checked_add(1)?.checked_mul((BLOCK_BITS / 64) as usize)?;
            let body = bytes.get(at + 24..at + 24 + words.checked_mul(8)?)?;
            let bits = body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
            layers.push(Layer { bits, mask, len, capacity });
            at += 24 + words * 8;
        }
        (at == bytes.len() && !layers.is_empty()).then_some(IdFilter { layers, generation })
    }

    /// Ids inserted, over all layers.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.layers.iter().map(|l| l.len).sum()
    }

    pub fn insert(&mut self, key: &EventIdKey<'_>) {
        let last = self.layers.last().expect("never empty");
        if last.len >= last.capacity {
            let bits_per_id = BITS_PER_ID + 2 * self.layers.len();
            self.layers.push(Layer::new(last.capacity * 2, bits_per_id));
        }
        self.layers.last_mut().expect("never empty").insert(hashes(key));
    }

    pub fn may_contain(&self, key: &EventIdKey<'_>) -> bool {
        let h = hashes(key);
        self.layers.iter().rev().any(|l| l.may_contain(h))
    }
}

/// Two independent 64-bit hashes of an id (Kirsch–Mitzenmacher: probes are h1 + i·h2).
fn hashes(key: &EventIdKey<'_>) -> (u64, u64) {
    let bytes: &[u8] = match key {
        EventIdKey::Uuid(b) => b,
        EventIdKey::Text(t) => t.as_bytes(),
    };
    let tag = u64::from(matches!(key, EventIdKey::Text(_)));
    let h = fnv1a(FNV_OFFSET ^ tag, bytes);
    (mix64(h), mix64(h ^ 0x9e37_79b9_7f4a_7c15) | 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::event_id_key;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut f = IdFilter::with_capacity(100_000, 0);
        let id = |i: u64| format!("{:08x}-0000-4000-8000-{:012x}", i >> 20, i);
        for i in 0..100_000 {
            f.insert(&event_id_key(&id(i)));
        }
        f.insert(&event_id_key("not-a-uuid"));
        assert!((0..100_000).all(|i| f.may_contain(&event_id_key(&id(i)))));
        assert!(f.may_contain(&event_id_key("not-a-uuid")));
        let false_positives = (100_000..200_000).filter(|&i| f.may_contain(&event_id_key(&id(i)))).count();
        assert!(false_positives < 150, "{false_positives} false positives in 100,000");
        assert_eq!((f.layers.len(), f.len()), (2, 100_001), "one past the first layer's capacity");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db-idfilter");
        f.generation = 7;
        f.save(&path, 42).unwrap();
        let back = IdFilter::load(&path, 42, 7).expect("same store, same generation");
        assert!((0..100_000).all(|i| back.may_contain(&event_id_key(&id(i)))));
        assert!(IdFilter::load(&path, 42, 8).is_none(), "another generation");
        assert!(IdFilter::load(&path, 43, 7).is_none(), "another store");
        std::fs::write(&path, &std::fs::read(&path).unwrap()[..1000]).unwrap();
        assert!(IdFilter::load(&path, 42, 7).is_none(), "a truncated file");
    }

    /// Past its capacity the filter grows by layers: still no false negatives, false
    /// positives stay rare, and the layers survive a save and load.
    #[test]
    fn grows_by_layers() {
        let mut f = IdFilter::with_capacity(1, 0);
        let id = |i: u64| format!("{:08x}-0000-4000-8000-{:012x}", i >> 20, i);
        let n = 65_536 * 7;
        for i in 0..n {
            f.insert(&event_id_key(&id(i)));
        }
        assert_eq!(f.len(), n as usize);
        assert_eq!(f.layers.len(), 3, "65,536 + 131,072 + 262,144 ids");
        assert!((0..n).all(|i| f.may_contain(&event_id_key(&id(i)))));
        let false_positives = (n..n + 200_000).filter(|&i| f.may_contain(&event_id_key(&id(i)))).count();
        // The first layer is exactly 16 bits per id (a power of two) and full: ~0.25%; the
        // later ones add little.
        assert!(false_positives < 700, "{false_positives} false positives in 200,000");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db-idfilter");
        f.save(&path, 1).unwrap();
        let back = IdFilter::load(&path, 1, 0).unwrap();
        assert_eq!((back.layers.len(), back.len()), (3, n as usize));
        assert!((0..n).all(|i| back.may_contain(&event_id_key(&id(i)))));
    }
}
