//! CloudTrail log file integrity validation.
//!
//! [`validate`] checks a trail's digests and log files as read through an [`ObjectReader`]
//! (a local copy of the bucket here, S3 in the `aws` crate) and reports [`Finding`]s of the
//! kinds the CLI contract names. [`digest`] holds the format and the string to sign, [`keys`]
//! CloudTrail's public keys, [`record`] what a run leaves in the store (findings once each,
//! alerts, silent regions).

pub mod digest;
pub mod keys;
pub mod record;
pub mod source;
pub mod validate;

use serde::Serialize;

pub use digest::{Digest, DigestError, SignatureMetadata};
pub use keys::PublicKeys;
pub use source::{FetchError, Inventory, LocalDir, ObjectReader};
pub use validate::{validate, validate_local, ChainSummary, Options, Report, ValidateError};

/// What is wrong (or, for warnings, worth a look). The names are the CLI contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The S3 key concerned (for a deleted newest digest: where it was expected).
    pub key: String,
    pub detail: String,
}

impl Finding {
    pub fn new(kind: FindingKind, key: &str, detail: String) -> Finding {
        Finding { kind, key: key.to_string(), detail }
    }
}
