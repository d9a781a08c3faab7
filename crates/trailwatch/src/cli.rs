//! The command line, as clap parses it (raw arguments; commands validate them).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "trailwatch",
    version,
    about = "Self-hosted AWS CloudTrail monitor: ingest, search, detect, prove integrity",
    long_about = "trailwatch ingests AWS CloudTrail log files into a store on your own machine and \
        lets you search who did what, where, from which IP.\n\n\
        Try it on simulated data:   trailwatch demo\n\
        Ingest a copy of a bucket:  trailwatch ingest --local ./bucket --db trail.db\n\
        Search:                     trailwatch search --db trail.db --event-name StopLogging",
    propagate_version = true
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug). `TRAILWATCH_LOG` takes a full filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text for people, or as JSON objects (one per line) for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TRAILWATCH_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a multi-account trail with attack scenarios, ingest it, and summarise.
    Demo(DemoArgs),
    /// Write a simulated CloudTrail bucket (deterministic for a given seed).
    Simulate(SimulateArgs),
    /// Ingest CloudTrail log files into the store.
    Ingest(IngestArgs),
    /// Search stored events (newest first).
    Search(SearchArgs),
    /// List objects that were quarantined, with the reason.
    #[command(after_help = "Example:\n  trailwatch quarantine --config /etc/trailwatch/trailwatch.toml --format json")]
    Quarantine(QuarantineArgs),
    /// Run the configured AWS sources (SQS queues of every account) until stopped.
    Serve(ServeArgs),
    /// List an account's trail bucket for a time range and ingest what is missing.
    Backfill(BackfillArgs),
    /// Integration status of every account and region, unhandled messages, unreadable objects.
    #[command(after_help = "Example:\n  trailwatch status --config /etc/trailwatch/trailwatch.toml")]
    Status(StatusArgs),
    /// Print (or write) what to create in an AWS account: role, policies, CloudFormation.
    Setup(SetupArgs),
    /// Check each configured account end to end and say what to fix (exit 1 if anything fails).
    #[command(after_help = "Example:\n  trailwatch doctor --config /etc/trailwatch/trailwatch.toml\n\n\
        Checks, per account: the role can be assumed with its external ID, the bucket can be listed \
        and a recent log read (and decrypted, for SSE-KMS trails), the queue receives, the topic \
        reaches the queue, digests are delivered, and the trail's event selectors.")]
    Doctor(DoctorArgs),
    /// Sigma rules: test them against events, list, lint, run over stored history.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Validate a trail's log files against its digest files (exit 1 on findings).
    Validate(ValidateArgs),
    /// Alerts raised by detection: list, show, acknowledge, resolve.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Measure ingest throughput.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Dashboard users and API tokens.
    #[command(subcommand)]
    User(UserCommand),
    /// Move an embedded (SQLite) installation's history to the scale-out stores.
    Migrate(MigrateArgs),
    /// Delete events older than the retention policy now (serve does this every hour).
    Retention(RetentionArgs),
    /// Copy the SQLite store to a file, consistently, while serve keeps running.
    Backup(BackupArgs),
    /// Replace the SQLite store with a backup (checked before anything is replaced).
    Restore(RestoreArgs),
    /// Write events or alerts for other tools: JSON Lines or OCSF.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Import history: CloudTrail Lake / Event history export files, or an account's last 90
    /// days of management events through LookupEvents.
    Import(ImportArgs),
    /// The configuration file: check one, or print its reference or JSON Schema.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:\n  trailwatch completions bash > /etc/bash_completion.d/trailwatch\n  \
        trailwatch completions zsh > \"${fpath[1]}/_trailwatch\"\n  trailwatch completions fish > ~/.config/fish/completions/trailwatch.fish")]
    Completions(CompletionsArgs),
    /// Write man pages (trailwatch.1 and one per command) generated from this CLI.
    #[command(after_help = "Examples:\n  trailwatch man --out /usr/local/share/man/man1\n  trailwatch man | man -l -")]
    Man(ManArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  trailwatch import --event-history --account prod --config trailwatch.toml\n  \
    trailwatch import --lake-export ./lake-results.json --lake-export ./event-history.json.gz --db trail.db\n\n\
    Export files: {\"Records\":[…]} (log files, the console's Event history download as JSON), \
    `aws cloudtrail lookup-events` output ({\"Events\":[{\"CloudTrailEvent\":…}]}), CloudTrail Lake \
    `get-query-results` output of a SELECT * ({\"QueryResultRows\":…}), or JSON arrays / JSON Lines of \
    records; gzip'd or not; a directory is searched for *.json, *.jsonl (and .gz). Records are stored \
    once by eventID whatever else delivered them, detection runs on them, and a file imported before \
    is skipped. --event-history reads the account's Event history (management events of the last \
    90 days, 2 calls a second per region) through its role: the role needs cloudtrail:LookupEvents.")]
pub struct ImportArgs {
    /// Export file or directory (repeatable).
    #[arg(long = "lake-export", value_name = "PATH", conflicts_with = "event_history")]
    pub lake_export: Vec<PathBuf>,
    /// Pull the account's Event history through LookupEvents (needs --account and --config).
    #[arg(long, requires = "account")]
    pub event_history: bool,
    /// The account's `name` in the configuration (with --event-history).
    #[arg(long)]
    pub account: Option<String>,
    /// How far back --event-history reaches (Event history keeps 90 days).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=90))]
    pub days: u32,
    /// Region to read (repeatable); default: the account's regions, else its home region.
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Store the events without running detection rules on them.
    #[arg(long)]
    pub no_detection: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file as `serve` would (exit 2 naming the wrong key).
    Check(ConfigCheckArgs),
    /// Print the configuration reference (Markdown), generated from the configuration structs.
    #[command(after_help = "Example:\n  trailwatch config reference > configuration.md")]
    Reference,
    /// Print the JSON Schema of the configuration file (for editors and CI checks).
    #[command(after_help = "Example:\n  trailwatch config schema > trailwatch.schema.json")]
    Schema,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  trailwatch config check --config /etc/trailwatch/trailwatch.toml")]
pub struct ConfigCheckArgs {
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write trailwatch.1 and trailwatch-<command>.1 here; without it, trailwatch.1 goes to stdout.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  trailwatch retention --config /etc/trailwatch/trailwatch.toml\n  \
    trailwatch retention --db trail.db --days 400 --category Data=30\n\n\
    Without --days/--category the configuration's [retention] section is applied. Events an alert \
    refers to are kept whatever their age; ledger rows and digests seen older than the longest \
    kept age go too. On SQLite the work is done in slices of blocks, so a running serve keeps \
    ingesting; on ClickHouse whole expired months are dropped as partitions.")]
pub struct RetentionArgs {
    /// Keep events this many days (by eventTime).
    #[arg(long)]
    pub days: Option<u32>,
    /// Keep events of a category this many days: Management, Data, Insight or NetworkActivity.
    #[arg(long, value_name = "CATEGORY=DAYS")]
    pub category: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  trailwatch backup --config /etc/trailwatch/trailwatch.toml --to /backup/trailwatch-$(date +%F).db\n\n\
    The copy is one consistent snapshot of the store (SQLite's online backup API) and a plain \
    SQLite file: `trailwatch search --db FILE` reads it, `trailwatch restore` puts it back. For \
    the scale-out store use the servers' own tools (see the README: clickhouse-backup or \
    ALTER TABLE … FREEZE, and pg_dump)."
)]
pub struct BackupArgs {
    /// The backup file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  trailwatch restore --from /backup/trailwatch-2026-11-01.db --db /var/lib/trailwatch/trailwatch.db\n\n\
    Stop serve first. The backup is checked (intact, a trailwatch store, a schema this binary \
    knows) before anything is replaced; its schema is then brought up to date. An existing \
    store is only replaced with --force."
)]
pub struct RestoreArgs {
    /// The backup file written by `trailwatch backup`.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Replace a store that already holds events.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a dashboard user, or reset its role and password (ending its sessions and
    /// revoking its API tokens unless --keep-tokens).
    Add(UserAddArgs),
    /// List users.
    #[command(after_help = "Example:\n  trailwatch user list --config /etc/trailwatch/trailwatch.toml")]
    List(UserListArgs),
    /// API tokens: create one for a user (printed once), list them, revoke them.
    #[command(
        after_help = "Examples:\n  trailwatch user token prometheus --name scrape --expires-in 90d > /etc/prometheus/trailwatch.token\n  trailwatch user token list\n  trailwatch user token revoke 3"
    )]
    Token(UserTokenArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  echo \"$PW\" | trailwatch user add alice --role viewer --password-stdin --db trailwatch.db"
)]
pub struct UserAddArgs {
    pub name: String,
    #[arg(long, value_parser = ["admin", "viewer"])]
    pub role: String,
    /// Read the password from stdin (first line) instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
    /// On a reset, keep the user's API tokens (by default a reset revokes them: whoever had
    /// the old password may have made some).
    #[arg(long)]
    pub keep_tokens: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct UserListArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `user token USER` creates (as `user token create USER`); `list` and `revoke` manage.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct UserTokenArgs {
    #[command(subcommand)]
    pub command: Option<TokenCommand>,
    #[command(flatten)]
    pub create: TokenCreateArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user (for scripts and Prometheus); printed once.
    #[command(after_help = "Example:\n  trailwatch user token create prometheus --name scrape --expires-in 90d")]
    Create(TokenCreateArgs),
    /// List API tokens: id, user, name, created, last used, expiry.
    #[command(after_help = "Example:\n  trailwatch user token list --user alice --format json")]
    List(TokenListArgs),
    /// Revoke one API token by id, or every token of a user.
    #[command(after_help = "Examples:\n  trailwatch user token revoke 3\n  trailwatch user token revoke --user alice")]
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The user the token acts as.
    #[arg(required = true)]
    pub user: Option<String>,
    /// What the token is for (shown in the token list).
    #[arg(long, default_value = "cli")]
    pub name: String,
    /// The token stops working after this long (`90d`, `12h`, `2w`); without it, it works
    /// until revoked.
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    /// Only this user's tokens.
    #[arg(long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's id (`user token list`).
    #[arg(required_unless_present = "user", conflicts_with = "user")]
    pub id: Option<i64>,
    /// Revoke every token of this user.
    #[arg(long)]
    pub user: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Run Sigma rules over a file of events and print the matches.
    Test(RulesTestArgs),
    /// List rules: id, title, level, status, pack (the folder it comes from), hits in the store.
    #[command(
        after_help = "Examples:\n  trailwatch rules list\n  trailwatch rules list --rules ./my-rules --format tsv"
    )]
    List(RulesListArgs),
    /// Check rules: load errors and duplicate ids (exit 1), incomplete metadata (warnings).
    #[command(after_help = "Example:\n  trailwatch rules lint --rules ./sigma/rules/cloud/aws/cloudtrail")]
    Lint(RulesListArgs),
    /// Run the rules over stored events (a new rule over history); alerts as in ingest.
    Run(RulesRunArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  trailwatch rules run --db trail.db --rules new-rule.yml --since 30d")]
pub struct RulesRunArgs {
    /// Only these rules (file or directory); default: the configured rules ([detection]).
    #[arg(long, value_name = "PATH")]
    pub rules: Option<PathBuf>,
    /// Events from this time on (RFC 3339, a date, or an age such as 7d).
    #[arg(long, value_name = "T")]
    pub since: String,
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Alerts, most recently seen first.
    #[command(
        after_help = "Examples:\n  trailwatch alerts list --state open --level high\n  trailwatch alerts list --limit 0 --format jsonl"
    )]
    List(AlertsListArgs),
    /// One alert with its events and deliveries.
    #[command(after_help = "Example:\n  trailwatch alerts show 42 --format json")]
    Show(AlertIdArgs),
    /// Mark an alert acknowledged (someone is on it).
    #[command(after_help = "Example:\n  trailwatch alerts ack 42 --comment \"looking into it\"")]
    Ack(AlertStateArgs),
    /// Mark an alert resolved; later matches open a new alert.
    #[command(after_help = "Example:\n  trailwatch alerts resolve 42 --comment \"planned maintenance\"")]
    Resolve(AlertStateArgs),
}

#[derive(Debug, Args)]
pub struct AlertsListArgs {
    /// open, acknowledged or resolved.
    #[arg(long)]
    pub state: Option<String>,
    /// This level or higher (informational, low, medium, high, critical).
    #[arg(long)]
    pub level: Option<String>,
    #[arg(long)]
    pub rule: Option<String>,
    /// 0: no limit.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct AlertIdArgs {
    pub id: i64,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct AlertStateArgs {
    pub id: i64,
    #[arg(long)]
    pub comment: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RulesListArgs {
    /// A Sigma YAML file or a directory searched recursively; default: the configured rules
    /// (the built-in packs and [detection] rules).
    #[arg(long, value_name = "PATH")]
    pub rules: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "FILE is JSON Lines (one CloudTrail record per line) or a CloudTrail log file \
    ({\"Records\":[...]}, gzip'd or not). Rules that cannot be loaded are reported on stderr with file and \
    reason and skipped; the rest still run.\n\nExamples:\n  \
    trailwatch rules test --rules ./sigma --events records.jsonl --format tsv\n  \
    trailwatch rules test --rules rule.yml --events 111122223333_CloudTrail_us-east-1_20240115T2035Z_x.json.gz")]
pub struct RulesTestArgs {
    /// A Sigma YAML file or a directory searched recursively.
    #[arg(long, value_name = "PATH")]
    pub rules: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,
    /// `tsv`: `<rule id>\t<eventID>` per match; `table`: the same with titles and a summary;
    /// `json`/`jsonl`: one object per match.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "Runs until SIGTERM or Ctrl-C: stops receiving, finishes (or releases) the messages in \
    flight, commits, and exits.\n\nExample:\n  trailwatch serve --config trailwatch.toml")]
pub struct ServeArgs {
    /// Configuration file (accounts, store, ingest settings).
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: PathBuf,
    /// Exit once no message has arrived for this many seconds and nothing is in flight
    /// (for one-shot drains, tests and benchmarks).
    #[arg(long, value_name = "SECS")]
    pub exit_when_idle: Option<u64>,
    /// At exit, print this run's counters: `json` or `table`.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "A file is in range when its delivery time (from its name) is within [--since, --until]. \
    Files the ledger has are skipped, so running it again is a no-op.\n\n\
    Example:\n  trailwatch backfill --config trailwatch.toml --account prod --since 7d")]
pub struct BackfillArgs {
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: PathBuf,
    /// The account's `name` in the configuration.
    #[arg(long)]
    pub account: String,
    /// Region to list (repeatable); default: the account's regions, else every region found.
    #[arg(long = "region")]
    pub regions: Vec<String>,
    #[arg(long)]
    pub since: String,
    /// Default: now.
    #[arg(long)]
    pub until: Option<String>,
    /// `table` or `json`.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "Prints, for each account (or --account): the IAM trust policy of the read-only role \
    (trailwatch's principal, with the account's external ID), its least-privilege permission policy, and a \
    CloudFormation template creating the trail (log file validation on), bucket, SNS topic, queue + DLQ, \
    subscription and role.\n\nExamples:\n  trailwatch setup --config trailwatch.toml --account prod\n  \
    trailwatch setup --config trailwatch.toml --out ./aws-setup\n  \
    aws cloudformation deploy --template-file aws-setup/prod/cloudformation.json --stack-name trailwatch \\\n      \
    --capabilities CAPABILITY_IAM")]
pub struct SetupArgs {
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: PathBuf,
    /// Only this account (its `name`); default: every configured account.
    #[arg(long)]
    pub account: Option<String>,
    /// The IAM principal trailwatch runs as. Default: the identity of trailwatch's own
    /// credentials (an assumed-role session becomes its role).
    #[arg(long, value_name = "ARN")]
    pub principal: Option<String>,
    /// The trail's name: the one the template creates (default trailwatch-trail), and for an
    /// existing trail the one whose settings the role may read (default: any of the account's).
    #[arg(long)]
    pub trail_name: Option<String>,
    /// The trail encrypts with this existing KMS key: print the key-policy statements CloudTrail
    /// and the role need, and grant the role kms:Decrypt on it (through S3 only).
    #[arg(long, value_name = "ARN", conflicts_with = "create_kms_key")]
    pub kms_key_arn: Option<String>,
    /// The template creates a KMS key (rotation on) and encrypts the trail with it.
    #[arg(long)]
    pub create_kms_key: bool,
    /// Name of the read-only role the template creates (its ARN goes in caller-policy.json).
    #[arg(long, default_value = "trailwatch-read")]
    pub role_name: String,
    /// Write trust-policy.json, permission-policy.json, cloudformation.json (and
    /// key-policy-statements.json) under DIR/<account>/, and caller-policy.json in DIR,
    /// instead of printing them.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// `table` (sections for people) or `json` (one document per account).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: PathBuf,
    /// Only this account.
    #[arg(long)]
    pub account: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Which store to use: `--db` (an SQLite file) or `--config` (that file's store).
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// Configuration file (its [store] section is used).
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG", conflicts_with = "db")]
    pub config: Option<PathBuf>,
    /// SQLite database file (created if missing). Default: ./trailwatch.db.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  trailwatch ingest --local ./bucket-copy --db trail.db --format json")]
pub struct IngestArgs {
    /// Directory to ingest: a copy of a trail bucket or any folder of log files.
    #[arg(long, value_name = "DIR")]
    pub local: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output: `table` (summary for people) or `json` ({"files","records","new","duplicates","quarantined"}).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Parse threads (default: number of CPUs).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Store events only: do not run the rules ([detection] of --config, else the built-in packs).
    #[arg(long)]
    pub no_detection: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Time values: RFC 3339 (2024-01-15T10:00:00Z), a date (2024-01-15; as --until it means \
    the end of that day), or an age (30m, 12h, 7d: that long ago).\n\
    Text filters match exactly; * and ? are wildcards (--event-name 'Delete*').\n\n\
    Examples:\n  trailwatch search --event-name StopLogging --since 7d\n  \
    trailwatch search --principal alice --errors --format tsv\n  \
    trailwatch search --source-ip 203.0.113.7 --limit 0 --format jsonl")]
pub struct SearchArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub filters: EventFilterArgs,
    /// Maximum events to print; 0 means no limit.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// `table`, `json` (array of the original records), `jsonl` (one original record per
    /// line) or `tsv` (eventTime, eventID, eventSource, eventName, principal,
    /// sourceIPAddress, recipientAccountId, awsRegion, errorCode).
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// The event filters of `search` and `export events`.
#[derive(Debug, Args, Clone, Default)]
pub struct EventFilterArgs {
    /// eventName, e.g. StopLogging.
    #[arg(long)]
    pub event_name: Option<String>,
    /// eventSource, e.g. cloudtrail.amazonaws.com.
    #[arg(long)]
    pub event_source: Option<String>,
    /// Principal ARN, the role or user that issued the session, a user/session name, or the
    /// federated person behind a session.
    #[arg(long)]
    pub principal: Option<String>,
    /// sourceIPAddress (an address, or a service name such as ec2.amazonaws.com).
    #[arg(long)]
    pub source_ip: Option<String>,
    /// recipientAccountId.
    #[arg(long)]
    pub account: Option<String>,
    /// awsRegion.
    #[arg(long)]
    pub region: Option<String>,
    /// Events at or after this time (RFC 3339, a date, or an age such as 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Events at or before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Only failed calls (events with an errorCode).
    #[arg(long)]
    pub errors: bool,
    /// Only calls that failed with this errorCode (wildcards allowed).
    #[arg(long, value_name = "CODE")]
    pub error_code: Option<String>,
}

impl EventFilterArgs {
    /// The store query these filters select (no limit).
    pub fn query(self, now: model::EpochMillis) -> anyhow::Result<store::EventQuery> {
        Ok(store::EventQuery {
            event_name: self.event_name,
            event_source: self.event_source,
            principal: self.principal,
            source_ip: self.source_ip,
            account: self.account,
            region: self.region,
            since: self.since.as_deref().map(|t| parse_time(t, now, false)).transpose()?,
            until: self.until.as_deref().map(|t| parse_time(t, now, true)).transpose()?,
            errors: self.errors,
            error_code: self.error_code,
            limit: None,
            after: None,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Stored events matching the filters, newest first.
    Events(ExportEventsArgs),
    /// Alerts with the ids of their events, most recently seen first.
    Alerts(ExportAlertsArgs),
}

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Events: the original CloudTrail records; alerts: the JSON `alerts list` prints.
    Jsonl,
    /// OCSF 1.1: API Activity (class 6003) for events, Detection Finding (2004) for alerts.
    Ocsf,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  trailwatch export events --since 24h --format ocsf --out events.ocsf.jsonl\n  \
    trailwatch export events --event-source iam.amazonaws.com --format jsonl | gzip > iam.jsonl.gz\n\n\
    One JSON document per line, streamed: any number of events in little memory.")]
pub struct ExportEventsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub filters: EventFilterArgs,
    /// At most this many events (newest first); 0: all.
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Write here instead of stdout (replaced only when the export is complete).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  trailwatch export alerts --state open --format ocsf --out findings.jsonl")]
pub struct ExportAlertsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// open, acknowledged or resolved.
    #[arg(long)]
    pub state: Option<String>,
    /// This level or higher (informational, low, medium, high, critical).
    #[arg(long)]
    pub level: Option<String>,
    #[arg(long)]
    pub rule: Option<String>,
    #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
    pub format: ExportFormat,
    /// Write here instead of stdout (replaced only when the export is complete).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  trailwatch migrate --from sqlite:/var/lib/trailwatch/trailwatch.db \\\n    \
    --to clickhouse:http://127.0.0.1:8123/trailwatch --state postgres://trailwatch@127.0.0.1/trailwatch\n\n\
    Events keep their order, alerts, API tokens and ledger rows their ids. Running it again is safe \
    (nothing is copied twice). The other way, into a new SQLite file (a one-file copy, or leaving \
    the scale-out setup):\n  trailwatch migrate --from clickhouse:http://127.0.0.1:8123/trailwatch \
    --state postgres://trailwatch@127.0.0.1/trailwatch --to sqlite:/backup/trailwatch.db\n\nCredentials may come from TRAILWATCH_CLICKHOUSE_USER, \
    TRAILWATCH_CLICKHOUSE_PASSWORD and PGPASSWORD.")]
pub struct MigrateArgs {
    /// `sqlite:PATH` (or `clickhouse:URL`): the store to copy (only read).
    #[arg(long, value_name = "sqlite:PATH")]
    pub from: String,
    /// `clickhouse:URL` (or `sqlite:PATH`, a new file): where the events go.
    #[arg(long, value_name = "clickhouse:URL")]
    pub to: String,
    /// `postgres://…`: where ledger, alerts, users and the rest go.
    #[arg(long, value_name = "postgres://…", env = "TRAILWATCH_STATE_URL")]
    pub state: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct QuarantineArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "Scenarios: trail-tampering, root-usage, console-login-without-mfa, failed-login-burst, \
    security-group-open-world, admin-policy-attached, access-key-for-other-user, bulk-terminate, \
    instance-stop-start-unusual-ip, or `all`.\n\n\
    Tamper scenarios (with --digests; they alter the first account's us-east-1 chain): log-modified, \
    log-deleted, log-injected, digest-forged, digest-deleted, newest-digest-deleted, digest-corrupted, \
    digest-unknown-key, digest-moved, chain-broken, validation-paused, delivery-gap, or `all-tamper` \
    (needs --hours 31).\n\n\
    Examples:\n  trailwatch simulate --out ./bucket --accounts 3 --hours 24 --events 150000 --scenario all\n  \
    trailwatch simulate --out ./tampered --digests --hours 31 --scenario all-tamper")]
pub struct SimulateArgs {
    /// Output directory (must be empty or absent).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub accounts: usize,
    /// Comma-separated regions.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1,eu-west-1")]
    pub regions: Vec<String>,
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Ordinary events (scenario and Insights records come on top).
    #[arg(long, default_value_t = 20_000)]
    pub events: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Start of the simulated window (RFC 3339). Default 2026-01-05T00:00:00Z.
    #[arg(long)]
    pub start: Option<String>,
    /// Inject a named scenario (repeatable; `all` for every one).
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// Lay files out as an organization trail (AWSLogs/<o-id>/<account>/…).
    #[arg(long, value_name = "O-ID")]
    pub organization_id: Option<String>,
    /// The trail's S3 key prefix.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Write signed digest files (hourly chains), their signature sidecars and list-public-keys.json.
    #[arg(long)]
    pub digests: bool,
    /// The bucket name digests give as their own.
    #[arg(long, default_value = "trailwatch-sim-bucket")]
    pub bucket: String,
    /// How varied the traffic is: `realistic` (heavy-tailed values whose distinct counts grow
    /// with size, like public trails), `high-cardinality` (≥ 0.3 distinct user agents and
    /// ≥ 0.5 distinct source addresses per event), or `classic` (a small fixed cast).
    #[arg(long, default_value = "realistic", value_parser = parse_profile)]
    pub profile: sim::Profile,
    /// Writer threads (default: one per core); the output is the same for any number.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

fn parse_profile(name: &str) -> Result<sim::Profile, String> {
    sim::Profile::parse(name).ok_or_else(|| {
        let known: Vec<&str> = sim::Profile::ALL.iter().map(|p| p.name()).collect();
        format!("unknown profile {name:?}; known: {}", known.join(", "))
    })
}

#[derive(Debug, Args)]
#[command(after_help = "Findings: LOG_MODIFIED, LOG_MISSING, DIGEST_INVALID_SIGNATURE, DIGEST_MISSING, \
    DIGEST_UNREADABLE, UNKNOWN_KEY, DIGEST_MOVED, CHAIN_BROKEN, UNLISTED_LOG make the trail invalid (exit 1); \
    CHAIN_RESTART and DELIVERY_GAP are warnings for review.\n\n\
    Examples:\n  trailwatch validate --local ./bucket --public-keys ./list-public-keys.json\n  \
    aws cloudtrail list-public-keys --start-time 2026-01-01 > keys.json\n  \
    trailwatch validate --trail-arn arn:aws:cloudtrail:us-east-1:111122223333:trail/main --start-time 7d")]
pub struct ValidateArgs {
    /// A copy of the trail's bucket (object keys are paths below DIR; signatures in KEY.metadata.json).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "trail_arn",
        conflicts_with = "trail_arn",
        requires = "public_keys"
    )]
    pub local: Option<PathBuf>,
    /// `aws cloudtrail list-public-keys` output. Required with --local; with --trail-arn it
    /// replaces the ListPublicKeys call.
    #[arg(long, value_name = "FILE")]
    pub public_keys: Option<PathBuf>,
    /// Validate the trail in AWS (its bucket through the account's role when configured).
    #[arg(long, value_name = "ARN", requires = "start_time")]
    pub trail_arn: Option<String>,
    /// Digests ending and logs delivered from this time (RFC 3339, a date, or an age such as 7d).
    #[arg(long, value_name = "T")]
    pub start_time: Option<String>,
    /// … up to this time (default: now). A log newer than the newest digest is pending until
    /// --pending-minutes before it, unlisted after.
    #[arg(long, value_name = "T")]
    pub end_time: Option<String>,
    /// How long a delivered log may wait for the digest that lists it (minutes).
    #[arg(long, value_name = "MINUTES", default_value_t = 90)]
    pub pending_minutes: u32,
    /// The local copy was made with decompression on: read plain-JSON digests (otherwise
    /// they are DIGEST_UNREADABLE, as CloudTrail writes digests gzip'd).
    #[arg(long, requires = "local")]
    pub decompressed_copy: bool,
    /// Configuration with `[aws]` settings and the `[[accounts]]` whose role to use.
    #[arg(long, value_name = "FILE", env = "TRAILWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  trailwatch demo --data-dir ./trailwatch-demo")]
pub struct DemoArgs {
    /// Where the simulated bucket and the database go.
    #[arg(long, value_name = "DIR", default_value = "trailwatch-demo")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Ordinary events to simulate.
    #[arg(long, default_value_t = 20_000)]
    pub events: u64,
    /// Port of the dashboard on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on (instead of 127.0.0.1).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// The admin's password (default: a random one, printed).
    #[arg(long, env = "TRAILWATCH_DEMO_ADMIN_PASSWORD")]
    pub admin_password: Option<String>,
    /// Ingest and summarise, then exit instead of serving the dashboard.
    #[arg(long)]
    pub no_serve: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// gunzip+parse alone vs. full ingest into SQLite, on the same files in one run.
    Ingest(BenchIngestArgs),
    /// Server time of the dashboard's overview and searches over an existing store.
    Web(BenchWebArgs),
    /// What a store answers and how fast, at its size: the scale table's figures.
    Store(BenchStoreArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  trailwatch simulate --out /tmp/b --events 1000000 --hours 168 --accounts 20 --regions us-east-1,eu-west-1,us-west-2,ap-southeast-2 && \\\n  trailwatch ingest --local /tmp/b --db /tmp/b.db && trailwatch bench store --db /tmp/b.db --copy-dir /tmp\n\n\
    With --config, the configuration's store (the scale-out store: the same queries through the same calls)."
)]
pub struct BenchStoreArgs {
    /// The store to measure (its events are only read; counts kept beside them may be brought
    /// up to date first, as `serve` does): `--db` an SQLite file, or `--config`'s store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Runs of each measured query.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Newest events whose resources are counted to pick a frequent, a median and a rare one.
    #[arg(long, default_value_t = 20_000)]
    pub resource_sample: usize,
    /// Also time a backup into this directory and retention of the oldest day on that copy
    /// (SQLite only; needs free space the size of the store; the copy is deleted).
    #[arg(long, value_name = "DIR")]
    pub copy_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  trailwatch simulate --out /tmp/b --events 1000000 --hours 168 --start 7d && \\\n  trailwatch ingest --local /tmp/b --db /tmp/b.db && trailwatch bench web --db /tmp/b.db"
)]
pub struct BenchWebArgs {
    /// The SQLite store to measure (read only, but for a `bench` user and token).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Requests per measured query.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Compare with this configuration's store (e.g. the scale-out store holding the same
    /// events) instead of the SQLite store's time plan: each search runs on both.
    #[arg(long, value_name = "FILE")]
    pub against: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  trailwatch simulate --out /tmp/b --events 150000 && trailwatch bench ingest --local /tmp/b"
)]
pub struct BenchIngestArgs {
    #[arg(long, value_name = "DIR")]
    pub local: PathBuf,
    /// Runs of each stage; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Parse threads (default: number of CPUs).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Rules for the "with detection" stage besides the built-in packs (file or directory).
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Leave the built-in packs (and the new-region detector) out of that stage.
    #[arg(long)]
    pub no_builtin: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Parses a `--since`/`--until` value. `end_of_day` makes a bare date mean its last instant.
pub fn parse_time(value: &str, now_ms: i64, end_of_day: bool) -> anyhow::Result<i64> {
    model::timefmt::parse_time(value, now_ms, end_of_day).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arguments() {
        let now = 1_705_315_523_000; // 2024-01-15T10:45:23Z
        assert_eq!(parse_time("2024-01-15T10:45:23Z", now, false).unwrap(), now);
        assert_eq!(parse_time("2024-01-15", now, false).unwrap(), 1_705_276_800_000);
        assert_eq!(parse_time("2024-01-15", now, true).unwrap(), 1_705_276_800_000 + 86_400_000 - 1);
        assert_eq!(parse_time("2024-01-15T10:45", now, false).unwrap(), now - 23_000);
        assert_eq!(parse_time("2h", now, false).unwrap(), now - 7_200_000);
        assert_eq!(parse_time("7d", now, false).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_time("now", now, false).unwrap(), now);
        assert!(parse_time("yesterday", now, false).is_err());
        assert!(parse_time("2024-13-01", now, false).is_err());
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    /// Every command a person runs says what it does and shows an example.
    #[test]
    fn every_command_has_help_and_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("{name}: no description"));
                }
                if sub.has_subcommands() {
                    walk(sub, &name, missing);
                } else if !sub.get_after_help().is_some_and(|h| h.to_string().contains("Example")) {
                    missing.push(format!("{name}: no example"));
                }
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "trailwatch", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
        super::Cli::command().debug_assert();
    }
}
