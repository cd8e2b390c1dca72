"""Soak: a release server on loopback for a bounded time (60 seconds by default) under a mix of work
at once: 4 clients sending PutAuditEvents (100 events a request), imports of trail files from moto's
S3 server one after the other, and 10 clients running queries end to end (StartQuery, DescribeQuery
until the end, every GetQueryResults page) over both stores. It reports each kind's throughput, the
query latencies and every error by its code, then checks that each acknowledged event and each
imported event is stored exactly once. It exits 1 on an unmodelled error or a lost or doubled event.

Usage: python benches/soak.py --binary target/release/traillake [--seconds 60]
"""

import argparse
import collections
import gzip
import json
import os
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
from imports import cpu_seconds, peak_rss_mib, start_s3  # noqa: E402
from synthetic import ACCOUNT as TRAIL_ACCOUNT, write_trail_files  # noqa: E402
from ingest import ACCOUNT, client_loop, request_bodies  # noqa: E402


# Errors the API models for this mix (the 11th query of an account would be one; there are 10).
MODELLED = {"MaxConcurrentQueriesException", "AccountHasOngoingImportException"}
IMPORT_PREFIXES = 4
EVENTS_PER_IMPORT = 100_000


def boto_client(url, service="cloudtrail"):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="soak", aws_secret_access_key="soak",
                        config=botocore.config.Config(retries={"max_attempts": 1}, max_pool_connections=32))


def query_loop(url, statements, deadline, latencies, errors):
    client = boto_client(url)
    number = 0
    while time.monotonic() < deadline:
        statement = statements[number % len(statements)]
        number += 1
        began = time.monotonic()
        try:
            query_id = client.start_query(QueryStatement=statement)["QueryId"]
            while True:
                described = client.describe_query(QueryId=query_id)
                if described["QueryStatus"] not in ("QUEUED", "RUNNING"):
                    break
                time.sleep(0.02)
            if described["QueryStatus"] != "FINISHED":
                errors[f"query {described['QueryStatus']}: {described.get('ErrorMessage', '')[:80]}"] += 1
                continue
            token = None
            while True:
                page = client.get_query_results(QueryId=query_id, **({"NextToken": token} if token else {}))
                token = page.get("NextToken")
                if not token:
                    break
            latencies.append(time.monotonic() - began)
        except client.exceptions.ClientError as error:
            errors[error.response["Error"]["Code"]] += 1


def import_loop(url, store_arn, deadline, done, errors):
    client = boto_client(url)
    for prefix in range(IMPORT_PREFIXES):
        if time.monotonic() >= deadline:
            return
        try:
            import_id = client.start_import(
                Destinations=[store_arn],
                ImportSource={"S3": {"S3LocationUri": f"s3://soak-trails/p{prefix}", "S3BucketRegion": "us-east-1",
                                     "S3BucketAccessRoleArn": f"arn:aws:iam::{TRAIL_ACCOUNT}:role/import"}},
            )["ImportId"]
        except client.exceptions.ClientError as error:
            errors[error.response["Error"]["Code"]] += 1
            return
        while True:
            reply = client.get_import(ImportId=import_id)
            if reply["ImportStatus"] in ("COMPLETED", "FAILED", "STOPPED"):
                break
            if time.monotonic() >= deadline:
                client.stop_import(ImportId=import_id)
            time.sleep(0.2)
        done.append(reply)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()

    s3_process, s3_url = start_s3()
    try:
        with tempfile.TemporaryDirectory(prefix="traillake-soak-") as work:
            work = pathlib.Path(work)
            s3 = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="soak", aws_secret_access_key="soak")
            s3.create_bucket(Bucket="soak-trails")
            print(f"uploading {IMPORT_PREFIXES} x {EVENTS_PER_IMPORT:,} events of trail files to moto", flush=True)
            folder = work / "trails"
            keys, _ = write_trail_files(folder, EVENTS_PER_IMPORT, 1000)
            for prefix in range(IMPORT_PREFIXES):
                for key in keys:
                    # Each prefix holds the same files with eventIDs of its own.
                    document = json.loads(gzip.decompress((folder / key).read_bytes()))
                    for record in document["Records"]:
                        record["eventID"] = f"p{prefix}-{record['eventID']}"
                    body = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), 6)
                    s3.put_object(Bucket="soak-trails", Key=f"p{prefix}/{key}", Body=body)

            env = dict(os.environ, AWS_ENDPOINT_URL_S3=s3_url, AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_REGION="us-east-1")
            server = subprocess.Popen([args.binary, "serve", "--root", str(work / "lake"), "--listen", "127.0.0.1:0", "--account-id", ACCOUNT,
                                       "--maintenance-interval", "20s"],
                                      stdout=subprocess.PIPE, stderr=open(work / "server.log", "w"), text=True, env=env)
            try:
                url = server.stdout.readline().split("listening on ", 1)[1].split()[0]
                cloudtrail = boto_client(url)
                trails = cloudtrail.create_event_data_store(Name="trails", RetentionPeriod=90)["EventDataStoreArn"]
                selectors = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
                audit = cloudtrail.create_event_data_store(Name="audit", AdvancedEventSelectors=selectors, MultiRegionEnabled=False)["EventDataStoreArn"]
                channel = cloudtrail.create_channel(Name="soak", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": audit}])["ChannelArn"]
                trails_id, audit_id = trails.rsplit("/", 1)[1], audit.rsplit("/", 1)[1]
                statements = [
                    f"SELECT eventName, count(*) AS n FROM {trails_id} GROUP BY eventName ORDER BY n DESC",
                    f"SELECT eventData.eventName, count(*) AS n FROM {audit_id} GROUP BY eventData.eventName",
                    f"SELECT sourceIPAddress, count(*) AS n FROM {trails_id} WHERE errorCode IS NOT NULL GROUP BY sourceIPAddress ORDER BY n DESC LIMIT 10",
                    f"SELECT eventID, eventTime FROM {audit_id} ORDER BY eventTime DESC LIMIT 100",
                ]

                deadline = time.monotonic() + args.seconds
                cpu_before = cpu_seconds(server.pid)
                ingest_latencies, acknowledged, ingest_errors = [], [], []
                query_latencies, errors, imports_done = [], collections.Counter(), []
                host, port = urllib.parse.urlparse(url).hostname, urllib.parse.urlparse(url).port
                path = "/PutAuditEvents?" + urllib.parse.urlencode({"channelArn": channel})
                bodies = request_bodies(32, random.Random(3))
                wall_deadline = time.perf_counter() + args.seconds
                threads = [threading.Thread(target=client_loop, args=(host, port, path, bodies, wall_deadline, ingest_latencies, acknowledged, ingest_errors))
                           for _ in range(4)]
                threads += [threading.Thread(target=query_loop, args=(url, statements, deadline, query_latencies, errors)) for _ in range(10)]
                threads.append(threading.Thread(target=import_loop, args=(url, trails, deadline, imports_done, errors)))
                began = time.monotonic()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                elapsed = time.monotonic() - began
                cpu = cpu_seconds(server.pid) - cpu_before
                for error in ingest_errors:
                    errors[f"PutAuditEvents: {error[:80]}"] += 1

                acked = sum(acknowledged)
                imported = sum(reply["ImportStatistics"]["EventsCompleted"] for reply in imports_done)
                print(f"{elapsed:.0f} s, server {cpu:.1f} CPU s, peak {peak_rss_mib(server.pid):.0f} MiB")
                print(f"PutAuditEvents: {acked:,} events acknowledged ({acked / elapsed:,.0f}/s), "
                      f"p50 {statistics.median(ingest_latencies) * 1000:.1f} ms, p99 {statistics.quantiles(ingest_latencies, n=100)[98] * 1000:.1f} ms")
                print(f"imports: {len(imports_done)} ended ({', '.join(r['ImportStatus'] for r in imports_done)}), {imported:,} events ({imported / elapsed:,.0f}/s)")
                if query_latencies:
                    print(f"queries: {len(query_latencies)} finished end to end ({len(query_latencies) / elapsed:.1f}/s), "
                          f"p50 {statistics.median(query_latencies) * 1000:.0f} ms, p99 {statistics.quantiles(query_latencies, n=100)[98] * 1000:.0f} ms")
                print(f"errors: {dict(errors) or 'none'}")

                def stored(store_id):
                    query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n, count(DISTINCT eventID) AS d FROM {store_id}")["QueryId"]
                    while cloudtrail.describe_query(QueryId=query_id)["QueryStatus"] in ("QUEUED", "RUNNING"):
                        time.sleep(0.1)
                    row = cloudtrail.get_query_results(QueryId=query_id)["QueryResultRows"][0]
                    return int(row[0]["n"]), int(row[1]["d"])

                audit_stored, trails_stored = stored(audit_id), stored(trails_id)
                print(f"stored: channel store {audit_stored} (acknowledged {acked}), trails store {trails_stored} (imported {imported})")
                unmodelled = {code: n for code, n in errors.items() if code not in MODELLED}
                lost = audit_stored != (acked, acked) or trails_stored != (imported, imported)
                if unmodelled or lost or any(r["ImportStatus"] == "FAILED" for r in imports_done):
                    print("FAILED: unmodelled errors, a failed import, or events lost or doubled")
                    sys.exit(1)
            finally:
                server.terminate()
                server.wait(timeout=60)
    finally:
        s3_process.terminate()
        s3_process.wait(timeout=10)


if __name__ == "__main__":
    main()
