//! `RequestContext`: who is calling, where, and under which request ID.

/// The caller and the place of one request, as authentication and configuration settle them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The caller's AWS account ID.
    pub account_id: String,
    /// The Region the server serves; every ARN it returns or accepts names it.
    pub region: String,
    /// The request's ID, echoed in `x-amzn-RequestId`.
    pub request_id: String,
    /// The caller's principal ARN (an IAM user or role, or a role session), when its credentials
    /// give one: what the resource policies naming roles and users match.
    pub principal_arn: Option<String>,
}

impl RequestContext {
    /// The context of the unit tests: account 123456789012 in us-east-1.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            request_id: "r".into(),
            principal_arn: None,
        }
    }
}
