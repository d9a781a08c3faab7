//! `trailwatch alerts list|show|ack|resolve`.

use anyhow::bail;
use model::timefmt::format_millis;
use serde_json::{json, Value};
use store::{Alert, AlertFilter, AlertState};

use super::{open_store, Open};
use crate::cli::{AlertIdArgs, AlertStateArgs, AlertsListArgs};
use crate::output::{table, terminal_safe, tsv_row, Format};

/// The `--state`, `--level` and `--rule` flags (of `alerts list` and `export alerts`) as a
/// store filter, each value checked.
pub fn filter(
    state: Option<&str>,
    level: Option<&str>,
    rule: Option<&str>,
    limit: usize,
) -> anyhow::Result<AlertFilter> {
    let state = match state {
        None => None,
        Some(s) => {
            Some(AlertState::parse(s).ok_or_else(|| anyhow::anyhow!("--state {s:?}: open, acknowledged or resolved"))?)
        }
    };
    if let Some(l) = level.filter(|l| !store::alerts::LEVELS.contains(l)) {
        bail!("--level {l:?}: one of {}", store::alerts::LEVELS.join(", "));
    }
    Ok(AlertFilter {
        state,
        min_level: level.map(str::to_owned),
        rule_id: rule.map(str::to_owned),
        limit,
        before: None,
    })
}

pub fn list(args: AlertsListArgs) -> anyhow::Result<()> {
    let filter = filter(args.state.as_deref(), args.level.as_deref(), args.rule.as_deref(), args.limit)?;
    let store = open_store(&args.store, Open::Existing)?;
    let alerts = store.state().alerts(&filter)?;
    match args.format {
        Format::Json => println!("{}", Value::Array(alerts.iter().map(Alert::to_json).collect())),
        Format::Jsonl => alerts.iter().for_each(|a| println!("{}", a.to_json())),
        Format::Tsv => {
            for a in &alerts {
                let cells = [
                    a.id.to_string(),
                    a.level.clone(),
                    a.state.as_str().to_string(),
                    a.count.to_string(),
                    format_millis(a.last_seen),
                    a.rule_id.clone(),
                    a.subject.principal.clone(),
                    a.subject.source_ip.clone().unwrap_or_default(),
                    a.title.clone(),
                ];
                println!("{}", tsv_row(&cells));
            }
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = alerts
                .iter()
                .map(|a| {
                    vec![
                        a.id.to_string(),
                        a.level.clone(),
                        a.state.as_str().to_string(),
                        a.count.to_string(),
                        format_millis(a.last_seen),
                        a.title.clone(),
                        format!("{} from {}", a.subject.principal, a.subject.source_ip.as_deref().unwrap_or("-")),
                    ]
                })
                .collect();
            print!("{}", table(&["ID", "LEVEL", "STATE", "COUNT", "LAST SEEN", "TITLE", "WHO"], &rows, 60));
        }
    }
    Ok(())
}

pub fn show(args: AlertIdArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let Some(a) = store.state().alert(args.id)? else { bail!("no alert {}", args.id) };
    let events = store.state().alert_event_ids(a.id)?;
    let deliveries = store.state().deliveries(a.id)?;
    match args.format {
        Format::Json | Format::Jsonl => {
            let mut v = a.to_json();
            v["events"] = json!(events);
            v["deliveries"] = Value::Array(
                deliveries
                    .iter()
                    .map(|d| {
                        json!({"sink": d.sink, "attempts": d.attempts, "delivered_at": d.delivered_at.map(format_millis),
                               "next_attempt": format_millis(d.next_attempt), "last_error": d.last_error.as_deref().map(store::redact_urls)})
                    })
                    .collect(),
            );
            println!("{v}");
        }
        _ => {
            let s = &a.subject;
            println!("#{} {} [{}] {}", a.id, terminal_safe(&a.title), a.level, a.state.as_str());
            println!("  rule      {}", terminal_safe(&a.rule_id));
            println!("  who       {}", terminal_safe(&s.principal));
            println!(
                "  what      {} {}",
                terminal_safe(s.event_source.as_deref().unwrap_or("-")),
                terminal_safe(s.event_name.as_deref().unwrap_or("-"))
            );
            println!(
                "  where     account {} region {}",
                terminal_safe(s.account.as_deref().unwrap_or("-")),
                terminal_safe(s.region.as_deref().unwrap_or("-"))
            );
            println!("  from      {}", terminal_safe(s.source_ip.as_deref().unwrap_or("-")));
            println!(
                "  seen      {} × between {} and {}",
                a.count,
                format_millis(a.first_seen),
                format_millis(a.last_seen)
            );
            if let Some(c) = &a.comment {
                println!("  comment   {}", terminal_safe(c));
            }
            println!("  events    {}", events.iter().map(|e| terminal_safe(e)).collect::<Vec<_>>().join(" "));
            for d in &deliveries {
                match d.delivered_at {
                    Some(at) => println!("  sent to   {} at {} ({} attempts)", d.sink, format_millis(at), d.attempts),
                    None => println!(
                        "  pending   {} ({} attempts; next {}; last error: {})",
                        d.sink,
                        d.attempts,
                        format_millis(d.next_attempt),
                        terminal_safe(&store::redact_urls(d.last_error.as_deref().unwrap_or("-")))
                    ),
                }
            }
        }
    }
    Ok(())
}

pub fn set_state(args: AlertStateArgs, state: AlertState) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    if !store.state().set_alert_state(args.id, state, args.comment.as_deref())? {
        bail!("no alert {}", args.id);
    }
    println!("alert {} is {}", args.id, state.as_str());
    Ok(())
}
