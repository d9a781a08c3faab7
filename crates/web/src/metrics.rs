//! `/metrics`: Prometheus text exposition of the ingest counters and integration status.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use aws::consumer::Consumer;

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Which time of a status row a gauge shows.
type Timestamp = fn(&store::IntegrationStatus) -> Option<i64>;

pub fn render(consumer: &Consumer, now_ms: i64) -> String {
    let mut out = String::new();
    let c = &consumer.counters;
    let counters: [(&str, &str, u64); 11] = [
        (
            "trailwatch_messages_received_total",
            "Notifications received (SQS messages and SNS pushes).",
            c.messages.load(Ordering::Relaxed),
        ),
        (
            "trailwatch_messages_deleted_total",
            "SQS messages deleted after their objects were committed.",
            c.deleted.load(Ordering::Relaxed),
        ),
        (
            "trailwatch_message_problems_total",
            "Messages left on their queue (or refused to SNS) with a reason.",
            c.problems.load(Ordering::Relaxed),
        ),
        (
            "trailwatch_validation_messages_total",
            "CloudTrail validation messages and S3 test events.",
            c.validations.load(Ordering::Relaxed),
        ),
        ("trailwatch_objects_committed_total", "Log objects committed.", c.objects_committed.load(Ordering::Relaxed)),
        (
            "trailwatch_objects_quarantined_total",
            "Log objects quarantined for bad content.",
            c.objects_quarantined.load(Ordering::Relaxed),
        ),
        (
            "trailwatch_objects_already_ingested_total",
            "Objects named again that the ledger already had.",
            c.objects_known.load(Ordering::Relaxed),
        ),
        (
            "trailwatch_other_keys_total",
            "Announced keys that are not CloudTrail log files (skipped).",
            c.other_keys.load(Ordering::Relaxed),
        ),
        ("trailwatch_digests_seen_total", "Digest files announced.", c.digests.load(Ordering::Relaxed)),
        ("trailwatch_events_new_total", "Events stored.", c.events_new.load(Ordering::Relaxed)),
        (
            "trailwatch_events_duplicate_total",
            "Events delivered again (same eventID), not stored twice.",
            c.events_duplicate.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    let _ = writeln!(out, "# HELP trailwatch_messages_in_flight Messages being handled now.\n# TYPE trailwatch_messages_in_flight gauge\ntrailwatch_messages_in_flight {}", consumer.in_flight());
    let rows = consumer.board().snapshot();
    let _ = writeln!(out, "# HELP trailwatch_integration_up 1 when the account/region's integration is active (or wired), 0 otherwise.\n# TYPE trailwatch_integration_up gauge");
    for r in &rows {
        let v = aws::status::verdict_among(&rows, r, now_ms);
        let up = matches!(v, aws::Verdict::Active | aws::Verdict::Wired) as u8;
        let _ = writeln!(
            out,
            "trailwatch_integration_up{{account=\"{}\",region=\"{}\",state=\"{}\"}} {up}",
            label(&r.account),
            label(&r.region),
            v.label()
        );
    }
    let timestamps: [(&str, &str, Timestamp); 2] = [
        (
            "trailwatch_integration_newest_event_timestamp_seconds",
            "eventTime of the newest event stored per account and region.",
            |r| r.newest_event,
        ),
        (
            "trailwatch_integration_last_notification_timestamp_seconds",
            "When the last notification arrived per account and region.",
            |r| r.last_notification,
        ),
    ];
    for (name, help, value) in timestamps {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for r in &rows {
            if let Some(ms) = value(r) {
                let _ = writeln!(
                    out,
                    "{name}{{account=\"{}\",region=\"{}\"}} {}",
                    label(&r.account),
                    label(&r.region),
                    ms / 1000
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
