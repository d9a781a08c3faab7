//! The Sigma engine against the specification's semantics (a rule per feature, with events
//! that must and must not match) and against the public SigmaHQ CloudTrail pack.

mod builtin;
mod features;
mod sigmahq;
mod sigmahq_cases;
