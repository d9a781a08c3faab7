//! Helpers for tests: where the shared sample data is, gzip, and bucket-shaped trees.
//!
//! Dev-dependency only. (The scale-out test stores are `store::testing`; moto and the browser
//! are driven from `tests/aws` and `tests/browser`.)

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

/// `../shared` beside the repository (CI lays it out read-only); `TRAILWATCH_SHARED_DIR`
/// overrides.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("TRAILWATCH_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// A path under `shared/data/`.
pub fn shared_data(rel: &str) -> PathBuf {
    shared_dir().join("data").join(rel)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).expect("in-memory write");
    e.finish().expect("in-memory write")
}

/// `{"Records":[r1,r2,…]}` of the given record texts.
pub fn log_document<S: AsRef<str>>(records: &[S]) -> String {
    let body: Vec<&str> = records.iter().map(AsRef::as_ref).collect();
    format!("{{\"Records\":[{}]}}", body.join(","))
}

/// A minimal valid CloudTrail record.
pub fn record(event_id: &str, event_time: &str, event_name: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.10","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::111122223333:user/alice","accountId":"111122223333","userName":"alice"}},"eventTime":"{event_time}","eventSource":"ec2.amazonaws.com","eventName":"{event_name}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.10","userAgent":"aws-cli/2.15.30","requestParameters":null,"responseElements":null,"requestID":"req-{event_id}","eventID":"{event_id}","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}}"#
    )
}

/// Writes `bytes` at `root/key`, creating directories.
pub fn put(root: &Path, key: &str, bytes: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().expect("key has a directory")).expect("create directories");
    std::fs::write(&path, bytes).expect("write test file");
}

/// Every file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("readable directory") {
            let p = e.expect("directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
