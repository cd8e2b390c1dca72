"""End-to-end query benchmark: traillake (StartQuery to the last GetQueryResults page, through boto3
against the release server) next to DuckDB reading the same Parquet files, in the same run.

It generates N synthetic CloudTrail events over 30 days, stores them with `traillake load`, runs
six queries a few times each, and prints the median times, the ratio traillake / DuckDB, and for
traillake the part of its time the query executed (ExecutionTimeInMillis; the rest is StartQuery,
polling DescribeQuery and reading the pages through boto3) and the share of the store's bytes each
query read (BytesScanned / bytes of the Parquet files).

Usage: python benches/queries.py --binary target/release/traillake [--events 1000000] [--runs 5]
"""

import argparse
import datetime
import gzip
import json
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import boto3
import botocore.config
import duckdb

EVENT_NAMES = [
    "GetObject", "PutObject", "ListBuckets", "AssumeRole", "DescribeInstances", "RunInstances",
    "ConsoleLogin", "CreateUser", "Decrypt", "GenerateDataKey", "GetParameter", "Invoke",
    "DescribeStacks", "PutMetricData", "GetCallerIdentity", "ListObjects", "DeleteObject",
    "CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "UpdateItem", "Query", "Scan",
] + [f"Describe{name}" for name in ("Volumes", "Snapshots", "Images", "Subnets", "Vpcs", "Alarms")]
SOURCES = ["s3", "sts", "ec2", "iam", "kms", "ssm", "lambda", "cloudformation", "monitoring", "dynamodb", "signin"]
AGENTS = ["aws-cli/2.15.0 Python/3.11", "Boto3/1.34.0 Python/3.11", "aws-sdk-go/1.44", "console.amazonaws.com",
          "aws-sdk-java/2.20", "Terraform/1.6 aws-sdk-go-v2", "AWS Internal"]
ERRORS = ["AccessDenied", "ThrottlingException", "ResourceNotFoundException", "ValidationException"]


def synthetic_events(count, end, seed=7):
    """Yields `count` CloudTrail records spread evenly over the 30 days before `end`."""
    rng = random.Random(seed)
    span = 30 * 24 * 3600
    start = end - datetime.timedelta(seconds=span)
    for index in range(count):
        when = start + datetime.timedelta(seconds=span * index / count)
        user = rng.randrange(1000)
        failed = rng.random() < 0.05
        record = {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser", "principalId": f"AIDA{user:016d}", "arn": f"arn:aws:iam::111122223333:user/u{user}",
                "accountId": "111122223333", "accessKeyId": f"AKIA{user:016d}", "userName": f"u{user}",
            },
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{rng.choice(SOURCES)}.amazonaws.com",
            "eventName": rng.choice(EVENT_NAMES),
            "awsRegion": rng.choice(["us-east-1", "us-west-2", "eu-west-1"]),
            "sourceIPAddress": f"10.{rng.randrange(20)}.{rng.randrange(250)}.{rng.randrange(250)}",
            "userAgent": rng.choice(AGENTS),
            "requestParameters": {"bucketName": f"bucket-{rng.randrange(50)}", "key": f"k/{index}"},
            "responseElements": None,
            "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
            "eventID": str(uuid.UUID(int=index + 1)),
            "readOnly": rng.random() < 0.7,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": "111122223333",
            "eventCategory": "Management",
        }
        if failed:
            record["errorCode"] = rng.choice(ERRORS)
            record["errorMessage"] = "synthetic failure"
        yield record


def write_files(folder, count, end, per_file=100_000):
    """Writes the events as gzip trail files of `per_file` records; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    batch, number = [], 0
    for record in synthetic_events(count, end):
        batch.append(record)
        if len(batch) == per_file:
            (folder / f"events-{number:04d}.json.gz").write_bytes(gzip.compress(json.dumps({"Records": batch}).encode(), 1))
            batch, number = [], number + 1
    if batch:
        (folder / f"events-{number:04d}.json.gz").write_bytes(gzip.compress(json.dumps({"Records": batch}).encode(), 1))
    return folder


class Server:
    def __init__(self, binary, root):
        self.process = subprocess.Popen(
            [binary, "serve", "--root", str(root), "--listen", "127.0.0.1:0", "--maintenance-interval", "1d"],
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


def run_traillake(client, statement):
    """Returns (seconds from StartQuery to the last page, seconds of the GetQueryResults calls, rows,
    DescribeQuery statistics)."""
    began = time.perf_counter()
    query_id = client.start_query(QueryStatement=statement)["QueryId"]
    while True:
        described = client.describe_query(QueryId=query_id)
        if described["QueryStatus"] not in ("QUEUED", "RUNNING"):
            break
        time.sleep(0.002)
    if described["QueryStatus"] != "FINISHED":
        raise RuntimeError(f"{statement}: {described}")
    rows, token = 0, None
    reading = time.perf_counter()
    while True:
        page = client.get_query_results(QueryId=query_id, MaxQueryResults=1000, **({"NextToken": token} if token else {}))
        rows += len(page["QueryResultRows"])
        token = page.get("NextToken")
        if not token:
            break
    ended = time.perf_counter()
    return ended - began, ended - reading, rows, described["QueryStatistics"]


def run_duckdb(connection, statement):
    began = time.perf_counter()
    rows = connection.execute(statement).fetchall()
    return time.perf_counter() - began, len(rows)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="traillake-bench-"))
    # Midnight, so that every run lays the events out against the same times of day.
    end = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=1)
    print(f"generating {args.events:,} events in {work}", flush=True)
    began = time.perf_counter()
    files = write_files(work / "input", args.events, end)
    print(f"  {time.perf_counter() - began:.1f} s", flush=True)

    root = work / "lake"
    server = Server(args.binary, root)
    try:
        client = server.client
        store = client.create_event_data_store(Name="bench", RetentionPeriod=3653)["EventDataStoreArn"].rsplit("/", 1)[1]
        began = time.perf_counter()
        loaded = subprocess.run([args.binary, "load", "--root", str(root), "--store", "bench", str(files)],
                                capture_output=True, text=True)
        load_seconds = time.perf_counter() - began
        if loaded.returncode != 0:
            sys.exit(f"load failed: {loaded.stdout}{loaded.stderr}")
        print(f"load: {args.events:,} events in {load_seconds:.1f} s ({args.events / load_seconds:,.0f} events/s)", flush=True)

        parquet = sorted((root / "stores" / store / "table").rglob("*.parquet"))
        store_bytes = sum(p.stat().st_size for p in parquet)
        print(f"store: {len(parquet)} Parquet files, {store_bytes / 1e6:.1f} MB", flush=True)
        duck = duckdb.connect()
        duck.execute(
            f"CREATE VIEW events AS SELECT * FROM read_parquet('{root}/stores/{store}/table/*/*.parquet', hive_partitioning = true)"
        )

        # A whole hour at the same place in every run's events, so that runs read the same pages.
        window_start = (end - datetime.timedelta(days=10)).replace(hour=12, minute=0, second=0)
        window = (window_start.strftime("%Y-%m-%d %H:%M:%S"), (window_start + datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S"))
        probe_id = str(uuid.UUID(int=args.events // 2))
        queries = [
            ("full-scan GROUP BY eventName",
             "SELECT eventName, count(*) AS n FROM {t} GROUP BY eventName ORDER BY n DESC"),
            ("1-hour window SELECT *",
             "SELECT * FROM {t} WHERE eventTime >= {ts}'%s' AND eventTime < {ts}'%s'" % window),
            ("point lookup by eventID",
             f"SELECT * FROM {{t}} WHERE eventID = '{probe_id}'"),
            ("top-10 sourceIPAddress among errors",
             "SELECT sourceIPAddress, count(*) AS n FROM {t} WHERE errorCode IS NOT NULL GROUP BY sourceIPAddress ORDER BY n DESC, sourceIPAddress LIMIT 10"),
            ("LIKE on userAgent",
             "SELECT count(*) AS n FROM {t} WHERE userAgent LIKE '%Boto3%'"),
            ("lookup by userIdentity.arn",
             "SELECT eventTime, eventName FROM {t} WHERE userIdentity.arn = 'arn:aws:iam::111122223333:user/u123'"),
        ]
        print()
        print("| query | traillake ms | of which executing | of which reading pages | DuckDB ms | ratio | rows | traillake bytes read / store |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, template in queries:
            ours = template.format(t=store, ts="")
            theirs = template.format(t="events", ts="TIMESTAMP ")
            run_traillake(client, ours)
            run_duckdb(duck, theirs)
            our_times, their_times, executing, reading = [], [], [], []
            for _ in range(args.runs):
                seconds, page_seconds, rows, stats = run_traillake(client, ours)
                our_times.append(seconds)
                reading.append(page_seconds * 1000)
                executing.append(stats["ExecutionTimeInMillis"])
                duck_seconds, duck_rows = run_duckdb(duck, theirs)
                their_times.append(duck_seconds)
                if rows != duck_rows:
                    raise RuntimeError(f"{name}: traillake returned {rows} rows, DuckDB {duck_rows}")
            ours_ms, theirs_ms = statistics.median(our_times) * 1000, statistics.median(their_times) * 1000
            share = stats["BytesScanned"] / store_bytes * 100
            print(f"| {name} | {ours_ms:.1f} | {statistics.median(executing):.0f} | {statistics.median(reading):.1f} "
                  f"| {theirs_ms:.1f} | {ours_ms / theirs_ms:.2f} "
                  f"| {rows} | {share:.2f}% |", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
