//! CloudTrail's data model: records, log files, object keys, and who acted.
//!
//! * [`Record`] — a record with every documented field, borrowing from its JSON text.
//! * [`Actor`] — the normalised principal behind a record (role + session, issuer, access
//!   key, MFA, console, and the federated human where the record tells it).
//! * [`ParsedEvent`] — a record's verbatim text plus the columns stores index.
//! * [`LogFileReader`] / [`EventReader`] — stream a `{"Records":[…]}` file (gzip'd or not)
//!   record by record, with a precise [`LogFileError`] for every way a file can be bad.
//! * [`TrailKey`] — the S3 key layouts of log, Insights and digest files.
//! * [`Message`] — the notification shapes that announce objects (SNS, S3 events,
//!   EventBridge, CloudTrail's validation message).
//!
//! ```
//! let file = br#"{"Records":[{"eventID":"e1","eventTime":"2024-01-15T10:45:23Z",
//!   "eventName":"StopLogging","userIdentity":{"type":"Root","accountId":"111122223333"}}]}"#;
//! let mut reader = model::EventReader::new(&file[..]).unwrap();
//! let event = reader.next_event().unwrap().unwrap();
//! assert_eq!(event.actor.principal, "arn:aws:iam::111122223333:root");
//! assert!(reader.next_event().unwrap().is_none());
//! ```
//!
//! This crate does no I/O of its own (readers are handed in) and has no async runtime, so
//! it can be fuzzed and benchmarked in isolation.

pub mod event;
pub mod identity;
pub mod key;
pub mod logfile;
pub mod notification;
pub mod record;
pub mod resources;
pub mod timefmt;

pub use event::{EventError, ParsedEvent};
pub use identity::{Actor, Federation, PrincipalKind};
pub use key::{KeyError, ObjectKind, TrailKey};
pub use logfile::{read_all_events, EventReader, FileSummary, LogFileError, LogFileReader, ReadLimits};
pub use notification::{Message, Notification, NotificationError, ObjectRef, ObjectsOrigin};
pub use record::Record;
pub use timefmt::EpochMillis;
