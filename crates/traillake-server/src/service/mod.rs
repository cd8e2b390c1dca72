//! The service layer: one handler per operation, from a typed request to a typed response or an
//! `ApiError`. Both front doors call it; it holds no wire format, storage or query logic of its own
//! but validates through `traillake-api` and acts through `traillake-lake`.

mod errors;
mod event_data_stores;
mod imports;
mod queries;
mod tags;

use std::sync::Arc;

use traillake_ingest::imports::Imports;
use traillake_lake::Catalog;
use traillake_query::QueryEngine;

/// The settings of the service layer.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The most event data stores (not pending deletion) an account may have.
    pub max_event_data_stores: usize,
}

/// The operations of traillake, over one lake.
#[derive(Debug, Clone)]
pub struct Service {
    catalog: Arc<Catalog>,
    queries: Arc<QueryEngine>,
    imports: Arc<Imports>,
    settings: ServiceSettings,
}

impl Service {
    /// Returns the service over a loaded catalog, and the query engine and imports of the same root.
    pub fn new(catalog: Arc<Catalog>, queries: Arc<QueryEngine>, imports: Arc<Imports>, settings: ServiceSettings) -> Self {
        Self { catalog, queries, imports, settings }
    }

    /// Returns the catalog the service acts on.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }
}
