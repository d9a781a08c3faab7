#!/usr/bin/env python3
"""Does ingest keep its speed as the store grows? One store, fed a trail chunk by chunk.

Each chunk is the next `--hours` (default a day) of one simulated trail (same seed: the same
people, agents and addresses come back chunk after chunk, as in a real trail) of `--events`
events; it is
written, ingested into the same store by a whole `trailwatch ingest` process, and deleted
(so disk holds one chunk at a time). The table gives each chunk's rate, its ratio to the
first chunk's (the empty-store rate, same run), the process's peak RSS and the store's
bytes per event, then the mean ratio per 10 M events stored. Target: every ratio >= 0.8.

    python3 scripts/bench_growth.py WORKDIR [--chunks 10] [--events 1000000] [--hours 24]
        [--profile realistic] [--accounts 20] [--regions us-east-1,...] [--bin PATH]

100 M events over 7 days (the one-machine target), ~40 GB of store:

    python3 scripts/bench_growth.py /big/dir --chunks 84 --events 1190476 --hours 2
    trailwatch bench store --db /big/dir/growth.db

With --against OLD_BIN each chunk is also ingested by OLD_BIN into a second store
(growth-old.db), in alternating order, and each row adds the rate of --bin over OLD_BIN's
on the same chunk at the same store size: what a change costs as the store grows.
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess

from bench_profiles import store_bytes, timed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("--chunks", type=int, default=10)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--profile", default="realistic")
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--regions", default="us-east-1,eu-west-1,us-west-2,ap-southeast-2")
    ap.add_argument("--bin", default="target/release/trailwatch")
    ap.add_argument("--hours", type=int, default=24, help="hours of trail per chunk")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--against", help="a baseline build, measured on the same chunks into its own store")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    db = os.path.join(a.work, "growth.db")
    old_db = os.path.join(a.work, "growth-old.db")
    for path in (db, old_db):
        for s in ("", "-wal", "-shm", "-idfilter"):
            if os.path.exists(path + s):
                os.remove(path + s)
    versus = []
    start = datetime.datetime(2026, 1, 5)
    rows, stored = [], 0
    for i in range(a.chunks):
        tree = os.path.join(a.work, "chunk")
        shutil.rmtree(tree, ignore_errors=True)
        day = (start + datetime.timedelta(hours=i * a.hours)).isoformat() + "Z"
        subprocess.run([a.bin, "simulate", "--out", tree, "--profile", a.profile, "--events", str(a.events),
                        "--hours", str(a.hours), "--start", day, "--seed", str(a.seed), "--accounts", str(a.accounts),
                        "--regions", a.regions], check=True, stdout=subprocess.DEVNULL)
        ingest_new = lambda: timed([a.bin, "ingest", "--local", tree, "--db", db, "--format", "json"])
        ingest_old = lambda: timed([a.against, "ingest", "--local", tree, "--db", old_db, "--format", "json"])
        if not a.against:
            wall, rss, out = ingest_new()
        elif i % 2 == 0:
            (wall, rss, out), (old_wall, _, _) = ingest_new(), ingest_old()
        else:
            (old_wall, _, _), (wall, rss, out) = ingest_old(), ingest_new()
        if a.against:
            versus.append(old_wall / wall)
        report = json.loads(out)
        stored += report["new"]
        size = store_bytes(db)
        rows.append((i + 1, stored, report["records"] / wall, rss, size / stored))
        first = rows[0][2]
        print(f"chunk {i + 1:>3}: store {stored:>12,} events  {report['records'] / wall:>9,.0f} events/s  "
              f"ratio {report['records'] / wall / first:4.2f}  RSS {rss:>6.0f} MB  {size / stored:5.0f} B/event"
              + (f"  vs --against {versus[-1]:4.2f}" if versus else ""),
              flush=True)
        shutil.rmtree(tree, ignore_errors=True)
    # Per 10 M events stored (or per chunk when there are fewer): the mean ratio.
    first = rows[0][2]
    group = max(1, 10_000_000 // max(a.events, 1))
    for g in range(0, len(rows), group):
        part = rows[g:g + group]
        print(f"events {rows[g - 1][1] if g else 0:>12,} .. {part[-1][1]:>12,}: mean ratio "
              f"{sum(r[2] for r in part) / len(part) / first:4.2f}, max RSS {max(r[3] for r in part):.0f} MB")
    if versus:
        old_size = store_bytes(old_db)
        print(f"--bin over --against, per chunk: {' '.join(f'{v:.2f}' for v in versus)}; "
              f"mean {sum(versus) / len(versus):.2f}; store {store_bytes(db) / old_size:.3f}x the size")
    worst = min(r[2] for r in rows[1:]) / rows[0][2] if len(rows) > 1 else 1.0
    print(f"worst chunk / first chunk: {worst:.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
