//! `trailwatch rules test|list|lint`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::Findings;
use crate::cli::{RulesListArgs, RulesRunArgs, RulesTestArgs};
use crate::output::{table, terminal_safe, tsv_field, tsv_row, Format};

/// The rules `list` and `lint` work on: `--rules`, else the configured ones (`settings`).
fn selected(
    args: &RulesListArgs,
    settings: &crate::config::DetectionConfig,
) -> (detect::RuleSet, Vec<detect::LoadError>) {
    match &args.rules {
        Some(path) => detect::RuleSet::load(path),
        None => detect::RuleSet::load_sources(&crate::detection_setup::sources(settings)),
    }
}

/// The pack a rule comes from: `builtin/<pack>` for the built-in ones, else the first folder
/// below the path given (or the file's folder).
fn pack_of(args: &RulesListArgs, file: &Path) -> String {
    if let Ok(rel) = file.strip_prefix("builtin") {
        let first = rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned());
        return format!("builtin/{}", first.unwrap_or_default());
    }
    match &args.rules {
        Some(root) => pack(root, file),
        None => file.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    }
}

/// Events attached to alerts per rule, when the selected store exists.
fn hits(args: &RulesListArgs) -> std::collections::HashMap<String, u64> {
    let Ok(target) = super::store_target(&args.store) else { return Default::default() };
    if let crate::config::StoreConfig::Sqlite { path } = &target {
        if !path.exists() {
            return Default::default();
        }
    }
    super::open_target(&target, super::Open::Existing)
        .and_then(|s| Ok(s.state().rule_hits()?))
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

/// The pack a rule comes from: the first folder below the path given (or the file's folder).
fn pack(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    let name = |p: Option<&std::ffi::OsStr>| p.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match rel.parent().and_then(|p| p.components().next()) {
        Some(first) => name(Some(first.as_os_str())),
        // A rule directly in the given folder (or the given file): that folder's name.
        None if root.is_dir() => name(root.file_name()),
        None => name(file.parent().and_then(Path::file_name)),
    }
}

pub fn list(args: RulesListArgs) -> anyhow::Result<()> {
    let (settings, _) = crate::detection_setup::settings(&args.store)?;
    let (rules, errors) = selected(&args, &settings);
    crate::detection_setup::report_load_errors(&errors);
    let hits = hits(&args);
    // Rules, then correlations (which have no file of their own in the set).
    struct Row {
        id: String,
        title: String,
        level: String,
        status: String,
        pack: String,
        file: String,
        hits: u64,
    }
    let mut rows: Vec<Row> = rules
        .rules
        .iter()
        .map(|r| Row {
            id: r.id.clone(),
            title: r.title.clone(),
            level: r.level.clone(),
            status: r.status.clone(),
            pack: pack_of(&args, &r.file),
            file: r.file.display().to_string(),
            hits: hits.get(&r.id).copied().unwrap_or(0),
        })
        .collect();
    // The built-in detector that is not a Sigma rule, when the configured rules are listed.
    if args.rules.is_none() && settings.new_region_learning_ms.is_some() {
        let id = ingest::inline_detection::NEW_REGION_RULE_ID;
        rows.push(Row {
            id: id.into(),
            title: ingest::inline_detection::NEW_REGION_TITLE.into(),
            level: "medium".into(),
            status: "detector".into(),
            pack: "builtin/human-error".into(),
            file: String::new(),
            hits: hits.get(id).copied().unwrap_or(0),
        });
    }
    // Always on: records detection could not read whole.
    if args.rules.is_none() {
        let id = ingest::inline_detection::INCOMPLETE_SCAN_RULE_ID;
        rows.push(Row {
            id: id.into(),
            title: ingest::inline_detection::INCOMPLETE_SCAN_TITLE.into(),
            level: "medium".into(),
            status: "detector".into(),
            pack: "builtin".into(),
            file: String::new(),
            hits: hits.get(id).copied().unwrap_or(0),
        });
    }
    rows.extend(rules.correlations.iter().map(|c| Row {
        id: c.id.clone(),
        title: c.title.clone(),
        level: c.level.clone(),
        status: "correlation".into(),
        pack: String::new(),
        file: String::new(),
        hits: hits.get(&c.id).copied().unwrap_or(0),
    }));
    match args.format {
        Format::Json | Format::Jsonl => {
            let values: Vec<Value> = rows
                .iter()
                .map(|r| {
                    json!({"id": r.id, "title": r.title, "level": r.level, "status": r.status,
                           "pack": r.pack, "file": r.file, "hits": r.hits})
                })
                .collect();
            if args.format == Format::Json {
                println!("{}", Value::Array(values));
            } else {
                values.iter().for_each(|r| println!("{r}"));
            }
        }
        Format::Tsv => {
            for r in &rows {
                let hits = r.hits.to_string();
                let cells = [r.id.as_str(), &r.title, &r.level, &r.status, &r.pack, &hits];
                println!("{}", tsv_row(&cells));
            }
        }
        Format::Table => {
            let rows: Vec<Vec<String>> =
                rows.into_iter().map(|r| vec![r.id, r.level, r.status, r.pack, r.hits.to_string(), r.title]).collect();
            print!("{}", table(&["ID", "LEVEL", "STATUS", "PACK", "HITS", "TITLE"], &rows, 80));
            println!(
                "{} rules, {} correlations, {} not loaded",
                rules.rules.len(),
                rules.correlations.len(),
                errors.len()
            );
        }
    }
    Ok(())
}

pub fn lint(args: RulesListArgs) -> anyhow::Result<()> {
    let (rules, errors) = selected(&args, &crate::detection_setup::settings(&args.store)?.0);
    let mut findings: Vec<(String, String, &str, String)> = errors
        .iter()
        .map(|e| {
            let at = format!("{}{}", e.file.display(), e.line.map(|l| format!(":{l}")).unwrap_or_default());
            (at, String::new(), "error", e.reason.clone())
        })
        .collect();
    findings.extend(rules.lint().into_iter().map(|l| (l.file.display().to_string(), l.rule, l.severity, l.message)));
    let failed = findings.iter().filter(|f| f.2 == "error").count();
    match args.format {
        Format::Json | Format::Jsonl => {
            let rows: Vec<Value> = findings
                .iter()
                .map(|(f, r, sev, m)| json!({"file": f, "rule": r, "severity": sev, "message": m}))
                .collect();
            println!("{}", json!({"ok": failed == 0, "rules": rules.rules.len(), "findings": rows}));
        }
        _ => {
            for (f, r, sev, m) in &findings {
                println!("{sev}: {} {}: {}", terminal_safe(f), terminal_safe(r), terminal_safe(m));
            }
            println!("{} rules loaded; {failed} errors, {} warnings", rules.rules.len(), findings.len() - failed);
        }
    }
    if failed > 0 {
        return Err(Findings(failed).into());
    }
    Ok(())
}

pub fn test(args: RulesTestArgs) -> anyhow::Result<()> {
    let (rules, errors) = detect::RuleSet::load(&args.rules);
    crate::detection_setup::report_load_errors(&errors);
    let mut totals = Totals::default();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let json_lines = is_json_lines(&args.events)?;
    if json_lines && !rules.has_correlations() {
        json_lines_parallel(&args.events, &rules, args.format, &mut out, &mut totals)?;
    } else {
        // Correlations need the records one after the other, in file order.
        let mut state = detect::correlation::State::default();
        let mut buf = Vec::new();
        let mut on_record = |record: &Value| -> std::io::Result<()> {
            totals.events += 1;
            totals.matches += write_matches(&rules, &mut state, record, args.format, &mut buf);
            out.write_all(&buf)?;
            buf.clear();
            Ok(())
        };
        if json_lines {
            let file = File::open(&args.events).with_context(|| format!("opening {}", args.events.display()))?;
            for line in BufReader::with_capacity(1 << 20, file).lines() {
                let line = line.with_context(|| format!("reading {}", args.events.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                match rules.parse_record(line.as_bytes()) {
                    Ok(v) if v.is_object() => on_record(&v)?,
                    _ => totals.bad += 1,
                }
            }
        } else {
            read_log_file(&args.events, &rules, &mut on_record)?;
        }
    }
    out.flush()?;
    let Totals { events, matches, bad } = totals;
    if args.format == Format::Table {
        println!(
            "{events} events, {} rules ({} not loaded), {matches} matches{}",
            rules.rules.len(),
            errors.len(),
            if bad > 0 { format!(", {bad} lines not JSON objects") } else { String::new() }
        );
    }
    if bad > 0 {
        eprintln!("trailwatch: {bad} lines of {} are not JSON objects and were skipped", args.events.display());
    }
    Ok(())
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    events: u64,
    matches: u64,
    bad: u64,
}

/// Appends one output line per rule (or correlation) that fires on `record`; returns how many.
fn write_matches(
    rules: &detect::RuleSet,
    state: &mut detect::correlation::State,
    record: &Value,
    format: Format,
    out: &mut Vec<u8>,
) -> u64 {
    let event_id = record.get("eventID").and_then(Value::as_str).unwrap_or("");
    let mut n = 0;
    for rule in rules.hits(state, record) {
        n += 1;
        // Writing to a Vec cannot fail.
        let _ = match format {
            Format::Tsv => writeln!(out, "{}\t{}", tsv_field(rule.id), tsv_field(event_id)),
            Format::Json | Format::Jsonl => writeln!(
                out,
                "{}",
                json!({"rule": rule.id, "title": rule.title, "level": rule.level, "eventID": event_id})
            ),
            Format::Table => writeln!(
                out,
                "{}  {}  {}  {}",
                terminal_safe(event_id),
                terminal_safe(rule.level),
                terminal_safe(rule.id),
                terminal_safe(rule.title)
            ),
        };
    }
    n
}

/// Bytes of JSON Lines handed to a worker at a time (cut at a line end).
const CHUNK: usize = 1 << 20;

/// JSON Lines on every core: one thread reads chunks of whole lines, workers parse and
/// evaluate them, and the output is written in input order.
fn json_lines_parallel(
    path: &Path,
    rules: &detect::RuleSet,
    format: Format,
    out: &mut dyn Write,
    totals: &mut Totals,
) -> anyhow::Result<()> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let (chunk_tx, chunk_rx) = crossbeam_channel::bounded::<(u64, Vec<u8>)>(workers * 2);
    let (done_tx, done_rx) = crossbeam_channel::bounded::<(u64, Vec<u8>, Totals)>(workers * 2);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..workers {
            let (chunk_rx, done_tx) = (chunk_rx.clone(), done_tx.clone());
            scope.spawn(move || {
                for (seq, chunk) in chunk_rx {
                    let mut t = Totals::default();
                    // No correlations on this path: the state stays empty.
                    let mut state = detect::correlation::State::default();
                    let mut text = Vec::with_capacity(4096);
                    for line in chunk.split(|b| *b == b'\n') {
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        match rules.parse_record(line) {
                            Ok(v) if v.is_object() => {
                                t.events += 1;
                                t.matches += write_matches(rules, &mut state, &v, format, &mut text);
                            }
                            _ => t.bad += 1,
                        }
                    }
                    if done_tx.send((seq, text, t)).is_err() {
                        return;
                    }
                }
            });
        }
        drop((chunk_rx, done_tx));
        let reader = scope.spawn(move || -> std::io::Result<()> {
            let mut carry = Vec::new();
            let mut seq = 0;
            loop {
                let mut buf = std::mem::take(&mut carry);
                let start = buf.len();
                buf.resize(start + CHUNK, 0);
                let n = read_full(&mut file, &mut buf[start..])?;
                buf.truncate(start + n);
                if n == 0 {
                    if !buf.is_empty() {
                        let _ = chunk_tx.send((seq, buf));
                    }
                    return Ok(());
                }
                // Keep the last partial line for the next chunk. The carry holds no line end, so
                // only the new bytes are searched; with none there, the line is longer than the
                // buffer: read on until it ends (a chunk never cuts a line).
                match buf[start..].iter().rposition(|b| *b == b'\n') {
                    Some(end) => carry = buf.split_off(start + end + 1),
                    None => {
                        carry = buf;
                        continue;
                    }
                }
                if chunk_tx.send((seq, buf)).is_err() {
                    return Ok(());
                }
                seq += 1;
            }
        });
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0u64;
        for (seq, text, t) in done_rx {
            pending.insert(seq, text);
            totals.events += t.events;
            totals.matches += t.matches;
            totals.bad += t.bad;
            while let Some(text) = pending.remove(&next) {
                out.write_all(&text)?;
                next += 1;
            }
        }
        reader.join().expect("reader thread").with_context(|| format!("reading {}", path.display()))?;
        Ok(())
    })
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// JSON Lines when the file is not gzip'd and its first non-empty line is a whole JSON
/// object that is not a log file's `{"Records":[…]}`.
fn is_json_lines(path: &Path) -> anyhow::Result<bool> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut head = [0u8; 2];
    if file.read(&mut head)? == 2 && head == [0x1f, 0x8b] {
        return Ok(false);
    }
    first_line_is_a_record(path)
}

/// Calls `f` with each record of a CloudTrail log file (gzip'd or not).
fn read_log_file(
    path: &Path,
    rules: &detect::RuleSet,
    f: &mut dyn FnMut(&Value) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = model::LogFileReader::new(file).with_context(|| format!("reading {}", path.display()))?;
    while let Some(text) = reader.next_record().with_context(|| format!("reading {}", path.display()))? {
        let v = rules.parse_record(text.as_bytes()).with_context(|| format!("a record of {}", path.display()))?;
        f(&v)?;
    }
    Ok(())
}

/// JSON Lines when the first non-empty line is a whole JSON object that is not a log file's
/// `{"Records":[…]}`.
fn first_line_is_a_record(path: &Path) -> anyhow::Result<bool> {
    let file = File::open(path)?;
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        return Ok(matches!(serde_json::from_str::<Value>(&line), Ok(Value::Object(m)) if !m.contains_key("Records")));
    }
    Ok(true)
}

/// `rules run`: the rules over stored events since T, through the same alert path as ingest
/// (events already attached to a rule's alerts add nothing, so re-running is harmless).
pub fn run(args: RulesRunArgs) -> anyhow::Result<()> {
    let store = super::open_store(&args.store, super::Open::Existing)?;
    let (settings, sinks) = crate::detection_setup::settings(&args.store)?;
    let rules = match &args.rules {
        Some(path) => crate::detection_setup::load(&[detect::RuleSource::Path(path.clone())]),
        None => crate::detection_setup::load_rules(&settings),
    };
    let now = super::now_millis();
    let query = store::EventQuery {
        since: Some(crate::cli::parse_time(&args.since, now, false)?),
        until: args.until.as_deref().map(|u| crate::cli::parse_time(u, now, true)).transpose()?,
        ..Default::default()
    };
    // Regions are learnt on the way in only: a run over history does not replay them.
    let no_regions = crate::config::DetectionConfig { new_region_learning_ms: None, ..settings.clone() };
    let mut detection = crate::detection_setup::for_pipeline(
        &store,
        &no_regions,
        rules.clone(),
        crate::detection_setup::policy(&settings, &sinks),
    )?;
    // Matches are gathered first (searches run newest first) and fed oldest first, as ingest would.
    let mut matched: Vec<(model::ParsedEvent, detect::Scan)> = Vec::new();
    let mut scanned = 0u64;
    let mut failure = None;
    store.events().for_each_event(&query, &mut |row| {
        scanned += 1;
        let scan = rules.scan(&row.raw, row.event_name.as_deref(), row.event_source.as_deref());
        if !scan.is_empty() {
            match model::ParsedEvent::from_json(&row.raw) {
                Ok(e) => matched.push((e, scan)),
                Err(e) => {
                    failure = Some(anyhow::anyhow!("stored event {} does not parse: {e}", row.event_id));
                    return false;
                }
            }
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    matched.sort_by_key(|(e, _)| e.event_time);
    let mut hits = ingest::inline_detection::ObjectHits::default();
    for (e, scan) in matched {
        hits.add_event(&detection, &e, scan);
    }
    let mut writer = store.writer()?;
    let recorded = hits.record(&mut *writer, &mut detection)?;
    writer.commit()?;
    match args.format {
        Format::Json | Format::Jsonl => {
            println!("{}", json!({"events": scanned, "hits": recorded.hits, "alerts_opened": recorded.opened}))
        }
        Format::Tsv => println!("{scanned}\t{}\t{}", recorded.hits, recorded.opened),
        Format::Table => println!(
            "scanned {} events with {} rules: {} matches, {} new alerts",
            super::thousands(scanned),
            rules.rules.len() + rules.correlations.len(),
            super::thousands(recorded.hits),
            super::thousands(recorded.opened)
        ),
    }
    Ok(())
}
