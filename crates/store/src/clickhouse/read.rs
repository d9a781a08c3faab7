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

/// The text filters of `query`, each with its column (and `event_keys` dimension).
fn text_filters(query: &EventQuery) -> [(&'static str, &Option<String>); 6] {
    [
        ("event_name", &query.event_name),
        ("event_source", &query.event_source),
        ("source_ip", &query.source_ip),
        ("account", &query.account),
        ("region", &query.region),
        ("error_code", &query.error_code),
    ]
}

/// ` WHERE …` for every filter of `query` (paging excluded).
fn where_clause(query: &EventQuery, principals: &Principals) -> Sql {
    let mut q = Sql::new(" WHERE 1");
    for (column, value) in text_filters(query) {
        if let Some(v) = value {
            q.raw(" AND ");
            matches(&mut q, column, v);
        }
    }
    principals.and_in(&mut q, "principal");
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

/// Each window a page is looked for in is this many times longer than the one before;
/// after [`WINDOWS`] of them the rest of the range is read at once.
const WINDOW_GROWTH: i64 = 8;
const WINDOWS: usize = 4;

/// Where a search finds its page's keys.
enum KeySource {
    /// `event_keys`: every filter is an exact value of a dimension it holds. `terms` are the
    /// `(dimension, value)` conditions, OR-ed; an event matches when it has a row for each.
    Keys { terms: Vec<Sql> },
    /// `events` itself (`FINAL`): a wildcard filter, or none at all.
    Events,
}

impl KeySource {
    fn of(query: &EventQuery, principals: &Principals) -> KeySource {
        let mut terms = Vec::new();
        for (dimension, value) in text_filters(query) {
            let Some(v) = value else { continue };
            if is_wildcard(v) {
                return KeySource::Events;
            }
            let mut t = Sql::new("(dimension = '");
            t.raw(dimension).raw("' AND value = ").string(v).raw(")");
            terms.push(t);
        }
        if !matches!(principals, Principals::Any) {
            let mut t = Sql::new("(dimension = 'principal'");
            principals.and_in(&mut t, "value");
            t.raw(")");
            terms.push(t);
        }
        // `errors` adds nothing to an error code filter (every row with a code failed).
        if query.errors && query.error_code.is_none() {
            terms.push(Sql::new(&format!("(dimension = '{}' AND value = '')", super::FAILED)));
        }
        if terms.is_empty() {
            KeySource::Events
        } else {
            KeySource::Keys { terms }
        }
    }
}

/// A query's principal filter, resolved once per search or summary: the principals it
/// names, listed when they are few (the usual case: one exact principal, or a name and its
/// sessions), so each of the search's queries carries the list rather than a subquery over
/// every principal. A subquery ran once per query of a search (up to six) and, on a
/// cluster, once more to ship its result to each shard: 1.7–2.1 s per search at 10 M events.
pub(super) enum Principals {
    /// No principal filter.
    Any,
    /// Exactly these principals (never empty: a filter naming none matches nothing).
    Listed(Vec<String>),
    /// More than `SearchWindows::listed_principals` (a broad wildcard): the subquery itself.
    Many(Sql),
}

impl Principals {
    /// The principals `query`'s filter names; `None` when it names none (nothing matches).
    pub(super) fn resolve(ch: &ClickHouse, query: &EventQuery) -> Result<Option<Principals>, StoreError> {
        let Some(who) = &query.principal else { return Ok(Some(Principals::Any)) };
        let set = principal_subquery(ch, who);
        #[derive(Deserialize)]
        struct P {
            principal: String,
        }
        let most = ch.search_windows().listed_principals;
        let mut q = Sql::new("SELECT principal FROM ");
        q.raw(set.as_str()).raw(" LIMIT ").int(most as i64 + 1).raw(" FORMAT JSONEachRow");
        let found = ch.query_rows::<P>(q.as_str(), "find the principals a search names")?;
        Ok(match found.len() {
            0 => None,
            n if n > most => Some(Principals::Many(set)),
            _ => Some(Principals::Listed(found.into_iter().map(|p| p.principal).collect())),
        })
    }

    /// ` AND column IN (…)`, or nothing without a filter.
    fn and_in(&self, q: &mut Sql, column: &str) {
        match self {
            Principals::Any => {}
            Principals::Listed(names) => {
                q.raw(" AND ").raw(column).raw(" IN ").strings(names.iter().map(String::as_str));
            }
            Principals::Many(set) => {
                q.raw(" AND ").raw(column).raw(" IN ").raw(set.as_str());
            }
        }
    }
}

/// `(SELECT principal FROM principals FINAL WHERE …)`: the principals `who` names. The
/// candidates come from `principal_names` by the exact name (a wildcard reads every
/// principal, without `FINAL`: 0.1 s over 1.7 M principals, against 0.6 s with it), then
/// are checked on their merged rows, which their keys find at once.
fn principal_subquery(ch: &ClickHouse, who: &str) -> Sql {
    let mut names = Sql::new("(");
    for (i, column) in ["principal", "issuer", "name", "human"].iter().enumerate() {
        if i > 0 {
            names.raw(" OR ");
        }
        matches(&mut names, column, who);
    }
    names.raw(")");
    let db = ch.database();
    let mut candidates = Sql::new("");
    if is_wildcard(who) {
        candidates.raw(&format!("SELECT principal FROM {db}.principals WHERE {}", names.as_str()));
    } else {
        candidates.raw(&format!("SELECT principal FROM {db}.principal_names WHERE name = ")).string(who);
    }
    Sql::new(&format!(
        "(SELECT principal FROM {db}.principals FINAL WHERE principal IN ({c}) AND {n})",
        c = candidates.as_str(),
        n = names.as_str()
    ))
}

/// The newest time `query` can match: its `until`, or its paging cursor's time.
fn upper_bound(query: &EventQuery) -> Option<i64> {
    match (query.until, query.after) {
        (Some(u), Some(a)) => Some(u.min(a.event_time)),
        (u, a) => u.or(a.map(|a| a.event_time)),
    }
}

/// ` AND` the rows of `events` after the paging cursor `after` in the newest-first order.
fn after_cursor(q: &mut Sql, after: Option<crate::Page>) {
    if let Some(after) = after {
        q.raw(" AND (event_time < ").int(after.event_time);
        q.raw(" OR (event_time = ").int(after.event_time).raw(" AND arrival < ").int(after.row).raw("))");
    }
}

/// `expr` (milliseconds) rounded down to a multiple of `step`, times before 1970 included,
/// as the SQLite backend buckets.
pub(super) fn floor_to(expr: &str, step: i64) -> String {
    format!("toInt64((intDiv({expr}, {step}) - ({expr} % {step} < 0)) * {step})")
}

/// ` AND` the time bounds `[lo, hi]` (inclusive, either open): the day bounds let
/// ClickHouse skip partitions and granules, the time bounds are exact.
pub(super) fn time_bounds(q: &mut Sql, lo: Option<i64>, hi: Option<i64>) {
    if let Some(lo) = lo {
        q.raw(" AND event_day >= toDate(").string(&super::day_of(lo)).raw(") AND event_time >= ").int(lo);
    }
    if let Some(hi) = hi {
        q.raw(" AND event_day <= toDate(").string(&super::day_of(hi)).raw(") AND event_time <= ").int(hi);
    }
}

/// A page row's key: its time, id and (first) arrival.
#[derive(Deserialize)]
struct Key {
    #[serde(with = "int64")]
    event_time: i64,
    #[serde(with = "int64", rename = "first")]
    arrival: i64,
    event_id: String,
}

/// The keys of the newest `limit` events matching `query`. ClickHouse 18.16 cannot stop
/// reading early in key order: it reads every matching row, then sorts. So the page is
/// looked for in time windows, newest first, each longer than the last, until it is full:
/// a frequent value fills it from its last hour, a rare one is read whole (its rows are few).
fn page_keys(
    ch: &ClickHouse,
    query: &EventQuery,
    principals: &Principals,
    limit: usize,
) -> Result<Vec<Key>, StoreError> {
    let source = KeySource::of(query, principals);
    let lo = query.since;
    let hi = upper_bound(query);
    if matches!((lo, hi), (Some(lo), Some(hi)) if lo > hi) {
        return Ok(Vec::new());
    }
    // Where the windows start: the newest candidate row, and how many candidates there are.
    #[derive(Deserialize)]
    struct Newest {
        #[serde(with = "int64")]
        n: i64,
        #[serde(with = "int64")]
        t: i64,
    }
    let db = ch.database();
    let mut q = match &source {
        KeySource::Keys { terms } => {
            let mut q = Sql::new(&format!(
                "SELECT toInt64(count()) AS n, toInt64(max(event_time)) AS t FROM {db}.event_keys WHERE "
            ));
            q.raw(terms[0].as_str());
            q
        }
        KeySource::Events => {
            Sql::new(&format!("SELECT toInt64(count()) AS n, toInt64(max(event_time)) AS t FROM {db}.events WHERE 1"))
        }
    };
    time_bounds(&mut q, lo, hi);
    q.raw(" FORMAT JSONEachRow");
    let newest = ch.query_rows::<Newest>(q.as_str(), "find the newest matching events in ClickHouse")?;
    let Some(newest) = newest.into_iter().next().filter(|n| n.n > 0) else {
        return Ok(Vec::new());
    };
    let tuning = ch.search_windows();
    let mut keys = Vec::with_capacity(limit);
    let mut top = newest.t;
    let mut span = tuning.first_ms.max(1);
    for window in 0.. {
        let whole = window >= WINDOWS || newest.n <= tuning.one_query_rows;
        let bottom = if whole { lo } else { Some(top.saturating_sub(span - 1)) };
        let bottom = match (bottom, lo) {
            (Some(b), Some(lo)) => Some(b.max(lo)),
            (b, _) => b,
        };
        let found = window_keys(ch, query, principals, &source, bottom, top, limit - keys.len())?;
        keys.extend(found);
        let reached_lo = match (bottom, lo) {
            (None, _) => true,
            (Some(b), Some(lo)) => b <= lo,
            (Some(_), None) => false,
        };
        if keys.len() >= limit || reached_lo {
            break;
        }
        top = bottom.expect("not the whole range") - 1;
        span = span.saturating_mul(WINDOW_GROWTH);
    }
    Ok(keys)
}

/// The keys of the newest `limit` events matching `query` in `[bottom, top]`.
fn window_keys(
    ch: &ClickHouse,
    query: &EventQuery,
    principals: &Principals,
    source: &KeySource,
    bottom: Option<i64>,
    top: i64,
    limit: usize,
) -> Result<Vec<Key>, StoreError> {
    let db = ch.database();
    let mut q = match source {
        KeySource::Keys { terms } => {
            // A record delivered twice and not merged yet has its rows twice: grouped by
            // event, its first arrival (the one `events` keeps: the largest `keep`, which is
            // `u64::MAX - arrival`) names it.
            let mut q = Sql::new(&format!(
                "SELECT event_time, event_id, toInt64(18446744073709551615 - max(keep)) AS first
                 FROM {db}.event_keys WHERE ("
            ));
            for (i, t) in terms.iter().enumerate() {
                if i > 0 {
                    q.raw(" OR ");
                }
                q.raw(t.as_str());
            }
            q.raw(")");
            time_bounds(&mut q, bottom, Some(top));
            q.raw(" GROUP BY event_time, event_id");
            q.raw(&format!(" HAVING uniqExact(dimension) = {}", terms.len()));
            if let Some(after) = query.after {
                q.raw(" AND (event_time < ").int(after.event_time).raw(" OR first < ").int(after.row).raw(")");
            }
            q.raw(" ORDER BY event_time DESC, first DESC");
            q
        }
        KeySource::Events => {
            let mut q = Sql::new(&format!("SELECT event_time, arrival AS first, event_id FROM {db}.events FINAL"));
            q.raw(where_clause(query, principals).as_str());
            time_bounds(&mut q, bottom, Some(top));
            after_cursor(&mut q, query.after);
            q.raw(" ORDER BY event_time DESC, arrival DESC");
            q
        }
    };
    q.raw(" LIMIT ").int(limit as i64).raw(" FORMAT JSONEachRow");
    ch.query_rows(q.as_str(), "search events in ClickHouse")
}

/// Events matching `query`, newest first. A page (a `limit`) is read in two steps: the keys
/// of the page first ([`page_keys`]: small rows, in time windows), then the rows of just
/// those keys. Reading the verbatim records of every matching row before the sort made a
/// search over millions of events take seconds. Without a limit (or a larger one) the rows
/// stream ([`stream_events`]).
pub(crate) fn for_each_event(
    ch: &ClickHouse,
    query: &EventQuery,
    f: &mut dyn FnMut(EventRow) -> bool,
) -> Result<(), StoreError> {
    let limit = match query.limit {
        Some(0) => return Ok(()),
        Some(l) if l <= TWO_STEP_LIMIT => l,
        _ => return stream_events(ch, query, f),
    };
    let Some(principals) = Principals::resolve(ch, query)? else { return Ok(()) };
    let keys = page_keys(ch, query, &principals, limit)?;
    for row in rows_of_keys(ch, keys)? {
        if !f(row) {
            break;
        }
    }
    Ok(())
}

/// The rows `keys` name, in their order.
fn rows_of_keys(ch: &ClickHouse, keys: Vec<Key>) -> Result<Vec<EventRow>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
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
    Ok(keys.into_iter().filter_map(|k| rows.remove(&(k.event_id, k.arrival))).collect())
}

/// Events whose records name `resource` ([`model::resources::touches`]) at or after `since`,
/// newest first, at most `limit`: the `resource` keys of its index key, newest first, in
/// batches, each candidate confirmed on its record (keys over-approximate).
pub(crate) fn resource_events(
    ch: &ClickHouse,
    resource: &str,
    since: i64,
    limit: usize,
) -> Result<Vec<EventRow>, StoreError> {
    let mut found = Vec::new();
    if limit == 0 || resource.is_empty() {
        return Ok(found);
    }
    // Candidates read at a time: twice what is asked for, as most are confirmed.
    let batch = limit.saturating_mul(2).clamp(16, TWO_STEP_LIMIT);
    let mut term = Sql::new(&format!("(dimension = '{}' AND value = ", super::RESOURCE));
    term.string(model::resources::lookup_key(resource)).raw(")");
    let source = KeySource::Keys { terms: vec![term] };
    // The keys after the last batch's, as a search's next page.
    let mut next = EventQuery::default();
    loop {
        let top = next.after.map_or(i64::MAX, |a| a.event_time);
        let keys = window_keys(ch, &next, &Principals::Any, &source, Some(since), top, batch)?;
        let full = keys.len() == batch;
        next.after = keys.last().map(|k| crate::Page { event_time: k.event_time, row: k.arrival });
        for row in rows_of_keys(ch, keys)? {
            if model::resources::touches(&row.raw, resource) {
                found.push(row);
                if found.len() == limit {
                    return Ok(found);
                }
            }
        }
        if !full {
            return Ok(found);
        }
    }
}

/// Migration 5: the resource keys of every stored record, read from its verbatim JSON in
/// consecutive time windows (as [`stream_events`] reads), oldest first. A record stored
/// twice and not merged yet gets its keys twice, which the table's key collapses.
pub(crate) fn index_resources(ch: &ClickHouse) -> Result<(), StoreError> {
    let db = ch.database();
    let Some(span) = Span::of(ch, None, None)? else { return Ok(()) };
    #[derive(Deserialize)]
    struct Stored {
        #[serde(with = "int64")]
        event_time: i64,
        event_id: String,
        #[serde(with = "int64")]
        keep: i64,
        raw: String,
    }
    let width = span.window_width(ch);
    let mut pending = super::PendingRows::default();
    let mut bottom = span.oldest;
    while bottom <= span.newest {
        let top = bottom.saturating_add(width - 1).min(span.newest);
        // `keep` read as a signed number: JSON's 64-bit integers are quoted either way.
        let mut q =
            Sql::new(&format!("SELECT event_time, event_id, toInt64(keep) AS keep, raw FROM {db}.events WHERE 1"));
        time_bounds(&mut q, Some(bottom), Some(top));
        q.raw(" FORMAT JSONEachRow");
        ch.query_lines(q.as_str(), "read stored records for their resources", &mut |line| {
            let r: Stored = serde_json::from_str(line)
                .map_err(|e| StoreError::clickhouse("read a stored record from ClickHouse", e.to_string()))?;
            // A record that no longer parses names no resources (it was stored verbatim).
            let Ok(record) = serde_json::from_str::<serde_json::Value>(&r.raw) else { return Ok(true) };
            let ids = model::resources::identifiers(&record);
            let day = super::day_number(r.event_time);
            for key in model::resources::index_keys(&ids) {
                pending.push_key(super::RESOURCE, key, day, r.event_time, &r.event_id, r.keep as u64);
            }
            Ok(true)
        })?;
        pending.flush(ch)?;
        bottom = top.saturating_add(1);
    }
    Ok(())
}

/// The stored rows of a time range: how many, the oldest and newest time.
#[derive(Deserialize)]
struct Span {
    #[serde(with = "int64")]
    n: i64,
    #[serde(with = "int64")]
    oldest: i64,
    #[serde(with = "int64")]
    newest: i64,
}

impl Span {
    /// The rows of `events` in `[lo, hi]` (either open), or `None` when there are none.
    fn of(ch: &ClickHouse, lo: Option<i64>, hi: Option<i64>) -> Result<Option<Span>, StoreError> {
        let mut q = Sql::new(&format!(
            "SELECT toInt64(count()) AS n, toInt64(min(event_time)) AS oldest, toInt64(max(event_time)) AS newest
             FROM {}.events WHERE 1",
            ch.database()
        ));
        time_bounds(&mut q, lo, hi);
        q.raw(" FORMAT JSONEachRow");
        Ok(ch.query_rows::<Span>(q.as_str(), "size a range of events")?.into_iter().next().filter(|s| s.n > 0))
    }

    /// The width of windows holding about `stream_rows` rows each at the range's average
    /// density (the count includes rows a filter drops).
    fn window_width(&self, ch: &ClickHouse) -> i64 {
        let rows = ch.search_windows().stream_rows.max(1);
        ((self.newest - self.oldest + 1) as i128 * rows as i128 / self.n as i128).max(1) as i64
    }
}

/// Every event matching `query` (up to a limit too large for a page), newest first, read in
/// consecutive time windows sized to hold about `stream_rows` events each: one query over
/// the whole range made the server sort every record of it at once (over 3.7 GB for 10 M
/// events), and a caller that stops early reads only the newest windows.
fn stream_events(ch: &ClickHouse, query: &EventQuery, f: &mut dyn FnMut(EventRow) -> bool) -> Result<(), StoreError> {
    let Some(principals) = Principals::resolve(ch, query)? else { return Ok(()) };
    let db = ch.database();
    let Some(span) = Span::of(ch, query.since, upper_bound(query))? else { return Ok(()) };
    let width = span.window_width(ch);
    let mut left = query.limit;
    let mut top = span.newest;
    loop {
        let bottom = top.saturating_sub(width - 1).max(span.oldest);
        let mut q = Sql::new(&format!("SELECT {ROW_COLUMNS} FROM {db}.events FINAL"));
        q.raw(where_clause(query, &principals).as_str());
        time_bounds(&mut q, Some(bottom), Some(top));
        after_cursor(&mut q, query.after);
        q.raw(" ORDER BY event_time DESC, arrival DESC");
        if let Some(n) = left {
            q.raw(" LIMIT ").int(n as i64);
        }
        q.raw(" FORMAT JSONEachRow");
        let mut stopped = false;
        ch.query_lines(q.as_str(), "search events in ClickHouse", &mut |line| {
            if let Some(n) = left.as_mut() {
                *n -= 1;
            }
            stopped = !f(event_row(line)?) || left == Some(0);
            Ok(!stopped)
        })?;
        if stopped || bottom <= span.oldest {
            return Ok(());
        }
        top = bottom - 1;
    }
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

/// A summary's totals, as both the direct query and the hour counts answer them (aliases
/// distinct from the columns they sum).
#[derive(Deserialize)]
pub(super) struct Totals {
    #[serde(with = "int64", rename = "all_events")]
    events: i64,
    #[serde(with = "int64", rename = "all_errors")]
    errors: i64,
    #[serde(with = "int64", rename = "all_denied")]
    denied: i64,
    #[serde(with = "int64", rename = "all_first")]
    first: i64,
    #[serde(with = "int64", rename = "all_last")]
    last: i64,
}

/// A histogram bucket's count.
#[derive(Deserialize)]
pub(super) struct Bucket {
    #[serde(with = "int64")]
    start: i64,
    series: String,
    #[serde(with = "int64")]
    total: i64,
}

impl Bucket {
    /// The histogram of `buckets`, sorted by start, then series.
    pub(super) fn histogram(buckets: Vec<Bucket>) -> Vec<HistogramPoint> {
        let mut points: Vec<HistogramPoint> = buckets
            .into_iter()
            .map(|p| HistogramPoint { start: p.start, series: p.series, events: p.total as u64 })
            .collect();
        points.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.series.cmp(&b.series)));
        points
    }
}

impl Totals {
    /// The summary of `rows` (one row, or none): its counts, and when it counts no events,
    /// empty tops for `spec` (nothing more to ask).
    pub(super) fn summary(rows: Vec<Totals>, spec: &SummarySpec) -> Summary {
        let mut summary = Summary::default();
        if let Some(c) = rows.into_iter().next().filter(|c| c.events > 0) {
            summary.events = c.events as u64;
            summary.errors = c.errors as u64;
            summary.denied = c.denied as u64;
            summary.first = Some(c.first);
            summary.last = Some(c.last);
        } else {
            summary.tops = spec.tops.iter().map(|&d| (d, Vec::new())).collect();
        }
        summary
    }
}

/// The events a summary counts, one row each: `events FINAL` for a time range alone; with a
/// filter, the matching rows read without `FINAL` and grouped by their key (a record stored
/// twice and not merged yet is one group, its first arrival's values kept, as `FINAL`
/// keeps). `FINAL` merges every row of the range before filtering: a principal's page read
/// 10 M events' keys nine times (22 s); grouping reads the filter's columns, then only the
/// matching rows.
fn summarized_events(ch: &ClickHouse, query: &EventQuery, principals: &Principals, spec: &SummarySpec) -> Sql {
    let db = ch.database();
    let filter = where_clause(query, principals);
    let mut columns: Vec<&str> = vec!["error_code"];
    for d in spec.series.iter().chain(&spec.tops) {
        if !columns.contains(&column(*d)) {
            columns.push(column(*d));
        }
    }
    // Paging does not narrow a summary.
    let time_only = EventQuery {
        since: query.since,
        until: query.until,
        limit: query.limit,
        after: query.after,
        ..Default::default()
    };
    let mut q = Sql::new("(SELECT event_time");
    if *query == time_only {
        for c in &columns {
            q.raw(", ").raw(c);
        }
        q.raw(&format!(" FROM {db}.events FINAL")).raw(filter.as_str());
    } else {
        // Aliases are the query's, WHERE included: the groups' values are named apart from
        // the columns the filter reads, then renamed.
        for c in &columns {
            q.raw(&format!(", m_{c} AS {c}"));
        }
        q.raw(" FROM (SELECT event_time");
        for c in &columns {
            q.raw(&format!(", argMax({c}, keep) AS m_{c}"));
        }
        q.raw(&format!(" FROM {db}.events")).raw(filter.as_str()).raw(" GROUP BY event_time, event_id)");
    }
    q.raw(")");
    q
}

pub(crate) fn summarize(ch: &ClickHouse, query: &EventQuery, spec: &SummarySpec) -> Result<Summary, StoreError> {
    let Some(principals) = Principals::resolve(ch, query)? else { return Ok(Totals::summary(Vec::new(), spec)) };
    let matched = summarized_events(ch, query, &principals, spec);
    let denied = super::rollup::DENIED;
    let sql = format!(
        "SELECT toInt64(count()) AS all_events, toInt64(countIf(error_code IS NOT NULL)) AS all_errors,
            toInt64(countIf(ifNull({denied}, 0))) AS all_denied,
            toInt64(ifNull(min(event_time), 0)) AS all_first, toInt64(ifNull(max(event_time), 0)) AS all_last
         FROM {} FORMAT JSONEachRow",
        matched.as_str()
    );
    let mut summary = Totals::summary(ch.query_rows(&sql, "count events in ClickHouse")?, spec);
    if summary.events == 0 {
        return Ok(summary);
    }
    if spec.bucket_ms > 0 {
        let series = spec.series.map_or("''".to_string(), |d| format!("ifNull({}, '')", column(d)));
        let sql = format!(
            "SELECT {} AS start, {series} AS series, toInt64(count()) AS total FROM {}
             GROUP BY start, series ORDER BY start, series FORMAT JSONEachRow",
            floor_to("event_time", spec.bucket_ms.max(1)),
            matched.as_str()
        );
        summary.histogram = Bucket::histogram(ch.query_rows(&sql, "count events per time bucket in ClickHouse")?);
    }
    if !spec.tops.is_empty() {
        // Every column's top values in one pass: a row per (column, value) of each event.
        #[derive(Deserialize)]
        struct Top {
            d: String,
            v: String,
            #[serde(with = "int64")]
            n: i64,
        }
        let names: Vec<String> = spec.tops.iter().map(|&d| format!("'{}'", column(d))).collect();
        let values: Vec<String> = spec.tops.iter().map(|&d| format!("toNullable({})", column(d))).collect();
        let sql = format!(
            "SELECT d, assumeNotNull(value) AS v, toInt64(count()) AS n FROM {}
             ARRAY JOIN [{}] AS d, [{}] AS value
             WHERE value IS NOT NULL GROUP BY d, v ORDER BY d, n DESC, v LIMIT {} BY d FORMAT JSONEachRow",
            matched.as_str(),
            names.join(", "),
            values.join(", "),
            spec.top_n
        );
        let mut tops: rustc_hash::FxHashMap<String, Vec<(String, u64)>> = rustc_hash::FxHashMap::default();
        for t in ch.query_rows::<Top>(&sql, "count top values in ClickHouse")? {
            tops.entry(t.d).or_default().push((t.v, t.n as u64));
        }
        for &d in &spec.tops {
            summary.tops.push((d, tops.get(column(d)).cloned().unwrap_or_default()));
        }
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

/// How many principals have been seen.
pub(crate) fn principal_count(ch: &ClickHouse) -> Result<u64, StoreError> {
    #[derive(Deserialize)]
    struct N {
        #[serde(with = "int64")]
        n: i64,
    }
    let sql = format!("SELECT toInt64(count()) AS n FROM {}.principals FINAL FORMAT JSONEachRow", ch.database());
    Ok(ch.query_rows::<N>(&sql, "count principals")?.first().map_or(0, |n| n.n as u64))
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
