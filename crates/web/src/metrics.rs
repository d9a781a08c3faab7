//! `/metrics`: Prometheus text exposition. The counters registered in the process's
//! registry (ingest, rule evaluation, filters, retention: see `telemetry`), then gauges read
//! from the store: events, quarantined objects, alerts by level and state, outbox backlog,
//! integrity findings and silent regions, integration state and lag per account and region.

use std::fmt::Write as _;

use telemetry::label_value as label;

use crate::WebState;

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub fn render(state: &WebState, now_ms: i64) -> String {
    let mut out = String::new();
    // The counters the running components registered (ingest, rules, filters, retention).
    state.metrics.render(&mut out);
    if let Err(e) = store_gauges(&mut out, state, now_ms) {
        tracing::warn!(error = %e, "metrics: reading the store failed");
        header(&mut out, "trailwatch_store_up", "gauge", "1 when the store answered the metrics queries.");
        let _ = writeln!(out, "trailwatch_store_up 0");
    }
    out
}

fn store_gauges(out: &mut String, state: &WebState, now_ms: i64) -> Result<(), Box<dyn std::error::Error>> {
    let store = &state.store;
    let stats = store.stats()?;
    header(out, "trailwatch_store_up", "gauge", "1 when the store answered the metrics queries.");
    let _ = writeln!(out, "trailwatch_store_up 1");
    header(out, "trailwatch_store_events", "gauge", "Events in the store.");
    let _ = writeln!(out, "trailwatch_store_events {}", stats.events);
    header(out, "trailwatch_store_objects", "gauge", "Objects in the ingest ledger by status.");
    let _ = writeln!(out, "trailwatch_store_objects{{status=\"committed\"}} {}", stats.objects_committed);
    let _ = writeln!(out, "trailwatch_store_objects{{status=\"quarantined\"}} {}", stats.objects_quarantined);

    let storage = store.events().storage()?;
    header(out, "trailwatch_store_bytes", "gauge", "Bytes the store occupies (SQLite: file and WAL).");
    let _ = writeln!(out, "trailwatch_store_bytes {}", storage.bytes);
    header(out, "trailwatch_store_free_bytes", "gauge", "Of those, free pages reused by new data.");
    let _ = writeln!(out, "trailwatch_store_free_bytes {}", storage.free_bytes);

    let info = state.info.load_full();
    if !info.forwarders.is_empty() {
        let last = store.events().last_position()?;
        header(out, "trailwatch_forward_delivered_total", "counter", "Events each forwarder's sink accepted.");
        let cursors: Vec<_> = info
            .forwarders
            .iter()
            .map(|name| store.events().forward_cursor(name).map(|c| (name, c)))
            .collect::<Result<_, _>>()?;
        for (name, c) in &cursors {
            let n = c.as_ref().map_or(0, |c| c.delivered);
            let _ = writeln!(out, "trailwatch_forward_delivered_total{{forwarder=\"{}\"}} {n}", label(name));
        }
        header(out, "trailwatch_forward_failing", "gauge", "1 while a forwarder's last delivery failed.");
        for (name, c) in &cursors {
            let failing = c.as_ref().is_some_and(|c| c.last_error.is_some()) as u8;
            let _ = writeln!(out, "trailwatch_forward_failing{{forwarder=\"{}\"}} {failing}", label(name));
        }
        header(out, "trailwatch_forward_behind", "gauge", "1 while a forwarder has not delivered the newest event.");
        for (name, c) in &cursors {
            let behind = c.as_ref().is_none_or(|c| c.position < last) as u8;
            let _ = writeln!(out, "trailwatch_forward_behind{{forwarder=\"{}\"}} {behind}", label(name));
        }
    }

    header(out, "trailwatch_alerts", "gauge", "Alerts by level and state.");
    let alerts = store.state().alerts(&store::AlertFilter::default())?;
    for level in store::alerts::LEVELS {
        for st in ["open", "acknowledged", "resolved"] {
            let n = alerts.iter().filter(|a| a.level.eq_ignore_ascii_case(level) && a.state.as_str() == st).count();
            let _ = writeln!(out, "trailwatch_alerts{{level=\"{level}\",state=\"{st}\"}} {n}");
        }
    }
    header(out, "trailwatch_outbox_pending", "gauge", "Alert deliveries not yet accepted by their sink.");
    header(out, "trailwatch_outbox_failing", "gauge", "Pending deliveries that failed at least once.");
    header(out, "trailwatch_outbox_oldest_timestamp_seconds", "gauge", "Creation time of the oldest pending delivery.");
    for b in store.state().outbox_backlog()? {
        let sink = label(&b.sink);
        let _ = writeln!(out, "trailwatch_outbox_pending{{sink=\"{sink}\"}} {}", b.pending);
        let _ = writeln!(out, "trailwatch_outbox_failing{{sink=\"{sink}\"}} {}", b.failing);
        if let Some(t) = b.oldest {
            let _ = writeln!(out, "trailwatch_outbox_oldest_timestamp_seconds{{sink=\"{sink}\"}} {}", t / 1000);
        }
    }
    header(out, "trailwatch_integrity_findings", "gauge", "Digest validation findings by kind.");
    let findings = store.state().integrity_findings()?;
    let mut kinds: Vec<&str> = findings.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for k in kinds {
        let n = findings.iter().filter(|f| f.kind == k).count();
        let _ = writeln!(out, "trailwatch_integrity_findings{{kind=\"{}\"}} {n}", label(k));
    }
    header(out, "trailwatch_integrity_silent_regions", "gauge", "Account/regions whose logs or digests stopped.");
    let _ = writeln!(out, "trailwatch_integrity_silent_regions {}", store.state().silences()?.len());
    header(
        out,
        "trailwatch_integrity_verified_timestamp_seconds",
        "gauge",
        "End of the newest verified digest per chain.",
    );
    for c in store.state().integrity_chains()? {
        if let Some(end) = c.newest_end {
            let _ = writeln!(
                out,
                "trailwatch_integrity_verified_timestamp_seconds{{account=\"{}\",account_id=\"{}\",region=\"{}\"}} {}",
                label(&c.account),
                label(&c.account_id),
                label(&c.region),
                end / 1000
            );
        }
    }
    let rows = crate::pages::status::integration_rows(state, now_ms).map_err(|e| e.message)?;
    header(
        out,
        "trailwatch_integration_up",
        "gauge",
        "1 when the account/region's integration is active (or wired), 0 otherwise.",
    );
    for r in &rows {
        let up = u8::from(r.state == "active" || r.state == "wired");
        let _ = writeln!(
            out,
            "trailwatch_integration_up{{account=\"{}\",region=\"{}\",state=\"{}\"}} {up}",
            label(&r.account),
            label(&r.region),
            r.state
        );
    }
    header(
        out,
        "trailwatch_integration_lag_seconds",
        "gauge",
        "Age of the newest event stored per account and region.",
    );
    header(
        out,
        "trailwatch_integration_newest_event_timestamp_seconds",
        "gauge",
        "eventTime of the newest event stored per account and region.",
    );
    header(
        out,
        "trailwatch_integration_last_notification_timestamp_seconds",
        "gauge",
        "When the last notification arrived per account and region.",
    );
    for r in &rows {
        let labels = format!("account=\"{}\",region=\"{}\"", label(&r.account), label(&r.region));
        if let Some(lag) = r.lag_seconds {
            let _ = writeln!(out, "trailwatch_integration_lag_seconds{{{labels}}} {lag}");
        }
        if let Some(ms) = r.newest_event_ms {
            let _ = writeln!(out, "trailwatch_integration_newest_event_timestamp_seconds{{{labels}}} {}", ms / 1000);
        }
        if let Some(ms) = r.last_notification_ms {
            let _ =
                writeln!(out, "trailwatch_integration_last_notification_timestamp_seconds{{{labels}}} {}", ms / 1000);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
