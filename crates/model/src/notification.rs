//! The messages that announce CloudTrail objects, in every shape a user may have wired.
//!
//! An SQS message body (or an SNS HTTPS push) is one of:
//!
//! * CloudTrail's own notification `{"s3Bucket":"b","s3ObjectKey":["k1",…]}` — raw (raw
//!   message delivery on the subscription) or inside an SNS envelope, where the envelope's
//!   `Message` is that JSON as a *string*;
//! * an S3 event notification `{"Records":[{"eventSource":"aws:s3","s3":{…}}]}`, direct or
//!   inside an SNS envelope; keys are form-URL-encoded (`+` is a space);
//! * S3's `s3:TestEvent`, sent when notifications are configured;
//! * an EventBridge event "AWS API Call via CloudTrail" (and its siblings), whose `detail` is
//!   the CloudTrail record itself;
//! * the plain text `CloudTrail validation message.` that CloudTrail publishes to a topic
//!   when it is configured on a trail (raw or in an envelope): proof that the wiring works;
//! * an SNS `SubscriptionConfirmation` / `UnsubscribeConfirmation` (only over HTTPS push).
//!
//! [`Notification::parse`] accepts exactly these and says precisely why anything else is
//! not one of them. It does no I/O and does not check SNS signatures (see the push source).

use serde_json::Value;

/// The text CloudTrail publishes to an SNS topic when the topic is set on a trail.
pub const VALIDATION_MESSAGE: &str = "CloudTrail validation message.";

/// An S3 object a notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The decoded key (S3 event keys arrive form-URL-encoded).
    pub key: String,
    /// Size when the notification tells it (S3 events do, CloudTrail's own do not).
    pub size: Option<u64>,
}

/// Where a list of objects came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectsOrigin {
    /// CloudTrail's own `{"s3Bucket","s3ObjectKey"}` notification.
    CloudTrail,
    /// An S3 `ObjectCreated:*` event notification.
    S3Event,
}

/// The SNS envelope a message arrived in, if it had one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsEnvelope {
    pub message_type: String,
    pub message_id: String,
    pub topic_arn: String,
    pub timestamp: Option<String>,
}

/// What a message says.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// Objects to fetch. `skipped` counts S3 event records that announce something other
    /// than a new object (`ObjectRemoved:*`, …): acknowledged, nothing to fetch.
    Objects { origin: ObjectsOrigin, objects: Vec<ObjectRef>, skipped: usize },
    /// `s3:TestEvent`: acknowledged and ignored.
    S3Test { bucket: Option<String> },
    /// One CloudTrail record delivered by EventBridge; `record` is the `detail` JSON text.
    EventBridge { id: String, account: Option<String>, region: Option<String>, record: String },
    /// CloudTrail's "CloudTrail validation message.": the topic is wired to this queue.
    Validation,
    /// An SNS subscription handshake (HTTPS push only); `subscribe_url` is where to confirm.
    Subscription { confirm: bool, topic_arn: String, subscribe_url: Option<String> },
}

/// A parsed message: its SNS envelope (if any) and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub sns: Option<SnsEnvelope>,
    pub notification: Notification,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("message body is not JSON and not CloudTrail's validation message: {0}")]
    NotJson(String),
    #[error("the SNS envelope's Message is not JSON and not CloudTrail's validation message: {0}")]
    EnvelopeMessageNotJson(String),
    #[error("SNS envelope of type {0:?} is not a notification this queue should receive")]
    UnexpectedSnsType(String),
    #[error("{shape}: missing or invalid field {field}")]
    MissingField { shape: &'static str, field: &'static str },
    #[error("S3 event record {index}: key {key:?} is not valid URL encoding (not UTF-8 once decoded)")]
    BadKeyEncoding { index: usize, key: String },
    #[error("not a known notification shape (top-level fields: {0})")]
    UnknownShape(String),
}

impl NotificationError {
    /// A stable short code for ledgers, metrics and quarantine listings.
    pub fn reason_code(&self) -> &'static str {
        match self {
            NotificationError::NotJson(_) => "not_json",
            NotificationError::EnvelopeMessageNotJson(_) => "sns_message_not_json",
            NotificationError::UnexpectedSnsType(_) => "unexpected_sns_type",
            NotificationError::MissingField { .. } => "missing_field",
            NotificationError::BadKeyEncoding { .. } => "bad_key_encoding",
            NotificationError::UnknownShape(_) => "unknown_shape",
        }
    }
}

impl Message {
    /// Parses a message body (an SQS `Body`, an SNS push request body).
    pub fn parse(body: &str) -> Result<Message, NotificationError> {
        let trimmed = body.trim();
        if is_validation_message(trimmed) {
            return Ok(Message { sns: None, notification: Notification::Validation });
        }
        let value: Value = serde_json::from_str(trimmed).map_err(|e| NotificationError::NotJson(e.to_string()))?;
        let Some(envelope) = sns_envelope(&value) else {
            return Ok(Message { sns: None, notification: parse_inner(&value)? });
        };
        let notification = match envelope.message_type.as_str() {
            "Notification" => {
                let text = value
                    .get("Message")
                    .and_then(Value::as_str)
                    .ok_or(NotificationError::MissingField { shape: "SNS envelope", field: "Message" })?;
                if is_validation_message(text.trim()) {
                    Notification::Validation
                } else {
                    let inner: Value = serde_json::from_str(text)
                        .map_err(|e| NotificationError::EnvelopeMessageNotJson(e.to_string()))?;
                    parse_inner(&inner)?
                }
            }
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => Notification::Subscription {
                confirm: envelope.message_type == "SubscriptionConfirmation",
                topic_arn: envelope.topic_arn.clone(),
                subscribe_url: value.get("SubscribeURL").and_then(Value::as_str).map(str::to_owned),
            },
            other => return Err(NotificationError::UnexpectedSnsType(other.to_owned())),
        };
        Ok(Message { sns: Some(envelope), notification })
    }
}

fn is_validation_message(text: &str) -> bool {
    text == VALIDATION_MESSAGE
}

/// The SNS envelope fields, when `value` is one (it has `Type` and `TopicArn`).
fn sns_envelope(value: &Value) -> Option<SnsEnvelope> {
    let message_type = value.get("Type")?.as_str()?;
    let topic_arn = value.get("TopicArn")?.as_str()?;
    Some(SnsEnvelope {
        message_type: message_type.to_owned(),
        message_id: value.get("MessageId").and_then(Value::as_str).unwrap_or_default().to_owned(),
        topic_arn: topic_arn.to_owned(),
        timestamp: value.get("Timestamp").and_then(Value::as_str).map(str::to_owned),
    })
}

/// What is inside the envelope (or the whole body when there is none).
fn parse_inner(value: &Value) -> Result<Notification, NotificationError> {
    let obj = value.as_object().ok_or_else(|| NotificationError::UnknownShape(json_kind(value).into()))?;
    if obj.contains_key("s3Bucket") || obj.contains_key("s3ObjectKey") {
        return cloudtrail_notification(value);
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::S3Test { bucket: obj.get("Bucket").and_then(Value::as_str).map(str::to_owned) });
    }
    if let Some(records) = obj.get("Records") {
        return s3_event(records);
    }
    if obj.contains_key("detail-type") && obj.contains_key("detail") {
        return eventbridge(value);
    }
    let mut fields: Vec<&str> = obj.keys().map(String::as_str).take(8).collect();
    fields.sort_unstable();
    Err(NotificationError::UnknownShape(if fields.is_empty() { "none".into() } else { fields.join(", ") }))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn cloudtrail_notification(value: &Value) -> Result<Notification, NotificationError> {
    const SHAPE: &str = "CloudTrail notification";
    let bucket = value
        .get("s3Bucket")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
        .ok_or(NotificationError::MissingField { shape: SHAPE, field: "s3Bucket" })?;
    let missing_keys = NotificationError::MissingField { shape: SHAPE, field: "s3ObjectKey" };
    // A list of keys (what CloudTrail sends); a single string is accepted as a list of one.
    let keys: Vec<&str> = match value.get("s3ObjectKey") {
        Some(Value::Array(keys)) => keys.iter().map(|k| k.as_str().filter(|k| !k.is_empty())).collect::<Option<_>>(),
        Some(Value::String(k)) if !k.is_empty() => Some(vec![k.as_str()]),
        _ => None,
    }
    .filter(|keys: &Vec<&str>| !keys.is_empty())
    .ok_or(missing_keys)?;
    let objects = keys.into_iter().map(|key| ObjectRef { bucket: bucket.to_owned(), key: key.to_owned(), size: None });
    Ok(Notification::Objects { origin: ObjectsOrigin::CloudTrail, objects: objects.collect(), skipped: 0 })
}

fn s3_event(records: &Value) -> Result<Notification, NotificationError> {
    const SHAPE: &str = "S3 event notification";
    let records = records.as_array().ok_or(NotificationError::MissingField { shape: SHAPE, field: "Records" })?;
    let mut objects = Vec::new();
    let mut skipped = 0;
    for (index, record) in records.iter().enumerate() {
        if record.get("eventSource").and_then(Value::as_str) != Some("aws:s3") {
            return Err(NotificationError::MissingField { shape: SHAPE, field: "Records[].eventSource = aws:s3" });
        }
        let event_name = record.get("eventName").and_then(Value::as_str).unwrap_or_default();
        if !event_name.starts_with("ObjectCreated:") {
            skipped += 1;
            continue;
        }
        let s3 = record.get("s3");
        let bucket = s3
            .and_then(|s| s.pointer("/bucket/name"))
            .and_then(Value::as_str)
            .ok_or(NotificationError::MissingField { shape: SHAPE, field: "Records[].s3.bucket.name" })?;
        let raw_key = s3
            .and_then(|s| s.pointer("/object/key"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
            .ok_or(NotificationError::MissingField { shape: SHAPE, field: "Records[].s3.object.key" })?;
        let key = decode_s3_event_key(raw_key)
            .ok_or_else(|| NotificationError::BadKeyEncoding { index, key: raw_key.to_owned() })?;
        let size = s3.and_then(|s| s.pointer("/object/size")).and_then(Value::as_u64);
        objects.push(ObjectRef { bucket: bucket.to_owned(), key, size });
    }
    Ok(Notification::Objects { origin: ObjectsOrigin::S3Event, objects, skipped })
}

/// S3 event keys are encoded like an HTML form value: `+` is a space and everything else
/// percent-encoded. `None` when the decoded bytes are not UTF-8.
pub fn decode_s3_event_key(raw: &str) -> Option<String> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|k| k.into_owned())
}

fn eventbridge(value: &Value) -> Result<Notification, NotificationError> {
    const SHAPE: &str = "EventBridge event";
    let detail_type = value.get("detail-type").and_then(Value::as_str).unwrap_or_default();
    // "AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event
    // via CloudTrail", …: all carry a CloudTrail record in `detail`.
    if !detail_type.ends_with("via CloudTrail") {
        return Err(NotificationError::UnknownShape(format!("EventBridge event of detail-type {detail_type:?}")));
    }
    let detail = value.get("detail").filter(|d| d.is_object());
    let detail = detail.ok_or(NotificationError::MissingField { shape: SHAPE, field: "detail" })?;
    if detail.get("eventID").and_then(Value::as_str).is_none() {
        return Err(NotificationError::MissingField { shape: SHAPE, field: "detail.eventID" });
    }
    Ok(Notification::EventBridge {
        id: value.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
        account: value.get("account").and_then(Value::as_str).map(str::to_owned),
        region: value.get("region").and_then(Value::as_str).map(str::to_owned),
        record: detail.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(n: &Notification) -> Vec<(&str, &str, Option<u64>)> {
        match n {
            Notification::Objects { objects, .. } => {
                objects.iter().map(|o| (o.bucket.as_str(), o.key.as_str(), o.size)).collect()
            }
            other => panic!("not objects: {other:?}"),
        }
    }

    #[test]
    fn cloudtrail_raw_and_enveloped_agree() {
        let raw = r#"{"s3Bucket":"b","s3ObjectKey":["k1","k 2+x"]}"#;
        let enveloped = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": raw, "Timestamp": "2024-03-05T14:16:02.417Z"
        })
        .to_string();
        let a = Message::parse(raw).unwrap();
        let b = Message::parse(&enveloped).unwrap();
        assert_eq!(a.notification, b.notification);
        assert!(a.sns.is_none());
        assert_eq!(b.sns.unwrap().topic_arn, "arn:aws:sns:us-east-1:1:t");
        // CloudTrail's keys are not URL-encoded: `+` stays a plus.
        assert_eq!(objects(&a.notification), vec![("b", "k1", None), ("b", "k 2+x", None)]);
    }

    #[test]
    fn s3_event_keys_are_form_decoded_and_removals_skipped() {
        let body = serde_json::json!({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming+logs/a%2Bb%3Dc+d.json.gz", "size": 120}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
             "s3": {"bucket": {"name": "b"}, "object": {"key": "x"}}}
        ]})
        .to_string();
        let m = Message::parse(&body).unwrap();
        assert_eq!(objects(&m.notification), vec![("b", "incoming logs/a+b=c d.json.gz", Some(120))]);
        assert!(matches!(m.notification, Notification::Objects { skipped: 1, origin: ObjectsOrigin::S3Event, .. }));
    }

    #[test]
    fn validation_message_raw_and_enveloped() {
        assert_eq!(Message::parse("CloudTrail validation message.\n").unwrap().notification, Notification::Validation);
        let env = serde_json::json!({"Type": "Notification", "TopicArn": "t", "Message": VALIDATION_MESSAGE});
        assert_eq!(Message::parse(&env.to_string()).unwrap().notification, Notification::Validation);
    }

    #[test]
    fn bad_messages_say_why() {
        let cases: &[(&str, &str)] = &[
            ("hello", "not_json"),
            ("[1,2]", "unknown_shape"),
            (r#"{"foo":1}"#, "unknown_shape"),
            (r#"{"s3Bucket":"b"}"#, "missing_field"),
            (r#"{"s3Bucket":"b","s3ObjectKey":[]}"#, "missing_field"),
            (r#"{"s3Bucket":"b","s3ObjectKey":[1]}"#, "missing_field"),
            (r#"{"s3ObjectKey":["k"]}"#, "missing_field"),
            (r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{}}]}"#, "missing_field"),
            (r#"{"Records":[{"eventSource":"aws:ec2"}]}"#, "missing_field"),
            (r#"{"Records":"x"}"#, "missing_field"),
            (
                r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%FF"}}}]}"#,
                "bad_key_encoding",
            ),
            (r#"{"Type":"Notification","TopicArn":"t","Message":"nope"}"#, "sns_message_not_json"),
            (r#"{"Type":"Notification","TopicArn":"t"}"#, "missing_field"),
            (r#"{"Type":"Weird","TopicArn":"t","Message":"{}"}"#, "unexpected_sns_type"),
            (r#"{"detail-type":"EC2 Instance State-change Notification","detail":{}}"#, "unknown_shape"),
            (r#"{"detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"X"}}"#, "missing_field"),
        ];
        for (body, code) in cases {
            let err = Message::parse(body).expect_err(body);
            assert_eq!(err.reason_code(), *code, "{body}: {err}");
        }
    }

    #[test]
    fn subscription_confirmation_carries_its_url() {
        let body = r#"{"Type":"SubscriptionConfirmation","TopicArn":"arn:t","Message":"You have chosen…","SubscribeURL":"https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"}"#;
        match Message::parse(body).unwrap().notification {
            Notification::Subscription { confirm: true, topic_arn, subscribe_url: Some(url) } => {
                assert_eq!(topic_arn, "arn:t");
                assert!(url.starts_with("https://sns."));
            }
            other => panic!("{other:?}"),
        }
    }
}
