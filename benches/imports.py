"""Import benchmark: traillake importing synthetic trail log files from an S3-compatible server
(moto's, started here) through StartImport, next to DuckDB converting the same files (read from
local disk) to Parquet, in the same run.

It writes N synthetic CloudTrail events (the generator of queries.py) as gzip trail files of
`--per-file` records in the trail layout, uploads them to the S3 server, starts a release server,
and times StartImport to COMPLETED. It reports events per second of wall time and per second of
CPU time (the server process's user + system time: "per core"), the server's peak resident
memory (VmHWM), and the same rates for DuckDB's `COPY (SELECT unnest(Records) ...) TO parquet`
(CPU time of this process while DuckDB runs).

Usage: python benches/imports.py --binary target/release/traillake [--events 1000000] [--per-file 1000]
"""

import argparse
import base64
import datetime
import gzip
import json
import os
import pathlib
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import boto3
import botocore.config
import duckdb

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from queries import synthetic_events  # noqa: E402

ACCOUNT = "111122223333"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_trail_files(folder, count, per_file):
    """Writes the events as gzip trail files in the trail layout under `folder`; returns their
    keys and the bytes written."""
    keys, total, batch, number = [], 0, [], 0
    end = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    def flush():
        nonlocal total, number
        last = datetime.datetime.strptime(batch[-1]["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        delivered = last + datetime.timedelta(minutes=5)
        key = (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{delivered:%Y/%m/%d}/"
               f"{ACCOUNT}_CloudTrail_us-east-1_{delivered:%Y%m%dT%H%M}Z_{number:016d}.json.gz")
        # Compact JSON, as CloudTrail writes its log files.
        data = gzip.compress(json.dumps({"Records": batch}, separators=(",", ":")).encode(), 6)
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        keys.append(key)
        total += len(data)
        number += 1

    rng = random.Random(11)
    for record in synthetic_events(count, end):
        # Per-request values real trails carry, so that an event takes about 120 bytes gzipped.
        record["sharedEventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
        record["additionalEventData"] = {"x-amz-id-2": base64.b64encode(rng.randbytes(18)).decode(), "bytesTransferredOut": rng.randrange(10**6)}
        batch.append(record)
        if len(batch) == per_file:
            flush()
            batch = []
    if batch:
        flush()
    return keys, total


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_s3():
    port = free_port()
    process = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.2)
    return process, url


def upload_trail_files(s3_url, folder, keys):
    """Creates the bucket `trails` on the S3 server and uploads the files; returns the S3 client."""
    bucket = boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
    bucket.create_bucket(Bucket="trails")
    for key in keys:
        bucket.upload_file(str(folder / key), "trails", key)
    return bucket


def run_traillake(binary, root, s3_url, events):
    env = dict(os.environ, AWS_ENDPOINT_URL_S3=s3_url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1")
    server = subprocess.Popen(
        [binary, "serve", "--root", str(root), "--listen", "127.0.0.1:0", "--maintenance-interval", "1d"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        url = server.stdout.readline().split("listening on ", 1)[1].split()[0]
        client = boto3.client("cloudtrail", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                              aws_secret_access_key="bench", config=botocore.config.Config(retries={"max_attempts": 1}))
        arn = client.create_event_data_store(Name="imported", RetentionPeriod=90)["EventDataStoreArn"]
        cpu_before = cpu_seconds(server.pid)
        began = time.perf_counter()
        import_id = client.start_import(
            Destinations=[arn],
            ImportSource={"S3": {"S3LocationUri": "s3://trails", "S3BucketRegion": "us-east-1",
                                 "S3BucketAccessRoleArn": f"arn:aws:iam::{ACCOUNT}:role/import"}},
        )["ImportId"]
        while True:
            reply = client.get_import(ImportId=import_id)
            if reply["ImportStatus"] in ("COMPLETED", "FAILED", "STOPPED"):
                break
            time.sleep(0.05)
        wall = time.perf_counter() - began
        cpu = cpu_seconds(server.pid) - cpu_before
        statistics = reply["ImportStatistics"]
        if reply["ImportStatus"] != "COMPLETED" or statistics["EventsCompleted"] != events:
            raise RuntimeError(f"the import did not store every event: {reply}")
        return wall, cpu, peak_rss_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)


def run_duckdb(folder, out, threads, largest_file):
    connection = duckdb.connect()
    connection.execute(f"SET threads = {threads}")
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    connection.execute(
        f"COPY (SELECT unnest(Records, recursive := false) FROM read_json('{folder}/AWSLogs/**/*.json.gz', "
        f"format = 'auto', maximum_object_size = {largest_file})) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = connection.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return wall, cpu, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-file", type=int, default=1000)
    args = parser.parse_args()
    cores = os.cpu_count()

    with tempfile.TemporaryDirectory(prefix="traillake-import-bench-") as tmp:
        tmp = pathlib.Path(tmp)
        began = time.perf_counter()
        keys, size = write_trail_files(tmp / "files", args.events, args.per_file)
        print(f"{args.events:,} events in {len(keys):,} files, {size / 1e6:.1f} MB gzip "
              f"({size / args.events:.0f} bytes an event), written in {time.perf_counter() - began:.0f} s")

        s3, s3_url = start_s3()
        try:
            upload_trail_files(s3_url, tmp / "files", keys)
            wall, cpu, peak = run_traillake(args.binary, tmp / "lake", s3_url, args.events)
        finally:
            s3.terminate()
            s3.wait(timeout=30)
        largest = max(len(gzip.decompress((tmp / "files" / key).read_bytes())) for key in keys[:5])
        duck_wall, duck_cpu, duck_rows = run_duckdb(tmp / "files", tmp / "duckdb.parquet", cores, 2 * largest)
        if duck_rows != args.events:
            raise RuntimeError(f"DuckDB converted {duck_rows} rows of {args.events}")

    per_core, duck_per_core = args.events / cpu, args.events / duck_cpu
    print(f"{'':10} {'wall s':>8} {'cpu s':>8} {'events/s':>10} {'events/s/core':>14} {'peak MiB':>9}")
    print(f"{'traillake':10} {wall:8.2f} {cpu:8.2f} {args.events / wall:10,.0f} {per_core:14,.0f} {peak:9.0f}")
    print(f"{'duckdb':10} {duck_wall:8.2f} {duck_cpu:8.2f} {args.events / duck_wall:10,.0f} {duck_per_core:14,.0f} {'':>9}")
    print(f"traillake / DuckDB events per second per core: {per_core / duck_per_core:.2f} (target >= 2); "
          f"wall: {duck_wall / wall:.2f}; traillake peak memory {peak:.0f} MiB (target < 1024)")


if __name__ == "__main__":
    main()
