//! Outputs for other tools: stored events and alerts as JSON Lines (the records verbatim, the
//! alerts as the CLI prints them) and as OCSF records — API Activity (class 6003) for events,
//! Detection Finding (class 2004) for alerts — for SIEMs and data lakes that speak OCSF.

pub mod ocsf;

/// What an export writes per item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Events: the original CloudTrail record; alerts: the CLI's JSON.
    Jsonl,
    /// OCSF 1.1 records.
    Ocsf,
}

/// One stored event as a line of `format` (without the newline).
pub fn event_line(row: &store::EventRow, format: ExportFormat) -> String {
    match format {
        ExportFormat::Jsonl => row.raw.clone(),
        ExportFormat::Ocsf => ocsf::api_activity(&row.raw).to_string(),
    }
}

/// One alert (with its events' ids) as a line of `format` (without the newline).
pub fn alert_line(alert: &store::Alert, event_ids: &[String], format: ExportFormat) -> String {
    match format {
        ExportFormat::Jsonl => {
            let mut v = alert.to_json();
            v["events"] = serde_json::json!(event_ids);
            v.to_string()
        }
        ExportFormat::Ocsf => ocsf::detection_finding(alert, event_ids).to_string(),
    }
}
