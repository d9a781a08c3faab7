//! Running the binary and reading back what a tree holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
    cmd.env_remove("TRAILWATCH_CONFIG").env_remove("TRAILWATCH_STORE_PATH").env("TRAILWATCH_LOG", "error");
    cmd
}

/// Runs `trailwatch ARGS`, asserting success; returns stdout.
pub fn run(args: &[&str]) -> String {
    let out = output(args);
    assert!(out.status.success(), "trailwatch {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn output(args: &[&str]) -> Output {
    bin().args(args).output().expect("run trailwatch")
}

pub fn run_json(args: &[&str]) -> Value {
    let out = run(args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Simulates a tree with `args` into a fresh directory under `dir`: the classic profile
/// unless `args` name one (tests know its fixed cast by name).
pub fn simulate(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut all = vec!["simulate", "--out", s(&out)];
    if !args.contains(&"--profile") {
        all.extend_from_slice(&["--profile", "classic"]);
    }
    all.extend_from_slice(args);
    run(&all);
    out
}

/// Every record of every log file under `root`, by eventID (read with the model crate, as
/// an independent reference for what the store must hold).
pub fn records_in(root: &Path) -> BTreeMap<String, model::ParsedEvent> {
    let mut out = BTreeMap::new();
    for path in test_support::files_under(root) {
        let name = path.to_string_lossy();
        if !name.ends_with(".json.gz") || name.contains("CloudTrail-Digest") {
            continue;
        }
        let (events, _) = model::read_all_events(std::fs::File::open(&path).unwrap()).unwrap();
        for e in events {
            out.insert(e.event_id.clone(), e);
        }
    }
    out
}

/// The eventIDs `search` prints with `--format tsv` (second column), in output order.
pub fn tsv_ids(tsv: &str) -> Vec<String> {
    tsv.lines().map(|l| l.split('\t').nth(1).expect("tsv has an eventID column").to_string()).collect()
}
