//! Killing an ingest with SIGKILL at random moments, then resuming, ends with exactly the
//! tree's events: none lost, none doubled.

use std::collections::BTreeSet;
use std::time::Instant;

use store::SqliteStore;
use store::StateStore;

use crate::util::{bin, records_in, run, run_json, s, simulate, tsv_ids};

/// A small xorshift: the kill moments are random but reproducible (the seed is printed).
struct Moments(u64);

impl Moments {
    fn fraction(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn committed_objects(db: &std::path::Path) -> usize {
    if !db.exists() {
        return 0;
    }
    SqliteStore::open(db).unwrap().ledger_entries("local", "").unwrap().len()
}

#[test]
fn sigkill_at_random_moments_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let tree = simulate(
        dir.path(),
        "tree",
        &[
            "--accounts",
            "2",
            "--regions",
            "us-east-1,eu-west-1",
            "--hours",
            "5",
            "--events",
            "30000",
            "--scenario",
            "all",
        ],
    );
    let expected: BTreeSet<String> = records_in(&tree).into_keys().collect();
    let total_files = ingest::sources::local::discover(&tree).unwrap().logs.len();
    assert!(total_files >= 200, "{total_files} files");

    // How long a whole ingest takes here, to aim the kills inside one.
    let scratch = dir.path().join("scratch.db");
    let started = Instant::now();
    run(&["ingest", "--local", s(&tree), "--db", s(&scratch), "--format", "json"]);
    let full = started.elapsed();

    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill moments seed: {seed}");
    let mut moments = Moments(seed);
    let mut kills_mid_ingest = 0;
    // Each cycle starts a fresh store, kills ingests until one finishes, then resumes and
    // checks the result exactly; cycles repeat until enough kills landed inside an ingest.
    for cycle in 0..10 {
        if kills_mid_ingest >= 6 {
            break;
        }
        let db = dir.path().join(format!("t{cycle}.db"));
        for attempt in 0..8 {
            let before = committed_objects(&db);
            let remaining = (total_files - before) as f64 / total_files as f64;
            // Anywhere from start-up to past the middle of what is left.
            let delay = full.mul_f64(remaining * (0.02 + 0.6 * moments.fraction()));
            let mut child =
                bin().args(["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]).spawn().unwrap();
            std::thread::sleep(delay);
            let finished = child.try_wait().unwrap().is_some();
            child.kill().ok(); // SIGKILL
            child.wait().unwrap();
            let after = committed_objects(&db);
            eprintln!("cycle {cycle} attempt {attempt}: killed after {delay:?}; objects {before} -> {after}");
            if finished || after == total_files {
                break;
            }
            kills_mid_ingest += 1;
        }
        // Resume: the rest is ingested, and the store holds exactly the tree's events.
        let resumed = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
        assert_eq!(resumed["quarantined"], 0);
        assert_eq!(committed_objects(&db), total_files);
        let stored = tsv_ids(&run(&["search", "--db", s(&db), "--limit", "0", "--format", "tsv"]));
        let unique: BTreeSet<String> = stored.iter().cloned().collect();
        assert_eq!(stored.len(), unique.len(), "an event is stored twice");
        assert_eq!(unique, expected, "events lost or invented");
        let again = run_json(&["ingest", "--local", s(&tree), "--db", s(&db), "--format", "json"]);
        assert_eq!(again["files"], 0);
    }
    assert!(kills_mid_ingest >= 6, "only {kills_mid_ingest} kills landed inside an ingest");
}
