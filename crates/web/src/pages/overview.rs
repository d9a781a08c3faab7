//! `/`: what happened in the chosen range, at a glance.

use axum::extract::{Query, State};
use axum::Extension;
use maud::html;
use serde::{Deserialize, Serialize};
use store::{AlertFilter, AlertState, Dimension, EventQuery, Summary, SummarySpec};

use super::{blocking, PageError, PageResult};
use crate::auth::CurrentUser;
use crate::html::{self as h, badge, kpi, thousands};
use crate::{chart, WebState};

#[derive(Debug, Default, Deserialize)]
pub struct OverviewParams {
    /// `24h` (default), `7d` or `30d`.
    pub range: Option<String>,
    /// Stack the chart by `account` (default) or `region`.
    pub by: Option<String>,
}

/// What the overview counts for `range`, split by `by` (account or region).
pub fn summary_query(range: &Range, by: Dimension) -> (EventQuery, SummarySpec) {
    let q = EventQuery { since: Some(range.start), until: Some(range.end - 1), ..Default::default() };
    let spec = SummarySpec {
        bucket_ms: range.bucket_ms,
        series: Some(by),
        tops: vec![Dimension::EventName, Dimension::Principal, Dimension::ErrorCode, Dimension::SourceIp],
        top_n: 10,
    };
    (q, spec)
}

/// A chosen range: its start, end, bucket and name.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub name: &'static str,
    pub start: i64,
    pub end: i64,
    pub bucket_ms: i64,
}

pub const RANGES: [(&str, i64, i64); 3] =
    [("24h", 24 * 3_600_000, 3_600_000), ("7d", 7 * 86_400_000, 6 * 3_600_000), ("30d", 30 * 86_400_000, 86_400_000)];

impl Range {
    pub fn parse(name: Option<&str>, now: i64) -> Result<Range, PageError> {
        let name = name.unwrap_or("24h");
        let (name, span, bucket) = RANGES
            .iter()
            .find(|r| r.0 == name)
            .copied()
            .ok_or_else(|| PageError::bad_request(format!("range must be one of 24h, 7d, 30d, not {name:?}")))?;
        // Whole buckets: the first bar is not a sliver of an hour.
        let end = (now / bucket + 1) * bucket;
        Ok(Range { name, start: end - span, end, bucket_ms: bucket })
    }
}

/// How big the store is and how far back it reaches.
#[derive(Debug, Clone, Serialize)]
pub struct StorageFigures {
    pub bytes: u64,
    pub free_bytes: u64,
    pub events: u64,
    pub oldest_event: Option<String>,
    pub retention: Option<String>,
}

/// Everything the overview shows (the page and `/api/v1/overview`).
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub range: String,
    pub since: String,
    pub until: String,
    pub bucket_seconds: i64,
    pub by: String,
    pub events: u64,
    pub errors: u64,
    pub access_denied: u64,
    pub histogram: Vec<serde_json::Value>,
    pub top_event_names: Vec<(String, u64)>,
    pub top_principals: Vec<(String, u64)>,
    pub top_error_codes: Vec<(String, u64)>,
    pub top_source_ips: Vec<(String, u64)>,
    pub open_alerts: Vec<(String, u64)>,
    pub integrations: Vec<crate::pages::status::IntegrationRow>,
    pub integrity_findings: usize,
    pub silent_regions: usize,
    pub storage: StorageFigures,
    #[serde(skip)]
    summary: Summary,
    #[serde(skip)]
    bounds: Range,
}

pub fn overview_data(state: &WebState, params: &OverviewParams, now: i64) -> Result<Overview, PageError> {
    let range = Range::parse(params.range.as_deref(), now)?;
    let by = match params.by.as_deref().unwrap_or("account") {
        "account" => Dimension::Account,
        "region" => Dimension::Region,
        other => return Err(PageError::bad_request(format!("by must be account or region, not {other:?}"))),
    };
    let (q, spec) = summary_query(&range, by);
    let summary = state.store.events().summarize(&q, &spec)?;
    let alerts = state.store.state().alerts(&AlertFilter { state: Some(AlertState::Open), ..Default::default() })?;
    let mut open_alerts: Vec<(String, u64)> = store::alerts::LEVELS.iter().rev().map(|l| (l.to_string(), 0)).collect();
    for a in &alerts {
        if let Some(slot) = open_alerts.iter_mut().find(|(l, _)| l.eq_ignore_ascii_case(&a.level)) {
            slot.1 += 1;
        }
    }
    let integrations = crate::pages::status::integration_rows(state, now)?;
    let (stats, space) = (state.store.stats()?, state.store.events().storage()?);
    let storage = StorageFigures {
        bytes: space.bytes,
        free_bytes: space.free_bytes,
        events: stats.events,
        oldest_event: stats.oldest_event.map(model::timefmt::format_millis),
        retention: state.info.load().retention.clone(),
    };
    Ok(Overview {
        storage,
        range: range.name.into(),
        since: model::timefmt::format_millis(range.start),
        until: model::timefmt::format_millis(range.end),
        bucket_seconds: range.bucket_ms / 1000,
        by: by.as_str().into(),
        events: summary.events,
        errors: summary.errors,
        access_denied: summary.denied,
        histogram: summary
            .histogram
            .iter()
            .map(|p| serde_json::json!({"start": model::timefmt::format_millis(p.start), "series": p.series, "events": p.events}))
            .collect(),
        top_event_names: summary.top(Dimension::EventName).to_vec(),
        top_principals: summary.top(Dimension::Principal).to_vec(),
        top_error_codes: summary.top(Dimension::ErrorCode).to_vec(),
        top_source_ips: summary.top(Dimension::SourceIp).to_vec(),
        open_alerts,
        integrations,
        integrity_findings: state.store.state().integrity_findings()?.len(),
        silent_regions: state.store.state().silences()?.len(),
        summary,
        bounds: range,
    })
}

pub async fn page(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Query(params): Query<OverviewParams>,
) -> PageResult {
    let now = model::timefmt::now_millis();
    let (o, names) =
        blocking(&state, move |s| Ok((overview_data(s, &params, now)?, s.info.load().account_names.clone()))).await?;
    let Range { start, end, bucket_ms: bucket, .. } = o.bounds;
    let account_label = |id: &str| match names.get(id) {
        Some(name) => format!("{name} ({id})"),
        None if id.is_empty() => "(none)".to_owned(),
        None => id.to_owned(),
    };
    let open_total: u64 = o.open_alerts.iter().map(|(_, n)| n).sum();
    let severe: u64 = o.open_alerts.iter().filter(|(l, _)| l == "critical" || l == "high").map(|(_, n)| n).sum();
    let active = o.integrations.iter().filter(|r| r.state == "active").count();
    let range_link = |r: &str| format!("/?range={r}&by={}", o.by);
    let by_link = |b: &str| format!("/?range={}&by={b}", o.range);
    let body = html! {
        h1 { "Overview" span.sub { "last " (o.range) " · " (o.since.replace('T', " ").trim_end_matches('Z')) " → now (UTC)" } }
        div.presets {
            @for (r, _, _) in RANGES { a.active[r == o.range] href=(range_link(r)) { (h::t(&r)) } }
            span.muted { " · stack by " }
            a.active[o.by == "account"] href=(by_link("account")) { "account" }
            a.active[o.by == "region"] href=(by_link("region")) { "region" }
        }
        div.grid.kpis {
            (kpi("Events", &thousands(o.events), "", Some(&format!("in the last {}", o.range))))
            (kpi("Failed calls", &h::percent(o.errors, o.events), if o.errors > 0 { "" } else { "ok" }, Some(&format!("{} with an error code", thousands(o.errors)))))
            (kpi("Access denied", &thousands(o.access_denied), if o.access_denied > 0 { "bad" } else { "ok" }, Some(&format!("{} of all calls", h::percent(o.access_denied, o.events)))))
            (kpi("Open alerts", &thousands(open_total), if severe > 0 { "bad" } else if open_total > 0 { "" } else { "ok" }, Some(&format!("{severe} high or critical"))))
            (kpi("Integrations", &format!("{active} / {}", o.integrations.len()), if active == o.integrations.len() && active > 0 { "ok" } else { "bad" }, Some("account/regions active")))
            (kpi("Storage", &h::bytes(o.storage.bytes), "", Some(&format!("{} events{}{}", thousands(o.storage.events), o.storage.oldest_event.as_deref().map(|t| format!(" since {}", &t[..10.min(t.len())])).unwrap_or_default(), o.storage.retention.as_deref().map(|r| format!(" · kept {r}")).unwrap_or_else(|| " · kept forever".into())))))
            (kpi("Integrity", &if o.integrity_findings == 0 { "verified".to_owned() } else { format!("{} findings", o.integrity_findings) }, if o.integrity_findings == 0 { "ok" } else { "bad" }, Some(&format!("{} silent regions", o.silent_regions))))
        }
        section.card {
            h2 { "Events per " (if bucket >= 86_400_000 { "day" } else if bucket > 3_600_000 { "6 hours" } else { "hour" }) }
            @if o.events == 0 {
                p.empty { "No events in this range." }
            } @else {
                (chart::stacked_bars(&o.summary.histogram, start, end, bucket, |s| if o.by == "account" { account_label(s) } else if s.is_empty() { "(none)".into() } else { s.to_owned() }))
            }
        }
        div.grid.two {
            (top_table("Top event names", "event_name", &o.top_event_names, o.events, false))
            (top_table("Top principals", "principal", &o.top_principals, o.events, false))
            (top_table("Top error codes", "error_code", &o.top_error_codes, o.errors, true))
            (top_table("Top source IPs", "source_ip", &o.top_source_ips, o.events, false))
        }
        div.grid.two {
            section.card {
                h2 { "Open alerts by level" }
                table {
                    tbody {
                        @for (level, n) in &o.open_alerts {
                            tr { td { (badge(level)) } td.num { a href={ "/alerts?state=open&level=" (level) } { (n) } } }
                        }
                    }
                }
            }
            section.card {
                h2 { "Integration status" }
                (crate::pages::status::integration_table(&o.integrations, now, true))
            }
        }
    };
    Ok(h::page("Overview", "/", &user, body))
}

/// A "top values" card; each value links to the events it counts.
fn top_table(title: &str, filter: &str, rows: &[(String, u64)], whole: u64, bad: bool) -> maud::Markup {
    let max = rows.first().map_or(0, |r| r.1);
    html! {
        section.card.bars {
            h2 { (h::t(&title)) }
            @if rows.is_empty() {
                p.empty { "None in this range." }
            } @else {
                table {
                    tbody {
                        @for (value, n) in rows {
                            tr {
                                td.wrap {
                                    @if filter == "principal" {
                                        (h::principal_link(value))
                                        // The same user or role name in two accounts.
                                        @if let Some(account) = h::arn_account(value) {
                                            " " span.muted.small { (h::clip(account, 20)) }
                                        }
                                    } @else {
                                        a href=(h::search_href(filter, value)) { (h::clip(value, 80)) }
                                    }
                                }
                                td.bar { (chart::bar(*n, max, bad)) }
                                td.num { (thousands(*n)) }
                                td.num.muted { (h::percent(*n, whole)) }
                            }
                        }
                    }
                }
            }
        }
    }
}
