"""The catalog lives under the lake root: a restarted server, on a local folder or on S3, shows
exactly what it had, and a second server on the same root refuses to start."""

import subprocess

import pytest

from conftest import Server, binary, store_id


def snapshot(cloudtrail):
    stores = cloudtrail.list_event_data_stores()["EventDataStores"]
    described = []
    for store in stores:
        got = cloudtrail.get_event_data_store(EventDataStore=store["EventDataStoreArn"])
        got.pop("ResponseMetadata")
        described.append(got)
    arns = [s["EventDataStoreArn"] for s in stores if s]
    active = [d["EventDataStoreArn"] for d in described if d["Status"] != "PENDING_DELETION"]
    tags = cloudtrail.list_tags(ResourceIdList=active)["ResourceTagList"] if active else []
    return arns, described, tags


def fill(cloudtrail):
    kept = cloudtrail.create_event_data_store(
        Name="kept", RetentionPeriod=30, TagsList=[{"Key": "team", "Value": "sec"}]
    )["EventDataStoreArn"]
    cloudtrail.stop_event_data_store_ingestion(EventDataStore=kept)
    gone = cloudtrail.create_event_data_store(Name="gone", TerminationProtectionEnabled=False)["EventDataStoreArn"]
    cloudtrail.delete_event_data_store(EventDataStore=gone)
    cloudtrail.update_event_data_store(EventDataStore=kept, Name="kept-renamed")


def restart_shows_the_same(root, env=None):
    first = Server(root, env=env).start()
    try:
        fill(first.client())
        before = snapshot(first.client())
    finally:
        assert first.stop() == 0, first.log()
    second = Server(root, env=env).start()
    try:
        assert snapshot(second.client()) == before
        assert len(before[0]) == 2
    finally:
        second.stop()


def test_restart_on_a_local_root(tmp_path):
    restart_shows_the_same(tmp_path / "lake")


def test_restart_on_an_s3_root(s3_env, s3_bucket):
    restart_shows_the_same(f"s3://{s3_bucket}/lake/prod", env=s3_env)


def second_server_refuses(root, env=None):
    first = Server(root, env=env).start()
    try:
        first.client().create_event_data_store(Name="owned")
        result = subprocess.run(
            [binary(), "serve", "--root", str(root), "--listen", "127.0.0.1:0"],
            env=first.env, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode != 0
        assert "in use by another traillake server" in result.stderr, result.stderr
        assert first.client().list_event_data_stores()["EventDataStores"][0]["Name"] == "owned"
    finally:
        first.stop()
    again = Server(root, env=env).start()
    again.stop()


def test_second_server_on_a_local_root(tmp_path):
    second_server_refuses(tmp_path / "lake")


def test_second_server_on_an_s3_root(s3_env, s3_bucket):
    second_server_refuses(f"s3://{s3_bucket}/lake", env=s3_env)


def test_catalog_is_under_the_root(tmp_path):
    server = Server(tmp_path / "lake").start()
    try:
        arn = server.client().create_event_data_store(Name="where")["EventDataStoreArn"]
    finally:
        server.stop()
    catalog = (tmp_path / "lake" / "catalog" / "catalog.json").read_text()
    assert store_id(arn) in catalog


def test_unreachable_s3_root_fails_clearly(tmp_path, s3_env):
    result = subprocess.run(
        [binary(), "serve", "--root", "s3://no-such-bucket-here/x", "--listen", "127.0.0.1:0"],
        env={**Server(tmp_path).env, **s3_env}, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "no-such-bucket-here" in result.stderr or "bucket" in result.stderr.lower(), result.stderr


def start_after_kill(root, env=None):
    first = Server(root, env=env).start()
    first.client().create_event_data_store(Name="survivor")
    first.process.kill()
    first.process.wait(timeout=10)
    return first


def test_restart_after_kill_on_a_local_root(tmp_path):
    start_after_kill(tmp_path / "lake")
    second = Server(tmp_path / "lake").start()
    try:
        assert [s["Name"] for s in second.client().list_event_data_stores()["EventDataStores"]] == ["survivor"]
    finally:
        second.stop()


def test_lease_of_a_killed_server_on_an_s3_root_is_taken_over(s3_env, s3_bucket):
    """The lease of a server killed with SIGKILL blocks others until it is 30 seconds stale."""
    import time

    root = f"s3://{s3_bucket}/lake"
    start_after_kill(root, env=s3_env)
    killed_at = time.time()
    result = subprocess.run(
        [binary(), "serve", "--root", root, "--listen", "127.0.0.1:0"],
        env=Server(root, env=s3_env).env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "in use by another traillake server" in result.stderr, result.stderr
    time.sleep(max(0.0, 31 - (time.time() - killed_at)))
    second = Server(root, env=s3_env).start()
    try:
        assert [s["Name"] for s in second.client().list_event_data_stores()["EventDataStores"]] == ["survivor"]
        assert "taking over the lease" in second.log()
    finally:
        second.stop()
