//! Validation against simulated trails (one per tamper scenario, and a clean one) and against
//! the shared synthetic chain and digest samples.

use std::path::Path;

use integrity::{validate, validate_local, FindingKind, LocalDir, Options, PublicKeys, Report};
use sim::{SimConfig, Tamper};

fn simulate(tampers: &[Tamper], hours: u32) -> (tempfile::TempDir, sim::Manifest) {
    let dir = tempfile::tempdir().unwrap();
    let config = SimConfig {
        accounts: 2,
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        hours,
        events: 300 * u64::from(hours),
        seed: 7,
        digests: true,
        tampers: tampers.to_vec(),
        insights: false,
        ..SimConfig::default()
    };
    let manifest = sim::simulate(&config, dir.path()).unwrap();
    (dir, manifest)
}

fn run(dir: &Path) -> Report {
    let keys = PublicKeys::read(&dir.join("list-public-keys.json")).unwrap();
    validate_local(dir, &keys, &Options::default()).unwrap()
}

fn kinds(report: &Report) -> Vec<FindingKind> {
    let mut k: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn a_clean_simulated_trail_validates_without_findings() {
    let (dir, manifest) = simulate(&[], 6);
    let report = run(dir.path());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert!(report.valid());
    let digests = manifest.digests.as_ref().unwrap();
    assert_eq!(report.digests, digests.digests.len());
    // 2 accounts × 2 regions; one digest an hour until every log is digested.
    assert_eq!(report.chains.len(), 4);
    assert!(report.chains.iter().all(|c| (6..=7).contains(&c.digests)), "{:?}", report.chains);
    // Every log delivered after validation was enabled (within the first hour) was listed by
    // a digest and hashed; the few before are in no digest and are not findings either.
    let logs: Vec<i64> = manifest
        .files
        .iter()
        .filter(|f| f.kind == "log")
        .map(|f| model::TrailKey::parse(&f.key).unwrap().time)
        .collect();
    let start = model::timefmt::parse_rfc3339_millis(&manifest.start).unwrap();
    let after_first_hour = logs.iter().filter(|&&t| t >= start + 3_600_000).count();
    assert!(report.logs >= after_first_hour && report.logs < logs.len(), "{} of {}", report.logs, logs.len());
}

/// Each tamper scenario, alone in its trail, yields its finding on the key it touched.
#[test]
fn every_tamper_scenario_yields_its_finding() {
    for tamper in Tamper::ALL {
        let (dir, manifest) = simulate(&[tamper], sim::digests::hours_needed(&[tamper]));
        let report = run(dir.path());
        let applied = &manifest.digests.as_ref().unwrap().tampers[0];
        assert!(!applied.keys.is_empty(), "{} touched nothing", tamper.name());
        let expected = FindingKind::parse(tamper.finding()).unwrap();
        for key in &applied.keys {
            assert!(
                report.findings.iter().any(|f| f.kind == expected && f.key == *key),
                "{}: no {expected} on {key}; findings: {:#?}",
                tamper.name(),
                report.findings
            );
        }
        assert_eq!(report.valid(), expected.is_warning(), "{}: valid={}", tamper.name(), report.valid());
    }
}

/// The exact findings of the tampers that have no side effects: nothing else is reported.
#[test]
fn single_effect_tampers_report_nothing_else() {
    for (tamper, only) in [
        (Tamper::LogModified, vec![FindingKind::LogModified]),
        (Tamper::LogDeleted, vec![FindingKind::LogMissing]),
        (Tamper::LogInjected, vec![FindingKind::UnlistedLog]),
        (Tamper::DeliveryGap, vec![FindingKind::DeliveryGap]),
        (Tamper::ValidationPaused, vec![FindingKind::ChainRestart]),
        (Tamper::DigestDeleted, vec![FindingKind::DigestMissing, FindingKind::UnlistedLog]),
        (Tamper::NewestDigestDeleted, vec![FindingKind::DigestMissing, FindingKind::UnlistedLog]),
        (Tamper::DigestCorrupted, vec![FindingKind::DigestUnreadable, FindingKind::UnlistedLog]),
    ] {
        let (dir, _) = simulate(&[tamper], sim::digests::hours_needed(&[tamper]));
        let report = run(dir.path());
        assert_eq!(kinds(&report), only, "{}: {:#?}", tamper.name(), report.findings);
        assert_eq!(
            report.findings.iter().filter(|f| f.kind == only[0]).count(),
            1,
            "{}: {:#?}",
            tamper.name(),
            report.findings
        );
        // Logs whose digest is gone are reported as unverifiable, not as added.
        if matches!(tamper, Tamper::DigestDeleted | Tamper::DigestCorrupted) {
            let unlisted: Vec<_> = report.findings.iter().filter(|f| f.kind == FindingKind::UnlistedLog).collect();
            assert!(
                !unlisted.is_empty() && unlisted.iter().all(|f| f.detail.starts_with("no digest vouches for it")),
                "{unlisted:#?}"
            );
        }
        if tamper == Tamper::LogInjected {
            assert!(report.findings[0].detail.contains("added to the bucket"), "{:#?}", report.findings);
        }
    }
}

#[test]
fn all_tampers_at_once_each_leave_their_finding() {
    let hours = sim::digests::hours_needed(&Tamper::ALL);
    let (dir, manifest) = simulate(&Tamper::ALL, hours);
    let report = run(dir.path());
    assert!(!report.valid());
    for applied in &manifest.digests.as_ref().unwrap().tampers {
        let expected = FindingKind::parse(applied.finding).unwrap();
        for key in &applied.keys {
            assert!(
                report.findings.iter().any(|f| f.kind == expected && &f.key == key),
                "{}: no {expected} on {key}",
                applied.name
            );
        }
    }
    // Nothing outside the tampered chain (first account, first region) is reported.
    let tampered = &manifest.accounts[0].id;
    for f in &report.findings {
        assert!(f.key.contains(&format!("/{tampered}/")) && f.key.contains("/us-east-1/"), "{f:?}");
    }
}

#[test]
fn the_same_seed_writes_the_same_digests() {
    let (a, _) = simulate(&[Tamper::ChainBroken], sim::digests::hours_needed(&[Tamper::ChainBroken]));
    let (b, _) = simulate(&[Tamper::ChainBroken], sim::digests::hours_needed(&[Tamper::ChainBroken]));
    for file in test_support::files_under(a.path()) {
        let rel = file.strip_prefix(a.path()).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(b.path().join(rel)).unwrap(), "{}", rel.display());
    }
}

#[test]
fn a_window_limits_what_is_validated() {
    let (dir, _) = simulate(&[Tamper::LogDeleted], sim::digests::hours_needed(&[Tamper::LogDeleted]));
    let keys = PublicKeys::read(&dir.path().join("list-public-keys.json")).unwrap();
    let local = LocalDir::new(dir.path());
    let inventory = local.inventory().unwrap();
    let full = validate(&local, &inventory, &keys, &Options::default()).unwrap();
    let deleted_at = full.findings[0].key.clone();
    let deleted_time = model::TrailKey::parse(&deleted_at).unwrap().time;
    // A window that ends well before the deletion's hour does not see it, and reports no
    // missing chain start either (the previous digest is outside the window).
    let early = Options { end: Some(deleted_time - 2 * 3_600_000), ..Options::default() };
    let report = validate(&local, &inventory, &keys, &early).unwrap();
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    let late = Options { start: Some(deleted_time - 3_600_000), ..Options::default() };
    let report = validate(&local, &inventory, &keys, &late).unwrap();
    assert_eq!(kinds(&report), vec![FindingKind::LogMissing], "{:#?}", report.findings);
}

// ---- the shared synthetic chain (generated independently, verified with python cryptography)

fn shared_chain() -> std::path::PathBuf {
    test_support::shared_data("digest/synthetic-chain")
}

#[test]
fn the_shared_synthetic_chain_is_valid() {
    let report = run(&shared_chain());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    assert_eq!(report.digests, 3);
    assert_eq!(report.logs, 1);
}

#[test]
fn the_shared_string_to_sign_is_what_we_sign() {
    let dir = shared_chain();
    let chain: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("chain.json")).unwrap()).unwrap();
    for d in chain["digests"].as_array().unwrap() {
        let key = d["key"].as_str().unwrap();
        let digest = integrity::Digest::parse(&std::fs::read(dir.join(key)).unwrap()).unwrap();
        assert_eq!(digest.sha256, d["sha256OfUncompressedDigest"].as_str().unwrap());
        let expected = std::fs::read_to_string(dir.join(format!("{key}.string-to-sign.txt"))).unwrap();
        assert_eq!(digest.string_to_sign(), expected);
    }
}

#[test]
fn the_shared_tampered_log_is_reported_modified() {
    // A copy of the chain with the tampered log in place of the original.
    let dir = tempfile::tempdir().unwrap();
    let src = shared_chain();
    for file in test_support::files_under(&src) {
        let rel = file.strip_prefix(&src).unwrap();
        if rel.starts_with("tampered") {
            continue;
        }
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
        let mut perms = std::fs::metadata(&to).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&to, perms).unwrap();
    }
    let tampered_root = src.join("tampered");
    for file in test_support::files_under(&tampered_root) {
        let rel = file.strip_prefix(&tampered_root).unwrap();
        std::fs::write(dir.path().join(rel), std::fs::read(&file).unwrap()).unwrap();
    }
    let report = run(dir.path());
    assert_eq!(kinds(&report), vec![FindingKind::LogModified], "{:#?}", report.findings);

    // A digest copied elsewhere in the same tree is a moved digest.
    let chain: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("chain.json")).unwrap()).unwrap();
    let first = chain["digests"][0]["key"].as_str().unwrap();
    std::fs::remove_file(dir.path().join(first)).unwrap();
    let report = run(dir.path());
    assert!(
        report.findings.iter().any(|f| f.kind == FindingKind::DigestMissing && f.key == first),
        "{:#?}",
        report.findings
    );
}

#[test]
fn the_documentation_samples_parse_and_their_flaws_are_seen() {
    // The AWS documentation's "no log files" digest: parses, empty logFiles, null times.
    let empty = std::fs::read(test_support::shared_data("digest/samples/otel-cloudtrail_digest_empty.json")).unwrap();
    // The samples are stored inflated, as a decompressed copy would hold them.
    assert_eq!(integrity::Digest::parse(&empty).unwrap_err(), integrity::DigestError::NotGzip);
    let digest = integrity::Digest::parse_decompressed_copy(&empty).unwrap();
    assert!(digest.body.log_files.is_empty());
    assert!(digest.end > digest.start);
    assert!(digest.string_to_sign().starts_with(&digest.body.digest_end_time));

    // The hand-made sample: parses, but names a previous digest of another account and has
    // malformed log times; its own location is checked like any digest's.
    let made = std::fs::read(test_support::shared_data("digest/samples/otel-cloudtrail_digest.json")).unwrap();
    let digest = integrity::Digest::parse_decompressed_copy(&made).unwrap();
    assert_eq!(digest.body.log_files.len(), 1);
    let own = model::TrailKey::parse(&digest.body.digest_s3_object);
    assert!(own.is_err(), "its digestS3Object is not a digest key: {own:?}");
    let previous = model::TrailKey::parse(digest.body.previous_digest_s3_object.as_deref().unwrap());
    assert!(previous.is_err() || previous.unwrap().account_id != digest.body.aws_account_id.clone().unwrap());

    // Truncated and non-digest input are errors, not panics.
    assert!(integrity::Digest::parse(&test_support::gzip(&made)[..40]).is_err());
    assert!(integrity::Digest::parse_decompressed_copy(br#"{"Records":[]}"#).is_err());
}

#[test]
fn a_digest_without_metadata_is_verified_by_the_signature_its_successor_recorded() {
    let (dir, manifest) = simulate(&[], 6);
    let digests = &manifest.digests.as_ref().unwrap().digests;
    let chain: Vec<&String> = digests
        .iter()
        .filter(|d| d.contains(&format!("/{}/", manifest.accounts[0].id)) && d.contains("/us-east-1/"))
        .collect();
    // Mid-chain: the next digest vouches for it.
    std::fs::remove_file(dir.path().join(format!("{}.metadata.json", chain[1]))).unwrap();
    let report = run(dir.path());
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
    // The newest: nobody vouches for it.
    let newest = chain.last().unwrap();
    std::fs::remove_file(dir.path().join(format!("{newest}.metadata.json"))).unwrap();
    let report = run(dir.path());
    assert_eq!(kinds(&report), vec![FindingKind::DigestInvalidSignature]);
    assert_eq!(&report.findings[0].key, *newest);
}

#[test]
fn a_key_outside_its_validity_period_is_an_unknown_key() {
    let (dir, _) = simulate(&[], 4);
    let path = dir.path().join("list-public-keys.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["PublicKeyList"][0]["ValidityEndTime"] = "2020-01-01T00:00:00Z".into();
    std::fs::write(&path, doc.to_string()).unwrap();
    let report = run(dir.path());
    assert_eq!(kinds(&report), vec![FindingKind::UnknownKey]);
    assert!(report.findings.iter().all(|f| f.detail.contains("was valid")), "{:#?}", report.findings);
}

fn first_chain(manifest: &sim::Manifest) -> Vec<String> {
    let account = format!("/{}/", manifest.accounts[0].id);
    manifest
        .digests
        .as_ref()
        .unwrap()
        .digests
        .iter()
        .filter(|d| d.contains(&account) && d.contains("/us-east-1/"))
        .cloned()
        .collect()
}

fn rewrite_gz(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut doc: serde_json::Value = {
        use std::io::Read;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(std::fs::read(path).unwrap().as_slice()).read_to_end(&mut text).unwrap();
        serde_json::from_slice(&text).unwrap()
    };
    edit(&mut doc);
    std::fs::write(path, test_support::gzip(doc.to_string().as_bytes())).unwrap();
}

/// A digest whose listed hash was changed (not re-signed): its signature fails and its
/// successor's link breaks; the intact log it lists is not called modified (as with awscli,
/// an invalid digest's hashes are not evidence).
#[test]
fn a_forged_log_hash_in_a_digest_is_the_digest_s_fault_not_the_log_s() {
    let (dir, manifest) = simulate(&[], 6);
    let chain = first_chain(&manifest);
    let victim = chain.iter().find(|d| d.as_str() != chain.last().unwrap().as_str()).unwrap();
    let path = dir.path().join(victim);
    let mut listed = String::new();
    rewrite_gz(&path, |doc| {
        let entry = doc["logFiles"].as_array_mut().unwrap().iter_mut().next().expect("the digest lists logs");
        listed = entry["s3Object"].as_str().unwrap().to_string();
        entry["hashValue"] = "0".repeat(64).into();
    });
    let report = run(dir.path());
    assert_eq!(
        kinds(&report),
        vec![FindingKind::DigestInvalidSignature, FindingKind::ChainBroken],
        "{:#?}",
        report.findings
    );
    assert!(report.findings.iter().all(|f| f.key != listed));
}

/// A copy of a digest elsewhere is a moved digest, and nothing more.
#[test]
fn a_digest_copied_elsewhere_is_moved() {
    let (dir, manifest) = simulate(&[], 6);
    let chain = first_chain(&manifest);
    let original = &chain[2];
    let mut parsed = model::TrailKey::parse(original).unwrap();
    parsed.time += 20 * 60_000;
    let copy = parsed.to_key();
    for suffix in ["", ".metadata.json"] {
        std::fs::copy(dir.path().join(format!("{original}{suffix}")), dir.path().join(format!("{copy}{suffix}")))
            .unwrap();
    }
    let report = run(dir.path());
    assert_eq!(kinds(&report), vec![FindingKind::DigestMoved], "{:#?}", report.findings);
    assert_eq!(report.findings[0].key, copy);
}

/// Every digest of one region deleted: its logs have nothing to be checked against, while
/// the trail digests the account's other region.
#[test]
fn a_region_whose_digests_were_all_deleted() {
    let (dir, manifest) = simulate(&[], 5);
    let account = &manifest.accounts[0].id;
    let digests = dir.path().join(format!("AWSLogs/{account}/CloudTrail-Digest/eu-west-1"));
    std::fs::remove_dir_all(&digests).unwrap();
    let report = run(dir.path());
    assert_eq!(kinds(&report), vec![FindingKind::DigestMissing, FindingKind::UnlistedLog], "{:#?}", report.findings);
    let missing: Vec<_> = report.findings.iter().filter(|f| f.kind == FindingKind::DigestMissing).collect();
    assert_eq!(missing.len(), 1);
    assert!(missing[0].key.contains(&format!("/{account}/CloudTrail-Digest/eu-west-1/")), "{:?}", missing[0]);
    let region_logs =
        manifest.files.iter().filter(|f| f.account == *account && f.region == "eu-west-1" && f.kind == "log").count();
    assert_eq!(report.findings.iter().filter(|f| f.kind == FindingKind::UnlistedLog).count(), region_logs);
}

/// A digest stored as plain JSON is not what CloudTrail wrote (it writes them gzip'd):
/// unreadable, unless the copy is known to have been made with decompression on.
#[test]
fn a_plain_json_digest_is_unreadable_unless_the_copy_was_decompressed() {
    let (dir, manifest) = simulate(&[], 5);
    let chain = first_chain(&manifest);
    let victim = &chain[2];
    let path = dir.path().join(victim);
    let mut text = Vec::new();
    {
        use std::io::Read;
        flate2::read::GzDecoder::new(std::fs::read(&path).unwrap().as_slice()).read_to_end(&mut text).unwrap();
    }
    std::fs::write(&path, &text).unwrap();
    let report = run(dir.path());
    let unreadable: Vec<_> = report.findings.iter().filter(|f| f.kind == FindingKind::DigestUnreadable).collect();
    assert_eq!(unreadable.len(), 1, "{:#?}", report.findings);
    assert_eq!(&unreadable[0].key, victim);
    assert!(unreadable[0].detail.contains("plain JSON") && unreadable[0].detail.contains("--decompressed-copy"));
    assert!(!report.valid());
    // Told it is a decompressed copy: the same inflated bytes, the same hash: valid.
    let keys = PublicKeys::read(&dir.path().join("list-public-keys.json")).unwrap();
    let copy = validate_local(dir.path(), &keys, &Options { decompressed_copy: true, ..Options::default() }).unwrap();
    assert!(copy.findings.is_empty(), "{:#?}", copy.findings);
}

/// A digest replaced by a copy of another: the successor's link breaks. That link is not also
/// a delivery gap "although the chain is intact".
#[test]
fn a_digest_replaced_by_another_breaks_the_chain_and_is_no_gap() {
    let (dir, manifest) = simulate(&[], 6);
    let chain = first_chain(&manifest);
    // Digest 3 becomes a copy of digest 1 (content and signature).
    for suffix in ["", ".metadata.json"] {
        std::fs::copy(
            dir.path().join(format!("{}{suffix}", chain[1])),
            dir.path().join(format!("{}{suffix}", chain[3])),
        )
        .unwrap();
    }
    let report = run(dir.path());
    let broken: Vec<&str> =
        report.findings.iter().filter(|f| f.kind == FindingKind::ChainBroken).map(|f| f.key.as_str()).collect();
    assert!(broken.contains(&chain[4].as_str()), "the link from digest 4 breaks: {:#?}", report.findings);
    for f in &report.findings {
        if f.kind == FindingKind::DeliveryGap {
            assert!(!broken.contains(&f.key.as_str()), "a gap on a broken link: {f:?}");
            assert!(!f.detail.contains("although the chain is intact") || !broken.contains(&f.key.as_str()));
        }
    }
    assert!(!report.valid());
}
