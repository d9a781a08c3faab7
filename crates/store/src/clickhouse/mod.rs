//! Events in ClickHouse (the scale-out event store).
//!
//! Layout, and why (ClickHouse 18.16 and later: no DateTime64, no TTL, no query parameters,
//! no LowCardinality by default, so only plain types and the MergeTree family):
//! * `events` — one row per record: the columns searches filter and count on, the principal,
//!   and the verbatim JSON. `ReplacingMergeTree(keep)` ordered by
//!   `(event_day, event_time, event_id)` and partitioned by month: every dashboard query has a
//!   time range (the first key columns prune by it), a record delivered twice has the same
//!   key and collapses to one row when parts merge, and a month is the unit retention drops.
//!   `keep` is `u64::MAX - arrival`, so the collapse keeps the first arrival, as SQLite does.
//!   Until parts merge a duplicate is physically present: reads of ranges use `FINAL`, which
//!   collapses at read time, or group by event, so answers are exact whatever the merge state.
//! * `event_index` — `event_id → event_time`, ordered by `event_id` with small granules: the
//!   lookup by id, and how a writer tells an already stored record from a new one.
//! * `event_keys` — a search's way in: one row per (dimension, value) an event can be
//!   searched by (event name and source, source IP, account, region, error code, principal,
//!   `failed`, and `resource`: the index key of each resource its record names, see
//!   [`model::resources::index_keys`]), ordered by `(dimension, value, event_time, event_id)`, partitioned as
//!   `events`. A search with exact values reads only its values' rows in a time window,
//!   newest windows first, groups them by event (a duplicate not merged yet counts once, by
//!   its first arrival) and then reads the page's rows from `events` by primary key. No
//!   `FINAL` over a range. Searches with a wildcard use `events` itself, in the same windows.
//! * `hour_counts` — per UTC hour, totals and events per value of each dimension, recounted
//!   whole from `events FINAL` when PostgreSQL's `hour_marks` say an hour changed: what the
//!   overview reads (see [`rollup`]).
//! * `principals` — the principal's kind, name, issuer and the human behind it, once per
//!   principal (`ReplacingMergeTree`, first arrival kept), for the principal filter and page.
//! * `principal_names` — `(name, principal)` for each name a principal goes by, ordered by
//!   name: the principal filter finds an exact name's principals without reading them all.
//! * `schema_versions` — which of [`MIGRATIONS`] are applied. Migrations are idempotent
//!   (`IF NOT EXISTS`) and the scale-out store runs them under a PostgreSQL advisory lock, so
//!   workers starting together apply each once.
//!
//! On a cluster each of these is a replicated table on every server and a `Distributed`
//! table of the same name over them, sharded so that rows which must meet do ([`cluster`]).

pub(crate) mod cluster;
mod http;
mod read;
pub(crate) mod retention;
pub(crate) mod rollup;

pub use http::{ClickHouse, ClickHouseConfig, ExternalTable, RowBinary, SearchWindows, Sql};
pub(crate) use read::{
    event_by_id, for_each_event, principal_count, principals_related, resource_events, stats, summarize,
};

use model::{EpochMillis, ParsedEvent};
use serde::Serialize;

use crate::StoreError;

/// ClickHouse schema migrations; `{db}` is replaced by the database name (checked to be an
/// identifier). Existing entries are never edited, but for one setting only new stores
/// take: `events`' granules of 1,024 rows (8,192 before, see `docs/scale.md`).
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: events, the id index and principals.
    r#"
    CREATE TABLE IF NOT EXISTS {db}.events (
        event_day    Date,
        event_time   Int64,
        event_id     String,
        arrival      Int64,
        keep         UInt64,
        event_source Nullable(String),
        event_name   Nullable(String),
        account      Nullable(String),
        region       Nullable(String),
        source_ip    Nullable(String),
        error_code   Nullable(String),
        user_agent   Nullable(String),
        principal    String,
        raw          String
    ) ENGINE = ReplacingMergeTree(keep)
    PARTITION BY toYYYYMM(event_day)
    ORDER BY (event_day, event_time, event_id)
    SETTINGS index_granularity = 1024;
    CREATE TABLE IF NOT EXISTS {db}.event_index (
        event_id   String,
        event_time Int64,
        keep       UInt64
    ) ENGINE = ReplacingMergeTree(keep)
    ORDER BY event_id
    SETTINGS index_granularity = 256;
    CREATE TABLE IF NOT EXISTS {db}.principals (
        principal  String,
        kind       String,
        account_id Nullable(String),
        name       Nullable(String),
        issuer     Nullable(String),
        human      Nullable(String),
        federation Nullable(String),
        keep       UInt64
    ) ENGINE = ReplacingMergeTree(keep)
    ORDER BY principal
    "#,
    // 2: retention: the category (data events may be kept shorter) and the ids of events
    // alerts refer to, which retention keeps.
    r#"
    ALTER TABLE {db}.events ADD COLUMN event_category Nullable(String) AFTER user_agent;
    CREATE TABLE IF NOT EXISTS {db}.kept_events (
        event_id String
    ) ENGINE = ReplacingMergeTree
    ORDER BY event_id
    "#,
    // 3: search keys, one row per (searchable dimension, value) of an event, ordered by
    // value then time: a search reads the rows of its values in its time window only. The
    // rows already stored get theirs here (re-running collapses onto the same keys).
    r#"
    CREATE TABLE IF NOT EXISTS {db}.event_keys (
        dimension  String,
        value      String,
        event_day  Date,
        event_time Int64,
        event_id   String,
        keep       UInt64
    ) ENGINE = ReplacingMergeTree(keep)
    PARTITION BY toYYYYMM(event_day)
    ORDER BY (dimension, value, event_time, event_id);
    INSERT INTO {db}.event_keys
        SELECT dimension, assumeNotNull(value_or_null) AS value, event_day, event_time, event_id, keep
        FROM {db}.events
        ARRAY JOIN
            ['event_name', 'event_source', 'source_ip', 'account', 'region', 'error_code', 'principal', 'failed'] AS dimension,
            [event_name, event_source, source_ip, account, region, error_code, principal,
             if(error_code IS NULL, NULL, '')] AS value_or_null
        WHERE value_or_null IS NOT NULL
    "#,
    // 4: hour counts for the overview (see `rollup`), the stored events' counted here.
    concat!(
        "
    CREATE TABLE IF NOT EXISTS {db}.hour_counts (
        dimension String,
        hour      Int64,
        value     String,
        events    UInt64,
        errors    UInt64,
        denied    UInt64,
        first     Int64,
        last      Int64,
        version   Int64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (dimension, hour, value);
    INSERT INTO {db}.hour_counts ",
        rollup::count_hours_sql!("1", "toInt64(0)"),
        ";
    INSERT INTO {db}.hour_counts
        SELECT '', hour, '#', 0, 0, 0, 9223372036854775807, -9223372036854775807, 0
        FROM (SELECT DISTINCT (intDiv(event_time, 3600000) - (event_time % 3600000 < 0)) * 3600000 AS hour
              FROM {db}.events)"
    ),
    // 5: resource keys (`event_keys` rows of dimension `resource`) for resource history,
    // written by ingest from now on; the stored records' are read from their verbatim JSON
    // by `index_resources` (`RUST_STEPS`), run after this (empty) step.
    "",
    // 6: heavy hour counts (`rollup::HEAVY`: at least 32 events), copied under `'^'` + the
    // dimension, for the overview's top values; recounts write them from now on.
    concat!("INSERT INTO {db}.hour_counts ", rollup::heavy_copy_sql!("1")),
    // 7: the principal filter's way in: each name a principal goes by (itself, its issuer,
    // its name, the human behind it), ordered by name. Filled for the principals stored.
    r#"
    CREATE TABLE IF NOT EXISTS {db}.principal_names (
        name      String,
        principal String
    ) ENGINE = ReplacingMergeTree
    ORDER BY (name, principal);
    INSERT INTO {db}.principal_names
        SELECT assumeNotNull(n), principal FROM {db}.principals
        ARRAY JOIN [toNullable(principal), issuer, name, human] AS n
        WHERE n IS NOT NULL
    "#,
];

/// Migrations done in Rust, each run after the statements of the version it names (SQL
/// cannot derive what they write).
const RUST_STEPS: &[(usize, RustStep)] = &[(5, read::index_resources)];

type RustStep = fn(&ClickHouse) -> Result<(), StoreError>;

/// Creates the database and brings its schema up to date. Callers serialise concurrent
/// calls (the scale-out store holds a PostgreSQL advisory lock around it).
pub(crate) fn migrate(ch: &ClickHouse) -> Result<(), StoreError> {
    let db = ch.database();
    let on_cluster = ch.cluster().map(|c| format!(" ON CLUSTER {c}")).unwrap_or_default();
    ch.execute(&format!("CREATE DATABASE IF NOT EXISTS {db}{on_cluster}"), "create ClickHouse database")?;
    for statement in statements_for(
        ch,
        "CREATE TABLE IF NOT EXISTS {db}.schema_versions (version UInt32, applied_at UInt64)
             ENGINE = ReplacingMergeTree ORDER BY version",
    )? {
        ch.execute(&statement.replace("{db}", db), "create ClickHouse schema version table")?;
    }
    #[derive(serde::Deserialize)]
    struct V {
        v: u32,
    }
    let current: Vec<V> = ch.query_rows(
        &format!("SELECT max(version) AS v FROM {db}.schema_versions FORMAT JSONEachRow"),
        "read ClickHouse schema version",
    )?;
    let current = current.first().map_or(0, |v| v.v) as usize;
    if current > MIGRATIONS.len() {
        return Err(StoreError::SchemaTooNew { found: current as i64, supported: MIGRATIONS.len() as i64 });
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        for statement in migration.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            for statement in statements_for(ch, statement)? {
                // 18.16 has no ADD COLUMN IF NOT EXISTS: a migration interrupted after this
                // statement must not fail on its second run.
                if let Some(column) = added_column(&statement) {
                    if column_exists(ch, db, column.0, column.1)? {
                        continue;
                    }
                }
                ch.execute(&statement.replace("{db}", db), "apply ClickHouse schema migration")?;
            }
        }
        for (_, step) in RUST_STEPS.iter().filter(|(version, _)| *version == i + 1) {
            step(ch)?;
        }
        let row = format!("{{\"version\":{},\"applied_at\":{}}}\n", i + 1, model::timefmt::now_millis());
        ch.insert_json_rows("schema_versions", row.as_bytes(), "record ClickHouse schema version")?;
    }
    Ok(())
}

/// The statements applying `statement` on this deployment: itself on one server, the
/// replicated and distributed tables' on a cluster.
fn statements_for(ch: &ClickHouse, statement: &str) -> Result<Vec<String>, StoreError> {
    match ch.cluster() {
        Some(c) => cluster::statements(statement, c),
        None => Ok(vec![statement.to_string()]),
    }
}

/// `(table, column)` of an `ALTER TABLE {db}.T [ON CLUSTER C] ADD COLUMN C …` statement.
fn added_column(statement: &str) -> Option<(&str, &str)> {
    let rest = statement.strip_prefix("ALTER TABLE {db}.")?;
    let (table, mut rest) = rest.split_once(' ')?;
    if let Some(after) = rest.strip_prefix("ON CLUSTER ") {
        rest = after.split_once(' ')?.1;
    }
    let column = rest.strip_prefix("ADD COLUMN ")?.split_whitespace().next()?;
    Some((table, column))
}

fn column_exists(ch: &ClickHouse, db: &str, table: &str, column: &str) -> Result<bool, StoreError> {
    #[derive(serde::Deserialize)]
    struct N {
        #[serde(with = "http::int64")]
        n: i64,
    }
    let rows: Vec<N> = ch.query_rows(
        Sql::new("SELECT count() AS n FROM system.columns WHERE database = ")
            .string(db)
            .raw(" AND table = ")
            .string(table)
            .raw(" AND name = ")
            .string(column)
            .raw(" FORMAT JSONEachRow")
            .as_str(),
        "read ClickHouse columns",
    )?;
    Ok(rows.first().is_some_and(|r| r.n > 0))
}

/// `YYYY-MM-DD` of the UTC day holding `ms`, clamped to what a `Date` column holds
/// (1970-01-01 … 2105-12-31): event times outside are filed under the nearest day, and the
/// time column stays exact.
pub(crate) fn day_of(ms: EpochMillis) -> String {
    let (y, m, d, ..) = model::timefmt::civil(ms.clamp(0, LAST_DAY_MS)).unwrap_or((1970, 1, 1, 0, 0, 0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// 2105-12-31, the last day a `Date` holds.
const LAST_DAY_MS: EpochMillis = 49_672 * 86_400_000;

/// [`day_of`] as a `Date` holds it: days since 1970-01-01.
pub(crate) fn day_number(ms: EpochMillis) -> u16 {
    ms.clamp(0, LAST_DAY_MS).div_euclid(86_400_000) as u16
}

/// The `event_keys` dimension of failed calls (value `''`): the `errors` filter.
pub(crate) const FAILED: &str = "failed";

/// The `event_keys` dimension of the resources a record names: one row per index key
/// ([`model::resources::index_keys`]), for resource history.
pub(crate) const RESOURCE: &str = "resource";

/// The (dimension, value) search keys of `event`: what migration 3 derives from `events`.
pub(crate) fn search_keys(event: &ParsedEvent) -> impl Iterator<Item = (&'static str, &str)> {
    [
        ("event_name", event.event_name.as_deref()),
        ("event_source", event.event_source.as_deref()),
        ("source_ip", event.source_ip.as_deref()),
        ("account", event.recipient_account_id.as_deref()),
        ("region", event.aws_region.as_deref()),
        ("error_code", event.error_code.as_deref()),
        ("principal", Some(event.actor.principal.as_str())),
        (FAILED, event.error_code.as_ref().map(|_| "")),
    ]
    .into_iter()
    .filter_map(|(d, v)| Some((d, v?)))
}

#[derive(Serialize)]
struct PrincipalOut<'a> {
    principal: &'a str,
    kind: &'a str,
    account_id: Option<&'a str>,
    name: Option<&'a str>,
    issuer: Option<&'a str>,
    human: Option<&'a str>,
    federation: Option<&'a str>,
    keep: u64,
}

/// The columns [`PendingRows::push`] writes, in its order (RowBinary has no names).
const EVENT_COLUMNS: &str = "event_day, event_time, event_id, arrival, keep, event_source, event_name, account, \
     region, source_ip, error_code, user_agent, event_category, principal, raw";
const KEY_COLUMNS: &str = "dimension, value, event_day, event_time, event_id, keep";
const INDEX_COLUMNS: &str = "event_id, event_time, keep";

/// Rows waiting to be inserted: inserts are batched (ClickHouse wants few, large inserts),
/// as RowBinary (ClickHouse parsed the JSON of a group's rows several times slower).
#[derive(Default)]
pub(crate) struct PendingRows {
    events: RowBinary,
    keys: RowBinary,
    index: RowBinary,
    principals: Vec<u8>,
    principal_names: Vec<u8>,
    pub(crate) count: u64,
}

impl PendingRows {
    /// Appends `event` (with its verbatim record `raw`) as arrival number `arrival`.
    pub(crate) fn push(&mut self, event: &ParsedEvent, raw: &str, arrival: i64) {
        let keep = u64::MAX - arrival as u64;
        let day = day_number(event.event_time);
        let resources = model::resources::index_keys(&event.resources);
        let keys = search_keys(event).chain(resources.into_iter().map(|key| (RESOURCE, key)));
        for (dimension, value) in keys {
            self.push_key(dimension, value, day, event.event_time, &event.event_id, keep);
        }
        // EVENT_COLUMNS, in order.
        let e = &mut self.events;
        e.date(day);
        e.int64(event.event_time);
        e.string(&event.event_id);
        e.int64(arrival);
        e.uint64(keep);
        e.nullable_string(event.event_source.as_deref());
        e.nullable_string(event.event_name.as_deref());
        e.nullable_string(event.recipient_account_id.as_deref());
        e.nullable_string(event.aws_region.as_deref());
        e.nullable_string(event.source_ip.as_deref());
        e.nullable_string(event.error_code.as_deref());
        e.nullable_string(event.user_agent.as_deref());
        e.nullable_string(event.event_category.as_deref());
        e.string(&event.actor.principal);
        e.string(raw);
        // INDEX_COLUMNS, in order.
        self.index.string(&event.event_id);
        self.index.int64(event.event_time);
        self.index.uint64(keep);
        self.count += 1;
    }

    /// Appends one `event_keys` row.
    pub(crate) fn push_key(&mut self, dimension: &str, value: &str, day: u16, time: i64, event_id: &str, keep: u64) {
        // KEY_COLUMNS, in order.
        let k = &mut self.keys;
        k.string(dimension);
        k.string(value);
        k.date(day);
        k.int64(time);
        k.string(event_id);
        k.uint64(keep);
    }

    /// Appends a principal seen for the first time by this writer.
    pub(crate) fn push_principal(&mut self, event: &ParsedEvent, arrival: i64) {
        let a = &event.actor;
        let row = PrincipalOut {
            principal: &a.principal,
            kind: a.kind.as_str(),
            account_id: a.account_id.as_deref(),
            name: a.name.as_deref(),
            issuer: a.issuer.as_deref(),
            human: a.human.as_deref(),
            federation: a.federation.map(|f| f.as_str()),
            keep: u64::MAX - arrival as u64,
        };
        serde_json::to_writer(&mut self.principals, &row).expect("rows serialize");
        self.principals.push(b'\n');
        let names = [Some(a.principal.as_str()), a.issuer.as_deref(), a.name.as_deref(), a.human.as_deref()];
        for name in names.into_iter().flatten() {
            serde_json::to_writer(
                &mut self.principal_names,
                &serde_json::json!({"name": name, "principal": &a.principal}),
            )
            .expect("rows serialize");
            self.principal_names.push(b'\n');
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty() && self.principals.is_empty()
    }

    /// Inserts everything pending: principals, then events, their search keys, then their
    /// ids. An id in
    /// `event_index` is what makes a writer count a record as already stored, so it goes in
    /// only after its event: had the events' insert failed after their ids went in, the
    /// object, delivered again, would have been counted as duplicates and its events lost.
    /// An event is searchable a moment before its id is (found by search, not yet by id).
    /// Re-running after a failure inserts the same rows again, which the tables' keys
    /// collapse. The buffers keep their memory for the next group.
    pub(crate) fn flush(&mut self, ch: &ClickHouse) -> Result<(), StoreError> {
        if !self.principals.is_empty() {
            ch.insert_json_rows("principals", &self.principals, "insert principals into ClickHouse")?;
            ch.insert_json_rows("principal_names", &self.principal_names, "insert principals' names into ClickHouse")?;
        }
        if !self.events.is_empty() {
            ch.insert_row_binary("events", EVENT_COLUMNS, &self.events, "insert events into ClickHouse")?;
        }
        if !self.keys.is_empty() {
            ch.insert_row_binary("event_keys", KEY_COLUMNS, &self.keys, "insert search keys into ClickHouse")?;
        }
        if !self.index.is_empty() {
            ch.insert_row_binary("event_index", INDEX_COLUMNS, &self.index, "insert event ids into ClickHouse")?;
        }
        self.clear();
        Ok(())
    }

    /// Forgets every pending row, keeping the buffers' memory.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.keys.clear();
        self.index.clear();
        self.principals.clear();
        self.principal_names.clear();
        self.count = 0;
    }

    /// Forgets the rows (the object they belong to was undone before they were sent).
    pub(crate) fn truncate_to(&mut self, mark: &PendingMark) {
        self.events.truncate(mark.events);
        self.keys.truncate(mark.keys);
        self.index.truncate(mark.index);
        self.principals.truncate(mark.principals);
        self.principal_names.truncate(mark.principal_names);
        self.count = mark.count;
    }

    pub(crate) fn mark(&self) -> PendingMark {
        PendingMark {
            events: self.events.len(),
            keys: self.keys.len(),
            index: self.index.len(),
            principals: self.principals.len(),
            principal_names: self.principal_names.len(),
            count: self.count,
        }
    }
}

/// Where an object's rows begin in [`PendingRows`], to undo them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PendingMark {
    events: usize,
    keys: usize,
    index: usize,
    principals: usize,
    principal_names: usize,
    count: u64,
}

/// Which of `ids` are already stored (in `event_index`): one query, whatever their number.
pub(crate) fn stored_ids(ch: &ClickHouse, ids: &[&str]) -> Result<rustc_hash::FxHashSet<String>, StoreError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let set = ExternalTable::ids(ids.iter().copied());
    #[derive(serde::Deserialize)]
    struct Id {
        event_id: String,
    }
    let sql = format!(
        "SELECT DISTINCT event_id FROM {}.event_index WHERE event_id IN {} FORMAT JSONEachRow",
        ch.database(),
        set.name()
    );
    Ok(ch.query_rows_with::<Id>(&sql, &set, "look up stored event ids")?.into_iter().map(|r| r.event_id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_and_clamped() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(1_705_315_523_000), "2024-01-15");
        assert_eq!(day_of(-5), "1970-01-01");
        assert_eq!(day_of(i64::MAX / 4), "2105-12-31");
        assert_eq!(LAST_DAY_MS, model::timefmt::from_civil(2105, 12, 31, 0, 0, 0).unwrap());
        assert_eq!(day_number(1_705_315_523_000), 19_737);
        assert_eq!((day_number(-5), day_number(i64::MAX / 4)), (0, 49_672));
    }
}
