//! Any bytes, raw or gzip'd: the reader never panics, and whenever it accepts a document,
//! serde_json agrees the document is an object whose `Records` are exactly what was returned.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

fn check(input: &[u8], block: usize) {
    let Ok(reader) = model::LogFileReader::with_block_size(input, block) else { return };
    let mut events = model::EventReader::from_reader(reader);
    let mut ids = Vec::new();
    loop {
        match events.next_event() {
            Ok(Some(e)) => ids.push(e.event_id),
            Ok(None) => break,
            Err(e) => {
                let _ = e.reason_code();
                return;
            }
        }
    }
    let summary = events.summary();
    assert_eq!(summary.records as usize, ids.len());
}

fuzz_target!(|data: &[u8]| {
    let block = 1 + data.first().copied().unwrap_or(0) as usize % 64;
    check(data, block);
    check(data, 256 << 10);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    check(&gz.finish().unwrap(), block);
    // Plain JSON the reader accepts must be valid JSON with the same Records.
    let mut reader = match model::LogFileReader::new(data) {
        Ok(r) => r,
        Err(_) => return,
    };
    let mut texts = Vec::new();
    loop {
        match reader.next_record() {
            Ok(Some(t)) => texts.push(t.to_string()),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    if texts.iter().any(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_err()) {
        return; // a record that is not JSON is rejected one level up (EventReader)
    }
    // The reader inflates gzip itself; judge the JSON it actually read.
    let mut inflated = Vec::new();
    let json: &[u8] = if data.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        if flate2::read::GzDecoder::new(data).read_to_end(&mut inflated).is_err() {
            return;
        }
        &inflated
    } else {
        data
    };
    let value: serde_json::Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) if e.to_string().contains("number out of range") => return,
        Err(e) => panic!("reader accepted invalid JSON: {e}"),
    };
    let records = value.get("Records").and_then(|r| r.as_array()).expect("Records array");
    assert_eq!(records.len(), texts.len());
});
