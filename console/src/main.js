// traillake's web console: sign in with an access key (kept in memory only; every request is
// signed with SigV4 by the AWS SDK for JavaScript v3, as any client's), then write queries in a
// SQL editor (CodeMirror) beside the stores and their columns, run and cancel them, page and
// download their results, and open dashboards whose widgets are drawn with Chart.js. Errors from
// the server are shown as the server words them.

import {
  CancelQueryCommand,
  CloudTrailClient,
  DescribeQueryCommand,
  GetDashboardCommand,
  GetQueryResultsCommand,
  ListDashboardsCommand,
  ListEventDataStoresCommand,
  ListQueriesCommand,
  SearchSampleQueriesCommand,
  StartDashboardRefreshCommand,
  StartQueryCommand,
} from "@aws-sdk/client-cloudtrail";
import { sql } from "@codemirror/lang-sql";
import Chart from "chart.js/auto";
import { EditorView, basicSetup } from "codemirror";

const PAGE_ROWS = 50;
const TERMINAL = new Set(["FINISHED", "FAILED", "CANCELLED", "TIMED_OUT"]);
const $ = (id) => document.getElementById(id);

const state = {
  client: null,
  region: "us-east-1",
  schema: {},
  stores: [],
  store: null,
  query: null, // { id, tokens: [page start tokens], page, columns }
  charts: [],
  dashboard: null,
};
let editor;

// What the server said, as it said it; a request that never reached it says so.
function describeError(error) {
  if (error?.name === "TypeError" || /fetch|network/i.test(error?.message ?? "")) {
    return `The server could not be reached: ${error.message}`;
  }
  const code = error?.name ?? "Error";
  return `${code}: ${error?.message ?? String(error)}`;
}

async function send(command) {
  return state.client.send(command);
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  const accessKeyId = $("access-key").value.trim();
  const secretAccessKey = $("secret-key").value;
  state.client = new CloudTrailClient({
    region: state.region,
    endpoint: window.location.origin,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 1,
  });
  try {
    const listed = await send(new ListEventDataStoresCommand({}));
    state.stores = listed.EventDataStores ?? [];
  } catch (error) {
    state.client = null;
    $("sign-in-error").textContent = describeError(error);
    return;
  }
  $("secret-key").value = "";
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("who").textContent = `${accessKeyId} · ${state.region}`;
  renderStores();
}

function signOut() {
  state.client = null;
  window.location.reload();
}

function storeKind(store) {
  const categories = (store.AdvancedEventSelectors ?? []).flatMap((selector) =>
    (selector.FieldSelectors ?? []).filter((f) => f.Field === "eventCategory").flatMap((f) => f.Equals ?? []),
  );
  for (const kind of ["Insight", "ConfigurationItem", "ActivityAuditLog", "Evidence"]) {
    if (categories.includes(kind)) return kind;
  }
  return "CloudTrail";
}

function storeId(store) {
  return store.EventDataStoreArn.split("/").pop();
}

function renderStores() {
  const list = $("stores");
  list.replaceChildren();
  for (const store of state.stores) {
    const item = document.createElement("li");
    item.textContent = `${store.Name} (${storeId(store)})`;
    item.dataset.id = storeId(store);
    item.addEventListener("click", () => selectStore(store));
    list.append(item);
  }
  if (state.stores.length) selectStore(state.stores[0]);
}

function selectStore(store) {
  state.store = store;
  for (const item of $("stores").children) item.classList.toggle("selected", item.dataset.id === storeId(store));
  const columns = state.schema[storeKind(store)] ?? [];
  $("schema").replaceChildren(
    ...columns.map((column) => {
      const item = document.createElement("li");
      item.append(`${column.name} `);
      const type = document.createElement("span");
      type.textContent = column.type;
      item.append(type);
      return item;
    }),
  );
  if (!editor.state.doc.length) {
    setStatement(`SELECT eventTime, eventName, userIdentity.arn\nFROM ${storeId(store)}\nORDER BY eventTime DESC\nLIMIT 100`);
  }
  loadRecent();
}

function setStatement(text) {
  editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: text } });
}

let searchTimer;
function searchSamples() {
  clearTimeout(searchTimer);
  const phrase = $("sample-search").value.trim();
  if (phrase.length < 2) {
    $("sample-results").replaceChildren();
    return;
  }
  searchTimer = setTimeout(async () => {
    try {
      const found = await send(new SearchSampleQueriesCommand({ SearchPhrase: phrase, MaxResults: 10 }));
      $("sample-results").replaceChildren(
        ...(found.SearchResults ?? []).map((sample) => {
          const item = document.createElement("li");
          item.textContent = `${sample.Name} — ${sample.Description}`;
          item.title = sample.SQL;
          item.addEventListener("click", () => {
            const id = state.store ? storeId(state.store) : "$EDS_ID";
            setStatement(sample.SQL.replaceAll("$EDS_ID", id));
            $("sample-results").replaceChildren();
          });
          return item;
        }),
      );
    } catch (error) {
      $("query-error").textContent = describeError(error);
    }
  }, 300);
}

function statistics(described) {
  const s = described.QueryStatistics ?? {};
  const parts = [described.QueryStatus];
  if (s.EventsScanned !== undefined) parts.push(`${s.EventsScanned} events scanned`);
  if (s.EventsMatched !== undefined) parts.push(`${s.EventsMatched} matched`);
  if (s.BytesScanned !== undefined) parts.push(`${s.BytesScanned} bytes`);
  if (s.ExecutionTimeInMillis !== undefined) parts.push(`${s.ExecutionTimeInMillis} ms`);
  return parts.join(" · ");
}

async function waitForEnd(queryId, onStatus) {
  for (;;) {
    const described = await send(new DescribeQueryCommand({ QueryId: queryId }));
    onStatus(described);
    if (TERMINAL.has(described.QueryStatus)) return described;
    await new Promise((resolve) => setTimeout(resolve, 400));
  }
}

async function run() {
  $("query-error").textContent = "";
  $("results").replaceChildren();
  setPager(false);
  $("run").disabled = true;
  try {
    const started = await send(new StartQueryCommand({ QueryStatement: editor.state.doc.toString() }));
    await followQuery(started.QueryId);
  } catch (error) {
    $("query-error").textContent = describeError(error);
    $("status").textContent = "";
  } finally {
    $("run").disabled = false;
    $("cancel").disabled = true;
    loadRecent();
  }
}

async function followQuery(queryId) {
  state.query = { id: queryId, tokens: [undefined], page: 0, columns: [] };
  $("cancel").disabled = false;
  const described = await waitForEnd(queryId, (d) => {
    $("status").textContent = statistics(d);
  });
  $("cancel").disabled = true;
  if (described.QueryStatus === "FINISHED") {
    await showPage(0);
  } else if (described.ErrorMessage) {
    $("query-error").textContent = `${described.QueryStatus}: ${described.ErrorMessage}`;
  }
}

async function cancel() {
  if (!state.query) return;
  try {
    await send(new CancelQueryCommand({ QueryId: state.query.id }));
  } catch (error) {
    $("query-error").textContent = describeError(error);
  }
}

// Rows of GetQueryResults are lists of one-key objects; a NULL leaves its column out.
function rowsOf(resultRows, columns) {
  const rows = [];
  for (const row of resultRows ?? []) {
    const values = {};
    for (const cell of row) {
      for (const [key, value] of Object.entries(cell)) {
        if (!columns.includes(key)) columns.push(key);
        values[key] = value;
      }
    }
    rows.push(values);
  }
  return rows;
}

function renderTable(table, columns, rows) {
  const head = document.createElement("tr");
  head.append(...columns.map((column) => Object.assign(document.createElement("th"), { textContent: column })));
  const body = rows.map((row) => {
    const line = document.createElement("tr");
    line.append(...columns.map((column) => Object.assign(document.createElement("td"), { textContent: row[column] ?? "" })));
    return line;
  });
  table.replaceChildren(head, ...body);
}

async function showPage(page) {
  const query = state.query;
  const results = await send(
    new GetQueryResultsCommand({ QueryId: query.id, MaxQueryResults: PAGE_ROWS, NextToken: query.tokens[page] }),
  );
  const rows = rowsOf(results.QueryResultRows, query.columns);
  renderTable($("results"), query.columns, rows);
  query.page = page;
  query.tokens[page + 1] = results.NextToken;
  $("page").textContent = `page ${page + 1}, rows ${page * PAGE_ROWS + 1}–${page * PAGE_ROWS + rows.length}`;
  setPager(true);
  $("previous").disabled = page === 0;
  $("next").disabled = !results.NextToken;
}

function setPager(enabled) {
  for (const id of ["previous", "next", "download-csv", "download-json"]) $(id).disabled = !enabled;
  if (!enabled) $("page").textContent = "";
}

async function allRows(queryId) {
  const columns = [];
  const rows = [];
  let token;
  do {
    const page = await send(new GetQueryResultsCommand({ QueryId: queryId, MaxQueryResults: 1000, NextToken: token }));
    rows.push(...rowsOf(page.QueryResultRows, columns));
    token = page.NextToken;
  } while (token);
  return { columns, rows };
}

function csvField(value) {
  const text = value ?? "";
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function download(format) {
  try {
    const { columns, rows } = await allRows(state.query.id);
    const text =
      format === "csv"
        ? [columns.map(csvField).join(","), ...rows.map((row) => columns.map((c) => csvField(row[c])).join(","))].join("\n") + "\n"
        : JSON.stringify(rows, null, 2);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: format === "csv" ? "text/csv" : "application/json" }));
    link.download = `${state.query.id}.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    $("query-error").textContent = describeError(error);
  }
}

async function loadRecent() {
  if (!state.store) return;
  try {
    const listed = await send(new ListQueriesCommand({ EventDataStore: storeId(state.store), MaxResults: 10 }));
    $("recent").replaceChildren(
      ...(listed.Queries ?? []).map((query) => {
        const item = document.createElement("li");
        item.textContent = `${new Date(query.CreationTime).toISOString()} ${query.QueryStatus} ${query.QueryId}`;
        item.addEventListener("click", async () => {
          $("query-error").textContent = "";
          try {
            const described = await send(new DescribeQueryCommand({ QueryId: query.QueryId }));
            if (described.QueryString) setStatement(described.QueryString);
            await followQuery(query.QueryId);
          } catch (error) {
            $("query-error").textContent = describeError(error);
          }
        });
        return item;
      }),
    );
  } catch (error) {
    $("query-error").textContent = describeError(error);
  }
}

// Dashboards: each widget's query of a refresh, found by its alias and the RefreshId, drawn as its
// view type says.
async function loadDashboards() {
  $("dashboard-error").textContent = "";
  try {
    const listed = await send(new ListDashboardsCommand({}));
    const select = $("dashboard-list");
    select.replaceChildren(
      ...(listed.Dashboards ?? []).map((dashboard) => {
        const name = dashboard.DashboardArn.split("/").pop();
        return Object.assign(document.createElement("option"), { value: name, textContent: name });
      }),
    );
    if (select.value) await openDashboard(select.value);
  } catch (error) {
    $("dashboard-error").textContent = describeError(error);
  }
}

async function openDashboard(name, refreshId) {
  $("dashboard-error").textContent = "";
  try {
    const dashboard = await send(new GetDashboardCommand({ DashboardId: name }));
    state.dashboard = { name, refreshId: refreshId ?? dashboard.LastRefreshId };
    if (!state.dashboard.refreshId) {
      await refreshDashboard();
      return;
    }
    if (dashboard.LastRefreshFailureReason) $("dashboard-error").textContent = dashboard.LastRefreshFailureReason;
    await drawWidgets(dashboard.Widgets ?? [], state.dashboard.refreshId);
  } catch (error) {
    $("dashboard-error").textContent = describeError(error);
  }
}

async function refreshDashboard() {
  const name = $("dashboard-list").value;
  if (!name) return;
  try {
    const refreshed = await send(new StartDashboardRefreshCommand({ DashboardId: name }));
    await openDashboard(name, refreshed.RefreshId);
  } catch (error) {
    $("dashboard-error").textContent = describeError(error);
  }
}

async function drawWidgets(widgets, refreshId) {
  for (const chart of state.charts) chart.destroy();
  state.charts = [];
  $("dashboard-status").textContent = `refresh ${refreshId}`;
  const container = $("widgets");
  container.replaceChildren();
  for (const widget of widgets) {
    const view = widget.ViewProperties ?? {};
    const box = document.createElement("div");
    box.className = "widget";
    box.dataset.alias = widget.QueryAlias;
    box.dataset.view = view.View ?? "Table";
    box.append(Object.assign(document.createElement("h3"), { textContent: view.Title ?? widget.QueryAlias }));
    container.append(box);
    try {
      const described = await send(new DescribeQueryCommand({ QueryAlias: widget.QueryAlias, RefreshId: refreshId }));
      const ended = await waitForEnd(described.QueryId, () => {});
      if (ended.QueryStatus !== "FINISHED") {
        box.append(Object.assign(document.createElement("p"), { className: "error", textContent: `${ended.QueryStatus}: ${ended.ErrorMessage ?? ""}` }));
        continue;
      }
      const { columns, rows } = await allRows(described.QueryId);
      drawWidget(box, view, columns, rows);
    } catch (error) {
      box.append(Object.assign(document.createElement("p"), { className: "error", textContent: describeError(error) }));
    }
  }
  container.dataset.drawn = refreshId;
}

function drawWidget(box, view, columns, rows) {
  const kind = { LineChart: "line", BarChart: "bar", PieChart: "pie" }[view.View];
  if (!kind) {
    const holder = Object.assign(document.createElement("div"), { className: "table-view" });
    const table = document.createElement("table");
    renderTable(table, columns, rows);
    holder.append(table);
    box.append(holder);
    return;
  }
  const x = view.XAxisColumn && columns.includes(view.XAxisColumn) ? view.XAxisColumn : columns[0];
  const y = view.YAxisColumn && columns.includes(view.YAxisColumn) ? view.YAxisColumn : columns.find((c) => c !== x);
  const canvas = document.createElement("canvas");
  box.append(canvas);
  state.charts.push(
    new Chart(canvas, {
      type: kind,
      data: {
        labels: rows.map((row) => row[x] ?? ""),
        datasets: [{ label: y, data: rows.map((row) => Number(row[y] ?? 0)) }],
      },
      options: { animation: false, responsive: true },
    }),
  );
}

// The server refreshes dashboards on schedule: a new LastRefreshId is drawn when it appears.
async function watchDashboard() {
  if (!state.client || $("dashboards-tab").hidden || !state.dashboard) return;
  try {
    const dashboard = await send(new GetDashboardCommand({ DashboardId: state.dashboard.name }));
    if (dashboard.LastRefreshId && dashboard.LastRefreshId !== state.dashboard.refreshId) {
      await openDashboard(state.dashboard.name, dashboard.LastRefreshId);
    }
  } catch (error) {
    $("dashboard-error").textContent = describeError(error);
  }
}

function showTab(name) {
  $("query-tab").hidden = name !== "query";
  $("dashboards-tab").hidden = name !== "dashboards";
  $("tab-query").classList.toggle("active", name === "query");
  $("tab-dashboards").classList.toggle("active", name === "dashboards");
  if (name === "dashboards") loadDashboards();
}

async function start() {
  editor = new EditorView({ doc: "", extensions: [basicSetup, sql()], parent: $("editor") });
  try {
    const [config, schema] = await Promise.all([
      fetch("config.json").then((r) => r.json()),
      fetch("schema.json").then((r) => r.json()),
    ]);
    state.region = config.region;
    state.schema = schema;
  } catch (error) {
    $("sign-in-error").textContent = describeError(error);
  }
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("sample-search").addEventListener("input", searchSamples);
  $("run").addEventListener("click", run);
  $("cancel").addEventListener("click", cancel);
  $("previous").addEventListener("click", () => showPage(state.query.page - 1));
  $("next").addEventListener("click", () => showPage(state.query.page + 1));
  $("download-csv").addEventListener("click", () => download("csv"));
  $("download-json").addEventListener("click", () => download("json"));
  $("tab-query").addEventListener("click", () => showTab("query"));
  $("tab-dashboards").addEventListener("click", () => showTab("dashboards"));
  $("dashboard-list").addEventListener("change", () => openDashboard($("dashboard-list").value));
  $("refresh-dashboard").addEventListener("click", refreshDashboard);
  setInterval(watchDashboard, 30_000);
  document.body.dataset.ready = "true";
}

start();
