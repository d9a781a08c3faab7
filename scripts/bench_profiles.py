#!/usr/bin/env python3
"""Ingest at any cardinality: every figure a ratio against a baseline measured in the same run.

For each simulator profile (classic, realistic, high-cardinality), on the same files:
  * `trailwatch bench ingest`: full ingest / gunzip+parse alone (target >= 0.5) and
    with the built-in packs / without (target >= 0.85), in one process;
  * whole processes, interleaved rounds: `trailwatch ingest` into a fresh store against the
    naive Python loader (scripts/naive_loader.py) into a fresh SQLite file (target >= 5x,
    aim 10x), with each process's peak RSS and the store's bytes per event.
Medians of the rounds are reported; the per-round ratios show the noise.

    python3 scripts/bench_profiles.py WORKDIR [--events N] [--rounds R] [--bin PATH]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PROFILES = ["classic", "realistic", "high-cardinality"]


def timed(cmd):
    """Runs cmd as a whole process; returns (wall seconds, its peak RSS in MB, stdout).
    Its stderr goes to a temporary file, so a chatty process cannot block on a full pipe."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
        out = p.stdout.read()
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            errors.seek(0)
            sys.exit(f"{' '.join(cmd)} failed: {errors.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def store_bytes(db):
    """The store's bytes on disk: the database and its write-ahead log."""
    return sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/trailwatch")
    ap.add_argument("--profiles", default=",".join(PROFILES))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    naive = os.path.join(os.path.dirname(os.path.abspath(__file__)), "naive_loader.py")
    rows = []
    for profile in a.profiles.split(","):
        tree = os.path.join(a.work, f"tree-{profile}-{a.events}")
        if not os.path.exists(os.path.join(tree, "manifest.json")):
            shutil.rmtree(tree, ignore_errors=True)
            subprocess.run([a.bin, "simulate", "--out", tree, "--profile", profile, "--events", str(a.events),
                            "--hours", "24", "--accounts", "5", "--seed", "3"], check=True, stdout=subprocess.DEVNULL)
        r = {"profile": profile, "parse": [], "ingest": [], "rules": [], "tw": [], "py": [], "tw_rss": [],
             "py_rss": [], "bytes": []}
        for _ in range(a.rounds):
            _, _, out = timed([a.bin, "bench", "ingest", "--local", tree, "--runs", "1", "--format", "json"])
            b = json.loads(out)
            events = b["events"]
            r["parse"].append(b["parse"]["events_per_sec"])
            r["ingest"].append(b["ingest"]["events_per_sec"])
            r["rules"].append(b["rules_ratio"])
            db = os.path.join(a.work, "tw.db")
            for s in ("", "-wal", "-shm"):
                if os.path.exists(db + s):
                    os.remove(db + s)
            wall, rss, _ = timed([a.bin, "ingest", "--local", tree, "--db", db, "--format", "json"])
            r["tw"].append(events / wall)
            r["tw_rss"].append(rss)
            r["bytes"].append(store_bytes(db) / events)
            pydb = os.path.join(a.work, "naive.db")
            if os.path.exists(pydb):
                os.remove(pydb)
            wall, rss, _ = timed([sys.executable, naive, tree, pydb])
            r["py"].append(events / wall)
            r["py_rss"].append(rss)
        r["events"] = events
        rows.append(r)
        ratio = [i / p for i, p in zip(r["ingest"], r["parse"])]
        whole = [t / p for t, p in zip(r["tw"], r["py"])]
        print(f"{profile}: ingest/parse per round {', '.join(f'{x:.2f}' for x in ratio)}; "
              f"trailwatch/naive per round {', '.join(f'{x:.1f}' for x in whole)}", file=sys.stderr)
    med = statistics.median
    print(f"{'profile':<17} {'events':>8} {'parse/s':>9} {'ingest/s':>9} {'ratio':>6} {'rules':>6} "
          f"{'process/s':>10} {'naive/s':>8} {'x naive':>7} {'RSS MB':>7} {'B/event':>8}")
    for r in rows:
        ratio = med(i / p for i, p in zip(r["ingest"], r["parse"]))
        whole = med(t / p for t, p in zip(r["tw"], r["py"]))
        print(f"{r['profile']:<17} {r['events']:>8} {med(r['parse']):>9,.0f} {med(r['ingest']):>9,.0f} {ratio:>6.2f} "
              f"{med(r['rules']):>6.2f} {med(r['tw']):>10,.0f} {med(r['py']):>8,.0f} {whole:>7.1f} "
              f"{max(r['tw_rss']):>7.0f} {med(r['bytes']):>8.0f}")
    print("targets: ratio >= 0.5, rules >= 0.85, x naive >= 5 (aim 10)")


if __name__ == "__main__":
    main()
