//! A store's table on a local root: the real trail files of `../shared/data/trails` loaded through
//! the shared write path, then read back with DataFusion.

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::SessionContext;
use traillake_api::selectors::StoreKind;
use traillake_lake::loader::{EventWriter, file_rows};
use traillake_lake::{EventTable, LakeRoot, RootLocation};

fn trails() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/trails")
}

fn files_under(folder: &std::path::Path, files: &mut Vec<PathBuf>) {
    let entries = walkdir::WalkDir::new(folder).sort_by_file_name().into_iter();
    files.extend(
        entries
            .map(Result::unwrap)
            .filter(|entry| !entry.file_type().is_dir())
            .map(|entry| entry.into_path()),
    );
}

async fn query(table: &EventTable, sql: &str) -> Vec<datafusion::arrow::array::RecordBatch> {
    let snapshot = table.snapshot().await.unwrap().expect("the table exists");
    let ctx = SessionContext::new();
    snapshot.update_datafusion_session(&ctx.state()).unwrap();
    ctx.register_table("events", snapshot.table_provider().await.unwrap())
        .unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

#[tokio::test]
async fn stores_every_real_trail_record_that_is_a_row_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "9c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let mut writer = EventWriter::new(table.clone(), 5_000);

    let mut files = Vec::new();
    files_under(&trails(), &mut files);
    let keep_everything = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
    let (mut stored, mut rejected, mut failed_files, mut commits) = (0, Vec::new(), Vec::new(), 0);
    for path in &files {
        if path
            .file_name()
            .is_some_and(|name| name == "README.md" || name == "_sources.txt")
        {
            continue;
        }
        match file_rows(&std::fs::read(path).unwrap(), keep_everything) {
            Ok(rows) => {
                assert_eq!(rows.outside_retention, 0);
                stored += rows.batch.num_rows();
                rejected.extend(rows.rejected.into_iter().map(|r| (path.clone(), r.reason)));
                commits += usize::from(writer.push(rows.batch).await.unwrap().is_some());
            }
            Err(invalid) => failed_files.push((path.clone(), invalid.reason)),
        }
    }
    commits += usize::from(writer.commit().await.unwrap().is_some());
    assert!(commits >= 4, "{commits} commits");

    // grycap alone holds 18,891 records; the invalid inputs of the README are reported, not stored.
    assert!(stored > 19_000, "{stored} stored");
    let failed_names: Vec<String> = failed_files
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(failed_names.iter().any(|n| n.ends_with(".csv")), "{failed_names:?}");
    assert!(
        failed_names.iter().any(|n| n.ends_with(".invalid.txt")),
        "{failed_names:?}"
    );
    assert!(
        failed_names.iter().any(|n| n.contains("ec2-user-data")),
        "{failed_names:?}"
    );
    assert!(
        rejected.iter().any(|(_, reason)| reason == "eventTime is missing"),
        "the Logstash lines have no eventTime"
    );
    assert!(
        rejected
            .iter()
            .any(|(_, reason)| reason.contains("ThisIsAWrongEventTime"))
    );

    let count = query(&table, "SELECT count(*) AS n FROM events").await;
    assert_eq!(
        count[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0) as usize,
        stored
    );

    // Old records get their eventCategory derived; nested values and maps are reachable.
    let categories = query(&table, "SELECT count(*) FROM events WHERE eventcategory IS NULL").await;
    assert_eq!(
        categories[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        0
    );
    let nested = query(
        &table,
        "SELECT count(*) FROM events WHERE useridentity.sessioncontext.sessionissuer.username IS NOT NULL \
         AND requestparameters['bucketName'] IS NOT NULL OR eventname = 'ConsoleLogin'",
    )
    .await;
    assert!(
        nested[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0)
            > 0
    );

    // Within every Parquet file, rows are in eventtime order.
    let mut parquet_files = Vec::new();
    files_under(&dir.path().join("stores"), &mut parquet_files);
    parquet_files
        .retain(|p| p.extension().is_some_and(|e| e == "parquet") && !p.to_string_lossy().contains("_delta_log"));
    assert!(parquet_files.len() > 50, "{} files", parquet_files.len());
    for path in &parquet_files {
        let file = std::fs::File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        let mut previous = i64::MIN;
        for batch in reader {
            let batch = batch.unwrap();
            let time = batch
                .column_by_name("eventtime")
                .unwrap()
                .as_primitive::<TimestampMicrosecondType>();
            assert_eq!(time.null_count(), 0);
            for value in time.values() {
                assert!(*value >= previous, "{} is not sorted by eventtime", path.display());
                previous = *value;
            }
        }
    }
    let days = std::fs::read_dir(dir.path().join("stores/9c2a6f0e-1111-4222-8333-444455556666/table"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("eventdate=")
        })
        .count();
    assert!(days > 50, "one folder a day, {days} days");
}

#[tokio::test]
async fn drops_days_outside_retention() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "0c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let records = serde_json::json!([
        {"eventTime": "2024-01-01T10:00:00Z", "eventID": "a"},
        {"eventTime": "2024-01-02T10:00:00Z", "eventID": "b"},
        {"eventTime": "2024-01-03T10:00:00Z", "eventID": "c"},
    ]);
    let rows = file_rows(
        records.to_string().as_bytes(),
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let mut writer = EventWriter::new(table.clone(), 1);
    writer.push(rows.batch).await.unwrap();
    let removed = table
        .drop_days_before(chrono::NaiveDate::from_ymd_opt(2024, 1, 3).unwrap())
        .await
        .unwrap();
    assert_eq!(removed, 2);
    let parquet_files = || {
        let mut files = Vec::new();
        files_under(&dir.path().join("stores"), &mut files);
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet") && !p.to_string_lossy().contains("_delta_log"))
            .count()
    };
    assert_eq!(parquet_files(), 3, "the dropped days' files stay until vacuumed");
    assert_eq!(
        table.vacuum(chrono::Duration::hours(1)).await.unwrap(),
        0,
        "removed too recently"
    );
    assert_eq!(table.vacuum(chrono::Duration::zero()).await.unwrap(), 2);
    assert_eq!(parquet_files(), 1);
    let ids = query(&table, "SELECT eventid FROM events").await;
    let ids =
        datafusion::arrow::compute::cast(ids[0].column(0), &datafusion::arrow::datatypes::DataType::Utf8).unwrap();
    assert_eq!(ids.as_string::<i32>().iter().collect::<Vec<_>>(), vec![Some("c")]);
}

#[tokio::test]
async fn compacts_a_day_of_small_appends_into_sorted_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "1c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let keep_everything = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    let mut writer = EventWriter::new(table.clone(), 1);
    // Five appends into one day, each later one holding earlier events.
    for append in 0..5 {
        let hour = 20 - append * 4;
        let records = serde_json::json!([
            {"eventTime": format!("2024-05-01T{hour:02}:00:00Z"), "eventID": format!("a{append}")},
            {"eventTime": format!("2024-05-01T{hour:02}:30:00Z"), "eventID": format!("b{append}")},
        ]);
        writer
            .push(
                file_rows(records.to_string().as_bytes(), keep_everything)
                    .unwrap()
                    .batch,
            )
            .await
            .unwrap();
    }
    writer
        .push(
            file_rows(
                br#"{"eventTime": "2024-05-02T00:00:00Z", "eventID": "other"}"#,
                keep_everything,
            )
            .unwrap()
            .batch,
        )
        .await
        .unwrap();
    assert_eq!(table.files_per_day().await.unwrap().get("2024-05-01"), Some(&5));

    assert_eq!(table.compact().await.unwrap(), vec!["2024-05-01".to_string()]);
    let days = table.files_per_day().await.unwrap();
    assert_eq!(days.get("2024-05-01"), Some(&1));
    assert_eq!(days.get("2024-05-02"), Some(&1));
    assert!(table.compact().await.unwrap().is_empty(), "nothing left to compact");

    let times = query(&table, "SELECT eventtime FROM events WHERE eventdate = '2024-05-01'").await;
    let values: Vec<i64> = times
        .iter()
        .flat_map(|b| b.column(0).as_primitive::<TimestampMicrosecondType>().values().to_vec())
        .collect();
    assert_eq!(values.len(), 10);
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "the compacted day is sorted by eventtime: {values:?}"
    );
}

#[tokio::test]
async fn refresh_brings_an_earlier_snapshot_to_the_latest_commit() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "2c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    assert!(table.refresh(None).await.unwrap().is_none(), "nothing written yet");
    let keep_everything = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    let mut writer = EventWriter::new(table.clone(), 1);
    let append = |id: &str| {
        file_rows(
            format!(r#"{{"eventTime": "2024-05-01T10:00:00Z", "eventID": "{id}"}}"#).as_bytes(),
            keep_everything,
        )
        .unwrap()
        .batch
    };
    writer.push(append("a")).await.unwrap();
    let first = table.refresh(None).await.unwrap().expect("one commit");
    let version = first.version().unwrap();

    let unchanged = table.refresh(Some(first.clone())).await.unwrap().unwrap();
    assert_eq!(unchanged.version(), Some(version));

    // Two commits made by another writer (another process, as `traillake load` is) after `first`.
    let other_writer = EventTable::new(&root, "2c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let mut writer = EventWriter::new(other_writer, 1);
    writer.push(append("b")).await.unwrap();
    writer.push(append("c")).await.unwrap();
    let latest = table.refresh(Some(first)).await.unwrap().unwrap();
    assert_eq!(latest.version(), Some(version + 2));
    let rows: usize = table
        .data_files(&latest)
        .unwrap()
        .iter()
        .filter_map(|file| file.rows)
        .sum();
    assert_eq!(rows, 3);
}

#[tokio::test]
async fn a_writers_progress_is_committed_with_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "3c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    assert_eq!(
        table.committed_progress("import-a").await.unwrap(),
        None,
        "no table yet"
    );
    let keep_everything = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    let rows = |id: &str| {
        file_rows(
            format!(r#"{{"eventTime": "2024-05-01T10:00:00Z", "eventID": "{id}"}}"#).as_bytes(),
            keep_everything,
        )
        .unwrap()
        .batch
    };
    table.append(&[rows("unmarked")]).await.unwrap();
    assert_eq!(table.committed_progress("import-a").await.unwrap(), None);
    let mark = |progress| traillake_lake::AppProgress {
        writer: "import-a".to_string(),
        progress,
    };
    table.append_marked(&[rows("a1")], &[mark(3)]).await.unwrap();
    table.append_marked(&[rows("a2")], &[mark(7)]).await.unwrap();
    assert_eq!(table.committed_progress("import-a").await.unwrap(), Some(7));
    assert_eq!(table.committed_progress("import-b").await.unwrap(), None);
    // Compaction rewrites the files but keeps what the writers committed.
    table.append(&[rows("more")]).await.unwrap();
    assert_eq!(table.compact().await.unwrap(), vec!["2024-05-01".to_string()]);
    assert_eq!(table.committed_progress("import-a").await.unwrap(), Some(7));
}

#[tokio::test]
async fn an_append_over_several_days_writes_one_sorted_file_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let table = EventTable::new(&root, "4c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let keep_everything = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    let rows = |times: &[&str]| {
        let records: Vec<_> = times
            .iter()
            .map(|time| serde_json::json!({"eventTime": time, "eventID": time}))
            .collect();
        file_rows(serde_json::Value::from(records).to_string().as_bytes(), keep_everything)
            .unwrap()
            .batch
    };
    // The first append creates the table; the second, over three days in two batches, appends to it.
    table.append(&[rows(&["2024-05-01T12:00:00Z"])]).await.unwrap();
    let later = [
        rows(&["2024-05-03T09:00:00Z", "2024-05-01T23:00:00Z", "2024-05-02T05:00:00Z"]),
        rows(&["2024-05-02T01:00:00Z", "2024-05-03T08:00:00Z", "2024-05-01T00:00:01Z"]),
    ];
    assert_eq!(table.append(&later).await.unwrap().rows, 6);
    let days = table.files_per_day().await.unwrap();
    assert_eq!(
        days.into_iter().collect::<Vec<_>>(),
        [
            ("2024-05-01".to_string(), 2),
            ("2024-05-02".to_string(), 1),
            ("2024-05-03".to_string(), 1)
        ]
    );
    for (day, expected) in [("2024-05-02", 2), ("2024-05-03", 2)] {
        let batches = query(
            &table,
            &format!("SELECT eventtime, eventid FROM events WHERE eventdate = '{day}'"),
        )
        .await;
        let times: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<TimestampMicrosecondType>().values().to_vec())
            .collect();
        assert_eq!(times.len(), expected, "{day}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{day} is sorted: {times:?}");
    }
    let all = query(&table, "SELECT count(*) FROM events").await;
    assert_eq!(
        all[0]
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0),
        7
    );
}

/// Reads every row of a Parquet file, decrypting it with `key` when one is given.
fn read_parquet(path: &std::path::Path, key: Option<&[u8]>) -> Result<usize, String> {
    use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
    use datafusion::parquet::encryption::decrypt::FileDecryptionProperties;
    let mut options = ArrowReaderOptions::new();
    if let Some(key) = key {
        options =
            options.with_file_decryption_properties(FileDecryptionProperties::builder(key.to_vec()).build().unwrap());
    }
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|error| error.to_string())?
        .build()
        .map_err(|error| error.to_string())?;
    let mut rows = 0;
    for batch in reader {
        rows += batch.map_err(|error| error.to_string())?.num_rows();
    }
    Ok(rows)
}

/// A table with a KMS key on a local root: its files are Parquet-encrypted with the key's material
/// (plaintext files written before the key was added stay readable), nothing is written with a
/// missing or disabled key, the key cannot change, compaction leaves it alone and retention still
/// drops its days.
#[tokio::test]
async fn a_table_with_a_kms_key_writes_files_that_do_not_read_without_it() {
    use traillake_lake::keys::KeyService;
    use traillake_lake::table::{KMS_KEY_PROPERTY, kms_key_of};

    const KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const DISABLED: &str = "arn:aws:kms:us-east-1:123456789012:key/2234abcd-12ab-34cd-56ef-1234567890ab";
    let keys = format!(
        r#"{{"keys": [{{"arn": "{KEY}", "aliases": ["alias/lake"], "material": "{}"}},
                      {{"arn": "{DISABLED}", "enabled": false, "material": "{}"}}]}}"#,
        "11".repeat(32),
        "22".repeat(32)
    );
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf()))
        .unwrap()
        .with_keys(KeyService::parse(&keys).unwrap());
    let table = EventTable::new(&root, "2c2a6f0e-1111-4222-8333-444455556666", StoreKind::CloudTrail);
    let keep_everything = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    let rows = |day: u32, id: &str| {
        file_rows(
            format!(r#"{{"eventTime": "2024-05-{day:02}T10:00:00Z", "eventID": "{id}"}}"#).as_bytes(),
            keep_everything,
        )
        .unwrap()
        .batch
    };
    let parquet_files = || {
        let mut files = Vec::new();
        files_under(&dir.path().join("stores"), &mut files);
        files.retain(|p| p.extension().is_some_and(|e| e == "parquet") && !p.to_string_lossy().contains("_delta_log"));
        files
    };

    // A plaintext file first, then the key is added by its alias and recorded as the key's ARN.
    table.append(&[rows(1, "plain")]).await.unwrap();
    let plain = parquet_files();
    assert_eq!(read_parquet(&plain[0], None), Ok(1));
    table
        .encrypt_with("arn:aws:kms:us-east-1:123456789012:alias/lake")
        .await
        .unwrap();
    let snapshot = table.snapshot().await.unwrap().unwrap();
    assert_eq!(
        kms_key_of(&snapshot).unwrap().as_deref(),
        Some(KEY),
        "{KMS_KEY_PROPERTY}"
    );
    table.encrypt_with(KEY).await.unwrap();
    let other = table.encrypt_with(DISABLED).await.unwrap_err().to_string();
    assert!(other.contains("is disabled"), "{other}");

    for day in 1..=5 {
        table.append(&[rows(1, &format!("secret{day}"))]).await.unwrap();
    }
    table.append(&[rows(2, "later")]).await.unwrap();
    let encrypted: Vec<_> = parquet_files().into_iter().filter(|p| !plain.contains(p)).collect();
    assert_eq!(encrypted.len(), 6);
    for file in &encrypted {
        let error = read_parquet(file, None).unwrap_err();
        assert!(error.to_lowercase().contains("encrypt"), "{error}");
        assert_eq!(read_parquet(file, Some(&[0x11; 32])), Ok(1));
        assert!(
            read_parquet(file, Some(&[0x22; 32])).is_err(),
            "another key does not read it"
        );
        let bytes = std::fs::read(file).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"secret"), "no event ID in the clear");
    }
    assert_eq!(table.compact().await.unwrap(), Vec::<String>::new(), "not compacted");
    assert_eq!(
        table
            .drop_days_before(chrono::NaiveDate::from_ymd_opt(2024, 5, 2).unwrap())
            .await
            .unwrap(),
        6
    );

    // The same lake without the key service, or with the key disabled, writes nothing.
    let without = EventTable::new(
        &LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap(),
        table.name(),
        StoreKind::CloudTrail,
    );
    let error = without.append(&[rows(3, "refused")]).await.unwrap_err().to_string();
    assert!(error.contains("--kms-keys"), "{error}");
    let disabled = keys.replace(
        r#""aliases": ["alias/lake"], "#,
        r#""aliases": ["alias/lake"], "enabled": false, "#,
    );
    let disabled_root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf()))
        .unwrap()
        .with_keys(KeyService::parse(&disabled).unwrap());
    let error = EventTable::new(&disabled_root, table.name(), StoreKind::CloudTrail)
        .append(&[rows(3, "refused")])
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("is disabled"), "{error}");
    assert_eq!(parquet_files().len(), 7, "nothing was written by the refused appends");
}
