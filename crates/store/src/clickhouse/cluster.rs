//! The scale-out store on a ClickHouse cluster: shards for size, replicas for failure.
//!
//! With `?cluster=NAME` in the store's URL (a cluster of the servers' `remote_servers`, its
//! shards declared with `internal_replication`, the servers sharing a ZooKeeper), every
//! table `T` of [`super::MIGRATIONS`] becomes two on every server of the cluster:
//! * `T_local`, the same columns and order as `T` in a `Replicated…MergeTree` of the same
//!   kind, at `/clickhouse/tables/{shard}/DB/T` in ZooKeeper: the replicas of a shard hold
//!   the same rows, fetched from each other;
//! * `T`, a `Distributed` table over the `T_local` of each shard. Every statement of the
//!   store reads and writes `T`, as it does on one server, so the read and write paths are
//!   the same code on one server and on a cluster.
//!
//! **The sharding key** is what makes the single-server design hold: rows that must meet
//! land on one shard. A record's copies (delivered twice: org and member trail, a retried
//! object) have the same `eventID`, so `events`, `event_keys`, `event_index` and
//! `kept_events` shard by a hash of it and `ReplacingMergeTree` collapses the copies on their
//! shard, `FINAL` per shard is `FINAL` overall, and the keys of an event sit beside it.
//! `principals` shard by principal, `hour_counts` by hour (an hour's versions and its
//! marker row stay together), `schema_versions` by version.
//!
//! **The settings of every request** ([`SETTINGS`]):
//! * `insert_distributed_sync=1`: an insert returns once every shard has its rows (on one
//!   replica, which the others fetch from), not when they are queued on the server we talk
//!   to. The writer commits its ledger rows after that, and an SQS message is deleted after
//!   the ledger: no acknowledged event is only in a queue of one server.
//! * `load_balancing=in_order`: reads and writes go to the first live replica of each
//!   shard, so a writer's duplicate check and a search read what was just inserted rather
//!   than a replica that has not fetched it yet. When that replica is down, both go to the
//!   next one.
//! * `distributed_product_mode=global`: a subquery on a `Distributed` table inside a query
//!   on one (`event_id IN (SELECT …)`) runs once, over the whole cluster, and its result is
//!   sent to the shards. Plain `IN` would run it on each shard against that shard's rows
//!   only, which is wrong for tables sharded differently (principals and events).
//!
//! Schema changes and retention's deletes go to the `_local` tables `ON CLUSTER` (executed
//! on every server, for replicated tables once per shard). The system tables a store reads
//! (parts, mutations) are read from every server through `remote()`.

use super::{ClickHouse, Sql};
use crate::StoreError;

/// URL parameters of every request to a cluster (see the module documentation).
pub(crate) const SETTINGS: &str = "insert_distributed_sync=1&load_balancing=in_order&distributed_product_mode=global";

/// The `Distributed` table's sharding key for `table`: rows that must meet on one shard
/// have the same key.
fn sharding_key(table: &str) -> &'static str {
    match table {
        "principals" | "principal_names" => "cityHash64(principal)",
        "hour_counts" => "intHash64(hour)",
        "schema_versions" => "version",
        // events, event_keys, event_index, kept_events: a record's copies meet.
        _ => "cityHash64(event_id)",
    }
}

/// The statements that apply `statement` (one statement of a migration, `{db}` not yet
/// replaced) on `cluster`.
pub(crate) fn statements(statement: &str, cluster: &str) -> Result<Vec<String>, StoreError> {
    const CREATE: &str = "CREATE TABLE IF NOT EXISTS {db}.";
    const ALTER: &str = "ALTER TABLE {db}.";
    let bad = |why: &str| StoreError::clickhouse("apply ClickHouse schema migration on a cluster", why.to_string());
    if let Some(rest) = statement.strip_prefix(CREATE) {
        let (table, rest) =
            rest.split_once(|c: char| c.is_whitespace() || c == '(').ok_or_else(|| bad("no table name"))?;
        let rest = &statement[statement.len() - rest.len() - 1..];
        // The columns hold parentheses of their own (`Nullable(String)`): the engine is
        // the last `ENGINE = ` of the statement.
        let at = rest.rfind("ENGINE = ").ok_or_else(|| bad("no ENGINE"))?;
        let (columns, engine) = (rest[..at].trim(), &rest[at + "ENGINE = ".len()..]);
        if !columns.ends_with(')') {
            return Err(bad("no column list"));
        }
        let name_end = engine.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(engine.len());
        let (engine_name, after) = engine.split_at(name_end);
        if !engine_name.ends_with("MergeTree") {
            return Err(bad("only MergeTree tables are replicated"));
        }
        let replicated = format!("'/clickhouse/tables/{{shard}}/{{db}}/{table}', '{{replica}}'");
        let (args, tail) = match after.strip_prefix('(') {
            Some(after) => {
                let close = after.find(')').ok_or_else(|| bad("unclosed engine arguments"))?;
                let args = after[..close].trim();
                let args = if args.is_empty() { replicated } else { format!("{replicated}, {args}") };
                (args, &after[close + 1..])
            }
            None => (replicated, after),
        };
        return Ok(vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {{db}}.{table}_local ON CLUSTER {cluster} {columns} ENGINE = Replicated{engine_name}({args}){tail}"
            ),
            distributed(table, cluster),
        ]);
    }
    if let Some(rest) = statement.strip_prefix(ALTER) {
        // A column is added to the replicas' tables; the Distributed table over them is
        // made again with their columns (18.16 alters a Distributed table `ON CLUSTER` only
        // when it is replicated, which it is not; it holds no rows, as inserts are sync).
        let (table, change) = rest.split_once(' ').ok_or_else(|| bad("no table name"))?;
        if !change.starts_with("ADD COLUMN ") {
            return Err(bad("only ADD COLUMN changes a table on a cluster"));
        }
        return Ok(vec![
            format!("ALTER TABLE {{db}}.{table}_local ON CLUSTER {cluster} {change}"),
            format!("DROP TABLE IF EXISTS {{db}}.{table} ON CLUSTER {cluster}"),
            distributed(table, cluster),
        ]);
    }
    // INSERT … SELECT: through the Distributed tables, as on one server.
    Ok(vec![statement.to_string()])
}

/// `CREATE TABLE` of the `Distributed` table `table` over the shards' `table_local`.
fn distributed(table: &str, cluster: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {{db}}.{table} ON CLUSTER {cluster} AS {{db}}.{table}_local \
         ENGINE = Distributed({cluster}, {{db}}, {table}_local, {})",
        sharding_key(table)
    )
}

/// What an `ALTER TABLE` of retention names for `table`: `db.table` on one server, the
/// replicas' tables on every shard on a cluster.
pub(crate) fn alter_target(ch: &ClickHouse, table: &str) -> String {
    let db = ch.database();
    match ch.cluster() {
        Some(cluster) => format!("{db}.{table}_local ON CLUSTER {cluster}"),
        None => format!("{db}.{table}"),
    }
}

/// The name `system.parts` gives `table`'s rows on this deployment.
pub(crate) fn stored_table(ch: &ClickHouse, table: &str) -> String {
    match ch.cluster() {
        Some(_) => format!("{table}_local"),
        None => table.to_string(),
    }
}

/// `system.NAME` of every server: the server's own on one server, every server's through
/// `remote()` on a cluster (a server that is down is left out: these are progress and
/// size reports).
pub(crate) fn system_table(ch: &ClickHouse, name: &'static str) -> Result<String, StoreError> {
    let Some(cluster) = ch.cluster() else { return Ok(format!("system.{name}")) };
    #[derive(serde::Deserialize)]
    struct Host {
        address: String,
    }
    let hosts: Vec<Host> = ch.query_rows(
        Sql::new("SELECT concat(host_address, ':', toString(port)) AS address FROM system.clusters WHERE cluster = ")
            .string(cluster)
            .raw(" FORMAT JSONEachRow")
            .as_str(),
        "list the cluster's servers",
    )?;
    if hosts.is_empty() {
        return Err(StoreError::clickhouse(
            "list the cluster's servers",
            format!("the server has no cluster {cluster:?} in its remote_servers"),
        ));
    }
    // Addresses are the server's own configuration, and each is checked to be host:port.
    let ok = |a: &str| a.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'));
    let list: Vec<&str> = hosts.iter().map(|h| h.address.as_str()).filter(|a| ok(a)).collect();
    Ok(format!("remote('{}', system.{name})", list.join(",")))
}

/// The `SETTINGS` a read of [`system_table`] ends with.
pub(crate) fn system_settings(ch: &ClickHouse) -> &'static str {
    if ch.cluster().is_some() {
        " SETTINGS skip_unavailable_shards = 1"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_become_replicated_and_distributed() {
        let s = statements(
            "CREATE TABLE IF NOT EXISTS {db}.events (\n  a Nullable(String),\n  event_id String\n) ENGINE = ReplacingMergeTree(keep)\n PARTITION BY x ORDER BY (a, event_id)",
            "c2",
        )
        .unwrap();
        assert_eq!(
            s,
            [
                "CREATE TABLE IF NOT EXISTS {db}.events_local ON CLUSTER c2 (\n  a Nullable(String),\n  event_id String\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{db}/events', '{replica}', keep)\n PARTITION BY x ORDER BY (a, event_id)",
                "CREATE TABLE IF NOT EXISTS {db}.events ON CLUSTER c2 AS {db}.events_local ENGINE = Distributed(c2, {db}, events_local, cityHash64(event_id))",
            ]
        );
        let s = statements("CREATE TABLE IF NOT EXISTS {db}.kept_events (\n event_id String\n) ENGINE = ReplacingMergeTree\n ORDER BY event_id", "c").unwrap();
        assert!(s[0].contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{db}/kept_events', '{replica}')\n ORDER BY event_id"), "{}", s[0]);
        let s = statements("CREATE TABLE IF NOT EXISTS {db}.hour_counts (hour Int64) ENGINE = ReplacingMergeTree(version) ORDER BY hour", "c").unwrap();
        assert!(s[1].ends_with("Distributed(c, {db}, hour_counts_local, intHash64(hour))"), "{}", s[1]);
    }

    #[test]
    fn columns_are_added_on_both_tables_and_inserts_stay() {
        let s = statements("ALTER TABLE {db}.events ADD COLUMN x Nullable(String) AFTER y", "c").unwrap();
        assert_eq!(
            s,
            [
                "ALTER TABLE {db}.events_local ON CLUSTER c ADD COLUMN x Nullable(String) AFTER y",
                "DROP TABLE IF EXISTS {db}.events ON CLUSTER c",
                "CREATE TABLE IF NOT EXISTS {db}.events ON CLUSTER c AS {db}.events_local ENGINE = Distributed(c, {db}, events_local, cityHash64(event_id))",
            ]
        );
        let insert = "INSERT INTO {db}.event_keys SELECT 1 FROM {db}.events";
        assert_eq!(statements(insert, "c").unwrap(), [insert]);
        assert!(statements("ALTER TABLE {db}.events DROP COLUMN x", "c").is_err());
        assert!(statements("CREATE TABLE IF NOT EXISTS {db}.l (x Int8) ENGINE = Log", "c").is_err());
    }
}
