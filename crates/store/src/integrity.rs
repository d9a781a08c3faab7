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
