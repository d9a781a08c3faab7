//! Integrity validation against S3: the digests and logs of a trail's bucket, read through
//! the account's role, and CloudTrail's public keys from `ListPublicKeys`.
//!
//! The validator (crate `integrity`) is synchronous and reads from worker threads; the
//! [`S3Reader`] bridges to the SDK with the runtime's handle, so it must be used from outside
//! the runtime's own threads (`spawn_blocking` or a plain thread).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use aws_config::Region;
use aws_sdk_s3::error::DisplayErrorContext;
use integrity::digest::SignatureMetadata;
use integrity::keys::PublicKey;
use integrity::{FetchError as ReadError, Inventory, ObjectReader, PublicKeys};
use model::timefmt::civil;
use model::EpochMillis;
use tokio::runtime::Handle;

use crate::account::AccountClients;
use crate::fetch::{get_with_metadata, list_all, list_error, FetchError};

/// Where a trail writes: bucket, key prefix, organization (for organization trails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailLocation {
    pub name: String,
    pub home_region: String,
    pub account_id: String,
    pub bucket: String,
    pub prefix: Option<String>,
    pub organization_trail: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("{0:?} is not a trail ARN (arn:aws:cloudtrail:<region>:<account>:trail/<name>)")]
    BadArn(String),
    #[error("cloudtrail:{call} failed: {detail}")]
    CloudTrail { call: &'static str, detail: String },
    #[error(transparent)]
    List(#[from] crate::fetch::ListError),
    #[error(transparent)]
    Validate(#[from] integrity::ValidateError),
}

/// (region, account, name) of `arn:<partition>:cloudtrail:<region>:<account>:trail/<name>`.
pub fn parse_trail_arn(arn: &str) -> Result<(String, String, String), IntegrityError> {
    let bad = || IntegrityError::BadArn(arn.to_string());
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "cloudtrail" {
        return Err(bad());
    }
    let name = parts[5].strip_prefix("trail/").filter(|n| !n.is_empty()).ok_or_else(bad)?;
    if !model::key::is_region(parts[3]) || !model::key::is_account_id(parts[4]) {
        return Err(bad());
    }
    Ok((parts[3].to_string(), parts[4].to_string(), name.to_string()))
}

/// Looks the trail up (GetTrail in its home region) for its bucket and prefix.
pub async fn locate_trail(clients: &AccountClients, arn: &str) -> Result<TrailLocation, IntegrityError> {
    let (region, account, name) = parse_trail_arn(arn)?;
    let cloudtrail = cloudtrail_in(clients, &region);
    let out =
        cloudtrail.get_trail().name(arn).send().await.map_err(|e| IntegrityError::CloudTrail {
            call: "GetTrail",
            detail: DisplayErrorContext(&e).to_string(),
        })?;
    let trail =
        out.trail().ok_or(IntegrityError::CloudTrail { call: "GetTrail", detail: "no trail in the answer".into() })?;
    Ok(TrailLocation {
        name,
        home_region: trail.home_region().unwrap_or(&region).to_string(),
        account_id: account,
        bucket: trail
            .s3_bucket_name()
            .ok_or(IntegrityError::CloudTrail { call: "GetTrail", detail: "the trail has no S3 bucket".into() })?
            .to_string(),
        prefix: trail.s3_key_prefix().map(str::to_string).filter(|p| !p.is_empty()),
        organization_trail: trail.is_organization_trail().unwrap_or(false),
    })
}

pub(crate) fn cloudtrail_in(clients: &AccountClients, region: &str) -> aws_sdk_cloudtrail::Client {
    let config =
        aws_sdk_cloudtrail::config::Builder::from(&clients.config).region(Region::new(region.to_string())).build();
    aws_sdk_cloudtrail::Client::from_conf(config)
}

/// CloudTrail's public keys valid in the window, from every region given (CloudTrail signs
/// with a key pair per region).
pub async fn public_keys(
    clients: &AccountClients,
    regions: &[String],
    start: EpochMillis,
    end: EpochMillis,
) -> Result<PublicKeys, IntegrityError> {
    let mut keys = Vec::new();
    for region in regions {
        let cloudtrail = cloudtrail_in(clients, region);
        let mut token: Option<String> = None;
        loop {
            let out = cloudtrail
                .list_public_keys()
                .start_time(aws_smithy_types::DateTime::from_millis(start))
                .end_time(aws_smithy_types::DateTime::from_millis(end))
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| IntegrityError::CloudTrail {
                    call: "ListPublicKeys",
                    detail: DisplayErrorContext(&e).to_string(),
                })?;
            for k in out.public_key_list() {
                let millis = |t: Option<&aws_smithy_types::DateTime>| t.and_then(|t| t.to_millis().ok());
                keys.push(PublicKey {
                    fingerprint: k.fingerprint().unwrap_or_default().to_string(),
                    key: k.value().and_then(|v| integrity::digest::public_key_from_der(v.as_ref())),
                    valid_from: millis(k.validity_start_time()),
                    valid_until: millis(k.validity_end_time()),
                });
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
    }
    Ok(PublicKeys::new(keys))
}

/// The trail's log and digest keys for the window: per account (an organization trail's
/// members are found by listing), kind and region, one ranged listing from the day before
/// `start` through the day after `end` (digests of the window's last hour come after it).
/// Also returns the regions found (ListPublicKeys is asked in each).
pub async fn inventory(
    clients: &AccountClients,
    trail: &TrailLocation,
    start: EpochMillis,
    end: EpochMillis,
) -> Result<(Inventory, Vec<String>), IntegrityError> {
    let s3 = &clients.s3;
    let bucket = &trail.bucket;
    let root = match &trail.prefix {
        Some(p) => format!("{}/AWSLogs/", p.trim_end_matches('/')),
        None => "AWSLogs/".to_string(),
    };
    let mut account_roots = Vec::new();
    if trail.organization_trail {
        for org in list_all(s3, bucket, &root, true).await?.1.into_iter().filter(|p| p[root.len()..].starts_with("o-"))
        {
            account_roots.extend(list_all(s3, bucket, &org, true).await?.1);
        }
    }
    account_roots.push(format!("{root}{}/", trail.account_id));

    let mut inventory = Inventory::default();
    let mut regions = Vec::new();
    const DAY: i64 = 86_400_000;
    for account_root in account_roots {
        for kind in ["CloudTrail", "CloudTrail-Digest"] {
            let kind_root = format!("{account_root}{kind}/");
            for region_root in list_all(s3, bucket, &kind_root, true).await?.1 {
                let region = region_root[kind_root.len()..].trim_end_matches('/').to_string();
                if !regions.contains(&region) {
                    regions.push(region.clone());
                }
                // Keys sort by their date directories: one listing from the day before the
                // window to the day after it, however long the window.
                let day_dir = |t: EpochMillis| {
                    civil(t).map(|(y, m, d, ..)| format!("{region_root}{y:04}/{m:02}/{d:02}/")).unwrap_or_default()
                };
                let first = day_dir(start.saturating_sub(DAY));
                let after_last = day_dir(end.saturating_add(2 * DAY));
                for (key, size) in list_range(s3, bucket, &region_root, &first, &after_last).await? {
                    inventory.push(key, size);
                }
            }
        }
    }
    inventory.objects.sort_by(|a, b| a.key.cmp(&b.key));
    regions.sort();
    Ok((inventory, regions))
}

/// Keys (with sizes) under `prefix` from `from` (inclusive) up to `until` (exclusive), in
/// key order; the listing starts after `from`'s predecessor and stops at `until`.
async fn list_range(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    from: &str,
    until: &str,
) -> Result<Vec<(String, u64)>, IntegrityError> {
    let mut out = Vec::new();
    // StartAfter is exclusive; the day directory itself (ending in '/') is never a log key.
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).start_after(from).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| list_error(bucket, prefix, e))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if key >= until {
                return Ok(out);
            }
            out.push((key.to_string(), o.size().unwrap_or(0).max(0) as u64));
        }
    }
    Ok(out)
}

/// Reads objects from S3 for the validator's worker threads.
pub struct S3Reader {
    s3: aws_sdk_s3::Client,
    bucket: String,
    handle: Handle,
    cancel: Option<Arc<AtomicBool>>,
}

impl S3Reader {
    pub fn new(clients: &AccountClients, bucket: &str, handle: Handle) -> S3Reader {
        S3Reader { s3: clients.s3.clone(), bucket: bucket.to_string(), handle, cancel: None }
    }

    /// Reads fail at once after `cancel` is set (shutdown).
    pub fn cancelled_by(self, cancel: Arc<AtomicBool>) -> S3Reader {
        S3Reader { cancel: Some(cancel), ..self }
    }

    fn check(&self) -> Result<(), ReadError> {
        match &self.cancel {
            Some(c) if c.load(Ordering::Relaxed) => Err(ReadError::Other("stopped".into())),
            _ => Ok(()),
        }
    }

    /// GET, with the user metadata CloudTrail sets on digests.
    fn fetch(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, SignatureMetadata), ReadError> {
        self.check()?;
        let (bytes, mut metadata) =
            self.handle.block_on(get_with_metadata(&self.s3, bucket, key)).map_err(read_error)?;
        let signature = SignatureMetadata {
            signature: metadata.remove("signature"),
            algorithm: metadata.remove("signature-algorithm"),
        };
        Ok((bytes, signature))
    }
}

fn read_error(e: FetchError) -> ReadError {
    match e {
        FetchError::Missing { .. } => ReadError::NotFound,
        other => ReadError::Other(other.to_string()),
    }
}

impl ObjectReader for S3Reader {
    fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, ReadError> {
        self.fetch(bucket, key).map(|(bytes, _)| bytes)
    }

    fn get_digest(&self, bucket: &str, key: &str) -> Result<(Vec<u8>, SignatureMetadata), ReadError> {
        self.fetch(bucket, key)
    }

    fn bucket(&self) -> Option<&str> {
        Some(&self.bucket)
    }
}

/// Continuous validation settings (`[integrity]` in the configuration).
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// How often each account's bucket is listed and validated (CloudTrail digests are hourly).
    pub interval: std::time::Duration,
    /// How often to look for newly announced digests (which trigger a run at once).
    pub poll: std::time::Duration,
    /// The first run's window (later runs start an overlap before the newest verified digest).
    pub lookback_ms: i64,
    /// How often everything in `reverify_window_ms` is validated again, to notice objects
    /// deleted or changed after they were verified.
    pub reverify_interval: std::time::Duration,
    pub reverify_window_ms: i64,
    pub pending_ms: i64,
    pub grace: integrity::record::Grace,
    /// Public keys from a file instead of ListPublicKeys (air-gapped or test setups).
    pub public_keys: Option<PublicKeys>,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            interval: std::time::Duration::from_secs(3600),
            poll: std::time::Duration::from_secs(30),
            lookback_ms: 24 * 3_600_000,
            reverify_interval: std::time::Duration::from_secs(6 * 3600),
            reverify_window_ms: 7 * 86_400_000,
            pending_ms: 90 * 60_000,
            grace: integrity::record::Grace::default(),
            public_keys: None,
        }
    }
}

/// The trail location of a configured account.
fn location_of(spec: &crate::AccountSpec) -> Option<TrailLocation> {
    Some(TrailLocation {
        name: String::new(),
        home_region: spec.home_region(),
        account_id: spec.account_id.clone(),
        bucket: spec.bucket.clone()?,
        prefix: spec.prefix.clone(),
        organization_trail: spec.organization_id.is_some(),
    })
}

/// Validates every configured account with a bucket: hourly, at once when a digest is
/// announced, and a re-verification sweep over the last days; records findings (alerting on
/// new ones) and silent regions, until `shutdown` resolves.
pub async fn watch(
    accounts: Vec<crate::AccountSpec>,
    aws: crate::AwsSettings,
    store: store::Store,
    policy: store::AlertPolicy,
    settings: WatchSettings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use std::collections::HashMap;
    use tokio::time::Instant;
    let accounts: Vec<crate::AccountSpec> = accounts.into_iter().filter(|a| a.bucket.is_some()).collect();
    let base = crate::account::base_config(&aws).await;
    let mut clients: HashMap<String, AccountClients> = HashMap::new();
    let mut next_run: HashMap<String, Instant> = accounts.iter().map(|a| (a.name.clone(), Instant::now())).collect();
    // Every account runs at once; digests announced from now on make their account due again.
    let mut announced_after = model::timefmt::now_millis();
    let mut next_sweep = Instant::now() + settings.reverify_interval;
    tokio::pin!(shutdown);
    let mut leading = false;
    loop {
        // Workers sharing a scale-out store validate once between them: the leader does,
        // the others wait and take over when it goes away.
        let lead = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.state().lead(store::Duty::IntegritySweep)).await
        };
        let lead = matches!(lead, Ok(Ok(true)));
        if lead != leading {
            tracing::info!(leading = lead, "integrity validation leadership changed");
            leading = lead;
        }
        if !lead {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(settings.poll) => {}
            }
            continue;
        }
        let seen = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.state().digests_seen_after(announced_after)).await
        };
        if let Ok(Ok(seen)) = seen {
            for d in &seen {
                announced_after = announced_after.max(d.seen_at);
                if accounts.iter().any(|a| a.name == d.account) {
                    next_run.insert(d.account.clone(), Instant::now());
                }
            }
        }
        let sweep = Instant::now() >= next_sweep;
        for spec in &accounts {
            if !sweep && next_run.get(&spec.name).is_some_and(|t| Instant::now() < *t) {
                continue;
            }
            next_run.insert(spec.name.clone(), Instant::now() + settings.interval);
            let cancel = Arc::new(AtomicBool::new(false));
            let run = run_account(&base, &aws, &mut clients, spec, &store, &policy, &settings, sweep, cancel.clone());
            tokio::pin!(run);
            let (result, stopping) = tokio::select! {
                r = &mut run => (r, false),
                // At shutdown the run stops reading (its reads fail fast) and records nothing;
                // it is awaited so that no reader thread outlives the runtime.
                _ = &mut shutdown => {
                    cancel.store(true, Ordering::Relaxed);
                    (run.await, true)
                }
            };
            match result {
                Err(_) if stopping => {}
                Err(e) => {
                    // A role or network failure: try again in a few minutes, not an hour.
                    let retry = settings.interval.min(std::time::Duration::from_secs(300));
                    next_run.insert(spec.name.clone(), Instant::now() + retry);
                    tracing::warn!(account = %spec.name, error = %e, retry_secs = retry.as_secs(), "integrity validation failed; will try again")
                }
                Ok(()) => {}
            }
            if stopping {
                return;
            }
        }
        if sweep {
            next_sweep = Instant::now() + settings.reverify_interval;
        }
        let silence = {
            let (store, policy, grace) = (store.clone(), policy.clone(), settings.grace);
            tokio::task::spawn_blocking(move || {
                integrity::record::check_silence(&store, model::timefmt::now_millis(), grace, &policy)
            })
            .await
        };
        match silence {
            Ok(Ok(changes)) => {
                for c in changes {
                    let s = &c.silence;
                    if c.started {
                        tracing::warn!(account = %s.account, region = %s.region, what = %s.what, "delivery went silent");
                    } else {
                        tracing::info!(account = %s.account, region = %s.region, what = %s.what, "delivery resumed");
                    }
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "checking for silent regions failed"),
            Err(e) => tracing::warn!(error = %e, "checking for silent regions panicked"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(settings.poll) => {}
        }
    }
}

/// One validation of one account. Errors come back as text: they are logged and the run is
/// tried again at the next interval.
#[allow(clippy::too_many_arguments)]
async fn run_account(
    base: &aws_config::SdkConfig,
    aws: &crate::AwsSettings,
    clients: &mut std::collections::HashMap<String, AccountClients>,
    spec: &crate::AccountSpec,
    store: &store::Store,
    policy: &store::AlertPolicy,
    settings: &WatchSettings,
    sweep: bool,
    cancel: Arc<AtomicBool>,
) -> Result<(), String> {
    let now = model::timefmt::now_millis();
    let start = if sweep {
        now - settings.reverify_window_ms
    } else {
        let st = store.clone();
        let name = spec.name.clone();
        let chains = tokio::task::spawn_blocking(move || st.state().integrity_chains())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        // From just before the newest verified digest: the link to it is checked again. A
        // region lagging behind that is covered by the re-verification sweep (taking the
        // laggard's time instead would re-read a day of logs every hour while it lags).
        chains
            .iter()
            .filter(|c| c.account == name)
            .filter_map(|c| c.newest_end)
            .max()
            .map(|t| t - 2 * 3_600_000)
            .unwrap_or(now - settings.lookback_ms)
            .max(now - settings.lookback_ms)
    };
    if !clients.contains_key(&spec.name) {
        let c = crate::account::connect(base, aws, spec).await.map_err(|e| e.to_string())?;
        clients.insert(spec.name.clone(), c);
    }
    let account = &clients[&spec.name];
    let location = location_of(spec).expect("accounts without a bucket are filtered out");
    let (inventory, regions) = inventory(account, &location, start, now).await.map_err(|e| e.to_string())?;
    let keys = match &settings.public_keys {
        Some(k) => k.clone(),
        None => {
            public_keys(account, &regions, start - 86_400_000, now + 86_400_000).await.map_err(|e| e.to_string())?
        }
    };
    let reader = S3Reader::new(account, &location.bucket, Handle::current()).cancelled_by(cancel.clone());
    let options = integrity::Options {
        start: Some(start),
        end: Some(now),
        pending: settings.pending_ms,
        workers: 8,
        decompressed_copy: false,
    };
    let (store, policy, name) = (store.clone(), policy.clone(), spec.name.clone());
    let recorded = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let report = integrity::validate(&reader, &inventory, &keys, &options).map_err(|e| e.to_string())?;
        if cancel.load(Ordering::Relaxed) {
            return Err("stopped".into());
        }
        let recorded = integrity::record::record(&store, &name, &report, &policy, now).map_err(|e| e.to_string())?;
        Ok((report, recorded))
    })
    .await
    .map_err(|e| e.to_string())??;
    let (report, recorded) = recorded;
    tracing::info!(
        account = %spec.name,
        sweep,
        digests = report.digests,
        logs = report.logs,
        findings = report.findings.len(),
        new_findings = recorded.new_findings.len(),
        "integrity validated"
    );
    for f in &recorded.new_findings {
        tracing::warn!(account = %spec.name, kind = %f.kind, key = %f.key, detail = %f.detail, "integrity finding");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_arns() {
        assert_eq!(
            parse_trail_arn("arn:aws:cloudtrail:eu-west-1:111122223333:trail/org-trail").unwrap(),
            ("eu-west-1".into(), "111122223333".into(), "org-trail".into())
        );
        for bad in [
            "arn:aws:cloudtrail:eu-west-1:111122223333:trail/",
            "arn:aws:s3:::bucket",
            "arn:aws:cloudtrail:eu-west-1:1111:trail/x",
            "trail/x",
        ] {
            assert!(parse_trail_arn(bad).is_err(), "{bad}");
        }
    }
}
