//! `trailwatch serve --config FILE`: the AWS sources, until SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::{load_config, open_target, pipeline_config, Open};
use crate::cli::ServeArgs;
use crate::output::Format;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args.config)?;
    let store = open_target(&config.store, Open::Create)?;
    let board = Arc::new(aws::StatusBoard::load(store.state()).context("reading the stored integration status")?);
    if config.accounts.is_empty() {
        tracing::warn!("no [[accounts]] configured: nothing to consume");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("aws")
        .build()
        .context("starting the async runtime")?;
    let idle = args.exit_when_idle.map(Duration::from_secs);
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
    let (rules, rule_errors) = crate::detection::load_rules_reporting(&config.detection);
    let site = crate::dashboard::site_info(
        config.accounts.clone(),
        config.aws.clone(),
        &rules,
        &rule_errors,
        Default::default(),
        &config.web,
    );
    let mut site = site;
    site.retention = config.retention.as_ref().map(|r| crate::retention::describe(&r.policy));
    site.forwarders = config.forward.iter().map(|f| f.name.clone()).collect();
    let detection = crate::detection::for_config(&store, &config, rules)?;
    let live = detection.live.clone();
    let web_state = web::WebState::new(store.clone(), site);
    // Accounts configured with import_history_days that have none yet: pulled beside ingest.
    super::import::import_new_accounts(&config, store.clone());
    // Stopped (and joined) when it goes out of scope at the end of `run`.
    let _retention =
        config.retention.clone().map(|settings| crate::retention::RetentionTask::start(store.clone(), settings));
    let listen = config.web_listen.clone();
    let filter = config.filter.clone();
    let tls = config.web.tls.clone();
    let max_connections = config.web.max_connections;
    let consumer = runtime.block_on(async {
        let listener = crate::dashboard::bind(&listen).await?;
        tracing::info!(address = %listen, "web server listening");
        // Alert delivery runs beside ingest until the process stops; what it has not sent
        // stays in the outbox for the next start.
        // It runs even without sinks: a reload (SIGHUP) may add some.
        let sinks = crate::alerting::sinks(&config).await?;
        let (stop_outbox, outbox_stopped) = tokio::sync::oneshot::channel::<()>();
        let outbox = Arc::new(alert::Outbox::new(store.clone(), sinks, config.detection.public_url.clone()));
        let outbox_task = Some(tokio::spawn(outbox.clone().run(Duration::from_secs(1), async move {
            let _ = outbox_stopped.await;
        })));
        tokio::spawn(crate::reload::on_sighup(crate::reload::Reloadable {
            config_path: args.config.clone(),
            started_with: config.clone(),
            live,
            outbox,
            site: web_state.info.clone(),
        }));
        // Event forwarders: each keeps its own position in the store.
        let (stop_forward, forward_stopped) = tokio::sync::watch::channel(false);
        let forwarders: Vec<_> = config
            .forward
            .iter()
            .map(|spec| {
                let f = alert::forward::Forwarder::new(store.clone(), spec.clone());
                let mut stopped = forward_stopped.clone();
                tokio::spawn(f.run(Duration::from_secs(1), async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }))
            })
            .collect();
        // Integrity validation of every account with a bucket, beside ingest.
        let (stop_integrity, integrity_stopped) = tokio::sync::oneshot::channel::<()>();
        let integrity = config.integrity.clone().map(|settings| {
            let policy = crate::detection::policy(&config.detection, &config.sinks);
            tokio::spawn(aws::integrity::watch(
                config.accounts.clone(),
                config.aws.clone(),
                store.clone(),
                policy,
                settings,
                async move {
                    let _ = integrity_stopped.await;
                },
            ))
        });
        eprintln!("trailwatch serve: dashboard on {}", crate::dashboard::url(&listen, tls.is_some()));
        anyhow::Ok(
            aws::consumer::run(
                config.accounts.clone(),
                config.aws.clone(),
                store.clone(),
                ingest::PipelineSpec {
                    config: pipeline_config(config.workers, config.filter.clone(), config.read_limits),
                    detection: Some(detection),
                },
                config.consumer.clone(),
                board.clone(),
                move |consumer| async move {
                    let (stop_web, web_stopped) = tokio::sync::oneshot::channel::<()>();
                    let mut state = web_state;
                    state.consumer = Some(consumer.clone());
                    state.filter = filter;
                    state.sns = Some(sns);
                    let web = tokio::spawn(async move {
                        crate::dashboard::serve(listener, state, tls.as_ref(), max_connections, async move {
                            let _ = web_stopped.await;
                        })
                        .await
                    });
                    shutdown_signal(idle, consumer).await;
                    let _ = stop_web.send(());
                    match web.await {
                        Ok(Err(e)) => tracing::error!(error = %e, "web server failed"),
                        Err(e) => tracing::error!(error = %e, "web server panicked"),
                        Ok(Ok(())) => {}
                    }
                },
            )
            .await?,
        )
        .map(|consumer| (consumer, outbox_task, stop_outbox, integrity, stop_integrity, forwarders, stop_forward))
    })?;
    let (consumer, outbox, stop_outbox, integrity, stop_integrity, forwarders, stop_forward) = consumer;
    let _ = stop_forward.send(true);
    for f in forwarders {
        let _ = runtime.block_on(f);
    }
    let _ = stop_integrity.send(());
    if let Some(integrity) = integrity {
        let _ = runtime.block_on(integrity);
    }
    let _ = stop_outbox.send(());
    if let Some(outbox) = outbox {
        let _ = runtime.block_on(outbox);
    }
    runtime.shutdown_timeout(Duration::from_secs(5));
    let counters = consumer.counters.to_json();
    match args.format {
        Format::Json | Format::Jsonl => println!("{counters}"),
        _ => eprintln!("trailwatch serve: stopped; this run: {counters}"),
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT, or (with `idle`) once nothing has happened for that long
/// and no message is in flight.
async fn shutdown_signal(idle: Option<Duration>, consumer: Arc<aws::consumer::Consumer>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
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
}
