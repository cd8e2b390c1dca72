"""GenerateQuery with the query generator an operator configures (tests/api/query_generator.py, a
command run by the real server): the request it receives, the statement checked as a query of the
one store, StartQuery of the QueryAlias and the Prompt in DescribeQuery; every refusal, and the
operation off without a generator."""

import datetime
import json
import sys

import pytest

from conftest import Server, error_code, store_id
from test_queries import all_rows, load, now_utc, records, wait, write_records

GENERATOR = f"{sys.executable} {__file__.replace('test_generate_query.py', 'query_generator.py')}"


def refusal(call, **kwargs):
    with pytest.raises(Exception) as excinfo:
        call(**kwargs)
    return error_code(excinfo), excinfo.value.response["Error"]["Message"]


def test_without_a_generator_the_operation_is_off(cloudtrail):
    eds = store_id(cloudtrail.create_event_data_store(Name="events", StartIngestion=False)["EventDataStoreArn"])
    code, message = refusal(cloudtrail.generate_query, EventDataStores=[eds], Prompt="top errors")
    assert code == "UnsupportedOperationException" and "--query-generator" in message, message


def test_a_generated_query_runs_by_its_alias_and_bad_answers_are_refused(tmp_path):
    log = tmp_path / "generator.log"
    server = Server(tmp_path / "lake", "--query-generator", GENERATOR, env={"GENERATOR_LOG": str(log)}).start()
    try:
        cloudtrail = server.client()
        arn = cloudtrail.create_event_data_store(Name="events", StartIngestion=False, RetentionPeriod=90)["EventDataStoreArn"]
        eds = store_id(arn)
        code, output = load(server, "events", write_records(tmp_path / "e.json", records(300, now_utc() - datetime.timedelta(hours=2))))
        assert code == 0 and "300 stored" in output, output

        generated = cloudtrail.generate_query(EventDataStores=[arn], Prompt="calls by name")
        statement = f"SELECT eventName, count(*) AS n FROM {eds} GROUP BY eventName ORDER BY eventName"
        assert generated["QueryStatement"] == statement
        assert generated["EventDataStoreOwnerAccountId"] == "123456789012"
        request = json.loads(log.read_text().splitlines()[-1])
        assert request["prompt"] == "calls by name" and request["eventDataStore"] == eds and request["eventDataStoreArn"] == arn
        columns = {column["name"]: column["type"] for column in request["columns"]}
        assert columns["eventname"] == "string" and columns["eventtime"] == "timestamp"

        query_id = cloudtrail.start_query(QueryAlias=generated["QueryAlias"])["QueryId"]
        described = wait(cloudtrail, query_id)
        assert described["QueryStatus"] == "FINISHED", described
        assert described["Prompt"] == "calls by name" and described["QueryString"] == statement
        assert all_rows(cloudtrail, query_id) == [[{"eventName": name}, {"n": "100"}] for name in ("GetObject", "ListBuckets", "PutObject")]
        assert cloudtrail.describe_query(QueryAlias=generated["QueryAlias"])["QueryId"] == query_id

        fenced = cloudtrail.generate_query(EventDataStores=[eds], Prompt="top errors in the last day")
        assert fenced["QueryStatement"].startswith("SELECT errorCode") and "```" not in fenced["QueryStatement"]
        assert fenced["QueryAlias"] != generated["QueryAlias"]

        for prompt, words in [
            ("read another store", "not only this store"),
            ("delete everything", "only select statements"),
            ("no such column please", "nosuchcolumn"),
            ("model down", "the model is unavailable"),
            ("something it cannot answer", "no statement"),
        ]:
            code, message = refusal(cloudtrail.generate_query, EventDataStores=[eds], Prompt=prompt)
            assert code == "GenerateResponseException" and words in message.lower(), (prompt, message)
        unchecked = server.client(validate=False)  # boto3 would refuse some of these itself
        for stores, prompt, expected in [
            ([], "top errors", "InvalidParameterException"),
            ([eds, eds], "top errors", "InvalidParameterException"),
            ([eds], "ab", "InvalidParameterException"),
            ([eds], "caf\u00e9 errors", "InvalidParameterException"),
            (["00000000-0000-4000-8000-000000000000"], "top errors", "EventDataStoreNotFoundException"),
            ([arn.replace("123456789012", "210987654321")], "top errors", "EventDataStoreARNInvalidException"),
        ]:
            assert refusal(unchecked.generate_query, EventDataStores=stores, Prompt=prompt)[0] == expected, (stores, prompt)
        assert refusal(cloudtrail.start_query, QueryAlias="generated-unknown")[0] == "InvalidParameterException"
        # A generated query is the account's: another account cannot run it by its alias.
        other = server.client(access_key="210987654321")
        assert refusal(other.start_query, QueryAlias=generated["QueryAlias"])[0] == "InvalidParameterException"
    finally:
        server.stop()
