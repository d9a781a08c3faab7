//! Properties of the streaming reader: no input panics it; valid documents come back
//! record for record at any block size; a truncated or corrupted file never reads as a
//! clean, shorter one.

use model::LogFileReader;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use test_support::gzip;

fn read(input: &[u8], block: usize) -> Result<Vec<String>, String> {
    let mut r = LogFileReader::with_block_size(input, block).map_err(|e| e.reason_code().to_string())?;
    let mut out = Vec::new();
    loop {
        match r.next_record() {
            Ok(Some(t)) => {
                // What EventReader does next: the record itself must be valid JSON.
                serde_json::from_str::<serde::de::IgnoredAny>(t).map_err(|_| "record_invalid".to_string())?;
                out.push(t.to_string())
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.reason_code().to_string()),
        }
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,12}".prop_map(Value::String),
        // Strings full of the characters the framing scanner cares about.
        "[{}\\[\\]\"\\\\,: ]{0,8}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z{}\"]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn record() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-zA-Z]{1,8}", json_value(), 0..5)
        .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>()))
}

/// A log document with random records, random extra members and random whitespace.
fn document() -> impl Strategy<Value = (String, Vec<Value>)> {
    (
        prop::collection::vec(record(), 0..6),
        proptest::option::of(json_value()),
        proptest::option::of(json_value()),
        "[ \n\t\r]{0,3}",
        any::<bool>(),
    )
        .prop_map(|(records, before, after, ws, pretty)| {
            let body: Vec<String> = records
                .iter()
                .map(|r| if pretty { serde_json::to_string_pretty(r).unwrap() } else { r.to_string() })
                .collect();
            let mut doc = format!("{ws}{{{ws}");
            if let Some(b) = &before {
                doc.push_str(&format!("\"before\"{ws}:{ws}{b}{ws},"));
            }
            doc.push_str(&format!("\"Records\"{ws}:{ws}[{ws}{}{ws}]", body.join(&format!("{ws},{ws}"))));
            if let Some(a) = &after {
                doc.push_str(&format!(",{ws}\"after\":{a}"));
            }
            doc.push_str(&format!("{ws}}}{ws}"));
            (doc, records)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), block in 1usize..64) {
        let _ = read(&bytes, block);
        let _ = read(&gzip(&bytes), block);
    }

    #[test]
    fn valid_documents_round_trip_at_any_block_size((doc, records) in document(), block in 1usize..40) {
        for input in [doc.as_bytes().to_vec(), gzip(doc.as_bytes())] {
            let got = read(&input, block).map_err(|e| TestCaseError::fail(format!("{e}: {doc}")))?;
            prop_assert_eq!(got.len(), records.len());
            for (text, want) in got.iter().zip(&records) {
                let value: Value = serde_json::from_str(text).unwrap();
                prop_assert_eq!(&value, want);
                // The text is a verbatim slice of the document.
                prop_assert!(doc.contains(text.as_str()));
            }
        }
    }

    #[test]
    fn truncated_gzip_is_always_an_error((doc, _) in document(), cut in any::<prop::sample::Index>()) {
        let packed = gzip(doc.as_bytes());
        let cut = cut.index(packed.len());
        prop_assert!(read(&packed[..cut], 16).is_err(), "cut at {} of {}", cut, packed.len());
    }

    /// Whatever a corrupted document is, if the reader accepts it then serde_json agrees that
    /// it is a JSON object whose `Records` are exactly the records returned.
    #[test]
    fn accepted_input_is_valid_json((doc, _) in document(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = doc.into_bytes();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok(records) = read(&bytes, 8) {
            serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
                .map_err(|e| TestCaseError::fail(format!("reader accepted invalid JSON: {e}")))?;
            // A number beyond f64 is valid JSON grammar but not representable as a `Value`.
            let value: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) if e.to_string().contains("number out of range") => return Ok(()),
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            };
            let array = value.get("Records").and_then(Value::as_array).expect("Records array");
            prop_assert_eq!(array.len(), records.len());
            for (text, want) in records.iter().zip(array) {
                prop_assert_eq!(&serde_json::from_str::<Value>(text).unwrap(), want);
            }
        }
    }
}
