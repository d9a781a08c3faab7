//! `trailwatch search`.

use std::io::Write;

use model::timefmt::format_millis;
use store::{EventQuery, EventRow};

use super::{now_millis, open_store, Open};
use crate::cli::SearchArgs;
use crate::output::{one_line_json, table, tsv_row, Format};

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let now = now_millis();
    let query = EventQuery {
        // One more than asked, to tell people when there is more.
        limit: (args.limit > 0).then_some(args.limit + 1),
        ..args.filters.query(now)?
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if args.format == Format::Table {
        // A table needs every row to size its columns.
        let mut rows = store.events().search(&query)?;
        let truncated = args.limit > 0 && rows.len() > args.limit;
        rows.truncate(if args.limit > 0 { args.limit } else { rows.len() });
        write!(out, "{}", render_table(&rows))?;
        out.flush()?;
        if truncated {
            eprintln!("(showing the newest {}; more match: raise --limit, or --limit 0 for all)", args.limit);
        } else if rows.is_empty() {
            eprintln!("no events match");
        }
        return Ok(());
    }
    // Everything else streams, so `--limit 0` over a large store needs little memory.
    let mut printed = 0usize;
    let mut failed: Option<std::io::Error> = None;
    if args.format == Format::Json {
        write!(out, "[")?;
    }
    store.events().for_each_event(&query, &mut |r| {
        if args.limit > 0 && printed == args.limit {
            return false; // the extra row only told us there is more
        }
        let result = match args.format {
            Format::Json => {
                let sep = if printed > 0 { "," } else { "" };
                write!(out, "{sep}\n{}", one_line_json(&r.raw))
            }
            Format::Jsonl => writeln!(out, "{}", one_line_json(&r.raw)),
            _ => writeln!(out, "{}", tsv_line(&r)),
        };
        printed += 1;
        match result {
            Ok(()) => true,
            Err(e) => {
                failed = Some(e);
                false
            }
        }
    })?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    if args.format == Format::Json {
        writeln!(out, "{}]", if printed > 0 { "\n" } else { "" })?;
    }
    out.flush()?;
    Ok(())
}

fn tsv_line(r: &EventRow) -> String {
    let fields = [
        format_millis(r.event_time),
        r.event_id.clone(),
        r.event_source.clone().unwrap_or_default(),
        r.event_name.clone().unwrap_or_default(),
        r.principal.clone(),
        r.source_ip.clone().unwrap_or_default(),
        r.account.clone().unwrap_or_default(),
        r.region.clone().unwrap_or_default(),
        r.error_code.clone().unwrap_or_default(),
    ];
    tsv_row(&fields)
}

pub fn render_table(rows: &[EventRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                format_millis(r.event_time),
                r.event_name.clone().unwrap_or_else(|| "-".into()),
                r.event_source
                    .as_deref()
                    .map(|s| s.trim_end_matches(".amazonaws.com").to_string())
                    .unwrap_or_else(|| "-".into()),
                r.principal.clone(),
                r.source_ip.clone().unwrap_or_default(),
                r.account.clone().unwrap_or_default(),
                r.region.clone().unwrap_or_default(),
                r.error_code.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["TIME", "EVENT", "SERVICE", "PRINCIPAL", "SOURCE IP", "ACCOUNT", "REGION", "ERROR"], &cells, 80)
}
