//! Ingest benchmarks. Each group puts trailwatch's stage next to its baselines on the same
//! files, so the report reads as ratios:
//!
//! * `parse`: inflating alone; inflating + `serde_json::Value` (what a naive loader does);
//!   trailwatch's streaming parse (records framed, typed, identity derived, hashes); and the
//!   same plus packing raw records for the store.
//! * `ingest`: the whole pipeline into a discarding writer vs. into a fresh SQLite file.
//!
//! `cargo bench -p trailwatch-ingest` (set `TRAILWATCH_BENCH_EVENTS` for a larger tree).

use std::io::Read;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ingest::sources::local::{discover, ingest_files};
use ingest::{DiscardWriter, PipelineConfig};
use store::EventStore;
use store::{EventBatch, SqliteStore};

struct Tree {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    files: Vec<Vec<u8>>,
    events: u64,
}

fn tree() -> Tree {
    let events = std::env::var("TRAILWATCH_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let manifest = sim::simulate(&sim::SimConfig { events, ..Default::default() }, &root).unwrap();
    let files = manifest.files.iter().map(|f| std::fs::read(root.join(&f.key)).unwrap()).collect();
    Tree { _dir: dir, root, files, events: manifest.records }
}

fn parse(c: &mut Criterion) {
    let t = tree();
    let mut group = c.benchmark_group("parse");
    group.sample_size(10).throughput(Throughput::Elements(t.events));
    group.bench_function("gunzip only", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            for f in &t.files {
                out.clear();
                flate2::read::GzDecoder::new(f.as_slice()).read_to_end(&mut out).unwrap();
            }
        })
    });
    group.bench_function("gunzip + serde_json Value", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            for f in &t.files {
                out.clear();
                flate2::read::GzDecoder::new(f.as_slice()).read_to_end(&mut out).unwrap();
                let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                std::hint::black_box(v);
            }
        })
    });
    group.bench_function("trailwatch parse", |b| {
        b.iter(|| {
            for f in &t.files {
                std::hint::black_box(model::read_all_events(f.as_slice()).unwrap());
            }
        })
    });
    group.bench_function("trailwatch parse + pack", |b| {
        b.iter(|| {
            for f in &t.files {
                let (events, _) = model::read_all_events(f.as_slice()).unwrap();
                let mut batch = EventBatch::new(events);
                batch.pack();
                std::hint::black_box(batch);
            }
        })
    });
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let t = tree();
    let files = discover(&t.root).unwrap().logs;
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10).throughput(Throughput::Elements(t.events));
    group.bench_function("pipeline, discarding writer", |b| {
        b.iter(|| {
            ingest_files(files.clone(), Box::new(DiscardWriter::default()), PipelineConfig::default(), None).unwrap()
        })
    });
    group.bench_function("pipeline into SQLite", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(dir.path().join("bench.db")).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                ingest_files(files.clone(), store.writer().unwrap(), PipelineConfig::default(), None).unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, parse, pipeline);
criterion_main!(benches);
