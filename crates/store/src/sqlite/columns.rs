//! The per-event columns of one block, stored together as one compressed value.
//!
//! Rows are kept column by column (all times, then all event-name ids, …): consecutive values
//! of a column are alike, so they compress well, and a search decodes a block once and then
//! tests plain integers. Integers are zigzag varints; strings are a varint length and bytes;
//! the whole is one zstd frame. A version byte leads, so the format can change later.
//!
//! User agents and source addresses are not interned in the global dictionary: real trails
//! have tens of thousands of each per 100 k events, and a global value → id B-tree pays a
//! random insert (and a dirty page) for every new value, which made ingest slow with
//! cardinality. Their columns hold a [`text_id`] (a stable 63-bit hash of the text) and the
//! block carries its distinct texts (`texts`, version 2), so a block is self-contained: a
//! search for an address looks its hash up in `postings`, and rows show their text from
//! their own block.

use std::cell::OnceCell;
use std::io::Read;

use rustc_hash::{FxHashMap, FxHashSet};

use super::schema::kind;

/// Columns of a block's rows, one `Vec` per column, all of the same length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BlockColumns {
    pub event_time: Vec<i64>,
    /// Dictionary ids (`dict.id`), 0 when the record has no value.
    pub event_source: Vec<i64>,
    pub event_name: Vec<i64>,
    pub account: Vec<i64>,
    pub region: Vec<i64>,
    pub source_ip: Vec<i64>,
    pub error_code: Vec<i64>,
    pub event_type: Vec<i64>,
    pub category: Vec<i64>,
    pub user_agent: Vec<i64>,
    /// `principals.id`.
    pub principal: Vec<i64>,
    /// readOnly, managementEvent, MFA (2 bits each: 0 unknown, 1 false, 2 true), console (bit 6).
    pub flags: Vec<i64>,
    /// Empty when the record has none.
    pub access_key_id: Vec<String>,
    /// The ledger row of the object that delivered the event.
    pub object_id: Vec<i64>,
    /// The record's index in the block's raw records.
    pub raw_slot: Vec<i64>,
    /// The distinct texts `source_ip` and `user_agent` name by [`text_id`] (may hold texts
    /// no row names any more; only named ones are stored).
    pub texts: Vec<String>,
    /// `text_id` → index in `texts`, built on first use.
    pub text_index: TextIndex,
}

/// The lazily built lookup of a block's texts; not part of the block's value.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextIndex(OnceCell<FxHashMap<i64, u32>>);

impl PartialEq for TextIndex {
    fn eq(&self, _: &TextIndex) -> bool {
        true
    }
}
impl Eq for TextIndex {}

/// The id a user agent or source address has in a block's columns and in `postings`: a
/// stable 63-bit hash (FNV-1a, then SplitMix64's finaliser), never 0. Stored on disk, so it
/// must never change. Two texts share an id with probability 2^-63 per pair.
pub(crate) fn text_id(text: &str) -> i64 {
    ((mix64(fnv1a(FNV_OFFSET, text.as_bytes())) >> 1) as i64).max(1)
}

/// FNV-1a's offset basis (where a hash of nothing starts).
pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over `bytes`, from `basis`. With [`mix64`], the hashes stored on disk (text ids,
/// the saved id filter): both must never change.
pub(crate) fn fnv1a(basis: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(basis, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// SplitMix64's finaliser: spreads every input bit over the output.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Postings of the high-cardinality dimensions (addresses, principals) are segmented by
/// block: their value is `segment << 40 | value's low 40 bits`, segment = block >> 10 (about
/// a million events). New values then land in the current segment's part of the index, a
/// working set that stays in cache however large the store grows, instead of at random
/// places in an index of every value ever seen (a dirty page each at commit). A search
/// asks every segment (a hundred at 100 M events). Low bits of two values may coincide:
/// postings only choose blocks, rows are tested on the full value.
pub(crate) const SEGMENT_SHIFT: u32 = 10;
pub(crate) const SEGMENT_VALUE_BITS: u32 = 40;
pub(crate) const SEGMENT_VALUE_MASK: i64 = (1 << SEGMENT_VALUE_BITS) - 1;

/// Whether `dim`'s postings are segmented.
pub(crate) fn segmented(dim: u8) -> bool {
    dim == kind::SOURCE_IP || dim == kind::PRINCIPAL || dim == kind::RESOURCE
}

/// The postings (dimension, value) of a record's resources in block `block`.
pub(crate) fn resource_postings(resources: &[String], block: i64) -> impl Iterator<Item = (u8, i64)> + '_ {
    model::resources::index_keys(resources)
        .into_iter()
        .map(move |key| (kind::RESOURCE, posting_value(kind::RESOURCE, text_id(key), block)))
}

/// The `postings.value` of `value` of dimension `dim` in block `block`.
pub(crate) fn posting_value(dim: u8, value: i64, block: i64) -> i64 {
    if segmented(dim) {
        (block >> SEGMENT_SHIFT) << SEGMENT_VALUE_BITS | (value & SEGMENT_VALUE_MASK)
    } else {
        value
    }
}

/// Version 1 named user agents and addresses by dictionary ids and had no texts; stores
/// are upgraded to version 2 by a migration (`schema::inline_texts`).
const VERSION: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ColumnsError {
    #[error("columns do not decompress: {0}")]
    Zstd(std::io::Error),
    #[error("columns are truncated or malformed at byte {0}")]
    Malformed(usize),
    #[error("unknown columns version {0}")]
    Version(u8),
}

impl BlockColumns {
    pub fn with_capacity(n: usize) -> BlockColumns {
        let mut c = BlockColumns::default();
        c.for_each_int(|col| col.reserve(n));
        c.access_key_id.reserve(n);
        c
    }

    pub fn len(&self) -> usize {
        self.event_time.len()
    }

    /// (dimension, id) of each searchable column row `i` has a value for: what it is posted
    /// under ([`posted`](Self::posted)) and counted by in the hourly rollups.
    pub fn values(&self, i: usize) -> impl Iterator<Item = (u8, i64)> + use<> {
        [
            (kind::EVENT_SOURCE, self.event_source[i]),
            (kind::EVENT_NAME, self.event_name[i]),
            (kind::ACCOUNT, self.account[i]),
            (kind::REGION, self.region[i]),
            (kind::ERROR_CODE, self.error_code[i]),
            (kind::SOURCE_IP, self.source_ip[i]),
            (kind::PRINCIPAL, self.principal[i]),
        ]
        .into_iter()
        .filter(|&(_, value)| value != 0)
    }

    /// The `postings` row `i` of block `block` is indexed under: (dimension, value) of each
    /// searchable column it has a value for ([`posting_value`]). The writer posts these,
    /// retention removes them with the block.
    pub fn posted(&self, i: usize, block: i64) -> impl Iterator<Item = (u8, i64)> + use<> {
        self.values(i).map(move |(dim, value)| (dim, posting_value(dim, value, block)))
    }

    /// The text a `source_ip` or `user_agent` id names in this block.
    pub fn text(&self, id: i64) -> Option<&str> {
        if id == 0 {
            return None;
        }
        let index = self
            .text_index
            .0
            .get_or_init(|| self.texts.iter().enumerate().map(|(i, t)| (text_id(t), i as u32)).collect());
        index.get(&id).map(|&i| self.texts[i as usize].as_str())
    }

    /// Sets a text column's value for a new row: the id, and the text if the block lacks it.
    pub fn push_text(&mut self, seen: &mut FxHashSet<i64>, text: Option<&str>) -> i64 {
        let Some(text) = text else { return 0 };
        let id = text_id(text);
        if seen.insert(id) {
            self.texts.push(text.to_string());
            self.text_index = TextIndex::default();
        }
        id
    }

    /// Keeps the first `n` rows.
    pub fn truncate(&mut self, n: usize) {
        self.for_each_int(|c| c.truncate(n));
        self.access_key_id.truncate(n);
    }

    /// Appends row `i` of `other`, its raw record now at `raw_slot`.
    pub fn push_row_from(&mut self, other: &BlockColumns, i: usize, raw_slot: i64) {
        self.event_time.push(other.event_time[i]);
        self.event_source.push(other.event_source[i]);
        self.event_name.push(other.event_name[i]);
        self.account.push(other.account[i]);
        self.region.push(other.region[i]);
        self.source_ip.push(other.source_ip[i]);
        self.error_code.push(other.error_code[i]);
        self.event_type.push(other.event_type[i]);
        self.category.push(other.category[i]);
        self.user_agent.push(other.user_agent[i]);
        self.principal.push(other.principal[i]);
        self.flags.push(other.flags[i]);
        self.access_key_id.push(other.access_key_id[i].clone());
        self.object_id.push(other.object_id[i]);
        self.raw_slot.push(raw_slot);
        // Copied as they come, repeats too: asking `self.text` first would rebuild this
        // block's index after every row; `encode` writes each text once.
        let texts = [other.source_ip[i], other.user_agent[i]].map(|id| other.text(id));
        for text in texts.into_iter().flatten() {
            self.texts.push(text.to_string());
        }
        self.text_index = TextIndex::default();
    }

    /// The integer columns in storage order after `event_time`.
    fn int_columns_after_time(&self) -> [&Vec<i64>; 13] {
        [
            &self.event_source,
            &self.event_name,
            &self.account,
            &self.region,
            &self.source_ip,
            &self.error_code,
            &self.event_type,
            &self.category,
            &self.user_agent,
            &self.principal,
            &self.flags,
            &self.object_id,
            &self.raw_slot,
        ]
    }

    /// Every integer column, `event_time` first (the storage order).
    fn for_each_int(&mut self, mut f: impl FnMut(&mut Vec<i64>)) {
        for c in [
            &mut self.event_time,
            &mut self.event_source,
            &mut self.event_name,
            &mut self.account,
            &mut self.region,
            &mut self.source_ip,
            &mut self.error_code,
            &mut self.event_type,
            &mut self.category,
            &mut self.user_agent,
            &mut self.principal,
            &mut self.flags,
            &mut self.object_id,
            &mut self.raw_slot,
        ] {
            f(c);
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let n = self.len();
        let mut out = Vec::with_capacity(n * 64 + 8);
        out.push(VERSION);
        put_varint(&mut out, n as u64);
        // Times grow within a block: the first is stored as is, then differences, which are small.
        let mut previous = 0i64;
        for &t in &self.event_time {
            put_varint(&mut out, zigzag(t.wrapping_sub(previous)));
            previous = t;
        }
        for c in self.int_columns_after_time() {
            c.iter().for_each(|&v| put_varint(&mut out, zigzag(v)));
        }
        for s in &self.access_key_id {
            put_varint(&mut out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        // Only the texts some row names, each once.
        let named: FxHashSet<i64> =
            self.source_ip.iter().chain(&self.user_agent).copied().filter(|&id| id != 0).collect();
        let mut written = FxHashSet::default();
        let texts: Vec<&String> =
            self.texts.iter().filter(|t| named.contains(&text_id(t)) && written.insert(text_id(t))).collect();
        put_varint(&mut out, texts.len() as u64);
        for s in texts {
            put_varint(&mut out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        zstd::bulk::compress(&out, 1).expect("compressing into memory cannot fail")
    }

    /// Whether `bytes` are columns of version 1 (user agents and addresses as dictionary ids).
    pub fn is_version_1(bytes: &[u8]) -> Result<bool, ColumnsError> {
        let mut plain = [0u8; 1];
        zstd::stream::Decoder::new(bytes).and_then(|mut d| d.read_exact(&mut plain)).map_err(ColumnsError::Zstd)?;
        Ok(plain[0] == 1)
    }

    pub fn decode(bytes: &[u8]) -> Result<BlockColumns, ColumnsError> {
        let mut plain = Vec::new();
        zstd::stream::Decoder::new(bytes).and_then(|mut d| d.read_to_end(&mut plain)).map_err(ColumnsError::Zstd)?;
        let mut at = 0;
        let version = *plain.first().ok_or(ColumnsError::Malformed(0))?;
        if version != VERSION && version != 1 {
            return Err(ColumnsError::Version(version));
        }
        at += 1;
        let n = get_varint(&plain, &mut at)? as usize;
        if n > plain.len() {
            return Err(ColumnsError::Malformed(at));
        }
        let mut cols = BlockColumns::default();
        let mut failed = None;
        cols.for_each_int(|c| {
            c.reserve(n);
            for _ in 0..n {
                match get_varint(&plain, &mut at) {
                    Ok(v) => c.push(unzigzag(v)),
                    Err(e) => {
                        failed.get_or_insert(e);
                        return;
                    }
                }
            }
        });
        if let Some(e) = failed {
            return Err(e);
        }
        delta_decode(&mut cols.event_time);
        let string = |at: &mut usize| -> Result<String, ColumnsError> {
            let len = get_varint(&plain, at)? as usize;
            let bytes = plain.get(*at..*at + len).ok_or(ColumnsError::Malformed(*at))?;
            let s = String::from_utf8(bytes.to_vec()).map_err(|_| ColumnsError::Malformed(*at))?;
            *at += len;
            Ok(s)
        };
        for _ in 0..n {
            cols.access_key_id.push(string(&mut at)?);
        }
        if version >= 2 {
            let texts = get_varint(&plain, &mut at)? as usize;
            if texts > plain.len() {
                return Err(ColumnsError::Malformed(at));
            }
            for _ in 0..texts {
                cols.texts.push(string(&mut at)?);
            }
        }
        if at != plain.len() {
            return Err(ColumnsError::Malformed(at));
        }
        Ok(cols)
    }
}

fn delta_decode(v: &mut [i64]) {
    for i in 1..v.len() {
        v[i] = v[i].wrapping_add(v[i - 1]);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], at: &mut usize) -> Result<u64, ColumnsError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at).ok_or(ColumnsError::Malformed(*at))?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(ColumnsError::Malformed(*at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn column(n: usize) -> impl Strategy<Value = Vec<i64>> {
        prop::collection::vec(any::<i64>(), n)
    }

    prop_compose! {
        fn columns()(n in 0usize..40)(
            event_time in column(n), event_source in column(n), event_name in column(n), account in column(n),
            region in column(n), error_code in column(n), event_type in column(n),
            category in column(n), principal in column(n), flags in column(n),
            object_id in column(n), raw_slot in column(n),
            access_key_id in prop::collection::vec("\\PC{0,20}", n),
            ips in prop::collection::vec(prop::option::of("[0-9.]{1,3}"), n),
            agents in prop::collection::vec(prop::option::of("\\PC{0,30}"), n),
        ) -> BlockColumns {
            let mut seen = FxHashSet::default();
            let mut cols = BlockColumns { event_time, event_source, event_name, account, region, source_ip: Vec::new(), error_code,
                event_type, category, user_agent: Vec::new(), principal, flags, access_key_id, object_id, raw_slot,
                texts: Vec::new(), text_index: TextIndex::default() };
            for (ip, agent) in ips.iter().zip(&agents) {
                let ip = cols.push_text(&mut seen, ip.as_deref());
                cols.source_ip.push(ip);
                let agent = cols.push_text(&mut seen, agent.as_deref());
                cols.user_agent.push(agent);
            }
            cols
        }
    }

    proptest! {
        #[test]
        fn round_trips(cols in columns()) {
            let back = BlockColumns::decode(&cols.encode()).unwrap();
            for i in 0..cols.len() {
                prop_assert_eq!(back.text(back.source_ip[i]), cols.text(cols.source_ip[i]));
                prop_assert_eq!(back.text(back.user_agent[i]), cols.text(cols.user_agent[i]));
            }
            prop_assert_eq!(back, BlockColumns { texts: Vec::new(), ..cols.clone() }.with_texts_of(&cols));
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = BlockColumns::decode(&bytes);
            let plain = zstd::bulk::compress(&bytes, 1).unwrap();
            let _ = BlockColumns::decode(&plain);
        }
    }

    impl BlockColumns {
        /// These columns with the texts of `other` its rows name, in `other`'s order, once.
        fn with_texts_of(mut self, other: &BlockColumns) -> BlockColumns {
            let mut seen = FxHashSet::default();
            for t in &other.texts {
                let id = text_id(t);
                if (self.source_ip.contains(&id) || self.user_agent.contains(&id)) && seen.insert(id) {
                    self.texts.push(t.clone());
                }
            }
            self
        }
    }

    #[test]
    fn text_ids_are_pinned_and_never_zero() {
        // Stored on disk: changing the function would orphan every stored address.
        assert_eq!(text_id("203.0.113.7"), PINNED);
        assert!(text_id("") > 0);
        assert_ne!(text_id("a"), text_id("b"));
    }

    const PINNED: i64 = 674_752_078_970_948_668;

    #[test]
    fn unnamed_texts_are_dropped_and_copied_rows_bring_theirs() {
        let mut c = BlockColumns::default();
        let mut seen = FxHashSet::default();
        for ip in ["198.51.100.1", "198.51.100.2", "198.51.100.1"] {
            c.for_each_int(|col| col.push(0));
            c.access_key_id.push(String::new());
            let id = c.push_text(&mut seen, Some(ip));
            *c.source_ip.last_mut().unwrap() = id;
        }
        assert_eq!(c.texts.len(), 2);
        c.truncate(1);
        let back = BlockColumns::decode(&c.encode()).unwrap();
        assert_eq!(back.texts, vec!["198.51.100.1"]);
        let mut copy = BlockColumns::default();
        copy.push_row_from(&back, 0, 0);
        assert_eq!(copy.text(copy.source_ip[0]), Some("198.51.100.1"));
    }

    #[test]
    fn truncate_keeps_a_prefix() {
        let mut c = BlockColumns::default();
        for i in 0..5 {
            c.for_each_int(|col| col.push(i));
            c.access_key_id.push(format!("k{i}"));
        }
        c.truncate(2);
        assert_eq!(c.len(), 2);
        assert_eq!(c.access_key_id, vec!["k0", "k1"]);
        assert_eq!(c.raw_slot, vec![0, 1]);
        assert_eq!(BlockColumns::decode(&c.encode()).unwrap(), c);
    }
}
