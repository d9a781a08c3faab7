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
//! built by reading `event_ids` once. It is rebuilt larger when it fills, and rebuilt when
//! another connection has added ids since. Bits of ids that were undone or deleted stay: a
//! false positive only costs a lookup.

use super::columns::{fnv1a, mix64, FNV_OFFSET};
use super::EventIdKey;

const BITS_PER_ID: usize = 16;
const PROBES: u64 = 10;
/// Bits per block: a 64-byte cache line.
const BLOCK_BITS: u64 = 512;

pub(crate) struct IdFilter {
    bits: Vec<u64>,
    /// Block index mask (the block count is a power of two).
    mask: u64,
    /// Ids inserted, and how many fit before the false-positive rate degrades.
    len: usize,
    capacity: usize,
    /// `event_id_generation` this filter is current with.
    pub generation: i64,
}

const MAGIC: &[u8; 8] = b"TWIDF\x01\0\0";

impl IdFilter {
    /// An empty filter for `capacity` ids.
    pub fn with_capacity(capacity: usize, generation: i64) -> IdFilter {
        let capacity = capacity.max(1 << 16);
        let bits = (capacity * BITS_PER_ID).next_power_of_two().max(BLOCK_BITS as usize);
        let blocks = (bits as u64 / BLOCK_BITS) as usize;
        IdFilter { bits: vec![0; bits / 64], mask: blocks as u64 - 1, len: 0, capacity, generation }
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
        for v in [nonce as u64, self.generation as u64, self.len as u64, self.capacity as u64, self.mask] {
            f.write_all(&v.to_le_bytes())?;
        }
        for w in &self.bits {
            f.write_all(&w.to_le_bytes())?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    /// The filter saved at `path` if it is this store's (`nonce`) at `generation`.
    pub fn load(path: &std::path::Path, nonce: i64, generation: i64) -> Option<IdFilter> {
        let bytes = std::fs::read(path).ok()?;
        let word =
            |i: usize| -> Option<u64> { Some(u64::from_le_bytes(bytes.get(8 + i * 8..16 + i * 8)?.try_into().ok()?)) };
        if bytes.get(..8)? != MAGIC || word(0)? as i64 != nonce || word(1)? as i64 != generation {
            return None;
        }
        let (len, capacity, mask) = (word(2)? as usize, word(3)? as usize, word(4)?);
        let words = (mask as usize + 1) * (BLOCK_BITS / 64) as usize;
        let body = bytes.get(48..)?;
        if body.len() != words * 8 {
            return None;
        }
        let bits = body.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        Some(IdFilter { bits, mask, len, capacity, generation })
    }

    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// The key's block (its first word) and the hashes of its probes within the block.
    fn locate(&self, key: &EventIdKey<'_>) -> (usize, u64, u64) {
        let (h1, h2) = hashes(key);
        let block = (h1 & self.mask) as usize * (BLOCK_BITS / 64) as usize;
        (block, h1 >> 32, h2)
    }

    pub fn insert(&mut self, key: &EventIdKey<'_>) {
        let (block, a, b) = self.locate(key);
        for i in 0..PROBES {
            let bit = a.wrapping_add(i.wrapping_mul(b)) % BLOCK_BITS;
            self.bits[block + (bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.len += 1;
    }

    pub fn may_contain(&self, key: &EventIdKey<'_>) -> bool {
        let (block, a, b) = self.locate(key);
        (0..PROBES).all(|i| {
            let bit = a.wrapping_add(i.wrapping_mul(b)) % BLOCK_BITS;
            self.bits[block + (bit / 64) as usize] & (1 << (bit % 64)) != 0
        })
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
        assert!(f.is_full());

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
}
