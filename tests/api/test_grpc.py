"""gRPC against the running server, with a Python client generated from proto/ alone (grpcio-tools,
at test time): the store, query and channel lifecycles, errors and their status codes, accounts,
reflection, health, gzip, GetQueryResultsArrow, and pyarrow's Flight client reading results."""

import importlib
import importlib.resources
import sys
import time
import types

import grpc
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from google.protobuf import descriptor_pool

from conftest import ACCOUNT, REPO, store_id
from test_channels import event_data
from test_wire import IMPLEMENTED
from test_queries import HEAVY, all_rows, loaded, server_with_events, wait  # noqa: F401 (loaded is a fixture)

OTHER_ACCOUNT = "210987654321"


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """The modules protoc generates from proto/traillake/v1/*.proto."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("grpc")
    includes = importlib.resources.files("grpc_tools") / "_proto"
    protos = sorted(str(path) for path in (REPO / "proto/traillake/v1").glob("*.proto"))
    args = ["protoc", f"-I{REPO / 'proto'}", f"-I{includes}", f"--python_out={out}", f"--grpc_python_out={out}", *protos]
    assert protoc.main(args) == 0
    sys.path.insert(0, str(out))
    names = ["service_pb2_grpc", "event_data_stores_pb2", "queries_pb2", "channels_pb2", "audit_events_pb2", "tags_pb2", "common_pb2"]
    modules = {name.removesuffix("_pb2"): importlib.import_module(f"traillake.v1.{name}") for name in names}
    return types.SimpleNamespace(**modules)


def target(server):
    return server.url.removeprefix("http://")


def authorization(access_key, service="cloudtrail"):
    """The metadata AWS clients send, as the server reads it until SigV4 is verified."""
    credential = f"{access_key}/20261122/us-east-1/{service}/aws4_request"
    return (("authorization", f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=00"),)


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(target(server)) as opened:
        yield opened


@pytest.fixture
def cloudtrail_rpc(pb, channel):
    return pb.service_pb2_grpc.CloudTrailStub(channel)


def rpc_error(call, *args, **kwargs):
    """Returns (status code, AWS error code, message) of a call that must fail; a streaming call
    is read to its end."""
    with pytest.raises(grpc.RpcError) as excinfo:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):
            list(result)
    error = excinfo.value
    codes = [value for key, value in error.trailing_metadata() if key == "x-amzn-errortype"]
    return error.code(), codes[0] if codes else None, error.details()


def wait_rpc(rpc, pb, query_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        reply = rpc.DescribeQuery(pb.queries.QueryRequest(QueryId=query_id))
        if reply.QueryStatus not in (pb.queries.QUERY_STATUS_QUEUED, pb.queries.QUERY_STATUS_RUNNING):
            return reply
        assert time.monotonic() < deadline, reply
        time.sleep(0.1)


def rows_of(page):
    return [[dict(column.Entry) for column in row.Columns] for row in page.QueryResultRows]


def test_store_lifecycle_over_grpc_is_the_same_store_boto3_sees(server, cloudtrail, cloudtrail_rpc, pb):
    eds = pb.event_data_stores
    created = cloudtrail_rpc.CreateEventDataStore(
        eds.CreateEventDataStoreRequest(Name="grpc-store", RetentionPeriod=90, TagsList=[pb.common.Tag(Key="team", Value="sec")])
    )
    assert created.Name == "grpc-store" and created.RetentionPeriod == 90
    assert created.Status == eds.EVENT_DATA_STORE_STATUS_CREATED
    arn = created.EventDataStoreArn
    assert arn.startswith(f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/")

    seen = cloudtrail.get_event_data_store(EventDataStore=arn)
    assert (seen["Name"], seen["RetentionPeriod"], seen["Status"]) == ("grpc-store", 90, "ENABLED")
    assert [s.EventDataStoreArn for s in cloudtrail_rpc.ListEventDataStores(eds.ListEventDataStoresRequest()).EventDataStores] == [arn]
    tags = cloudtrail_rpc.ListTags(pb.tags.ListTagsRequest(ResourceIdList=[arn])).ResourceTagList
    assert [(t.Key, t.Value) for t in tags[0].TagsList] == [("team", "sec")]

    updated = cloudtrail_rpc.UpdateEventDataStore(
        eds.UpdateEventDataStoreRequest(EventDataStore=arn, RetentionPeriod=120, TerminationProtectionEnabled=False)
    )
    assert (updated.RetentionPeriod, updated.TerminationProtectionEnabled) == (120, False)
    cloudtrail_rpc.StopEventDataStoreIngestion(eds.EventDataStoreRequest(EventDataStore=arn))
    assert cloudtrail.get_event_data_store(EventDataStore=arn)["Status"] == "STOPPED_INGESTION"
    cloudtrail_rpc.StartEventDataStoreIngestion(eds.EventDataStoreRequest(EventDataStore=arn))
    cloudtrail_rpc.DeleteEventDataStore(eds.EventDataStoreRequest(EventDataStore=arn))
    got = cloudtrail_rpc.GetEventDataStore(eds.EventDataStoreRequest(EventDataStore=store_id(arn)))
    assert got.Status == eds.EVENT_DATA_STORE_STATUS_PENDING_DELETION
    restored = cloudtrail_rpc.RestoreEventDataStore(eds.EventDataStoreRequest(EventDataStore=arn))
    assert restored.Status == eds.EVENT_DATA_STORE_STATUS_ENABLED


def test_errors_carry_the_aws_code_and_message_of_the_json_gateway(server, cloudtrail_rpc, pb):
    eds = pb.event_data_stores
    cloudtrail_rpc.CreateEventDataStore(eds.CreateEventDataStoreRequest(Name="taken"))
    plain = server.client(validate=False)
    cases = [
        (cloudtrail_rpc.CreateEventDataStore, eds.CreateEventDataStoreRequest(Name="taken"), {"Name": "taken"},
         plain.create_event_data_store, grpc.StatusCode.ALREADY_EXISTS, "EventDataStoreAlreadyExistsException"),
        (cloudtrail_rpc.CreateEventDataStore, eds.CreateEventDataStoreRequest(Name="x"), {"Name": "x"},
         plain.create_event_data_store, grpc.StatusCode.INVALID_ARGUMENT, "InvalidParameterException"),
        (cloudtrail_rpc.GetEventDataStore, eds.EventDataStoreRequest(EventDataStore="0" * 36), {"EventDataStore": "0" * 36},
         plain.get_event_data_store, grpc.StatusCode.NOT_FOUND, "EventDataStoreNotFoundException"),
        (cloudtrail_rpc.DescribeQuery, pb.queries.QueryRequest(QueryId="0" * 36), {"QueryId": "0" * 36},
         plain.describe_query, grpc.StatusCode.NOT_FOUND, "QueryIdNotFoundException"),
        (cloudtrail_rpc.StartQuery, pb.queries.StartQueryRequest(QueryStatement="DROP TABLE x"), {"QueryStatement": "DROP TABLE x"},
         plain.start_query, grpc.StatusCode.INVALID_ARGUMENT, "InvalidQueryStatementException"),
    ]
    for call, request, json_request, json_call, status, code in cases:
        got_status, got_code, message = rpc_error(call, request)
        assert (got_status, got_code) == (status, code), message
        with pytest.raises(plain.exceptions.ClientError) as excinfo:
            json_call(**json_request)
        assert excinfo.value.response["Error"]["Code"] == code
        assert excinfo.value.response["Error"]["Message"] == message

    status, code, message = rpc_error(
        cloudtrail_rpc.ListEventDataStores, eds.ListEventDataStoresRequest(), metadata=(("authorization", "Bearer nothing"),)
    )
    assert (status, code) == (grpc.StatusCode.UNAUTHENTICATED, "IncompleteSignatureException"), message
    status, code, _ = rpc_error(
        cloudtrail_rpc.ListEventDataStores, eds.ListEventDataStoresRequest(), metadata=authorization("AKID", "cloudtrail-data")
    )
    assert (status, code) == (grpc.StatusCode.UNAUTHENTICATED, "InvalidSignatureException")


def test_accounts_are_kept_apart_over_grpc(cloudtrail_rpc, pb):
    eds = pb.event_data_stores
    mine = cloudtrail_rpc.CreateEventDataStore(eds.CreateEventDataStoreRequest(Name="mine")).EventDataStoreArn
    theirs = cloudtrail_rpc.CreateEventDataStore(
        eds.CreateEventDataStoreRequest(Name="mine"), metadata=authorization(OTHER_ACCOUNT)
    ).EventDataStoreArn
    assert f":{OTHER_ACCOUNT}:" in theirs
    listed = cloudtrail_rpc.ListEventDataStores(eds.ListEventDataStoresRequest(), metadata=authorization(OTHER_ACCOUNT))
    assert [s.EventDataStoreArn for s in listed.EventDataStores] == [theirs]
    status, code, _ = rpc_error(
        cloudtrail_rpc.GetEventDataStore, eds.EventDataStoreRequest(EventDataStore=store_id(mine)), metadata=authorization(OTHER_ACCOUNT)
    )
    assert (status, code) == (grpc.StatusCode.NOT_FOUND, "EventDataStoreNotFoundException")


def test_query_lifecycle_and_results_as_json_pages_arrow_and_flight(server, loaded, cloudtrail_rpc, pb):
    cloudtrail, eds = loaded
    statement = f"SELECT eventID, eventTime, readOnly, requestParameters, userIdentity FROM {eds} ORDER BY eventTime"
    query_id = cloudtrail_rpc.StartQuery(pb.queries.StartQueryRequest(QueryStatement=statement)).QueryId
    described = wait_rpc(cloudtrail_rpc, pb, query_id)
    assert described.QueryStatus == pb.queries.QUERY_STATUS_FINISHED, described
    assert described.QueryString == statement
    assert described.QueryStatistics.EventsScanned == 2500 and described.QueryStatistics.BytesScanned > 0

    grpc_rows, token = [], None
    while True:
        page = cloudtrail_rpc.GetQueryResults(pb.queries.GetQueryResultsRequest(QueryId=query_id, NextToken=token, MaxQueryResults=1000))
        grpc_rows.extend(rows_of(page))
        assert page.QueryStatistics.TotalResultsCount == 2500
        token = page.NextToken if page.HasField("NextToken") else None
        if token is None:
            break
    assert grpc_rows == all_rows(cloudtrail, query_id)

    chunks = cloudtrail_rpc.GetQueryResultsArrow(pb.queries.QueryRequest(QueryId=query_id))
    table = pa.ipc.open_stream(b"".join(chunk.Ipc for chunk in chunks)).read_all()
    assert ("x-traillake-query-status", "FINISHED") in chunks.initial_metadata()
    assert table.num_rows == 2500
    assert table.column_names == [next(iter(column)) for column in grpc_rows[0]]
    assert pa.types.is_timestamp(table.schema.field("eventTime").type)
    assert table.schema.field("readOnly").type == pa.bool_()
    assert pa.types.is_map(table.schema.field("requestParameters").type)
    assert pa.types.is_struct(table.schema.field("userIdentity").type)
    first = table.slice(0, 1).to_pylist()[0]
    assert first["eventID"] == grpc_rows[0][0]["eventID"]
    assert first["eventTime"].strftime("%Y-%m-%d %H:%M:%S.000") == grpc_rows[0][1]["eventTime"]
    assert str(first["readOnly"]).lower() == grpc_rows[0][2]["readOnly"]
    assert table.column("eventID").to_pylist() == [row[0]["eventID"] for row in grpc_rows]

    client = flight.connect(f"grpc://{target(server)}")
    assert client.do_get(flight.Ticket(query_id.encode())).read_all().equals(table)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(query_id))
    assert (info.total_records, info.schema) == (2500, table.schema)
    assert info.endpoints[0].ticket.ticket == query_id.encode()
    with pytest.raises(pa.ArrowKeyError, match="not found"):
        client.do_get(flight.Ticket(b"0" * 36)).read_all()
    with pytest.raises(pa.ArrowNotImplementedError, match="ListQueries"):
        list(client.list_flights())

    status, code, _ = rpc_error(cloudtrail_rpc.CancelQuery, pb.queries.QueryRequest(QueryId=query_id))
    assert (status, code) == (grpc.StatusCode.FAILED_PRECONDITION, "InactiveQueryException")
    listed = cloudtrail_rpc.ListQueries(pb.queries.ListQueriesRequest(EventDataStore=eds))
    assert [q.QueryId for q in listed.Queries] == [query_id]


def test_arrow_results_wait_for_a_running_query_and_refuse_a_failed_one(loaded, cloudtrail_rpc, pb):
    _, eds = loaded
    query_id = cloudtrail_rpc.StartQuery(pb.queries.StartQueryRequest(QueryStatement=f"SELECT count(*) AS n FROM {eds}")).QueryId
    chunks = cloudtrail_rpc.GetQueryResultsArrow(pb.queries.QueryRequest(QueryId=query_id), timeout=60)
    table = pa.ipc.open_stream(b"".join(chunk.Ipc for chunk in chunks)).read_all()
    assert table.to_pylist() == [{"n": 2500}]

    failed = cloudtrail_rpc.StartQuery(pb.queries.StartQueryRequest(QueryStatement=f"SELECT CAST(eventName AS INTEGER) FROM {eds}")).QueryId
    status, code, message = rpc_error(cloudtrail_rpc.GetQueryResultsArrow, pb.queries.QueryRequest(QueryId=failed), timeout=60)
    assert (status, code) == (grpc.StatusCode.FAILED_PRECONDITION, "InvalidQueryStatusException")
    # Which row fails the cast first depends on the scan order; the reason is always a cast.
    assert "FAILED" in message and "Cannot cast string" in message, message
    status, code, _ = rpc_error(cloudtrail_rpc.GetQueryResultsArrow, pb.queries.QueryRequest(QueryId="0" * 36))
    assert (status, code) == (grpc.StatusCode.NOT_FOUND, "QueryIdNotFoundException")


def test_the_eleventh_query_is_resource_exhausted(tmp_path, pb):
    server, _, eds = server_with_events(tmp_path, "--query-slots", "1")
    try:
        with grpc.insecure_channel(target(server)) as opened:
            rpc = pb.service_pb2_grpc.CloudTrailStub(opened)
            start = lambda sql: rpc.StartQuery(pb.queries.StartQueryRequest(QueryStatement=sql)).QueryId  # noqa: E731
            queries = [start(HEAVY.format(eds=eds)) for _ in range(10)]
            status, code, message = rpc_error(rpc.StartQuery, pb.queries.StartQueryRequest(QueryStatement=f"SELECT 1 FROM {eds}"))
            assert (status, code) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "MaxConcurrentQueriesException"), message
            for query_id in queries:
                cancelled = rpc.CancelQuery(pb.queries.QueryRequest(QueryId=query_id))
                assert cancelled.QueryStatus == pb.queries.QUERY_STATUS_CANCELLED
            # A cancelled query's stream ends with the rows it kept (none here), its status in the metadata.
            chunks = rpc.GetQueryResultsArrow(pb.queries.QueryRequest(QueryId=queries[0]), timeout=30)
            pa.ipc.open_stream(b"".join(chunk.Ipc for chunk in chunks)).read_all()
            assert ("x-traillake-query-status", "CANCELLED") in chunks.initial_metadata()
    finally:
        server.stop()


def test_channels_and_put_audit_events_over_grpc(server, cloudtrail, channel, cloudtrail_rpc, pb):
    eds = pb.event_data_stores
    selectors = [pb.common.AdvancedEventSelector(FieldSelectors=[pb.common.AdvancedFieldSelector(Field="eventCategory", Equals=["ActivityAuditLog"])])]
    store = cloudtrail_rpc.CreateEventDataStore(
        eds.CreateEventDataStoreRequest(Name="activity", AdvancedEventSelectors=selectors, MultiRegionEnabled=False, RetentionPeriod=3653)
    ).EventDataStoreArn
    created = cloudtrail_rpc.CreateChannel(
        pb.channels.CreateChannelRequest(Name="app", Source="Custom", Destinations=[pb.channels.Destination(Type=pb.channels.DESTINATION_TYPE_EVENT_DATA_STORE, Location=store)])
    )
    assert cloudtrail.get_channel(Channel=created.ChannelArn)["Name"] == "app"
    status, code, _ = rpc_error(
        cloudtrail_rpc.CreateChannel,
        pb.channels.CreateChannelRequest(Name="again", Source="Custom", Destinations=[pb.channels.Destination(Type=pb.channels.DESTINATION_TYPE_EVENT_DATA_STORE, Location=store)]),
    )
    assert (status, code) == (grpc.StatusCode.ALREADY_EXISTS, "ChannelAlreadyExistsException")

    data = pb.service_pb2_grpc.CloudTrailDataStub(channel)
    audit = pb.audit_events
    events = [audit.AuditEvent(id=f"e{index}", eventData=event_data(index)) for index in range(3)]
    events.append(audit.AuditEvent(id="bad", eventData="not json"))
    reply = data.PutAuditEvents(audit.PutAuditEventsRequest(channelArn=created.ChannelArn, auditEvents=events))
    assert [entry.id for entry in reply.successful] == ["e0", "e1", "e2"]
    assert [(entry.id, entry.errorCode) for entry in reply.failed] == [("bad", "InvalidData")]
    rows = wait(cloudtrail, cloudtrail.start_query(QueryStatement=f"SELECT count(*) AS n FROM {store_id(store)}")["QueryId"])
    assert rows["QueryStatus"] == "FINISHED"
    assert all_rows(cloudtrail, rows["QueryId"]) == [[{"n": "3"}]]

    status, code, _ = rpc_error(
        data.PutAuditEvents, audit.PutAuditEventsRequest(channelArn=created.ChannelArn, auditEvents=events[:1]), metadata=authorization(OTHER_ACCOUNT, "cloudtrail-data")
    )
    assert (status, code) == (grpc.StatusCode.PERMISSION_DENIED, "ChannelInsufficientPermission")
    status, code, _ = rpc_error(
        data.PutAuditEvents, audit.PutAuditEventsRequest(channelArn=created.ChannelArn, auditEvents=events[:1]), metadata=authorization("AKID", "cloudtrail")
    )
    assert (status, code) == (grpc.StatusCode.UNAUTHENTICATED, "InvalidSignatureException")


def test_reflection_health_gzip_and_unknown_methods(server, channel, cloudtrail_rpc, pb):
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {"traillake.v1.CloudTrail", "traillake.v1.CloudTrailData", "grpc.health.v1.Health"} <= services, services
    described = descriptor_pool.DescriptorPool(database).FindServiceByName("traillake.v1.CloudTrail")
    # One RPC per operation the JSON gateway serves, and the Arrow stream.
    assert set(described.methods_by_name) == (IMPLEMENTED | {"GetQueryResultsArrow"})
    assert described.methods_by_name["GetQueryResultsArrow"].server_streaming

    health = health_pb2_grpc.HealthStub(channel)
    for name in ["", "traillake.v1.CloudTrail", "traillake.v1.CloudTrailData", "arrow.flight.protocol.FlightService"]:
        assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING

    eds = pb.event_data_stores
    big_name = "gzip-" + "x" * 100
    created = cloudtrail_rpc.CreateEventDataStore(eds.CreateEventDataStoreRequest(Name=big_name), compression=grpc.Compression.Gzip)
    assert created.Name == big_name
    with grpc.insecure_channel(target(server), compression=grpc.Compression.Gzip) as compressed:
        listed = pb.service_pb2_grpc.CloudTrailStub(compressed).ListEventDataStores(eds.ListEventDataStoresRequest())
    assert [s.Name for s in listed.EventDataStores] == [big_name]

    unknown = channel.unary_unary("/traillake.v1.CloudTrail/NoSuchMethod", request_serializer=lambda m: b"", response_deserializer=bytes)
    with pytest.raises(grpc.RpcError) as excinfo:
        unknown(b"")
    assert excinfo.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_trail_operations_over_grpc(cloudtrail_rpc, pb):
    trails = importlib.import_module("traillake.v1.trails_pb2")
    assert list(cloudtrail_rpc.ListTrails(trails.ListTrailsRequest()).Trails) == []
    assert list(cloudtrail_rpc.DescribeTrails(trails.DescribeTrailsRequest()).trailList) == []
    code, aws_code, message = rpc_error(cloudtrail_rpc.CreateTrail, trails.CreateTrailRequest(Name="a..b", S3BucketName="bucket"))
    assert (code, aws_code) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidTrailNameException") and "a..b" in message
    code, aws_code, _ = rpc_error(cloudtrail_rpc.GetTrail, trails.TrailRequest(Name="missing"))
    assert (code, aws_code) == (grpc.StatusCode.NOT_FOUND, "TrailNotFoundException")
    code, aws_code, _ = rpc_error(cloudtrail_rpc.StartLogging,
                                  trails.TrailRequest(Name=f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/main"))
    assert (code, aws_code) == (grpc.StatusCode.FAILED_PRECONDITION, "InvalidHomeRegionException")
    selectors = trails.PutEventSelectorsRequest(TrailName="missing", EventSelectors=[
        trails.EventSelector(ReadWriteType=trails.READ_WRITE_TYPE_ReadOnly)])
    code, aws_code, _ = rpc_error(cloudtrail_rpc.PutEventSelectors, selectors)
    assert aws_code == "TrailNotFoundException"


def test_insights_metric_data_over_grpc(cloudtrail_rpc, pb):
    insights = importlib.import_module("traillake.v1.insights_pb2")
    eds = pb.event_data_stores
    cloudtrail_rpc.CreateEventDataStore(eds.CreateEventDataStoreRequest(Name="grpc-metric", StartIngestion=False))
    request = insights.ListInsightsMetricDataRequest(
        EventSource="cloudtrail.amazonaws.com", EventName="CreateEventDataStore",
        InsightType=insights.INSIGHT_TYPE_ApiCallRateInsight, Period=60)
    deadline = time.time() + 30
    while True:
        reply = cloudtrail_rpc.ListInsightsMetricData(request)
        if list(reply.Values) or time.time() > deadline:
            break
        time.sleep(0.3)
    assert list(reply.Values) == [1.0] and len(reply.Timestamps) == 1 and reply.Timestamps[0].seconds % 60 == 0
    request.Period = 120
    code, aws_code, message = rpc_error(cloudtrail_rpc.ListInsightsMetricData, request)
    assert (code, aws_code) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidParameterException") and "Period" in message
