//! StartImport, GetImport, ListImports, ListImportFailures, StopImport.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use traillake_api::arn::{self, event_data_store_arn};
use traillake_api::imports::{
    ImportStart, check_import_request, check_list, check_list_failures, check_start, failures_token,
};
use traillake_api::paging;
use traillake_api::shapes::{
    ImportDescription, ImportFailureListItem, ImportRequest, ImportSource, ImportStatistics, ImportsListItem,
    ListImportFailuresRequest, ListImportFailuresResponse, ListImportsRequest, ListImportsResponse, S3ImportSource,
    StartImportRequest,
};
use traillake_api::wire::timestamp;
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_ingest::imports::record::ImportRecord;
use traillake_ingest::imports::{ImportError, NewImport};

use super::Service;
use super::errors::{IntoApi as _, import_api_error};

/// How long StopImport waits for the run to end before it answers.
const STOP_WAIT: Duration = Duration::from_secs(30);

fn describe(ctx: &RequestContext, record: &ImportRecord, with_statistics: bool) -> ImportDescription {
    let statistics = record.checkpoint.statistics;
    ImportDescription {
        import_id: Some(record.id.clone()),
        destinations: vec![event_data_store_arn(ctx, &record.destination)],
        import_source: Some(ImportSource {
            s3: Some(S3ImportSource {
                s3_location_uri: Some(record.source.uri.clone()),
                s3_bucket_region: Some(record.source.region.clone()),
                s3_bucket_access_role_arn: Some(record.source.role_arn.clone()),
            }),
        }),
        start_event_time: record.start.map(timestamp),
        end_event_time: record.end.map(timestamp),
        import_status: Some(record.status.into()),
        created_timestamp: Some(timestamp(record.created)),
        updated_timestamp: Some(timestamp(record.updated)),
        import_statistics: with_statistics.then_some(ImportStatistics {
            prefixes_found: Some(statistics.prefixes_found),
            prefixes_completed: Some(statistics.prefixes_completed),
            files_completed: Some(statistics.files_completed),
            events_completed: Some(statistics.events_completed),
            failed_entries: Some(statistics.failed_entries),
        }),
    }
}

impl Service {
    /// StartImport: a new import, or the retry of a FAILED or STOPPED one.
    pub async fn start_import(
        &self,
        ctx: &RequestContext,
        request: StartImportRequest,
    ) -> Result<ImportDescription, ApiError> {
        let record = match check_start(&request)? {
            ImportStart::Retry(id) => self.imports.retry(&ctx.account_id, &id).await.api()?,
            ImportStart::New(new) => {
                let destination = arn::event_data_store_id(ctx, "Destinations.member", Some(&new.destination))?;
                self.imports
                    .start(&ctx.account_id, NewImport::new(destination, new), Utc::now())
                    .await
                    .api()?
            }
        };
        Ok(describe(ctx, &record, false))
    }

    /// GetImport.
    pub async fn get_import(
        &self,
        ctx: &RequestContext,
        request: ImportRequest,
    ) -> Result<ImportDescription, ApiError> {
        let id = check_import_request(&request)?;
        let record = self.imports.get(&ctx.account_id, &id).api()?;
        Ok(describe(ctx, &record, true))
    }

    /// StopImport: stops a running import (within seconds); a finished one is returned unchanged.
    pub async fn stop_import(
        &self,
        ctx: &RequestContext,
        request: ImportRequest,
    ) -> Result<ImportDescription, ApiError> {
        let id = check_import_request(&request)?;
        let record = self.imports.stop(&ctx.account_id, &id, STOP_WAIT).await.api()?;
        Ok(describe(ctx, &record, true))
    }

    /// ListImports: the account's imports, oldest first.
    pub async fn list_imports(
        &self,
        ctx: &RequestContext,
        request: ListImportsRequest,
    ) -> Result<ListImportsResponse, ApiError> {
        let listing = check_list(&request)?;
        let destination = match listing.destination.as_deref() {
            Some(destination) => Some(arn::event_data_store_id(ctx, "Destination", Some(destination))?),
            None => None,
        };
        let key = |r: &ImportRecord| format!("{}|{}", r.created.to_rfc3339_opts(SecondsFormat::Nanos, true), r.id);
        let matching: Vec<ImportRecord> = self
            .imports
            .list(&ctx.account_id)
            .into_iter()
            .filter(|r| destination.as_deref().is_none_or(|d| r.destination == d))
            .filter(|r| listing.status.is_none_or(|status| r.status == status))
            .filter(|r| listing.after.as_deref().is_none_or(|after| key(r).as_str() > after))
            .collect();
        let items: Vec<&ImportRecord> = matching.iter().take(listing.max_results).collect();
        let next_token = (matching.len() > items.len())
            .then(|| {
                items
                    .last()
                    .map(|r| paging::encode_bound_token("ListImports", &listing.parameters, &key(r)))
            })
            .flatten();
        Ok(ListImportsResponse {
            imports: items
                .into_iter()
                .map(|r| ImportsListItem {
                    import_id: Some(r.id.clone()),
                    import_status: Some(r.status.into()),
                    destinations: vec![event_data_store_arn(ctx, &r.destination)],
                    created_timestamp: Some(timestamp(r.created)),
                    updated_timestamp: Some(timestamp(r.updated)),
                })
                .collect(),
            next_token,
        })
    }

    /// ListImportFailures: the import's failure entries, in the order they were first made.
    pub async fn list_import_failures(
        &self,
        ctx: &RequestContext,
        request: ListImportFailuresRequest,
    ) -> Result<ListImportFailuresResponse, ApiError> {
        let listing = check_list_failures(&request)?;
        // The model gives ListImportFailures no ImportNotFoundException: an unknown ImportId is a
        // bad parameter.
        let failures = self
            .imports
            .failures(&ctx.account_id, &listing.import_id)
            .map_err(|error| match error {
                ImportError::NotFound(id) => ApiError::new(
                    ErrorCode::InvalidParameterException,
                    format!("ImportId {id} names no import of the account"),
                ),
                other => import_api_error(other),
            })?;
        let end = (listing.start + listing.max_results).min(failures.len());
        let page = failures.get(listing.start..end).unwrap_or_default();
        Ok(ListImportFailuresResponse {
            failures: page
                .iter()
                .map(|f| ImportFailureListItem {
                    location: Some(f.location.clone()),
                    status: Some(f.status.into()),
                    error_type: Some(f.error_type.clone()),
                    error_message: Some(f.error_message.clone()),
                    last_updated_time: Some(timestamp(f.updated)),
                })
                .collect(),
            next_token: (end < failures.len()).then(|| failures_token(&listing.import_id, end)),
        })
    }
}
