//! Fresh stores for tests of this and other crates: the embedded SQLite store always, and a
//! scale-out store (its own ClickHouse database and PostgreSQL database) when the test
//! script has started the servers and said where (`TRAILWATCH_TEST_CLICKHOUSE_URL`,
//! `TRAILWATCH_TEST_POSTGRES_URL`: an administrative URL, whose user may create databases).
//! With `TRAILWATCH_TEST_SCALEOUT=require` (the test script sets it) a missing server fails
//! the test instead of leaving the scale-out backend untested.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{ScaleOutStore, SqliteStore, Store};

static FRESH: AtomicU64 = AtomicU64::new(0);

/// Every backend this machine can test, each a fresh, empty store.
pub fn backends() -> Vec<(&'static str, Store)> {
    let mut all: Vec<(&'static str, Store)> =
        vec![("sqlite", SqliteStore::open_in_memory().expect("in-memory SQLite opens").into())];
    if let Some(s) = scaleout() {
        all.push(("clickhouse+postgres", s.into()));
    }
    all
}

/// A fresh scale-out store, or `None` when no servers are configured (see the module
/// documentation).
pub fn scaleout() -> Option<ScaleOutStore> {
    let urls = scaleout_urls()?;
    let name = fresh_name();
    Some(open_named(&urls, &name))
}

/// The servers' URLs, if configured.
pub fn scaleout_urls() -> Option<(String, String)> {
    let ch = std::env::var("TRAILWATCH_TEST_CLICKHOUSE_URL").ok().filter(|s| !s.is_empty());
    let pg = std::env::var("TRAILWATCH_TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty());
    match (ch, pg) {
        (Some(ch), Some(pg)) => Some((ch, pg)),
        _ => {
            assert!(
                std::env::var("TRAILWATCH_TEST_SCALEOUT").as_deref() != Ok("require"),
                "TRAILWATCH_TEST_SCALEOUT=require but TRAILWATCH_TEST_CLICKHOUSE_URL / TRAILWATCH_TEST_POSTGRES_URL are not set"
            );
            None
        }
    }
}

/// A name no other test of any process uses.
pub fn fresh_name() -> String {
    let n = FRESH.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("tw_test_{}_{}_{:x}", std::process::id(), n, nanos)
}

/// Creates PostgreSQL database `name` and returns the (ClickHouse, PostgreSQL) URLs of a
/// store called `name` on the configured servers.
pub fn create_databases(urls: &(String, String), name: &str) -> (String, String) {
    let (ch, pg) = urls;
    crate::postgres::off_runtime(|| {
        let mut admin = ::postgres::Client::connect(pg, ::postgres::NoTls).expect("connect to the test PostgreSQL");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create a test database");
    });
    let config: postgres::Config = pg.parse().expect("a valid PostgreSQL URL");
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    // On a cluster (scripts/services.sh's `start_cluster`) every store is made on all of it.
    let cluster = match std::env::var("TRAILWATCH_TEST_CLICKHOUSE_CLUSTER") {
        Ok(c) if !c.is_empty() => format!("?cluster={c}"),
        _ => String::new(),
    };
    (format!("{}/{name}{cluster}", ch.trim_end_matches('/')), format!("postgres://{user}@{host}:{port}/{name}"))
}

fn open_named(urls: &(String, String), name: &str) -> ScaleOutStore {
    let (ch, pg) = create_databases(urls, name);
    let mut config = crate::clickhouse::ClickHouseConfig::from_url(&ch).expect("a valid ClickHouse URL");
    // Test data spans minutes: windows of minutes, and never one query for the whole
    // range, so searches go through the window walk a large store takes. The first window
    // ends exactly on a whole minute, where test events sit. Reads of every match go
    // through windows of ~7 events. A principal filter naming more than two principals
    // takes the subquery a broad wildcard takes. Summaries' partial hours list few values,
    // so top values bound the rest.
    config.search_windows = crate::clickhouse::SearchWindows {
        first_ms: 5 * 60_000 + 1,
        one_query_rows: 0,
        stream_rows: 7,
        listed_principals: 2,
        edge_values: 3,
    };
    ScaleOutStore::open_with(config, &pg).expect("open a scale-out test store")
}
