"""Reads a federated store's table as another engine would, and prints its rows as JSON: one
object per event with eventID, eventName, eventSource, awsRegion and eventTime (ISO 8601, UTC).

    read.py duckdb LOCATION
    read.py deltalake LOCATION [STORAGE_OPTIONS_JSON]
    read.py sharing PROFILE_FILE TABLE

The API tests (tests/api/test_federation.py) run it with the Python of the federation virtualenv
and compare its rows with a traillake query's."""

import json
import os
import sys

COLUMNS = ["eventid", "eventname", "eventsource", "awsregion", "eventtime"]


def iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def duckdb_rows(location):
    import pathlib

    import duckdb
    import duckdb_extension_delta

    # The extension comes from PyPI with DuckDB's version in its path: loaded from there, nothing
    # is downloaded.
    extension = pathlib.Path(duckdb_extension_delta.__file__).parent / f"extensions/v{duckdb.__version__}/delta.duckdb_extension"
    connection = duckdb.connect()
    connection.execute(f"LOAD '{extension}'")
    cursor = connection.execute(
        f"SELECT {', '.join(COLUMNS[:-1])}, strftime(eventtime AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') "
        "FROM delta_scan(?)",
        [location],
    )
    return [dict(zip(COLUMNS, row)) for row in cursor.fetchall()]


def deltalake_rows(location, storage_options):
    from deltalake import DeltaTable

    table = DeltaTable(location, storage_options=storage_options).to_pyarrow_table(columns=COLUMNS)
    return [{**row, "eventtime": iso(row["eventtime"])} for row in table.to_pylist()]


def sharing_rows(profile, table):
    import delta_sharing

    client = delta_sharing.SharingClient(profile)
    listed = [t.name for t in client.list_all_tables()]
    if table not in listed:
        raise SystemExit(f"table {table} is not among the shared tables {listed}")
    frame = delta_sharing.load_as_pandas(f"{profile}#aws_cloudtrail.default.{table}")
    rows = []
    for record in frame[COLUMNS].to_dict("records"):
        time = record["eventtime"]
        rows.append({**record, "eventtime": iso(time.to_pydatetime()) if time is not None else None})
    return rows


def main():
    kind = sys.argv[1]
    if kind == "duckdb":
        rows = duckdb_rows(sys.argv[2])
    elif kind == "deltalake":
        rows = deltalake_rows(sys.argv[2], json.loads(sys.argv[3]) if len(sys.argv) > 3 else None)
    elif kind == "sharing":
        rows = sharing_rows(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown reader {kind}")
    json.dump(rows, sys.stdout)
    sys.stdout.flush()
    # The readers' native threads (pyarrow's) may abort the interpreter's teardown ("terminate
    # called without an active exception", seen once in CI on the S3 root) after every row is
    # written; the rows are out, so the process ends here without that teardown.
    os._exit(0)


if __name__ == "__main__":
    main()
