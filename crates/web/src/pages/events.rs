//! `/events` (search and live feed), `/events/{id}`, `/principals/{p}`, `/resources/{r}`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use store::{Dimension, EventQuery, EventRow, Page, SummarySpec};

use super::{blocking, given, PageError, PageResult};
use crate::auth::CurrentUser;
use crate::html::{self as h, badge, kpi, thousands};
use crate::{chart, WebState};

/// Rows per page unless `limit` says otherwise.
pub const PAGE_ROWS: usize = 50;
pub const MAX_ROWS: usize = 1000;

/// The search form's fields, named like the CLI's filters.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct EventFilters {
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    pub principal: Option<String>,
    pub source_ip: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `true`/`on`/`1`: only failed calls.
    pub errors: Option<String>,
    pub error_code: Option<String>,
    pub limit: Option<String>,
    /// Keyset cursor: `<eventTime ms>.<row>` of the last row of the previous page.
    pub after: Option<String>,
    /// `rows`: only the table rows (the live feed's refresh).
    #[serde(skip_serializing)]
    pub fragment: Option<String>,
}

impl EventFilters {
    pub fn errors(&self) -> bool {
        matches!(self.errors.as_deref(), Some("true" | "on" | "1" | "yes"))
    }

    pub fn limit(&self) -> Result<usize, PageError> {
        match given(&self.limit) {
            None => Ok(PAGE_ROWS),
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=MAX_ROWS).contains(&n) => Ok(n),
                _ => Err(PageError::bad_request(format!("limit must be 1 to {MAX_ROWS}, not {l:?}"))),
            },
        }
    }

    pub fn to_query(&self, now: i64) -> Result<EventQuery, PageError> {
        let time = |v: &Option<String>, end: bool, name: &str| -> Result<Option<i64>, PageError> {
            given(v)
                .map(|t| {
                    model::timefmt::parse_time(&t, now, end).map_err(|e| PageError::bad_request(format!("{name}: {e}")))
                })
                .transpose()
        };
        let after = match given(&self.after) {
            None => None,
            Some(a) => {
                let parsed = a
                    .split_once('.')
                    .and_then(|(t, r)| Some(Page { event_time: t.parse().ok()?, row: r.parse().ok()? }));
                Some(parsed.ok_or_else(|| PageError::bad_request("after is not a page cursor"))?)
            }
        };
        Ok(EventQuery {
            event_name: given(&self.event_name),
            event_source: given(&self.event_source),
            principal: given(&self.principal),
            source_ip: given(&self.source_ip),
            account: given(&self.account),
            region: given(&self.region),
            since: time(&self.since, false, "since")?,
            until: time(&self.until, true, "until")?,
            errors: self.errors(),
            error_code: given(&self.error_code),
            limit: Some(self.limit()?),
            after,
        })
    }

    /// This search as a query string, at page `after`.
    pub fn href(&self, after: Option<Page>) -> String {
        let mut f = self.clone();
        f.after = after.map(|p| format!("{}.{}", p.event_time, p.row));
        f.fragment = None;
        let pairs: Vec<(&str, String)> = [
            ("event_name", &f.event_name),
            ("event_source", &f.event_source),
            ("principal", &f.principal),
            ("source_ip", &f.source_ip),
            ("account", &f.account),
            ("region", &f.region),
            ("since", &f.since),
            ("until", &f.until),
            ("errors", &f.errors),
            ("error_code", &f.error_code),
            ("limit", &f.limit),
            ("after", &f.after),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect();
        h::query_href("/events", &pairs)
    }
}

/// One result row of the events table.
pub fn event_row(r: &EventRow, names: &HashMap<String, String>) -> Markup {
    html! {
        tr {
            td.time { a href=(h::event_href(&r.event_id)) { (h::time(r.event_time)) } }
            td.wrap.event {
                a href=(h::search_href("event_name", r.event_name.as_deref().unwrap_or(""))) { (h::clip(r.event_name.as_deref().unwrap_or("–"), 64)) }
                div.muted.small { (h::clip(r.event_source.as_deref().unwrap_or(""), 64)) }
            }
            td { (h::principal_link(&r.principal)) }
            td { (h::ip_link(r.source_ip.as_deref())) }
            td.small {
                @if let Some(a) = &r.account {
                    a href=(h::search_href("account", a)) { (h::clip(names.get(a).map(String::as_str).unwrap_or(a), 40)) }
                }
                div.muted { (h::clip(r.region.as_deref().unwrap_or(""), 40)) }
            }
            td { @if let Some(e) = &r.error_code { a href=(h::search_href("error_code", e)) { (badge_error(e)) } } }
        }
    }
}

fn badge_error(code: &str) -> Markup {
    html! { span class={ "badge " (if store::is_access_denied(code) { "bad" } else { "warn" }) } { (h::t(&code)) } }
}

pub fn events_table(rows: &[EventRow], names: &HashMap<String, String>, live: bool) -> Markup {
    html! {
        table data-live[live] {
            thead { tr { th { "Time (UTC)" } th { "Event" } th { "Principal" } th { "Source IP" } th { "Account / region" } th { "Error" } } }
            tbody {
                @for r in rows { (event_row(r, names)) }
                @if rows.is_empty() { tr { td colspan="6" .empty { "No events match." } } }
            }
        }
    }
}

pub async fn search(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Query(filters): Query<EventFilters>,
) -> Result<Response, PageError> {
    let now = model::timefmt::now_millis();
    let q = filters.to_query(now)?;
    let limit = filters.limit()?;
    let (rows, names) =
        blocking(&state, move |s| Ok((s.store.events().search(&q)?, s.info.load().account_names.clone()))).await?;
    if filters.fragment.as_deref() == Some("rows") {
        let body = html! { @for r in &rows { (event_row(r, &names)) } @if rows.is_empty() { tr { td colspan="6" .empty { "No events match." } } } };
        return Ok(Html(body.into_string()).into_response());
    }
    let first_page = given(&filters.after).is_none();
    let next = (rows.len() == limit).then(|| rows.last().map(EventRow::page)).flatten();
    let presets = [("15m", "15 min"), ("1h", "1 h"), ("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d")];
    let f = &filters;
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        h1 { "Events" span.sub { "newest first" } }
        section.card {
            form.filters method="get" action="/events" {
                label { "Event name" input type="text" name="event_name" value=(value(&f.event_name)) placeholder="StopLogging, Delete*"; }
                label { "Event source" input type="text" name="event_source" value=(value(&f.event_source)) placeholder="ec2.amazonaws.com"; }
                label { "Principal" input type="text" name="principal" value=(value(&f.principal)) placeholder="ARN, role, user or person"; }
                label { "Source IP" input type="text" name="source_ip" value=(value(&f.source_ip)) placeholder="203.0.113.*"; }
                label { "Account" input type="text" name="account" value=(value(&f.account)) placeholder="111122223333"; }
                label { "Region" input type="text" name="region" value=(value(&f.region)) placeholder="us-east-1"; }
                label { "Error code" input type="text" name="error_code" value=(value(&f.error_code)) placeholder="AccessDenied"; }
                label { "Since" input type="text" name="since" value=(value(&f.since)) placeholder="24h, 2026-11-01, RFC 3339"; }
                label { "Until" input type="text" name="until" value=(value(&f.until)) placeholder="now"; }
                label.check { input type="checkbox" name="errors" value="true" checked[f.errors()]; "Failed calls only" }
                div.actions {
                    button type="submit" { "Search" }
                    a.button.secondary href="/events" { "Clear" }
                }
            }
            div.presets {
                span.muted.small { "Time range:" }
                @for (v, label) in presets {
                    a.active[f.since.as_deref() == Some(v)] href=(EventFilters { since: Some(v.into()), until: None, ..f.clone() }.href(None)) data-since=(v) { (label) }
                }
            }
        }
        section.card {
            div.pager {
                label.live id="live-indicator" {
                    input type="checkbox" id="live-toggle" disabled[!first_page];
                    span.dot {} "Live (refresh every 5 s)"
                }
                span.muted.small { (rows.len()) " events on this page" }
            }
            (events_table(&rows, &names, first_page))
            div.pager {
                @if first_page { span {} } @else { a href=(f.href(None)) { "← Newest" } }
                @if let Some(p) = next { a href=(f.href(Some(p))) id="older" { "Older →" } }
            }
        }
    };
    Ok(Html(h::page("Events", "/events", &user, body).into_string()).into_response())
}

/// Events of the same request (`requestID`) or shared event (`sharedEventID`) within 15
/// minutes of the event: the other half of a cross-account call, the calls one console
/// action made.
fn related(state: &WebState, row: &EventRow, record: &serde_json::Value) -> Result<Vec<(String, EventRow)>, PageError> {
    let keys: Vec<(&str, String)> = ["requestID", "sharedEventID"]
        .into_iter()
        .filter_map(|k| record.get(k).and_then(|v| v.as_str()).filter(|v| !v.is_empty()).map(|v| (k, v.to_owned())))
        .collect();
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let window = 15 * 60_000;
    let q =
        EventQuery { since: Some(row.event_time - window), until: Some(row.event_time + window), ..Default::default() };
    let mut found = Vec::new();
    state.store.events().for_each_event(&q, &mut |r| {
        if r.event_id != row.event_id {
            for (k, v) in &keys {
                if r.raw.contains(v.as_str()) {
                    let same = serde_json::from_str::<serde_json::Value>(&r.raw)
                        .ok()
                        .is_some_and(|o| o.get(*k).and_then(|x| x.as_str()) == Some(v.as_str()));
                    if same {
                        found.push((k.to_string(), r));
                        break;
                    }
                }
            }
        }
        found.len() < 50
    })?;
    Ok(found)
}

/// Records up to this size are shown (and served by the API) whole; beyond it, as their
/// fields with the large values left out, and whole only as a download. CloudTrail records
/// are a few KiB; a hostile 60 MB one must not cost ~10× that in memory per page view.
pub const RECORD_SHOWN_MAX: usize = 256 << 10;
/// A top-level value of a large record shown up to this size.
const FIELD_SHOWN_MAX: usize = 16 << 10;

/// The record as pages and the API show it, and whether values were left out. A large record
/// is split into its top-level fields without parsing their values (borrowed raw text); only
/// the small ones are parsed.
pub fn shown_record(raw: &str) -> (serde_json::Value, bool) {
    use serde_json::Value;
    if raw.len() <= RECORD_SHOWN_MAX {
        return (serde_json::from_str(raw).unwrap_or(Value::Null), false);
    }
    let Ok(fields) = serde_json::from_str::<std::collections::BTreeMap<String, &serde_json::value::RawValue>>(raw)
    else {
        return (Value::Null, true);
    };
    let mut out = serde_json::Map::new();
    for (k, v) in fields {
        let text = v.get();
        let value = if text.len() <= FIELD_SHOWN_MAX {
            serde_json::from_str(text).unwrap_or(Value::Null)
        } else {
            Value::String(format!("({} bytes, left out here: download the record)", h::thousands(text.len() as u64)))
        };
        out.insert(k, value);
    }
    (Value::Object(out), true)
}

/// `/events/{id}/raw` and `/api/v1/events/{id}/raw`: the record exactly as stored, as a
/// download (never rendered).
pub async fn raw(
    State(state): State<WebState>,
    Path(event_id): Path<String>,
) -> Result<axum::response::Response, PageError> {
    use axum::http::header;
    use axum::response::IntoResponse;
    let id = event_id.clone();
    let row = blocking(&state, move |s| {
        s.store.events().event(&id)?.ok_or_else(|| PageError::not_found(format!("no event with eventID {id:?}")))
    })
    .await?;
    // The file name comes from the record: only characters that cannot break the header.
    let name: String =
        event_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(80).collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"event-{name}.json\"")),
        ],
        row.raw,
    )
        .into_response())
}

pub async fn detail(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Path(event_id): Path<String>,
) -> PageResult {
    let id = event_id.clone();
    let (row, (record, cut), related, names) = blocking(&state, move |s| {
        let row = s
            .store
            .events()
            .event(&id)?
            .ok_or_else(|| PageError::not_found(format!("no event with eventID {id:?}")))?;
        let shown = shown_record(&row.raw);
        let related = related(s, &row, &shown.0)?;
        Ok((row, shown, related, s.info.load().account_names.clone()))
    })
    .await?;
    let pretty = serde_json::to_string_pretty(&record).unwrap_or_else(|_| "null".into());
    let actor = model::ParsedEvent::from_json(&row.raw).ok().map(|e| e.actor);
    let resources = model::resources::identifiers(&record);
    let field = |k: &str| record.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let body = html! {
        h1.wrap { (row.event_name.as_deref().unwrap_or("event")) span.sub { (h::t(&row.event_source.as_deref().unwrap_or(""))) } }
        div.grid.two {
            section.card {
                h2 { "What" }
                dl.facts {
                    dt { "Time" } dd { (h::time(row.event_time)) " UTC" }
                    dt { "Event ID" } dd.mono.wrap { (h::t(&row.event_id)) }
                    dt { "Account" } dd { @if let Some(a) = &row.account { a href=(h::search_href("account", a)) { (h::t(&a)) } @if let Some(n) = names.get(a) { " (" (n) ")" } } }
                    dt { "Region" } dd { @if let Some(r) = &row.region { a href=(h::search_href("region", r)) { (h::t(&r)) } } }
                    dt { "Source IP" } dd { (h::ip_link(row.source_ip.as_deref())) }
                    dt { "User agent" } dd.wrap.small { (h::t(&field("userAgent").unwrap_or_default())) }
                    dt { "Result" } dd {
                        @if let Some(e) = &row.error_code { (badge_error(e)) " " span.wrap { (h::t(&field("errorMessage").unwrap_or_default())) } }
                        @else { (badge("ok")) }
                    }
                    @if let Some(v) = field("requestID") { dt { "Request ID" } dd.mono.wrap { (h::t(&v)) } }
                    @if let Some(v) = field("sharedEventID") { dt { "Shared event ID" } dd.mono.wrap { (h::t(&v)) } }
                    dt { "Type" } dd { (field("eventType").unwrap_or_default()) " " span.muted { (h::t(&field("eventCategory").unwrap_or_default())) } }
                }
            }
            section.card {
                h2 { "Who" }
                dl.facts {
                    dt { "Principal" } dd { (h::principal_link(&row.principal)) }
                    @if let Some(a) = &actor {
                        dt { "Kind" } dd { (h::t(&a.kind.as_str())) }
                        @if let Some(i) = &a.issuer { dt { "Through" } dd { (h::principal_link(i)) } }
                        @if let Some(s) = &a.session_name { dt { "Session" } dd.wrap { (h::t(&s)) } }
                        @if let Some(p) = &a.human { dt { "Person" } dd { (h::principal_link(p)) } }
                        @if let Some(k) = &a.access_key_id { dt { "Access key" } dd.mono { (h::t(&k)) } }
                        dt { "MFA" } dd { (match a.mfa { Some(true) => "yes", Some(false) => "no", None => "not stated" }) }
                        @if a.console { dt { "Console" } dd { "console session" } }
                        @if let Some(s) = &a.invoked_by { dt { "Invoked by" } dd { (h::t(&s)) } }
                    }
                }
            }
        }
        @if !resources.is_empty() {
            section.card {
                h2 { "Resources" }
                ul { @for r in &resources { li { a.wrap href=(h::resource_href(r)) { (h::t(&r)) } } } }
            }
        }
        @if !related.is_empty() {
            section.card {
                h2 { "Same request or shared event" }
                table { tbody { @for (why, r) in &related {
                    tr { td.time { a href=(h::event_href(&r.event_id)) { (h::time(r.event_time)) } } td { (h::clip(r.event_name.as_deref().unwrap_or(""), 64)) } td { (h::principal_link(&r.principal)) } td.muted.small { (h::clip(why, 120)) } td.small { (h::clip(r.account.as_deref().unwrap_or(""), 40)) } }
                } } }
            }
        }
        section.card {
            h2 { "Record" }
            @if cut {
                p.notice.warn {
                    "This record is " (h::bytes(row.raw.len() as u64)) " (CloudTrail's are a few KiB): its large values are left out here. "
                    a href={ (h::event_href(&row.event_id)) "/raw" } { "Download the whole record" }
                }
            }
            pre.json { (h::t(&pretty)) }
            @if !cut { p.small { a href={ (h::event_href(&row.event_id)) "/raw" } { "Download the record" } } }
        }
    };
    Ok(h::page("Event", "/events", &user, body))
}

pub async fn principal(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Path(principal): Path<String>,
) -> PageResult {
    let p = principal.clone();
    let (infos, summary, recent, names) = blocking(&state, move |s| {
        let infos = s.store.events().principals_related(&p, 50)?;
        let q = EventQuery { principal: Some(p.clone()), ..Default::default() };
        let spec = SummarySpec::principal_page(86_400_000, 10);
        let summary = s.store.events().summarize(&q, &spec)?;
        let recent = s.store.events().search(&EventQuery { limit: Some(25), ..q })?;
        Ok((infos, summary, recent, s.info.load().account_names.clone()))
    })
    .await?;
    if infos.is_empty() && summary.events == 0 {
        return Err(PageError::not_found(format!("no events by {principal:?}")));
    }
    let me = infos.iter().find(|i| i.principal == principal);
    let sessions: Vec<&store::PrincipalInfo> = infos.iter().filter(|i| i.principal != principal).collect();
    let top = |d: Dimension| summary.top(d);
    let body = html! {
        h1.wrap { (h::t(&principal)) }
        div.grid.kpis {
            (kpi("Events", &thousands(summary.events), "", None))
            (kpi("Error rate", &h::percent(summary.errors, summary.events), if summary.denied > 0 { "bad" } else { "" }, Some(&format!("{} access denied", thousands(summary.denied)))))
            (kpi("First seen", &summary.first.map(|t| model::timefmt::format_millis(t)[..16].replace('T', " ")).unwrap_or_default(), "", None))
            (kpi("Last seen", &summary.last.map(|t| model::timefmt::format_millis(t)[..16].replace('T', " ")).unwrap_or_default(), "", None))
        }
        div.grid.two {
            section.card {
                h2 { "Who this is" }
                dl.facts {
                    @if let Some(i) = me {
                        dt { "Kind" } dd { (h::t(&i.kind)) }
                        @if let Some(a) = &i.account_id { dt { "Account" } dd { (a) @if let Some(n) = names.get(a) { " (" (n) ")" } } }
                        @if let Some(n) = &i.name { dt { "Name" } dd.wrap { (n) } }
                        @if let Some(x) = &i.issuer { dt { "Through role/user" } dd { (h::principal_link(x)) } }
                        @if let Some(x) = &i.human { dt { "Person behind it" } dd { (h::principal_link(x)) } }
                        @if let Some(x) = &i.federation { dt { "Federation" } dd { (h::t(&x)) } }
                    } @else {
                        dt { "Matches" } dd { "a role, user name or person; the identities below" }
                    }
                }
            }
            section.card {
                h2 { "Identities and sessions" }
                @if sessions.is_empty() { p.empty { "No other sessions link to this principal." } }
                @else {
                    table { thead { tr { th { "Principal" } th { "Kind" } th { "Person" } } } tbody {
                        @for i in &sessions { tr { td { (h::principal_link(&i.principal)) } td.small { (h::clip(&i.kind, 40)) } td.small { (h::clip(i.human.as_deref().unwrap_or(""), 80)) } } }
                    } }
                }
            }
        }
        @if summary.events > 0 {
            section.card {
                h2 { "Activity per day" }
                (chart::stacked_bars(&summary.histogram, summary.histogram.first().map_or(0, |p| p.start), summary.histogram.last().map_or(0, |p| p.start) + 86_400_000, 86_400_000, |_| "events".into()))
            }
        }
        div.grid.two {
            (facet("Source IPs", "source_ip", top(Dimension::SourceIp), summary.events, &principal))
            (facet("Regions", "region", top(Dimension::Region), summary.events, &principal))
            (facet("Event names", "event_name", top(Dimension::EventName), summary.events, &principal))
            (facet("Error codes", "error_code", top(Dimension::ErrorCode), summary.events, &principal))
            (facet("Accounts", "account", top(Dimension::Account), summary.events, &principal))
            (facet("User agents", "", top(Dimension::UserAgent), summary.events, &principal))
        }
        section.card {
            h2 { "Recent events " a.small href=(EventFilters { principal: Some(principal.clone()), ..Default::default() }.href(None)) { "all of them →" } }
            (events_table(&recent, &names, false))
        }
    };
    Ok(h::page("Principal", "/events", &user, body))
}

/// A "values of this principal" card: each links to the principal's events with it.
fn facet(title: &str, filter: &str, rows: &[(String, u64)], whole: u64, principal: &str) -> Markup {
    let max = rows.first().map_or(0, |r| r.1);
    html! {
        section.card.bars {
            h2 { (h::t(&title)) }
            @if rows.is_empty() { p.empty { "None." } }
            @else {
                table { tbody { @for (v, n) in rows {
                    tr {
                        td.wrap.small {
                            @if filter.is_empty() { (h::clip(v, 100)) }
                            @else { a href={ (h::search_href(filter, v)) "&principal=" (h::url_component(principal)) } { (h::clip(v, 100)) } }
                        }
                        td.bar { (chart::bar(*n, max, filter == "error_code")) }
                        td.num { (thousands(*n)) }
                        td.num.muted { (h::percent(*n, whole)) }
                    }
                } } }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ResourceParams {
    /// How far back to look (default 30 days).
    pub since: Option<String>,
}

/// Events that touched `resource` since `since`, newest first, at most `limit`.
pub fn resource_events(state: &WebState, resource: &str, since: i64, limit: usize) -> Result<Vec<EventRow>, PageError> {
    Ok(state.store.events().resource_events(resource, since, limit)?)
}

pub async fn resource(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Path(resource): Path<String>,
    Query(params): Query<ResourceParams>,
) -> PageResult {
    let now = model::timefmt::now_millis();
    let since_text = given(&params.since).unwrap_or_else(|| "30d".into());
    let since = model::timefmt::parse_time(&since_text, now, false).map_err(PageError::bad_request)?;
    let r = resource.clone();
    let (rows, names) =
        blocking(&state, move |s| Ok((resource_events(s, &r, since, 500)?, s.info.load().account_names.clone())))
            .await?;
    let body = html! {
        h1.wrap { (resource) span.sub { "history since " (since_text) } }
        div.presets {
            @for v in ["24h", "7d", "30d", "90d", "365d"] {
                a.active[since_text == v] href={ (h::resource_href(&resource)) "?since=" (v) } { (h::t(&v)) }
            }
        }
        section.card {
            @if rows.is_empty() {
                p.empty { "No event in this range names this resource." }
            } @else {
                ol.timeline {
                    @for r in &rows {
                        li.error[r.error_code.is_some()] {
                            div.when { (h::time(r.event_time)) " UTC · " (r.account.as_deref().map(|a| names.get(a).cloned().unwrap_or_else(|| a.to_owned())).unwrap_or_default()) " " (r.region.as_deref().unwrap_or("")) }
                            div {
                                a href=(h::event_href(&r.event_id)) { strong { (h::t(&r.event_name.as_deref().unwrap_or("event"))) } }
                                " by " (h::principal_link(&r.principal)) " from " (h::ip_link(r.source_ip.as_deref()))
                                @if let Some(e) = &r.error_code { " " (badge_error(e)) }
                            }
                        }
                    }
                }
                @if rows.len() == 500 { p.muted.small { "The newest 500 are shown; narrow the range for older ones." } }
            }
        }
    };
    Ok(h::page("Resource", "/events", &user, body))
}
