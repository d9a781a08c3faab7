//! The `local` source: every log file under a directory (a copy of a trail bucket, or any
//! folder of downloaded log files).
//!
//! An object's key is its path relative to the directory, with `/` separators, so a tree
//! copied from a bucket has the same keys as the bucket. Which files are log files:
//! * `*.json.gz` — unless the key is a CloudTrail digest key (digests are for integrity);
//! * `*.json` whose name has CloudTrail's log-file shape (`…_CloudTrail_…`,
//!   `…_CloudTrail-Insight_…`), i.e. a log file someone inflated;
//! * nothing else (`manifest.json`, `*.metadata.json` sidecars, dot files).
//!
//! A file whose ledger row (bucket `local`, same key) exists with the same size is skipped:
//! re-running an ingest is a no-op. A file that changed size since is ingested again.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use model::{ObjectKind, TrailKey};
use store::{InsertCounts, LedgerStatus, ObjectMeta, Store};

use crate::pipeline::{ObjectJob, Outcome, Pipeline, PipelineConfig, PipelineError};

/// A log file found under the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub path: PathBuf,
    pub key: String,
    pub size: u64,
}

/// What a directory walk found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub logs: Vec<LocalFile>,
    pub digests: u64,
    /// Files that are neither log files nor digests.
    pub other: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("cannot read directory {}", path.display())]
    Walk {
        path: PathBuf,
        #[source]
        source: walkdir::Error,
    },
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("reading the ingest ledger")]
    Ledger(#[from] store::StoreError),
}

/// Walks `root` and classifies every file (in a fixed order, so runs are deterministic).
pub fn discover(root: &Path) -> Result<Discovery, LocalError> {
    let mut found = Discovery::default();
    let walk = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walk {
        let entry = entry.map_err(|source| LocalError::Walk { path: root.to_path_buf(), source })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let key = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
        match classify(&key) {
            FileClass::Log => {
                let size = entry
                    .metadata()
                    .map_err(|source| LocalError::Walk { path: entry.path().to_path_buf(), source })?
                    .len();
                found.logs.push(LocalFile { path: entry.path().to_path_buf(), key, size });
            }
            FileClass::Digest => found.digests += 1,
            FileClass::Other => found.other += 1,
        }
    }
    // Delivery order (the key's timestamp), then key: events then arrive roughly in time
    // order, so the store's time index and row ids grow at their ends.
    found.logs.sort_by_cached_key(|f| (TrailKey::parse(&f.key).map(|k| k.time).unwrap_or(i64::MIN), f.key.clone()));
    Ok(found)
}

enum FileClass {
    Log,
    Digest,
    Other,
}

fn classify(key: &str) -> FileClass {
    let name = key.rsplit('/').next().unwrap_or(key);
    if key.ends_with(".json.gz") {
        return match TrailKey::parse(key) {
            Ok(k) if k.kind == ObjectKind::Digest => FileClass::Digest,
            _ if name.contains("_CloudTrail-Digest_") => FileClass::Digest,
            _ => FileClass::Log,
        };
    }
    if key.ends_with(".json")
        && !key.ends_with(".metadata.json")
        && (name.contains("_CloudTrail_") || name.contains("_CloudTrail-Insight_"))
    {
        return FileClass::Log;
    }
    FileClass::Other
}

/// Totals of one local ingest run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LocalReport {
    /// Log files read in this run (committed + quarantined + failed).
    pub files: u64,
    /// Records in the files committed in this run.
    pub records: u64,
    pub counts: InsertCounts,
    /// Records the ingest filters dropped (part of `records`, not stored).
    pub filtered: u64,
    pub quarantined: Vec<(String, &'static str, String)>,
    pub failed: Vec<(String, String)>,
    /// Log files skipped because the ledger already has them.
    pub already_ingested: u64,
    pub digests: u64,
    pub other: u64,
    pub object_bytes: u64,
    pub content_bytes: u64,
    /// Detection hits recorded, and the alerts they opened.
    pub hits: u64,
    pub alerts_opened: u64,
}

/// Ingests every log file under `root` that the ledger does not have yet (with detection,
/// when given).
pub fn ingest_dir(
    root: &Path,
    store: &Store,
    config: PipelineConfig,
    detection: Option<crate::Detection>,
) -> Result<LocalReport, LocalError> {
    let found = discover(root)?;
    let known: HashMap<String, (u64, LedgerStatus)> = store
        .state()
        .ledger_entries(ObjectMeta::LOCAL_BUCKET, "")?
        .into_iter()
        .map(|e| (e.key, (e.size, e.status)))
        .collect();
    let (todo, done): (Vec<LocalFile>, Vec<LocalFile>) =
        found.logs.into_iter().partition(|f| known.get(&f.key).is_none_or(|(size, _)| *size != f.size));
    let mut report = ingest_files(todo, store.writer()?, config, detection)?;
    report.already_ingested = done.len() as u64;
    report.digests = found.digests;
    report.other = found.other;
    Ok(report)
}

/// Runs `files` through the pipeline into `writer` (also used by the benchmark, with a
/// writer that discards).
pub fn ingest_files(
    files: Vec<LocalFile>,
    writer: Box<dyn store::EventWriter>,
    config: PipelineConfig,
    detection: Option<crate::Detection>,
) -> Result<LocalReport, LocalError> {
    let jobs = files.into_iter().map(|file| {
        let path = file.path.clone();
        let open: crate::pipeline::Opener = Box::new(move || {
            let f = File::open(&path)?;
            Ok(Box::new(f) as Box<dyn std::io::Read + Send>)
        });
        ObjectJob { meta: ObjectMeta::local(file.key.clone(), file.size), open, receipt: file.key }
    });
    ingest_jobs(jobs, writer, config, detection)
}

/// Runs objects of any origin (files, import documents made in memory) through the pipeline
/// into `writer`; the report is the same as for a directory.
pub fn ingest_jobs(
    jobs: impl Iterator<Item = ObjectJob<String>>,
    writer: Box<dyn store::EventWriter>,
    config: PipelineConfig,
    detection: Option<crate::Detection>,
) -> Result<LocalReport, LocalError> {
    let pipeline: Pipeline<String> = match detection {
        Some(d) => Pipeline::start_with_detection(writer, config, d),
        None => Pipeline::start(writer, config),
    };
    run_jobs(pipeline, jobs, tally)
}

fn tally(report: &mut LocalReport, s: crate::pipeline::Settled<String>) {
    report.files += 1;
    match s.outcome {
        Outcome::Committed { counts, summary, alerts, filtered, .. } => {
            report.filtered += filtered;
            report.hits += alerts.hits;
            report.alerts_opened += alerts.opened;
            report.records += summary.records;
            report.counts += counts;
            report.object_bytes += summary.object_bytes;
            report.content_bytes += summary.content_bytes;
        }
        Outcome::Quarantined { reason, detail } => report.quarantined.push((s.receipt, reason, detail)),
        Outcome::Failed { detail } => report.failed.push((s.receipt, detail)),
    }
}

fn run_jobs(
    pipeline: Pipeline<String>,
    jobs: impl Iterator<Item = ObjectJob<String>>,
    add: impl Fn(&mut LocalReport, crate::pipeline::Settled<String>),
) -> Result<LocalReport, LocalError> {
    let mut report = LocalReport::default();
    for job in jobs {
        if pipeline.submit(job).is_err() {
            // The writer stopped; `finish` says why (the store error), which is the news.
            pipeline.finish()?;
            return Err(PipelineError::Stopped.into());
        }
        while let Ok(s) = pipeline.settled().try_recv() {
            add(&mut report, s);
        }
    }
    for s in pipeline.finish()? {
        add(&mut report, s);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let log = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/15/111122223333_CloudTrail_us-east-1_20240115T2035Z_ktqOC7inSW0L9lcP.json.gz";
        assert!(matches!(classify(log), FileClass::Log));
        assert!(matches!(classify("downloads/anything.json.gz"), FileClass::Log));
        assert!(matches!(
            classify("x/111122223333_CloudTrail_us-east-1_20240115T2035Z_ktqOC7inSW0L9lcP.json"),
            FileClass::Log
        ));
        let digest = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/01/15/111122223333_CloudTrail-Digest_us-east-1_t_us-east-1_20240115T203500Z.json.gz";
        assert!(matches!(classify(digest), FileClass::Digest));
        assert!(matches!(classify("manifest.json"), FileClass::Other));
        assert!(matches!(classify(&format!("{digest}.metadata.json")), FileClass::Other));
        assert!(matches!(classify("notes.txt"), FileClass::Other));
    }
}
