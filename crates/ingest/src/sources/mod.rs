//! Where objects come from. Each source turns its input into [`ObjectJob`](crate::pipeline::ObjectJob)s
//! and acknowledges only from the pipeline's settled outcomes.

pub mod import;
pub mod local;
