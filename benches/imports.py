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
import gzip
import os
import pathlib
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import botocore.config
import duckdb

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import synthetic  # noqa: E402
from synthetic import write_trail_files  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
                                 "S3BucketAccessRoleArn": f"arn:aws:iam::{synthetic.ACCOUNT}:role/import"}},
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


def struct(*fields):
    return "STRUCT(" + ", ".join(fields) + ")"


def texts(*names):
    return [f"{name} VARCHAR" for name in names]


STRING_MAP = "MAP(VARCHAR, VARCHAR)"
# traillake's CloudTrail columns (traillake-events/src/schema.rs) under the records' own names: DuckDB
# matches JSON keys by case.
USER_IDENTITY = struct(
    *texts("type", "principalId", "arn", "accountId", "accessKeyId", "userName"),
    "sessionContext " + struct(
        "attributes " + struct("creationDate TIMESTAMPTZ", "mfaAuthenticated VARCHAR"),
        "sessionIssuer " + struct(*texts("type", "principalId", "arn", "accountId", "userName")),
        "webIdFederationData " + struct("federatedProvider VARCHAR", f"attributes {STRING_MAP}"),
        *texts("sourceIdentity", "ec2RoleDelivery", "ec2IssuedInVPC"),
    ),
    "onBehalfOf " + struct(*texts("userId", "identityStoreArn")),
    "inScopeOf " + struct(*texts("sourceArn", "sourceAccount", "issuerType", "credentialsIssuedTo")),
    *texts("invokedBy", "identityProvider"),
)
RECORD = struct(
    "eventVersion VARCHAR", f"userIdentity {USER_IDENTITY}", "eventTime TIMESTAMPTZ",
    *texts("eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent", "errorCode", "errorMessage"),
    *(f"{name} {STRING_MAP}" for name in ("requestParameters", "responseElements", "additionalEventData")),
    *texts("requestID", "eventID"), "readOnly BOOLEAN",
    "resources " + struct(*texts("accountId", "type", "ARN", "ARNPrefix")) + "[]",
    *texts("eventType", "apiVersion"), "managementEvent BOOLEAN",
    *texts("recipientAccountId", "sharedEventID", "annotation", "vpcEndpointId", "vpcEndpointAccountId"),
    *(f"{name} {STRING_MAP}" for name in ("serviceEventDetails", "addendum", "edgeDeviceDetails", "insightDetails")),
    "eventCategory VARCHAR", "tlsDetails " + struct(*texts("tlsVersion", "cipherSuite", "clientProvidedHostHeader")),
    "sessionCredentialFromConsole VARCHAR",
)


def run_duckdb(folder, out, threads, largest_file):
    """DuckDB doing an import's work: the files' records read into the whole CloudTrail schema, typed
    (nested userIdentity, resources, the maps), ordered by eventTime, written as zstd Parquet."""
    connection = duckdb.connect()
    connection.execute(f"SET threads = {threads}")
    before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    connection.execute(
        f"COPY (SELECT record.* FROM (SELECT unnest(Records) AS record FROM read_json('{folder}/AWSLogs/**/*.json.gz', "
        f"columns = {{Records: '{RECORD}[]'}}, maximum_object_size = {largest_file})) ORDER BY record.eventTime) "
        f"TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = connection.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return wall, cpu, rows


def run_load(binary, root, folder):
    """`traillake load` of the same files from local disk (the import's write path, no S3 server):
    returns wall seconds, CPU seconds (user + system of the process and its threads) and peak MiB."""
    server = subprocess.Popen([binary, "serve", "--root", str(root), "--listen", "127.0.0.1:0", "--record-activity", "false"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = server.stdout.readline().split("listening on ", 1)[1].split()[0]
        client = boto3.client("cloudtrail", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                              aws_secret_access_key="bench")
        client.create_event_data_store(Name="loaded", RetentionPeriod=90, StartIngestion=False)
    finally:
        server.terminate()
        server.wait(timeout=60)
    log = root / "load.log"
    began = time.perf_counter()
    with open(log, "w") as errors:
        loading = subprocess.Popen([binary, "load", "--root", str(root), "--store", "loaded", str(folder)],
                                   stdout=subprocess.DEVNULL, stderr=errors)
        # wait4 gives this process's own CPU time and peak resident memory.
        _, status, usage = os.wait4(loading.pid, 0)
        loading.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    if loading.returncode != 0:
        raise RuntimeError(f"traillake load failed: {log.read_text()}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


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
        load_wall, load_cpu, load_peak = run_load(args.binary, tmp / "loaded", tmp / "files")
        largest = max(len(gzip.decompress((tmp / "files" / key).read_bytes())) for key in keys[:5])
        duck_wall, duck_cpu, duck_rows = run_duckdb(tmp / "files", tmp / "duckdb.parquet", cores, 2 * largest)
        if duck_rows != args.events:
            raise RuntimeError(f"DuckDB converted {duck_rows} rows of {args.events}")

    duck_rate, duck_per_core = args.events / duck_wall, args.events / duck_cpu
    print(f"| | wall s | CPU s | events/s | x DuckDB | events/s/core | x DuckDB | peak MiB |")
    print(f"|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, w, c, p in [("traillake StartImport from moto's S3 (server CPU only)", wall, cpu, f"{peak:.0f}"),
                          ("traillake load from local files", load_wall, load_cpu, f"{load_peak:.0f}"),
                          ("DuckDB, local files to zstd Parquet, typed and sorted", duck_wall, duck_cpu, "")]:
        print(f"| {name} | {w:.2f} | {c:.2f} | {args.events / w:,.0f} | {args.events / w / duck_rate:.2f} "
              f"| {args.events / c:,.0f} | {args.events / c / duck_per_core:.2f} | {p} |")
    print(f"targets: events/s >= 2.0x DuckDB's on the same cores; peak memory < 1024 MiB")


if __name__ == "__main__":
    main()
