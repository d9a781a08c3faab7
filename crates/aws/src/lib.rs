//! The AWS side of ingestion.
//!
//! * [`account`] — monitored accounts; trailwatch's own credentials from the standard chain,
//!   each account's through its assumed role with an external ID.
//! * [`consumer`] — the SQS consumer: long polling, every notification shape, objects fetched
//!   and handed to the ingest pipeline, messages deleted only once everything they name is
//!   committed, visibility extended while work is in flight, graceful shutdown.
//! * [`backfill`] — lists a trail bucket by account/region/day and ingests what the ledger
//!   lacks.
//! * [`doctor`] — the end-to-end checklist of one account, with a fix for each failed line.
//! * [`fetch`] — S3 GET with missing / denied / transient told apart.
//! * [`integrity`] — digest validation against S3: trail lookup, ListPublicKeys, the
//!   listing of a window, reads for the validator.
//! * [`setup`] — the IAM trust/permission policies and CloudFormation template for an account.
//! * [`sns`] — SNS HTTPS push: signature verification, subscription confirmation.
//! * [`status`] — integration status per account and region, and its verdict.

pub mod account;
pub mod backfill;
pub mod consumer;
pub mod doctor;
pub mod fetch;
pub mod history;
pub mod inflight;
pub mod integrity;
pub mod permissions;
pub mod push;
pub mod setup;
pub mod sns;
pub mod status;

pub use account::{AccountClients, AccountError, AccountSpec, AwsSettings};
pub use status::StatusBoard;
