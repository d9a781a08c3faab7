//! `trailwatch rules test|list|lint`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Value};

use super::Findings;
use crate::cli::{RulesListArgs, RulesTestArgs};
use crate::output::{table, terminal_safe, tsv_field, Format};

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
    let (rules, errors) = detect::RuleSet::load(&args.rules);
    for e in &errors {
        eprintln!("trailwatch: rule not loaded: {}", terminal_safe(&e.to_string()));
    }
    match args.format {
        Format::Json | Format::Jsonl => {
            let rows: Vec<Value> = rules
                .rules
                .iter()
                .map(|r| {
                    json!({"id": r.id, "title": r.title, "level": r.level, "status": r.status,
                               "pack": pack(&args.rules, &r.file), "file": r.file, "tags": r.tags})
                })
                .collect();
            if args.format == Format::Json {
                println!("{}", Value::Array(rows));
            } else {
                rows.iter().for_each(|r| println!("{r}"));
            }
        }
        Format::Tsv => {
            for r in &rules.rules {
                let cells = [r.id.as_str(), &r.title, &r.level, &r.status, &pack(&args.rules, &r.file)];
                println!("{}", cells.iter().map(|c| tsv_field(c)).collect::<Vec<_>>().join("\t"));
            }
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = rules
                .rules
                .iter()
                .map(|r| {
                    vec![r.id.clone(), r.level.clone(), r.status.clone(), pack(&args.rules, &r.file), r.title.clone()]
                })
                .collect();
            print!("{}", table(&["ID", "LEVEL", "STATUS", "PACK", "TITLE"], &rows, 80));
            println!("{} rules, {} not loaded", rules.rules.len(), errors.len());
        }
    }
    Ok(())
}

pub fn lint(args: RulesListArgs) -> anyhow::Result<()> {
    let (rules, errors) = detect::RuleSet::load(&args.rules);
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
    for e in &errors {
        eprintln!("trailwatch: rule not loaded: {}", terminal_safe(&e.to_string()));
    }
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut events = 0u64;
    let mut matches = 0u64;
    let mut bad = 0u64;
    let mut on_record = |record: &Value, out: &mut dyn Write| -> std::io::Result<()> {
        events += 1;
        let event_id = record.get("eventID").and_then(Value::as_str).unwrap_or("");
        for rule in rules.matching(record) {
            matches += 1;
            match args.format {
                Format::Tsv => writeln!(out, "{}\t{}", tsv_field(&rule.id), tsv_field(event_id))?,
                Format::Json | Format::Jsonl => writeln!(
                    out,
                    "{}",
                    json!({"rule": rule.id, "title": rule.title, "level": rule.level, "eventID": event_id})
                )?,
                Format::Table => writeln!(
                    out,
                    "{}  {}  {}  {}",
                    terminal_safe(event_id),
                    terminal_safe(&rule.level),
                    terminal_safe(&rule.id),
                    terminal_safe(&rule.title)
                )?,
            }
        }
        Ok(())
    };
    read_events(&args.events, &mut |r| on_record(r, &mut out), &mut bad)?;
    out.flush()?;
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

/// Calls `f` with each record of a JSON Lines file or a CloudTrail log file (gzip'd or not).
fn read_events(path: &Path, f: &mut dyn FnMut(&Value) -> std::io::Result<()>, bad: &mut u64) -> anyhow::Result<()> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut head = [0u8; 2];
    let n = file.read(&mut head)?;
    let is_gzip = n == 2 && head == [0x1f, 0x8b];
    let file = File::open(path)?;
    if !is_gzip && first_line_is_a_record(path)? {
        for (i, line) in BufReader::with_capacity(1 << 20, file).lines().enumerate() {
            let line = line.with_context(|| format!("reading {} line {}", path.display(), i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.is_object() => f(&v)?,
                _ => *bad += 1,
            }
        }
        return Ok(());
    }
    let mut reader = model::LogFileReader::new(file).with_context(|| format!("reading {}", path.display()))?;
    while let Some(text) = reader.next_record().with_context(|| format!("reading {}", path.display()))? {
        let v: Value = serde_json::from_str(text).with_context(|| format!("a record of {}", path.display()))?;
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
