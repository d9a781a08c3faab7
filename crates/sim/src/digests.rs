//! Digest files for a simulated trail, signed as CloudTrail signs them, and tamper scenarios
//! that break them in each way integrity validation must notice.
//!
//! Per account and region: one digest an hour (the trail's home region is the first
//! simulated region), each listing the log files delivered in its hour with the SHA-256 of
//! their inflated content and linking to the previous digest by key, hash and signature. The
//! signing key is a throw-away RSA-2048 key generated from the seed (so the same seed gives the
//! same bytes); `list-public-keys.json` at the root of the output holds it in the shape of
//! `aws cloudtrail list-public-keys`, so `trailwatch validate --local DIR --public-keys
//! DIR/list-public-keys.json` checks the result. The fingerprint is ours (hex of the first 16
//! bytes of the SHA-256 of the DER key): AWS does not document how it derives its own.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use model::timefmt::{format_millis, parse_rfc3339_millis};
use model::{EpochMillis, ObjectKind, TrailKey};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::RsaPrivateKey;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::rng::Rng;
use crate::{gzip, ManifestFile, SimConfig, SimError};

const HOUR: i64 = 3_600_000;
/// The simulated trail's name (digest keys carry it).
pub const TRAIL_NAME: &str = "management-events";
pub const KEYS_FILE: &str = "list-public-keys.json";

/// Ways to tamper with a trail's record, each caught by integrity validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tamper {
    LogModified,
    LogDeleted,
    LogInjected,
    DigestForged,
    DigestDeleted,
    NewestDigestDeleted,
    DigestCorrupted,
    DigestUnknownKey,
    DigestMoved,
    ChainBroken,
    ValidationPaused,
    DeliveryGap,
}

impl Tamper {
    pub const ALL: [Tamper; 12] = [
        Tamper::LogModified,
        Tamper::LogDeleted,
        Tamper::LogInjected,
        Tamper::DigestForged,
        Tamper::DigestDeleted,
        Tamper::NewestDigestDeleted,
        Tamper::DigestCorrupted,
        Tamper::DigestUnknownKey,
        Tamper::DigestMoved,
        Tamper::ChainBroken,
        Tamper::ValidationPaused,
        Tamper::DeliveryGap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tamper::LogModified => "log-modified",
            Tamper::LogDeleted => "log-deleted",
            Tamper::LogInjected => "log-injected",
            Tamper::DigestForged => "digest-forged",
            Tamper::DigestDeleted => "digest-deleted",
            Tamper::NewestDigestDeleted => "newest-digest-deleted",
            Tamper::DigestCorrupted => "digest-corrupted",
            Tamper::DigestUnknownKey => "digest-unknown-key",
            Tamper::DigestMoved => "digest-moved",
            Tamper::ChainBroken => "chain-broken",
            Tamper::ValidationPaused => "validation-paused",
            Tamper::DeliveryGap => "delivery-gap",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Tamper::LogModified => "an event is erased from a delivered log file (LOG_MODIFIED)",
            Tamper::LogDeleted => "a delivered log file is deleted (LOG_MISSING)",
            Tamper::LogInjected => "a forged log file is added to the bucket (UNLISTED_LOG)",
            Tamper::DigestForged => {
                "a digest is rewritten to drop a log file, keeping its old signature (DIGEST_INVALID_SIGNATURE)"
            }
            Tamper::DigestDeleted => "a digest in the middle of the chain is deleted (DIGEST_MISSING)",
            Tamper::NewestDigestDeleted => {
                "the newest two digests are deleted, hiding the logs they list (DIGEST_MISSING, UNLISTED_LOG)"
            }
            Tamper::DigestCorrupted => "a digest object is truncated (DIGEST_UNREADABLE)",
            Tamper::DigestUnknownKey => "a digest is re-signed with a key CloudTrail does not have (UNKNOWN_KEY)",
            Tamper::DigestMoved => "a digest is moved to another key (DIGEST_MOVED)",
            Tamper::ChainBroken => {
                "a digest is replaced by a validly signed one whose previous-digest hash is wrong (CHAIN_BROKEN)"
            }
            Tamper::ValidationPaused => {
                "log file validation is off for two hours, then on again (CHAIN_RESTART, a warning)"
            }
            Tamper::DeliveryGap => {
                "an hour passes without a digest while the chain stays intact (DELIVERY_GAP, a warning)"
            }
        }
    }

    pub fn parse(name: &str) -> Option<Tamper> {
        Tamper::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The finding kind the tamper is meant to produce (as the CLI contract names it).
    pub fn finding(self) -> &'static str {
        match self {
            Tamper::LogModified => "LOG_MODIFIED",
            Tamper::LogDeleted => "LOG_MISSING",
            Tamper::LogInjected => "UNLISTED_LOG",
            Tamper::DigestForged => "DIGEST_INVALID_SIGNATURE",
            Tamper::DigestDeleted | Tamper::NewestDigestDeleted => "DIGEST_MISSING",
            Tamper::DigestCorrupted => "DIGEST_UNREADABLE",
            Tamper::DigestUnknownKey => "UNKNOWN_KEY",
            Tamper::DigestMoved => "DIGEST_MOVED",
            Tamper::ChainBroken => "CHAIN_BROKEN",
            Tamper::ValidationPaused => "CHAIN_RESTART",
            Tamper::DeliveryGap => "DELIVERY_GAP",
        }
    }

    /// Tampers made while the chain is written (the others alter it afterwards).
    fn shapes_chain(self) -> bool {
        matches!(self, Tamper::ValidationPaused | Tamper::DeliveryGap)
    }

    /// Hourly digests this tamper needs to itself (a clean one follows each, so that one
    /// tamper never hides another's evidence).
    fn width(self) -> usize {
        match self {
            Tamper::ValidationPaused => 3,
            Tamper::NewestDigestDeleted => 0, // works at the end of the chain
            _ => 1,
        }
    }
}

/// Digests a simulation needs for `tampers`: a slot each, clean digests around, the end.
pub fn hours_needed(tampers: &[Tamper]) -> u32 {
    (3 + tampers.iter().map(|t| t.width() + 1).sum::<usize>() + 3) as u32
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestTamper {
    pub name: &'static str,
    pub description: &'static str,
    /// The finding validation reports for it.
    pub finding: &'static str,
    /// The objects concerned (the key a finding names).
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestManifest {
    pub bucket: String,
    pub trail_name: String,
    pub keys_file: String,
    pub fingerprint: String,
    pub digests: Vec<String>,
    pub tampers: Vec<ManifestTamper>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    aws_account_id: String,
    digest_start_time: String,
    digest_end_time: String,
    digest_s3_bucket: String,
    digest_s3_object: String,
    digest_public_key_fingerprint: String,
    digest_signature_algorithm: &'static str,
    newest_event_time: Option<String>,
    oldest_event_time: Option<String>,
    previous_digest_s3_bucket: Option<String>,
    previous_digest_s3_object: Option<String>,
    previous_digest_hash_value: Option<String>,
    previous_digest_hash_algorithm: Option<&'static str>,
    previous_digest_signature: Option<String>,
    log_files: Vec<LogEntry>,
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct LogEntry {
    s3_bucket: String,
    s3_object: String,
    hash_value: String,
    hash_algorithm: &'static str,
    newest_event_time: String,
    oldest_event_time: String,
}

/// A signing key and its fingerprint.
struct DigestSigner {
    key: SigningKey<Sha256>,
    der: Vec<u8>,
    fingerprint: String,
}

impl DigestSigner {
    fn generate(rng: Rng) -> DigestSigner {
        let private = RsaPrivateKey::new(&mut KeyRng(rng), 2048).expect("RSA-2048 key generation");
        let der = private.to_public_key().to_pkcs1_der().expect("DER encoding").as_bytes().to_vec();
        let fingerprint = hex::encode(&Sha256::digest(&der)[..16]);
        DigestSigner { key: SigningKey::<Sha256>::new(private), der, fingerprint }
    }

    fn sign(&self, text: &str) -> String {
        hex::encode(self.key.sign(text.as_bytes()).to_bytes())
    }
}

/// A written digest, remembered for linking and tampering.
#[derive(Clone)]
struct Written {
    key: String,
    start: EpochMillis,
    inflated: Vec<u8>,
    signature: String,
    logs: Vec<String>,
}

/// Writes the digests for `files` (the simulated log files) under `out` and applies the
/// tampers to the first account's chain in the first region. `files` is updated for tampers
/// that change log files.
pub fn write(
    config: &SimConfig,
    tampers: &[Tamper],
    out: &Path,
    files: &mut Vec<ManifestFile>,
    end: EpochMillis,
    tamper_account: &str,
) -> Result<DigestManifest, SimError> {
    let root = Rng::new(config.seed).fork(5000);
    let signer = DigestSigner::generate(root.fork(1));
    let bucket = config.bucket.clone();
    let home = config.regions[0].clone();

    // Logs by (account, region), each with its delivery time (from the key).
    let mut logs: BTreeMap<(String, String), Vec<(EpochMillis, &ManifestFile)>> = BTreeMap::new();
    for f in files.iter().filter(|f| f.kind == "log") {
        let time = TrailKey::parse(&f.key).map(|k| k.time).unwrap_or_default();
        logs.entry((f.account.clone(), f.region.clone())).or_default().push((time, f));
    }
    let accounts: Vec<String> = {
        let mut a: Vec<String> = files.iter().map(|f| f.account.clone()).collect();
        a.sort();
        a.dedup();
        a
    };

    // Slots in the tampered chain: hour index where each tamper acts.
    let mut slots: Vec<(Tamper, usize)> = Vec::new();
    let mut next_slot = 3;
    for &t in tampers {
        if t.width() > 0 {
            slots.push((t, next_slot));
            next_slot += t.width() + 1;
        } else {
            slots.push((t, usize::MAX));
        }
    }

    let mut manifest = DigestManifest {
        bucket: bucket.clone(),
        trail_name: TRAIL_NAME.into(),
        keys_file: KEYS_FILE.into(),
        fingerprint: signer.fingerprint.clone(),
        digests: Vec::new(),
        tampers: Vec::new(),
    };
    let mut tampered_chain: Vec<Written> = Vec::new();
    // Digests that chain-shaping tampers produced (the one after the hole).
    let mut shaped: Vec<(Tamper, String)> = Vec::new();
    for account in &accounts {
        for (r, region) in config.regions.iter().enumerate() {
            let mut orng = root.fork(100 + r as u64).fork(account.parse::<u64>().unwrap_or(0));
            // CloudTrail's digest hour starts where the trail's validation was enabled.
            let offset = orng.range(5, 55) as i64 * 60_000 + orng.range(0, 59) as i64 * 1000;
            let region_logs = logs.get(&(account.clone(), region.clone())).map(Vec::as_slice).unwrap_or(&[]);
            let is_tampered = account == tamper_account && r == 0;
            let skip = |hour: usize| -> bool {
                is_tampered
                    && slots.iter().any(|&(t, s)| {
                        (t == Tamper::DeliveryGap && hour == s)
                            || (t == Tamper::ValidationPaused && (hour == s || hour == s + 1))
                    })
            };
            let restart_at =
                |hour: usize| is_tampered && slots.iter().any(|&(t, s)| t == Tamper::ValidationPaused && hour == s + 2);
            let mut chain: Vec<Written> = Vec::new();
            let mut period_start = config.start + offset;
            let mut hour = 0usize;
            loop {
                let digest_end = config.start + offset + (hour as i64 + 1) * HOUR;
                // Hourly until every delivered log is digested: the bucket as it is an hour
                // after the simulated window (its last logs arrive a few minutes after it).
                if digest_end - HOUR > end + 5 * 60_000 {
                    break;
                }
                if skip(hour) {
                    hour += 1;
                    if restart_at(hour) {
                        period_start = digest_end; // logs while validation was off are never digested
                    }
                    continue;
                }
                let listed: Vec<&ManifestFile> = region_logs
                    .iter()
                    .filter(|(t, _)| *t >= period_start && *t < digest_end)
                    .map(|(_, f)| *f)
                    .collect();
                let previous = if restart_at(hour) { None } else { chain.last() };
                let key = TrailKey {
                    prefix: config.prefix.clone().unwrap_or_default(),
                    org_id: config.organization_id.clone(),
                    account_id: account.clone(),
                    kind: ObjectKind::Digest,
                    region: region.clone(),
                    time: digest_end,
                    trail_name: Some(TRAIL_NAME.into()),
                    home_region: Some(home.clone()),
                    unique: None,
                }
                .to_key();
                let entries: Vec<LogEntry> = listed
                    .iter()
                    .map(|f| LogEntry {
                        s3_bucket: bucket.clone(),
                        s3_object: f.key.clone(),
                        hash_value: f.content_sha256.clone(),
                        hash_algorithm: "SHA-256",
                        newest_event_time: f.newest_event_time.clone(),
                        oldest_event_time: f.oldest_event_time.clone(),
                    })
                    .collect();
                let body = Body {
                    aws_account_id: account.clone(),
                    digest_start_time: format_millis(period_start),
                    digest_end_time: format_millis(digest_end),
                    digest_s3_bucket: bucket.clone(),
                    digest_s3_object: key.clone(),
                    digest_public_key_fingerprint: signer.fingerprint.clone(),
                    digest_signature_algorithm: "SHA256withRSA",
                    newest_event_time: listed.iter().map(|f| f.newest_event_time.clone()).max(),
                    oldest_event_time: listed.iter().map(|f| f.oldest_event_time.clone()).min(),
                    previous_digest_s3_bucket: previous.map(|_| bucket.clone()),
                    previous_digest_s3_object: previous.map(|p| p.key.clone()),
                    previous_digest_hash_value: previous.map(|p| hex::encode(Sha256::digest(&p.inflated))),
                    previous_digest_hash_algorithm: previous.map(|_| "SHA-256"),
                    previous_digest_signature: previous.map(|p| p.signature.clone()),
                    log_files: entries,
                };
                if is_tampered && restart_at(hour) {
                    shaped.push((Tamper::ValidationPaused, key.clone()));
                }
                if is_tampered && digest_end - period_start > HOUR {
                    shaped.push((Tamper::DeliveryGap, key.clone()));
                }
                let written = write_digest(out, &key, &body, &signer)?;
                manifest.digests.push(key);
                chain.push(Written { logs: listed.iter().map(|f| f.key.clone()).collect(), ..written });
                period_start = digest_end;
                hour += 1;
            }
            if is_tampered {
                tampered_chain = chain;
            }
        }
    }

    let keys = serde_json::json!({"PublicKeyList": [{
        "Value": base64_encode(&signer.der),
        "ValidityStartTime": format_millis(config.start - 30 * 24 * HOUR),
        "ValidityEndTime": format_millis(end + 30 * 24 * HOUR),
        "Fingerprint": signer.fingerprint,
    }]});
    let keys_path = out.join(KEYS_FILE);
    std::fs::write(&keys_path, serde_json::to_vec_pretty(&keys).expect("keys serialise"))
        .map_err(|source| SimError::Io { path: keys_path, source })?;

    let ctx = Tampering { out, signer: &signer, rng: root.fork(2) };
    for &(tamper, slot) in &slots {
        let keys = if tamper.shapes_chain() {
            shaped.iter().filter(|(t, _)| *t == tamper).map(|(_, k)| k.clone()).collect()
        } else {
            ctx.apply(tamper, slot, &mut tampered_chain, files)?
        };
        manifest.tampers.push(ManifestTamper {
            name: tamper.name(),
            description: tamper.description(),
            finding: tamper.finding(),
            keys,
        });
    }
    Ok(manifest)
}

struct Tampering<'a> {
    out: &'a Path,
    signer: &'a DigestSigner,
    rng: Rng,
}

impl Tampering<'_> {
    fn apply(
        &self,
        tamper: Tamper,
        slot: usize,
        chain: &mut [Written],
        files: &mut Vec<ManifestFile>,
    ) -> Result<Vec<String>, SimError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SimError::Io { path, source }
        };
        // The slot's digest, or the nearest later one that lists logs when logs are needed.
        let with_logs =
            |from: usize| (from..chain.len()).find(|&i| !chain[i].logs.is_empty()).unwrap_or(from.min(chain.len() - 1));
        match tamper {
            Tamper::LogModified => {
                let d = with_logs(slot);
                let key = chain[d].logs[0].clone();
                let path = self.out.join(&key);
                let stored = std::fs::read(&path).map_err(io(&path))?;
                let mut text = Vec::new();
                flate2::read::MultiGzDecoder::new(stored.as_slice()).read_to_end(&mut text).map_err(io(&path))?;
                let mut doc: serde_json::Value = serde_json::from_slice(&text).expect("simulated logs are JSON");
                let records = doc["Records"].as_array_mut().expect("Records");
                records.remove(0);
                let content = serde_json::to_vec(&doc).expect("serialises");
                let packed = gzip(&content);
                std::fs::write(&path, &packed).map_err(io(&path))?;
                if let Some(f) = files.iter_mut().find(|f| f.key == key) {
                    f.records -= 1;
                    f.size = packed.len() as u64;
                    f.sha256 = hex::encode(Sha256::digest(&packed));
                    f.content_sha256 = hex::encode(Sha256::digest(&content));
                }
                Ok(vec![key])
            }
            Tamper::LogDeleted => {
                let d = with_logs(slot);
                let key = chain[d].logs.last().expect("with logs").clone();
                let path = self.out.join(&key);
                std::fs::remove_file(&path).map_err(io(&path))?;
                files.retain(|f| f.key != key);
                Ok(vec![key])
            }
            Tamper::LogInjected => {
                let d = &chain[slot];
                let mut parsed = TrailKey::parse(&d.key).expect("our digest key");
                parsed.kind = ObjectKind::Log;
                parsed.time = d.start + 20 * 60_000;
                parsed.trail_name = None;
                parsed.home_region = None;
                let mut rng = self.rng.fork(slot as u64);
                parsed.unique = Some(rng.alnum(16));
                let key = parsed.to_key();
                let when = format_millis(parsed.time - 60_000);
                let record = serde_json::json!({
                    "eventVersion": "1.08",
                    "userIdentity": {"type": "IAMUser", "principalId": "AIDAFORGEDFORGED0001", "arn": format!("arn:aws:iam::{}:user/auditor", parsed.account_id), "accountId": parsed.account_id, "userName": "auditor"},
                    "eventTime": when, "eventSource": "iam.amazonaws.com", "eventName": "ListUsers",
                    "awsRegion": parsed.region, "sourceIPAddress": "198.51.100.10", "userAgent": "aws-cli/2.15.0",
                    "requestParameters": null, "responseElements": null, "requestID": rng.uuid(), "eventID": rng.uuid(),
                    "readOnly": true, "eventType": "AwsApiCall", "managementEvent": true,
                    "recipientAccountId": parsed.account_id, "eventCategory": "Management"
                });
                let content = serde_json::to_vec(&serde_json::json!({"Records": [record]})).expect("serialises");
                let packed = gzip(&content);
                let path = self.out.join(&key);
                std::fs::write(&path, &packed).map_err(io(&path))?;
                files.push(ManifestFile {
                    key: key.clone(),
                    kind: "log",
                    account: parsed.account_id.clone(),
                    region: parsed.region.clone(),
                    records: 1,
                    size: packed.len() as u64,
                    sha256: hex::encode(Sha256::digest(&packed)),
                    content_sha256: hex::encode(Sha256::digest(&content)),
                    oldest_event_time: when.clone(),
                    newest_event_time: when,
                });
                files.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(vec![key])
            }
            Tamper::DigestForged => {
                let d = with_logs(slot);
                let mut body: serde_json::Value = serde_json::from_slice(&chain[d].inflated).expect("our digest");
                body["logFiles"].as_array_mut().expect("logFiles").remove(0);
                let inflated = serde_json::to_vec(&body).expect("serialises");
                self.rewrite(&chain[d].key, &inflated, None)?;
                Ok(vec![chain[d].key.clone()])
            }
            Tamper::DigestDeleted => {
                let key = chain[slot].key.clone();
                self.delete_digest(&key)?;
                Ok(vec![key])
            }
            Tamper::NewestDigestDeleted => {
                let newest = chain[chain.len() - 1].key.clone();
                self.delete_digest(&newest)?;
                Ok(vec![newest])
            }
            Tamper::DigestCorrupted => {
                let key = chain[slot].key.clone();
                let path = self.out.join(&key);
                let stored = std::fs::read(&path).map_err(io(&path))?;
                std::fs::write(&path, &stored[..stored.len() / 2]).map_err(io(&path))?;
                Ok(vec![key])
            }
            Tamper::DigestUnknownKey => {
                let rogue = DigestSigner::generate(self.rng.fork(999));
                let mut body: serde_json::Value = serde_json::from_slice(&chain[slot].inflated).expect("our digest");
                body["digestPublicKeyFingerprint"] = rogue.fingerprint.clone().into();
                let inflated = serde_json::to_vec(&body).expect("serialises");
                self.rewrite(&chain[slot].key, &inflated, Some(&rogue))?;
                Ok(vec![chain[slot].key.clone()])
            }
            Tamper::DigestMoved => {
                let from = chain[slot].key.clone();
                let mut parsed = TrailKey::parse(&from).expect("our digest key");
                parsed.time += 30 * 60_000;
                let to = parsed.to_key();
                for suffix in ["", ".metadata.json"] {
                    let (a, b) = (self.out.join(format!("{from}{suffix}")), self.out.join(format!("{to}{suffix}")));
                    std::fs::rename(&a, &b).map_err(io(&a))?;
                }
                Ok(vec![to])
            }
            Tamper::ChainBroken => {
                let mut body: serde_json::Value = serde_json::from_slice(&chain[slot].inflated).expect("our digest");
                body["previousDigestHashValue"] = hex::encode(Sha256::digest(b"a different previous digest")).into();
                let inflated = serde_json::to_vec(&body).expect("serialises");
                self.rewrite(&chain[slot].key, &inflated, Some(self.signer))?;
                Ok(vec![chain[slot].key.clone()])
            }
            Tamper::ValidationPaused | Tamper::DeliveryGap => unreachable!("shaped while writing"),
        }
    }

    /// Replaces a digest's body; re-signs with `signer`, or keeps the old signature.
    fn rewrite(&self, key: &str, inflated: &[u8], signer: Option<&DigestSigner>) -> Result<(), SimError> {
        let path = self.out.join(key);
        std::fs::write(&path, gzip(inflated)).map_err(|source| SimError::Io { path: path.clone(), source })?;
        if let Some(signer) = signer {
            let body: integrity_body::Min = serde_json::from_slice(inflated).expect("our digest");
            let to_sign = body.string_to_sign(&hex::encode(Sha256::digest(inflated)));
            write_metadata(self.out, key, &signer.sign(&to_sign))?;
        }
        Ok(())
    }

    fn delete_digest(&self, key: &str) -> Result<(), SimError> {
        for suffix in ["", ".metadata.json"] {
            let path = self.out.join(format!("{key}{suffix}"));
            std::fs::remove_file(&path).map_err(|source| SimError::Io { path: path.clone(), source })?;
        }
        Ok(())
    }
}

/// The fields of a digest body the string to sign needs.
mod integrity_body {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Min {
        pub digest_end_time: String,
        pub digest_s3_bucket: String,
        pub digest_s3_object: String,
        pub previous_digest_signature: Option<String>,
    }

    impl Min {
        /// CloudTrail's string to sign (see the integrity crate for the validator's side).
        pub fn string_to_sign(&self, inflated_sha256: &str) -> String {
            format!(
                "{}\n{}/{}\n{}\n{}",
                self.digest_end_time,
                self.digest_s3_bucket,
                self.digest_s3_object,
                inflated_sha256,
                self.previous_digest_signature.as_deref().unwrap_or("null")
            )
        }
    }
}

fn write_digest(out: &Path, key: &str, body: &Body, signer: &DigestSigner) -> Result<Written, SimError> {
    let inflated = serde_json::to_vec(body).expect("digest serialises");
    let min: integrity_body::Min = serde_json::from_slice(&inflated).expect("just written");
    let signature = signer.sign(&min.string_to_sign(&hex::encode(Sha256::digest(&inflated))));
    let path = out.join(key);
    let io = |source| SimError::Io { path: path.clone(), source };
    std::fs::create_dir_all(path.parent().expect("key has directories")).map_err(io)?;
    std::fs::write(&path, gzip(&inflated)).map_err(io)?;
    write_metadata(out, key, &signature)?;
    Ok(Written {
        key: key.to_string(),
        start: parse_rfc3339_millis(&body.digest_start_time).unwrap_or_default(),
        inflated,
        signature,
        logs: Vec::new(),
    })
}

/// The S3 user metadata CloudTrail sets, as the sidecar `KEY.metadata.json`.
fn write_metadata(out: &Path, key: &str, signature: &str) -> Result<(), SimError> {
    let path = out.join(format!("{key}.metadata.json"));
    let text = serde_json::to_vec(&serde_json::json!({"signature": signature, "signature-algorithm": "SHA256withRSA"}))
        .expect("serialises");
    std::fs::write(&path, text).map_err(|source| SimError::Io { path, source })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Our generator as the `rand_core` source RSA key generation asks for. Not a secure
/// generator: the key signs simulated digests only, and must be reproducible from the seed.
struct KeyRng(Rng);

impl rand_core::RngCore for KeyRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for KeyRng {}
