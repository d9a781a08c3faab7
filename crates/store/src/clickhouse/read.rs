//! Searches and aggregations over ClickHouse. Every read of `events` and `principals` is
//! `FINAL`: rows a later merge would collapse (a record delivered twice) count once.

use serde::Deserialize;

use super::http::{int64, wildcard_regex, ClickHouse, ExternalTable, Sql};
use crate::query::is_wildcard;
use crate::{Dimension, EventQuery, EventRow, HistogramPoint, PrincipalInfo, StoreError, Summary, SummarySpec};

const ROW_COLUMNS: &str =
    "arrival, event_id, event_time, event_source, event_name, principal, source_ip, account, region, error_code, raw";

#[derive(Deserialize)]
struct RowIn {
    #[serde(with = "int64")]
    arrival: i64,
    event_id: String,
    #[serde(with = "int64")]
    event_time: i64,
    event_source: Option<String>,
    event_name: Option<String>,
    principal: String,
    source_ip: Option<String>,
    account: Option<String>,
    region: Option<String>,
    error_code: Option<String>,
    raw: String,
}

impl From<RowIn> for EventRow {
    fn from(r: RowIn) -> EventRow {
        EventRow {
            row: r.arrival,
            event_id: r.event_id,
            event_time: r.event_time,
            event_source: r.event_source,
            event_name: r.event_name,
            principal: r.principal,
            source_ip: r.source_ip,
            account: r.account,
            region: r.region,
            error_code: r.error_code,
            raw: r.raw,
        }
    }
}

/// The column of `d`: the `events` columns are named as the dimensions are in URLs.
fn column(d: Dimension) -> &'static str {
    d.as_str()
}

/// `column = value`, or a wildcard match.
fn matches(q: &mut Sql, column: &str, value: &str) {
    if is_wildcard(value) {
        q.raw("match(").raw(column).raw(", ").string(&wildcard_regex(value)).raw(")");
    } else {
        q.raw(column).raw(" = ").string(value);
    }
}

/// ` WHERE …` for every filter of `query` (paging excluded).
fn where_clause(ch: &ClickHouse, query: &EventQuery) -> Sql {
    let mut q = Sql::new(" WHERE 1");
    let text = [
        ("event_name", &query.event_name),
        ("event_source", &query.event_source),
        ("source_ip", &query.source_ip),
        ("account", &query.account),
        ("region", &query.region),
        ("error_code", &query.error_code),
    ];
    for (column, value) in text {
        if let Some(v) = value {
            q.raw(" AND ");
            matches(&mut q, column, v);
        }
    }
    if let Some(who) = &query.principal {
        q.raw(&format!(" AND principal IN (SELECT principal FROM {}.principals FINAL WHERE ", ch.database()));
        for (i, column) in ["principal", "issuer", "name", "human"].iter().enumerate() {
            if i > 0 {
                q.raw(" OR ");
            }
            matches(&mut q, column, who);
        }
        q.raw(")");
    }
    if query.errors {
        q.raw(" AND error_code IS NOT NULL");
    }
    // The day bounds let ClickHouse skip partitions and granules; the time bounds are exact.
    if let Some(since) = query.since {
        q.raw(" AND event_day >= toDate(").string(&super::day_of(since)).raw(") AND event_time >= ").int(since);
    }
    if let Some(until) = query.until {
        q.raw(" AND event_day <= toDate(").string(&super::day_of(until)).raw(") AND event_time <= ").int(until);
    }
    q
}

/// One `ROW_COLUMNS` line of a JSONEachRow answer.
fn event_row(line: &str) -> Result<EventRow, StoreError> {
    let row: RowIn = serde_json::from_str(line)
        .map_err(|e| StoreError::clickhouse("read an event row from ClickHouse", e.to_string()))?;
    Ok(row.into())
}

/// Pages of at most this many rows are read in two steps (see [`for_each_event`]).
const TWO_STEP_LIMIT: usize = 10_000;

/// Events matching `query`, newest first. A page (a `limit`) is read in two steps: the keys
/// of the page first — small columns only, so the sort reads little — then the rows of just
/// those keys. ClickHouse 18.16 cannot stop reading early in key order, and reading the
/// verbatim records of every matching row before the sort made a search over millions of
/// events take seconds. Without a limit the rows stream in one query.
pub(crate) fn for_each_event(
    ch: &ClickHouse,
    query: &EventQuery,
    f: &mut dyn FnMut(EventRow) -> bool,
) -> Result<(), StoreError> {
    if query.limit == Some(0) {
        return Ok(());
    }
    let ordered = |columns: &str| {
        let mut q = Sql::new(&format!("SELECT {columns} FROM {}.events FINAL", ch.database()));
        let filter = where_clause(ch, query);
        q.raw(filter.as_str());
        if let Some(after) = query.after {
            q.raw(" AND event_day <= toDate(").string(&super::day_of(after.event_time)).raw(")");
            q.raw(" AND (event_time < ").int(after.event_time);
            q.raw(" OR (event_time = ").int(after.event_time).raw(" AND arrival < ").int(after.row).raw("))");
        }
        q.raw(" ORDER BY event_time DESC, arrival DESC");
        if let Some(limit) = query.limit {
            q.raw(" LIMIT ").int(limit as i64);
        }
        q.raw(" FORMAT JSONEachRow");
        q
    };
    if query.limit.is_none_or(|l| l > TWO_STEP_LIMIT) {
        return ch.query_lines(ordered(ROW_COLUMNS).as_str(), "search events in ClickHouse", &mut |line| {
            Ok(f(event_row(line)?))
        });
    }
    #[derive(Deserialize)]
    struct Key {
        #[serde(with = "int64")]
        event_time: i64,
        #[serde(with = "int64")]
        arrival: i64,
        event_id: String,
    }
    let keys: Vec<Key> =
        ch.query_rows(ordered("event_time, arrival, event_id").as_str(), "search events in ClickHouse")?;
    if keys.is_empty() {
        return Ok(());
    }
    // The rows of those keys, found through the table's primary key: `(event_day, event_time,
    // event_id)` of each, sent as a table. No FINAL: the page's keys name one arrival each, and
    // a duplicate not yet merged (same id, another arrival) is left out by the match below.
    // FINAL with the keys as a filter had read every row of the keys' time range, records and
    // all: 2.6 s for 50 rare keys across 72 h of 1 M events, against 0.2 s this way.
    #[derive(serde::Serialize)]
    struct KeyRow<'a> {
        event_day: String,
        event_time: i64,
        event_id: &'a str,
    }
    let mut table = ExternalTable::new("page_keys", "event_day Date, event_time Int64, event_id String");
    for k in &keys {
        table.push(&KeyRow { event_day: super::day_of(k.event_time), event_time: k.event_time, event_id: &k.event_id });
    }
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM {}.events PREWHERE (event_day, event_time, event_id) IN {} FORMAT JSONEachRow",
        ch.database(),
        table.name()
    );
    let mut rows: rustc_hash::FxHashMap<(String, i64), EventRow> = rustc_hash::FxHashMap::default();
    for row in ch.query_rows_with::<RowIn>(&sql, &table, "read searched events from ClickHouse")? {
        let row = EventRow::from(row);
        rows.insert((row.event_id.clone(), row.row), row);
    }
    for k in keys {
        if let Some(row) = rows.remove(&(k.event_id, k.arrival)) {
            if !f(row) {
                break;
            }
        }
    }
    Ok(())
}

pub(crate) fn event_by_id(ch: &ClickHouse, event_id: &str) -> Result<Option<EventRow>, StoreError> {
    #[derive(Deserialize)]
    struct At {
        #[serde(with = "int64")]
        event_time: i64,
    }
    let db = ch.database();
    let mut q = Sql::new(&format!("SELECT event_time FROM {db}.event_index FINAL WHERE event_id = "));
    q.string(event_id).raw(" LIMIT 1 FORMAT JSONEachRow");
    let Some(at) = ch.query_rows::<At>(q.as_str(), "look up an event id")?.into_iter().next() else {
        return Ok(None);
    };
    let mut q = Sql::new(&format!("SELECT {ROW_COLUMNS} FROM {db}.events FINAL WHERE event_day = toDate("));
    q.string(&super::day_of(at.event_time)).raw(") AND event_time = ").int(at.event_time);
    q.raw(" AND event_id = ").string(event_id).raw(" LIMIT 1 FORMAT JSONEachRow");
    Ok(ch.query_rows::<RowIn>(q.as_str(), "read an event")?.into_iter().next().map(EventRow::from))
}

pub(crate) fn summarize(ch: &ClickHouse, query: &EventQuery, spec: &SummarySpec) -> Result<Summary, StoreError> {
    let db = ch.database();
    let filter = where_clause(ch, query);
    #[derive(Deserialize)]
    struct Counts {
        #[serde(with = "int64")]
        events: i64,
        #[serde(with = "int64")]
        errors: i64,
        #[serde(with = "int64")]
        denied: i64,
        #[serde(with = "int64")]
        first: i64,
        #[serde(with = "int64")]
        last: i64,
    }
    // Spellings of "not allowed", as `is_access_denied` has them.
    let denied = "(position(error_code, 'AccessDenied') > 0 OR position(error_code, 'Unauthorized') > 0
        OR position(error_code, 'Forbidden') > 0)";
    let mut q = Sql::new(&format!(
        "SELECT toInt64(count()) AS events, toInt64(countIf(error_code IS NOT NULL)) AS errors,
            toInt64(countIf(ifNull({denied}, 0))) AS denied,
            toInt64(ifNull(min(event_time), 0)) AS first, toInt64(ifNull(max(event_time), 0)) AS last
         FROM {db}.events FINAL"
    ));
    q.raw(filter.as_str()).raw(" FORMAT JSONEachRow");
    let counts = ch.query_rows::<Counts>(q.as_str(), "count events in ClickHouse")?;
    let mut summary = Summary::default();
    if let Some(c) = counts.into_iter().next().filter(|c| c.events > 0) {
        summary.events = c.events as u64;
        summary.errors = c.errors as u64;
        summary.denied = c.denied as u64;
        summary.first = Some(c.first);
        summary.last = Some(c.last);
    }
    if summary.events == 0 {
        summary.tops = spec.tops.iter().map(|&d| (d, Vec::new())).collect();
        return Ok(summary);
    }
    if spec.bucket_ms > 0 {
        #[derive(Deserialize)]
        struct Point {
            #[serde(with = "int64")]
            start: i64,
            series: String,
            #[serde(with = "int64")]
            n: i64,
        }
        let series = spec.series.map_or("''".to_string(), |d| format!("ifNull({}, '')", column(d)));
        // Floor division, as the SQLite backend buckets (times before 1970 included).
        let b = spec.bucket_ms.max(1);
        let mut q = Sql::new(&format!(
            "SELECT toInt64((intDiv(event_time, {b}) - (event_time % {b} < 0)) * {b}) AS start, {series} AS series,
                toInt64(count()) AS n FROM {db}.events FINAL"
        ));
        q.raw(filter.as_str()).raw(" GROUP BY start, series ORDER BY start, series FORMAT JSONEachRow");
        let mut points: Vec<HistogramPoint> = ch
            .query_rows::<Point>(q.as_str(), "count events per time bucket in ClickHouse")?
            .into_iter()
            .map(|p| HistogramPoint { start: p.start, series: p.series, events: p.n as u64 })
            .collect();
        points.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.series.cmp(&b.series)));
        summary.histogram = points;
    }
    for &d in &spec.tops {
        #[derive(Deserialize)]
        struct Top {
            v: String,
            #[serde(with = "int64")]
            n: i64,
        }
        let col = column(d);
        let mut q =
            Sql::new(&format!("SELECT assumeNotNull({col}) AS v, toInt64(count()) AS n FROM {db}.events FINAL"));
        q.raw(filter.as_str()).raw(&format!(" AND {col} IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT "));
        q.int(spec.top_n as i64).raw(" FORMAT JSONEachRow");
        let top = ch.query_rows::<Top>(q.as_str(), "count top values in ClickHouse")?;
        summary.tops.push((d, top.into_iter().map(|t| (t.v, t.n as u64)).collect()));
    }
    Ok(summary)
}

pub(crate) fn principals_related(
    ch: &ClickHouse,
    principal: &str,
    limit: usize,
) -> Result<Vec<PrincipalInfo>, StoreError> {
    #[derive(Deserialize)]
    struct P {
        principal: String,
        kind: String,
        account_id: Option<String>,
        name: Option<String>,
        issuer: Option<String>,
        human: Option<String>,
        federation: Option<String>,
    }
    let db = ch.database();
    let mut q = Sql::new(&format!(
        "SELECT principal, kind, account_id, name, issuer, human, federation FROM {db}.principals FINAL WHERE principal = "
    ));
    q.string(principal).raw(" OR issuer = ").string(principal).raw(" OR human = ").string(principal);
    q.raw(&format!(" OR human IN (SELECT human FROM {db}.principals FINAL WHERE principal = "));
    q.string(principal).raw(" AND human IS NOT NULL) ORDER BY principal = ").string(principal);
    q.raw(" DESC, principal LIMIT ").int(limit as i64).raw(" FORMAT JSONEachRow");
    Ok(ch
        .query_rows::<P>(q.as_str(), "read principals from ClickHouse")?
        .into_iter()
        .map(|p| PrincipalInfo {
            principal: p.principal,
            kind: p.kind,
            account_id: p.account_id,
            name: p.name,
            issuer: p.issuer,
            human: p.human,
            federation: p.federation,
        })
        .collect())
}

/// Events, their time range and principals.
pub(crate) fn stats(ch: &ClickHouse) -> Result<crate::EventStats, StoreError> {
    #[derive(Deserialize)]
    struct S {
        #[serde(with = "int64")]
        events: i64,
        #[serde(with = "int64")]
        first: i64,
        #[serde(with = "int64")]
        last: i64,
        #[serde(with = "int64")]
        principals: i64,
    }
    let db = ch.database();
    let sql = format!(
        "SELECT toInt64(count()) AS events, toInt64(ifNull(min(event_time), 0)) AS first,
            toInt64(ifNull(max(event_time), 0)) AS last,
            (SELECT toInt64(count()) FROM {db}.principals FINAL) AS principals
         FROM {db}.events FINAL FORMAT JSONEachRow"
    );
    let s = ch.query_rows::<S>(&sql, "count events in ClickHouse")?.into_iter().next();
    Ok(match s {
        Some(s) if s.events > 0 => crate::EventStats {
            events: s.events as u64,
            oldest_event: Some(s.first),
            newest_event: Some(s.last),
            principals: s.principals as u64,
        },
        Some(s) => crate::EventStats { principals: s.principals as u64, ..Default::default() },
        None => crate::EventStats::default(),
    })
}
