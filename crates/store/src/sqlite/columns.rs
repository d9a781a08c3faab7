//! The per-event columns of one block, stored together as one compressed value.
//!
//! Rows are kept column by column (all times, then all event-name ids, …): consecutive values
//! of a column are alike, so they compress well, and a search decodes a block once and then
//! tests plain integers. Integers are zigzag varints; strings are a varint length and bytes;
//! the whole is one zstd frame. A version byte leads, so the format can change later.

use std::io::Read;

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
}

const VERSION: u8 = 1;

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

    /// The `postings` row `i` is indexed under: (dimension, value) of each searchable column it
    /// has a value for. The writer posts these, retention removes them with the block.
    pub fn posted(&self, i: usize) -> impl Iterator<Item = (u8, i64)> + use<> {
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
        zstd::bulk::compress(&out, 1).expect("compressing into memory cannot fail")
    }

    pub fn decode(bytes: &[u8]) -> Result<BlockColumns, ColumnsError> {
        let mut plain = Vec::new();
        zstd::stream::Decoder::new(bytes).and_then(|mut d| d.read_to_end(&mut plain)).map_err(ColumnsError::Zstd)?;
        let mut at = 0;
        let version = *plain.first().ok_or(ColumnsError::Malformed(0))?;
        if version != VERSION {
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
        for _ in 0..n {
            let len = get_varint(&plain, &mut at)? as usize;
            let bytes = plain.get(at..at + len).ok_or(ColumnsError::Malformed(at))?;
            cols.access_key_id.push(String::from_utf8(bytes.to_vec()).map_err(|_| ColumnsError::Malformed(at))?);
            at += len;
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
            region in column(n), source_ip in column(n), error_code in column(n), event_type in column(n),
            category in column(n), user_agent in column(n), principal in column(n), flags in column(n),
            object_id in column(n), raw_slot in column(n),
            access_key_id in prop::collection::vec("\\PC{0,20}", n),
        ) -> BlockColumns {
            BlockColumns { event_time, event_source, event_name, account, region, source_ip, error_code,
                event_type, category, user_agent, principal, flags, access_key_id, object_id, raw_slot }
        }
    }

    proptest! {
        #[test]
        fn round_trips(cols in columns()) {
            prop_assert_eq!(BlockColumns::decode(&cols.encode()).unwrap(), cols);
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = BlockColumns::decode(&bytes);
            let plain = zstd::bulk::compress(&bytes, 1).unwrap();
            let _ = BlockColumns::decode(&plain);
        }
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
