//! The catalog on a local root: the store lifecycle rules and persistence across reloads.

use chrono::{Duration, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use traillake_api::channels::NewChannel;
use traillake_api::event_data_stores::{EventDataStoreChanges, check_create};
use traillake_api::shapes::{BillingMode, CreateEventDataStoreRequest, EventDataStoreStatus, Tag};
use traillake_lake::{Catalog, LakeError, LakeRoot, RootLocation, TaggedResource};

const ACCOUNT: &str = "123456789012";

fn ctx() -> traillake_api::RequestContext {
    traillake_api::RequestContext {
        account_id: ACCOUNT.into(),
        region: "us-east-1".into(),
        request_id: "r".into(),
        principal_arn: None,
    }
}

fn new_store(name: &str) -> traillake_api::event_data_stores::NewEventDataStore {
    let request = CreateEventDataStoreRequest {
        name: Some(name.into()),
        termination_protection_enabled: Some(false),
        ..Default::default()
    };
    check_create(&ctx(), &request).unwrap()
}

fn open(dir: &tempfile::TempDir) -> LakeRoot {
    LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap()
}

#[tokio::test]
async fn keeps_names_unique_and_counts_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::load(&open(&dir)).await.unwrap();
    let now = Utc::now();
    let first = catalog
        .create_event_data_store(ACCOUNT, new_store("one"), 2, now)
        .await
        .unwrap();
    assert_eq!(first.status, EventDataStoreStatus::Enabled);
    let duplicate = catalog.create_event_data_store(ACCOUNT, new_store("one"), 2, now).await;
    assert!(matches!(duplicate, Err(LakeError::EventDataStoreAlreadyExists(_))));
    let other_account = catalog
        .create_event_data_store("210987654321", new_store("one"), 2, now)
        .await;
    assert!(other_account.is_ok(), "names are unique per account only");
    catalog
        .create_event_data_store(ACCOUNT, new_store("two"), 2, now)
        .await
        .unwrap();
    let third = catalog
        .create_event_data_store(ACCOUNT, new_store("three"), 2, now)
        .await;
    assert!(matches!(third, Err(LakeError::EventDataStoreMaxLimitExceeded(2))));
    catalog.delete_event_data_store(ACCOUNT, &first.id, now).await.unwrap();
    catalog
        .create_event_data_store(ACCOUNT, new_store("three"), 2, now)
        .await
        .unwrap();
    let restore = catalog.restore_event_data_store(ACCOUNT, &first.id, 2, now).await;
    assert!(
        matches!(restore, Err(LakeError::EventDataStoreMaxLimitExceeded(2))),
        "{restore:?}"
    );
    let reuse = catalog.create_event_data_store(ACCOUNT, new_store("one"), 5, now).await;
    assert!(
        matches!(reuse, Err(LakeError::EventDataStoreAlreadyExists(_))),
        "names stay reserved until purge"
    );
}

#[tokio::test]
async fn follows_the_status_machine() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::load(&open(&dir)).await.unwrap();
    let now = Utc::now();
    let store = catalog
        .create_event_data_store(ACCOUNT, new_store("store-s"), 10, now)
        .await
        .unwrap();
    let start = catalog.set_ingestion(ACCOUNT, &store.id, true, now).await;
    assert!(matches!(start, Err(LakeError::InvalidStatus(_))));
    catalog.set_ingestion(ACCOUNT, &store.id, false, now).await.unwrap();
    let stopped = catalog.event_data_store(ACCOUNT, &store.id).await.unwrap();
    assert_eq!(stopped.status, EventDataStoreStatus::StoppedIngestion);
    catalog.delete_event_data_store(ACCOUNT, &store.id, now).await.unwrap();
    let again = catalog.delete_event_data_store(ACCOUNT, &store.id, now).await;
    assert!(matches!(again, Err(LakeError::InactiveEventDataStore(_))));
    let restored = catalog
        .restore_event_data_store(ACCOUNT, &store.id, 10, now)
        .await
        .unwrap();
    assert_eq!(
        restored.status,
        EventDataStoreStatus::StoppedIngestion,
        "a store comes back as it was deleted"
    );
    let restore_active = catalog.restore_event_data_store(ACCOUNT, &store.id, 10, now).await;
    assert!(matches!(restore_active, Err(LakeError::InvalidStatus(_))));
}

#[tokio::test]
async fn guards_updates_that_contradict_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::load(&open(&dir)).await.unwrap();
    let now = Utc::now();
    let store = catalog
        .create_event_data_store(ACCOUNT, new_store("store-s"), 10, now)
        .await
        .unwrap();
    let to_fixed = EventDataStoreChanges {
        billing_mode: Some(BillingMode::FixedRetentionPricing),
        ..Default::default()
    };
    let refused = catalog.update_event_data_store(ACCOUNT, &store.id, to_fixed, now).await;
    assert!(matches!(refused, Err(LakeError::InvalidParameter(_))));
    let kms = EventDataStoreChanges {
        kms_key_id: Some("alias/one".into()),
        ..Default::default()
    };
    catalog
        .update_event_data_store(ACCOUNT, &store.id, kms, now)
        .await
        .unwrap();
    let other_key = EventDataStoreChanges {
        kms_key_id: Some("alias/two".into()),
        ..Default::default()
    };
    let refused = catalog
        .update_event_data_store(ACCOUNT, &store.id, other_key, now)
        .await;
    assert!(matches!(refused, Err(LakeError::InvalidParameter(_))));
    let unchanged = catalog.event_data_store(ACCOUNT, &store.id).await.unwrap();
    assert_eq!(unchanged.kms_key_id.as_deref(), Some("alias/one"));
    assert_eq!(unchanged.billing_mode, BillingMode::ExtendableRetentionPricing);
}

#[tokio::test]
async fn persists_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let root = open(&dir);
    let now = Utc::now();
    let (kept, purged) = {
        let catalog = Catalog::load(&root).await.unwrap();
        let kept = catalog
            .create_event_data_store(ACCOUNT, new_store("kept"), 10, now)
            .await
            .unwrap();
        let tags = [Tag {
            key: Some("team".into()),
            value: Some("sec".into()),
        }];
        catalog
            .add_tags(ACCOUNT, TaggedResource::EventDataStore(&kept.id), &tags, now)
            .await
            .unwrap();
        let purged = catalog
            .create_event_data_store(ACCOUNT, new_store("purged"), 10, now)
            .await
            .unwrap();
        catalog
            .delete_event_data_store(ACCOUNT, &purged.id, now - Duration::days(8))
            .await
            .unwrap();
        (kept, purged)
    };
    let data = Path::from(format!("stores/{}/part.parquet", purged.id));
    root.store().put(&data, PutPayload::from_static(b"x")).await.unwrap();

    let catalog = Catalog::load(&root).await.unwrap();
    let reloaded = catalog.event_data_store(ACCOUNT, &kept.id).await.unwrap();
    assert_eq!(reloaded.tags.len(), 1);
    assert_eq!(reloaded.name, "kept");
    let ids = catalog.purge_deleted(Duration::days(7), now).await.unwrap();
    assert_eq!(ids, vec![purged.id.clone()]);
    assert!(matches!(
        root.store().head(&data).await,
        Err(object_store::Error::NotFound { .. })
    ));
    let gone = Catalog::load(&root)
        .await
        .unwrap()
        .event_data_store(ACCOUNT, &purged.id)
        .await;
    assert!(matches!(gone, Err(LakeError::EventDataStoreNotFound(_))));
}

#[tokio::test]
async fn channels_persist_and_guard_their_stores() {
    let dir = tempfile::tempdir().unwrap();
    let root = open(&dir);
    let now = Utc::now();
    let selectors = r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["ActivityAuditLog"]}]}]"#;
    let request = CreateEventDataStoreRequest {
        name: Some("activity".into()),
        advanced_event_selectors: serde_json::from_str(selectors).unwrap(),
        multi_region_enabled: Some(false),
        termination_protection_enabled: Some(false),
        ..Default::default()
    };
    let channel = {
        let catalog = Catalog::load(&root).await.unwrap();
        let store = catalog
            .create_event_data_store(ACCOUNT, check_create(&ctx(), &request).unwrap(), 10, now)
            .await
            .unwrap();
        let new = NewChannel {
            name: "app".into(),
            source: "Custom".into(),
            destinations: vec![store.id.clone()],
            tags: vec![],
        };
        let channel = catalog.create_channel(ACCOUNT, new.clone(), 25, now).await.unwrap();
        let again = catalog
            .create_channel(
                ACCOUNT,
                NewChannel {
                    name: "other".into(),
                    ..new
                },
                25,
                now,
            )
            .await;
        assert!(
            matches!(again, Err(LakeError::ChannelAlreadyExists(_))),
            "one channel per source"
        );
        catalog
            .set_resource_policy(ACCOUNT, TaggedResource::Channel(&channel.id), Some("{}".into()), now)
            .await
            .unwrap();
        let refused = catalog.delete_event_data_store(ACCOUNT, &store.id, now).await;
        assert!(matches!(refused, Err(LakeError::ChannelExistsForEventDataStore { .. })));
        channel
    };
    let catalog = Catalog::load(&root).await.unwrap();
    let reloaded = catalog.channel(ACCOUNT, &channel.id).await.unwrap();
    assert_eq!(reloaded.resource_policy.as_deref(), Some("{}"));
    assert_eq!(
        (reloaded.name.as_str(), &reloaded.destinations),
        ("app", &channel.destinations)
    );
    assert!(matches!(
        catalog.channel("999999999999", &channel.id).await,
        Err(LakeError::ChannelNotFound(_))
    ));
    catalog.delete_channel(ACCOUNT, &channel.id).await.unwrap();
    catalog
        .delete_event_data_store(ACCOUNT, &channel.destinations[0], now)
        .await
        .unwrap();
}
