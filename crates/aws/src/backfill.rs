//! Backfill: list a trail bucket by account, region and day, ingest what the ledger lacks.
//!
//! Listing is by day prefix (`…/CloudTrail/<region>/YYYY/MM/DD/`), every page of it. It never
//! uses `StartAfter` with a key built from a timestamp: the files of one minute differ only in
//! a random suffix, so a key made up from a time sorts before some of them and after others,
//! and the ones after would be skipped. A file is in range when its delivery time (from its
//! name) is within `[since, until]`. What the ledger has is skipped, so running a backfill
//! again is a no-op; records are deduplicated by eventID in any case.

use std::collections::HashSet;
use std::sync::Arc;

use ingest::{ObjectJob, Outcome, Pipeline, Settled};
use model::timefmt::{civil, from_civil};
use model::{EpochMillis, ObjectKind, TrailKey};
use store::{InsertCounts, ObjectMeta, Store};
use tokio::task::JoinSet;

use crate::account::AccountClients;
use crate::consumer::{submit_blocking, Ticket};
use crate::fetch;

#[derive(Debug, Clone)]
pub struct BackfillRequest {
    /// Regions to list; empty means the account's configured regions, or if none, every
    /// region found under the account's `CloudTrail/` prefix.
    pub regions: Vec<String>,
    pub since: EpochMillis,
    pub until: EpochMillis,
    pub fetch_concurrency: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    pub regions: Vec<String>,
    /// Day prefixes listed.
    pub prefixes: u64,
    /// Log files in range.
    pub in_range: u64,
    pub already_ingested: u64,
    pub committed: u64,
    pub records: u64,
    pub counts: InsertCounts,
    pub quarantined: Vec<(String, String)>,
    /// Objects that could not be read (missing, denied, transient), with the reason.
    pub failed: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("account {0} has no bucket configured")]
    NoBucket(String),
    #[error(transparent)]
    List(#[from] crate::fetch::ListError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Pipeline(#[from] ingest::PipelineError),
}

/// `[prefix/]AWSLogs/[o-org/]<account>/` for the account's trail.
pub fn account_prefix(clients: &AccountClients) -> String {
    let spec = &clients.spec;
    let mut p = String::new();
    if let Some(prefix) = spec.prefix.as_deref().filter(|p| !p.is_empty()) {
        p.push_str(prefix.trim_end_matches('/'));
        p.push('/');
    }
    p.push_str("AWSLogs/");
    if let Some(org) = &spec.organization_id {
        p.push_str(org);
        p.push('/');
    }
    p.push_str(&spec.account_id);
    p.push('/');
    p
}

/// The day prefixes `[since, until]` touches, for one region.
pub fn day_prefixes(account_prefix: &str, region: &str, since: EpochMillis, until: EpochMillis) -> Vec<String> {
    let mut out = Vec::new();
    let Some((y, m, d, ..)) = civil(since) else { return out };
    let Some(mut day) = from_civil(y, m, d, 0, 0, 0) else { return out };
    while day <= until {
        if let Some((y, m, d, ..)) = civil(day) {
            out.push(format!("{account_prefix}CloudTrail/{region}/{y:04}/{m:02}/{d:02}/"));
        }
        day += 86_400_000;
    }
    out
}

/// Lists and ingests. Objects that cannot be read are reported, not fatal.
pub async fn backfill(
    clients: &AccountClients,
    store: Store,
    pipeline: ingest::PipelineSpec,
    request: &BackfillRequest,
) -> Result<BackfillReport, BackfillError> {
    let spec = &clients.spec;
    let bucket = spec.bucket.clone().ok_or_else(|| BackfillError::NoBucket(spec.name.clone()))?;
    let base = account_prefix(clients);
    let regions = if !request.regions.is_empty() {
        request.regions.clone()
    } else if !spec.regions.is_empty() {
        spec.regions.clone()
    } else {
        let (_, common) = crate::fetch::list_all(&clients.s3, &bucket, &format!("{base}CloudTrail/"), true).await?;
        common.iter().filter_map(|p| p.trim_end_matches('/').rsplit('/').next().map(str::to_owned)).collect()
    };
    let mut report = BackfillReport { regions, ..Default::default() };

    let mut todo = Vec::new();
    for region in &report.regions {
        for prefix in day_prefixes(&base, region, request.since, request.until) {
            report.prefixes += 1;
            let (keys, _) = crate::fetch::list_all(&clients.s3, &bucket, &prefix, false).await?;
            let known: HashSet<String> =
                store.state().ledger_entries(&bucket, &prefix)?.into_iter().map(|e| e.key).collect();
            for key in keys {
                let Ok(k) = TrailKey::parse(&key) else { continue };
                if k.kind != ObjectKind::Log || k.time < request.since || k.time > request.until {
                    continue;
                }
                report.in_range += 1;
                if known.contains(&key) {
                    report.already_ingested += 1;
                } else {
                    todo.push((key, k.region));
                }
            }
        }
    }

    let pipeline = Pipeline::<Ticket>::from_spec(store.writer()?, pipeline);
    let limit = Arc::new(tokio::sync::Semaphore::new(request.fetch_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for (key, region) in todo {
        let (s3, bucket, pipeline, limit, account) =
            (clients.s3.clone(), bucket.clone(), pipeline.submitter(), limit.clone(), spec.name.clone());
        // Each task ends in Ok, or in the key and why it was not ingested.
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("never closed");
            let bytes = match fetch::get_object(&s3, &bucket, &key).await {
                Ok(b) => b,
                Err(e) => return Err((key, e.to_string())),
            };
            let meta = ObjectMeta { source: "s3".into(), bucket, key: key.clone(), size: bytes.len() as u64 };
            let job = ObjectJob::in_memory(meta, bytes, Ticket { message: None, account, region });
            submit_blocking(pipeline, job).await.map_err(|e| (key, e))
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => report.failed.push(failure),
            Err(e) => report.failed.push((String::new(), format!("fetch task failed: {e}"))),
        }
    }
    let settled =
        tokio::task::spawn_blocking(move || pipeline.finish()).await.expect("pipeline finish does not panic")?;
    for s in settled {
        add(&mut report, s);
    }
    Ok(report)
}

fn add(report: &mut BackfillReport, s: Settled<Ticket>) {
    match s.outcome {
        Outcome::Committed { counts, summary, .. } => {
            report.committed += 1;
            report.records += summary.records;
            report.counts += counts;
        }
        Outcome::Quarantined { reason, detail } => report.quarantined.push((s.meta.key, format!("{reason}: {detail}"))),
        Outcome::Failed { detail } => report.failed.push((s.meta.key, detail)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_prefixes_cover_the_range_inclusively() {
        let since = from_civil(2024, 2, 28, 23, 0, 0).unwrap();
        let until = from_civil(2024, 3, 1, 0, 5, 0).unwrap();
        assert_eq!(
            day_prefixes("AWSLogs/1/", "us-east-1", since, until),
            vec![
                "AWSLogs/1/CloudTrail/us-east-1/2024/02/28/",
                "AWSLogs/1/CloudTrail/us-east-1/2024/02/29/",
                "AWSLogs/1/CloudTrail/us-east-1/2024/03/01/",
            ]
        );
        assert!(day_prefixes("p/", "r", until, since).is_empty());
    }
}
