"""Following a trail bucket on moto's S3 server (`serve --follow`): the real grycap trail logs,
moved to recent days, arrive in the bucket while the server runs; their management events reach
the Event history that LookupEvents reads, and each store takes what its selectors select
(checked against the same selectors applied to the raw records); the follower's progress is kept
under the root; a kill -9 while following, then a restart, stores each event exactly once."""

import datetime
import gzip
import json
import signal
import time

import pytest

from conftest import ACCOUNT, REGION, Server, store_id
from test_activity import lookup_all, selected
from test_channels import query
from test_imports import REPO, grycap_layout, s3_client

STRATUS = REPO.parent / "shared/data/trails/stratus-red-team-detonation-logs"

KEY = "AKIAFOLLOWTEST000001"


def derived_category(record):
    """The category of a record written before eventCategory existed, by the documented rule."""
    if record.get("eventCategory"):
        return record["eventCategory"]
    s3_object = any(r.get("type") == "AWS::S3::Object" for r in record.get("resources", []))
    lambda_invoke = record.get("eventSource") == "lambda.amazonaws.com" and record.get("eventName") == "Invoke"
    return "Data" if record.get("managementEvent") is False or s3_object or lambda_invoke else "Management"


def takes(record, selectors, multi_region=True):
    facts = dict(record, eventCategory=derived_category(record))
    return (multi_region or record.get("awsRegion") == REGION) and any(selected(facts, s) for s in selectors)


def shifted(layout, newest):
    """The files of `layout` moved in time so that the newest record is at `newest`, in the trail
    layout of this test's account: {key: (bytes, records)}."""
    files = {}
    for key, data in layout.items():
        try:
            records = json.loads(gzip.decompress(data))["Records"]
        except Exception:
            continue
        files[key] = records
    latest = max(datetime.datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")) for rs in files.values() for r in rs)
    delta = newest - latest
    out = {}
    for key, records in files.items():
        parts = key.split("/")
        region, name = parts[3], parts[7]
        unique = name.rsplit("_", 1)[1]
        moved = []
        for record in records:
            time_ = datetime.datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00")) + delta
            moved.append(dict(record, eventTime=time_.strftime("%Y-%m-%dT%H:%M:%SZ"), recipientAccountId=ACCOUNT))
        delivered = max(datetime.datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")) for r in moved)
        new_key = (f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
                   f"{ACCOUNT}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{unique}")
        out[new_key] = (gzip.compress(json.dumps({"Records": moved}).encode()), moved)
    return out


def stratus_layout():
    """The Stratus Red Team detonation logs (v1.08 records with readOnly, many Regions) as trail
    log files: one per Region, in that Region's folder. {key: bytes}."""
    by_region = {}
    for path in sorted(STRATUS.glob("*.json")):
        document = json.loads(path.read_text())
        for record in document if isinstance(document, list) else document.get("Records", [document]):
            by_region.setdefault(record["awsRegion"], []).append(record)
    layout = {}
    for region, records in by_region.items():
        newest = max(r["eventTime"] for r in records)
        day, minute = newest[:10].replace("-", "/"), newest[:16].replace("-", "").replace(":", "")
        key = f"AWSLogs/{ACCOUNT}/CloudTrail/{region}/{day}/{ACCOUNT}_CloudTrail_{region}_{minute}Z_stratus{len(layout):04d}.json.gz"
        layout[key] = gzip.compress(json.dumps({"Records": records}).encode())
    return layout


def put_all(s3, bucket, files):
    """Puts log files in key order, so that each Region's arrive day after day as a trail writes them."""
    for key in sorted(files):
        s3.put_object(Bucket=bucket, Key=key, Body=files[key][0])


def follow_state(server, name):
    path = server.root and (__import__("pathlib").Path(server.root) / "follow" / name / "state.json")
    return json.loads(path.read_text()) if path.exists() else None


def wait_followed(server, name, files, timeout=300):
    deadline = time.monotonic() + timeout
    while True:
        state = follow_state(server, name)
        status = (state or {}).get("status", {})
        if status.get("filesRead", 0) + status.get("filesFailed", 0) >= files:
            return status
        assert time.monotonic() < deadline, (status, server.log()[-3000:])
        time.sleep(0.3)


def store_ids(cloudtrail, arn):
    rows = query(cloudtrail, f"SELECT eventID FROM {store_id(arn)} WHERE coalesce(userIdentity.accessKeyId, '') <> '{KEY}'")
    return sorted(row[0]["eventID"] for row in rows)


@pytest.fixture(scope="module")
def recent_grycap():
    """The grycap logs moved so that their newest event is two hours old."""
    newest = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(hours=2)
    return shifted(grycap_layout(), newest)


def test_a_followed_bucket_feeds_the_event_history_and_the_stores_its_events_select(tmp_path, s3_env, s3_server):
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="follow-a")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    grycap = grycap_layout()
    # One day of us-east-1 (with KMS calls, which a selector excludes, and S3 object events), a few
    # sa-east-1 files and the Stratus logs, moved to the last hours; the last three files of the
    # day arrive later, as a trail's next deliveries do.
    day = sorted(k for k in grycap if "/us-east-1/2017/06/01/" in k)
    south = sorted(k for k in grycap if "/sa-east-1/" in k)[:5]
    moved = shifted({key: grycap[key] for key in day}, now - datetime.timedelta(hours=3))
    later_keys = sorted(moved, key=lambda key: key.split("/")[4:])[-3:]
    files = {key: value for key, value in moved.items() if key not in later_keys}
    files.update(shifted({key: grycap[key] for key in south}, now - datetime.timedelta(hours=5)))
    files.update(shifted(stratus_layout(), now - datetime.timedelta(hours=1)))
    broken = f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{datetime.date.today():%Y/%m/%d}/{ACCOUNT}_CloudTrail_us-east-1_{datetime.datetime.utcnow():%Y%m%dT%H%MZ}_broken.json.gz"

    server = Server(tmp_path / "lake", "--follow", "s3://follow-a", "--follow-interval", "1s", env=s3_env).start()
    try:
        cloudtrail = server.client(access_key=KEY)
        selectors = {
            "s3-data": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                            {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}],
            "writes": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                           {"Field": "readOnly", "Equals": ["false"]}]}],
            "no-kms": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                           {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}]}],
        }
        arns = {name: cloudtrail.create_event_data_store(Name=f"follow-{name}", RetentionPeriod=3653,
                                                         AdvancedEventSelectors=chosen)["EventDataStoreArn"]
                for name, chosen in selectors.items()}
        management = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]
        arns["here"] = cloudtrail.create_event_data_store(Name="follow-here", RetentionPeriod=3653, MultiRegionEnabled=False,
                                                         AdvancedEventSelectors=management)["EventDataStoreArn"]
        arns["stopped"] = cloudtrail.create_event_data_store(Name="follow-stopped", RetentionPeriod=3653, StartIngestion=False,
                                                            AdvancedEventSelectors=management)["EventDataStoreArn"]

        put_all(s3, "follow-a", files)
        s3.put_object(Bucket="follow-a", Key=broken, Body=b"\x1f\x8b not really gzip")
        s3.put_object(Bucket="follow-a", Key=f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/x.json.gz", Body=b"{}")
        status = wait_followed(server, "follow-a", len(files) + 1)

        records = [r for _, rs in files.values() for r in rs]
        assert status["source"] == "s3://follow-a/"
        assert (status["filesRead"], status["filesFailed"], status["eventsRead"]) == (len(files), 1, len(records))
        assert broken in status["lastError"]
        assert status["newestFile"] in files or status["newestFile"] == broken
        assert status["lagSeconds"] >= 0 and status["lastPoll"]

        for name, chosen in selectors.items():
            expected = sorted(r["eventID"] for r in records if takes(r, chosen))
            assert expected, name
            assert store_ids(cloudtrail, arns[name]) == expected, name
        assert store_ids(cloudtrail, arns["here"]) == sorted(
            r["eventID"] for r in records if takes(r, management, multi_region=False))
        assert any(r["awsRegion"] != REGION and takes(r, management) for r in records), "the other Regions' events exist"
        assert any(r["eventSource"] == "kms.amazonaws.com" for r in records), "KMS calls exist, and no-kms leaves them"
        assert store_ids(cloudtrail, arns["stopped"]) == []

        # The Event history has the management events of the last 90 days, for LookupEvents.
        oldest = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=90)
        history = [r for r in records if derived_category(r) == "Management"
                   and datetime.datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")) >= oldest]
        names = {}
        for record in history:
            names[record["eventName"]] = names.get(record["eventName"], 0) + 1
        name = max((n for n, c in names.items() if c <= 80), key=lambda n: names[n])
        found = lookup_all(cloudtrail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": name}])
        assert sorted(e["EventId"] for e in found) == sorted(r["eventID"] for r in history if r["eventName"] == name)
        times = [e["EventTime"] for e in found]
        assert times == sorted(times, reverse=True)

        # Files that arrive later are read at the next poll; ones already read are not read again.
        later = {key: moved[key] for key in later_keys}
        put_all(s3, "follow-a", later)
        status = wait_followed(server, "follow-a", len(files) + 1 + len(later))
        assert status["eventsRead"] == len(records) + sum(len(rs) for _, rs in later.values())
        more = [r for _, rs in later.values() for r in rs]
        assert store_ids(cloudtrail, arns["no-kms"]) == sorted(
            r["eventID"] for r in records + more if takes(r, selectors["no-kms"]))
    finally:
        server.stop()


def test_kill_9_while_following_then_restart_stores_each_event_once(tmp_path, s3_env, s3_server, recent_grycap):
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="follow-b")
    server = Server(tmp_path / "lake", "--follow", "s3://follow-b", "--follow-interval", "1s", env=s3_env).start()
    cloudtrail = server.client(access_key=KEY)
    everything = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]},
                  {"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]},
                                      {"Field": "resources.type", "Equals": ["AWS::S3::Object"]}]}]
    arn = cloudtrail.create_event_data_store(Name="follow-all", RetentionPeriod=3653,
                                             AdvancedEventSelectors=everything)["EventDataStoreArn"]
    put_all(s3, "follow-b", recent_grycap)
    total_files = len(recent_grycap)
    deadline = time.monotonic() + 300
    while True:
        # Killed while a batch is under way: begun in the state, maybe partly stored.
        state = follow_state(server, "follow-b") or {}
        status = state.get("status", {})
        if status.get("filesRead", 0) >= 64 and state.get("pending"):
            break
        assert time.monotonic() < deadline, server.log()[-3000:]
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=20)
    assert status["filesRead"] < total_files, "the kill came before the end"

    server = Server(server.root, *server.args, env=s3_env).start()
    try:
        cloudtrail = server.client(access_key=KEY)
        status = wait_followed(server, "follow-b", total_files)
        records = [r for _, rs in recent_grycap.values() for r in rs]
        expected = sorted(r["eventID"] for r in records if takes(r, everything))
        assert store_ids(cloudtrail, arn) == expected, "each event stored once"
        assert status["filesFailed"] == 0 and status["filesRead"] >= total_files
    finally:
        server.stop()
