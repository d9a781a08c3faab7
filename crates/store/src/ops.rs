//! Operational state beside the events: what the AWS sources tell users about their wiring.
//!
//! * [`MessageProblem`] — an SQS message that could not be handled. It is never deleted; this
//!   row says why, and the queue's redrive policy moves it to the DLQ after maxReceiveCount.
//! * [`IngestFinding`] — an object a notification named that could not be read (gone, access
//!   denied): alert-worthy, because a log file that vanishes may have been deleted on purpose.
//! * [`DigestSeen`] — a digest file a notification announced, kept for integrity validation.
//! * [`IntegrationStatus`] — per account and region: last notification, last object, newest
//!   event, last error, and the verdict derived from them.

use model::EpochMillis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageProblem {
    /// The queue URL.
    pub queue: String,
    pub message_id: String,
    /// Stable reason code (`not_json`, `foreign_account`, `object_missing`, …).
    pub reason: String,
    pub detail: String,
    /// The message body (truncated to 64 KiB).
    pub body: String,
    /// How many times SQS says it has delivered the message.
    pub receive_count: u32,
    pub first_seen: EpochMillis,
    pub last_seen: EpochMillis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestFinding {
    /// `object_missing`, `object_access_denied`, …
    pub kind: String,
    pub account: String,
    pub bucket: String,
    pub key: String,
    pub detail: String,
    pub first_seen: EpochMillis,
    pub last_seen: EpochMillis,
    pub occurrences: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestSeen {
    pub account: String,
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
    pub seen_at: EpochMillis,
}

/// The last known state of one account's integration in one region. `region` is empty for
/// what concerns the account as a whole (its role, its queue).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationStatus {
    pub account: String,
    pub region: String,
    pub last_notification: Option<EpochMillis>,
    /// CloudTrail's "validation message" (or S3's test event): the wiring works.
    pub last_validation: Option<EpochMillis>,
    pub last_object: Option<EpochMillis>,
    pub newest_event: Option<EpochMillis>,
    pub notifications: u64,
    pub objects: u64,
    pub events: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<EpochMillis>,
    pub updated_at: EpochMillis,
}

impl MessageProblem {
    /// Longest message body kept for a problem message.
    pub const BODY_LIMIT: usize = 64 << 10;

    /// The body as stored: cut at [`Self::BODY_LIMIT`] bytes, at a char boundary.
    pub fn stored_body(&self) -> &str {
        let text = self.body.as_str();
        if text.len() <= Self::BODY_LIMIT {
            return text;
        }
        let mut end = Self::BODY_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        &text[..end]
    }
}
