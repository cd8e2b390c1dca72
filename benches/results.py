"""Result-reading benchmark: one finished query of N rows (1,000,000 by default) read three ways from
the release server, in the same run: GetQueryResults pages through boto3 (1,000 rows a page, every
value rendered as text), GetQueryResultsArrow over gRPC (Arrow IPC pieces, stubs generated from
proto/ at start), and Arrow Flight DoGet through pyarrow. Prints rows per second of each (median
of the runs) and the ratios to the JSON pages; the issue's target is Flight >= 20x the JSON pages.
DuckDB producing the same rows as Arrow from the store's Parquet files is printed for scale: it
runs the query too, so it is a reference, not a like-for-like reading.

Usage: python benches/results.py --binary target/release/traillake [--events 1000000] [--runs 3]
"""

import argparse
import datetime
import importlib
import importlib.resources
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb
import grpc
import pyarrow as pa
import pyarrow.flight as flight
from grpc_tools import protoc

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from queries import Server  # noqa: E402
from synthetic import write_trail_files  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
COLUMNS = "eventID, eventTime, eventName, eventSource, sourceIPAddress, userIdentity.arn AS userArn, readOnly"


def grpc_modules(out):
    """Generates the Python stubs of proto/ into `out`; returns (service_pb2_grpc, queries_pb2)."""
    out.mkdir(parents=True, exist_ok=True)
    includes = importlib.resources.files("grpc_tools") / "_proto"
    protos = sorted(str(path) for path in (REPO / "proto/traillake/v1").glob("*.proto"))
    if protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{includes}", f"--python_out={out}", f"--grpc_python_out={out}", *protos]) != 0:
        sys.exit("protoc failed on proto/")
    sys.path.insert(0, str(out))
    return importlib.import_module("traillake.v1.service_pb2_grpc"), importlib.import_module("traillake.v1.queries_pb2")


def read_json_pages(client, query_id):
    rows, token = 0, None
    while True:
        page = client.get_query_results(QueryId=query_id, MaxQueryResults=1000, **({"NextToken": token} if token else {}))
        rows += len(page["QueryResultRows"])
        token = page.get("NextToken")
        if not token:
            return rows


def read_arrow_stream(stub, queries_pb2, query_id):
    chunks = stub.GetQueryResultsArrow(queries_pb2.QueryRequest(QueryId=query_id))
    return pa.ipc.open_stream(b"".join(chunk.Ipc for chunk in chunks)).read_all().num_rows


def read_flight(client, query_id):
    return client.do_get(flight.Ticket(query_id.encode())).read_all().num_rows


def timed(read, runs, expected):
    """Returns the median seconds of `runs` reads, after one warm-up, checking the row count."""
    read()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        rows = read()
        times.append(time.perf_counter() - began)
        if rows != expected:
            raise RuntimeError(f"read {rows} rows, expected {expected}")
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()

    work = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="traillake-bench-"))
    end = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=1)
    print(f"generating {args.events:,} events in {work}", flush=True)
    files = work / "input"
    write_trail_files(files, args.events, 1000, end)
    service_pb2_grpc, queries_pb2 = grpc_modules(work / "grpc")

    root = work / "lake"
    server = Server(args.binary, root)
    try:
        client = server.client
        store = client.create_event_data_store(Name="bench", RetentionPeriod=3653)["EventDataStoreArn"].rsplit("/", 1)[1]
        loaded = subprocess.run([args.binary, "load", "--root", str(root), "--store", "bench", str(files)], capture_output=True, text=True)
        if loaded.returncode != 0:
            sys.exit(f"load failed: {loaded.stdout}{loaded.stderr}")

        query_id = client.start_query(QueryStatement=f"SELECT {COLUMNS} FROM {store}")["QueryId"]
        while (described := client.describe_query(QueryId=query_id))["QueryStatus"] in ("QUEUED", "RUNNING"):
            time.sleep(0.05)
        if described["QueryStatus"] != "FINISHED":
            sys.exit(f"the query did not finish: {described}")
        rows = args.events
        print(f"query {query_id}: {rows:,} rows, {COLUMNS}", flush=True)

        target = server.url.removeprefix("http://")
        channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20)])
        stub = service_pb2_grpc.CloudTrailStub(channel)
        flight_client = flight.connect(f"grpc://{target}")
        duck = duckdb.connect()
        duck_sql = (
            f"SELECT eventID, eventTime, eventName, eventSource, sourceIPAddress, userIdentity.arn AS userArn, readOnly "
            f"FROM read_parquet('{root}/stores/{store}/table/*/*.parquet', hive_partitioning = true)"
        )

        results = [
            ("GetQueryResults pages (boto3, JSON)", timed(lambda: read_json_pages(client, query_id), args.runs, rows)),
            ("GetQueryResultsArrow (gRPC, Arrow IPC)", timed(lambda: read_arrow_stream(stub, queries_pb2, query_id), args.runs, rows)),
            ("Flight DoGet (pyarrow)", timed(lambda: read_flight(flight_client, query_id), args.runs, rows)),
            ("DuckDB: the same rows as Arrow from the Parquet files", timed(lambda: duck.sql(duck_sql).to_arrow_table().num_rows, args.runs, rows)),
        ]
        json_rate = rows / results[0][1]
        print()
        print("| reader | seconds | rows/s | x JSON pages |")
        print("|---|---:|---:|---:|")
        for name, seconds in results:
            rate = rows / seconds
            print(f"| {name} | {seconds:.2f} | {rate:,.0f} | {rate / json_rate:.1f} |", flush=True)
        channel.close()
        flight_client.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
