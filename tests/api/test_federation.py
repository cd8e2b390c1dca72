"""Federation (EnableFederation, DisableFederation): the operations and their errors through boto3,
the metadata file under the root, and other engines reading a federated store (DuckDB's delta
extension and delta-rs on the table itself, the delta-sharing client through traillake's Delta
Sharing endpoint) with the rows a traillake query returns. The readers run in the federation
virtualenv (tests/federation/requirements.txt), whose Python FEDERATION_PYTHON names."""

import json
import os
import pathlib
import subprocess
import threading
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest

from conftest import REGION, Server, error_code, store_id
from test_lake_samples import TRAILS
from test_queries import all_rows, load, wait

REPO = pathlib.Path(__file__).resolve().parents[2]
READER = REPO / "tests/federation/read.py"
ROLE = "arn:aws:iam::123456789012:role/Federation"
OTHER_ROLE = "arn:aws:iam::123456789012:role/Other"
TOKEN = "federation-test-token-0123456789abcdef"
OTHER_TOKEN = "other-recipient-token-0123456789abcdef"


def federation_python():
    return os.environ.get("FEDERATION_PYTHON") or str(pathlib.Path.home() / ".cache/traillake-federation-venv/bin/python")


def read(*args, env=None):
    """Runs the reader; returns its rows as traillake's GetQueryResults renders them."""
    done = subprocess.run(
        [federation_python(), str(READER), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, **(env or {})),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return sorted(
        (row["eventid"], row["eventname"], row["eventsource"], row["awsregion"], row["eventtime"][:10] + " " + row["eventtime"][11:23])
        for row in json.loads(done.stdout)
    )


def queried(cloudtrail, eds):
    query_id = cloudtrail.start_query(
        QueryStatement=f"SELECT eventID, eventName, eventSource, awsRegion, eventTime FROM {eds}"
    )["QueryId"]
    assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED"
    columns = ["eventID", "eventName", "eventSource", "awsRegion", "eventTime"]
    # GetQueryResults leaves out a row's null cells, as CloudTrail Lake does.
    rows = [{key: value for cell in row for key, value in cell.items()} for row in all_rows(cloudtrail, query_id)]
    return sorted(tuple(row.get(column) for column in columns) for row in rows)


def recipients_file(tmp_path):
    path = tmp_path / "recipients.json"
    path.write_text(
        json.dumps(
            {
                "recipients": [
                    {"name": "analytics", "bearerToken": TOKEN, "roleArn": ROLE},
                    {"name": "other", "bearerToken": OTHER_TOKEN, "roleArn": OTHER_ROLE},
                ]
            }
        )
    )
    return path


def profile(tmp_path, server, token=TOKEN):
    path = tmp_path / f"profile-{token[:5]}.share"
    path.write_text(json.dumps({"shareCredentialsVersion": 1, "endpoint": f"{server.url}/delta-sharing", "bearerToken": token}))
    return str(path)


def sharing(server, path, token=TOKEN, method="GET", body=None):
    """A raw Delta Sharing request; returns (status, headers, body text)."""
    request = urllib.request.Request(server.url + "/delta-sharing" + path, method=method, data=body)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()


def refused(excinfo_call, code):
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        excinfo_call()
    assert error_code(excinfo) == code, excinfo.value.response
    return excinfo.value.response["Error"]["Message"]


def test_enable_and_disable_federation_with_every_error(server, cloudtrail):
    arn = cloudtrail.create_event_data_store(Name="shared", StartIngestion=False, TerminationProtectionEnabled=False)["EventDataStoreArn"]
    eds = store_id(arn)
    described = cloudtrail.get_event_data_store(EventDataStore=arn)
    assert described["FederationStatus"] == "DISABLED" and "FederationRoleArn" not in described

    # Bad input names its field; nothing changes.
    for role in ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::111122223333:role/Federation", "xyzzy"]:
        message = refused(lambda: cloudtrail.enable_federation(EventDataStore=arn, FederationRoleArn=role), "InvalidParameterException")
        assert "FederationRoleArn" in message, message
    refused(
        lambda: cloudtrail.enable_federation(EventDataStore="00000000-0000-4000-8000-000000000000", FederationRoleArn=ROLE),
        "EventDataStoreNotFoundException",
    )
    refused(
        lambda: cloudtrail.enable_federation(EventDataStore=arn.replace(REGION, "eu-west-1"), FederationRoleArn=ROLE),
        "EventDataStoreARNInvalidException",
    )
    assert cloudtrail.get_event_data_store(EventDataStore=arn)["FederationStatus"] == "DISABLED"
    metadata_file = pathlib.Path(server.root) / f"federation/aws_cloudtrail/{eds}.json"
    assert not metadata_file.exists()

    enabled = cloudtrail.enable_federation(EventDataStore=eds, FederationRoleArn=ROLE)
    assert enabled["EventDataStoreArn"] == arn
    assert enabled["FederationStatus"] == "ENABLED" and enabled["FederationRoleArn"] == ROLE
    described = cloudtrail.get_event_data_store(EventDataStore=arn)
    assert described["FederationStatus"] == "ENABLED" and described["FederationRoleArn"] == ROLE
    updated = cloudtrail.update_event_data_store(EventDataStore=arn, RetentionPeriod=400)
    assert updated["FederationStatus"] == "ENABLED" and updated["FederationRoleArn"] == ROLE

    metadata = json.loads(metadata_file.read_text())
    table = pathlib.Path(server.root) / f"stores/{eds}/table"
    assert metadata["database"] == "aws:cloudtrail" and metadata["table"] == eds
    assert metadata["eventDataStoreArn"] == arn and metadata["federationRoleArn"] == ROLE
    assert metadata["location"] == table.resolve().as_uri()
    assert metadata["format"] == "delta" and metadata["partitionColumns"] == ["eventdate"]
    columns = {column["name"]: column["type"] for column in metadata["columns"]}
    assert columns["eventtime"] == "timestamp" and columns["eventname"] == "string"
    assert columns["useridentity"].startswith("struct<type:string,")
    assert metadata["deltaSharing"] == {"share": "aws_cloudtrail", "schema": "default", "table": eds}
    assert any("retention" in note for note in metadata["readerNotes"])
    assert (table / "_delta_log").is_dir(), "a store federated before any event has an (empty) table to read"

    message = refused(lambda: cloudtrail.enable_federation(EventDataStore=arn, FederationRoleArn=OTHER_ROLE), "EventDataStoreFederationEnabledException")
    assert ROLE in message, message
    message = refused(lambda: cloudtrail.delete_event_data_store(EventDataStore=arn), "EventDataStoreFederationEnabledException")
    assert "DisableFederation" in message, message
    assert cloudtrail.get_event_data_store(EventDataStore=arn)["Status"] == "STOPPED_INGESTION"

    disabled = cloudtrail.disable_federation(EventDataStore=arn)
    assert disabled == {"EventDataStoreArn": arn, "FederationStatus": "DISABLED", "ResponseMetadata": disabled["ResponseMetadata"]}
    described = cloudtrail.get_event_data_store(EventDataStore=arn)
    assert described["FederationStatus"] == "DISABLED" and "FederationRoleArn" not in described
    assert not metadata_file.exists()
    assert (table / "_delta_log").is_dir(), "DisableFederation deletes no data"
    # A store not federated: DisableFederation changes nothing and says DISABLED.
    assert cloudtrail.disable_federation(EventDataStore=arn)["FederationStatus"] == "DISABLED"

    cloudtrail.delete_event_data_store(EventDataStore=arn)
    refused(lambda: cloudtrail.enable_federation(EventDataStore=arn, FederationRoleArn=ROLE), "InactiveEventDataStoreException")
    refused(lambda: cloudtrail.disable_federation(EventDataStore=arn), "InactiveEventDataStoreException")


def test_a_second_call_in_flight_is_a_concurrent_modification(s3_env, s3_bucket):
    # On an S3 root each EnableFederation takes several requests to moto (the table, the file), so
    # calls started together overlap.
    server = Server(f"s3://{s3_bucket}/lake", env=s3_env).start()
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(Name="shared", StartIngestion=False)["EventDataStoreArn"]
        start = threading.Barrier(8)
        outcomes = []

        def enable():
            client = server.client()
            start.wait()
            try:
                outcomes.append(client.enable_federation(EventDataStore=arn, FederationRoleArn=ROLE)["FederationStatus"])
            except botocore.exceptions.ClientError as error:
                outcomes.append(error.response["Error"]["Code"])

        threads = [threading.Thread(target=enable) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("ENABLED") == 1, outcomes
        assert "ConcurrentModificationException" in outcomes, outcomes
        assert set(outcomes) <= {"ENABLED", "ConcurrentModificationException", "EventDataStoreFederationEnabledException"}, outcomes
        assert cloudtrail.get_event_data_store(EventDataStore=arn)["FederationStatus"] == "ENABLED"
    finally:
        server.stop()


def test_other_engines_read_what_a_query_returns(tmp_path):
    server = Server(tmp_path / "lake", "--sharing-recipients", str(recipients_file(tmp_path))).start()
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(Name="trails", StartIngestion=False, RetentionPeriod=3653)["EventDataStoreArn"]
        eds = store_id(arn)
        # Some of the real trails' records have no eventTime: load rejects them (exit code 1) and
        # stores the rest.
        code, output = load(server, "trails", TRAILS)
        assert "eventTime is missing" in output and "stored" in output, output
        expected = queried(cloudtrail, eds)
        assert len(expected) > 10000

        # Not federated: the sharing endpoint does not know the table.
        status, _, _ = sharing(server, f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/metadata")
        assert status == 404

        cloudtrail.enable_federation(EventDataStore=arn, FederationRoleArn=ROLE)
        location = json.loads((pathlib.Path(server.root) / f"federation/aws_cloudtrail/{eds}.json").read_text())["location"]
        assert read("duckdb", location) == expected
        assert read("deltalake", location) == expected
        assert read("sharing", profile(tmp_path, server), eds) == expected

        # The protocol's answers and refusals.
        status, headers, body = sharing(server, "/shares")
        assert status == 200 and json.loads(body)["items"] == [{"name": "aws_cloudtrail"}]
        status, headers, body = sharing(server, "/shares/aws_cloudtrail/all-tables")
        assert json.loads(body)["items"] == [{"name": eds, "schema": "default", "share": "aws_cloudtrail", "id": eds}]
        status, headers, body = sharing(server, f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/version")
        assert status == 200 and int(headers["delta-table-version"]) >= 1
        status, headers, body = sharing(
            server, f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/query", method="POST", body=b"{}"
        )
        lines = [json.loads(line) for line in body.splitlines()]
        assert lines[0] == {"protocol": {"minReaderVersion": 1}}
        assert lines[1]["metaData"]["partitionColumns"] == ["eventdate"]
        files = [line["file"] for line in lines[2:]]
        assert files and all(f["url"].startswith(server.url + "/delta-sharing/files/") for f in files)
        # A file URL answers ranges, refuses a changed signature, and stops working with federation.
        url = files[0]["url"]
        ranged = urllib.request.Request(url, headers={"Range": "bytes=0-3"})
        with urllib.request.urlopen(ranged, timeout=30) as response:
            assert response.status == 206 and response.read() == b"PAR1"
        with pytest.raises(urllib.error.HTTPError) as forged:
            urllib.request.urlopen(url[:-1] + ("0" if url[-1] != "0" else "1"), timeout=30)
        assert forged.value.code == 403
        for path, method in [("/shares", "GET"), (f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/query", "POST")]:
            for token in [None, "not-a-recipient-token-0123456789abcdef"]:
                status, _, body = sharing(server, path, token=token, method=method, body=b"{}" if method == "POST" else None)
                assert status == 401 and json.loads(body)["errorCode"] == "UNAUTHENTICATED", (path, token, body)
        assert sharing(server, "/shares/nope")[0] == 404
        assert sharing(server, f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/changes?startingVersion=0")[0] == 400
        status, _, body = sharing(
            server, f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/query", method="POST", body=b'{"timestamp": "2020-01-01T00:00:00Z"}'
        )
        assert status == 400 and json.loads(body)["errorCode"] == "INVALID_PARAMETER_VALUE"
        # A recipient of another role sees no table.
        status, _, body = sharing(server, "/shares/aws_cloudtrail/all-tables", token=OTHER_TOKEN)
        assert json.loads(body)["items"] == []
        assert sharing(server, f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/metadata", token=OTHER_TOKEN)[0] == 404

        cloudtrail.disable_federation(EventDataStore=arn)
        assert sharing(server, f"/shares/aws_cloudtrail/schemas/default/tables/{eds}/metadata")[0] == 404
        with pytest.raises(urllib.error.HTTPError) as withdrawn:
            urllib.request.urlopen(url, timeout=30)
        assert withdrawn.value.code == 403
        assert queried(cloudtrail, eds) == expected, "the store keeps its events"
    finally:
        server.stop()


def test_sharing_and_delta_rs_on_an_s3_root(s3_env, s3_server, s3_bucket, tmp_path):
    server = Server(f"s3://{s3_bucket}/lake", "--sharing-recipients", str(recipients_file(tmp_path)), env=s3_env).start()
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(Name="trails", StartIngestion=False, RetentionPeriod=3653)["EventDataStoreArn"]
        eds = store_id(arn)
        code, output = load(server, "trails", TRAILS / "stratus-red-team-detonation-logs")
        assert "362 stored" in output, output
        expected = queried(cloudtrail, eds)
        assert len(expected) > 100
        cloudtrail.enable_federation(EventDataStore=arn, FederationRoleArn=ROLE)
        s3 = boto3.client("s3", endpoint_url=s3_server, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
        metadata = json.loads(s3.get_object(Bucket=s3_bucket, Key=f"lake/federation/aws_cloudtrail/{eds}.json")["Body"].read())
        assert metadata["location"] == f"s3://{s3_bucket}/lake/stores/{eds}/table"
        options = {
            "AWS_ENDPOINT_URL": s3_server,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }
        assert read("deltalake", metadata["location"], json.dumps(options)) == expected
        # The recipient needs no access to the bucket: the endpoint serves the files.
        assert read("sharing", profile(tmp_path, server), eds) == expected
    finally:
        server.stop()


def test_kill_9_during_enable_federation_leaves_every_store_finishable(tmp_path):
    """EnableFederation calls cut by kill -9 leave each store DISABLED, ENABLED or ENABLING; after a
    restart the next EnableFederation finishes it, its metadata file is there, and DisableFederation
    and DeleteEventDataStore work."""
    import signal
    import time

    server = Server(tmp_path / "lake").start()
    cloudtrail = server.client()
    arns = [cloudtrail.create_event_data_store(Name=f"cut-{i}", StartIngestion=False,
                                               TerminationProtectionEnabled=False)["EventDataStoreArn"]
            for i in range(10)]

    def enable(arn):
        try:
            server.client().enable_federation(EventDataStore=arn, FederationRoleArn=ROLE)
        except Exception:
            pass  # the server is killed under it

    threads = [threading.Thread(target=enable, args=(arn,)) for arn in arns]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    for thread in threads:
        thread.join()

    server = Server(tmp_path / "lake").start()
    try:
        cloudtrail = server.client()
        seen = set()
        for arn in arns:
            status = cloudtrail.get_event_data_store(EventDataStore=arn)["FederationStatus"]
            seen.add(status)
            assert status in {"DISABLED", "ENABLED", "ENABLING"}, status
            if status != "ENABLED":
                assert cloudtrail.enable_federation(EventDataStore=arn, FederationRoleArn=ROLE)["FederationStatus"] == "ENABLED"
            else:
                refused(lambda: cloudtrail.enable_federation(EventDataStore=arn, FederationRoleArn=ROLE),
                        "EventDataStoreFederationEnabledException")
            metadata = tmp_path / "lake" / "federation" / "aws_cloudtrail" / f"{store_id(arn)}.json"
            assert json.loads(metadata.read_text())["eventDataStoreArn"] == arn
            assert cloudtrail.disable_federation(EventDataStore=arn)["FederationStatus"] == "DISABLED"
            cloudtrail.delete_event_data_store(EventDataStore=arn)
        print("statuses after kill -9:", seen)
    finally:
        server.stop()
