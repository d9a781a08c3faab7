//! The table of AWS calls (`aws::permissions::CALLS`) against the code: every AWS SDK
//! operation trailwatch's source calls is in the table (so `setup`'s policies, built from the
//! table, allow it), and every operation in the table is called somewhere (so the policies
//! grant nothing unused).
//!
//! The operations of each SDK client are read from the SDK crates' own source
//! (`src/operation/<name>/`), found through `cargo metadata`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const SDKS: &[&str] = &["aws-sdk-s3", "aws-sdk-sqs", "aws-sdk-sns", "aws-sdk-sts", "aws-sdk-cloudtrail"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/aws is two below the root").to_path_buf()
}

/// Every operation (snake case) of the SDK clients trailwatch depends on.
fn sdk_operations() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Only the host's packages: those a build has already downloaded (no network needed).
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into())).arg("-vV").output().unwrap();
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .expect("rustc -vV names the host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", &host])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ops = BTreeSet::new();
    for sdk in SDKS {
        let pkg = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == *sdk)
            .unwrap_or_else(|| panic!("{sdk} is a dependency"));
        let dir = Path::new(pkg["manifest_path"].as_str().unwrap()).parent().unwrap().join("src/operation");
        let before = ops.len();
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                ops.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        assert!(ops.len() > before, "no operations found for {sdk}");
    }
    ops
}

/// The text of every Rust source file of the product (tests excluded: they may set up
/// fixtures with calls trailwatch never makes).
fn product_sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![workspace_root().join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "tests" && name != "benches" && name != "target" {
                    stack.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn every_aws_call_in_the_code_is_in_the_permission_table_and_back() {
    let operations = sdk_operations();
    // `.name(` anywhere in product code where `name` is an SDK operation: a call. A few
    // operation names are also ordinary method names of other types; they are listed with the
    // files where they mean something else.
    let not_sdk: &[(&str, &str)] = &[];
    let mut called: BTreeSet<String> = BTreeSet::new();
    for (path, text) in product_sources() {
        // Roles are assumed by the SDK's credential provider, not by a call of ours.
        if text.contains("AssumeRoleProvider::builder(") {
            called.insert("assume_role".to_owned());
        }
        for op in &operations {
            let pattern = format!(".{op}()");
            if text.contains(&pattern) {
                let file = path.to_string_lossy();
                if not_sdk.iter().any(|(o, f)| o == op && file.ends_with(f)) {
                    continue;
                }
                called.insert(op.clone());
            }
        }
    }
    let listed: BTreeSet<String> = aws::permissions::CALLS.iter().map(|c| c.operation.to_owned()).collect();
    let unchecked: BTreeSet<String> = aws::permissions::UNCHECKED.iter().map(|s| s.to_string()).collect();
    let missing: Vec<&String> = called.iter().filter(|op| !listed.contains(*op) && !unchecked.contains(*op)).collect();
    assert!(
        missing.is_empty(),
        "called but not in permissions::CALLS (setup's policies would not allow them): {missing:?}"
    );
    let unused: Vec<&String> = listed.iter().filter(|op| !called.contains(*op)).collect();
    assert!(unused.is_empty(), "in permissions::CALLS but never called (a permission granted for nothing): {unused:?}");
    for op in &listed {
        assert!(operations.contains(op), "{op} is not an operation of the SDK clients");
    }
}
