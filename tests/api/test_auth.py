"""SigV4 against the running server with credentials configured: boto3, the AWS CLI's library and a
gRPC client signing with right, wrong, unknown, expired and missing credentials, session tokens,
and two accounts kept apart; the server refuses to listen beyond loopback without credentials."""

import datetime
import hashlib
import hmac
import json
import os
import subprocess
import urllib.parse
from unittest import mock

import boto3
import botocore.auth
import botocore.config
import grpc
import pytest
from botocore import UNSIGNED

from conftest import REGION, Server, binary, error_code, store_id
from test_channels import event_data
from test_grpc import pb, rpc_error, target  # noqa: F401 (pb is a fixture)

ALICE = {"accessKeyId": "AKIAALICE00000000001", "secretAccessKey": "alice-secret-key-0001", "accountId": "111111111111"}
BOB = {"accessKeyId": "AKIABOB0000000000002", "secretAccessKey": "bob-secret-key-000002", "accountId": "222222222222"}
TEMPORARY = {
    "accessKeyId": "ASIATEMP000000000003",
    "secretAccessKey": "temporary-secret-0003",
    "accountId": "111111111111",
    "sessionToken": "session-token-of-alice",
}


@pytest.fixture
def signed_server(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"credentials": [ALICE, BOB, TEMPORARY]}))
    started = Server(tmp_path / "lake", "--credentials", str(path)).start()
    yield started
    started.stop()


def client(server, key, service="cloudtrail", secret=None, token=None, signed=True):
    config = botocore.config.Config(retries={"max_attempts": 1}, signature_version=None if signed else UNSIGNED)
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=key["accessKeyId"],
        aws_secret_access_key=secret or key["secretAccessKey"],
        aws_session_token=token if token is not None else key.get("sessionToken"),
        config=config,
    )


def sigv4(method, host, path, query, headers, payload_hash, service, key, when):
    """Returns the Authorization header of a request, signed as SigV4 says (written from the
    specification, independently of botocore and of the server's aws-sigv4)."""
    stamp, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    headers = {**{name.lower(): value for name, value in headers.items()}, "host": host, "x-amz-date": stamp}
    names = sorted(headers)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in sorted(query.items())
    )
    canonical = "\n".join(
        [method, path, canonical_query, *(f"{n}:{headers[n].strip()}" for n in names), "", ";".join(names), payload_hash]
    )
    scope = f"{day}/{REGION}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = f"AWS4{key['secretAccessKey']}".encode()
    for part in (day, REGION, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = f"AWS4-HMAC-SHA256 Credential={key['accessKeyId']}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    return {**headers, "authorization": authorization}


def assert_refused_alike(caller, attempt, arn):
    """Asserts that `attempt(arn)` fails for `caller` with the same code and message as for a
    made-up resource of the same kind and account: the answer tells nothing of what exists."""
    made_up = arn.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    answers = []
    for target in (arn, made_up):
        with pytest.raises(caller.exceptions.ClientError) as excinfo:
            attempt(target)
        answers.append((error_code(excinfo), str(excinfo.value).replace(target, "ARN")))
    assert answers[0] == answers[1], answers


def test_each_key_acts_for_its_account_and_accounts_are_kept_apart(signed_server):
    alice, bob = client(signed_server, ALICE), client(signed_server, BOB)
    arn = alice.create_event_data_store(Name="alice-store", RetentionPeriod=7)["EventDataStoreArn"]
    assert ":111111111111:" in arn
    assert bob.list_event_data_stores()["EventDataStores"] == []
    # Bob learns nothing from Alice's ARNs: an existing store and a made-up one are refused alike.
    for operation in (bob.get_event_data_store, bob.delete_event_data_store):
        assert_refused_alike(bob, lambda target: operation(EventDataStore=target), arn)
    assert alice.get_event_data_store(EventDataStore=arn)["Status"] == "ENABLED", "Bob changed nothing"
    with pytest.raises(bob.exceptions.InvalidQueryStatementException) as refused:
        bob.start_query(QueryStatement=f"SELECT eventID FROM {store_id(arn)}")
    assert "111111111111" not in str(refused.value)
    # The temporary key acts for Alice's account, with its session token.
    temporary = client(signed_server, TEMPORARY)
    assert [s["EventDataStoreArn"] for s in temporary.list_event_data_stores()["EventDataStores"]] == [arn]


def test_wrong_unknown_missing_and_malformed_signatures_get_aws_codes(signed_server):
    alice = client(signed_server, ALICE)
    cases = [
        (client(signed_server, ALICE, secret="not-alice-secret-000"), "InvalidSignatureException", 403),
        (client(signed_server, {**ALICE, "accessKeyId": "AKIAUNKNOWN000000009"}), "UnrecognizedClientException", 403),
        (client(signed_server, ALICE, signed=False), "MissingAuthenticationTokenException", 403),
        (client(signed_server, TEMPORARY, token=""), "UnrecognizedClientException", 403),
        (client(signed_server, TEMPORARY, token="another-session-token"), "UnrecognizedClientException", 403),
        (client(signed_server, ALICE, token="a-token-alice-never-had"), "UnrecognizedClientException", 403),
    ]
    for refused_client, code, status in cases:
        with pytest.raises(refused_client.exceptions.ClientError) as excinfo:
            refused_client.create_event_data_store(Name="refused", RetentionPeriod=7)
        assert error_code(excinfo) == code
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert alice.list_event_data_stores()["EventDataStores"] == [], "no refused request stored anything"

    status, headers, body = signed_server.raw({}, target="ListEventDataStores", headers={"Authorization": "AWS4-HMAC-SHA256 Credential=x"})
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")
    # A signature for CloudTrail Data sent to CloudTrail.
    wrong_service = sigv4("POST", signed_server.url.removeprefix("http://"), "/", {}, {}, hashlib.sha256(b"{}").hexdigest(),
                          "cloudtrail-data", ALICE, datetime.datetime.now(datetime.timezone.utc))
    status, headers, body = signed_server.raw(b"{}", target="ListEventDataStores", headers=wrong_service)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")


def test_signatures_older_or_newer_than_15_minutes_are_refused(signed_server):
    now = datetime.datetime.now(datetime.timezone.utc)
    for shift, words in [(-20, "Signature expired"), (20, "Signature not yet current")]:
        with mock.patch.object(botocore.auth, "get_current_datetime", lambda: now + datetime.timedelta(minutes=shift)):
            alice = client(signed_server, ALICE)
            with pytest.raises(alice.exceptions.ClientError) as excinfo:
                alice.list_event_data_stores()
        assert error_code(excinfo) == "InvalidSignatureException"
        assert words in str(excinfo.value)
    # 10 minutes of skew are accepted.
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: now - datetime.timedelta(minutes=10)):
        assert client(signed_server, ALICE).list_event_data_stores()["EventDataStores"] == []
    # The independent signer agrees with the server on a fresh request.
    headers = sigv4("POST", signed_server.url.removeprefix("http://"), "/", {},
                    {"content-type": "application/x-amz-json-1.1", "x-amz-target": "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListEventDataStores"},
                    hashlib.sha256(b"{}").hexdigest(), "cloudtrail", BOB, now)
    status, _, body = signed_server.raw(b"{}", target="ListEventDataStores", headers=headers)
    assert (status, body) == (200, {"EventDataStores": []})


def test_put_audit_events_is_signed_for_cloudtrail_data(signed_server):
    alice = client(signed_server, ALICE)
    selectors = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
    store = alice.create_event_data_store(Name="audit", AdvancedEventSelectors=selectors, MultiRegionEnabled=False)["EventDataStoreArn"]
    channel = alice.create_channel(Name="app", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}])["ChannelArn"]
    events = [{"id": "one", "eventData": event_data(1, recipientAccountId="111111111111")}]
    stored = client(signed_server, ALICE, "cloudtrail-data").put_audit_events(channelArn=channel, auditEvents=events)
    assert len(stored["successful"]) == 1
    for refused, code in [
        (client(signed_server, ALICE, "cloudtrail-data", secret="not-alice-secret-000"), "InvalidSignatureException"),
        (client(signed_server, ALICE, "cloudtrail-data", signed=False), "MissingAuthenticationTokenException"),
        # Bob is properly signed but not allowed on Alice's channel.
        (client(signed_server, BOB, "cloudtrail-data"), "ChannelInsufficientPermission"),
    ]:
        with pytest.raises(refused.exceptions.ClientError) as excinfo:
            refused.put_audit_events(channelArn=channel, auditEvents=events)
        assert error_code(excinfo) == code


def grpc_signature(server, method, key, when=None, service="cloudtrail"):
    """The metadata of a gRPC call signed over POST /package.Service/Method, UNSIGNED-PAYLOAD."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    headers = sigv4("POST", target(server), method, {}, {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, "UNSIGNED-PAYLOAD",
                    service, key, when)
    return tuple((name, value) for name, value in headers.items() if name != "host")


def test_grpc_calls_are_signed(signed_server, pb):
    list_stores = "/traillake.v1.CloudTrail/ListEventDataStores"
    with grpc.insecure_channel(target(signed_server)) as channel:
        stub = pb.service_pb2_grpc.CloudTrailStub(channel)
        request = pb.event_data_stores.ListEventDataStoresRequest()
        client(signed_server, ALICE).create_event_data_store(Name="seen-over-grpc", RetentionPeriod=7)
        answer = stub.ListEventDataStores(request, metadata=grpc_signature(signed_server, list_stores, ALICE))
        assert [store.Name for store in answer.EventDataStores] == ["seen-over-grpc"]
        answer = stub.ListEventDataStores(request, metadata=grpc_signature(signed_server, list_stores, BOB))
        assert list(answer.EventDataStores) == []
        stale = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
        for metadata, code in [
            ((), "MissingAuthenticationTokenException"),
            (grpc_signature(signed_server, list_stores, {**ALICE, "secretAccessKey": "wrong-secret-000000"}), "InvalidSignatureException"),
            (grpc_signature(signed_server, "/traillake.v1.CloudTrail/GetEventDataStore", ALICE), "InvalidSignatureException"),
            (grpc_signature(signed_server, list_stores, ALICE, when=stale), "InvalidSignatureException"),
            (grpc_signature(signed_server, list_stores, ALICE, service="cloudtrail-data"), "InvalidSignatureException"),
        ]:
            status, aws_code, _ = rpc_error(stub.ListEventDataStores, request, metadata=metadata)
            assert (status, aws_code) == (grpc.StatusCode.UNAUTHENTICATED, code)


def test_without_credentials_the_server_listens_on_loopback_only(tmp_path):
    refused = subprocess.run([binary(), "serve", "--root", str(tmp_path / "lake"), "--listen", "0.0.0.0:0"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "without --credentials" in refused.stderr
    assert not (tmp_path / "lake").exists(), "nothing is created when the server refuses to start"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"credentials": [{**ALICE, "accountId": "12"}]}))
    refused = subprocess.run([binary(), "serve", "--root", str(tmp_path / "lake"), "--listen", "127.0.0.1:0", "--credentials", str(broken)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "credentials[0].accountId" in refused.stderr
    server = Server(tmp_path / "lake").start()
    try:
        assert "no signature is checked" in server.log()
    finally:
        server.stop()


def test_the_aws_cli_signs_with_the_configured_keys(signed_server):
    def aws(key, *args, secret=None):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=key["accessKeyId"], AWS_SECRET_ACCESS_KEY=secret or key["secretAccessKey"],
                   AWS_DEFAULT_REGION=REGION)
        env.pop("AWS_SESSION_TOKEN", None)
        return subprocess.run(["aws", "--endpoint-url", signed_server.url, "cloudtrail", *args, "--output", "json"],
                              env=env, capture_output=True, text=True, timeout=120)

    created = aws(ALICE, "create-event-data-store", "--name", "cli-store", "--retention-period", "7")
    assert created.returncode == 0, created.stderr
    assert [s["Name"] for s in json.loads(aws(ALICE, "list-event-data-stores").stdout)["EventDataStores"]] == ["cli-store"]
    assert json.loads(aws(BOB, "list-event-data-stores").stdout)["EventDataStores"] == []
    refused = aws(ALICE, "list-event-data-stores", secret="not-alice-secret-000")
    assert refused.returncode != 0 and "InvalidSignatureException" in refused.stderr


def test_one_account_cannot_touch_anothers_resources(signed_server):
    """Bob, properly signed, tries every kind of Alice's resources: each attempt is refused alike for
    an existing and a made-up resource, and Alice's resources are unchanged."""
    alice, bob = client(signed_server, ALICE), client(signed_server, BOB)
    selectors = [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}]
    store = alice.create_event_data_store(Name="audit", AdvancedEventSelectors=selectors, MultiRegionEnabled=False,
                                          TagsList=[{"Key": "owner", "Value": "alice"}])["EventDataStoreArn"]
    channel = alice.create_channel(Name="app", Source="Custom", Destinations=[{"Type": "EVENT_DATA_STORE", "Location": store}])["ChannelArn"]
    query_id = alice.start_query(QueryStatement=f"SELECT eventID FROM {store_id(store)}")["QueryId"]
    def described(arn):
        return {key: value for key, value in alice.get_event_data_store(EventDataStore=arn).items() if key != "ResponseMetadata"}

    before = described(store)
    attempts = [
        lambda arn: bob.get_event_data_store(EventDataStore=arn),
        lambda arn: bob.update_event_data_store(EventDataStore=arn, RetentionPeriod=30),
        lambda arn: bob.delete_event_data_store(EventDataStore=arn),
        lambda arn: bob.stop_event_data_store_ingestion(EventDataStore=arn),
        lambda arn: bob.add_tags(ResourceId=arn, TagsList=[{"Key": "owner", "Value": "bob"}]),
        lambda arn: bob.remove_tags(ResourceId=arn, TagsList=[{"Key": "owner"}]),
        lambda arn: bob.list_tags(ResourceIdList=[arn]),
        lambda arn: bob.list_queries(EventDataStore=arn),
        lambda arn: bob.start_import(Destinations=[arn], ImportSource={"S3": {
            "S3LocationUri": "s3://some-bucket", "S3BucketRegion": REGION, "S3BucketAccessRoleArn": "arn:aws:iam::222222222222:role/import"}}),
    ]
    for attempt in attempts:
        assert_refused_alike(bob, attempt, store)
    channel_attempts = [
        lambda arn: bob.get_channel(Channel=arn),
        lambda arn: bob.update_channel(Channel=arn, Name="bobs"),
        lambda arn: bob.delete_channel(Channel=arn),
        lambda arn: bob.put_resource_policy(ResourceArn=arn, ResourcePolicy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "bob", "Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "cloudtrail-data:PutAuditEvents", "Resource": arn}]})),
        lambda arn: bob.get_resource_policy(ResourceArn=arn),
        lambda arn: bob.delete_resource_policy(ResourceArn=arn),
    ]
    for attempt in channel_attempts:
        assert_refused_alike(bob, attempt, channel)
    for attempt in (bob.describe_query, bob.get_query_results, bob.cancel_query):
        with pytest.raises(bob.exceptions.QueryIdNotFoundException):
            attempt(QueryId=query_id)
    assert bob.list_channels()["Channels"] == [] and bob.list_imports()["Imports"] == []
    # Alice's resources are as she left them.
    assert described(store) == before
    assert alice.list_tags(ResourceIdList=[store])["ResourceTagList"][0]["TagsList"] == [{"Key": "owner", "Value": "alice"}]
    assert alice.get_channel(Channel=channel)["Name"] == "app"
    with pytest.raises(alice.exceptions.ResourcePolicyNotFoundException):
        alice.get_resource_policy(ResourceArn=channel)
