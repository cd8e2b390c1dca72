"""Queries on a cluster of workers: the query benchmark's queries on one server alone (pinned to one
core, then on both), on one worker and on two workers (`traillake worker`, each pinned to one core
with taskset), and DuckDB over the same Parquet files, in the same run.

It writes N synthetic events over D days as gzip trail files (benches/synthetic.py; `--workdir`
keeps them), stores them with `traillake load`, then starts the server four ways on the same root:
alone on one core, alone on two, with one worker, with two. Each query runs a few times each way (StartQuery,
DescribeQuery until FINISHED, every GetQueryResults page over one raw HTTP connection); the medians
are printed with the speed-up of two workers over one, of the cluster over the server alone, and
the ratio to DuckDB. Every answer's rows are checked equal to DuckDB's (the number of rows for the
LIMIT 10 query). The server keeps a query whose scans each read less than --worker-task-bytes of
files (256 MiB by default) for itself, so the small queries measure what the rule costs them.

Usage: python benches/cluster.py --binary target/release/traillake [--events 10000000] [--days 10] [--runs 3]
"""

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from queries import RawClient, Server, geomean, query_templates, run_duckdb, run_http, trail_files  # noqa: E402


class Worker:
    """A release `traillake worker` on the root, pinned to one core."""

    def __init__(self, binary, root, core):
        self.process = subprocess.Popen(
            ["taskset", "-c", str(core), binary, "worker", "--root", str(root), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the worker did not start: {line!r}")
        self.address = line.split("listening on ", 1)[1].split()[0]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def queries_of(store, end, days, events):
    """(name, our SQL, DuckDB's SQL, whether rows are compared whole): the query benchmark's, and
    a distinct count per source (a shuffle of many groups between the stages)."""
    templates = query_templates(end, days, events) + [
        ("distinct users per event source",
         "SELECT eventSource, count(DISTINCT userIdentity.arn) AS users FROM {t} GROUP BY eventSource ORDER BY eventSource", True),
    ]
    return [(name, sql.format(t=store, ts=""), sql.format(t="events", ts="TIMESTAMP "), whole) for name, sql, whole in templates]


def measure(raw, sql, runs):
    """Runs `sql` once to warm, then `runs` times; returns (median seconds, rows)."""
    run_http(raw, sql)
    times, rows = [], None
    for _ in range(runs):
        seconds, _, rows, _ = run_http(raw, sql)
        times.append(seconds)
    return statistics.median(times), rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default=None, help="reuses the trail files an earlier run wrote there")
    args = parser.parse_args()

    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="traillake-cluster-bench-"))
    files, _, end = trail_files(work, args.events, args.days)

    root = work / "lake"
    if root.exists():
        shutil.rmtree(root)
    server = Server(args.binary, root)
    store = server.client.create_event_data_store(Name="bench", RetentionPeriod=3653, StartIngestion=False)["EventDataStoreArn"].rsplit("/", 1)[1]
    server.stop()
    began = time.perf_counter()
    loaded = subprocess.run([args.binary, "load", "--root", str(root), "--store", "bench", str(files)], capture_output=True, text=True)
    if loaded.returncode != 0:
        sys.exit(f"load failed: {loaded.stdout}{loaded.stderr}")
    parquet = sorted((root / "stores" / store / "table").rglob("*.parquet"))
    store_bytes = sum(p.stat().st_size for p in parquet)
    print(f"load: {args.events:,} events in {time.perf_counter() - began:.1f} s; {len(parquet)} Parquet files, {store_bytes / 1e6:.1f} MB")

    duck = duckdb.connect()
    duck.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{root}/stores/{store}/table/*/*.parquet', hive_partitioning = true)")
    queries = queries_of(store, end, args.days, args.events)
    expected, duck_ms = {}, {}
    for name, _, theirs, _ in queries:
        run_duckdb(duck, theirs)
        times = []
        for _ in range(args.runs):
            seconds, table = run_duckdb(duck, theirs)
            times.append(seconds)
        expected[name], duck_ms[name] = table.num_rows, statistics.median(times) * 1000

    results = {}
    setups = (("alone, 1 core", [], True), ("alone, 2 cores", [], False), ("1 worker", [0], False), ("2 workers", [0, 1], False))
    for setup, cores, pinned in setups:
        workers = [Worker(args.binary, root, core) for core in cores]
        extra = ["--workers", ",".join(w.address for w in workers)] if workers else []
        server = Server(args.binary, root, *extra)
        if pinned:
            subprocess.run(["taskset", "-a", "-cp", "0", str(server.process.pid)], check=True, capture_output=True)
        time.sleep(1)
        try:
            raw = RawClient(server.url)
            for name, ours, _, _ in queries:
                seconds, rows = measure(raw, ours, args.runs)
                if rows != expected[name]:
                    raise RuntimeError(f"{name} ({setup}): {rows} rows, DuckDB {expected[name]}")
                results[(setup, name)] = seconds * 1000
        finally:
            server.stop()
            for worker in workers:
                worker.stop()
        print(f"  measured: {setup}", flush=True)

    print()
    print("| query | alone, 1 core ms | alone, 2 cores ms | 1 worker ms | 2 workers ms | speed-up 1 to 2 workers | "
          "2 workers / alone on 2 cores | DuckDB ms | 2 workers / DuckDB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    speedups = []
    for name, _, _, _ in queries:
        pinned, alone, one, two = (results[(setup, name)] for setup, _, _ in setups)
        speedups.append(one / two)
        print(f"| {name} | {pinned:.0f} | {alone:.0f} | {one:.0f} | {two:.0f} | {one / two:.2f}x | {two / alone:.2f} "
              f"| {duck_ms[name]:.0f} | {two / duck_ms[name]:.2f} |")
    print(f"\nspeed-up of 2 workers over 1, geomean: {geomean(speedups):.2f}x")


if __name__ == "__main__":
    main()
