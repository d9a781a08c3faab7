//! Integration tests of the SQLite store: the object protocol and search semantics.

mod backup;
mod migrate;
mod ops;
mod protocol;
mod resources;
mod retention;
mod rollups;
mod search;

use model::ParsedEvent;

/// A minimal valid record.
pub fn event(id: &str, time: &str, name: &str) -> ParsedEvent {
    ParsedEvent::from_json(&format!(
        r#"{{"eventID":"{id}","eventTime":"{time}","eventName":"{name}","eventSource":"ec2.amazonaws.com",
        "awsRegion":"us-east-1","recipientAccountId":"111122223333","sourceIPAddress":"203.0.113.7",
        "userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice"}}}}"#
    ))
    .unwrap()
}

/// Applies `policy` at `now` to the end, `slice` blocks per call (as the retention task does).
pub fn retain_all(store: &dyn store::EventStore, policy: &store::RetentionPolicy, now: i64, slice: usize) {
    let mut resume = None;
    loop {
        let r = store.apply_retention(policy, now, resume, slice).unwrap();
        resume = r.resume_after;
        if resume.is_none() {
            break;
        }
    }
}
