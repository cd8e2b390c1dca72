//! Integration tests of the server, in one binary: a [`Server`] started in this process on port 0
//! over a lake root in a temporary folder, called through both front doors once per operation
//! group (the AWS JSON wire as the SDKs send it, and gRPC with the generated clients), and
//! stopped in order.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use traillake_api::shapes::{
    EventDataStoreRequest, GetQueryResultsRequest, ListEventDataStoresRequest, QueryRequest, StartQueryRequest,
};
use traillake_server::grpc::generated::cloud_trail_client::CloudTrailClient;
use traillake_server::{Authenticator, FrontDoorSettings, Server, ServerConfig};

const ACCOUNT: &str = "123456789012";

/// A server running in this process, stopped when dropped.
struct Running {
    address: std::net::SocketAddr,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    stopped: tokio::task::JoinHandle<std::io::Result<()>>,
    _folder: tempfile::TempDir,
}

impl Running {
    async fn start(folder: tempfile::TempDir) -> Self {
        let root = traillake_lake::LakeRoot::open(
            traillake_lake::RootLocation::parse(folder.path().to_str().expect("a UTF-8 path"))
                .expect("a root location"),
        )
        .expect("the root opens");
        let config = ServerConfig {
            root,
            listen: "127.0.0.1:0".parse().expect("an address"),
            tls: None,
            front: FrontDoorSettings {
                region: "us-east-1".to_string(),
                authenticator: Authenticator::Development {
                    account_id: ACCOUNT.to_string(),
                },
                max_request_bytes: 1 << 20,
                sharing_recipients: Default::default(),
            },
            service: traillake_server::ServiceSettings {
                max_event_data_stores: 10,
                max_channels: 10,
                max_trails: 5,
                max_dashboards: 100,
                dashboard_schedule_interval: Duration::from_secs(60),
                query_generator: None,
            },
            engine: Default::default(),
            imports: Default::default(),
            maintenance_interval: Duration::from_secs(600),
            pending_deletion_period: Duration::from_secs(7 * 24 * 3600),
            follow: Vec::new(),
            follow_interval: Duration::from_secs(60),
            record_activity: true,
            trails: Default::default(),
            organization: None,
        };
        let server = Server::open(config).await.expect("the server opens");
        let address = server.local_addr();
        assert_ne!(address.port(), 0, "port 0 takes a free port");
        let (stop, stopping) = oneshot::channel::<()>();
        let stopped = tokio::spawn(server.run(async move {
            let _ = stopping.await;
        }));
        Self {
            address,
            http: reqwest::Client::new(),
            stop: Some(stop),
            stopped,
            _folder: folder,
        }
    }

    /// Calls a CloudTrail operation on the JSON wire; returns the HTTP status and the body.
    async fn call(&self, operation: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("http://{}/", self.address))
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("CloudTrail_20131101.{operation}"))
            .body(body.to_string())
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        (status, serde_json::from_str(&text).expect("a JSON body"))
    }

    /// Calls an operation that must succeed; returns its response.
    async fn ok(&self, operation: &str, body: Value) -> Value {
        let (status, response) = self.call(operation, body).await;
        assert_eq!(status, 200, "{operation}: {response}");
        response
    }

    /// Calls an operation that must fail with `code` and `status`; returns the message.
    async fn refused(&self, operation: &str, body: Value, code: &str, status: u16) -> String {
        let (answered, response) = self.call(operation, body).await;
        assert_eq!(
            (answered, response["__type"].as_str()),
            (status, Some(code)),
            "{operation}: {response}"
        );
        response["message"].as_str().expect("a message").to_string()
    }

    async fn grpc(&self) -> CloudTrailClient<tonic::transport::Channel> {
        CloudTrailClient::connect(format!("http://{}", self.address))
            .await
            .expect("gRPC connects")
    }

    /// Runs a statement to its end on the JSON wire; returns the QueryId.
    async fn finished_query(&self, statement: &str) -> String {
        let started = self.ok("StartQuery", json!({ "QueryStatement": statement })).await;
        let query_id = started["QueryId"].as_str().expect("a QueryId").to_string();
        for _ in 0..600 {
            let described = self.ok("DescribeQuery", json!({ "QueryId": query_id })).await;
            match described["QueryStatus"].as_str() {
                Some("QUEUED" | "RUNNING") => tokio::time::sleep(Duration::from_millis(50)).await,
                Some("FINISHED") => return query_id,
                _ => panic!("the query did not finish: {described}"),
            }
        }
        panic!("the query did not end within 30 seconds")
    }

    /// Stops the server as a signal would; returns how its run ended.
    async fn stop(mut self) -> std::io::Result<()> {
        self.stop
            .take()
            .expect("not stopped yet")
            .send(())
            .expect("the server runs");
        let Self { stopped, _folder, .. } = self;
        stopped.await.expect("the server task ends")
    }
}

async fn activity_store(server: &Running, name: &str) -> String {
    let created = server
        .ok(
            "CreateEventDataStore",
            json!({
                "Name": name,
                "AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["ActivityAuditLog"]}]}],
                "MultiRegionEnabled": false,
            }),
        )
        .await;
    created["EventDataStoreArn"].as_str().expect("an ARN").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_data_stores_and_tags_on_the_json_wire() {
    let server = Running::start(tempfile::tempdir().unwrap()).await;
    let created = server.ok("CreateEventDataStore", json!({ "Name": "trails" })).await;
    let arn = created["EventDataStoreArn"].as_str().unwrap();
    assert!(arn.starts_with(&format!("arn:aws:cloudtrail:us-east-1:{ACCOUNT}:eventdatastore/")));
    let got = server.ok("GetEventDataStore", json!({ "EventDataStore": arn })).await;
    assert_eq!(got["Name"], "trails");
    assert_eq!(got["Status"], "ENABLED");
    let listed = server.ok("ListEventDataStores", json!({})).await;
    assert_eq!(listed["EventDataStores"].as_array().unwrap().len(), 1);
    server
        .refused(
            "CreateEventDataStore",
            json!({ "Name": "trails" }),
            "EventDataStoreAlreadyExistsException",
            400,
        )
        .await;
    let message = server
        .refused(
            "GetEventDataStore",
            json!({ "EventDataStore": "00000000-0000-0000-0000-000000000000" }),
            "EventDataStoreNotFoundException",
            404,
        )
        .await;
    assert!(message.contains("00000000-0000-0000-0000-000000000000"), "{message}");

    server
        .ok(
            "AddTags",
            json!({ "ResourceId": arn, "TagsList": [{"Key": "team", "Value": "security"}] }),
        )
        .await;
    let tags = server.ok("ListTags", json!({ "ResourceIdList": [arn] })).await;
    assert_eq!(
        tags["ResourceTagList"][0]["TagsList"],
        json!([{"Key": "team", "Value": "security"}])
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_put_audit_events_and_queries_on_the_json_wire() {
    let server = Running::start(tempfile::tempdir().unwrap()).await;
    let store_arn = activity_store(&server, "activity").await;
    let store_id = store_arn.rsplit('/').next().unwrap().to_string();
    let channel = server
        .ok(
            "CreateChannel",
            json!({
                "Name": "app",
                "Source": "Custom",
                "Destinations": [{"Type": "EVENT_DATA_STORE", "Location": store_arn}],
            }),
        )
        .await;
    let channel_arn = channel["ChannelArn"].as_str().unwrap();
    server
        .refused(
            "GetResourcePolicy",
            json!({ "ResourceArn": channel_arn }),
            "ResourcePolicyNotFoundException",
            404,
        )
        .await;

    let events: Vec<Value> = (0..3)
        .map(|index| {
            let data = json!({
                "version": "1.0",
                "userIdentity": {"type": "CustomUser", "principalId": format!("user-{index}"), "details": {}},
                "eventSource": "app.example.com",
                "eventName": "Login",
                "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "UID": format!("uid-{index}"),
                "recipientAccountId": ACCOUNT,
            });
            json!({ "id": format!("event-{index}"), "eventData": data.to_string() })
        })
        .collect();
    let put = server
        .http
        .post(format!("http://{}/PutAuditEvents", server.address))
        .query(&[("channelArn", channel_arn)])
        .header("content-type", "application/json")
        .body(json!({ "auditEvents": events }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let put: Value = serde_json::from_str(&put.text().await.unwrap()).unwrap();
    assert_eq!(put["successful"].as_array().unwrap().len(), 3, "{put}");
    assert_eq!(put["failed"], json!([]));

    let query_id = server
        .finished_query(&format!(
            "SELECT eventData.uid AS uid FROM {store_id} ORDER BY eventData.uid"
        ))
        .await;
    let first = server
        .ok("GetQueryResults", json!({ "QueryId": query_id, "MaxQueryResults": 2 }))
        .await;
    assert_eq!(
        first["QueryResultRows"],
        json!([[{"uid": "uid-0"}], [{"uid": "uid-1"}]]),
        "{first}"
    );
    assert_eq!(first["QueryStatistics"]["TotalResultsCount"], 3);
    let token = first["NextToken"].as_str().expect("a second page");
    let second = server
        .ok("GetQueryResults", json!({ "QueryId": query_id, "NextToken": token }))
        .await;
    assert_eq!(second["QueryResultRows"], json!([[{"uid": "uid-2"}]]));
    assert!(second.get("NextToken").is_none(), "{second}");
    // A page token of another query is refused, as the model says.
    let other = server.finished_query(&format!("SELECT count(*) FROM {store_id}")).await;
    server
        .refused(
            "GetQueryResults",
            json!({ "QueryId": other, "NextToken": token }),
            "InvalidNextTokenException",
            400,
        )
        .await;
    server
        .refused(
            "CancelQuery",
            json!({ "QueryId": other }),
            "InactiveQueryException",
            400,
        )
        .await;
    let listed = server.ok("ListQueries", json!({ "EventDataStore": store_arn })).await;
    assert_eq!(listed["Queries"].as_array().unwrap().len(), 2);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_public_keys_and_operations_not_built_on_the_json_wire() {
    let server = Running::start(tempfile::tempdir().unwrap()).await;
    let imports = server.ok("ListImports", json!({})).await;
    assert_eq!(imports["Imports"], json!([]));
    server
        .refused(
            "GetImport",
            json!({ "ImportId": "00000000-0000-0000-0000-000000000000" }),
            "ImportNotFoundException",
            404,
        )
        .await;
    let keys = server.ok("ListPublicKeys", json!({})).await;
    assert!(!keys["PublicKeyList"].as_array().unwrap().is_empty(), "{keys}");
    let message = server
        .refused(
            "GenerateQuery",
            json!({ "EventDataStores": ["x".repeat(40)], "Prompt": "failed console logins" }),
            "UnsupportedOperationException",
            400,
        )
        .await;
    assert!(message.contains("GenerateQuery"), "{message}");
    server
        .refused(
            "GetTrail",
            json!({ "Name": "no-such-trail" }),
            "TrailNotFoundException",
            404,
        )
        .await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_and_queries_over_grpc() {
    let server = Running::start(tempfile::tempdir().unwrap()).await;
    let mut grpc = server.grpc().await;
    // Not ingesting: the server's own calls would be its events otherwise.
    let created = server
        .ok(
            "CreateEventDataStore",
            json!({ "Name": "trails", "StartIngestion": false }),
        )
        .await;
    let arn = created["EventDataStoreArn"].as_str().unwrap().to_string();
    let listed = grpc
        .list_event_data_stores(ListEventDataStoresRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.event_data_stores.len(), 1);
    assert_eq!(
        listed.event_data_stores[0].event_data_store_arn.as_deref(),
        Some(arn.as_str())
    );

    let missing = grpc
        .get_event_data_store(EventDataStoreRequest {
            event_data_store: Some("00000000-0000-0000-0000-000000000000".to_string()),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(
        missing.metadata().get("x-amzn-errortype").and_then(|v| v.to_str().ok()),
        Some("EventDataStoreNotFoundException")
    );

    let store_id = arn.rsplit('/').next().unwrap();
    let started = grpc
        .start_query(StartQueryRequest {
            query_statement: Some(format!("SELECT 1 AS one FROM {store_id}")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let query_id = started.query_id.unwrap();
    let request = QueryRequest {
        query_id: Some(query_id.clone()),
        ..Default::default()
    };
    // The Arrow stream waits for the query's end.
    let mut chunks = grpc
        .get_query_results_arrow(request.clone())
        .await
        .unwrap()
        .into_inner();
    while chunks.message().await.unwrap().is_some() {}
    let described = grpc.describe_query(request).await.unwrap().into_inner();
    assert_eq!(
        described.query_status,
        Some(traillake_api::shapes::QueryStatus::Finished as i32)
    );
    let page = grpc
        .get_query_results(GetQueryResultsRequest {
            query_id: Some(query_id),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        page.query_result_rows.is_empty(),
        "a store that ingests nothing has no rows"
    );

    // The calls above are the account's activity, which LookupEvents finds.
    let lookup = || traillake_api::shapes::LookupEventsRequest {
        lookup_attributes: vec![traillake_api::shapes::LookupAttribute {
            attribute_key: Some("EventName".into()),
            attribute_value: Some("CreateEventDataStore".into()),
        }],
        ..Default::default()
    };
    let mut found = Vec::new();
    for _ in 0..50 {
        found = grpc.lookup_events(lookup()).await.unwrap().into_inner().events;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].cloud_trail_event.as_deref().unwrap().contains(&arn));

    // A gRPC call that names no method of traillake is unimplemented, not a JSON answer.
    let unknown = tonic::transport::Channel::from_shared(format!("http://{}", server.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = tonic::client::Grpc::new(unknown);
    raw.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/traillake.v1.CloudTrail/NoSuchMethod");
    let codec = tonic_prost::ProstCodec::<ListEventDataStoresRequest, ListEventDataStoresRequest>::default();
    let answer = raw
        .unary(tonic::Request::new(ListEventDataStoresRequest::default()), path, codec)
        .await
        .unwrap_err();
    assert_eq!(answer.code(), tonic::Code::Unimplemented);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_releases_the_root_and_keeps_what_it_stored() {
    let server = Running::start(tempfile::tempdir().unwrap()).await;
    server.ok("CreateEventDataStore", json!({ "Name": "kept" })).await;
    // The folder outlives the first server; a second one can open the root only if the first
    // released its lock.
    let Running {
        stop,
        stopped,
        _folder: folder,
        ..
    } = server;
    stop.unwrap().send(()).unwrap();
    stopped.await.unwrap().unwrap();
    let again = Running::start(folder).await;
    let listed = again.ok("ListEventDataStores", json!({})).await;
    assert_eq!(listed["EventDataStores"][0]["Name"], "kept");
    again.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_channels_put_audit_events_policies_imports_and_keys_over_grpc() {
    use traillake_api::shapes::{
        AuditEvent, ChannelRequest, CreateChannelRequest, Destination, DestinationType, ListImportsRequest,
        ListPublicKeysRequest, ListTagsRequest, PutAuditEventsRequest, ResourcePolicyRequest, Tag, TagsRequest,
    };
    use traillake_server::grpc::generated::cloud_trail_data_client::CloudTrailDataClient;

    let server = Running::start(tempfile::tempdir().unwrap()).await;
    let mut grpc = server.grpc().await;
    let store_arn = activity_store(&server, "activity").await;

    grpc.add_tags(TagsRequest {
        resource_id: Some(store_arn.clone()),
        tags_list: vec![Tag {
            key: Some("team".into()),
            value: Some("security".into()),
        }],
    })
    .await
    .unwrap();
    let tags = grpc
        .list_tags(ListTagsRequest {
            resource_id_list: vec![store_arn.clone()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tags.resource_tag_list[0].tags_list[0].key.as_deref(), Some("team"));

    let channel = grpc
        .create_channel(CreateChannelRequest {
            name: Some("app".into()),
            source: Some("Custom".into()),
            destinations: vec![Destination {
                r#type: Some(DestinationType::EventDataStore as i32),
                location: Some(store_arn.clone()),
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let channel_arn = channel.channel_arn.unwrap();
    let got = grpc
        .get_channel(ChannelRequest {
            channel: Some(channel_arn.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.name.as_deref(), Some("app"));

    let mut data = CloudTrailDataClient::connect(format!("http://{}", server.address))
        .await
        .unwrap();
    let event = json!({
        "version": "1.0",
        "userIdentity": {"type": "CustomUser", "principalId": "user-1", "details": {}},
        "eventSource": "app.example.com",
        "eventName": "Login",
        "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "UID": "uid-1",
        "recipientAccountId": ACCOUNT,
    });
    let put = data
        .put_audit_events(PutAuditEventsRequest {
            audit_events: vec![
                AuditEvent {
                    id: Some("good".into()),
                    event_data: Some(event.to_string()),
                    event_data_checksum: None,
                },
                AuditEvent {
                    id: Some("bad".into()),
                    event_data: Some("{oops".into()),
                    event_data_checksum: None,
                },
            ],
            channel_arn: Some(channel_arn.clone()),
            external_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(put.successful.len(), 1);
    assert_eq!(put.failed[0].error_code.as_deref(), Some("InvalidData"), "{put:?}");

    let missing = grpc
        .get_resource_policy(ResourcePolicyRequest {
            resource_arn: Some(channel_arn),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let imports = grpc
        .list_imports(ListImportsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(imports.imports.is_empty());
    let keys = grpc
        .list_public_keys(ListPublicKeysRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(!keys.public_key_list.is_empty());
    server.stop().await.unwrap();
}
