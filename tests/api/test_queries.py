"""The query lifecycle through boto3 against the running server, on events stored with
`traillake load`: statuses, statistics, rendering, paging (also across a restart), ListQueries,
the per-account limit, cancel, the time limit, retention, and the modelled errors."""

import datetime
import json
import re
import subprocess
import threading
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, Server, binary, error_code, store_id

TERMINAL = {"FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"}


def load(server, store, *paths):
    """Runs `traillake load` on the server's root; returns (exit code, stdout)."""
    done = subprocess.run(
        [binary(), "load", "--root", server.root, "--store", store, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env=server.env,
    )
    return done.returncode, done.stdout + done.stderr


def records(count, start, step_seconds=1, **fields):
    """Returns `count` CloudTrail records from `start`, `step_seconds` apart, each with its own eventID."""
    out = []
    for index in range(count):
        time_of = start + datetime.timedelta(seconds=index * step_seconds)
        out.append(
            {
                "eventVersion": "1.08",
                "eventTime": time_of.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": "s3.amazonaws.com",
                "eventName": ["GetObject", "PutObject", "ListBuckets"][index % 3],
                "awsRegion": "us-east-1",
                "sourceIPAddress": f"10.0.{index % 7}.{index % 250}",
                "eventID": str(uuid.UUID(int=index + 1)),
                "readOnly": index % 2 == 0,
                "userIdentity": {"type": "IAMUser", "arn": f"arn:aws:iam::{ACCOUNT}:user/u{index % 5}"},
                "requestParameters": {"bucketName": "b", "n": index},
                **fields,
            }
        )
    return out


def write_records(path, items):
    path.write_text(json.dumps({"Records": items}))
    return path


def wait(cloudtrail, query_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        reply = cloudtrail.describe_query(QueryId=query_id)
        if reply["QueryStatus"] in TERMINAL or time.monotonic() > deadline:
            return reply
        time.sleep(0.1)


def all_rows(cloudtrail, query_id, page_rows=1000):
    rows, token = [], None
    while True:
        kwargs = {"QueryId": query_id, "MaxQueryResults": page_rows}
        if token:
            kwargs["NextToken"] = token
        page = cloudtrail.get_query_results(**kwargs)
        rows.extend(page["QueryResultRows"])
        token = page.get("NextToken")
        if not token:
            return rows


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


@pytest.fixture
def loaded(server, tmp_path):
    """A store holding 2,500 events of the last hours; returns (client, store ID)."""
    cloudtrail = server.client()
    arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="events", RetentionPeriod=90)["EventDataStoreArn"]
    start = now_utc() - datetime.timedelta(hours=3)
    code, output = load(server, "events", write_records(tmp_path / "events.json", records(2500, start)))
    assert code == 0, output
    assert "2500 stored" in output, output
    return cloudtrail, store_id(arn)


def test_query_lifecycle_statistics_and_rendering(loaded):
    cloudtrail, eds = loaded
    query_id = cloudtrail.start_query(
        QueryStatement=f"SELECT eventName, count(*) AS n, min(eventTime) AS firstSeen, bool_and(readOnly), "
        f"element_at(requestParameters, 'bucketName') AS bucket, userIdentity.arn "
        f"FROM {eds} WHERE eventTime > '2000-01-01 00:00:00' "
        f"GROUP BY eventName, element_at(requestParameters, 'bucketName'), userIdentity.arn ORDER BY n DESC, eventName, userIdentity.arn"
    )["QueryId"]
    described = wait(cloudtrail, query_id)
    assert described["QueryStatus"] == "FINISHED", described
    statistics = described["QueryStatistics"]
    assert statistics["EventsScanned"] == 2500 and statistics["EventsMatched"] == 2500, statistics
    assert statistics["BytesScanned"] > 0 and statistics["ExecutionTimeInMillis"] >= 0
    assert abs((statistics["CreationTime"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()) < 60
    assert described["QueryString"].startswith("SELECT eventName")

    results = cloudtrail.get_query_results(QueryId=query_id)
    assert results["QueryStatus"] == "FINISHED"
    assert results["QueryStatistics"]["ResultsCount"] == results["QueryStatistics"]["TotalResultsCount"] == 15
    first = results["QueryResultRows"][0]
    keys = [next(iter(column)) for column in first]
    assert keys == ["eventName", "n", "firstSeen", "_col3", "bucket", "arn"], first
    values = {k: v for column in first for k, v in column.items()}
    assert values["n"] == "167" and values["bucket"] == "b"
    assert values["_col3"] in ("true", "false")
    datetime.datetime.strptime(values["firstSeen"], "%Y-%m-%d %H:%M:%S.%f")
    assert "NextToken" not in results

    listed = cloudtrail.list_queries(EventDataStore=eds)["Queries"]
    assert [q["QueryId"] for q in listed] == [query_id] and listed[0]["QueryStatus"] == "FINISHED"
    assert cloudtrail.list_queries(EventDataStore=eds, QueryStatus="FAILED")["Queries"] == []
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
    assert cloudtrail.list_queries(EventDataStore=eds, StartTime=later)["Queries"] == []

    # A page token holds only for the filters of the call that returned it.
    second = cloudtrail.start_query(QueryStatement=f"SELECT count(*) FROM {eds}")["QueryId"]
    wait(cloudtrail, second)
    page = cloudtrail.list_queries(EventDataStore=eds, MaxResults=1)
    assert len(page["Queries"]) == 1 and page["NextToken"]
    rest = cloudtrail.list_queries(EventDataStore=eds, MaxResults=1, NextToken=page["NextToken"])
    assert {q["QueryId"] for q in page["Queries"] + rest["Queries"]} == {query_id, second}
    for other in ({"QueryStatus": "FINISHED"}, {"StartTime": datetime.datetime(2020, 1, 1)}):
        with pytest.raises(ClientError) as raised:
            cloudtrail.list_queries(EventDataStore=eds, MaxResults=1, NextToken=page["NextToken"], **other)
        assert error_code(raised) == "InvalidNextTokenException", other


def test_events_matched_counts_the_rows_the_where_clause_keeps(loaded):
    cloudtrail, eds = loaded
    query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {eds} WHERE eventName = 'GetObject'")["QueryId"]
    statistics = wait(cloudtrail, query_id)["QueryStatistics"]
    assert statistics["EventsScanned"] == 2500 and statistics["EventsMatched"] == 834, statistics
    assert cloudtrail.get_query_results(QueryId=query_id)["QueryStatistics"]["TotalResultsCount"] == 834


def test_each_query_sees_the_events_stored_before_it_started(server, loaded, tmp_path):
    cloudtrail, eds = loaded

    def count():
        query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {eds}")["QueryId"]
        assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
        return cloudtrail.get_query_results(QueryId=query_id)["QueryResultRows"][0][0]["n"]

    assert count() == "2500"
    more = [dict(r, eventID=f"more-{i}") for i, r in enumerate(records(7, now_utc() - datetime.timedelta(minutes=30)))]
    code, output = load(server, "events", write_records(tmp_path / "more.json", more))
    assert code == 0, output
    assert count() == "2507"


def test_nulls_are_left_out_and_nested_values_render_as_trino_text(loaded):
    cloudtrail, eds = loaded
    query_id = cloudtrail.start_query(
        QueryStatement=f"SELECT eventID, errorCode, userIdentity, requestParameters, resources FROM {eds} "
        f"ORDER BY eventTime LIMIT 1"
    )["QueryId"]
    assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
    row = cloudtrail.get_query_results(QueryId=query_id)["QueryResultRows"][0]
    values = {k: v for column in row for k, v in column.items()}
    assert "errorCode" not in values and "resources" not in values
    assert values["requestParameters"] == "{bucketName=b, n=0}"
    assert values["userIdentity"].startswith("{type=IAMUser, principalid=null, arn=arn:aws:iam::")


def test_paging_2500_rows_survives_a_restart(server, loaded):
    cloudtrail, eds = loaded
    query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {eds} ORDER BY eventTime")["QueryId"]
    assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
    first = cloudtrail.get_query_results(QueryId=query_id, MaxQueryResults=1000)
    assert first["QueryStatistics"] == {"ResultsCount": 1000, "TotalResultsCount": 2500, "BytesScanned": first["QueryStatistics"]["BytesScanned"]}
    token = first["NextToken"]

    server.stop()
    server.start()
    cloudtrail = server.client()
    rows = first["QueryResultRows"]
    while token:
        page = cloudtrail.get_query_results(QueryId=query_id, MaxQueryResults=1000, NextToken=token)
        rows.extend(page["QueryResultRows"])
        token = page.get("NextToken")
    ids = [row[0]["eventID"] for row in rows]
    assert ids == [str(uuid.UUID(int=i + 1)) for i in range(2500)]
    assert cloudtrail.describe_query(QueryId=query_id)["QueryStatus"] == "FINISHED"

    other = cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {eds} LIMIT 3")["QueryId"]
    wait(cloudtrail, other)
    with pytest.raises(cloudtrail.exceptions.InvalidNextTokenException):
        cloudtrail.get_query_results(QueryId=other, NextToken=first["NextToken"])
    with pytest.raises(cloudtrail.exceptions.InvalidNextTokenException):
        cloudtrail.get_query_results(QueryId=query_id, NextToken="bm90IGEgdG9rZW4")


def server_with_events(tmp_path, *flags):
    """Starts a server with `flags` and a store of 600 recent events; returns (server, client, store ID)."""
    server = Server(tmp_path / "lake", *flags).start()
    cloudtrail = server.client()
    eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="events")["EventDataStoreArn"])
    code, output = load(server, "events", write_records(tmp_path / "e.json", records(600, now_utc() - datetime.timedelta(hours=1))))
    assert code == 0, output
    return server, cloudtrail, eds


HEAVY = "SELECT count(*) FROM {eds} a CROSS JOIN {eds} b CROSS JOIN {eds} c WHERE a.eventName <> c.eventID"


def test_eleven_queries_and_cancel_stops_the_work(tmp_path):
    server, cloudtrail, eds = server_with_events(tmp_path, "--query-slots", "1")
    try:
        queries = [cloudtrail.start_query(QueryStatement=HEAVY.format(eds=eds))["QueryId"] for _ in range(10)]
        with pytest.raises(cloudtrail.exceptions.MaxConcurrentQueriesException):
            cloudtrail.start_query(QueryStatement=f"SELECT 1 FROM {eds}")
        deadline = time.monotonic() + 10
        while True:
            statuses = [cloudtrail.describe_query(QueryId=q)["QueryStatus"] for q in queries]
            if "RUNNING" in statuses or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert statuses.count("RUNNING") == 1 and statuses.count("QUEUED") == 9, statuses
        running = queries[statuses.index("RUNNING")]

        for query_id in queries:
            reply = cloudtrail.cancel_query(QueryId=query_id)
            assert reply["QueryStatus"] == "CANCELLED"
        with pytest.raises(cloudtrail.exceptions.InactiveQueryException):
            cloudtrail.cancel_query(QueryId=running)
        # The one execution slot is free again only if the cancelled query really stopped.
        quick = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {eds}")["QueryId"]
        assert wait(cloudtrail, quick, timeout=30)["QueryStatus"] == "FINISHED"
        assert cloudtrail.get_query_results(QueryId=quick)["QueryResultRows"] == [[{"n": "600"}]]
        described = cloudtrail.describe_query(QueryId=running)
        assert described["QueryStatus"] == "CANCELLED"
        assert {q["QueryStatus"] for q in cloudtrail.list_queries(EventDataStore=eds, QueryStatus="CANCELLED")["Queries"]} == {"CANCELLED"}
        assert len(cloudtrail.list_queries(EventDataStore=eds, QueryStatus="CANCELLED", MaxResults=4)["Queries"]) == 4
    finally:
        server.stop()


def test_describe_query_waits_for_the_end_of_a_running_query(tmp_path):
    """DescribeQuery of a running query answers when the query ends, or after --describe-query-wait."""
    server, cloudtrail, eds = server_with_events(tmp_path, "--describe-query-wait", "20s")
    try:
        heavy = cloudtrail.start_query(QueryStatement=HEAVY.format(eds=eds))["QueryId"]
        cancel = threading.Timer(0.5, lambda: cloudtrail.cancel_query(QueryId=heavy))
        began = time.monotonic()
        cancel.start()
        described = cloudtrail.describe_query(QueryId=heavy)
        elapsed = time.monotonic() - began
        cancel.join()
        assert described["QueryStatus"] == "CANCELLED", described
        assert 0.4 < elapsed < 10, elapsed
    finally:
        server.stop()
    server, cloudtrail, eds = server_with_events(tmp_path / "bounded", "--describe-query-wait", "300ms")
    try:
        heavy = cloudtrail.start_query(QueryStatement=HEAVY.format(eds=eds))["QueryId"]
        began = time.monotonic()
        described = cloudtrail.describe_query(QueryId=heavy)
        elapsed = time.monotonic() - began
        assert described["QueryStatus"] in ("QUEUED", "RUNNING"), described
        assert 0.25 < elapsed < 10, elapsed
        cloudtrail.cancel_query(QueryId=heavy)
    finally:
        server.stop()


def test_time_limit_ends_in_timed_out(tmp_path):
    server, cloudtrail, eds = server_with_events(tmp_path, "--query-time-limit", "2s")
    try:
        query_id = cloudtrail.start_query(QueryStatement=HEAVY.format(eds=eds))["QueryId"]
        described = wait(cloudtrail, query_id, timeout=30)
        assert described["QueryStatus"] == "TIMED_OUT", described
        assert "time limit" in described["ErrorMessage"]
        assert cloudtrail.get_query_results(QueryId=query_id)["QueryStatus"] == "TIMED_OUT"
    finally:
        server.stop()


# A group per event: the aggregation's state is several times the memory it is given.
WIDE_GROUP_BY = "SELECT count(*) AS groups, sum(n) AS events FROM (SELECT eventID, count(*) AS n FROM {eds} GROUP BY eventID)"


def test_queries_spill_within_their_memory_and_fail_cleanly_beyond_it(tmp_path):
    items = records(100000, now_utc() - datetime.timedelta(hours=30))
    spill = tmp_path / "spill"
    spill.mkdir()
    server = Server(tmp_path / "lake", "--query-memory", "16MiB", "--spill-directory", str(spill)).start()
    try:
        cloudtrail = server.client()
        eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="wide")["EventDataStoreArn"])
        code, output = load(server, "wide", write_records(tmp_path / "wide.json", items))
        assert code == 0 and "100000 stored" in output, output
        query_id = cloudtrail.start_query(QueryStatement=WIDE_GROUP_BY.format(eds=eds))["QueryId"]
        described = wait(cloudtrail, query_id, timeout=300)
        assert described["QueryStatus"] == "FINISHED", described.get("ErrorMessage")
        assert all_rows(cloudtrail, query_id) == [[{"groups": "100000"}, {"events": "100000"}]]
        ended = [line for line in server.log().splitlines() if f"query_id={query_id}" in line and "query ended" in line]
        spilled = re.search(r"spilled_bytes=(\d+)", ended[0]) if ended else None
        assert spilled and int(spilled.group(1)) > 0, ended
    finally:
        server.stop()

    # With memory too small even to spill, the query fails with ResourcesExhausted; the server
    # goes on answering.
    server = Server(tmp_path / "lake", "--query-memory", "256KiB").start()
    try:
        cloudtrail = server.client()
        query_id = cloudtrail.start_query(QueryStatement=WIDE_GROUP_BY.format(eds=eds))["QueryId"]
        described = wait(cloudtrail, query_id, timeout=300)
        assert described["QueryStatus"] == "FAILED", described
        assert "Resources exhausted" in described["ErrorMessage"], described["ErrorMessage"]
        quick = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {eds}")["QueryId"]
        assert wait(cloudtrail, quick)["QueryStatus"] == "FINISHED"
        assert cloudtrail.get_query_results(QueryId=quick)["QueryResultRows"] == [[{"n": "100000"}]]
    finally:
        server.stop()


def test_result_rows_count_against_query_memory_and_leave_it_once_kept(tmp_path):
    items = records(50000, now_utc() - datetime.timedelta(hours=30))
    # 8 MiB for executing queries; a result cache of 1 KiB, which holds no result.
    server = Server(tmp_path / "lake", "--query-memory", "8MiB", "--result-cache", "1KiB").start()
    try:
        cloudtrail = server.client()
        eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="big")["EventDataStoreArn"])
        code, output = load(server, "big", write_records(tmp_path / "big.json", items))
        assert code == 0 and "50000 stored" in output, output

        # 50,000 whole records (about 20 MB) are more than the queries' memory: the query fails
        # with ResourcesExhausted, naming its results, instead of holding them.
        whole = cloudtrail.start_query(QueryStatement=f"SELECT eventJson FROM {eds}")["QueryId"]
        described = wait(cloudtrail, whole, timeout=300)
        assert described["QueryStatus"] == "FAILED", described
        assert "Resources exhausted" in described["ErrorMessage"] and "results" in described["ErrorMessage"], described["ErrorMessage"]

        # Results that fit are kept under the root and leave memory: each page is read back, and
        # the memory they took is free for the next query (three results of about 5 MB each in
        # turn would not fit in 8 MiB together).
        query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {eds} ORDER BY eventID LIMIT 2500")["QueryId"]
        assert wait(cloudtrail, query_id, timeout=120)["QueryStatus"] == "FINISHED"
        assert [row[0]["eventID"] for row in all_rows(cloudtrail, query_id)] == sorted(item["eventID"] for item in items)[:2500]
        for _ in range(3):
            query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventID, eventJson FROM {eds} LIMIT 12000")["QueryId"]
            described = wait(cloudtrail, query_id, timeout=120)
            assert described["QueryStatus"] == "FINISHED", described
            assert len(all_rows(cloudtrail, query_id)) == 12000
    finally:
        server.stop()


def test_retention_is_exact_at_query_time(server, tmp_path):
    cloudtrail = server.client()
    arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="kept", RetentionPeriod=3653)["EventDataStoreArn"]
    eds = store_id(arn)
    old = records(10, now_utc() - datetime.timedelta(days=30))
    recent = [dict(r, eventID=f"recent-{i}") for i, r in enumerate(records(5, now_utc() - datetime.timedelta(days=1)))]
    code, output = load(server, "kept", write_records(tmp_path / "mixed.json", old + recent))
    assert code == 0 and "15 stored" in output, output

    def count():
        query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {eds}")["QueryId"]
        assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
        return cloudtrail.get_query_results(QueryId=query_id)["QueryResultRows"][0][0]["n"]

    assert count() == "15"
    cloudtrail.update_event_data_store(EventDataStore=arn, RetentionPeriod=7)
    assert count() == "5"
    code, output = load(server, "kept", write_records(tmp_path / "old.json", records(3, now_utc() - datetime.timedelta(days=20))))
    assert code == 0 and "3 older than the store's 7-day retention (not stored)" in output, output


def test_bad_statements_and_references(loaded, server):
    cloudtrail, eds = loaded
    # What the SQL front end and the planner refuse, and with which message, is tested in
    # crates/traillake-query/tests/slt/dialect.slt; here, that a refusal reaches the wire as
    # InvalidQueryStatementException with its message, and the length limit of StartQuery.
    for statement, message in [
        (f"DELETE FROM {eds}", "only SELECT statements are allowed, not DELETE FROM"),
        (f"SELECT * FROM read_parquet('/etc/passwd')", "table functions are not allowed: read_parquet(...) in FROM"),
        ("x" * 10001, "10000"),
    ]:
        with pytest.raises(cloudtrail.exceptions.InvalidQueryStatementException) as excinfo:
            cloudtrail.start_query(QueryStatement=statement)
        assert message in excinfo.value.response["Error"]["Message"], statement[:80]
    with pytest.raises(cloudtrail.exceptions.QueryIdNotFoundException):
        cloudtrail.describe_query(QueryId=str(uuid.uuid4()))
    with pytest.raises(cloudtrail.exceptions.QueryIdNotFoundException):
        cloudtrail.get_query_results(QueryId=str(uuid.uuid4()))
    with pytest.raises(cloudtrail.exceptions.EventDataStoreNotFoundException):
        cloudtrail.start_query(QueryStatement=f"SELECT 1 FROM {eds}", EventDataStoreOwnerAccountId="210987654321")
    with pytest.raises(cloudtrail.exceptions.InvalidS3BucketNameException):
        cloudtrail.start_query(QueryStatement=f"SELECT 1 FROM {eds}", DeliveryS3Uri="s3://Bucket_Name/prefix")
    with pytest.raises(cloudtrail.exceptions.InvalidDateRangeException):
        cloudtrail.list_queries(EventDataStore=eds, StartTime=datetime.datetime(2025, 1, 2), EndTime=datetime.datetime(2025, 1, 1))
    status, _, reply = server.raw({"EventDataStore": eds, "QueryStatus": "DONE"}, target="ListQueries")
    assert status == 400 and reply["__type"] == "InvalidQueryStatusException", reply

    query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {eds} LIMIT 1")["QueryId"]
    wait(cloudtrail, query_id)
    cloudtrail.update_event_data_store(EventDataStore=eds, TerminationProtectionEnabled=False)
    cloudtrail.delete_event_data_store(EventDataStore=eds)
    with pytest.raises(cloudtrail.exceptions.InactiveEventDataStoreException):
        cloudtrail.start_query(QueryStatement=f"SELECT eventID FROM {eds}")
    with pytest.raises(cloudtrail.exceptions.InactiveEventDataStoreException):
        cloudtrail.get_query_results(QueryId=query_id)
    with pytest.raises(cloudtrail.exceptions.InactiveEventDataStoreException):
        cloudtrail.list_queries(EventDataStore=eds)


def test_queries_on_an_s3_root(s3_env, s3_bucket, tmp_path):
    server = Server(f"s3://{s3_bucket}/lake", env=s3_env).start()
    try:
        cloudtrail = server.client()
        eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="events")["EventDataStoreArn"])
        code, output = load(server, "events", write_records(tmp_path / "e.json", records(300, now_utc() - datetime.timedelta(hours=2))))
        assert code == 0 and "300 stored" in output, output
        query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventName, count(*) AS n FROM {eds} GROUP BY eventName ORDER BY eventName")["QueryId"]
        described = wait(cloudtrail, query_id)
        assert described["QueryStatus"] == "FINISHED", described
        assert described["QueryStatistics"]["BytesScanned"] > 0
        rows = cloudtrail.get_query_results(QueryId=query_id)["QueryResultRows"]
        assert rows == [[{"eventName": name}, {"n": "100"}] for name in ("GetObject", "ListBuckets", "PutObject")]
        server.stop()
        server.start()
        assert server.client().get_query_results(QueryId=query_id)["QueryResultRows"] == rows
    finally:
        server.stop()
