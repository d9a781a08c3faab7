//! Ingesting one very large log file stays within a fixed memory budget.

use crate::util::{bin, s};

#[test]
fn peak_rss_for_a_100_mb_log_file_stays_under_300_mb() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    // ~100 MB of JSON, one file.
    let mut records = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < 100_000_000 {
        let r =
            test_support::record(&format!("{i:08x}-0000-4000-8000-000000000000"), "2026-01-05T00:01:02Z", "GetObject")
                .replace(
                    r#""requestParameters":null"#,
                    &format!(r#""requestParameters":{{"key":"{}"}}"#, "k".repeat(600)),
                );
        size += r.len() + 1;
        records.push(r);
        i += 1;
    }
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/05/111122223333_CloudTrail_us-east-1_20260105T0005Z_OneHundredMegaBy.json.gz";
    test_support::put(&tree, key, &test_support::gzip(test_support::log_document(&records).as_bytes()));
    drop(records);

    let db = dir.path().join("t.db");
    let out = bin()
        .args(["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"])
        .env("TRAILWATCH_REPORT_PEAK_RSS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["new"], i);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mb: f64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak RSS: ")?.strip_suffix(" MB")?.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS reported: {stderr}"));
    eprintln!("peak RSS {mb} MB for {i} records");
    assert!(mb < 300.0, "peak RSS {mb} MB");
}
