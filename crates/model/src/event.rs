//! [`ParsedEvent`]: one record's original text plus the columns every store indexes.

use crate::identity::Actor;
use crate::record::{Flag, Record};
use crate::timefmt::{parse_rfc3339_millis, EpochMillis};

/// Why one record cannot be stored.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not a CloudTrail record: {0}")]
    Invalid(serde_json::Error),
    #[error("record has no eventID")]
    MissingEventId,
    #[error("record {event_id} has no eventTime")]
    MissingEventTime { event_id: String },
    #[error("record {event_id} has an eventTime that is not RFC 3339: {value:?}")]
    BadEventTime { event_id: String, value: String },
}

impl EventError {
    pub fn reason_code(&self) -> &'static str {
        match self {
            EventError::Invalid(_) => "record_invalid",
            EventError::MissingEventId => "record_missing_event_id",
            EventError::MissingEventTime { .. } => "record_missing_event_time",
            EventError::BadEventTime { .. } => "record_bad_event_time",
        }
    }
}

/// A record ready to be stored: its verbatim JSON and the extracted, indexed columns.
///
/// Columns are taken from the record's top level as CloudTrail wrote them (an Insights record
/// has no top-level `eventSource`/`eventName`, so those are `None`); the identity columns come
/// from [`Actor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEvent {
    pub event_id: String,
    pub event_time: EpochMillis,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub aws_region: Option<String>,
    pub source_ip: Option<String>,
    pub recipient_account_id: Option<String>,
    pub error_code: Option<String>,
    pub event_type: Option<String>,
    pub event_category: Option<String>,
    pub read_only: Option<bool>,
    pub management_event: Option<bool>,
    pub user_agent: Option<String>,
    pub actor: Actor,
    /// The resources it names (ARNs, ids, names: [`crate::resources::record_identifiers`]).
    pub resources: Vec<String>,
    /// The record exactly as it appeared in the log file.
    pub raw: String,
}

impl ParsedEvent {
    /// Parses and checks one record's JSON text (`eventID` and a valid `eventTime` are
    /// required; everything else is optional).
    pub fn from_json(text: &str) -> Result<ParsedEvent, EventError> {
        let record = Record::from_json(text).map_err(EventError::Invalid)?;
        Self::from_record(&record, text)
    }

    /// Like [`from_json`](Self::from_json) but leaves `raw` empty, for callers that keep the
    /// text elsewhere (the ingest pipeline frames it straight into a compressed block).
    pub fn columns_from_json(text: &str) -> Result<ParsedEvent, EventError> {
        let record = Record::from_json(text).map_err(EventError::Invalid)?;
        Self::from_record(&record, "")
    }

    pub fn from_record(record: &Record<'_>, text: &str) -> Result<ParsedEvent, EventError> {
        let event_id =
            record.event_id.as_deref().filter(|s| !s.is_empty()).ok_or(EventError::MissingEventId)?.to_string();
        let event_time = match record.event_time.as_deref() {
            None => return Err(EventError::MissingEventTime { event_id }),
            Some(t) => match parse_rfc3339_millis(t) {
                Some(ms) => ms,
                None => return Err(EventError::BadEventTime { event_id, value: t.to_string() }),
            },
        };
        let owned = |v: &Option<crate::record::Str<'_>>| v.as_deref().map(str::to_string);
        Ok(ParsedEvent {
            event_time,
            event_source: owned(&record.event_source),
            event_name: owned(&record.event_name),
            aws_region: owned(&record.aws_region),
            source_ip: owned(&record.source_ip_address),
            recipient_account_id: owned(&record.recipient_account_id),
            error_code: owned(&record.error_code).filter(|s| !s.is_empty()),
            event_type: owned(&record.event_type),
            event_category: owned(&record.event_category),
            read_only: record.read_only.and_then(Flag::as_bool),
            management_event: record.management_event.and_then(Flag::as_bool),
            user_agent: owned(&record.user_agent),
            actor: Actor::from_record(record),
            resources: crate::resources::record_identifiers(record),
            raw: text.to_string(),
            event_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_fields() {
        assert_eq!(ParsedEvent::from_json("{}").unwrap_err().reason_code(), "record_missing_event_id");
        assert_eq!(ParsedEvent::from_json(r#"{"eventID":""}"#).unwrap_err().reason_code(), "record_missing_event_id");
        assert_eq!(
            ParsedEvent::from_json(r#"{"eventID":"a"}"#).unwrap_err().reason_code(),
            "record_missing_event_time"
        );
        assert_eq!(
            ParsedEvent::from_json(r#"{"eventID":"a","eventTime":"2019-01-00T00:00:00Z"}"#).unwrap_err().reason_code(),
            "record_bad_event_time"
        );
        assert_eq!(ParsedEvent::from_json(r#"{"eventID":5}"#).unwrap_err().reason_code(), "record_invalid");
    }

    #[test]
    fn columns_and_raw() {
        let text = r#"{"eventID":"e1","eventTime":"2024-01-15T10:45:23Z","eventSource":"ec2.amazonaws.com",
            "eventName":"StopInstances","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.7",
            "recipientAccountId":"111122223333","errorCode":"Client.UnauthorizedOperation","readOnly":false,
            "userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice"},"x-new":1}"#;
        let e = ParsedEvent::from_json(text).unwrap();
        assert_eq!(e.event_id, "e1");
        assert_eq!(e.event_time, 1_705_315_523_000);
        assert_eq!(e.event_name.as_deref(), Some("StopInstances"));
        assert_eq!(e.error_code.as_deref(), Some("Client.UnauthorizedOperation"));
        assert_eq!(e.read_only, Some(false));
        assert_eq!(e.actor.principal, "arn:aws:iam::111122223333:user/alice");
        assert_eq!(e.actor.name.as_deref(), Some("alice"));
        assert_eq!(e.raw, text);
    }
}
