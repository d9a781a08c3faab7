//! `trailwatch validate --local DIR --public-keys FILE` and `--trail-arn ARN --start-time T`.

use std::collections::BTreeMap;

use anyhow::Context;
use integrity::{Options, PublicKeys, Report};
use serde_json::json;

use super::{load_config, now_millis, thousands, Findings};
use crate::cli::{parse_time, ValidateArgs};
use crate::output::{terminal_safe, tsv_row, Format};

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let now = now_millis();
    let start = args.start_time.as_deref().map(|t| parse_time(t, now, false).context("--start-time")).transpose()?;
    let end = args.end_time.as_deref().map(|t| parse_time(t, now, true).context("--end-time")).transpose()?;
    if let (Some(s), Some(e)) = (start, end) {
        anyhow::ensure!(s <= e, "--end-time is before --start-time");
    }
    let keys = args.public_keys.as_deref().map(PublicKeys::read).transpose().map_err(anyhow::Error::msg)?;
    let options = Options {
        start,
        end: Some(end.unwrap_or(now)),
        pending: i64::from(args.pending_minutes) * 60_000,
        decompressed_copy: args.decompressed_copy,
        ..Options::default()
    };
    let started = std::time::Instant::now();
    let report = match (&args.local, &args.trail_arn) {
        (Some(dir), _) => {
            anyhow::ensure!(dir.is_dir(), "{} is not a directory", dir.display());
            integrity::validate_local(dir, &keys.expect("clap requires --public-keys"), &options)?
        }
        (None, Some(arn)) => validate_trail(&args, arn, keys, options)?,
        (None, None) => unreachable!("clap requires one of --local and --trail-arn"),
    };
    // Nothing to validate is not a valid trail: say what was looked for.
    anyhow::ensure!(
        report.digests > 0,
        "no digest files (AWSLogs/<account>/CloudTrail-Digest/<region>/YYYY/MM/DD/…json.gz) {} in the window: is log file validation on for the trail, and is {} the bucket's root?",
        if args.local.is_some() { "under the directory" } else { "in the trail's bucket" },
        args.local.as_deref().map(|d| d.display().to_string()).unwrap_or_else(|| "the trail's bucket".into()),
    );
    print(&report, args.format, started.elapsed().as_secs_f64());
    if report.valid() {
        Ok(())
    } else {
        Err(Findings(report.findings.iter().filter(|f| !f.kind.is_warning()).count()).into())
    }
}

fn validate_trail(
    args: &ValidateArgs,
    arn: &str,
    keys: Option<PublicKeys>,
    options: Options,
) -> anyhow::Result<Report> {
    let (region, account_id, _) = aws::integrity::parse_trail_arn(arn)?;
    let (settings, spec) = match &args.config {
        Some(path) => {
            let config = load_config(path)?;
            let spec = config.accounts.iter().find(|a| a.account_id == account_id).cloned();
            (config.aws, spec)
        }
        None => (aws::AwsSettings::default(), None),
    };
    // Not configured: trailwatch's own credentials, in the trail's region.
    let spec = spec.unwrap_or(aws::AccountSpec {
        name: account_id.clone(),
        account_id,
        regions: vec![region],
        ..Default::default()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let start = options.start.expect("clap requires --start-time with --trail-arn");
    let end = options.end.expect("set by the caller");
    let (clients, trail, inventory, keys) = runtime.block_on(async {
        let base = aws::account::base_config(&settings).await;
        let clients = aws::account::connect(&base, &settings, &spec).await?;
        let trail = aws::integrity::locate_trail(&clients, arn).await?;
        let (inventory, regions) = aws::integrity::inventory(&clients, &trail, start, end).await?;
        let keys = match keys {
            Some(k) => k,
            None => aws::integrity::public_keys(&clients, &regions, start - 86_400_000, end + 86_400_000).await?,
        };
        anyhow::Ok((clients, trail, inventory, keys))
    })?;
    let reader = aws::integrity::S3Reader::new(&clients, &trail.bucket, runtime.handle().clone());
    // The validator's threads block on the runtime; this thread is not one of its workers.
    let options = Options { workers: 16, ..options };
    Ok(integrity::validate(&reader, &inventory, &keys, &options)?)
}

fn print(report: &Report, format: Format, seconds: f64) {
    match format {
        Format::Json => println!(
            "{}",
            json!({"valid": report.valid(), "findings": report.findings.iter().map(|f| json!({"kind": f.kind, "key": f.key, "detail": f.detail})).collect::<Vec<_>>()})
        ),
        Format::Jsonl => {
            for f in &report.findings {
                println!("{}", json!({"kind": f.kind, "key": f.key, "detail": f.detail}));
            }
        }
        Format::Tsv => {
            for f in &report.findings {
                println!("{}", tsv_row(&[f.kind.as_str(), &f.key, &f.detail]));
            }
        }
        Format::Table => {
            for f in &report.findings {
                println!("{:<24} {}\n{:<24} {}", f.kind.as_str(), terminal_safe(&f.key), "", terminal_safe(&f.detail));
            }
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for f in &report.findings {
                *counts.entry(f.kind.as_str()).or_default() += 1;
            }
            let verdict = if report.valid() { "VALID" } else { "INVALID" };
            let summary = counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ");
            println!(
                "{verdict}: {} digests in {} chains, {} log files ({:.1} MB) checked in {seconds:.1}s{}",
                thousands(report.digests as u64),
                report.chains.len(),
                thousands(report.logs as u64),
                report.log_bytes as f64 / 1e6,
                if summary.is_empty() { String::new() } else { format!("; {summary}") }
            );
        }
    }
}
