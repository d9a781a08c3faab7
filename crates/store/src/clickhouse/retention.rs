//! Retention on ClickHouse: whole months go by `DROP PARTITION` (18.16 has no TTL), what a
//! partition drop cannot do by a `DELETE` mutation.
//!
//! `events` is partitioned by month. A month whose every day is past the policy's earliest
//! cutoff (every category expired) and holds no event an alert refers to is dropped — a
//! metadata operation, instant whatever its size. Everything finer (a category kept shorter,
//! the part of a month before the cutoff, the old events of a month an alert keeps) is an
//! `ALTER TABLE … DELETE` mutation, issued only when a count says it has rows to remove. The
//! ids of events alerts refer to are copied from PostgreSQL into `kept_events` first, and
//! every delete excludes them. Mutations run in the background; this waits for them, so a
//! report means the rows are gone.

use std::time::{Duration, Instant};

use super::http::{ClickHouse, Sql};
use super::{cluster, day_of};
use crate::retention::{RetentionPolicy, RetentionReport};
use crate::StoreError;

/// How long to wait for the mutations a pass issued.
const MUTATION_WAIT: Duration = Duration::from_secs(300);

#[derive(serde::Deserialize)]
struct Count {
    #[serde(with = "super::http::int64")]
    n: i64,
}

fn count(ch: &ClickHouse, sql: &Sql, context: &'static str) -> Result<i64, StoreError> {
    let rows: Vec<Count> = ch.query_rows(&format!("{} FORMAT JSONEachRow", sql.as_str()), context)?;
    Ok(rows.first().map_or(0, |c| c.n))
}

/// The expired-row condition of `policy` over `events`' columns (records without a category
/// are management events), or `None` when nothing can expire.
fn expired_condition(policy: &RetentionPolicy, now: i64) -> Option<Sql> {
    const CATEGORY: &str = "ifNull(event_category, 'Management')";
    let mut terms = Vec::new();
    for name in policy.categories.keys() {
        let cut = policy.cutoff(Some(name), now).expect("a category with days");
        let mut t = Sql::new(&format!("({CATEGORY} = "));
        t.string(name).raw(" AND event_time < ").int(cut).raw(")");
        terms.push(t);
    }
    if let Some(cut) = policy.default_cutoff(now) {
        let mut t = Sql::new("(");
        if !policy.categories.is_empty() {
            t.raw(&format!("{CATEGORY} NOT IN ")).strings(policy.categories.keys().map(String::as_str));
            t.raw(" AND ");
        }
        t.raw("event_time < ").int(cut).raw(")");
        terms.push(t);
    }
    if terms.is_empty() {
        return None;
    }
    let joined: Vec<&str> = terms.iter().map(Sql::as_str).collect();
    Some(Sql::new(&format!("({})", joined.join(" OR "))))
}

/// Copies the ids of events alerts refer to into `kept_events` (idempotent).
pub(crate) fn keep_ids(ch: &ClickHouse, ids: &[String]) -> Result<(), StoreError> {
    #[derive(serde::Serialize)]
    struct Kept<'a> {
        event_id: &'a str,
    }
    for chunk in ids.chunks(50_000) {
        let mut body = Vec::new();
        for id in chunk {
            serde_json::to_writer(&mut body, &Kept { event_id: id }).expect("rows serialize");
            body.push(b'\n');
        }
        ch.insert_json_rows("kept_events", &body, "record events alerts keep")?;
    }
    Ok(())
}

/// Deletes what `policy` expires; returns the report and the UTC hours events were deleted
/// from (whose hour counts are now out of date).
pub(crate) fn apply(
    ch: &ClickHouse,
    policy: &RetentionPolicy,
    now: i64,
) -> Result<(RetentionReport, Vec<i64>), StoreError> {
    let mut report = RetentionReport::default();
    let db = ch.database().to_string();
    let kept = format!("(SELECT event_id FROM {db}.kept_events)");
    // Every event the passes below delete is expired and not kept: their hours, first.
    let hours = match expired_condition(policy, now) {
        Some(condition) => {
            #[derive(serde::Deserialize)]
            struct Hour {
                #[serde(with = "super::http::int64")]
                hour: i64,
            }
            let sql = format!(
                "SELECT DISTINCT {} AS hour FROM {db}.events WHERE {} AND event_id NOT IN {kept}
                 ORDER BY hour FORMAT JSONEachRow",
                super::read::floor_to("event_time", super::rollup::HOUR_MS),
                condition.as_str()
            );
            ch.query_rows::<Hour>(&sql, "find hours with expired events")?.into_iter().map(|h| h.hour).collect()
        }
        None => Vec::new(),
    };
    if let Some(earliest) = policy.earliest_cutoff(now) {
        #[derive(serde::Deserialize)]
        struct Partition {
            partition: String,
            last: String,
        }
        let parts: Vec<Partition> = ch.query_rows(
            Sql::new(&format!(
                "SELECT partition, toString(max(max_date)) AS last FROM {} WHERE active AND database = ",
                cluster::system_table(ch, "parts")?
            ))
            .string(&db)
            .raw(" AND table = ")
            .string(&cluster::stored_table(ch, "events"))
            .raw(" GROUP BY partition ORDER BY partition")
            .raw(cluster::system_settings(ch))
            .raw(" FORMAT JSONEachRow")
            .as_str(),
            "list event partitions",
        )?;
        // A day is wholly expired when the next day starts at or before the cutoff.
        let expired_day = day_of(earliest - 86_400_000);
        for p in parts.into_iter().filter(|p| p.last <= expired_day) {
            // toYYYYMM partitions are six digits; anything else is not ours to splice.
            let Ok(month) = p.partition.parse::<u32>() else { continue };
            let in_month = format!("{db}.events WHERE toYYYYMM(event_day) = {month}");
            let referenced = count(
                ch,
                &Sql::new(&format!("SELECT count() AS n FROM {in_month} AND event_id IN {kept}")),
                "count kept events",
            )?;
            if referenced == 0 {
                report.events_deleted += count(
                    ch,
                    &Sql::new(&format!(
                        "SELECT count() AS n FROM {db}.events FINAL WHERE toYYYYMM(event_day) = {month}"
                    )),
                    "count partition",
                )? as u64;
                let (events, keys) = (cluster::alter_target(ch, "events"), cluster::alter_target(ch, "event_keys"));
                ch.execute(&format!("ALTER TABLE {events} DROP PARTITION {month}"), "drop expired partition")?;
                // The month's search keys go with it (the same partitioning).
                ch.execute(&format!("ALTER TABLE {keys} DROP PARTITION {month}"), "drop expired search keys")?;
                report.units_dropped += 1;
            }
        }
    }
    if let Some(condition) = expired_condition(policy, now) {
        let cond = format!("{} AND event_id NOT IN {kept}", condition.as_str());
        let n = count(
            ch,
            &Sql::new(&format!("SELECT count() AS n FROM {db}.events FINAL WHERE {cond}")),
            "count expired events",
        )?;
        report.events_kept_for_alerts = count(
            ch,
            &Sql::new(&format!(
                "SELECT count() AS n FROM {db}.events FINAL WHERE {} AND event_id IN {kept}",
                condition.as_str()
            )),
            "count kept events",
        )? as u64;
        if n > 0 {
            let events = cluster::alter_target(ch, "events");
            ch.execute(&format!("ALTER TABLE {events} DELETE WHERE {cond}"), "delete expired events")?;
            report.events_deleted += n as u64;
            report.units_rewritten += 1;
        }
    }
    if let Some(latest) = policy.latest_cutoff(now) {
        // The events' DELETE is a mutation ClickHouse applies in the background: until it
        // is done the deleted events still look stored, their rows below would not count as
        // stale, and their search keys would outlive them (a search page then came back
        // short, its keys naming no row: seen one run in six).
        wait_for_mutations(ch, &db)?;
        // Id index and search key rows of events that are gone (they have no category:
        // compare with the old events that stayed).
        for table in ["event_index", "event_keys"] {
            let cond = format!(
                "event_time < {latest} AND event_id NOT IN (SELECT event_id FROM {db}.events WHERE event_time < {latest})"
            );
            let stale = Sql::new(&format!("SELECT count() AS n FROM {db}.{table} WHERE {cond}"));
            if count(ch, &stale, "count rows of deleted events")? > 0 {
                let target = cluster::alter_target(ch, table);
                ch.execute(&format!("ALTER TABLE {target} DELETE WHERE {cond}"), "delete rows of deleted events")?;
            }
        }
    }
    wait_for_mutations(ch, &db)?;
    Ok((report, hours))
}

fn wait_for_mutations(ch: &ClickHouse, db: &str) -> Result<(), StoreError> {
    let started = Instant::now();
    let pending = Sql::new(&format!(
        "SELECT count() AS n FROM {} WHERE is_done = 0 AND database = ",
        cluster::system_table(ch, "mutations")?
    ))
    .string(db)
    .raw(cluster::system_settings(ch))
    .clone();
    while count(ch, &pending, "read mutation progress")? > 0 {
        if started.elapsed() > MUTATION_WAIT {
            tracing::warn!(database = db, "retention deletes are still running in ClickHouse; continuing");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// (table, bytes on disk) of the database's tables, largest first.
pub(crate) fn table_bytes(ch: &ClickHouse) -> Result<Vec<(String, u64)>, StoreError> {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(rename = "table_name")]
        table: String,
        #[serde(with = "super::http::int64")]
        bytes: i64,
    }
    let rows: Vec<T> = ch.query_rows(
        Sql::new(&format!(
            "SELECT replaceRegexpOne(table, '_local$', '') AS table_name, sum(bytes_on_disk) AS bytes FROM {} \
             WHERE active AND database = ",
            cluster::system_table(ch, "parts")?
        ))
        .string(ch.database())
        .raw(" GROUP BY table_name ORDER BY bytes DESC")
        .raw(cluster::system_settings(ch))
        .raw(" FORMAT JSONEachRow")
        .as_str(),
        "read table sizes",
    )?;
    Ok(rows.into_iter().map(|t| (t.table, t.bytes as u64)).collect())
}
