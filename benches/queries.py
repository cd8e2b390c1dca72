"""End-to-end query benchmark: traillake against DuckDB reading the same Parquet files, in the same run.

It writes N synthetic CloudTrail events over D days as gzip trail files (benches/synthetic.py),
stores them with `traillake load` into a release server's store, and runs seven queries a few
times each. Each query is timed four ways, and the medians printed side by side:

- boto3: StartQuery, DescribeQuery until FINISHED, every GetQueryResults page (what users see);
- HTTP: the same calls over one kept-alive raw HTTP connection, each page parsed with `json.loads`
  (the server without boto3's parsing), DescribeQuery called again at once while the query runs;
- Flight: StartQuery over raw HTTP, then the results read as Arrow through Flight DoGet (pyarrow);
- DuckDB: the same SQL in process over the store's Parquet files (`read_parquet`, hive partitions).

Every query's result through Flight is checked equal to DuckDB's (rows compared as sets; LIMIT 10
by its row count). It also prints the store's bytes against the gzip files it was loaded from (and
the largest columns), the share of the store's bytes each query read (BytesScanned), and for the
LIMIT 10 query the time from StartQuery to DescribeQuery's FINISHED.

Usage: python benches/queries.py --binary target/release/traillake [--events 1000000] [--days 30] [--runs 5]
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import json
import math
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid

import boto3
import botocore.config
import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from imports import peak_rss_mib  # noqa: E402
from synthetic import ACCOUNT, write_trail_files  # noqa: E402

AUTHORIZATION = (f"AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/cloudtrail/aws4_request, "
                 f"SignedHeaders=host, Signature={'0' * 64}")


class Server:
    """A release server on a fresh root, not recording its own calls (they would land in the store)."""

    def __init__(self, binary, root, *extra):
        self.process = subprocess.Popen(
            [binary, "serve", "--root", str(root), "--listen", "127.0.0.1:0", "--maintenance-interval", "1d",
             "--record-activity", "false", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = self.process.stdout.readline()
        self.url = line.split("listening on ", 1)[1].split()[0]
        self.client = boto3.client(
            "cloudtrail", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="bench",
            aws_secret_access_key="bench", config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


class RawClient:
    """The JSON protocol over one kept-alive HTTP connection."""

    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=600)

    def call(self, operation, body):
        headers = {"Content-Type": "application/x-amz-json-1.1", "Authorization": AUTHORIZATION,
                   "X-Amz-Target": f"com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.{operation}"}
        self.connection.request("POST", "/", body=json.dumps(body), headers=headers)
        response = self.connection.getresponse()
        payload = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{operation}: {response.status} {payload}")
        return payload

    def start_and_wait(self, statement):
        """Returns (QueryId, DescribeQuery's answer once the query ended, seconds from StartQuery to it)."""
        began = time.perf_counter()
        query_id = self.call("StartQuery", {"QueryStatement": statement})["QueryId"]
        while (described := self.call("DescribeQuery", {"QueryId": query_id}))["QueryStatus"] in ("QUEUED", "RUNNING"):
            pass
        if described["QueryStatus"] != "FINISHED":
            raise RuntimeError(f"{statement}: {described}")
        return query_id, described, time.perf_counter() - began


def run_boto3(client, statement):
    """Returns seconds from StartQuery to the last page read through boto3."""
    began = time.perf_counter()
    query_id = client.start_query(QueryStatement=statement)["QueryId"]
    while (described := client.describe_query(QueryId=query_id))["QueryStatus"] in ("QUEUED", "RUNNING"):
        time.sleep(0.002)
    if described["QueryStatus"] != "FINISHED":
        raise RuntimeError(f"{statement}: {described}")
    token = None
    while True:
        page = client.get_query_results(QueryId=query_id, MaxQueryResults=1000, **({"NextToken": token} if token else {}))
        token = page.get("NextToken")
        if not token:
            return time.perf_counter() - began


def run_http(raw, statement):
    """Returns (seconds to the last page over raw HTTP, seconds to FINISHED, rows, statistics)."""
    began = time.perf_counter()
    query_id, described, finished = raw.start_and_wait(statement)
    rows, token = 0, None
    while True:
        page = raw.call("GetQueryResults", {"QueryId": query_id, "MaxQueryResults": 1000, **({"NextToken": token} if token else {})})
        rows += len(page["QueryResultRows"])
        token = page.get("NextToken")
        if not token:
            return time.perf_counter() - began, finished, rows, described["QueryStatistics"]


def run_flight(raw, flight_client, statement):
    """Returns (seconds from StartQuery to the whole result as Arrow through Flight, the table)."""
    began = time.perf_counter()
    query_id = raw.call("StartQuery", {"QueryStatement": statement})["QueryId"]
    table = flight_client.do_get(flight.Ticket(query_id.encode())).read_all()
    return time.perf_counter() - began, table


def run_duckdb(connection, statement):
    began = time.perf_counter()
    table = connection.sql(statement).to_arrow_table()
    return time.perf_counter() - began, table


def comparable(value):
    """A value with its timestamps as UTC text (DuckDB names the zone its own way)."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).isoformat()
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [comparable(item) for item in value]
    return value


def comparable_rows(table, columns):
    """The table's rows over `columns` (names lowercased) as a sorted list of their reprs."""
    names = [name.lower() for name in table.column_names]
    picked = [table.column(names.index(name)).to_pylist() for name in columns]
    return sorted(repr(comparable(row)) for row in zip(*picked))


def check_event_json(name, table):
    """Raises unless each row's eventjson is a record (no reference left in it) with the row's
    eventID, and eventjsonchecksum its base64 SHA-256."""
    names = [n.lower() for n in table.column_names]
    ids, texts, sums = (table.column(names.index(n)).to_pylist() for n in ("eventid", "eventjson", "eventjsonchecksum"))
    for event_id, text, checksum in zip(ids, texts, sums):
        if "\x01" in text or json.loads(text)["eventID"] != event_id:
            raise RuntimeError(f"{name}: eventjson of {event_id} is not its record: {text[:200]}")
        if checksum != base64.b64encode(hashlib.sha256(text.encode()).digest()).decode():
            raise RuntimeError(f"{name}: eventjsonchecksum of {event_id} is not its eventjson's")


def check_equal(name, ours, theirs, whole):
    """Raises unless Flight's table and DuckDB's have the same rows (over the columns both name).
    DuckDB reads `eventjson` as the store keeps it (the values its columns hold left out) and no
    `eventjsonchecksum`, so those two are checked on their own."""
    if ours.num_rows != theirs.num_rows:
        raise RuntimeError(f"{name}: traillake returned {ours.num_rows} rows, DuckDB {theirs.num_rows}")
    if not whole:
        return
    their_names = {n.lower() for n in theirs.column_names} - {"eventjson", "eventjsonchecksum"}
    columns = [n.lower() for n in ours.column_names if n.lower() in their_names]
    if "eventjson" in [n.lower() for n in ours.column_names]:
        check_event_json(name, ours)
    if comparable_rows(ours, columns) != comparable_rows(theirs, columns):
        raise RuntimeError(f"{name}: traillake's rows differ from DuckDB's over {columns}")


def storage_report(parquet, gzip_bytes, events):
    """Prints the store's bytes against the gzip trail files, and its largest columns."""
    store_bytes = sum(p.stat().st_size for p in parquet)
    columns = {}
    for path in parquet:
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                top = chunk.path_in_schema.split(".")[0]
                columns[top] = columns.get(top, 0) + chunk.total_compressed_size
    print(f"store: {len(parquet)} Parquet files, {store_bytes / 1e6:.1f} MB, {store_bytes / events:.1f} bytes an event; "
          f"the gzip trail files: {gzip_bytes / 1e6:.1f} MB, {gzip_bytes / events:.1f} bytes an event; "
          f"store / gzip {store_bytes / gzip_bytes:.2f}")
    largest = sorted(columns.items(), key=lambda item: -item[1])[:8]
    print("largest columns (bytes an event): " + ", ".join(f"{name} {size / events:.1f}" for name, size in largest))
    return store_bytes


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def query_templates(end, days, events):
    """The benchmark's queries over events ending at `end`: (name, SQL with {t} for the table and
    {ts} before timestamp literals, whether the rows are compared whole)."""
    # A whole hour in the middle of the events, the same in every run.
    window_start = (end - datetime.timedelta(hours=days * 12)).replace(minute=0, second=0)
    window = (window_start.strftime("%Y-%m-%d %H:%M:%S"), (window_start + datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))
    probe_id = str(uuid.UUID(int=events // 2))
    # (name, SQL, whether the rows are compared whole: LIMIT 10 returns any 10 rows)
    return [
        ("full-scan GROUP BY eventName",
         "SELECT eventName, count(*) AS n FROM {t} GROUP BY eventName ORDER BY n DESC", True),
        ("1-hour window SELECT *",
         "SELECT * FROM {t} WHERE eventTime >= {ts}'%s' AND eventTime < {ts}'%s'" % window, True),
        ("point lookup by eventID",
         f"SELECT * FROM {{t}} WHERE eventID = '{probe_id}'", True),
        ("top-10 sourceIPAddress among errors",
         "SELECT sourceIPAddress, count(*) AS n FROM {t} WHERE errorCode IS NOT NULL GROUP BY sourceIPAddress "
         "ORDER BY n DESC, sourceIPAddress LIMIT 10", True),
        ("LIKE on userAgent",
         "SELECT count(*) AS n FROM {t} WHERE userAgent LIKE '%Boto3%'", True),
        ("lookup by userIdentity.arn",
         f"SELECT eventTime, eventName FROM {{t}} WHERE userIdentity.arn = 'arn:aws:iam::{ACCOUNT}:user/u123'", True),
        ("SELECT ... LIMIT 10",
         "SELECT eventTime, eventName, sourceIPAddress FROM {t} LIMIT 10", False),
    ]


def trail_files(work, events, days):
    """Writes `events` synthetic events over `days` days ending last midnight as gzip trail files
    under `work`, unless an earlier run in the same folder did; returns (their folder, their bytes,
    the end of the events)."""
    # Midnight, so that every run lays the events out against the same times of day.
    end = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=1)
    files = work / "input"
    made = work / f"input-{events}-{days}-{end:%Y%m%d}.json"
    if made.exists():
        return files, json.loads(made.read_text())["bytes"], end
    print(f"generating {events:,} events over {days} days in {work}", flush=True)
    began = time.perf_counter()
    keys, gzip_bytes = write_trail_files(files, events, 1000, end, days)
    made.write_text(json.dumps({"bytes": gzip_bytes}))
    print(f"  {len(keys):,} trail files in {time.perf_counter() - began:.1f} s", flush=True)
    return files, gzip_bytes, end


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", default=None, help="reuses the trail files an earlier run wrote there")
    args = parser.parse_args()

    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="traillake-bench-"))
    files, gzip_bytes, end = trail_files(work, args.events, args.days)

    root = work / "lake"
    if root.exists():
        shutil.rmtree(root)
    server = Server(args.binary, root)
    try:
        client = server.client
        store = client.create_event_data_store(Name="bench", RetentionPeriod=3653, StartIngestion=False)["EventDataStoreArn"].rsplit("/", 1)[1]
        began = time.perf_counter()
        loaded = subprocess.run([args.binary, "load", "--root", str(root), "--store", "bench", str(files)],
                                capture_output=True, text=True)
        load_seconds = time.perf_counter() - began
        if loaded.returncode != 0:
            sys.exit(f"load failed: {loaded.stdout}{loaded.stderr}")
        print(f"load: {args.events:,} events in {load_seconds:.1f} s ({args.events / load_seconds:,.0f} events/s)", flush=True)

        parquet = sorted((root / "stores" / store / "table").rglob("*.parquet"))
        store_bytes = storage_report(parquet, gzip_bytes, args.events)
        duck = duckdb.connect()
        duck.execute(
            f"CREATE VIEW events AS SELECT * FROM read_parquet('{root}/stores/{store}/table/*/*.parquet', hive_partitioning = true)"
        )
        raw = RawClient(server.url)
        flight_client = flight.connect("grpc://" + server.url.removeprefix("http://"))

        queries = query_templates(end, args.days, args.events)
        print()
        print("| query | rows | boto3 ms | HTTP ms | Flight ms | DuckDB ms | HTTP / DuckDB | Flight / DuckDB | "
              "executing ms | StartQuery to FINISHED ms | bytes read / store |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        http_ratios = []
        for name, template, whole in queries:
            ours = template.format(t=store, ts="")
            theirs = template.format(t="events", ts="TIMESTAMP ")
            run_boto3(client, ours)
            run_http(raw, ours)
            _, flight_table = run_flight(raw, flight_client, ours)
            _, duck_table = run_duckdb(duck, theirs)
            check_equal(name, flight_table, duck_table, whole)
            times = {"boto3": [], "http": [], "flight": [], "duckdb": [], "finished": [], "executing": []}
            for _ in range(args.runs):
                times["boto3"].append(run_boto3(client, ours))
                seconds, finished, rows, stats = run_http(raw, ours)
                if rows != duck_table.num_rows:
                    raise RuntimeError(f"{name}: GetQueryResults returned {rows} rows, DuckDB {duck_table.num_rows}")
                times["http"].append(seconds)
                times["finished"].append(finished)
                times["executing"].append(stats["ExecutionTimeInMillis"] / 1000)
                times["flight"].append(run_flight(raw, flight_client, ours)[0])
                times["duckdb"].append(run_duckdb(duck, theirs)[0])
            ms = {key: statistics.median(values) * 1000 for key, values in times.items()}
            http_ratios.append(ms["http"] / ms["duckdb"])
            share = stats["BytesScanned"] / store_bytes * 100
            print(f"| {name} | {rows} | {ms['boto3']:.1f} | {ms['http']:.1f} | {ms['flight']:.1f} | {ms['duckdb']:.1f} "
                  f"| {ms['http'] / ms['duckdb']:.2f} | {ms['flight'] / ms['duckdb']:.2f} | {ms['executing']:.0f} "
                  f"| {ms['finished']:.1f} | {share:.2f}% |", flush=True)
        print(f"\nHTTP / DuckDB geomean: {geomean(http_ratios):.2f}")
        print(f"server peak memory: {peak_rss_mib(server.process.pid):.0f} MiB")
        flight_client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
