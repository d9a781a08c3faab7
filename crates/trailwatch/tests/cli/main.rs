//! End-to-end tests of the `trailwatch` binary: real files, a real SQLite store, the CLI
//! contracts of `design.md`.

mod bad_input;
mod bench;
mod ingest;
mod kill;
mod layers;
mod memory;
mod ops;
mod rules;
mod search;
mod util;
mod validate;
