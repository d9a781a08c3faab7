//! Times the SQLite writer alone: parse a tree into memory, then insert it into a fresh file.
//! `cargo run --release -p trailwatch-store --example write_speed -- DIR [runs]`
use std::time::Instant;
use store::{EventBatch, ObjectMeta, ObjectTotals, SqliteStore, Store};

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("DIR"));
    let runs: usize = std::env::args().nth(2).map(|r| r.parse().unwrap()).unwrap_or(3);
    let mut objects = Vec::new();
    for entry in walk(&dir) {
        if !entry.to_string_lossy().ends_with(".json.gz") {
            continue;
        }
        let (events, summary) = model::read_all_events(std::fs::File::open(&entry).unwrap()).unwrap();
        let mut batch = EventBatch::new(events);
        batch.pack();
        objects.push((entry.display().to_string(), batch, summary));
    }
    let n: usize = objects.iter().map(|o| o.1.len()).sum();
    for _ in 0..runs {
        let tmp = std::env::temp_dir().join(format!("write-speed-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let store = SqliteStore::open(&tmp).unwrap();
        let mut w = store.writer().unwrap();
        let mut copies: Vec<EventBatch> = objects.iter().map(|o| o.1.clone()).collect();
        let started = Instant::now();
        for ((key, _, summary), batch) in objects.iter().zip(copies.iter_mut()) {
            w.begin_object(&ObjectMeta::local(key.clone(), 1)).unwrap();
            w.insert(batch).unwrap();
            w.finish_object(&ObjectTotals::from(summary)).unwrap();
            if w.pending_events() > 50_000 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
        let s = started.elapsed().as_secs_f64();
        println!("{n} events in {s:.3}s: {:.2} us/event", s * 1e6 / n as f64);
        drop(w);
        drop(store);
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", tmp.display()));
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out.sort();
    out
}
