//! Integration tests of the model crate: the published records in the shared data folder,
//! and properties of the streaming log-file reader.

mod notifications;
mod proptests;
mod shared_data;
