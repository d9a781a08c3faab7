//! The validation algorithm.
//!
//! What awscli's `validate-logs` checks, the same way: each digest's signature over the exact
//! string to sign, with the key its fingerprint names that was valid at the digest's end time;
//! that the digest lies where it says it lies; the chain through `previousDigestS3Object`; and
//! every listed log file's SHA-256. Beyond awscli: the link is checked in both directions
//! (`previousDigestSignature` *and* `previousDigestHashValue` must match the previous digest),
//! log files that no digest vouches for are reported, a region whose newest digests are gone
//! while the trail kept delivering is noticed, and hour-long holes in an intact chain and chain
//! restarts are reported for review.
//!
//! Chains are per trail per region: digests are grouped by (prefix, organization, account,
//! region, trail name, home region), all read from their file names.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use model::timefmt::format_millis;
use model::{EpochMillis, ObjectKind, TrailKey};
use serde::Serialize;

use crate::digest::{inflated_sha256, Digest, SignatureMetadata, SIGNATURE_ALGORITHM};
use crate::keys::{KeyProblem, PublicKeys};
use crate::source::{FetchError, Inventory, Listed, ObjectReader};
use crate::{Finding, FindingKind};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// Slack at the edges of a digest's period: a log key carries its delivery minute, and S3
/// may receive the object some seconds after the digest period it belongs to closed.
const EDGE: i64 = 2 * MINUTE;
/// Digests come hourly; consecutive digests further apart than this leave an hour undigested.
const DIGEST_CADENCE_LIMIT: i64 = HOUR + 30 * MINUTE;

#[derive(Debug, Clone)]
pub struct Options {
    /// Validate digests ending at or after this time and logs delivered at or after it.
    pub start: Option<EpochMillis>,
    /// … and up to this time. `None`: now (as `aws cloudtrail validate-logs`).
    pub end: Option<EpochMillis>,
    /// How long after its delivery a log may still wait for the digest that lists it.
    pub pending: i64,
    /// Threads reading and hashing objects.
    pub workers: usize,
    /// The digests are a local copy made with decompression on: plain JSON digests are read
    /// (otherwise they are `DIGEST_UNREADABLE`: CloudTrail writes them gzip'd).
    pub decompressed_copy: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            start: None,
            end: None,
            pending: 90 * MINUTE,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2),
            decompressed_copy: false,
        }
    }
}

/// The outcome of one validation run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
    pub digests: usize,
    pub logs: usize,
    /// Bytes of log objects read (as stored).
    pub log_bytes: u64,
    pub chains: Vec<ChainSummary>,
}

impl Report {
    /// Valid unless a finding other than a warning (chain restart, delivery gap) was made.
    pub fn valid(&self) -> bool {
        self.findings.iter().all(|f| f.kind.is_warning())
    }
}

/// One trail's chain in one region, as this run saw it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainSummary {
    pub account: String,
    pub region: String,
    pub trail: String,
    pub digests: usize,
    /// The newest digest present and its end time.
    pub newest_key: Option<String>,
    pub newest_end: Option<EpochMillis>,
    /// Newest log delivery seen in the region (from its key).
    pub newest_log: Option<EpochMillis>,
}

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("reading {key}: {message}")]
    Read { key: String, message: String },
    #[error("listing {}: {source}", dir.display())]
    List {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Validates a local copy of a trail's bucket (object keys are paths below `dir`).
pub fn validate_local(dir: &std::path::Path, keys: &PublicKeys, options: &Options) -> Result<Report, ValidateError> {
    let local = crate::LocalDir::new(dir);
    let inventory = local.inventory().map_err(|source| ValidateError::List { dir: dir.to_path_buf(), source })?;
    validate(&local, &inventory, keys, options)
}

/// (prefix, organization, account, region): where a region's logs and digests live.
type RegionId = (String, Option<String>, String, String);
/// A chain: the region plus (trail name, home region).
type ChainId = (RegionId, String, String);
/// A trail: (prefix, organization, account unless an organization trail, name, home region).
type TrailId = (String, Option<String>, Option<String>, String, String);

fn region_of(k: &TrailKey) -> RegionId {
    (k.prefix.clone(), k.org_id.clone(), k.account_id.clone(), k.region.clone())
}

/// A digest as fetched: where it lies, what it is (or why it could not be read), and its
/// signature metadata.
struct Fetched {
    listed: Listed,
    digest: Result<Digest, String>,
    metadata: SignatureMetadata,
}

pub fn validate(
    reader: &dyn ObjectReader,
    inventory: &Inventory,
    keys: &PublicKeys,
    options: &Options,
) -> Result<Report, ValidateError> {
    // As awscli: up to now unless told otherwise. A digest "could still arrive" only until
    // `pending` after a log's delivery, measured against this end.
    let end = options.end.unwrap_or_else(model::timefmt::now_millis);
    let start = options.start.unwrap_or(EpochMillis::MIN);
    let bucket = reader.bucket().unwrap_or("");
    let mut findings = Vec::new();
    let mut report = Report::default();

    // Digests of the window, by chain, oldest first. Like awscli, digests up to an hour past
    // the end are read: they list the logs delivered in the window's last hour.
    let mut chains: BTreeMap<ChainId, Vec<&Listed>> = BTreeMap::new();
    let mut logs_by_region: BTreeMap<RegionId, Vec<&Listed>> = BTreeMap::new();
    for o in &inventory.objects {
        match o.parsed.kind {
            ObjectKind::Digest if o.parsed.time >= start && o.parsed.time <= end + HOUR => {
                let trail = o.parsed.trail_name.clone().unwrap_or_default();
                let home = o.parsed.home_region.clone().unwrap_or_default();
                chains.entry((region_of(&o.parsed), trail, home)).or_default().push(o);
            }
            ObjectKind::Log if o.parsed.time >= start && o.parsed.time <= end => {
                logs_by_region.entry(region_of(&o.parsed)).or_default().push(o);
            }
            _ => {}
        }
    }
    for digests in chains.values_mut() {
        digests.sort_by(|a, b| a.parsed.time.cmp(&b.parsed.time).then_with(|| a.key.cmp(&b.key)));
    }

    // Read every digest of the window (in parallel: S3 round trips dominate there).
    let all: Vec<&Listed> = chains.values().flatten().copied().collect();
    let fetched = parallel_map(&all, options.workers, |listed| -> Result<Fetched, ValidateError> {
        match reader.get_digest(bucket, &listed.key) {
            Ok((bytes, metadata)) => Ok(Fetched {
                listed: (*listed).clone(),
                digest: if options.decompressed_copy {
                    Digest::parse_decompressed_copy(&bytes)
                } else {
                    Digest::parse(&bytes)
                }
                .map_err(|e| e.to_string()),
                metadata,
            }),
            // Listed a moment ago, gone now: deleted while we looked.
            Err(FetchError::NotFound) => Ok(Fetched {
                listed: (*listed).clone(),
                digest: Err("deleted while being validated".into()),
                metadata: SignatureMetadata::default(),
            }),
            Err(FetchError::Other(message)) => Err(ValidateError::Read { key: listed.key.clone(), message }),
        }
    });
    let mut by_key: HashMap<String, Fetched> = HashMap::with_capacity(fetched.len());
    for f in fetched {
        let f = f?;
        by_key.insert(f.listed.key.clone(), f);
    }
    report.digests = by_key.len();

    // Undigested stretches between chains (validation or logging was off), per region.
    let mut restart_gaps: BTreeMap<RegionId, Vec<(EpochMillis, EpochMillis, String)>> = BTreeMap::new();
    // Periods whose digest is gone or unreadable, per region: (from, to, why). Their logs are
    // unverifiable, and their findings say so rather than suggest the logs were added.
    let mut lost_periods: BTreeMap<RegionId, Vec<(EpochMillis, EpochMillis, String)>> = BTreeMap::new();
    // The signature a successor vouches for, for digests whose own metadata is missing.
    let mut vouched: HashMap<String, String> = HashMap::new();
    // Chain-walk findings.
    for (chain_id, digests) in &chains {
        let position: HashMap<&str, usize> = digests.iter().enumerate().map(|(i, d)| (d.key.as_str(), i)).collect();
        let mut linked = vec![false; digests.len()];
        for (i, listed) in digests.iter().enumerate() {
            let Ok(b) = &by_key[&listed.key].digest else { continue };
            let Some(prev_key) =
                b.body.previous_digest_s3_object.as_deref().filter(|_| b.body.previous_digest_signature.is_some())
            else {
                // The start of a chain. With an older digest before it, logging or validation
                // was stopped and started again.
                if i > 0 {
                    let older = &by_key[&digests[i - 1].key];
                    let older_end = end_of(older);
                    findings.push(Finding::new(
                        FindingKind::ChainRestart,
                        &listed.key,
                        format!(
                            "the chain starts again at {} after the digest {} ending {}: logging or log file validation was stopped for {}",
                            b.body.digest_start_time,
                            digests[i - 1].key,
                            format_millis(older_end),
                            human_duration(b.start - older_end)
                        ),
                    ));
                    restart_gaps.entry(chain_id.0.clone()).or_default().push((older_end, b.start, listed.key.clone()));
                }
                continue;
            };
            if let Some(sig) = &b.body.previous_digest_signature {
                vouched.insert(prev_key.to_string(), sig.clone());
            }
            // The previous digest may lie in another chain's place (moved there): it is
            // still the one to compare with.
            match by_key.get(prev_key) {
                Some(a) => {
                    if let Some(&j) = position.get(prev_key) {
                        linked[j] = true;
                    }
                    let intact = check_link(&mut findings, &listed.key, b, a, reader.bucket());
                    // A gap is about delivery in an intact chain; a broken link is its own
                    // finding (a digest replaced by a copy of another looks like a gap too).
                    if let (true, Ok(a_digest)) = (intact, &a.digest) {
                        if b.end - a_digest.end > DIGEST_CADENCE_LIMIT {
                            findings.push(Finding::new(
                                FindingKind::DeliveryGap,
                                &listed.key,
                                format!(
                                    "no digest for {} between {} and {} although the chain is intact",
                                    human_duration(b.end - a_digest.end - HOUR),
                                    format_millis(a_digest.end),
                                    b.body.digest_end_time
                                ),
                            ));
                        }
                    }
                }
                None => {
                    let prev_time = TrailKey::parse(prev_key).map(|k| k.time).ok();
                    // Outside the window (or expired by the bucket's lifecycle): not ours to judge.
                    if prev_time.is_some_and(|t| t < start) {
                        continue;
                    }
                    findings.push(Finding::new(
                        FindingKind::DigestMissing,
                        prev_key,
                        format!("the previous digest of {} is not in the bucket (deleted?)", listed.key),
                    ));
                    let from = i.checked_sub(1).map(|j| end_of(&by_key[&digests[j].key])).unwrap_or(b.start - HOUR);
                    lost_periods.entry(chain_id.0.clone()).or_default().push((
                        from,
                        b.start,
                        format!("the digest that lists it ({prev_key}) was deleted"),
                    ));
                }
            }
        }
        // A digest nobody links to while a newer digest of the chain links past it.
        for (i, listed) in digests.iter().enumerate() {
            if linked[i] || i + 1 == digests.len() {
                continue;
            }
            // A digest that is not where it says it was written is reported as moved; that
            // no chain links to its new place follows from the move.
            if by_key[&listed.key].digest.as_ref().is_ok_and(|d| d.body.digest_s3_object != listed.key) {
                continue;
            }
            let Ok(next) = &by_key[&digests[i + 1].key].digest else { continue };
            // Linking to a deleted digest is DIGEST_MISSING; linking past this one to an
            // older digest that is present leaves this one outside the chain.
            let past =
                next.body.previous_digest_s3_object.as_deref().filter(|p| position.get(p).is_some_and(|&j| j < i));
            if let Some(points_to) = past {
                findings.push(Finding::new(
                    FindingKind::ChainBroken,
                    &listed.key,
                    format!(
                        "no digest of the chain links to this one: the next digest {} links to {points_to}",
                        digests[i + 1].key
                    ),
                ));
            }
        }
    }

    // Each digest on its own: readable, where it says it is, signed by a known key. The log
    // hashes of a digest whose signature fails are not evidence (as for awscli): its logs
    // count as listed, but are not judged by them.
    let mut untrusted: HashSet<&str> = HashSet::new();
    for (chain_id, digests) in &chains {
        for listed in digests {
            let f = &by_key[&listed.key];
            let d = match &f.digest {
                Ok(d) => d,
                Err(reason) => {
                    findings.push(Finding::new(FindingKind::DigestUnreadable, &listed.key, reason.clone()));
                    lost_periods.entry(chain_id.0.clone()).or_default().push((
                        listed.parsed.time - HOUR,
                        listed.parsed.time,
                        format!("the digest that lists it ({}) is unreadable", listed.key),
                    ));
                    continue;
                }
            };
            check_location(&mut findings, &listed.key, d, reader.bucket());
            if !check_signature(
                &mut findings,
                &listed.key,
                d,
                &f.metadata,
                vouched.get(&listed.key),
                keys,
                &chain_id.0 .3,
            ) {
                untrusted.insert(listed.key.as_str());
            }
        }
    }

    // How long each trail kept delivering (logs, or digests in any region), for the
    // newest-digest check below.
    let mut trail_newest: HashMap<TrailId, EpochMillis> = HashMap::new();
    let trail_of = |c: &ChainId| -> TrailId {
        let ((prefix, org, account, _), trail, home) = c;
        (prefix.clone(), org.clone(), org.is_none().then(|| account.clone()), trail.clone(), home.clone())
    };
    let newest_logs: HashMap<&RegionId, EpochMillis> = logs_by_region
        .iter()
        .filter_map(|(region, logs)| Some((region, logs.iter().map(|o| o.parsed.time).max()?)))
        .collect();
    let newest_log = |region: &RegionId| newest_logs.get(region).copied();
    for (chain_id, digests) in &chains {
        let newest_digest = digests.last().map(|d| d.parsed.time).unwrap_or(EpochMillis::MIN);
        let newest = newest_digest.max(newest_log(&chain_id.0).unwrap_or(EpochMillis::MIN));
        let entry = trail_newest.entry(trail_of(chain_id)).or_insert(newest);
        *entry = (*entry).max(newest);
    }
    let mut chain_newest_end: HashMap<&RegionId, EpochMillis> = HashMap::new();
    let mut newest_ends: HashMap<&ChainId, EpochMillis> = HashMap::new();
    for (chain_id, digests) in &chains {
        let Some(newest) = digests.last() else { continue };
        let newest_end = end_of(&by_key[&newest.key]);
        newest_ends.insert(chain_id, newest_end);
        let region_end = chain_newest_end.entry(&chain_id.0).or_insert(newest_end);
        *region_end = (*region_end).max(newest_end);
        report.chains.push(ChainSummary {
            account: chain_id.0 .2.clone(),
            region: chain_id.0 .3.clone(),
            trail: chain_id.1.clone(),
            digests: digests.len(),
            newest_key: Some(newest.key.clone()),
            newest_end: Some(newest_end),
            newest_log: newest_log(&chain_id.0),
        });
    }

    // Every log file a readable digest lists: present, and unchanged.
    let mut listed_logs: HashSet<&str> = HashSet::new();
    let mut to_hash: BTreeMap<&str, (&str, &str, &str)> = BTreeMap::new();
    for f in by_key.values() {
        let Ok(d) = &f.digest else { continue };
        for log in &d.body.log_files {
            listed_logs.insert(log.s3_object.as_str());
            if untrusted.contains(f.listed.key.as_str()) {
                continue;
            }
            to_hash.insert(
                log.s3_object.as_str(),
                (log.s3_bucket.as_str(), log.hash_value.as_str(), f.listed.key.as_str()),
            );
        }
    }
    let work: Vec<(&str, (&str, &str, &str))> = to_hash.into_iter().collect();
    let bytes_read = AtomicUsize::new(0);
    let outcomes = parallel_map(&work, options.workers, |(key, (log_bucket, expected, digest_key))| {
        let log_bucket = if reader.bucket().is_some() { log_bucket } else { bucket };
        match reader.get(log_bucket, key) {
            Err(FetchError::NotFound) => Ok(Some(Finding::new(
                FindingKind::LogMissing,
                key,
                format!("listed in {digest_key} but not in the bucket (deleted)"),
            ))),
            Err(FetchError::Other(message)) => Err(ValidateError::Read { key: key.to_string(), message }),
            Ok(bytes) => {
                bytes_read.fetch_add(bytes.len(), Ordering::Relaxed);
                Ok(match inflated_sha256(&bytes) {
                    Err(e) => Some(Finding::new(
                        FindingKind::LogModified,
                        key,
                        format!("cannot be inflated ({e}); {digest_key} lists SHA-256 {expected}"),
                    )),
                    Ok(actual) if !actual.eq_ignore_ascii_case(expected) => Some(Finding::new(
                        FindingKind::LogModified,
                        key,
                        format!("SHA-256 of its content is {actual}; {digest_key} lists {expected}"),
                    )),
                    Ok(_) => None,
                })
            }
        }
    });
    for outcome in outcomes {
        findings.extend(outcome?);
    }
    report.logs = work.len();
    report.log_bytes = bytes_read.into_inner() as u64;

    // Log files no digest vouches for. A log delivered after the newest digest whose digest
    // is overdue (newest such delivery per region) means that digest was deleted.
    let mut overdue_logs: HashMap<RegionId, EpochMillis> = HashMap::new();
    // Logs delivered while a chain was stopped, per restarting digest.
    let mut undigested_in_gap: BTreeMap<&str, usize> = BTreeMap::new();
    for (region, logs) in &logs_by_region {
        let Some(&newest_end) = chain_newest_end.get(region) else {
            region_without_digests(&mut findings, region, logs, &chains, end, options.pending);
            continue;
        };
        let oldest_start = chains
            .iter()
            .filter(|(c, _)| &c.0 == region)
            .filter_map(|(_, d)| d.first())
            .map(|d| start_of(&by_key[&d.key]))
            .min()
            .unwrap_or(newest_end);
        let gaps = restart_gaps.get(region).map(Vec::as_slice).unwrap_or(&[]);
        for log in logs {
            let t = log.parsed.time;
            if listed_logs.contains(log.key.as_str()) || t < oldest_start + EDGE {
                continue;
            }
            if let Some((_, _, restart)) = gaps.iter().find(|(from, to, _)| t + EDGE > *from && t < *to + EDGE) {
                *undigested_in_gap.entry(restart.as_str()).or_default() += 1;
                continue;
            }
            if t + EDGE > newest_end {
                if end - t <= options.pending {
                    continue; // its digest may still come
                }
                let overdue = overdue_logs.entry(region.clone()).or_insert(t);
                *overdue = (*overdue).max(t);
                findings.push(Finding::new(
                    FindingKind::UnlistedLog,
                    &log.key,
                    format!(
                        "delivered after the newest digest (ending {}) and no digest lists it",
                        format_millis(newest_end)
                    ),
                ));
                continue;
            }
            let lost = lost_periods
                .get(region)
                .and_then(|p| p.iter().find(|(from, to, _)| t + EDGE > *from && t < *to + EDGE));
            findings.push(Finding::new(
                FindingKind::UnlistedLog,
                &log.key,
                match lost {
                    Some((_, _, why)) => format!("no digest vouches for it: {why}"),
                    None => "in a period the digests cover, but no digest lists it (added to the bucket?)".to_string(),
                },
            ));
        }
    }
    for f in findings.iter_mut().filter(|f| f.kind == FindingKind::ChainRestart) {
        if let Some(n) = undigested_in_gap.get(f.key.as_str()) {
            f.detail.push_str(&format!("; {n} log files delivered meanwhile are covered by no digest"));
        }
    }

    // Newest digests deleted: the trail delivered (logs, or digests in its other regions)
    // well past this chain's newest digest, or a log after it waited past the pending window.
    for (chain_id, digests) in &chains {
        let (Some(newest), Some(&newest_end)) = (digests.last(), newest_ends.get(chain_id)) else { continue };
        let delivered_until = trail_newest[&trail_of(chain_id)].min(end);
        let overdue = overdue_logs.get(&chain_id.0).is_some_and(|&t| t + EDGE > newest_end);
        if delivered_until - newest_end > options.pending || overdue {
            let mut expected = newest.parsed.clone();
            expected.time = newest_end + HOUR;
            findings.push(Finding::new(
                FindingKind::DigestMissing,
                &expected.to_key(),
                format!(
                    "no digest after {} in {} although the trail delivered until {}: the newest digest was deleted (they come hourly; the next one was due about {})",
                    format_millis(newest_end),
                    chain_id.0 .3,
                    format_millis(delivered_until),
                    format_millis(expected.time)
                ),
            ));
        }
    }

    let mut seen = BTreeSet::new();
    findings.retain(|f| seen.insert((f.key.clone(), f.kind, f.detail.clone())));
    findings.sort_by(|a, b| a.key.cmp(&b.key).then(a.kind.cmp(&b.kind)));
    report.findings = findings;
    Ok(report)
}

/// Logs of a region that has no digest at all in the window while the account's trail
/// digests other regions: every region of a trail is digested, so this region's digests were
/// deleted (or its logs are not the trail's). Logs still within `pending` are left alone.
fn region_without_digests(
    findings: &mut Vec<Finding>,
    region: &RegionId,
    logs: &[&Listed],
    chains: &BTreeMap<ChainId, Vec<&Listed>>,
    end: EpochMillis,
    pending: i64,
) {
    let (prefix, org, account, _) = region;
    let sibling = chains
        .iter()
        .filter(|(c, d)| (&c.0 .0, &c.0 .1, &c.0 .2) == (prefix, org, account) && !d.is_empty())
        .max_by_key(|(_, d)| d.len());
    let Some(((_, trail, home), digests)) = sibling else { return };
    let overdue: Vec<&&Listed> = logs.iter().filter(|l| end - l.parsed.time > pending).collect();
    let Some(first) = overdue.first() else { return };
    for log in &overdue {
        findings.push(Finding::new(
            FindingKind::UnlistedLog,
            &log.key,
            format!("no digest of {} exists although trail {trail} digests its other regions", region.3),
        ));
    }
    let mut expected = digests[0].parsed.clone();
    expected.region = region.3.clone();
    expected.time = (first.parsed.time / HOUR + 1) * HOUR;
    findings.push(Finding::new(
        FindingKind::DigestMissing,
        &expected.to_key(),
        format!(
            "{} has {} log files from {} on but no digest of trail {trail} (home {home}), which digests the account's other regions: its digests were deleted",
            region.3,
            overdue.len(),
            format_millis(first.parsed.time)
        ),
    ));
}

/// A digest's start time: from its body, else an hour before its key's time.
fn start_of(f: &Fetched) -> EpochMillis {
    f.digest.as_ref().map(|d| d.start).unwrap_or(f.listed.parsed.time - HOUR)
}

/// A digest's end time: from its body, else from its key.
fn end_of(f: &Fetched) -> EpochMillis {
    f.digest.as_ref().map(|d| d.end).unwrap_or(f.listed.parsed.time)
}

/// B links to A: A's signature and A's hash must be what B recorded.
/// Checks the link from digest `b` to its previous digest `a`; false (and a `CHAIN_BROKEN`
/// finding) when it is broken.
fn check_link(findings: &mut Vec<Finding>, b_key: &str, b: &Digest, a: &Fetched, bucket: Option<&str>) -> bool {
    let mut problems = Vec::new();
    if let (Some(bucket), Some(prev_bucket)) = (bucket, b.body.previous_digest_s3_bucket.as_deref()) {
        if prev_bucket != bucket {
            problems.push(format!("previousDigestS3Bucket is {prev_bucket}, not {bucket}"));
        }
    }
    // An unreadable previous digest is reported as such; its hash cannot be compared.
    if let Ok(a_digest) = &a.digest {
        match b.body.previous_digest_hash_value.as_deref() {
            Some(h) if h.eq_ignore_ascii_case(&a_digest.sha256) => {}
            Some(h) => problems
                .push(format!("previousDigestHashValue is {h} but the previous digest hashes to {}", a_digest.sha256)),
            None => problems.push("previousDigestHashValue is missing".into()),
        }
    }
    if let (Some(recorded), Some(actual)) =
        (b.body.previous_digest_signature.as_deref(), a.metadata.signature.as_deref())
    {
        if !recorded.trim().eq_ignore_ascii_case(actual.trim()) {
            problems.push("previousDigestSignature differs from the previous digest's signature".into());
        }
    }
    if problems.is_empty() {
        return true;
    }
    findings.push(Finding::new(
        FindingKind::ChainBroken,
        b_key,
        format!("link to {} broken: {}", a.listed.key, problems.join("; ")),
    ));
    false
}

fn check_location(findings: &mut Vec<Finding>, key: &str, d: &Digest, bucket: Option<&str>) {
    let moved_key = d.body.digest_s3_object != key;
    let moved_bucket = bucket.is_some_and(|b| b != d.body.digest_s3_bucket);
    if moved_key || moved_bucket {
        findings.push(Finding::new(
            FindingKind::DigestMoved,
            key,
            format!("the digest says it was written to s3://{}/{}", d.body.digest_s3_bucket, d.body.digest_s3_object),
        ));
    }
}

fn check_signature(
    findings: &mut Vec<Finding>,
    key: &str,
    d: &Digest,
    metadata: &SignatureMetadata,
    vouched: Option<&String>,
    keys: &PublicKeys,
    region: &str,
) -> bool {
    let algorithm =
        metadata.algorithm.as_deref().or(d.body.digest_signature_algorithm.as_deref()).unwrap_or(SIGNATURE_ALGORITHM);
    if algorithm != SIGNATURE_ALGORITHM {
        findings.push(Finding::new(
            FindingKind::DigestInvalidSignature,
            key,
            format!("unsupported signature algorithm {algorithm:?}"),
        ));
        return false;
    }
    // S3 metadata first; a digest whose metadata was stripped can still be checked against
    // the signature its successor recorded.
    let Some(signature) = metadata.signature.as_ref().or(vouched) else {
        findings.push(Finding::new(
            FindingKind::DigestInvalidSignature,
            key,
            "no signature: the object has no signature metadata and no later digest records one".into(),
        ));
        return false;
    };
    let fingerprint = &d.body.digest_public_key_fingerprint;
    let public_key = match keys.select(fingerprint, d.end) {
        Ok(k) => k,
        Err(problem) => {
            let detail = match problem {
                KeyProblem::Unknown => format!("no public key with fingerprint {fingerprint} for {region}"),
                KeyProblem::NotValidAt { from, until } => format!(
                    "public key {fingerprint} was valid {} to {}, not at {}",
                    from.map(format_millis).unwrap_or_else(|| "-".into()),
                    until.map(format_millis).unwrap_or_else(|| "-".into()),
                    d.body.digest_end_time
                ),
                KeyProblem::Undecodable => format!("public key {fingerprint} is not a PKCS#1 RSA public key"),
            };
            findings.push(Finding::new(FindingKind::UnknownKey, key, detail));
            return false;
        }
    };
    if !d.verify(public_key, signature) {
        findings.push(Finding::new(
            FindingKind::DigestInvalidSignature,
            key,
            format!("SHA256withRSA signature does not verify with key {fingerprint}: the digest was altered"),
        ));
        return false;
    }
    true
}

fn human_duration(ms: i64) -> String {
    let minutes = ms.max(0) / MINUTE;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// `f` over `items` on `workers` threads, results in input order.
fn parallel_map<T: Sync, R: Send>(items: &[T], workers: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                results.lock().expect("no panics while held").push((i, r));
            });
        }
    });
    let mut results = results.into_inner().expect("no panics while held");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
