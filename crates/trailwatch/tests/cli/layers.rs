//! The crate graph, as ARCHITECTURE.md states it: which of our crates each crate may use.
//! Read from `cargo metadata`, so a new dependency that breaks the layering fails here
//! (the web server knowing AWS, say), not in a review.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// Our crates and the ones of ours each may depend on (normal dependencies; tests may use
/// more). Dependencies point one way: down this table's layers.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("telemetry", &[]),
    ("test-support", &[]),
    ("sim", &["model"]),
    ("detect", &["model"]),
    ("store", &["model", "telemetry"]),
    ("export", &["model", "store"]),
    ("ingest", &["model", "store", "detect", "telemetry"]),
    ("integrity", &["model", "store"]),
    ("alert", &["model", "store"]),
    // Events out: forwarding uses alert's webhook delivery (signature, backoff, answers).
    ("forward", &["model", "store", "export", "alert"]),
    // The web server shows the store; it knows nothing of AWS, ingest or validation. What
    // it needs of them (SNS push routes, doctor runs, live status) the binary hands it.
    ("web", &["model", "store", "telemetry"]),
    ("aws", &["model", "store", "ingest", "integrity", "telemetry"]),
    (
        "trailwatch",
        &[
            "model",
            "store",
            "ingest",
            "detect",
            "integrity",
            "export",
            "alert",
            "forward",
            "aws",
            "web",
            "sim",
            "telemetry",
        ],
    ),
];

#[test]
fn crates_depend_only_on_the_layers_below() {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let short = |name: &str| name.strip_prefix("trailwatch-").unwrap_or(name).to_owned();
    let ours: BTreeSet<String> =
        meta["packages"].as_array().unwrap().iter().map(|p| short(p["name"].as_str().unwrap())).collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        let name = short(p["name"].as_str().unwrap());
        let Some(may) = allowed.get(name.as_str()) else {
            wrong.push(format!("{name} is not in the table: place it in ALLOWED (and ARCHITECTURE.md)"));
            continue;
        };
        for d in p["dependencies"].as_array().unwrap() {
            let dep = short(d["name"].as_str().unwrap());
            if d["kind"].is_null() && ours.contains(&dep) && !may.contains(&dep.as_str()) {
                wrong.push(format!("{name} depends on {dep}"));
            }
        }
    }
    assert!(wrong.is_empty(), "the crate graph breaks the layering:\n{}", wrong.join("\n"));
}
