//! One registry for the process's metrics.
//!
//! A crate keeps its counters as [`Counter`]s (cheap handles to an atomic; a component's own
//! counters stay its own, so tests and benchmarks read one run's numbers) and registers
//! them, with their names, help and labels, into a [`Registry`]. `serve` registers into
//! [`global()`]; `/metrics` renders it in the Prometheus text format. Gauges computed from
//! the store at scrape time are the web server's business, not this registry's.
//!
//! ```
//! let registry = telemetry::Registry::default();
//! let deleted = telemetry::Counter::default();
//! registry.counter("trailwatch_messages_deleted_total", "SQS messages deleted.", &[], &deleted);
//! deleted.add(2);
//! let mut out = String::new();
//! registry.render(&mut out);
//! assert!(out.contains("trailwatch_messages_deleted_total 2\n"));
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A monotonic count. Clones share the value.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a series reads when rendered.
enum Value {
    /// A counter, multiplied by `scale` (1 for counts; 1e-9 for nanoseconds shown as seconds).
    Counter { counter: Counter, scale: f64 },
    /// A value read at render time (work in progress, say).
    Gauge(Box<dyn Fn() -> f64 + Send + Sync>),
}

struct Series {
    name: &'static str,
    help: &'static str,
    labels: Vec<(&'static str, String)>,
    value: Value,
}

/// Registered series, rendered in the order their names were first registered.
#[derive(Default)]
pub struct Registry {
    series: Mutex<Vec<Series>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("series", &self.lock().len()).finish()
    }
}

/// The registry `serve` registers into and `/metrics` renders.
pub fn global() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(Registry::default)
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Series>> {
        self.series.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers `counter` as the series `name{labels}`, replacing an earlier series of the
    /// same name and labels (a component built again, say on a configuration reload).
    pub fn counter(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)], counter: &Counter) {
        self.add(name, help, labels, Value::Counter { counter: counter.clone(), scale: 1.0 });
    }

    /// Like [`counter`](Self::counter), shown multiplied by `scale` (a count of nanoseconds
    /// as seconds).
    pub fn scaled_counter(&self, name: &'static str, help: &'static str, scale: f64, counter: &Counter) {
        self.add(name, help, &[], Value::Counter { counter: counter.clone(), scale });
    }

    /// Registers a gauge whose value `read` gives at render time.
    pub fn gauge(&self, name: &'static str, help: &'static str, read: impl Fn() -> f64 + Send + Sync + 'static) {
        self.add(name, help, &[], Value::Gauge(Box::new(read)));
    }

    fn add(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)], value: Value) {
        let labels: Vec<(&'static str, String)> = labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        let mut series = self.lock();
        let new = Series { name, help, labels, value };
        match series.iter_mut().find(|s| s.name == new.name && s.labels == new.labels) {
            Some(old) => *old = new,
            None => series.push(new),
        }
    }

    /// Appends every series in the Prometheus text exposition format (each family's `HELP`
    /// and `TYPE` once, before its first series).
    pub fn render(&self, out: &mut String) {
        let series = self.lock();
        let mut names: Vec<&'static str> = Vec::new();
        for s in series.iter() {
            if !names.contains(&s.name) {
                names.push(s.name);
            }
        }
        for name in names {
            let mut family = series.iter().filter(|s| s.name == name).peekable();
            let first = family.peek().expect("a name comes from a series");
            let kind = match first.value {
                Value::Counter { .. } => "counter",
                Value::Gauge(_) => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", first.help);
            for s in family {
                out.push_str(name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in s.labels.iter().enumerate() {
                        let sep = if i == 0 { "" } else { "," };
                        let _ = write!(out, "{sep}{k}=\"{}\"", label_value(v));
                    }
                    out.push('}');
                }
                let _ = match &s.value {
                    Value::Counter { counter, scale } if *scale == 1.0 => writeln!(out, " {}", counter.get()),
                    Value::Counter { counter, scale } => writeln!(out, " {:.6}", counter.get() as f64 * scale),
                    Value::Gauge(read) => writeln!(out, " {}", read()),
                };
            }
        }
    }
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_once_with_escaped_labels() {
        let r = Registry::default();
        let (a, b) = (Counter::default(), Counter::default());
        r.counter("t_total", "Things.", &[("filter", "x\"y\n")], &a);
        r.gauge("g", "A gauge.", || 3.0);
        r.counter("t_total", "Things.", &[("filter", "z")], &b);
        a.add(5);
        b.inc();
        let mut out = String::new();
        r.render(&mut out);
        assert_eq!(
            out,
            "# HELP t_total Things.\n# TYPE t_total counter\nt_total{filter=\"x\\\"y\\n\"} 5\nt_total{filter=\"z\"} 1\n\
             # HELP g A gauge.\n# TYPE g gauge\ng 3\n"
        );
    }

    #[test]
    fn registering_again_replaces_the_series() {
        let r = Registry::default();
        let (old, new) = (Counter::default(), Counter::default());
        old.add(7);
        r.counter("c_total", "C.", &[], &old);
        r.counter("c_total", "C.", &[], &new);
        let mut out = String::new();
        r.render(&mut out);
        assert!(out.ends_with("c_total 0\n"), "{out}");
        let scaled = Counter::default();
        scaled.add(1_500_000_000);
        r.scaled_counter("s_seconds_total", "S.", 1e-9, &scaled);
        let mut out = String::new();
        r.render(&mut out);
        assert!(out.contains("s_seconds_total 1.500000\n"), "{out}");
    }
}
