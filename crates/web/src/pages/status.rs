//! `/integrity`, `/accounts` (integration status and `doctor`) and `/rules`.

use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::{blocking, PageError, PageResult};
use crate::auth::{check_csrf, CurrentUser};
use crate::html::{self as h, badge, kpi, thousands};
use crate::WebState;

/// One account/region's integration, as the overview, `/accounts` and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrationRow {
    pub account: String,
    pub region: String,
    /// `active`, `wired`, `waiting`, `stale` or `error`.
    pub state: String,
    pub reason: String,
    pub last_notification: Option<String>,
    pub last_object: Option<String>,
    pub newest_event: Option<String>,
    /// Seconds between now and the newest event stored.
    pub lag_seconds: Option<i64>,
    pub objects: u64,
    pub events: u64,
    pub last_error: Option<String>,
    #[serde(skip)]
    pub newest_event_ms: Option<i64>,
    #[serde(skip)]
    pub last_notification_ms: Option<i64>,
}

/// Status rows: the running consumer's board when there is one, else what the store holds;
/// configured accounts that never reported are listed as waiting.
pub fn integration_rows(state: &WebState, now: i64) -> Result<Vec<IntegrationRow>, PageError> {
    let mut rows = match &state.live_status {
        Some(live) => live.snapshot(),
        None => state.store.state().integration_status()?,
    };
    store::integration::with_unreported(&mut rows, state.info.load().accounts.iter().map(|a| a.name.as_str()));
    let time = |t: Option<i64>| t.map(model::timefmt::format_millis);
    Ok(rows
        .iter()
        // The account-wide row ("" region) matters only when it carries an error or is alone.
        .filter(|r| {
            !r.region.is_empty()
                || r.last_error.is_some()
                || !rows.iter().any(|o| o.account == r.account && !o.region.is_empty())
        })
        .map(|r| {
            let v = store::integration::verdict_among(&rows, r, now);
            IntegrationRow {
                account: r.account.clone(),
                region: r.region.clone(),
                state: v.label().into(),
                reason: v.reason().into(),
                last_notification: time(r.last_notification),
                last_object: time(r.last_object),
                newest_event: time(r.newest_event),
                lag_seconds: r.newest_event.map(|n| (now - n) / 1000),
                objects: r.objects,
                events: r.events,
                last_error: r.last_error.as_deref().map(store::redact_urls),
                newest_event_ms: r.newest_event,
                last_notification_ms: r.last_notification,
            }
        })
        .collect())
}

pub fn integration_table(rows: &[IntegrationRow], now: i64, compact: bool) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No account is configured or has reported yet." }
        } @else {
            table {
                thead { tr { th { "Account" } th { "Region" } th { "State" } th { "Last delivery" } th { "Lag" } @if !compact { th.num { "Objects" } th.num { "Events" } } } }
                tbody {
                    @for r in rows {
                        tr {
                            td.wrap { (h::t(&r.account)) }
                            td { (if r.region.is_empty() { "all" } else { &r.region }) }
                            td { (badge(if r.state == "stale" || r.state == "waiting" { "warn" } else { &r.state })) @if r.state != "active" { div.small.muted.wrap { (h::t(&r.reason)) } } }
                            td.small { @if let Some(t) = r.last_notification_ms { (h::ago(t, now)) } @else { span.muted { "never" } } }
                            td.small { @if let Some(l) = r.lag_seconds { (lag(l)) } }
                            @if !compact { td.num { (thousands(r.objects)) } td.num { (thousands(r.events)) } }
                        }
                    }
                }
            }
        }
    }
}

fn lag(seconds: i64) -> String {
    match seconds {
        i64::MIN..=119 => format!("{seconds} s"),
        120..=7199 => format!("{} min", seconds / 60),
        _ => format!("{:.1} h", seconds as f64 / 3600.0),
    }
}

/// A stored finding kind that is a warning for review (the validator's own rule: chain
/// restarts and delivery gaps), not a sign of tampering.
pub fn is_warning(kind: &str) -> bool {
    store::FindingKind::parse(kind).is_some_and(store::FindingKind::is_warning)
}

pub async fn integrity(State(state): State<WebState>, Extension(user): Extension<CurrentUser>) -> PageResult {
    let now = model::timefmt::now_millis();
    let (chains, findings, silences) = blocking(&state, |s| {
        Ok((s.store.state().integrity_chains()?, s.store.state().integrity_findings()?, s.store.state().silences()?))
    })
    .await?;
    let serious = findings.iter().filter(|f| !is_warning(&f.kind)).count();
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for f in &findings {
        match kinds.iter_mut().find(|(k, _)| *k == f.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((f.kind.clone(), 1)),
        }
    }
    let body = html! {
        h1 { "Integrity" span.sub { "CloudTrail digest validation" } }
        @if chains.is_empty() && findings.is_empty() {
            div.notice.warn { "No digest has been validated yet. Turn on log file validation on the trail, give trailwatch the bucket, and digests are checked hourly (or run " code { "trailwatch validate" } ")." }
        } @else if serious == 0 {
            div.notice.ok { "Every digest verified: signatures, the hash chain and each listed log file match. " (findings.len()) " warnings for review." }
        } @else {
            div.notice.bad { strong { (serious) " findings" } " say the record was changed or is incomplete: logs modified or missing, digests deleted or forged. Review them below." }
        }
        div.grid.kpis {
            (kpi("Chains", &chains.len().to_string(), "", Some("trail × account × region")))
            (kpi("Findings", &serious.to_string(), if serious > 0 { "bad" } else { "ok" }, None))
            (kpi("Warnings", &(findings.len() - serious).to_string(), "", Some("chain restarts, delivery gaps")))
            (kpi("Silent regions", &silences.len().to_string(), if silences.is_empty() { "ok" } else { "bad" }, Some("no logs or digests past the grace")))
        }
        section.card {
            h2 { "Digest chains" }
            @if chains.is_empty() { p.empty { "None yet." } }
            @else {
                table {
                    thead { tr { th { "Account" } th { "Region" } th { "Trail" } th { "State" } th { "Newest digest covers to" } th { "Newest log" } th { "Verified" } } }
                    tbody {
                        @for c in &chains {
                            @let silent: Vec<&str> = silences.iter().filter(|s| s.account == c.account && s.account_id == c.account_id && s.region == c.region).map(|s| s.what.as_str()).collect();
                            @let bad = findings.iter().any(|f| f.account == c.account && f.key.contains(&format!("/{}/", c.account_id)) && f.key.contains(&format!("/{}/", c.region)) && !is_warning(&f.kind));
                            tr {
                                td { (c.account) div.muted.small { (h::t(&c.account_id)) } }
                                td { (h::t(&c.region)) }
                                td.wrap.small { (h::t(&c.trail)) }
                                td {
                                    @if !silent.is_empty() { (badge("bad")) " silent: " (silent.join(", ")) }
                                    @else if bad { (badge("bad")) " findings" }
                                    @else { (badge("ok")) " verified" }
                                }
                                td.time { (h::time_opt(c.newest_end)) }
                                td.time { (h::time_opt(c.newest_log)) }
                                td.small { (h::ago(c.verified_at, now)) }
                            }
                        }
                    }
                }
            }
        }
        @if !silences.is_empty() {
            section.card {
                h2 { "Delivery gone silent" }
                table { thead { tr { th { "Account" } th { "Region" } th { "What stopped" } th { "Last delivery" } th { "Alert" } } } tbody {
                    @for s in &silences {
                        tr { td { (s.account) " " span.muted.small { (h::t(&s.account_id)) } } td { (h::t(&s.region)) } td { (h::t(&s.what)) } td.time { (h::time(s.since)) " (" (h::ago(s.since, now)) ")" }
                             td { @if let Some(a) = s.alert_id { a href={ "/alerts/" (a) } { "#" (a) } } } }
                    }
                } }
            }
        }
        section.card {
            h2 { "Findings" }
            @if !kinds.is_empty() {
                div.presets { @for (k, n) in &kinds { span.badge.idle { (h::t(k)) " × " (n) } } }
            }
            @if findings.is_empty() { p.empty { "None." } }
            @else {
                table {
                    thead { tr { th { "Kind" } th { "Object" } th { "Detail" } th { "First seen" } } }
                    tbody {
                        @for f in &findings {
                            tr {
                                td { (badge(if is_warning(&f.kind) { "warn" } else { "bad" })) div.mono.small { (h::t(&f.kind)) } }
                                td.mono.small.wrap { (h::clip(&f.key, 200)) }
                                td.small.wrap { (h::clip(&f.detail, 300)) }
                                td.time { (h::time(f.first_seen)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(h::page("Integrity", "/integrity", &user, body))
}

pub async fn accounts(State(state): State<WebState>, Extension(user): Extension<CurrentUser>) -> PageResult {
    let now = model::timefmt::now_millis();
    let (rows, problems, findings) = blocking(&state, move |s| {
        Ok((integration_rows(s, now)?, s.store.state().message_problems()?, s.store.state().findings()?))
    })
    .await?;
    let doctor = state.doctor.lock().await.clone();
    let csrf = user.csrf.clone().unwrap_or_default();
    let configured = &state.info.load().accounts;
    let body = html! {
        h1 { "Accounts" span.sub { (configured.len()) " configured" } }
        section.card {
            h2 { "Configured accounts" }
            @if configured.is_empty() {
                p.muted { "No [[accounts]] in the configuration: this server shows what the store holds." }
            } @else {
                table {
                    thead { tr { th { "Name" } th { "Account" } th { "Role" } th { "Regions" } th { "Bucket" } th { "Queue" } } }
                    tbody { @for a in configured {
                        tr {
                            td { (h::t(&a.name)) } td.mono { (h::t(&a.account_id)) }
                            td.mono.small.wrap { (h::t(&a.role_arn.as_deref().unwrap_or("(own credentials)"))) }
                            td.small { (h::t(&a.regions.join(", "))) }
                            td.small.wrap { (h::t(&a.bucket.as_deref().unwrap_or("–"))) }
                            td.small.wrap { (h::t(&a.queue_url.as_deref().unwrap_or("–"))) }
                        }
                    } }
                }
            }
        }
        section.card {
            h2 { "Integration status" }
            (integration_table(&rows, now, false))
        }
        section.card {
            h2 { "Doctor" }
            @if user.is_admin() && !configured.is_empty() {
                form method="post" action="/accounts/doctor" {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" id="run-doctor" { "Check every account now" }
                }
            }
            @match &doctor {
                None => p.muted { "Not run since this server started. It checks each account end to end: role, trail, bucket, topic, queue, and says what to fix." },
                Some(report) => {
                    p.muted.small { "Run " (h::ago(report.at, now)) " by " (report.by) "." }
                    @for (account, checks) in &report.accounts {
                        h2.small { (h::t(&account)) }
                        table { tbody { @for c in checks {
                            tr {
                                td { (badge(match c.state.as_str() { "ok" => "ok", "FAIL" => "bad", "warn" => "warn", _ => "idle" })) }
                                td { (h::t(&c.name)) }
                                td.wrap.small { (c.detail) @if let Some(f) = &c.fix { div.muted { "fix: " (f) } } }
                            }
                        } } }
                    }
                }
            }
        }
        @if !problems.is_empty() {
            section.card {
                h2 { "Messages left on a queue" }
                table { thead { tr { th { "Queue" } th { "Reason" } th { "Detail" } th.num { "Receives" } th { "Last seen" } } } tbody {
                    @for p in &problems { tr { td.wrap.small { (h::t(&p.queue)) } td { (h::t(&p.reason)) } td.wrap.small { (h::clip(&p.detail, 300)) } td.num { (p.receive_count) } td.time { (h::time(p.last_seen)) } } }
                } }
            }
        }
        @if !findings.is_empty() {
            section.card {
                h2 { "Objects that could not be read" }
                table { thead { tr { th { "Kind" } th { "Account" } th { "Object" } th { "Detail" } th.num { "Times" } } } tbody {
                    @for f in &findings { tr { td { (h::t(&f.kind)) } td { (h::t(&f.account)) } td.wrap.small.mono { "s3://" (f.bucket) "/" (h::clip(&f.key, 200)) } td.wrap.small { (h::clip(&f.detail, 300)) } td.num { (f.occurrences) } } }
                } }
            }
        }
    };
    Ok(h::page("Accounts", "/accounts", &user, body))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

pub async fn run_doctor(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    if let Err(r) = check_csrf(&user, form.csrf.as_deref()) {
        return Ok(*r);
    }
    if !user.is_admin() {
        return Err(PageError::forbidden("only admins run the doctor"));
    }
    let report = crate::run_doctor(&state, &user.name).await;
    *state.doctor.lock().await = Some(report);
    Ok(Redirect::to("/accounts").into_response())
}

pub async fn rules(State(state): State<WebState>, Extension(user): Extension<CurrentUser>) -> PageResult {
    let hits = blocking(&state, |s| Ok(s.store.state().rule_hits()?)).await?;
    let info = state.info.load_full();
    let hit = |id: &str| hits.iter().find(|(r, _)| r == id).map_or(0, |(_, n)| *n);
    let mut rules: Vec<&crate::RuleInfo> = info.rules.iter().collect();
    rules.sort_by(|a, b| {
        hit(&b.id)
            .cmp(&hit(&a.id))
            .then_with(|| store::alerts::level_rank(&b.level).cmp(&store::alerts::level_rank(&a.level)))
            .then_with(|| a.title.cmp(&b.title))
    });
    let body = html! {
        h1 { "Rules" span.sub { (rules.len()) " loaded, " (info.rule_errors.len()) " not loaded" } }
        @if !info.rule_errors.is_empty() {
            section.card {
                h2 { "Not loaded" }
                ul { @for e in &info.rule_errors { li.wrap.small.mono { (h::t(&e)) } } }
            }
        }
        section.card {
            table {
                thead { tr { th { "Level" } th { "Rule" } th { "Status" } th.num { "Alerted events" } th { "File" } } }
                tbody {
                    @for r in &rules {
                        tr {
                            td { (badge(&r.level)) }
                            td.wrap { (r.title) div.muted.small.mono { (h::t(&r.id)) } @if let Some(d) = &r.description { div.small { (h::t(&d)) } } }
                            td.small { (h::t(&r.status)) }
                            td.num { @let n = hit(&r.id); @if n > 0 { a href={ "/alerts?rule=" (h::url_component(&r.id)) } { (thousands(n)) } } @else { span.muted { "0" } } }
                            td.small.wrap.muted { (h::t(&r.file)) }
                        }
                    }
                }
            }
        }
    };
    Ok(h::page("Rules", "/rules", &user, body))
}
