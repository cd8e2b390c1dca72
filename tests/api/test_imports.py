"""Imports through boto3 against the running server, reading real trail log files from moto's S3
server: grycap-cloudtrail-tracker laid out in the trail layout with digest files, an Insights
folder and broken files beside it; exact counts and failures, a time-bounded import, a retry
after a fix, StopImport then retry, kill -9 then restart, and the modelled errors."""

import datetime
import gzip
import json
import re
import signal
import subprocess
import time

import boto3
import pytest

from conftest import ACCOUNT, REGION, REPO, Server, binary, store_id
from test_queries import all_rows, wait

GRYCAP = REPO.parent / "shared/data/trails/grycap-cloudtrail-tracker"
NAME = re.compile(r"^(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})Z_[A-Za-z0-9]+\.json(\.gz)?$")
ROLE = f"arn:aws:iam::{ACCOUNT}:role/CloudTrailImport"
BUCKET = "trail-logs"
DAY = "AWSLogs/974349055189/CloudTrail/us-east-1/2017/06/01/"
ENDED = {"COMPLETED", "FAILED", "STOPPED"}


def s3_client(url):
    return boto3.client("s3", endpoint_url=url, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def gz(document):
    return gzip.compress(json.dumps(document).encode())


def grycap_layout():
    """Returns {key: bytes}: each grycap file at its place in the trail layout; a name found in two
    folders is laid once, from the first path in sorted order."""
    layout = {}
    for path in sorted(GRYCAP.rglob("*")):
        match = NAME.match(path.name)
        if path.is_file() and match:
            account, region, year, month, day = match.groups()[:5]
            layout.setdefault(f"AWSLogs/{account}/CloudTrail/{region}/{year}/{month}/{day}/{path.name}", path.read_bytes())
    return layout


def extras():
    """Objects beside the logs: skipped ones, and three broken log files."""
    record = {"eventVersion": "1.05", "eventTime": "2017-06-01T10:00:00Z", "eventSource": "s3.amazonaws.com",
              "eventName": "GetObject", "awsRegion": "us-east-1", "eventID": "insight-like"}
    corrupt = gz({"Records": [record] * 50})
    return {
        "AWSLogs/974349055189/CloudTrail-Digest/us-east-1/2017/06/01/974349055189_CloudTrail-Digest_us-east-1_t_us-east-1_20170601T100000Z.json.gz":
            gz({"digestStartTime": "2017-06-01T09:00:00Z", "logFiles": []}),
        "AWSLogs/974349055189/CloudTrail-Insight/us-east-1/2017/06/01/974349055189_CloudTrail-Insight_us-east-1_20170601T1000Z_abc.json.gz":
            gz({"Records": [record]}),
        "AWSLogs/974349055189/elasticloadbalancing/us-east-1/2017/06/01/lb.log.gz": gz({"Records": [record]}),
        "README.txt": b"not a log",
        DAY + "974349055189_CloudTrail_us-east-1_20170601T2350Z_plainjson0000000.json.gz": json.dumps({"Records": [record]}).encode(),
        DAY + "974349055189_CloudTrail_us-east-1_20170601T2351Z_corruptgzip00000.json.gz": corrupt[: len(corrupt) // 2],
        DAY + "974349055189_CloudTrail_us-east-1_20170601T2352Z_brokenjson000000.json.gz": gzip.compress(b'{"Records": [{"eventTime": '),
    }


def event_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def expected(objects, retention_days, start=None, end=None):
    """What an import of `objects` stores: (events, files stored, failed keys, day prefixes), with
    the selection by names and the retention computed here, from today."""
    oldest = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=retention_days)
    events, files, failed, prefixes = 0, 0, set(), set()
    for key, data in objects.items():
        parts = key.split("/")
        if len(parts) != 8 or parts[2] != "CloudTrail":
            continue
        day = datetime.date(int(parts[4]), int(parts[5]), int(parts[6]))
        if (start and day < start.date()) or (end and day > end.date()):
            continue
        match = NAME.match(parts[7])
        if match:
            delivered = datetime.datetime(*map(int, match.groups()[2:7]), tzinfo=datetime.timezone.utc)
            if (start and delivered < start.replace(second=0)) or (end and delivered > end):
                continue
        prefixes.add("/".join(parts[:7]))
        try:
            assert data[:2] == b"\x1f\x8b"
            records = json.loads(gzip.decompress(data))["Records"]
        except Exception:
            failed.add(key)
            continue
        files += 1
        events += sum(1 for r in records if event_time(r["eventTime"]) >= oldest)
    return events, files, failed, prefixes


def expected_statistics(objects, retention_days):
    """Returns the ImportStatistics of a whole import of `objects` into a store keeping `retention_days`."""
    events, files, failed, prefixes = expected(objects, retention_days)
    return {
        "PrefixesFound": len(prefixes),
        "PrefixesCompleted": len(prefixes),
        "FilesCompleted": files,
        "EventsCompleted": events,
        "FailedEntries": len(failed),
    }


@pytest.fixture(scope="module")
def trail_bucket(s3_server):
    """The bucket of trail logs, filled once; returns {key: bytes} of what it holds."""
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket=BUCKET)
    objects = {**grycap_layout(), **extras()}
    for key, data in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return objects


def importer(tmp_path, s3_env, commit_rows=500, *flags):
    """A server on a local root whose imports read moto's S3 server and commit every `commit_rows` events."""
    return Server(tmp_path / "lake", "--import-commit-rows", str(commit_rows), *flags, env=s3_env).start()


def start_import(cloudtrail, store_arn, uri=f"s3://{BUCKET}", **times):
    return cloudtrail.start_import(
        Destinations=[store_arn],
        ImportSource={"S3": {"S3LocationUri": uri, "S3BucketRegion": REGION, "S3BucketAccessRoleArn": ROLE}},
        **times,
    )


def wait_import(cloudtrail, import_id, timeout=600, until=lambda reply: reply["ImportStatus"] in ENDED):
    deadline = time.monotonic() + timeout
    while True:
        reply = cloudtrail.get_import(ImportId=import_id)
        if until(reply):
            return reply
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)


def count(cloudtrail, store, where=""):
    query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {store} {where}")["QueryId"]
    assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
    return int(all_rows(cloudtrail, query_id)[0][0]["n"])


def failures(cloudtrail, import_id):
    out, token = [], None
    while True:
        page = cloudtrail.list_import_failures(ImportId=import_id, MaxResults=2, **({"NextToken": token} if token else {}))
        out.extend(page["Failures"])
        token = page.get("NextToken")
        if not token:
            return out


def test_import_of_real_trail_logs_is_exact(tmp_path, s3_env, trail_bucket):
    server = importer(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="trails", RetentionPeriod=3653)["EventDataStoreArn"]
        started = start_import(cloudtrail, arn)
        assert started["ImportStatus"] == "INITIALIZING"
        assert started["Destinations"] == [arn]
        assert started["ImportSource"]["S3"] == {"S3LocationUri": f"s3://{BUCKET}", "S3BucketRegion": REGION, "S3BucketAccessRoleArn": ROLE}
        assert "ImportStatistics" not in started
        done = wait_import(cloudtrail, started["ImportId"])
        events, _, failed, _ = expected(trail_bucket, 3653)
        assert len(failed) >= 3 and events > 10000
        assert done["ImportStatus"] == "FAILED"
        assert done["ImportStatistics"] == expected_statistics(trail_bucket, 3653)
        listed = failures(cloudtrail, started["ImportId"])
        assert {f["Location"] for f in listed} == failed
        assert {f["Status"] for f in listed} == {"FAILED"}
        kinds = {f["Location"].rsplit("_", 1)[1]: f["ErrorType"] for f in listed}
        assert kinds["plainjson0000000.json.gz"] == "InvalidFileFormat"
        assert kinds["corruptgzip00000.json.gz"] == "InvalidFileFormat"
        assert kinds["brokenjson000000.json.gz"] == "InvalidJson"
        assert all(f["ErrorMessage"] and f["LastUpdatedTime"] for f in listed)
        store = store_id(arn)
        assert count(cloudtrail, store) == events
        assert count(cloudtrail, store, "WHERE eventID = 'insight-like'") == 0
        listing = cloudtrail.list_imports(Destination=arn, ImportStatus="FAILED")["Imports"]
        assert [i["ImportId"] for i in listing] == [started["ImportId"]]
        assert cloudtrail.list_imports(ImportStatus="COMPLETED")["Imports"] == []
    finally:
        server.stop()


def test_time_bounded_import_reads_only_its_days(tmp_path, s3_env, trail_bucket):
    server = importer(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="bounded", RetentionPeriod=3653)["EventDataStoreArn"]
        start = datetime.datetime(2017, 6, 1, 6, 30, 45, tzinfo=datetime.timezone.utc)
        end = datetime.datetime(2017, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
        started = start_import(cloudtrail, arn, StartEventTime=start, EndEventTime=end)
        done = wait_import(cloudtrail, started["ImportId"])
        events, files, failed, prefixes = expected(trail_bucket, 3653, start, end)
        assert events > 0 and len(failed) == 1, "one uncompressed .json log of grycap lies in the window"
        assert done["ImportStatus"] == "FAILED"
        assert {f["Location"] for f in failures(cloudtrail, started["ImportId"])} == failed
        assert done["StartEventTime"] == start and done["EndEventTime"] == end
        statistics = done["ImportStatistics"]
        assert (statistics["FilesCompleted"], statistics["EventsCompleted"], statistics["PrefixesFound"]) == (files, events, len(prefixes))
        assert count(cloudtrail, store_id(arn)) == events
    finally:
        server.stop()


def test_retry_after_a_fix_stores_each_event_once(tmp_path, s3_env, s3_server):
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="retry-logs")
    day = "old/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/01/"
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    def log(n, offset):
        return {"Records": [{"eventVersion": "1.08", "eventTime": (now - datetime.timedelta(minutes=offset + i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "eu-west-1",
                             "eventID": f"e-{offset}-{i}"} for i in range(n)]}
    good = {day + f"111122223333_CloudTrail_eu-west-1_20261101T00{n}0Z_good{n}.json.gz": gz(log(10, 100 * n)) for n in range(3)}
    broken_key = day + "111122223333_CloudTrail_eu-west-1_20261101T0050Z_broken.json.gz"
    for key, data in {**good, broken_key: b"plain text"}.items():
        s3.put_object(Bucket="retry-logs", Key=key, Body=data)
    server = importer(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="retry", RetentionPeriod=90)["EventDataStoreArn"]
        import_id = start_import(cloudtrail, arn, uri="s3://retry-logs/old")["ImportId"]
        first = wait_import(cloudtrail, import_id)
        assert first["ImportStatus"] == "FAILED"
        assert first["ImportStatistics"]["EventsCompleted"] == 30
        assert count(cloudtrail, store_id(arn)) == 30
        with pytest.raises(cloudtrail.exceptions.InvalidParameterException):
            cloudtrail.start_import(ImportId=import_id, Destinations=[arn])
        s3.put_object(Bucket="retry-logs", Key=broken_key, Body=gz(log(7, 1000)))
        retried = cloudtrail.start_import(ImportId=import_id)
        assert retried["ImportId"] == import_id and retried["ImportStatus"] == "INITIALIZING"
        done = wait_import(cloudtrail, import_id)
        assert done["ImportStatus"] == "COMPLETED"
        assert done["ImportStatistics"]["EventsCompleted"] == 37
        assert done["ImportStatistics"]["FailedEntries"] == 0
        [entry] = cloudtrail.list_import_failures(ImportId=import_id)["Failures"]
        assert (entry["Location"], entry["Status"]) == (broken_key, "SUCCEEDED")
        assert count(cloudtrail, store_id(arn)) == 37
        with pytest.raises(cloudtrail.exceptions.InvalidParameterException) as excinfo:
            cloudtrail.start_import(ImportId=import_id)
        assert "COMPLETED" in str(excinfo.value)
    finally:
        server.stop()


def test_stop_then_retry_and_the_errors_of_a_running_import(tmp_path, s3_env, trail_bucket):
    server = importer(tmp_path, s3_env, 100, "--import-files-in-flight", "1")
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="stopped", RetentionPeriod=3653)["EventDataStoreArn"]
        import_id = start_import(cloudtrail, arn)["ImportId"]
        wait_import(cloudtrail, import_id, until=lambda r: r["ImportStatistics"]["FilesCompleted"] > 0)
        with pytest.raises(cloudtrail.exceptions.AccountHasOngoingImportException):
            start_import(cloudtrail, arn)
        with pytest.raises(cloudtrail.exceptions.AccountHasOngoingImportException):
            cloudtrail.start_import(ImportId=import_id)
        with pytest.raises(cloudtrail.exceptions.EventDataStoreHasOngoingImportException):
            cloudtrail.update_event_data_store(EventDataStore=arn, RetentionPeriod=3000)
        with pytest.raises(cloudtrail.exceptions.EventDataStoreHasOngoingImportException):
            cloudtrail.delete_event_data_store(EventDataStore=arn)
        asked = time.monotonic()
        stopped = cloudtrail.stop_import(ImportId=import_id)
        assert time.monotonic() - asked < 5
        assert stopped["ImportStatus"] == "STOPPED"
        assert cloudtrail.get_import(ImportId=import_id)["ImportStatus"] == "STOPPED"
        assert cloudtrail.stop_import(ImportId=import_id)["ImportStatus"] == "STOPPED"
        partial = count(cloudtrail, store_id(arn))
        assert partial == cloudtrail.get_import(ImportId=import_id)["ImportStatistics"]["EventsCompleted"]
        events, _, failed, _ = expected(trail_bucket, 3653)
        assert partial < events
        cloudtrail.start_import(ImportId=import_id)
        done = wait_import(cloudtrail, import_id)
        assert done["ImportStatus"] == "FAILED"
        assert done["ImportStatistics"]["EventsCompleted"] == events
        assert done["ImportStatistics"]["FailedEntries"] == len(failed)
        assert count(cloudtrail, store_id(arn)) == events
    finally:
        server.stop()


def test_kill_9_in_the_middle_resumes_at_start_and_stores_each_event_once(tmp_path, s3_env, trail_bucket):
    server = importer(tmp_path, s3_env, 100, "--import-files-in-flight", "1")
    cloudtrail = server.client()
    arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="killed", RetentionPeriod=3653)["EventDataStoreArn"]
    import_id = start_import(cloudtrail, arn)["ImportId"]
    wait_import(cloudtrail, import_id, until=lambda r: r["ImportStatistics"]["FilesCompleted"] > 100)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    server = Server(server.root, *server.args, env=s3_env).start()
    try:
        cloudtrail = server.client()
        done = wait_import(cloudtrail, import_id)
        events, files, failed, _ = expected(trail_bucket, 3653)
        assert done["ImportStatus"] == "FAILED"
        assert (done["ImportStatistics"]["EventsCompleted"], done["ImportStatistics"]["FilesCompleted"]) == (events, files)
        assert {f["Location"] for f in failures(cloudtrail, import_id)} == failed
        assert count(cloudtrail, store_id(arn)) == events
    finally:
        server.stop()


def test_the_modelled_errors(tmp_path, s3_env, s3_server, trail_bucket):
    server = importer(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="target", RetentionPeriod=3653)["EventDataStoreArn"]
        missing = str(__import__("uuid").uuid4())
        for call in (cloudtrail.get_import, cloudtrail.stop_import):
            with pytest.raises(cloudtrail.exceptions.ImportNotFoundException):
                call(ImportId=missing)
        with pytest.raises(cloudtrail.exceptions.ImportNotFoundException):
            cloudtrail.start_import(ImportId=missing)
        with pytest.raises(cloudtrail.exceptions.InvalidParameterException) as excinfo:
            cloudtrail.list_import_failures(ImportId=missing)
        assert "ImportId" in str(excinfo.value)
        with pytest.raises(cloudtrail.exceptions.InvalidImportSourceException) as excinfo:
            start_import(cloudtrail, arn, uri="s3://no-such-bucket-here/logs")
        assert "s3://no-such-bucket-here/logs" in str(excinfo.value)
        with pytest.raises(cloudtrail.exceptions.InvalidImportSourceException):
            start_import(cloudtrail, arn, uri="https://example.com/logs")
        with pytest.raises(cloudtrail.exceptions.EventDataStoreNotFoundException):
            start_import(cloudtrail, arn.rsplit("/", 1)[0] + "/" + missing)
        with pytest.raises(cloudtrail.exceptions.EventDataStoreARNInvalidException):
            start_import(cloudtrail, "arn:aws:cloudtrail:us-east-1:999999999999:eventdatastore/" + missing)
        audit = cloudtrail.create_event_data_store(
            Name="audit",
            AdvancedEventSelectors=[{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}],
        )["EventDataStoreArn"]
        with pytest.raises(cloudtrail.exceptions.InvalidEventDataStoreCategoryException):
            start_import(cloudtrail, audit)
        gone = cloudtrail.create_event_data_store(Name="gone", TerminationProtectionEnabled=False)["EventDataStoreArn"]
        cloudtrail.delete_event_data_store(EventDataStore=gone)
        with pytest.raises(cloudtrail.exceptions.InactiveEventDataStoreException):
            start_import(cloudtrail, gone)
        with pytest.raises(cloudtrail.exceptions.InvalidParameterException) as excinfo:
            cloudtrail.start_import(
                Destinations=[arn],
                ImportSource={"S3": {"S3LocationUri": f"s3://{BUCKET}", "S3BucketRegion": "nowhere", "S3BucketAccessRoleArn": ROLE}},
            )
        assert "S3BucketRegion" in str(excinfo.value)
        with pytest.raises(cloudtrail.exceptions.InvalidParameterException):
            server.client(validate=False).list_imports(MaxResults=0)
        with pytest.raises(cloudtrail.exceptions.InvalidNextTokenException):
            cloudtrail.list_imports(NextToken="bogus")
        with pytest.raises(cloudtrail.exceptions.InvalidParameterException):
            server.client(validate=False).get_import(ImportId="not-an-id")
        assert cloudtrail.list_imports()["Imports"] == []
    finally:
        server.stop()


def test_list_imports_pages(tmp_path, s3_env, s3_server):
    s3_client(s3_server).create_bucket(Bucket="empty-logs")
    server = importer(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="paged", RetentionPeriod=90)["EventDataStoreArn"]
        ids = []
        for _ in range(3):
            import_id = start_import(cloudtrail, arn, uri="s3://empty-logs")["ImportId"]
            done = wait_import(cloudtrail, import_id)
            assert done["ImportStatus"] == "COMPLETED"
            assert done["ImportStatistics"] == {"PrefixesFound": 0, "PrefixesCompleted": 0, "FilesCompleted": 0, "EventsCompleted": 0, "FailedEntries": 0}
            ids.append(import_id)
        seen, token = [], None
        while True:
            page = cloudtrail.list_imports(MaxResults=2, **({"NextToken": token} if token else {}))
            assert len(page["Imports"]) <= 2
            seen.extend(i["ImportId"] for i in page["Imports"])
            token = page.get("NextToken")
            if not token:
                break
        assert seen == ids
        assert all(i["Destinations"] == [arn] for i in cloudtrail.list_imports()["Imports"])
    finally:
        server.stop()


def test_the_import_command_runs_the_same_import(tmp_path, s3_env, s3_server, trail_bucket):
    server = importer(tmp_path, s3_env)
    arn = server.client().create_event_data_store(StartIngestion=False, Name="cli", RetentionPeriod=3653)["EventDataStoreArn"]
    server.stop()
    day_uri = f"s3://{BUCKET}/AWSLogs/974349055189/CloudTrail/sa-east-1/"
    command = [binary(), "import", "--root", server.root, "--store", "cli", day_uri]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=server.env)
    output = done.stdout + done.stderr
    only_sa = {k: v for k, v in trail_bucket.items() if k.startswith("AWSLogs/974349055189/CloudTrail/sa-east-1/")}
    events, files, failed, prefixes = expected(only_sa, 3653)
    assert events > 0, "grycap has sa-east-1 logs inside the retention"
    assert (done.returncode == 0) == (not failed), output
    assert f"{files} files, {events} events stored, {len(failed)} failed" in output, output
    restarted = Server(server.root, *server.args, env=s3_env).start()
    try:
        cloudtrail = restarted.client()
        [listed] = cloudtrail.list_imports(Destination=arn)["Imports"]
        assert listed["ImportStatus"] == ("FAILED" if failed else "COMPLETED")
        assert cloudtrail.get_import(ImportId=listed["ImportId"])["ImportSource"]["S3"]["S3LocationUri"] == day_uri
        assert count(cloudtrail, store_id(arn)) == events
    finally:
        restarted.stop()
    refused = subprocess.run([binary(), "import", "--root", server.root, "--store", "nope", day_uri],
                             capture_output=True, text=True, timeout=60, env=server.env)
    assert refused.returncode != 0 and "nope" in refused.stderr, refused.stderr


def test_an_import_through_a_failing_and_stalling_s3_is_exact(tmp_path, s3_env, s3_server, trail_bucket):
    from test_faults import FaultyS3

    proxy = FaultyS3(s3_server, fail=0.15, stall=0.05, lose=0.05)
    server = importer(tmp_path, dict(s3_env, AWS_ENDPOINT_URL_S3=proxy.url))
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="trails", RetentionPeriod=3653)["EventDataStoreArn"]
        done = wait_import(cloudtrail, start_import(cloudtrail, arn)["ImportId"])
        events, _, failed, _ = expected(trail_bucket, 3653)
        assert done["ImportStatistics"] == expected_statistics(trail_bucket, 3653), "only the broken files fail; the 503s are retried"
        assert {f["Location"] for f in failures(cloudtrail, done["ImportId"])} == failed
        assert count(cloudtrail, store_id(arn)) == events
        assert proxy.counts["failed"] > 10 and proxy.counts["stalled"] > 0, proxy.counts
    finally:
        server.stop()
        proxy.close()


def test_log_files_outside_the_trail_layout_are_read(tmp_path, s3_env, s3_server):
    """Log files copied to a prefix of their own (no AWSLogs/ layout) are read, as the reference
    says a custom prefix in S3LocationUri works; digest files beside them are not."""
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="copied-logs")
    layout = grycap_layout()
    chosen = sorted(layout)[:6]
    objects = {f"exports/flat/{key.rsplit('/', 1)[1]}": layout[key] for key in chosen[:5]}
    objects["exports/renamed/events-0001.json.gz"] = layout[chosen[5]]
    objects["exports/flat/974349055189_CloudTrail-Digest_us-east-1_t_us-east-1_20170601T100000Z.json.gz"] = gz(
        {"digestStartTime": "2017-06-01T09:00:00Z", "logFiles": []})
    for key, data in objects.items():
        s3.put_object(Bucket="copied-logs", Key=key, Body=data)
    oldest = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3653)
    records = [r for key in chosen for r in json.loads(gzip.decompress(layout[key]))["Records"]]
    expected_events = sum(1 for r in records if event_time(r["eventTime"]) >= oldest)
    assert expected_events > 0
    server = importer(tmp_path, s3_env)
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(StartIngestion=False, Name="copied", RetentionPeriod=3653)["EventDataStoreArn"]
        done = wait_import(cloudtrail, start_import(cloudtrail, arn, uri="s3://copied-logs/exports/")["ImportId"])
        assert done["ImportStatus"] == "COMPLETED", done
        assert done["ImportStatistics"]["FilesCompleted"] == 6 and done["ImportStatistics"]["FailedEntries"] == 0
        assert done["ImportStatistics"]["EventsCompleted"] == expected_events
        assert count(cloudtrail, store_id(arn)) == expected_events
    finally:
        server.stop()
