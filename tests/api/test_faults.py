"""kill -9 of the server in the middle of its background work, then a restart: compaction and
retention cleanup lose nothing that is kept, store nothing twice, and leave the store queryable;
a result delivery cut by a kill is done again when the server starts, and its sign file lists
exactly the result's rows; an S3 server that fails and stalls a share of requests slows the lake down but
loses nothing, nor does one whose replies to conditional puts are lost after they took effect.
(kill -9 during PutAuditEvents and during an import: test_channels.py and
test_imports.py.)"""

import csv
import datetime
import gzip
import hashlib
import io
import json
import random
import signal
import time

from conftest import Server, store_id
from test_delivery import check_signature, delivered_objects, s3_client, wait_delivered
from test_queries import all_rows, load, now_utc, records, wait, write_records


def count(cloudtrail, eds, where=""):
    """Returns (events, distinct eventIDs, events whose stored record reads back) of the store."""
    statement = f"SELECT count(*) AS n, count(DISTINCT eventID) AS d, coalesce(sum(CASE WHEN eventJson LIKE '%eventID%' THEN 1 ELSE 0 END), 0) AS j FROM {eds} {where}"
    query_id = cloudtrail.start_query(QueryStatement=statement)["QueryId"]
    described = wait(cloudtrail, query_id, timeout=120)
    assert described["QueryStatus"] == "FINISHED", described
    row = cloudtrail.get_query_results(QueryId=query_id)["QueryResultRows"][0]
    return tuple(int(cell[key]) for cell, key in zip(row, ("n", "d", "j")))


def kill(server):
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=20)


def test_kills_during_compaction_and_retention_cleanup_lose_nothing(tmp_path):
    root = tmp_path / "lake"
    server = Server(root).start()
    cloudtrail = server.client()
    eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="events", RetentionPeriod=3653)["EventDataStoreArn"])
    # 12 appends a day over 3 recent days (days of many small files, which maintenance compacts),
    # and 4 appends of events 40 days old, which retention drops once it is cut to 7 days.
    recent, old = 0, 0
    for batch in range(12):
        for day in range(3):
            start = now_utc() - datetime.timedelta(days=day, hours=2)
            items = [dict(r, eventID=f"r-{batch}-{day}-{i}") for i, r in enumerate(records(150, start + datetime.timedelta(minutes=batch)))]
            code, output = load(server, "events", write_records(tmp_path / "r.json", items))
            assert code == 0, output
            recent += len(items)
    for batch in range(4):
        items = [dict(r, eventID=f"o-{batch}-{i}") for i, r in enumerate(records(100, now_utc() - datetime.timedelta(days=40, minutes=batch)))]
        code, output = load(server, "events", write_records(tmp_path / "o.json", items))
        assert code == 0, output
        old += len(items)
    assert count(cloudtrail, eds) == (recent + old,) * 3
    cloudtrail.update_event_data_store(EventDataStore=eds, RetentionPeriod=7)
    server.stop()

    # Maintenance runs at start and then every 50 ms: each kill lands somewhere in a compaction, a
    # retention commit or a vacuum, or between them.
    rng = random.Random(11)
    for _ in range(8):
        server = Server(root, "--maintenance-interval", "50ms").start()
        time.sleep(rng.uniform(0.05, 1.5))
        kill(server)

    server = Server(root, "--maintenance-interval", "50ms").start()
    try:
        cloudtrail = server.client()
        deadline = time.monotonic() + 60
        while "compacted a day" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert count(cloudtrail, eds) == (recent,) * 3, "every kept event once, none of the dropped ones"
        assert count(cloudtrail, eds, "WHERE eventID LIKE 'o-%'") == (0, 0, 0)
    finally:
        server.stop()


def test_a_delivery_cut_by_a_kill_is_done_again_at_start(tmp_path, s3_env, s3_server, s3_bucket):
    # S3 stalls half of the requests, so that the delivery of the result's files takes seconds
    # and the kill lands in it.
    proxy = FaultyS3(s3_server, fail=0, stall=0.5)
    env = dict(s3_env, AWS_ENDPOINT_URL_S3=proxy.url)
    root = tmp_path / "lake"
    server = Server(root, "--delivery-file-bytes", "200000", env=env).start()
    cloudtrail = server.client()
    eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="events", RetentionPeriod=90)["EventDataStoreArn"])
    code, output = load(server, "events", write_records(tmp_path / "e.json", records(40000, now_utc() - datetime.timedelta(hours=20))))
    assert code == 0, output
    statement = f"SELECT eventID, eventTime, eventName, eventJson FROM {eds}"
    query_id = cloudtrail.start_query(QueryStatement=statement, DeliveryS3Uri=f"s3://{s3_bucket}/exports")["QueryId"]
    deadline = time.monotonic() + 120
    while cloudtrail.describe_query(QueryId=query_id)["QueryStatus"] != "FINISHED" and time.monotonic() < deadline:
        time.sleep(0.01)
    kill(server)

    server = Server(root, env=env).start()
    try:
        cloudtrail = server.client()
        described = wait_delivered(cloudtrail, query_id, timeout=120)
        assert "delivering them again" in server.log(), "the kill landed after the delivery"
        assert (described["QueryStatus"], described["DeliveryStatus"]) == ("FINISHED", "SUCCESS"), described
        rows = all_rows(cloudtrail, query_id)
        assert len(rows) == 40000 and len({row[0]["eventID"] for row in rows}) == 40000
        # The sign file lists whole files whose rows are the result's, each once.
        s3 = s3_client(s3_server)
        [sign_key] = [key for key in delivered_objects(s3, s3_bucket, "exports/") if key.endswith("result_sign.json")]
        sign = json.loads(s3.get_object(Bucket=s3_bucket, Key=sign_key)["Body"].read())
        check_signature(cloudtrail, sign)
        folder = sign_key.rsplit("/", 1)[0]
        delivered = []
        for entry in sign["files"]:
            body = s3.get_object(Bucket=s3_bucket, Key=f"{folder}/{entry['fileName']}")["Body"].read()
            assert hashlib.sha256(body).hexdigest() == entry["fileHashValue"]
            delivered.extend(list(csv.reader(io.StringIO(gzip.decompress(body).decode())))[1:])
        assert sorted(row[0] for row in delivered) == sorted(row[0]["eventID"] for row in rows)
        assert count(cloudtrail, eds) == (40000,) * 3
    finally:
        server.stop()
        proxy.close()


class FaultyS3:
    """An HTTP proxy in front of moto's S3 server that answers a share of requests 503 SlowDown
    without forwarding them, stalls another share before forwarding, and answers a third share
    500 InternalError after forwarding them (done, but the caller cannot know), as a struggling
    S3-compatible server does. With `lose_conditional`, the first reply to each conditional PUT
    (If-None-Match / If-Match) of a path and version is lost that way, which the client's retry then finds
    refused (412) since the first attempt took effect."""

    def __init__(self, upstream, fail=0.15, stall=0.1, lose=0.0, lose_conditional=False, seed=5):
        import http.server
        import threading
        import urllib.parse

        target = urllib.parse.urlparse(upstream)
        rng = random.Random(seed)
        lock = threading.Lock()
        counts = {"requests": 0, "failed": 0, "stalled": 0, "lost": 0}
        lost_paths = set()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def relay(self):
                import http.client

                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conditional = self.command == "PUT" and ("If-None-Match" in self.headers or "If-Match" in self.headers)
                with lock:
                    counts["requests"] += 1
                    roll = rng.random()
                    attempt = (self.path, self.headers.get("If-Match"))
                    lose_this = lose_conditional and conditional and attempt not in lost_paths
                    if lose_this:
                        lost_paths.add(attempt)
                        roll = 1.0
                if roll < fail and not lose_this:
                    with lock:
                        counts["failed"] += 1
                    self.reply(503, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>")
                    return
                if roll < fail + stall and not lose_this:
                    with lock:
                        counts["stalled"] += 1
                    time.sleep(0.3)
                upstream_connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                headers = {key: value for key, value in self.headers.items() if key.lower() not in ("connection", "transfer-encoding")}
                upstream_connection.request(self.command, self.path, body=body, headers=headers)
                answer = upstream_connection.getresponse()
                payload = answer.read()
                upstream_connection.close()
                if lose_this or roll >= 1 - lose:
                    with lock:
                        counts["lost"] += 1
                    self.reply(500, b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>")
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def reply(self, status, payload):
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay

        self.counts = counts
        self.lost_paths = lost_paths
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def send_events(server, requests, pause=0.0):
    """Creates a channel store and its channel, sends `requests` PutAuditEvents of 50 events each
    (`pause` seconds after each), checks that none failed, and returns (store ID, events sent)."""
    from test_channels import event_data

    cloudtrail = server.client()
    selectors = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
    store = cloudtrail.create_event_data_store(Name="audit", AdvancedEventSelectors=selectors, MultiRegionEnabled=False)["EventDataStoreArn"]
    channel = cloudtrail.create_channel(Name="app", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}])["ChannelArn"]
    data = server.client("cloudtrail-data")
    acknowledged = 0
    for request in range(requests):
        events = [{"id": f"e{i}", "eventData": event_data(request * 100 + i, time_text=now_utc().strftime("%Y-%m-%dT%H:%M:%SZ"))} for i in range(50)]
        reply = data.put_audit_events(channelArn=channel, auditEvents=events)
        assert reply["failed"] == [], reply["failed"][:2]
        acknowledged += len(reply["successful"])
        time.sleep(pause)
    return store_id(store), acknowledged


def test_a_failing_and_stalling_s3_slows_the_lake_but_loses_nothing(tmp_path, s3_env, s3_server, s3_bucket):
    proxy = FaultyS3(s3_server, lose=0.1)
    env = dict(s3_env, AWS_ENDPOINT_URL_S3=proxy.url)
    root = f"s3://{s3_bucket}/faulty"
    server = Server(root, env=env).start()
    try:
        eds, acknowledged = send_events(server, 20)
        assert count(server.client(), eds)[:2] == (acknowledged, acknowledged)
        time.sleep(6)  # past the write-ahead log's flush
    finally:
        server.stop()
    assert min(proxy.counts.values()) > 0, proxy.counts

    # Read back through the same faulty server after a restart, and once more through moto itself.
    for endpoint in (proxy.url, s3_server):
        server = Server(root, env=dict(s3_env, AWS_ENDPOINT_URL_S3=endpoint)).start()
        try:
            cloudtrail = server.client()
            assert count(cloudtrail, eds)[:2] == (acknowledged, acknowledged)
        finally:
            server.stop()
    proxy.close()


def test_conditional_puts_whose_reply_is_lost_are_neither_failed_nor_doubled(tmp_path, s3_env, s3_server, s3_bucket):
    """Every conditional PUT of the lake (write-ahead log segments, Delta commits, the root's lease
    and its renewals) is stored but its first reply lost: the retry is refused with 412, which
    must be read as the write's own success, not as another writer's."""
    proxy = FaultyS3(s3_server, fail=0, stall=0, lose_conditional=True)
    root = f"s3://{s3_bucket}/lost-replies"
    server = Server(root, env=dict(s3_env, AWS_ENDPOINT_URL_S3=proxy.url)).start()
    try:
        # Each group flushed in a Delta commit of its own (6 s apart); the lease renewed on the way.
        eds, acknowledged = send_events(server, 3, pause=6)
        assert count(server.client(), eds)[:2] == (acknowledged, acknowledged)
        assert server.process.poll() is None, "the server kept its lease"
    finally:
        server.stop()
    log = server.log()
    for written in ("/wal/", "/_delta_log/", "traillake.lock"):
        assert any(written in path for path, _ in proxy.lost_paths), (written, sorted(proxy.lost_paths))
    assert any(path.endswith("traillake.lock") and version for path, version in proxy.lost_paths), "a renewal's reply was lost"
    assert "another server took over" not in log

    server = Server(root, env=dict(s3_env, AWS_ENDPOINT_URL_S3=s3_server)).start()
    try:
        assert count(server.client(), eds)[:2] == (acknowledged, acknowledged)
    finally:
        server.stop()
    proxy.close()
