"""Live-event benchmarks (issue 22), each next to DuckDB on the same data in the same run:

  --lookup     LookupEvents over an Event history of N management events spread over 90 days
               (seeded with `traillake load --history`): client-side latency of seven lookups
               through boto3 (newest page, by EventName common and rare, by Username, a one-hour
               window, by EventId, a second page), next to DuckDB answering the same lookup (the
               same filter, newest first, 51 rows) over the history's Parquet files.
  --follow     A followed bucket (moto's S3) filled with N events in trail files: events per second
               from the server's start to the last event delivered, per second of server CPU, the
               lag of a file put once the backlog is read; next to DuckDB converting the same files
               to Parquet.
  --recording  p50 / p99 latency of CreateEventDataStore, StartQuery and PutAuditEvents (raw HTTP,
               one client) with every call recorded as account activity and with
               `--record-activity false`, alternating servers; the ratio on / off.
  --insights   Insights (issue 25): a store of N management events over 8 days (60 write APIs at
               steady rates, their errors, one burst), loaded with `traillake load`; the time and
               server CPU of the first pass that searches its whole history once Insights are turned
               on (per million events), next to DuckDB counting the same per-minute keys over the
               store's Parquet files; then, with the default `--insights-interval` (60 s), how late
               the Start of a live burst (events loaded as each minute begins) is written after the
               start of its first unusual minute.
  --trails     Trails (issue 24), on moto's S3: what 5 logging trails cost the request path (p50 /
               p99 of CreateEventDataStore and ListEventDataStores, raw HTTP, one client, against
               no trail, alternating servers), and the events per second a trail writes: N calls
               gathered in its outbox, then delivered as log files from a restart, next to DuckDB
               writing the same records as gzip JSON.

Usage: python benches/live.py --binary target/release/traillake (--lookup [--events 10000000] |
       --follow [--events 1000000] | --recording [--calls 400] | --trails [--calls 400] [--events 20000] |
       --insights [--events 1000000])
"""

import argparse
import datetime
import gzip
import http.client
import json
import os
import pathlib
import random
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

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from imports import cpu_seconds, peak_rss_mib, start_s3  # noqa: E402
from ingest import request_bodies  # noqa: E402
from synthetic import AGENTS, EVENT_NAMES, SOURCES  # noqa: E402

ACCOUNT = "111122223333"


def history_records(count, end, seed=5):
    """Yields `count` management events spread evenly over the 90 days before `end`, oldest first;
    one event name in a thousand is `DeleteTrail` (the rare lookup)."""
    rng = random.Random(seed)
    span = 90 * 24 * 3600 - 3600
    start = end - datetime.timedelta(seconds=span)
    for index in range(count):
        when = start + datetime.timedelta(seconds=span * index / count)
        user = rng.randrange(1000)
        yield {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{user:016d}", "arn": f"arn:aws:iam::{ACCOUNT}:user/u{user}",
                             "accountId": ACCOUNT, "accessKeyId": f"AKIA{user:016d}", "userName": f"u{user}"},
            "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{rng.choice(SOURCES)}.amazonaws.com",
            "eventName": "DeleteTrail" if rng.random() < 0.001 else rng.choice(EVENT_NAMES),
            "awsRegion": "us-east-1",
            "sourceIPAddress": f"10.{rng.randrange(20)}.{rng.randrange(250)}.{rng.randrange(250)}",
            "userAgent": rng.choice(AGENTS),
            "requestParameters": {"bucketName": f"bucket-{rng.randrange(50)}"},
            "responseElements": None,
            "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
            "eventID": str(uuid.UUID(int=index + 1)),
            "readOnly": rng.random() < 0.7,
            "resources": [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::bucket-{rng.randrange(50)}"}],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management",
        }


def start_server(binary, root, *flags, env=None):
    server = subprocess.Popen([binary, "serve", "--root", str(root), "--listen", "127.0.0.1:0", "--maintenance-interval", "1d", *flags],
                              stdout=subprocess.PIPE, stderr=open(os.environ.get("TRAILLAKE_BENCH_LOG", os.devnull), "a"),
                              text=True, env=env)
    url = server.stdout.readline().split("listening on ", 1)[1].split()[0]
    return server, url


def client(url, service="cloudtrail", key=ACCOUNT):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key="bench",
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def timed(call):
    began = time.perf_counter()
    result = call()
    return (time.perf_counter() - began) * 1000, result


def lookup_benchmark(args):
    end = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="traillake-lookup-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        began = time.perf_counter()
        files, batch, rare = [], [], None
        for record in history_records(args.events, end):
            batch.append(json.dumps(record, separators=(",", ":")))
            if record["eventName"] == "DeleteTrail":
                rare = record
            if len(batch) == 200_000:
                path = tmp / f"history-{len(files):04d}.json.gz"
                path.write_bytes(gzip.compress(("\n".join(batch)).encode(), 1))
                files.append(path)
                batch = []
        if batch:
            path = tmp / f"history-{len(files):04d}.json.gz"
            path.write_bytes(gzip.compress(("\n".join(batch)).encode(), 1))
            files.append(path)
        print(f"{args.events:,} history events in {len(files)} files, written in {time.perf_counter() - began:.0f} s")
        began = time.perf_counter()
        loaded = subprocess.run([args.binary, "load", "--root", str(tmp / "lake"), "--account-id", ACCOUNT, "--history", *map(str, files)],
                                capture_output=True, text=True)
        if loaded.returncode != 0:
            raise RuntimeError(loaded.stdout + loaded.stderr)
        print(f"loaded into the Event history in {time.perf_counter() - began:.0f} s: {loaded.stdout.splitlines()[2]}")
        history = tmp / "lake/history" / ACCOUNT / "table"
        parquet = sum(path.stat().st_size for path in history.rglob("*.parquet"))
        print(f"Event history: {len(list(history.rglob('*.parquet')))} Parquet files, {parquet / 1e6:.0f} MB")

        server, url = start_server(args.binary, tmp / "lake", "--record-activity", "false")
        try:
            cloudtrail = client(url)
            middle = end - datetime.timedelta(days=45)
            first_page = cloudtrail.lookup_events(MaxResults=50)
            time.sleep(0.6)
            cases = [
                ("newest 50", {}, ""),
                ("EventName common", {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "GetObject"}]},
                 "eventname = 'GetObject'"),
                ("EventName rare (0.1%)", {"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "DeleteTrail"}]},
                 "eventname = 'DeleteTrail'"),
                ("Username", {"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "u7"}]},
                 "useridentity.username = 'u7'"),
                ("1-hour window", {"StartTime": middle, "EndTime": middle + datetime.timedelta(hours=1)},
                 f"eventtime BETWEEN TIMESTAMPTZ '{middle.isoformat()}' AND TIMESTAMPTZ '{(middle + datetime.timedelta(hours=1)).isoformat()}'"),
                ("EventId", {"LookupAttributes": [{"AttributeKey": "EventId", "AttributeValue": rare["eventID"]}]},
                 f"eventid = '{rare['eventID']}'"),
                ("second page", {"NextToken": first_page["NextToken"], "MaxResults": 50}, None),
            ]
            duck = duckdb.connect()
            duck.execute(f"SET threads = {os.cpu_count()}")
            duck.execute(f"CREATE VIEW history AS SELECT * FROM read_parquet('{history}/*/*.parquet', hive_partitioning = true)")
            last = first_page["Events"][-1]
            last_time = last["EventTime"].astimezone(datetime.timezone.utc).isoformat()
            print(f"{'lookup':24} {'traillake ms p50':>17} {'p95':>7} {'DuckDB ms p50':>14} {'ratio':>6} {'events':>7}")
            for name, kwargs, where in cases:
                ours, theirs = [], []
                count = 0
                for _ in range(args.runs):
                    elapsed, reply = timed(lambda: cloudtrail.lookup_events(**kwargs))
                    ours.append(elapsed)
                    count = len(reply["Events"])
                    time.sleep(0.55)
                    if where is None:
                        condition = (f"eventtime < TIMESTAMPTZ '{last_time}' OR (eventtime = TIMESTAMPTZ '{last_time}' "
                                     f"AND eventid < '{last['EventId']}')")
                    else:
                        condition = where or "true"
                    statement = (f"SELECT eventjson FROM history WHERE eventcategory = 'Management' AND ({condition}) "
                                 f"AND eventtime >= TIMESTAMPTZ '{(end - datetime.timedelta(days=90)).isoformat()}' "
                                 f"ORDER BY eventtime DESC, eventid DESC LIMIT 51")
                    elapsed, _ = timed(lambda: duck.execute(statement).fetchall())
                    theirs.append(elapsed)
                p50, p95 = statistics.median(ours), sorted(ours)[int(len(ours) * 0.95) - 1 if len(ours) > 1 else 0]
                duck_p50 = statistics.median(theirs)
                print(f"{name:24} {p50:17.1f} {p95:7.1f} {duck_p50:14.1f} {p50 / duck_p50:6.2f} {count:7}")
        finally:
            server.terminate()
            server.wait(timeout=60)


def follow_benchmark(args):
    from imports import run_duckdb, upload_trail_files
    from synthetic import write_trail_files
    with tempfile.TemporaryDirectory(prefix="traillake-follow-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        keys, size = write_trail_files(tmp / "files", args.events, args.per_file)
        print(f"{args.events:,} events in {len(keys):,} trail files, {size / 1e6:.1f} MB gzip")
        s3, s3_url = start_s3()
        try:
            bucket = upload_trail_files(s3_url, tmp / "files", keys)
            env = dict(os.environ, AWS_ENDPOINT_URL_S3=s3_url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
            root = tmp / "lake"
            # A store of every management event, so that each event goes to two tables (the
            # history and the store), as with a default store.
            server, url = start_server(args.binary, root, "--record-activity", "false", env=env)
            client(url).create_event_data_store(Name="followed", RetentionPeriod=90)
            server.terminate()
            server.wait(timeout=60)
            server, url = start_server(args.binary, root, "--follow", "s3://trails", "--follow-interval", "5s",
                                       "--record-activity", "false", env=env)
            began = time.perf_counter()
            cpu_before = cpu_seconds(server.pid)
            try:
                state = root / "follow/trails/state.json"
                while True:
                    status = json.loads(state.read_text())["status"] if state.exists() else {}
                    if status.get("eventsRead", 0) >= args.events:
                        break
                    time.sleep(0.05)
                wall = time.perf_counter() - began
                cpu = cpu_seconds(server.pid) - cpu_before
                peak = peak_rss_mib(server.pid)
                # Lag: a file put once the backlog is read, until its events are delivered.
                extra = sorted(keys)[-1].replace("_0000", "_9999")
                bucket.upload_file(str(tmp / "files" / sorted(keys)[-1]), "trails", extra)
                put = time.perf_counter()
                while json.loads(state.read_text())["status"]["filesRead"] < len(keys) + 1:
                    time.sleep(0.02)
                lag = time.perf_counter() - put
            finally:
                server.terminate()
                server.wait(timeout=60)
        finally:
            s3.terminate()
            s3.wait(timeout=30)
        largest = max(len(gzip.decompress((tmp / "files" / key).read_bytes())) for key in keys[:5])
        duck_wall, duck_cpu, duck_rows = run_duckdb(tmp / "files", tmp / "duckdb.parquet", os.cpu_count(), 2 * largest)
        if duck_rows != args.events:
            raise RuntimeError(f"DuckDB converted {duck_rows} rows of {args.events}")
    print(f"{'':10} {'wall s':>8} {'cpu s':>8} {'events/s':>10} {'events/s/core':>14} {'peak MiB':>9}")
    print(f"{'traillake':10} {wall:8.2f} {cpu:8.2f} {args.events / wall:10,.0f} {args.events / cpu:14,.0f} {peak:9.0f}")
    print(f"{'duckdb':10} {duck_wall:8.2f} {duck_cpu:8.2f} {args.events / duck_wall:10,.0f} {args.events / duck_cpu:14,.0f}")
    print(f"follow rate (target >= 20,000 events/s): {args.events / wall:,.0f} events/s, "
          f"{(args.events / cpu) / (args.events / duck_cpu):.2f} x DuckDB's per core; "
          f"lag of a new file with --follow-interval 5s: {lag:.2f} s")


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def recording_round(binary, calls, record, bodies):
    with tempfile.TemporaryDirectory(prefix="traillake-recording-bench-") as root:
        server, url = start_server(binary, root, "--record-activity", "true" if record else "false",
                                   "--max-event-data-stores", str(calls + 10), "--max-concurrent-queries", str(calls + 10),
                                   "--account-id", "123456789012")
        try:
            cloudtrail = client(url, key="AKIDBENCH")  # the development account, as the events' recipientAccountId
            selectors = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
            audit = cloudtrail.create_event_data_store(Name="audit", AdvancedEventSelectors=selectors, MultiRegionEnabled=False)["EventDataStoreArn"]
            channel = cloudtrail.create_channel(Name="bench", Source="Custom",
                                                Destinations=[{"Type": "EVENT_DATA_STORE", "Location": audit}])["ChannelArn"]
            parsed = urllib.parse.urlparse(url)
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
            authorization = bench_authorization

            def call(target, body):
                return timed_call(connection, target, body)

            store_id = audit.rsplit("/", 1)[1]
            latencies = {"CreateEventDataStore": [], "StartQuery": [], "PutAuditEvents": []}
            path = "/PutAuditEvents?" + urllib.parse.urlencode({"channelArn": channel})
            for index in range(calls):
                latencies["CreateEventDataStore"].append(call("CreateEventDataStore", {"Name": f"store-{index}", "StartIngestion": False}))
                latencies["StartQuery"].append(call("StartQuery", {"QueryStatement": f"SELECT count(*) FROM {store_id}"}))
                began = time.perf_counter()
                connection.request("POST", path, body=bodies[index % len(bodies)],
                                   headers={"Content-Type": "application/json", "Authorization": authorization("cloudtrail-data")})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"PutAuditEvents: {response.status}")
                latencies["PutAuditEvents"].append((time.perf_counter() - began) * 1000)
            return latencies
        finally:
            server.terminate()
            server.wait(timeout=60)


def bench_authorization(service):
    """An Authorization header of the development account's bench key (no signature is checked)."""
    return (f"AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/{service}/aws4_request, "
            f"SignedHeaders=host, Signature={'0' * 64}")


def timed_call(connection, target, body):
    """Calls a CloudTrail operation on a kept-alive connection; returns its milliseconds."""
    headers = {"Content-Type": "application/x-amz-json-1.1", "Authorization": bench_authorization("cloudtrail"),
               "X-Amz-Target": f"com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.{target}"}
    began = time.perf_counter()
    connection.request("POST", "/", body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    payload = response.read()
    if response.status != 200:
        raise RuntimeError(f"{target}: {response.status} {payload[:200]!r}")
    return (time.perf_counter() - began) * 1000


def trails_round(binary, calls, trails, s3_url, env):
    """Latencies of two calls with `trails` logging trails (each to a bucket of its own)."""
    with tempfile.TemporaryDirectory(prefix="traillake-trails-bench-") as root:
        server, url = start_server(binary, root, "--max-event-data-stores", str(calls + 10), "--max-trails", "5",
                                   "--account-id", "123456789012", "--trail-delivery-interval", "1s", env=env)
        try:
            cloudtrail = client(url, key="AKIDBENCH")
            s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                              aws_secret_access_key="bench")
            for index in range(trails):
                bucket = f"bench-{uuid.uuid4().hex[:12]}"
                s3.create_bucket(Bucket=bucket)
                cloudtrail.create_trail(Name=f"trail-{index}", S3BucketName=bucket, EnableLogFileValidation=True)
                cloudtrail.start_logging(Name=f"trail-{index}")
            parsed = urllib.parse.urlparse(url)
            connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
            latencies = {"CreateEventDataStore": [], "ListEventDataStores": []}
            for index in range(calls):
                latencies["CreateEventDataStore"].append(
                    timed_call(connection, "CreateEventDataStore", {"Name": f"store-{index}", "StartIngestion": False}))
                latencies["ListEventDataStores"].append(timed_call(connection, "ListEventDataStores", {"MaxResults": 1}))
            return latencies
        finally:
            server.terminate()
            server.wait(timeout=60)


def trail_delivery(binary, events, s3_url, env, tmp):
    """Events per second of one trail delivering an outbox of `events` recorded calls."""
    root = tmp / "delivery-lake"
    s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")
    s3.create_bucket(Bucket="delivery")
    flags = ("--account-id", "123456789012", "--trail-delivery-interval", "1h")
    server, url = start_server(binary, root, *flags, env=env)
    cloudtrail = client(url, key="AKIDBENCH")
    cloudtrail.create_trail(Name="delivery", S3BucketName="delivery")
    cloudtrail.start_logging(Name="delivery")
    parsed = urllib.parse.urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    for _ in range(events - 1):  # StartLogging is the first event
        timed_call(connection, "ListEventDataStores", {})
    outbox = root / "trails/123456789012/delivery/outbox"
    time.sleep(1)  # the recorder's last gathering
    server.kill()  # kill -9: the outbox is kept, and delivered by the next start
    server.wait(timeout=60)
    waiting = sum(len(path.read_bytes().splitlines()) for path in outbox.iterdir())
    records_text = b"".join(path.read_bytes() for path in sorted(outbox.iterdir()))
    began = time.perf_counter()
    server, url = start_server(binary, root, *flags, env=env)
    cpu_before = cpu_seconds(server.pid)
    try:
        while any(outbox.iterdir()) or any((root / "trails/123456789012/delivery/ready").iterdir()):
            time.sleep(0.02)
        wall = time.perf_counter() - began
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(timeout=60)
    delivered = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="delivery"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket="delivery", Key=item["Key"])["Body"].read()
            delivered += len(json.loads(gzip.decompress(body))["Records"])
    if delivered != waiting:
        raise RuntimeError(f"the trail delivered {delivered} events of {waiting}")
    # DuckDB doing the same work: the same records, read as JSON and written as gzip JSON.
    lines = tmp / "records.jsonl"
    lines.write_bytes(records_text)
    connection = duckdb.connect()
    duck_began = time.perf_counter()
    connection.execute(f"COPY (SELECT * FROM read_json('{lines}', format='newline_delimited', maximum_object_size=1048576)) "
                       f"TO '{tmp / 'duck.json.gz'}' (FORMAT json, COMPRESSION gzip)")
    duck_wall = time.perf_counter() - duck_began
    return waiting, wall, cpu, duck_wall


def trails_benchmark(args):
    s3_process, s3_url = start_s3()
    env = dict(os.environ, AWS_ENDPOINT_URL_S3=s3_url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_REGION="us-east-1")
    try:
        rounds = {0: {}, 5: {}}
        for _ in range(args.rounds):
            for trails in (0, 5):
                for name, values in trails_round(args.binary, args.calls, trails, s3_url, env).items():
                    rounds[trails].setdefault(name, []).extend(values)
        print(f"{'operation':22} {'0 p50':>8} {'0 p99':>8} {'5 p50':>8} {'5 p99':>8} {'p99 5/0':>8}")
        for name in rounds[5]:
            off, on = rounds[0][name], rounds[5][name]
            print(f"{name:22} {statistics.median(off):8.2f} {percentile(off, 0.99):8.2f} {statistics.median(on):8.2f} "
                  f"{percentile(on, 0.99):8.2f} {percentile(on, 0.99) / percentile(off, 0.99):8.3f}")
        with tempfile.TemporaryDirectory(prefix="traillake-trail-delivery-") as tmp:
            events, wall, cpu, duck_wall = trail_delivery(args.binary, args.events, s3_url, env, pathlib.Path(tmp))
        print(f"one trail delivering {events:,} events: {wall:.2f} s wall ({events / wall:,.0f} events/s), "
              f"{cpu:.2f} s server CPU; DuckDB writing the same records as gzip JSON: {duck_wall:.2f} s "
              f"({events / duck_wall:,.0f} events/s); traillake / DuckDB time {wall / duck_wall:.2f}")
    finally:
        s3_process.terminate()
        s3_process.wait(timeout=30)


def insights_benchmark(args):
    now = int(time.time() // 60)
    start = now - 8 * 1440
    rng = random.Random(25)
    apis = [(f"svc{i % 12}.amazonaws.com", f"Put{i}Thing") for i in range(60)]
    rates = [rng.uniform(0.2, 4.0) for _ in apis]
    scale = args.events / (sum(rates) * (now - start))
    with tempfile.TemporaryDirectory(prefix="traillake-insights-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        lines = tmp / "events.jsonl"
        written = 0
        with lines.open("w") as out:
            for minute in range(start, now - 2):
                for (source, name), rate in zip(apis, rates):
                    calls = int(rate * scale) + (1 if rng.random() < (rate * scale) % 1 else 0)
                    if minute >= now - 40 and name == "Put7Thing":
                        calls += 60  # the burst
                    for _ in range(calls):
                        at = datetime.datetime.fromtimestamp(minute * 60 + rng.randrange(60), datetime.timezone.utc)
                        record = {"eventVersion": "1.08", "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
                                  "eventID": str(uuid.UUID(int=rng.getrandbits(128))), "eventType": "AwsApiCall",
                                  "readOnly": False, "managementEvent": True, "eventCategory": "Management",
                                  "recipientAccountId": "123456789012", "userAgent": "bench",
                                  "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/bench"}}
                        if rng.random() < 0.02:
                            record["errorCode"] = "AccessDenied"
                        out.write(json.dumps(record) + "\n")
                        written += 1
        root = tmp / "lake"
        server, url = start_server(args.binary, root, "--account-id", "123456789012", "--insights-interval", "1h")
        cloudtrail = client(url, key="AKIDBENCH")
        source = cloudtrail.create_event_data_store(Name="source", StartIngestion=False)["EventDataStoreArn"]
        destination = cloudtrail.create_event_data_store(
            Name="insights", AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Insight"]}]}])["EventDataStoreArn"]
        source_id = source.rsplit("/", 1)[1]
        loaded = subprocess.run([args.binary, "load", "--root", str(root), "--store", source_id, str(lines)],
                                capture_output=True, text=True)
        if loaded.returncode != 0:
            raise RuntimeError(loaded.stdout + loaded.stderr)
        state = root / "insights" / source_id / "state.json"
        cpu_before = cpu_seconds(server.pid)
        began = time.perf_counter()
        cloudtrail.put_insight_selectors(EventDataStore=source, InsightsDestination=destination,
                                         InsightSelectors=[{"InsightType": "ApiCallRateInsight"},
                                                           {"InsightType": "ApiErrorRateInsight"}])
        # The pass is over when its state is written with no events left to write (a pass that
        # finds Insights keeps them in its state first).
        while not (state.exists() and json.loads(state.read_text()).get("pending") is None):
            time.sleep(0.01)
        wall = time.perf_counter() - began
        cpu = cpu_seconds(server.pid) - cpu_before
        query = cloudtrail.start_query(QueryStatement=f"SELECT eventJson FROM {destination.rsplit('/', 1)[1]} ORDER BY eventTime")["QueryId"]
        while cloudtrail.describe_query(QueryId=query)["QueryStatus"] in ("QUEUED", "RUNNING"):
            time.sleep(0.05)
        details = [json.loads(row[0]["eventJson"])["insightDetails"]
                   for row in cloudtrail.get_query_results(QueryId=query, MaxQueryResults=1000)["QueryResultRows"]]
        insights = ", ".join(f"{d['eventName']} {d['insightType']}{' ' + d['errorCode'] if 'errorCode' in d else ''} {d['state']}"
                             for d in details) or "none"
        server.terminate()
        server.wait(timeout=60)
        lateness = insights_lateness(args.binary, root, source_id, destination.rsplit("/", 1)[1], lines.parent)
        files = sorted(str(path) for path in (root / "stores" / source_id / "table").rglob("*.parquet"))
        connection = duckdb.connect()
        duck_began = time.perf_counter()
        connection.execute(
            "SELECT eventsource, eventname, errorcode, readonly, epoch(eventtime)::BIGINT // 60 AS minute, count(*) "
            f"FROM read_parquet({files!r}) WHERE eventcategory = 'Management' GROUP BY ALL").fetchall()
        duck_wall = time.perf_counter() - duck_began
    per_million = 1e6 / written
    print(f"{written:,} management events over 8 days, 60 write APIs; Insights events written: {insights}")
    print(f"first pass (the whole history, both types): {wall:.2f} s wall, {cpu:.2f} s server CPU; "
          f"{wall * per_million:.2f} s and {cpu * per_million:.2f} CPU s per million events")
    print(f"DuckDB counting the same minutes and keys: {duck_wall:.2f} s; traillake / DuckDB time {wall / duck_wall:.2f}")
    print(f"a live burst's Start written {lateness:.0f} s after the start of its first unusual minute "
          f"(--insights-interval 60s)")


def insights_lateness(binary, root, source_id, destination_id, folder):
    """Seconds from the start of a live burst's first minute to its Start event in the destination:
    a server with the default interval, and 30 calls of one steady API loaded as each minute begins."""
    server, url = start_server(binary, root, "--account-id", "123456789012")
    try:
        cloudtrail = client(url, key="AKIDBENCH")
        while time.time() % 60 > 1:
            time.sleep(0.2)
        first = int(time.time() // 60)
        statement = (f"SELECT count(*) AS n FROM {destination_id} WHERE eventJson LIKE '%\"state\":\"Start\"%' "
                     f"AND eventJson LIKE '%\"eventName\":\"Put3Thing\"%'")
        minute = first
        while True:
            if minute < first + 10 and time.time() >= minute * 60:
                path = folder / f"burst-{minute}.jsonl"
                with path.open("w") as out:
                    for second in range(30):
                        at = datetime.datetime.fromtimestamp(minute * 60 + second, datetime.timezone.utc)
                        out.write(json.dumps({
                            "eventVersion": "1.08", "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "eventSource": "svc3.amazonaws.com", "eventName": "Put3Thing", "awsRegion": "us-east-1",
                            "eventID": str(uuid.uuid4()), "eventType": "AwsApiCall", "readOnly": False,
                            "managementEvent": True, "eventCategory": "Management",
                            "recipientAccountId": "123456789012", "userAgent": "bench",
                            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/burst"}}) + "\n")
                loaded = subprocess.run([binary, "load", "--root", str(root), "--store", source_id, str(path)],
                                        capture_output=True, text=True)
                if loaded.returncode != 0:
                    raise RuntimeError(loaded.stdout + loaded.stderr)
                minute += 1
            query = cloudtrail.start_query(QueryStatement=statement)["QueryId"]
            while cloudtrail.describe_query(QueryId=query)["QueryStatus"] in ("QUEUED", "RUNNING"):
                time.sleep(0.05)
            rows = cloudtrail.get_query_results(QueryId=query)["QueryResultRows"]
            if rows and int(rows[0][0]["n"]) > 0:
                return time.time() - first * 60
            if time.time() > (first + 15) * 60:
                raise RuntimeError("no Insight of the live burst within 15 minutes")
            time.sleep(2)
    finally:
        server.terminate()
        server.wait(timeout=60)


def recording_benchmark(args):
    bodies = request_bodies(32, random.Random(3))
    rounds = {True: {}, False: {}}
    for _ in range(args.rounds):
        for record in (False, True):
            for name, values in recording_round(args.binary, args.calls, record, bodies).items():
                rounds[record].setdefault(name, []).extend(values)
    print(f"{'operation':22} {'off p50':>8} {'off p99':>8} {'on p50':>8} {'on p99':>8} {'p99 on/off':>11}")
    for name in rounds[True]:
        off, on = rounds[False][name], rounds[True][name]
        print(f"{name:22} {statistics.median(off):8.2f} {percentile(off, 0.99):8.2f} {statistics.median(on):8.2f} "
              f"{percentile(on, 0.99):8.2f} {percentile(on, 0.99) / percentile(off, 0.99):11.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--lookup", action="store_true")
    mode.add_argument("--follow", action="store_true")
    mode.add_argument("--recording", action="store_true")
    mode.add_argument("--trails", action="store_true")
    mode.add_argument("--insights", action="store_true")
    parser.add_argument("--events", type=int)
    parser.add_argument("--per-file", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.lookup:
        args.events = args.events or 10_000_000
        lookup_benchmark(args)
    elif args.follow:
        args.events = args.events or 1_000_000
        follow_benchmark(args)
    elif args.insights:
        args.events = args.events or 1_000_000
        insights_benchmark(args)
    elif args.trails:
        args.events = args.events or 20_000
        trails_benchmark(args)
    else:
        recording_benchmark(args)


if __name__ == "__main__":
    main()
