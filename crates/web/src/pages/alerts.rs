//! `/alerts` and `/alerts/{id}`: list, filter, detail with the matching events, and state
//! changes (acknowledge / resolve / reopen with a comment; admins only, CSRF-checked).

use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::html;
use serde::Deserialize;
use store::{Alert, AlertFilter, AlertState, EventRow};

use super::events::events_table;
use super::{blocking, given, PageError, PageResult};
use crate::auth::{check_csrf, CurrentUser};
use crate::html::{self as h, badge};
use crate::WebState;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AlertParams {
    /// `open`, `acknowledged`, `resolved`, or empty for all.
    pub state: Option<String>,
    /// Minimum level.
    pub level: Option<String>,
    pub rule: Option<String>,
    /// At most [`MAX_ALERTS_PAGE`]; `0` means that many, not "all".
    pub limit: Option<String>,
    /// Keyset cursor from the previous page's `next`: `<last_seen ms>.<id>`.
    pub before: Option<String>,
}

/// The most alerts one page or API answer holds; further ones are paged with `before`.
pub const MAX_ALERTS_PAGE: usize = 1000;

impl AlertParams {
    pub fn filter(&self) -> Result<AlertFilter, PageError> {
        let state = match given(&self.state) {
            None => None,
            Some(s) if s == "all" => None,
            Some(s) => Some(
                AlertState::parse(&s).ok_or_else(|| PageError::bad_request(format!("unknown alert state {s:?}")))?,
            ),
        };
        let min_level = given(&self.level);
        if let Some(l) = &min_level {
            if !store::alerts::LEVELS.contains(&l.as_str()) {
                return Err(PageError::bad_request(format!("unknown level {l:?}")));
            }
        }
        let limit = match given(&self.limit) {
            None => 500,
            Some(l) => match l.parse::<usize>().map_err(|_| PageError::bad_request("limit is not a number"))? {
                0 => MAX_ALERTS_PAGE,
                n => n.min(MAX_ALERTS_PAGE),
            },
        };
        let before = match given(&self.before) {
            None => None,
            Some(b) => Some(
                b.split_once('.')
                    .and_then(|(t, id)| Some((t.parse().ok()?, id.parse().ok()?)))
                    .ok_or_else(|| PageError::bad_request("before is not a cursor from a previous page"))?,
            ),
        };
        Ok(AlertFilter { state, min_level, rule_id: given(&self.rule), limit, before })
    }
}

/// The cursor of the page after `alerts` (a full page may have more after it).
pub fn next_cursor(alerts: &[Alert], limit: usize) -> Option<String> {
    (alerts.len() == limit).then(|| alerts.last().map(|a| format!("{}.{}", a.last_seen, a.id))).flatten()
}

pub fn alerts_table(alerts: &[Alert]) -> maud::Markup {
    html! {
        table {
            thead { tr { th { "#" } th { "Level" } th { "Alert" } th { "State" } th.num { "Events" } th { "Principal" } th { "Source IP" } th { "Last seen (UTC)" } } }
            tbody {
                @for a in alerts {
                    tr {
                        td { a href={ "/alerts/" (a.id) } { (a.id) } }
                        td { (badge(&a.level)) }
                        td.wrap.title { a href={ "/alerts/" (a.id) } { (h::clip(&a.title, 140)) } div.muted.small { (h::clip(&a.rule_id, 80)) } }
                        td { (badge(a.state.as_str())) }
                        td.num { (a.count) }
                        td { (h::principal_link(&a.subject.principal)) }
                        td { (h::ip_link(a.subject.source_ip.as_deref())) }
                        td.time { (h::time(a.last_seen)) }
                    }
                }
                @if alerts.is_empty() { tr { td colspan="8" .empty { "No alerts match." } } }
            }
        }
    }
}

pub async fn list(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Query(params): Query<AlertParams>,
) -> PageResult {
    let filter = params.filter()?;
    let limit = filter.limit;
    let alerts = blocking(&state, move |s| Ok(s.store.state().alerts(&filter)?)).await?;
    let next = next_cursor(&alerts, limit).map(|cursor| {
        let mut q = vec![("before", cursor), ("limit", limit.to_string())];
        for (k, v) in [("state", &params.state), ("level", &params.level), ("rule", &params.rule)] {
            if let Some(v) = given(v) {
                q.push((k, v));
            }
        }
        h::query_href("/alerts", &q)
    });
    let current_state = given(&params.state).unwrap_or_default();
    let current_level = given(&params.level).unwrap_or_default();
    let body = html! {
        h1 { "Alerts" span.sub { (alerts.len()) " shown" } }
        section.card {
            form.filters method="get" action="/alerts" {
                label { "State" select name="state" {
                    @for (v, l) in [("", "any"), ("open", "open"), ("acknowledged", "acknowledged"), ("resolved", "resolved")] {
                        option value=(v) selected[current_state == v] { (h::t(&l)) }
                    }
                } }
                label { "Level at least" select name="level" {
                    option value="" selected[current_level.is_empty()] { "any" }
                    @for l in store::alerts::LEVELS { option value=(l) selected[current_level == l] { (h::t(&l)) } }
                } }
                label { "Rule id" input type="text" name="rule" value=(params.rule.clone().unwrap_or_default()); }
                div.actions { button type="submit" { "Filter" } a.button.secondary href="/alerts" { "Clear" } }
            }
        }
        section.card {
            (alerts_table(&alerts))
            @if let Some(next) = &next { p.pager { a href=(next) { "Older alerts →" } } }
        }
    };
    Ok(h::page("Alerts", "/alerts", &user, body))
}

pub async fn detail(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
) -> PageResult {
    let (alert, events, total, findings, deliveries, names) = blocking(&state, move |s| {
        let alert = s.store.state().alert(id)?.ok_or_else(|| PageError::not_found(format!("no alert #{id}")))?;
        let all = s.store.state().alert_event_ids(id)?;
        // Integrity alerts are about objects, not events: their "events" are findings,
        // `integrity:<KIND>:<key>`, or silences, `silence:<account>/<region>/<what>/<since>`.
        let (findings, ids): (Vec<String>, Vec<String>) =
            all.into_iter().partition(|e| e.starts_with("integrity:") || e.starts_with("silence:"));
        let findings: Vec<(String, String)> = findings
            .iter()
            .filter_map(|f| match f.strip_prefix("integrity:") {
                Some(rest) => rest.split_once(':').map(|(k, key)| (k.to_owned(), key.to_owned())),
                None => f.strip_prefix("silence:").map(|rest| ("DELIVERY_SILENT".to_owned(), rest.to_owned())),
            })
            .collect();
        let mut events: Vec<EventRow> = Vec::new();
        for e in ids.iter().take(200) {
            if let Some(row) = s.store.events().event(e)? {
                events.push(row);
            }
        }
        events.sort_by_key(|e| std::cmp::Reverse(e.event_time));
        Ok((alert, events, ids.len(), findings, s.store.state().deliveries(id)?, s.info.load().account_names.clone()))
    })
    .await?;
    let s = &alert.subject;
    let csrf = user.csrf.clone().unwrap_or_default();
    let body = html! {
        h1.wrap { (badge(&alert.level)) " " (alert.title) span.sub { "#" (alert.id) } }
        div.grid.two {
            section.card {
                h2 { "Alert" }
                dl.facts {
                    dt { "State" } dd { (badge(alert.state.as_str())) }
                    dt { "Rule" } dd.mono.wrap { a href={ "/alerts?rule=" (h::url_component(&alert.rule_id)) } { (h::t(&alert.rule_id)) } }
                    dt { "Events" } dd { (alert.count) }
                    dt { "First seen" } dd { (h::time(alert.first_seen)) " UTC" }
                    dt { "Last seen" } dd { (h::time(alert.last_seen)) " UTC" }
                    @if findings.is_empty() { dt { "Principal" } dd { (h::principal_link(&s.principal)) } }
                    dt { "Account" } dd { (s.account.as_deref().unwrap_or("–")) @if let Some(n) = s.account.as_ref().and_then(|a| names.get(a)) { " (" (n) ")" } }
                    dt { "Region" } dd { (h::t(&s.region.as_deref().unwrap_or("–"))) }
                    dt { "Source IP" } dd { (h::ip_link(s.source_ip.as_deref())) }
                    dt { "Call" } dd.wrap { (s.event_source.as_deref().unwrap_or("")) " " (s.event_name.as_deref().unwrap_or("")) }
                    @if let Some(e) = &s.error_code { dt { "Error" } dd { (h::t(&e)) } }
                    @if let Some(c) = &alert.comment { dt { "Comment" } dd.wrap { (h::t(&c)) } }
                }
            }
            section.card {
                h2 { "Handle it" }
                @if user.is_admin() {
                    form method="post" action={ "/alerts/" (alert.id) } {
                        input type="hidden" name="csrf" value=(csrf);
                        label.small.muted for="comment" { "Comment (kept with the alert)" }
                        textarea id="comment" name="comment" rows="3" maxlength="2000" {}
                        div.actions {
                            @if alert.state != AlertState::Acknowledged { button type="submit" name="state" value="acknowledged" id="ack" { "Acknowledge" } }
                            @if alert.state != AlertState::Resolved { button type="submit" name="state" value="resolved" id="resolve" { "Resolve" } }
                            @if alert.state != AlertState::Open { button.secondary type="submit" name="state" value="open" { "Reopen" } }
                        }
                    }
                } @else {
                    p.muted { "Viewers can read alerts; an admin acknowledges and resolves them." }
                }
                h2 { "Deliveries" }
                @if deliveries.is_empty() { p.muted.small { "No sink is configured for this level." } }
                @else {
                    table { thead { tr { th { "Sink" } th { "State" } th.num { "Attempts" } th { "Last error" } } } tbody {
                        @for d in &deliveries {
                            tr {
                                td { (h::t(&d.sink)) }
                                td { @if let Some(t) = d.delivered_at { (badge("ok")) " " (h::time(t)) } @else { (badge("warn")) " pending" } }
                                td.num { (d.attempts) }
                                td.wrap.small { (h::t(&store::redact_urls(d.last_error.as_deref().unwrap_or("")))) }
                            }
                        }
                    } }
                }
            }
        }
        @if !findings.is_empty() {
            section.card {
                h2 { "Integrity findings " a.small href="/integrity" { "all findings →" } }
                table { thead { tr { th { "Kind" } th { "Object" } } } tbody {
                    @for (kind, key) in &findings { tr { td.mono.small { (h::t(kind)) } td.mono.small.wrap { (h::t(key)) } } }
                } }
            }
        }
        @if findings.is_empty() || !events.is_empty() {
            section.card {
                h2 { "Matching events" @if total > events.len() { span.muted.small { " (" (events.len()) " of " (total) ")" } } }
                (events_table(&events, &names, false))
            }
        }
    };
    Ok(h::page("Alert", "/alerts", &user, body))
}

#[derive(Debug, Deserialize)]
pub struct StateForm {
    pub csrf: Option<String>,
    pub state: String,
    pub comment: Option<String>,
}

pub async fn change_state(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<i64>,
    Form(form): Form<StateForm>,
) -> Result<Response, PageError> {
    if let Err(r) = check_csrf(&user, form.csrf.as_deref()) {
        return Ok(*r);
    }
    if !user.is_admin() {
        return Err(PageError::forbidden("only admins change alert states"));
    }
    let new_state = AlertState::parse(&form.state).ok_or_else(|| PageError::bad_request("unknown state"))?;
    let comment = given(&form.comment).map(|c| c.chars().take(2000).collect::<String>());
    let who = user.name.clone();
    let changed = blocking(&state, move |s| {
        let comment = comment.map(|c| format!("{c} — {who}"));
        Ok(s.store.state().set_alert_state(id, new_state, comment.as_deref())?)
    })
    .await?;
    if !changed {
        return Err(PageError::not_found(format!("no alert #{id}")));
    }
    tracing::info!(alert = id, state = new_state.as_str(), user = %user.name, "alert state changed");
    Ok(Redirect::to(&format!("/alerts/{id}")).into_response())
}
