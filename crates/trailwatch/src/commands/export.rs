//! `trailwatch export events|alerts`: JSON Lines or OCSF for other tools.

use std::io::Write;

use anyhow::Context;

use super::{now_millis, open_store, Open};
use crate::cli::{ExportAlertsArgs, ExportEventsArgs, ExportFormat};

fn format(f: ExportFormat) -> export::ExportFormat {
    match f {
        ExportFormat::Jsonl => export::ExportFormat::Jsonl,
        ExportFormat::Ocsf => export::ExportFormat::Ocsf,
    }
}

/// Where lines go: stdout, or a temporary file beside `--out` renamed into place at the end,
/// so a file at that name is always a complete export.
struct Output {
    out: Box<dyn Write>,
    file: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Output {
    fn open(out: Option<&std::path::Path>) -> anyhow::Result<Output> {
        match out {
            None => Ok(Output { out: Box::new(std::io::BufWriter::new(std::io::stdout().lock())), file: None }),
            Some(path) => {
                let partial = path.with_extension("partial");
                // Events and alerts: readable by their owner only, like the store.
                use std::os::unix::fs::OpenOptionsExt;
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&partial)
                    .with_context(|| format!("creating {}", partial.display()))?;
                Ok(Output { out: Box::new(std::io::BufWriter::new(f)), file: Some((partial, path.to_path_buf())) })
            }
        }
    }

    fn line(&mut self, line: &str) -> std::io::Result<()> {
        self.out.write_all(line.as_bytes())?;
        self.out.write_all(b"\n")
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.out.flush().context("writing the export")?;
        drop(self.out);
        if let Some((partial, path)) = self.file {
            std::fs::rename(&partial, &path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        }
        Ok(())
    }
}

pub fn events(args: ExportEventsArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, Open::Existing)?;
    let mut query = args.filters.query(now_millis())?;
    query.limit = (args.limit > 0).then_some(args.limit);
    let mut out = Output::open(args.out.as_deref())?;
    let fmt = format(args.format);
    let (mut written, mut failed) = (0u64, None);
    store.events().for_each_event(&query, &mut |row| match out.line(&export::event_line(&row, fmt)) {
        Ok(()) => {
            written += 1;
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    if let Some(e) = failed {
        return Err(e).context("writing the export");
    }
    out.finish()?;
    if let Some(path) = &args.out {
        eprintln!("trailwatch export: {written} events → {}", path.display());
    }
    Ok(())
}

pub fn alerts(args: ExportAlertsArgs) -> anyhow::Result<()> {
    let filter = super::alerts::filter(args.state.as_deref(), args.level.as_deref(), args.rule.as_deref(), 0)?;
    let store = open_store(&args.store, Open::Existing)?;
    let alerts = store.state().alerts(&filter)?;
    let mut out = Output::open(args.out.as_deref())?;
    for a in &alerts {
        let ids = store.state().alert_event_ids(a.id)?;
        out.line(&export::alert_line(a, &ids, format(args.format))).context("writing the export")?;
    }
    out.finish()?;
    if let Some(path) = &args.out {
        eprintln!("trailwatch export: {} alerts → {}", alerts.len(), path.display());
    }
    Ok(())
}
