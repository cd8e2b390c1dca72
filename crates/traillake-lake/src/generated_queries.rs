//! The queries GenerateQuery made, each kept under the root at
//! `generated-queries/<account>/<alias>.json` so that StartQuery with its QueryAlias runs it and
//! DescribeQuery of that query shows its prompt.

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::error::LakeError;
use crate::root::LakeRoot;

/// A generated query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedQuery {
    /// The QueryAlias that names it.
    pub alias: String,
    /// The account that asked for it.
    pub account_id: String,
    /// The store it reads.
    pub store_id: String,
    /// The prompt it was made from.
    pub prompt: String,
    /// The SQL statement.
    pub statement: String,
    /// When it was made.
    pub created: DateTime<Utc>,
}

fn path(account_id: &str, alias: &str) -> Path {
    Path::from(format!("generated-queries/{account_id}/{alias}.json"))
}

/// Keeps a generated query.
pub async fn save(root: &LakeRoot, query: &GeneratedQuery) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(query).expect("a generated query serializes");
    root.store()
        .put(&path(&query.account_id, &query.alias), PutPayload::from(bytes))
        .await?;
    Ok(())
}

/// Returns the generated query of an account with the alias, if there is one.
pub async fn load(root: &LakeRoot, account_id: &str, alias: &str) -> Result<Option<GeneratedQuery>> {
    let location = path(account_id, alias);
    match root.store().get(&location).await {
        Ok(result) => {
            let bytes = result.bytes().await?;
            let query = serde_json::from_slice(&bytes).map_err(|source| LakeError::Corrupt {
                context: format!("reading {location}"),
                source,
            })?;
            Ok(Some(query))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
