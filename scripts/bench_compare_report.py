#!/usr/bin/env python3
"""Report of scripts/bench_compare.sh: medians per build and NEW/OLD ratios (events/s: higher
is better; times: lower is better)."""
import json
import statistics
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]


def series(what, bin_, pick):
    return [pick(r["r"]) for r in rows if r["what"] == what and r["bin"] == bin_]


def line(label, what, pick, unit, higher_better):
    old, new = statistics.median(series(what, "old", pick)), statistics.median(series(what, "new", pick))
    ratio = new / old
    better = ratio >= 1 if higher_better else ratio <= 1
    print(f"{label:<44} old {old:>12,.1f} {unit:<9} new {new:>12,.1f} {unit:<9} new/old {ratio:5.3f}"
          f"  ({'not worse' if better else 'worse'}; rounds: {len(series(what, 'old', pick))})")


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
