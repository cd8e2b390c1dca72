// The AWS SDK for JavaScript v3 (@aws-sdk/client-cloudtrail), unmodified and pointed at a traillake
// server by its endpoint only: it sends X-Amz-Target with the Smithy prefix (CloudTrail_20131101.Op),
// reads errors into typed exceptions with $metadata.httpStatusCode, and signs with SigV4. The server
// is the real binary ($TRAILLAKE_BIN), started here on a fresh root; events come from `traillake load`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { createServer } from "node:net";
import { gzipSync } from "node:zlib";
import { S3Client, CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
  CloudTrailClient,
  CreateEventDataStoreCommand,
  GetEventDataStoreCommand,
  ListEventDataStoresCommand,
  UpdateEventDataStoreCommand,
  DeleteEventDataStoreCommand,
  AddTagsCommand,
  ListTagsCommand,
  StartQueryCommand,
  StartImportCommand,
  GetImportCommand,
  DescribeQueryCommand,
  CreateChannelCommand,
  GetChannelCommand,
  ListChannelsCommand,
  DeleteChannelCommand,
  paginateGetQueryResults,
  CreateDashboardCommand,
  GetDashboardCommand,
  StartDashboardRefreshCommand,
  DeleteDashboardCommand,
  SearchSampleQueriesCommand,
  ResourceNotFoundException,
  EventDataStoreNotFoundException,
  InvalidParameterException,
  InvalidKmsKeyIdException,
  KmsException,
  InvalidQueryStatementException,
} from "@aws-sdk/client-cloudtrail";

const BIN = process.env.TRAILLAKE_BIN;
const ACCOUNT = "123456789012";
const servers = [];

/** Starts `traillake serve` on a free loopback port; resolves to its URL. */
function serve(root, ...args) {
  return serveWith({}, root, ...args);
}

/** Starts `traillake serve` with more environment variables. */
function serveWith(env, root, ...args) {
  const child = spawn(BIN, ["serve", "--root", root, "--listen", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
  });
  servers.push(child);
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", (line) => {
      const match = line.match(/listening on (\S+)/);
      match ? resolve(match[1]) : reject(new Error(`server did not start: ${line}`));
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function client(endpoint, credentials = { accessKeyId: "test", secretAccessKey: "test" }) {
  return new CloudTrailClient({ endpoint, region: "us-east-1", credentials, maxAttempts: 1 });
}

/** Returns the error a promise rejects with. */
async function rejection(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail("the call succeeded");
}

let root;
let endpoint;
let storeArn;
const EVENTS = 1500;

before(async () => {
  root = mkdtempSync(join(tmpdir(), "traillake-js-"));
  // A store created through the SDK, filled by `traillake load` with the server stopped, then served again.
  const first = await serve(join(root, "lake"));
  const created = await client(first).send(
    // Not ingesting live events: it holds exactly the loaded ones, not the server's own calls.
    new CreateEventDataStoreCommand({ Name: "js-store", RetentionPeriod: 3653, TerminationProtectionEnabled: false, StartIngestion: false }),
  );
  storeArn = created.EventDataStoreArn;
  servers.pop().kill("SIGTERM");
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const records = Array.from({ length: EVENTS }, (_, i) => ({
    eventVersion: "1.08",
    userIdentity: { type: "IAMUser", principalId: "AIDA0", arn: `arn:aws:iam::${ACCOUNT}:user/u${i % 7}`, accountId: ACCOUNT },
    eventTime: new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString().replace(".000", ""),
    eventSource: "iam.amazonaws.com",
    eventName: i % 3 === 0 ? "CreateUser" : "ListUsers",
    awsRegion: "us-east-1",
    sourceIPAddress: "192.0.2.1",
    userAgent: "js-test",
    eventID: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    eventType: "AwsApiCall",
    recipientAccountId: ACCOUNT,
  }));
  const file = join(root, "records.json");
  writeFileSync(file, JSON.stringify({ Records: records }));
  execFileSync(BIN, ["load", "--root", join(root, "lake"), "--store", "js-store", file], {
    env: { ...process.env, RUST_BACKTRACE: "0" },
  });
  endpoint = await serve(join(root, "lake"));
});

after(() => {
  for (const child of servers) child.kill("SIGTERM");
});

test("store lifecycle and tags, with the deprecated list members", async () => {
  const cloudtrail = client(endpoint);
  const got = await cloudtrail.send(new GetEventDataStoreCommand({ EventDataStore: storeArn }));
  assert.equal(got.Name, "js-store");
  assert.equal(got.Status, "STOPPED_INGESTION");
  assert.ok(got.CreatedTimestamp instanceof Date);
  const listed = await cloudtrail.send(new ListEventDataStoresCommand({}));
  const entry = listed.EventDataStores.find((s) => s.EventDataStoreArn === storeArn);
  assert.equal(entry.Status, "STOPPED_INGESTION");
  assert.equal(entry.RetentionPeriod, 3653);
  // No key service (--kms-keys) on this server: a key is refused with its modelled error.
  const noKeys = await rejection(
    cloudtrail.send(new UpdateEventDataStoreCommand({ EventDataStore: storeArn, KmsKeyId: "alias/js-key" })),
  );
  assert.ok(noKeys instanceof KmsException, noKeys.name);
  assert.equal(noKeys.$metadata.httpStatusCode, 400);
  assert.match(noKeys.message, /--kms-keys/);
  await cloudtrail.send(new AddTagsCommand({ ResourceId: storeArn, TagsList: [{ Key: "team", Value: "sec" }] }));
  const tags = await cloudtrail.send(new ListTagsCommand({ ResourceIdList: [storeArn] }));
  assert.deepEqual(tags.ResourceTagList[0].TagsList, [{ Key: "team", Value: "sec" }]);
});

test("typed errors with the status of AWS's model", async () => {
  const cloudtrail = client(endpoint);
  const missing = await rejection(
    cloudtrail.send(new GetEventDataStoreCommand({ EventDataStore: "00000000-0000-4000-8000-000000000000" })),
  );
  assert.ok(missing instanceof EventDataStoreNotFoundException, missing.name);
  assert.equal(missing.$metadata.httpStatusCode, 404);
  assert.match(missing.message, /00000000-0000-4000-8000-000000000000/);
  const badKey = await rejection(cloudtrail.send(new CreateEventDataStoreCommand({ Name: "bad-key", KmsKeyId: "x" })));
  assert.ok(badKey instanceof InvalidKmsKeyIdException, badKey.name);
  assert.equal(badKey.$metadata.httpStatusCode, 400);
  const badName = await rejection(cloudtrail.send(new CreateEventDataStoreCommand({ Name: "a" })));
  assert.ok(badName instanceof InvalidParameterException, badName.name);
  assert.match(badName.message, /Name/);
  const badSql = await rejection(cloudtrail.send(new StartQueryCommand({ QueryStatement: "DROP TABLE x" })));
  assert.ok(badSql instanceof InvalidQueryStatementException, badSql.name);
  const stores = await cloudtrail.send(new ListEventDataStoresCommand({}));
  assert.equal(stores.EventDataStores.length, 1, "nothing was created by the refused calls");
});

test("a query read through the SDK's paginator, over more than 1,000 rows", async () => {
  const cloudtrail = client(endpoint);
  const id = storeArn.split("/").pop();
  const { QueryId } = await cloudtrail.send(
    new StartQueryCommand({ QueryStatement: `SELECT eventID, eventName FROM ${id} ORDER BY eventID` }),
  );
  let status;
  for (let i = 0; i < 300; i++) {
    status = await cloudtrail.send(new DescribeQueryCommand({ QueryId }));
    if (!["QUEUED", "RUNNING"].includes(status.QueryStatus)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(status.QueryStatus, "FINISHED", status.ErrorMessage);
  assert.equal(status.QueryStatistics.EventsMatched, EVENTS);
  const rows = [];
  let pages = 0;
  for await (const page of paginateGetQueryResults({ client: cloudtrail }, { QueryId })) {
    pages += 1;
    rows.push(...page.QueryResultRows);
  }
  assert.equal(rows.length, EVENTS);
  assert.ok(pages >= 2, `${pages} pages`);
  assert.equal(new Set(rows.map((row) => row[0].eventID)).size, EVENTS);
  assert.equal(rows.filter((row) => row[1].eventName === "CreateUser").length, EVENTS / 3);
});

test("dashboards: a refresh's widget queries found by alias, and the sample queries", async () => {
  const cloudtrail = client(endpoint);
  const id = storeArn.split("/").pop();
  const created = await cloudtrail.send(
    new CreateDashboardCommand({
      Name: "js-dashboard",
      Widgets: [
        {
          QueryStatement: `SELECT eventName, count(*) AS calls FROM ${id} WHERE eventTime >= '?' GROUP BY eventName ORDER BY eventName`,
          QueryParameters: ["$StartTime$"],
          ViewProperties: { View: "BarChart", XAxisColumn: "eventName", YAxisColumn: "calls" },
        },
      ],
    }),
  );
  assert.equal(created.Type, "CUSTOM");
  const alias = created.Widgets[0].QueryAlias;
  assert.equal(alias, "js-dashboard.widget1");
  const { RefreshId } = await cloudtrail.send(
    new StartDashboardRefreshCommand({
      DashboardId: created.DashboardArn,
      QueryParameterValues: { $StartTime$: "2023-12-31T00:00:00Z" },
    }),
  );
  assert.match(RefreshId, /^\d{10,20}$/);
  let status;
  for (let i = 0; i < 300; i++) {
    status = await cloudtrail.send(new DescribeQueryCommand({ QueryAlias: alias, RefreshId }));
    if (!["QUEUED", "RUNNING"].includes(status.QueryStatus)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(status.QueryStatus, "FINISHED", status.ErrorMessage);
  const rows = [];
  for await (const page of paginateGetQueryResults({ client: cloudtrail }, { QueryId: status.QueryId })) {
    rows.push(...page.QueryResultRows);
  }
  assert.deepEqual(rows, [
    [{ eventName: "CreateUser" }, { calls: String(EVENTS / 3) }],
    [{ eventName: "ListUsers" }, { calls: String((EVENTS * 2) / 3) }],
  ]);
  const got = await cloudtrail.send(new GetDashboardCommand({ DashboardId: "js-dashboard" }));
  assert.equal(got.LastRefreshId, RefreshId);
  await cloudtrail.send(new DeleteDashboardCommand({ DashboardId: "js-dashboard" }));
  const gone = await rejection(cloudtrail.send(new GetDashboardCommand({ DashboardId: "js-dashboard" })));
  assert.ok(gone instanceof ResourceNotFoundException, gone.name);
  const samples = await cloudtrail.send(new SearchSampleQueriesCommand({ SearchPhrase: "root user activity" }));
  assert.equal(samples.SearchResults[0].Name, "Root user activity");
  assert.equal(samples.SearchResults[0].Relevance, 1);
});

test("channels", async () => {
  const cloudtrail = client(endpoint);
  const destination = await cloudtrail.send(
    new CreateEventDataStoreCommand({
      Name: "js-channel-store",
      MultiRegionEnabled: false,
      TerminationProtectionEnabled: false,
      AdvancedEventSelectors: [{ FieldSelectors: [{ Field: "eventCategory", Equals: ["ActivityAuditLog"] }] }],
    }),
  );
  const channel = await cloudtrail.send(
    new CreateChannelCommand({
      Name: "js-channel",
      Source: "Custom",
      Destinations: [{ Type: "EVENT_DATA_STORE", Location: destination.EventDataStoreArn }],
    }),
  );
  const got = await cloudtrail.send(new GetChannelCommand({ Channel: channel.ChannelArn }));
  assert.equal(got.Destinations[0].Location, destination.EventDataStoreArn);
  const listed = await cloudtrail.send(new ListChannelsCommand({}));
  assert.deepEqual(listed.Channels.map((c) => c.Name), ["js-channel"]);
  const multiRegion = await rejection(
    cloudtrail.send(new UpdateEventDataStoreCommand({ EventDataStore: destination.EventDataStoreArn, MultiRegionEnabled: true })),
  );
  assert.ok(multiRegion instanceof InvalidParameterException, multiRegion.name);
  await cloudtrail.send(new DeleteChannelCommand({ Channel: channel.ChannelArn }));
  await cloudtrail.send(new DeleteEventDataStoreCommand({ EventDataStore: destination.EventDataStoreArn }));
});

test("a server that checks signatures: signed calls pass, wrong keys are refused", async () => {
  const signedRoot = mkdtempSync(join(tmpdir(), "traillake-js-signed-"));
  const credentials = join(signedRoot, "credentials.json");
  writeFileSync(
    credentials,
    JSON.stringify({ credentials: [{ accessKeyId: "AKIAJS0000000000001", secretAccessKey: "js-secret-0123456789", accountId: "111111111111" }] }),
  );
  const signed = await serve(join(signedRoot, "lake"), "--credentials", credentials);
  const alice = client(signed, { accessKeyId: "AKIAJS0000000000001", secretAccessKey: "js-secret-0123456789" });
  const store = await alice.send(new CreateEventDataStoreCommand({ Name: "signed-store" }));
  assert.match(store.EventDataStoreArn, /:111111111111:eventdatastore\//);
  const wrong = await rejection(
    client(signed, { accessKeyId: "AKIAJS0000000000001", secretAccessKey: "not-it" }).send(new ListEventDataStoresCommand({})),
  );
  assert.equal(wrong.name, "InvalidSignatureException");
  assert.equal(wrong.$metadata.httpStatusCode, 403);
  const unknown = await rejection(
    client(signed, { accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "x" }).send(new ListEventDataStoresCommand({})),
  );
  assert.equal(unknown.name, "UnrecognizedClientException");
  assert.equal(unknown.$metadata.httpStatusCode, 403);
});

/** Returns a free loopback port. */
function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

test("an import of trail log files from moto's S3 server", async () => {
  const port = await freePort();
  const moto = spawn("moto_server", ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
  servers.push(moto);
  const s3Endpoint = `http://127.0.0.1:${port}`;
  const s3 = new S3Client({
    endpoint: s3Endpoint, region: "us-east-1", forcePathStyle: true,
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
  });
  for (let i = 0; ; i++) {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: "js-trail" }));
      break;
    } catch (error) {
      if (i > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const day = `AWSLogs/${ACCOUNT}/CloudTrail/us-east-1/2024/02/01/`;
  for (let file = 0; file < 3; file++) {
    const records = Array.from({ length: 100 }, (_, i) => ({
      eventVersion: "1.08", eventTime: `2024-02-01T0${file}:00:${String(i % 60).padStart(2, "0")}Z`,
      eventSource: "s3.amazonaws.com", eventName: "ListBuckets", awsRegion: "us-east-1",
      eventID: `10000000-0000-4000-8000-${String(file * 100 + i).padStart(12, "0")}`, eventType: "AwsApiCall",
      userIdentity: { type: "IAMUser", accountId: ACCOUNT }, recipientAccountId: ACCOUNT,
    }));
    const key = `${day}${ACCOUNT}_CloudTrail_us-east-1_20240201T0${file}00Z_js${file}.json.gz`;
    await s3.send(new PutObjectCommand({ Bucket: "js-trail", Key: key, Body: gzipSync(JSON.stringify({ Records: records })) }));
  }
  const importRoot = mkdtempSync(join(tmpdir(), "traillake-js-import-"));
  const url = await serveWith(
    { AWS_ENDPOINT_URL_S3: s3Endpoint, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_REGION: "us-east-1" },
    join(importRoot, "lake"),
  );
  const cloudtrail = client(url);
  const store = await cloudtrail.send(new CreateEventDataStoreCommand({ Name: "js-import", RetentionPeriod: 3653 }));
  const started = await cloudtrail.send(new StartImportCommand({
    Destinations: [store.EventDataStoreArn],
    ImportSource: { S3: { S3LocationUri: "s3://js-trail", S3BucketRegion: "us-east-1", S3BucketAccessRoleArn: `arn:aws:iam::${ACCOUNT}:role/import` } },
  }));
  let done;
  for (let i = 0; i < 600; i++) {
    done = await cloudtrail.send(new GetImportCommand({ ImportId: started.ImportId }));
    if (["COMPLETED", "FAILED", "STOPPED"].includes(done.ImportStatus)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(done.ImportStatus, "COMPLETED");
  assert.equal(done.ImportStatistics.FilesCompleted, 3);
  assert.equal(done.ImportStatistics.EventsCompleted, 300);
});
