//! Every notification sample in `../shared/data/notifications/` against [`model::Message`].

use model::{Message, Notification, ObjectsOrigin};
use test_support::shared_data;

fn sample(name: &str) -> String {
    let path = shared_data("notifications").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys(n: &Notification) -> Vec<String> {
    match n {
        Notification::Objects { objects, .. } => objects.iter().map(|o| format!("{}/{}", o.bucket, o.key)).collect(),
        other => panic!("expected objects, got {other:?}"),
    }
}

const US: &str = "example-org-cloudtrail-logs/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/05/111122223333_CloudTrail_us-east-1_20240305T1415Z_Qw3rTy8uIo9pAs2D.json.gz";
const EU: &str = "example-org-cloudtrail-logs/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/05/111122223333_CloudTrail_eu-west-1_20240305T1415Z_Zx7cVb4nMl1kJh6G.json.gz";

#[test]
fn cloudtrail_notification_in_every_wrapping() {
    for file in [
        "a-cloudtrail-sns-message-body.json",
        "b-cloudtrail-sns-envelope-in-sqs.json",
        "c-cloudtrail-raw-message-delivery-sqs-body.json",
    ] {
        let m = Message::parse(&sample(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(keys(&m.notification), vec![US, EU], "{file}");
        assert!(matches!(m.notification, Notification::Objects { origin: ObjectsOrigin::CloudTrail, .. }));
        assert_eq!(m.sns.is_some(), file.starts_with('b'), "{file}");
    }
    // As ReceiveMessage returns it: the SQS Body string holds the envelope.
    let response: serde_json::Value =
        serde_json::from_str(&sample("b2-sqs-receivemessage-wrapping-sns-envelope.json")).unwrap();
    let body = response["Messages"][0]["Body"].as_str().unwrap();
    let m = Message::parse(body).unwrap();
    assert_eq!(keys(&m.notification), vec![US, EU]);
    assert_eq!(m.sns.unwrap().topic_arn, "arn:aws:sns:us-east-1:111122223333:example-cloudtrail-delivery");
}

#[test]
fn s3_event_direct_and_via_sns() {
    let direct = Message::parse(&sample("d1-s3-event-notification-direct-to-sqs.json")).unwrap();
    let via_sns = Message::parse(&sample("d2-s3-event-notification-via-sns-envelope.json")).unwrap();
    assert_eq!(direct.notification, via_sns.notification);
    assert_eq!(
        keys(&direct.notification),
        vec![US.to_string(), "example-org-cloudtrail-logs/incoming logs/a+b=c d.json.gz".into()]
    );
    match direct.notification {
        Notification::Objects { origin: ObjectsOrigin::S3Event, objects, skipped: 0 } => {
            assert_eq!(objects.iter().map(|o| o.size).collect::<Vec<_>>(), vec![Some(4821), Some(120)]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn s3_test_event_is_recognised() {
    let m = Message::parse(&sample("e-s3-test-event.json")).unwrap();
    assert_eq!(m.notification, Notification::S3Test { bucket: Some("example-org-cloudtrail-logs".into()) });
}

#[test]
fn eventbridge_event_carries_the_record() {
    let m = Message::parse(&sample("f-eventbridge-aws-api-call-via-cloudtrail.json")).unwrap();
    let Notification::EventBridge { record, account, region, .. } = m.notification else { panic!("not EventBridge") };
    assert_eq!((account.as_deref(), region.as_deref()), (Some("111122223333"), Some("us-east-1")));
    let event = model::ParsedEvent::from_json(&record).unwrap();
    assert_eq!(event.event_id, "66666666-7777-4888-9999-aaaaaaaaaaaa");
    assert_eq!(event.event_name.as_deref(), Some("StopLogging"));
}

#[test]
fn subscription_confirmation_is_a_handshake() {
    let m = Message::parse(&sample("g-sns-subscription-confirmation.json")).unwrap();
    assert!(matches!(m.notification, Notification::Subscription { confirm: true, subscribe_url: Some(_), .. }));
}

mod properties {
    use model::{Message, Notification};
    use proptest::prelude::*;
    use serde_json::json;

    /// What S3 does to a key in an event notification: form-URL encoding (space → `+`,
    /// everything but unreserved characters percent-encoded).
    fn s3_event_encode(key: &str) -> String {
        let mut out = String::new();
        for b in key.bytes() {
            match b {
                b' ' => out.push('+'),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    fn keys_of(n: &Notification) -> Vec<String> {
        match n {
            Notification::Objects { objects, .. } => objects.iter().map(|o| o.key.clone()).collect(),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn no_body_panics_the_parser(body in "\\PC{0,200}") {
            let _ = Message::parse(&body);
        }

        #[test]
        fn no_envelope_panics_the_parser(message in "\\PC{0,120}", kind in "Notification|SubscriptionConfirmation|Weird") {
            let body = json!({"Type": kind, "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": message}).to_string();
            let _ = Message::parse(&body);
        }

        #[test]
        fn every_wrapping_of_cloudtrails_notification_gives_the_same_keys(
            keys in prop::collection::vec("[ -~]{1,60}", 1..5), bucket in "[a-z0-9.-]{3,20}"
        ) {
            let raw = json!({"s3Bucket": bucket, "s3ObjectKey": keys}).to_string();
            let enveloped = json!({"Type": "Notification", "MessageId": "m", "TopicArn": "t", "Message": raw}).to_string();
            prop_assert_eq!(keys_of(&Message::parse(&raw).unwrap().notification), keys.clone());
            prop_assert_eq!(keys_of(&Message::parse(&enveloped).unwrap().notification), keys);
        }

        #[test]
        fn s3_event_keys_decode_to_what_was_uploaded(key in "\\PC{1,60}") {
            let body = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": s3_event_encode(&key), "size": 1}}}]}).to_string();
            prop_assert_eq!(keys_of(&Message::parse(&body).unwrap().notification), vec![key]);
        }
    }
}
