"""Queries on a cluster: a server started with --workers and two `traillake worker` processes on
loopback ports, reading the same lake root (a shared folder, or a bucket on moto's S3 server), each
scan split into one task per worker however small (--worker-task-bytes 1).

Every lake sample gives on the cluster the rows and statistics it gives in a single server; a
worker killed mid-query fails the query with a clear ErrorMessage (and the next query runs on the
worker left); CancelQuery stops the tasks on the workers; workers that cannot serve the root are
refused with the reason."""

import datetime
import os
import pathlib
import re
import signal
import subprocess
import time

import pytest

from conftest import Server, binary, store_id
from test_lake_samples import REFUSED, SAMPLES, TRAILS, stores_of_samples, substitute
from test_queries import all_rows, load, records, wait, write_records

SECRET = "a cluster secret"


class Worker:
    """A `traillake worker` process."""

    def __init__(self, root, *args, env=None):
        self.log_path = pathlib.Path(f"/tmp/traillake-worker-{os.getpid()}-{time.monotonic_ns()}.log")
        self.process = subprocess.Popen(
            [binary(), "worker", "--root", str(root), "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=open(self.log_path, "w"),
            env=dict(os.environ, **(env or {})),
            text=True,
        )
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.wait(timeout=10)
            raise RuntimeError(f"worker did not start: {line!r} {self.log_path.read_text()}")
        self.address = line.split("listening on ", 1)[1].split()[0]

    def cpu_seconds(self):
        """The CPU time the process has used so far (user and system)."""
        fields = pathlib.Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)


@pytest.fixture
def cluster(tmp_path):
    """A server on a local root with two workers; yields (server, [worker, worker])."""
    root = tmp_path / "lake"
    root.mkdir()
    workers = [Worker(root, "--cluster-secret", SECRET) for _ in range(2)]
    server = Server(
        root, "--workers", ",".join(w.address for w in workers), "--worker-task-bytes", "1", "--cluster-secret", SECRET
    ).start()
    yield server, workers
    server.stop()
    for worker in workers:
        worker.stop()


def run_samples(cloudtrail, ids):
    """Runs every sample that must finish; returns {name: (sorted rows, row count, statistics)}."""
    answers = {}
    for path in sorted(SAMPLES.glob("*.sql")):
        if any(r in path.name for r in REFUSED):
            continue
        sql = substitute(path.read_text(), *ids)
        query_id = cloudtrail.start_query(QueryStatement=sql)["QueryId"]
        described = wait(cloudtrail, query_id, timeout=120)
        assert described["QueryStatus"] == "FINISHED", (path.name, described)
        rows = all_rows(cloudtrail, query_id)
        statistics = {k: described["QueryStatistics"][k] for k in ("EventsScanned", "EventsMatched", "BytesScanned")}
        limited = "LIMIT" in sql.upper()
        answers[path.name] = (None if limited else sorted(map(repr, rows)), len(rows), None if limited else statistics)
    return answers


def test_every_sample_gives_on_two_workers_what_it_gives_in_one_server(tmp_path, capsys):
    root = tmp_path / "lake"
    alone = Server(root).start()
    cloudtrail = alone.client()
    ids = stores_of_samples(cloudtrail)
    code, output = load(alone, "trails", TRAILS)
    assert code == 1 and int(re.search(r"(\d+) stored", output).group(1)) > 10_000, output
    single = run_samples(cloudtrail, ids)
    alone.stop()

    workers = [Worker(root, "--cluster-secret", SECRET) for _ in range(2)]
    server = Server(
        root, "--workers", ",".join(w.address for w in workers), "--worker-task-bytes", "1", "--cluster-secret", SECRET
    ).start()
    try:
        distributed = run_samples(server.client(), ids)
        on_workers = server.log().count("the query runs on workers")
    finally:
        server.stop()
        for worker in workers:
            worker.stop()
    assert distributed.keys() == single.keys()

    def same(name, one, two):
        # The rows and their number are the same, and so are the statistics; but a join that finds
        # one side empty stops reading the other as soon as it knows, which depends on timing (in
        # one server too): a sample with a join or a sub-query counts no more on the workers.
        (rows1, count1, stats1), (rows2, count2, stats2) = one, two
        if (rows1, count1) != (rows2, count2) or (stats1 is None) != (stats2 is None):
            return False
        if stats1 is None or stats1 == stats2:
            return True
        sql = (SAMPLES / name).read_text().upper()
        joined = " JOIN " in sql or re.search(r"\bIN\s*\(\s*SELECT", sql) is not None
        return joined and all(stats2[key] <= stats1[key] for key in stats1)

    differences = [name for name in single if not same(name, single[name], distributed[name])]
    assert not differences, [(name, single[name][1:], distributed[name][1:]) for name in differences]
    with capsys.disabled():
        print(f"\n{len(single)} samples equal on two workers, {on_workers} of them ran there")
    # The others read no file: their eventTime bounds miss the trails' days.
    assert on_workers >= 15


def test_a_cluster_on_an_s3_root(s3_env, s3_bucket, tmp_path):
    root = f"s3://{s3_bucket}/lake"
    workers = [Worker(root, env=s3_env) for _ in range(2)]
    server = Server(
        root, "--workers", ",".join(w.address for w in workers), "--worker-task-bytes", "1", env=s3_env
    ).start()
    try:
        cloudtrail = server.client()
        eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="events", RetentionPeriod=90)["EventDataStoreArn"])
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
        code, output = load(server, "events", write_records(tmp_path / "events.json", records(3000, start, step_seconds=60)))
        assert code == 0, output
        query_id = cloudtrail.start_query(
            QueryStatement=f"SELECT eventName, count(*) AS n FROM {eds} GROUP BY eventName ORDER BY eventName"
        )["QueryId"]
        described = wait(cloudtrail, query_id)
        assert described["QueryStatus"] == "FINISHED", described
        rows = all_rows(cloudtrail, query_id)
        assert rows == [
            [{"eventName": name}, {"n": "1000"}] for name in ("GetObject", "ListBuckets", "PutObject")
        ], rows
        assert described["QueryStatistics"]["EventsScanned"] == 3000
        assert described["QueryStatistics"]["EventsMatched"] == 3000
        assert "the query runs on workers" in server.log()
    finally:
        server.stop()
        for worker in workers:
            worker.stop()


def heavy_query(eds):
    """A query that keeps both workers busy for minutes, streaming rows: every pair of events of
    the same name, each pair's text built."""
    return (
        f"SELECT a.eventID, b.eventID FROM {eds} a JOIN {eds} b ON a.eventName = b.eventName "
        f"WHERE length(concat(a.eventJson, b.eventID)) > 100"
    )


def loaded_trails(server):
    cloudtrail = server.client()
    eds = store_id(cloudtrail.create_event_data_store(StartIngestion=False, Name="trails", RetentionPeriod=3653)["EventDataStoreArn"])
    load(server, "trails", TRAILS)
    return cloudtrail, eds


def running_on_workers(cloudtrail, query_id, workers):
    """Waits until the query runs and the workers spend CPU on it."""
    before = [w.cpu_seconds() for w in workers]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.5)
        assert cloudtrail.describe_query(QueryId=query_id)["QueryStatus"] in ("QUEUED", "RUNNING")
        if all(w.cpu_seconds() - b > 0.5 for w, b in zip(workers, before)):
            return
    pytest.fail("the workers did not start the query's tasks")


def test_a_worker_lost_mid_query_fails_it_and_the_next_query_runs(cluster):
    server, workers = cluster
    cloudtrail, eds = loaded_trails(server)
    query_id = cloudtrail.start_query(QueryStatement=heavy_query(eds))["QueryId"]
    running_on_workers(cloudtrail, query_id, workers)
    workers[0].process.send_signal(signal.SIGKILL)
    lost = time.monotonic()
    described = wait(cloudtrail, query_id, timeout=60)
    assert described["QueryStatus"] == "FAILED", described
    assert time.monotonic() - lost < 30
    message = described["ErrorMessage"]
    assert "worker" in message and workers[0].address in message, message

    # The lost worker is left out; the next query runs on the other one.
    time.sleep(6)
    query_id = cloudtrail.start_query(QueryStatement=f"SELECT eventSource, count(*) FROM {eds} GROUP BY eventSource")["QueryId"]
    described = wait(cloudtrail, query_id, timeout=60)
    assert described["QueryStatus"] == "FINISHED", described
    assert "worker left out" in server.log()


def test_cancel_stops_the_tasks_on_the_workers(cluster):
    server, workers = cluster
    cloudtrail, eds = loaded_trails(server)
    query_id = cloudtrail.start_query(QueryStatement=heavy_query(eds))["QueryId"]
    running_on_workers(cloudtrail, query_id, workers)
    assert cloudtrail.cancel_query(QueryId=query_id)["QueryStatus"] == "CANCELLED"
    time.sleep(2)
    before = [w.cpu_seconds() for w in workers]
    time.sleep(3)
    spent = [w.cpu_seconds() - b for w, b in zip(workers, before)]
    assert all(s < 0.5 for s in spent), f"the workers still work after CancelQuery: {spent} CPU seconds in 3 s"
    assert wait(cloudtrail, query_id)["QueryStatus"] == "CANCELLED"


def test_workers_that_cannot_serve_the_root_are_refused(tmp_path, s3_env):
    def refused(root, *args, env=None):
        done = subprocess.run(
            [binary(), "worker", "--root", str(root), *args],
            capture_output=True, text=True, timeout=60, env=dict(os.environ, **(env or {})),
        )
        assert done.returncode != 0, done
        return done.stderr

    assert "is not a folder on this machine" in refused(tmp_path / "missing", "--listen", "127.0.0.1:0")
    assert "cannot be read" in refused("s3://no-such-bucket/lake", "--listen", "127.0.0.1:0", env=s3_env)
    assert "without --cluster-secret" in refused(tmp_path, "--listen", "0.0.0.0:0")

    # A worker of another root is left out; queries run in the server.
    (tmp_path / "other").mkdir()
    stranger = Worker(tmp_path / "other")
    server = Server(tmp_path / "lake", "--workers", stranger.address, "--worker-task-bytes", "1").start()
    try:
        cloudtrail, eds = loaded_trails(server)
        query_id = cloudtrail.start_query(QueryStatement=f"SELECT count(*) FROM {eds}")["QueryId"]
        assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
        log = server.log()
        assert "worker left out" in log and "other" in log, log
        assert "the query runs on workers" not in log
    finally:
        server.stop()
        stranger.stop()
