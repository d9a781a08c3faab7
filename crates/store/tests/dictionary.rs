//! Raw records get a zstd dictionary trained on the store's own records: later frames use
//! it, are smaller, and read back verbatim in a process that has never seen it (its own
//! test binary: the process's dictionaries are forgotten here, which would race with other
//! tests' writers).

use std::collections::HashMap;

use model::{timefmt::format_millis, ParsedEvent};
use store::{EventQuery, EventStore, ObjectMeta, ObjectTotals, SqliteStore};

fn record(i: usize) -> ParsedEvent {
    let account = 111_122_220_000u64 + (i % 7) as u64;
    ParsedEvent::from_json(&format!(
        r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROA{i:08}:s{}","arn":"arn:aws:sts::{account}:assumed-role/Deploy{}/s{}","accountId":"{account}","accessKeyId":"ASIA{i:016}","sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROA{i:08}","arn":"arn:aws:iam::{account}:role/Deploy{}","accountId":"{account}","userName":"Deploy{}"}},"attributes":{{"creationDate":"2026-01-05T10:00:00Z","mfaAuthenticated":"false"}}}}}},"eventTime":"{}","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"eu-west-1","sourceIPAddress":"198.51.{}.{}","userAgent":"aws-cli/2.15.{} Python/3.11.6 Linux/6.1 exe/x86_64","requestParameters":{{"instancesSet":{{"items":[{{"instanceId":"i-{i:017x}"}}]}}}},"responseElements":null,"requestID":"{i:08x}-1111-2222-3333-444455556666","eventID":"{i:08x}-aaaa-4bbb-8ccc-dddddddddddd","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{account}","eventCategory":"Management","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"ec2.eu-west-1.amazonaws.com"}}}}"#,
        i % 13,
        i % 5,
        i % 13,
        i % 5,
        i % 5,
        format_millis(1_767_600_000_000 + i as i64 * 1000),
        i % 256,
        i % 97,
        i % 30,
    ))
    .unwrap()
}

#[test]
fn raw_records_get_a_dictionary_and_read_back_without_it_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let events: Vec<ParsedEvent> = (0..60_000).map(record).collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut w = store.writer().unwrap();
        // Files of seven records, as small accounts deliver them.
        for (n, chunk) in events.chunks(7).enumerate() {
            w.begin_object(&ObjectMeta::local(format!("f{n}.json.gz"), 1)).unwrap();
            w.insert(&mut chunk.to_vec().into()).unwrap();
            w.finish_object(&ObjectTotals { records: chunk.len() as u64, ..Default::default() }).unwrap();
            if n % 500 == 499 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
    }
    // Blocks before the dictionary and after it: bytes of raw records per record.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let dictionaries: i64 = conn.query_row("SELECT count(*) FROM raw_dictionaries", [], |r| r.get(0)).unwrap();
    assert_eq!(dictionaries, 1);
    let id: u32 = conn.query_row("SELECT id FROM raw_dictionaries", [], |r| r.get(0)).unwrap();
    let mut with = (0usize, 0usize);
    let mut without = (0usize, 0usize);
    let mut stmt = conn.prepare("SELECT raw, rows FROM blocks").unwrap();
    for row in stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))).unwrap() {
        let (raw, rows) = row.unwrap();
        let named = zstd::zstd_safe::get_dict_id_from_frame(&raw).map(|d| d.get());
        let slot = if named == Some(id) { &mut with } else { &mut without };
        slot.0 += raw.len();
        slot.1 += rows as usize;
    }
    assert!(without.1 > 0 && with.1 > without.1, "early blocks without, the rest with: {without:?} {with:?}");
    let (per_with, per_without) = (with.0 as f64 / with.1 as f64, without.0 as f64 / without.1 as f64);
    assert!(per_with < 0.8 * per_without, "{per_with:.0} vs {per_without:.0} bytes per record");

    // Another process: nothing in memory, the store's table has the dictionary.
    store::forget_raw_dictionaries();
    let store = SqliteStore::open(&path).unwrap();
    let want: HashMap<&str, &str> = events.iter().map(|e| (e.event_id.as_str(), e.raw.as_str())).collect();
    let rows = store.search(&EventQuery::default()).unwrap();
    assert_eq!(rows.len(), events.len());
    for r in &rows {
        assert_eq!(want[r.event_id.as_str()], r.raw);
    }
    let e = &events[59_321];
    assert_eq!(store.event(&e.event_id).unwrap().unwrap().raw, e.raw);
}
