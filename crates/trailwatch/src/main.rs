//! trailwatch: the binary. Parses the command line, sets up logging, runs one command, and
//! turns the outcome into an exit code in one place (0 ok, 1 findings, 2 errors).

mod alerting;
mod cli;
mod commands;
mod config;
mod config_doc;
mod dashboard;
mod detection_setup;
mod logfmt;
mod output;
mod reload;
mod retention;

use std::process::ExitCode;

use clap::Parser;

// Events are allocated on parse threads and freed on the writer thread; mimalloc handles
// that cross-thread pattern far better than glibc's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Output piped into `head` and closed early ends the process quietly, as for any Unix tool,
/// instead of a panic on the failed write (Rust ignores SIGPIPE by default). Sockets are
/// unaffected: they are written with MSG_NOSIGNAL.
#[allow(unsafe_code)]
fn default_sigpipe() {
    // SAFETY: sets a signal's disposition to the default, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Long-running commands keep their memory in small pages. With transparent huge pages the
/// allocator's arenas are backed by 2 MB pages: a purged range inside one keeps the rest
/// resident, and khugepaged later refills whole 2 MB pages, so `serve`'s RSS rose and fell
/// in 2 MB steps that follow no allocation (soak: 88-106 MB with them, 63.5-67 MB without).
/// Databases and caches commonly ask for the same (Redis, MongoDB). Best effort: an old
/// kernel refuses.
#[allow(unsafe_code)]
fn disable_transparent_huge_pages() {
    // SAFETY: prctl with integer arguments only; it changes a flag of this process.
    let refused = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) } != 0;
    if refused {
        tracing::debug!(error = %std::io::Error::last_os_error(), "transparent huge pages stay enabled");
    }
}

fn main() -> ExitCode {
    default_sigpipe();
    let cli = cli::Cli::parse();
    init_logging(cli.verbose, cli.log_format);
    if matches!(cli.command, cli::Command::Serve(_) | cli::Command::Demo(_)) {
        disable_transparent_huge_pages();
    }
    let result = run(cli.command);
    // For benchmarks and tests that bound memory (reported on stderr, once, at exit).
    if std::env::var_os("TRAILWATCH_REPORT_PEAK_RSS").is_some() {
        if let Some(mb) = commands::bench::peak_rss_mb() {
            eprintln!("peak RSS: {mb:.0} MB");
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A check found problems: it has said so on stdout.
        Err(err) if err.downcast_ref::<commands::Findings>().is_some() => ExitCode::from(1),
        Err(err) => {
            // One line: the whole context chain.
            eprintln!("trailwatch: error: {}", output::terminal_safe(&format!("{err:#}")));
            ExitCode::from(2)
        }
    }
}

fn run(command: cli::Command) -> anyhow::Result<()> {
    use cli::Command;
    match command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Ingest(args) => commands::ingest::run(args),
        Command::Search(args) => commands::search::run(args),
        Command::Quarantine(args) => commands::quarantine::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Backfill(args) => commands::backfill::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Setup(args) => commands::setup::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Validate(args) => commands::validate::run(args),
        Command::Rules(cli::RulesCommand::Test(args)) => commands::rules::test(args),
        Command::Rules(cli::RulesCommand::List(args)) => commands::rules::list(args),
        Command::Rules(cli::RulesCommand::Lint(args)) => commands::rules::lint(args),
        Command::Rules(cli::RulesCommand::Run(args)) => commands::rules::run(args),
        Command::Alerts(cli::AlertsCommand::List(args)) => commands::alerts::list(args),
        Command::Alerts(cli::AlertsCommand::Show(args)) => commands::alerts::show(args),
        Command::Alerts(cli::AlertsCommand::Ack(args)) => {
            commands::alerts::set_state(args, store::AlertState::Acknowledged)
        }
        Command::Alerts(cli::AlertsCommand::Resolve(args)) => {
            commands::alerts::set_state(args, store::AlertState::Resolved)
        }
        Command::Bench(cli::BenchCommand::Ingest(args)) => commands::bench::run(args),
        Command::Bench(cli::BenchCommand::Web(args)) => commands::bench_web::run(args),
        Command::Bench(cli::BenchCommand::Store(args)) => commands::bench_store::run(args),
        Command::User(cli::UserCommand::Add(args)) => commands::user::add(args),
        Command::User(cli::UserCommand::List(args)) => commands::user::list(args),
        Command::User(cli::UserCommand::Token(args)) => commands::user::token(args),
        Command::Migrate(args) => commands::migrate::run(args),
        Command::Retention(args) => commands::retention::run(args),
        Command::Backup(args) => commands::backup::backup(args),
        Command::Restore(args) => commands::backup::restore(args),
        Command::Export(cli::ExportCommand::Events(args)) => commands::export::events(args),
        Command::Export(cli::ExportCommand::Alerts(args)) => commands::export::alerts(args),
        Command::Config(cli::ConfigCommand::Check(args)) => commands::docs::config_check(args),
        Command::Config(cli::ConfigCommand::Reference) => {
            print!("{}", config_doc::markdown());
            Ok(())
        }
        Command::Config(cli::ConfigCommand::Schema) => {
            println!("{}", serde_json::to_string_pretty(&config_doc::schema())?);
            Ok(())
        }
        Command::Import(args) => commands::import::run(args),
        Command::Completions(args) => commands::docs::completions(args),
        Command::Man(args) => commands::docs::man(args),
    }
}

fn init_logging(verbose: u8, format: cli::LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAILWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: escape sequences do not belong in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        // Field values are often attacker-chosen (user names, topics, keys, record text): a
        // newline in one would forge a log line, an escape sequence would reach the terminal.
        cli::LogFormat::Text => logs.fmt_fields(logfmt::escaped_fields()).init(),
        // One JSON object per line: timestamp, level, message and every field (account,
        // region, bucket, key, …) at the top level, for log shippers.
        cli::LogFormat::Json => logs.json().flatten_event(true).with_current_span(false).init(),
    }
}
