//! The simulator writes a valid, deterministic bucket.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use model::{read_all_events, ObjectKind, TrailKey};
use sim::{simulate, Scenario, SimConfig};

fn small(seed: u64) -> SimConfig {
    SimConfig { accounts: 2, hours: 3, events: 3_000, seed, scenarios: Scenario::ALL.to_vec(), ..Default::default() }
}

fn tree_bytes(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walk(root)
        .into_iter()
        .map(|p| (p.strip_prefix(root).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    simulate(&small(7), a.path()).unwrap();
    simulate(&small(7), b.path()).unwrap();
    simulate(&small(8), c.path()).unwrap();
    let (ta, tb, tc) = (tree_bytes(a.path()), tree_bytes(b.path()), tree_bytes(c.path()));
    assert!(ta.len() > 20);
    assert_eq!(ta, tb);
    assert_ne!(ta, tc);
}

#[test]
fn every_file_is_a_valid_cloudtrail_object_and_matches_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = simulate(&small(3), dir.path()).unwrap();
    let mut ids = HashSet::new();
    let mut total = 0;
    let mut kinds = HashSet::new();
    for f in &manifest.files {
        let key = TrailKey::parse(&f.key).unwrap();
        assert_eq!(key.account_id, f.account);
        assert_eq!(key.region, f.region);
        kinds.insert(key.kind);
        let bytes = std::fs::read(dir.path().join(&f.key)).unwrap();
        let (events, summary) = read_all_events(bytes.as_slice()).unwrap();
        assert_eq!(events.len() as u64, f.records);
        assert_eq!(summary.object_sha256, f.sha256);
        assert_eq!(summary.content_sha256, f.content_sha256);
        for e in &events {
            assert_eq!(e.recipient_account_id.as_deref(), Some(f.account.as_str()));
            assert_eq!(e.aws_region.as_deref(), Some(f.region.as_str()));
            // A file is delivered after the events it holds.
            assert!(e.event_time < key.time, "{} after delivery {}", e.event_time, f.key);
            assert!(ids.insert(e.event_id.clone()), "duplicate id {}", e.event_id);
        }
        total += events.len() as u64;
    }
    assert_eq!(total, manifest.records);
    assert_eq!(kinds, HashSet::from([ObjectKind::Log, ObjectKind::Insight]));
    assert!(manifest.records >= 3_000);
    assert_eq!(manifest.scenarios.len(), Scenario::ALL.len());
    for s in &manifest.scenarios {
        assert!(!s.event_ids.is_empty(), "{}", s.name);
        assert!(s.event_ids.iter().all(|id| ids.contains(id)), "{} ids are in the files", s.name);
    }
    let tamper = manifest.scenarios.iter().find(|s| s.name == "trail-tampering").unwrap();
    for name in
        ["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutBucketPolicy", "PutBucketLifecycle"]
    {
        assert!(tamper.event_names.iter().any(|n| n == name), "{name}");
    }
}

#[test]
fn traffic_has_a_realistic_mix() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = simulate(&SimConfig { events: 5_000, ..Default::default() }, dir.path()).unwrap();
    let mut kinds = BTreeMap::<String, usize>::new();
    let (mut reads, mut errors, mut data, mut console, mut n) = (0, 0, 0, 0, 0);
    for f in &manifest.files {
        let (events, _) = read_all_events(std::fs::File::open(dir.path().join(&f.key)).unwrap()).unwrap();
        for e in events {
            n += 1;
            *kinds.entry(e.actor.kind.as_str().to_string()).or_default() += 1;
            reads += usize::from(e.read_only == Some(true));
            errors += usize::from(e.error_code.is_some());
            data += usize::from(e.management_event == Some(false));
            console += usize::from(e.actor.console);
        }
    }
    for k in ["IAMUser", "AssumedRole", "AWSService", "SAMLUser"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 20, "{k}: {kinds:?}");
    }
    assert!(reads * 2 > n, "read-heavy: {reads} of {n}");
    assert!(errors > n / 200 && errors < n / 10, "errors {errors} of {n}");
    assert!(data > n / 20, "data events {data} of {n}");
    assert!(console > n / 50, "console {console} of {n}");
}

#[test]
fn organization_layout_and_refusing_a_used_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        organization_id: Some("o-abcdef1234".into()),
        prefix: Some("audit".into()),
        events: 200,
        hours: 1,
        ..Default::default()
    };
    let manifest = simulate(&config, dir.path()).unwrap();
    for f in &manifest.files {
        let key = TrailKey::parse(&f.key).unwrap();
        assert_eq!(key.org_id.as_deref(), Some("o-abcdef1234"));
        assert_eq!(key.prefix, "audit");
    }
    let err = simulate(&config, dir.path()).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}
