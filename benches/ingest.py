"""PutAuditEvents benchmark: 16 concurrent clients send 100-event requests to a release server
for 30 seconds; reports events per second, p50 / p99 / max latency of a request, the server's CPU
seconds and peak memory, and checks afterwards, with a query, that every acknowledged event is
stored exactly once.

The clients are threads speaking HTTP/1.1 with keep-alive and request bodies built beforehand, so
that the benchmark measures the server rather than a client library's serialization (boto3 spends
more CPU per request than the server does). The events are those of the integration schema, about
420 bytes of eventData each, with times in the last 10 minutes (integrations deliver events as
they happen).

Usage: python benches/ingest.py --binary target/release/traillake [--clients 16] [--seconds 30]
(TRAILLAKE_BENCH_LOG=FILE keeps the server's log; RUST_LOG=info,traillake_ingest=debug logs each
group commit with its requests, rows and duration.)
"""

import argparse
import datetime
import http.client
import os
import json
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import boto3
import botocore.config

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from imports import cpu_seconds, peak_rss_mib  # noqa: E402

ACCOUNT = "123456789012"
AUTHORIZATION = f"AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/cloudtrail-data/aws4_request, SignedHeaders=host, Signature={'0' * 64}"


def request_bodies(count, rng):
    """Returns `count` request bodies of 100 events each."""
    now = datetime.datetime.now(datetime.timezone.utc)
    actions = ["Login", "Logout", "CreateRepository", "DeleteRepository", "UpdatePolicy", "ReadSecret"]
    bodies = []
    for body in range(count):
        events = []
        for index in range(100):
            when = now - datetime.timedelta(seconds=rng.randrange(600))
            data = {
                "version": "1.0",
                "userIdentity": {"type": "CustomUser", "principalId": f"user-{rng.randrange(5000)}",
                                 "details": {"alternateId": f"user{rng.randrange(5000)}@example.com", "team": "platform"}},
                "userAgent": "bench-client/1.0 (linux)",
                "eventSource": "app.example.com",
                "eventName": rng.choice(actions),
                "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "UID": f"uid-{body}-{index}-{rng.randrange(1 << 30)}",
                "requestParameters": {"repository": f"repo-{rng.randrange(300)}", "visibility": "private"},
                "sourceIPAddress": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}",
                "recipientAccountId": ACCOUNT,
            }
            events.append({"id": f"e{index}", "eventData": json.dumps(data, separators=(",", ":"))})
        bodies.append(json.dumps({"auditEvents": events}, separators=(",", ":")).encode())
    return bodies


def client_loop(host, port, path, bodies, deadline, latencies, acknowledged, errors):
    connection = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": AUTHORIZATION}
    number = 0
    while time.perf_counter() < deadline:
        body = bodies[number % len(bodies)]
        number += 1
        began = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except OSError as error:
            errors.append(repr(error))
            return
        latencies.append(time.perf_counter() - began)
        if response.status != 200:
            errors.append(f"{response.status}: {payload[:300]!r}")
            return
        reply = json.loads(payload)
        if reply["failed"]:
            errors.append(f"failed events: {reply['failed'][:2]}")
            return
        acknowledged.append(len(reply["successful"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()

    rng = random.Random(7)
    bodies = request_bodies(64, rng)
    with tempfile.TemporaryDirectory(prefix="traillake-ingest-bench-") as root:
        server = subprocess.Popen(
            [args.binary, "serve", "--root", root, "--listen", "127.0.0.1:0", "--account-id", ACCOUNT],
            stdout=subprocess.PIPE, stderr=open(os.environ.get("TRAILLAKE_BENCH_LOG", os.devnull), "w"), text=True,
        )
        try:
            url = server.stdout.readline().split("listening on ", 1)[1].split()[0]
            cloudtrail = boto3.client("cloudtrail", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                                      aws_secret_access_key="bench", config=botocore.config.Config(retries={"max_attempts": 1}))
            selectors = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
            store = cloudtrail.create_event_data_store(Name="bench", AdvancedEventSelectors=selectors,
                                                       MultiRegionEnabled=False)["EventDataStoreArn"]
            channel = cloudtrail.create_channel(Name="bench", Source="Custom",
                                                Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}])["ChannelArn"]
            host, port = urllib.parse.urlparse(url).hostname, urllib.parse.urlparse(url).port
            path = "/PutAuditEvents?" + urllib.parse.urlencode({"channelArn": channel})

            latencies, acknowledged, errors = [], [], []
            cpu_before = cpu_seconds(server.pid)
            began = time.perf_counter()
            deadline = began + args.seconds
            threads = [threading.Thread(target=client_loop, args=(host, port, path, bodies, deadline, latencies, acknowledged, errors))
                       for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - began
            cpu = cpu_seconds(server.pid) - cpu_before
            peak = peak_rss_mib(server.pid)

            query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n, count(DISTINCT eventid) AS d FROM {store.rsplit('/', 1)[1]}")["QueryId"]
            while (described := cloudtrail.describe_query(QueryId=query_id))["QueryStatus"] in ("QUEUED", "RUNNING"):
                time.sleep(0.2)
            row = cloudtrail.get_query_results(QueryId=query_id)["QueryResultRows"][0]
            stored, distinct = int(row[0]["n"]), int(row[1]["d"])
        finally:
            server.terminate()
            server.wait(timeout=60)

    events = sum(acknowledged)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(f"clients {args.clients}, {len(latencies)} requests of 100 events in {wall:.1f} s")
    print(f"events acknowledged: {events} ({events / wall:,.0f} events/s; target >= 50,000)")
    print(f"latency per request: p50 {p(0.50):.1f} ms, p99 {p(0.99):.1f} ms (target < 250), max {latencies[-1] * 1000:.1f} ms, "
          f"mean {statistics.mean(latencies) * 1000:.1f} ms")
    print(f"server: {cpu:.1f} CPU s ({events / cpu:,.0f} events per CPU second), peak {peak:.0f} MiB")
    print(f"stored after the run: {stored} events, {distinct} distinct eventIDs (acknowledged {events})")
    if errors:
        print(f"errors: {len(errors)}, first: {errors[0]}")
    if errors or stored != events or distinct != stored:
        sys.exit(1)


if __name__ == "__main__":
    main()
