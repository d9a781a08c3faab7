//! Getting CloudTrail log files into the store.
//!
//! * [`pipeline`] — parse workers and the single ordered writer; outcomes (and the sources'
//!   receipts) are released only after the commit that made them durable.
//! * [`sources`] — where objects come from: [`sources::local`] reads a directory.
//!
//! ```no_run
//! let store = store::Store::from(store::SqliteStore::open("trailwatch.db").unwrap());
//! let report = ingest::sources::local::ingest_dir(
//!     std::path::Path::new("bucket-copy"), &store, ingest::PipelineConfig::default(), None).unwrap();
//! println!("{} files, {} new events", report.files, report.counts.new);
//! ```

pub mod filter;
pub mod inline_detection;
pub mod pipeline;
pub mod sources;

pub use inline_detection::{Detection, RecordedAlerts};
pub use pipeline::{
    DiscardWriter, ObjectJob, Outcome, Pipeline, PipelineConfig, PipelineError, PipelineSpec, Settled, Submitter,
};
