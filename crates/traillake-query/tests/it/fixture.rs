//! A lake on a temporary folder with three stores: CloudTrail events loaded from every file of
//! `../shared/data/trails`, and an empty ActivityAuditLog store and Config store.

use std::path::{Path, PathBuf};

use chrono::Utc;
use traillake_api::selectors::StoreKind;
use traillake_lake::catalog::oldest_kept;
use traillake_lake::loader::{EventWriter, file_rows};
use traillake_lake::{EventTable, LakeRoot, RootLocation};
use traillake_query::planner::StoreSource;

pub const CLOUDTRAIL: &str = "0aa1b2c3-0000-4000-8000-00000000c7a1";
pub const ACTIVITY: &str = "0aa1b2c3-0000-4000-8000-0000000000a1";
pub const CONFIG: &str = "0aa1b2c3-0000-4000-8000-00000000cf61";
pub const RETENTION_DAYS: i32 = 3653;

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn files_under(folder: &Path, files: &mut Vec<PathBuf>) {
    let entries = walkdir::WalkDir::new(folder).sort_by_file_name().into_iter();
    files.extend(
        entries
            .map(Result::unwrap)
            .filter(|entry| !entry.file_type().is_dir())
            .map(|entry| entry.into_path()),
    );
}

pub struct Lake {
    pub _dir: tempfile::TempDir,
    pub stores: Vec<StoreSource>,
    /// Events within retention that the CloudTrail store holds.
    pub visible_events: usize,
}

pub async fn lake() -> Lake {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let store = |id: &str, kind| StoreSource {
        id: id.to_string(),
        kind,
        retention_days: RETENTION_DAYS,
        table: EventTable::new(&root, id, kind),
        snapshot: None,
    };
    let stores = vec![
        store(CLOUDTRAIL, StoreKind::CloudTrail),
        store(ACTIVITY, StoreKind::ActivityAuditLog),
        store(CONFIG, StoreKind::ConfigurationItem),
    ];
    let mut files = Vec::new();
    files_under(&shared().join("data/trails"), &mut files);
    let oldest = oldest_kept(RETENTION_DAYS, Utc::now());
    let mut writer = EventWriter::new(stores[0].table.clone(), EventWriter::COMMIT_ROWS);
    let mut visible_events = 0;
    for path in files {
        if let Ok(rows) = file_rows(&std::fs::read(&path).unwrap(), oldest) {
            visible_events += rows.batch.num_rows();
            writer.push(rows.batch).await.unwrap();
        }
    }
    writer.commit().await.unwrap();
    Lake {
        _dir: dir,
        stores,
        visible_events,
    }
}
