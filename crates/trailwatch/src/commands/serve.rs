//! `trailwatch serve --config FILE`: the AWS sources, detection, alert delivery, event
//! forwarding, integrity validation and the dashboard, until SIGTERM or Ctrl-C.
//!
//! [`run`] reads top to bottom: open and check everything that can fail before anything
//! starts, start the components, wait for the one stop signal, then stop them in order —
//! stop receiving, drain, release what is still in flight, flush, and only then the web
//! server and the background tasks.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{load_config, open_target, pipeline_config, Open};
use crate::cli::ServeArgs;
use crate::output::Format;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Everything that can refuse to start does so before anything runs.
    let config = load_config(&args.config)?;
    let store = open_target(&config.store, Open::Create)?;
    let board = Arc::new(aws::StatusBoard::load(store.state()).context("reading the stored integration status")?);
    if config.accounts.is_empty() {
        tracing::warn!("no [[accounts]] configured: nothing to consume");
    }
    let ca = match &config.sns_test_ca_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading sns.test_ca_file {}", p.display()))?),
        None => None,
    };
    let sns = Arc::new(
        aws::sns::SnsVerifier::new(config.sns_test_cert_hosts.clone(), ca.as_deref())?
            .with_policy(aws::sns::SnsPolicy { accept_sha1: config.sns_accept_sha1, ..Default::default() }),
    );
    // A certificate that cannot be used stops the start, like any invalid configuration
    // (rather than a server that runs without its web side).
    if let Some((cert, key)) = &config.web.tls {
        web::tls::acceptor(cert, key).context("web.tls_cert / web.tls_key")?;
    }
    crate::dashboard::ensure_admin(&store, None)?;
    let (rules, rule_errors) = crate::detection_setup::load_rules_reporting(&config.detection);
    let mut site = crate::dashboard::site_info(&config.accounts, &rules, &rule_errors, Default::default(), &config.web);
    site.retention = config.retention.as_ref().map(|r| crate::retention::describe(&r.policy));
    site.forwarders = config.forward.iter().map(|f| f.name.clone()).collect();
    let detection = crate::detection_setup::for_config(&store, &config, rules)?;
    let live_rules = detection.live.clone();
    let mut web_state = web::WebState::new(store.clone(), site);
    web_state.live_status = Some(Arc::new(crate::dashboard::LiveBoard(board.clone())));
    web_state.doctor_runner =
        Some(Arc::new(crate::dashboard::AwsDoctor { settings: config.aws.clone(), accounts: config.accounts.clone() }));
    let metrics = telemetry::global();
    crate::dashboard::register_metrics(metrics);
    if let Some(filter) = &config.filter {
        filter.register_metrics(metrics);
    }

    // Threads beside the runtime: history imports of new accounts, and retention (stopped
    // and joined when `_retention` goes out of scope, at the end of `run`).
    super::import::import_new_accounts(&config, store.clone());
    let _retention =
        config.retention.clone().map(|settings| crate::retention::RetentionTask::start(store.clone(), settings));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("aws")
        .build()
        .context("starting the async runtime")?;
    let consumer = runtime.block_on(async {
        let listener = crate::dashboard::bind(&config.web_listen).await?;
        tracing::info!(address = %config.web_listen, "web server listening");
        let mut tasks = Tasks::default();

        // Alert delivery runs even without sinks (a reload may add some); what it has not
        // sent stays in the outbox for the next start.
        let sinks = crate::alerting::sinks(&config).await?;
        let outbox = Arc::new(alert::Outbox::new(store.clone(), sinks, config.detection.public_url.clone()));
        tasks.spawn("outbox", |stop| outbox.clone().run(Duration::from_secs(1), stop.cancelled_owned()));
        // Counts kept beside the events (the scale-out store's hour counts) brought up to
        // date every few seconds, so an overview after a burst of ingest need not count.
        let counted = store.clone();
        tasks.spawn("counts", move |stop| async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
                let store = counted.clone();
                match tokio::task::spawn_blocking(move || store.events().refresh_counts()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(hours)) => tracing::debug!(hours, "hour counts brought up to date"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot bring hour counts up to date; trying again"),
                    Err(e) => tracing::error!(error = %e, "hour counts task failed"),
                }
            }
        });
        tasks.spawn("reload", |stop| {
            let reloadable = crate::reload::Reloadable {
                config_path: args.config.clone(),
                started_with: config.clone(),
                live: live_rules,
                outbox,
                site: web_state.info.clone(),
            };
            async move {
                tokio::select! {
                    _ = crate::reload::on_sighup(reloadable) => {}
                    _ = stop.cancelled() => {}
                }
            }
        });
        // Event forwarders: each keeps its own position in the store.
        for spec in &config.forward {
            let forwarder = forward::Forwarder::new(store.clone(), spec.clone());
            tasks.spawn("forwarder", |stop| forwarder.run(Duration::from_secs(1), stop.cancelled_owned()));
        }
        // Integrity validation of every account with a bucket, beside ingest.
        if let Some(settings) = config.integrity.clone() {
            let policy = crate::detection_setup::policy(&config.detection, &config.sinks);
            let (accounts, aws, store) = (config.accounts.clone(), config.aws.clone(), store.clone());
            tasks.spawn("integrity", |stop| {
                aws::integrity::watch(accounts, aws, store, policy, settings, stop.cancelled_owned())
            });
        }

        let mut consumer = aws::consumer::start(
            config.accounts.clone(),
            config.aws.clone(),
            store.clone(),
            ingest::PipelineSpec {
                config: pipeline_config(config.workers, config.filter.clone(), config.read_limits),
                detection: Some(detection),
            },
            config.consumer.clone(),
            board.clone(),
        )
        .await?;
        consumer.consumer().counters.register(metrics);
        let in_flight = Arc::downgrade(consumer.consumer());
        metrics.gauge("trailwatch_messages_in_flight", "Messages being handled now.", move || {
            in_flight.upgrade().map_or(0.0, |c| c.in_flight() as f64)
        });

        let push_routes = aws::push::routes(consumer.consumer().clone(), sns);
        let (tls, max_connections) = (config.web.tls.clone(), config.web.max_connections);
        tasks.spawn("web", |stop| async move {
            let served = crate::dashboard::serve(
                listener,
                web_state,
                push_routes,
                tls.as_ref(),
                max_connections,
                stop.cancelled_owned(),
            );
            if let Err(e) = served.await {
                tracing::error!(error = format!("{e:#}"), "web server failed");
            }
        });
        eprintln!(
            "trailwatch serve: dashboard on {}",
            crate::dashboard::url(&config.web_listen, config.web.tls.is_some())
        );

        // The one stop signal: SIGTERM, Ctrl-C, or (with --exit-when-idle) a quiet spell.
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(
            args.exit_when_idle.map(Duration::from_secs),
            consumer.consumer().clone(),
            shutdown.clone(),
        ));
        shutdown.cancelled().await;

        tracing::info!("shutting down: no new messages; waiting for those in flight");
        consumer.stop_receiving().await;
        consumer.drain(config.consumer.shutdown_grace).await;
        consumer.release_in_flight().await;
        let consumer = consumer.flush().await?;
        // The web server answers (SNS pushes too) until ingest has stopped.
        tasks.stop("web").await;
        tasks.stop("forwarder").await;
        tasks.stop("integrity").await;
        tasks.stop("outbox").await;
        tasks.stop("reload").await;
        anyhow::Ok(consumer)
    })?;
    runtime.shutdown_timeout(Duration::from_secs(5));
    let counters = consumer.counters.to_json();
    match args.format {
        Format::Json | Format::Jsonl => println!("{counters}"),
        _ => eprintln!("trailwatch serve: stopped; this run: {counters}"),
    }
    Ok(())
}

/// `serve`'s background tasks by name, each with its own stop token, stopped in the order
/// [`run`] says.
#[derive(Default)]
struct Tasks(Vec<(&'static str, CancellationToken, JoinHandle<()>)>);

impl Tasks {
    fn spawn<F>(&mut self, name: &'static str, task: impl FnOnce(CancellationToken) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(task(stop.clone()));
        self.0.push((name, stop, handle));
    }

    /// Stops every task called `name` and waits for them to end.
    async fn stop(&mut self, name: &str) {
        let (these, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.0).into_iter().partition(|(n, ..)| *n == name);
        self.0 = rest;
        for (_, stop, _) in &these {
            stop.cancel();
        }
        for (name, _, task) in these {
            if let Err(e) = task.await {
                tracing::error!(task = name, error = %e, "task failed");
            }
        }
    }
}

/// Cancels `shutdown` on SIGTERM or SIGINT, or (with `idle`) once nothing has happened for
/// that long and no message is in flight.
async fn stop_on_signal(idle: Option<Duration>, consumer: Arc<aws::consumer::Consumer>, shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    let idle_wait = async {
        let Some(idle) = idle else { return std::future::pending().await };
        let mut last = consumer.activity();
        let mut quiet_since = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = consumer.activity();
            if now != last || consumer.in_flight() > 0 {
                last = now;
                quiet_since = tokio::time::Instant::now();
            } else if quiet_since.elapsed() >= idle {
                return;
            }
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
        _ = idle_wait => tracing::info!("idle: exiting"),
    }
    shutdown.cancel();
}
