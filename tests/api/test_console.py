"""The web console in a real headless Chromium (Debian's, driven by Playwright) against a server
that checks signatures: a wrong secret refused with the server's error; sign in; the stores and
their columns; a sample query found and run; its results paged and downloaded as CSV and JSON
(equal to GetQueryResults through boto3); a failing query's error; a long query cancelled; a
dashboard whose charts are drawn; the server gone, and the page says so. A screenshot of each step
is saved in the test's folder, whose path goes to the test output (stderr, past pytest's capture)."""

import csv
import datetime
import io
import json
import os
import shutil
import sys

import boto3
import botocore.config
import pytest

from conftest import ACCOUNT, REGION, Server, store_id
from test_queries import all_rows, load, now_utc, records, wait, write_records

ALICE = {"accessKeyId": "AKIAALICE00000000001", "secretAccessKey": "alice-secret-key-0001", "accountId": ACCOUNT}
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def client(server):
    return boto3.client("cloudtrail", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id=ALICE["accessKeyId"], aws_secret_access_key=ALICE["secretAccessKey"],
                        config=botocore.config.Config(retries={"max_attempts": 1}))


def test_the_console_in_chromium(tmp_path, browser):
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"credentials": [ALICE]}))
    server = Server(tmp_path / "lake", "--credentials", str(credentials)).start()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"console screenshots: {shots}", file=sys.__stderr__)
    try:
        cloudtrail = client(server)
        arn = cloudtrail.create_event_data_store(Name="console-store", StartIngestion=False)["EventDataStoreArn"]
        store = store_id(arn)
        start = now_utc() - datetime.timedelta(minutes=50)
        code, output = load(server, store, write_records(tmp_path / "events.json", records(120, start, 2)))
        assert code == 0, output
        cloudtrail.create_dashboard(Name="console-dashboard", Widgets=[
            {"QueryStatement": f"SELECT eventName, count(*) AS calls FROM {store} GROUP BY eventName ORDER BY eventName",
             "ViewProperties": {"View": "PieChart", "Title": "Calls by API"}},
            {"QueryStatement": f"SELECT DATE_TRUNC('?', eventTime) AS period, count(*) AS calls FROM {store} "
                               "GROUP BY DATE_TRUNC('?', eventTime) ORDER BY period",
             "QueryParameters": ["$Period$", "$Period$"],
             "ViewProperties": {"View": "LineChart", "Title": "Calls over time", "XAxisColumn": "period",
                                "YAxisColumn": "calls"}},
            {"QueryStatement": f"SELECT userIdentity.arn AS who, count(*) AS calls FROM {store} GROUP BY userIdentity.arn "
                               "ORDER BY who",
             "ViewProperties": {"View": "Table", "Title": "Callers"}},
        ])

        page = browser.new_page(accept_downloads=True, viewport={"width": 1400, "height": 1000})
        page.goto(f"{server.url}/console/")
        page.wait_for_selector("body[data-ready=true]")
        page.screenshot(path=shots / "1-sign-in.png")

        # A wrong secret: the server's own refusal, not a blank page.
        page.fill("#access-key", ALICE["accessKeyId"])
        page.fill("#secret-key", "not-the-secret")
        page.click("#sign-in-button")
        page.wait_for_function("document.getElementById('sign-in-error').textContent.length > 0")
        assert "SignatureDoesNotMatch" in page.inner_text("#sign-in-error") or "signature" in page.inner_text(
            "#sign-in-error").lower()
        page.screenshot(path=shots / "2-wrong-secret.png")

        page.fill("#secret-key", ALICE["secretAccessKey"])
        page.click("#sign-in-button")
        page.wait_for_selector("#app:not([hidden])")
        page.wait_for_selector(f"#stores li[data-id='{store}']")
        assert "eventtime timestamp" in page.inner_text("#schema")
        assert "useridentity row(" in page.inner_text("#schema")
        page.screenshot(path=shots / "3-signed-in.png")

        # A sample query, found by its words and put in the editor for the selected store.
        page.fill("#sample-search", "top APIs called")
        page.wait_for_selector("#sample-results li")
        page.click("#sample-results li >> nth=0")
        assert store in page.inner_text("#editor")

        # Run a query of 120 rows: pages of 50, the statistics, then downloads.
        page.click("#editor .cm-content")
        page.keyboard.press("Control+a")
        page.keyboard.type(f"SELECT eventID, eventName, sourceIPAddress FROM {store} ORDER BY eventTime")
        page.click("#run")
        page.wait_for_selector("#results tr >> nth=50")
        assert "FINISHED" in page.inner_text("#status") and "120 events scanned" in page.inner_text("#status")
        assert page.locator("#results tr").count() == 51
        page.screenshot(path=shots / "4-results.png")
        first_page = page.locator("#results td").first.inner_text()
        page.click("#next")
        page.wait_for_function(f"document.querySelector('#results td').textContent !== {json.dumps(first_page)}")
        page.click("#next")
        page.wait_for_function("document.querySelectorAll('#results tr').length === 21")
        assert page.is_disabled("#next") and "rows 101–120" in page.inner_text("#page")
        page.click("#previous")
        page.wait_for_function("document.querySelectorAll('#results tr').length === 51")

        query_id = cloudtrail.list_queries(EventDataStore=store)["Queries"][0]["QueryId"]
        expected = [[list(cell.values())[0] for cell in row] for row in all_rows(cloudtrail, query_id)]
        with page.expect_download() as downloaded:
            page.click("#download-csv")
        rows = list(csv.reader(io.StringIO(open(downloaded.value.path()).read())))
        assert rows[0] == ["eventID", "eventName", "sourceIPAddress"] and rows[1:] == expected
        with page.expect_download() as downloaded:
            page.click("#download-json")
        as_json = json.loads(open(downloaded.value.path()).read())
        assert [[r["eventID"], r["eventName"], r["sourceIPAddress"]] for r in as_json] == expected
        assert page.locator("#recent li").count() >= 1

        # A failing query: its error, as the server words it.
        page.click("#editor .cm-content")
        page.keyboard.press("Control+a")
        page.keyboard.type(f"SELECT nosuchcolumn FROM {store}")
        page.click("#run")
        page.wait_for_function("document.getElementById('query-error').textContent.length > 0")
        assert "InvalidQueryStatementException" in page.inner_text("#query-error")
        page.screenshot(path=shots / "5-failed-query.png")

        # A long query, cancelled.
        page.click("#editor .cm-content")
        page.keyboard.press("Control+a")
        page.keyboard.type(f"SELECT count(*) FROM {store} a, {store} b, {store} c, {store} d "
                           "WHERE a.eventID < b.eventID AND c.sourceIPAddress <> d.sourceIPAddress "
                           "AND a.eventName <> d.eventName")
        page.click("#run")
        page.wait_for_selector("#cancel:not([disabled])")
        page.click("#cancel")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('CANCELLED')", timeout=60_000)
        page.screenshot(path=shots / "6-cancelled.png")

        # The dashboard: refreshed on opening, each widget drawn as its view says.
        page.click("#tab-dashboards")
        page.wait_for_selector("#widgets[data-drawn]", timeout=60_000)
        assert page.locator(".widget[data-view=PieChart] canvas").count() == 1
        assert page.locator(".widget[data-view=LineChart] canvas").count() == 1
        assert page.locator(".widget[data-view=Table] tr").count() == 6  # 5 callers and the header
        drawn = page.evaluate("""() => [...document.querySelectorAll('.widget canvas')].map((canvas) => {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        })""")
        assert len(drawn) == 2 and all(painted > 1000 for painted in drawn), drawn
        assert cloudtrail.get_dashboard(DashboardId="console-dashboard")["LastRefreshId"] == page.get_attribute(
            "#widgets", "data-drawn")
        page.screenshot(path=shots / "7-dashboard.png", full_page=True)

        # The server gone: the page says it cannot reach it.
        server.stop()
        page.click("#refresh-dashboard")
        page.wait_for_function("document.getElementById('dashboard-error').textContent.length > 0")
        assert "could not be reached" in page.inner_text("#dashboard-error")
        page.screenshot(path=shots / "8-server-gone.png")
    finally:
        server.stop()
