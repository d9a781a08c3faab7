//! `/api/v1/…`: the dashboard's data as JSON, for scripts (API token) and the page's own
//! script (session). The routes are listed once, in [`crate::openapi::ENDPOINTS`], which
//! also generates `/api/v1/openapi.json`; a test checks both agree.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use store::{EventQuery, EventRow};

use crate::auth::{self, CurrentUser};
use crate::pages::alerts::AlertParams;
use crate::pages::events::{EventFilters, ResourceParams};
use crate::pages::overview::OverviewParams;
use crate::pages::{blocking, given, PageError};
use crate::WebState;

pub struct ApiError(PageError);

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = match self.0.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::FORBIDDEN => "forbidden",
            _ => "internal",
        };
        (self.0.status, Json(json!({"error": kind, "detail": self.0.message}))).into_response()
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/openapi.json", get(|| async { Json(crate::openapi::document()) }))
        .route("/api/v1/overview", get(overview))
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/{id}", get(event))
        .route("/api/v1/events/{id}/raw", get(crate::pages::events::raw))
        .route("/api/v1/principals/{principal}", get(principal))
        .route("/api/v1/resources/{resource}", get(resource))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}", get(alert).post(change_alert))
        .route("/api/v1/integrity", get(integrity))
        .route("/api/v1/accounts", get(accounts))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(delete_token))
        .route("/api/v1/me", get(me))
}

fn time(ms: i64) -> String {
    model::timefmt::format_millis(ms)
}

pub fn event_json(r: &EventRow, with_record: bool) -> Value {
    let mut v = json!({
        "eventId": r.event_id, "eventTime": time(r.event_time), "eventSource": r.event_source,
        "eventName": r.event_name, "principal": r.principal, "sourceIp": r.source_ip,
        "account": r.account, "region": r.region, "errorCode": r.error_code,
    });
    if with_record {
        let (record, cut) = crate::pages::events::shown_record(&r.raw);
        v["record"] = record;
        if cut {
            // Too large to serve whole here: the fields with the large values left out, and
            // where the whole record is.
            v["recordTruncated"] = json!(true);
            v["recordBytes"] = json!(r.raw.len());
            v["rawUrl"] = json!(format!("/api/v1/events/{}/raw", crate::html::url_component(&r.event_id)));
        }
    }
    v
}

async fn overview(State(state): State<WebState>, Query(p): Query<OverviewParams>) -> ApiResult {
    let now = model::timefmt::now_millis();
    let o = blocking(&state, move |s| crate::pages::overview::overview_data(s, &p, now)).await?;
    Ok(Json(serde_json::to_value(o).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
struct RecordParam {
    /// `true`: include each event's record.
    records: Option<String>,
}

async fn events(
    State(state): State<WebState>,
    Query(filters): Query<EventFilters>,
    Query(r): Query<RecordParam>,
) -> ApiResult {
    let q = filters.to_query(model::timefmt::now_millis())?;
    let limit = filters.limit()?;
    let rows = blocking(&state, move |s| Ok(s.store.events().search(&q)?)).await?;
    let with_record = r.records.as_deref() == Some("true");
    let next = (rows.len() == limit).then(|| rows.last().map(|r| format!("{}.{}", r.event_time, r.row))).flatten();
    Ok(Json(json!({
        "events": rows.iter().map(|r| event_json(r, with_record)).collect::<Vec<_>>(),
        "next": next,
    })))
}

async fn event(State(state): State<WebState>, Path(id): Path<String>) -> ApiResult {
    let row = blocking(&state, move |s| {
        s.store.events().event(&id)?.ok_or_else(|| PageError::not_found(format!("no event with eventID {id:?}")))
    })
    .await?;
    let mut v = event_json(&row, true);
    if let Ok(e) = model::ParsedEvent::from_json(&row.raw) {
        let a = e.actor;
        v["identity"] = json!({
            "principal": a.principal, "kind": a.kind.as_str(), "accountId": a.account_id, "name": a.name,
            "sessionName": a.session_name, "issuer": a.issuer, "human": a.human, "accessKeyId": a.access_key_id,
            "mfa": a.mfa, "console": a.console, "invokedBy": a.invoked_by,
        });
    }
    v["resources"] = json!(model::resources::identifiers(&v["record"]));
    Ok(Json(v))
}

async fn principal(State(state): State<WebState>, Path(p): Path<String>) -> ApiResult {
    let principal = p.clone();
    let (infos, summary) = blocking(&state, move |s| {
        let q = EventQuery { principal: Some(p.clone()), ..Default::default() };
        let spec = store::SummarySpec::principal_page(0, 20);
        Ok((s.store.events().principals_related(&p, 100)?, s.store.events().summarize(&q, &spec)?))
    })
    .await?;
    if infos.is_empty() && summary.events == 0 {
        return Err(PageError::not_found(format!("no events by {principal:?}")).into());
    }
    let tops: serde_json::Map<String, Value> =
        summary.tops.iter().map(|(d, t)| (d.as_str().to_owned(), json!(t))).collect();
    Ok(Json(json!({
        "principal": principal,
        "identities": infos.iter().map(|i| json!({"principal": i.principal, "kind": i.kind, "accountId": i.account_id,
            "name": i.name, "issuer": i.issuer, "human": i.human, "federation": i.federation})).collect::<Vec<_>>(),
        "events": summary.events, "errors": summary.errors, "accessDenied": summary.denied,
        "firstSeen": summary.first.map(time), "lastSeen": summary.last.map(time),
        "top": tops,
    })))
}

async fn resource(State(state): State<WebState>, Path(r): Path<String>, Query(p): Query<ResourceParams>) -> ApiResult {
    let now = model::timefmt::now_millis();
    let since = model::timefmt::parse_time(&given(&p.since).unwrap_or_else(|| "30d".into()), now, false)
        .map_err(PageError::bad_request)?;
    let res = r.clone();
    let rows = blocking(&state, move |s| crate::pages::events::resource_events(s, &res, since, 500)).await?;
    Ok(Json(
        json!({"resource": r, "since": time(since), "events": rows.iter().map(|e| event_json(e, false)).collect::<Vec<_>>()}),
    ))
}

async fn alerts(State(state): State<WebState>, Query(p): Query<AlertParams>) -> ApiResult {
    let filter = p.filter()?;
    let limit = filter.limit;
    let alerts = blocking(&state, move |s| Ok(s.store.state().alerts(&filter)?)).await?;
    let next = crate::pages::alerts::next_cursor(&alerts, limit);
    Ok(Json(json!({"alerts": alerts.iter().map(store::Alert::to_json).collect::<Vec<_>>(), "next": next})))
}

async fn alert(State(state): State<WebState>, Path(id): Path<i64>) -> ApiResult {
    let (alert, events, deliveries) = blocking(&state, move |s| {
        let a = s.store.state().alert(id)?.ok_or_else(|| PageError::not_found(format!("no alert #{id}")))?;
        Ok((a, s.store.state().alert_event_ids(id)?, s.store.state().deliveries(id)?))
    })
    .await?;
    let mut v = alert.to_json();
    v["eventIds"] = json!(events);
    v["deliveries"] = json!(deliveries
        .iter()
        .map(|d| json!({"sink": d.sink, "attempts": d.attempts, "deliveredAt": d.delivered_at.map(time), "lastError": d.last_error.as_deref().map(store::redact_urls)}))
        .collect::<Vec<_>>());
    Ok(Json(v))
}

#[derive(Debug, Deserialize)]
struct AlertChange {
    state: String,
    comment: Option<String>,
}

/// A state-changing API call made with a session cookie must carry the session's CSRF token
/// in `X-CSRF-Token`; with an API token it needs none.
fn check_api_csrf(user: &CurrentUser, headers: &HeaderMap) -> Result<(), ApiError> {
    auth::check_csrf(user, headers.get("x-csrf-token").and_then(|v| v.to_str().ok()))
        .map_err(|_| ApiError(PageError::forbidden("missing or wrong X-CSRF-Token")))
}

async fn change_alert(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Json(change): Json<AlertChange>,
) -> ApiResult {
    check_api_csrf(&user, &headers)?;
    if !user.is_admin() {
        return Err(PageError::forbidden("only admins change alert states").into());
    }
    let new_state = store::AlertState::parse(&change.state)
        .ok_or_else(|| PageError::bad_request("state must be open, acknowledged or resolved"))?;
    let comment =
        given(&change.comment).map(|c| format!("{} — {}", c.chars().take(2000).collect::<String>(), user.name));
    let alert = blocking(&state, move |s| {
        if !s.store.state().set_alert_state(id, new_state, comment.as_deref())? {
            return Err(PageError::not_found(format!("no alert #{id}")));
        }
        Ok(s.store.state().alert(id)?)
    })
    .await?;
    Ok(Json(alert.map(|a| a.to_json()).unwrap_or(Value::Null)))
}

async fn integrity(State(state): State<WebState>) -> ApiResult {
    let (chains, findings, silences) = blocking(&state, |s| {
        Ok((s.store.state().integrity_chains()?, s.store.state().integrity_findings()?, s.store.state().silences()?))
    })
    .await?;
    Ok(Json(json!({
        "valid": findings.iter().all(|f| crate::pages::status::is_warning(&f.kind)),
        "chains": chains.iter().map(|c| json!({"account": c.account, "accountId": c.account_id, "region": c.region,
            "trail": c.trail, "newestDigest": c.newest_key, "newestDigestEnd": c.newest_end.map(time),
            "newestLog": c.newest_log.map(time), "verifiedAt": time(c.verified_at)})).collect::<Vec<_>>(),
        "findings": findings.iter().map(|f| json!({"account": f.account, "kind": f.kind, "key": f.key,
            "detail": f.detail, "firstSeen": time(f.first_seen), "lastSeen": time(f.last_seen)})).collect::<Vec<_>>(),
        "silences": silences.iter().map(|s| json!({"account": s.account, "accountId": s.account_id, "region": s.region,
            "what": s.what, "since": time(s.since), "alertId": s.alert_id})).collect::<Vec<_>>(),
    })))
}

async fn accounts(State(state): State<WebState>) -> ApiResult {
    let now = model::timefmt::now_millis();
    let (rows, problems, findings) = blocking(&state, move |s| {
        Ok((
            crate::pages::status::integration_rows(s, now)?,
            s.store.state().message_problems()?,
            s.store.state().findings()?,
        ))
    })
    .await?;
    let doctor = state.doctor.lock().await.clone();
    Ok(Json(json!({
        "accounts": state.info.load().accounts,
        "integrations": rows,
        "messageProblems": problems.iter().map(|p| json!({"queue": p.queue, "messageId": p.message_id, "reason": p.reason,
            "detail": p.detail, "receiveCount": p.receive_count, "lastSeen": time(p.last_seen)})).collect::<Vec<_>>(),
        "objectFindings": findings.iter().map(|f| json!({"kind": f.kind, "account": f.account, "bucket": f.bucket,
            "key": f.key, "detail": f.detail, "occurrences": f.occurrences})).collect::<Vec<_>>(),
        "doctor": doctor,
    })))
}

async fn rules(State(state): State<WebState>) -> ApiResult {
    let hits = blocking(&state, |s| Ok(s.store.state().rule_hits()?)).await?;
    let info = state.info.load_full();
    let rules: Vec<Value> = info
        .rules
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            v["alertedEvents"] = json!(hits.iter().find(|(id, _)| *id == r.id).map_or(0, |(_, n)| *n));
            v
        })
        .collect();
    Ok(Json(json!({"rules": rules, "errors": state.info.load().rule_errors})))
}

async fn me(Extension(user): Extension<CurrentUser>) -> Json<Value> {
    Json(json!({"name": user.name, "role": user.role.as_str(), "csrf": user.csrf}))
}

async fn tokens(State(state): State<WebState>, Extension(user): Extension<CurrentUser>) -> ApiResult {
    let who = (!user.is_admin()).then(|| user.name.clone());
    let tokens = blocking(&state, move |s| Ok(s.store.state().api_tokens(who.as_deref())?)).await?;
    Ok(Json(json!({"tokens": tokens.iter().map(|t| json!({"id": t.id, "name": t.name, "user": t.user,
        "createdAt": time(t.created_at), "lastUsed": t.last_used.map(time), "expiresAt": t.expires_at.map(time)}))
        .collect::<Vec<_>>()})))
}

#[derive(Debug, Deserialize)]
struct NewToken {
    name: String,
    /// How long the token works: `90d`, `12h` (never expires without it).
    #[serde(default, rename = "expiresIn")]
    expires_in: Option<String>,
}

async fn create_token(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    headers: HeaderMap,
    Json(new): Json<NewToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_api_csrf(&user, &headers)?;
    let name = new.name.trim().chars().take(100).collect::<String>();
    if name.is_empty() {
        return Err(PageError::bad_request("a token needs a name").into());
    }
    let expires_at = auth::token_expiry(new.expires_in.as_deref(), model::timefmt::now_millis())
        .map_err(|e| PageError::bad_request(format!("expiresIn: {e}")))?;
    let (token, id) =
        blocking(&state, move |s| Ok(crate::auth::create_api_token_until(&s.store, &user.name, &name, expires_at)?))
            .await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "token": token, "note": "shown once; store it now"}))))
}

async fn delete_token(
    State(state): State<WebState>,
    Extension(user): Extension<CurrentUser>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    check_api_csrf(&user, &headers)?;
    let deleted = blocking(&state, move |s| {
        let tokens = s.store.state().api_tokens(None)?;
        match tokens.iter().find(|t| t.id == id) {
            Some(t) if t.user == user.name || user.is_admin() => Ok(s.store.state().delete_api_token(id)?),
            _ => Ok(false),
        }
    })
    .await?;
    Ok(if deleted { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
}
