//! The operations of the CloudTrail API as the JSON gateway routes them.

/// The `X-Amz-Target` prefix of the CloudTrail API (AWS JSON 1.1) as botocore's model gives it
/// (boto3, the AWS CLI, the C++ SDK).
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";

/// The `X-Amz-Target` prefix the Smithy-generated SDKs send (the AWS SDK for JavaScript v3, the
/// Smithy Python SDK): the service shape's name alone, as the Smithy AWS JSON 1.1 protocol builds it.
pub const SMITHY_TARGET_PREFIX: &str = "CloudTrail_20131101";

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// The 60 operations of the CloudTrail API (botocore model 2013-11-01).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation { $(#[doc = concat!("`", stringify!($name), "`.")] $name),* }

        impl Operation {
            /// Every operation, in alphabetical order.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),*];

            /// Returns the operation's name as in `X-Amz-Target`.
            pub fn name(self) -> &'static str {
                match self { $(Operation::$name => stringify!($name)),* }
            }
        }
    };
}

operations!(
    AddTags,
    CancelQuery,
    CreateChannel,
    CreateDashboard,
    CreateEventDataStore,
    CreateTrail,
    DeleteChannel,
    DeleteDashboard,
    DeleteEventDataStore,
    DeleteResourcePolicy,
    DeleteTrail,
    DeregisterOrganizationDelegatedAdmin,
    DescribeQuery,
    DescribeTrails,
    DisableFederation,
    EnableFederation,
    GenerateQuery,
    GetChannel,
    GetDashboard,
    GetEventConfiguration,
    GetEventDataStore,
    GetEventSelectors,
    GetImport,
    GetInsightSelectors,
    GetQueryResults,
    GetResourcePolicy,
    GetTrail,
    GetTrailStatus,
    ListChannels,
    ListDashboards,
    ListEventDataStores,
    ListImportFailures,
    ListImports,
    ListInsightsData,
    ListInsightsMetricData,
    ListPublicKeys,
    ListQueries,
    ListTags,
    ListTrails,
    LookupEvents,
    PutEventConfiguration,
    PutEventSelectors,
    PutInsightSelectors,
    PutResourcePolicy,
    RegisterOrganizationDelegatedAdmin,
    RemoveTags,
    RestoreEventDataStore,
    SearchSampleQueries,
    StartDashboardRefresh,
    StartEventDataStoreIngestion,
    StartImport,
    StartLogging,
    StartQuery,
    StopEventDataStoreIngestion,
    StopImport,
    StopLogging,
    UpdateChannel,
    UpdateDashboard,
    UpdateEventDataStore,
    UpdateTrail,
);

impl Operation {
    /// Returns the operation an `X-Amz-Target` header names (with either prefix), if it names one.
    pub fn from_target(target: &str) -> Option<Operation> {
        let service = target
            .strip_prefix(TARGET_PREFIX)
            .or_else(|| target.strip_prefix(SMITHY_TARGET_PREFIX))?;
        let name = service.strip_prefix('.')?;
        Operation::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// Returns true for the operations that only read (`Get`, `List`, `Describe`, `Lookup`, and
    /// `SearchSampleQueries`), which CloudTrail records with `readOnly` true.
    pub fn is_read_only(self) -> bool {
        let name = self.name();
        ["Get", "List", "Describe", "Lookup", "Search"]
            .iter()
            .any(|verb| name.starts_with(verb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_all_sixty_targets() {
        assert_eq!(Operation::ALL.len(), 60);
        let target = format!("{TARGET_PREFIX}.StartQuery");
        assert_eq!(Operation::from_target(&target), Some(Operation::StartQuery));
        assert_eq!(
            Operation::from_target("CloudTrail_20131101.StartQuery"),
            Some(Operation::StartQuery)
        );
        assert_eq!(Operation::from_target("StartQuery"), None);
        assert_eq!(Operation::from_target("CloudTrail_20131101StartQuery"), None);
        assert_eq!(Operation::from_target("cloudtrail_20131101.StartQuery"), None);
        assert_eq!(Operation::from_target(&format!("{TARGET_PREFIX}.Nope")), None);
    }

    #[test]
    fn tells_reads_from_writes() {
        let reads: Vec<&str> = Operation::ALL
            .iter()
            .filter(|op| op.is_read_only())
            .map(|op| op.name())
            .collect();
        for read in [
            "GetQueryResults",
            "ListEventDataStores",
            "DescribeQuery",
            "LookupEvents",
            "GetTrailStatus",
        ] {
            assert!(reads.contains(&read), "{read}");
        }
        for write in [
            "StartQuery",
            "CancelQuery",
            "CreateEventDataStore",
            "PutEventSelectors",
            "AddTags",
            "StartImport",
        ] {
            assert!(!reads.contains(&write), "{write}");
        }
    }
}
