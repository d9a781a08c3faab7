//! Integrity state (migration 4): what continuous validation has verified and found.
//!
//! * [`IntegrityChain`] — per account, region and trail: the newest digest verified and the
//!   newest log delivery seen. It decides where the next validation starts and whether a
//!   region has gone silent.
//! * [`IntegrityFinding`] — a validation finding, once per (account, kind, key): a finding seen
//!   again on a later sweep updates `last_seen`, it is not new.
//! * [`Silence`] — an account/region whose logs or digests stopped arriving for longer than
//!   the grace, with the alert raised for it; removed when delivery resumes.

use model::EpochMillis;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityChain {
    /// The configured account's name.
    pub account: String,
    pub account_id: String,
    pub region: String,
    pub trail: String,
    pub newest_key: Option<String>,
    pub newest_end: Option<EpochMillis>,
    pub newest_log: Option<EpochMillis>,
    pub verified_at: EpochMillis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityFinding {
    pub account: String,
    /// A finding kind of the validate contract (`LOG_MODIFIED`, …).
    pub kind: String,
    pub key: String,
    pub detail: String,
    pub first_seen: EpochMillis,
    pub last_seen: EpochMillis,
}

/// What stopped arriving.
pub const SILENT_LOGS: &str = "logs";
pub const SILENT_DIGESTS: &str = "digests";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Silence {
    pub account: String,
    pub account_id: String,
    pub region: String,
    /// [`SILENT_LOGS`] or [`SILENT_DIGESTS`].
    pub what: String,
    /// The last delivery before the silence.
    pub since: EpochMillis,
    pub alert_id: Option<i64>,
}

/// What integrity validation found wrong (or, for warnings, worth a look); stored in
/// [`IntegrityFinding::kind`] by name. The names are the CLI contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingKind {
    /// A listed log file's content no longer has the listed hash.
    LogModified,
    /// A listed log file is gone.
    LogMissing,
    /// A digest's signature does not verify (or it has none).
    DigestInvalidSignature,
    /// A digest the chain (or the trail's hourly cadence) says exists is gone.
    DigestMissing,
    /// A digest that is not gzip'd JSON of the digest format.
    DigestUnreadable,
    /// The digest names a public key that is unknown or was not valid at the time.
    UnknownKey,
    /// The digest's own `digestS3Bucket`/`digestS3Object` is not where it lies.
    DigestMoved,
    /// A link of the chain does not hold (previous signature or hash), or a digest is in no chain.
    ChainBroken,
    /// Warning: the chain starts again (logging or validation was stopped and started).
    ChainRestart,
    /// A log file in the bucket that no digest lists.
    UnlistedLog,
    /// Warning: an hour (or more) without a digest in an otherwise intact chain.
    DeliveryGap,
}

impl FindingKind {
    pub const ALL: [FindingKind; 11] = [
        FindingKind::LogModified,
        FindingKind::LogMissing,
        FindingKind::DigestInvalidSignature,
        FindingKind::DigestMissing,
        FindingKind::DigestUnreadable,
        FindingKind::UnknownKey,
        FindingKind::DigestMoved,
        FindingKind::ChainBroken,
        FindingKind::ChainRestart,
        FindingKind::UnlistedLog,
        FindingKind::DeliveryGap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::LogModified => "LOG_MODIFIED",
            FindingKind::LogMissing => "LOG_MISSING",
            FindingKind::DigestInvalidSignature => "DIGEST_INVALID_SIGNATURE",
            FindingKind::DigestMissing => "DIGEST_MISSING",
            FindingKind::DigestUnreadable => "DIGEST_UNREADABLE",
            FindingKind::UnknownKey => "UNKNOWN_KEY",
            FindingKind::DigestMoved => "DIGEST_MOVED",
            FindingKind::ChainBroken => "CHAIN_BROKEN",
            FindingKind::ChainRestart => "CHAIN_RESTART",
            FindingKind::UnlistedLog => "UNLISTED_LOG",
            FindingKind::DeliveryGap => "DELIVERY_GAP",
        }
    }

    pub fn parse(s: &str) -> Option<FindingKind> {
        FindingKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Warnings are for review; they do not make a trail invalid.
    pub fn is_warning(self) -> bool {
        matches!(self, FindingKind::ChainRestart | FindingKind::DeliveryGap)
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
