//! The simulator writes a valid, deterministic bucket.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use model::{read_all_events, ObjectKind, TrailKey};
use sim::{simulate, Profile, Scenario, SimConfig};

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

/// Distinct values per event of (user agent, source address, principal), over every record.
fn distinct_per_event(dir: &Path, manifest: &sim::Manifest) -> (f64, f64, f64, u64) {
    let (mut agents, mut addresses, mut principals, mut n) = (HashSet::new(), HashSet::new(), HashSet::new(), 0u64);
    for f in &manifest.files {
        let (events, _) = read_all_events(std::fs::File::open(dir.join(&f.key)).unwrap()).unwrap();
        for e in events {
            n += 1;
            agents.insert(e.user_agent.clone());
            addresses.insert(e.source_ip.clone());
            principals.insert(e.actor.principal.clone());
        }
    }
    let per = |c: usize| c as f64 / n as f64;
    (per(agents.len()), per(addresses.len()), per(principals.len()), n)
}

#[test]
fn varied_profiles_have_the_cardinality_they_promise() {
    let run = |profile, events| {
        let dir = tempfile::tempdir().unwrap();
        let config = SimConfig { profile, events, accounts: 5, hours: 48, ..Default::default() };
        let manifest = simulate(&config, dir.path()).unwrap();
        distinct_per_event(dir.path(), &manifest)
    };
    let (ua, ip, principals, n) = run(Profile::HighCardinality, 20_000);
    assert!(n >= 20_000);
    assert!(ua >= 0.3 && ip >= 0.5, "high-cardinality: {ua:.3} agents, {ip:.3} addresses per event");
    let (ua, ip, p_small, _) = run(Profile::Realistic, 5_000);
    assert!((0.05..0.3).contains(&ua) && (0.1..0.5).contains(&ip), "realistic: {ua:.3} agents, {ip:.3} addresses");
    // Distinct counts grow with the trail (a fixed cast would halve the ratio at 4× the size).
    let (ua4, ip4, p_large, _) = run(Profile::Realistic, 20_000);
    assert!(ua4 > ua * 0.6 && ip4 > ip * 0.6, "ratios hold at 4×: {ua4:.3} vs {ua:.3}, {ip4:.3} vs {ip:.3}");
    assert!(p_large * 20_000.0 > p_small * 5_000.0 * 1.5, "principals grow: {p_large:.3} vs {p_small:.3}");
    let (ua, ip, principals_classic, _) = run(Profile::Classic, 5_000);
    assert!(ua < 0.01 && ip < 0.01 && principals_classic < principals, "classic: {ua} {ip}");
}

#[test]
fn the_bytes_do_not_depend_on_the_number_of_threads() {
    let config = |threads| SimConfig { profile: Profile::Realistic, threads, events: 4_000, hours: 6, ..small(5) };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = simulate(&config(1), a.path()).unwrap();
    simulate(&config(3), b.path()).unwrap();
    assert_eq!(tree_bytes(a.path()), tree_bytes(b.path()));
    assert_eq!(one.records, 4_000 + one.scenarios.iter().map(|s| s.event_ids.len() as u64).sum::<u64>() + 4);
}

#[test]
fn varied_records_are_well_formed_cloudtrail() {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig { profile: Profile::HighCardinality, events: 3_000, hours: 2, ..Default::default() };
    let manifest = simulate(&config, dir.path()).unwrap();
    let (mut kinds, mut endpoints, mut v6, mut errors, mut n) = (BTreeMap::<String, usize>::new(), 0, 0, 0, 0);
    for f in &manifest.files {
        let (events, _) = read_all_events(std::fs::File::open(dir.path().join(&f.key)).unwrap()).unwrap();
        for e in events {
            n += 1;
            *kinds.entry(e.actor.kind.as_str().to_string()).or_default() += 1;
            let Some(ip) = e.source_ip.as_deref() else { continue }; // Insights records
            let is_ip = ip.parse::<std::net::IpAddr>().is_ok();
            assert!(is_ip || ip.ends_with(".amazonaws.com"), "{ip}");
            v6 += usize::from(ip.contains(':'));
            let raw: serde_json::Value = serde_json::from_str(&e.raw).unwrap();
            if raw.get("vpcEndpointId").is_some() {
                endpoints += 1;
                assert!(ip.starts_with("10."), "an endpoint's caller is private: {ip}");
            }
            errors += usize::from(e.error_code.is_some());
        }
    }
    for k in ["IAMUser", "AssumedRole", "AWSService", "SAMLUser", "WebIdentityUser"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 10, "{k}: {kinds:?}");
    }
    assert!(endpoints > n / 50 && v6 > n / 50 && errors > n / 100, "{endpoints} {v6} {errors} of {n}");
}

/// The same seed over the next day is the same trail a day later: the same people and
/// addresses come back, and no event repeats.
#[test]
fn a_trail_continues_day_by_day() {
    let day = |start| {
        let dir = tempfile::tempdir().unwrap();
        let config =
            SimConfig { profile: Profile::Realistic, events: 4_000, hours: 24, start, insights: false, ..small(6) };
        let manifest = simulate(&SimConfig { scenarios: Vec::new(), ..config }, dir.path()).unwrap();
        let mut principals = HashSet::new();
        let mut ids = HashSet::new();
        for f in &manifest.files {
            for e in read_all_events(std::fs::File::open(dir.path().join(&f.key)).unwrap()).unwrap().0 {
                principals.insert(e.actor.principal.clone());
                ids.insert(e.event_id);
            }
        }
        (principals, ids)
    };
    let start = SimConfig::default().start;
    let (p1, i1) = day(start);
    let (p2, i2) = day(start + 86_400_000);
    assert!(i1.is_disjoint(&i2), "no event of day 1 is in day 2");
    let common = p1.intersection(&p2).count();
    assert!(common * 4 > p1.len(), "most principals come back: {common} of {}", p1.len());
}
