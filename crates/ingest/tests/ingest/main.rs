//! The pipeline's guarantees, with a real SQLite store and injected read failures.

use std::io::{self, Read};

use ingest::{ObjectJob, Outcome, Pipeline, PipelineConfig};
use store::{ObjectMeta, SqliteStore, Store};
use test_support::{gzip, log_document, record};

/// Yields `good` bytes of `data`, then fails like a dropped connection.
struct FailAfter {
    data: Vec<u8>,
    at: usize,
    good: usize,
}

impl Read for FailAfter {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.at >= self.good {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer"));
        }
        let n = out.len().min(self.good - self.at).min(64);
        out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn file(prefix: &str, n: usize) -> Vec<u8> {
    let records: Vec<String> = (0..n).map(|i| record(&format!("{prefix}-{i}"), "2024-01-15T11:50:00Z", "A")).collect();
    gzip(log_document(&records).as_bytes())
}

fn job(key: &str, open: ingest::pipeline::Opener) -> ObjectJob<String> {
    ObjectJob { meta: ObjectMeta::local(key, 1), open, receipt: key.to_string() }
}

#[test]
fn read_failures_record_nothing_and_settle_as_failed() {
    let store = SqliteStore::open_in_memory().unwrap();
    let pipeline: Pipeline<String> = Pipeline::start(store.writer().unwrap(), PipelineConfig::default());
    let good = file("good", 50);
    let midway = file("mid", 3000);
    let cut = midway.len() / 2;
    pipeline.submit(job("good", Box::new(move || Ok(Box::new(io::Cursor::new(good)) as _)))).unwrap();
    pipeline.submit(job("gone", Box::new(|| Err(io::Error::new(io::ErrorKind::NotFound, "no such object"))))).unwrap();
    pipeline
        .submit(job("midway", Box::new(move || Ok(Box::new(FailAfter { data: midway, at: 0, good: cut }) as _))))
        .unwrap();
    let settled = pipeline.finish().unwrap();
    assert_eq!(settled.len(), 3);
    for s in settled {
        match s.receipt.as_str() {
            "good" => assert!(matches!(s.outcome, Outcome::Committed { .. }), "{:?}", s.outcome),
            "gone" | "midway" => match &s.outcome {
                Outcome::Failed { detail } => assert!(detail.contains("read error"), "{detail}"),
                other => panic!("{}: {other:?}", s.receipt),
            },
            other => panic!("unexpected receipt {other}"),
        }
    }
    // Nothing of the failed objects is stored or recorded: they will be tried again.
    assert_eq!(store.stats().unwrap().events, 50);
    assert!(store.ledger_entry("local", "gone").unwrap().is_none());
    assert!(store.ledger_entry("local", "midway").unwrap().is_none());
    assert!(store.quarantined().unwrap().is_empty());
}
