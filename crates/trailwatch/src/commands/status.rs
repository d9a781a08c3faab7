//! `trailwatch status`: is each account's integration active, and if not, exactly why.

use serde_json::{json, Value};
use store::IntegrationStatus;

use super::{load_config, now_millis, open_store, Open};
use crate::cli::StatusArgs;
use crate::output::{table, tsv_field, Format};

fn time(ms: Option<i64>) -> String {
    ms.map(model::timefmt::format_millis).unwrap_or_else(|| "-".into())
}

pub fn run(args: StatusArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let mut rows = store.state().integration_status()?;
    // Configured accounts that never reported: say so rather than show nothing.
    if let Some(path) = &args.store.config {
        store::integration::with_unreported(&mut rows, load_config(path)?.accounts.iter().map(|a| a.name.as_str()));
    }
    let now = now_millis();
    let verdicts: Vec<(IntegrationStatus, store::Verdict)> =
        rows.iter().map(|r| (r.clone(), store::integration::verdict_among(&rows, r, now))).collect();
    let problems = store.state().message_problems()?;
    let findings = store.state().findings()?;
    let chains = store.state().integrity_chains()?;
    let integrity_findings = store.state().integrity_findings()?;
    let silences = store.state().silences()?;
    let silent = |c: &store::IntegrityChain| -> Vec<&str> {
        silences
            .iter()
            .filter(|s| s.account == c.account && s.account_id == c.account_id && s.region == c.region)
            .map(|s| s.what.as_str())
            .collect()
    };
    match args.format {
        Format::Json | Format::Jsonl => {
            let integrations: Vec<Value> = verdicts
                .iter()
                .map(|(r, v)| {
                    json!({
                        "account": r.account, "region": r.region, "state": v.label(), "reason": v.reason(),
                        "lastNotification": r.last_notification.map(model::timefmt::format_millis),
                        "lastValidation": r.last_validation.map(model::timefmt::format_millis),
                        "lastObject": r.last_object.map(model::timefmt::format_millis),
                        "newestEvent": r.newest_event.map(model::timefmt::format_millis),
                        "lagSeconds": r.newest_event.map(|n| (now - n) / 1000),
                        "notifications": r.notifications, "objects": r.objects, "events": r.events,
                        "lastError": r.last_error, "lastErrorAt": r.last_error_at.map(model::timefmt::format_millis),
                    })
                })
                .collect();
            let problems: Vec<Value> = problems
                .iter()
                .map(|p| {
                    json!({"queue": p.queue, "messageId": p.message_id, "reason": p.reason, "detail": p.detail,
                           "receiveCount": p.receive_count, "lastSeen": model::timefmt::format_millis(p.last_seen)})
                })
                .collect();
            let findings: Vec<Value> = findings
                .iter()
                .map(|f| {
                    json!({"kind": f.kind, "account": f.account, "bucket": f.bucket, "key": f.key, "detail": f.detail,
                           "occurrences": f.occurrences, "firstSeen": model::timefmt::format_millis(f.first_seen)})
                })
                .collect();
            let integrity = json!({
                "chains": chains.iter().map(|c| json!({
                    "account": c.account, "accountId": c.account_id, "region": c.region, "trail": c.trail,
                    "newestDigest": c.newest_key, "newestDigestEnd": c.newest_end.map(model::timefmt::format_millis),
                    "newestLog": c.newest_log.map(model::timefmt::format_millis),
                    "verifiedAt": model::timefmt::format_millis(c.verified_at), "silent": silent(c),
                })).collect::<Vec<_>>(),
                "findings": integrity_findings.iter().map(|f| json!({
                    "account": f.account, "kind": f.kind, "key": f.key, "detail": f.detail,
                    "firstSeen": model::timefmt::format_millis(f.first_seen), "lastSeen": model::timefmt::format_millis(f.last_seen),
                })).collect::<Vec<_>>(),
            });
            println!(
                "{}",
                json!({"integrations": integrations, "messageProblems": problems, "findings": findings, "integrity": integrity})
            );
        }
        Format::Tsv => {
            for (r, v) in &verdicts {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    tsv_field(&r.account),
                    tsv_field(&r.region),
                    v.label(),
                    time(r.last_notification),
                    time(r.last_object),
                    time(r.newest_event),
                    tsv_field(v.reason())
                );
            }
        }
        Format::Table => {
            if verdicts.is_empty() {
                println!("no integration has reported yet (run `trailwatch serve --config FILE`)");
            } else {
                let rows: Vec<Vec<String>> = verdicts
                    .iter()
                    .map(|(r, v)| {
                        vec![
                            r.account.clone(),
                            if r.region.is_empty() { "(account)".into() } else { r.region.clone() },
                            v.label().into(),
                            time(r.last_notification),
                            time(r.last_object),
                            time(r.newest_event),
                            r.newest_event.map(|n| format!("{}s", (now - n) / 1000)).unwrap_or_else(|| "-".into()),
                            r.objects.to_string(),
                            r.events.to_string(),
                            v.reason().to_owned(),
                        ]
                    })
                    .collect();
                let header = [
                    "ACCOUNT",
                    "REGION",
                    "STATE",
                    "LAST NOTIFICATION",
                    "LAST OBJECT",
                    "NEWEST EVENT",
                    "LAG",
                    "OBJECTS",
                    "EVENTS",
                    "REASON",
                ];
                print!("{}", table(&header, &rows, 80));
            }
            if !problems.is_empty() {
                println!("\nmessages left on their queues ({}):", problems.len());
                let rows: Vec<Vec<String>> = problems
                    .iter()
                    .map(|p| {
                        vec![p.message_id.clone(), p.reason.clone(), p.receive_count.to_string(), p.detail.clone()]
                    })
                    .collect();
                print!("{}", table(&["MESSAGE", "REASON", "RECEIVED", "DETAIL"], &rows, 100));
            }
            if !findings.is_empty() {
                println!("\nobjects that could not be read ({}):", findings.len());
                let rows: Vec<Vec<String>> = findings
                    .iter()
                    .map(|f| {
                        vec![
                            f.kind.clone(),
                            f.account.clone(),
                            format!("s3://{}/{}", f.bucket, f.key),
                            f.occurrences.to_string(),
                        ]
                    })
                    .collect();
                print!("{}", table(&["KIND", "ACCOUNT", "OBJECT", "SEEN"], &rows, 120));
            }
            if !chains.is_empty() {
                println!("\nlog file integrity (digest chains verified):");
                let rows: Vec<Vec<String>> = chains
                    .iter()
                    .map(|c| {
                        let quiet = silent(c);
                        vec![
                            c.account.clone(),
                            c.account_id.clone(),
                            c.region.clone(),
                            c.trail.clone(),
                            time(c.newest_end),
                            time(c.newest_log),
                            time(Some(c.verified_at)),
                            if quiet.is_empty() { "ok".into() } else { format!("silent: no {}", quiet.join(", no ")) },
                        ]
                    })
                    .collect();
                let header =
                    ["ACCOUNT", "ACCOUNT ID", "REGION", "TRAIL", "NEWEST DIGEST", "NEWEST LOG", "VERIFIED", "DELIVERY"];
                print!("{}", table(&header, &rows, 60));
            }
            if !integrity_findings.is_empty() {
                println!(
                    "\nintegrity findings ({}; `trailwatch alerts list --rule trailwatch-integrity-…`):",
                    integrity_findings.len()
                );
                let rows: Vec<Vec<String>> = integrity_findings
                    .iter()
                    .map(|f| vec![f.kind.clone(), f.account.clone(), time(Some(f.first_seen)), f.key.clone()])
                    .collect();
                print!("{}", table(&["KIND", "ACCOUNT", "FOUND", "KEY"], &rows, 160));
            }
        }
    }
    Ok(())
}
