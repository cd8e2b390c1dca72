//! The root lock on a local root: a second holder is refused, and the lock is free once released.

use traillake_lake::{LakeError, LakeRoot, RootLocation, RootLock};

#[tokio::test]
async fn one_server_per_local_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = LakeRoot::open(RootLocation::Local(dir.path().to_path_buf())).unwrap();
    let first = RootLock::acquire(&root).await.unwrap();
    let second = RootLock::acquire(&root).await;
    match second {
        Err(LakeError::RootInUse(message)) => {
            assert!(message.contains("in use by another traillake server"), "{message}")
        }
        other => panic!("expected RootInUse, got {other:?}"),
    }
    first.release().await;
    RootLock::acquire(&root).await.unwrap().release().await;
}
