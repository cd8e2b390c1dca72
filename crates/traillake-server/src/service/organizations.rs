//! RegisterOrganizationDelegatedAdmin and DeregisterOrganizationDelegatedAdmin, and who may make
//! a store an organization store (`OrganizationEnabled`): the organization is the server's
//! configuration (`--organization FILE`), its delegated administrators the catalog's.

use traillake_api::shapes::{
    DeregisterOrganizationDelegatedAdminRequest, Empty, RegisterOrganizationDelegatedAdminRequest,
};
use traillake_api::validate::{Pattern, StringRule};
use traillake_api::{ApiError, ErrorCode, RequestContext};
use traillake_lake::Organization;

use super::Service;
use super::errors::IntoApi as _;

static ACCOUNT_ID_PATTERN: Pattern = Pattern::new(r"^\d+$");
/// `AccountId`: 12 digits.
static ACCOUNT_ID: StringRule = StringRule {
    min: 12,
    max: 16,
    pattern: Some(&ACCOUNT_ID_PATTERN),
    code: ErrorCode::InvalidParameterException,
};

impl Service {
    /// Returns the organization of the caller: `OrganizationsNotInUseException` when the server
    /// has none or the caller is not in it, `OrganizationNotInAllFeaturesModeException` when its
    /// features are not all enabled.
    pub(super) fn organization_of(&self, ctx: &RequestContext) -> Result<&Organization, ApiError> {
        let Some(organization) = self.catalog.organization() else {
            return Err(ApiError::new(
                ErrorCode::OrganizationsNotInUseException,
                format!(
                    "account {} is not in an organization: this server has no organization configured (--organization)",
                    ctx.account_id
                ),
            ));
        };
        if !organization.has(&ctx.account_id) {
            return Err(ApiError::new(
                ErrorCode::OrganizationsNotInUseException,
                format!(
                    "account {} is not in the organization {}",
                    ctx.account_id, organization.id
                ),
            ));
        }
        if !organization.all_features {
            return Err(ApiError::new(
                ErrorCode::OrganizationNotInAllFeaturesModeException,
                format!(
                    "the organization {} does not have all features enabled, which organization stores need",
                    organization.id
                ),
            ));
        }
        Ok(organization)
    }

    /// Refuses `OrganizationEnabled` true to a caller that is neither the organization's
    /// management account nor a delegated administrator.
    pub(super) async fn check_organization(
        &self,
        ctx: &RequestContext,
        organization_enabled: Option<bool>,
    ) -> Result<(), ApiError> {
        if organization_enabled != Some(true) {
            return Ok(());
        }
        let organization = self.organization_of(ctx)?;
        if !self.catalog.administers_organization(&ctx.account_id).await {
            return Err(ApiError::new(
                ErrorCode::NotOrganizationMasterAccountException,
                format!(
                    "OrganizationEnabled needs the management account of the organization {} ({}) or a delegated \
                     administrator; account {} is neither",
                    organization.id, organization.management_account_id, ctx.account_id
                ),
            ));
        }
        Ok(())
    }

    /// Returns the organization of a management account's call, and the account it names.
    fn management_call<'a>(
        &self,
        ctx: &RequestContext,
        field: &str,
        account: Option<&'a str>,
    ) -> Result<(&Organization, &'a str), ApiError> {
        let account = ACCOUNT_ID.check_required(field, account)?;
        let organization = self.organization_of(ctx)?;
        if organization.management_account_id != ctx.account_id {
            return Err(ApiError::new(
                ErrorCode::NotOrganizationManagementAccountException,
                format!(
                    "only the management account {} of the organization {} may change its delegated administrators",
                    organization.management_account_id, organization.id
                ),
            ));
        }
        if !organization.has(account) {
            return Err(ApiError::new(
                ErrorCode::AccountNotFoundException,
                format!("account {account} is not in the organization {}", organization.id),
            ));
        }
        Ok((organization, account))
    }

    /// RegisterOrganizationDelegatedAdmin.
    pub async fn register_organization_delegated_admin(
        &self,
        ctx: &RequestContext,
        request: RegisterOrganizationDelegatedAdminRequest,
    ) -> Result<Empty, ApiError> {
        let (organization, member) =
            self.management_call(ctx, "MemberAccountId", request.member_account_id.as_deref())?;
        if member == organization.management_account_id {
            return Err(ApiError::new(
                ErrorCode::CannotDelegateManagementAccountException,
                format!(
                    "account {member} is the organization's management account, which cannot be a delegated administrator"
                ),
            ));
        }
        self.catalog.register_delegated_admin(member).await.api()?;
        tracing::info!(account_id = %member, "delegated administrator registered");
        Ok(Empty {})
    }

    /// DeregisterOrganizationDelegatedAdmin: the administrator's organization stores stay, and
    /// take only its own account's events until it is registered again.
    pub async fn deregister_organization_delegated_admin(
        &self,
        ctx: &RequestContext,
        request: DeregisterOrganizationDelegatedAdminRequest,
    ) -> Result<Empty, ApiError> {
        let (_, admin) = self.management_call(
            ctx,
            "DelegatedAdminAccountId",
            request.delegated_admin_account_id.as_deref(),
        )?;
        self.catalog.deregister_delegated_admin(admin).await.api()?;
        tracing::info!(account_id = %admin, "delegated administrator deregistered");
        Ok(Empty {})
    }
}
