//! The API's description: one table of endpoints ([`ENDPOINTS`]) from which
//! `/api/v1/openapi.json` (OpenAPI 3.0) is generated. A test sends a request to every entry
//! and checks the router answers it, so the document cannot list a route that is not there.

use serde_json::{json, Map, Value};

/// A query or path parameter.
pub struct Param {
    pub name: &'static str,
    pub location: &'static str,
    pub description: &'static str,
}

pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    /// A JSON request body (POST).
    pub body: Option<&'static str>,
    pub admin: bool,
}

const fn q(name: &'static str, description: &'static str) -> Param {
    Param { name, location: "query", description }
}

const fn p(name: &'static str, description: &'static str) -> Param {
    Param { name, location: "path", description }
}

const EVENT_FILTERS: &[Param] = &[
    q("event_name", "eventName; * and ? are wildcards"),
    q("event_source", "eventSource"),
    q("principal", "normalised principal ARN, the role or user behind a session, a user/session name or the person"),
    q("source_ip", "sourceIPAddress"),
    q("account", "recipientAccountId"),
    q("region", "awsRegion"),
    q("error_code", "errorCode"),
    q("since", "RFC 3339, a date, or an age such as 24h"),
    q("until", "RFC 3339, a date (its end), or an age"),
    q("errors", "true: only failed calls"),
    q("limit", "rows per page, 1 to 1000 (default 50)"),
    q("after", "the `next` cursor of the previous page"),
    q("records", "true: include each event's record"),
];

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint { method: "get", path: "/api/v1/overview", summary: "Counts, events per bucket (stacked), top values, open alerts, integration and integrity state", params: &[q("range", "24h (default), 7d or 30d"), q("by", "account (default) or region")], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/events", summary: "Search events, newest first, with keyset paging", params: EVENT_FILTERS, body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/events/{id}", summary: "One event: columns, the record, the derived identity and the resources it names (a record over 256 KiB: its fields with the large values left out, recordTruncated and rawUrl)", params: &[p("id", "eventID")], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/events/{id}/raw", summary: "The record exactly as stored, as a download", params: &[p("id", "eventID")], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/principals/{principal}", summary: "A principal: linked identities and sessions, counts, first/last seen, top source IPs, user agents, regions, calls, errors", params: &[p("principal", "principal ARN, role, user or person (percent-encoded)")], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/resources/{resource}", summary: "Events that named a resource (ARN, instance id, bucket, key, …), newest first", params: &[p("resource", "ARN or id (percent-encoded)"), q("since", "how far back (default 30d)")], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/alerts", summary: "Alerts, newest first", params: &[q("state", "open, acknowledged, resolved"), q("level", "minimum level"), q("rule", "rule id"), q("limit", "maximum alerts (default 500, at most 1000; the answer's `next` pages on)"), q("before", "the `next` cursor of the previous page")], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/alerts/{id}", summary: "One alert with its event ids and deliveries", params: &[p("id", "alert id")], body: None, admin: false },
    Endpoint { method: "post", path: "/api/v1/alerts/{id}", summary: "Acknowledge, resolve or reopen an alert (admin; with a session cookie, send X-CSRF-Token)", params: &[p("id", "alert id")], body: Some(r#"{"state": "acknowledged|resolved|open", "comment": "optional"}"#), admin: true },
    Endpoint { method: "get", path: "/api/v1/integrity", summary: "Digest chains per account/region, validation findings, silent regions", params: &[], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/accounts", summary: "Configured accounts, integration status per account/region, queue and object problems, the last doctor run", params: &[], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/rules", summary: "Loaded rules with alerted-event counts, and rules that failed to load", params: &[], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/tokens", summary: "API tokens (yours; an admin sees all)", params: &[], body: None, admin: false },
    Endpoint { method: "post", path: "/api/v1/tokens", summary: "Create an API token for yourself; the token is in the answer only", params: &[], body: Some(r#"{"name": "prometheus", "expiresIn": "90d"}"#), admin: false },
    Endpoint { method: "delete", path: "/api/v1/tokens/{id}", summary: "Revoke an API token (yours; an admin any)", params: &[p("id", "token id")], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/me", summary: "Who you are, your role and (sessions) your CSRF token", params: &[], body: None, admin: false },
    Endpoint { method: "get", path: "/api/v1/openapi.json", summary: "This document", params: &[], body: None, admin: false },
];

/// The OpenAPI 3.0 document of [`ENDPOINTS`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let params: Vec<Value> = e
            .params
            .iter()
            .map(|p| {
                json!({"name": p.name, "in": p.location, "required": p.location == "path",
                       "description": p.description, "schema": {"type": "string"}})
            })
            .collect();
        let mut op = json!({
            "summary": e.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"description": "a parameter is invalid; `detail` says which"},
                "401": {"description": "no session and no valid API token"},
                "404": {"description": "not found"},
            },
        });
        if e.admin {
            op["responses"]["403"] = json!({"description": "the caller is not an admin, or the CSRF token is missing"});
        }
        if let Some(example) = e.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {
                "schema": {"type": "object"}, "example": serde_json::from_str::<Value>(example).unwrap_or(Value::Null)}}});
        }
        let entry = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        entry[e.method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "trailwatch API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The dashboard's data as JSON. Authenticate with `Authorization: Bearer <token>` (create one with `trailwatch user token` or POST /api/v1/tokens) or a session cookie.",
        },
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE},
        }},
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    })
}
