#!/usr/bin/env python3
"""Report of scripts/bench_compare.sh: medians per build, NEW/OLD ratios (events/s: higher is
better; times: lower is better) and the noise (the largest deviation of a round from its
build's median): a slower ratio inside it is "within noise"."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]


def series(what, bin_, pick):
    return [pick(r["r"]) for r in rows if r["what"] == what and r["bin"] == bin_]


def line(label, what, pick, unit, higher_better):
    olds, news = series(what, "old", pick), series(what, "new", pick)
    old, new = statistics.median(olds), statistics.median(news)
    ratio = new / old
    # The noise: how far one build's rounds stray from their own median (the larger of the two).
    noise = max(max(abs(v / statistics.median(xs) - 1) for v in xs) for xs in (olds, news))
    better = ratio >= 1 if higher_better else ratio <= 1
    verdict = "not worse" if better else ("within noise" if abs(ratio - 1) <= noise else "WORSE")
    print(f"{label:<46} old {old:>11,.2f} {unit:<8} new {new:>11,.2f} {unit:<8} new/old {ratio:5.3f}"
          f"  ±{noise * 100:4.1f}% rounds  {verdict} ({len(olds)} rounds)")


for data in ("tree", "published"):
    what = f"ingest-{data}"
    line(f"bench ingest {data}: full ingest", what, lambda r: r["ingest"]["events_per_sec"], "events/s", True)
    line(f"bench ingest {data}: with rules", what, lambda r: r["ingest_with_rules"]["events_per_sec"], "events/s", True)
    line(f"bench ingest {data}: gunzip+parse", what, lambda r: r["parse"]["events_per_sec"], "events/s", True)
    line(f"bench ingest {data}: ingest/parse", what, lambda r: r["ratio"], "", True)
names = sorted({x["name"] for r in rows if r["what"] == "web" for x in r["r"]["results"]})
total = lambda r: sum(x["p50_ms"] for x in r["results"])
line(f"bench web: sum of p50 over {len(names)} queries", "web", total, "ms", False)
line("rules test: built-in packs, published records", "rules-test", lambda r: r["seconds"], "s", False)
