//! The retention task of `serve`, and the policy in words.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::RetentionSettings;

/// Blocks per slice, and the pause that lets ingest take the write lock between slices.
/// 16 blocks (~16k events) hold the lock ~0.2–0.3 s on this project's 2-core machines.
pub const SLICE_BLOCKS: usize = 16;
pub const SLICE_PAUSE: Duration = Duration::from_millis(50);

/// "400 days; Data 30 days".
pub fn describe(policy: &store::RetentionPolicy) -> String {
    let mut parts = Vec::new();
    match policy.days {
        Some(d) => parts.push(format!("{d} days")),
        None => parts.push("forever".to_string()),
    }
    parts.extend(policy.categories.iter().map(|(c, d)| format!("{c} {d} days")));
    parts.join("; ")
}

/// Applies the policy now and then every `interval` on its own thread, as long as this
/// process leads the retention duty, until dropped.
pub struct RetentionTask {
    stop: Option<Sender<()>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RetentionTask {
    pub fn start(store: store::Store, settings: RetentionSettings) -> RetentionTask {
        let (stop, stopped) = channel::<()>();
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || {
                // The first pass waits a little: a starting process has ingest to catch up on.
                let mut wait = Duration::from_secs(10).min(settings.interval);
                loop {
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    wait = settings.interval;
                    match store.state().lead(store::Duty::Retention) {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "retention: cannot tell whether this worker leads");
                            continue;
                        }
                    }
                    let now = model::timefmt::now_millis();
                    let started = std::time::Instant::now();
                    match store::retention::run_pass(
                        store.events(),
                        &settings.policy,
                        now,
                        SLICE_BLOCKS,
                        SLICE_PAUSE,
                        &|| flag.load(Ordering::Relaxed),
                    ) {
                        Ok(r) => tracing::info!(
                            deleted = r.events_deleted,
                            kept_for_alerts = r.events_kept_for_alerts,
                            dropped = r.units_dropped,
                            rewritten = r.units_rewritten,
                            ledger_rows = r.ledger_rows_deleted,
                            seconds = started.elapsed().as_secs_f64(),
                            "retention pass"
                        ),
                        Err(e) => tracing::error!(error = %e, "retention pass failed; next try at the next interval"),
                    }
                }
            })
            .expect("spawn the retention thread");
        RetentionTask { stop: Some(stop), stopping, thread: Some(thread) }
    }
}

impl Drop for RetentionTask {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_in_words() {
        let p = store::RetentionPolicy { days: Some(400), categories: [("Data".to_string(), 30)].into() };
        assert_eq!(describe(&p), "400 days; Data 30 days");
        let p = store::RetentionPolicy { days: None, categories: [("Data".to_string(), 7)].into() };
        assert_eq!(describe(&p), "forever; Data 7 days");
    }
}
