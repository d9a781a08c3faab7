//! Which messages may be deleted, and when: the consumer's in-flight bookkeeping as plain
//! data, so that the rule "delete only what is durable" is tested without a queue.
//!
//! A message is tracked when it is received, with one pending unit for its handler. Every
//! object the handler hands to the pipeline adds one ([`InFlight::expect_object`]). Each
//! unit completes once: the handler when it has dispatched the message, an object when the
//! pipeline settles it (committed or quarantined: durable either way) or when it failed
//! before reaching the pipeline. When nothing is pending, the message is finished:
//! acknowledged (deleted, or the push answered 200) only if nothing went wrong, otherwise
//! left for a retry with every problem it had.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Why a message, or one of its objects, was not handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A stable code (`object_read_failed`, `foreign_account`, `malformed_json`, …).
    pub reason: String,
    pub detail: String,
}

impl Problem {
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem { reason: reason.into(), detail: detail.into() }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// What became of a finished message.
#[derive(Debug, PartialEq, Eq)]
pub enum Finished<M> {
    /// Everything it named is durable: delete it.
    Acknowledge(M),
    /// Something failed: leave it for a retry (the problems in the order they came).
    Retry(M, Vec<Problem>),
}

struct Entry<M> {
    message: M,
    received: Instant,
    /// Objects not yet settled, plus one while the handler runs.
    pending: usize,
    problems: Vec<Problem>,
}

/// Messages being handled, by sequence number.
pub struct InFlight<M> {
    entries: HashMap<u64, Entry<M>>,
}

impl<M> Default for InFlight<M> {
    fn default() -> Self {
        InFlight { entries: HashMap::new() }
    }
}

impl<M> InFlight<M> {
    /// A message received now; its handler is pending.
    pub fn track(&mut self, seq: u64, message: M, received: Instant) {
        self.entries.insert(seq, Entry { message, received, pending: 1, problems: Vec::new() });
    }

    /// The handler of `seq` hands one more object to the pipeline.
    pub fn expect_object(&mut self, seq: u64) {
        if let Some(e) = self.entries.get_mut(&seq) {
            e.pending += 1;
        }
    }

    /// One unit of `seq` is done (`problem` if it failed). Returns the message once nothing
    /// of it is pending; `None` before, or when the message was released at shutdown.
    pub fn complete(&mut self, seq: u64, problem: Option<Problem>) -> Option<Finished<M>> {
        let e = self.entries.get_mut(&seq)?;
        e.problems.extend(problem);
        e.pending -= 1;
        if e.pending > 0 {
            return None;
        }
        let e = self.entries.remove(&seq).expect("present above");
        Some(if e.problems.is_empty() {
            Finished::Acknowledge(e.message)
        } else {
            Finished::Retry(e.message, e.problems)
        })
    }

    /// Shutdown: every message still in flight, to be released to its queue; what completes
    /// later for them is ignored (their objects, if committed, are in the ledger when the
    /// messages come back).
    pub fn release_all(&mut self) -> Vec<M> {
        self.entries.drain().map(|(_, e)| e.message).collect()
    }

    /// Messages received at least `age` before `now` (their visibility needs renewing).
    pub fn older_than(&self, age: Duration, now: Instant) -> impl Iterator<Item = &M> {
        self.entries.values().filter(move |e| now.saturating_duration_since(e.received) >= age).map(|e| &e.message)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(reason: &str) -> Option<Problem> {
        Some(Problem::new(reason, "x"))
    }

    #[test]
    fn a_message_is_acknowledged_only_when_every_object_is_durable() {
        let mut f = InFlight::default();
        f.track(1, "m1", Instant::now());
        f.expect_object(1);
        f.expect_object(1);
        assert_eq!(f.complete(1, None), None, "the handler is done, two objects are not");
        assert_eq!(f.complete(1, None), None, "one object settled");
        assert_eq!(f.complete(1, None), Some(Finished::Acknowledge("m1")));
        assert!(f.is_empty());
    }

    #[test]
    fn a_message_without_objects_is_finished_by_its_handler() {
        let mut f = InFlight::default();
        f.track(7, "validation", Instant::now());
        assert_eq!(f.complete(7, None), Some(Finished::Acknowledge("validation")));
        f.track(8, "malformed", Instant::now());
        assert_eq!(
            f.complete(8, failed("malformed_json")),
            Some(Finished::Retry("malformed", vec![Problem::new("malformed_json", "x")]))
        );
    }

    #[test]
    fn any_failed_object_keeps_the_message_and_every_problem_is_kept() {
        let mut f = InFlight::default();
        f.track(1, "m", Instant::now());
        f.expect_object(1);
        f.expect_object(1);
        f.expect_object(1);
        assert_eq!(f.complete(1, failed("object_read_failed")), None);
        assert_eq!(f.complete(1, None), None);
        assert_eq!(f.complete(1, None), None);
        match f.complete(1, failed("pipeline_stopped")) {
            Some(Finished::Retry("m", problems)) => {
                let reasons: Vec<&str> = problems.iter().map(|p| p.reason.as_str()).collect();
                assert_eq!(reasons, ["object_read_failed", "pipeline_stopped"]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_are_independent_and_released_ones_stay_released() {
        let mut f = InFlight::default();
        let now = Instant::now();
        f.track(1, "a", now);
        f.track(2, "b", now + Duration::from_secs(10));
        f.expect_object(1);
        assert_eq!(f.complete(2, None), Some(Finished::Acknowledge("b")));
        let old: Vec<&&str> = f.older_than(Duration::from_secs(5), now + Duration::from_secs(6)).collect();
        assert_eq!(old, [&"a"]);
        assert_eq!(f.release_all(), vec!["a"]);
        // The handler and the object of a released message finish later: nothing happens.
        assert_eq!(f.complete(1, None), None);
        assert_eq!(f.complete(1, None), None);
        assert_eq!(f.len(), 0);
    }
}
