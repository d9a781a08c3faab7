//! Integration status per account and region, and the verdict users see.
//!
//! The board is updated by the sources as things happen and written to the store every few
//! seconds (and at shutdown), so `trailwatch status` and the dashboard can read it from
//! another process. The region `""` row is the account as a whole: its role, its queue,
//! CloudTrail's validation message.

use std::collections::BTreeMap;
use std::sync::Mutex;

use model::EpochMillis;
use store::{IntegrationStatus, StateStore, StoreError};

/// Live status of every account and region this process serves.
#[derive(Default)]
pub struct StatusBoard {
    rows: Mutex<BTreeMap<(String, String), (IntegrationStatus, bool)>>,
}

impl StatusBoard {
    fn update(&self, account: &str, region: &str, now: EpochMillis, f: impl FnOnce(&mut IntegrationStatus)) {
        let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        let (row, dirty) = rows.entry((account.to_owned(), region.to_owned())).or_insert_with(|| {
            (IntegrationStatus { account: account.to_owned(), region: region.to_owned(), ..Default::default() }, true)
        });
        f(row);
        row.updated_at = now;
        *dirty = true;
    }

    /// Starts from what the store last recorded (counters and times survive restarts).
    pub fn load(store: &dyn StateStore) -> Result<StatusBoard, StoreError> {
        let board = StatusBoard::default();
        let mut rows = board.rows.lock().unwrap_or_else(|p| p.into_inner());
        for s in store.integration_status()? {
            rows.insert((s.account.clone(), s.region.clone()), (s, false));
        }
        drop(rows);
        Ok(board)
    }

    pub fn notification(&self, account: &str, region: &str, now: EpochMillis) {
        self.update(account, region, now, |s| {
            s.last_notification = Some(now);
            s.notifications += 1;
        });
    }

    /// CloudTrail's validation message or S3's test event: the wiring works.
    pub fn validation(&self, account: &str, now: EpochMillis) {
        self.update(account, "", now, |s| {
            s.last_validation = Some(now);
            s.last_notification = Some(now);
            s.notifications += 1;
        });
    }

    pub fn object(&self, account: &str, region: &str, events: u64, newest: Option<EpochMillis>, now: EpochMillis) {
        self.update(account, region, now, |s| {
            s.last_object = Some(now);
            s.objects += 1;
            s.events += events;
            s.newest_event = s.newest_event.max(newest);
        });
    }

    pub fn error(&self, account: &str, region: &str, error: &str, now: EpochMillis) {
        self.update(account, region, now, |s| {
            s.last_error = Some(error.to_owned());
            s.last_error_at = Some(now);
        });
    }

    /// The account's role and queue work again: an account-level error is over.
    pub fn connected(&self, account: &str, now: EpochMillis) {
        self.update(account, "", now, |s| {
            s.last_error = None;
            s.last_error_at = None;
        });
    }

    pub fn snapshot(&self) -> Vec<IntegrationStatus> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner()).values().map(|(s, _)| s.clone()).collect()
    }

    /// Writes the rows changed since the last flush.
    pub fn flush(&self, store: &dyn StateStore) -> Result<(), StoreError> {
        let dirty: Vec<IntegrationStatus> = {
            let mut rows = self.rows.lock().unwrap_or_else(|p| p.into_inner());
            rows.values_mut()
                .filter(|(_, d)| *d)
                .map(|(s, d)| {
                    *d = false;
                    s.clone()
                })
                .collect()
        };
        for s in &dirty {
            store.put_integration_status(s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_flushes_only_changes_and_survives_reload() {
        let store = store::SqliteStore::open_in_memory().unwrap();
        let board = StatusBoard::default();
        board.notification("prod", "us-east-1", 5);
        board.object("prod", "us-east-1", 7, Some(3), 6);
        board.flush(&store).unwrap();
        let again = StatusBoard::load(&store).unwrap();
        again.object("prod", "us-east-1", 1, Some(2), 9);
        let s = &again.snapshot()[0];
        assert_eq!((s.objects, s.events, s.newest_event, s.notifications), (2, 8, Some(3), 1));
    }
}
