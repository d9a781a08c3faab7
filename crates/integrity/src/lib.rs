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

pub use store::FindingKind;

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
