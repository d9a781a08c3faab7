//! Hour counts: what the overview shows (totals, a histogram, top values) without reading
//! every event of its range.
//!
//! `hour_counts` holds, per UTC hour, the hour's totals (dimension `''`) and the events per
//! value of each dimension (`'~dimension'` counts the events without one), all tagged with
//! the version they were counted at. An hour is counted again, as a whole, from `events
//! FINAL` — so a record stored twice counts once, and the counts are exact whatever the merge
//! state — never incremented. Which hours need it is PostgreSQL's to say: a writer marks the
//! hours of a committed group's events with its ledger rows (`hour_marks`, a sequence number
//! each), and retention the hours it deleted from. A summary recounts the marked hours of its
//! range first (the newest [`RECOUNT_LIMIT`]), then reads the counts of the hours' newest
//! versions, and the events of the partial hours at the range's ends directly. While a backfill
//! leaves more hours marked than that, it reads events directly, as before.
//!
//! Recounts of an hour take turns (a PostgreSQL advisory lock per hour), each tags its rows
//! with a version of its own and clears the marks it covered: a group committed meanwhile
//! leaves a newer mark, and the hour is counted again. A recount ends with a marker row per
//! hour (dimension `''`, value `'#'`); reads take each hour's newest version that has its
//! marker, so a recount cut short is never read, and an hour retention emptied gets a newer
//! version with no counts.
//!
//! A range's most frequent values of a column with millions of distinct values (addresses,
//! principals, user agents: tens of thousands per hour) must not read every (hour, value)
//! count. A recount copies the counts of at least [`HEAVY`] under dimension `'^'` + the
//! dimension (the same versions, so read as the counts are); any value absent from those in
//! an hour counted fewer there. [`top_values`] sums the heavy counts, bounds every other
//! value from above, and sums the exact counts of only the values that may still be among the
//! top; when the bounds do not separate the top from the rest (a flat distribution), it reads
//! every count. Either way the result is exact (as the SQLite store's rollups do).

use serde::Deserialize;

use super::http::{int64, ClickHouse, Sql};
use super::read::{floor_to, time_bounds, Bucket, Totals};
use crate::postgres::PgState;
use crate::{EventQuery, StoreError, Summary, SummarySpec};

pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The start of the UTC hour holding `t`.
pub(crate) fn hour_of(t: i64) -> i64 {
    t.div_euclid(HOUR_MS) * HOUR_MS
}

/// Marked hours a summary recounts before it answers; with more marked in its range (a
/// backfill under way), it reads events directly.
const RECOUNT_LIMIT: usize = 48;

/// Hours recounted in one query.
const RECOUNT_BATCH: usize = 24;

/// Counts of at least this many events in an hour are copied as heavy (`'^'` + dimension).
/// The literal is in [`heavy_copy_sql`] too.
pub(crate) const HEAVY: u64 = 32;

/// Candidates whose exact totals one query sums.
const LOOKUP_BATCH: usize = 64;

/// Exact totals [`top_values`] sums before it reads every count instead.
const MAX_LOOKUPS: usize = 1024;

/// "The call was refused", as `is_access_denied` spells it, over `error_code` (spelled out
/// again in [`count_hours_sql`], which must be a literal).
pub(crate) const DENIED: &str = "(position(error_code, 'AccessDenied') > 0 OR position(error_code, 'Unauthorized') > 0
        OR position(error_code, 'Forbidden') > 0)";

/// The rows of `hour_counts` for the events of `{db}.events FINAL WHERE $filter`, tagged
/// `$version` (an expression of `hour`). A macro so migration 4 can use it as a literal.
macro_rules! count_hours_sql {
    ($filter:literal, $version:literal) => {
        concat!(
            "SELECT if(value_or_null IS NULL, concat('~', dim), dim) AS dimension, hour,
                ifNull(value_or_null, '') AS value, count() AS events, countIf(failed) AS errors,
                countIf(refused) AS denied, min(event_time) AS first, max(event_time) AS last, ",
            $version,
            " AS version
            FROM (SELECT event_time, (intDiv(event_time, 3600000) - (event_time % 3600000 < 0)) * 3600000 AS hour,
                    error_code IS NOT NULL AS failed,
                    ifNull(position(error_code, 'AccessDenied') > 0 OR position(error_code, 'Unauthorized') > 0
                        OR position(error_code, 'Forbidden') > 0, 0) AS refused,
                    event_name, event_source, principal, source_ip, account, region, error_code, user_agent
                  FROM {db}.events FINAL WHERE ",
            $filter,
            ")
            ARRAY JOIN
                ['', 'event_name', 'event_source', 'principal', 'source_ip', 'account', 'region', 'error_code',
                 'user_agent'] AS dim,
                [toNullable(''), event_name, event_source, toNullable(principal), source_ip, account, region,
                 error_code, user_agent] AS value_or_null
            GROUP BY dim, value_or_null, hour"
        )
    };
}
pub(crate) use count_hours_sql;

/// The heavy copies (at least [`HEAVY`] events) of the value counts of `{db}.hour_counts
/// WHERE $filter`, for `INSERT INTO hour_counts`. A macro so migration 6 can use it as a
/// literal.
macro_rules! heavy_copy_sql {
    ($filter:literal) => {
        concat!(
            "SELECT concat('^', dimension), hour, value, events, errors, denied, first, last, version
            FROM {db}.hour_counts
            WHERE dimension != '' AND substring(dimension, 1, 1) != '~' AND substring(dimension, 1, 1) != '^'
                AND events >= 32 AND ",
            $filter
        )
    };
}
pub(crate) use heavy_copy_sql;

/// Counts `hours` again and clears their marks (see [`PgState::recount_hours`]: one
/// recount of an hour at a time, each with a version of its own).
pub(crate) fn recount(ch: &ClickHouse, state: &PgState, hours: &[i64]) -> Result<(), StoreError> {
    for batch in hours.chunks(RECOUNT_BATCH) {
        state.recount_hours(batch, |todo, version| count_hours(ch, todo, version))?;
    }
    Ok(())
}

/// Writes the counts of `hours` as `version`, then each hour's marker row: a version is
/// read only once its marker is there, so a recount cut short (a crash, a failed insert)
/// is never half read.
fn count_hours(ch: &ClickHouse, hours: &[i64], version: i64) -> Result<(), StoreError> {
    let (Some(&first), Some(&last)) = (hours.first(), hours.last()) else { return Ok(()) };
    let db = ch.database();
    let list = hours.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
    let mut filter = Sql::new("event_day >= toDate(");
    filter.string(&super::day_of(first)).raw(") AND event_day <= toDate(");
    filter.string(&super::day_of(last + HOUR_MS - 1)).raw(")");
    filter.raw(&format!(" AND {} IN ({list})", floor_to("event_time", HOUR_MS)));
    let select = count_hours_sql!("{filter}", "{version}")
        .replace("{version}", &format!("toInt64({version})"))
        .replace("{db}", db)
        .replace("{filter}", filter.as_str());
    ch.execute(&format!("INSERT INTO {db}.hour_counts {select}"), "count events per hour")?;
    let heavy = heavy_copy_sql!("hour IN ({list}) AND version = {version}")
        .replace("{db}", db)
        .replace("{list}", &list)
        .replace("{version}", &version.to_string());
    ch.execute(&format!("INSERT INTO {db}.hour_counts {heavy}"), "copy heavy hour counts")?;
    let mut markers = Vec::new();
    for &hour in hours {
        let row = serde_json::json!({
            "dimension": "", "hour": hour, "value": "#", "events": 0, "errors": 0, "denied": 0,
            "first": i64::MAX, "last": i64::MIN, "version": version,
        });
        serde_json::to_writer(&mut markers, &row).expect("rows serialize");
        markers.push(b'\n');
    }
    ch.insert_json_rows("hour_counts", &markers, "record hours counted")
}

/// The range's whole hours `[from, to)` and the partial hours at its ends, each `[lo, hi]`.
struct Split {
    from: i64,
    to: i64,
    edges: Vec<(i64, i64)>,
}

fn split(since: Option<i64>, until: Option<i64>) -> Option<Split> {
    let from = since.map_or(i64::MIN / 2, |s| hour_of(s.saturating_add(HOUR_MS - 1)));
    let to = until.map_or(i64::MAX / 2, |u| hour_of(u.saturating_add(1)));
    if from >= to {
        return None;
    }
    let mut edges = Vec::new();
    if let Some(s) = since.filter(|&s| s < from) {
        edges.push((s, from - 1));
    }
    if let Some(u) = until.filter(|&u| u >= to) {
        edges.push((to, u));
    }
    Some(Split { from, to, edges })
}

/// Whether `query` is one hour counts answer: a time range and nothing else.
fn answerable(query: &EventQuery, spec: &SummarySpec) -> bool {
    let EventQuery {
        event_name,
        event_source,
        principal,
        source_ip,
        account,
        region,
        since: _,
        until: _,
        errors,
        error_code,
        limit: _,
        after: _,
    } = query;
    let unfiltered =
        [event_name, event_source, principal, source_ip, account, region, error_code].iter().all(|f| f.is_none())
            && !errors;
    unfiltered && (spec.bucket_ms == 0 || spec.bucket_ms % HOUR_MS == 0)
}

/// The summary of `query` from hour counts, or `None` when they cannot answer it (a filter,
/// a bucket that is not whole hours, a backfill's many hours not counted yet).
pub(crate) fn summarize(
    ch: &ClickHouse,
    state: &PgState,
    query: &EventQuery,
    spec: &SummarySpec,
) -> Result<Option<Summary>, StoreError> {
    if !answerable(query, spec) {
        return Ok(None);
    }
    let Some(range) = split(query.since, query.until) else { return Ok(None) };
    let marked = state.marked_hours(range.from, range.to - 1)?;
    let behind = marked.len() > RECOUNT_LIMIT;
    let newest: Vec<i64> = marked[marked.len().saturating_sub(RECOUNT_LIMIT)..].iter().map(|m| m.0).collect();
    recount(ch, state, &newest)?;
    if behind {
        return Ok(None);
    }
    let counts = Counts { ch, db: ch.database(), range };
    let totals_sql = format!(
        "SELECT toInt64(sum(events)) AS all_events, toInt64(sum(errors)) AS all_errors,
            toInt64(sum(denied)) AS all_denied, toInt64(min(first)) AS all_first, toInt64(max(last)) AS all_last
         FROM {} FORMAT JSONEachRow",
        union(
            counts.counted(&[""]),
            counts.edges(
                &format!(
                    "toInt64(0) AS hour, '' AS value, toUInt64(1) AS events, toUInt64(error_code IS NOT NULL) AS errors,
                     toUInt64(ifNull({DENIED}, 0)) AS denied, event_time AS first, event_time AS last"
                ),
                ""
            )
        )
        .as_str()
    );
    let mut summary = Totals::summary(ch.query_rows(&totals_sql, "count events from hour counts")?, spec);
    if summary.events == 0 {
        return Ok(Some(summary));
    }
    if spec.bucket_ms > 0 {
        let floor = |t: &str| floor_to(t, spec.bucket_ms);
        let (counted_rows, live_series) = match spec.series {
            // The totals rows, the marker (no events) included: it adds nothing.
            None => (counts.counted(&[""]), "''".to_string()),
            // Events without a value are the series `''`, as the direct query has it.
            Some(d) => {
                (counts.counted(&[d.as_str(), &format!("~{}", d.as_str())]), format!("ifNull({}, '')", d.as_str()))
            }
        };
        let mut pre = Sql::new(&format!("SELECT {} AS start, value AS series, events AS n FROM ", floor("hour")));
        pre.raw(&format!("({})", counted_rows.as_str()));
        let live =
            counts.edges(&format!("{} AS start, {live_series} AS series, toUInt64(1) AS n", floor("event_time")), "");
        let sql = format!(
            "SELECT start, series, toInt64(sum(n)) AS total FROM {} GROUP BY start, series HAVING total > 0
             ORDER BY start, series FORMAT JSONEachRow",
            union(pre, live).as_str()
        );
        summary.histogram = Bucket::histogram(ch.query_rows(&sql, "count events per time bucket from hour counts")?);
    }
    let mut hours = None;
    for &d in &spec.tops {
        let hours = match hours {
            Some(h) => h,
            None => *hours.insert(counts.hours()?),
        };
        let top = top_values(&counts, d.as_str(), hours, spec.top_n)?;
        summary.tops.push((d, top));
    }
    Ok(Some(summary))
}

/// `(a UNION ALL b)`, or `(a)`.
fn union(a: Sql, b: Option<Sql>) -> Sql {
    let mut q = Sql::new("(");
    q.raw(a.as_str());
    if let Some(b) = b {
        q.raw(" UNION ALL ").raw(b.as_str());
    }
    q.raw(")");
    q
}

/// The counts of a summary's range: its whole hours' from `hour_counts`, its partial
/// hours' from the events.
struct Counts<'a> {
    ch: &'a ClickHouse,
    db: &'a str,
    range: Split,
}

impl Counts<'_> {
    /// Rows of `dimensions` at each counted hour's newest complete version (one with its
    /// marker).
    fn counted(&self, dimensions: &[&str]) -> Sql {
        let db = self.db;
        let mut q = Sql::new(&format!("SELECT hour, value, events, errors, denied, first, last FROM {db}.hour_counts"));
        q.raw(" WHERE dimension IN ").strings(dimensions.iter().copied());
        q.raw(&format!(
            " AND hour >= {f} AND hour < {t} AND (hour, version) IN (SELECT hour, max(version) FROM {db}.hour_counts
               WHERE dimension = '' AND value = '#' AND hour >= {f} AND hour < {t} GROUP BY hour)",
            f = self.range.from,
            t = self.range.to
        ));
        q
    }

    /// How many of the range's whole hours are counted (have a complete version).
    fn hours(&self) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct N {
            #[serde(with = "int64")]
            n: i64,
        }
        let sql = format!(
            "SELECT toInt64(uniqExact(hour)) AS n FROM {}.hour_counts
             WHERE dimension = '' AND value = '#' AND hour >= {} AND hour < {} FORMAT JSONEachRow",
            self.db, self.range.from, self.range.to
        );
        Ok(self.ch.query_rows::<N>(&sql, "count counted hours")?.first().map_or(0, |n| n.n as u64))
    }

    /// `SELECT columns` of the events of the partial hours (`AND extra`), read directly.
    fn edges(&self, columns: &str, extra: &str) -> Option<Sql> {
        if self.range.edges.is_empty() {
            return None;
        }
        let mut q = Sql::new(&format!("SELECT {columns} FROM {}.events FINAL WHERE (", self.db));
        for (i, &(lo, hi)) in self.range.edges.iter().enumerate() {
            if i > 0 {
                q.raw(" OR ");
            }
            q.raw("(1");
            time_bounds(&mut q, Some(lo), Some(hi));
            q.raw(")");
        }
        q.raw(")").raw(extra);
        Some(q)
    }

    /// Every (value, count) of `column` in the range: the whole hours' counts and the
    /// partial hours' events, restricted to `values` when given.
    fn values(&self, column: &str, values: Option<&[String]>) -> Sql {
        let mut counted = self.counted(&[column]);
        let mut extra = Sql::new(&format!(" AND {column} IS NOT NULL"));
        if let Some(values) = values {
            counted.raw(" AND value IN ").strings(values.iter().map(String::as_str));
            extra.raw(&format!(" AND assumeNotNull({column}) IN ")).strings(values.iter().map(String::as_str));
        }
        let mut pre = Sql::new("SELECT value AS v, events AS n FROM (");
        pre.raw(counted.as_str()).raw(")");
        let live = self.edges(&format!("assumeNotNull({column}) AS v, toUInt64(1) AS n"), extra.as_str());
        union(pre, live)
    }
}

#[derive(Deserialize)]
struct Top {
    v: String,
    #[serde(with = "int64")]
    total: i64,
}

/// The `k` most frequent values of `column` in the range (`hours` of them counted), most
/// frequent first, ties by value: exact, from the heavy counts and a few exact sums where
/// the bounds allow (see the module documentation), from every count otherwise.
fn top_values(counts: &Counts, column: &str, hours: u64, k: usize) -> Result<Vec<(String, u64)>, StoreError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    let ch = counts.ch;
    let light = HEAVY - 1;
    // Heavy counts: partial sums, and in how many hours each value was heavy. The partial
    // hours' most frequent values are candidates too; any other value counted there at most
    // as often as the last of those.
    #[derive(Deserialize)]
    struct Heavy {
        v: String,
        #[serde(with = "int64")]
        total: i64,
        #[serde(with = "int64")]
        hours: i64,
    }
    let heavy_sql = format!(
        "SELECT value AS v, toInt64(sum(events)) AS total, toInt64(uniqExact(hour)) AS hours FROM ({}) GROUP BY v
         FORMAT JSONEachRow",
        counts.counted(&[&format!("^{column}")]).as_str()
    );
    let mut bound: rustc_hash::FxHashMap<String, u64> = rustc_hash::FxHashMap::default();
    for h in ch.query_rows::<Heavy>(&heavy_sql, "read heavy hour counts")? {
        let unseen_hours = hours.saturating_sub(h.hours as u64);
        bound.insert(h.v, h.total as u64 + light * unseen_hours);
    }
    let mut edge_floor = 0u64;
    if let Some(edges) = counts.edges(&format!("assumeNotNull({column}) AS v"), &format!(" AND {column} IS NOT NULL")) {
        let most = ch.search_windows().edge_values.max(1);
        let sql = format!(
            "SELECT v, toInt64(count()) AS total FROM ({}) GROUP BY v ORDER BY total DESC, v LIMIT {most}
             FORMAT JSONEachRow",
            edges.as_str()
        );
        let edge = ch.query_rows::<Top>(&sql, "count the partial hours' top values")?;
        if edge.len() == most {
            edge_floor = edge.last().map_or(0, |t| t.total as u64);
        }
        let listed: rustc_hash::FxHashMap<&str, u64> = edge.iter().map(|t| (t.v.as_str(), t.total as u64)).collect();
        for b in bound.iter_mut().filter(|(v, _)| !listed.contains_key(v.as_str())) {
            *b.1 += edge_floor;
        }
        for (v, n) in listed {
            *bound.entry(v.to_string()).or_insert(light * hours) += n;
        }
    }
    // Any value never heavy and not among the partial hours' top: at most `light` in each
    // counted hour, and `edge_floor` in the partial hours.
    let unseen = light * hours + edge_floor;
    let mut candidates: Vec<(String, u64)> = bound.into_iter().collect();
    candidates.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut exact: Vec<(String, u64)> = Vec::new();
    let mut looked = 0;
    while looked < candidates.len() && looked < MAX_LOOKUPS {
        // Done once the k-th best exact total beats every value not summed yet.
        if exact.len() >= k {
            let kth = exact[k - 1].1;
            let next = candidates[looked].1;
            if kth > next && kth > unseen {
                break;
            }
        }
        let batch: Vec<String> =
            candidates[looked..(looked + LOOKUP_BATCH).min(candidates.len())].iter().map(|c| c.0.clone()).collect();
        looked += batch.len();
        let sql = format!(
            "SELECT v, toInt64(sum(n)) AS total FROM {} GROUP BY v FORMAT JSONEachRow",
            counts.values(column, Some(&batch)).as_str()
        );
        exact.extend(
            ch.query_rows::<Top>(&sql, "sum candidate values' counts")?.into_iter().map(|t| (t.v, t.total as u64)),
        );
        exact.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    }
    let settled = exact.len() >= k && {
        let kth = exact[k - 1].1;
        kth > unseen && candidates.get(looked).is_none_or(|next| kth > next.1)
    };
    if settled {
        exact.truncate(k);
        return Ok(exact);
    }
    // The bounds did not settle it (a flat distribution, few hours): every count.
    let mut sql = Sql::new(&format!(
        "SELECT v, toInt64(sum(n)) AS total FROM {} GROUP BY v ORDER BY total DESC, v LIMIT ",
        counts.values(column, None).as_str()
    ));
    sql.int(k as i64).raw(" FORMAT JSONEachRow");
    let top = ch.query_rows::<Top>(sql.as_str(), "count top values from hour counts")?;
    Ok(top.into_iter().map(|t| (t.v, t.total as u64)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heavy_copy_uses_the_heavy_threshold() {
        assert!(heavy_copy_sql!("1").contains(&format!("events >= {HEAVY} AND")));
    }

    #[test]
    fn ranges_split_into_whole_hours_and_edges() {
        let h = HOUR_MS;
        let s = split(Some(10 * h + 5), Some(13 * h + 7)).unwrap();
        assert_eq!((s.from, s.to), (11 * h, 13 * h));
        assert_eq!(s.edges, vec![(10 * h + 5, 11 * h - 1), (13 * h, 13 * h + 7)]);
        let s = split(Some(10 * h), Some(12 * h - 1)).unwrap();
        assert_eq!((s.from, s.to, s.edges.len()), (10 * h, 12 * h, 0));
        assert!(split(Some(10 * h + 1), Some(11 * h + 5)).is_none(), "no whole hour");
        assert_eq!(hour_of(-1), -h);
        let s = split(None, None).unwrap();
        assert!(s.edges.is_empty() && s.from < -h * 1_000_000 && s.to > h * 1_000_000);
    }
}
