//! Importing history that did not come from a trail's bucket: files exported from CloudTrail
//! Lake or the console's Event history, and `LookupEvents` answers. Whatever the shape, the
//! records become ordinary CloudTrail log documents (`{"Records":[…]}`) and go through the
//! same pipeline as any log file: the same parser, detection, dedupe by `eventID` (importing
//! what a trail also delivered stores nothing twice) and ledger.
//!
//! Shapes read (plain or gzip'd):
//! * `{"Records":[…]}` — a log file, or the console's Event history download as JSON;
//! * `{"Events":[{"CloudTrailEvent":"<record as a JSON string>", …}]}` — `aws cloudtrail
//!   lookup-events` output;
//! * `{"QueryResultRows":[[{"eventID":…},{"eventTime":…},…],…]}` — CloudTrail Lake
//!   `get-query-results` output of a `SELECT *` (columns merged back into a record; columns
//!   holding JSON text are parsed);
//! * a JSON array of any of those elements, or JSON Lines of them (one per line), where an
//!   element with `CloudTrailEvent` or `eventJson` text is that record.

use std::io::Read;

use serde_json::{Map, Value};

/// Records per document handed to the pipeline (an export can hold millions).
pub const RECORDS_PER_DOCUMENT: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not gzip or not complete: {0}")]
    Gzip(std::io::Error),
    #[error("not JSON the importer knows ({0}): expected {{\"Records\"}}, {{\"Events\"}} (lookup-events), {{\"QueryResultRows\"}} (CloudTrail Lake), a JSON array or JSON Lines of records")]
    Shape(String),
}

/// What an export held.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportRecords {
    /// Each record's JSON text, in file order.
    pub records: Vec<String>,
    /// Elements that were not records (no `eventID` or `eventTime`), skipped.
    pub skipped: u64,
    /// Which shape was recognised.
    pub shape: &'static str,
}

/// The records of one export file.
pub fn export_records(bytes: &[u8]) -> Result<ExportRecords, ImportError> {
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).map_err(ImportError::Gzip)?;
        out
    } else {
        bytes.to_vec()
    };
    let text = String::from_utf8_lossy(&text);
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let mut out = ExportRecords::default();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(o)) => {
            if let Some(Value::Array(records)) = o.get("Records") {
                out.shape = "Records";
                records.iter().for_each(|r| push(&mut out, r));
            } else if let Some(Value::Array(events)) = o.get("Events") {
                out.shape = "LookupEvents";
                events.iter().for_each(|e| push(&mut out, e));
            } else if let Some(Value::Array(rows)) = o.get("QueryResultRows") {
                out.shape = "CloudTrail Lake query results";
                rows.iter().for_each(|row| push(&mut out, &lake_row(row)));
            } else if o.contains_key("eventID") {
                out.shape = "one record";
                push(&mut out, &Value::Object(o));
            } else {
                let keys: Vec<&String> = o.keys().take(5).collect();
                return Err(ImportError::Shape(format!("an object with keys {keys:?}")));
            }
        }
        Ok(Value::Array(items)) => {
            out.shape = "JSON array";
            items.iter().for_each(|r| push(&mut out, r));
        }
        Ok(other) => return Err(ImportError::Shape(format!("a JSON {}", kind(&other)))),
        Err(whole) => {
            // JSON Lines: every non-empty line one element.
            out.shape = "JSON Lines";
            for (i, line) in trimmed.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => push(&mut out, &v),
                    Err(e) if i == 0 => return Err(ImportError::Shape(format!("{whole}; as JSON Lines, line 1: {e}"))),
                    Err(_) => out.skipped += 1,
                }
            }
        }
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Adds one element: a record, or a wrapper whose `CloudTrailEvent`/`eventJson` is one.
fn push(out: &mut ExportRecords, v: &Value) {
    let record = match v {
        Value::Object(o) => {
            match o.get("CloudTrailEvent").or_else(|| o.get("eventJson")).or_else(|| o.get("eventjson")) {
                Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok(),
                Some(inner @ Value::Object(_)) => Some(inner.clone()),
                _ => Some(v.clone()),
            }
        }
        Value::String(s) => serde_json::from_str::<Value>(s).ok(),
        _ => None,
    };
    match record {
        Some(r)
            if r.get("eventID").is_some_and(Value::is_string) && r.get("eventTime").is_some_and(Value::is_string) =>
        {
            out.records.push(r.to_string())
        }
        _ => out.skipped += 1,
    }
}

/// A Lake result row (a list of one-column objects) as a record: the columns merged, and
/// columns that hold JSON text (`userIdentity`, `requestParameters`, …) parsed back.
fn lake_row(row: &Value) -> Value {
    let mut record = Map::new();
    for cell in row.as_array().into_iter().flatten() {
        for (k, v) in cell.as_object().into_iter().flatten() {
            let value = match v {
                Value::String(s) if s.starts_with('{') || s.starts_with('[') => {
                    serde_json::from_str(s).unwrap_or_else(|_| v.clone())
                }
                other => other.clone(),
            };
            record.insert(k.clone(), value);
        }
    }
    Value::Object(record)
}

/// `records` as log documents of at most [`RECORDS_PER_DOCUMENT`] records each.
pub fn documents(records: &[String]) -> Vec<Vec<u8>> {
    records
        .chunks(RECORDS_PER_DOCUMENT)
        .map(|chunk| {
            let mut doc = Vec::with_capacity(chunk.iter().map(|r| r.len() + 1).sum::<usize>() + 16);
            doc.extend_from_slice(b"{\"Records\":[");
            for (i, r) in chunk.iter().enumerate() {
                if i > 0 {
                    doc.push(b',');
                }
                doc.extend_from_slice(r.as_bytes());
            }
            doc.extend_from_slice(b"]}");
            doc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = r#"{"eventVersion":"1.09","eventID":"e1","eventTime":"2024-01-01T00:00:00Z","eventName":"StopLogging","userIdentity":{"type":"Root"}}"#;
    const R2: &str =
        r#"{"eventVersion":"1.09","eventID":"e2","eventTime":"2024-01-01T00:00:01Z","eventName":"GetObject"}"#;

    fn ids(e: &ExportRecords) -> Vec<String> {
        e.records
            .iter()
            .map(|r| serde_json::from_str::<Value>(r).unwrap()["eventID"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn every_shape_yields_its_records() {
        let records = format!(r#"{{"Records":[{R1},{R2}]}}"#);
        let lookup = serde_json::json!({"Events": [
            {"EventId": "e1", "EventName": "StopLogging", "CloudTrailEvent": R1},
            {"EventId": "e2", "CloudTrailEvent": R2}], "NextToken": "x"})
        .to_string();
        let lake = serde_json::json!({"QueryResultRows": [[
            {"eventVersion": "1.09"}, {"eventID": "e1"}, {"eventTime": "2024-01-01T00:00:00Z"},
            {"eventName": "StopLogging"}, {"userIdentity": "{\"type\":\"Root\"}"}]], "QueryStatus": "FINISHED"})
        .to_string();
        let lines = format!("{R1}\n\n{R2}\n");
        let array = format!("[{R1},{R2}]");
        for (input, want) in [(records, 2), (lookup, 2), (lake, 1), (lines, 2), (array, 2)] {
            let e = export_records(input.as_bytes()).unwrap();
            assert_eq!(ids(&e)[..want], ["e1", "e2"][..want], "{}", e.shape);
            assert_eq!(e.skipped, 0, "{}", e.shape);
        }
        let lake = export_records(
            serde_json::json!({"QueryResultRows": [[{"eventID": "e1"}, {"eventTime": "t"}, {"userIdentity": "{\"type\":\"Root\"}"}]]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let r: Value = serde_json::from_str(&lake.records[0]).unwrap();
        assert_eq!(r["userIdentity"]["type"], "Root", "JSON columns parsed back");
    }

    #[test]
    fn gzip_and_strays_and_unknown_shapes() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(format!(r#"{{"Records":[{R1},{{"no":"id"}},7]}}"#).as_bytes()).unwrap();
        let e = export_records(&gz.finish().unwrap()).unwrap();
        assert_eq!((ids(&e), e.skipped), (vec!["e1".to_string()], 2));
        assert!(matches!(export_records(b"{\"Items\":[]}"), Err(ImportError::Shape(_))));
        assert!(matches!(export_records(b"\x1f\x8bnot gzip"), Err(ImportError::Gzip(_))));
        assert!(matches!(export_records(b"eventID,eventTime\ne1,t\n"), Err(ImportError::Shape(_))));
    }

    #[test]
    fn documents_are_log_files_of_bounded_size() {
        let records: Vec<String> = (0..RECORDS_PER_DOCUMENT + 3).map(|i| format!(r#"{{"eventID":"{i}"}}"#)).collect();
        let docs = documents(&records);
        assert_eq!(docs.len(), 2);
        let second: Value = serde_json::from_slice(&docs[1]).unwrap();
        assert_eq!(second["Records"].as_array().unwrap().len(), 3);
    }
}
