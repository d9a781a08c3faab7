//! `trailwatch quarantine`: objects that could not be ingested, and why.

use serde_json::json;

use super::{open_store, Open};
use crate::cli::QuarantineArgs;
use crate::output::{table, tsv_field, Format};

pub fn run(args: QuarantineArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let entries = store.state().quarantined()?;
    match args.format {
        Format::Table => {
            if entries.is_empty() {
                println!("nothing is quarantined");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    vec![
                        model::timefmt::format_millis(e.recorded_at),
                        e.bucket.clone(),
                        e.key.clone(),
                        e.reason.clone().unwrap_or_default(),
                        e.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print!("{}", table(&["RECORDED", "BUCKET", "KEY", "REASON", "DETAIL"], &rows, 120));
        }
        Format::Json | Format::Jsonl => {
            let values: Vec<_> = entries
                .iter()
                .map(|e| {
                    json!({"bucket": e.bucket, "key": e.key, "size": e.size, "reason": e.reason, "detail": e.detail,
                           "recordedAt": model::timefmt::format_millis(e.recorded_at)})
                })
                .collect();
            if args.format == Format::Json {
                println!("{}", serde_json::Value::Array(values));
            } else {
                values.iter().for_each(|v| println!("{v}"));
            }
        }
        Format::Tsv => {
            for e in &entries {
                println!(
                    "{}\t{}\t{}\t{}",
                    tsv_field(&e.bucket),
                    tsv_field(&e.key),
                    tsv_field(e.reason.as_deref().unwrap_or("")),
                    tsv_field(e.detail.as_deref().unwrap_or(""))
                );
            }
        }
    }
    Ok(())
}
