//! Charts as SVG, rendered here: no chart library, no script, nothing inline the
//! Content-Security-Policy would refuse (sizes are SVG attributes, colours are classes).

use maud::{html, Markup};
use store::HistogramPoint;

/// Series beyond this many are summed into "other".
const MAX_SERIES: usize = 7;

/// A stacked bar chart of `points` (buckets of `bucket_ms` from `start` to `end`), one
/// colour per series, with a legend. `label` names a series for people.
pub fn stacked_bars(
    points: &[HistogramPoint],
    start: i64,
    end: i64,
    bucket_ms: i64,
    label: impl Fn(&str) -> String,
) -> Markup {
    let buckets = (((end - start) / bucket_ms).max(1) as usize).min(500);
    // Series ordered by their total, the smallest folded into "other".
    let mut totals: Vec<(String, u64)> = Vec::new();
    for p in points {
        match totals.iter_mut().find(|(s, _)| *s == p.series) {
            Some((_, n)) => *n += p.events,
            None => totals.push((p.series.clone(), p.events)),
        }
    }
    totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let folded = totals.len() > MAX_SERIES;
    let kept: Vec<String> =
        totals.iter().take(if folded { MAX_SERIES - 1 } else { MAX_SERIES }).map(|t| t.0.clone()).collect();
    let series_count = kept.len() + usize::from(folded);
    let mut grid = vec![vec![0u64; series_count]; buckets];
    for p in points {
        if p.start < start || p.start >= start + buckets as i64 * bucket_ms {
            continue;
        }
        let b = ((p.start - start) / bucket_ms) as usize;
        let s = kept.iter().position(|k| *k == p.series).unwrap_or(series_count - 1);
        grid[b][s] += p.events;
    }
    let max = grid.iter().map(|b| b.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let (step, scale_max) = count_scale(max);
    let (width, height, left, bottom, top) = (900.0, 220.0, 48.0, 22.0, 8.0);
    let plot_w = width - left - 8.0;
    let plot_h = height - bottom - top;
    let slot = plot_w / buckets as f64;
    let bar_w = (slot * 0.78).max(1.0);
    let label_every = (buckets / 12).max(1);
    let names: Vec<String> = kept.iter().map(|s| label(s)).chain(folded.then(|| "other".to_owned())).collect();
    html! {
        svg.chart viewBox={ "0 0 " (width) " " (height) } role="img" aria-label="events per bucket" {
            g.grid {
                @for i in 0..=scale_max / step {
                    @let y = top + plot_h - plot_h * (i * step) as f64 / scale_max as f64;
                    line x1=(left) x2=(width - 8.0) y1=(fmt(y)) y2=(fmt(y)) {}
                    text x=(left - 6.0) y=(fmt(y + 4.0)) text-anchor="end" { (short_number(i * step)) }
                }
            }
            @for (b, stack) in grid.iter().enumerate() {
                @let x = left + slot * b as f64 + (slot - bar_w) / 2.0;
                @let bucket_start = start + b as i64 * bucket_ms;
                g {
                    title { (bucket_title(bucket_start, bucket_ms)) " — " (stack.iter().sum::<u64>()) " events" }
                    @for (s, y, h) in stack_segments(stack, top + plot_h, plot_h, scale_max) {
                        rect class={ "s" (s) } x=(fmt(x)) y=(fmt(y)) width=(fmt(bar_w)) height=(fmt(h)) {
                            title { (bucket_title(bucket_start, bucket_ms)) " — " (names[s]) ": " (stack[s]) }
                        }
                    }
                }
                @if b % label_every == 0 {
                    text x=(fmt(x + bar_w / 2.0)) y=(height - 6.0) text-anchor="middle" { (axis_label(bucket_start, bucket_ms)) }
                }
            }
        }
        div.legend {
            @for (i, name) in names.iter().enumerate() {
                span { span class={ "swatch s" (i) } {} (name) }
            }
        }
    }
}

/// A horizontal bar for a table cell, `value` of `max`.
pub fn bar(value: u64, max: u64, bad: bool) -> Markup {
    let pct = if max == 0 { 0.0 } else { value as f64 * 100.0 / max as f64 };
    html! {
        svg.bar viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
            rect.track x="0" y="0" width="100" height="10" rx="2" {}
            rect class={ "fill" @if bad { " bad" } } x="0" y="0" width=(fmt(pct.max(0.8))) height="10" rx="2" {}
        }
    }
}

/// (series, top y, height) of each non-empty segment of a stack, bottom up from `base`.
fn stack_segments(stack: &[u64], base: f64, plot_h: f64, scale_max: u64) -> Vec<(usize, f64, f64)> {
    let mut y = base;
    let mut out = Vec::new();
    for (s, &n) in stack.iter().enumerate() {
        if n > 0 {
            let h = (plot_h * n as f64 / scale_max as f64).max(0.5);
            y -= h;
            out.push((s, y, h));
        }
    }
    out
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// The axis of a count chart whose largest bar is `max`: (tick step, top of the scale).
/// Counts are whole numbers, so every tick is one (1, 2 or 5 times a power of ten apart) and
/// sits exactly at its value: about four ticks, the top the first tick at or above `max`.
fn count_scale(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let step = nice_ceiling(max.div_ceil(4));
    (step, max.div_ceil(step) * step)
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: u64) -> u64 {
    let mut p = 1u64;
    loop {
        for m in [1, 2, 5] {
            if m * p >= v {
                return m * p;
            }
        }
        p = p.saturating_mul(10);
    }
}

fn short_number(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{}k", n / 1000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn bucket_title(start: i64, bucket_ms: i64) -> String {
    let t = model::timefmt::format_millis(start);
    if bucket_ms >= 86_400_000 {
        t[..10].to_owned()
    } else {
        format!("{} {} UTC", &t[..10], &t[11..16])
    }
}

fn axis_label(start: i64, bucket_ms: i64) -> String {
    let t = model::timefmt::format_millis(start);
    // Days are labelled by date, and so is midnight on an hourly axis.
    if bucket_ms >= 86_400_000 || start.rem_euclid(86_400_000) == 0 {
        t[5..10].to_owned()
    } else {
        t[11..16].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_fold_small_series_and_escape_labels() {
        let points: Vec<HistogramPoint> = (0..10)
            .map(|i| HistogramPoint { start: (i % 3) * 3_600_000, series: format!("<s{i}>"), events: 10 + i as u64 })
            .collect();
        let svg = stacked_bars(&points, 0, 3 * 3_600_000, 3_600_000, str::to_owned).into_string();
        assert!(svg.contains("other"), "10 series fold into 6 and other");
        assert!(!svg.contains("<s1>") && svg.contains("&lt;s9&gt;"), "labels escaped");
        // Six kept series, one rect each; s0..s3 fold into "other": s0 and s3 share bucket 0,
        // so "other" has one rect in each of the three buckets.
        assert_eq!(svg.matches("<rect").count(), 9, "one rect per (bucket, series) with events");
    }

    #[test]
    fn count_ticks_are_whole_numbers_at_their_values() {
        assert_eq!(count_scale(4), (1, 4), "a 4-event bar reaches the tick labelled 4");
        assert_eq!(count_scale(1), (1, 1));
        assert_eq!(count_scale(7), (2, 8));
        assert_eq!(count_scale(130), (50, 150));
        assert_eq!(count_scale(4001), (2000, 6000));
        for max in 1..5000u64 {
            let (step, top) = count_scale(max);
            assert!(top >= max && top / step <= 5 && top % step == 0, "{max}: {step} {top}");
        }
        // Rendered: the labels are the tick values, and the 4-event bar's top is the "4" line.
        let points = [HistogramPoint { start: 0, series: "a".into(), events: 4 }];
        let svg = stacked_bars(&points, 0, 86_400_000, 86_400_000, str::to_owned).into_string();
        let labels: Vec<&str> =
            svg.split("text-anchor=\"end\">").skip(1).map(|s| s.split('<').next().unwrap()).collect();
        assert_eq!(labels, ["0", "1", "2", "3", "4"]);
        let top_line = svg.split("<line").nth(5).unwrap();
        let bar = svg.split("<rect").nth(1).unwrap();
        let attr = |s: &str, a: &str| s.split(&format!("{a}=\"")).nth(1).unwrap().split('"').next().unwrap().to_owned();
        assert_eq!(attr(top_line, "y1"), attr(bar, "y"), "the bar ends on the top tick");
    }

    #[test]
    fn scale_is_round() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(130), 200);
        assert_eq!(nice_ceiling(4001), 5000);
    }
}
