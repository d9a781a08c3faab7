//! A deterministic CloudTrail bucket simulator.
//!
//! [`simulate`] writes a directory laid out exactly like a trail's S3 bucket
//! (`AWSLogs/<acct>/CloudTrail/<region>/YYYY/MM/DD/<acct>_CloudTrail_<region>_<time>_<unique>.json.gz`,
//! Insights files under `CloudTrail-Insight/`) and a `manifest.json` listing every file and
//! the event ids of each injected [`Scenario`]. The same [`SimConfig`] always produces the
//! same bytes: the generator is our own (see [`rng`]) and every collection that decides an
//! order is ordered.
//!
//! Traffic comes in [`Profile`]s. `classic` (see [`traffic`]): several accounts with a fixed
//! cast of IAM users, IAM Identity Center and SAML sessions, CI keys, workload roles, AWS
//! service principals; read-heavy, with S3 data events, KMS, console sign-ins and a few
//! percent of failures, denser in working hours. `realistic` and `high-cardinality` (see
//! [`varied`]): the same kinds of callers drawn from heavy-tailed populations whose distinct
//! counts grow with the trail, as in real trails. Memory stays constant with size: the trail
//! is written window by window.
//!
//! ```no_run
//! let manifest = sim::simulate(&sim::SimConfig::default(), std::path::Path::new("bucket")).unwrap();
//! println!("{} files, {} records", manifest.files.len(), manifest.records);
//! ```

pub mod digests;
pub mod record;
pub mod rng;
pub mod scenarios;
pub mod traffic;
pub mod varied;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::{Compression, GzBuilder};
use model::timefmt::{format_millis, from_civil};
use model::{EpochMillis, ObjectKind, TrailKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use digests::Tamper;
pub use scenarios::Scenario;
pub use varied::Profile;

use record::SimRecord;
use rng::Rng;
use traffic::Account;

const FIVE_MINUTES: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub accounts: usize,
    pub regions: Vec<String>,
    pub hours: u32,
    /// Ordinary events; scenario and Insights records come on top.
    pub events: u64,
    pub seed: u64,
    /// Start of the simulated window.
    pub start: EpochMillis,
    pub scenarios: Vec<Scenario>,
    /// Write an organization trail's layout (`AWSLogs/<org id>/<acct>/…`).
    pub organization_id: Option<String>,
    /// The trail's S3 key prefix.
    pub prefix: Option<String>,
    /// One Insights start/end pair per account.
    pub insights: bool,
    /// Write signed digest files (hourly chains per account and region).
    pub digests: bool,
    /// Tamper with the digested record (implies `digests`).
    pub tampers: Vec<Tamper>,
    /// The bucket name digests name as their own and their logs'.
    pub bucket: String,
    /// How varied the ordinary traffic is.
    pub profile: Profile,
    /// Writer threads (0: one per core). The output does not depend on it.
    pub threads: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            accounts: 3,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            hours: 24,
            events: 20_000,
            seed: 1,
            start: from_civil(2026, 1, 5, 0, 0, 0).expect("valid date"),
            scenarios: Vec::new(),
            organization_id: None,
            prefix: None,
            insights: true,
            digests: false,
            tampers: Vec::new(),
            bucket: "trailwatch-sim-bucket".into(),
            profile: Profile::Classic,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub seed: u64,
    pub start: String,
    pub end: String,
    pub accounts: Vec<ManifestAccount>,
    pub regions: Vec<String>,
    /// Records in all files.
    pub records: u64,
    pub files: Vec<ManifestFile>,
    pub scenarios: Vec<ManifestScenario>,
    /// With `--digests`: the digests, the keys file and the tampers applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digests: Option<digests::DigestManifest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestAccount {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub key: String,
    pub kind: &'static str,
    pub account: String,
    pub region: String,
    pub records: u64,
    pub size: u64,
    /// SHA-256 of the object as stored (gzip).
    pub sha256: String,
    /// SHA-256 of the inflated content (what a digest file lists).
    pub content_sha256: String,
    pub oldest_event_time: String,
    pub newest_event_time: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestScenario {
    pub name: &'static str,
    pub description: &'static str,
    pub account: String,
    pub region: String,
    pub event_ids: Vec<String>,
    pub event_names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("output directory {} is not empty; choose a new one", .0.display())]
    NotEmpty(PathBuf),
    #[error("{0}")]
    Config(String),
    #[error("writing {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the simulated bucket into `out` (which must be empty or absent).
///
/// The trail is written one five-minute window at a time (windows shared out to
/// `threads` workers), so memory holds a few windows' records however large the trail:
/// each window's records come from its own generator stream, which is why the bytes do not
/// depend on the number of threads.
pub fn simulate(config: &SimConfig, out: &Path) -> Result<Manifest, SimError> {
    validate(config)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SimError::Io { path, source }
    };
    if out.exists() && std::fs::read_dir(out).map_err(io(out))?.next().is_some() {
        return Err(SimError::NotEmpty(out.to_path_buf()));
    }
    let root = Rng::new(config.seed);
    let accounts: Vec<Account> =
        (0..config.accounts).map(|i| Account::generate(&mut root.fork(1000 + i as u64), i)).collect();
    let span = i64::from(config.hours) * 3_600_000;
    let end = config.start + span;

    let extras = extra_records(config, &root, &accounts, span, end);
    let scenario_entries = extras.scenarios;
    let plan = Plan {
        config,
        out,
        accounts: &accounts,
        population: varied::Population::new(config.profile, config.seed, config.events),
        account_weights: (0..accounts.len()).map(|i| ((accounts.len() - i) as u32 * 2 + 1, i)).collect(),
        counts: window_counts(config, span),
        extras: extras.by_window,
        root: &root,
    };
    let next = AtomicUsize::new(0);
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    } else {
        config.threads
    };
    let mut files: Vec<ManifestFile> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(plan.counts.len()).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut written = Vec::new();
                    loop {
                        let w = next.fetch_add(1, Ordering::Relaxed);
                        if w >= plan.counts.len() {
                            return Ok(written);
                        }
                        written.extend(plan.window(w)?);
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.join().expect("a simulator worker panicked")?);
        }
        Ok::<_, SimError>(all)
    })?;
    files.sort_by(|a, b| a.key.cmp(&b.key));
    let mut total = files.iter().map(|f| f.records).sum();

    let digests = if config.digests || !config.tampers.is_empty() {
        let written = digests::write(config, &config.tampers, out, &mut files, end, &accounts[0].id)?;
        total = files.iter().map(|f| f.records).sum();
        Some(written)
    } else {
        None
    };

    let manifest = Manifest {
        seed: config.seed,
        start: format_millis(config.start),
        end: format_millis(end),
        accounts: accounts.iter().map(|a| ManifestAccount { id: a.id.clone(), name: a.name.clone() }).collect(),
        regions: config.regions.clone(),
        records: total,
        files,
        scenarios: scenario_entries,
        digests,
    };
    let path = out.join("manifest.json");
    let file = std::fs::File::create(&path).map_err(io(&path))?;
    serde_json::to_writer_pretty(std::io::BufWriter::new(file), &manifest)
        .map_err(|e| SimError::Io { path: path.clone(), source: e.into() })?;
    Ok(manifest)
}

/// (kind, account, region) of a file: kind 0 is a log, 1 an Insights file.
type Group = (u8, usize, usize);

/// Scenario and Insights records, placed by window before the ordinary traffic.
struct Extras {
    by_window: BTreeMap<i64, Vec<(Group, SimRecord)>>,
    scenarios: Vec<ManifestScenario>,
}

fn extra_records(config: &SimConfig, root: &Rng, accounts: &[Account], span: i64, end: i64) -> Extras {
    let mut by_window: BTreeMap<i64, Vec<(Group, SimRecord)>> = BTreeMap::new();
    let mut place = |group: Group, rec: SimRecord| {
        by_window.entry(rec.time_ms.div_euclid(FIVE_MINUTES)).or_default().push((group, rec));
    };
    let mut scenarios = Vec::new();
    for (k, scenario) in config.scenarios.iter().enumerate() {
        let mut srng = root.fork(2000 + *scenario as u64);
        let at = config.start + (span as f64 * (0.5 + 0.04 * k as f64)) as i64 / 1000 * 1000;
        let records = scenario.records(&mut srng, &accounts[0], &config.regions[0], at);
        scenarios.push(ManifestScenario {
            name: scenario.name(),
            description: scenario.description(),
            account: accounts[0].id.clone(),
            region: config.regions[0].clone(),
            event_ids: records.iter().map(|r| r.event_id.clone()).collect(),
            event_names: records.iter().filter_map(|r| r.event_name.clone()).collect(),
        });
        for rec in records {
            place((0, 0, 0), rec);
        }
    }
    if config.insights {
        for (a, acct) in accounts.iter().enumerate() {
            let mut irng = root.fork(3000 + a as u64);
            let at = config.start + span * 3 / 10 + a as i64 * 60_000;
            let shared = irng.uuid();
            for (state, dt) in [("Start", 0), ("End", 7 * 60_000)] {
                let rec = record::insight(
                    &mut irng,
                    &acct.id,
                    &config.regions[0],
                    (at + dt).min(end - 1000),
                    &shared,
                    state,
                    "CreateAccessKey",
                );
                place((1, a, 0), rec);
            }
        }
    }
    Extras { by_window, scenarios }
}

/// How many ordinary events fall in each five-minute window: working hours (08–18 UTC)
/// twice as busy as the night, and weekends at a third of a weekday for the varied profiles.
/// Exact shares of `config.events`, so the total is what was asked for.
fn window_counts(config: &SimConfig, span: i64) -> Vec<u64> {
    let first = config.start.div_euclid(FIVE_MINUTES);
    let last = (config.start + span - 1).div_euclid(FIVE_MINUTES);
    let weights: Vec<f64> = (first..=last)
        .map(|w| {
            let t = w * FIVE_MINUTES;
            let hour = t.div_euclid(3_600_000).rem_euclid(24);
            let day = t.div_euclid(86_400_000).rem_euclid(7); // 0 is a Thursday (1970-01-01)
            let mut weight = if (8..18).contains(&hour) { 1.0 } else { 0.5 };
            if config.profile != Profile::Classic && matches!(day, 2 | 3) {
                weight /= 3.0;
            }
            // The first and last windows are cut by the window's edges.
            let inside = (t + FIVE_MINUTES).min(config.start + span) - t.max(config.start);
            weight * inside as f64 / FIVE_MINUTES as f64
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut counts = Vec::with_capacity(weights.len());
    let (mut acc, mut given) = (0.0, 0u64);
    for w in weights {
        acc += w;
        let upto = ((acc / total) * config.events as f64).round() as u64;
        let upto = upto.min(config.events);
        counts.push(upto - given);
        given = upto;
    }
    if let Some(last) = counts.last_mut() {
        *last += config.events - given;
    }
    counts
}

/// What every window needs to write itself.
struct Plan<'a> {
    config: &'a SimConfig,
    out: &'a Path,
    accounts: &'a [Account],
    population: varied::Population,
    /// Classic traffic's account weights: earlier accounts are busier (2n+1, 2n-1, …, 3).
    account_weights: Vec<(u32, usize)>,
    counts: Vec<u64>,
    extras: BTreeMap<i64, Vec<(Group, SimRecord)>>,
    root: &'a Rng,
}

impl Plan<'_> {
    /// Generates and writes window `index` (counted from the window holding `start`).
    fn window(&self, index: usize) -> Result<Vec<ManifestFile>, SimError> {
        let config = self.config;
        let window = config.start.div_euclid(FIVE_MINUTES) + index as i64;
        let (from, to) = (
            (window * FIVE_MINUTES).max(config.start),
            ((window + 1) * FIVE_MINUTES).min(config.start + i64::from(config.hours) * 3_600_000),
        );
        // Streams are named by the window's absolute number, not its place in the run: the
        // same seed over another time range is the same trail (same people, agents,
        // addresses) at another time, and a run can be extended day by day.
        let mut rng = self.root.fork(0x0057_0000_0000 ^ window as u64);
        let mut groups: BTreeMap<Group, Vec<SimRecord>> = BTreeMap::new();
        let n = self.accounts.len();
        for _ in 0..self.counts[index] {
            let t = from + rng.below(((to - from) / 1000).max(1) as u64) as i64 * 1000;
            let (a, r, rec) = match config.profile {
                Profile::Classic => {
                    let a = *rng.weighted(&self.account_weights);
                    let r = if config.regions.len() == 1 || rng.chance(0.6) {
                        0
                    } else {
                        1 + rng.index(config.regions.len() - 1)
                    };
                    (a, r, traffic::ordinary(&mut rng, &self.accounts[a], &config.regions[r], t))
                }
                _ => {
                    let a = (varied::zipf_index(&mut rng, n, 0.8)) as usize;
                    let r = varied::zipf_index(&mut rng, config.regions.len(), 1.5) as usize;
                    (a, r, varied::ordinary(&mut rng, &self.population, &self.accounts[a], &config.regions[r], t))
                }
            };
            groups.entry((0, a, r)).or_default().push(rec);
        }
        for (group, rec) in self.extras.get(&window).into_iter().flatten() {
            groups.entry(*group).or_default().push(rec.clone());
        }
        let mut layout = self.root.fork(0x004C_0000_0000_0000 ^ window as u64);
        let mut files = Vec::with_capacity(groups.len());
        for ((kind, a, r), mut records) in groups {
            layout.shuffle(&mut records);
            let delivered = (window + 1) * FIVE_MINUTES + layout.range(1, 4) as i64 * 60_000;
            let key = TrailKey {
                prefix: config.prefix.clone().unwrap_or_default(),
                org_id: config.organization_id.clone(),
                account_id: self.accounts[a].id.clone(),
                kind: if kind == 0 { ObjectKind::Log } else { ObjectKind::Insight },
                region: config.regions[r].clone(),
                time: delivered,
                trail_name: None,
                home_region: None,
                unique: Some(layout.alnum(16)),
            }
            .to_key();
            let file = write_file(self.out, &key, &records)?;
            files.push(ManifestFile {
                kind: if kind == 0 { "log" } else { "insight" },
                account: self.accounts[a].id.clone(),
                region: config.regions[r].clone(),
                ..file
            });
        }
        Ok(files)
    }
}

fn validate(config: &SimConfig) -> Result<(), SimError> {
    let bad = |m: String| Err(SimError::Config(m));
    if config.accounts == 0 {
        return bad("--accounts must be at least 1".into());
    }
    if config.hours == 0 {
        return bad("--hours must be at least 1".into());
    }
    if !config.tampers.is_empty() && config.hours < digests::hours_needed(&config.tampers) {
        return bad(format!(
            "the tamper scenarios need --hours {} or more (an hourly digest each, with clean digests between)",
            digests::hours_needed(&config.tampers)
        ));
    }
    if config.regions.is_empty() {
        return bad("--regions needs at least one region".into());
    }
    if let Some(r) = config.regions.iter().find(|r| !model::key::is_region(r)) {
        return bad(format!("{r:?} is not a region name (like us-east-1)"));
    }
    if let Some(org) = config.organization_id.as_deref().filter(|o| !model::key::is_org_id(o)) {
        return bad(format!("{org:?} is not an organization id (o- and 10 to 32 lowercase letters or digits)"));
    }
    Ok(())
}

fn write_file(out: &Path, key: &str, records: &[SimRecord]) -> Result<ManifestFile, SimError> {
    let mut content = Vec::with_capacity(records.len() * 1200 + 16);
    content.extend_from_slice(br#"{"Records":["#);
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            content.push(b',');
        }
        serde_json::to_writer(&mut content, r).expect("records serialise");
    }
    content.extend_from_slice(b"]}");
    let packed = gzip(&content);
    let path = out.join(key);
    let io = |source| SimError::Io { path: path.clone(), source };
    std::fs::create_dir_all(path.parent().expect("key has directories")).map_err(io)?;
    std::fs::write(&path, &packed).map_err(io)?;
    let times = records.iter().map(|r| r.time_ms);
    Ok(ManifestFile {
        key: key.to_string(),
        kind: "log",
        account: String::new(),
        region: String::new(),
        records: records.len() as u64,
        size: packed.len() as u64,
        sha256: hex::encode(Sha256::digest(&packed)),
        content_sha256: hex::encode(Sha256::digest(&content)),
        oldest_event_time: format_millis(times.clone().min().unwrap_or_default()),
        newest_event_time: format_millis(times.max().unwrap_or_default()),
    })
}

/// Gzip as the simulator writes every object: no timestamp in the header, so the same input
/// gives the same bytes.
pub(crate) fn gzip(content: &[u8]) -> Vec<u8> {
    let mut gz = GzBuilder::new().mtime(0).write(Vec::with_capacity(content.len() / 8 + 64), Compression::default());
    gz.write_all(content).expect("in-memory write");
    gz.finish().expect("in-memory write")
}
