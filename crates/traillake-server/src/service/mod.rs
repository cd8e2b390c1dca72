//! The service layer: one handler per operation, from a typed request to a typed response or an
//! `ApiError`. Both front doors call it; it holds no wire format, storage or query logic of its own
//! but validates through `traillake-api` and acts through `traillake-lake`.

mod channels;
mod dashboards;
mod errors;
mod event_configuration;
mod event_data_stores;
mod federation;
mod generate;
mod imports;
mod insights;
mod lookup_events;
mod organizations;
mod public_keys;
mod queries;
mod resource_policies;
mod tags;
mod trails;

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use traillake_api::paging::{self, PageRequest};
use traillake_ingest::channels::Channels;

use traillake_ingest::imports::Imports;
use traillake_ingest::trails::Trails;
use traillake_lake::Catalog;
use traillake_query::QueryEngine;

/// The settings of the service layer.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The most event data stores (not pending deletion) an account may have.
    pub max_event_data_stores: usize,
    /// The most channels an account may have.
    pub max_channels: usize,
    /// The most trails an account may have.
    pub max_trails: usize,
    /// The most dashboards an account may have.
    pub max_dashboards: usize,
    /// How often the dashboards' refresh schedules are looked at.
    pub dashboard_schedule_interval: std::time::Duration,
    /// The command GenerateQuery runs (`sh -c`) to make a query of a prompt; none turns the
    /// operation off.
    pub query_generator: Option<String>,
}

/// The operations of traillake, over one lake.
#[derive(Debug, Clone)]
pub struct Service {
    catalog: Arc<Catalog>,
    queries: Arc<QueryEngine>,
    imports: Arc<Imports>,
    channels: Arc<Channels>,
    trails: Arc<Trails>,
    settings: ServiceSettings,
    lookup_throttle: Arc<lookup_events::LookupThrottle>,
    refresh_ids: Arc<dashboards::RefreshIds>,
    federation_calls: Arc<federation::FederationCalls>,
}

impl Service {
    /// Returns the service over a loaded catalog, and the query engine, imports, channels and
    /// trails' delivery of the same root.
    pub fn new(
        catalog: Arc<Catalog>,
        queries: Arc<QueryEngine>,
        imports: Arc<Imports>,
        channels: Arc<Channels>,
        trails: Arc<Trails>,
        settings: ServiceSettings,
    ) -> Self {
        Self {
            catalog,
            queries,
            imports,
            channels,
            trails,
            settings,
            lookup_throttle: Arc::default(),
            refresh_ids: Arc::default(),
            federation_calls: Arc::default(),
        }
    }

    /// Returns the lake root the service acts on.
    pub fn root(&self) -> &traillake_lake::LakeRoot {
        self.queries.root()
    }

    /// Returns the catalog the service acts on.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }
}

/// Returns a page of a list ordered by creation time and ID, and the token of the next page: a
/// page starts after the key in its token, so that an item deleted between two pages does not
/// shift the next one.
pub(crate) fn page_after<'a, T>(
    items: &'a [T],
    page: &PageRequest,
    operation: &str,
    key: impl Fn(&T) -> (DateTime<Utc>, &str),
) -> (Vec<&'a T>, Option<String>) {
    let key = |item: &T| {
        let (created, id) = key(item);
        format!("{}|{id}", created.to_rfc3339_opts(SecondsFormat::Nanos, true))
    };
    let rest: Vec<&T> = match &page.after {
        Some(after) => items
            .iter()
            .filter(|item| key(item).as_str() > after.as_str())
            .collect(),
        None => items.iter().collect(),
    };
    let page_items: Vec<&T> = rest.iter().take(page.max_results).copied().collect();
    let next_token = (rest.len() > page_items.len())
        .then(|| {
            page_items
                .last()
                .map(|item| paging::encode_token(operation, &key(item)))
        })
        .flatten();
    (page_items, next_token)
}
