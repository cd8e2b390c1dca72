"""Dashboards through boto3: StartQuery's QueryParameters (values, never SQL text, hostile ones
included), the six Dashboards operations with their bad inputs, refreshes on demand and on
schedule whose widget queries DescribeQuery finds by QueryAlias and RefreshId, tags and
termination protection on dashboard ARNs; SearchSampleQueries, and every sample query of the
library run on a store."""

import datetime
import json
import time

import pytest

from conftest import ACCOUNT, REGION, REPO, Server, error_code, store_id
from test_queries import all_rows, load, now_utc, records, wait, write_records


def loaded_store(server, cloudtrail, tmp_path, name="dash", count=300):
    """A store holding `count` events of the last hour (GetObject, PutObject, ListBuckets in turn)."""
    arn = cloudtrail.create_event_data_store(Name=name, StartIngestion=False)["EventDataStoreArn"]
    start = now_utc() - datetime.timedelta(minutes=50)
    code, output = load(server, store_id(arn), write_records(tmp_path / f"{name}.json", records(count, start, 2)))
    assert code == 0, output
    return arn, start


def run(cloudtrail, **kwargs):
    query_id = cloudtrail.start_query(**kwargs)["QueryId"]
    assert wait(cloudtrail, query_id)["QueryStatus"] == "FINISHED", cloudtrail.describe_query(QueryId=query_id)
    return [[list(cell.values())[0] for cell in row] for row in all_rows(cloudtrail, query_id)]


def refused(call, code, **kwargs):
    with pytest.raises(Exception) as excinfo:
        call(**kwargs)
    assert error_code(excinfo) == code, (kwargs, excinfo.value.response)
    return excinfo.value.response


def widget(statement, parameters=None, view="Table", **view_properties):
    w = {"QueryStatement": statement, "ViewProperties": {"View": view, **view_properties}}
    if parameters:
        w["QueryParameters"] = parameters
    return w


def test_query_parameters_are_values_never_sql(server, tmp_path):
    cloudtrail = server.client()
    arn, _ = loaded_store(server, cloudtrail, tmp_path)
    store = store_id(arn)
    statement = f"SELECT count(*) FROM {store} WHERE eventName = ? AND eventTime > '?'"
    since = (now_utc() - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert run(cloudtrail, QueryStatement=statement, QueryParameters=["GetObject", since]) == [["100"]]
    # Hostile values stay one string literal each: no row matches, nothing else runs.
    for hostile in ["x' OR '1'='1", "GetObject' OR eventName <> '", "'; SELECT 1; --", "? OR 1=1"]:
        assert run(cloudtrail, QueryStatement=statement, QueryParameters=[hostile, since]) == [["0"]], hostile
    assert run(cloudtrail, QueryStatement=f"SELECT count(*) FROM {store} WHERE eventName = ?",
               QueryParameters=["GetObject) OR (1=1"]) == [["0"]]
    # A numeric value fills a bare ? as a number.
    assert run(cloudtrail, QueryStatement=f"SELECT eventName FROM {store} ORDER BY eventTime LIMIT ?",
               QueryParameters=["2"]) == [["GetObject"], ["PutObject"]]
    refused(cloudtrail.start_query, "InvalidQueryStatementException", QueryStatement=statement,
            QueryParameters=["only one"])
    unvalidated = server.client(validate=False)
    refused(unvalidated.start_query, "InvalidParameterException", QueryStatement=statement,
            QueryParameters=["a"] * 11)
    refused(unvalidated.start_query, "InvalidParameterException", QueryStatement=statement,
            QueryParameters=["x" * 1025, since])
    refused(unvalidated.start_query, "InvalidParameterException", QueryStatement=statement, QueryAlias="a.b")
    refused(unvalidated.start_query, "InvalidParameterException", QueryAlias="no.such.widget")
    refused(unvalidated.start_query, "InvalidParameterException", QueryAlias="9bad")


def test_dashboards_are_kept_refreshed_and_their_queries_found_by_alias(tmp_path):
    server = Server(tmp_path / "lake", "--dashboard-schedule-interval", "1s").start()
    try:
        cloudtrail = server.client()
        arn, _ = loaded_store(server, cloudtrail, tmp_path)
        store = store_id(arn)
        widgets = [
            widget(f"SELECT eventName, count(*) AS calls FROM {store} WHERE eventTime > '?' AND eventTime < '?' "
                   "GROUP BY eventName ORDER BY eventName", ["$StartTime$", "$EndTime$"], "PieChart",
                   Title="Calls by API"),
            widget(f"SELECT DATE_TRUNC('?', eventTime) AS period, count(*) AS calls FROM {store} "
                   "GROUP BY DATE_TRUNC('?', eventTime) ORDER BY period", ["$Period$", "$Period$"], "LineChart",
                   XAxisColumn="period", YAxisColumn="calls"),
            widget(f"SELECT userIdentity.arn AS who, count(*) AS calls FROM {store} GROUP BY userIdentity.arn",
                   view="BarChart"),
        ]
        created = cloudtrail.create_dashboard(Name="ops-dashboard", Widgets=widgets,
                                              TagsList=[{"Key": "team", "Value": "sec"}],
                                              TerminationProtectionEnabled=True)
        dashboard_arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:dashboard/ops-dashboard"
        assert created["DashboardArn"] == dashboard_arn and created["Type"] == "CUSTOM"
        aliases = [w["QueryAlias"] for w in created["Widgets"]]
        assert aliases == ["ops-dashboard.widget1", "ops-dashboard.widget2", "ops-dashboard.widget3"]
        assert created["Widgets"][1]["QueryParameters"] == ["$Period$", "$Period$"]
        assert created["Widgets"][0]["ViewProperties"] == {"View": "PieChart", "Title": "Calls by API"}
        got = cloudtrail.get_dashboard(DashboardId="ops-dashboard")
        assert got["Status"] == "CREATED" and got["TerminationProtectionEnabled"] is True
        assert "LastRefreshId" not in got
        assert cloudtrail.list_tags(ResourceIdList=[dashboard_arn])["ResourceTagList"][0]["TagsList"] == [
            {"Key": "team", "Value": "sec"}]
        cloudtrail.add_tags(ResourceId=dashboard_arn, TagsList=[{"Key": "env", "Value": "prod"}])

        # A refresh on demand: one query per widget, tagged with its alias and the RefreshId.
        start = (now_utc() - datetime.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = (now_utc() + datetime.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        refresh = cloudtrail.start_dashboard_refresh(
            DashboardId=dashboard_arn,
            QueryParameterValues={"$StartTime$": start, "$EndTime$": end, "$Period$": "day"})["RefreshId"]
        assert refresh.isdigit() and 10 <= len(refresh) <= 20
        results = {}
        for alias in aliases:
            described = cloudtrail.describe_query(QueryAlias=alias, RefreshId=refresh)
            assert wait(cloudtrail, described["QueryId"])["QueryStatus"] == "FINISHED"
            results[alias] = [[list(c.values())[0] for c in row] for row in all_rows(cloudtrail, described["QueryId"])]
        assert results["ops-dashboard.widget1"] == [["GetObject", "100"], ["ListBuckets", "100"], ["PutObject", "100"]]
        assert len(results["ops-dashboard.widget2"]) in (1, 2)  # the events' day or days
        assert sum(int(row[1]) for row in results["ops-dashboard.widget2"]) == 300
        assert sorted(int(row[1]) for row in results["ops-dashboard.widget3"]) == [60] * 5
        assert "day" in cloudtrail.describe_query(QueryAlias=aliases[1], RefreshId=refresh)["QueryString"]
        assert cloudtrail.get_dashboard(DashboardId="ops-dashboard")["LastRefreshId"] == refresh
        # StartQuery by alias, with the values of its placeholders.
        by_alias = run(cloudtrail, QueryAlias=aliases[0], QueryParameters=[start, end])
        assert by_alias == results["ops-dashboard.widget1"]
        latest = cloudtrail.describe_query(QueryAlias=aliases[0])
        assert latest["QueryStatus"] == "FINISHED" and start in latest["QueryString"]
        refused(cloudtrail.describe_query, "QueryIdNotFoundException", QueryAlias=aliases[0],
                RefreshId="1234567890123")

        # Update: widgets replaced, a schedule due within the next minutes, protection off. A
        # scheduled refresh is CloudTrail's: the dashboard's policy lets the service refresh it and
        # the store's lets it query for the dashboard, in AWS's documented forms.
        def service_policy(action, resource_arn, source_arn):
            return json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": action,
                "Resource": resource_arn,
                "Condition": {"StringEquals": {"AWS:SourceArn": source_arn, "AWS:SourceAccount": ACCOUNT}}}]})

        cloudtrail.put_resource_policy(ResourceArn=dashboard_arn, ResourcePolicy=service_policy(
            "cloudtrail:StartDashboardRefresh", dashboard_arn, dashboard_arn))
        cloudtrail.put_resource_policy(ResourceArn=arn, ResourcePolicy=service_policy(
            "cloudtrail:StartQuery", arn, dashboard_arn))
        due = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)).strftime("%H:%M")
        schedule = {"Frequency": {"Unit": "HOURS", "Value": 1}, "Status": "ENABLED", "TimeOfDay": due}
        updated = cloudtrail.update_dashboard(
            DashboardId="ops-dashboard", Widgets=[widgets[2]], TerminationProtectionEnabled=False,
            RefreshSchedule=schedule)
        assert [w["QueryAlias"] for w in updated["Widgets"]] == ["ops-dashboard.widget1"]
        assert updated["RefreshSchedule"]["TimeOfDay"] == due
        assert cloudtrail.get_dashboard(DashboardId="ops-dashboard")["Status"] == "UPDATED"
        # Two more on the same schedule: one without a policy of its own, one whose widget reads
        # the store, whose policy names another dashboard.
        cloudtrail.create_dashboard(Name="no-policy", Widgets=[widgets[2]], RefreshSchedule=schedule)
        cloudtrail.create_dashboard(Name="store-refuses", Widgets=[widgets[2]], RefreshSchedule=schedule)
        refuses_arn = dashboard_arn.replace("ops-dashboard", "store-refuses")
        cloudtrail.put_resource_policy(ResourceArn=refuses_arn, ResourcePolicy=service_policy(
            "cloudtrail:StartDashboardRefresh", refuses_arn, refuses_arn))
        deadline = time.time() + 150
        while cloudtrail.get_dashboard(DashboardId="ops-dashboard").get("LastRefreshId") == refresh:
            assert time.time() < deadline, "the scheduled refresh did not run"
            time.sleep(1)
        scheduled = cloudtrail.get_dashboard(DashboardId="ops-dashboard")["LastRefreshId"]
        query = cloudtrail.describe_query(QueryAlias="ops-dashboard.widget1", RefreshId=scheduled)
        assert wait(cloudtrail, query["QueryId"])["QueryStatus"] == "FINISHED"
        time.sleep(2)
        reason = cloudtrail.get_dashboard(DashboardId="no-policy")["LastRefreshFailureReason"]
        assert "StartDashboardRefresh" in reason, reason
        reason = cloudtrail.get_dashboard(DashboardId="store-refuses")["LastRefreshFailureReason"]
        assert "StartQuery" in reason and store in reason, reason
        for name in ["no-policy", "store-refuses"]:
            cloudtrail.delete_dashboard(DashboardId=name)

        # Kept across a restart.
        server.stop()
        server = Server(tmp_path / "lake", "--dashboard-schedule-interval", "1s").start()
        cloudtrail = server.client()
        listed = cloudtrail.list_dashboards()["Dashboards"]
        assert listed == [{"DashboardArn": dashboard_arn, "Type": "CUSTOM"}]
        assert cloudtrail.get_dashboard(DashboardId=dashboard_arn)["LastRefreshId"] == scheduled

        # A widget whose store was deleted: the refresh says why.
        other, _ = loaded_store(server, cloudtrail, tmp_path, name="dash-other", count=3)
        cloudtrail.create_dashboard(Name="doomed", Widgets=[widget(f"SELECT count(*) FROM {store_id(other)}")])
        cloudtrail.update_event_data_store(EventDataStore=other, TerminationProtectionEnabled=False)
        cloudtrail.delete_event_data_store(EventDataStore=other)
        cloudtrail.start_dashboard_refresh(DashboardId="doomed")
        reason = cloudtrail.get_dashboard(DashboardId="doomed")["LastRefreshFailureReason"]
        assert "doomed.widget1" in reason and store_id(other) in reason

        cloudtrail.delete_dashboard(DashboardId="ops-dashboard")
        refused(cloudtrail.get_dashboard, "ResourceNotFoundException", DashboardId="ops-dashboard")
    finally:
        server.stop()


def test_bad_dashboard_requests_change_nothing(server, tmp_path):
    cloudtrail = server.client(validate=False)
    arn, _ = loaded_store(server, cloudtrail, tmp_path, count=3)
    store = store_id(arn)
    good = widget(f"SELECT count(*) FROM {store}")
    cloudtrail.create_dashboard(Name="kept", Widgets=[good], TerminationProtectionEnabled=True)
    cases = [
        ("ValidationException", dict(Name="ab")),
        ("ValidationException", dict(Name="bad name")),
        ("ValidationException", dict(Name="many", Widgets=[good] * 11)),
        ("ValidationException", dict(Name="noview", Widgets=[{"QueryStatement": f"SELECT 1 FROM {store}",
                                                               "ViewProperties": {"Title": "x"}}])),
        ("ValidationException", dict(Name="radar", Widgets=[widget(f"SELECT 1 FROM {store}", view="Radar")])),
        ("ValidationException", dict(Name="badkey", Widgets=[widget(f"SELECT 1 FROM {store}", **{"a!": "x"})])),
        ("ValidationException", dict(Name="sched", RefreshSchedule={"Frequency": {"Unit": "HOURS", "Value": 5}})),
        ("ValidationException", dict(Name="sched", RefreshSchedule={"Frequency": {"Unit": "DAYS", "Value": 1},
                                                                     "TimeOfDay": "25:00"})),
        ("InvalidQueryStatementException", dict(Name="count", Widgets=[widget(f"SELECT ? FROM {store}")])),
        ("InvalidQueryStatementException", dict(Name="param", Widgets=[
            widget(f"SELECT ? FROM {store}", ["$Other$"])])),
        ("InvalidQueryStatementException", dict(Name="nostore", Widgets=[
            widget("SELECT 1 FROM 00000000-0000-4000-8000-000000000000")])),
        ("InvalidQueryStatementException", dict(Name="column", Widgets=[widget(f"SELECT nosuchcolumn FROM {store}")])),
        ("InvalidQueryStatementException", dict(Name="delete", Widgets=[widget(f"DELETE FROM {store}")])),
        ("InvalidTagParameterException", dict(Name="tags", TagsList=[{"Key": "aws:x", "Value": "y"}])),
        ("ConflictException", dict(Name="kept")),
        ("ValidationException", dict(Name="AWSCloudTrail-Highlights")),
        ("ValidationException", dict(Name="AWSCloudTrail-Highlights", RefreshSchedule={
            "Frequency": {"Unit": "HOURS", "Value": 12}, "Status": "ENABLED"})),
        ("ValidationException", dict(Name="AWSCloudTrail-Highlights", Widgets=[good], RefreshSchedule={
            "Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "ENABLED"})),
    ]
    for code, kwargs in cases:
        refused(cloudtrail.create_dashboard, code, **kwargs)
    assert [d["DashboardArn"].rsplit("/", 1)[1] for d in cloudtrail.list_dashboards()["Dashboards"]] == ["kept"]
    for call, kwargs in [
        (cloudtrail.get_dashboard, dict(DashboardId="missing")),
        (cloudtrail.delete_dashboard, dict(DashboardId="missing")),
        (cloudtrail.start_dashboard_refresh, dict(DashboardId="missing")),
        (cloudtrail.update_dashboard, dict(DashboardId="missing", TerminationProtectionEnabled=False)),
        (cloudtrail.get_dashboard, dict(DashboardId=f"arn:aws:cloudtrail:{REGION}:210987654321:dashboard/kept")),
    ]:
        refused(call, "ResourceNotFoundException", **kwargs)
    refused(cloudtrail.delete_dashboard, "ConflictException", DashboardId="kept")
    refused(cloudtrail.update_dashboard, "InvalidQueryStatementException", DashboardId="kept",
            Widgets=[widget(f"SELECT ? FROM {store}")])
    refused(cloudtrail.start_dashboard_refresh, "ValidationException", DashboardId="kept",
            QueryParameterValues={"$Other$": "x"})
    refused(cloudtrail.start_dashboard_refresh, "ValidationException", DashboardId="kept",
            QueryParameterValues={"$StartTime$": "2026-01-01 00:00:00"})
    refused(cloudtrail.list_dashboards, "ValidationException", MaxResults=0)
    refused(cloudtrail.list_dashboards, "InvalidNextTokenException", NextToken="garbage-token")
    # A resource policy on a dashboard is kept, read and deleted (scheduled refreshes consult it: above).
    kept_arn = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:dashboard/kept"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "refresh", "Effect": "Allow", "Principal": {"AWS": "222222222222"},
        "Action": ["cloudtrail:StartDashboardRefresh", "cloudtrail:GetDashboard"], "Resource": kept_arn}]})
    assert cloudtrail.put_resource_policy(ResourceArn=kept_arn, ResourcePolicy=policy)["ResourcePolicy"] == policy
    assert cloudtrail.get_resource_policy(ResourceArn=kept_arn)["ResourcePolicy"] == policy
    cloudtrail.delete_resource_policy(ResourceArn=kept_arn)
    refused(cloudtrail.get_resource_policy, "ResourcePolicyNotFoundException", ResourceArn=kept_arn)
    refused(cloudtrail.put_resource_policy, "ResourceNotFoundException",
            ResourceArn=kept_arn.replace("/kept", "/missing"), ResourcePolicy=policy.replace("/kept", "/missing"))
    # Nothing refused changed the kept dashboard.
    kept = cloudtrail.get_dashboard(DashboardId="kept")
    assert kept["Status"] == "CREATED" and kept["TerminationProtectionEnabled"] is True
    assert [w["QueryStatement"] for w in kept["Widgets"]] == [good["QueryStatement"]]
    # Listing: by prefix and type, a page at a time.
    for name in ["kept-2", "other"]:
        cloudtrail.create_dashboard(Name=name)
    assert len(cloudtrail.list_dashboards(NamePrefix="kep")["Dashboards"]) == 2
    assert cloudtrail.list_dashboards(Type="MANAGED")["Dashboards"] == []
    first = cloudtrail.list_dashboards(MaxResults=2)
    second = cloudtrail.list_dashboards(MaxResults=2, NextToken=first["NextToken"])
    names = [d["DashboardArn"].rsplit("/", 1)[1] for d in first["Dashboards"] + second["Dashboards"]]
    assert names == ["kept", "kept-2", "other"] and "NextToken" not in second


def test_the_managed_highlights_dashboard(server, tmp_path):
    cloudtrail = server.client(validate=False)
    arn, _ = loaded_store(server, cloudtrail, tmp_path)
    six_hours = {"Frequency": {"Unit": "HOURS", "Value": 6}, "Status": "ENABLED"}
    created = cloudtrail.create_dashboard(Name="AWSCloudTrail-Highlights", RefreshSchedule=six_hours)
    assert created["Type"] == "MANAGED" and len(created["Widgets"]) == 8
    assert all("$EventDataStoreId$" in w["QueryStatement"] for w in created["Widgets"])
    assert cloudtrail.list_dashboards(Type="MANAGED")["Dashboards"] == [
        {"DashboardArn": created["DashboardArn"], "Type": "MANAGED"}]
    refused(cloudtrail.update_dashboard, "UnsupportedOperationException", DashboardId="AWSCloudTrail-Highlights",
            Widgets=[widget(f"SELECT 1 FROM {store_id(arn)}")])
    refused(cloudtrail.update_dashboard, "ValidationException", DashboardId="AWSCloudTrail-Highlights",
            RefreshSchedule={"Frequency": {"Unit": "HOURS", "Value": 1}, "Status": "ENABLED"})
    refused(cloudtrail.start_dashboard_refresh, "ValidationException", DashboardId="AWSCloudTrail-Highlights")
    refused(cloudtrail.start_dashboard_refresh, "EventDataStoreNotFoundException", DashboardId="AWSCloudTrail-Highlights",
            QueryParameterValues={"$EventDataStoreId$": "00000000-0000-4000-8000-000000000000"})
    refresh = cloudtrail.start_dashboard_refresh(DashboardId="AWSCloudTrail-Highlights",
                                                 QueryParameterValues={"$EventDataStoreId$": arn})["RefreshId"]
    results = {}
    for w in created["Widgets"]:
        query = cloudtrail.describe_query(QueryAlias=w["QueryAlias"], RefreshId=refresh)
        assert wait(cloudtrail, query["QueryId"])["QueryStatus"] == "FINISHED", (w["QueryAlias"], query)
        results[w["ViewProperties"]["Title"]] = [[list(c.values())[0] for c in row]
                                                 for row in all_rows(cloudtrail, query["QueryId"])]
    assert sorted(results["Top API calls"]) == [["GetObject", "100"], ["ListBuckets", "100"], ["PutObject", "100"]]
    assert sum(int(calls) for _, calls in results["API calls over time"]) == 300
    assert results["Calls by Region"] == [["us-east-1", "300"]]
    assert "LastRefreshFailureReason" not in cloudtrail.get_dashboard(DashboardId="AWSCloudTrail-Highlights")


def test_search_sample_queries_and_every_sample_runs(server, tmp_path):
    cloudtrail = server.client()
    found = cloudtrail.search_sample_queries(SearchPhrase="console logins without MFA")["SearchResults"]
    assert found[0]["Name"] == "Console sign-ins without MFA"
    assert all(0 < r["Relevance"] <= 1 for r in found)
    assert [r["Relevance"] for r in found] == sorted((r["Relevance"] for r in found), reverse=True)
    assert cloudtrail.search_sample_queries(SearchPhrase="root user")["SearchResults"][0]["Name"] == "Root user activity"
    first = cloudtrail.search_sample_queries(SearchPhrase="changes", MaxResults=2)
    second = cloudtrail.search_sample_queries(SearchPhrase="changes", MaxResults=2, NextToken=first["NextToken"])
    everything = cloudtrail.search_sample_queries(SearchPhrase="changes", MaxResults=50)["SearchResults"]
    assert [r["Name"] for r in first["SearchResults"] + second["SearchResults"]] == [r["Name"] for r in everything[:4]]
    unvalidated = server.client(validate=False)
    for kwargs in [dict(SearchPhrase="a"), dict(SearchPhrase="fine", MaxResults=51),
                   dict(SearchPhrase="other", NextToken=first["NextToken"])]:
        refused(unvalidated.search_sample_queries, "InvalidParameterException", **kwargs)

    # Every sample of the library is found by its own name, and is a query traillake runs.
    arn, _ = loaded_store(server, cloudtrail, tmp_path, count=30)
    library = {s["Name"]: s["SQL"] for s in json.loads((REPO / "crates/traillake-api/samples/sample_queries.json").read_text())}
    assert len(library) >= 20
    for name, sql in library.items():
        results = cloudtrail.search_sample_queries(SearchPhrase=name, MaxResults=50)["SearchResults"]
        assert any(r["Name"] == name and r["SQL"] == sql and r["Relevance"] == 1.0 for r in results), (name, results[:3])
        query_id = cloudtrail.start_query(QueryStatement=sql.replace("$EDS_ID", store_id(arn)))["QueryId"]
        described = wait(cloudtrail, query_id)
        assert described["QueryStatus"] == "FINISHED", (name, described.get("ErrorMessage"))
