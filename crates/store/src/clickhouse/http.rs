//! The ClickHouse HTTP interface: queries in the request body, rows as JSONEachRow.
//!
//! ClickHouse 18.16 (the only server Debian ships) has no query parameters, so values are
//! never spelled into SQL as text: [`Sql::string`] writes a string as `unhex('…')` of its
//! bytes and numbers are formatted from Rust integers. Nothing a record contains can change
//! the shape of a query.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use crate::StoreError;

/// Where the server is and who we are to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// `http://host:8123` (the HTTP interface).
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// How searches look for a page (see `read::page_keys`); tests make the windows small.
    pub search_windows: SearchWindows,
    /// A cluster of the servers' `remote_servers` (`?cluster=NAME` in the URL): the tables
    /// are created on every server of it, replicated within a shard and read and written
    /// through `Distributed` tables (see [`super::cluster`]). `None`: one server.
    pub cluster: Option<String>,
}

/// A search looks for its page in time windows, newest first: the first `first_ms` long,
/// each next one 8 times longer. When the whole range holds at most `one_query_rows`
/// candidate rows, it is read in one query instead. Reads of every match (no page) go
/// through windows holding about `stream_rows` events each. A principal filter naming at
/// most `listed_principals` principals sends them as a list, more as a subquery. A summary's
/// top values take the `edge_values` most frequent of its partial hours as candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchWindows {
    pub first_ms: i64,
    pub one_query_rows: i64,
    pub stream_rows: i64,
    pub listed_principals: usize,
    pub edge_values: usize,
}

impl Default for SearchWindows {
    fn default() -> SearchWindows {
        // An hour of a busy trail's most frequent value is tens of thousands of rows; below
        // 200,000 candidates one query costs less than the round trips windows add.
        // The server sorts a streamed window's rows, records included, in memory: 50,000
        // rows of ~1.5 kB each.
        // A list of 1,000 principals is a query of ~100 kB.
        SearchWindows {
            first_ms: 3_600_000,
            one_query_rows: 200_000,
            stream_rows: 50_000,
            listed_principals: 1000,
            edge_values: 256,
        }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl ClickHouseConfig {
    /// Parses `http://[user[:password]@]host:port[/database][?cluster=NAME]`; the database
    /// defaults to `trailwatch`.
    pub fn from_url(url: &str) -> Result<ClickHouseConfig, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("ClickHouse URL {url:?} must start with http:// (the HTTP interface, port 8123)"))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(format!("ClickHouse URL {url:?} has no host"));
        }
        let (user, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (Some(decode(n)), Some(decode(p))),
                None => (Some(decode(u)), None),
            },
            None => (None, None),
        };
        let path = path.split('#').next().unwrap_or("");
        let (database, query) = path.split_once('?').unwrap_or((path, ""));
        let database = database.trim_matches('/');
        let database = if database.is_empty() { "trailwatch".to_string() } else { database.to_string() };
        if !is_identifier(&database) {
            return Err(format!("ClickHouse database name {database:?} may only hold letters, digits and _"));
        }
        let mut cluster = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("cluster", name)) if is_identifier(&decode(name)) => cluster = Some(decode(name)),
                Some(("cluster", name)) => {
                    return Err(format!("ClickHouse cluster name {name:?} may only hold letters, digits and _"))
                }
                _ => return Err(format!("ClickHouse URL {url:?}: unknown parameter {pair:?} (only cluster=NAME)")),
            }
        }
        Ok(ClickHouseConfig {
            url: format!("http://{host}"),
            database,
            user,
            password,
            search_windows: SearchWindows::default(),
            cluster,
        })
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A connection-pooling HTTP client for one server and database.
#[derive(Clone)]
pub struct ClickHouse {
    agent: ureq::Agent,
    config: ClickHouseConfig,
}

impl ClickHouse {
    pub fn new(config: ClickHouseConfig) -> ClickHouse {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(Some(Duration::from_secs(600)))
                .build(),
        );
        ClickHouse { agent, config }
    }

    pub fn database(&self) -> &str {
        &self.config.database
    }

    pub fn search_windows(&self) -> SearchWindows {
        self.config.search_windows
    }

    /// The cluster the tables live on, if not one server.
    pub fn cluster(&self) -> Option<&str> {
        self.config.cluster.as_deref()
    }

    /// Runs a statement that returns nothing (DDL, `INSERT … SELECT`).
    pub fn execute(&self, sql: &str, context: &'static str) -> Result<(), StoreError> {
        self.post("", sql.as_bytes(), context).map(drop)
    }

    /// Runs `sql` (which must end in `FORMAT JSONEachRow`) and calls `row` for each line,
    /// streaming; `row` returns false to stop reading.
    pub fn query_lines(
        &self,
        sql: &str,
        context: &'static str,
        row: &mut dyn FnMut(&str) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let body = self.post("", sql.as_bytes(), context)?;
        read_lines(body, context, row)
    }

    /// Rows of `sql` decoded as `T`, where `sql` reads `table` (see [`ExternalTable`]).
    pub fn query_rows_with<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        table: &ExternalTable,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        const BOUNDARY: &str = "trailwatch-external-table-boundary";
        let encode = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let url = format!(
            "{}/?query={}&{name}_structure={}&{name}_format=JSONEachRow",
            self.config.url,
            encode(sql),
            encode(table.structure),
            name = table.name,
        );
        let mut body = Vec::with_capacity(table.rows.len() + 256);
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{0}\"; filename=\"{0}\"\r\n", table.name).as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/octet-stream\r\n\r\n");
        body.extend_from_slice(&table.rows);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        read_rows(self.send(&url, Some(&content_type), &body, context)?, context)
    }

    /// Rows of `sql` decoded as `T`.
    pub fn query_rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        read_rows(self.post("", sql.as_bytes(), context)?, context)
    }

    /// `INSERT INTO table (columns) FORMAT RowBinary` with `rows` (see [`RowBinary`]).
    pub fn insert_row_binary(
        &self,
        table: &str,
        columns: &str,
        rows: &RowBinary,
        context: &'static str,
    ) -> Result<(), StoreError> {
        let query = format!("INSERT INTO {}.{table} ({columns}) FORMAT RowBinary", self.config.database);
        self.post(&query, &rows.0, context).map(drop)
    }

    /// `INSERT INTO table FORMAT JSONEachRow` with `rows` (one JSON object per line).
    pub fn insert_json_rows(&self, table: &str, rows: &[u8], context: &'static str) -> Result<(), StoreError> {
        let query = format!("INSERT INTO {}.{table} FORMAT JSONEachRow", self.config.database);
        self.post(&query, rows, context).map(drop)
    }

    fn post(&self, query: &str, body: &[u8], context: &'static str) -> Result<Box<dyn Read + Send>, StoreError> {
        // Every statement names its tables with the database (`db.events`), so the database
        // need not exist for the request (CREATE DATABASE) and no default is relied on.
        let mut url = format!("{}/", self.config.url);
        if !query.is_empty() {
            url.push_str("?query=");
            url.push_str(&percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC).to_string());
        }
        self.send(&url, None, body, context)
    }

    fn send(
        &self,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
        context: &'static str,
    ) -> Result<Box<dyn Read + Send>, StoreError> {
        let url = self.with_settings(url);
        let mut request = self.agent.post(&url);
        if let Some(t) = content_type {
            request = request.header("Content-Type", t);
        }
        if let Some(user) = &self.config.user {
            request = request.header("X-ClickHouse-User", user);
        }
        if let Some(password) = &self.config.password {
            request = request.header("X-ClickHouse-Key", password);
        }
        let response = request.send(body).map_err(|e| StoreError::clickhouse(context, e.to_string()))?;
        let status = response.status();
        let body = response.into_body();
        if !status.is_success() {
            let mut text = String::new();
            let _ = body.into_reader().take(4096).read_to_string(&mut text);
            return Err(StoreError::clickhouse(context, format!("HTTP {status}: {}", text.trim())));
        }
        Ok(Box::new(body.into_reader()))
    }

    /// `url` with the settings every request of a cluster needs (see [`super::cluster`]).
    fn with_settings(&self, url: &str) -> String {
        if self.config.cluster.is_none() {
            return url.to_string();
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}{}", super::cluster::SETTINGS)
    }

    /// Checks that the server answers; returns its version.
    pub fn version(&self) -> Result<String, StoreError> {
        #[derive(serde::Deserialize)]
        struct V {
            v: String,
        }
        let rows: Vec<V> = self.query_rows("SELECT version() AS v FORMAT JSONEachRow", "ask ClickHouse its version")?;
        Ok(rows.into_iter().next().map(|r| r.v).unwrap_or_default())
    }
}

/// Reads a JSONEachRow answer line by line (see [`ClickHouse::query_lines`]).
fn read_lines(
    body: Box<dyn Read + Send>,
    context: &'static str,
    row: &mut dyn FnMut(&str) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let mut reader = BufReader::with_capacity(1 << 16, body);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| StoreError::clickhouse(context, e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        let text = line.trim_end_matches('\n');
        if text.is_empty() {
            continue;
        }
        // An error after the first rows arrives in the body as plain text.
        if text.starts_with("Code: ") {
            return Err(StoreError::clickhouse(context, text.to_string()));
        }
        if !row(text)? {
            return Ok(());
        }
    }
}

/// Every line of a JSONEachRow answer decoded as `T`.
fn read_rows<T: serde::de::DeserializeOwned>(
    body: Box<dyn Read + Send>,
    context: &'static str,
) -> Result<Vec<T>, StoreError> {
    let mut rows = Vec::new();
    read_lines(body, context, &mut |line| {
        rows.push(serde_json::from_str(line).map_err(|e| StoreError::clickhouse(context, format!("{e}: {line}")))?);
        Ok(true)
    })?;
    Ok(rows)
}

/// Rows sent beside a query as a table of its own (ClickHouse's "external data": a
/// multipart request whose part the query reads as table `name`), e.g. a set of event ids
/// for `… WHERE event_id IN ids`. A set of thousands of values spelled into the SQL costs the
/// server more to parse and evaluate than to look up (20,000 ids: 1.07 s as `unhex` literals,
/// 35 ms as a table), and this needs no escaping in SQL at all.
pub struct ExternalTable {
    name: &'static str,
    /// `column Type, …`, as ClickHouse wants it.
    structure: &'static str,
    /// JSONEachRow. Every line starts with `{` and serde_json writes no raw CR or LF inside
    /// a string, so no value can end the part early: a multipart delimiter is a line
    /// starting with `--`.
    rows: Vec<u8>,
    len: usize,
}

impl ExternalTable {
    /// An empty table `name` of columns `structure` (both SQL of our own).
    pub fn new(name: &'static str, structure: &'static str) -> ExternalTable {
        ExternalTable { name, structure, rows: Vec::new(), len: 0 }
    }

    /// Table `ids` of one `String` column `id`.
    pub fn ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> ExternalTable {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            id: &'a str,
        }
        let mut table = ExternalTable::new("ids", "id String");
        for id in ids {
            table.push(&Row { id });
        }
        table
    }

    /// Appends a row: a struct whose fields are the columns, in order.
    pub fn push<T: serde::Serialize>(&mut self, row: &T) {
        serde_json::to_writer(&mut self.rows, row).expect("a row serializes");
        self.rows.push(b'\n');
        self.len += 1;
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A query under construction. Values enter only through [`string`](Sql::string) and
/// [`int`](Sql::int); SQL text only through [`raw`](Sql::raw) with literals of our own.
#[derive(Debug, Default, Clone)]
pub struct Sql(String);

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql(text.to_string())
    }

    /// Our own SQL text (never a value from outside).
    pub fn raw(&mut self, text: &str) -> &mut Sql {
        self.0.push_str(text);
        self
    }

    /// A string value, as `unhex('…')` of its UTF-8 bytes.
    pub fn string(&mut self, value: &str) -> &mut Sql {
        self.0.push_str("unhex('");
        self.0.push_str(&hex::encode_upper(value));
        self.0.push_str("')");
        self
    }

    /// `(v1, v2, …)`: string values (each as [`string`](Sql::string) writes it), for `IN`.
    pub fn strings<'a>(&mut self, values: impl IntoIterator<Item = &'a str>) -> &mut Sql {
        self.0.push('(');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.0.push_str(", ");
            }
            self.string(value);
        }
        self.0.push(')');
        self
    }

    pub fn int(&mut self, value: i64) -> &mut Sql {
        self.0.push_str(&value.to_string());
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Rows in ClickHouse's RowBinary format, the cheapest for the server to read: values in
/// column order, strings as a LEB128 length and their bytes (so any byte may occur in them),
/// numbers little-endian, a `Nullable` as a null flag byte before its value. The writer must
/// follow the column list of the insert exactly.
#[derive(Default)]
pub struct RowBinary(Vec<u8>);

impl RowBinary {
    pub fn string(&mut self, value: &str) {
        let mut n = value.len() as u64;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(byte);
                break;
            }
            self.0.push(byte | 0x80);
        }
        self.0.extend_from_slice(value.as_bytes());
    }

    pub fn nullable_string(&mut self, value: Option<&str>) {
        match value {
            None => self.0.push(1),
            Some(v) => {
                self.0.push(0);
                self.string(v);
            }
        }
    }

    pub fn int64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    pub fn uint64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    /// A `Date`: days since 1970-01-01.
    pub fn date(&mut self, days: u16) {
        self.0.extend_from_slice(&days.to_le_bytes());
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

/// A shell wildcard (`*`, `?`) as an anchored RE2 pattern for `match()`: every other
/// character stands for itself, newlines included (as SQLite's GLOB treats them).
pub fn wildcard_regex(value: &str) -> String {
    let mut out = String::from("(?s)^");
    for c in value.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c if c.is_ascii_alphanumeric() || !c.is_ascii() => out.push(c),
            c => {
                out.push('\\');
                out.push(c);
            }
        }
    }
    out.push('$');
    out
}

/// ClickHouse writes 64-bit integers in JSON as strings unless told otherwise; rows accept
/// both.
pub mod int64 {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(i64),
        S(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Either::deserialize(d)? {
            Either::N(n) => Ok(n),
            Either::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let c = ClickHouseConfig::from_url("http://u:p%40ss@127.0.0.1:8123/tw").unwrap();
        assert_eq!(c.url, "http://127.0.0.1:8123");
        assert_eq!(c.database, "tw");
        assert_eq!(c.user.as_deref(), Some("u"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        let c = ClickHouseConfig::from_url("http://h:8123").unwrap();
        assert_eq!((c.database.as_str(), c.user), ("trailwatch", None));
        assert!(ClickHouseConfig::from_url("https://h").is_err());
        assert!(ClickHouseConfig::from_url("http://h/db;drop").is_err());
        let c = ClickHouseConfig::from_url("http://h:8123/tw?cluster=prod_2x2").unwrap();
        assert_eq!((c.database.as_str(), c.cluster.as_deref()), ("tw", Some("prod_2x2")));
        assert_eq!(ClickHouseConfig::from_url("http://h:8123/tw").unwrap().cluster, None);
        assert!(ClickHouseConfig::from_url("http://h/tw?cluster=a'b").is_err());
        assert!(ClickHouseConfig::from_url("http://h/tw?replicas=2").is_err());
    }

    #[test]
    fn strings_never_appear_as_text() {
        let mut q = Sql::new("SELECT ");
        q.string("a') OR 1=1 --");
        assert_eq!(q.as_str(), "SELECT unhex('612729204F5220313D31202D2D')");
    }

    #[test]
    fn wildcards_become_anchored_patterns() {
        assert_eq!(wildcard_regex("Delete*"), "(?s)^Delete.*$");
        assert_eq!(wildcard_regex("10.0.?.1"), "(?s)^10\\.0\\..\\.1$");
        assert_eq!(wildcard_regex("a(b)|c"), "(?s)^a\\(b\\)\\|c$");
    }
}
